//! Opening the accounts a job works with, for any front end: the homeserver (given, or found
//! through `.well-known`), the way in (a token the user gave, or a login the way the server
//! wants: OAuth 2.0 or single sign-on in a browser, or a password), checked with `whoami`,
//! and closed again at the end when this tool opened it.
//!
//! The library decides; whatever needs the person goes through [`Ask`], which each front
//! end implements (a terminal prompts, a web page shows a form), as age's `Callbacks` do.
//! Browser logins run in two steps ([`online::login::oauth`], [`online::login::sso`]): the
//! front end is told the address, and the login finishes when the browser comes back.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use online::client::{RateLimits, Wait};
use online::login::device::DeviceCode;
use online::login::{self, IdentityProvider, LoginAddress};
use online::{AccessToken, Closer, Credentials, Homeserver, Session, SessionOptions, Trust};
use zeroize::Zeroizing;

use crate::error::Result;

/// Who moves: the two accounts.
pub struct Pair<'a> {
    /// The old account.
    pub old: &'a Session,
    /// The new account.
    pub new: &'a Session,
}

impl Pair<'_> {
    /// Refuses a pair that is one account twice, as the servers' `whoami` says (not as the
    /// arguments spell it): a move to itself would find every room moved and leave it.
    pub fn distinct(&self) -> Result<()> {
        if self.old.user_id() == self.new.user_id() {
            return Err(crate::Error::SameAccount {
                user: self.old.user_id().to_owned(),
            });
        }
        Ok(())
    }
}

/// How to log in when no token is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginMethod {
    /// What the server offers: OAuth 2.0, else a password (with a user ID), else SSO.
    Auto,
    /// OAuth 2.0 (next-generation auth), in a browser.
    OAuth,
    /// OAuth 2.0's device authorization grant: a code entered on another device.
    Device,
    /// Single sign-on, in a browser.
    Sso,
    /// A password, asked of the person.
    Password,
    /// No login: only a token may be used.
    TokenOnly,
}

impl LoginMethod {
    /// The login it asks of the server; `None` when it asks for none.
    fn method(self) -> Option<login::Method> {
        Some(match self {
            LoginMethod::TokenOnly => return None,
            LoginMethod::Auto => login::Method::Auto,
            LoginMethod::OAuth => login::Method::OAuth,
            LoginMethod::Device => login::Method::Device,
            LoginMethod::Sso => login::Method::Sso,
            LoginMethod::Password => login::Method::Password,
        })
    }
}

/// How to get into one account.
pub struct AccountSpec {
    /// Its user ID: checked against `whoami`, and used to find the homeserver.
    pub user: Option<String>,
    /// Its homeserver URL; else found from `user`.
    pub homeserver: Option<String>,
    /// A token the person gave; else a login.
    pub token: Option<AccessToken>,
    /// How to log in when there is no token.
    pub login: LoginMethod,
    /// The identity provider, when the server has several.
    pub idp: Option<String>,
    /// Plain http allowed beyond loopback.
    pub allow_insecure_http: bool,
    /// Extra certificate authorities (a private CA).
    pub ca_file: Option<PathBuf>,
    /// How long the server may make the job wait.
    pub limits: RateLimits,
    /// How long a browser login may take (`None`: 10 minutes).
    pub login_timeout: Option<Duration>,
    /// A browser can be opened here: else `Auto` logs in with a code entered on another
    /// device, where the server offers that.
    pub browser: bool,
}

