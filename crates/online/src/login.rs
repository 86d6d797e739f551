//! Logging in the way a homeserver wants: what it offers ([`flows`]: OAuth 2.0 server
//! metadata first, then the legacy `/login` flows), and the browser logins, each through a
//! [`Listener`] on loopback: OAuth 2.0 as a native app (dynamic client registration,
//! authorization code with PKCE S256, refresh, revocation) and the legacy SSO redirect
//! (`m.login.token`). Every login asks for a refresh token, so a run of hours keeps its
//! token fresh (see [`crate::auth`]).

use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use url::Url;
use zeroize::Zeroizing;

use crate::auth::{Refresh, Tokens};
use crate::client::{printable, AccessToken, Body, Client};
use crate::error::{Error, Result};
use crate::loopback::{random_token, Listener};

/// How to log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// What the server offers: OAuth 2.0 first, then a password (when a user ID is known),
    /// then SSO.
    Auto,
    /// OAuth 2.0 (next-generation auth, MSC3861): a browser tab.
    OAuth,
    /// The legacy single sign-on redirect: a browser tab.
    Sso,
    /// A password, asked on the terminal.
    Password,
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
}

impl AuthMetadata {
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
        ]
        .into_iter()
        .flatten()
        {
            crate::client::check_endpoint(url, homeserver)?;
        }
        for url in [&self.authorization_endpoint, &self.token_endpoint] {
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
    /// The method to use for `wanted`, or why it cannot be used here.
    pub fn choose(&self, wanted: Method, have_user: bool) -> Result<Method> {
        let no = |reason: String| Err(Error::Login { reason });
        match wanted {
            Method::OAuth if self.oauth.is_none() => no(
                "this homeserver does not offer OAuth 2.0 (next-generation auth): use --login sso or password".into(),
            ),
            Method::Sso if self.sso.is_none() => no(format!(
                "this homeserver does not offer single sign-on{}",
                if self.oauth.is_some() { ": it uses OAuth 2.0 (--login oauth)" } else { " (use --login password)" }
            )),
            Method::Password if !self.password => no(format!(
                "this homeserver does not take passwords here{}",
                if self.oauth.is_some() { ": it uses OAuth 2.0 (--login oauth)" } else if self.sso.is_some() { ": use --login sso" } else { "" }
            )),
            Method::Auto => {
                if self.oauth.is_some() {
                    Ok(Method::OAuth)
                } else if self.password && have_user {
                    Ok(Method::Password)
                } else if self.sso.is_some() {
                    Ok(Method::Sso)
                } else if self.password {
                    no("this homeserver takes passwords: give the user ID to log in as".into())
                } else {
                    no("this homeserver offers no login this tool knows (OAuth 2.0, SSO, password): give an access token".into())
                }
            }
            m => Ok(m),
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
            "GET",
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
            Err(e) if is_absent(&e) => continue,
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
        "GET",
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
        Err(e) if oauth.is_some() && is_absent(&e) => {}
        Err(e) => return Err(e),
    }
    Ok(Flows {
        oauth,
        password,
        sso,
    })
}

fn is_absent(e: &Error) -> bool {
    matches!(
        e,
        Error::Api {
            status: 404 | 405,
            ..
        }
    ) || matches!(e, Error::Api { errcode, .. } if errcode == "M_UNRECOGNIZED")
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

/// The legacy SSO login: the browser goes to the homeserver's redirect (through `idp`,
/// when given), comes back to our listener with a login token, exchanged (once) for an
/// access token and a refresh token.
pub fn sso(
    client: &Client,
    idp: Option<&str>,
    show: ShowUrl<'_>,
    timeout: Duration,
) -> Result<Tokens> {
    let mut listener = Listener::bind("/sso")?;
    listener.timeout = timeout;
    let state = random_token(16);
    let mut back = listener.redirect_uri();
    back.query_pairs_mut().append_pair("state", &state);
    let mut segments = vec!["v3", "login", "sso", "redirect"];
    if let Some(idp) = idp {
        segments.push(idp);
    }
    let url = client.url(&segments, &[("redirectUrl", back.as_str())]);
    let start = listener.start_url();
    show(&LoginAddress {
        url: url.clone(),
        start,
    });
    let callback = listener.wait(&state, &url)?;
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
    let body = crate::client::secret_json(&TokenLogin {
        kind: "m.login.token",
        token,
        refresh_token: true,
        initial_device_display_name: "matrix-transplant",
    });
    client.login("log in with the single sign-on token", &body)
}

/// What this tool registered with an OAuth 2.0 server, to refresh and revoke with.
#[derive(Debug, Clone)]
pub struct OAuthClient {
    /// Our client ID.
    pub client_id: String,
    /// The revocation endpoint, when the server has one.
    pub revocation_endpoint: Option<Url>,
}

/// The redirect URI registered: loopback, any port (RFC 8252 §7.3).
const OAUTH_REDIRECT: &str = "http://127.0.0.1/callback";

/// The OAuth 2.0 login as a native app: registers the tool, sends the browser to the
/// authorization endpoint with a PKCE S256 challenge, takes the code on loopback, and
/// exchanges it for tokens scoped to the client-server API and a device of our own.
pub fn oauth(
    client: &Client,
    meta: &AuthMetadata,
    show: ShowUrl<'_>,
    timeout: Duration,
) -> Result<(Tokens, OAuthClient)> {
    let agent = client.agent();
    let Some(registration) = &meta.registration_endpoint else {
        return Err(Error::Login {
            reason: "the OAuth 2.0 server does not let clients register themselves (no registration_endpoint)".into(),
        });
    };
    if !meta.code_challenge_methods_supported.is_empty()
        && !meta
            .code_challenge_methods_supported
            .iter()
            .any(|m| m == "S256")
    {
        return Err(Error::Login {
            reason: "the OAuth 2.0 server does not support PKCE S256".into(),
        });
    }
    #[derive(Deserialize)]
    struct Registered {
        client_id: String,
    }
    let body = serde_json::json!({
        "client_name": "matrix-transplant",
        "client_uri": env!("CARGO_PKG_REPOSITORY"),
        "application_type": "native",
        "token_endpoint_auth_method": "none",
        "redirect_uris": [OAUTH_REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
    })
    .to_string();
    let what = "register with the OAuth 2.0 server";
    let registered: Registered = json_answer(
        post(agent, registration, Payload::Json(body.as_bytes()), what)?,
        what,
    )?;

    let mut listener = Listener::bind("/callback")?;
    listener.timeout = timeout;
    let redirect = listener.redirect_uri();
    let state = random_token(16);
    let verifier = random_token(32);
    let challenge = {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
    };
    let device: String = random_token(8)
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .take(10)
        .collect();
    let scope = format!("urn:matrix:client:api:* urn:matrix:client:device:{device}");
    let mut url = meta.authorization_endpoint.clone();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &registered.client_id)
        .append_pair("redirect_uri", redirect.as_str())
        .append_pair("scope", &scope)
        .append_pair("state", &state)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    show(&LoginAddress {
        url: url.clone(),
        start: listener.start_url(),
    });
    let callback = listener.wait(&state, &url)?;
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
    #[derive(Deserialize)]
    struct Granted {
        access_token: Zeroizing<String>,
        #[serde(default)]
        refresh_token: Option<Zeroizing<String>>,
        #[serde(default)]
        expires_in: Option<u64>,
    }
    let what = "exchange the authorization code";
    let granted: Granted = json_answer(
        post(
            agent,
            &meta.token_endpoint,
            Payload::Form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect.as_str()),
                ("client_id", &registered.client_id),
                ("code_verifier", &verifier),
            ]),
            what,
        )?,
        what,
    )?;
    let tokens = Tokens {
        access: AccessToken::new(&granted.access_token),
        refresh: granted.refresh_token.map(|token| Refresh::OAuth {
            url: meta.token_endpoint.clone(),
            client_id: registered.client_id.clone(),
            token,
        }),
        expires_in: granted.expires_in.map(Duration::from_secs),
    };
    Ok((
        tokens,
        OAuthClient {
            client_id: registered.client_id,
            revocation_endpoint: meta.revocation_endpoint.clone(),
        },
    ))
}

