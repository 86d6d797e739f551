//! Which rooms move: a set of room IDs, optionally inverted.
//!
//! Room IDs are compared as opaque strings. Room version 12 IDs have no `:server` part,
//! so no server is ever parsed out of one.

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::session::is_room_id;

/// A list of rooms that cannot be read, located in its source: a room ID that is not well
/// formed, or JSON that is not a list of rooms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name} line {line}: {problem}")]
pub struct BadRoomId {
    /// Where the list came from (a file name, or "--room").
    pub source_name: String,
    /// 1-based line of the file, never past its last (or argument position).
    pub line: usize,
    /// What is wrong there.
    pub problem: RoomsProblem,
}

/// What is wrong at a line of a list of rooms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoomsProblem {
    /// Text that is not a room ID (shown escaped).
    #[error("{0:?} is not a room ID (room IDs start with '!', e.g. !abc:example.org)")]
    NotARoomId(String),
    /// A file that starts like JSON (`[` or `{`) and is not a list of rooms.
    #[error(
        "the file starts like JSON but {0} (expected a list of room IDs, or an inspect \
         report: an object with a `rooms` list)"
    )]
    NotRoomsJson(&'static str),
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

    /// Whether every room is selected (nothing to read an entry's room for).
    pub fn takes_all(&self) -> bool {
        self.everything || (self.exclude && self.rooms.is_empty())
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
/// - text: one room ID per line, `#` comments (at the start of a line or after whitespace),
///   blank lines;
/// - JSON: an array of room IDs, or `keys inspect --json` output (its `rooms`).
pub fn parse_rooms_file(text: &str, source_name: &str) -> Result<Vec<String>, BadRoomId> {
    let body = text.trim_start_matches('\u{feff}');
    let trimmed = body.trim_start();
    if trimmed.starts_with('[') || trimmed.starts_with('{') {
        return parse_json(body, source_name);
    }
    let mut rooms = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let content = without_comment(line).trim();
        let content = content.trim_start_matches('\u{feff}');
        if content.is_empty() {
            continue;
        }
        rooms.push(check(content, source_name, i + 1)?);
    }
    Ok(rooms)
}

/// A text line without its comment: `#` starts one at the start of the line or after
/// whitespace (a room ID may hold a `#`: `!a#b:x  # note` is the room `!a#b:x`).
fn without_comment(line: &str) -> &str {
    let mut after_space = true;
    for (i, c) in line.char_indices() {
        if c == '#' && after_space {
            return &line[..i];
        }
        after_space = c.is_whitespace();
    }
    line
}

/// An inspect report: the rooms are its `rooms`, each an ID or an object with a `room_id`.
#[derive(Deserialize)]
struct Report<'a> {
    #[serde(borrow)]
    rooms: Vec<&'a RawValue>,
}

/// An entry of the report's `rooms` that is an object.
#[derive(Deserialize)]
struct Counted {
    room_id: String,
}

/// The JSON forms, each room located on the line where its entry starts. `text` is the
/// whole file but a leading byte-order mark, so JSON's lines are the file's.
fn parse_json(text: &str, source_name: &str) -> Result<Vec<String>, BadRoomId> {
    let entries = match text.trim_start().starts_with('[') {
        true => serde_json::from_str::<Vec<&RawValue>>(text),
        false => serde_json::from_str::<Report<'_>>(text).map(|r| r.rooms),
    }
    .map_err(|e| BadRoomId {
        source_name: source_name.to_owned(),
        // At the end of a file, serde_json counts the empty line after its last newline.
        line: e.line().clamp(1, text.lines().count().max(1)),
        problem: RoomsProblem::NotRoomsJson(match e.classify() {
            serde_json::error::Category::Eof => "ends before its JSON does",
            serde_json::error::Category::Syntax => "is not valid JSON",
            _ => "holds something else",
        }),
    })?;
    entries
        .into_iter()
        .map(|raw| {
            let line = line_at(text, raw.get());
            let counted = || match raw.get().starts_with('{') {
                true => serde_json::from_str::<Counted>(raw.get())
                    .map(|c| c.room_id)
                    .ok(),
                false => None,
            };
            let id = serde_json::from_str::<String>(raw.get())
                .ok()
                .or_else(counted)
                .ok_or(())
                .map_err(|_| BadRoomId {
                    source_name: source_name.to_owned(),
                    line,
                    problem: RoomsProblem::NotRoomsJson(
                        "has an entry that is neither a room ID nor an object with a `room_id`",
                    ),
                })?;
            check(&id, source_name, line)
        })
        .collect()
}

