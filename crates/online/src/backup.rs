//! Server-side key backup, `m.megolm_backup.v1.curve25519-aes-sha2`.
//!
//! Each session is encrypted to the backup's Curve25519 public key (an ephemeral key
//! agreement, HKDF-SHA-256, AES-256-CBC, and libolm's historical MAC) with vodozemac's
//! `pk_encryption`, the code matrix-sdk-crypto uses. The plaintext is the exported session
//! minus `room_id` and `session_id`, exactly as exported (forwarding chain included).
//!
//! Trust: the server hands out the backup's public key, and a hostile server could hand
//! out one of its own and read every key uploaded. So nothing is uploaded unless the
//! public key derived from the recovery key the user gives equals the backup's.

use std::collections::BTreeMap;
use std::sync::mpsc::sync_channel;

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use key_export::SessionRef;
use matrix_sdk_crypto::store::types::BackupDecryptionKey;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use vodozemac::pk_encryption::PkEncryption;
use vodozemac::Curve25519PublicKey;
use zeroize::Zeroizing;

use crate::client::{is_not_found, Body, Client};
use crate::error::{Error, Result};

/// The only backup algorithm in use.
pub const ALGORITHM: &str = "m.megolm_backup.v1.curve25519-aes-sha2";
/// Sessions per upload request (matrix-sdk-crypto uses 100; Synapse stores 1,000 in ~0.1 s).
pub const DEFAULT_BATCH: usize = 1000;

/// The recovery key ("Security Key") of a backup. Wiped on drop, never shown by `Debug`.
pub struct RecoveryKey {
    key: BackupDecryptionKey,
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

    fn decrypt(&self, data: &SessionData) -> std::result::Result<Zeroizing<String>, String> {
        self.key
            .decrypt_v1(&data.ephemeral, &data.mac, &data.ciphertext)
            .map(Zeroizing::new)
            .map_err(|e| e.to_string())
    }
}

/// A backup version as `GET /room_keys/version` describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct BackupInfo {
    /// The algorithm.
    pub algorithm: String,
    /// Algorithm data: `public_key`, `signatures`.
    pub auth_data: Value,
    /// Sessions stored.
    #[serde(default)]
    pub count: u64,
    /// Changes when the stored keys change.
    #[serde(default)]
    pub etag: String,
    /// The version.
    pub version: String,
}

impl BackupInfo {
    /// The backup's public key, as the server claims it.
    pub fn public_key(&self) -> Option<&str> {
        self.auth_data.get("public_key").and_then(Value::as_str)
    }

    /// Checks that `key` is this backup's recovery key. Nothing may be uploaded otherwise.
    pub fn check_key(&self, key: &RecoveryKey) -> Result<()> {
        if self.algorithm != ALGORITHM {
            return Err(Error::UnsupportedBackup(self.algorithm.clone()));
        }
        if self.public_key() != Some(key.public_key().as_str()) {
            return Err(Error::BackupKeyMismatch {
                version: self.version.clone(),
            });
        }
        Ok(())
    }
}

