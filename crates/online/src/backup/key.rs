//! The recovery key ("Security Key") of a backup: parsed by matrix-sdk-crypto
//! (base58, prefix, parity), wiped on drop, never shown.

use matrix_sdk_crypto::store::types::BackupDecryptionKey;
use zeroize::Zeroizing;

use super::encrypt::SessionData;
use crate::error::{Error, Result};

/// The recovery key ("Security Key") of a backup. Wiped on drop, never shown by `Debug`.
pub struct RecoveryKey {
    pub(crate) key: BackupDecryptionKey,
}

impl std::fmt::Debug for RecoveryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoveryKey(<redacted>)")
    }
}

impl RecoveryKey {
    /// Parses the base58 form Element shows (`EsTc 8Pbw ...`; spaces and line breaks allowed).
    pub fn parse(text: &str) -> Result<Self> {
        use matrix_sdk_crypto::backups::DecodeError;
        let text = Zeroizing::new(text.trim().to_owned());
        // The library's messages quote the key (a bad character, the bytes of a prefix);
        // ours say only what kind of mistake it is.
        BackupDecryptionKey::from_base58(&text)
            .map(|key| RecoveryKey { key })
            .map_err(|e| {
                Error::RecoveryKey(
                    match e {
                        DecodeError::Base58(_) => "it holds a character that is not base58",
                        DecodeError::Prefix(..) => "it does not start the way recovery keys do",
                        DecodeError::Parity(..) => "its check digit does not match (a typo?)",
                        DecodeError::Length(..) | DecodeError::Io(_) => {
                            "it is too short or too long"
                        }
                        _ => "it does not decode",
                    }
                    .into(),
                )
            })
    }

    /// A new random recovery key and its text (for setting up test backups).
    pub fn generate() -> (Self, Zeroizing<String>) {
        let key = BackupDecryptionKey::new();
        let text = Zeroizing::new(key.to_base58());
        (RecoveryKey { key }, text)
    }

    /// The backup public key it belongs to (unpadded base64).
    pub fn public_key(&self) -> String {
        self.key.megolm_v1_public_key().to_base64()
    }

    /// Decrypts a backed-up session's payload. The plaintext only ever lives in buffers
    /// that are wiped (matrix-sdk-crypto's `decrypt_v1` leaves copies).
    pub(crate) fn decrypt(
        &self,
        data: &SessionData,
    ) -> std::result::Result<Zeroizing<String>, String> {
        use vodozemac::pk_encryption::{Message, PkDecryption};
        let message = Message::from_base64(&data.ciphertext, &data.mac, &data.ephemeral)
            .map_err(|e| e.to_string())?;
        let secret = vodozemac::Curve25519SecretKey::from_slice(self.key.as_bytes());
        let plain = Zeroizing::new(
            PkDecryption::from_key(secret)
                .decrypt(&message)
                .map_err(|e| e.to_string())?,
        );
        match std::str::from_utf8(&plain) {
            Ok(text) => {
                let mut out = Zeroizing::new(String::with_capacity(text.len()));
                out.push_str(text);
                Ok(out)
            }
            Err(_) => Err("the payload is not UTF-8".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_key_parses_with_spaces_and_rejects_junk() {
        let (key, text) = RecoveryKey::generate();
        let spaced: String = text
            .chars()
            .collect::<Vec<_>>()
            .chunks(4)
            .map(|c| c.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(
            RecoveryKey::parse(&format!(" {spaced}\n"))
                .unwrap()
                .public_key(),
            key.public_key()
        );
        assert!(matches!(
            RecoveryKey::parse("EsTc not a key"),
            Err(Error::RecoveryKey(_))
        ));
        let mut broken = text.to_string();
        let last = broken.pop().unwrap();
        broken.push(if last == 'a' { 'b' } else { 'a' });
        assert!(
            matches!(RecoveryKey::parse(&broken), Err(Error::RecoveryKey(_))),
            "parity is checked"
        );
        assert!(!format!("{key:?}").contains(&text[..8]));
        // No message quotes any of the key: not a bad character, not its position.
        let mut typo: Vec<char> = text.chars().collect();
        typo[5] = '0'; // not in the base58 alphabet
        let typo: String = typo.into_iter().collect();
        let e = RecoveryKey::parse(&typo).unwrap_err().to_string();
        assert!(!e.contains("'0'") && !e.contains(&text[..4]), "{e}");
        assert!(e.contains("not base58"), "{e}");
    }
}
