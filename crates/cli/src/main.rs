//! `matrix-transplant`: move a Matrix account's E2E room keys and DM list into a new
//! account. This binary parses arguments, resolves where secrets come from, plans output
//! files, makes one library call per subcommand and prints its report; the work is done in
//! the `key-export`, `m-direct`, `online` and `migrate` libraries.

mod accounts;
mod args;
mod ask;
mod cleanup;
mod commands;
mod document;
mod exit;
mod files;
mod manual;
mod print;
mod progress;
mod secrets;

use commands::{direct, download, keys, moves, rooms, ui, upload};

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "matrix-transplant", version, about, long_about = None)]
#[command(after_help = exit::help_table())]
struct Cli {
    /// Show each request sent to a homeserver or login provider: method, path with its IDs,
    /// status, time, and each wait (-v); and the sizes of what was sent and received (-vv).
    /// Never a header, a body, a token, a password or a key.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Print only errors and warnings (and what you must act on: a login address, a prompt,
    /// the command that resumes a stopped move); reports on standard output stay.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// How long jobs show their progress: bars on a terminal, or JSON lines on standard
    /// error (one object per event, for scripts and front ends).
    #[arg(long, value_enum, value_name = "HOW", default_value_t = progress::Mode::Bars, global = true)]
    progress: progress::Mode,
    /// Colour on standard error (errors, warnings, progress bars, help): auto is on a
    /// terminal unless NO_COLOR is set (https://no-color.org) or TERM is dumb.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = print::Color::Auto, global = true)]
    color: print::Color,
    #[command(subcommand)]
    command: Command,
}

/// Logs of this tool's own libraries on stderr, at the level `-v` asks for.
fn start_logs(verbose: u8) {
    use tracing_subscriber::prelude::*;
    let level = match verbose {
        0 => return,
        1 => tracing::Level::INFO,
        _ => tracing::Level::DEBUG,
    };
    let ours = tracing_subscriber::filter::Targets::new()
        .with_target("online", level)
        .with_target("migrate", level);
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_target(false)
                .without_time(),
        )
        .with(ours)
        .init();
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
    Upload(upload::UploadCommand),
    /// Fetch an account's DM list or key backup.
    #[command(subcommand)]
    Download(download::DownloadCommand),
    /// Move rooms to the new account: list the old account's, plan the move, move them.
    #[command(subcommand)]
    Rooms(rooms::RoomsCommand),
    /// The whole move from one plan file: init, run (--dry-run first), status.
    #[command(subcommand)]
    Move(moves::MoveCommand),
    /// The move as a page in your browser, on this computer only: the same plan, rooms file
    /// and journal as `move` (a move begun in the page can be finished with `move run`).
    Ui(ui::UiArgs),
    /// Print the shell completion script (e.g. `source <(matrix-transplant completions bash)`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write the man pages (one per subcommand) into a folder, or print the main page.
    Manpage {
        /// The folder for `matrix-transplant*.1` (default: the main page to standard output).
        #[arg(short, long, value_name = "DIR")]
        output: Option<std::path::PathBuf>,
        /// Replace pages that exist.
        #[arg(long)]
        force: bool,
    },
}

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let color = print::Color::from_args(&args);
    print::set_color(color);
    cleanup::watch_signals();
    let matches = Cli::command()
        .color(match color {
            // clap decides for the stream it writes to, honouring NO_COLOR too.
            print::Color::Auto => clap::ColorChoice::Auto,
            print::Color::Always => clap::ColorChoice::Always,
            print::Color::Never => clap::ColorChoice::Never,
        })
        .get_matches_from(args);
    files::remember_arguments(&matches);
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    start_logs(cli.verbose);
    progress::set_mode(cli.progress);
    if cli.quiet {
        print::set_quiet();
    }
    let result = match cli.command {
        Command::Keys(cmd) => keys::run(cmd),
        Command::Direct(cmd) => direct::run(cmd),
        Command::Upload(cmd) => upload::run(cmd),
        Command::Download(cmd) => download::run(cmd),
        Command::Rooms(cmd) => rooms::run(cmd),
        Command::Move(cmd) => moves::run(cmd),
        Command::Ui(a) => ui::run(a),
        Command::Completions { shell } => manual::completions(shell, Cli::command()),
        Command::Manpage { output, force } => {
            manual::manpages(Cli::command(), output.as_deref(), force)
        }
    };
    if let Err(failure) = result {
        eprintln!(
            "{}: {}",
            print::label("matrix-transplant", true),
            print::failure(&failure.message)
        );
        std::process::exit(failure.exit.code());
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
