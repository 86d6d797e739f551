//! Everything the binary prints about a finished job: reports to stderr (stdout is for
//! data and `--json`), and the messages that list entries and conflicts.

use std::path::Path;
use std::time::Duration;

use key_export::inspect::{InvalidEntry, Report};
use key_export::merge::{Conflict, SourcedInvalid};
use key_export::pipeline::Finished;
use m_direct::build::BuildReport;

/// Up to 20 indented lines, one per item, then how many more there are.
pub fn listing<T>(items: &[T], line: impl Fn(&T) -> String) -> String {
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

fn name(names: &[String], input: usize) -> &str {
    names.get(input).map_or("(input)", String::as_str)
}

/// The message for entries that fail validation, grouped by input file.
pub fn invalid_entries(bad: &[SourcedInvalid], names: &[String]) -> String {
    let mut parts = Vec::new();
    for (input, file) in names.iter().enumerate() {
        let mine: Vec<&InvalidEntry> = bad
            .iter()
            .filter(|b| b.input == input)
            .map(|b| &b.entry)
            .collect();
        if mine.is_empty() {
            continue;
        }
        let mut msg = format!(
            "{file}: {} entries fail validation (nothing was written):",
            mine.len()
        );
        msg.push_str(&listing(&mine, |b| {
            format!(
                "entry {}: room {:?} session {:?}: {}",
                b.index,
                safe(&b.room_id),
                safe(&b.session_id),
                safe(&b.problem.to_string())
            )
        }));
        parts.push(msg);
    }
    parts.join("\n")
}

/// The message for conflicts that stopped a `--strict` merge.
pub fn strict_conflicts(c: &[Conflict], names: &[String]) -> String {
    let mut msg = format!(
        "{} conflicting copies of sessions and --strict was given; nothing was written:",
        c.len()
    );
    msg.push_str(&listing(c, |x| {
        format!(
            "{} {}: {:?} ({} entry {} vs {} entry {})",
            safe(&x.room_id),
            safe(&x.session_id),
            x.kind,
            name(names, x.kept.input),
            x.kept.index,
            name(names, x.rejected.input),
            x.rejected.index
        )
    }));
    msg
}

/// The human report of `keys inspect`.
pub fn inspect_report(file: &Path, r: &Report, all_rooms: bool) {
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
    inspect_lists(r, all_rooms);
}

fn inspect_lists(r: &Report, all_rooms: bool) {
    println!(
        "duplicates: {} sessions have more than one copy",
        r.duplicates.len()
    );
    for d in r.duplicates.iter().take(10) {
        println!(
            "  {} {}: first known indexes {:?}",
            safe(&d.room_id),
            safe(&d.session_id),
            d.first_known_indexes
        );
    }
    println!("invalid:    {} entries", r.invalid.len());
    for b in r.invalid.iter().take(20) {
        println!(
            "  entry {}: room {:?}: {}",
            b.index,
            safe(&b.room_id),
            safe(&b.problem.to_string())
        );
    }
    println!("rooms:");
    let shown = if all_rooms { r.rooms.len() } else { 20 };
    for room in r.rooms.iter().take(shown) {
        println!("  {:>7}  {}", room.sessions, safe(&room.room_id));
    }
    if r.rooms.len() > shown {
        println!(
            "  ... {} more (use --all-rooms or --json)",
            r.rooms.len() - shown
        );
    }
}

/// The summary of `keys filter`, `keys merge` (and the merge half of `upload keys`).
pub fn merge_summary(done: &Finished, names: &[String], output: &str) {
    let s = &done.summary;
    for (f, n) in names.iter().zip(&s.read) {
        crate::note!("read      {n:>8} sessions from {f}");
    }
    crate::note!(
        "kept      {:>8} sessions in {} rooms -> {output}",
        s.kept,
        s.rooms_kept
    );
    crate::note!(
        "other rooms {:>6} sessions left out",
        s.dropped_by_selection
    );
    crate::note!(
        "merged    {:>8} duplicate copies ({} upgraded to a copy that decrypts more)",
        s.duplicates_merged,
        s.upgraded
    );
    let conflict_note = if s.conflicts > 0 {
        " (first copy kept; see --conflicts PATH)"
    } else {
        ""
    };
    crate::note!("conflicts {:>8}{conflict_note}", s.conflicts);
    let invalid_note = if s.invalid > 0 { " (left out)" } else { "" };
    crate::note!("invalid   {:>8}{invalid_note}", s.invalid);
    merge_details(done, names);
}

fn merge_details(done: &Finished, names: &[String]) {
    for c in done.conflicts.iter().take(10) {
        crate::note!(
            "  conflict: {} {}: {:?}",
            safe(&c.room_id),
            safe(&c.session_id),
            c.kind
        );
    }
    for b in done.dropped_invalid.iter().take(10) {
        crate::note!(
            "  dropped: {} entry {}: {}",
            name(names, b.input),
            b.entry.index,
            safe(&b.entry.problem.to_string())
        );
    }
    let missing = &done.summary.rooms_without_keys;
    if !missing.is_empty() {
        crate::note!(
            "selected rooms with no keys in any input ({}):",
            missing.len()
        );
        for r in missing {
            crate::note!("  {}", safe(r));
        }
    }
}

/// A failure's message for the terminal: every control character but the line breaks of
/// our own layout is shown escaped.
pub fn failure(message: &str) -> String {
    message.split('\n').map(safe).collect::<Vec<_>>().join("\n")
}

/// When to colour what this tool writes on standard error (`--color`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Color {
    /// When standard error is a terminal, `NO_COLOR` is unset or empty and `TERM` is not
    /// `dumb`.
    Auto,
    /// Always (e.g. through a pager that shows colour).
    Always,
    /// Never.
    Never,
}

