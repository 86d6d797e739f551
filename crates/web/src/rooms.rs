//! The rooms screen's facts: every room of the old account (as `move init` lists them),
//! with what it needs from the new account's side: its blockers and their advice, decided
//! as the planner decides them.

use std::collections::HashSet;

use migrate::rooms::facts::Power;
use migrate::rooms::invite_rules::InviteRules;
use migrate::rooms::list::{self, ListedRoom, RoomList};
use migrate::rooms::plan;
use migrate::Events;
use online::Session;

/// One room as the screen shows it.
#[derive(Debug, Clone)]
pub struct Row {
    /// The room ID.
    pub room_id: String,
    /// Its name, else "DM with …", else none.
    pub name: Option<String>,
    /// "space", "DM", "room".
    pub kind: &'static str,
    /// The DM peer.
    pub dm_with: Option<String>,
    /// Encrypted.
    pub encrypted: bool,
    /// The old account's power, in words.
    pub power: String,
    /// What the new account will be able to read.
    pub history: String,
    /// What stops it, each with what to do.
    pub blockers: Vec<(String, String)>,
    /// What the person should know.
    pub notes: Vec<String>,
    /// Listed under a space.
    pub depth: usize,
}

/// The old account's rooms, read.
#[derive(Debug, Clone)]
pub struct Listing {
    /// The list, as the rooms file is written from it.
    pub list: RoomList,
    /// Each room's row, in the list's order.
    pub rows: Vec<Row>,
}

/// Reads every room of `old` and decides what each needs for `new`.
pub fn read(old: &Session, new: &Session, events: &dyn Events) -> migrate::Result<Listing> {
    let list = list::list(old, events)?;
    let new_joined: HashSet<String> = online::rooms::joined_rooms(new.client())?
        .into_iter()
        .collect();
    let rules = InviteRules::read(new.client(), new.user_id(), old.user_id())?;
    let all: HashSet<String> = list.rooms.iter().map(|r| r.facts.room_id.clone()).collect();
    let rows = list
        .rooms
        .iter()
        .map(|r| row(r, old.user_id(), new.user_id(), &new_joined, &all, &rules))
        .collect();
    Ok(Listing { list, rows })
}

fn row(
    r: &ListedRoom,
    old: &str,
    new: &str,
    new_joined: &HashSet<String>,
    moving: &HashSet<String>,
    rules: &InviteRules,
) -> Row {
    let f = &r.facts;
    let mut decision = plan::decide(f, old, new, new_joined);
    plan::restricted(f, &mut decision, new_joined, moving);
    rules.apply(&mut decision, old, new);
    Row {
        room_id: f.room_id.clone(),
        name: plan::display_name(f.name.as_deref(), r.dm_with.as_deref()),
        kind: match (f.is_space, &r.dm_with) {
            (true, _) => "space",
            (false, Some(_)) => "DM",
            (false, None) => "room",
        },
        dm_with: r.dm_with.clone(),
        encrypted: f.encrypted,
        power: match r.power {
            Power::Creator => format!("{} (creator)", r.level),
            Power::Level(l) => l.to_string(),
        },
        history: r.history.verdict(),
        blockers: decision.by_hand(new),
        notes: decision.notes,
        depth: r.depth,
    }
}

/// The list kept to `chosen`, in its order (the rooms file is written from it).
pub fn chosen(list: &RoomList, chosen: &HashSet<String>) -> RoomList {
    RoomList {
        user_id: list.user_id.clone(),
        rooms: list
            .rooms
            .iter()
            .filter(|r| chosen.contains(&r.facts.room_id))
            .cloned()
            .collect(),
        unreadable: list.unreadable.clone(),
    }
}