/// What a POST to an OAuth 2.0 endpoint carries.
enum Payload<'a> {
    /// JSON text.
    Json(&'a [u8]),
    /// A form.
    Form(&'a [(&'a str, &'a str)]),
}

/// POSTs `payload` to an OAuth 2.0 endpoint (logged like the client's requests); the
/// answer, or a login error naming `what` could not be done.
fn post(
    agent: &ureq::Agent,
    url: &Url,
    payload: Payload<'_>,
    what: &str,
) -> Result<ureq::Response> {
    let started = std::time::Instant::now();
    let request = agent.request_url("POST", url);
    let result = match payload {
        Payload::Json(bytes) => request
            .set("Content-Type", "application/json")
            .send_bytes(bytes),
        Payload::Form(fields) => request
            .set("Content-Type", "application/x-www-form-urlencoded")
            .send_bytes(&form_body(fields)),
    };
    crate::client::log_exchange("POST", url, &Body::None, &result, started.elapsed());
    result.map_err(|e| {
        let reason = match e {
            ureq::Error::Status(status, resp) => format!(
                "HTTP {status}: {}",
                printable(
                    &resp
                        .into_string()
                        .unwrap_or_default()
                        .chars()
                        .take(300)
                        .collect::<String>()
                )
            ),
            e => printable(&e.to_string()),
        };
        Error::Login {
            reason: format!("could not {what}: {reason}"),
        }
    })
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
        for (j, part) in [key, value].iter().enumerate() {
            if j == 1 {
                body.push(b'=');
            }
            for b in part.bytes() {
                match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                        body.push(b)
                    }
                    b' ' => body.push(b'+'),
                    _ => {
                        const HEX: &[u8; 16] = b"0123456789ABCDEF";
                        body.extend_from_slice(&[
                            b'%',
                            HEX[usize::from(b >> 4)],
                            HEX[usize::from(b & 15)],
                        ]);
                    }
                }
            }
        }
    }
    body
}

