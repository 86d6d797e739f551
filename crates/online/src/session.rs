//! A session with a homeserver: the client, and whether this tool opened it (a login makes
//! a new device, which is closed again at the end: logged out, or its OAuth 2.0 tokens
//! revoked; a token the user gave is never closed).

use std::time::Duration;

use zeroize::Zeroizing;

use crate::client::{AccessToken, Client, Homeserver, RateLimits, WaitNotice};
use crate::error::{Error, Result};
use crate::login::{self, AuthMetadata, OAuthClient};

/// How to get in. The secrets are wiped on drop and never shown by `Debug`.
pub enum Credentials {
    /// An access token the user gave (from a file or the environment).
    Token(AccessToken),
    /// A password login (`m.login.password`) as a new device named "matrix-transplant".
    Password {
        /// The user ID.
        user_id: String,
        /// The password.
        password: Zeroizing<String>,
    },
    /// The legacy single sign-on redirect, in a browser, through `idp` when given.
    Sso {
        /// The identity provider's ID.
        idp: Option<String>,
    },
    /// OAuth 2.0 (next-generation auth), in a browser, with the server's metadata.
    OAuth(Box<AuthMetadata>),
    /// OAuth 2.0's device authorization grant: a code entered on another device.
    Device(Box<AuthMetadata>),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Token(_) => f.write_str("Credentials::Token(<redacted>)"),
            Credentials::Password { user_id, .. } => f
                .debug_struct("Credentials::Password")
                .field("user_id", user_id)
                .finish_non_exhaustive(),
            Credentials::Sso { idp } => f
                .debug_struct("Credentials::Sso")
                .field("idp", idp)
                .finish(),
            Credentials::OAuth(m) => f
                .debug_tuple("Credentials::OAuth")
                .field(&m.issuer)
                .finish(),
            Credentials::Device(m) => f
                .debug_tuple("Credentials::Device")
                .field(&m.issuer)
                .finish(),
        }
    }
}

/// How a session this tool opened is ended.
#[derive(Debug, Clone)]
enum Ending {
    /// `POST /logout` (password and SSO logins).
    Logout,
    /// Both tokens revoked at the OAuth 2.0 server (which deletes the device).
    Revoke(OAuthClient),
}

/// Ends a session this tool opened, from anywhere (a signal handler).
pub struct Closer {
    client: Client,
    ending: Ending,
}

impl Clone for Closer {
    fn clone(&self) -> Self {
        Closer {
            client: self.client.fork(),
            ending: self.ending.clone(),
        }
    }
}

impl std::fmt::Debug for Closer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Closer(<redacted>)")
    }
}

impl Closer {
    /// Ends the session.
    pub fn logout(&self) -> Result<()> {
        end(&self.client, &self.ending)
    }
}

fn end(client: &Client, ending: &Ending) -> Result<()> {
    match ending {
        Ending::Logout => client.logout(),
        Ending::Revoke(oauth) => {
            let refresh = client.auth().refresh_token();
            let access = client.token();
            login::revoke(client.agent(), oauth, access.expose(), "access_token")?;
            if let Some(refresh) = refresh {
                // The session is gone with its access token at most servers; this makes sure.
                let _ = login::revoke(client.agent(), oauth, &refresh, "refresh_token");
            }
            Ok(())
        }
    }
}

/// Shows the user the address of a browser login.
pub type UrlNotice = Box<dyn Fn(&crate::login::LoginAddress) + Send + Sync>;

/// Shows the user the code of a device-grant login, and where to enter it.
pub type CodeNotice = Box<dyn Fn(&crate::login::device::DeviceCode) + Send + Sync>;

/// How to run a session.
#[derive(Default)]
pub struct SessionOptions {
    /// The account the credentials must belong to (checked with `whoami`).
    pub expected_user: Option<String>,
    /// Told of every wait before a retry.
    pub on_wait: Option<WaitNotice>,
    /// How long and how often the server may make requests wait.
    pub limits: RateLimits,
    /// Told, the moment a login succeeds, how to end that session (so a signal handler
    /// can, even before `open` returns).
    pub on_login: Option<Box<dyn FnOnce(Closer) + Send>>,
    /// Shows the URL of a browser login to the user (and opens a browser when it can).
    pub show_url: Option<UrlNotice>,
    /// Shows the code of a device-grant login and where to enter it.
    pub show_code: Option<CodeNotice>,
    /// How long a browser login may take (default: 10 minutes).
    pub login_timeout: Option<Duration>,
}

