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
use super::key::BackupKey;
use super::version::BackupInfo;
use crate::client::{Body, Client, Method};
use crate::error::{Error, Result};
use crate::wire::found;

#[derive(Deserialize)]
struct RoomSessions {
    sessions: BTreeMap<String, KeyBackupData>,
}

/// What the backup `info` stores for `room` (`GET /room_keys/keys/{room}`), read as `T`;
/// `None` when the server has nothing for it.
pub(super) fn room_keys<T: serde::de::DeserializeOwned>(
    client: &Client,
    info: &BackupInfo,
    room: &str,
    what: &str,
) -> Result<Option<T>> {
    found(client.call_json(
        what,
        Method::Get,
        &["v3", "room_keys", "keys", room],
        &[("version", info.version.as_str())],
        Body::None,
        true,
    ))
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Skipped {
    /// The room the server stores it under.
    pub room_id: String,
    /// The session the server stores it under.
    pub session_id: String,
    /// Why it was left out.
    pub reason: SkipReason,
}

/// Why a backup entry was left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error, schemars::JsonSchema)]
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

/// Which rooms to download.
#[derive(Clone, Copy)]
pub enum Rooms<'a> {
    /// Every room `keep` accepts, from one streamed GET of the whole backup.
    Matching(&'a (dyn Fn(&str) -> bool + Sync)),
    /// Exactly these rooms, one GET each.
    Listed(&'a [String]),
}

/// What a streamed download did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Streamed {
    /// Entries handed on.
    pub sessions: usize,
    /// Rooms they belong to.
    pub rooms: usize,
    /// Entries left out, and why.
    pub skipped: Vec<Skipped>,
}

/// Downloads the backup `info` and decrypts every session of the rooms `keep` accepts
/// with `key` (see [`download_each`]), collecting the entries.
pub fn download(
    client: &Client,
    info: &BackupInfo,
    key: &BackupKey,
    keep: &(dyn Fn(&str) -> bool + Sync),
) -> Result<Downloaded> {
    let mut entries = Vec::new();
    let done = download_each(client, info, key, Rooms::Matching(keep), &mut |room| {
        entries.extend(room);
        Ok(())
    })?;
    Ok(Downloaded {
        entries,
        rooms: done.rooms,
        skipped: done.skipped,
    })
}

/// Downloads the backup `info` room by room, after checking that `key` is the backup's,
/// and hands `each` the entries of each room as soon as they are decrypted (in parallel).
/// Only one room's sessions are held at a time: the whole backup is parsed as it arrives
/// (or, for listed rooms, fetched one room at a time), never read whole.
///
/// Backup entries are not authenticated (anyone with the account's token can add one), so
/// each is checked like an export entry: the server's room and session IDs win over the
/// payload's, and an entry that does not decrypt, disagrees or is invalid is left out and
/// reported, never fatal.
pub fn download_each(
    client: &Client,
    info: &BackupInfo,
    key: &BackupKey,
    rooms: Rooms<'_>,
    each: &mut dyn FnMut(Vec<Zeroizing<String>>) -> Result<()>,
) -> Result<Streamed> {
    info.check_key(key)?;
    let mut run = Run {
        key,
        each,
        done: Streamed::default(),
        stopped: None,
    };
    let version = [("version", info.version.as_str())];
    match rooms {
        Rooms::Listed(list) => {
            for room in list {
                let got = room_keys::<RoomSessions>(
                    client,
                    info,
                    room,
                    "download the key backup of a room",
                )?;
                if let Some(sessions) = got {
                    run.room(room, sessions)?;
                }
            }
        }
        Rooms::Matching(keep) => {
            let reader = client.call_reader(
                "download the key backup",
                &["v3", "room_keys", "keys"],
                &version,
                MAX_BACKUP,
            )?;
            run.whole(reader, keep)?;
        }
    }
    Ok(run.done)
}

/// Reads a whole-backup answer (`{"rooms": {ROOM: {"sessions": {...}}}}`) as it arrives,
/// decrypting each room `keep` accepts with `key` and handing its entries to `each` before
/// the next room is read. `key` is not checked against a backup here ([`download_each`]
/// does that first).
pub fn read_whole(
    reader: impl std::io::Read,
    key: &BackupKey,
    keep: &(dyn Fn(&str) -> bool + Sync),
    each: &mut dyn FnMut(Vec<Zeroizing<String>>) -> Result<()>,
) -> Result<Streamed> {
    let mut run = Run {
        key,
        each,
        done: Streamed::default(),
        stopped: None,
    };
    run.whole(reader, keep)?;
    Ok(run.done)
}

/// The largest whole-backup answer read (about 3 million sessions).
const MAX_BACKUP: usize = 4 << 30;

/// A download under way.
struct Run<'a> {
    key: &'a BackupKey,
    each: &'a mut dyn FnMut(Vec<Zeroizing<String>>) -> Result<()>,
    done: Streamed,
    /// The error that stopped the parse from inside (the sink failed).
    stopped: Option<Error>,
}

