//! The OAuth 2.0 login as a native app (next-generation auth), in two steps as matrix-sdk's
//! auth-code builder has it: [`start`] registers the tool (RFC 7591), binds the loopback
//! listener and builds the authorization URL with a PKCE S256 challenge, a `state` and a
//! device scope of our own; the front end shows [`Pending::address`] its own way; then
//! [`Pending::finish`] waits for the browser to come back and exchanges the code. Every
//! request to the auth server goes through the one wire path; forms with secrets are
//! encoded into wiped buffers.

use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use url::Url;
use zeroize::Zeroizing;

use super::{AuthMetadata, LoginAddress};
use crate::auth::{Refresh, Tokens};
use crate::client::{printable, Client};
use crate::error::{Error, Result};
use crate::loopback::{random_token, Listener};
use crate::token::AccessToken;
use crate::wire::{self, Attempt, Body, Method};

/// What this tool registered with an OAuth 2.0 server, to refresh and revoke with.
#[derive(Debug, Clone)]
pub struct OAuthClient {
    /// Our client ID.
    pub client_id: String,
    /// The revocation endpoint, when the server has one.
    pub revocation_endpoint: Option<Url>,
}

/// The redirect URI registered: loopback, any port (RFC 8252 §7.3).
const REDIRECT: &str = "http://127.0.0.1/callback";

/// A login started: its address to show, waiting for the browser.
pub struct Pending {
    agent: ureq::Agent,
    listener: Listener,
    address: LoginAddress,
    state: Zeroizing<String>,
    verifier: Zeroizing<String>,
    registered: OAuthClient,
    token_endpoint: Url,
}

/// Registers the tool and builds the login's address; nothing waits yet.
pub fn start(client: &Client, meta: &AuthMetadata) -> Result<Pending> {
    check_pkce(meta)?;
    let agent = client.agent().clone();
    let client_id = register(&agent, meta)?;
    let listener = Listener::bind("/callback")?;
    let state = random_token(16);
    let verifier = random_token(32);
    let url = authorization_url(
        meta,
        &client_id,
        &listener.redirect_uri(),
        &state,
        &verifier,
    );
    Ok(Pending {
        address: LoginAddress {
            start: listener.start_url(),
            url,
        },
        agent,
        listener,
        state,
        verifier,
        registered: OAuthClient {
            client_id,
            revocation_endpoint: meta.revocation_endpoint.clone(),
        },
        token_endpoint: meta.token_endpoint.clone(),
    })
}

impl Pending {
    /// Where the user logs in.
    pub fn address(&self) -> &LoginAddress {
        &self.address
    }

    /// Waits (at most `timeout`) for the browser to come back, and exchanges the code for
    /// tokens scoped to the client-server API and a device of our own.
    pub fn finish(mut self, timeout: Duration) -> Result<(Tokens, OAuthClient)> {
        self.listener.timeout = timeout;
        let redirect = self.listener.redirect_uri();
        let callback = self.listener.wait(&self.state, &self.address.url)?;
        if let Some(error) = callback.get("error") {
            return Err(Error::Login {
                reason: format!(
                    "the OAuth 2.0 server refused: {} {}",
                    printable(error),
                    printable(callback.get("error_description").unwrap_or(""))
                ),
            });
        }
        let Some(code) = callback.get("code") else {
            return Err(Error::Login {
                reason: "the browser came back without an authorization code".into(),
            });
        };
        let client_id = self.registered.client_id.clone();
        let fields = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect.as_str()),
            ("client_id", client_id.as_str()),
            ("code_verifier", self.verifier.as_str()),
        ];
        let granted = exchange(&self.agent, &self.token_endpoint, &fields)?;
        let tokens = Tokens {
            access: AccessToken::new(&granted.access_token),
            refresh: granted.refresh_token.map(|token| Refresh::OAuth {
                url: self.token_endpoint.clone(),
                client_id,
                token,
            }),
            expires_in: granted.expires_in.map(Duration::from_secs),
        };
        Ok((tokens, self.registered))
    }
}

fn check_pkce(meta: &AuthMetadata) -> Result<()> {
    let methods = &meta.code_challenge_methods_supported;
    if !methods.is_empty() && !methods.iter().any(|m| m == "S256") {
        return Err(Error::Login {
            reason: "the OAuth 2.0 server does not support PKCE S256".into(),
        });
    }
    Ok(())
}

/// Registers the tool as a native app (for the browser login and the device grant, as
/// matrix-sdk does); returns its client ID.
pub(super) fn register(agent: &ureq::Agent, meta: &AuthMetadata) -> Result<String> {
    let Some(registration) = &meta.registration_endpoint else {
        return Err(Error::Login {
            reason: "the OAuth 2.0 server does not let clients register themselves (no registration_endpoint)".into(),
        });
    };
    #[derive(Deserialize)]
    struct Registered {
        client_id: String,
    }
    let body = serde_json::json!({
        "client_name": "matrix-transplant",
        "client_uri": env!("CARGO_PKG_REPOSITORY"),
        "application_type": "native",
        "token_endpoint_auth_method": "none",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token", super::device::GRANT],
        "response_types": ["code"],
    })
    .to_string();
    let what = "register with the OAuth 2.0 server";
    let registered: Registered = json_answer(
        post(agent, registration, &Body::Json(body.as_bytes()), what)?,
        what,
    )?;
    Ok(registered.client_id)
}

