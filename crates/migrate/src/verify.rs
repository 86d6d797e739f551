//! Checking the result as the new account, without a crypto device: the question a user
//! asks after a move — "can I read my history now?" — answered from what the servers say.
//!
//! Per room:
//! - joined: the new account is in the room on its own server (`/joined_rooms`), and the
//!   old account's server sees it joined too (`GET /v1/mutual_rooms`, spec v1.19, where
//!   the server offers it; else the new account's membership read as the old account);
//! - keys: the encrypted events the new account may see (`/messages`, newest first, within
//!   a budget) each name their megolm session and, in the clear header of the ciphertext,
//!   their message index; the new account's backup lists, without decrypting anything,
//!   each session it holds and the first index it decrypts. An event has its key when the
//!   backup holds its session in that room from that index or earlier.
//!
//! No device is made (no "unverified session" for the user to wonder at), no key is
//! needed, nothing is written.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use online::backup::{self, StoredSession};
use online::rooms::{self, Direction, Membership, TimelineEvent};
use serde::Serialize;

use crate::connect::Pair;
use crate::error::Result;
use crate::events::{stage, Event, Events, Stage};

/// How much of each room's timeline to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The newest encrypted events read per room, at most.
    pub events_per_room: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            events_per_room: 5_000,
        }
    }
}

/// Events asked for per page.
const PAGE: u32 = 250;

/// What the check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Verification {
    /// The new account's backup version read; `None` when it has no backup (no message
    /// then has its key there).
    pub backup_version: Option<String>,
    /// Encrypted events the new account can see, in every room checked.
    pub encrypted: usize,
    /// Of those, the ones whose key is in its backup.
    pub with_keys: usize,
    /// Each room.
    pub rooms: Vec<RoomCheck>,
}

/// One room's check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct RoomCheck {
    /// The room.
    pub room_id: String,
    /// The new account is joined, as its own server says.
    pub joined_on_new_server: bool,
    /// The old account's server sees the new account joined; `None` when the old account
    /// can no longer read the room.
    pub joined_on_old_server: Option<bool>,
    /// Encrypted events the new account can see (the newest, up to the budget).
    pub encrypted: usize,
    /// Of those, the ones whose key is in its backup.
    pub with_keys: usize,
    /// The timeline was read to its start (false: the budget ran out first; the counts are
    /// of the newest events).
    pub whole_timeline: bool,
    /// The sessions of the events without a key, most events first.
    pub missing: Vec<MissingSession>,
}

/// A session the new account's events need and its backup does not give.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct MissingSession {
    /// The session (`None`: the events name none, or their ciphertext is unreadable).
    pub session_id: Option<String>,
    /// Events it leaves unreadable.
    pub events: usize,
    /// Of those, the ones sent while the new account was already in the room: its own
    /// devices, if it had any then, received those keys directly.
    pub since_joined: usize,
    /// The backup holds the session only from this message index, later than the
    /// events need (no source had an earlier copy); `None`: it does not hold it at all.
    pub backup_from_index: Option<u32>,
}

impl Verification {
    /// One line for people: "N of M encrypted messages …".
    pub fn summary_line(&self) -> String {
        format!(
            "{} of {} encrypted messages the new account can see have their keys in its backup",
            self.with_keys, self.encrypted
        )
    }
}

/// Rooms checked at once: reads are not rate-limited, and each room is several round
/// trips (a page of its timeline at a time).
const READERS: usize = 4;

/// Checks `rooms` as the pair's new account (and, for the joins, as the old), reading at
/// most `budget` of each timeline; a few rooms side by side, the result in `rooms`' order.
pub fn verify(
    pair: &Pair<'_>,
    rooms: &[String],
    budget: Budget,
    events: &dyn Events,
) -> Result<Verification> {
    stage(events, Stage::Verify, Some(rooms.len() as u64), || {
        let (new, old) = (pair.new.client(), pair.old.client());
        let info = backup::current(new)?;
        let known = Known {
            new_user: pair.new.user_id(),
            joined_new: rooms::joined_rooms(new)?.into_iter().collect(),
            mutual: rooms::mutual_rooms(old, pair.new.user_id())?.map(|r| r.into_iter().collect()),
            stored: match &info {
                Some(info) => backup::stored(new, info, rooms)?,
                None => Default::default(),
            },
            budget,
        };
        let checks = check_all(pair, rooms, &known, events)?;
        Ok(Verification {
            backup_version: info.map(|i| i.version),
            encrypted: checks.iter().map(|c| c.encrypted).sum(),
            with_keys: checks.iter().map(|c| c.with_keys).sum(),
            rooms: checks,
        })
    })
}