/// An open session. Call [`Session::close`] at the end: it ends a session this tool
/// opened. Dropped without `close` (an error on the way), it still ends it, best effort.
#[derive(Debug)]
pub struct Session {
    client: Client,
    ending: Option<Ending>,
    user_id: String,
}

impl Session {
    /// Opens a session with `homeserver`: checks that it is a Matrix homeserver before any
    /// credential is sent, logs in or takes the token, and, when `expected_user` is given,
    /// refuses ([`Error::WrongAccount`]) unless the token belongs to that account. `on_wait`
    /// is told of every wait before a retry.
    pub fn open(
        homeserver: Homeserver,
        credentials: Credentials,
        options: SessionOptions,
    ) -> Result<Self> {
        let SessionOptions {
            expected_user,
            on_wait,
            limits,
            on_login,
            show_url,
            show_code,
            login_timeout,
        } = options;
        let timeout = login_timeout.unwrap_or(crate::loopback::DEFAULT_TIMEOUT);
        let show = |address: &crate::login::LoginAddress| {
            if let Some(show) = &show_url {
                show(address)
            }
        };
        let mut client = match &credentials {
            Credentials::Token(token) => Client::new(homeserver, token.clone()),
            _ => Client::anonymous(homeserver),
        };
        if let Some(notice) = on_wait {
            client.on_rate_limit(notice);
        }
        client.set_rate_limits(limits);
        client.check_versions()?;
        let ending = match credentials {
            Credentials::Token(_) => None,
            Credentials::Password { user_id, password } => {
                client.login_with_password(&user_id, &password)?;
                Some(Ending::Logout)
            }
            Credentials::Sso { idp } => {
                let pending = login::sso::start(&client, idp.as_deref())?;
                show(pending.address());
                let tokens = pending.finish(&client, timeout)?;
                client.set_tokens(tokens);
                Some(Ending::Logout)
            }
            Credentials::OAuth(meta) => {
                let pending = login::oauth::start(&client, &meta)?;
                show(pending.address());
                let (tokens, registered) = pending.finish(timeout)?;
                client.set_tokens(tokens);
                Some(Ending::Revoke(registered))
            }
            Credentials::Device(meta) => {
                let pending = login::device::start(&client, &meta)?;
                if let Some(show) = &show_code {
                    show(pending.code());
                }
                let (tokens, registered) = pending.finish(timeout)?;
                client.set_tokens(tokens);
                Some(Ending::Revoke(registered))
            }
        };
        if let (Some(ending), Some(tell)) = (&ending, on_login) {
            tell(Closer {
                client: client.fork(),
                ending: ending.clone(),
            });
        }
        // From here on a session this tool opened is ended when dropped.
        let mut session = Session {
            client,
            ending,
            user_id: String::new(),
        };
        let actual = session.client.whoami()?.user_id;
        if let Some(expected) = expected_user {
            if actual != expected {
                return Err(Error::WrongAccount { expected, actual });
            }
        }
        session.user_id = actual;
        Ok(session)
    }

    /// The account the session belongs to (the server's `whoami`).
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// What it takes to end this session from another thread (a signal handler), when
    /// this tool opened it; `None` for a session the user gave a token for.
    pub fn closer(&self) -> Option<Closer> {
        self.ending.as_ref().map(|ending| Closer {
            client: self.client.fork(),
            ending: ending.clone(),
        })
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// True when this tool logged in (and so will end the session).
    pub fn opened_here(&self) -> bool {
        self.ending.is_some()
    }

    /// Ends the session: logs out (or revokes) what this tool's login made; a session the
    /// user gave a token for is left alone.
    pub fn close(mut self) -> Result<()> {
        match self.ending.take() {
            Some(ending) => end(&self.client, &ending),
            None => Ok(()),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(ending) = self.ending.take() {
            let _ = end(&self.client, &ending);
        }
    }
}
