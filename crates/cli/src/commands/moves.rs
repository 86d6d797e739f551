//! `matrix-transplant move init|run|status`: the whole move from one plan file. `init`
//! writes the plan and the rooms file (`migrate::account_move::init`); `run` turns the plan
//! into the move's request (`account_move::from_plan`), makes one `account_move::run` call,
//! writes the report beside the plan and prints it; `status` reads the journal alone.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::{Args, Subcommand};
use migrate::account_move::from_plan::{self, Open, PlanFiles};
use migrate::account_move::init::{self, InitRequest, PlanAccount};
use migrate::account_move::{self, status};
use migrate::plan_file::{MovePlan, PlanError};
use migrate::verify;
use online::backup::Recovery;

use crate::accounts::{self, with_pair, with_session, Side};
use crate::args::{user_id, CommonArgs, LoginKind};
use crate::document::{self, Kind};
use crate::exit::{Exit, Failure, Outcome};
use crate::files::{read_room_list, ExportSource, Output, Sources};
use crate::{print, progress, secrets};

#[derive(Subcommand)]
pub enum MoveCommand {
    /// Write a commented plan (move.toml) and, beside it, the rooms file listing every room
    /// of the old account (delete the lines of the rooms that stay).
    Init(InitArgs),
    /// Run the move the plan describes, phase by phase (keys, rooms and DMs, account data,
    /// rename, leave), each skipped when done; resumable (run it again). The report goes
    /// beside the plan (PLAN.report.md and .json).
    Run(RunArgs),
    /// Where a move stands, from its journal (no network); with --verify, the result
    /// checked as the new account too.
    Status(StatusArgs),
}

#[derive(Args)]
pub struct InitArgs {
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
}

#[derive(Args)]
pub struct RunArgs {
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
}

#[derive(Args)]
pub struct StatusArgs {
    /// The plan (move.toml).
    plan: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Also check the result as the new account (no device made, nothing written): is it
    /// in each room on both servers, and how many of the encrypted messages it can see
    /// have their keys in its backup.
    #[arg(long)]
    verify: bool,
    #[command(flatten)]
    common: CommonArgs,
}

/// Runs one `move` subcommand.
pub fn run(cmd: MoveCommand) -> Outcome {
    match cmd {
        MoveCommand::Init(a) => init(a),
        MoveCommand::Run(a) => move_run(a),
        MoveCommand::Status(a) => move_status(a),
    }
}

fn init(a: InitArgs) -> Outcome {
    a.check()?;
    let request = a.request();
    let events = progress::room_bars();
    // The rooms file is the user's once edited: never written over, nor listed again.
    let done = if init::rooms_file_of(&a.output).exists() {
        init::init(&request, None, &*events).map_err(init_failure)?
    } else {
        with_session(&a.old_side()?, |s| {
            init::init(&request, Some(s), &*events).map_err(init_failure)
        })?
    };
    print::moves::initialised(&done, &a.old);
    Ok(())
}

impl InitArgs {
    /// Before any network work: two accounts, a folder to write in (made 0700), and the
    /// plan and rooms file not written over.
    fn check(&self) -> Outcome {
        if self.old == self.new {
            let why = format!("--old and --new are the same account ({})", self.old);
            return Err(Failure::new(Exit::Usage, why));
        }
        init::prepare(&self.output)
            .map_err(|e| Failure::new(Exit::Io, format!("{e} (choose another folder with -o)")))?;
        Output::plan(Some(&self.output), self.force, false, "output")?;
        let rooms_file = init::rooms_file_of(&self.output);
        if !rooms_file.exists() {
            Output::plan(Some(&rooms_file), false, false, "rooms")?;
        }
        Ok(())
    }

    fn request(&self) -> InitRequest {
        let account = |user: &str, hs: &Option<String>, token: &Option<PathBuf>| PlanAccount {
            user: user.to_owned(),
            homeserver: hs.clone(),
            token_file: token.clone(),
        };
        InitRequest {
            plan: self.output.clone(),
            replace: self.force,
            old: account(&self.old, &self.old_homeserver, &self.old_token_file),
            new: account(&self.new, &self.new_homeserver, &self.new_token_file),
        }
    }

    /// The old account, to list its rooms.
    fn old_side(&self) -> Outcome<Side> {
        let given = accounts::Given {
            homeserver: self.old_homeserver.as_deref(),
            user: Some(&self.old),
            token_file: self.old_token_file.as_deref(),
            login: accounts::login_method(self.old_login),
            idp: self.old_idp.as_deref(),
        };
        let limits = accounts::long_limits(&self.common);
        Side::new(given, &self.common, limits, &accounts::INIT_OLD)
    }
}

