//! The access token in force and how to renew it. A client and its forks share one
//! [`Auth`], so when a token expires one refresh serves every stage that runs in parallel,
//! and the rotated refresh token exists in one place only (memory, wiped when replaced).
//!
//! Two kinds of refresh: the client-server API's `POST /_matrix/client/v3/refresh`
//! (password and legacy SSO logins asked with `refresh_token: true`), and the OAuth 2.0
//! token endpoint (`grant_type=refresh_token`, next-generation auth). Either way the refresh
//! token rotates; the spent one is refused afterwards. A token the user gave has no refresh:
//! when the server stops taking it, the error says how to let the tool renew its own.

use std::fmt;
use std::io::Read as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;
use url::Url;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::token::AccessToken;
use crate::wire::{self, secret_json, Attempt, Body, Method};

/// What a login returned.
pub struct Tokens {
    /// The access token.
    pub access: AccessToken,
    /// How to renew it, when it can be.
    pub refresh: Option<Refresh>,
    /// How long the access token lives, when the server said.
    pub expires_in: Option<Duration>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("refreshable", &self.refresh.is_some())
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// How to get a new access token.
pub enum Refresh {
    /// `POST {url}` with `{"refresh_token": …}` (the client-server API's `/refresh`).
    Matrix {
        /// The homeserver's refresh URL.
        url: Url,
        /// The refresh token.
        token: Zeroizing<String>,
    },
    /// The OAuth 2.0 token endpoint, `grant_type=refresh_token`.
    OAuth {
        /// The token endpoint.
        url: Url,
        /// Our registered client ID.
        client_id: String,
        /// The refresh token.
        token: Zeroizing<String>,
    },
}

impl Refresh {
    fn token_mut(&mut self) -> &mut Zeroizing<String> {
        match self {
            Refresh::Matrix { token, .. } | Refresh::OAuth { token, .. } => token,
        }
    }
}

/// The token state shared by a client and its forks.
pub(crate) struct Auth {
    state: Mutex<State>,
}

struct State {
    access: AccessToken,
    /// Bumped at each refresh: a request rejected with an older token needs no new refresh.
    generation: u64,
    expires_at: Option<Instant>,
    lifetime: Option<Duration>,
    refresh: Option<Refresh>,
    refreshes: usize,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Auth(<redacted>)")
    }
}

/// The longest a token is renewed ahead of its expiry.
const AHEAD: Duration = Duration::from_secs(30);

/// The longest lifetime taken from a server's `expires_in`: a token it says lives longer is
/// renewed after a day anyway (and a number too large for a clock cannot overflow one).
pub const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// A token's lifetime as a server gives it, made safe: 0 is "unknown" (not "renew before
/// every request"), anything longer than [`MAX_LIFETIME`] is that.
pub fn lifetime(given: Option<Duration>) -> Option<Duration> {
    given.filter(|d| !d.is_zero()).map(|d| d.min(MAX_LIFETIME))
}

/// When a token of `life` expires, from now (checked: a clock never overflows).
pub fn expiry(life: Option<Duration>) -> Option<Instant> {
    life.and_then(|d| Instant::now().checked_add(d))
}

impl Auth {
    /// A token with no way to renew it (given by the user, or none yet).
    pub(crate) fn fixed(access: AccessToken) -> Self {
        Auth::from_tokens(Tokens {
            access,
            refresh: None,
            expires_in: None,
        })
    }

    pub(crate) fn from_tokens(tokens: Tokens) -> Self {
        let life = lifetime(tokens.expires_in);
        Auth {
            state: Mutex::new(State {
                access: tokens.access,
                generation: 0,
                expires_at: expiry(life),
                lifetime: life,
                refresh: tokens.refresh,
                refreshes: 0,
            }),
        }
    }

