//! Exit codes, and the one place where a library error becomes a code and a message.
//!
//! The libraries say what is wrong; this module adds which flag of this tool helps (as
//! rage does: the library's "excessive work parameter", the binary's "retry with
//! --max-work-factor"). The table of codes is [`Exit::ALL`]: `--help` prints it, and a
//! test checks the README's copy against it.

use std::fmt;

use key_export::merge::MergeError;
use key_export::pipeline::PipelineError;
use key_export::Error as KeyError;
use migrate::journal::JournalError;

use crate::print;

/// Why the process ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Success.
    Success = 0,
    /// I/O or any other failure.
    Io = 1,
    /// A bad command line.
    Usage = 2,
    /// An input that is not a readable export or document.
    Format = 3,
    /// A wrong passphrase or a corrupted file.
    Passphrase = 4,
    /// Entries that fail validation, or conflicts with --strict.
    Invalid = 5,
    /// An output that exists or is an input.
    OutputExists = 6,
    /// The homeserver refused or could not be reached.
    Server = 7,
    /// A move ran to its end with something left to do by hand, or a step that failed.
    LeftToDo = 8,
}

impl Exit {
    /// Every code, in order.
    pub const ALL: [Exit; 9] = [
        Exit::Success,
        Exit::Io,
        Exit::Usage,
        Exit::Format,
        Exit::Passphrase,
        Exit::Invalid,
        Exit::OutputExists,
        Exit::Server,
        Exit::LeftToDo,
    ];

    /// The process exit code.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// What the code means, as the README's table says it.
    pub fn meaning(self) -> &'static str {
        match self {
            Exit::Success => "success",
            Exit::Io => "I/O or other failure (including: no passphrase source)",
            Exit::Usage => "bad command line",
            Exit::Format => "the input is not a readable export (not an export, truncated, bad base64, body too short, unsupported version, rounds out of range, not UTF-8, not a JSON array) or document, or a bad room ID",
            Exit::Passphrase => "wrong passphrase, or the file is corrupted",
            Exit::Invalid => "entries fail validation (nothing written), or copies of a session conflict (with `--strict` nothing is written; without `--allow-conflicts` the output is written and the exit is 5)",
            Exit::OutputExists => "the output exists (use `--force`) or is one of the inputs",
            Exit::Server => "the homeserver refused, or could not be reached (no backup, wrong recovery key, bad token, …)",
            Exit::LeftToDo => "`move run` went to its end, but something is left to do by hand (a blocked or partly moved room) or a step failed (run it again), or a dry run found problems that would stop the move: the report says which",
        }
    }
}

/// The exit-code table for `--help`.
pub fn help_table() -> String {
    let mut s = String::from("Exit codes:\n");
    for e in Exit::ALL {
        s.push_str(&format!(
            "  {}  {}\n",
            e.code(),
            e.meaning().replace('`', "")
        ));
    }
    s.push_str(
        "Passphrases, tokens and recovery keys come from files, the environment or a \
         terminal prompt; never argv.",
    );
    s
}

/// A failure: its exit code and a message that says what to do.
#[derive(Debug)]
pub struct Failure {
    /// The exit code.
    pub exit: Exit,
    /// The message.
    pub message: String,
}