/// What went wrong before a session was open; each names what to give instead, without
/// naming any front end's flags.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The homeserver refused or could not be reached, or the login failed.
    #[error(transparent)]
    Online(#[from] online::Error),
    /// Neither the homeserver nor a user ID to find it with.
    #[error("no homeserver: give its URL, or the user ID to find it with")]
    NoHomeserver,
    /// `.well-known` discovery failed.
    #[error("{source}")]
    Discovery {
        /// Why.
        source: online::Error,
    },
    /// A login needs a user ID that was not given.
    #[error("a password login needs the user ID to log in as")]
    NeedsUser,
    /// Only a token may be used, and none was given.
    #[error("no access token was given, and a login was not asked for")]
    NoToken,
    /// The identity provider named is not one the server has.
    #[error("this homeserver has no identity provider {id}; it has: {offered}")]
    UnknownProvider {
        /// The ID named (escaped).
        id: String,
        /// The ones it has: `id (name), …`, escaped.
        offered: String,
    },
    /// The server has several identity providers and none was named (nor could be asked).
    #[error("this homeserver has several identity providers: name one ({offered})")]
    NoProviderChosen {
        /// The ones it has: `id (name), …`, escaped.
        offered: String,
    },
    /// The person did not confirm the account a browser logged in to.
    #[error("the browser logged in as {user}, {why}")]
    NotConfirmed {
        /// The account it logged in to.
        user: String,
        /// Why it was not taken.
        why: String,
    },
    /// The front end could not ask the person (no terminal, no page).
    #[error("{0}")]
    CannotAsk(String),
}

/// What a front end answers for the library, and what it is told.
pub trait Ask: Send + Sync {
    /// The password of `user` (the person types it).
    fn password(&self, user: &str) -> std::result::Result<Zeroizing<String>, ConnectError>;
    /// Which of several identity providers to sign on with; its ID.
    fn provider(&self, providers: &[IdentityProvider])
        -> std::result::Result<String, ConnectError>;
    /// Shows a browser login's address (and opens a browser, when it can).
    fn show_login(&self, address: &LoginAddress);
    /// Shows a device-grant login's code and where to enter it (on a phone).
    fn show_code(&self, code: &DeviceCode);
    /// Whether `user`, the account a browser login came back with, is the one to use.
    fn confirm_account(&self, user: &str) -> std::result::Result<bool, ConnectError>;
    /// Something the person should know ("using homeserver … found through …").
    fn notice(&self, text: &str);
    /// A wait the server imposes.
    fn wait(&self, wait: &Wait);
    /// A session this tool opened: how to end it (a signal handler may need it).
    fn logged_in(&self, closer: Closer);
    /// The sessions are being closed: nothing to end any more on a signal.
    fn closing(&self);
}

/// Opens a session with the account `spec` describes; refused unless `whoami` is its user.
pub fn open(spec: &AccountSpec, ask: &Arc<dyn Ask>) -> std::result::Result<Session, ConnectError> {
    let homeserver = homeserver(spec, ask.as_ref())?;
    let credentials = credentials(spec, &homeserver, ask.as_ref())?;
    let elsewhere = matches!(
        credentials,
        Credentials::OAuth(_) | Credentials::Device(_) | Credentials::Sso { .. }
    );
    let (waits, logins, shows, codes) = (ask.clone(), ask.clone(), ask.clone(), ask.clone());
    let options = SessionOptions {
        expected_user: spec.user.clone(),
        on_wait: Some(Box::new(move |w| waits.wait(w))),
        limits: spec.limits,
        on_login: Some(Box::new(move |closer| logins.logged_in(closer))),
        show_url: Some(Box::new(move |address| shows.show_login(address))),
        show_code: Some(Box::new(move |code| codes.show_code(code))),
        login_timeout: spec.login_timeout,
    };
    let session = Session::open(homeserver, credentials, options)?;
    if elsewhere && spec.user.is_none() {
        confirm(&session, ask.as_ref())?;
    }
    Ok(session)
}

/// The homeserver: the URL given, or found through the user ID's `.well-known`.
fn homeserver(spec: &AccountSpec, ask: &dyn Ask) -> std::result::Result<Homeserver, ConnectError> {
    let trust = Trust::new(spec.ca_file.as_deref())?;
    match (&spec.homeserver, &spec.user) {
        (Some(url), _) => Ok(Homeserver::parse(url, spec.allow_insecure_http)?.trusting(trust)),
        (None, Some(user)) => {
            let hs = Homeserver::discover(user, Some(&trust))
                .map_err(|source| ConnectError::Discovery { source })?;
            ask.notice(&format!(
                "using homeserver {} (found through the .well-known of {})",
                matrix_ids::text::printable(hs.url().as_str()),
                matrix_ids::text::printable(user.split_once(':').map_or("", |(_, s)| s))
            ));
            Ok(hs)
        }
        (None, None) => Err(ConnectError::NoHomeserver),
    }
}

