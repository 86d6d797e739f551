//! `matrix-transplant direct ...`: argument handling and printing around the m-direct
//! library.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use key_export::inspect;
use m_direct::build::{build, Accounts};
use m_direct::check::check;
use m_direct::ids::{key_kind, KeyKind};
use m_direct::merge::merge;
use m_direct::DirectMap;
use serde::Serialize;

use crate::failure::{Failure, Outcome, FORMAT, INVALID, USAGE};
use crate::files::{read_room_list, read_text, Output};
use crate::keys::{decrypt_file, OutArgs, ReadArgs};
use crate::secrets;

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
        #[arg(long, value_name = "@old:server")]
        old: String,
        /// The new account's user ID.
        #[arg(long, value_name = "@new:server")]
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
        /// Output file for --fix.
        #[arg(short, long, value_name = "PATH")]
        output: Option<PathBuf>,
        /// Replace the output file if it exists.
        #[arg(long)]
        force: bool,
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
            let out = Output::plan(out.output.as_deref(), out.force, false, &[&from])?;
            for (flag, id) in [("--old", &old), ("--new", &new)] {
                if key_kind(id) != KeyKind::User {
                    return Err(Failure::new(
                        USAGE,
                        format!("{flag} {id:?} is not a user ID (@name:server)"),
                    ));
                }
            }
            let map = read_map(&from)?;
            let moving: HashSet<String> = match (&rooms_file, &rooms_from_export) {
                (Some(path), _) => read_room_list(path)?.into_iter().collect(),
                (None, Some(export)) => {
                    let pass = secrets::existing(
                        read.passphrase_file.as_deref(),
                        &export.display().to_string(),
                    )?;
                    let plain = decrypt_file(export, &pass, &read)?;
                    let report = inspect::inspect(&plain)
                        .map_err(|e| Failure::from(e).in_file(&export.display().to_string()))?;
                    report.rooms.into_iter().map(|r| r.room_id).collect()
                }
                (None, None) => unreachable!("clap requires one"),
            };
            let (result, report) = build(&map, &moving, &Accounts { old, new });
            out.write(result.to_pretty_json().as_bytes())?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("report serialises")
                );
            }
            eprintln!(
                "{} of the {} moving rooms are DMs: {} entries written to {}",
                report.dm_rooms,
                moving.len(),
                report.entries,
                out.describe()
            );
            for a in &report.ambiguous {
                eprintln!(
                    "  ambiguous: {} is listed under {} (kept under each)",
                    a.room,
                    a.peers.join(", ")
                );
            }
            for (k, r) in &report.self_entries {
                eprintln!("  left out: {r} under the account itself ({k}); Element would re-guess the peer");
            }
            for k in &report.third_party {
                eprintln!("  kept: {k:?} is a third-party identifier (an invite by email)");
            }
            for k in &report.odd_keys {
                eprintln!("  kept as found: {k:?} is not a user ID");
            }
            for k in &report.not_lists {
                eprintln!("  ignored: {k:?} holds something that is not a list of rooms");
            }
            Ok(())
        }
        DirectCommand::Merge { files, json, out } => {
            let inputs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
            let out = Output::plan(out.output.as_deref(), out.force, false, &inputs)?;
            let maps = files
                .iter()
                .map(|f| read_map(f))
                .collect::<Outcome<Vec<_>>>()?;
            let (merged, report) = merge(&maps);
            out.write(merged.to_pretty_json().as_bytes())?;
            if json {
                #[derive(Serialize)]
                struct J<'a> {
                    users: usize,
                    #[serde(flatten)]
                    report: &'a m_direct::merge::MergeReport,
                }
                let j = J {
                    users: merged.len(),
                    report: &report,
                };
                println!("{}", serde_json::to_string_pretty(&j).expect("serialises"));
            }
            eprintln!(
                "merged {} maps: {} users -> {}",
                maps.len(),
                merged.len(),
                out.describe()
            );
            for k in &report.replaced_non_lists {
                eprintln!("  {k:?}: a value that was not a list was replaced by the list from another file");
            }
            Ok(())
        }
        DirectCommand::Check {
            file,
            own,
            fix,
            json,
            output,
            force,
        } => {
            let out = fix
                .then(|| Output::plan(output.as_deref(), force, false, &[&file]))
                .transpose()?;
            let map = read_map(&file)?;
            let (findings, clean) = check(&map, own.as_deref());
            if json {
                #[derive(Serialize)]
                struct J<'a> {
                    findings: &'a [m_direct::check::Finding],
                    fixable: usize,
                }
                let fixable = findings.iter().filter(|f| f.is_fixable()).count();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&J {
                        findings: &findings,
                        fixable
                    })
                    .expect("serialises")
                );
            }
            for f in &findings {
                eprintln!("  {f}");
            }
            let fixable = findings.iter().filter(|f| f.is_fixable()).count();
            match out {
                Some(out) => {
                    out.write(clean.to_pretty_json().as_bytes())?;
                    eprintln!(
                        "{fixable} problems fixed; cleaned map ({} users) written to {}",
                        clean.len(),
                        out.describe()
                    );
                    Ok(())
                }
                None if fixable > 0 => Err(Failure::new(
                    INVALID,
                    format!(
                        "{}: {fixable} problems found (use --fix -o OUT to write a cleaned copy)",
                        file.display()
                    ),
                )),
                None => {
                    eprintln!(
                        "{}: no problems found ({} users)",
                        file.display(),
                        map.len()
                    );
                    Ok(())
                }
            }
        }
    }
}

fn read_map(path: &Path) -> Outcome<DirectMap> {
    let text = read_text(path)?;
    DirectMap::parse(&text).map_err(|e| Failure::new(FORMAT, format!("{}: {e}", path.display())))
}
