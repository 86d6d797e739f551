//! Logging in from the page: the server found from the user ID and asked how it lets people
//! in ([`offered`]); then the login the person picked, on the job's thread, the library's
//! questions answered by the page ([`PageAsk`]): the password typed in the form, the login
//! address shown as a link, the device code shown.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use migrate::connect::{self, AccountSpec, Ask, ConnectError, LoginMethod};
use online::client::{RateLimits, Wait};
use online::login::device::DeviceCode;
use online::login::{IdentityProvider, LoginAddress};
use online::{AccessToken, Closer, Homeserver, Trust};
use zeroize::Zeroizing;

use crate::jobs::Jobs;
use crate::state::Offered;

/// How the person chose to log in.
pub enum How {
    /// OAuth 2.0 in a browser tab.
    OAuth,
    /// Single sign-on in a browser tab, with this identity provider.
    Sso(Option<String>),
    /// A password typed in the page.
    Password(Zeroizing<String>),
    /// An access token pasted in the page.
    Token(Zeroizing<String>),
}

impl How {
    /// What the plan says of it (a token is not written: the terminal logs in its own way).
    pub fn plan_login(&self) -> migrate::plan_file::PlanLogin {
        use migrate::plan_file::PlanLogin;
        match self {
            How::OAuth => PlanLogin::OAuth,
            How::Sso(_) => PlanLogin::Sso,
            How::Password(_) => PlanLogin::Password,
            How::Token(_) => PlanLogin::Ask,
        }
    }
}

/// The options of every account the page opens.
#[derive(Debug, Clone, Default)]
pub struct Reach {
    /// Plain http allowed beyond loopback.
    pub allow_insecure_http: bool,
    /// Extra certificate authorities.
    pub ca_file: Option<std::path::PathBuf>,
    /// How long the server may make a job wait.
    pub limits: RateLimits,
    /// How long a browser login may take.
    pub login_timeout: Option<Duration>,
}

/// The homeserver of `user` (or at `url`) and the ways in it offers.
pub fn offered(user: &str, url: Option<&str>, reach: &Reach) -> Result<Offered, String> {
    let trust = Trust::new(reach.ca_file.as_deref()).map_err(|e| e.to_string())?;
    let (homeserver, found) = match url {
        Some(url) => (
            Homeserver::parse(url, reach.allow_insecure_http).map_err(|e| e.to_string())?,
            None,
        ),
        None => {
            let hs = Homeserver::discover(user, Some(&trust)).map_err(|e| {
                format!("{e}. If you know your homeserver's address, give it under \"Homeserver\".")
            })?;
            let server = user.split_once(':').map_or("", |(_, s)| s);
            (
                hs,
                Some(format!("found through the .well-known of {server}")),
            )
        }
    };
    let homeserver = homeserver.trusting(trust);
    let flows = online::login::flows(&online::Client::anonymous(homeserver.clone()))
        .map_err(|e| e.to_string())?;
    Ok(Offered {
        url: homeserver.url().to_string(),
        found,
        oauth: flows.oauth.is_some(),
        password: flows.password,
        sso: flows
            .sso
            .map(|ps| ps.into_iter().map(|p| (p.id, p.name)).collect()),
    })
}

/// The spec of one login.
pub fn spec(user: &str, homeserver: &str, how: &How, reach: &Reach) -> AccountSpec {
    let (login, idp, token) = match how {
        How::OAuth => (LoginMethod::OAuth, None, None),
        How::Sso(idp) => (LoginMethod::Sso, idp.clone(), None),
        How::Password(_) => (LoginMethod::Password, None, None),
        How::Token(t) => (LoginMethod::TokenOnly, None, Some(AccessToken::new(t))),
    };
    AccountSpec {
        user: Some(user.to_owned()),
        homeserver: Some(homeserver.to_owned()),
        token,
        login,
        idp,
        allow_insecure_http: reach.allow_insecure_http,
        ca_file: reach.ca_file.clone(),
        limits: reach.limits,
        login_timeout: reach.login_timeout,
        browser: true,
    }
}

/// The page's answers to the library.
pub struct PageAsk {
    /// The password typed, taken once.
    pub password: Mutex<Option<Zeroizing<String>>>,
    /// Where what the person must see goes.
    pub jobs: Arc<Jobs>,
}

impl Ask for PageAsk {
    fn password(&self, _user: &str) -> Result<Zeroizing<String>, ConnectError> {
        self.password
            .lock()
            .expect("password lock")
            .take()
            .ok_or_else(|| ConnectError::CannotAsk("no password was typed".into()))
    }

    fn provider(&self, providers: &[IdentityProvider]) -> Result<String, ConnectError> {
        Err(ConnectError::NoProviderChosen {
            offered: connect::providers_text(providers),
        })
    }

    fn show_login(&self, address: &LoginAddress) {
        let start = address.start.to_string();
        self.jobs.update(|p| p.login_address = Some(start));
    }

    fn show_code(&self, code: &DeviceCode) {
        let shown = (code.user_code.clone(), code.verification_uri.to_string());
        self.jobs.update(|p| p.login_code = Some(shown));
    }

    fn confirm_account(&self, user: &str) -> Result<bool, ConnectError> {
        // The page always names the user, so the library checks it itself.
        Err(ConnectError::NotConfirmed {
            user: matrix_ids::text::printable(user),
            why: "and the page names no account to compare it with".into(),
        })
    }

    fn notice(&self, text: &str) {
        let text = text.to_owned();
        self.jobs.update(|p| p.notices.push(text));
    }

    fn wait(&self, wait: &Wait) {
        let text = format!(
            "The server asked to wait {} s ({:?}).",
            wait.duration.as_secs(),
            wait.cause
        );
        self.jobs.update(|p| p.notices.push(text));
    }

    fn logged_in(&self, _closer: Closer) {}

    fn closing(&self) {}
}