/// The 1-based line of `text` on which `part`, a slice of it, starts.
fn line_at(text: &str, part: &str) -> usize {
    let offset = (part.as_ptr() as usize).saturating_sub(text.as_ptr() as usize);
    1 + text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

fn check(value: &str, source_name: &str, line: usize) -> Result<String, BadRoomId> {
    if is_room_id(value) {
        Ok(value.to_owned())
    } else {
        Err(BadRoomId {
            source_name: source_name.to_owned(),
            line,
            problem: RoomsProblem::NotARoomId(value.to_owned()),
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
        assert_eq!(
            (err.line, err.problem),
            (4, RoomsProblem::NotARoomId("room".into()))
        );
        let err = parse_rooms_file("!a:x\n!b c\n", "f").unwrap_err();
        assert_eq!(err.line, 2);
    }

    /// Found by the `rooms_file` fuzz target: a room ID holding a `#` was cut at it, so a
    /// rooms file did not read back as the rooms it was written from; and a list inside the
    /// report's `rooms` was taken for an object with a `room_id`.
    #[test]
    fn a_hash_inside_a_room_id_is_not_a_comment() {
        let text = "!a#b:x  # note\n  !c:x#y\n#!d:x\n!e:x\t#x\n";
        assert_eq!(
            parse_rooms_file(text, "f").unwrap(),
            ["!a#b:x", "!c:x#y", "!e:x"]
        );
        assert!(parse_rooms_file(r#"{"rooms": [["!a:x"]]}"#, "f").is_err());
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

    /// Found by the `rooms_file` fuzz target: the line of a JSON file's error is the file's
    /// line (blank lines and a byte-order mark before the JSON counted, an entry's own line
    /// rather than its position in the list, never past the last line).
    #[test]
    fn json_errors_name_the_files_own_line() {
        let bad_entry = "\u{feff}\n\n[\"!a:x\",\n \"!b:x\",\n \"nope\"]\n";
        let err = parse_rooms_file(bad_entry, "f").unwrap_err();
        assert_eq!(
            (err.line, err.problem),
            (5, RoomsProblem::NotARoomId("nope".into()))
        );
        let err = parse_rooms_file("[\n", "f").unwrap_err();
        assert_eq!(
            (err.line, err.problem),
            (1, RoomsProblem::NotRoomsJson("ends before its JSON does"))
        );
        let report = "{\"rooms\": [\n{\"room_id\": \"!a:x\"},\n{\"sessions\": 3}]}";
        let err = parse_rooms_file(report, "f").unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.to_string().contains("neither a room ID nor an object"));
        let err = parse_rooms_file("\n\n{\"rooms\": 3}", "f").unwrap_err();
        assert_eq!(err.line, 3);
    }

    #[test]
    fn selection_include_exclude_and_missing() {
        let s = RoomSelection::new(vec!["!a".into(), "!b".into(), "!a".into()], false);
        assert!(s.matches("!a") && !s.matches("!c"));
        assert_eq!(s.missing(&HashSet::from(["!a"])), ["!b"]);
        let x = RoomSelection::new(vec!["!a".into()], true);
        assert!(!x.matches("!a") && x.matches("!c"));
        assert!(RoomSelection::everything().matches("!anything"));
        assert!(RoomSelection::everything().takes_all());
        assert!(RoomSelection::new(Vec::new(), true).takes_all());
        assert!(!RoomSelection::new(vec!["!a".into()], true).takes_all());
        assert!(!RoomSelection::new(vec!["!a".into()], false).takes_all());
        assert!(!RoomSelection::new(Vec::new(), false).takes_all());
        assert_eq!(
            parse_room_args(&["!a".into(), "b".into()], "--room")
                .unwrap_err()
                .line,
            2
        );
    }
}
