//! Who may use the page: only the browser that opened the address the tool printed, on
//! this computer.
//!
//! - The server listens on 127.0.0.1 only.
//! - The first address holds a one-time launch key; the browser trades it for a session
//!   cookie (HttpOnly, SameSite=Strict) and is sent on to an address without it. The key
//!   works once: a copy of the address in a shell's history or a screenshot opens nothing.
//! - Every request must name this server in its `Host` header (a page of another site,
//!   its name rebound to 127.0.0.1, names its own: DNS rebinding).
//! - Every request that changes anything (POST) must come from this origin (`Origin`) and
//!   carry the page's token (another site's form cannot know it).
//!
//! Keys, cookie and token are 32 random bytes each, compared in constant time.

use std::sync::Mutex;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// The name of the session cookie.
pub const COOKIE: &str = "mt_session";
/// The form field (or `X-Token` header) carrying the page's token.
pub const TOKEN_FIELD: &str = "token";

/// The secrets of one server run.
pub struct Guard {
    /// `127.0.0.1:PORT`, the only Host accepted.
    host: String,
    /// `http://127.0.0.1:PORT`, the only Origin accepted.
    origin: String,
    /// The launch key, until it is traded.
    launch: Mutex<Option<Zeroizing<String>>>,
    /// The session cookie's value.
    cookie: Zeroizing<String>,
    /// The token every state change carries.
    token: Zeroizing<String>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The Host header is not this server's.
    WrongHost,
    /// No session cookie, or not this run's.
    NoSession,
    /// A change from another origin (or with none named).
    WrongOrigin,
    /// A change without the page's token.
    NoToken,
    /// A launch key that is wrong or already used.
    LaunchUsed,
}

impl Refusal {
    /// The HTTP status.
    pub fn status(self) -> u16 {
        match self {
            Refusal::WrongHost => 421,
            _ => 403,
        }
    }

    /// What the person reading the refusal should do.
    pub fn text(self) -> &'static str {
        match self {
            Refusal::WrongHost => {
                "This server only answers at the address matrix-transplant printed \
                 (http://127.0.0.1:…). Open that address."
            }
            Refusal::NoSession => {
                "This page is open only to the browser that opened the address \
                 matrix-transplant printed. Open that address, or run `matrix-transplant ui` \
                 again for a new one."
            }
            Refusal::WrongOrigin | Refusal::NoToken => {
                "This request did not come from the matrix-transplant page itself, so \
                 nothing was done. Use the page's own buttons."
            }
            Refusal::LaunchUsed => {
                "This address was already used once (it works once). The page is open in \
                 the browser that used it; or run `matrix-transplant ui` again for a new \
                 address."
            }
        }
    }
}

/// What a request says, for the checks.
pub struct Seen<'a> {
    /// The Host header.
    pub host: Option<&'a str>,
    /// The Origin header.
    pub origin: Option<&'a str>,
    /// The Cookie header.
    pub cookie: Option<&'a str>,
    /// The token sent (form field or header).
    pub token: Option<&'a str>,
}

impl Guard {
    /// Fresh secrets for a server at `port` of 127.0.0.1.
    pub fn new(port: u16) -> Self {
        Guard {
            host: format!("127.0.0.1:{port}"),
            origin: format!("http://127.0.0.1:{port}"),
            launch: Mutex::new(Some(random())),
            cookie: random(),
            token: random(),
        }
    }

    /// The address that opens the page once: `http://127.0.0.1:PORT/start?k=…`.
    pub fn launch_url(&self) -> Zeroizing<String> {
        let launch = self.launch.lock().expect("launch lock");
        let key = launch.as_deref().map_or("", |k| k.as_str());
        Zeroizing::new(format!("{}/start?k={key}", self.origin))
    }

    /// The page's origin.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The token pages put into their forms.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Trades the launch key for the cookie: the `Set-Cookie` value, once.
    pub fn trade(&self, key: &str) -> Result<String, Refusal> {
        let mut launch = self.launch.lock().expect("launch lock");
        match launch.as_deref() {
            Some(k) if equal(k, key) => {
                *launch = None;
                Ok(format!(
                    "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/",
                    self.cookie.as_str()
                ))
            }
            _ => Err(Refusal::LaunchUsed),
        }
    }

