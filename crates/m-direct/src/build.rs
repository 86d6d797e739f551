//! The new account's `m.direct`, rebuilt from the old account's and the rooms that move.
//!
//! For a migrated DM the right entry is the peer → the room: the other member, never the
//! old account nor the new one (a self entry makes Element re-guess the peer).

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use crate::ids::{key_kind, KeyKind};
use crate::map::{DirectMap, Rooms};

/// Who is moving.
#[derive(Debug, Clone)]
pub struct Accounts {
    /// The old account's user ID.
    pub old: String,
    /// The new account's user ID.
    pub new: String,
}

/// What the build found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct BuildReport {
    /// Moving rooms that are DMs (appear in the result).
    pub dm_rooms: usize,
    /// Entries written (peer, room) pairs.
    pub entries: usize,
    /// Moving rooms listed under more than one peer: kept under each.
    pub ambiguous: Vec<Ambiguous>,
    /// (key, room) pairs under the old or new account itself: never emitted.
    pub self_entries: Vec<(String, String)>,
    /// 3PID keys (e.g. email invites) emitted as they were.
    pub third_party: Vec<String>,
    /// Keys that are neither user IDs nor 3PIDs, with moving rooms: emitted as they were.
    pub odd_keys: Vec<String>,
    /// Keys whose value is not a list: ignored.
    pub not_lists: Vec<String>,
}

/// A room under several peers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Ambiguous {
    /// The room.
    pub room: String,
    /// The peers it is listed under, in order.
    pub peers: Vec<String>,
}

/// Builds the new account's map: every moving room under the peer(s) the old account had
/// for it. Keys come out sorted; rooms keep the old order.
pub fn build(
    old: &DirectMap,
    moving: &HashSet<String>,
    accounts: &Accounts,
) -> (DirectMap, BuildReport) {
    let mut out = DirectMap::new();
    let mut report = BuildReport::default();
    let mut peers_of: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (key, rooms) in old.entries() {
        if let Rooms::Other(_) = rooms {
            report.not_lists.push(key.clone());
            continue;
        }
        let is_self = key == &accounts.old || key == &accounts.new;
        let mut used = false;
        for room in rooms.ids().filter(|r| moving.contains(*r)) {
            if is_self {
                report.self_entries.push((key.clone(), room.to_owned()));
                continue;
            }
            out.add(key, room);
            used = true;
            let peers = peers_of.entry(room).or_default();
            if !peers.contains(&key.as_str()) {
                peers.push(key);
            }
        }
        if used {
            match key_kind(key) {
                KeyKind::User => {}
                KeyKind::ThreePid => report.third_party.push(key.clone()),
                KeyKind::Invalid => report.odd_keys.push(key.clone()),
            }
        }
    }
    out.sort_keys();
    report.dm_rooms = peers_of.len();
    report.entries = out.entries().map(|(_, r)| r.ids().count()).sum();
    report.ambiguous = peers_of
        .into_iter()
        .filter(|(_, p)| p.len() > 1)
        .map(|(room, peers)| Ambiguous {
            room: room.to_owned(),
            peers: peers.into_iter().map(str::to_owned).collect(),
        })
        .collect();
    (out, report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_peer_to_room_for_moving_dms_only() {
        let old = DirectMap::parse(
            r#"{
                "@carol:example.org": ["!work-dm:corp.example", "!book-club-dm:example.org"],
                "@alice:corp.example": ["!self-notes"],
                "@dave:example.org": ["!GmZ1jXGQ9OYb0Sy4sZ0I2mG", "!book-club-dm:example.org"],
                "eve@example.org": ["!invite-dm:example.org"],
                "@junk:example.org": "oops"
            }"#,
        )
        .unwrap();
        let moving: HashSet<String> = [
            "!book-club-dm:example.org",
            "!GmZ1jXGQ9OYb0Sy4sZ0I2mG",
            "!self-notes",
            "!invite-dm:example.org",
            "!group:example.org",
        ]
        .map(String::from)
        .into();
        let accounts = Accounts {
            old: "@alice:corp.example".into(),
            new: "@alice:example.org".into(),
        };
        let (new, report) = build(&old, &moving, &accounts);
        assert_eq!(
            new.to_value(),
            serde_json::json!({
                "@carol:example.org": ["!book-club-dm:example.org"],
                "@dave:example.org": ["!GmZ1jXGQ9OYb0Sy4sZ0I2mG", "!book-club-dm:example.org"],
                "eve@example.org": ["!invite-dm:example.org"]
            })
        );
        let keys: Vec<&str> = new.entries().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["@carol:example.org", "@dave:example.org", "eve@example.org"],
            "sorted"
        );
        assert_eq!(report.dm_rooms, 3);
        assert_eq!(report.entries, 4);
        assert_eq!(
            report.ambiguous,
            [Ambiguous {
                room: "!book-club-dm:example.org".into(),
                peers: vec!["@carol:example.org".into(), "@dave:example.org".into()]
            }]
        );
        assert_eq!(
            report.self_entries,
            [("@alice:corp.example".to_owned(), "!self-notes".to_owned())]
        );
        assert_eq!(report.third_party, ["eve@example.org"]);
        assert_eq!(report.not_lists, ["@junk:example.org"]);
    }
}
