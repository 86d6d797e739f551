//! Logging in the way a homeserver wants: what it offers ([`flows`]: OAuth 2.0 server
//! metadata first, then the legacy `/login` flows), and the browser logins, each through a
//! [`crate::loopback::Listener`] on loopback and each in two steps, so that a front end
//! shows the address its own way and the login finishes later: [`oauth`] (a native app:
//! dynamic client registration, authorization code with PKCE S256, refresh, revocation) and
//! [`sso`] (the legacy redirect, `m.login.token`); and, for a machine with no browser,
//! [`device`] (OAuth 2.0's device authorization grant: a code entered on a phone). Every
//! login asks for a refresh token, so
//! a run of hours keeps its token fresh (see [`crate::auth`]).

pub mod device;
pub mod oauth;
pub mod sso;

pub use oauth::{revoke, OAuthClient};

use serde::Deserialize;
use url::Url;

use crate::client::{printable, Body, Client};
use crate::error::{Error, Result};

/// How to log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// What the server offers: OAuth 2.0 first, then a password (when a user ID is known),
    /// then SSO.
    Auto,
    /// OAuth 2.0 (next-generation auth, MSC3861): a browser tab.
    OAuth,
    /// OAuth 2.0's device authorization grant (MSC4341): a code entered on another device.
    Device,
    /// The legacy single sign-on redirect: a browser tab.
    Sso,
    /// A password, asked on the terminal.
    Password,
}

impl Method {
    /// Its name, as a plan file and the command line spell it.
    pub fn name(self) -> &'static str {
        match self {
            Method::Auto => "auto",
            Method::OAuth => "oauth",
            Method::Device => "device",
            Method::Sso => "sso",
            Method::Password => "password",
        }
    }
}

/// An identity provider of the legacy SSO flow.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct IdentityProvider {
    /// Its ID (for `--idp`).
    pub id: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
}

/// The OAuth 2.0 authorization server's metadata (RFC 8414), as the homeserver names it.
#[derive(Debug, Clone, Deserialize)]
pub struct AuthMetadata {
    /// The issuer.
    pub issuer: String,
    /// Where the browser logs in.
    pub authorization_endpoint: Url,
    /// Where codes and refresh tokens are exchanged.
    pub token_endpoint: Url,
    /// Where a client registers itself (RFC 7591).
    #[serde(default)]
    pub registration_endpoint: Option<Url>,
    /// Where tokens are revoked (RFC 7009).
    #[serde(default)]
    pub revocation_endpoint: Option<Url>,
    /// PKCE methods.
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
    /// Where a device without a browser asks for a code (RFC 8628).
    #[serde(default)]
    pub device_authorization_endpoint: Option<Url>,
    /// The grants the server allows.
    #[serde(default)]
    pub grant_types_supported: Vec<String>,
}

impl AuthMetadata {
    /// Whether the server offers the device authorization grant: it lists the grant, and
    /// names the endpoint.
    pub fn offers_device_code(&self) -> bool {
        self.device_authorization_endpoint.is_some()
            && self
                .grant_types_supported
                .iter()
                .any(|g| g == device::GRANT)
    }

    /// Checks what the homeserver said of its auth server: every endpoint https (plain
    /// http only on loopback, and only for a homeserver on loopback), and the issuer a URL
    /// of the same origin as the endpoints the browser and the tokens go to.
    pub fn check(&self, homeserver: &Url) -> Result<()> {
        let issuer = Url::parse(&self.issuer).map_err(|e| Error::Login {
            reason: format!(
                "the OAuth 2.0 metadata's issuer {:?} is not a URL: {e}",
                printable(&self.issuer)
            ),
        })?;
        for url in [
            Some(&issuer),
            Some(&self.authorization_endpoint),
            Some(&self.token_endpoint),
            self.registration_endpoint.as_ref(),
            self.revocation_endpoint.as_ref(),
            self.device_authorization_endpoint.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            crate::homeserver::check_endpoint(url, homeserver)?;
        }
        let device = self.device_authorization_endpoint.as_ref();
        for url in [&self.authorization_endpoint, &self.token_endpoint]
            .into_iter()
            .chain(device)
        {
            if url.origin() != issuer.origin() {
                return Err(Error::Login {
                    reason: format!(
                        "the OAuth 2.0 metadata names {} as its issuer but sends logins to {}: \
                         refusing a server whose metadata does not hold together",
                        printable(issuer.as_str()),
                        printable(url.as_str())
                    ),
                });
            }
        }
        Ok(())
    }
}

/// What a homeserver offers.
#[derive(Debug, Clone)]
pub struct Flows {
    /// OAuth 2.0 (next-generation auth), when the server delegates to it.
    pub oauth: Option<AuthMetadata>,
    /// `m.login.password`.
    pub password: bool,
    /// `m.login.sso`, with its identity providers (maybe none listed).
    pub sso: Option<Vec<IdentityProvider>>,
}