impl Color {
    /// Whether to colour, for this process's standard error and environment.
    pub fn enabled(self) -> bool {
        use std::io::IsTerminal;
        match self {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
                    && std::io::stderr().is_terminal()
            }
        }
    }

    /// What `--color` says in `args` (the last one wins), before clap parses them: clap's
    /// own help and errors are coloured by it too.
    pub fn from_args(args: &[std::ffi::OsString]) -> Color {
        use clap::ValueEnum;
        let mut choice = Color::Auto;
        let mut it = args.iter().map(|a| a.to_string_lossy());
        while let Some(a) = it.next() {
            if a == "--" {
                break;
            }
            let value = match a.strip_prefix("--color") {
                Some("") => it.next().map(|v| v.into_owned()),
                Some(v) if v.starts_with('=') => Some(v[1..].to_owned()),
                _ => None,
            };
            if let Some(c) = value.and_then(|v| Color::from_str(&v, true).ok()) {
                choice = c;
            }
        }
        choice
    }
}

static COLOR: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Decides, once, whether this run colours its standard error (and the progress bars).
pub fn set_color(choice: Color) {
    let on = choice.enabled();
    COLOR.store(on, std::sync::atomic::Ordering::Relaxed);
    console::set_colors_enabled(on);
    console::set_colors_enabled_stderr(on);
}

/// `label` in bold red (errors) or yellow (warnings) when colour is on.
pub fn label(label: &str, error: bool) -> String {
    if !COLOR.load(std::sync::atomic::Ordering::Relaxed) {
        return label.to_owned();
    }
    let style = console::Style::new().bold().for_stderr();
    let style = if error { style.red() } else { style.yellow() };
    style.apply_to(label).force_styling(true).to_string()
}

/// Prints a warning on standard error.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => {
        eprintln!("{}: {}", $crate::print::label("warning", false), format_args!($($arg)*))
    };
}

