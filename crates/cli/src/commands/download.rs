//! `matrix-transplant download ...`: fetch one account's DM list or key backup. Each
//! subcommand checks its output, resolves its secrets, opens the session, makes one
//! `migrate` call, closes the session, writes and prints the report.

use clap::{Args, Subcommand};
use migrate::keys::{self, DownloadKeys};

use crate::accounts::{with_session, Side};
use crate::args::{NewExportArgs, OutArgs, RecoveryArgs, SelectArgs, SessionArgs};
use crate::exit::{Failure, Outcome};
use crate::files::Output;
use crate::{print, progress};

#[derive(Subcommand)]
pub enum DownloadCommand {
    /// Save the account's m.direct (run with the OLD account; it feeds `direct build`).
    Direct(DirectArgs),
    /// Fetch the account's key backup, decrypt it with the recovery key, and write a key
    /// export (an old account's backup becomes a source even without any device).
    #[command(mut_arg("output", |a| a.required(true)))]
    Keys(KeysArgs),
}

#[derive(Args)]
pub struct DirectArgs {
    #[command(flatten)]
    session: SessionArgs,
    #[command(flatten)]
    out: OutArgs,
}

#[derive(Args)]
pub struct KeysArgs {
    #[command(flatten)]
    session: SessionArgs,
    #[command(flatten)]
    recovery: RecoveryArgs,
    #[command(flatten)]
    select: SelectArgs,
    #[command(flatten)]
    new_export: NewExportArgs,
    #[command(flatten)]
    out: OutArgs,
}

/// Runs one `download` subcommand.
pub fn run(cmd: DownloadCommand) -> Outcome {
    match cmd {
        DownloadCommand::Direct(a) => direct(a),
        DownloadCommand::Keys(a) => download_keys(a),
    }
}

fn direct(a: DirectArgs) -> Outcome {
    let output = Output::plan(a.out.output.as_deref(), a.out.force, false, "output")?;
    let side = Side::single(&a.session)?;
    let got = with_session(&side, |s| Ok(migrate::direct::download(s)?))?;
    output.write(got.map.to_pretty_json().as_bytes())?;
    crate::note!(
        "m.direct of {}: {} users -> {}",
        got.user_id,
        got.map.len(),
        output.describe()
    );
    Ok(())
}

fn download_keys(a: KeysArgs) -> Outcome {
    let output = Output::plan(a.out.output.as_deref(), a.out.force, false, "output")?;
    let side = Side::single(&a.session)?;
    let request = DownloadKeys {
        selection: a.select.selection()?,
        recovery: a.recovery.resolve(a.session.whose())?,
        destination: a.new_export.destination(None)?,
    };
    let report = with_session(&side, |s| {
        output.write_with(|sink| {
            keys::download(s, request, sink, &*progress::bars())
                .map(|(report, _)| report)
                .map_err(Failure::from)
        })
    })?;
    print::backup::download_keys(&report, &output.describe());
    Ok(())
}