/// What is read once, before the rooms.
struct Known<'a> {
    new_user: &'a str,
    joined_new: HashSet<String>,
    /// The rooms the old account's server says both accounts are in (`None`: not offered).
    mutual: Option<HashSet<String>>,
    stored: backup::Stored,
    budget: Budget,
}

/// Every room checked by [`READERS`] readers (each with its own clients), in order; the
/// first error ends the check.
fn check_all(
    pair: &Pair<'_>,
    rooms: &[String],
    known: &Known<'_>,
    events: &dyn Events,
) -> Result<Vec<RoomCheck>> {
    let results: Vec<Mutex<Option<Result<RoomCheck>>>> =
        rooms.iter().map(|_| Mutex::new(None)).collect();
    let (next, done) = (AtomicUsize::new(0), AtomicU64::new(0));
    let readers: Vec<(online::Client, online::Client)> = (0..READERS.min(rooms.len()))
        .map(|_| (pair.old.client().fork(), pair.new.client().fork()))
        .collect();
    std::thread::scope(|scope| {
        for (old, new) in readers {
            let (next, done, results) = (&next, &done, &results);
            scope.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= rooms.len() {
                    break;
                }
                let checked = check_room(&old, &new, &rooms[i], known);
                if let Ok(c) = &checked {
                    events.emit(Event::Item {
                        stage: Stage::Verify,
                        item: c.room_id.clone(),
                        outcome: format!("{} of {} with keys", c.with_keys, c.encrypted),
                    });
                }
                events.emit(Event::Progress {
                    stage: Stage::Verify,
                    done: done.fetch_add(1, Ordering::Relaxed) + 1,
                    total: rooms.len() as u64,
                });
                let failed = checked.is_err();
                *results[i].lock().expect("check lock") = Some(checked);
                if failed {
                    // The others stop at their next room.
                    next.store(rooms.len(), Ordering::Relaxed);
                }
            });
        }
    });
    results
        .into_iter()
        .filter_map(|r| r.into_inner().expect("check lock"))
        .collect()
}

/// One room's check, through the readers' own clients.
fn check_room(
    old: &online::Client,
    new: &online::Client,
    room: &str,
    known: &Known<'_>,
) -> Result<RoomCheck> {
    let joined_on_old_server = match &known.mutual {
        Some(m) if m.contains(room) => Some(true),
        _ => old_sees_joined(old, room, known.new_user)?,
    };
    let joined = known.joined_new.contains(room);
    let timeline = match joined {
        true => encrypted_events(new, room, known.budget)?,
        false => Timeline {
            events: Vec::new(),
            whole: false,
        },
    };
    let mut check = judge(room, &timeline.events, &known.stored);
    check.joined_on_new_server = joined;
    check.joined_on_old_server = joined_on_old_server;
    check.whole_timeline = timeline.whole;
    Ok(check)
}

