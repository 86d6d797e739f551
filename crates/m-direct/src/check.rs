//! What is wrong with an `m.direct` map, and a cleaned copy.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::ids::{is_local_echo, is_room_id, key_kind, KeyKind};
use crate::map::{DirectMap, Rooms};

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Finding {
    /// A key that is neither a user ID nor a 3PID. Fixed by dropping the key.
    InvalidUserId {
        /// The key.
        key: String,
    },
    /// A 3PID key (e.g. an email invited to a DM): valid, kept, reported.
    ThirdParty {
        /// The key.
        key: String,
    },
    /// The value is not a list. Fixed by dropping the key.
    NotAList {
        /// The key.
        key: String,
    },
    /// A list item that is not a room ID string. Fixed by dropping the item.
    NotARoomId {
        /// The key.
        key: String,
        /// The item, as JSON.
        item: String,
    },
    /// The same room twice in one list. Fixed by keeping the first.
    DuplicateRoom {
        /// The key.
        key: String,
        /// The room.
        room: String,
    },
    /// A `!local.` echo room that never existed on the server. Fixed by dropping it.
    LocalEcho {
        /// The key.
        key: String,
        /// The room.
        room: String,
    },
    /// The account's own ID as a key (Element then re-guesses the peer). Fixed by dropping it.
    SelfEntry {
        /// The key.
        key: String,
    },
    /// A room under more than one key: a DM has one peer, so one is probably stale. Not
    /// fixed automatically (only the user knows which).
    RoomUnderSeveralUsers {
        /// The room.
        room: String,
        /// The keys.
        users: Vec<String>,
    },
    /// A key whose list is empty (after cleaning). Fixed by dropping the key.
    EmptyList {
        /// The key.
        key: String,
    },
}

impl Finding {
    /// True when `--fix` changes something for it.
    pub fn is_fixable(&self) -> bool {
        !matches!(
            self,
            Finding::ThirdParty { .. } | Finding::RoomUnderSeveralUsers { .. }
        )
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::InvalidUserId { key } => write!(f, "{key:?} is not a user ID or 3PID (dropped when fixing)"),
            Finding::ThirdParty { key } => write!(f, "{key:?} is a third-party identifier (an invite by email): kept"),
            Finding::NotAList { key } => write!(f, "{key:?} holds something that is not a list of rooms (dropped when fixing)"),
            Finding::NotARoomId { key, item } => write!(f, "{key:?} lists {item}, not a room ID (dropped when fixing)"),
            Finding::DuplicateRoom { key, room } => write!(f, "{key:?} lists {room} more than once (deduplicated when fixing)"),
            Finding::LocalEcho { key, room } => write!(f, "{key:?} lists {room}, a local echo that never reached the server (dropped when fixing)"),
            Finding::SelfEntry { key } => write!(f, "{key:?} is the account itself: Element would re-guess the peer (dropped when fixing)"),
            Finding::RoomUnderSeveralUsers { room, users } => write!(f, "{room} is listed under {} users: {} (check which is the real peer)", users.len(), users.join(", ")),
            Finding::EmptyList { key } => write!(f, "{key:?} has no rooms (dropped when fixing)"),
        }
    }
}

/// Checks `map`; `own_id` is the account's user ID, when known. Returns the findings and
/// the cleaned map (every fixable finding fixed; keys sorted).
pub fn check(map: &DirectMap, own_id: Option<&str>) -> (Vec<Finding>, DirectMap) {
    let mut findings = Vec::new();
    let mut clean = DirectMap::new();
    let mut users_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, rooms) in map.entries() {
        let mut drop_key = false;
        match key_kind(key) {
            KeyKind::User => {}
            KeyKind::ThreePid => findings.push(Finding::ThirdParty { key: key.clone() }),
            KeyKind::Invalid => {
                findings.push(Finding::InvalidUserId { key: key.clone() });
                drop_key = true;
            }
        }
        if Some(key.as_str()) == own_id {
            findings.push(Finding::SelfEntry { key: key.clone() });
            drop_key = true;
        }
        let Rooms::List(items) = rooms else {
            findings.push(Finding::NotAList { key: key.clone() });
            continue;
        };
        let mut kept: Vec<Value> = Vec::new();
        for item in items {
            match item.as_str() {
                Some(room) if is_local_echo(room) => findings.push(Finding::LocalEcho {
                    key: key.clone(),
                    room: room.to_owned(),
                }),
                Some(room) if is_room_id(room) => {
                    if kept.contains(item) {
                        findings.push(Finding::DuplicateRoom {
                            key: key.clone(),
                            room: room.to_owned(),
                        });
                    } else {
                        kept.push(item.clone());
                        let users = users_of.entry(room.to_owned()).or_default();
                        if !users.contains(key) {
                            users.push(key.clone());
                        }
                    }
                }
                _ => findings.push(Finding::NotARoomId {
                    key: key.clone(),
                    item: item.to_string(),
                }),
            }
        }
        if kept.is_empty() {
            findings.push(Finding::EmptyList { key: key.clone() });
            drop_key = true;
        }
        if !drop_key {
            clean.set(key, Rooms::List(kept));
        }
    }
    for (room, users) in users_of {
        if users.len() > 1 {
            findings.push(Finding::RoomUnderSeveralUsers { room, users });
        }
    }
    clean.sort_keys();
    (findings, clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_and_fixes_the_junk_seen_in_the_wild() {
        let map = DirectMap::parse(
            r#"{
                "@me:example.org": ["!notes:example.org"],
                "@bob:example.org": ["!dm:example.org", "!dm:example.org", "!local.3f2a-77", 42],
                "bob@example.org": ["!invite:example.org"],
                "@carol:example.org": "oops",
                "carol": ["!x:example.org"],
                "@dan:example.org": ["!dm:example.org"],
                "@erin:example.org": []
            }"#,
        )
        .unwrap();
        let (findings, clean) = check(&map, Some("@me:example.org"));
        use Finding::*;
        assert_eq!(
            findings,
            [
                SelfEntry {
                    key: "@me:example.org".into()
                },
                DuplicateRoom {
                    key: "@bob:example.org".into(),
                    room: "!dm:example.org".into()
                },
                LocalEcho {
                    key: "@bob:example.org".into(),
                    room: "!local.3f2a-77".into()
                },
                NotARoomId {
                    key: "@bob:example.org".into(),
                    item: "42".into()
                },
                ThirdParty {
                    key: "bob@example.org".into()
                },
                NotAList {
                    key: "@carol:example.org".into()
                },
                InvalidUserId {
                    key: "carol".into()
                },
                EmptyList {
                    key: "@erin:example.org".into()
                },
                RoomUnderSeveralUsers {
                    room: "!dm:example.org".into(),
                    users: vec!["@bob:example.org".into(), "@dan:example.org".into()]
                },
            ]
        );
        assert_eq!(
            clean.to_value(),
            serde_json::json!({
                "@bob:example.org": ["!dm:example.org"],
                "@dan:example.org": ["!dm:example.org"],
                "bob@example.org": ["!invite:example.org"]
            })
        );
        let (again, _) = check(&clean, Some("@me:example.org"));
        assert!(
            again.iter().all(|f| !f.is_fixable()),
            "fixing is complete: {again:?}"
        );
    }
}
