//! Where passphrases come from: a file, an environment variable, or a prompt on the
//! terminal. Never the command line (argv is visible to every user of the machine).

use std::path::Path;

use key_export::Passphrase;
use online::backup::Recovery;
use online::login::{self, IdentityProvider, Method};
use online::{AccessToken, Credentials, Homeserver};

use crate::args::LoginKind;
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

/// How one account logs in, and the flags that say so (for messages).
pub struct Login<'a> {
    /// `--login`.
    pub kind: LoginKind,
    /// `--idp`.
    pub idp: Option<&'a str>,
    /// The token file flag, the user flag, the login flag.
    pub flags: (&'a str, &'a str, &'a str),
    /// The token's environment variable.
    pub token_env: &'a str,
}

/// How to get in: the token from `token_file`, else the environment (unless another way
/// is asked), else a login the server offers: OAuth 2.0 or SSO in a browser, or a
/// password for `user` asked on the terminal.
pub fn credentials(
    token_file: Option<&Path>,
    user: Option<&str>,
    login: &Login<'_>,
    homeserver: &Homeserver,
) -> Outcome<Credentials> {
    let (file_flag, user_flag, login_flag) = login.flags;
    let env = login.token_env;
    if token_file.is_some() && !matches!(login.kind, LoginKind::Auto | LoginKind::Token) {
        return Err(Failure::new(
            Exit::Usage,
            format!("{file_flag} gives a token, {login_flag} asks to log in: choose one"),
        ));
    }
    if let Some(path) = token_file {
        return Ok(Credentials::Token(AccessToken::new(&read_text(path)?)));
    }
    if matches!(login.kind, LoginKind::Auto | LoginKind::Token) {
        if let Ok(token) = std::env::var(env) {
            return Ok(Credentials::Token(AccessToken::new(&Zeroizing::new(token))));
        }
    }
    let method = match login.kind {
        LoginKind::Token => {
            return Err(Failure::new(
                Exit::Usage,
                format!("{login_flag} token: give {file_flag} PATH or set {env}"),
            ))
        }
        LoginKind::Auto => Method::Auto,
        LoginKind::Oauth => Method::OAuth,
        LoginKind::Sso => Method::Sso,
        LoginKind::Password => Method::Password,
    };
    let flows = login::flows(&online::Client::anonymous(homeserver.clone()))?;
    let usage = |e: online::Error| {
        let hint = match &e {
            online::Error::LoginUnavailable { offered, .. } => format!(
                "choose one it offers with {login_flag} ({offered}), or give {file_flag} PATH, or set {env}"
            ),
            _ => format!("or give {file_flag} PATH, or set {env}"),
        };
        Failure::new(Exit::Usage, e.to_string()).with_hint(&hint)
    };
    match flows.choose(method, user.is_some()).map_err(usage)? {
        Method::OAuth => Ok(Credentials::OAuth(Box::new(
            flows.oauth.clone().expect("chosen because present"),
        ))),
        Method::Sso => {
            let providers = flows.sso.clone().unwrap_or_default();
            let idp = match login.idp {
                Some(id) if providers.is_empty() || providers.iter().any(|p| p.id == id) => {
                    Some(id.to_owned())
                }
                Some(id) => {
                    return Err(Failure::new(
                        Exit::Usage,
                        format!(
                            "this homeserver has no identity provider {id:?}; it has: {}",
                            providers_text(&providers)
                        ),
                    ))
                }
                None if providers.len() <= 1 => providers.first().map(|p| p.id.clone()),
                None => Some(pick_provider(&providers, login.flags.2)?),
            };
            Ok(Credentials::Sso { idp })
        }
        Method::Password | Method::Auto => {
            let Some(user) = user else {
                return Err(Failure::new(
                    Exit::Usage,
                    format!("no access token: give {file_flag}, set {env}, or give {user_flag} to log in with a password"),
                ));
            };
            let password = password(&format!("Password for {user}: "))?;
            Ok(Credentials::Password {
                user_id: user.to_owned(),
                password: Zeroizing::new(password.expose().to_owned()),
            })
        }
    }
}

fn providers_text(providers: &[IdentityProvider]) -> String {
    providers
        .iter()
        .map(|p| {
            format!(
                "{} ({})",
                crate::print::safe(&p.id),
                crate::print::safe(&p.name)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Asks which identity provider to use (on a terminal; else says how to name one).
fn pick_provider(providers: &[IdentityProvider], login_flag: &str) -> Outcome<String> {
    let idp_flag = login_flag.replace("login", "idp");
    if !have_tty() {
        return Err(Failure::new(
            Exit::Usage,
            format!(
                "this homeserver has several identity providers: name one with {idp_flag} ID ({})",
                providers_text(providers)
            ),
        ));
    }
    eprintln!("This homeserver offers several ways to sign on:");
    for (i, p) in providers.iter().enumerate() {
        eprintln!(
            "  {}. {} ({})",
            i + 1,
            crate::print::safe(&p.name),
            crate::print::safe(&p.id)
        );
    }
    let answer = prompt(&format!("Which one (1-{})? ", providers.len()))?;
    answer
        .expose()
        .trim()
        .parse::<usize>()
        .ok()
        .and_then(|n| providers.get(n.checked_sub(1)?))
        .map(|p| p.id.clone())
        .ok_or_else(|| {
            Failure::new(
                Exit::Usage,
                format!(
                    "not one of 1-{}: name one with {idp_flag} ID",
                    providers.len()
                ),
            )
        })
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
