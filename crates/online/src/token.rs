//! An access token: never shown by `Debug`, wiped on drop.

use std::fmt;

use zeroize::Zeroizing;

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