/// The way in: the token given, or the login the server offers that `spec` asks for.
fn credentials(
    spec: &AccountSpec,
    homeserver: &Homeserver,
    ask: &dyn Ask,
) -> std::result::Result<Credentials, ConnectError> {
    if let Some(token) = &spec.token {
        return Ok(Credentials::Token(token.clone()));
    }
    let wanted = spec.login.method().ok_or(ConnectError::NoToken)?;
    let flows = login::flows(&online::Client::anonymous(homeserver.clone()))?;
    let oauth = || Box::new(flows.oauth.clone().expect("chosen because present"));
    match flows.choose(wanted, spec.user.is_some(), spec.browser)? {
        login::Method::OAuth => Ok(Credentials::OAuth(oauth())),
        login::Method::Device => Ok(Credentials::Device(oauth())),
        login::Method::Sso => {
            let providers = flows.sso.clone().unwrap_or_default();
            Ok(Credentials::Sso {
                idp: provider(spec.idp.as_deref(), &providers, ask)?,
            })
        }
        login::Method::Password | login::Method::Auto => {
            let user = spec.user.clone().ok_or(ConnectError::NeedsUser)?;
            let password = ask.password(&user)?;
            Ok(Credentials::Password {
                user_id: user,
                password,
            })
        }
    }
}

/// The identity provider to sign on with: the one named (if the server has it), the only
/// one, or the one the person picks.
fn provider(
    named: Option<&str>,
    providers: &[IdentityProvider],
    ask: &dyn Ask,
) -> std::result::Result<Option<String>, ConnectError> {
    match named {
        Some(id) if providers.is_empty() || providers.iter().any(|p| p.id == id) => {
            Ok(Some(id.to_owned()))
        }
        Some(id) => Err(ConnectError::UnknownProvider {
            id: format!("{:?}", matrix_ids::text::printable(id)),
            offered: providers_text(providers),
        }),
        None if providers.len() <= 1 => Ok(providers.first().map(|p| p.id.clone())),
        None => ask.provider(providers).map(Some),
    }
}

/// The providers as `id (name), …`, escaped.
pub fn providers_text(providers: &[IdentityProvider]) -> String {
    providers
        .iter()
        .map(|p| {
            format!(
                "{} ({})",
                matrix_ids::text::printable(&p.id),
                matrix_ids::text::printable(&p.name)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A browser login with no user named: the browser may have been logged in to another
/// account (or someone else may have answered the login), so the person confirms it.
fn confirm(session: &Session, ask: &dyn Ask) -> std::result::Result<(), ConnectError> {
    let user = session.user_id();
    if ask.confirm_account(user)? {
        Ok(())
    } else {
        Err(ConnectError::NotConfirmed {
            user: matrix_ids::text::printable(user),
            why: "which was not confirmed".into(),
        })
    }
}

/// Closes a session this tool opened (logs it out, or revokes it); `false` when that failed
/// (the caller says so: the job's result stands).
pub fn close(session: Session) -> std::result::Result<(), online::Error> {
    session.close()
}

/// Opens the account, runs `job`, closes the session (logging out what this tool logged
/// in, on failure too); the errors of closing are handed to `closed` (the job's result
/// stands).
pub fn with_session<T, E: From<ConnectError>>(
    spec: &AccountSpec,
    ask: &Arc<dyn Ask>,
    job: impl FnOnce(&Session) -> std::result::Result<T, E>,
    closed: &dyn Fn(online::Error),
) -> std::result::Result<T, E> {
    let session = open(spec, ask)?;
    let result = job(&session);
    ask.closing();
    if let Err(e) = close(session) {
        closed(e);
    }
    result
}
