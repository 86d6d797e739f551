//! `matrix-transplant rooms list|plan|move`: the old account's rooms, the move planned,
//! the move done. Each resolves its arguments and secrets, opens the sessions, makes one
//! `migrate::rooms` call, closes the sessions and prints the report.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use migrate::rooms::list::{self, RoomList};
use migrate::rooms::moving::{self, MoveOptions, MoveReport, Status};
use migrate::rooms::plan::{self, Pair, Plan};
use online::client::RateLimits;
use online::Session;

use crate::account::{open, Account};
use crate::args::LoginKind;
use crate::args::{user_id, OutArgs};
use crate::document::{self, Kind};
use crate::exit::Outcome;
use crate::files::{read_room_list, Output};
use crate::print;
use crate::secrets;

#[derive(Subcommand)]
pub enum RoomsCommand {
    /// Every room the OLD account is in, one line each in the rooms-file format: delete the
    /// lines of the rooms that stay, and the file drives `keys filter`, `direct build`,
    /// `rooms plan` and `rooms move`.
    List {
        #[command(flatten)]
        old: OldArgs,
        #[command(flatten)]
        common: CommonArgs,
        /// Print JSON instead of the rooms file.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        out: OutArgs,
    },
    /// What moving each room of the rooms file takes (read-only): the steps, the blockers
    /// and what to do about them, the history the new account will not see, the duration.
    Plan {
        /// The rooms that move (e.g. an edited `rooms list`).
        #[arg(long, value_name = "PATH")]
        rooms_file: PathBuf,
        #[command(flatten)]
        accounts: TwoAccounts,
        /// Plan the leaves too (counts in the duration).
        #[arg(long)]
        leave: bool,
        /// Print the plan as JSON on standard output.
        #[arg(long)]
        json: bool,
    },
    /// Move the rooms: invite where needed, join, the same power, tags, the DMs into the new
    /// account's m.direct; resumable (run the same command again).
    Move {
        /// The rooms that move.
        #[arg(long, value_name = "PATH")]
        rooms_file: PathBuf,
        #[command(flatten)]
        accounts: TwoAccounts,
        /// Then leave each fully moved room with the old account (never one where the new
        /// account lacks the old one's power).
        #[arg(long)]
        leave: bool,
        /// Before any leave, rename the old account: its display name followed by SUFFIX,
        /// e.g. "(moved to @me:example.org)".
        #[arg(long, value_name = "SUFFIX")]
        rename_old: Option<String>,
        /// The journal that makes a rerun resume (default: a file in the current directory
        /// named after the two accounts).
        #[arg(long, value_name = "PATH")]
        state: Option<PathBuf>,
        /// Print the report as JSON on standard output.
        #[arg(long)]
        json: bool,
    },
}

/// Options of both accounts' connections.
#[derive(Args)]
pub struct CommonArgs {
    /// Allow plain http to a homeserver that is not on this machine.
    #[arg(long)]
    pub allow_insecure_http: bool,
    /// A PEM file of certificate authorities to trust besides the usual ones.
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<PathBuf>,
    /// The longest the servers may make this run wait in all (rate limits: moving hundreds
    /// of rooms at stock limits takes hours).
    #[arg(long, value_name = "SECONDS", default_value_t = 48 * 3600)]
    pub max_wait: u64,
}

/// The old account.
#[derive(Args)]
pub struct OldArgs {
    /// The old account's user ID.
    #[arg(long, value_name = "@old:server", value_parser = user_id)]
    pub old_user: String,
    /// Its homeserver URL (else found from --old-user).
    #[arg(long, value_name = "URL")]
    pub old_homeserver: Option<String>,
    /// File holding its access token (else $MATRIX_OLD_ACCESS_TOKEN, else the tool logs in,
    /// see --old-login).
    #[arg(long, value_name = "PATH")]
    pub old_token_file: Option<PathBuf>,
    /// How the old account logs in when no token is given (as --login).
    #[arg(long, value_enum, value_name = "HOW", default_value_t = LoginKind::Auto)]
    pub old_login: LoginKind,
    /// The old account's identity provider, when its server has several.
    #[arg(long, value_name = "ID")]
    pub old_idp: Option<String>,
}