    /// Replaces the tokens (after a login).
    pub(crate) fn set(&self, tokens: Tokens) {
        let mut s = self.lock();
        s.access = tokens.access;
        s.generation += 1;
        s.lifetime = lifetime(tokens.expires_in);
        s.expires_at = expiry(s.lifetime);
        s.refresh = tokens.refresh;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current token (renewed first when it is about to expire) and its generation.
    pub(crate) fn current(&self, agent: &ureq::Agent) -> Result<(AccessToken, u64)> {
        let mut s = self.lock();
        if let (Some(at), Some(life), Some(_)) = (s.expires_at, s.lifetime, &s.refresh) {
            let ahead = AHEAD.min(life / 4);
            if Instant::now()
                .checked_add(ahead)
                .is_none_or(|soon| soon >= at)
            {
                refresh(&mut s, agent)?;
            }
        }
        Ok((s.access.clone(), s.generation))
    }

    /// After the server rejected the token of `generation`: renews it unless another
    /// request already did. False when there is no way to renew it.
    pub(crate) fn renew_after_rejection(
        &self,
        agent: &ureq::Agent,
        generation: u64,
    ) -> Result<bool> {
        let mut s = self.lock();
        if s.generation != generation {
            return Ok(true);
        }
        if s.refresh.is_none() {
            return Ok(false);
        }
        refresh(&mut s, agent)?;
        Ok(true)
    }

    /// The token in force, without renewing it (to log out with).
    pub(crate) fn access(&self) -> AccessToken {
        self.lock().access.clone()
    }

    /// True when the tool can renew the token itself.
    pub(crate) fn refreshable(&self) -> bool {
        self.lock().refresh.is_some()
    }

    /// The refresh token in force (to revoke at the end), when there is one.
    pub(crate) fn refresh_token(&self) -> Option<Zeroizing<String>> {
        self.lock().refresh.as_mut().map(|r| r.token_mut().clone())
    }

    /// How many times the token was renewed.
    pub(crate) fn refreshes(&self) -> usize {
        self.lock().refreshes
    }
}

/// The answer of either refresh.
#[derive(Deserialize)]
struct Renewed {
    access_token: Zeroizing<String>,
    #[serde(default)]
    refresh_token: Option<Zeroizing<String>>,
    /// The client-server API's lifetime.
    #[serde(default)]
    expires_in_ms: Option<u64>,
    /// OAuth 2.0's lifetime.
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Renews the token in `s`. A lost answer (or a 5xx, or a 429) is retried: the spent
/// refresh token stays valid until its successor is first used.
fn refresh(s: &mut State, agent: &ureq::Agent) -> Result<()> {
    let what = "renew the access token";
    let mut last = None;
    for attempt in 0..3u32 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(500) * 2u32.pow(attempt));
        }
        let sent = {
            let refresh = s.refresh.as_ref().expect("checked by the caller");
            send_refresh(agent, what, refresh)
        };
        match sent {
            Attempt::Done(resp) => return apply(s, read_renewed(resp, what)?),
            Attempt::Retryable { error, .. } | Attempt::RateLimited { error, .. } => {
                last = Some(error)
            }
            Attempt::Failed(error) | Attempt::Unauthorized(error) => {
                return Err(Error::SessionEnded {
                    reason: format!("the server refused to renew it ({error})"),
                })
            }
        }
    }
    Err(Error::SessionEnded {
        reason: format!(
            "renewing it failed three times: {}",
            last.map_or_else(String::new, |e| e.to_string())
        ),
    })
}

/// One refresh request, through the one wire path.
fn send_refresh(agent: &ureq::Agent, what: &str, refresh: &Refresh) -> Attempt {
    match refresh {
        Refresh::Matrix { url, token } => {
            #[derive(serde::Serialize)]
            struct Asked<'a> {
                refresh_token: &'a str,
            }
            let body = secret_json(&Asked {
                refresh_token: token.as_str(),
            });
            wire::send(
                agent,
                what,
                Method::Post,
                url,
                &Body::Json(&body),
                None,
                None,
            )
        }
        Refresh::OAuth {
            url,
            client_id,
            token,
        } => {
            let form = crate::login::oauth::form_body(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", token.as_str()),
                ("client_id", client_id),
            ]);
            let body = Body::Bytes {
                content_type: "application/x-www-form-urlencoded",
                data: &form,
            };
            wire::send(agent, what, Method::Post, url, &body, None, None)
        }
    }
}

