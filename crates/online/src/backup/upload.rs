//! Uploading sessions: batches encrypted in parallel on one side while the previous batch
//! is sent on the other.

use std::sync::mpsc::sync_channel;

use key_export::SessionRef;
use serde::Serialize;

use super::encrypt::{encrypt_batch, Encryptor};
use super::key::BackupKey;
use super::version::BackupInfo;
use crate::client::{Body, Client, Method};
use crate::error::{Error, Result};

/// What an upload did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct UploadReport {
    /// Sessions sent.
    pub sent: usize,
    /// Sessions stored in the backup before.
    pub count_before: u64,
    /// Sessions stored after, as the server's answer to the last batch says (the server
    /// keeps the better copy of each).
    pub count_after: u64,
    /// The backup version.
    pub version: String,
}

/// Uploads `sessions` (all valid) to the backup `info`, after checking `key` against it.
/// Batches are encrypted in parallel on one side while the previous batch is uploaded;
/// each batch's first session is decrypted back as a self-check. Each answer must be the
/// spec's `{count, etag}`. `progress` is called with the number of sessions uploaded so far.
pub fn upload(
    client: &Client,
    info: &BackupInfo,
    key: &BackupKey,
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
    let mut count_after = info.count;
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
            match client.call_json::<Stored>(
                "upload room keys to the backup",
                Method::Put,
                &["v3", "room_keys", "keys"],
                &query,
                Body::Json(&body),
                true,
            ) {
                Ok(stored) => count_after = stored.count,
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
    Ok(UploadReport {
        sent,
        count_before: info.count,
        count_after,
        version: info.version.clone(),
    })
}

/// The answer to `PUT /room_keys/keys`.
#[derive(serde::Deserialize)]
struct Stored {
    count: u64,
    #[allow(dead_code)]
    etag: String,
}