/// Both accounts.
#[derive(Args)]
pub struct TwoAccounts {
    #[command(flatten)]
    pub old: OldArgs,
    /// The new account's user ID.
    #[arg(long, value_name = "@new:server", value_parser = user_id)]
    pub new_user: String,
    /// Its homeserver URL (else found from --new-user).
    #[arg(long, value_name = "URL")]
    pub new_homeserver: Option<String>,
    /// File holding its access token (else $MATRIX_NEW_ACCESS_TOKEN, else the tool logs in,
    /// see --new-login).
    #[arg(long, value_name = "PATH")]
    pub new_token_file: Option<PathBuf>,
    /// How the new account logs in when no token is given (as --login).
    #[arg(long, value_enum, value_name = "HOW", default_value_t = LoginKind::Auto)]
    pub new_login: LoginKind,
    /// The new account's identity provider, when its server has several.
    #[arg(long, value_name = "ID")]
    pub new_idp: Option<String>,
    #[command(flatten)]
    pub common: CommonArgs,
}

pub const OLD_TOKEN_ENV: &str = "MATRIX_OLD_ACCESS_TOKEN";
pub const NEW_TOKEN_ENV: &str = "MATRIX_NEW_ACCESS_TOKEN";

/// Rate limits for hours of work: a server's 333 s invite wait is obeyed as asked.
fn limits(common: &CommonArgs) -> RateLimits {
    RateLimits {
        max_retries: 1000,
        max_single_wait: Duration::from_secs(20 * 60),
        budget: Duration::from_secs(common.max_wait),
        ..RateLimits::default()
    }
}

/// One account's connection options.
pub struct Side<'a> {
    pub homeserver: Option<&'a str>,
    pub user: &'a str,
    pub token_file: Option<&'a Path>,
    pub login: secrets::Login<'a>,
    pub homeserver_flag: &'a str,
}

pub fn connect(side: &Side<'_>, common: &CommonArgs) -> Outcome<Session> {
    let account = Account {
        homeserver: side.homeserver,
        user: Some(side.user),
        allow_insecure_http: common.allow_insecure_http,
        ca_file: common.ca_file.as_deref(),
        limits: limits(common),
        homeserver_flag: side.homeserver_flag,
        user_flag: side.login.flags.1,
    };
    open(&account, |u, hs| {
        secrets::credentials(side.token_file, u, &side.login, hs)
    })
}

fn connect_old(old: &OldArgs, common: &CommonArgs) -> Outcome<Session> {
    connect(
        &Side {
            homeserver: old.old_homeserver.as_deref(),
            user: &old.old_user,
            token_file: old.old_token_file.as_deref(),
            login: secrets::Login {
                kind: old.old_login,
                idp: old.old_idp.as_deref(),
                flags: ("--old-token-file", "--old-user", "--old-login"),
                token_env: OLD_TOKEN_ENV,
            },
            homeserver_flag: "--old-homeserver",
        },
        common,
    )
}

