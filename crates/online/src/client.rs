//! The connection to a homeserver: URL policy, discovery, access token, login, and
//! requests that wait out rate limits.

use std::fmt;
use std::io::Read;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use url::Url;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// How requests wait out HTTP 429 (rate limited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Retries of one request before giving up.
    pub max_retries: usize,
    /// The wait when the server names none (no `retry_after_ms`, no `Retry-After`).
    pub default_wait: Duration,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            max_retries: 50,
            default_wait: Duration::from_secs(5),
        }
    }
}

/// An access token: never shown by `Debug`, wiped on drop.
#[derive(Clone)]
pub struct AccessToken(Zeroizing<String>);

impl AccessToken {
    /// Wraps a token (surrounding whitespace, e.g. a file's final newline, is removed).
    pub fn new(token: &str) -> Self {
        AccessToken(Zeroizing::new(token.trim().to_owned()))
    }
    fn bearer(&self) -> Zeroizing<String> {
        Zeroizing::new(format!("Bearer {}", self.0.as_str()))
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

/// A homeserver's base URL, checked: https, or http only to a loopback address unless
/// explicitly allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Homeserver {
    base: Url,
}

impl Homeserver {
    /// Checks `url` (e.g. `https://matrix.example.org`).
    pub fn parse(url: &str, allow_insecure_http: bool) -> Result<Self> {
        let base = Url::parse(url.trim()).map_err(|e| Error::BadUrl {
            url: url.into(),
            reason: e.to_string(),
        })?;
        match base.scheme() {
            "https" => {}
            "http" if allow_insecure_http || is_loopback(&base) => {}
            "http" => return Err(Error::InsecureUrl { url: url.into() }),
            other => {
                return Err(Error::BadUrl {
                    url: url.into(),
                    reason: format!("scheme {other:?} is not http(s)"),
                })
            }
        }
        if base.host_str().is_none() {
            return Err(Error::BadUrl {
                url: url.into(),
                reason: "no host".into(),
            });
        }
        Ok(Homeserver { base })
    }

    /// Finds the homeserver of `user_id` (`@name:server`) through
    /// `https://server/.well-known/matrix/client`, falling back to `https://server`.
    pub fn discover(user_id: &str, allow_insecure_http: bool) -> Result<Self> {
        let server = user_id
            .split_once(':')
            .map(|(_, s)| s)
            .filter(|s| user_id.starts_with('@') && !s.is_empty())
            .ok_or_else(|| Error::Discovery {
                server: user_id.into(),
                reason: "not a user ID (@name:server)".into(),
            })?;
        let well_known = format!("https://{server}/.well-known/matrix/client");
        let agent = agent();
        match agent.get(&well_known).call() {
            Ok(resp) => {
                #[derive(Deserialize)]
                struct Hs {
                    base_url: String,
                }
                #[derive(Deserialize)]
                struct WellKnown {
                    #[serde(rename = "m.homeserver")]
                    homeserver: Hs,
                }
                let wk: WellKnown =
                    serde_json::from_reader(resp.into_reader()).map_err(|e| Error::Discovery {
                        server: server.into(),
                        reason: format!("bad .well-known: {e}"),
                    })?;
                Homeserver::parse(&wk.homeserver.base_url, allow_insecure_http)
            }
            Err(ureq::Error::Status(404, _)) => {
                Homeserver::parse(&format!("https://{server}"), allow_insecure_http)
            }
            Err(e) => Err(Error::Discovery {
                server: server.into(),
                reason: e.to_string(),
            }),
        }
    }

