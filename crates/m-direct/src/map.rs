//! The `m.direct` content as a typed, order-keeping map.

use indexmap::IndexMap;
use serde_json::{Map, Value};

/// One key of the map and what it holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Rooms {
    /// The normal case: a list. Items that are not strings are kept as they are.
    List(Vec<Value>),
    /// Anything else found under the key (kept as is unless cleaned).
    Other(Value),
}

impl Rooms {
    /// The string items of a list (the room IDs a client would use).
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        let items: &[Value] = match self {
            Rooms::List(v) => v,
            Rooms::Other(_) => &[],
        };
        items.iter().filter_map(Value::as_str)
    }
}

/// `m.direct` content: user identifier → rooms, in the order found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DirectMap {
    entries: IndexMap<String, Rooms>,
}

/// The input is not `m.direct` content.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Not JSON at all.
    #[error("not JSON: {0} (paste the content of the m.direct event, or the whole event, from Element's /devtools → Explore account data)")]
    Json(#[from] serde_json::Error),
    /// JSON, but not an object (or an event whose content is not one).
    #[error("not m.direct content: expected a JSON object mapping user IDs to lists of room IDs, found {0}")]
    NotAnObject(&'static str),
    /// A whole event of another type.
    #[error("this is a {0:?} event, not m.direct")]
    WrongEventType(String),
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl DirectMap {
    /// Parses the bare content (`{"@a:x": ["!r"]}`) or a whole event as Element's devtools
    /// shows it (`{"type": "m.direct", "content": {...}}`).
    pub fn parse(json: &str) -> Result<Self, ParseError> {
        let value: Value = serde_json::from_str(json)?;
        Self::from_value(value)
    }

    /// As [`DirectMap::parse`], from a parsed value.
    pub fn from_value(value: Value) -> Result<Self, ParseError> {
        let Value::Object(mut obj) = value else {
            return Err(ParseError::NotAnObject(kind(&value)));
        };
        let is_event = obj.get("content").is_some_and(Value::is_object)
            && obj.get("type").is_some_and(Value::is_string);
        if is_event {
            let ty = obj["type"].as_str().unwrap_or_default().to_owned();
            if ty != "m.direct" {
                return Err(ParseError::WrongEventType(ty));
            }
            let Some(Value::Object(content)) = obj.remove("content") else {
                unreachable!("checked above")
            };
            obj = content;
        }
        Ok(DirectMap::from_object(obj))
    }

    fn from_object(obj: Map<String, Value>) -> Self {
        let entries = obj
            .into_iter()
            .map(|(k, v)| {
                let rooms = match v {
                    Value::Array(items) => Rooms::List(items),
                    other => Rooms::Other(other),
                };
                (k, rooms)
            })
            .collect();
        DirectMap { entries }
    }

    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Entries in order.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = (&String, &Rooms)> + '_ {
        self.entries.iter()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no keys.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// What is stored under `key`.
    pub fn get(&self, key: &str) -> Option<&Rooms> {
        self.entries.get(key)
    }

    /// Adds `room` to `key`'s list (creating it) unless it is already there.
    pub fn add(&mut self, key: &str, room: &str) {
        let value = Value::String(room.to_owned());
        match self.entries.get_mut(key) {
            Some(Rooms::List(items)) => {
                if !items.contains(&value) {
                    items.push(value);
                }
            }
            Some(slot @ Rooms::Other(_)) => *slot = Rooms::List(vec![value]),
            None => {
                self.entries
                    .insert(key.to_owned(), Rooms::List(vec![value]));
            }
        }
    }

    /// Appends `items` to `key`'s list, creating it (the caller ensures they are new; a
    /// value that is not a list is replaced).
    pub(crate) fn extend_list(&mut self, key: &str, items: impl IntoIterator<Item = Value>) {
        let slot = self
            .entries
            .entry(key.to_owned())
            .or_insert_with(|| Rooms::List(Vec::new()));
        if let Rooms::Other(_) = slot {
            *slot = Rooms::List(Vec::new());
        }
        if let Rooms::List(list) = slot {
            list.extend(items);
        }
    }

    /// Sets `key` to `rooms` (appending the key if new).
    pub fn set(&mut self, key: &str, rooms: Rooms) {
        self.entries.insert(key.to_owned(), rooms);
    }

    /// Sorts the keys (for deterministic output); room order is kept.
    pub fn sort_keys(&mut self) {
        self.entries.sort_keys();
    }

    /// The content as JSON.
    pub fn to_value(&self) -> Value {
        let mut obj = Map::new();
        for (k, r) in &self.entries {
            let v = match r {
                Rooms::List(items) => Value::Array(items.clone()),
                Rooms::Other(v) => v.clone(),
            };
            obj.insert(k.clone(), v);
        }
        Value::Object(obj)
    }

    /// Pretty-printed content, as Element's devtools "Send custom account data event" takes it.
    pub fn to_pretty_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(&self.to_value()).expect("JSON values serialise");
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_content_and_whole_events() {
        let bare = DirectMap::parse(r#"{"@b:x": ["!2"], "@a:x": ["!1", 5]}"#).unwrap();
        assert_eq!(bare.entries().next().unwrap().0, "@b:x", "order kept");
        assert_eq!(bare.get("@a:x").unwrap().ids().collect::<Vec<_>>(), ["!1"]);
        let event = DirectMap::parse(
            r#"{"type": "m.direct", "content": {"@b:x": ["!2"], "@a:x": ["!1", 5]}}"#,
        )
        .unwrap();
        assert_eq!(event, bare);
        assert!(
            matches!(DirectMap::parse(r#"{"type": "m.push_rules", "content": {}}"#), Err(ParseError::WrongEventType(t)) if t == "m.push_rules")
        );
        assert!(matches!(
            DirectMap::parse("[1]"),
            Err(ParseError::NotAnObject("an array"))
        ));
        assert!(matches!(DirectMap::parse("{"), Err(ParseError::Json(_))));
    }

    #[test]
    fn junk_survives_a_round_trip() {
        let text = r#"{"@a:x":"not a list","mail@example.org":["!1"],"@b:x":[null,"!2"]}"#;
        let m = DirectMap::parse(text).unwrap();
        assert_eq!(m.to_value(), serde_json::from_str::<Value>(text).unwrap());
    }

    /// Found by the `m_direct` fuzz target: a number another client left in place of a
    /// list came back as a different number once written and read again (serde_json's fast
    /// float parser is not exact; the workspace turns on `float_roundtrip`).
    #[test]
    fn numbers_in_junk_survive_a_round_trip_exactly() {
        let found = r#"{"@seeDgrienmple.org": null, "@m": null, "@me:org": 674407333333333333333333333333333333333333333333333333333333333333333333333333333709}"#;
        let m = DirectMap::parse(found).unwrap();
        let again = DirectMap::parse(&m.to_pretty_json()).unwrap();
        assert_eq!(again, m);
    }
}
