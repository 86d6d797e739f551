//! Opening an account's backup with what the user has: the **recovery key** Element shows
//! (Settings → Encryption) or the **security phrase** recovery was set up with.
//!
//! Since 2020 that key is the key of secret storage, not of the backup: Element makes the
//! backup its own random key and keeps it in secret storage as the secret
//! `m.megolm_backup.v1` ([`crate::secret_storage`]). The older layout, where the recovery key
//! (or a phrase, through the backup's own `private_key_salt`) IS the backup's key, still
//! exists. The format alone cannot tell the two apart, so [`open`] tries secret storage
//! first (its check value answers yes or no without touching a secret), then the older
//! layout. Either way the key found must give the backup's `auth_data.public_key`: that is
//! the proof the backup is the user's, and nothing is read or written without it.

use matrix_sdk_crypto::store::types::BackupDecryptionKey;
use serde_json::Value;
use sha2::Sha512;
use zeroize::Zeroizing;

use super::key::BackupKey;
use super::version::{current, BackupInfo};
use super::ALGORITHM;
use crate::account::account_data;
use crate::client::Client;
use crate::error::{Error, Missing, Result};
use crate::secret_storage::{self, MAX_PHRASE_ROUNDS};

/// The secret that holds the backup's key in secret storage.
pub const BACKUP_SECRET: &str = "m.megolm_backup.v1";

/// What the user gives to open a backup. Wiped on drop, never shown by `Debug`.
pub enum Recovery {
    /// The recovery key ("Security Key"), base58 in groups of four.
    Key(Zeroizing<String>),
    /// The security phrase recovery was set up with.
    Phrase(Zeroizing<String>),
}

impl std::fmt::Debug for Recovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Recovery::Key(_) => "Recovery::Key(<redacted>)",
            Recovery::Phrase(_) => "Recovery::Phrase(<redacted>)",
        })
    }
}

impl Recovery {
    /// A recovery key, checked for its form (base58, prefix, check digit). A sentence is
    /// refused as [`Error::PhraseGivenAsKey`].
    pub fn key(text: &str) -> Result<Self> {
        let text = Zeroizing::new(text.trim().to_owned());
        if !looks_like_a_key(&text) {
            return Err(Error::PhraseGivenAsKey);
        }
        BackupKey::parse(&text)?;
        Ok(Recovery::Key(text))
    }

    /// A security phrase, as typed (only a final line ending is dropped). A recovery key is
    /// refused as [`Error::KeyGivenAsPhrase`].
    pub fn phrase(text: &str) -> Result<Self> {
        let text = text.strip_suffix('\n').unwrap_or(text);
        let text = Zeroizing::new(text.strip_suffix('\r').unwrap_or(text).to_owned());
        if text.trim().is_empty() {
            return Err(Error::EmptyPhrase);
        }
        if BackupKey::parse(&text).is_ok() {
            return Err(Error::KeyGivenAsPhrase);
        }
        Ok(Recovery::Phrase(text))
    }

    /// "recovery key" or "security phrase", for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Recovery::Key(_) => "recovery key",
            Recovery::Phrase(_) => "security phrase",
        }
    }
}

/// Letters and digits only, about as long as a recovery key (48 without its spaces): a
/// mistyped key gets the key's own errors; anything else is taken for a phrase.
fn looks_like_a_key(text: &str) -> bool {
    let mut n = 0;
    for c in text.chars().filter(|c| !c.is_whitespace()) {
        if !c.is_ascii_alphanumeric() {
            return false;
        }
        n += 1;
    }
    // Grouped in fours as shown, or in one piece as copied from some apps.
    let one_piece = text.split_whitespace().count() == 1;
    (40..=60).contains(&n) && (one_piece || text.split_whitespace().all(|w| w.len() <= 8))
}

/// How the backup's key was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// Secret storage opened, its `m.megolm_backup.v1` secret read (Element since 2020).
    SecretStorage,
    /// The recovery key is the backup's own key (the older layout).
    BackupKey,
    /// The phrase derives the backup's own key (the older layout, `private_key_salt`).
    BackupPhrase,
}

/// An account's current backup, opened.
#[derive(Debug)]
pub struct Opened {
    /// The backup version.
    pub info: BackupInfo,
    /// Its key, proven against `info`'s public key.
    pub key: BackupKey,
    /// How it was found.
    pub via: Via,
}

/// Opens `user`'s current backup with `recovery`: secret storage first, then the older
/// layout; the key must give the backup's public key. Each way it can fail is its own
/// error, naming the account and what to do.
pub fn open(client: &Client, user: &str, recovery: &Recovery) -> Result<Opened> {
    let info = current(client)?.ok_or_else(|| Error::NoBackup { user: user.into() })?;
    if info.algorithm != ALGORITHM {
        return Err(Error::UnsupportedBackup(info.algorithm.clone()));
    }
    let storage = secret_storage::default_key(client, user)?;
    if let Some(description) = &storage {
        let opened = match recovery {
            Recovery::Key(text) => description.open_with_key(text)?,
            Recovery::Phrase(text) if description.has_phrase() => {
                description.open_with_phrase(text, user)?
            }
            Recovery::Phrase(_) => None,
        };
        if let Some(storage_key) = opened {
            let key = stored_backup_key(client, user, &storage_key)?;
            return proven(info, key, Via::SecretStorage, user);
        }
    }
    if let Some((key, via)) = older_layout(recovery, &info)? {
        if info.check_key(&key).is_ok() {
            return Ok(Opened { info, key, via });
        }
    }
    Err(match (&storage, recovery) {
        (None, _) => Error::RecoveryNotSetUp {
            user: user.into(),
            missing: Missing::SecretStorage,
        },
        (Some(d), Recovery::Phrase(_))
            if !d.has_phrase() && info.auth_data.get("private_key_salt").is_none() =>
        {
            Error::NoPhrase { user: user.into() }
        }
        (Some(_), _) => Error::RecoveryMismatch {
            user: user.into(),
            version: info.version.clone(),
            given: recovery.kind(),
        },
    })
}

