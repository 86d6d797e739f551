//! The connection to a homeserver: URL policy, discovery, access token, login, and
//! requests that wait out rate limits.

use std::fmt;
use std::io::Read;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use url::Url;
use zeroize::Zeroizing;

use crate::auth::{Auth, Refresh, Tokens};
use crate::error::{Error, Result};
use crate::tls::Trust;

/// How far the client trusts a server to make it wait and retry. Every number is a bound:
/// a hostile or broken server cannot keep a run waiting forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Retries of one request after HTTP 429 before giving up.
    pub max_retries: usize,
    /// The wait when the server names none (no `retry_after_ms`, no `Retry-After`).
    pub default_wait: Duration,
    /// The longest single wait; a server asking for more is waited this long, and told so.
    pub max_single_wait: Duration,
    /// All waits of this client together; past it, requests stop with [`Error::WaitBudget`].
    pub budget: Duration,
    /// Retries of an idempotent request (GET, PUT, DELETE) after a 5xx answer or a broken
    /// connection.
    pub server_error_retries: usize,
    /// The first wait before such a retry; each next one is twice as long.
    pub backoff: Duration,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            max_retries: 50,
            default_wait: Duration::from_secs(5),
            max_single_wait: Duration::from_secs(120),
            budget: Duration::from_secs(30 * 60),
            server_error_retries: 4,
            backoff: Duration::from_secs(1),
        }
    }
}

/// Why a request waits before it is sent again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitCause {
    /// HTTP 429; `asked` is what the server asked for, when it was more than the clamp.
    RateLimited {
        /// The wait the server asked for, when longer than the one taken.
        asked: Option<Duration>,
    },
    /// A 5xx answer (its status) or a broken connection (`None`).
    ServerError(Option<u16>),
}

/// One wait, as shown to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wait {
    /// How long.
    pub duration: Duration,
    /// Why.
    pub cause: WaitCause,
}

/// Called with each wait before a request is sent again, to show it to the user.
pub type WaitNotice = Box<dyn Fn(&Wait) + Send + Sync>;

/// The most a successful answer may hold, unless the call says otherwise.
pub const MAX_BODY: usize = 4 << 20;
/// The longest one ordinary request may take, its whole answer included (a server that
/// sends a byte now and then cannot hold a request for ever; streamed answers, read as
/// they come, have only per-read timeouts).
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(5 * 60);
/// The most an error answer may hold (only its errcode and message are read).
const MAX_ERROR_BODY: usize = 64 << 10;

/// An access token: never shown by `Debug`, wiped on drop.
#[derive(Clone)]
pub struct AccessToken(Zeroizing<String>);

impl AccessToken {
    /// The token's text.
    pub(crate) fn expose(&self) -> &str {
        self.0.as_str()
    }
    /// Wraps a token (surrounding whitespace, e.g. a file's final newline, is removed).
    pub fn new(token: &str) -> Self {
        AccessToken(Zeroizing::new(token.trim().to_owned()))
    }
    pub(crate) fn bearer(&self) -> Zeroizing<String> {
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
#[derive(Debug, Clone)]
pub struct Homeserver {
    base: Url,
    trust: Option<Trust>,
}

impl PartialEq for Homeserver {
    fn eq(&self, other: &Self) -> bool {
        self.base == other.base
    }
}

impl Eq for Homeserver {}

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
        Ok(Homeserver { base, trust: None })
    }