    /// The base URL.
    pub fn url(&self) -> &Url {
        &self.base
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(20))
        .timeout(Duration::from_secs(300))
        .user_agent(concat!("matrix-transplant/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// A request body.
pub enum Body<'a> {
    /// No body.
    None,
    /// JSON text.
    Json(&'a [u8]),
}

/// Called with the wait before each retry after HTTP 429, to show it to the user.
pub type WaitNotice = Box<dyn Fn(Duration) + Send + Sync>;

/// An authenticated connection to a homeserver.
pub struct Client {
    homeserver: Homeserver,
    token: AccessToken,
    agent: ureq::Agent,
    on_wait: Option<WaitNotice>,
    waits: AtomicUsize,
    rate_limits: RateLimits,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("homeserver", &self.homeserver.base.as_str())
            .finish_non_exhaustive()
    }
}

/// The error body of a Matrix API error.
#[derive(Deserialize, Default)]
struct MatrixError {
    #[serde(default)]
    errcode: String,
    #[serde(default)]
    error: String,
    #[serde(default)]
    retry_after_ms: Option<u64>,
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
        Client {
            homeserver,
            token,
            agent: agent(),
            on_wait: None,
            waits: AtomicUsize::new(0),
            rate_limits: RateLimits::default(),
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
        let body = serde_json::json!({
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user_id},
            "password": password,
            "initial_device_display_name": "matrix-transplant",
        });
        let body = Zeroizing::new(serde_json::to_vec(&body).expect("JSON serialises"));
        #[derive(Deserialize)]
        struct LoginResponse {
            access_token: String,
        }
        let resp: LoginResponse = self.call_json(
            "log in",
            "POST",
            &["v3", "login"],
            &[],
            Body::Json(&body),
            false,
        )?;
        self.token = AccessToken::new(&resp.access_token);
        Ok(())
    }

    /// Shows each rate-limit wait through `notice`.
    pub fn on_rate_limit(&mut self, notice: WaitNotice) {
        self.on_wait = Some(notice);
    }

    /// Sets how requests wait out HTTP 429.
    pub fn set_rate_limits(&mut self, limits: RateLimits) {
        self.rate_limits = limits;
    }

    /// How many times requests waited because of HTTP 429.
    pub fn rate_limit_waits(&self) -> usize {
        self.waits.load(Ordering::Relaxed)
    }

    /// The homeserver.
    pub fn homeserver(&self) -> &Homeserver {
        &self.homeserver
    }

    /// Ends the token's session (the device made by [`Client::login_password`]).
    pub fn logout(&self) -> Result<()> {
        self.call("log out", "POST", &["v3", "logout"], &[], Body::Json(b"{}"))
            .map(|_| ())
    }

    /// The user the token belongs to.
    pub fn whoami(&self) -> Result<WhoAmI> {
        self.call_json(
            "ask who the token belongs to",
            "GET",
            &["v3", "account", "whoami"],
            &[],
            Body::None,
            true,
        )
    }

    /// The URL of `/_matrix/client/{segments...}?{query}`, each segment percent-encoded.
    pub fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.homeserver.base.clone();
        {
            let mut path = url.path_segments_mut().expect("http(s) URLs have paths");
            path.pop_if_empty()
                .extend(["_matrix", "client"])
                .extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// Sends a request; returns the status and body of a 2xx answer. HTTP 429 is waited
    /// out (the server's `retry_after_ms`, else `Retry-After`, else
    /// [`RateLimits::default_wait`]) and retried up to [`RateLimits::max_retries`] times.
    /// Other errors become [`Error::Api`] (404 included: callers that expect one check
    /// for `M_NOT_FOUND`).
    pub fn call(
        &self,
        what: &str,
        method: &str,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Body<'_>,
    ) -> Result<Vec<u8>> {
        self.call_inner(what, method, segments, query, &body, true)
    }

    fn call_inner(
        &self,
        what: &str,
        method: &str,
        segments: &[&str],
        query: &[(&str, &str)],
        body: &Body<'_>,
        auth: bool,
    ) -> Result<Vec<u8>> {
        let url = self.url(segments, query);
        let limits = self.rate_limits;
        for attempt in 0..=limits.max_retries {
            let mut req = self.agent.request_url(method, &url);
            if auth {
                req = req.set("Authorization", &self.token.bearer());
            }
            let result = match body {
                Body::None => req.call(),
                Body::Json(bytes) => req
                    .set("Content-Type", "application/json")
                    .send_bytes(bytes),
            };
            match result {
                Ok(resp) => return read_body(resp, what),
                Err(ureq::Error::Status(status, resp)) => {
                    let header_wait = resp
                        .header("Retry-After")
                        .and_then(|s| s.trim().parse::<u64>().ok());
                    let bytes = read_body(resp, what).unwrap_or_default();
                    let err: MatrixError = serde_json::from_slice(&bytes).unwrap_or_default();
                    if status == 429 && attempt < limits.max_retries {
                        let wait = err
                            .retry_after_ms
                            .map(Duration::from_millis)
                            .or(header_wait.map(Duration::from_secs))
                            .unwrap_or(limits.default_wait);
                        self.waits.fetch_add(1, Ordering::Relaxed);
                        if let Some(notice) = &self.on_wait {
                            notice(wait);
                        }
                        std::thread::sleep(wait);
                        continue;
                    }
                    return Err(Error::Api {
                        what: what.into(),
                        status,
                        errcode: if err.errcode.is_empty() {
                            "(no errcode)".into()
                        } else {
                            err.errcode
                        },
                        message: err.error,
                    });
                }
                Err(e) => {
                    let mut shown = url.clone();
                    shown.set_query(None);
                    return Err(Error::Transport {
                        url: shown.to_string(),
                        reason: e.to_string(),
                    });
                }
            }
        }
        Err(Error::Api {
            what: what.into(),
            status: 429,
            errcode: "M_LIMIT_EXCEEDED".into(),
            message: format!("still rate limited after {} waits", limits.max_retries),
        })
    }

    /// [`Client::call`], parsing the answer as JSON.
    pub fn call_json<T: DeserializeOwned>(
        &self,
        what: &str,
        method: &str,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Body<'_>,
        auth: bool,
    ) -> Result<T> {
        let bytes = Zeroizing::new(self.call_inner(what, method, segments, query, &body, auth)?);
        serde_json::from_slice(&bytes).map_err(|e| Error::BadResponse {
            what: what.into(),
            reason: e.to_string(),
        })
    }
}

fn read_body(resp: ureq::Response, what: &str) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    resp.into_reader()
        .read_to_end(&mut buf)
        .map_err(|e| Error::BadResponse {
            what: what.into(),
            reason: e.to_string(),
        })?;
    Ok(buf)
}

/// True when `e` is the server saying "not found" (e.g. no m.direct yet, no backup).
pub fn is_not_found(e: &Error) -> bool {
    matches!(e, Error::Api { status: 404, .. })
}

/// Parses a JSON value from an answer.
pub fn parse_value(bytes: &[u8], what: &str) -> Result<Value> {
    serde_json::from_slice(bytes).map_err(|e| Error::BadResponse {
        what: what.into(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http() {
        assert!(Homeserver::parse("https://matrix.example.org", false).is_ok());
        assert!(Homeserver::parse("http://127.0.0.1:8008", false).is_ok());
        assert!(Homeserver::parse("http://127.5.6.7:8008", false).is_ok());
        assert!(Homeserver::parse("http://localhost:8008", false).is_ok());
        assert!(Homeserver::parse("http://[::1]:8008", false).is_ok());
        assert!(matches!(
            Homeserver::parse("http://matrix.example.org", false),
            Err(Error::InsecureUrl { .. })
        ));
        assert!(matches!(
            Homeserver::parse("http://10.0.0.1", false),
            Err(Error::InsecureUrl { .. })
        ));
        assert!(Homeserver::parse("http://matrix.example.org", true).is_ok());
        assert!(matches!(
            Homeserver::parse("ftp://x", true),
            Err(Error::BadUrl { .. })
        ));
        assert!(matches!(
            Homeserver::parse("not a url", true),
            Err(Error::BadUrl { .. })
        ));
    }

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
