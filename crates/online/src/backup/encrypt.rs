//! One session encrypted to the backup's public key, and a batch of them as the body of
//! `PUT /room_keys/keys`.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use key_export::SessionRef;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use vodozemac::pk_encryption::PkEncryption;
use vodozemac::Curve25519PublicKey;
use zeroize::Zeroizing;

use super::key::BackupKey;
use super::version::BackupInfo;
use crate::error::{Error, Result};

/// Encrypted session data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionData {
    /// Ephemeral Curve25519 key, unpadded base64.
    pub ephemeral: String,
    /// AES-256-CBC ciphertext, unpadded base64.
    pub ciphertext: String,
    /// libolm's truncated MAC, unpadded base64.
    pub mac: String,
}

/// One backed-up session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyBackupData {
    /// First message index the key decrypts.
    pub first_message_index: u32,
    /// Times the key was forwarded between devices.
    pub forwarded_count: u32,
    /// Whether the sending device was verified (we cannot know: false).
    pub is_verified: bool,
    /// The encrypted session.
    pub session_data: SessionData,
}

/// Encrypts sessions to a backup whose key the user proved.
pub struct Encryptor {
    pk: PkEncryption,
}

impl Encryptor {
    /// Checks `key` against `info` and prepares encryption to the backup's public key.
    pub fn new(info: &BackupInfo, key: &BackupKey) -> Result<Self> {
        info.check_key(key)?;
        let public = Curve25519PublicKey::from_base64(info.public_key().unwrap_or_default())
            .map_err(|e| {
                Error::Encryption(format!("the backup public key does not decode: {e}"))
            })?;
        Ok(Encryptor {
            pk: PkEncryption::from_key(public),
        })
    }

    /// Encrypts one valid session.
    pub fn encrypt(&self, session: &SessionRef<'_>) -> Result<KeyBackupData> {
        let plain = backup_payload(session)?;
        Ok(KeyBackupData {
            first_message_index: session.first_known_index,
            forwarded_count: forwarded_count(session),
            is_verified: false,
            session_data: self.encrypt_payload(&plain)?,
        })
    }

    /// Encrypts any payload to the backup key (what anyone with the public key can do).
    pub fn encrypt_payload(&self, plain: &[u8]) -> Result<SessionData> {
        let msg = self
            .pk
            .encrypt(plain)
            .map_err(|e| Error::Encryption(e.to_string()))?;
        Ok(SessionData {
            ephemeral: msg.ephemeral_key.to_base64(),
            ciphertext: STANDARD_NO_PAD.encode(&msg.ciphertext),
            mac: STANDARD_NO_PAD.encode(&msg.mac),
        })
    }
}

/// The forwarding chain's length (the backup's `forwarded_count`), read without parsing
/// anything else of the entry (its key included).
pub fn forwarded_count(session: &SessionRef<'_>) -> u32 {
    #[derive(Deserialize)]
    struct Chain {
        #[serde(default)]
        forwarding_curve25519_key_chain: Option<Vec<serde::de::IgnoredAny>>,
    }
    serde_json::from_str::<Chain>(session.raw.get())
        .ok()
        .and_then(|c| c.forwarding_curve25519_key_chain)
        .map_or(0, |c| c.len() as u32)
}

/// The plaintext of a backed-up session: the exported entry minus `room_id` and
/// `session_id`, with a forwarding chain.
pub fn backup_payload(session: &SessionRef<'_>) -> Result<Zeroizing<Vec<u8>>> {
    let text = session.output_json();
    let mut obj: Map<String, Value> = serde_json::from_str(&text)
        .map_err(|e| Error::Encryption(format!("entry is not an object: {e}")))?;
    obj.remove("room_id");
    obj.remove("session_id");
    // Sized up front: a growing buffer would leave unwiped copies of the key behind.
    let mut out = Zeroizing::new(Vec::with_capacity(text.len() + 64));
    serde_json::to_writer(&mut *out, &obj)
        .map_err(|e| Error::Encryption(format!("entry does not serialise: {e}")))?;
    // Wipe the key material held in the parsed copy.
    if let Some(Value::String(k)) = obj.get_mut("session_key") {
        zeroize::Zeroize::zeroize(k);
    }
    Ok(out)
}