/// The backup key kept in secret storage under `storage_key`.
fn stored_backup_key(
    client: &Client,
    user: &str,
    storage_key: &matrix_sdk_crypto::secret_storage::SecretStorageKey,
) -> Result<BackupKey> {
    let secret =
        secret_storage::secret(client, user, storage_key, BACKUP_SECRET)?.ok_or_else(|| {
            Error::RecoveryNotSetUp {
                user: user.into(),
                missing: Missing::BackupSecret,
            }
        })?;
    let damaged = |reason: &str| Error::SecretDamaged {
        user: user.into(),
        name: BACKUP_SECRET.into(),
        reason: reason.into(),
    };
    let text = std::str::from_utf8(&secret).map_err(|_| damaged("it is not text"))?;
    // Element writes unpadded base64; some clients pad.
    let key = BackupDecryptionKey::from_base64(text.trim().trim_end_matches('='))
        .map_err(|_| damaged("it is not the base64 of a 32-byte key"))?;
    Ok(BackupKey::from_decryption_key(key))
}

/// `key` as the backup's key, if it gives the backup's public key.
fn proven(info: BackupInfo, key: BackupKey, via: Via, user: &str) -> Result<Opened> {
    match info.check_key(&key) {
        Ok(()) => Ok(Opened { info, key, via }),
        Err(Error::BackupKeyMismatch { version }) => Err(Error::StaleBackupSecret {
            user: user.into(),
            version,
        }),
        Err(e) => Err(e),
    }
}

/// The backup key the older layout makes of `recovery`: the recovery key itself, or the
/// phrase through the backup's `private_key_salt` and `private_key_iterations`.
fn older_layout(recovery: &Recovery, info: &BackupInfo) -> Result<Option<(BackupKey, Via)>> {
    match recovery {
        Recovery::Key(text) => Ok(Some((BackupKey::parse(text)?, Via::BackupKey))),
        Recovery::Phrase(phrase) => {
            let auth = &info.auth_data;
            let (Some(salt), Some(rounds)) = (
                auth.get("private_key_salt").and_then(Value::as_str),
                auth.get("private_key_iterations").and_then(Value::as_u64),
            ) else {
                return Ok(None);
            };
            if rounds == 0 || rounds > MAX_PHRASE_ROUNDS {
                return Err(Error::BadResponse {
                    what: "read the key backup's phrase settings".into(),
                    reason: format!("it asks for {rounds} PBKDF2 rounds"),
                });
            }
            let mut bytes = Zeroizing::new([0u8; 32]);
            pbkdf2::pbkdf2_hmac::<Sha512>(
                phrase.as_bytes(),
                salt.as_bytes(),
                rounds as u32,
                bytes.as_mut(),
            );
            let key = BackupDecryptionKey::from_bytes(&bytes);
            Ok(Some((
                BackupKey::from_decryption_key(key),
                Via::BackupPhrase,
            )))
        }
    }
}

/// Whether `user` switched key storage off (`m.key_backup` `{"enabled": false}`, spec
/// v1.19): its clients would neither fill nor restore the backup.
pub fn switched_off(client: &Client, user: &str) -> Result<bool> {
    Ok(account_data(client, user, "m.key_backup")?
        .and_then(|v| v.get("enabled").and_then(Value::as_bool))
        == Some(false))
}

/// [`open`], for a backup that keys are put into: refused when the account switched key
/// storage off.
pub fn open_for_upload(client: &Client, user: &str, recovery: &Recovery) -> Result<Opened> {
    let opened = open(client, user, recovery)?;
    if switched_off(client, user)? {
        return Err(Error::BackupDisabled {
            user: user.into(),
            version: opened.info.version,
        });
    }
    Ok(opened)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_and_a_phrase_are_told_apart() {
        let (_, text) = BackupKey::generate();
        assert!(matches!(Recovery::key(&text), Ok(Recovery::Key(_))));
        let grouped = super::super::key::tests::in_groups_of_four(&text);
        assert!(matches!(
            Recovery::key(&format!("{grouped}\n")),
            Ok(Recovery::Key(_))
        ));
        assert!(matches!(
            Recovery::key("correct horse battery staple"),
            Err(Error::PhraseGivenAsKey)
        ));
        assert!(matches!(
            Recovery::phrase(&grouped),
            Err(Error::KeyGivenAsPhrase)
        ));
        assert!(matches!(Recovery::phrase("\n"), Err(Error::EmptyPhrase)));
        // A mistyped key is a key with a typo, not a phrase.
        let mut typo = text.to_string();
        typo.replace_range(3..4, "0");
        assert!(matches!(
            Recovery::key(&typo),
            Err(Error::NotARecoveryKey(_))
        ));
        // A phrase keeps its inner spaces; only the file's line ending goes.
        let Recovery::Phrase(p) = Recovery::phrase("  two  words \n").unwrap() else {
            panic!("a phrase")
        };
        assert_eq!(p.as_str(), "  two  words ");
        assert_eq!(
            format!("{:?}", Recovery::phrase("secret words").unwrap()),
            "Recovery::Phrase(<redacted>)"
        );
    }
}
