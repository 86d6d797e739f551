//! Downloading the backup and decrypting it back into export entries.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::Deserialize;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::encrypt::KeyBackupData;
use super::key::RecoveryKey;
use super::version::BackupInfo;
use crate::client::{Body, Client};
use crate::error::{Error, Result};

#[derive(Deserialize)]
struct RoomSessions {
    sessions: BTreeMap<String, KeyBackupData>,
}

#[derive(Deserialize)]
struct AllKeys {
    rooms: BTreeMap<String, RoomSessions>,
}

/// Decrypted backup sessions.
#[derive(Debug)]
pub struct Downloaded {
    /// Export entries (JSON objects, secret), in room order.
    pub entries: Vec<Zeroizing<String>>,
    /// Rooms they belong to.
    pub rooms: usize,
}

/// Downloads the backup `info` and decrypts every session of the rooms `keep` accepts
/// with `key`, after checking that `key` is the backup's.
pub fn download(
    client: &Client,
    info: &BackupInfo,
    key: &RecoveryKey,
    keep: &(dyn Fn(&str) -> bool + Sync),
) -> Result<Downloaded> {
    info.check_key(key)?;
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
    let rooms = all.rooms.keys().filter(|room| keep(room)).count();
    let entries = items
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
        .collect::<Result<_>>()?;
    Ok(Downloaded { entries, rooms })
}
