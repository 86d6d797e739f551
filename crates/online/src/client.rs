//! The client of one homeserver: its token (shared by every fork, renewed by [`crate::auth`]),
//! the URL of each endpoint, and requests by method, path and body (sent by
//! [`crate::wire`], waited out and retried by [`crate::retry`]), with JSON helpers.

use std::fmt;
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use url::Url;
use zeroize::Zeroizing;

use crate::auth::{Auth, Refresh, Tokens};
use crate::error::{Error, Result};
use crate::homeserver::agent;
pub use crate::homeserver::Homeserver;
pub use crate::retry::{sleep_unless, RateLimits, Wait, WaitCause, WaitNotice};
pub use crate::token::AccessToken;
use crate::versions::Versions;
pub(crate) use crate::wire::secret_json;
pub use crate::wire::{
    is_not_found, parse_value, printable, Body, Method, MAX_BODY, REQUEST_DEADLINE,
};
use crate::wire::{read_body, Capped, MAX_ERROR_BODY};

/// An authenticated connection to a homeserver.
pub struct Client {
    pub(crate) homeserver: Homeserver,
    pub(crate) auth: Arc<Auth>,
    pub(crate) agent: ureq::Agent,
    pub(crate) on_wait: Option<WaitNotice>,
    pub(crate) waits: AtomicUsize,
    pub(crate) waited_ms: AtomicU64,
    pub(crate) rate_limits: RateLimits,
    pub(crate) cancel: Option<Arc<AtomicBool>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("homeserver", &self.homeserver.base.as_str())
            .finish_non_exhaustive()
    }
}

/// Who a token belongs to.
#[derive(Debug, Clone, Deserialize)]
pub struct WhoAmI {
    /// The user ID.
    pub user_id: String,
    /// The device, when the token has one.
    #[serde(default)]
    pub device_id: Option<String>,
}

impl Client {
    /// A client using an existing access token.
    pub fn new(homeserver: Homeserver, token: AccessToken) -> Self {
        Client::with_auth(homeserver, Arc::new(Auth::fixed(token)))
    }

    /// A client using what a login returned: it renews the access token itself, ahead of
    /// its expiry and whenever the server rejects it.
    pub fn with_tokens(homeserver: Homeserver, tokens: Tokens) -> Self {
        Client::with_auth(homeserver, Arc::new(Auth::from_tokens(tokens)))
    }

    fn with_auth(homeserver: Homeserver, auth: Arc<Auth>) -> Self {
        Client {
            agent: agent(homeserver.trust.as_ref()),
            homeserver,
            auth,
            on_wait: None,
            waits: AtomicUsize::new(0),
            waited_ms: AtomicU64::new(0),
            rate_limits: RateLimits::default(),
            cancel: None,
        }
    }

    /// A client with no token yet, for [`Client::login_with_password`].
    pub fn anonymous(homeserver: Homeserver) -> Self {
        Client::new(homeserver, AccessToken::new(""))
    }

    /// Logs in with a password (`m.login.password`), as a new device named
    /// "matrix-transplant". Call [`Client::logout`] at the end.
    pub fn login_password(homeserver: Homeserver, user_id: &str, password: &str) -> Result<Self> {
        let mut client = Client::anonymous(homeserver);
        client.login_with_password(user_id, password)?;
        Ok(client)
    }

