//! What the page's buttons do: each change to what the page knows, and the jobs it starts
//! on their own threads (a login, the rooms read, the dry run, the move), each the same
//! library call the terminal makes.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use key_export::pipeline;
use key_export::ReadOptions;
use migrate::account_move::{self, from_plan, from_plan::PlanFiles, Report};
use migrate::connect::{self, Pair};
use migrate::rooms::rooms_file;
use zeroize::Zeroizing;

use crate::http::{Form, Reply, Req};
use crate::jobs::Kind;
use crate::login::{self, How, PageAsk};
use crate::state::{self, Upload};
use crate::App;

/// The longest the end of the server waits for a move to stop.
const STOP_WAIT: Duration = Duration::from_secs(120);

/// Runs `work` as the job `kind` on its own thread; its error is shown on the next page.
fn spawn(
    app: &Arc<App>,
    kind: Kind,
    work: impl FnOnce(&Arc<App>) -> Result<(), String> + Send + 'static,
) {
    if app.jobs.begin(kind).is_err() {
        app.set_flash("Something is already running; wait for it to end.");
        return;
    }
    let app = app.clone();
    std::thread::spawn(move || {
        let result = work(&app);
        if let Err(e) = &result {
            app.set_flash(e.clone());
        }
        app.jobs.end(result.err());
    });
}

/// The account's server found and asked how it lets people in.
pub fn find(app: &Arc<App>, old: bool, user: Option<String>, homeserver: Option<String>) -> Reply {
    let back = if old { "/old" } else { "/new" };
    let fixed = {
        let mut w = app.wizard();
        let planned = w.plan.is_some();
        w.account(old).user.clone().filter(|_| planned)
    };
    let Some(user) = fixed.or(user) else {
        app.set_flash("Give the account's user ID, like @you:example.org.");
        return Reply::see(back);
    };
    if !matrix_ids::is_user_id(&user) {
        app.set_flash(format!(
            "“{}” is not a user ID: it looks like @you:example.org.",
            matrix_ids::text::printable(&user)
        ));
        return Reply::see(back);
    }
    let found = login::offered(&user, homeserver.as_deref(), &app.reach);
    let mut w = app.wizard();
    let a = w.account(old);
    a.user = Some(user);
    a.homeserver = homeserver;
    a.error = None;
    match found {
        Ok(o) => a.offered = Some(o),
        Err(e) => {
            a.offered = None;
            a.error = Some(e);
        }
    }
    Reply::see(back)
}

/// A login, as the job of that account.
pub fn log_in(app: &Arc<App>, old: bool, f: &Form) -> Reply {
    let back = if old { "/old" } else { "/new" };
    let how = match f.get("how") {
        Some("oauth") => How::OAuth,
        Some("sso") => How::Sso(f.text("idp")),
        Some("password") => {
            How::Password(Zeroizing::new(f.get("password").unwrap_or("").to_owned()))
        }
        Some("token") => How::Token(Zeroizing::new(
            f.get("access_token").unwrap_or("").trim().to_owned(),
        )),
        _ => return Reply::text(400, "No such way to log in."),
    };
    let (user, url) = {
        let mut w = app.wizard();
        let a = w.account(old);
        match (&a.user, &a.offered) {
            (Some(u), Some(o)) => (u.clone(), o.url.clone()),
            _ => return Reply::see(back),
        }
    };
    spawn(app, Kind::Login(old), move |app| {
        let spec = login::spec(&user, &url, &how, &app.reach);
        let password = match &how {
            How::Password(p) => Some(p.clone()),
            _ => None,
        };
        let ask: Arc<dyn connect::Ask> = Arc::new(PageAsk {
            password: Mutex::new(password),
            jobs: app.jobs.clone(),
        });
        let opened = connect::open(&spec, &ask);
        let mut w = app.wizard();
        let other = w
            .account(!old)
            .session
            .as_ref()
            .map(|s| s.user_id().to_owned());
        let a = w.account(old);
        match opened {
            Ok(session) if other.as_deref() == Some(session.user_id()) => {
                let _ = connect::close(session);
                let e = "the old and the new account are the same account: log in to the other one";
                a.error = Some(e.into());
                Err(e.into())
            }
            Ok(session) => {
                a.session = Some(Arc::new(session));
                a.login = how.plan_login();
                a.error = None;
                Ok(())
            }
            Err(e) => {
                a.error = Some(e.to_string());
                Err(e.to_string())
            }
        }
    });
    Reply::see(back)
}

