//! `matrix-transplant keys ...`: each subcommand resolves its arguments, makes one call to
//! `key_export::pipeline`, and prints the report.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Subcommand;
use key_export::pipeline::{self, Destination, PipelineError};
use key_export::Rounds;
use migrate::{Event, Stage};
use serde::Serialize;

use crate::args::{self, KeepArgs, OutArgs, ReadArgs};
use crate::document::{self, Kind};
use crate::exit::{self, Exit, Failure, Outcome};
use crate::files::{names, read_secret, Output, Sources};
use crate::print;
use crate::secrets;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Show what an export holds: rounds, sessions per room, duplicates, invalid entries.
    /// Never prints key material.
    Inspect {
        /// The export file (`-` for standard input).
        file: PathBuf,
        #[command(flatten)]
        read: ReadArgs,
        /// Print a JSON report for scripts.
        #[arg(long)]
        json: bool,
        /// List every room (the human report shows the 20 largest).
        #[arg(long)]
        all_rooms: bool,
    },
    /// Decrypt an export to its JSON (the plaintext keys: keep it safe, delete it after).
    Decrypt {
        /// The export file (`-` for standard input).
        file: PathBuf,
        #[command(flatten)]
        read: ReadArgs,
        #[command(flatten)]
        out: OutArgs,
    },
    /// Keep only the keys of the rooms that move (one best copy of each session): a merge
    /// of one export.
    Filter {
        /// The export file (`-` for standard input).
        file: PathBuf,
        /// File with its passphrase (else $MATRIX_TRANSPLANT_PASSPHRASE, else a prompt).
        #[arg(long, value_name = "PATH")]
        passphrase_file: Option<PathBuf>,
        #[command(flatten)]
        keep: KeepArgs,
    },
    /// Merge exports from several devices: one best copy of each session, optionally
    /// only the rooms that move.
    Merge {
        /// The export files.
        #[arg(required = true, num_args = 1..)]
        files: Vec<PathBuf>,
        /// Passphrase file: once for all inputs, or once per input in order.
        #[arg(long, value_name = "PATH")]
        passphrase_file: Vec<PathBuf>,
        #[command(flatten)]
        keep: KeepArgs,
    },
    /// Encrypt a JSON array of sessions into an export Element can import.
    Encrypt {
        /// The JSON file (`-` for standard input).
        file: PathBuf,
        /// File with the new export's passphrase (else $MATRIX_TRANSPLANT_PASSPHRASE, else asked twice).
        #[arg(long, value_name = "PATH")]
        passphrase_file: Option<PathBuf>,
        /// PBKDF2 rounds (Element uses 500000).
        #[arg(long, default_value_t = Rounds::DEFAULT, value_parser = args::rounds, value_name = "N")]
        rounds: Rounds,
        /// Write entries that fail validation too (importers may reject the whole file).
        #[arg(long)]
        allow_invalid: bool,
        #[command(flatten)]
        out: OutArgs,
    },
}

pub fn run(cmd: KeysCommand) -> Outcome {
    match cmd {
        KeysCommand::Filter {
            file,
            passphrase_file,
            keep,
        } => filter_merge(&[file], passphrase_file.as_slice(), &keep),
        KeysCommand::Merge {
            files,
            passphrase_file,
            keep,
        } => filter_merge(&files, &passphrase_file, &keep),
        KeysCommand::Inspect {
            file,
            read,
            json,
            all_rooms,
        } => inspect(&file, &read, json, all_rooms),
        KeysCommand::Decrypt { file, read, out } => decrypt(&file, &read, &out),
        KeysCommand::Encrypt {
            file,
            passphrase_file,
            rounds,
            allow_invalid,
            out,
        } => encrypt(
            &file,
            passphrase_file.as_deref(),
            rounds,
            allow_invalid,
            &out,
        ),
    }
}

/// Runs a local job as one stage: its start and end are told to `--progress json` (the
/// bars show only counted stages).
fn staged<T>(stage: Stage, job: impl FnOnce() -> T) -> T {
    let events = crate::progress::bars();
    events.emit(Event::Started { stage, total: None });
    let value = job();
    events.emit(Event::Finished { stage });
    value
}

/// Runs a pipeline job that writes into `output` (a temporary file renamed into place only
/// when the job succeeds); errors name the inputs.
fn into<T>(
    output: &Output,
    names: &[String],
    job: impl FnOnce(&mut dyn Write) -> Result<T, PipelineError>,
) -> Outcome<T> {
    output.write_with(|sink| job(sink).map_err(|e| exit::pipeline(e, names)))
}

fn inspect(file: &Path, read: &ReadArgs, json: bool, all_rooms: bool) -> Outcome {
    let source = Sources::one(file, read.passphrase_file.as_deref())?;
    let name = names(&[file.to_owned()]);
    let report = staged(Stage::ReadExports, || {
        pipeline::inspect(source, &read.limits.read_options())
    })
    .map_err(|e| exit::pipeline(e, &name))?;
    if json {
        document::print(Kind::KeysInspect, &report);
    } else {
        print::keys::inspect_report(file, &report, all_rooms);
    }
    Ok(())
}

