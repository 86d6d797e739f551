//! Secret storage ("4S"): where Element keeps an account's secrets — the key backup's own
//! key among them — encrypted under the key it shows the user as the **recovery key** (or
//! derives from a security phrase). Read through account data:
//! `m.secret_storage.default_key` names the key, `m.secret_storage.key.<id>` describes it
//! (with a check value, so a wrong key is told apart without touching any secret), and each
//! secret is account data of its own name, encrypted per key.
//!
//! Every check and the cipher are matrix-sdk-crypto's (`secret_storage`); this module only
//! fetches what they need, and says precisely what is missing.

use matrix_sdk_crypto::secret_storage::{AesHmacSha2EncryptedData, DecodeError, SecretStorageKey};
use ruma::events::secret::request::SecretName;
use ruma::events::secret_storage::key::SecretStorageKeyEventContent;
use ruma::events::EventContentFromType;
use serde_json::Value;
use zeroize::Zeroizing;

use crate::account::account_data;
use crate::client::Client;
use crate::error::{Error, Missing, Result};

/// The most PBKDF2 rounds a security phrase's description may ask for. Element uses
/// 500,000; a description is written by whoever controls the account data (or the server),
/// and a count of four billion would hang the run.
pub const MAX_PHRASE_ROUNDS: u64 = 10_000_000;

/// The account's default secret-storage key, as its account data describes it.
pub struct Description {
    content: SecretStorageKeyEventContent,
}

impl std::fmt::Debug for Description {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Description")
            .field("key_id", &self.content.key_id)
            .field("phrase", &self.has_phrase())
            .finish()
    }
}

impl Description {
    /// Parses the content of `m.secret_storage.key.<key_id>`.
    pub fn parse(key_id: &str, content: &Value, user: &str) -> Result<Self> {
        let bad = |e: serde_json::Error| Error::BadResponse {
            what: format!("read {user}'s secret-storage key {key_id}"),
            reason: e.to_string(),
        };
        let raw = serde_json::value::to_raw_value(content).map_err(bad)?;
        // The key's ID is the type's suffix, not a field: ruma takes it from the type.
        let content = SecretStorageKeyEventContent::from_parts(
            &format!("m.secret_storage.key.{key_id}"),
            &raw,
        )
        .map_err(bad)?;
        Ok(Description { content })
    }

    /// The key's ID.
    pub fn key_id(&self) -> &str {
        &self.content.key_id
    }

    /// Whether the key was made from a security phrase (it can also be given as its
    /// recovery key).
    pub fn has_phrase(&self) -> bool {
        self.content.passphrase.is_some()
    }

    /// The key, from the recovery key's text; `None` when the text is not this key (the
    /// description's check value says so).
    pub fn open_with_key(&self, text: &str) -> Result<Option<SecretStorageKey>> {
        let mut content = self.content.clone();
        // Only the base58 form: without this the library would first run the phrase's
        // PBKDF2 on the key's text.
        content.passphrase = None;
        checked(SecretStorageKey::from_account_data(text, content))
    }

    /// The key, from a security phrase; `None` when the phrase is not this key's.
    pub fn open_with_phrase(&self, phrase: &str, user: &str) -> Result<Option<SecretStorageKey>> {
        let Some(info) = &self.content.passphrase else {
            return Err(Error::NoPhrase { user: user.into() });
        };
        let rounds = u64::from(info.iterations);
        if rounds > MAX_PHRASE_ROUNDS {
            return Err(Error::BadResponse {
                what: format!("read {user}'s secret-storage key {}", self.key_id()),
                reason: format!(
                    "its security phrase asks for {rounds} PBKDF2 rounds, more than the \
                     {MAX_PHRASE_ROUNDS} any client uses"
                ),
            });
        }
        checked(SecretStorageKey::from_account_data(
            phrase,
            self.content.clone(),
        ))
    }
}

/// A wrong key (the check value's MAC) is `None`; anything else about the description is
/// an error of the server's answer.
fn checked(
    result: std::result::Result<SecretStorageKey, DecodeError>,
) -> Result<Option<SecretStorageKey>> {
    match result {
        Ok(key) => Ok(Some(key)),
        Err(DecodeError::Mac(_)) => Ok(None),
        Err(e) => Err(Error::BadResponse {
            what: "check the key against its secret-storage description".into(),
            reason: e.to_string(),
        }),
    }
}