impl Flows {
    /// The method to use for `wanted`, or why it cannot be used here; `have_user`: a user
    /// ID is known (for a password); `browser`: one can be opened here (else `Auto` takes
    /// the device grant over the browser login, where the server offers it).
    pub fn choose(&self, wanted: Method, have_user: bool, browser: bool) -> Result<Method> {
        let unavailable = || Error::LoginUnavailable {
            wanted: wanted.name(),
            offered: self.offered().join(", "),
        };
        match wanted {
            Method::OAuth if self.oauth.is_none() => Err(unavailable()),
            Method::Device
                if !self
                    .oauth
                    .as_ref()
                    .is_some_and(AuthMetadata::offers_device_code) =>
            {
                Err(unavailable())
            }
            Method::Sso if self.sso.is_none() => Err(unavailable()),
            Method::Password if !self.password => Err(unavailable()),
            Method::Auto => self.automatic(have_user, browser),
            m => Ok(m),
        }
    }

    /// The methods offered, by name.
    pub fn offered(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if let Some(oauth) = &self.oauth {
            out.push(Method::OAuth.name());
            if oauth.offers_device_code() {
                out.push(Method::Device.name());
            }
        }
        if self.sso.is_some() {
            out.push(Method::Sso.name());
        }
        if self.password {
            out.push(Method::Password.name());
        }
        out
    }

    /// What `Auto` means here: OAuth 2.0 (its device grant when no browser can be opened
    /// and the server offers it), else a password (with a user ID), else SSO.
    fn automatic(&self, have_user: bool, browser: bool) -> Result<Method> {
        let no = |reason: &str| {
            Err(Error::Login {
                reason: reason.into(),
            })
        };
        if let Some(oauth) = &self.oauth {
            match !browser && oauth.offers_device_code() {
                true => Ok(Method::Device),
                false => Ok(Method::OAuth),
            }
        } else if self.password && have_user {
            Ok(Method::Password)
        } else if self.sso.is_some() {
            Ok(Method::Sso)
        } else if self.password {
            no("this homeserver takes passwords: give the user ID to log in as")
        } else {
            no("this homeserver offers no login this tool knows (OAuth 2.0, SSO, password): give an access token")
        }
    }
}

/// Asks `client`'s homeserver what logins it offers (no token sent).
pub fn flows(client: &Client) -> Result<Flows> {
    let mut oauth = None;
    for segments in [
        &["v1", "auth_metadata"][..],
        &["unstable", "org.matrix.msc2965", "auth_metadata"][..],
    ] {
        match client.call_json::<AuthMetadata>(
            "read its OAuth 2.0 metadata",
            crate::wire::Method::Get,
            segments,
            &[],
            Body::None,
            false,
        ) {
            Ok(m) => {
                m.check(client.homeserver().url())?;
                oauth = Some(m);
                break;
            }
            Err(e) if crate::wire::is_unsupported(&e) => continue,
            Err(e) => return Err(e),
        }
    }
    #[derive(Deserialize)]
    struct Flow {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        identity_providers: Vec<IdentityProvider>,
    }
    #[derive(Deserialize)]
    struct LoginFlows {
        flows: Vec<Flow>,
    }
    let (mut password, mut sso) = (false, None);
    match client.call_json::<LoginFlows>(
        "list its login flows",
        crate::wire::Method::Get,
        &["v3", "login"],
        &[],
        Body::None,
        false,
    ) {
        Ok(found) => {
            for f in found.flows {
                match f.kind.as_str() {
                    "m.login.password" => password = true,
                    "m.login.sso" => sso = Some(f.identity_providers),
                    _ => {}
                }
            }
        }
        // Delegated to OAuth 2.0: the legacy API is gone.
        Err(e) if oauth.is_some() && crate::wire::is_unsupported(&e) => {}
        Err(e) => return Err(e),
    }
    Ok(Flows {
        oauth,
        password,
        sso,
    })
}

/// The address of a browser login.
#[derive(Debug, Clone)]
pub struct LoginAddress {
    /// The login URL, to show the user (it holds the login's `state`: shown on the
    /// terminal, never in another program's arguments).
    pub url: Url,
    /// Where to open a browser: a loopback address that redirects to `url` once.
    pub start: Url,
}

/// Shows the user the address to open (and opens a browser when it can).
pub type ShowUrl<'a> = &'a (dyn Fn(&LoginAddress) + Sync);

#[cfg(test)]
mod tests {
    use super::*;

    fn flows(oauth: bool, password: bool, sso: bool) -> Flows {
        Flows {
            oauth: oauth.then(|| AuthMetadata {
                issuer: "https://auth.example/".into(),
                authorization_endpoint: Url::parse("https://auth.example/authorize").unwrap(),
                token_endpoint: Url::parse("https://auth.example/token").unwrap(),
                registration_endpoint: None,
                revocation_endpoint: None,
                code_challenge_methods_supported: vec![],
                device_authorization_endpoint: None,
                grant_types_supported: vec![],
            }),
            password,
            sso: sso.then(Vec::new),
        }
    }

