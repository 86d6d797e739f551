//! `matrix-transplant`: move a Matrix account's E2E room keys and DM list into a new
//! account, offline. This binary parses arguments and prints; the work is done in the
//! `key-export`, `m-direct` and `online` libraries.

mod direct;
mod failure;
mod files;
mod keys;
mod online;
mod secrets;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "matrix-transplant", version, about, long_about = None)]
#[command(
    after_help = "Exit codes: 0 ok, 1 I/O, 2 usage, 3 unreadable input, 4 wrong passphrase \
or corrupted file, 5 invalid entries or conflicts, 6 output exists or is an input, 7 the homeserver refused.\n\
Passphrases come from --passphrase-file, $MATRIX_TRANSPLANT_PASSPHRASE, or a terminal prompt; never argv."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Element key-export files ("Export E2E room keys").
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// The m.direct DM list: build the new account's, merge, check.
    #[command(subcommand)]
    Direct(direct::DirectCommand),
    /// Put a DM list or room keys into an account (m.direct, server-side key backup).
    #[command(subcommand)]
    Upload(online::UploadCommand),
    /// Fetch an account's DM list or key backup.
    #[command(subcommand)]
    Download(online::DownloadCommand),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Keys(cmd) => keys::run(cmd),
        Command::Direct(cmd) => direct::run(cmd),
        Command::Upload(cmd) => online::upload(cmd),
        Command::Download(cmd) => online::download(cmd),
    };
    if let Err(failure) = result {
        eprintln!("matrix-transplant: {failure}");
        std::process::exit(failure.code);
    }
}
