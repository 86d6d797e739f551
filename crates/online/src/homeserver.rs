//! A homeserver: its URL checked (https; plain http only to loopback unless allowed),
//! found through `.well-known` when only a user ID is known, the certificate authorities it
//! is trusted with, and the HTTP agent for it (no redirects followed).

use crate::wire::printable;
use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;

use url::Url;

use crate::error::{Error, Result};
use crate::tls::Trust;
use crate::wire::{read_body, MAX_ERROR_BODY};

/// A homeserver's base URL, checked: https, or http only to a loopback address unless
/// explicitly allowed.
#[derive(Debug, Clone)]
pub struct Homeserver {
    pub(crate) base: Url,
    pub(crate) trust: Option<Trust>,
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
            "http" => {
                return Err(Error::InsecureUrl {
                    url: printable(url),
                })
            }
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
        let mut hs = match agent.get(&well_known).call() {
            Ok(resp) => {
                let bytes = read_body(resp, "discovery", MAX_ERROR_BODY)?;
                Homeserver::from_well_known(server, &bytes)?
            }
            Err(ureq::Error::Status(404, _)) => {
                Homeserver::parse(&format!("https://{server}"), false)?
            }
            Err(e) => return Err(fail(e.to_string())),
        };
        hs.trust = trust.cloned();
        Ok(hs)
    }

    /// The homeserver a `.well-known/matrix/client` answer of `server` names: https only
    /// (the loopback exemption is for URLs the user types, never for found ones).
    pub fn from_well_known(server: &str, answer: &[u8]) -> Result<Self> {
        #[derive(Deserialize)]
        struct Hs {
            base_url: String,
        }
        #[derive(Deserialize)]
        struct WellKnown {
            #[serde(rename = "m.homeserver")]
            homeserver: Hs,
        }
        let fail = |reason: String| Error::Discovery {
            server: printable(server),
            reason,
        };
        let wk: WellKnown =
            serde_json::from_slice(answer).map_err(|e| fail(format!("bad .well-known: {e}")))?;
        let found = wk.homeserver.base_url;
        let hs = Homeserver::parse(&found, false)?;
        if hs.base.scheme() != "https" {
            return Err(fail(format!(
                "its .well-known names {}, which is not https",
                printable(&found)
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
pub(crate) fn agent(trust: Option<&Trust>) -> ureq::Agent {
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

    /// Found by the `metadata` fuzz target's check that refusals are safe on a terminal: a
    /// `.well-known` naming `http://a<TAB>/` (a URL parser drops the tab) was refused with
    /// the tab raw in the message.
    #[test]
    fn a_found_url_is_refused_in_printable_text() {
        let answer = br#"{"m.homeserver": {"base_url": "http://a\t/\u202e"}}"#;
        let e = Homeserver::from_well_known("example.org", answer).unwrap_err();
        assert!(
            matches!(&e, Error::InsecureUrl { url } if url == "http://a\\t/\\u{202e}"),
            "{e:?}"
        );
    }
}
