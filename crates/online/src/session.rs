//! A session with a homeserver: the client, and whether this tool opened it (a password
//! login makes a new device, which must be logged out again at the end; a token the user
//! gave is never logged out).

use zeroize::Zeroizing;

use crate::client::{AccessToken, Client, Homeserver, WaitNotice};
use crate::error::Result;

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

/// An open session. Call [`Session::close`] at the end: it logs out a session this tool
/// opened. Dropped without `close` (an error on the way), it still logs out, best effort.
#[derive(Debug)]
pub struct Session {
    client: Client,
    opened_here: bool,
}

impl Session {
    /// Opens a session with `homeserver`; `on_wait` is told of every rate-limit wait.
    pub fn open(
        homeserver: Homeserver,
        credentials: Credentials,
        on_wait: Option<WaitNotice>,
    ) -> Result<Self> {
        let (mut client, password) = match credentials {
            Credentials::Token(token) => (Client::new(homeserver, token), None),
            Credentials::Password { user_id, password } => {
                (Client::anonymous(homeserver), Some((user_id, password)))
            }
        };
        if let Some(notice) = on_wait {
            client.on_rate_limit(notice);
        }
        let opened_here = password.is_some();
        if let Some((user_id, password)) = password {
            client.login_with_password(&user_id, &password)?;
        }
        Ok(Session {
            client,
            opened_here,
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
