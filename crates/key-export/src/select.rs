//! Which rooms move: a set of room IDs, optionally inverted.
//!
//! Room IDs are compared as opaque strings. Room version 12 IDs have no `:server` part,
//! so no server is ever parsed out of one.

use std::collections::HashSet;

use serde::Deserialize;

use crate::session::is_room_id;

/// A room ID that is not well formed, located in its source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name} line {line}: {value:?} is not a room ID (room IDs start with '!', e.g. !abc:example.org)")]
pub struct BadRoomId {
    /// Where the list came from (a file name, or "--room").
    pub source_name: String,
    /// 1-based line (or argument position).
    pub line: usize,
    /// The offending text.
    pub value: String,
}

/// A set of rooms, or everything but a set of rooms.
#[derive(Debug, Clone, Default)]
pub struct RoomSelection {
    rooms: Vec<String>,
    set: HashSet<String>,
    exclude: bool,
    everything: bool,
}

impl RoomSelection {
    /// Every room.
    pub fn everything() -> Self {
        RoomSelection {
            everything: true,
            ..Default::default()
        }
    }

    /// The given rooms (or, with `exclude`, every room but them). An empty list without
    /// `exclude` selects nothing.
    pub fn new(rooms: Vec<String>, exclude: bool) -> Self {
        let set = rooms.iter().cloned().collect();
        RoomSelection {
            rooms,
            set,
            exclude,
            everything: false,
        }
    }

    /// True when keys of `room_id` are kept.
    pub fn matches(&self, room_id: &str) -> bool {
        self.everything || (self.set.contains(room_id) != self.exclude)
    }

    /// The rooms of an including selection, without repeats, in the order given (`None`
    /// for every room, or every room but some).
    pub fn listed(&self) -> Option<Vec<String>> {
        if self.everything || self.exclude {
            return None;
        }
        let mut seen = HashSet::new();
        Some(
            self.rooms
                .iter()
                .filter(|r| seen.insert(r.as_str()))
                .cloned()
                .collect(),
        )
    }

    /// Rooms named in an including selection (in the order given, without repeats) that
    /// are not in `present`: they had no keys.
    pub fn missing<'a>(&'a self, present: &HashSet<&str>) -> Vec<&'a str> {
        if self.everything || self.exclude {
            return Vec::new();
        }
        let mut seen = HashSet::new();
        self.rooms
            .iter()
            .filter(|r| seen.insert(r.as_str()) && !present.contains(r.as_str()))
            .map(String::as_str)
            .collect()
    }
}

/// Checks room IDs given one per argument; `source_name` names them in errors (the
/// position counts as the line).
pub fn parse_room_args(args: &[String], source_name: &str) -> Result<Vec<String>, BadRoomId> {
    args.iter()
        .enumerate()
        .map(|(i, r)| check(r.trim(), source_name, i + 1))
        .collect()
}

/// Reads a rooms file. Accepted forms:
/// - text: one room ID per line, `#` comments, blank lines;
/// - JSON: an array of room IDs, or `keys inspect --json` output (its `rooms`).
pub fn parse_rooms_file(text: &str, source_name: &str) -> Result<Vec<String>, BadRoomId> {
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('[') || trimmed.starts_with('{') {
        return parse_json(trimmed, source_name);
    }
    let mut rooms = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let content = line.split('#').next().unwrap_or("").trim();
        let content = content.trim_start_matches('\u{feff}');
        if content.is_empty() {
            continue;
        }
        rooms.push(check(content, source_name, i + 1)?);
    }
    Ok(rooms)
}

#[derive(Deserialize)]
#[serde(untagged)]
enum JsonRooms {
    List(Vec<String>),
    Report { rooms: Vec<RoomEntry> },
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RoomEntry {
    Id(String),
    Counted { room_id: String },
}

fn parse_json(text: &str, source_name: &str) -> Result<Vec<String>, BadRoomId> {
    let parsed: JsonRooms = serde_json::from_str(text).map_err(|e| BadRoomId {
        source_name: source_name.to_owned(),
        line: e.line(),
        value: "JSON that is neither a list of room IDs nor an inspect report (an object with a `rooms` list)".into(),
    })?;
    let rooms = match parsed {
        JsonRooms::List(v) => v,
        JsonRooms::Report { rooms } => rooms
            .into_iter()
            .map(|r| match r {
                RoomEntry::Id(s) | RoomEntry::Counted { room_id: s } => s,
            })
            .collect(),
    };
    rooms
        .into_iter()
        .enumerate()
        .map(|(i, r)| check(&r, source_name, i + 1))
        .collect()
}

fn check(value: &str, source_name: &str, line: usize) -> Result<String, BadRoomId> {
    if is_room_id(value) {
        Ok(value.to_owned())
    } else {
        Err(BadRoomId {
            source_name: source_name.to_owned(),
            line,
            value: value.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_files_with_comments_blank_lines_and_v12_ids() {
        let text =
            "# moving\n!a:example.org\n\n  !GmZ1jXGQ9OYb0Sy4sZ0I2mG-9cxNtZx4ZI2Gw3hvzBs  # v12\r\n";
        let rooms = parse_rooms_file(text, "rooms.txt").unwrap();
        assert_eq!(
            rooms,
            [
                "!a:example.org",
                "!GmZ1jXGQ9OYb0Sy4sZ0I2mG-9cxNtZx4ZI2Gw3hvzBs"
            ]
        );
        let err = parse_rooms_file("!a:x\n#c\n#alias:example.org\nroom\n", "f").unwrap_err();
        assert_eq!((err.line, err.value.as_str()), (4, "room"));
        let err = parse_rooms_file("!a:x\n!b c\n", "f").unwrap_err();
        assert_eq!(err.line, 2);
    }

    #[test]
    fn json_lists_and_inspect_reports() {
        assert_eq!(
            parse_rooms_file("[\"!a\", \"!b:x\"]", "f").unwrap(),
            ["!a", "!b:x"]
        );
        let report = r#"{"rounds": 10, "rooms": [{"room_id": "!a:x", "sessions": 3}]}"#;
        assert_eq!(parse_rooms_file(report, "f").unwrap(), ["!a:x"]);
        assert!(parse_rooms_file("[\"a\"]", "f").is_err());
        assert!(parse_rooms_file("{\"x\": 1}", "f").is_err());
    }

    #[test]
    fn selection_include_exclude_and_missing() {
        let s = RoomSelection::new(vec!["!a".into(), "!b".into(), "!a".into()], false);
        assert!(s.matches("!a") && !s.matches("!c"));
        assert_eq!(s.missing(&HashSet::from(["!a"])), ["!b"]);
        let x = RoomSelection::new(vec!["!a".into()], true);
        assert!(!x.matches("!a") && x.matches("!c"));
        assert!(RoomSelection::everything().matches("!anything"));
        assert_eq!(
            parse_room_args(&["!a".into(), "b".into()], "--room")
                .unwrap_err()
                .line,
            2
        );
    }
}