/// The description of `user`'s default secret-storage key; `None` when the account has no
/// secret storage.
pub fn default_key(client: &Client, user: &str) -> Result<Option<Description>> {
    let Some(default) = account_data(client, user, "m.secret_storage.default_key")? else {
        return Ok(None);
    };
    let Some(key_id) = default.get("key").and_then(Value::as_str) else {
        // Element writes `{}` here when secret storage is switched off.
        return Ok(None);
    };
    let kind = format!("m.secret_storage.key.{key_id}");
    let content = account_data(client, user, &kind)?.ok_or_else(|| Error::RecoveryNotSetUp {
        user: user.into(),
        missing: Missing::KeyDescription,
    })?;
    Description::parse(key_id, &content, user).map(Some)
}

/// The secret `name` of `user`, decrypted with `key`; `None` when the account holds no such
/// secret under this key.
pub fn secret(
    client: &Client,
    user: &str,
    key: &SecretStorageKey,
    name: &str,
) -> Result<Option<Zeroizing<Vec<u8>>>> {
    let Some(content) = account_data(client, user, name)? else {
        return Ok(None);
    };
    let Some(entry) = content.get("encrypted").and_then(|e| e.get(key.key_id())) else {
        return Ok(None);
    };
    let damaged = |reason: String| Error::SecretDamaged {
        user: user.into(),
        name: name.into(),
        reason,
    };
    let data: AesHmacSha2EncryptedData =
        serde_json::from_value(entry.clone()).map_err(|e| damaged(e.to_string()))?;
    let plain = key
        .decrypt(&data, &SecretName::from(name))
        .map_err(|_| damaged("its MAC does not match".into()))?;
    Ok(Some(Zeroizing::new(plain)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn described(key: &SecretStorageKey) -> Description {
        let content = serde_json::to_value(key.event_content()).unwrap();
        Description::parse(key.key_id(), &content, "@a:example.org").unwrap()
    }

    #[test]
    fn a_key_opens_its_description_and_no_other() {
        let key = SecretStorageKey::new();
        let text = Zeroizing::new(key.to_base58());
        let desc = described(&key);
        assert!(!desc.has_phrase());
        let opened = desc.open_with_key(&text).unwrap().expect("its own key");
        assert_eq!(opened.key_id(), key.key_id());
        let other = Zeroizing::new(SecretStorageKey::new().to_base58());
        assert!(desc.open_with_key(&other).unwrap().is_none());
        assert!(matches!(
            desc.open_with_phrase("any words", "@a:example.org"),
            Err(Error::NoPhrase { .. })
        ));
    }

    #[test]
    fn a_phrase_opens_its_description_and_an_absurd_round_count_is_refused() {
        let key = SecretStorageKey::new_from_passphrase("the words of alice");
        let desc = described(&key);
        assert!(desc.has_phrase());
        assert!(desc
            .open_with_phrase("the words of alice", "@a:example.org")
            .unwrap()
            .is_some());
        assert!(desc
            .open_with_phrase("the words of bob", "@a:example.org")
            .unwrap()
            .is_none());
        // Its recovery key opens it as well.
        let text = Zeroizing::new(key.to_base58());
        assert!(desc.open_with_key(&text).unwrap().is_some());

        let mut content = serde_json::to_value(key.event_content()).unwrap();
        content["passphrase"]["iterations"] = serde_json::json!(4_000_000_000u64);
        let greedy = Description::parse(key.key_id(), &content, "@a:example.org").unwrap();
        let e = greedy
            .open_with_phrase("the words of alice", "@a:example.org")
            .unwrap_err();
        assert!(e.to_string().contains("4000000000 PBKDF2 rounds"), "{e}");
    }

    #[test]
    fn description_never_shows_key_material_in_debug() {
        let key = SecretStorageKey::new();
        let desc = described(&key);
        let shown = format!("{desc:?}");
        assert!(
            shown.contains(key.key_id()) && !shown.contains("mac"),
            "{shown}"
        );
    }
}
