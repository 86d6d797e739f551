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
        let text = Zeroizing::new(text.trim().to_owned());
        BackupDecryptionKey::from_base58(&text)
            .map(|key| RecoveryKey { key })
            .map_err(|e| Error::RecoveryKey(e.to_string()))
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

    pub(crate) fn decrypt(
        &self,
        data: &SessionData,
    ) -> std::result::Result<Zeroizing<String>, String> {
        self.key
            .decrypt_v1(&data.ephemeral, &data.mac, &data.ciphertext)
            .map(Zeroizing::new)
            .map_err(|e| e.to_string())
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
    }
}