fn decrypt(file: &Path, read: &ReadArgs, out: &OutArgs) -> Outcome {
    let output = Output::plan(out.output.as_deref(), out.force, true, "output")?;
    let source = Sources::one(file, read.passphrase_file.as_deref())?;
    let name = names(&[file.to_owned()]);
    let report = into(&output, &name, |sink| {
        staged(Stage::ReadExports, || {
            pipeline::decrypt(source, &read.limits.read_options(), sink).map(|r| r.0)
        })
    })?;
    crate::note!(
        "decrypted {} sessions to {}",
        report.sessions,
        output.describe()
    );
    Ok(())
}

fn encrypt(
    file: &Path,
    passphrase_file: Option<&Path>,
    rounds: Rounds,
    allow_invalid: bool,
    out: &OutArgs,
) -> Outcome {
    let output = Output::plan(out.output.as_deref(), out.force, false, "output")?;
    let json = read_secret(file)?;
    let passphrase = secrets::new(passphrase_file, secrets::PASSPHRASE_ENV, None)?;
    let name = names(&[file.to_owned()]);
    let destination = Destination { passphrase, rounds };
    let report = output.write_with(|sink| {
        staged(Stage::WriteExport, || {
            pipeline::encrypt(&name[0], &json, destination, allow_invalid, sink)
        })
        .map(|r| r.0)
        .map_err(|e| exit::pipeline_with(e, &name, "--allow-invalid writes them anyway"))
    })?;
    crate::note!(
        "encrypted {} sessions to {} ({} rounds)",
        report.sessions,
        output.describe(),
        report.rounds
    );
    Ok(())
}

#[derive(Serialize, schemars::JsonSchema)]
pub(crate) struct JsonSummary<'a> {
    output: String,
    #[serde(flatten)]
    done: &'a pipeline::Finished,
}

fn filter_merge(files: &[PathBuf], pass_files: &[PathBuf], keep: &KeepArgs) -> Outcome {
    let out = &keep.out;
    let output = Output::plan(out.output.as_deref(), out.force, false, "output")?;
    let conflicts_out = keep
        .conflicts
        .as_deref()
        .map(|p| Output::plan(Some(p), out.force, false, "conflicts"))
        .transpose()?;
    let options = keep.merge_options()?;
    let sources = Sources::open(files, pass_files)?;
    let passphrase = secrets::new(
        keep.new_export.out_passphrase_file.as_deref(),
        secrets::OUT_PASSPHRASE_ENV,
        Some(&sources.first_passphrase()),
    )?;
    let destination = Destination {
        passphrase,
        rounds: keep.new_export.rounds,
    };
    let names = names(files);
    let started = Instant::now();
    let read = keep.limits.read_options();
    let events = crate::progress::bars();
    let inputs = files.len() as u64;
    events.emit(Event::Started {
        stage: Stage::ReadExports,
        total: Some(inputs),
    });
    let observe = |reached: pipeline::Reached| match reached {
        pipeline::Reached::Decrypted { .. } => events.emit(Event::Progress {
            stage: Stage::ReadExports,
            done: inputs,
            total: inputs,
        }),
        pipeline::Reached::Merged { sessions } => {
            events.emit(Event::Finished {
                stage: Stage::ReadExports,
            });
            events.emit(Event::Started {
                stage: Stage::WriteExport,
                total: Some(sessions as u64),
            });
        }
        pipeline::Reached::Written => events.emit(Event::Finished {
            stage: Stage::WriteExport,
        }),
    };
    let done = into(&output, &names, |sink| {
        pipeline::filter_merge_observed(
            sources.into_vec(),
            destination,
            sink,
            &read,
            &options,
            &observe,
        )
        .map(|r| r.0)
    })?;
    if let Some(c) = conflicts_out {
        let json = serde_json::to_vec_pretty(&done.conflicts)
            .map_err(|e| Failure::new(Exit::Io, e.to_string()))?;
        c.write(&json)?;
    }
    if keep.json {
        document::print(
            Kind::KeysMerge,
            &JsonSummary {
                output: output.describe(),
                done: &done,
            },
        );
    }
    print::keys::merge_summary(&done, &names, &output.describe());
    print::elapsed(started.elapsed());
    if done.summary.conflicts > 0 && !keep.allow_conflicts {
        return Err(Failure::new(
            Exit::Invalid,
            format!(
                "{} copies of sessions conflict (listed above{}): {} was written keeping, of \
                 each, a device export's copy over a backup's, else the first seen; check them, \
                 or pass --allow-conflicts to accept this",
                done.summary.conflicts,
                if keep.conflicts.is_some() {
                    " and in the --conflicts file"
                } else {
                    ""
                },
                output.describe()
            ),
        ));
    }
    Ok(())
}
