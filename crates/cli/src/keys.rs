//! `matrix-transplant keys ...`: argument handling and printing around the key-export
//! library. No logic of its own.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use key_export::merge::{MergeError, MergeOptions};
use key_export::pipeline::{self, Destination, PipelineError, Source};
use key_export::select::{self, RoomSelection};
use key_export::{container, entries, inspect, Passphrase, ReadOptions};
use serde::Serialize;

use crate::failure::{Failure, Outcome, FORMAT, INVALID, USAGE};
use crate::files::{open_input, read_room_list, read_secret, Output};
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
    /// Keep only the keys of the rooms that move (one best copy of each session).
    Filter {
        /// The export file (`-` for standard input).
        file: PathBuf,
        /// File with its passphrase (else $MATRIX_TRANSPLANT_PASSPHRASE, else a prompt).
        #[arg(long, value_name = "PATH")]
        passphrase_file: Option<PathBuf>,
        #[command(flatten)]
        select: SelectArgs,
        #[command(flatten)]
        merge: MergeArgs,
        #[command(flatten)]
        out: OutArgs,
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
        select: SelectArgs,
        #[command(flatten)]
        merge: MergeArgs,
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

/// Which rooms move.
#[derive(Args)]
pub struct SelectArgs {
    /// A room whose keys move (repeatable).
    #[arg(long = "room", value_name = "ROOM_ID")]
    pub rooms: Vec<String>,
    /// A file of room IDs: one per line (`#` comments), a JSON list, or `keys inspect --json` output.
    #[arg(long, value_name = "PATH")]
    pub rooms_file: Option<PathBuf>,
    /// Keep every room EXCEPT the ones named.
    #[arg(long)]
    pub exclude: bool,
}

/// What to do with bad entries and disagreeing copies.
#[derive(Args)]
pub struct MergeArgs {
    /// Leave out entries that fail validation (and list them) instead of stopping.
    #[arg(long)]
    pub drop_invalid: bool,
    /// Stop if any two copies of a session conflict.
    #[arg(long)]
    pub strict: bool,
    /// Write the list of conflicts as JSON to this file.
    #[arg(long, value_name = "PATH")]
    pub conflicts: Option<PathBuf>,
    /// File with the new export's passphrase (else $MATRIX_TRANSPLANT_OUT_PASSPHRASE,
    /// else asked on the terminal, else the (first) input's passphrase).
    #[arg(long, value_name = "PATH")]
    pub out_passphrase_file: Option<PathBuf>,
    /// PBKDF2 rounds of the new export (Element uses 500000).
    #[arg(long, default_value_t = container::DEFAULT_ROUNDS, value_name = "N")]
    pub rounds: u32,
    /// Refuse inputs asking for more PBKDF2 rounds than this.
    #[arg(long, default_value_t = container::DEFAULT_MAX_ROUNDS, value_name = "N")]
    pub max_rounds: u32,
    /// Print the summary as JSON on standard output.
    #[arg(long)]
    pub json: bool,
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
        KeysCommand::Filter {
            file,
            passphrase_file,
            select,
            merge,
            out,
        } => {
            let files = vec![file];
            let passes: Vec<PathBuf> = passphrase_file.into_iter().collect();
            filter_merge(&files, &passes, &select, &merge, &out)
        }
        KeysCommand::Merge {
            files,
            passphrase_file,
            select,
            merge,
            out,
        } => filter_merge(&files, &passphrase_file, &select, &merge, &out),
        KeysCommand::Inspect {
            file,
            read,
            json,
            all_rooms,
        } => {
            let pass =
                secrets::existing(read.passphrase_file.as_deref(), &file.display().to_string())?;
            let plain = decrypt_file(&file, &pass, &read)?;
            let report = inspect::inspect(&plain)
                .map_err(|e| Failure::from(e).in_file(&file.display().to_string()))?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("report serialises")
                );
            } else {
                print_report(&file, &report, all_rooms);
            }
            Ok(())
        }
        KeysCommand::Decrypt { file, read, out } => {
            let output = Output::plan(out.output.as_deref(), out.force, true, &[&file])?;
            let pass =
                secrets::existing(read.passphrase_file.as_deref(), &file.display().to_string())?;
            let plain = decrypt_file(&file, &pass, &read)?;
            // Refuse to write something that is not an export's JSON.
            let n = entries::split(plain.as_bytes())
                .map_err(|e| Failure::from(e).in_file(&file.display().to_string()))?
                .len();
            output.write(plain.as_bytes())?;
            eprintln!("decrypted {n} sessions to {}", output.describe());
            Ok(())
        }
        KeysCommand::Encrypt {
            file,
            passphrase_file,
            rounds,
            allow_invalid,
            out,
        } => {
            let output = Output::plan(out.output.as_deref(), out.force, false, &[&file])?;
            if rounds == 0 || rounds > container::MAX_WRITE_ROUNDS {
                return Err(key_export::Error::InvalidRounds { rounds }.into());
            }
            let json = read_secret(&file)?;
            let name = file.display().to_string();
            let raw = entries::split(&json).map_err(|e| Failure::from(e).in_file(&name))?;
            let sessions = entries::parse_all(&raw);
            let bad: Vec<_> = sessions
                .iter()
                .enumerate()
                .filter_map(|(i, s)| inspect::InvalidEntry::of(i, s))
                .collect();
            if !bad.is_empty() && !allow_invalid {
                return Err(invalid_entries(&name, &bad));
            }
            let pass = secrets::new(passphrase_file.as_deref(), secrets::PASSPHRASE_ENV, None)?;
            // Every entry gets a forwarding chain (matrix-nio needs one); others pass through.
            let plain = entries::write_array(sessions.iter().map(|s| s.output_json()));
            let text = container::encrypt(&plain, &pass, rounds)?;
            output.write(text.as_bytes())?;
            eprintln!(
                "encrypted {} sessions to {} ({rounds} rounds)",
                sessions.len(),
                output.describe()
            );
            Ok(())
        }
    }
}

