//! `matrix-transplant direct ...`: each subcommand resolves its arguments, makes one
//! library call (`migrate::direct::build`, `m_direct::merge`, `m_direct::check`), and
//! prints the report.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use m_direct::build::Accounts;
use m_direct::check::{check, Finding};
use m_direct::merge::merge;
use migrate::direct::{self, MovingRooms};
use serde::Serialize;

use crate::args::{user_id, OutArgs, ReadArgs};
use crate::document::{self, Kind};
use crate::exit::{self, Exit, Failure, Outcome};
use crate::files::{names, read_direct_map, read_room_list, Output, Sources};
use crate::print;

#[derive(Subcommand)]
pub enum DirectCommand {
    /// The new account's m.direct: each moving DM under the peer the old account had.
    Build {
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
    },
    /// Merge m.direct maps: per user, the union of their rooms (earlier files first).
    Merge {
        /// The maps.
        #[arg(required = true, num_args = 1..)]
        files: Vec<PathBuf>,
        /// Print the report as JSON on standard output (needs -o).
        #[arg(long, requires = "output")]
        json: bool,
        #[command(flatten)]
        out: OutArgs,
    },
    /// Find what is wrong in an m.direct map; with --fix, write a cleaned copy.
    Check {
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
    },
}

pub fn run(cmd: DirectCommand) -> Outcome {
    match cmd {
        DirectCommand::Build {
            from,
            rooms_file,
            rooms_from_export,
            read,
            old,
            new,
            json,
            out,
        } => {
            let moving = Moving {
                rooms_file,
                rooms_from_export,
                read,
            };
            build(&from, moving, Accounts { old, new }, json, &out)
        }
        DirectCommand::Merge { files, json, out } => merge_maps(&files, json, &out),
        DirectCommand::Check {
            file,
            own,
            fix,
            json,
            out,
        } => check_map(&file, own.as_deref(), fix, json, &out),
    }
}

/// Where `direct build` takes the moving rooms from.
struct Moving {
    rooms_file: Option<PathBuf>,
    rooms_from_export: Option<PathBuf>,
    read: ReadArgs,
}

fn build(from: &Path, moving: Moving, accounts: Accounts, json: bool, out: &OutArgs) -> Outcome {
    let output = Output::plan(out.output.as_deref(), out.force, false, "output")?;
    let map = read_direct_map(from)?;
    let (rooms, export_name) = match (&moving.rooms_file, &moving.rooms_from_export) {
        (Some(path), _) => (MovingRooms::List(read_room_list(path)?), vec![]),
        (None, Some(export)) => {
            let source = Sources::one(export, moving.read.passphrase_file.as_deref())?;
            let rooms = MovingRooms::Export(source, moving.read.limits.read_options());
            (rooms, names(std::slice::from_ref(export)))
        }
        (None, None) => {
            return Err(Failure::new(
                Exit::Usage,
                "give --rooms-file or --rooms-from-export",
            ))
        }
    };
    let built = direct::build(&map, rooms, &accounts).map_err(|e| exit::job(e, &export_name))?;
    output.write(built.map.to_pretty_json().as_bytes())?;
    if json {
        document::print(Kind::DirectBuild, &built.report);
    }
    print::direct::direct_build(&built.report, built.moving_rooms, &output.describe());
    Ok(())
}

#[derive(Serialize, schemars::JsonSchema)]
pub(crate) struct MergeJson<'a> {
    users: usize,
    #[serde(flatten)]
    report: &'a m_direct::merge::MergeReport,
}

fn merge_maps(files: &[PathBuf], json: bool, out: &OutArgs) -> Outcome {
    let output = Output::plan(out.output.as_deref(), out.force, false, "output")?;
    let maps = files
        .iter()
        .map(|f| read_direct_map(f))
        .collect::<Outcome<Vec<_>>>()?;
    let (merged, report) = merge(&maps);
    output.write(merged.to_pretty_json().as_bytes())?;
    if json {
        document::print(
            Kind::DirectMerge,
            &MergeJson {
                users: merged.len(),
                report: &report,
            },
        );
    }
    crate::note!(
        "merged {} maps: {} users -> {}",
        maps.len(),
        merged.len(),
        output.describe()
    );
    for k in &report.replaced_non_lists {
        crate::note!(
            "  {k:?}: a value that was not a list was replaced by the list from another file"
        );
    }
    Ok(())
}

#[derive(Serialize, schemars::JsonSchema)]
pub(crate) struct CheckJson<'a> {
    findings: &'a [Finding],
    fixable: usize,
}

fn check_map(file: &Path, own: Option<&str>, fix: bool, json: bool, out: &OutArgs) -> Outcome {
    let output = fix
        .then(|| Output::plan(out.output.as_deref(), out.force, false, "output"))
        .transpose()?;
    let map = read_direct_map(file)?;
    let (findings, clean) = check(&map, own);
    let fixable = findings.iter().filter(|f| f.is_fixable()).count();
    if json {
        document::print(
            Kind::DirectCheck,
            &CheckJson {
                findings: &findings,
                fixable,
            },
        );
    }
    for f in &findings {
        crate::note!("  {f}");
    }
    match output {
        Some(output) => {
            output.write(clean.to_pretty_json().as_bytes())?;
            crate::note!(
                "{fixable} problems fixed; cleaned map ({} users) written to {}",
                clean.len(),
                output.describe()
            );
            Ok(())
        }
        None if fixable > 0 => Err(Failure::new(
            Exit::Invalid,
            format!(
                "{}: {fixable} problems found (use --fix -o OUT to write a cleaned copy)",
                file.display()
            ),
        )),
        None => {
            crate::note!(
                "{}: no problems found ({} users)",
                file.display(),
                map.len()
            );
            Ok(())
        }
    }
}