/// The JSON answer of an OAuth 2.0 endpoint.
fn json_answer<T: serde::de::DeserializeOwned>(resp: ureq::Response, what: &str) -> Result<T> {
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
pub(crate) fn revoke(
    agent: &ureq::Agent,
    oauth: &OAuthClient,
    token: &str,
    hint: &str,
) -> Result<()> {
    let Some(endpoint) = &oauth.revocation_endpoint else {
        return Ok(());
    };
    post(
        agent,
        endpoint,
        Payload::Form(&[
            ("token", token),
            ("token_type_hint", hint),
            ("client_id", &oauth.client_id),
        ]),
        "revoke the session's token",
    )?;
    Ok(())
}

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
            }),
            password,
            sso: sso.then(Vec::new),
        }
    }

    #[test]
    fn auto_prefers_oauth_then_password_with_a_user_then_sso() {
        assert_eq!(
            flows(true, false, false)
                .choose(Method::Auto, true)
                .unwrap(),
            Method::OAuth
        );
        assert_eq!(
            flows(false, true, true).choose(Method::Auto, true).unwrap(),
            Method::Password
        );
        assert_eq!(
            flows(false, true, true)
                .choose(Method::Auto, false)
                .unwrap(),
            Method::Sso
        );
        assert_eq!(
            flows(false, false, true)
                .choose(Method::Auto, true)
                .unwrap(),
            Method::Sso
        );
        assert!(matches!(
            flows(false, true, false).choose(Method::Auto, false),
            Err(Error::Login { .. })
        ));
    }

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
        let expected: Vec<(String, String)> =
            url::form_urlencoded::parse(&body).into_owned().collect();
        assert_eq!(expected[0], ("code".into(), "a b/c+d".into()));
        let fields = [("token", "0123456789"); 3];
        let size: usize = fields
            .iter()
            .map(|(k, v)| 3 * (k.len() + v.len()) + 2)
            .sum();
        assert!(form_body(&fields).capacity() <= size);
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
        assert!(meta("not a url", "https://auth.example.org")
            .check(&remote)
            .is_err());
    }

    #[test]
    fn a_method_the_server_lacks_is_refused_with_what_it_offers() {
        let e = flows(true, false, false)
            .choose(Method::Password, true)
            .unwrap_err();
        assert!(e.to_string().contains("--login oauth"), "{e}");
        let e = flows(false, true, false)
            .choose(Method::OAuth, true)
            .unwrap_err();
        assert!(e.to_string().contains("does not offer OAuth"), "{e}");
        let e = flows(false, true, false)
            .choose(Method::Sso, true)
            .unwrap_err();
        assert!(e.to_string().contains("--login password"), "{e}");
    }
}