/// The renewal's answer (read into a wiped buffer: it holds the new tokens).
fn read_renewed(resp: ureq::Response, what: &str) -> Result<Renewed> {
    let mut text = Zeroizing::new(String::new());
    let bad = |reason: String| Error::BadResponse {
        what: what.into(),
        reason,
    };
    std::io::Read::read_to_string(&mut resp.into_reader().take(1 << 16), &mut text)
        .map_err(|e| bad(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| bad(e.to_string()))
}

/// Puts a renewal's tokens in force.
fn apply(s: &mut State, renewed: Renewed) -> Result<()> {
    s.access = AccessToken::new(&renewed.access_token);
    s.generation += 1;
    s.refreshes += 1;
    let life = renewed
        .expires_in_ms
        .map(Duration::from_millis)
        .or(renewed.expires_in.map(Duration::from_secs));
    s.lifetime = lifetime(life);
    s.expires_at = expiry(s.lifetime);
    if let Some(next) = renewed.refresh_token {
        *s.refresh.as_mut().expect("present").token_mut() = next;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_token() {
        let tokens = Tokens {
            access: AccessToken::new("syt_secret_access"),
            refresh: Some(Refresh::OAuth {
                url: Url::parse("https://auth.example/token").unwrap(),
                client_id: "client".into(),
                token: Zeroizing::new("mar_secret_refresh".into()),
            }),
            expires_in: Some(Duration::from_secs(300)),
        };
        let shown = format!("{tokens:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("refreshable: true"), "{shown}");
        let auth = Auth::from_tokens(tokens);
        assert_eq!(format!("{auth:?}"), "Auth(<redacted>)");
        assert_eq!(
            auth.refresh_token().as_deref().map(String::as_str),
            Some("mar_secret_refresh")
        );
    }

    /// L2: whatever `expires_in` a server sends, no panic (it was an Instant overflow, exit
    /// 101), and neither 0 nor an absurd value is taken as it is.
    #[test]
    fn any_lifetime_a_server_sends_is_safe() {
        let refresh = || {
            Some(Refresh::OAuth {
                url: Url::parse("https://auth.invalid/token").unwrap(),
                client_id: "client".into(),
                token: Zeroizing::new("r".into()),
            })
        };
        for secs in [0, 300, 86_400 * 365, u64::MAX / 1000, u64::MAX] {
            let auth = Auth::from_tokens(Tokens {
                access: AccessToken::new("t"),
                refresh: refresh(),
                expires_in: Some(Duration::from_secs(secs)),
            });
            assert!(auth.current(&ureq::agent()).is_ok());
            auth.set(Tokens {
                access: AccessToken::new("u"),
                refresh: refresh(),
                expires_in: Some(Duration::from_secs(secs)),
            });
            assert!(auth.current(&ureq::agent()).is_ok(), "{secs}");
        }
        assert_eq!(lifetime(Some(Duration::ZERO)), None);
        assert_eq!(lifetime(Some(Duration::MAX)), Some(MAX_LIFETIME));
        assert_eq!(
            lifetime(Some(Duration::from_secs(300))),
            Some(Duration::from_secs(300))
        );
    }

    #[test]
    fn a_renewal_another_request_made_is_not_made_again() {
        let auth = Auth::fixed(AccessToken::new("t"));
        let agent = ureq::agent();
        let (_, generation) = auth.current(&agent).unwrap();
        // No refresh token: nothing to renew with.
        assert!(!auth.renew_after_rejection(&agent, generation).unwrap());
        auth.set(Tokens {
            access: AccessToken::new("u"),
            refresh: None,
            expires_in: None,
        });
        // The token that failed is an older one: the caller just sends again.
        assert!(auth.renew_after_rejection(&agent, generation).unwrap());
    }
}