/// The new account's membership as the old account's server has it; `None` when the old
/// account may not read it (it left and its server forgot the room, or never was in it).
fn old_sees_joined(old: &online::Client, room: &str, new_user: &str) -> Result<Option<bool>> {
    match rooms::membership(old, room, new_user) {
        Ok(m) => Ok(Some(m == Some(Membership::Join))),
        Err(e) if rooms::is_forbidden(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The newest encrypted events of a room the account can see.
struct Timeline {
    events: Vec<TimelineEvent>,
    /// Read to the start.
    whole: bool,
}

/// Pages back through `room`'s encrypted events until its start or the budget. A page
/// may come back empty with a token to go on (its events were all hidden from this
/// account): the paging goes on, at most [`MAX_EMPTY_PAGES`] such pages in a row.
fn encrypted_events(client: &online::Client, room: &str, budget: Budget) -> Result<Timeline> {
    if budget.events_per_room == 0 {
        // Nothing to read: a page of 0 events is not a question to send.
        return Ok(Timeline {
            events: Vec::new(),
            whole: false,
        });
    }
    let mut events = Vec::new();
    let mut from: Option<String> = None;
    let mut empty_in_a_row = 0;
    loop {
        let want = (budget.events_per_room - events.len()).min(PAGE as usize) as u32;
        let page = rooms::messages(
            client,
            room,
            from.as_deref(),
            Direction::Backwards,
            &["m.room.encrypted"],
            want,
        )?;
        empty_in_a_row = if page.chunk.is_empty() {
            empty_in_a_row + 1
        } else {
            0
        };
        events.extend(
            page.chunk
                .into_iter()
                .filter(|e| e.kind == "m.room.encrypted"),
        );
        let more = match page.end {
            // A server that hands back the token it was given would page forever.
            Some(end) if from.as_ref() != Some(&end) => {
                from = Some(end);
                true
            }
            _ => false,
        };
        let spent = events.len() >= budget.events_per_room || empty_in_a_row == MAX_EMPTY_PAGES;
        if !more || spent {
            events.truncate(budget.events_per_room);
            return Ok(Timeline {
                events,
                whole: !more,
            });
        }
    }
}

/// Pages in a row with nothing the account may see before the check stops reading a room.
const MAX_EMPTY_PAGES: usize = 40;

/// Whether one event's key is in the backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Held,
    /// The backup does not hold the session.
    Absent,
    /// The backup holds it from a later index than the event's.
    From(u32),
    /// The event names no megolm session, or its ciphertext is not a megolm message.
    Unreadable,
}

/// What `stored` gives for one event of `room`, and the session it names.
fn key_of(room: &str, event: &TimelineEvent, stored: &backup::Stored) -> (Key, Option<String>) {
    let content = &event.content;
    let session = content["session_id"].as_str().map(str::to_owned);
    let index = content["ciphertext"]
        .as_str()
        .filter(|_| content["algorithm"] == "m.megolm.v1.aes-sha2")
        .and_then(|c| vodozemac::megolm::MegolmMessage::from_base64(c).ok())
        .map(|m| m.message_index());
    let (Some(id), Some(index)) = (&session, index) else {
        return (Key::Unreadable, session);
    };
    let key = match stored.get(&(room.to_owned(), id.clone())) {
        None => Key::Absent,
        Some(StoredSession {
            first_message_index,
            ..
        }) if *first_message_index > index => Key::From(*first_message_index),
        Some(_) => Key::Held,
    };
    (key, session)
}

/// Counts a room's events against the backup.
fn judge(room: &str, events: &[TimelineEvent], stored: &backup::Stored) -> RoomCheck {
    let mut missing: BTreeMap<Option<String>, MissingSession> = BTreeMap::new();
    let mut with_keys = 0;
    for event in events {
        let (key, session) = key_of(room, event, stored);
        if key == Key::Held {
            with_keys += 1;
            continue;
        }
        let m = missing
            .entry(session.clone())
            .or_insert_with(|| MissingSession {
                session_id: session,
                events: 0,
                since_joined: 0,
                backup_from_index: None,
            });
        m.events += 1;
        m.since_joined += usize::from(event.unsigned.membership.as_deref() == Some("join"));
        if let Key::From(index) = key {
            m.backup_from_index = Some(index);
        }
    }
    let mut missing: Vec<MissingSession> = missing.into_values().collect();
    missing.sort_by(|a, b| {
        b.events
            .cmp(&a.events)
            .then(a.session_id.cmp(&b.session_id))
    });
    RoomCheck {
        room_id: room.to_owned(),
        joined_on_new_server: false,
        joined_on_old_server: None,
        encrypted: events.len(),
        with_keys,
        whole_timeline: false,
        missing,
    }
}

#[cfg(test)]
mod tests;
