//! What the binary prints when something goes wrong, and its exit code.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | I/O or other failure |
//! | 2 | bad command line |
//! | 3 | the input is not a readable export or JSON document |
//! | 4 | wrong passphrase, or the file is corrupted |
//! | 5 | entries failed validation, or copies of a session conflict (nothing written) |
//! | 6 | the output exists (use --force) or would overwrite an input |
//! | 7 | the homeserver refused or could not be reached |

use std::fmt;

use key_export::Error as KeyError;

/// A failure with its exit code and a message that says what to do.
pub struct Failure {
    pub code: i32,
    pub message: String,
}

pub const IO: i32 = 1;
pub const USAGE: i32 = 2;
pub const FORMAT: i32 = 3;
pub const PASSPHRASE: i32 = 4;
pub const INVALID: i32 = 5;
pub const OUTPUT_EXISTS: i32 = 6;
pub const SERVER: i32 = 7;

impl Failure {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
        }
    }

    /// Adds which file the failure is about.
    pub fn in_file(mut self, path: &str) -> Self {
        self.message = format!("{path}: {}", self.message);
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<KeyError> for Failure {
    fn from(e: KeyError) -> Self {
        let code = match e {
            KeyError::WrongPassphraseOrCorrupted => PASSPHRASE,
            KeyError::Io(_) | KeyError::Random(_) => IO,
            _ => FORMAT,
        };
        Failure::new(code, e.to_string())
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::new(IO, e.to_string())
    }
}

pub type Outcome<T = ()> = Result<T, Failure>;
