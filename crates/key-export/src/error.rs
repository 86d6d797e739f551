//! The ways reading or writing a key-export file can fail.
//!
//! Every variant's message says what is wrong and what the user can do about it: this
//! text is shown as-is by the command-line tool.

use std::io;

/// An error while reading, decrypting, parsing or writing a key-export file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No `-----BEGIN MEGOLM SESSION DATA-----` line was found.
    #[error(
        "this is not a Matrix key export: no \"-----BEGIN MEGOLM SESSION DATA-----\" line was found \
         (in Element: Settings → Security & Privacy → Export E2E room keys makes one)"
    )]
    NotAnExport,

    /// The BEGIN line was found but no END line: the file was cut short.
    #[error(
        "the export is truncated: it has no \"-----END MEGOLM SESSION DATA-----\" line \
         (the file was cut short while saving or copying; export the keys again)"
    )]
    Truncated,

    /// A character that is not base64 (or padding in the middle of the data).
    #[error("bad base64 on line {line}: {reason} (the file is damaged; export the keys again)")]
    BadBase64 {
        /// 1-based line number in the file.
        line: usize,
        /// What exactly was wrong.
        reason: String,
    },

    /// The decoded body is shorter than the smallest possible export (69 bytes).
    #[error(
        "the export's data is only {len} bytes, shorter than the 69 bytes of even an empty \
         export (the file is damaged or truncated; export the keys again)"
    )]
    BodyTooShort {
        /// Decoded length in bytes.
        len: usize,
    },

    /// The version byte is not 1.
    #[error(
        "unsupported key-export version {version}: only version 1 exists (the file was made \
         by an unknown tool, or is damaged)"
    )]
    UnsupportedVersion {
        /// The version byte found.
        version: u8,
    },

    /// The PBKDF2 round count is 0 or above the configured cap.
    #[error(
        "the export asks for {rounds} PBKDF2 rounds, outside the accepted range 1..={max} \
         (a hostile file can make decryption take hours; if you trust this file, raise the \
         cap)"
    )]
    RoundsOutOfRange {
        /// Rounds in the file.
        rounds: u32,
        /// The configured cap.
        max: u32,
    },

    /// A round count this tool will not write.
    #[error("cannot write {rounds} PBKDF2 rounds: choose 1 to 2147483647 (Element reads the count as a signed 32-bit number)")]
    InvalidRounds {
        /// The rejected value.
        rounds: u32,
    },

    /// The HMAC did not verify.
    #[error(
        "wrong passphrase, or the file is corrupted (its authentication code does not match); \
         check the passphrase you typed when exporting"
    )]
    WrongPassphraseOrCorrupted,

    /// Decrypted, authenticated, but the plaintext is not UTF-8.
    #[error(
        "the export's JSON is not UTF-8 text (invalid byte at offset {offset}); the file \
         was made by a broken tool"
    )]
    NotUtf8 {
        /// Offset of the first invalid byte.
        offset: usize,
    },

    /// The plaintext is not a JSON array of session objects.
    #[error(
        "the export's JSON is not an array of sessions: {reason} at line {line}, column {column}"
    )]
    NotSessionArray {
        /// What the JSON parser found wrong.
        reason: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },

    /// The operating system could not provide random bytes.
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),

    /// Reading or writing failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

impl Error {
    pub(crate) fn from_json(e: serde_json::Error) -> Self {
        let mut reason = e.to_string();
        // serde_json appends " at line L column C"; we print those separately.
        if let Some(cut) = reason.find(" at line ") {
            reason.truncate(cut);
        }
        Error::NotSessionArray {
            reason,
            line: e.line(),
            column: e.column(),
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