/// Logs out of an account the page logged in to, to use another.
pub fn log_out(app: &Arc<App>, old: bool) -> Reply {
    let session = {
        let mut w = app.wizard();
        w.listing = None;
        w.dry_run = None;
        w.account(old).session.take()
    };
    if let Some(s) = session.and_then(Arc::into_inner) {
        let _ = connect::close(s);
    }
    Reply::see(if old { "/old" } else { "/new" })
}

/// Reads the old account's rooms (the rooms screen's job).
pub fn read_rooms(app: &Arc<App>) {
    spawn(app, Kind::Rooms, |app| {
        let (old, new) = app
            .wizard()
            .sessions()
            .ok_or("log in to both accounts first")?;
        let listing = crate::rooms::read(&old, &new, &*app.jobs).map_err(|e| e.to_string())?;
        app.wizard().listing = Some(listing);
        Ok(())
    });
}

/// The rooms chosen: the rooms file and the plan written into the move folder (the same
/// files `move run` reads). A move already begun keeps its rooms.
pub fn choose_rooms(
    app: &Arc<App>,
    chosen: HashSet<String>,
    leave: bool,
    rename: Option<String>,
) -> Reply {
    let mut w = app.wizard();
    if w.rooms_fixed() {
        return Reply::see("/keys");
    }
    let Some(listing) = &w.listing else {
        return Reply::see("/rooms");
    };
    let list = crate::rooms::chosen(&listing.list, &chosen);
    if list.rooms.is_empty() {
        drop(w);
        app.set_flash("Pick at least one room to move.");
        return Reply::see("/rooms");
    }
    let rooms: Vec<String> = list.rooms.iter().map(|r| r.facts.room_id.clone()).collect();
    let plan = w.plan_for(leave, rename);
    let written = state::plan_text(&plan).and_then(|text| {
        state::write_file(&plan.rooms_file, &rooms_file::render(&list))?;
        state::write_file(&w.plan_path(), &text)
    });
    if let Err(e) = written {
        drop(w);
        app.set_flash(format!("Cannot write the plan into the work folder: {e}"));
        return Reply::see("/rooms");
    }
    w.rooms = Some(rooms);
    w.plan = Some(plan);
    w.dry_run = None;
    Reply::see("/keys")
}

/// An uploaded key export: opened with its passphrase at once (a wrong one is said now),
/// then kept in memory.
pub fn add_export(app: &Arc<App>, req: &Req, body: Option<Zeroizing<Vec<u8>>>) -> Reply {
    let decode = |h: &str| {
        req.header(h)
            .map(|v| {
                url::form_urlencoded::parse(format!("v={v}").as_bytes())
                    .map(|(_, v)| v.into_owned())
                    .next()
                    .unwrap_or_default()
            })
            .unwrap_or_default()
    };
    let name = decode("x-file-name");
    let passphrase = Zeroizing::new(decode("x-passphrase"));
    let Some(body) = body else {
        return Reply::text(400, "No file.");
    };
    let bytes = Arc::new(body);
    let upload = Upload {
        name: if name.is_empty() {
            "key export".into()
        } else {
            name
        },
        bytes,
        passphrase,
        sessions: 0,
    };
    match pipeline::inspect(upload.source(), &ReadOptions::default()) {
        Ok(report) => {
            let upload = Upload {
                sessions: report.sessions,
                ..upload
            };
            app.wizard().keys.exports.push(upload);
            Reply::text(200, "added")
        }
        Err(e) => {
            app.set_flash(format!("{e}. Check the file and its passphrase."));
            Reply::text(400, "refused")
        }
    }
}

