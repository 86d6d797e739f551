//! `matrix-transplant ui [FOLDER]`: the move as a local web page (the `web` crate), over
//! the same plan, rooms file and journal as `move init/run/status`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::accounts;
use crate::args::CommonArgs;
use crate::exit::{Exit, Failure, Outcome};
use crate::print;

#[derive(Args)]
pub struct UiArgs {
    /// The move folder: its plan (move.toml), rooms file and journal, the same `move run`
    /// reads. Default: matrix-transplant/move under the user's data folder.
    folder: Option<PathBuf>,
    /// Print the address only; do not open a browser.
    #[arg(long)]
    no_browser: bool,
    /// Stop after this many minutes without a request, unless a move runs.
    #[arg(long, value_name = "MINUTES", default_value_t = 30)]
    idle_minutes: u64,
    #[command(flatten)]
    common: CommonArgs,
}

/// Serves the page until Quit, Ctrl-C or the idle time.
pub fn run(a: UiArgs) -> Outcome {
    let folder = match a.folder {
        Some(f) => f,
        None => default_folder()?,
    };
    let config = web::Config {
        folder: folder.clone(),
        reach: web::login::Reach {
            allow_insecure_http: a.common.allow_insecure_http,
            ca_file: a.common.ca_file.clone(),
            limits: accounts::long_limits(&a.common),
            login_timeout: None,
        },
        idle: Duration::from_secs(a.idle_minutes.max(1) * 60),
        port: 0,
    };
    let no_browser = a.no_browser;
    let ended = web::serve(config, |ready| {
        println!(
            "matrix-transplant is running for the move in {}.\nOpen this address in a browser on \
             this computer (it works once):\n\n  {}\n\nStop it with Quit in the page, or Ctrl-C here.",
            print::safe(&folder.display().to_string()),
            ready.url
        );
        if !no_browser {
            print::open_in_browser(ready.opener.as_os_str());
        }
    })
    .map_err(|e| Failure::new(Exit::Io, e.to_string()))?;
    match ended {
        web::Ended::Quit => crate::note!("Stopped (Quit)."),
        web::Ended::Idle => crate::note!(
            "Stopped after {} minutes without use. Run it again to go on.",
            a.idle_minutes.max(1)
        ),
    }
    Ok(())
}

/// matrix-transplant/move under $XDG_DATA_HOME, else ~/.local/share.
fn default_folder() -> Outcome<PathBuf> {
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .ok_or_else(|| {
            Failure::new(
                Exit::Usage,
                "no data folder (neither XDG_DATA_HOME nor HOME is set): name the move folder, \
                 `matrix-transplant ui FOLDER`",
            )
        })?;
    Ok(data.join("matrix-transplant").join("move"))
}
