//! Server-side key backup, `m.megolm_backup.v1.curve25519-aes-sha2`, one module per
//! concept:
//! - [`recovery`]: the recovery key or security phrase the user has, opening the backup
//!   through secret storage (as Element sets it up) or as its own key (the older layout);
//! - [`key`]: the backup's own key and the public key it proves;
//! - [`version`]: the backup version the account has, and the check that its key is the
//!   user's;
//! - [`encrypt`]: one session encrypted to the backup key, and a batch of them;
//! - [`upload`]: batches encrypted in parallel while the previous one is sent;
//! - [`download`]: the backup fetched and decrypted back into export entries;
//! - [`stored`]: what the backup holds already, and which copy the server keeps.
//!
//! Each session is encrypted to the backup's Curve25519 public key (an ephemeral key
//! agreement, HKDF-SHA-256, AES-256-CBC, and libolm's historical MAC) with vodozemac's
//! `pk_encryption`, the code matrix-sdk-crypto uses. The plaintext is the exported session
//! minus `room_id` and `session_id`, exactly as exported (forwarding chain included).
//!
//! Trust: the server hands out the backup's public key, and a hostile server could hand
//! out one of its own and read every key uploaded. So nothing is uploaded unless the
//! public key of the backup key found with the user's recovery key equals the backup's
//! ([`BackupInfo::check_key`]), and the same check guards downloads. Secret storage lives
//! in account data, which the server controls too, and adds no trust of its own: its
//! secrets carry MACs under keys derived from the user's recovery key, which the server
//! does not have, and the backup key read from it must still give the backup's public key.

pub mod download;
pub mod encrypt;
pub mod key;
pub mod recovery;
pub mod stored;
pub mod upload;
pub mod version;

pub use download::{download, download_each, Downloaded, Rooms, SkipReason, Skipped, Streamed};
pub use encrypt::{backup_payload, forwarded_count, Encryptor, KeyBackupData, SessionData};
pub use key::BackupKey;
pub use recovery::{open, open_for_upload, Opened, Recovery, Via};
pub use stored::{improves, stored, Stored, StoredSession};
pub use upload::{upload, UploadReport};
pub use version::{create_version, current, BackupInfo};

/// The only backup algorithm in use.
pub const ALGORITHM: &str = "m.megolm_backup.v1.curve25519-aes-sha2";
/// Sessions per upload request (matrix-sdk-crypto uses 100; Synapse stores 1,000 in ~0.1 s).
pub const DEFAULT_BATCH: usize = 1000;

#[cfg(test)]
pub(crate) mod test_support {
    use super::{BackupInfo, BackupKey, ALGORITHM};

    /// A backup version whose public key is `key`'s.
    pub fn info_for(key: &BackupKey) -> BackupInfo {
        BackupInfo {
            algorithm: ALGORITHM.into(),
            auth_data: serde_json::json!({"public_key": key.public_key()}),
            count: 0,
            etag: String::new(),
            version: "1".into(),
        }
    }
}
