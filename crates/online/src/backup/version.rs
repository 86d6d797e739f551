//! The account's backup version, and the check that its key is the user's.

use serde::Deserialize;
use serde_json::Value;

use super::key::BackupKey;
use super::ALGORITHM;
use crate::client::{Body, Client, Method};
use crate::error::{Error, Result};
use crate::wire::found;

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
    pub fn check_key(&self, key: &BackupKey) -> Result<()> {
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
    found(client.call_json(
        "read the key backup version",
        Method::Get,
        &["v3", "room_keys", "version"],
        &[],
        Body::None,
        true,
    ))
}

/// Creates a new backup version for `key` (what a client's "set up backup" does, without
/// the cross-signing signature). Returns the version.
pub fn create_version(client: &Client, key: &BackupKey) -> Result<String> {
    let body =
        serde_json::json!({"algorithm": ALGORITHM, "auth_data": {"public_key": key.public_key()}});
    #[derive(Deserialize)]
    struct Created {
        version: String,
    }
    let c: Created = client.call_json(
        "create a key backup version",
        Method::Post,
        &["v3", "room_keys", "version"],
        &[],
        Body::Json(&serde_json::to_vec(&body).expect("JSON serialises")),
        true,
    )?;
    Ok(c.version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::test_support::info_for;

    #[test]
    fn refuses_a_backup_whose_key_is_not_the_users() {
        let (mine, _) = BackupKey::generate();
        let (servers, _) = BackupKey::generate();
        assert!(matches!(
            info_for(&servers).check_key(&mine),
            Err(Error::BackupKeyMismatch { .. })
        ));
        // The encryptor of uploads makes the same check.
        assert!(matches!(
            crate::backup::Encryptor::new(&info_for(&servers), &mine),
            Err(Error::BackupKeyMismatch { .. })
        ));
        let mut other = info_for(&mine);
        other.algorithm = "org.example.other".into();
        assert!(matches!(
            other.check_key(&mine),
            Err(Error::UnsupportedBackup(_))
        ));
        assert!(info_for(&mine).check_key(&mine).is_ok());
    }
}
