//! The accounts as the command line names them: each command's flags turned into
//! [`migrate::connect::AccountSpec`] (the token read from its file or the environment), and
//! the library's [`ConnectError`] turned into a message that names the flag that helps.

use std::path::Path;
use std::time::Duration;

use migrate::connect::{self, AccountSpec, ConnectError, LoginMethod, Pair};
use online::client::RateLimits;
use online::{AccessToken, Session};
use zeroize::Zeroizing;

use crate::args::{CommonArgs, LoginKind, OldArgs, SessionArgs, TwoAccounts};
use crate::ask::TerminalAsk;
use crate::exit::{Exit, Failure, Outcome};
use crate::files::read_text;

/// Environment variable with the access token of `upload` / `download`.
pub const TOKEN_ENV: &str = "MATRIX_ACCESS_TOKEN";
/// Environment variable with the old account's access token.
pub const OLD_TOKEN_ENV: &str = "MATRIX_OLD_ACCESS_TOKEN";
/// Environment variable with the new account's access token.
pub const NEW_TOKEN_ENV: &str = "MATRIX_NEW_ACCESS_TOKEN";

/// The flags (or plan keys) that name one account, for messages.
pub struct Flags {
    /// The homeserver's.
    pub homeserver: &'static str,
    /// The user ID's.
    pub user: &'static str,
    /// The token file's.
    pub token_file: &'static str,
    /// How to log in.
    pub login: &'static str,
    /// The identity provider's.
    pub idp: &'static str,
    /// The token's environment variable.
    pub token_env: &'static str,
}

/// The one account of `upload` and `download`.
pub const SINGLE: Flags = Flags {
    homeserver: "--homeserver",
    user: "--user",
    token_file: "--access-token-file",
    login: "--login",
    idp: "--idp",
    token_env: TOKEN_ENV,
};
/// The old account of the `rooms` commands.
pub const OLD: Flags = Flags {
    homeserver: "--old-homeserver",
    user: "--old-user",
    token_file: "--old-token-file",
    login: "--old-login",
    idp: "--old-idp",
    token_env: OLD_TOKEN_ENV,
};
/// The old account of `move init`.
pub const INIT_OLD: Flags = Flags {
    user: "--old",
    ..OLD
};
/// The new account of the `rooms` commands.
pub const NEW: Flags = Flags {
    homeserver: "--new-homeserver",
    user: "--new-user",
    token_file: "--new-token-file",
    login: "--new-login",
    idp: "--new-idp",
    token_env: NEW_TOKEN_ENV,
};
/// The old account of a plan file.
pub const PLAN_OLD: Flags = Flags {
    homeserver: "[old] homeserver",
    user: "[old] user",
    token_file: "[old] token_file",
    login: "[old] login",
    idp: "[old] idp",
    token_env: OLD_TOKEN_ENV,
};
/// The new account of a plan file.
pub const PLAN_NEW: Flags = Flags {
    homeserver: "[new] homeserver",
    user: "[new] user",
    token_file: "[new] token_file",
    login: "[new] login",
    idp: "[new] idp",
    token_env: NEW_TOKEN_ENV,
};

/// One account: how to reach it, and its flags.
pub struct Side {
    /// How to reach it.
    pub spec: AccountSpec,
    /// Its flags, for messages.
    pub flags: &'static Flags,
}

/// What one account's flags say.
pub struct Given<'a> {
    /// The homeserver URL.
    pub homeserver: Option<&'a str>,
    /// The user ID.
    pub user: Option<&'a str>,
    /// The token file.
    pub token_file: Option<&'a Path>,
    /// How to log in.
    pub login: LoginMethod,
    /// The identity provider.
    pub idp: Option<&'a str>,
}

impl<'a> Given<'a> {
    /// What a plan file says of one account (a token file means only the token).
    pub fn of_plan(a: &'a migrate::plan_file::AccountPlan) -> Self {
        Given {
            homeserver: a.homeserver.as_deref(),
            user: Some(&a.user),
            token_file: a.token_file.as_deref(),
            login: a.login_method(),
            idp: a.idp.as_deref(),
        }
    }
}