    /// Logs this client in with a password (see [`Client::login_password`]).
    pub fn login_with_password(&mut self, user_id: &str, password: &str) -> Result<()> {
        #[derive(serde::Serialize)]
        struct Identifier<'a> {
            #[serde(rename = "type")]
            kind: &'a str,
            user: &'a str,
        }
        #[derive(serde::Serialize)]
        struct Login<'a> {
            #[serde(rename = "type")]
            kind: &'a str,
            identifier: Identifier<'a>,
            password: &'a str,
            initial_device_display_name: &'a str,
            refresh_token: bool,
        }
        let login = Login {
            kind: "m.login.password",
            identifier: Identifier {
                kind: "m.id.user",
                user: user_id,
            },
            password,
            initial_device_display_name: "matrix-transplant",
            refresh_token: true,
        };
        let body = secret_json(&login);
        let tokens = self.login("log in", &body)?;
        self.auth.set(tokens);
        Ok(())
    }

    /// `POST /login` with `body` (which asks for a refresh token); the tokens it gave.
    pub(crate) fn login(&self, what: &str, body: &[u8]) -> Result<Tokens> {
        #[derive(Deserialize)]
        struct LoginResponse {
            access_token: Zeroizing<String>,
            #[serde(default)]
            refresh_token: Option<Zeroizing<String>>,
            #[serde(default)]
            expires_in_ms: Option<u64>,
        }
        let resp: LoginResponse = self.call_json(
            what,
            Method::Post,
            &["v3", "login"],
            &[],
            Body::Json(body),
            false,
        )?;
        Ok(Tokens {
            access: AccessToken::new(&resp.access_token),
            refresh: resp.refresh_token.map(|token| Refresh::Matrix {
                url: self.url(&["v3", "refresh"], &[]),
                token,
            }),
            expires_in: resp.expires_in_ms.map(Duration::from_millis),
        })
    }

    /// Another client with the same server, token and limits, that counts its own waits
    /// and shows them through its own notice: one per stage of work that runs in parallel.
    pub fn fork(&self) -> Client {
        let mut c = Client::with_auth(self.homeserver.clone(), self.auth.clone());
        c.rate_limits = self.rate_limits;
        c.cancel = self.cancel.clone();
        c
    }

    /// Makes every wait stop early, with [`Error::Cancelled`], once `flag` is set (Ctrl-C
    /// during a long rate-limit wait).
    pub fn cancel_on(&mut self, flag: Arc<AtomicBool>) {
        self.cancel = Some(flag);
    }

    /// The limits in force.
    pub fn rate_limits(&self) -> RateLimits {
        self.rate_limits
    }

    /// Shows each rate-limit wait through `notice`.
    pub fn on_rate_limit(&mut self, notice: WaitNotice) {
        self.on_wait = Some(notice);
    }

    /// Sets how requests wait out HTTP 429.
    pub fn set_rate_limits(&mut self, limits: RateLimits) {
        self.rate_limits = limits;
    }

    /// How many times requests waited (HTTP 429, or a retry after a server error).
    pub fn rate_limit_waits(&self) -> usize {
        self.waits.load(Ordering::Relaxed)
    }

    /// The access token in force.
    pub(crate) fn token(&self) -> AccessToken {
        self.auth.access()
    }

    /// Takes what a login returned.
    pub(crate) fn set_tokens(&mut self, tokens: Tokens) {
        self.auth.set(tokens);
    }

    /// The shared token state.
    pub(crate) fn auth(&self) -> &Arc<Auth> {
        &self.auth
    }

    /// True when the client renews its access token itself (a login made by this tool that
    /// gave a refresh token).
    pub fn refreshable(&self) -> bool {
        self.auth.refreshable()
    }

    /// How many times the access token was renewed.
    pub fn refreshes(&self) -> usize {
        self.auth.refreshes()
    }

    /// The HTTP agent (for the login flows' other endpoints).
    pub(crate) fn agent(&self) -> &ureq::Agent {
        &self.agent
    }

    /// The homeserver.
    pub fn homeserver(&self) -> &Homeserver {
        &self.homeserver
    }

    /// Ends the token's session (the device made by [`Client::login_password`]).
    pub fn logout(&self) -> Result<()> {
        self.call(
            "log out",
            Method::Post,
            &["v3", "logout"],
            &[],
            Body::Json(b"{}"),
        )
        .map(|_| ())
    }

    /// Checks that the server speaks the client-server API (`GET /versions`, no token), in a
    /// version this tool can use, and says what else it speaks: asked before any credential
    /// is sent.
    pub fn check_versions(&self) -> Result<Versions> {
        let answer = self.call_inner(
            "list the API versions it speaks",
            Method::Get,
            &["versions"],
            &[],
            &Body::None,
            false,
            MAX_BODY,
        )?;
        Versions::parse(&answer)
    }

    /// The user the token belongs to.
    pub fn whoami(&self) -> Result<WhoAmI> {
        self.call_json(
            "ask who the token belongs to",
            Method::Get,
            &["v3", "account", "whoami"],
            &[],
            Body::None,
            true,
        )
    }

    /// The URL of `/_matrix/client/{segments...}?{query}`, each segment percent-encoded.
    pub fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        self.url_in("client", segments, query)
    }

    /// The URL of `/_matrix/{api}/{segments...}?{query}` (`api`: `client`, `media`).
    fn url_in(&self, api: &str, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.homeserver.base.clone();
        {
            let mut path = url.path_segments_mut().expect("http(s) URLs have paths");
            path.pop_if_empty()
                .extend(["_matrix", api])
                .extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// Sends a request; returns the body of a 2xx answer (at most [`MAX_BODY`] bytes).
    /// HTTP 429 is waited out (the server's `retry_after_ms`, else `Retry-After`, else
    /// [`RateLimits::default_wait`], each clamped, all within the budget) and retried; an
    /// idempotent request is retried after a 5xx or a broken connection, with backoff. A
    /// redirect is an error, never followed. Other errors become [`Error::Api`] (404
    /// included: callers that expect one check for it).
    pub fn call(
        &self,
        what: &str,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Body<'_>,
    ) -> Result<Vec<u8>> {
        self.call_inner(what, method, segments, query, &body, true, MAX_BODY)
    }

    /// A GET whose answer may be larger than [`MAX_BODY`] (at most `limit` bytes), such as
    /// a whole key backup: the body is returned as a reader, to be parsed as it arrives.
    /// Waits and retries as [`Client::call`] does, until the answer's status is known.
    pub fn call_reader(
        &self,
        what: &str,
        segments: &[&str],
        query: &[(&str, &str)],
        limit: usize,
    ) -> Result<impl Read + Send> {
        // No deadline for the whole answer: it streams for as long as it keeps coming
        // (each read still times out).
        let resp = self.respond(
            what,
            Method::Get,
            self.url(segments, query),
            &Body::None,
            true,
            None,
        )?;
        Ok(Capped {
            inner: resp.into_reader(),
            left: limit as u64,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn call_inner(
        &self,
        what: &str,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: &Body<'_>,
        auth: bool,
        limit: usize,
    ) -> Result<Vec<u8>> {
        let url = self.url(segments, query);
        let resp = self.respond(what, method, url, body, auth, Some(REQUEST_DEADLINE))?;
        read_body(resp, what, limit)
    }

    /// Uploads media (`POST /_matrix/media/v3/upload`); returns its `mxc://` URI.
    pub fn upload_media(&self, content_type: &str, filename: &str, data: &[u8]) -> Result<String> {
        let what = "upload media";
        let url = self.url_in("media", &["v3", "upload"], &[("filename", filename)]);
        let body = Body::Bytes { content_type, data };
        let resp = self.respond(what, Method::Post, url, &body, true, Some(REQUEST_DEADLINE))?;
        let answer = parse_value(&read_body(resp, what, MAX_ERROR_BODY)?, what)?;
        answer
            .get("content_uri")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| Error::BadResponse {
                what: what.into(),
                reason: "no content_uri in the answer".into(),
            })
    }

    /// Downloads media (`GET /_matrix/client/v1/media/download/{server}/{id}`, authenticated
    /// media) of at most `limit` bytes; returns its bytes and content type.
    pub fn download_media(&self, mxc: &str, limit: usize) -> Result<(Vec<u8>, String)> {
        let what = format!("download {mxc}");
        let (server, id) = mxc
            .strip_prefix("mxc://")
            .and_then(|rest| rest.split_once('/'))
            .ok_or_else(|| Error::BadResponse {
                what: what.clone(),
                reason: "not an mxc:// URI".into(),
            })?;
        let url = self.url(&["v1", "media", "download", server, id], &[]);
        let resp = self.respond(
            &what,
            Method::Get,
            url,
            &Body::None,
            true,
            Some(REQUEST_DEADLINE),
        )?;
        let content_type = resp
            .header("Content-Type")
            .unwrap_or("application/octet-stream")
            .to_owned();
        Ok((read_body(resp, &what, limit)?, content_type))
    }

    /// [`Client::call`], parsing the answer as JSON.
    pub fn call_json<T: DeserializeOwned>(
        &self,
        what: &str,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Body<'_>,
        auth: bool,
    ) -> Result<T> {
        let bytes =
            Zeroizing::new(self.call_inner(what, method, segments, query, &body, auth, MAX_BODY)?);
        serde_json::from_slice(&bytes).map_err(|e| Error::BadResponse {
            what: what.into(),
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_percent_encoded_under_any_prefix() {
        let hs = Homeserver::parse("https://example.org/prefix/", false).unwrap();
        let c = Client::new(hs, AccessToken::new("secret"));
        let u = c.url(
            &["v3", "user", "@a:example.org", "account_data", "m.direct"],
            &[("version", "1")],
        );
        assert_eq!(u.as_str(), "https://example.org/prefix/_matrix/client/v3/user/@a:example.org/account_data/m.direct?version=1");
        let u = c.url(&["v3", "rooms", "!a/b c:x"], &[]);
        assert_eq!(
            u.as_str(),
            "https://example.org/prefix/_matrix/client/v3/rooms/!a%2Fb%20c:x"
        );
        assert!(!format!("{c:?}").contains("secret"));
        assert!(!format!("{:?}", AccessToken::new("secret")).contains("secret"));
    }
}
