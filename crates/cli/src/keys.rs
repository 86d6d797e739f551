//! `matrix-transplant keys ...`: argument handling and printing around the key-export
//! library. No logic of its own.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use key_export::{container, entries, inspect, Passphrase, ReadOptions};

use crate::failure::{Failure, Outcome, INVALID};
use crate::files::{open_input, read_secret, Output};
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
    /// Encrypt a JSON array of sessions into an export Element can import.
    Encrypt {
        /// The JSON file (`-` for standard input).
        file: PathBuf,
        /// File with the new export's passphrase (else $MATRIX_TRANSPLANT_PASSPHRASE, else asked twice).
        #[arg(long, value_name = "PATH")]
        passphrase_file: Option<PathBuf>,
        /// PBKDF2 rounds (Element uses 500000).
        #[arg(long, default_value_t = container::DEFAULT_ROUNDS, value_name = "N")]
        rounds: u32,
        /// Write entries that fail validation too (importers may reject the whole file).
        #[arg(long)]
        allow_invalid: bool,
        #[command(flatten)]
        out: OutArgs,
    },
}

/// How to read an export.
#[derive(Args)]
pub struct ReadArgs {
    /// File holding the passphrase (else $MATRIX_TRANSPLANT_PASSPHRASE, else a prompt).
    #[arg(long, value_name = "PATH")]
    pub passphrase_file: Option<PathBuf>,
    /// Refuse files asking for more PBKDF2 rounds than this.
    #[arg(long, default_value_t = container::DEFAULT_MAX_ROUNDS, value_name = "N")]
    pub max_rounds: u32,
}

/// Where to write.
#[derive(Args)]
pub struct OutArgs {
    /// Output file (`-` for standard output). Created mode 0600.
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Replace the output file if it exists.
    #[arg(long)]
    pub force: bool,
}

pub fn run(cmd: KeysCommand) -> Outcome {
    match cmd {
        KeysCommand::Inspect { file, read, json, all_rooms } => {
            let pass = secrets::existing(read.passphrase_file.as_deref(), &file.display().to_string())?;
            let plain = decrypt_file(&file, &pass, &read)?;
            let report = inspect::inspect(&plain).map_err(|e| Failure::from(e).in_file(&file.display().to_string()))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report).expect("report serialises"));
            } else {
                print_report(&file, &report, all_rooms);
            }
            Ok(())
        }
        KeysCommand::Decrypt { file, read, out } => {
            let output = Output::plan(out.output.as_deref(), out.force, true, &[&file])?;
            let pass = secrets::existing(read.passphrase_file.as_deref(), &file.display().to_string())?;
            let plain = decrypt_file(&file, &pass, &read)?;
            // Refuse to write something that is not an export's JSON.
            let n = entries::split(plain.as_bytes()).map_err(|e| Failure::from(e).in_file(&file.display().to_string()))?.len();
            output.write(plain.as_bytes())?;
            eprintln!("decrypted {n} sessions to {}", output.describe());
            Ok(())
        }
        KeysCommand::Encrypt { file, passphrase_file, rounds, allow_invalid, out } => {
            let output = Output::plan(out.output.as_deref(), out.force, false, &[&file])?;
            if rounds == 0 || rounds > container::MAX_WRITE_ROUNDS {
                return Err(key_export::Error::InvalidRounds { rounds }.into());
            }
            let json = read_secret(&file)?;
            let name = file.display().to_string();
            let raw = entries::split(&json).map_err(|e| Failure::from(e).in_file(&name))?;
            let sessions = entries::parse_all(&raw);
            let bad: Vec<_> =
                sessions.iter().enumerate().filter_map(|(i, s)| inspect::InvalidEntry::of(i, s)).collect();
            if !bad.is_empty() && !allow_invalid {
                return Err(invalid_entries(&name, &bad));
            }
            let pass = secrets::new(passphrase_file.as_deref(), secrets::PASSPHRASE_ENV, None)?;
            // Every entry gets a forwarding chain (matrix-nio needs one); others pass through.
            let plain = entries::write_array(sessions.iter().map(|s| s.output_json()));
            let text = container::encrypt(&plain, &pass, rounds)?;
            output.write(text.as_bytes())?;
            eprintln!("encrypted {} sessions to {} ({rounds} rounds)", sessions.len(), output.describe());
            Ok(())
        }
    }
}

/// Opens and decrypts one export, naming the file in any error.
pub fn decrypt_file(file: &Path, pass: &Passphrase, read: &ReadArgs) -> Outcome<key_export::Plaintext> {
    let input = open_input(file)?;
    let name = input.name.clone();
    container::decrypt(input.reader, input.len, pass, &ReadOptions { max_rounds: read.max_rounds })
        .map_err(|e| Failure::from(e).in_file(&name))
}

pub fn invalid_entries(name: &str, bad: &[inspect::InvalidEntry]) -> Failure {
    let mut msg = format!("{name}: {} entries fail validation (nothing was written):", bad.len());
    for b in bad.iter().take(20) {
        msg.push_str(&format!("\n  entry {}: room {:?} session {:?}: {}", b.index, b.room_id, b.session_id, b.problem));
    }
    if bad.len() > 20 {
        msg.push_str(&format!("\n  ... and {} more", bad.len() - 20));
    }
    msg.push_str("\nImporters reject a whole file for one bad entry; use --drop-invalid to leave them out.");
    Failure::new(INVALID, msg)
}

fn print_report(file: &Path, r: &inspect::Report, all_rooms: bool) {
    let l = &r.layout;
    println!("file:       {}", file.display());
    println!("encryption: version 1, {} PBKDF2 rounds", r.rounds);
    println!(
        "layout:     {} base64 line(s), longest {} chars, {}, {}{}{} — looks like {}",
        l.base64_lines,
        l.longest_line,
        if l.padded { "padded" } else { "unpadded" },
        if l.crlf { "CRLF" } else { "LF" },
        if l.final_newline { ", final newline" } else { ", no final newline" },
        if l.text_before || l.text_after { ", text around the armour" } else { "" },
        r.producer_hint
    );
    println!(
        "sessions:   {} entries, {} distinct sessions, {} rooms, {} bytes of JSON",
        r.sessions,
        r.distinct_sessions,
        r.rooms.len(),
        r.json_bytes
    );
    println!("duplicates: {} sessions have more than one copy", r.duplicates.len());
    for d in r.duplicates.iter().take(10) {
        println!("  {} {}: first known indexes {:?}", d.room_id, d.session_id, d.first_known_indexes);
    }
    println!("invalid:    {} entries", r.invalid.len());
    for b in r.invalid.iter().take(20) {
        println!("  entry {}: room {:?}: {}", b.index, b.room_id, b.problem);
    }
    println!("rooms:");
    let shown = if all_rooms { r.rooms.len() } else { 20 };
    for room in r.rooms.iter().take(shown) {
        println!("  {:>7}  {}", room.sessions, room.room_id);
    }
    if r.rooms.len() > shown {
        println!("  ... {} more (use --all-rooms or --json)", r.rooms.len() - shown);
    }
}