    /// The Host check alone (every request, the launch address included).
    pub fn host(&self, seen: &Seen<'_>) -> Result<(), Refusal> {
        match seen.host {
            Some(h) if h == self.host => Ok(()),
            _ => Err(Refusal::WrongHost),
        }
    }

    /// The checks of a request that reads: Host and cookie.
    pub fn read(&self, seen: &Seen<'_>) -> Result<(), Refusal> {
        self.host(seen)?;
        let ours = seen
            .cookie
            .into_iter()
            .flat_map(|c| c.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .any(|(name, value)| name == COOKIE && equal(value, &self.cookie));
        match ours {
            true => Ok(()),
            false => Err(Refusal::NoSession),
        }
    }

    /// The checks of a request that changes something: those of [`Guard::read`], the
    /// Origin, and the token.
    pub fn change(&self, seen: &Seen<'_>) -> Result<(), Refusal> {
        self.read(seen)?;
        if seen.origin != Some(self.origin.as_str()) {
            return Err(Refusal::WrongOrigin);
        }
        match seen.token {
            Some(t) if equal(t, &self.token) => Ok(()),
            _ => Err(Refusal::NoToken),
        }
    }
}

/// Compares in constant time (for equal lengths; the length is not secret).
fn equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// 32 random bytes, hex.
fn random() -> Zeroizing<String> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    getrandom::getrandom(bytes.as_mut()).expect("the system's random numbers");
    let mut out = Zeroizing::new(String::with_capacity(64));
    for b in bytes.iter() {
        out.push(char::from_digit(u32::from(b >> 4), 16).expect("hex"));
        out.push(char::from_digit(u32::from(b & 15), 16).expect("hex"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen<'a>(host: &'a str, cookie: Option<&'a str>) -> Seen<'a> {
        Seen {
            host: Some(host),
            origin: None,
            cookie,
            token: None,
        }
    }

    #[test]
    fn the_launch_key_works_once_and_only_itself() {
        let g = Guard::new(4000);
        let url = g.launch_url();
        let key = url.split("k=").nth(1).unwrap().to_owned();
        assert_eq!(key.len(), 64);
        assert_eq!(g.trade(&key[..63]), Err(Refusal::LaunchUsed));
        let cookie = g.trade(&key).unwrap();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        assert_eq!(g.trade(&key), Err(Refusal::LaunchUsed));
        let value = cookie.split(';').next().unwrap();
        assert_eq!(g.read(&seen("127.0.0.1:4000", Some(value))), Ok(()));
    }

    #[test]
    fn host_cookie_origin_and_token_are_each_required() {
        let g = Guard::new(4000);
        let cookie = format!("other=1; {COOKIE}={}", g.cookie.as_str());
        let ok = Seen {
            host: Some("127.0.0.1:4000"),
            origin: Some("http://127.0.0.1:4000"),
            cookie: Some(&cookie),
            token: Some(g.token()),
        };
        assert_eq!(g.change(&ok), Ok(()));
        let rebound = Seen {
            host: Some("evil.example:4000"),
            ..ok
        };
        assert_eq!(g.change(&rebound), Err(Refusal::WrongHost));
        let no_cookie = Seen { cookie: None, ..ok };
        assert_eq!(g.read(&no_cookie), Err(Refusal::NoSession));
        let other_origin = Seen {
            origin: Some("http://evil.example"),
            ..ok
        };
        assert_eq!(g.change(&other_origin), Err(Refusal::WrongOrigin));
        let no_origin = Seen { origin: None, ..ok };
        assert_eq!(g.change(&no_origin), Err(Refusal::WrongOrigin));
        let bad_token = Seen {
            token: Some("0"),
            ..ok
        };
        assert_eq!(g.change(&bad_token), Err(Refusal::NoToken));
    }

    #[test]
    fn secrets_differ_between_runs_and_stay_out_of_debug() {
        let (a, b) = (Guard::new(1), Guard::new(1));
        assert_ne!(a.token(), b.token());
        assert!(!format!("{a:?}").contains(a.token()));
    }
}