impl Side {
    /// The account `given` describes, reached with `common`'s options.
    pub fn new(
        given: Given<'_>,
        common: &CommonArgs,
        limits: RateLimits,
        flags: &'static Flags,
    ) -> Outcome<Side> {
        let spec = AccountSpec {
            user: given.user.map(str::to_owned),
            homeserver: given.homeserver.map(str::to_owned),
            token: token(given.token_file, given.login, flags)?,
            login: given.login,
            idp: given.idp.map(str::to_owned),
            allow_insecure_http: common.allow_insecure_http,
            ca_file: common.ca_file.clone(),
            limits,
            login_timeout: None,
            browser: crate::print::browser_opener().is_some(),
        };
        Ok(Side { spec, flags })
    }

    /// The account of `upload` / `download`.
    pub fn single(a: &SessionArgs) -> Outcome<Side> {
        let given = Given {
            homeserver: a.homeserver.as_deref(),
            user: a.user.as_deref(),
            token_file: a.access_token_file.as_deref(),
            login: login_method(a.login),
            idp: a.idp.as_deref(),
        };
        let common = CommonArgs {
            allow_insecure_http: a.allow_insecure_http,
            ca_file: a.ca_file.clone(),
            max_wait: a.max_wait,
        };
        let limits = RateLimits {
            budget: Duration::from_secs(a.max_wait),
            ..RateLimits::default()
        };
        Side::new(given, &common, limits, &SINGLE)
    }

    /// The old account of the `rooms` commands.
    pub fn old(a: &OldArgs, common: &CommonArgs) -> Outcome<Side> {
        let given = Given {
            homeserver: a.old_homeserver.as_deref(),
            user: Some(&a.old_user),
            token_file: a.old_token_file.as_deref(),
            login: login_method(a.old_login),
            idp: a.old_idp.as_deref(),
        };
        Side::new(given, common, long_limits(common), &OLD)
    }

    /// The new account of the `rooms` commands.
    pub fn new_of(a: &TwoAccounts) -> Outcome<Side> {
        let given = Given {
            homeserver: a.new_homeserver.as_deref(),
            user: Some(&a.new_user),
            token_file: a.new_token_file.as_deref(),
            login: login_method(a.new_login),
            idp: a.new_idp.as_deref(),
        };
        Side::new(given, &a.common, long_limits(&a.common), &NEW)
    }
}

impl TwoAccounts {
    /// The old account and the new one.
    pub fn sides(&self) -> Outcome<(Side, Side)> {
        Ok((Side::old(&self.old, &self.common)?, Side::new_of(self)?))
    }
}

/// Rate limits for hours of work: a server's 333 s invite wait is obeyed as asked.
pub fn long_limits(common: &CommonArgs) -> RateLimits {
    RateLimits {
        max_retries: 1000,
        max_single_wait: Duration::from_secs(20 * 60),
        budget: Duration::from_secs(common.max_wait),
        ..RateLimits::default()
    }
}

/// What `--login` asks, as the library takes it.
pub fn login_method(kind: LoginKind) -> LoginMethod {
    match kind {
        LoginKind::Auto => LoginMethod::Auto,
        LoginKind::Oauth => LoginMethod::OAuth,
        LoginKind::Device => LoginMethod::Device,
        LoginKind::Sso => LoginMethod::Sso,
        LoginKind::Password => LoginMethod::Password,
        LoginKind::Token => LoginMethod::TokenOnly,
    }
}

