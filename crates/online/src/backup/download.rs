//! Downloading the backup and decrypting it back into export entries.

use std::collections::BTreeMap;

use key_export::session::FROM_BACKUP;
use key_export::SessionRef;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::encrypt::KeyBackupData;
use super::key::RecoveryKey;
use super::version::BackupInfo;
use crate::client::{Body, Client};
use crate::error::Result;

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
    /// Export entries (JSON objects, secret), in room order, each valid and marked as
    /// coming from a backup ([`key_export::session::FROM_BACKUP`]).
    pub entries: Vec<Zeroizing<String>>,
    /// Rooms they belong to.
    pub rooms: usize,
    /// Entries left out, and why.
    pub skipped: Vec<Skipped>,
}

/// A backup entry left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The room the server stores it under.
    pub room_id: String,
    /// The session the server stores it under.
    pub session_id: String,
    /// Why it was left out.
    pub reason: SkipReason,
}

/// Why a backup entry was left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum SkipReason {
    /// The recovery key does not decrypt it (damaged, or encrypted to another key).
    #[error("it does not decrypt with this recovery key ({0})")]
    Undecryptable(String),
    /// It decrypts to something that is not a JSON object.
    #[error("it decrypts to something that is not a session ({0})")]
    NotAnObject(String),
    /// The encrypted payload names another room or session than the server stores it
    /// under: someone put it there to be imported where it does not belong.
    #[error("its contents claim {field} {claimed}, not the one the server stores it under")]
    Mismatch {
        /// `room_id` or `session_id`.
        field: String,
        /// What the payload says (JSON text).
        claimed: String,
    },
    /// It is not a session importers accept.
    #[error("{0}")]
    Invalid(key_export::Invalid),
}

/// Downloads the backup `info` and decrypts every session of the rooms `keep` accepts
/// with `key`, after checking that `key` is the backup's. Backup entries are not
/// authenticated (anyone with the account's token can add one), so each is checked like an
/// export entry: the server's room and session IDs win over the payload's, and an entry
/// that does not decrypt, disagrees or is invalid is left out and reported, never fatal.
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
    let results: Vec<std::result::Result<Zeroizing<String>, Skipped>> = items
        .par_iter()
        .map(|&(room, sid, data)| {
            entry_of(key, room, sid, data).map_err(|reason| Skipped {
                room_id: room.to_owned(),
                session_id: sid.to_owned(),
                reason,
            })
        })
        .collect();
    let mut rooms = std::collections::BTreeSet::new();
    let mut entries = Vec::with_capacity(results.len());
    let mut skipped = Vec::new();
    for (r, (room, _, _)) in results.into_iter().zip(&items) {
        match r {
            Ok(e) => {
                rooms.insert(*room);
                entries.push(e);
            }
            Err(s) => skipped.push(s),
        }
    }
    Ok(Downloaded {
        rooms: rooms.len(),
        entries,
        skipped,
    })
}

/// A JSON object whose `session_key`, if any, is wiped when it is dropped.
struct Wiped(Map<String, Value>);

impl Drop for Wiped {
    fn drop(&mut self) {
        if let Some(Value::String(k)) = self.0.get_mut("session_key") {
            zeroize::Zeroize::zeroize(k);
        }
    }
}

/// One backup entry as an export entry, or why it is left out.
fn entry_of(
    key: &RecoveryKey,
    room: &str,
    sid: &str,
    data: &KeyBackupData,
) -> std::result::Result<Zeroizing<String>, SkipReason> {
    let plain = key
        .decrypt(&data.session_data)
        .map_err(SkipReason::Undecryptable)?;
    let mut fields =
        Wiped(serde_json::from_str(&plain).map_err(|e| SkipReason::NotAnObject(e.to_string()))?);
    for (field, server) in [("room_id", room), ("session_id", sid)] {
        if let Some(claimed) = fields.0.remove(field) {
            if claimed.as_str() != Some(server) {
                return Err(SkipReason::Mismatch {
                    field: field.into(),
                    claimed: claimed.to_string(),
                });
            }
        }
    }
    let mut entry = Wiped(Map::new());
    entry
        .0
        .insert("room_id".into(), Value::String(room.to_owned()));
    entry
        .0
        .insert("session_id".into(), Value::String(sid.to_owned()));
    entry.0.extend(std::mem::take(&mut fields.0));
    entry.0.insert(FROM_BACKUP.into(), Value::Bool(true));
    let text = Zeroizing::new(
        serde_json::to_string(&entry.0).map_err(|e| SkipReason::NotAnObject(e.to_string()))?,
    );
    let problem = {
        let raw: &RawValue =
            serde_json::from_str(&text).map_err(|e| SkipReason::NotAnObject(e.to_string()))?;
        SessionRef::parse(raw).problem
    };
    match problem {
        Some(problem) => Err(SkipReason::Invalid(problem)),
        None => Ok(text),
    }
}
