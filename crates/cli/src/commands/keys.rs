//! `matrix-transplant keys ...`: Element key-export files, no account needed. Each
//! subcommand resolves its arguments, makes one `migrate::keys::local` call and prints the
//! report.

use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, Subcommand};
use key_export::pipeline::Destination;
use key_export::Rounds;
use migrate::keys::local;

use crate::args::{self, KeepArgs, OutArgs, ReadArgs};
use crate::document::{self, Kind};
use crate::exit::{self, Outcome};
use crate::files::{names, read_secret, Output, Sources};
use crate::{print, progress, secrets};

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Show what an export holds: rounds, sessions per room, duplicates, invalid entries.
    /// Never prints key material.
    Inspect(InspectArgs),
    /// Decrypt an export to its JSON (the plaintext keys: keep it safe, delete it after).
    Decrypt(DecryptArgs),
    /// Keep only the keys of the rooms that move (one best copy of each session): a merge
    /// of one export.
    Filter(FilterArgs),
    /// Merge exports from several devices: one best copy of each session, optionally
    /// only the rooms that move.
    Merge(MergeArgs),
    /// Encrypt a JSON array of sessions into an export Element can import.
    Encrypt(EncryptArgs),
}

#[derive(Args)]
pub struct InspectArgs {
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
}

#[derive(Args)]
pub struct DecryptArgs {
    /// The export file (`-` for standard input).
    file: PathBuf,
    #[command(flatten)]
    read: ReadArgs,
    #[command(flatten)]
    out: OutArgs,
}

#[derive(Args)]
pub struct FilterArgs {
    /// The export file (`-` for standard input).
    file: PathBuf,
    /// File with its passphrase (else $MATRIX_TRANSPLANT_PASSPHRASE, else a prompt).
    #[arg(long, value_name = "PATH")]
    passphrase_file: Option<PathBuf>,
    #[command(flatten)]
    keep: KeepArgs,
}

#[derive(Args)]
pub struct MergeArgs {
    /// The export files.
    #[arg(required = true, num_args = 1..)]
    files: Vec<PathBuf>,
    /// Passphrase file: once for all inputs, or once per input in order.
    #[arg(long, value_name = "PATH")]
    passphrase_file: Vec<PathBuf>,
    #[command(flatten)]
    keep: KeepArgs,
}

#[derive(Args)]
pub struct EncryptArgs {
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
}

/// Runs one `keys` subcommand.
pub fn run(cmd: KeysCommand) -> Outcome {
    match cmd {
        KeysCommand::Inspect(a) => inspect(a),
        KeysCommand::Decrypt(a) => decrypt(a),
        KeysCommand::Filter(a) => filter_merge(
            vec![a.file],
            a.passphrase_file.into_iter().collect(),
            &a.keep,
        ),
        KeysCommand::Merge(a) => filter_merge(a.files, a.passphrase_file, &a.keep),
        KeysCommand::Encrypt(a) => encrypt(a),
    }
}

fn inspect(a: InspectArgs) -> Outcome {
    let source = Sources::one(&a.file, a.read.passphrase_file.as_deref())?;
    let report = local::inspect(source, &a.read.limits.read_options(), &*progress::bars())
        .map_err(|e| exit::pipeline(e, &names(std::slice::from_ref(&a.file))))?;
    if a.json {
        document::print(Kind::KeysInspect, &report);
    } else {
        print::keys::inspect_report(&a.file, &report, a.all_rooms);
    }
    Ok(())
}

fn decrypt(a: DecryptArgs) -> Outcome {
    let output = Output::plan(a.out.output.as_deref(), a.out.force, true, "output")?;
    let source = Sources::one(&a.file, a.read.passphrase_file.as_deref())?;
    let name = names(&[a.file]);
    let report = output.write_with(|sink| {
        local::decrypt(
            source,
            &a.read.limits.read_options(),
            sink,
            &*progress::bars(),
        )
        .map(|r| r.0)
        .map_err(|e| exit::pipeline(e, &name))
    })?;
    crate::note!(
        "decrypted {} sessions to {}",
        report.sessions,
        output.describe()
    );
    Ok(())
}

fn encrypt(a: EncryptArgs) -> Outcome {
    let output = Output::plan(a.out.output.as_deref(), a.out.force, false, "output")?;
    let json = read_secret(&a.file)?;
    let passphrase = secrets::new(a.passphrase_file.as_deref(), secrets::PASSPHRASE_ENV, None)?;
    let name = names(&[a.file]);
    let destination = Destination {
        passphrase,
        rounds: a.rounds,
    };
    let report = output.write_with(|sink| {
        local::encrypt(
            &name[0],
            &json,
            destination,
            a.allow_invalid,
            sink,
            &*progress::bars(),
        )
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

fn filter_merge(files: Vec<PathBuf>, pass_files: Vec<PathBuf>, keep: &KeepArgs) -> Outcome {
    let (output, conflicts_out) = keep.outputs()?;
    let options = keep.merge_options()?;
    let sources = Sources::open(&files, &pass_files)?;
    let destination = keep
        .new_export
        .destination(Some(&sources.first_passphrase()))?;
    let (names, started) = (names(&files), Instant::now());
    let done = output.write_with(|sink| {
        let (events, read) = (progress::bars(), keep.limits.read_options());
        local::filter_merge(
            sources.into_vec(),
            destination,
            sink,
            &read,
            &options,
            &*events,
        )
        .map(|r| r.0)
        .map_err(|e| exit::pipeline(e, &names))
    })?;
    if let Some(c) = conflicts_out {
        c.write(&serde_json::to_vec_pretty(&done.conflicts).expect("conflicts serialise"))?;
    }
    print::keys::merged(&done, &names, &output.describe(), keep.json);
    print::elapsed(started.elapsed());
    keep.ending(done.summary.conflicts, &output.describe())
}
