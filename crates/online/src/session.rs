//! A session with a homeserver: the client, and whether this tool opened it (a password
//! login makes a new device, which must be logged out again at the end; a token the user
//! gave is never logged out).

use zeroize::Zeroizing;

use crate::client::{AccessToken, Client, Homeserver, RateLimits, WaitNotice};
use crate::error::{Error, Result};

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
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Token(_) => f.write_str("Credentials::Token(<redacted>)"),
            Credentials::Password { user_id, .. } => f
                .debug_struct("Credentials::Password")
                .field("user_id", user_id)
                .finish_non_exhaustive(),
        }
    }
}

/// Logs out a session this tool opened, from anywhere (a signal handler).
#[derive(Clone)]
pub struct Closer {
    homeserver: Homeserver,
    token: AccessToken,
}

impl std::fmt::Debug for Closer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Closer(<redacted>)")
    }
}

impl Closer {
    /// Ends the session.
    pub fn logout(&self) -> Result<()> {
        Client::new(self.homeserver.clone(), self.token.clone()).logout()
    }
}

/// How to run a session.
#[derive(Default)]
pub struct SessionOptions {
    /// The account the credentials must belong to (checked with `whoami`).
    pub expected_user: Option<String>,
    /// Told of every wait before a retry.
    pub on_wait: Option<WaitNotice>,
    /// How long and how often the server may make requests wait.
    pub limits: RateLimits,
    /// Told, the moment a password login succeeds, how to log that session out (so a
    /// signal handler can, even before `open` returns).
    pub on_login: Option<Box<dyn FnOnce(Closer) + Send>>,
}

/// An open session. Call [`Session::close`] at the end: it logs out a session this tool
/// opened. Dropped without `close` (an error on the way), it still logs out, best effort.
#[derive(Debug)]
pub struct Session {
    client: Client,
    opened_here: bool,
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
        } = options;
        let (mut client, password) = match credentials {
            Credentials::Token(token) => (Client::new(homeserver, token), None),
            Credentials::Password { user_id, password } => {
                (Client::anonymous(homeserver), Some((user_id, password)))
            }
        };
        if let Some(notice) = on_wait {
            client.on_rate_limit(notice);
        }
        client.set_rate_limits(limits);
        client.check_versions()?;
        let opened_here = password.is_some();
        if let Some((user_id, password)) = password {
            client.login_with_password(&user_id, &password)?;
            if let Some(tell) = on_login {
                tell(Closer {
                    homeserver: client.homeserver().clone(),
                    token: client.token().clone(),
                });
            }
        }
        // From here on a session this tool opened is logged out when dropped.
        let mut session = Session {
            client,
            opened_here,
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

    /// What it takes to log this session out from another thread (a signal handler), when
    /// this tool opened it; `None` for a session the user gave a token for.
    pub fn closer(&self) -> Option<Closer> {
        self.opened_here.then(|| Closer {
            homeserver: self.client.homeserver().clone(),
            token: self.client.token().clone(),
        })
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// True when this tool logged in (and so will log out).
    pub fn opened_here(&self) -> bool {
        self.opened_here
    }

    /// Ends the session: logs out the device this tool's login made; a session the user
    /// gave a token for is left alone.
    pub fn close(mut self) -> Result<()> {
        let opened_here = std::mem::take(&mut self.opened_here);
        if opened_here {
            self.client.logout()?;
        }
        Ok(())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.opened_here {
            let _ = self.client.logout();
        }
    }
}