static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `-q`: from now on only errors, warnings and what the user must act on (a login address,
/// a prompt, the command that resumes a stopped move) are printed on standard error.
pub fn set_quiet() {
    QUIET.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// True under `-q`.
pub fn quiet() -> bool {
    QUIET.load(std::sync::atomic::Ordering::Relaxed)
}

/// Prints a message for people on standard error, unless `-q`.
#[macro_export]
macro_rules! note {
    ($($arg:tt)*) => {
        if !$crate::print::quiet() {
            eprintln!($($arg)*)
        }
    };
}

/// Shows the URL of a browser login, and opens a browser when there is a desktop to open
/// it on: on the login's start address (no `state` in the opener's arguments), with none of
/// this tool's environment but what a browser needs (tokens, recovery keys and passphrases
/// may be in it, and a browser it starts would keep them for its whole life).
pub fn login_url(address: &online::login::LoginAddress) {
    eprintln!("To log in, open this address in a browser (this tool waits for it to come back):\n\n  {}\n", safe(address.url.as_str()));
    let desktop =
        std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some();
    let opener = if cfg!(target_os = "macos") {
        Some("open")
    } else if cfg!(windows) {
        None
    } else if desktop {
        Some("xdg-open")
    } else {
        None
    };
    if let Some(opener) = opener {
        let _ = std::process::Command::new(opener)
            .arg(address.start.as_str())
            .env_clear()
            .envs(browser_environment())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }
}

/// The variables a browser opener needs, and nothing else of this process's environment.
pub fn browser_environment() -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    const NAMES: [&str; 9] = [
        "PATH",
        "HOME",
        "USER",
        "DISPLAY",
        "WAYLAND_DISPLAY",
        "DBUS_SESSION_BUS_ADDRESS",
        "BROWSER",
        "LANG",
        "TMPDIR",
    ];
    std::env::vars_os()
        .filter(|(k, _)| {
            let k = k.to_string_lossy();
            NAMES.contains(&k.as_ref()) || k.starts_with("XDG_") || k.starts_with("LC_")
        })
        .collect()
}

/// Shows a wait the homeserver imposes.
pub fn wait(w: &online::client::Wait) {
    use online::client::WaitCause;
    let secs = w.duration.as_secs_f64();
    match &w.cause {
        WaitCause::RateLimited { asked: None } => {
            crate::note!("rate limited by the homeserver: waiting {secs:.1} s as it asks")
        }
        WaitCause::RateLimited { asked: Some(a) } => crate::note!(
            "rate limited by the homeserver: it asks for {:.0} s, waiting {secs:.0} s and asking again",
            a.as_secs_f64()
        ),
        WaitCause::ServerError(status) => crate::note!(
            "the homeserver failed ({}): trying again in {secs:.0} s",
            status.map_or("connection broken".to_owned(), |s| format!("HTTP {s}"))
        ),
    }
}

/// Text from outside (a server, a file) made safe to print on a terminal: control
/// characters are shown escaped, so an escape sequence cannot reach the terminal.
pub fn safe(text: &str) -> String {
    matrix_ids::text::printable(text)
}

/// How a backup was opened, in words.
pub fn opened_via(via: online::backup::Via) -> &'static str {
    match via {
        online::backup::Via::SecretStorage => "its key read from secret storage",
        online::backup::Via::BackupKey => "the recovery key is the backup's own key",
        online::backup::Via::BackupPhrase => "the phrase gives the backup's own key",
    }
}

/// The report of `download keys`.
pub fn download_keys(report: &migrate::keys::DownloadKeysReport, output: &str) {
    use migrate::account_move::report::count;
    crate::note!(
        "downloaded {} of {} from backup version {} ({}) -> {output}",
        count(report.sessions, "session", "sessions"),
        count(report.rooms, "room", "rooms"),
        safe(&report.version),
        opened_via(report.opened_via),
    );
    if !report.skipped.is_empty() {
        crate::note!("left out {} backup entries:", report.skipped.len());
    }
    for s in report.skipped.iter().take(20) {
        crate::note!(
            "  {} {}: {}",
            safe(&s.room_id),
            safe(&s.session_id),
            safe(&s.reason.to_string())
        );
    }
    crate::note!(
        "note: keys from a server-side backup are not authenticated (anyone with the account's \
         access token can add entries); each is marked as such, and `keys merge` prefers a \
         device export's copy of a session over it"
    );
}

/// How long a job took.
pub fn elapsed(d: Duration) {
    crate::note!("done in {:.2} s", d.as_secs_f64());
}

/// The report of `direct build`.
pub fn direct_build(report: &BuildReport, moving: usize, output: &str) {
    crate::note!(
        "{} of the {} moving rooms are DMs: {} entries written to {output}",
        report.dm_rooms,
        moving,
        report.entries,
    );
    for a in &report.ambiguous {
        crate::note!(
            "  ambiguous: {} is listed under {} (kept under each)",
            safe(&a.room),
            safe(&a.peers.join(", "))
        );
    }
    for (k, r) in &report.self_entries {
        crate::note!(
            "  left out: {} under the account itself ({}); Element would re-guess the peer",
            safe(r),
            safe(k)
        );
    }
    for k in &report.third_party {
        crate::note!("  kept: {k:?} is a third-party identifier (an invite by email)");
    }
    for k in &report.odd_keys {
        crate::note!("  kept as found: {k:?} is not a user ID");
    }
    for k in &report.not_lists {
        crate::note!("  ignored: {k:?} holds something that is not a list of rooms");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_never_reach_the_terminal() {
        let hostile = "!room\u{1b}]0;owned\u{7}:x\u{9b}2J";
        let shown = safe(hostile);
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        assert!(shown.contains("\\u{1b}]0;owned"));
        assert_eq!(safe("!plain:example.org"), "!plain:example.org");
        let msg = failure("first line\n  second \u{1b}[31mred");
        assert_eq!(msg.lines().count(), 2);
        assert!(!msg.contains('\u{1b}'));
    }
}
