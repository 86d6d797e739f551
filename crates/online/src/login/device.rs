//! The OAuth 2.0 device authorization grant (RFC 8628; MSC4341, spec v1.18): a login on a
//! machine with no browser (a server, an SSH session). In two steps, like the browser
//! logins: [`start`] registers the tool and asks for a code; the front end shows
//! [`Pending::code`] (a short code, and the address where to enter it on any device, a
//! phone); [`Pending::finish`] polls the token endpoint as the grant says (`interval`,
//! `authorization_pending`, `slow_down`, `expired_token`, `access_denied`) until the
//! person approves. The tokens refresh and revoke as those of the browser login.

use std::time::{Duration, Instant};

use serde::Deserialize;
use url::Url;
use zeroize::Zeroizing;

use super::oauth::{self, OAuthClient};
use super::AuthMetadata;
use crate::auth::{Refresh, Tokens};
use crate::client::{printable, Client};
use crate::error::{Error, Result};
use crate::token::AccessToken;
use crate::wire::{Attempt, Body, Method};

/// The grant type of RFC 8628.
pub const GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// What the person is shown: where to go, and the code to enter there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCode {
    /// The code the person enters (short-lived, single-use, useless without their login).
    pub user_code: String,
    /// Where to enter it.
    pub verification_uri: Url,
    /// The same address with the code in it, when the server gives one (for a QR code or
    /// a click).
    pub verification_uri_complete: Option<Url>,
    /// How long the code is valid.
    pub expires_in: Duration,
}

/// A login started: the code to show, the polling still to do.
pub struct Pending {
    agent: ureq::Agent,
    code: DeviceCode,
    device_code: Zeroizing<String>,
    interval: Duration,
    registered: OAuthClient,
    token_endpoint: Url,
}

/// What the device authorization endpoint answers (RFC 8628 §3.2).
#[derive(Deserialize)]
struct Authorization {
    device_code: Zeroizing<String>,
    user_code: String,
    verification_uri: Url,
    #[serde(default)]
    verification_uri_complete: Option<Url>,
    expires_in: u64,
    #[serde(default)]
    interval: Option<u64>,
}

/// The wait between polls when the server names none (RFC 8628 §3.2).
const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// What a `slow_down` adds to the wait (RFC 8628 §3.5).
const SLOW_DOWN: Duration = Duration::from_secs(5);

/// Registers the tool and asks for a code; nothing is polled yet. Refused unless the
/// server offers the grant.
pub fn start(client: &Client, meta: &AuthMetadata) -> Result<Pending> {
    let Some(endpoint) = meta
        .device_authorization_endpoint
        .as_ref()
        .filter(|_| meta.offers_device_code())
    else {
        return Err(Error::Login {
            reason: "the OAuth 2.0 server does not offer the device authorization grant".into(),
        });
    };
    let agent = client.agent().clone();
    let client_id = oauth::register(&agent, meta)?;
    let scope = oauth::scope();
    let form = oauth::form_body(&[("client_id", &client_id), ("scope", &scope)]);
    let body = Body::Bytes {
        content_type: "application/x-www-form-urlencoded",
        data: &form,
    };
    let what = "ask the OAuth 2.0 server for a device code";
    let got: Authorization = oauth::json_answer(oauth::post(&agent, endpoint, &body, what)?, what)?;
    let home = client.homeserver().url();
    for url in [
        Some(&got.verification_uri),
        got.verification_uri_complete.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        crate::homeserver::check_endpoint(url, home)?;
    }
    Ok(Pending {
        agent,
        code: DeviceCode {
            user_code: got.user_code,
            verification_uri: got.verification_uri,
            verification_uri_complete: got.verification_uri_complete,
            expires_in: Duration::from_secs(got.expires_in),
        },
        device_code: got.device_code,
        interval: got.interval.map_or(DEFAULT_INTERVAL, Duration::from_secs),
        registered: OAuthClient {
            client_id,
            revocation_endpoint: meta.revocation_endpoint.clone(),
        },
        token_endpoint: meta.token_endpoint.clone(),
    })
}

/// One poll's outcome.
enum Poll {
    Granted(oauth::Granted),
    Pending,
    SlowDown,
}

impl Pending {
    /// What to show the person.
    pub fn code(&self) -> &DeviceCode {
        &self.code
    }

    /// Polls until the person approves (or refuses, or the code expires, or `timeout`
    /// passes), then returns the tokens.
    pub fn finish(mut self, timeout: Duration) -> Result<(Tokens, OAuthClient)> {
        let deadline = Instant::now() + timeout.min(self.code.expires_in);
        loop {
            if Instant::now() + self.interval > deadline {
                return Err(Error::Login {
                    reason: "the code was not approved in time: log in again for a new one".into(),
                });
            }
            std::thread::sleep(self.interval);
            match self.poll()? {
                Poll::Granted(granted) => return Ok(self.tokens(granted)),
                Poll::Pending => {}
                Poll::SlowDown => self.interval += SLOW_DOWN,
            }
        }
    }

    /// Asks the token endpoint once.
    fn poll(&self) -> Result<Poll> {
        let client_id = self.registered.client_id.as_str();
        let form = oauth::form_body(&[
            ("grant_type", GRANT),
            ("device_code", &self.device_code),
            ("client_id", client_id),
        ]);
        let body = Body::Bytes {
            content_type: "application/x-www-form-urlencoded",
            data: &form,
        };
        let what = "poll the OAuth 2.0 server for the login's approval";
        let error = match crate::wire::send(
            &self.agent,
            what,
            Method::Post,
            &self.token_endpoint,
            &body,
            None,
            None,
        ) {
            Attempt::Done(resp) => return oauth::json_answer(resp, what).map(Poll::Granted),
            // RFC 8628 §3.5: the OAuth error code is the `error` of a 400 answer.
            Attempt::Failed(Error::Api {
                status: 400 | 401,
                message,
                ..
            }) => message,
            Attempt::RateLimited { .. } => return Ok(Poll::SlowDown),
            Attempt::Retryable { error, .. }
            | Attempt::Unauthorized(error)
            | Attempt::Failed(error) => {
                return Err(Error::Login {
                    reason: format!("could not {what}: {error}"),
                })
            }
        };
        match error.as_str() {
            "authorization_pending" => Ok(Poll::Pending),
            "slow_down" => Ok(Poll::SlowDown),
            "expired_token" => Err(Error::Login {
                reason: "the code expired before it was approved: log in again for a new one"
                    .into(),
            }),
            "access_denied" => Err(Error::Login {
                reason: "the login was refused on the device where the code was entered".into(),
            }),
            other => Err(Error::Login {
                reason: format!(
                    "the OAuth 2.0 server refused the login: {}",
                    printable(other)
                ),
            }),
        }
    }

    fn tokens(self, granted: oauth::Granted) -> (Tokens, OAuthClient) {
        let tokens = Tokens {
            access: AccessToken::new(&granted.access_token),
            refresh: granted.refresh_token.map(|token| Refresh::OAuth {
                url: self.token_endpoint.clone(),
                client_id: self.registered.client_id.clone(),
                token,
            }),
            expires_in: granted.expires_in.map(Duration::from_secs),
        };
        (tokens, self.registered)
    }
}