/// The token: from its file, else the environment (unless another way in is asked).
fn token(file: Option<&Path>, login: LoginMethod, flags: &Flags) -> Outcome<Option<AccessToken>> {
    let token_allowed = matches!(login, LoginMethod::Auto | LoginMethod::TokenOnly);
    if file.is_some() && !token_allowed {
        return Err(Failure::new(
            Exit::Usage,
            format!(
                "{} gives a token, {} asks to log in: choose one",
                flags.token_file, flags.login
            ),
        ));
    }
    if let Some(path) = file {
        return Ok(Some(AccessToken::new(&read_text(path)?)));
    }
    match std::env::var(flags.token_env) {
        Ok(token) if token_allowed => Ok(Some(AccessToken::new(&Zeroizing::new(token)))),
        _ => Ok(None),
    }
}

/// The library's error, with the flag that helps.
pub fn failure(e: ConnectError, flags: &Flags) -> Failure {
    match e {
        ConnectError::Online(e) => login_failure(e, flags),
        ConnectError::Discovery { source } => Failure::new(Exit::Server, source.to_string())
            .with_hint(&format!("give {} URL", flags.homeserver)),
        ConnectError::NoHomeserver => Failure::new(
            Exit::Usage,
            format!(
                "give {} URL, or {} @me:server to find it",
                flags.homeserver, flags.user
            ),
        ),
        ConnectError::NeedsUser => Failure::new(
            Exit::Usage,
            format!(
                "no access token: give {}, set {}, or give {} to log in with a password",
                flags.token_file, flags.token_env, flags.user
            ),
        ),
        ConnectError::NoToken => Failure::new(
            Exit::Usage,
            format!(
                "{} token: give {} PATH or set {}",
                flags.login, flags.token_file, flags.token_env
            ),
        ),
        e @ ConnectError::UnknownProvider { .. } => Failure::new(Exit::Usage, e.to_string()),
        ConnectError::NoProviderChosen { offered } => Failure::new(
            Exit::Usage,
            format!(
                "this homeserver has several identity providers: name one with {} ID ({offered})",
                flags.idp
            ),
        ),
        e @ ConnectError::NotConfirmed { .. } => Failure::new(
            Exit::Usage,
            format!("{e}; name the account with {} to check it", flags.user),
        ),
        ConnectError::CannotAsk(why) => Failure::new(
            Exit::Usage,
            format!(
                "{why}: give {} PATH or set {} (see --help for the other ways in)",
                flags.token_file, flags.token_env
            ),
        ),
    }
}

fn login_failure(e: online::Error, flags: &Flags) -> Failure {
    match &e {
        online::Error::LoginUnavailable { offered, .. } => Failure::new(Exit::Usage, e.to_string())
            .with_hint(&format!(
                "choose one it offers with {} ({offered}), or give {} PATH, or set {}",
                flags.login, flags.token_file, flags.token_env
            )),
        _ => Failure::from(e),
    }
}

/// Opens the account, runs `job`, closes the session (a login this tool made is logged
/// out, on failure too).
pub fn with_session<T>(side: &Side, job: impl FnOnce(&Session) -> Outcome<T>) -> Outcome<T> {
    let ask = TerminalAsk::shared();
    let done = connect::with_session(&side.spec, &ask, |s| job(s).map_err(Opened::Job), &closed);
    done.map_err(|e| match e {
        Opened::Job(f) => f,
        Opened::Connect(e) => failure(e, side.flags),
    })
}

/// Opens both accounts (each `whoami` must match its user ID before anything is written),
/// runs `job`, closes both (the old one too when the new one cannot be opened).
pub fn with_pair<T>(
    old: &Side,
    new: &Side,
    job: impl FnOnce(&Pair<'_>) -> Outcome<T>,
) -> Outcome<T> {
    with_session(old, |o| {
        with_session(new, |n| job(&Pair { old: o, new: n }))
    })
}

/// A session that could not be opened, or a job that failed in it.
enum Opened {
    Connect(ConnectError),
    Job(Failure),
}

impl From<ConnectError> for Opened {
    fn from(e: ConnectError) -> Self {
        Opened::Connect(e)
    }
}

fn closed(e: online::Error) {
    crate::warn!("could not log out a session this tool opened: {e}");
}
