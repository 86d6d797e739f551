//! What an export holds: rounds, layout, sessions per room, duplicate copies and
//! entries that fail validation. Never includes key material.

use std::collections::HashMap;

use serde::Serialize;

use crate::armor::Layout;
use crate::container::Plaintext;
use crate::entries;
use crate::error::Result;
use crate::session::{Invalid, SessionRef};

/// An entry that fails validation, located by its position in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct InvalidEntry {
    /// 0-based position in the JSON array.
    pub index: usize,
    /// Its room_id, when it had one.
    pub room_id: String,
    /// Its session_id, when it had one.
    pub session_id: String,
    /// What is wrong.
    pub problem: Invalid,
}

impl InvalidEntry {
    /// Describes entry `index`, which must have a problem.
    pub fn of(index: usize, s: &SessionRef<'_>) -> Option<Self> {
        s.problem().cloned().map(|problem| InvalidEntry {
            index,
            room_id: s.room_id.to_string(),
            session_id: s.session_id.to_string(),
            problem,
        })
    }
}

/// Sessions of one room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct RoomCount {
    /// The room.
    pub room_id: String,
    /// Entries for it (copies included).
    pub sessions: usize,
}

/// A session present more than once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Duplicate {
    /// The room.
    pub room_id: String,
    /// The session.
    pub session_id: String,
    /// First known index of each copy, in file order.
    pub first_known_indexes: Vec<u32>,
}

/// The summary `keys inspect` prints.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Report {
    /// PBKDF2 rounds of the file.
    pub rounds: u32,
    /// The armour as found.
    pub layout: Layout,
    /// A guess at the program that wrote the file.
    pub producer_hint: &'static str,
    /// Size of the decrypted JSON.
    pub json_bytes: usize,
    /// Entries in the file.
    pub sessions: usize,
    /// Distinct (room_id, session_id) pairs.
    pub distinct_sessions: usize,
    /// Entries per room, most first.
    pub rooms: Vec<RoomCount>,
    /// Sessions with more than one copy.
    pub duplicates: Vec<Duplicate>,
    /// Entries that fail validation.
    pub invalid: Vec<InvalidEntry>,
}

/// Builds the report of a decrypted export.
pub fn inspect(plain: &Plaintext) -> Result<Report> {
    let raw = entries::split(plain.as_bytes())?;
    let sessions = entries::parse_all(&raw);
    let mut rooms: HashMap<&str, usize> = HashMap::new();
    let mut copies: HashMap<(&str, &str), Vec<u32>> = HashMap::with_capacity(sessions.len());
    let mut order: Vec<(&str, &str)> = Vec::new();
    let mut invalid = Vec::new();
    for (i, s) in sessions.iter().enumerate() {
        *rooms.entry(&s.room_id).or_default() += 1;
        let e = copies.entry((&s.room_id, &s.session_id)).or_default();
        if e.len() == 1 {
            order.push((&s.room_id, &s.session_id));
        }
        e.push(s.first_known_index);
        invalid.extend(InvalidEntry::of(i, s));
    }
    let mut rooms: Vec<RoomCount> = rooms
        .into_iter()
        .map(|(room_id, sessions)| RoomCount {
            room_id: room_id.to_owned(),
            sessions,
        })
        .collect();
    rooms.sort_by(|a, b| {
        b.sessions
            .cmp(&a.sessions)
            .then_with(|| a.room_id.cmp(&b.room_id))
    });
    let duplicates = order
        .into_iter()
        .map(|k| Duplicate {
            room_id: k.0.to_owned(),
            session_id: k.1.to_owned(),
            first_known_indexes: copies[&k].clone(),
        })
        .collect();
    Ok(Report {
        rounds: plain.header().rounds,
        producer_hint: plain.layout().producer_hint(),
        layout: plain.layout().clone(),
        json_bytes: plain.as_bytes().len(),
        sessions: sessions.len(),
        distinct_sessions: copies.len(),
        rooms,
        duplicates,
        invalid,
    })
}