/// Opens both sessions (each `whoami` must match its user ID before anything is written),
/// runs `job`, closes both.
fn with_pair<T>(a: &TwoAccounts, job: impl FnOnce(&Pair<'_>) -> Outcome<T>) -> Outcome<T> {
    let old = Side {
        homeserver: a.old.old_homeserver.as_deref(),
        user: &a.old.old_user,
        token_file: a.old.old_token_file.as_deref(),
        login: secrets::Login {
            kind: a.old.old_login,
            idp: a.old.old_idp.as_deref(),
            flags: ("--old-token-file", "--old-user", "--old-login"),
            token_env: OLD_TOKEN_ENV,
        },
        homeserver_flag: "--old-homeserver",
    };
    let new = Side {
        homeserver: a.new_homeserver.as_deref(),
        user: &a.new_user,
        token_file: a.new_token_file.as_deref(),
        login: secrets::Login {
            kind: a.new_login,
            idp: a.new_idp.as_deref(),
            flags: ("--new-token-file", "--new-user", "--new-login"),
            token_env: NEW_TOKEN_ENV,
        },
        homeserver_flag: "--new-homeserver",
    };
    with_sessions(&old, &new, &a.common, job)
}

/// Opens both accounts' sessions, runs `job`, closes both (logging out what this tool
/// logged in).
pub fn with_sessions<T>(
    old: &Side<'_>,
    new: &Side<'_>,
    common: &CommonArgs,
    job: impl FnOnce(&Pair<'_>) -> Outcome<T>,
) -> Outcome<T> {
    let old = connect(old, common)?;
    let new = connect(new, common)?;
    let result = job(&Pair {
        old: &old,
        new: &new,
    });
    crate::cleanup::set_logout(None);
    for s in [old, new] {
        if let Err(e) = s.close() {
            crate::warn!("could not log out a session this tool opened: {e}");
        }
    }
    result
}

pub fn run(cmd: RoomsCommand) -> Outcome {
    match cmd {
        RoomsCommand::List {
            old,
            common,
            json,
            out,
        } => {
            let output = Output::plan(out.output.as_deref(), out.force, false, "output")?;
            let session = connect_old(&old, &common)?;
            let listed = list::list(&session, &*crate::progress::room_bars());
            crate::cleanup::set_logout(None);
            let _ = session.close();
            let listed = listed?;
            let text = if json {
                document::text(Kind::RoomsList, &listed)
            } else {
                list_text(&listed)
            };
            output.write(text.as_bytes())?;
            crate::note!(
                "{} rooms of {} -> {}",
                listed.rooms.len(),
                listed.user_id,
                output.describe()
            );
            Ok(())
        }
        RoomsCommand::Plan {
            rooms_file,
            accounts,
            leave,
            json,
        } => {
            let rooms = read_room_list(&rooms_file)?;
            let p = with_pair(&accounts, |pair| {
                Ok(plan::plan(
                    pair,
                    &rooms,
                    leave,
                    &*crate::progress::room_bars(),
                )?)
            })?;
            if json {
                document::print(Kind::RoomsPlan, &p);
            } else {
                print_plan(&p);
            }
            Ok(())
        }
        RoomsCommand::Move {
            rooms_file,
            accounts,
            leave,
            rename_old,
            state,
            json,
        } => {
            let rooms = read_room_list(&rooms_file)?;
            if let Some(state) = &state {
                crate::files::not_an_input(state, "state")?;
            }
            let journal = state.unwrap_or_else(|| {
                PathBuf::from(migrate::journal::default_name(
                    &accounts.old.old_user,
                    &accounts.new_user,
                ))
            });
            let mut options = MoveOptions::new(journal);
            options.leave = leave;
            options.rename_old = rename_old;
            options.cancel = Arc::new(AtomicBool::new(false));
            crate::cleanup::stop_gently(options.cancel.clone());
            let report = with_pair(&accounts, |pair| {
                Ok(moving::run(
                    pair,
                    &rooms,
                    &options,
                    &*crate::progress::room_bars(),
                )?)
            })?;
            if json {
                document::print(Kind::RoomsMove, &report);
            } else {
                print_move(&report);
            }
            if report.stopped {
                eprintln!(
                    "stopped; the journal is {}. To resume, run the same command again:\n  {}",
                    report.journal.display(),
                    resume_command()
                );
                return Err(crate::exit::Failure::new(
                    crate::exit::Exit::Io,
                    "stopped before the end",
                ));
            }
            Ok(())
        }
    }
}

/// This run's command line, quoted for a POSIX shell (it holds no secret: tokens and
/// passwords never come from the command line).
pub fn resume_command() -> String {
    std::env::args()
        .map(|a| {
            let plain = !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "@:._/=+,-".contains(c));
            if plain {
                a
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The rooms file: a header of comments, then one line per room.
pub fn list_text(listed: &RoomList) -> String {
    migrate::rooms::rooms_file::render(listed)
}

fn print_plan(p: &Plan) {
    println!(
        "Moving {} rooms from {} to {}:",
        p.rooms.len(),
        p.old,
        p.new
    );
    for r in &p.rooms {
        let name = r.facts.name.as_deref().unwrap_or("(no name)");
        println!("\n{}  {}", r.facts.room_id, print::safe(name));
        if r.decision.blockers.is_empty() {
            let steps: Vec<String> = r.decision.steps.iter().map(ToString::to_string).collect();
            println!(
                "  steps: {}",
                if r.done() {
                    "none (already moved)".into()
                } else {
                    steps.join(", ")
                }
            );
        }
        for b in &r.decision.blockers {
            println!(
                "  BLOCKED: {}\n    what to do: {}",
                print::safe(&b.reason),
                print::safe(&b.advice)
            );
        }
        for n in &r.decision.notes {
            println!("  note: {}", print::safe(n));
        }
        println!("  history: {}", r.history_verdict);
    }
    let e = &p.estimate;
    let blocked = p
        .rooms
        .iter()
        .filter(|r| !r.decision.blockers.is_empty())
        .count();
    println!(
        "\n{} rooms can move, {blocked} blocked; {} invites, {} joins ({} into rooms the new server is not in yet), {} events from the old account.",
        p.rooms.len() - blocked, e.invites, e.joins, e.remote_joins, e.old_events
    );
    println!(
        "Expected duration at stock Synapse rate limits (assumed; your servers may differ): {}",
        plan::human_duration(e.seconds)
    );
    for (limiter, secs) in &e.limiters {
        println!("  {:>9}  {limiter}", plan::human_duration(*secs));
    }
    if e.seconds > 3600 {
        println!("{}", plan::speed_up_advice(&p.old));
    }
}

fn print_move(r: &MoveReport) {
    let count = |s: Status| r.rooms.iter().filter(|o| o.status == s).count();
    println!(
        "{} -> {}: {} moved, {} already moved, {} partly, {} blocked, {} failed, {} not done ({:.0} s, {} waits{})",
        r.old, r.new, count(Status::Moved), count(Status::AlreadyMoved), count(Status::Partial),
        count(Status::Blocked), count(Status::Failed), count(Status::NotDone), r.seconds, r.waits,
        match r.renewals {
            0 => String::new(),
            n => format!(", access tokens renewed {n} times"),
        }
    );
    for o in &r.rooms {
        let name = print::safe(o.name.as_deref().unwrap_or("(no name)"));
        let status = serde_json::to_value(o.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        println!(
            "\n{}  {name}\n  {status}{}",
            o.room_id,
            if o.done.is_empty() {
                String::new()
            } else {
                format!(": {}", o.done.join(", "))
            }
        );
        for why in &o.reasons {
            println!("  why: {}", print::safe(why));
        }
        for a in &o.advice {
            println!("  what to do: {}", print::safe(a));
        }
        if let Some(s) = &o.stayed {
            println!("  the old account stays: {}", print::safe(s));
        }
        if !o.history.as_str().is_empty() {
            println!("  history: {}", o.history);
        }
        for p in o.probes.iter().filter(|p| p.visible != p.expected_visible) {
            println!(
                "  history check: {} was expected {} but is {}",
                p.event_id,
                vis(p.expected_visible),
                vis(p.visible)
            );
        }
    }
    if !r.direct_added.is_empty() {
        println!(
            "\nm.direct of {}: added {} DM(s)",
            r.new,
            r.direct_added.len()
        );
    }
    if let Some(name) = &r.renamed {
        println!("old account renamed to {:?}", print::safe(name));
    }
}

fn vis(v: bool) -> &'static str {
    if v {
        "visible"
    } else {
        "hidden"
    }
}
