//! Where passphrases come from: a file, an environment variable, or a prompt on the
//! terminal. Never the command line (argv is visible to every user of the machine).

use std::path::Path;

use key_export::Passphrase;
use zeroize::Zeroizing;

use crate::failure::{Failure, Outcome, IO};

/// Environment variable holding the passphrase of the input export(s).
pub const PASSPHRASE_ENV: &str = "MATRIX_TRANSPLANT_PASSPHRASE";
/// Environment variable holding the passphrase for a new export.
pub const OUT_PASSPHRASE_ENV: &str = "MATRIX_TRANSPLANT_OUT_PASSPHRASE";

/// Reads a passphrase from a file (one final line ending is ignored).
pub fn from_file(path: &Path) -> Outcome<Passphrase> {
    let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| {
        Failure::new(
            IO,
            format!("cannot read passphrase file {}: {e}", path.display()),
        )
    })?);
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        Failure::new(
            IO,
            format!("passphrase file {} is not UTF-8 text", path.display()),
        )
    })?;
    Ok(Passphrase::new(text.to_owned()))
}

fn from_env(var: &str) -> Option<Passphrase> {
    std::env::var_os(var).map(|v| Passphrase::new(v.to_string_lossy().into_owned()))
}

fn have_tty() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .is_ok()
}

fn prompt(text: &str) -> Outcome<Passphrase> {
    let p = rpassword::prompt_password(text).map_err(|e| {
        Failure::new(
            IO,
            format!("cannot read the passphrase from the terminal: {e}"),
        )
    })?;
    Ok(Passphrase::new(p))
}

/// The passphrase of an existing export: `file`, else the environment, else a prompt.
pub fn existing(file: Option<&Path>, what: &str) -> Outcome<Passphrase> {
    if let Some(f) = file {
        return from_file(f);
    }
    if let Some(p) = from_env(PASSPHRASE_ENV) {
        return Ok(p);
    }
    if have_tty() {
        return prompt(&format!("Passphrase for {what}: "));
    }
    Err(no_source("--passphrase-file", PASSPHRASE_ENV))
}

/// A passphrase for a new export: `file`, else `env`, else typed twice at a prompt.
/// `fallback`, when given, is used if the user just presses Enter (e.g. "same as input").
pub fn new(file: Option<&Path>, env: &str, fallback: Option<&Passphrase>) -> Outcome<Passphrase> {
    if let Some(f) = file {
        return from_file(f);
    }
    if let Some(p) = from_env(env) {
        return Ok(p);
    }
    if let Some(p) = fallback {
        if !have_tty() {
            return Ok(p.clone());
        }
        let first = prompt("New passphrase for the output (Enter: same as the input's): ")?;
        if first.is_empty() {
            return Ok(p.clone());
        }
        return confirm(first);
    }
    if have_tty() {
        let first = prompt("New passphrase for the output: ")?;
        return confirm(first);
    }
    Err(no_source("--passphrase-file", env))
}

/// A secret typed once at the terminal (an account password, a recovery key).
pub fn password(prompt_text: &str) -> Outcome<Passphrase> {
    if !have_tty() {
        return Err(Failure::new(
            IO,
            format!(
                "{} needs a terminal to ask on; see --help for the file and environment options",
                prompt_text.trim_end_matches(": ")
            ),
        ));
    }
    prompt(prompt_text)
}

fn confirm(first: Passphrase) -> Outcome<Passphrase> {
    if first.is_empty() {
        return Err(Failure::new(
            IO,
            "an empty passphrase would leave the keys unprotected; choose one",
        ));
    }
    let second = prompt("Type it again: ")?;
    if first != second {
        return Err(Failure::new(
            IO,
            "the two passphrases differ; nothing was written, try again",
        ));
    }
    Ok(first)
}

fn no_source(flag: &str, env: &str) -> Failure {
    Failure::new(
        IO,
        format!(
            "no passphrase: there is no terminal to ask on; give {flag} PATH or set {env} \
             (passphrases are never taken on the command line)"
        ),
    )
}