impl Run<'_> {
    /// Reads a whole-backup answer, room by room.
    fn whole(
        &mut self,
        reader: impl std::io::Read,
        keep: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<()> {
        let mut de = serde_json::Deserializer::from_reader(std::io::BufReader::new(reader));
        let parsed = serde::de::DeserializeSeed::deserialize(Whole { run: self, keep }, &mut de)
            .and_then(|()| de.end());
        if let Some(e) = self.stopped.take() {
            return Err(e);
        }
        parsed.map_err(|e| Error::BadResponse {
            what: "download the key backup".into(),
            reason: e.to_string(),
        })
    }

    /// Decrypts one room's sessions in parallel and hands the good ones on.
    fn room(&mut self, room: &str, sessions: RoomSessions) -> Result<()> {
        let key = self.key;
        let results: Vec<std::result::Result<Zeroizing<String>, Skipped>> = sessions
            .sessions
            .par_iter()
            .map(|(sid, data)| {
                entry_of(key, room, sid, data).map_err(|reason| Skipped {
                    room_id: room.to_owned(),
                    session_id: sid.clone(),
                    reason,
                })
            })
            .collect();
        let mut good = Vec::with_capacity(results.len());
        for r in results {
            match r {
                Ok(e) => good.push(e),
                Err(s) => self.done.skipped.push(s),
            }
        }
        if good.is_empty() {
            return Ok(());
        }
        self.done.rooms += 1;
        self.done.sessions += good.len();
        (self.each)(good)
    }
}

/// The whole answer, `{"rooms": {ROOM: {"sessions": {...}}}}`, read room by room.
struct Whole<'r, 'a> {
    run: &'r mut Run<'a>,
    keep: &'r (dyn Fn(&str) -> bool + Sync),
}

impl<'de> serde::de::DeserializeSeed<'de> for Whole<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Whole<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a key backup: {\"rooms\": {...}}")
    }
    fn visit_map<M: serde::de::MapAccess<'de>>(
        self,
        mut map: M,
    ) -> std::result::Result<(), M::Error> {
        let Whole { run, keep } = self;
        while let Some(field) = map.next_key::<String>()? {
            if field != "rooms" {
                map.next_value::<serde::de::IgnoredAny>()?;
                continue;
            }
            map.next_value_seed(EachRoom {
                run: &mut *run,
                keep,
            })?;
        }
        Ok(())
    }
}

/// The `rooms` object: each wanted room decrypted and handed on before the next is read.
struct EachRoom<'r, 'a> {
    run: &'r mut Run<'a>,
    keep: &'r (dyn Fn(&str) -> bool + Sync),
}

impl<'de> serde::de::DeserializeSeed<'de> for EachRoom<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for EachRoom<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object of rooms")
    }
    fn visit_map<M: serde::de::MapAccess<'de>>(
        self,
        mut map: M,
    ) -> std::result::Result<(), M::Error> {
        while let Some(room) = map.next_key::<String>()? {
            if !(self.keep)(&room) {
                map.next_value::<serde::de::IgnoredAny>()?;
                continue;
            }
            let sessions: RoomSessions = map.next_value()?;
            if let Err(e) = self.run.room(&room, sessions) {
                self.run.stopped = Some(e);
                return Err(serde::de::Error::custom("stopped"));
            }
        }
        Ok(())
    }
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
    key: &BackupKey,
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
        SessionRef::parse(raw).problem().cloned()
    };
    match problem {
        Some(problem) => Err(SkipReason::Invalid(problem)),
        None => Ok(text),
    }
}
