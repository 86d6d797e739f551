//! The move as a local web page (`matrix-transplant ui`): a server on 127.0.0.1 over the
//! same jobs, plan, rooms file and journal as `move init/run/status`, for people who do not
//! use a terminal. A move begun in the page can be finished from the terminal, and the
//! other way round.
//!
//! - [`guard`]: who may use the page (loopback, a one-time launch key traded for a cookie,
//!   the Host checked, Origin and token on every change);
//! - [`http`]: requests read, responses sent with strict headers (CSP);
//! - [`pages`]: the screens, HTML built at compile time;
//! - [`routes`]: which request does what;
//! - [`work`]: the jobs the page runs (logins, the rooms read, the dry run, the move);
//! - [`jobs`]: the running job's progress, streamed to the page;
//! - [`state`]: what the page knows between screens; [`rooms`]: the rooms screen's facts;
//! - [`login`]: logging in the way each server wants; [`markdown`]: the reports as HTML.
//!
//! Crates: tiny_http (a blocking server: the jobs are blocking, so no async runtime) and
//! maud (HTML checked and escaped at compile time, no template files to ship); the
//! stylesheet and the script are compiled into the binary.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod guard;
pub mod http;
pub mod jobs;
pub mod login;
pub mod markdown;
pub mod pages;
pub mod rooms;
pub mod routes;
pub mod state;
pub mod work;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

/// How the page is served.
#[derive(Debug, Clone)]
pub struct Config {
    /// The move folder (made, mode 0700, if missing).
    pub folder: PathBuf,
    /// How accounts are reached.
    pub reach: login::Reach,
    /// The server ends after this long without a request, unless a job runs.
    pub idle: Duration,
    /// The port (0: any free one).
    pub port: u16,
}

/// What the front end is told once the server listens.
pub struct Ready<'a> {
    /// The address that opens the page once (it holds the launch key: show it only to the
    /// person, never pass it to another program's arguments).
    pub url: &'a str,
    /// A file (mode 0600) that sends a browser to `url`: open this instead of the address,
    /// so the key is in no process list.
    pub opener: &'a Path,
}

/// Why the server ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The person pressed Quit.
    Quit,
    /// Nobody used the page for the idle time, and no job ran.
    Idle,
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The move folder cannot be made or used.
    #[error("{0}")]
    Folder(String),
    /// No port could be had on 127.0.0.1.
    #[error("cannot listen on 127.0.0.1: {0}")]
    Listen(String),
}

/// The server's shared state.
pub struct App {
    /// Who may use the page.
    pub guard: guard::Guard,
    /// How accounts are reached.
    pub reach: login::Reach,
    /// What the page knows.
    pub wizard: Mutex<state::Wizard>,
    /// The running job.
    pub jobs: Arc<jobs::Jobs>,
    /// A problem to show on the next page.
    pub flash: Mutex<Option<String>>,
    /// The last request.
    last: Mutex<Instant>,
    /// Quit was pressed.
    pub quit: AtomicBool,
    /// The opener file, until the launch key is traded.
    opener: PathBuf,
}

impl App {
    /// Takes the problem to show, once.
    pub fn take_flash(&self) -> Option<String> {
        self.flash.lock().expect("flash lock").take()
    }

    /// Sets the problem to show.
    pub fn set_flash(&self, text: impl Into<String>) {
        *self.flash.lock().expect("flash lock") = Some(text.into());
    }

    /// The wizard, locked.
    pub fn wizard(&self) -> std::sync::MutexGuard<'_, state::Wizard> {
        self.wizard.lock().expect("wizard lock")
    }

    /// The launch key was traded: the opener file is no longer needed.
    pub fn launched(&self) {
        let _ = std::fs::remove_file(&self.opener);
    }
}

/// Serves the page until Quit or the idle time; `ready` is told the address once the
/// server listens. The sessions the page opened are closed at the end.
pub fn serve(config: Config, ready: impl FnOnce(&Ready<'_>)) -> Result<Ended, Error> {
    migrate::account_move::init::prepare(&config.folder.join(state::PLAN))
        .map_err(|e| Error::Folder(e.to_string()))?;
    let wizard = state::Wizard::new(config.folder.clone()).map_err(Error::Folder)?;
    let server = tiny_http::Server::http(("127.0.0.1", config.port))
        .map_err(|e| Error::Listen(e.to_string()))?;
    let port = server
        .server_addr()
        .to_ip()
        .map(|a| a.port())
        .ok_or_else(|| Error::Listen("no port".into()))?;
    let guard = guard::Guard::new(port);
    let url = guard.launch_url();
    let opener = config.folder.join(".open-matrix-transplant.html");
    write_opener(&opener, &url)?;
    let app = Arc::new(App {
        guard,
        reach: config.reach.clone(),
        wizard: Mutex::new(wizard),
        jobs: Arc::default(),
        flash: Mutex::new(None),
        last: Mutex::new(Instant::now()),
        quit: AtomicBool::new(false),
        opener,
    });
    ready(&Ready {
        url: &url,
        opener: &app.opener,
    });
    let ended = run(&app, &server, config.idle);
    work::wind_down(&app);
    app.launched();
    Ok(ended)
}

/// Answers requests, each on its own thread, until Quit or the idle time.
fn run(app: &Arc<App>, server: &tiny_http::Server, idle: Duration) -> Ended {
    loop {
        if app.quit.load(Ordering::Relaxed) {
            return Ended::Quit;
        }
        let quiet = app.last.lock().expect("last lock").elapsed();
        if quiet >= idle && !app.jobs.running() {
            return Ended::Idle;
        }
        if let Ok(Some(request)) = server.recv_timeout(Duration::from_millis(250)) {
            *app.last.lock().expect("last lock") = Instant::now();
            let app = app.clone();
            std::thread::spawn(move || routes::handle(&app, request));
        }
    }
}

/// The opener: a page that sends the browser on to the launch address.
fn write_opener(path: &Path, url: &str) -> Result<(), Error> {
    let html = Zeroizing::new(format!(
        "<!DOCTYPE html><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"0;url={url}\">\
         <title>matrix-transplant</title><a href=\"{url}\">Open matrix-transplant</a>\n"
    ));
    state::write_file(path, &html).map_err(Error::Folder)
}
