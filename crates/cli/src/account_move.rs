//! `matrix-transplant move init|run|status`: the whole move from one plan file. `init`
//! writes the plan and the rooms file; `run` resolves the plan's files and logins, makes
//! one `migrate::account_move::run` call, writes the report beside the plan and prints
//! it; `status` reads the journal alone.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::Subcommand;
use key_export::ReadOptions;
use migrate::account_move::{self, status, CopyWhat, Ending, KeySources, Report, Request};
use migrate::plan_file::{AccountPlan, MovePlan, PlanError, TemplateAccount};
use migrate::rooms::list;
use migrate::rooms::moving::MoveOptions;

use crate::args::{user_id, LoginKind};
use crate::document::{self, Kind};
use crate::exit::{Exit, Failure, Outcome};
use crate::files::{read_room_list, Output, Sources};
use crate::rooms::{connect, list_text, with_sessions, CommonArgs, Side};
use crate::{print, secrets};

#[derive(Subcommand)]
pub enum MoveCommand {
    /// Write a commented plan (move.toml) and, beside it, the rooms file listing every room
    /// of the old account (delete the lines of the rooms that stay).
    Init {
        /// The old account's user ID.
        #[arg(long, value_name = "@old:server", value_parser = user_id)]
        old: String,
        /// The new account's user ID.
        #[arg(long, value_name = "@new:server", value_parser = user_id)]
        new: String,
        /// The plan to write.
        #[arg(short, long, value_name = "PATH", default_value = "move.toml")]
        output: PathBuf,
        /// Replace a plan that exists.
        #[arg(long)]
        force: bool,
        /// The old account's homeserver URL (else found from --old); written into the plan.
        #[arg(long, value_name = "URL")]
        old_homeserver: Option<String>,
        /// The new account's homeserver URL (else found from --new); written into the plan.
        #[arg(long, value_name = "URL")]
        new_homeserver: Option<String>,
        /// File holding the old account's access token (to list its rooms; written into the
        /// plan). Else $MATRIX_OLD_ACCESS_TOKEN, else the tool logs in.
        #[arg(long, value_name = "PATH")]
        old_token_file: Option<PathBuf>,
        /// File holding the new account's access token, written into the plan.
        #[arg(long, value_name = "PATH")]
        new_token_file: Option<PathBuf>,
        /// How the old account logs in to list its rooms when no token is given.
        #[arg(long, value_enum, value_name = "HOW", default_value_t = LoginKind::Auto)]
        old_login: LoginKind,
        /// The old account's identity provider, when its server has several.
        #[arg(long, value_name = "ID")]
        old_idp: Option<String>,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Run the move the plan describes, phase by phase (keys, rooms and DMs, account data,
    /// rename, leave), each skipped when done; resumable (run it again). The report goes
    /// beside the plan (PLAN.report.md and .json).
    Run {
        /// The plan (move.toml).
        plan: PathBuf,
        /// Read everything and print the whole plan; write nothing anywhere.
        #[arg(long)]
        dry_run: bool,
        /// Print the report as JSON instead of Markdown.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Where a move stands, from its journal (no network).
    Status {
        /// The plan (move.toml).
        plan: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// The files a plan's runs keep beside it: the journal and the two reports.
struct Beside {
    journal: PathBuf,
    markdown: PathBuf,
    json: PathBuf,
}

impl Beside {
    fn of(plan: &Path) -> Self {
        let stem = plan
            .file_stem()
            .map_or_else(|| "move".into(), |s| s.to_string_lossy().into_owned());
        let at = |suffix: &str| plan.with_file_name(format!("{stem}.{suffix}"));
        Beside {
            journal: at("journal.jsonl"),
            markdown: at("report.md"),
            json: at("report.json"),
        }
    }
}

fn read_plan(path: &Path) -> Outcome<MovePlan> {
    MovePlan::read(path).map_err(|e| {
        let exit = match e {
            PlanError::Io { .. } => Exit::Io,
            _ => Exit::Format,
        };
        Failure::new(exit, e.to_string())
    })
}

fn login_kind(a: &AccountPlan) -> LoginKind {
    use migrate::plan_file::PlanLogin;
    match (a.token_file.is_some(), a.login) {
        (true, _) => LoginKind::Token,
        (_, PlanLogin::OAuth) => LoginKind::Oauth,
        (_, PlanLogin::Sso) => LoginKind::Sso,
        (_, PlanLogin::Password) => LoginKind::Password,
        (_, PlanLogin::Ask) => LoginKind::Auto,
    }
}

fn side<'a>(a: &'a AccountPlan, old: bool) -> Side<'a> {
    let (flags, env, hs) = if old {
        (
            ("[old] token_file", "[old] user", "[old] login"),
            crate::rooms::OLD_TOKEN_ENV,
            "[old] homeserver",
        )
    } else {
        (
            ("[new] token_file", "[new] user", "[new] login"),
            crate::rooms::NEW_TOKEN_ENV,
            "[new] homeserver",
        )
    };
    Side {
        homeserver: a.homeserver.as_deref(),
        user: &a.user,
        token_file: a.token_file.as_deref(),
        login: secrets::Login {
            kind: login_kind(a),
            idp: a.idp.as_deref(),
            flags,
            token_env: env,
        },
        homeserver_flag: hs,
    }
}

pub fn run(cmd: MoveCommand) -> Outcome {
    match cmd {
        MoveCommand::Init {
            old,
            new,
            output,
            force,
            old_homeserver,
            new_homeserver,
            old_token_file,
            new_token_file,
            old_login,
            old_idp,
            common,
        } => init(
            &output,
            force,
            &TemplateAccount {
                user: &old,
                homeserver: old_homeserver.as_deref(),
                token_file: old_token_file.as_deref(),
            },
            &TemplateAccount {
                user: &new,
                homeserver: new_homeserver.as_deref(),
                token_file: new_token_file.as_deref(),
            },
            old_login,
            old_idp.as_deref(),
            &common,
        ),
        MoveCommand::Run {
            plan,
            dry_run,
            json,
            common,
        } => move_run(&plan, dry_run, json, &common),
        MoveCommand::Status { plan, json } => {
            let p = read_plan(&plan)?;
            let rooms = read_room_list(&p.rooms_file)?;
            let pair = (p.old.user.as_str(), p.new.user.as_str());
            let s = status::status(&Beside::of(&plan).journal, pair, &rooms)
                .map_err(|e| Failure::new(Exit::Io, e.to_string()))?;
            if json {
                document::print(Kind::MoveStatus, &s);
            } else {
                print_status(&p, &s);
            }
            Ok(())
        }
    }
}

fn init(
    output: &Path,
    force: bool,
    old: &TemplateAccount<'_>,
    new: &TemplateAccount<'_>,
    old_login: LoginKind,
    old_idp: Option<&str>,
    common: &CommonArgs,
) -> Outcome {
    if old.user == new.user {
        return Err(Failure::new(
            Exit::Usage,
            format!("--old and --new are the same account ({})", old.user),
        ));
    }
    writable_folder(output)?;
    let plan_out = Output::plan(Some(output), force, false, "output")?;
    let rooms_path = output.with_file_name("rooms.txt");
    // The rooms file is the user's once edited: never written over.
    let rooms_out = if rooms_path.exists() {
        None
    } else {
        Some(Output::plan(Some(&rooms_path), false, false, "rooms")?)
    };
    if let Some(rooms_out) = rooms_out {
        let session = connect(
            &Side {
                homeserver: old.homeserver,
                user: old.user,
                token_file: old.token_file,
                login: secrets::Login {
                    kind: old_login,
                    idp: old_idp,
                    flags: ("--old-token-file", "--old", "--old-login"),
                    token_env: crate::rooms::OLD_TOKEN_ENV,
                },
                homeserver_flag: "--old-homeserver",
            },
            common,
        )?;
        let listed = list::list(&session, &*crate::progress::room_bars());
        crate::cleanup::set_logout(None);
        let _ = session.close();
        let listed = listed?;
        rooms_out.write(list_text(&listed).as_bytes())?;
        crate::note!(
            "{} rooms of {} -> {}: delete the lines of the rooms that stay",
            listed.rooms.len(),
            listed.user_id,
            rooms_path.display()
        );
    } else {
        crate::note!(
            "{} exists and is kept (your edits stay); `matrix-transplant rooms list` writes a fresh one",
            rooms_path.display()
        );
    }
    // Token files named relative to where the command runs are written as absolute paths,
    // so the plan reads them from anywhere.
    let absolute =
        |p: Option<&Path>| p.map(|p| std::path::absolute(p).unwrap_or_else(|_| p.to_owned()));
    let (old_token, new_token) = (absolute(old.token_file), absolute(new.token_file));
    let text = migrate::plan_file::template(
        &TemplateAccount {
            token_file: old_token.as_deref(),
            ..*old
        },
        &TemplateAccount {
            token_file: new_token.as_deref(),
            ..*new
        },
    );
    plan_out.write(text.as_bytes())?;
    crate::note!(
        "plan -> {}: edit it (key exports, recovery key files, leave, rename), then\n  \
         matrix-transplant move run --dry-run {0}\n  matrix-transplant move run {0}",
        output.display()
    );
    Ok(())
}

/// Makes the plan's folder (mode 0700: it will hold token and key files) when it does not
/// exist, and checks that a file can be made in it, before any network work.
fn writable_folder(plan: &Path) -> Outcome {
    use std::os::unix::fs::DirBuilderExt;
    let dir = match plan.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let failed = |e: std::io::Error| {
        Failure::new(
            Exit::Io,
            format!(
                "cannot write the plan into {}: {e}; nothing was read or written (choose another folder with -o)",
                dir.display()
            ),
        )
    };
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(failed)?;
    }
    tempfile::Builder::new()
        .prefix(".matrix-transplant-")
        .tempfile_in(dir)
        .map_err(failed)?;
    Ok(())
}

fn move_run(plan_path: &Path, dry_run: bool, json: bool, common: &CommonArgs) -> Outcome {
    let plan = read_plan(plan_path)?;
    let rooms = read_room_list(&plan.rooms_file)?;
    let beside = Beside::of(plan_path);
    // Checked before any work: the reports may replace earlier ones, never an input.
    let outputs = if dry_run {
        None
    } else {
        Some((
            Output::plan(Some(&beside.markdown), true, false, "report")?,
            Output::plan(Some(&beside.json), true, false, "report")?,
        ))
    };
    let exports = plan
        .keys
        .exports
        .iter()
        .map(|e| Sources::one(&e.file, Some(&e.passphrase_file)))
        .collect::<Outcome<Vec<_>>>()?;
    let names: Vec<String> = exports.iter().map(|s| s.name.clone()).collect();
    let recovery = |given: Option<(&Path, bool)>, whose: &str| {
        given
            .map(|(file, phrase)| match phrase {
                true => secrets::recovery(None, Some(file), whose),
                false => secrets::recovery(Some(file), None, whose),
            })
            .transpose()
    };
    let old_recovery = recovery(plan.keys.old_recovery(), &plan.old.user)?;
    let new_recovery = recovery(plan.keys.new_recovery(), &plan.new.user)?;
    let mut options = MoveOptions::new(beside.journal.clone());
    options.leave = plan.leave;
    options.rename_old = plan.rename_old.clone();
    options.cancel = Arc::new(AtomicBool::new(false));
    crate::cleanup::stop_gently(options.cancel.clone());
    let request = Request {
        rooms,
        keys: KeySources {
            exports,
            read: ReadOptions::default(),
            old_recovery,
            new_recovery,
        },
        copy: CopyWhat {
            ignored: plan.copy.ignored_users,
            push_rules: plan.copy.push_rules,
            profile: plan.copy.profile,
        },
        options,
        dry_run,
    };
    let report = with_sessions(
        &side(&plan.old, true),
        &side(&plan.new, false),
        common,
        |pair| {
            account_move::run(pair, request, &*crate::progress::room_bars())
                .map_err(|e| crate::exit::job(e, &names))
        },
    )?;
    if let Some((md, js)) = outputs {
        md.write(report.markdown().as_bytes())?;
        js.write(document::text(Kind::MoveRun, &report).as_bytes())?;
    }
    if json {
        document::print(Kind::MoveRun, &report);
    } else {
        for line in report.markdown().lines() {
            println!("{}", print::safe(line));
        }
    }
    ending(&report, &beside, plan_path)
}

/// The exit status of a run: 0 complete, 8 something left to do, 1 stopped.
fn ending(report: &Report, beside: &Beside, plan: &Path) -> Outcome {
    if !report.dry_run {
        crate::note!(
            "report -> {} and {}",
            beside.markdown.display(),
            beside.json.display()
        );
    }
    match report.ending {
        Ending::Complete => Ok(()),
        Ending::LeftToDo => Err(Failure::new(
            Exit::LeftToDo,
            format!(
                "{} left to do by hand, or a step failed: see the report (a rerun of `matrix-transplant move run {}` retries what failed)",
                match report.by_hand.len() {
                    0 => "nothing".to_owned(),
                    n => format!("{n} thing(s)"),
                },
                plan.display()
            ),
        )),
        Ending::Stopped => {
            eprintln!(
                "stopped; the journal is {}. To resume, run the same command again:\n  {}",
                beside.journal.display(),
                crate::rooms::resume_command()
            );
            Err(Failure::new(Exit::Io, "stopped before the end"))
        }
    }
}

fn print_status(plan: &MovePlan, s: &status::MoveStatus) {
    println!("Move {} -> {}", plan.old.user, plan.new.user);
    if !s.started {
        println!("not started (no journal yet)");
        return;
    }
    let phase = |name: &str, done: &Option<String>| match done {
        Some(d) => println!("  {name}: done ({d})"),
        None => println!("  {name}: not done"),
    };
    phase("keys", &s.keys);
    let moved = s
        .rooms
        .iter()
        .filter(|r| matches!(r.step, "moved" | "left"))
        .count();
    println!("  rooms: {moved} of {} moved", s.rooms.len());
    for r in &s.rooms {
        println!("    {}  {}", r.room_id, r.step);
    }
    println!("  DMs: {}", if s.direct { "merged" } else { "not done" });
    phase("account data", &s.account_data);
    if let Some(n) = &s.renamed {
        println!("  old account renamed to {:?}", print::safe(n));
    }
    match &s.finished {
        Some(f) => println!("a run went to the end: {f}"),
        None => println!("no run has gone to the end yet: `matrix-transplant move run` resumes"),
    }
    if !s.by_hand.is_empty() {
        println!("left to do by hand:");
        for b in &s.by_hand {
            println!("  - {}", print::safe(&b.line()));
        }
    }
}