/// Opens and decrypts one export, naming the file in any error.
pub fn decrypt_file(
    file: &Path,
    pass: &Passphrase,
    read: &ReadArgs,
) -> Outcome<key_export::Plaintext> {
    let input = open_input(file)?;
    let name = input.name.clone();
    container::decrypt(
        input.reader,
        input.len,
        pass,
        &ReadOptions {
            max_rounds: read.max_rounds,
        },
    )
    .map_err(|e| Failure::from(e).in_file(&name))
}

pub fn invalid_entries(name: &str, bad: &[inspect::InvalidEntry]) -> Failure {
    let mut msg = format!(
        "{name}: {} entries fail validation (nothing was written):",
        bad.len()
    );
    msg.push_str(&listing(bad, |b| {
        format!(
            "entry {}: room {:?} session {:?}: {}",
            b.index, b.room_id, b.session_id, b.problem
        )
    }));
    msg.push_str(
        "\nImporters reject a whole file for one bad entry; use --drop-invalid to leave them out.",
    );
    Failure::new(INVALID, msg)
}

/// Up to 20 indented lines, one per item, then how many more there are.
fn listing<T>(items: &[T], line: impl Fn(&T) -> String) -> String {
    const SHOWN: usize = 20;
    let mut out: String = items
        .iter()
        .take(SHOWN)
        .map(|i| format!("\n  {}", line(i)))
        .collect();
    if items.len() > SHOWN {
        out.push_str(&format!("\n  ... and {} more", items.len() - SHOWN));
    }
    out
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
        if l.final_newline {
            ", final newline"
        } else {
            ", no final newline"
        },
        if l.text_before || l.text_after {
            ", text around the armour"
        } else {
            ""
        },
        r.producer_hint
    );
    println!(
        "sessions:   {} entries, {} distinct sessions, {} rooms, {} bytes of JSON",
        r.sessions,
        r.distinct_sessions,
        r.rooms.len(),
        r.json_bytes
    );
    println!(
        "duplicates: {} sessions have more than one copy",
        r.duplicates.len()
    );
    for d in r.duplicates.iter().take(10) {
        println!(
            "  {} {}: first known indexes {:?}",
            d.room_id, d.session_id, d.first_known_indexes
        );
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
        println!(
            "  ... {} more (use --all-rooms or --json)",
            r.rooms.len() - shown
        );
    }
}

pub fn selection(args: &SelectArgs) -> Outcome<RoomSelection> {
    let mut rooms =
        select::parse_room_args(&args.rooms).map_err(|e| Failure::new(FORMAT, e.to_string()))?;
    if let Some(path) = &args.rooms_file {
        rooms.extend(read_room_list(path)?);
    } else if args.rooms.is_empty() {
        if args.exclude {
            return Err(Failure::new(
                USAGE,
                "--exclude needs rooms to exclude (--room or --rooms-file)",
            ));
        }
        return Ok(RoomSelection::everything());
    }
    Ok(RoomSelection::new(rooms, args.exclude))
}

#[derive(Serialize)]
struct JsonSummary<'a> {
    output: String,
    summary: &'a key_export::merge::Summary,
    conflicts: &'a [key_export::merge::Conflict],
    dropped_invalid: &'a [key_export::merge::SourcedInvalid],
}

