//! The backup's own private key: what decrypts the sessions in it and proves, through its
//! public key, that the backup is the user's. Users rarely hold it: the recovery key Element
//! shows opens secret storage, which holds this key ([`super::recovery`]); only in the older
//! layout is the recovery key this key itself. Parsed by matrix-sdk-crypto (base58, prefix,
//! parity), wiped on drop, never shown.

use matrix_sdk_crypto::store::types::BackupDecryptionKey;
use vodozemac::pk_encryption::PkDecryption;
use zeroize::Zeroizing;

use super::encrypt::SessionData;
use crate::error::{Error, Result};

/// A backup's private key. Wiped on drop, never shown by `Debug`.
pub struct BackupKey {
    pub(crate) key: BackupDecryptionKey,
    /// The same key, ready to decrypt: made once, because making it derives the public key
    /// (a scalar multiplication, a quarter of what decrypting a session costs).
    decryption: PkDecryption,
}

impl std::fmt::Debug for BackupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BackupKey(<redacted>)")
    }
}

impl BackupKey {
    /// The key matrix-sdk-crypto decoded (from secret storage, or derived from a phrase).
    pub(crate) fn from_decryption_key(key: BackupDecryptionKey) -> Self {
        let secret = vodozemac::Curve25519SecretKey::from_slice(key.as_bytes());
        BackupKey {
            decryption: PkDecryption::from_key(secret),
            key,
        }
    }

    /// Parses the base58 form (`EsTc 8Pbw ...`; spaces and line breaks allowed): the form
    /// of every recovery key, whichever layout it belongs to.
    pub fn parse(text: &str) -> Result<Self> {
        use matrix_sdk_crypto::backups::DecodeError;
        let text = Zeroizing::new(text.trim().to_owned());
        // The library's messages quote the key (a bad character, the bytes of a prefix);
        // ours say only what kind of mistake it is.
        BackupDecryptionKey::from_base58(&text)
            .map(BackupKey::from_decryption_key)
            .map_err(|e| {
                Error::NotARecoveryKey(
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

    /// A new random backup key and its base58 text (for backups in the older layout, as
    /// tests set them up).
    pub fn generate() -> (Self, Zeroizing<String>) {
        let key = BackupDecryptionKey::new();
        let text = Zeroizing::new(key.to_base58());
        (BackupKey::from_decryption_key(key), text)
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
        use vodozemac::pk_encryption::Message;
        let message = Message::from_base64(&data.ciphertext, &data.mac, &data.ephemeral)
            .map_err(|e| e.to_string())?;
        let plain = Zeroizing::new(
            self.decryption
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
pub(crate) mod tests {
    use super::*;

    /// A key's text in groups of four, as Element shows it.
    pub(crate) fn in_groups_of_four(text: &str) -> String {
        text.chars()
            .collect::<Vec<_>>()
            .chunks(4)
            .map(|c| c.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn recovery_key_parses_with_spaces_and_rejects_junk() {
        let (key, text) = BackupKey::generate();
        let spaced = in_groups_of_four(&text);
        assert_eq!(
            BackupKey::parse(&format!(" {spaced}\n"))
                .unwrap()
                .public_key(),
            key.public_key()
        );
        assert!(matches!(
            BackupKey::parse("EsTc not a key"),
            Err(Error::NotARecoveryKey(_))
        ));
        let mut broken = text.to_string();
        let last = broken.pop().unwrap();
        broken.push(if last == 'a' { 'b' } else { 'a' });
        assert!(
            matches!(BackupKey::parse(&broken), Err(Error::NotARecoveryKey(_))),
            "parity is checked"
        );
        assert!(!format!("{key:?}").contains(&text[..8]));
        // No message quotes any of the key: not a bad character, not its position.
        let mut typo: Vec<char> = text.chars().collect();
        typo[5] = '0'; // not in the base58 alphabet
        let typo: String = typo.into_iter().collect();
        let e = BackupKey::parse(&typo).unwrap_err().to_string();
        assert!(!e.contains("'0'") && !e.contains(&text[..4]), "{e}");
        assert!(e.contains("not base58"), "{e}");
    }
}