impl Failure {
    /// A failure with `exit` and `message`.
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Failure {
            exit,
            message: message.into(),
        }
    }

    /// Adds which file the failure is about.
    pub fn in_file(mut self, path: &str) -> Self {
        self.message = format!("{path}: {}", self.message);
        self
    }

    /// The message with `hint` on a line of its own.
    pub fn with_hint(self, hint: &str) -> Self {
        self.hint(Some(hint))
    }

    fn hint(mut self, hint: Option<&str>) -> Self {
        if let Some(h) = hint {
            self.message = format!("{}\n  hint: {h}", self.message);
        }
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The result of a command.
pub type Outcome<T = ()> = Result<T, Failure>;

/// The exit code of a key-export error, and the flag that helps, if one does.
fn key_exit(e: &KeyError) -> (Exit, Option<&'static str>) {
    match e {
        KeyError::WrongPassphraseOrCorrupted => (Exit::Passphrase, None),
        KeyError::Io(_) | KeyError::Random(_) => (Exit::Io, None),
        KeyError::InvalidRounds { .. } => (Exit::Usage, None),
        KeyError::RoundsOutOfRange { .. } => (
            Exit::Format,
            Some("if you trust this file, raise the cap with --max-rounds N"),
        ),
        _ => (Exit::Format, None),
    }
}

impl From<KeyError> for Failure {
    fn from(e: KeyError) -> Self {
        let (exit, hint) = key_exit(&e);
        Failure::new(exit, e.to_string()).hint(hint)
    }
}

impl From<online::Error> for Failure {
    fn from(e: online::Error) -> Self {
        use online::Error as E;
        let (exit, hint) = match &e {
            E::KeyExport(k) => key_exit(k),
            E::InsecureUrl { .. } => (
                Exit::Usage,
                Some("--allow-insecure-http sends the token in the clear; only for a server you trust on a network you trust"),
            ),
            E::BadUrl { .. } | E::NotARecoveryKey(_) | E::EmptyPhrase => (Exit::Usage, None),
            E::PhraseGivenAsKey => (
                Exit::Usage,
                Some("a security phrase goes in --security-phrase-file (in a plan: old_/new_security_phrase_file)"),
            ),
            E::KeyGivenAsPhrase => (
                Exit::Usage,
                Some("a recovery key goes in --recovery-key-file (in a plan: old_/new_recovery_key_file)"),
            ),
            E::NoPhrase { .. } => (
                Exit::Usage,
                Some("give the recovery key with --recovery-key-file (in a plan: old_/new_recovery_key_file)"),
            ),
            E::WrongAccount { .. } => (
                Exit::Usage,
                Some("check --access-token-file, $MATRIX_ACCESS_TOKEN and --user"),
            ),
            E::Redirect { .. } => (Exit::Server, Some("give that URL with --homeserver")),
            E::WaitBudget { .. } => (Exit::Server, Some("allow longer waits with --max-wait SECONDS")),
            E::TokenRejected { .. } => (
                Exit::Server,
                Some("to let the tool log in: --login oauth, device, sso or password (in a plan: login = \"oauth\", \"device\", \"sso\" or \"password\" instead of token_file)"),
            ),
            E::Api { errcode, .. } if errcode == "M_TOO_LARGE" => {
                (Exit::Server, Some("use a smaller --batch"))
            }
            _ => (Exit::Server, None),
        };
        Failure::new(exit, e.to_string()).hint(hint)
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::new(Exit::Io, e.to_string())
    }
}

impl From<key_export::select::BadRoomId> for Failure {
    fn from(e: key_export::select::BadRoomId) -> Self {
        Failure::new(Exit::Format, e.to_string())
    }
}

/// A pipeline error, with the inputs named (`names[i]` is input `i`).
pub fn pipeline(e: PipelineError, names: &[String]) -> Failure {
    pipeline_with(e, names, "use --drop-invalid to leave them out")
}

/// [`pipeline`], with what to say about invalid entries (which flag of this command helps).
pub fn pipeline_with(e: PipelineError, names: &[String], invalid_hint: &str) -> Failure {
    match e {
        PipelineError::Input { name, error, .. } => Failure::from(error).in_file(&name),
        PipelineError::Merge(MergeError::Invalid(bad)) => Failure::new(
            Exit::Invalid,
            format!(
                "{}\n  hint: importers reject a whole file for one bad entry; {invalid_hint}",
                print::keys::invalid_entries(&bad, names)
            ),
        ),
        PipelineError::Merge(MergeError::Conflicts(c)) => {
            Failure::new(Exit::Invalid, print::keys::strict_conflicts(&c, names))
        }
        PipelineError::Output(e) => e.into(),
    }
}

impl From<migrate::Error> for Failure {
    /// A job's error, for jobs that read no file.
    fn from(e: migrate::Error) -> Self {
        job(e, &[])
    }
}

/// A job's error, with the inputs named.
pub fn job(e: migrate::Error, names: &[String]) -> Failure {
    match e {
        migrate::Error::Keys(p) => pipeline(p, names),
        migrate::Error::Online(o) => o.into(),
        e @ migrate::Error::SameAccount { .. } => Failure::new(Exit::Usage, e.to_string()),
        migrate::Error::Account { account, source } => {
            let mut failure = Failure::from(source);
            failure.message = format!("{account}: {}", failure.message);
            failure
        }
        migrate::Error::Journal(
            j @ (JournalError::OtherPair { .. } | JournalError::NotAJournal { .. }),
        ) => Failure::new(Exit::Usage, j.to_string()),
        migrate::Error::Journal(j @ JournalError::Locked { .. }) => {
            Failure::new(Exit::Io, j.to_string())
        }
        migrate::Error::Journal(j @ migrate::journal::JournalError::Corrupt { .. }) => {
            Failure::new(Exit::Format, j.to_string())
                .hint(Some("give another journal with --state PATH"))
        }
        migrate::Error::Journal(j) => Failure::new(Exit::Io, j.to_string()).hint(Some(
            "the journal must be a writable file: give another with --state PATH \
             (by default it is made in the current directory)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's exit-code table is this module's, word for word.
    #[test]
    fn readme_table_is_the_codes_table() {
        let readme = include_str!("../../../README.md");
        let section = readme
            .split("### Exit codes")
            .nth(1)
            .expect("README has an Exit codes section");
        let rows: Vec<(i32, String)> = section
            .lines()
            .skip_while(|l| !l.starts_with("| 0 "))
            .take_while(|l| l.starts_with('|'))
            .map(|l| {
                let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
                (cells[0].parse().unwrap(), cells[1].to_owned())
            })
            .collect();
        let ours: Vec<(i32, String)> = Exit::ALL
            .iter()
            .map(|e| (e.code(), e.meaning().to_owned()))
            .collect();
        assert_eq!(rows, ours);
    }

    #[test]
    fn help_lists_every_code() {
        let help = help_table();
        for e in Exit::ALL {
            assert!(help.contains(&format!("  {}  ", e.code())), "{e:?}");
        }
    }

    #[test]
    fn libraries_say_what_is_wrong_and_the_binary_names_the_flag() {
        let e = KeyError::RoundsOutOfRange {
            rounds: 20,
            max: 10,
        };
        assert!(!e.to_string().contains("--"), "{e}");
        let f = Failure::from(e);
        assert_eq!(f.exit, Exit::Format);
        assert!(f.message.contains("--max-rounds"), "{f}");
        let f = Failure::from(online::Error::InsecureUrl {
            url: "http://example.org".into(),
        });
        assert_eq!(f.exit, Exit::Usage);
        assert!(f.message.contains("--allow-insecure-http"), "{f}");
    }
}