fn filter_merge(
    files: &[PathBuf],
    pass_files: &[PathBuf],
    sel: &SelectArgs,
    m: &MergeArgs,
    out: &OutArgs,
) -> Outcome {
    let inputs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let output = Output::plan(out.output.as_deref(), out.force, false, &inputs)?;
    let conflicts_out = m
        .conflicts
        .as_deref()
        .map(|p| Output::plan(Some(p), out.force, false, &inputs))
        .transpose()?;
    if m.rounds == 0 || m.rounds > container::MAX_WRITE_ROUNDS {
        return Err(key_export::Error::InvalidRounds { rounds: m.rounds }.into());
    }
    if !(pass_files.len() <= 1 || pass_files.len() == files.len()) {
        return Err(Failure::new(
            USAGE,
            format!("{} inputs but {} --passphrase-file: give one for all inputs or one per input, in order", files.len(), pass_files.len()),
        ));
    }
    let options = MergeOptions {
        selection: selection(sel)?,
        drop_invalid: m.drop_invalid,
        strict: m.strict,
    };
    let mut sources = Vec::with_capacity(files.len());
    for (i, f) in files.iter().enumerate() {
        let pf = pass_files.get(i).or(pass_files.first());
        let passphrase = secrets::existing(pf.map(PathBuf::as_path), &f.display().to_string())?;
        let input = open_input(f)?;
        sources.push(Source {
            name: input.name,
            reader: input.reader,
            len: input.len,
            passphrase,
        });
    }
    let first = sources[0].passphrase.clone();
    let passphrase = secrets::new(
        m.out_passphrase_file.as_deref(),
        secrets::OUT_PASSPHRASE_ENV,
        Some(&first),
    )?;
    let started = std::time::Instant::now();
    let done = output.write_with(|sink| {
        pipeline::filter_merge(
            sources,
            Destination {
                passphrase,
                rounds: m.rounds,
            },
            sink,
            &ReadOptions {
                max_rounds: m.max_rounds,
            },
            &options,
        )
        .map(|(done, _)| done)
        .map_err(|e| pipeline_failure(e, files))
    })?;
    report(&done, files, &output, conflicts_out, m, started)
}

fn pipeline_failure(e: PipelineError, files: &[PathBuf]) -> Failure {
    match e {
        PipelineError::Input { name, error, .. } => Failure::from(error).in_file(&name),
        PipelineError::Merge(MergeError::Invalid(bad)) => {
            let mut f = Failure::new(INVALID, String::new());
            for (i, file) in files.iter().enumerate() {
                let mine: Vec<_> = bad
                    .iter()
                    .filter(|b| b.input == i)
                    .map(|b| b.entry.clone())
                    .collect();
                if !mine.is_empty() {
                    let part = invalid_entries(&file.display().to_string(), &mine).message;
                    f.message = if f.message.is_empty() {
                        part
                    } else {
                        format!("{}\n{part}", f.message)
                    };
                }
            }
            f
        }
        PipelineError::Merge(MergeError::Conflicts(c)) => {
            let mut msg = format!(
                "{} conflicting copies of sessions and --strict was given; nothing was written:",
                c.len()
            );
            msg.push_str(&listing(&c, |x| {
                format!(
                    "{} {}: {:?} ({} entry {} vs {} entry {})",
                    x.room_id,
                    x.session_id,
                    x.kind,
                    files[x.kept.input].display(),
                    x.kept.index,
                    files[x.rejected.input].display(),
                    x.rejected.index
                )
            }));
            Failure::new(INVALID, msg)
        }
        PipelineError::Output(e) => e.into(),
    }
}

fn report(
    done: &pipeline::Finished,
    files: &[PathBuf],
    output: &Output,
    conflicts_out: Option<Output>,
    m: &MergeArgs,
    started: std::time::Instant,
) -> Outcome {
    if let Some(c) = conflicts_out {
        let json = serde_json::to_vec_pretty(&done.conflicts).expect("conflicts serialise");
        c.write(&json)?;
    }
    let s = &done.summary;
    if m.json {
        let j = JsonSummary {
            output: output.describe(),
            summary: s,
            conflicts: &done.conflicts,
            dropped_invalid: &done.dropped_invalid,
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&j).expect("summary serialises")
        );
    }
    for (f, n) in files.iter().zip(&s.read) {
        eprintln!("read      {n:>8} sessions from {}", f.display());
    }
    eprintln!(
        "kept      {:>8} sessions in {} rooms -> {}",
        s.kept,
        s.rooms_kept,
        output.describe()
    );
    eprintln!(
        "other rooms {:>6} sessions left out",
        s.dropped_by_selection
    );
    eprintln!(
        "merged    {:>8} duplicate copies ({} upgraded to a copy that decrypts more)",
        s.duplicates_merged, s.upgraded
    );
    eprintln!(
        "conflicts {:>8}{}",
        s.conflicts,
        if s.conflicts > 0 {
            " (first copy kept; see --conflicts PATH)"
        } else {
            ""
        }
    );
    eprintln!(
        "invalid   {:>8}{}",
        s.invalid,
        if s.invalid > 0 { " (left out)" } else { "" }
    );
    for c in done.conflicts.iter().take(10) {
        eprintln!("  conflict: {} {}: {:?}", c.room_id, c.session_id, c.kind);
    }
    for b in done.dropped_invalid.iter().take(10) {
        eprintln!(
            "  dropped: {} entry {}: {}",
            files[b.input].display(),
            b.entry.index,
            b.entry.problem
        );
    }
    if !s.rooms_without_keys.is_empty() {
        eprintln!(
            "selected rooms with no keys in any input ({}):",
            s.rooms_without_keys.len()
        );
        for r in &s.rooms_without_keys {
            eprintln!("  {r}");
        }
    }
    eprintln!("done in {:.2} s", started.elapsed().as_secs_f64());
    Ok(())
}
