//! The old account's rooms, read for the rooms file ([`super::rooms_file`]): what each is,
//! grouped under its spaces, and the rooms that could not be read.

use std::collections::{BTreeMap, HashSet};

use online::rooms;
use online::Session;
use serde::Serialize;

use super::facts::{Power, RoomFacts};
use super::history::History;
use super::plan::{dm_peer, read_room};
use crate::error::Result;
use crate::events::{stage, Event, Events, Stage};

/// One room of the list.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ListedRoom {
    /// The facts.
    pub facts: RoomFacts,
    /// The old account's power.
    pub power: Power,
    /// The level standing for it (a creator's: the highest in the room).
    pub level: i64,
    /// The DM peer, when the room is in the account's m.direct.
    pub dm_with: Option<String>,
    /// What a new member will be able to read.
    pub history: History,
    /// How deep under spaces it is listed (0: top level).
    pub depth: usize,
}

/// The account's rooms.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RoomList {
    /// Whose.
    pub user_id: String,
    /// Spaces first, each followed by its rooms, then the others.
    pub rooms: Vec<ListedRoom>,
    /// Rooms that could not be read (listed as comments: they do not move unless the user
    /// puts them in by hand), each with why.
    pub unreadable: Vec<Unreadable>,
}

/// A room the list could not read.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Unreadable {
    /// What the server gave as its ID.
    pub room_id: matrix_ids::text::Untrusted,
    /// Why it could not be read.
    pub why: String,
}

/// Lists every room the session's account is joined to.
pub fn list(old: &Session, events: &dyn Events) -> Result<RoomList> {
    let client = old.client();
    let joined = rooms::joined_rooms(client)?;
    let direct = online::direct::download(client, old.user_id())?;
    let total = joined.len() as u64;
    let mut read: BTreeMap<String, ListedRoom> = BTreeMap::new();
    let mut unreadable = Vec::new();
    stage(events, Stage::ReadRooms, Some(total), || {
        for (i, room) in joined.iter().enumerate() {
            events.emit(Event::Progress {
                stage: Stage::ReadRooms,
                done: i as u64 + 1,
                total,
            });
            match listed(old, &direct, room)? {
                Ok(listed) => {
                    read.insert(room.clone(), listed);
                }
                Err(why) => unreadable.push(Unreadable {
                    room_id: room.as_str().into(),
                    why,
                }),
            }
        }
        Ok::<_, crate::Error>(())
    })?;
    Ok(RoomList {
        user_id: old.user_id().to_owned(),
        rooms: grouped(read),
        unreadable,
    })
}

/// One room read for the list, or why it cannot be (a stop ends the whole list).
fn listed(
    old: &Session,
    direct: &m_direct::DirectMap,
    room: &str,
) -> Result<std::result::Result<ListedRoom, String>> {
    if !matrix_ids::is_room_id(room) {
        return Ok(Err("the server gave something that is not a room ID".into()));
    }
    let (facts, history) = match read_room(old.client(), room) {
        Ok(read) => read,
        Err(crate::Error::Online(e @ online::Error::Cancelled { .. })) => return Err(e.into()),
        Err(e) => return Ok(Err(e.to_string())),
    };
    let power = facts.power_of(old.user_id());
    let level = match power {
        Power::Creator => facts.highest_level(),
        Power::Level(l) => l,
    };
    Ok(Ok(ListedRoom {
        dm_with: dm_peer(direct, room, old.user_id()),
        facts,
        power,
        level,
        history,
        depth: 0,
    }))
}

/// Moves room `id` from `read` to `out` at `depth`, then its children below it.
fn visit(
    id: &str,
    depth: usize,
    read: &mut BTreeMap<String, ListedRoom>,
    children_of: &BTreeMap<String, Vec<String>>,
    out: &mut Vec<ListedRoom>,
) {
    let Some(mut room) = read.remove(id) else {
        return;
    };
    room.depth = depth;
    out.push(room);
    for child in children_of.get(id).into_iter().flatten() {
        visit(child, depth + 1, read, children_of, out);
    }
}

/// Spaces (those not inside another listed space) each followed by their rooms, depth
/// first; then every room not in a listed space. Each room appears once.
fn grouped(mut read: BTreeMap<String, ListedRoom>) -> Vec<ListedRoom> {
    let children_of: BTreeMap<String, Vec<String>> = read
        .values()
        .filter(|r| r.facts.is_space)
        .map(|r| (r.facts.room_id.clone(), r.facts.children.clone()))
        .collect();
    let nested: HashSet<&String> = children_of.values().flatten().collect();
    let tops: Vec<String> = children_of
        .keys()
        .filter(|s| !nested.contains(s))
        .cloned()
        .collect();
    let mut out = Vec::new();
    for top in tops {
        visit(&top, 0, &mut read, &children_of, &mut out);
    }
    // Spaces in a cycle of spaces, then plain rooms.
    let rest: Vec<String> = read.keys().cloned().collect();
    for id in rest {
        visit(&id, 0, &mut read, &children_of, &mut out);
    }
    out
}