/// The recovery keys typed; then the dry run.
pub fn keys_given(app: &Arc<App>, old: Option<String>, new: Option<String>) -> Reply {
    let (old, new) = (old.map(Zeroizing::new), new.map(Zeroizing::new));
    for (given, whose) in [(&old, "old"), (&new, "new")] {
        if let Some(text) = given {
            if let Err(e) = state::check_recovery(text) {
                app.set_flash(format!("The {whose} account's recovery key: {e}"));
                return Reply::see("/keys");
            }
        }
    }
    {
        let mut w = app.wizard();
        if old.is_some() {
            w.keys.old_recovery = old;
        }
        if new.is_some() {
            w.keys.new_recovery = new;
        }
        w.dry_run = None;
    }
    spawn(app, Kind::DryRun, |app| {
        let report = run(app, true, false)?;
        app.wizard().dry_run = Some(report);
        Ok(())
    });
    Reply::see("/plan")
}

/// The move itself.
pub fn start_move(app: &Arc<App>, allow_invites: bool) -> Reply {
    if app.wizard().dry_run.is_none() {
        return Reply::see("/keys");
    }
    app.wizard().cancel.store(false, Ordering::Relaxed);
    spawn(app, Kind::Move, move |app| {
        let report = run(app, false, allow_invites)?;
        let files = PlanFiles::of(&app.wizard().plan_path());
        write_reports(&files, &report)?;
        let mut w = app.wizard();
        let plan = w.plan.clone().expect("a move has a plan");
        w.refresh_journal(&plan);
        w.report = Some(report);
        Ok(())
    });
    Reply::see("/moving")
}

/// One `account_move::run`, dry or not, with what the page holds.
fn run(app: &Arc<App>, dry_run: bool, allow_invites: bool) -> Result<Report, String> {
    let (request, old, new) = {
        let w = app.wizard();
        let (old, new) = w.sessions().ok_or("log in to both accounts first")?;
        let plan = w.plan.clone().ok_or("choose the rooms first")?;
        let rooms = w.rooms.clone().ok_or("choose the rooms first")?;
        let files = PlanFiles::of(&w.plan_path());
        let confirm = Box::new(move |_: &str| allow_invites);
        let request = from_plan::request_with(
            &plan,
            rooms,
            dry_run,
            &files,
            w.cancel.clone(),
            w.keys.sources(),
            confirm,
        );
        (request, old, new)
    };
    let pair = Pair {
        old: &old,
        new: &new,
    };
    account_move::run(&pair, request, &*app.jobs).map_err(|e| e.to_string())
}

/// The reports beside the plan, as `move run` writes them.
fn write_reports(files: &PlanFiles, report: &Report) -> Result<(), String> {
    let mut doc = serde_json::Map::new();
    doc.insert("format".into(), "matrix-transplant.move-run/1".into());
    if let serde_json::Value::Object(body) =
        serde_json::to_value(report).map_err(|e| e.to_string())?
    {
        doc.extend(body);
    }
    let json = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())? + "\n";
    state::write_file(&files.markdown, &report.markdown())?;
    state::write_file(&files.json, &json)
}

/// Quit: a running move is stopped gently (the journal keeps where it stands).
pub fn quit(app: &Arc<App>) {
    app.wizard().cancel.store(true, Ordering::Relaxed);
    app.quit.store(true, Ordering::Relaxed);
}

/// The end of the server: the running job stopped and waited for, then the sessions the
/// page opened closed (logged out).
pub fn wind_down(app: &Arc<App>) {
    app.wizard().cancel.store(true, Ordering::Relaxed);
    // A move or a dry run stops between two steps; a login waiting on a browser is left.
    let mut waited = Duration::ZERO;
    while app.jobs.running() && waited < STOP_WAIT {
        if matches!(app.jobs.now().kind, Some(Kind::Login(_))) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        waited += Duration::from_millis(100);
    }
    let sessions = {
        let mut w = app.wizard();
        [w.old.session.take(), w.new.session.take()]
    };
    for s in sessions.into_iter().flatten().filter_map(Arc::into_inner) {
        let _ = connect::close(s);
    }
}