    #[test]
    fn auto_prefers_oauth_then_password_with_a_user_then_sso() {
        assert_eq!(
            flows(true, false, false)
                .choose(Method::Auto, true, true)
                .unwrap(),
            Method::OAuth
        );
        assert_eq!(
            flows(false, true, true)
                .choose(Method::Auto, true, true)
                .unwrap(),
            Method::Password
        );
        assert_eq!(
            flows(false, true, true)
                .choose(Method::Auto, false, true)
                .unwrap(),
            Method::Sso
        );
        assert_eq!(
            flows(false, false, true)
                .choose(Method::Auto, true, true)
                .unwrap(),
            Method::Sso
        );
        assert!(matches!(
            flows(false, true, false).choose(Method::Auto, false, true),
            Err(Error::Login { .. })
        ));
    }

    /// Without a browser, `Auto` takes the device grant, where the server offers it; asked
    /// for by name, it must be offered (listed, and its endpoint named).
    #[test]
    fn auto_without_a_browser_takes_the_device_grant_where_offered() {
        let with_device = || {
            let mut f = flows(true, false, false);
            let meta = f.oauth.as_mut().unwrap();
            meta.device_authorization_endpoint =
                Some(Url::parse("https://auth.example/device").unwrap());
            meta.grant_types_supported = vec![device::GRANT.into()];
            f
        };
        assert_eq!(
            with_device().choose(Method::Auto, true, false).unwrap(),
            Method::Device
        );
        assert_eq!(
            with_device().choose(Method::Auto, true, true).unwrap(),
            Method::OAuth
        );
        assert_eq!(with_device().offered(), ["oauth", "device"]);
        assert_eq!(
            flows(true, false, false)
                .choose(Method::Auto, true, false)
                .unwrap(),
            Method::OAuth,
            "no grant: the browser login's address is still shown"
        );
        let e = flows(true, false, false)
            .choose(Method::Device, true, false)
            .unwrap_err();
        assert!(e.to_string().ends_with("it offers: oauth"), "{e}");
        let mut listed_only = with_device();
        listed_only
            .oauth
            .as_mut()
            .unwrap()
            .device_authorization_endpoint = None;
        assert!(listed_only.choose(Method::Device, true, false).is_err());
    }

    /// L6: loopback http endpoints only for a loopback homeserver; the issuer's origin is
    /// the endpoints'.
    #[test]
    fn auth_metadata_must_hold_together() {
        let meta = |issuer: &str, base: &str| AuthMetadata {
            issuer: issuer.into(),
            authorization_endpoint: Url::parse(&format!("{base}/authorize")).unwrap(),
            token_endpoint: Url::parse(&format!("{base}/token")).unwrap(),
            registration_endpoint: Some(Url::parse(&format!("{base}/register")).unwrap()),
            revocation_endpoint: None,
            code_challenge_methods_supported: vec![],
            device_authorization_endpoint: Some(Url::parse(&format!("{base}/device")).unwrap()),
            grant_types_supported: vec![device::GRANT.into()],
        };
        let remote = Url::parse("https://matrix.example.org").unwrap();
        let local = Url::parse("http://127.0.0.1:8008").unwrap();
        assert!(
            meta("https://auth.example.org/", "https://auth.example.org")
                .check(&remote)
                .is_ok()
        );
        assert!(meta("http://127.0.0.1:9/", "http://127.0.0.1:9")
            .check(&local)
            .is_ok());
        assert!(matches!(
            meta("http://127.0.0.1:9/", "http://127.0.0.1:9").check(&remote),
            Err(Error::InsecureUrl { .. })
        ));
        let e = meta("https://auth.example.org/", "https://elsewhere.example")
            .check(&remote)
            .unwrap_err();
        assert!(e.to_string().contains("does not hold together"), "{e}");
        let mut elsewhere = meta("https://auth.example.org/", "https://auth.example.org");
        elsewhere.device_authorization_endpoint =
            Some(Url::parse("https://elsewhere.example/device").unwrap());
        assert!(elsewhere.check(&remote).is_err(), "the device endpoint too");
        assert!(meta("not a url", "https://auth.example.org")
            .check(&remote)
            .is_err());
    }

    #[test]
    fn a_method_the_server_lacks_is_refused_with_what_it_offers() {
        let e = flows(true, false, false)
            .choose(Method::Password, true, true)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "this homeserver does not offer a login by password; it offers: oauth"
        );
        let e = flows(false, true, true)
            .choose(Method::OAuth, true, true)
            .unwrap_err();
        assert!(e.to_string().ends_with("it offers: sso, password"), "{e}");
        assert!(
            !e.to_string().contains("--"),
            "a library names no flag: {e}"
        );
    }
}
