//! The passphrase that protects an export, and the keys derived from it.

use std::fmt;

use hmac::Hmac;
use sha2::Sha512;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// A key-export passphrase.
///
/// Element encodes the passphrase as UTF-8 with no Unicode normalisation; so do we.
/// The text is wiped from memory when the value is dropped and never shown by `Debug`.
#[derive(Clone)]
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Wraps a passphrase. Only a final line ending (`\n` or `\r\n`) is removed, as
    /// files written by editors carry one; every other character counts.
    pub fn new(mut text: String) -> Self {
        if text.ends_with('\n') {
            text.pop();
            if text.ends_with('\r') {
                text.pop();
            }
        }
        Passphrase(Zeroizing::new(text))
    }

    /// The passphrase's UTF-8 bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// True when the passphrase is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The passphrase as text (for APIs, such as matrix-sdk-crypto's, that take `&str`).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

impl PartialEq for Passphrase {
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        self.as_bytes().ct_eq(other.as_bytes()).into()
    }
}

/// The AES-256 and HMAC-SHA-256 keys derived from a passphrase with
/// PBKDF2-HMAC-SHA-512: the first 32 bytes are the AES key, the last 32 the MAC key.
/// Wiped on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct DerivedKeys {
    pub(crate) aes: [u8; 32],
    pub(crate) mac: [u8; 32],
}

impl DerivedKeys {
    /// Runs PBKDF2-HMAC-SHA-512(passphrase, salt, rounds) → 64 bytes. At Element's
    /// 500,000 rounds this is the slowest step of every job (figures in the README,
    /// "Performance") and cannot be split across cores.
    pub fn derive(passphrase: &Passphrase, salt: &[u8; 16], rounds: u32) -> Self {
        let mut out = Zeroizing::new([0u8; 64]);
        pbkdf2::pbkdf2::<Hmac<Sha512>>(passphrase.as_bytes(), salt, rounds, &mut out[..])
            .expect("HMAC accepts keys of any length");
        let mut keys = DerivedKeys {
            aes: [0; 32],
            mac: [0; 32],
        };
        keys.aes.copy_from_slice(&out[..32]);
        keys.mac.copy_from_slice(&out[32..]);
        keys
    }
}

impl fmt::Debug for DerivedKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DerivedKeys(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_one_final_line_ending_only() {
        assert_eq!(Passphrase::new("a b \n".into()).expose(), "a b ");
        assert_eq!(Passphrase::new("pw\r\n".into()).expose(), "pw");
        assert_eq!(Passphrase::new("pw\n\n".into()).expose(), "pw\n");
        assert_eq!(Passphrase::new(" pw".into()).expose(), " pw");
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let p = Passphrase::new("hunter2".into());
        assert!(!format!("{p:?}").contains("hunter2"));
        let k = DerivedKeys::derive(&p, &[0; 16], 1);
        assert_eq!(format!("{k:?}"), "DerivedKeys(<redacted>)");
    }
}
