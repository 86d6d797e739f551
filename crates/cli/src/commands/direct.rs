//! `matrix-transplant direct ...`: the m.direct DM list, no account needed. Each
//! subcommand resolves its arguments, makes one library call (`migrate::direct::build`,
//! `m_direct::merge`, `m_direct::check`) and prints the report.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use m_direct::build::Accounts;
use migrate::direct::{self, MovingRooms};

use crate::args::{user_id, OutArgs, ReadArgs};
use crate::document::{self, Kind};
use crate::exit::{self, Outcome};
use crate::files::{names, read_direct_map, read_room_list, Output, Sources};
use crate::print;

#[derive(Subcommand)]
pub enum DirectCommand {
    /// The new account's m.direct: each moving DM under the peer the old account had.
    Build(BuildArgs),
    /// Merge m.direct maps: per user, the union of their rooms (earlier files first).
    Merge(MergeArgs),
    /// Find what is wrong in an m.direct map; with --fix, write a cleaned copy.
    Check(CheckArgs),
}

#[derive(Args)]
pub struct BuildArgs {
    /// The old account's m.direct (content, or the whole event from /devtools).
    #[arg(long, value_name = "OLD.json")]
    from: PathBuf,
    /// The rooms that move: one per line, a JSON list, or `keys inspect --json` output.
    #[arg(
        long,
        value_name = "PATH",
        required_unless_present = "rooms_from_export"
    )]
    rooms_file: Option<PathBuf>,
    /// Take the rooms that move from a key export (e.g. the output of `keys filter`).
    #[arg(long, value_name = "EXPORT", conflicts_with = "rooms_file")]
    rooms_from_export: Option<PathBuf>,
    #[command(flatten)]
    read: ReadArgs,
    /// The old account's user ID.
    #[arg(long, value_name = "@old:server", value_parser = user_id)]
    old: String,
    /// The new account's user ID.
    #[arg(long, value_name = "@new:server", value_parser = user_id)]
    new: String,
    /// Print the report as JSON on standard output (needs -o).
    #[arg(long, requires = "output")]
    json: bool,
    #[command(flatten)]
    out: OutArgs,
}

#[derive(Args)]
pub struct MergeArgs {
    /// The maps.
    #[arg(required = true, num_args = 1..)]
    files: Vec<PathBuf>,
    /// Print the report as JSON on standard output (needs -o).
    #[arg(long, requires = "output")]
    json: bool,
    #[command(flatten)]
    out: OutArgs,
}

#[derive(Args)]
pub struct CheckArgs {
    /// The map.
    file: PathBuf,
    /// The account's own user ID (to find self entries).
    #[arg(long = "self", value_name = "@me:server")]
    own: Option<String>,
    /// Write the cleaned map (needs -o).
    #[arg(long, requires = "output")]
    fix: bool,
    /// Print the findings as JSON on standard output.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    out: OutArgs,
}

/// Runs one `direct` subcommand.
pub fn run(cmd: DirectCommand) -> Outcome {
    match cmd {
        DirectCommand::Build(a) => build(a),
        DirectCommand::Merge(a) => merge(a),
        DirectCommand::Check(a) => check(a),
    }
}

impl BuildArgs {
    /// The rooms that move, and the export's name for errors when they come from one.
    fn moving(&self) -> Outcome<(MovingRooms<crate::files::ExportReader>, Vec<String>)> {
        match (&self.rooms_file, &self.rooms_from_export) {
            (Some(path), _) => Ok((MovingRooms::List(read_room_list(path)?), vec![])),
            (None, Some(export)) => {
                let source = Sources::one(export, self.read.passphrase_file.as_deref())?;
                let rooms = MovingRooms::Export(source, self.read.limits.read_options());
                Ok((rooms, names(std::slice::from_ref(export))))
            }
            (None, None) => unreachable!("clap requires --rooms-file or --rooms-from-export"),
        }
    }
}

fn build(a: BuildArgs) -> Outcome {
    let output = Output::plan(a.out.output.as_deref(), a.out.force, false, "output")?;
    let map = read_direct_map(&a.from)?;
    let (rooms, export_name) = a.moving()?;
    let accounts = Accounts {
        old: a.old,
        new: a.new,
    };
    let built = direct::build(&map, rooms, &accounts).map_err(|e| exit::job(e, &export_name))?;
    output.write(built.map.to_pretty_json().as_bytes())?;
    if a.json {
        document::print(Kind::DirectBuild, &built.report);
    }
    print::direct::direct_build(&built.report, built.moving_rooms, &output.describe());
    Ok(())
}

fn merge(a: MergeArgs) -> Outcome {
    let output = Output::plan(a.out.output.as_deref(), a.out.force, false, "output")?;
    let maps = a
        .files
        .iter()
        .map(|f| read_direct_map(f))
        .collect::<Outcome<Vec<_>>>()?;
    let (merged, report) = m_direct::merge::merge(&maps);
    output.write(merged.to_pretty_json().as_bytes())?;
    if a.json {
        let users = merged.len();
        document::print(
            Kind::DirectMerge,
            &document::DirectMerge {
                users,
                report: &report,
            },
        );
    }
    print::direct::merged(maps.len(), merged.len(), &report, &output.describe());
    Ok(())
}

fn check(a: CheckArgs) -> Outcome {
    let output = a
        .fix
        .then(|| Output::plan(a.out.output.as_deref(), a.out.force, false, "output"))
        .transpose()?;
    let map = read_direct_map(&a.file)?;
    let (findings, clean) = m_direct::check::check(&map, a.own.as_deref());
    let fixable = findings.iter().filter(|f| f.is_fixable()).count();
    if a.json {
        document::print(
            Kind::DirectCheck,
            &document::DirectCheck {
                findings: &findings,
                fixable,
            },
        );
    }
    for f in &findings {
        crate::note!("  {f}");
    }
    if let Some(output) = &output {
        output.write(clean.to_pretty_json().as_bytes())?;
    }
    print::direct::checked(&a.file, map.len(), (fixable, clean.len()), output.as_ref())
}
