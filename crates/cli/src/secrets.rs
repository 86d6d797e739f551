//! Where passphrases come from: a file, an environment variable, or a prompt on the
//! terminal. Never the command line (argv is visible to every user of the machine).

use std::path::Path;

use key_export::Passphrase;
use online::backup::RecoveryKey;
use online::{AccessToken, Credentials};
use zeroize::Zeroizing;

use crate::files::read_text;

use crate::exit::{Exit, Failure, Outcome};

/// Environment variable holding the passphrase of the input export(s).
pub const PASSPHRASE_ENV: &str = "MATRIX_TRANSPLANT_PASSPHRASE";
/// Environment variable holding the passphrase for a new export.
pub const OUT_PASSPHRASE_ENV: &str = "MATRIX_TRANSPLANT_OUT_PASSPHRASE";
/// Environment variable with an access token.
pub const TOKEN_ENV: &str = "MATRIX_ACCESS_TOKEN";
/// Environment variable with a recovery key.
pub const RECOVERY_KEY_ENV: &str = "MATRIX_TRANSPLANT_RECOVERY_KEY";

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

/// How to log in: the token from `token_file`, else the environment, else a password for
/// `user` asked on the terminal.
pub fn credentials(token_file: Option<&Path>, user: Option<&str>) -> Outcome<Credentials> {
    credentials_from(
        token_file,
        TOKEN_ENV,
        user,
        ("--access-token-file", "--user"),
    )
}

/// [`credentials`], with the token's environment variable and the two flags to name.
pub fn credentials_from(
    token_file: Option<&Path>,
    token_env: &str,
    user: Option<&str>,
    (file_flag, user_flag): (&str, &str),
) -> Outcome<Credentials> {
    if let Some(path) = token_file {
        return Ok(Credentials::Token(AccessToken::new(&read_text(path)?)));
    }
    if let Ok(token) = std::env::var(token_env) {
        return Ok(Credentials::Token(AccessToken::new(&Zeroizing::new(token))));
    }
    let Some(user) = user else {
        return Err(Failure::new(
            Exit::Usage,
            format!("no access token: give {file_flag}, set {token_env}, or give {user_flag} to log in with a password"),
        ));
    };
    let password = password(&format!("Password for {user}: "))?;
    Ok(Credentials::Password {
        user_id: user.to_owned(),
        password: Zeroizing::new(password.expose().to_owned()),
    })
}

/// The recovery key: from `file`, else the environment, else asked on the terminal.
pub fn recovery_key(file: Option<&Path>) -> Outcome<RecoveryKey> {
    let text = match file {
        Some(path) => from_file(path)?,
        None => match std::env::var(RECOVERY_KEY_ENV) {
            Ok(v) => Passphrase::new(v),
            Err(_) => password("Recovery key (Security Key) of the backup: ").map_err(|_| {
                Failure::new(
                    Exit::Io,
                    format!(
                        "no recovery key: give --recovery-key-file PATH or set {RECOVERY_KEY_ENV}"
                    ),
                )
            })?,
        },
    };
    Ok(RecoveryKey::parse(text.expose())?)
}
