//! Where passphrases come from: a file, an environment variable, or a prompt on the
//! terminal. Never the command line (argv is visible to every user of the machine).

use std::path::Path;

use key_export::Passphrase;
use online::backup::Recovery;
use zeroize::Zeroizing;

use crate::exit::{Exit, Failure, Outcome};

/// Environment variable holding the passphrase of the input export(s).
pub const PASSPHRASE_ENV: &str = "MATRIX_TRANSPLANT_PASSPHRASE";
/// Environment variable holding the passphrase for a new export.
pub const OUT_PASSPHRASE_ENV: &str = "MATRIX_TRANSPLANT_OUT_PASSPHRASE";
/// Environment variable with a recovery key.
pub const RECOVERY_KEY_ENV: &str = "MATRIX_TRANSPLANT_RECOVERY_KEY";
/// Environment variable with a security phrase.
pub const SECURITY_PHRASE_ENV: &str = "MATRIX_TRANSPLANT_SECURITY_PHRASE";

/// Reads a passphrase from a file (one final line ending is ignored).
pub fn from_file(path: &Path) -> Outcome<Passphrase> {
    let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| {
        Failure::new(
            Exit::Io,
            format!("cannot read passphrase file {}: {e}", path.display()),
        )
    })?);
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        Failure::new(
            Exit::Io,
            format!("passphrase file {} is not UTF-8 text", path.display()),
        )
    })?;
    Ok(Passphrase::new(text.to_owned()))
}

fn from_env(var: &str) -> Option<Passphrase> {
    std::env::var_os(var).map(|v| Passphrase::new(v.to_string_lossy().into_owned()))
}

pub fn have_tty() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .is_ok()
}

/// An answer typed at the terminal, not echoed (a password, a choice).
pub fn prompt_text(text: &str) -> Outcome<Passphrase> {
    prompt(text)
}

fn prompt(text: &str) -> Outcome<Passphrase> {
    let p = rpassword::prompt_password(text).map_err(|e| {
        Failure::new(
            Exit::Io,
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
            Exit::Io,
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
            Exit::Io,
            "an empty passphrase would leave the keys unprotected; choose one",
        ));
    }
    let second = prompt("Type it again: ")?;
    if first != second {
        return Err(Failure::new(
            Exit::Io,
            "the two passphrases differ; nothing was written, try again",
        ));
    }
    Ok(first)
}

fn no_source(flag: &str, env: &str) -> Failure {
    Failure::new(
        Exit::Io,
        format!(
            "no passphrase: there is no terminal to ask on; give {flag} PATH or set {env} \
             (passphrases are never taken on the command line)"
        ),
    )
}

/// What opens an account's backup: the recovery key or the security phrase in a file (the
/// file says which), else the environment, else asked on the terminal, where either can be
/// typed.
pub fn recovery(
    key_file: Option<&Path>,
    phrase_file: Option<&Path>,
    whose: &str,
) -> Outcome<Recovery> {
    let read = |path: &Path, what: &str| {
        from_file(path)
            .map_err(|e| Failure::new(e.exit, e.message.replacen("passphrase file", what, 1)))
    };
    let in_file =
        |e: online::Error, path: &Path| Failure::from(e).in_file(&path.display().to_string());
    match (key_file, phrase_file) {
        (Some(_), Some(_)) => Err(Failure::new(
            Exit::Usage,
            "--recovery-key-file and --security-phrase-file: give one (either opens the backup)",
        )),
        (Some(path), None) => {
            let text = read(path, "recovery key file")?;
            Recovery::key(text.expose()).map_err(|e| in_file(e, path))
        }
        (None, Some(path)) => {
            let text = read(path, "security phrase file")?;
            Recovery::phrase(text.expose()).map_err(|e| in_file(e, path))
        }
        (None, None) => {
            if let Ok(key) = std::env::var(RECOVERY_KEY_ENV) {
                return Ok(Recovery::key(&Zeroizing::new(key))?);
            }
            if let Ok(phrase) = std::env::var(SECURITY_PHRASE_ENV) {
                return Ok(Recovery::phrase(&Zeroizing::new(phrase))?);
            }
            let typed = password(&format!(
                "Recovery key (or security phrase) of {whose} (Element: Settings → Encryption): "
            ))
            .map_err(|_| {
                Failure::new(
                    Exit::Io,
                    format!(
                        "no recovery key: give --recovery-key-file PATH (or \
                         --security-phrase-file PATH), or set {RECOVERY_KEY_ENV} (or \
                         {SECURITY_PHRASE_ENV})"
                    ),
                )
            })?;
            // Typed, either is fine: a key if it reads as one, else a phrase.
            Ok(Recovery::key(typed.expose()).or_else(|_| Recovery::phrase(typed.expose()))?)
        }
    }
}
