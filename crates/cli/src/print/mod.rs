//! Everything the binary prints: the conventions every message follows (labels, colour,
//! `-q`, text from outside escaped), the login address and the waits, and one module per
//! command group for its reports (stdout is for data and `--json`; reports go to stderr).

pub mod backup;
pub mod direct;
pub mod keys;
pub mod moves;
pub mod rooms;

use std::time::Duration;

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
    open_in_browser(address.start.as_str().as_ref());
}

/// Opens `target` (an address or a file) in a browser, when there is a desktop to open it on.
pub fn open_in_browser(target: &std::ffi::OsStr) {
    if let Some(opener) = browser_opener() {
        let _ = std::process::Command::new(opener)
            .arg(target)
            .env_clear()
            .envs(browser_environment())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }
}

/// The program that opens a browser here, when one can be opened (a desktop session).
pub fn browser_opener() -> Option<&'static str> {
    let desktop =
        std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some();
    if cfg!(target_os = "macos") {
        Some("open")
    } else if cfg!(windows) || !desktop {
        None
    } else {
        Some("xdg-open")
    }
}

/// A device-grant login: where to go on another device, and the code to enter there.
pub fn device_code(code: &online::login::device::DeviceCode) {
    eprintln!(
        "To log in, open this address on any device with a browser (a phone will do) and enter \
         the code:\n\n  {}\n  code: {}\n",
        safe(code.verification_uri.as_str()),
        safe(&code.user_code)
    );
    if let Some(complete) = &code.verification_uri_complete {
        eprintln!(
            "(or open {}, which holds the code)",
            safe(complete.as_str())
        );
    }
    eprintln!(
        "This tool waits for the approval (the code is valid for {} minutes).",
        code.expires_in.as_secs().div_ceil(60)
    );
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

/// How long a job took.
pub fn elapsed(d: Duration) {
    crate::note!("done in {:.2} s", d.as_secs_f64());
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