/// The account's current backup version, or `None` when it has none.
pub fn current(client: &Client) -> Result<Option<BackupInfo>> {
    match client.call_json(
        "read the key backup version",
        "GET",
        &["v3", "room_keys", "version"],
        &[],
        Body::None,
        true,
    ) {
        Ok(info) => Ok(Some(info)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Creates a new backup version for `key` (what a client's "set up backup" does, without
/// the cross-signing signature). Returns the version.
pub fn create_version(client: &Client, key: &RecoveryKey) -> Result<String> {
    let body =
        serde_json::json!({"algorithm": ALGORITHM, "auth_data": {"public_key": key.public_key()}});
    #[derive(Deserialize)]
    struct Created {
        version: String,
    }
    let c: Created = client.call_json(
        "create a key backup version",
        "POST",
        &["v3", "room_keys", "version"],
        &[],
        Body::Json(&serde_json::to_vec(&body).expect("JSON serialises")),
        true,
    )?;
    Ok(c.version)
}

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
    pub fn new(info: &BackupInfo, key: &RecoveryKey) -> Result<Self> {
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
        let msg = self
            .pk
            .encrypt(&plain)
            .map_err(|e| Error::Encryption(e.to_string()))?;
        let chain = chain_len(session);
        Ok(KeyBackupData {
            first_message_index: session.first_known_index,
            forwarded_count: chain,
            is_verified: false,
            session_data: SessionData {
                ephemeral: msg.ephemeral_key.to_base64(),
                ciphertext: STANDARD_NO_PAD.encode(&msg.ciphertext),
                mac: STANDARD_NO_PAD.encode(&msg.mac),
            },
        })
    }
}

fn chain_len(session: &SessionRef<'_>) -> u32 {
    serde_json::from_str::<Map<String, Value>>(session.raw.get())
        .ok()
        .and_then(|m| {
            m.get("forwarding_curve25519_key_chain")
                .and_then(Value::as_array)
                .map(Vec::len)
        })
        .unwrap_or(0) as u32
}

/// The plaintext of a backed-up session: the exported entry minus `room_id` and
/// `session_id`, with a forwarding chain.
pub fn backup_payload(session: &SessionRef<'_>) -> Result<Zeroizing<Vec<u8>>> {
    let text = session.output_json();
    let mut obj: Map<String, Value> = serde_json::from_str(&text)
        .map_err(|e| Error::Encryption(format!("entry is not an object: {e}")))?;
    obj.remove("room_id");
    obj.remove("session_id");
    let out = Zeroizing::new(serde_json::to_vec(&obj).expect("JSON serialises"));
    // Wipe the key material held in the parsed copy.
    if let Some(Value::String(k)) = obj.get_mut("session_key") {
        zeroize::Zeroize::zeroize(k);
    }
    Ok(out)
}

/// What an upload did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UploadReport {
    /// Sessions sent.
    pub sent: usize,
    /// Sessions stored in the backup before.
    pub count_before: u64,
    /// Sessions stored after (the server keeps the better copy of each).
    pub count_after: u64,
    /// The backup version.
    pub version: String,
}

/// Uploads `sessions` (all valid) to the backup `info`, after checking `key` against it.
/// Batches are encrypted in parallel on one side while the previous batch is uploaded;
/// each batch's first session is decrypted back as a self-check. `progress` is called
/// with the number of sessions uploaded so far.
pub fn upload(
    client: &Client,
    info: &BackupInfo,
    key: &RecoveryKey,
    sessions: &[&SessionRef<'_>],
    batch: usize,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<UploadReport> {
    let encryptor = Encryptor::new(info, key)?;
    // Batches of few rooms cost the server less than batches that touch every room.
    let mut sessions: Vec<&SessionRef<'_>> = sessions.to_vec();
    sessions.sort_by(|a, b| a.room_id.cmp(&b.room_id));
    let sessions = &sessions[..];
    let query = [("version", info.version.as_str())];
    let mut sent = 0;
    std::thread::scope(|scope| -> Result<()> {
        let (tx, rx) = sync_channel::<Result<(usize, Vec<u8>)>>(2);
        let encryptor = &encryptor;
        scope.spawn(move || {
            for chunk in sessions.chunks(batch.max(1)) {
                let body = encrypt_batch(encryptor, key, chunk).map(|b| (chunk.len(), b));
                let failed = body.is_err();
                if tx.send(body).is_err() || failed {
                    break;
                }
            }
        });
        for msg in rx {
            let (n, body) = msg?;
            match client.call(
                "upload room keys to the backup",
                "PUT",
                &["v3", "room_keys", "keys"],
                &query,
                Body::Json(&body),
            ) {
                Ok(_) => {}
                Err(Error::Api { errcode, .. }) if errcode == "M_WRONG_ROOM_KEYS_VERSION" => {
                    return Err(Error::WrongBackupVersion { uploaded: sent });
                }
                Err(e) => return Err(e),
            }
            sent += n;
            progress(sent);
        }
        Ok(())
    })?;
    let after = current(client)?.map(|i| i.count).unwrap_or(0);
    Ok(UploadReport {
        sent,
        count_before: info.count,
        count_after: after,
        version: info.version.clone(),
    })
}

fn encrypt_batch(
    encryptor: &Encryptor,
    key: &RecoveryKey,
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

#[derive(Deserialize)]
struct RoomSessions {
    sessions: BTreeMap<String, KeyBackupData>,
}

#[derive(Deserialize)]
struct AllKeys {
    rooms: BTreeMap<String, RoomSessions>,
}

/// Downloads the backup `info` and decrypts every session of the rooms `keep` accepts
/// with `key`. Returns export entries (JSON objects, secret) in room order.
pub fn download(
    client: &Client,
    info: &BackupInfo,
    key: &RecoveryKey,
    keep: &(dyn Fn(&str) -> bool + Sync),
) -> Result<Vec<Zeroizing<String>>> {
    if info.algorithm != ALGORITHM {
        return Err(Error::UnsupportedBackup(info.algorithm.clone()));
    }
    if info.public_key() != Some(key.public_key().as_str()) {
        return Err(Error::BackupKeyMismatch {
            version: info.version.clone(),
        });
    }
    let all: AllKeys = client.call_json(
        "download the key backup",
        "GET",
        &["v3", "room_keys", "keys"],
        &[("version", info.version.as_str())],
        Body::None,
        true,
    )?;
    let items: Vec<(&str, &str, &KeyBackupData)> = all
        .rooms
        .iter()
        .filter(|(room, _)| keep(room))
        .flat_map(|(room, r)| {
            r.sessions
                .iter()
                .map(move |(sid, d)| (room.as_str(), sid.as_str(), d))
        })
        .collect();
    items
        .par_iter()
        .map(|(room, sid, data)| {
            let plain = key
                .decrypt(&data.session_data)
                .map_err(|reason| Error::Decryption {
                    room_id: room.to_string(),
                    reason,
                })?;
            let fields: Map<String, Value> =
                serde_json::from_str(&plain).map_err(|e| Error::Decryption {
                    room_id: room.to_string(),
                    reason: e.to_string(),
                })?;
            let mut entry = Map::new();
            entry.insert("room_id".into(), Value::String(room.to_string()));
            entry.insert("session_id".into(), Value::String(sid.to_string()));
            entry.extend(fields);
            let text = Zeroizing::new(serde_json::to_string(&entry).expect("JSON serialises"));
            if let Some(Value::String(k)) = entry.get_mut("session_key") {
                zeroize::Zeroize::zeroize(k);
            }
            Ok(text)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use key_export::testkit::Device;

    fn info_for(key: &RecoveryKey) -> BackupInfo {
        BackupInfo {
            algorithm: ALGORITHM.into(),
            auth_data: serde_json::json!({"public_key": key.public_key()}),
            count: 0,
            etag: String::new(),
            version: "1".into(),
        }
    }

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

    #[test]
    fn refuses_a_backup_whose_key_is_not_the_users() {
        let (mine, _) = RecoveryKey::generate();
        let (servers, _) = RecoveryKey::generate();
        assert!(matches!(
            Encryptor::new(&info_for(&servers), &mine),
            Err(Error::BackupKeyMismatch { .. })
        ));
        let mut other = info_for(&mine);
        other.algorithm = "org.example.other".into();
        assert!(matches!(
            Encryptor::new(&other, &mine),
            Err(Error::UnsupportedBackup(_))
        ));
    }

    #[test]
    fn encrypted_sessions_decrypt_with_matrix_sdk_crypto_to_the_exported_session() {
        let (key, _) = RecoveryKey::generate();
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
