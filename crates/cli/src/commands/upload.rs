//! `matrix-transplant upload ...`: put a DM list or room keys into one account. Each
//! subcommand resolves its arguments and secrets, opens the session, makes one `migrate`
//! call, closes the session and prints the report.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use key_export::merge::MergeOptions;
use migrate::keys::{self, UploadKeys};
use online::backup;

use crate::accounts::{with_session, Side};
use crate::args::{ReadArgs, RecoveryArgs, SelectArgs, SessionArgs};
use crate::exit::{self, Outcome};
use crate::files::{names, read_direct_map, Sources};
use crate::{print, progress};

#[derive(Subcommand)]
pub enum UploadCommand {
    /// Add a DM list to the account's m.direct: read it, merge, show what changes, write it.
    Direct(DirectArgs),
    /// Put the sessions of a key export into the account's server-side key backup (the
    /// only way Element X gets old history). Refused unless the recovery key matches.
    Keys(KeysArgs),
}

#[derive(Args)]
pub struct DirectArgs {
    /// The m.direct to add (e.g. the output of `direct build`).
    file: PathBuf,
    #[command(flatten)]
    session: SessionArgs,
    /// Only show what would change.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Args)]
pub struct KeysArgs {
    /// The key export.
    file: PathBuf,
    #[command(flatten)]
    session: SessionArgs,
    #[command(flatten)]
    recovery: RecoveryArgs,
    #[command(flatten)]
    read: ReadArgs,
    #[command(flatten)]
    select: SelectArgs,
    /// Leave out entries that fail validation (and list them) instead of stopping.
    #[arg(long)]
    drop_invalid: bool,
    /// Sessions per upload request.
    #[arg(long, default_value_t = backup::DEFAULT_BATCH, value_name = "N")]
    batch: usize,
}

/// Runs one `upload` subcommand.
pub fn run(cmd: UploadCommand) -> Outcome {
    match cmd {
        UploadCommand::Direct(a) => direct(a),
        UploadCommand::Keys(a) => upload_keys(a),
    }
}

fn direct(a: DirectArgs) -> Outcome {
    let new = read_direct_map(&a.file)?;
    let side = Side::single(&a.session)?;
    let done = with_session(&side, |s| Ok(migrate::direct::upload(s, &new, a.dry_run)?))?;
    print::direct::uploaded(&done, &a.file, a.dry_run);
    Ok(())
}

fn upload_keys(a: KeysArgs) -> Outcome {
    let side = Side::single(&a.session)?;
    let request = UploadKeys {
        sources: vec![Sources::one(&a.file, a.read.passphrase_file.as_deref())?],
        read: a.read.limits.read_options(),
        options: MergeOptions {
            selection: a.select.selection()?,
            drop_invalid: a.drop_invalid,
            strict: false,
        },
        recovery: a.recovery.resolve(a.session.whose())?,
        batch: a.batch,
    };
    let names = names(&[a.file]);
    let report = with_session(&side, |s| {
        keys::upload(s, request, &*progress::bars()).map_err(|e| exit::job(e, &names))
    })?;
    print::backup::uploaded(&report);
    Ok(())
}
