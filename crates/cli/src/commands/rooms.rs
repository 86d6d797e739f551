//! `matrix-transplant rooms list|plan|move`: the old account's rooms, the move planned,
//! the move done. Each resolves its arguments and secrets, opens the sessions, makes one
//! `migrate::rooms` call, closes the sessions and prints the report.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::{Args, Subcommand};
use migrate::rooms::moving::{self, MoveOptions};
use migrate::rooms::{list, plan, rooms_file};

use crate::accounts::{with_pair, with_session, Side};
use crate::args::{CommonArgs, OldArgs, OutArgs, TwoAccounts};
use crate::document::{self, Kind};
use crate::exit::Outcome;
use crate::files::{read_room_list, Output};
use crate::{print, progress};

#[derive(Subcommand)]
pub enum RoomsCommand {
    /// Every room the OLD account is in, one line each in the rooms-file format: delete the
    /// lines of the rooms that stay, and the file drives `keys filter`, `direct build`,
    /// `rooms plan` and `rooms move`.
    List(ListArgs),
    /// What moving each room of the rooms file takes (read-only): the steps, the blockers
    /// and what to do about them, the history the new account will not see, the duration.
    Plan(PlanArgs),
    /// Move the rooms: invite where needed, join, the same power, tags, the DMs into the new
    /// account's m.direct; resumable (run the same command again).
    Move(MoveArgs),
}

#[derive(Args)]
pub struct ListArgs {
    #[command(flatten)]
    old: OldArgs,
    #[command(flatten)]
    common: CommonArgs,
    /// Print JSON instead of the rooms file.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    out: OutArgs,
}

#[derive(Args)]
pub struct PlanArgs {
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
}

#[derive(Args)]
pub struct MoveArgs {
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
}

/// Runs one `rooms` subcommand.
pub fn run(cmd: RoomsCommand) -> Outcome {
    match cmd {
        RoomsCommand::List(a) => list(a),
        RoomsCommand::Plan(a) => plan(a),
        RoomsCommand::Move(a) => move_rooms(a),
    }
}

fn list(a: ListArgs) -> Outcome {
    let output = Output::plan(a.out.output.as_deref(), a.out.force, false, "output")?;
    let old = Side::old(&a.old, &a.common)?;
    let listed = with_session(&old, |s| Ok(list::list(s, &*progress::room_bars())?))?;
    let text = match a.json {
        true => document::text(Kind::RoomsList, &listed),
        false => rooms_file::render(&listed),
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

fn plan(a: PlanArgs) -> Outcome {
    let rooms = read_room_list(&a.rooms_file)?;
    let (old, new) = a.accounts.sides()?;
    let p = with_pair(&old, &new, |pair| {
        Ok(plan::plan(pair, &rooms, a.leave, &*progress::room_bars())?)
    })?;
    match a.json {
        true => document::print(Kind::RoomsPlan, &p),
        false => print::rooms::plan(&p),
    }
    Ok(())
}

fn move_rooms(a: MoveArgs) -> Outcome {
    let rooms = read_room_list(&a.rooms_file)?;
    let options = a.options()?;
    let (old, new) = a.accounts.sides()?;
    let report = with_pair(&old, &new, |pair| {
        Ok(moving::run(
            pair,
            &rooms,
            &options,
            &*progress::room_bars(),
        )?)
    })?;
    match a.json {
        true => document::print(Kind::RoomsMove, &report),
        false => print::rooms::moved(&report),
    }
    match report.stopped {
        true => Err(print::moves::stopped(&report.journal)),
        false => Ok(()),
    }
}

impl MoveArgs {
    /// The move's options: the journal (checked against the inputs), the leaves, the
    /// rename, and a stop flag a signal sets.
    fn options(&self) -> Outcome<MoveOptions> {
        if let Some(state) = &self.state {
            crate::files::not_an_input(state, "state")?;
        }
        let journal = self.state.clone().unwrap_or_else(|| {
            let (old, new) = (&self.accounts.old.old_user, &self.accounts.new_user);
            PathBuf::from(migrate::journal::default_name(old, new))
        });
        let mut options = MoveOptions::new(journal);
        options.leave = self.leave;
        options.rename_old = self.rename_old.clone();
        options.cancel = Arc::new(AtomicBool::new(false));
        crate::cleanup::stop_gently(options.cancel.clone());
        Ok(options)
    }
}