/// The authorization URL: PKCE S256, `state`, the client-server API and a device of ours.
fn authorization_url(
    meta: &AuthMetadata,
    client_id: &str,
    redirect: &Url,
    state: &str,
    verifier: &str,
) -> Url {
    use base64::Engine as _;
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    let scope = scope();
    let mut url = meta.authorization_endpoint.clone();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect.as_str())
        .append_pair("scope", &scope)
        .append_pair("state", state)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    url
}

/// The scope asked for: the client-server API, and a device of our own (a fresh ID).
pub(super) fn scope() -> String {
    let device: String = random_token(8)
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .take(10)
        .collect();
    format!("urn:matrix:client:api:* urn:matrix:client:device:{device}")
}

/// What the token endpoint grants.
#[derive(Deserialize)]
pub(super) struct Granted {
    pub(super) access_token: Zeroizing<String>,
    #[serde(default)]
    pub(super) refresh_token: Option<Zeroizing<String>>,
    #[serde(default)]
    pub(super) expires_in: Option<u64>,
}

/// Exchanges the authorization code.
fn exchange(agent: &ureq::Agent, token_endpoint: &Url, fields: &[(&str, &str)]) -> Result<Granted> {
    let what = "exchange the authorization code";
    let form = form_body(fields);
    let body = Body::Bytes {
        content_type: "application/x-www-form-urlencoded",
        data: &form,
    };
    json_answer(post(agent, token_endpoint, &body, what)?, what)
}

/// POSTs to an OAuth 2.0 endpoint through the one wire path; the answer, or a login error
/// naming `what` could not be done.
pub(super) fn post(
    agent: &ureq::Agent,
    url: &Url,
    body: &Body<'_>,
    what: &str,
) -> Result<ureq::Response> {
    match wire::send(agent, what, Method::Post, url, body, None, None) {
        Attempt::Done(resp) => Ok(resp),
        Attempt::RateLimited { error, .. }
        | Attempt::Retryable { error, .. }
        | Attempt::Unauthorized(error)
        | Attempt::Failed(error) => Err(Error::Login {
            reason: format!("could not {what}: {error}"),
        }),
    }
}

/// A form's body (`application/x-www-form-urlencoded`), written straight into a buffer
/// wiped on drop: its fields are codes, verifiers and tokens.
pub(crate) fn form_body(fields: &[(&str, &str)]) -> Zeroizing<Vec<u8>> {
    let size: usize = fields
        .iter()
        .map(|(k, v)| 3 * (k.len() + v.len()) + 2)
        .sum();
    let mut body = Zeroizing::new(Vec::with_capacity(size));
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            body.push(b'&');
        }
        encode_into(&mut body, key);
        body.push(b'=');
        encode_into(&mut body, value);
    }
    body
}

fn encode_into(body: &mut Vec<u8>, part: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in part.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => body.push(b),
            b' ' => body.push(b'+'),
            _ => {
                body.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]])
            }
        }
    }
}

/// The JSON answer of an OAuth 2.0 endpoint (read into a wiped buffer: it holds tokens).
pub(super) fn json_answer<T: serde::de::DeserializeOwned>(
    resp: ureq::Response,
    what: &str,
) -> Result<T> {
    let mut text = Zeroizing::new(String::new());
    let reason = match std::io::Read::read_to_string(
        &mut std::io::Read::take(resp.into_reader(), 1 << 20),
        &mut text,
    ) {
        Ok(_) => match serde_json::from_str(&text) {
            Ok(v) => return Ok(v),
            Err(e) => format!("the answer is not what OAuth 2.0 specifies: {e}"),
        },
        Err(e) => e.to_string(),
    };
    Err(Error::Login {
        reason: format!("could not {what}: {reason}"),
    })
}

/// Revokes `token` (RFC 7009) at the end of a session this tool opened.
pub fn revoke(agent: &ureq::Agent, oauth: &OAuthClient, token: &str, hint: &str) -> Result<()> {
    let Some(endpoint) = &oauth.revocation_endpoint else {
        return Ok(());
    };
    let form = form_body(&[
        ("token", token),
        ("token_type_hint", hint),
        ("client_id", &oauth.client_id),
    ]);
    let body = Body::Bytes {
        content_type: "application/x-www-form-urlencoded",
        data: &form,
    };
    post(agent, endpoint, &body, "revoke the session's token")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// L9: a form is encoded as `send_form` would, into a buffer sized once (no copy left
    /// behind by growing).
    #[test]
    fn forms_are_encoded_in_place() {
        let body = form_body(&[
            ("code", "a b/c+d"),
            ("redirect_uri", "http://127.0.0.1:1/cb?x=1&y"),
        ]);
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            "code=a+b%2Fc%2Bd&redirect_uri=http%3A%2F%2F127.0.0.1%3A1%2Fcb%3Fx%3D1%26y"
        );
        let decoded: Vec<(String, String)> =
            url::form_urlencoded::parse(&body).into_owned().collect();
        assert_eq!(decoded[0], ("code".into(), "a b/c+d".into()));
        let fields = [("token", "0123456789"); 3];
        let size: usize = fields
            .iter()
            .map(|(k, v)| 3 * (k.len() + v.len()) + 2)
            .sum();
        assert!(form_body(&fields).capacity() <= size);
    }
}
