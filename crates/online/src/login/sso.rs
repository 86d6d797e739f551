//! The legacy single sign-on login, in two steps: [`start`] binds the loopback listener and
//! builds the homeserver's redirect URL (through an identity provider, when named); the
//! front end shows [`Pending::address`]; [`Pending::finish`] waits for the browser to come
//! back with a login token and exchanges it (once) for an access and a refresh token.

use std::time::Duration;

use super::LoginAddress;
use crate::auth::Tokens;
use crate::client::{secret_json, Client};
use crate::error::{Error, Result};
use crate::loopback::{random_token, Listener};
use zeroize::Zeroizing;

/// A login started: its address to show, waiting for the browser.
pub struct Pending {
    listener: Listener,
    address: LoginAddress,
    state: Zeroizing<String>,
}

/// Builds the login's address; nothing waits yet.
pub fn start(client: &Client, idp: Option<&str>) -> Result<Pending> {
    let listener = Listener::bind("/sso")?;
    let state = random_token(16);
    let mut back = listener.redirect_uri();
    back.query_pairs_mut().append_pair("state", &state);
    let mut segments = vec!["v3", "login", "sso", "redirect"];
    if let Some(idp) = idp {
        segments.push(idp);
    }
    let url = client.url(&segments, &[("redirectUrl", back.as_str())]);
    Ok(Pending {
        address: LoginAddress {
            start: listener.start_url(),
            url,
        },
        listener,
        state,
    })
}

impl Pending {
    /// Where the user logs in.
    pub fn address(&self) -> &LoginAddress {
        &self.address
    }

    /// Waits (at most `timeout`) for the browser to come back, then logs in with the token
    /// it brings.
    pub fn finish(mut self, client: &Client, timeout: Duration) -> Result<Tokens> {
        self.listener.timeout = timeout;
        let callback = self.listener.wait(&self.state, &self.address.url)?;
        let Some(token) = callback.get("loginToken") else {
            return Err(Error::Login {
                reason: "the homeserver sent the browser back without a login token".into(),
            });
        };
        #[derive(serde::Serialize)]
        struct TokenLogin<'a> {
            #[serde(rename = "type")]
            kind: &'a str,
            token: &'a str,
            refresh_token: bool,
            initial_device_display_name: &'a str,
        }
        let body = secret_json(&TokenLogin {
            kind: "m.login.token",
            token,
            refresh_token: true,
            initial_device_display_name: "matrix-transplant",
        });
        client.login("log in with the single sign-on token", &body)
    }
}