    /// Finds the homeserver of `user_id` (`@name:server`) through
    /// `https://server/.well-known/matrix/client`, falling back to `https://server`. Only
    /// https is used: for the lookup, for any redirect it follows, and for the URL it
    /// finds (the loopback exemption is for URLs the user types, never for found ones).
    pub fn discover(user_id: &str, trust: Option<&Trust>) -> Result<Self> {
        let server = user_id
            .split_once(':')
            .map(|(_, s)| s)
            .filter(|s| user_id.starts_with('@') && !s.is_empty())
            .ok_or_else(|| Error::Discovery {
                server: user_id.into(),
                reason: "not a user ID (@name:server)".into(),
            })?;
        let fail = |reason: String| Error::Discovery {
            server: server.into(),
            reason,
        };
        let well_known = format!("https://{server}/.well-known/matrix/client");
        let mut builder = ureq::AgentBuilder::new()
            .https_only(true)
            .redirects(3)
            .timeout(Duration::from_secs(30));
        if let Some(t) = trust {
            builder = builder.tls_config(t.config());
        }
        let agent = builder.build();
        let found = match agent.get(&well_known).call() {
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
                let bytes = read_body(resp, "discovery", MAX_ERROR_BODY)?;
                let wk: WellKnown = serde_json::from_slice(&bytes)
                    .map_err(|e| fail(format!("bad .well-known: {e}")))?;
                wk.homeserver.base_url
            }
            Err(ureq::Error::Status(404, _)) => format!("https://{server}"),
            Err(e) => return Err(fail(e.to_string())),
        };
        let mut hs = Homeserver::parse(&found, false)?;
        hs.trust = trust.cloned();
        if hs.base.scheme() != "https" {
            return Err(fail(format!(
                "its .well-known names {found}, which is not https"
            )));
        }
        Ok(hs)
    }

    /// Trusts the certificate authorities of `trust` (by default only the Mozilla roots
    /// compiled in).
    pub fn trusting(mut self, trust: Trust) -> Self {
        self.trust = Some(trust);
        self
    }

    /// The base URL.
    pub fn url(&self) -> &Url {
        &self.base
    }
}

/// Checks an endpoint the homeserver named (OAuth 2.0): https; plain http only on loopback,
/// and only when the homeserver itself is on loopback (a remote server must not make the
/// tool post codes and tokens to services on this machine).
pub(crate) fn check_endpoint(url: &Url, homeserver: &Url) -> Result<()> {
    match url.scheme() {
        "https" if url.host_str().is_some() => Ok(()),
        "http" if is_loopback(url) && is_loopback(homeserver) => Ok(()),
        _ => Err(Error::InsecureUrl {
            url: url.to_string(),
        }),
    }
}

pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// The HTTP agent: no redirects are followed (a token is only ever sent to the URL the
/// user named or discovery found); a read that stalls for 2 minutes fails.
fn agent(trust: Option<&Trust>) -> ureq::Agent {
    let builder = match trust {
        Some(t) => ureq::AgentBuilder::new().tls_config(t.config()),
        None => ureq::AgentBuilder::new(),
    };
    builder
        .redirects(0)
        .timeout_connect(Duration::from_secs(20))
        .timeout_read(Duration::from_secs(120))
        .timeout_write(Duration::from_secs(120))
        .user_agent(concat!("matrix-transplant/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// A request body.
pub enum Body<'a> {
    /// No body.
    None,
    /// JSON text.
    Json(&'a [u8]),
    /// Other bytes (media), of this content type.
    Bytes {
        /// The `Content-Type`.
        content_type: &'a str,
        /// The bytes.
        data: &'a [u8],
    },
}

/// An authenticated connection to a homeserver.
pub struct Client {
    homeserver: Homeserver,
    auth: Arc<Auth>,
    agent: ureq::Agent,
    on_wait: Option<WaitNotice>,
    waits: AtomicUsize,
    waited_ms: AtomicU64,
    rate_limits: RateLimits,
    cancel: Option<Arc<AtomicBool>>,
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
        let resp: LoginResponse =
            self.call_json(what, "POST", &["v3", "login"], &[], Body::Json(body), false)?;
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
        self.call("log out", "POST", &["v3", "logout"], &[], Body::Json(b"{}"))
            .map(|_| ())
    }

    /// Checks that the server speaks the client-server API (`GET /versions`, no token):
    /// asked before any credential is sent.
    pub fn check_versions(&self) -> Result<()> {
        #[derive(Deserialize)]
        struct Versions {
            #[allow(dead_code)]
            versions: Vec<String>,
        }
        let _: Versions = self.call_json(
            "list the API versions it speaks",
            "GET",
            &["versions"],
            &[],
            Body::None,
            false,
        )?;
        Ok(())
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
        method: &str,
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
            "GET",
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
        method: &str,
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

    /// Sends until an answer is final: a 2xx answer (its body unread), or an error. Each
    /// attempt, its answer read in full included, must end within `deadline`.
    fn respond(
        &self,
        what: &str,
        method: &str,
        url: Url,
        body: &Body<'_>,
        auth: bool,
        deadline: Option<Duration>,
    ) -> Result<ureq::Response> {
        let limits = self.rate_limits;
        let idempotent = matches!(method, "GET" | "PUT" | "DELETE");
        let (mut limited, mut failed, mut renewed) = (0, 0, false);
        loop {
            let token = if auth {
                Some(self.auth.current(&self.agent)?)
            } else {
                None
            };
            let bearer = token.as_ref().map(|(t, _)| t.bearer());
            let bearer = bearer.as_ref().map(|b| b.as_str());
            let wait = match self.send_once(what, method, &url, body, bearer, deadline) {
                Attempt::Done(resp) => return Ok(resp),
                Attempt::Unauthorized(error) => match token {
                    Some((_, generation)) if !renewed => {
                        if !self.auth.renew_after_rejection(&self.agent, generation)? {
                            return Err(Error::TokenRejected {
                                what: what.into(),
                                cause: Box::new(error),
                            });
                        }
                        renewed = true;
                        continue;
                    }
                    _ => return Err(error),
                },
                Attempt::RateLimited { asked, error } if limited < limits.max_retries => {
                    limited += 1;
                    let duration = asked.unwrap_or(limits.default_wait);
                    let clamped = duration.min(limits.max_single_wait);
                    let cause = WaitCause::RateLimited {
                        asked: (clamped < duration).then_some(duration),
                    };
                    self.budget_check(what, clamped, error)?;
                    Wait {
                        duration: clamped,
                        cause,
                    }
                }
                Attempt::Retryable { status, error }
                    if idempotent && failed < limits.server_error_retries =>
                {
                    let duration = limits.backoff * 2u32.saturating_pow(failed as u32);
                    failed += 1;
                    self.budget_check(what, duration, error)?;
                    Wait {
                        duration,
                        cause: WaitCause::ServerError(status),
                    }
                }
                Attempt::RateLimited { error, .. }
                | Attempt::Retryable { error, .. }
                | Attempt::Failed(error) => return Err(error),
            };
            self.waits.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                "waiting {:.1} s before sending again ({})",
                wait.duration.as_secs_f64(),
                match &wait.cause {
                    WaitCause::RateLimited { .. } => "rate limited".to_owned(),
                    WaitCause::ServerError(Some(s)) => format!("HTTP {s}"),
                    WaitCause::ServerError(None) => "connection broken".to_owned(),
                }
            );
            if let Some(notice) = &self.on_wait {
                notice(&wait);
            }
            self.sleep(what, wait.duration)?;
        }
    }

    /// Sleeps, stopping early with [`Error::Cancelled`] once the cancel flag is set.
    fn sleep(&self, what: &str, duration: Duration) -> Result<()> {
        if sleep_unless(self.cancel.as_deref(), duration) {
            Ok(())
        } else {
            Err(Error::Cancelled { what: what.into() })
        }
    }

    /// Waits `duration` for a reason of the caller's (a retry it decided on), counted
    /// against this client's wait budget like the waits the server asks for, and stopped by
    /// the cancel flag.
    pub fn wait_counted(&self, what: &str, duration: Duration, cause: Error) -> Result<()> {
        self.budget_check(what, duration, cause)?;
        self.sleep(what, duration)
    }

    /// Counts `wait` against the budget; an error (`error` kept as the cause) when it
    /// would go over.
    fn budget_check(&self, what: &str, wait: Duration, error: Error) -> Result<()> {
        let before = Duration::from_millis(self.waited_ms.load(Ordering::Relaxed));
        if before + wait > self.rate_limits.budget {
            return Err(Error::WaitBudget {
                what: what.into(),
                waited: before,
                last: Box::new(error),
            });
        }
        self.waited_ms
            .fetch_add(wait.as_millis() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// One request, its answer classified.
    fn send_once(
        &self,
        what: &str,
        method: &str,
        url: &Url,
        body: &Body<'_>,
        bearer: Option<&str>,
        deadline: Option<Duration>,
    ) -> Attempt {
        let mut req = self.agent.request_url(method, url);
        if let Some(deadline) = deadline {
            req = req.timeout(deadline);
        }
        if let Some(bearer) = bearer {
            req = req.set("Authorization", bearer);
        }
        let started = Instant::now();
        let result = match body {
            Body::None => req.call(),
            Body::Json(bytes) => req
                .set("Content-Type", "application/json")
                .send_bytes(bytes),
            Body::Bytes { content_type, data } => {
                req.set("Content-Type", content_type).send_bytes(data)
            }
        };
        log_exchange(method, url, body, &result, started.elapsed());
        match result {
            Ok(resp) if (200..300).contains(&resp.status()) => Attempt::Done(resp),
            // Redirects are not followed (see `agent`): any other status is an error.
            Ok(resp) => Attempt::Failed(Error::Redirect {
                what: what.into(),
                status: resp.status(),
                location: resp.header("Location").unwrap_or("").to_owned(),
            }),
            Err(ureq::Error::Status(status, resp)) => {
                let header_wait = resp
                    .header("Retry-After")
                    .and_then(|s| s.trim().parse::<u64>().ok());
                let bytes = read_body(resp, what, MAX_ERROR_BODY).unwrap_or_default();
                let err: MatrixError = serde_json::from_slice(&bytes).unwrap_or_default();
                let asked = err
                    .retry_after_ms
                    .map(Duration::from_millis)
                    .or(header_wait.map(Duration::from_secs));
                let error = Error::Api {
                    what: what.into(),
                    status,
                    errcode: if err.errcode.is_empty() {
                        "(no errcode)".into()
                    } else {
                        printable(&err.errcode)
                    },
                    message: printable(&err.error),
                };
                match status {
                    401 if err.errcode == "M_UNKNOWN_TOKEN" => Attempt::Unauthorized(error),
                    429 => Attempt::RateLimited { asked, error },
                    500 | 502 | 503 | 504 => Attempt::Retryable {
                        status: Some(status),
                        error,
                    },
                    _ => Attempt::Failed(error),
                }
            }
            Err(ureq::Error::Transport(t)) => {
                let mut shown = url.clone();
                shown.set_query(None);
                let broken = t.kind() == ureq::ErrorKind::Io;
                let error = Error::Transport {
                    url: shown.to_string(),
                    reason: t.to_string(),
                };
                if broken {
                    Attempt::Retryable {
                        status: None,
                        error,
                    }
                } else {
                    Attempt::Failed(error)
                }
            }
        }
    }

    /// Uploads media (`POST /_matrix/media/v3/upload`); returns its `mxc://` URI.
    pub fn upload_media(&self, content_type: &str, filename: &str, data: &[u8]) -> Result<String> {
        let what = "upload media";
        let url = self.url_in("media", &["v3", "upload"], &[("filename", filename)]);
        let body = Body::Bytes { content_type, data };
        let resp = self.respond(what, "POST", url, &body, true, Some(REQUEST_DEADLINE))?;
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
        let resp = self.respond(&what, "GET", url, &Body::None, true, Some(REQUEST_DEADLINE))?;
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
        method: &str,
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

/// `value` as JSON, written straight into a wiped buffer large enough for any escaping of
/// what it holds, so no copy of a secret in it is left behind (no JSON value, no
/// reallocation).
pub(crate) fn secret_json<T: serde::Serialize>(value: &T) -> Zeroizing<Vec<u8>> {
    let mut size = 0;
    {
        // Count the bytes first (a writer that keeps nothing).
        struct Count<'a>(&'a mut usize);
        impl std::io::Write for Count<'_> {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                *self.0 += b.len();
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let _ = serde_json::to_writer(Count(&mut size), value);
    }
    let mut body = Zeroizing::new(Vec::with_capacity(size));
    serde_json::to_writer(&mut *body, value).expect("a struct of strings serialises");
    body
}

/// A URL as the logs show it: the path with its IDs, the names of the query's parameters but
/// not their values (a login's query can carry a token).
pub(crate) fn shown(url: &Url) -> String {
    let keys: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
    let mut text = format!(
        "{}{}",
        url.host_str().map_or(String::new(), |h| match url.port() {
            Some(p) => format!("{h}:{p}"),
            None => h.to_owned(),
        }),
        url.path()
    );
    if !keys.is_empty() {
        text.push('?');
        text.push_str(&keys.join("&"));
    }
    printable(&text)
}

/// Logs one request and its answer (`-v`: method, URL, status, time; `-vv`: the size of
/// the body sent; the answer's is logged as it is read). Never a header or a body: they carry the tokens and keys.
pub(crate) fn log_exchange(
    method: &str,
    url: &Url,
    body: &Body<'_>,
    result: &std::result::Result<ureq::Response, ureq::Error>,
    took: Duration,
) {
    let status = match result {
        Ok(resp) | Err(ureq::Error::Status(_, resp)) => resp.status().to_string(),
        Err(ureq::Error::Transport(t)) => format!("no answer ({})", t.kind()),
    };
    tracing::info!(
        "{method} {} -> {status} in {} ms",
        shown(url),
        took.as_millis()
    );
    let sent = match body {
        Body::None => 0,
        Body::Json(b) => b.len(),
        Body::Bytes { data, .. } => data.len(),
    };
    tracing::debug!("  sent {sent} bytes");
}

/// Sleeps `duration`, in short slices when there is a `stop` flag so that setting it is
/// seen at once; false when it was set before the end.
pub fn sleep_unless(stop: Option<&AtomicBool>, duration: Duration) -> bool {
    let Some(flag) = stop else {
        std::thread::sleep(duration);
        return true;
    };
    let end = Instant::now() + duration;
    loop {
        if flag.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        if now >= end {
            return true;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(100)));
    }
}

/// A server's text with its control characters (and the bidirectional and hidden format
/// characters) escaped: it ends up on a terminal, where an escape sequence could rewrite
/// what the user sees. See [`matrix_ids::text`].
pub fn printable(text: &str) -> String {
    matrix_ids::text::printable(text)
}

/// What one attempt came to.
enum Attempt {
    /// A 2xx answer, its body unread.
    Done(ureq::Response),
    /// HTTP 429, with the wait the server asked for.
    RateLimited {
        asked: Option<Duration>,
        error: Error,
    },
    /// A 5xx answer or a broken connection: worth a retry when the request is idempotent.
    Retryable { status: Option<u16>, error: Error },
    /// HTTP 401 `M_UNKNOWN_TOKEN`: the token expired or was logged out.
    Unauthorized(Error),
    /// Anything else.
    Failed(Error),
}

/// A body reader that fails, instead of stopping short, past its limit.
struct Capped<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            // One byte more than allowed means the answer is too large.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(std::io::Error::other("the answer is larger than allowed")),
            };
        }
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// Reads an answer's body, refusing one larger than `limit` bytes.
fn read_body(resp: ureq::Response, what: &str, limit: usize) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    resp.into_reader()
        .take(limit as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::BadResponse {
            what: what.into(),
            reason: e.to_string(),
        })?;
    if buf.len() > limit {
        return Err(Error::BadResponse {
            what: what.into(),
            reason: format!("the answer is larger than {limit} bytes"),
        });
    }
    tracing::debug!("  received {} bytes", buf.len());
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

#[cfg(test)]
mod secret_json_tests {
    use super::*;

    #[test]
    fn secret_json_is_the_json_and_needs_no_reallocation() {
        #[derive(serde::Serialize)]
        struct Login<'a> {
            password: &'a str,
        }
        let body = secret_json(&Login {
            password: "p\"w\u{1}é",
        });
        assert_eq!(&body[..], r#"{"password":"p\"w\u0001é"}"#.as_bytes());
        assert_eq!(
            body.capacity(),
            body.len(),
            "sized exactly: never grown and copied"
        );
    }
}