fn init_failure(e: init::InitError) -> Failure {
    match e {
        init::InitError::Folder { .. } => Failure::new(Exit::Io, e.to_string()),
        init::InitError::Job(e) => Failure::from(e),
        init::InitError::Output(e) => Failure::from(e),
    }
}

fn move_run(a: RunArgs) -> Outcome {
    let plan = read_plan(&a.plan)?;
    let rooms = read_room_list(&plan.rooms_file)?;
    let files = PlanFiles::of(&a.plan);
    // Checked before any work: the reports may replace earlier ones, never an input.
    let outputs = reports(&files, a.dry_run)?;
    let cancel = Arc::new(AtomicBool::new(false));
    crate::cleanup::stop_gently(cancel.clone());
    let request = from_plan::request(&plan, rooms, a.dry_run, &files, cancel, &Terminal)?;
    let names: Vec<String> = request
        .keys
        .exports
        .iter()
        .map(|s| s.name.clone())
        .collect();
    let (old, new) = plan_sides(&plan, &a.common)?;
    let report = with_pair(&old, &new, |pair| {
        account_move::run(pair, request, &*progress::room_bars())
            .map_err(|e| crate::exit::job(e, &names))
    })?;
    if let Some((md, js)) = outputs {
        md.write(report.markdown().as_bytes())?;
        js.write(document::text(Kind::MoveRun, &report).as_bytes())?;
    }
    print::moves::report(&report, a.json);
    print::moves::ending(&report, &files, &a.plan)
}

/// The two reports beside the plan (none for a dry run).
fn reports(files: &PlanFiles, dry_run: bool) -> Outcome<Option<(Output, Output)>> {
    if dry_run {
        return Ok(None);
    }
    Ok(Some((
        Output::plan(Some(&files.markdown), true, false, "report")?,
        Output::plan(Some(&files.json), true, false, "report")?,
    )))
}

/// The plan's accounts, reached with `common`'s options.
fn plan_sides(plan: &MovePlan, common: &CommonArgs) -> Outcome<(Side, Side)> {
    let limits = accounts::long_limits(common);
    let old = Side::new(
        accounts::Given::of_plan(&plan.old),
        common,
        limits,
        &accounts::PLAN_OLD,
    )?;
    let new = Side::new(
        accounts::Given::of_plan(&plan.new),
        common,
        limits,
        &accounts::PLAN_NEW,
    )?;
    Ok((old, new))
}

/// The plan's files opened the terminal's way: passphrases and recovery keys from the
/// files the plan names.
struct Terminal;

impl Open for Terminal {
    type Reader = Box<dyn std::io::Read + Send>;
    type Error = Failure;

    fn export(&self, file: &Path, passphrase_file: &Path) -> Outcome<ExportSource> {
        Sources::one(file, Some(passphrase_file))
    }

    fn recovery(&self, file: &Path, phrase: bool, whose: &str) -> Outcome<Recovery> {
        match phrase {
            true => secrets::recovery(None, Some(file), whose),
            false => secrets::recovery(Some(file), None, whose),
        }
    }

    fn confirmer(&self) -> Box<dyn Fn(&str) -> bool + Send + Sync> {
        Box::new(confirm_on_terminal)
    }
}

/// A yes-or-no question at the terminal; no terminal (or anything but yes) is no.
fn confirm_on_terminal(question: &str) -> bool {
    let question = print::safe(question);
    if !secrets::have_tty() {
        eprintln!(
            "{question}\nNo terminal to ask on: no. (allow_invites = \"yes\" in the plan answers \
             yes without asking.)"
        );
        return false;
    }
    secrets::prompt_text(&format!("{question} [y/N] "))
        .is_ok_and(|a| matches!(a.expose().trim().to_lowercase().as_str(), "y" | "yes"))
}

fn move_status(a: StatusArgs) -> Outcome {
    let p = read_plan(&a.plan)?;
    let rooms = read_room_list(&p.rooms_file)?;
    let pair = (p.old.user.as_str(), p.new.user.as_str());
    let mut s = status::status(&PlanFiles::of(&a.plan).journal, pair, &rooms)
        .map_err(|e| Failure::new(Exit::Io, e.to_string()))?;
    if a.verify {
        let (old, new) = plan_sides(&p, &a.common)?;
        s.verification = Some(with_pair(&old, &new, |pair| {
            verify::verify(
                pair,
                &rooms,
                verify::Budget::default(),
                &*progress::room_bars(),
            )
            .map_err(Failure::from)
        })?);
    }
    match a.json {
        true => document::print(Kind::MoveStatus, &s),
        false => print::moves::status(&p, &s),
    }
    Ok(())
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