/// One upload request's body: `chunk` sealed to the backup (in parallel), grouped by room
/// as `PUT /room_keys/keys` takes it, after decrypting the first session back as a
/// self-check. Public for the benchmark of the server's floor, which replays these bodies.
pub fn encrypt_batch(
    encryptor: &Encryptor,
    key: &BackupKey,
    chunk: &[&SessionRef<'_>],
) -> Result<Vec<u8>> {
    let encrypted: Vec<KeyBackupData> = chunk
        .par_iter()
        .map(|s| encryptor.encrypt(s))
        .collect::<Result<_>>()?;
    if let (Some(first), Some(data)) = (chunk.first(), encrypted.first()) {
        let back = key.decrypt(&data.session_data).map_err(Error::Encryption)?;
        if back.as_bytes() != &backup_payload(first)?[..] {
            return Err(Error::Encryption(
                "a session did not decrypt back to itself".into(),
            ));
        }
    }
    let mut rooms: BTreeMap<&str, BTreeMap<&str, &KeyBackupData>> = BTreeMap::new();
    for (s, data) in chunk.iter().zip(&encrypted) {
        rooms
            .entry(&s.room_id)
            .or_default()
            .insert(&s.session_id, data);
    }
    let body: BTreeMap<&str, BTreeMap<&str, BTreeMap<&str, _>>> = rooms
        .into_iter()
        .map(|(room, sessions)| (room, BTreeMap::from([("sessions", sessions)])))
        .collect();
    Ok(serde_json::to_vec(&serde_json::json!({ "rooms": body })).expect("JSON serialises"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::test_support::info_for;
    use key_export::testkit::Device;

    /// What goes into the backup carries the shared-history flag exactly as the session had
    /// it, and matrix-sdk-crypto reads it as true only where the session said true in a
    /// spelling it knows (it does not read the spec's plain `shared_history` yet).
    #[test]
    fn the_shared_history_flag_goes_into_the_backup_as_it_was() {
        use key_export::testkit::{shared_history_cases, shared_history_fields};
        let (key, _) = BackupKey::generate();
        let enc = Encryptor::new(&info_for(&key), &key).unwrap();
        for case in shared_history_cases("!room:example.org") {
            let json = case.to_json();
            let raw = serde_json::value::RawValue::from_string(json.clone()).unwrap();
            let data = enc.encrypt(&SessionRef::parse(&raw)).unwrap();
            let plain = key.decrypt(&data.session_data).unwrap();
            let fields = shared_history_fields(&json);
            assert_eq!(shared_history_fields(&plain), fields);
            let sdk_data: ruma::api::client::backup::EncryptedSessionData =
                serde_json::from_value(serde_json::to_value(&data.session_data).unwrap()).unwrap();
            let read = key.key.decrypt_session_data(sdk_data).unwrap();
            let known_true = ["m.shared_history", "org.matrix.msc3061.shared_history"]
                .iter()
                .any(|f| fields.get(*f) == Some(&Value::Bool(true)));
            assert_eq!(read.shared_history, known_true, "{fields:?}");
        }
    }

    #[test]
    fn encrypted_sessions_decrypt_with_matrix_sdk_crypto_to_the_exported_session() {
        let (key, _) = BackupKey::generate();
        let enc = Encryptor::new(&info_for(&key), &key).unwrap();
        let dev = Device::new();
        let mut exported = dev.new_session("!room:example.org").export_at(7);
        exported.forwarding_curve25519_key_chain = vec![Device::new().curve25519().to_owned()];
        let raw = serde_json::value::RawValue::from_string(exported.to_json()).unwrap();
        let s = SessionRef::parse(&raw);
        let data = enc.encrypt(&s).unwrap();
        assert_eq!(
            (
                data.first_message_index,
                data.forwarded_count,
                data.is_verified
            ),
            (7, 1, false)
        );
        // matrix-sdk-crypto's own decryption of backed-up keys.
        let sdk_data: ruma::api::client::backup::EncryptedSessionData =
            serde_json::from_value(serde_json::to_value(&data.session_data).unwrap()).unwrap();
        let backed_up = key.key.decrypt_session_data(sdk_data).unwrap();
        assert_eq!(
            backed_up.session_key.to_base64(),
            exported.session_key.0.as_str()
        );
        assert_eq!(backed_up.forwarding_curve25519_key_chain.len(), 1);
        let plain: Value = serde_json::from_str(&key.decrypt(&data.session_data).unwrap()).unwrap();
        assert!(plain.get("room_id").is_none() && plain.get("session_id").is_none());
        assert_eq!(
            plain["org.matrix.msc3061.shared_history"], false,
            "unknown fields travel too"
        );
    }
}
