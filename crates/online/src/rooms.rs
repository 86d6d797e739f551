//! Rooms, as a move needs them: the rooms an account is in, a room's current state, one
//! member's membership, invites, joins with `via`, leaves, state events, room tags, the
//! display name, and reading the timeline (history-visibility changes, single events).
//!
//! Every call is one request (waits and retries are the [`Client`]'s); deciding what to do
//! with the answers is the caller's.

pub use crate::membership::Membership;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::client::{parse_value, Body, Client, Method};
use crate::error::{Error, Result};
use crate::wire::found;

/// The rooms the account shares with `user`, both joined (`GET /v1/mutual_rooms`, spec
/// v1.19, MSC2666), every page read; `None` from a server that does not offer it.
pub fn mutual_rooms(client: &Client, user: &str) -> Result<Option<Vec<String>>> {
    #[derive(Deserialize)]
    struct Page {
        #[serde(default)]
        joined: Vec<String>,
        #[serde(default)]
        next_batch: Option<String>,
    }
    let mut rooms = Vec::new();
    let mut from: Option<String> = None;
    loop {
        let mut query = vec![("user_id", user)];
        if let Some(from) = &from {
            query.push(("from", from.as_str()));
        }
        let page: Page = match client.call_json(
            &format!("list the rooms shared with {user}"),
            Method::Get,
            &["v1", "mutual_rooms"],
            &query,
            Body::None,
            true,
        ) {
            Ok(p) => p,
            Err(e) if crate::wire::is_unsupported(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        rooms.extend(page.joined);
        match page.next_batch {
            // A server that hands back the token it was given would page forever.
            Some(next) if from.as_ref() != Some(&next) && rooms.len() < MAX_MUTUAL => {
                from = Some(next)
            }
            _ => return Ok(Some(rooms)),
        }
    }
}

/// More shared rooms than any account has: a server that keeps paging is stopped here.
const MAX_MUTUAL: usize = 100_000;

/// One state event of a room, as `GET /rooms/{id}/state` gives it.
#[derive(Debug, Clone, Deserialize)]
pub struct StateEvent {
    /// Its type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its state key.
    #[serde(default)]
    pub state_key: String,
    /// Who sent it.
    #[serde(default)]
    pub sender: String,
    /// Its content.
    #[serde(default)]
    pub content: Value,
    /// When it was sent (the sender's server's clock, milliseconds since 1970).
    #[serde(default)]
    pub origin_server_ts: u64,
    /// Its ID.
    #[serde(default)]
    pub event_id: String,
}

/// A timeline event (from `/messages` or `/event`).
#[derive(Debug, Clone, Deserialize)]
pub struct TimelineEvent {
    /// Its type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its ID.
    pub event_id: String,
    /// When it was sent.
    #[serde(default)]
    pub origin_server_ts: u64,
    /// Its content.
    #[serde(default)]
    pub content: Value,
    /// Its state key, when it is a state event.
    #[serde(default)]
    pub state_key: Option<String>,
    /// Who sent it.
    #[serde(default)]
    pub sender: String,
    /// What the server adds for the reader.
    #[serde(default)]
    pub unsigned: Unsigned,
}

/// The part of a timeline event the server adds for the account reading it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Unsigned {
    /// The reader's membership when the event was sent (`join`, `leave`, `invite`…;
    /// spec v1.11, MSC4115); `None` from a server that does not say.
    #[serde(default)]
    pub membership: Option<String>,
}

/// The rooms the account is joined to (`GET /joined_rooms`).
pub fn joined_rooms(client: &Client) -> Result<Vec<String>> {
    #[derive(Deserialize)]
    struct Joined {
        joined_rooms: Vec<String>,
    }
    let j: Joined = client.call_json(
        "list the rooms you are in",
        Method::Get,
        &["v3", "joined_rooms"],
        &[],
        Body::None,
        true,
    )?;
    Ok(j.joined_rooms)
}

/// The largest `/state` answer read: a room of some hundreds of thousands of members.
pub const MAX_STATE: usize = 256 << 20;

/// The room's whole current state (`GET /rooms/{id}/state`; the account must be in it, or
/// have been). Parsed as it arrives, so a room of many thousands of members (tens of MiB)
/// is read in little memory: of each member event only the membership is kept.
pub fn state(client: &Client, room: &str) -> Result<Vec<StateEvent>> {
    let what = format!("read the state of {room}");
    let reader = client.call_reader(&what, &["v3", "rooms", room, "state"], &[], MAX_STATE)?;
    parse_state(reader, &what)
}

/// Parses a `/state` answer as it is read (`what` names it in the error): of each member
/// event only the membership is kept.
pub fn parse_state(reader: impl std::io::Read, what: &str) -> Result<Vec<StateEvent>> {
    let mut de = serde_json::Deserializer::from_reader(std::io::BufReader::new(reader));
    serde::de::Deserializer::deserialize_seq(&mut de, CompactState)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| Error::BadResponse {
            what: what.to_owned(),
            reason: e.to_string(),
        })
}

/// Reads a state array, keeping of each member event only its membership.
struct CompactState;

impl<'de> serde::de::Visitor<'de> for CompactState {
    type Value = Vec<StateEvent>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of state events")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut events = Vec::new();
        while let Some(mut e) = seq.next_element::<StateEvent>()? {
            if e.kind == "m.room.member" {
                let membership = e.content.get("membership").cloned();
                e.content = match membership {
                    Some(m) => serde_json::json!({ "membership": m }),
                    None => Value::Object(Map::new()),
                };
            }
            events.push(e);
        }
        Ok(events)
    }
}

/// One state event's content, or `None` when the room has none of it.
pub fn state_content(client: &Client, room: &str, kind: &str, key: &str) -> Result<Option<Value>> {
    let what = format!("read {kind} in {room}");
    found(client.call(
        &what,
        Method::Get,
        &["v3", "rooms", room, "state", kind, key],
        &[],
        Body::None,
    ))?
    .map(|bytes| parse_value(&bytes, &what))
    .transpose()
}

/// A user's membership of a room (`join`, `invite`, `leave`, `ban`, `knock`), read fresh;
/// `None` when the user never had one.
pub fn membership(client: &Client, room: &str, user: &str) -> Result<Option<Membership>> {
    Ok(
        state_content(client, room, "m.room.member", user)?.and_then(|c| {
            c.get("membership")
                .and_then(Value::as_str)
                .map(Membership::parse)
        }),
    )
}

/// Invites `user` (no `is_direct`: the invitee's client would record the inviter as the DM
/// peer).
pub fn invite(client: &Client, room: &str, user: &str) -> Result<()> {
    let body = serde_json::json!({ "user_id": user }).to_string();
    client.call(
        &format!("invite {user} to {room}"),
        Method::Post,
        &["v3", "rooms", room, "invite"],
        &[],
        Body::Json(body.as_bytes()),
    )?;
    Ok(())
}

/// Joins a room through the servers `via` (version 12 room IDs name no server, and a remote
/// join without one fails).
pub fn join(client: &Client, room: &str, via: &[String]) -> Result<String> {
    #[derive(Deserialize)]
    struct Joined {
        room_id: String,
    }
    let query: Vec<(&str, &str)> = via.iter().map(|s| ("via", s.as_str())).collect();
    let j: Joined = client.call_json(
        &format!("join {room}"),
        Method::Post,
        &["v3", "join", room],
        &query,
        Body::Json(b"{}"),
        true,
    )?;
    Ok(j.room_id)
}

/// Leaves a room (leaving twice is fine), with a reason the members' clients show.
pub fn leave(client: &Client, room: &str, reason: Option<&str>) -> Result<()> {
    let body = match reason {
        Some(r) => serde_json::json!({ "reason": r }).to_string(),
        None => "{}".to_owned(),
    };
    client.call(
        &format!("leave {room}"),
        Method::Post,
        &["v3", "rooms", room, "leave"],
        &[],
        Body::Json(body.as_bytes()),
    )?;
    Ok(())
}

/// Raises `user`'s power level in `room` to `level`: the power levels read fresh, only
/// `users[user]` changed, the whole content sent back, then read again to check. False when
/// the user had the level already (nothing sent).
pub fn raise_power(client: &Client, room: &str, user: &str, level: i64) -> Result<bool> {
    let level_of = |content: &Value| content.get("users")?.get(user)?.as_i64();
    let mut content = state_content(client, room, "m.room.power_levels", "")?
        .unwrap_or_else(|| Value::Object(Map::new()));
    if level_of(&content) >= Some(level) {
        return Ok(false);
    }
    let users = content
        .as_object_mut()
        .ok_or_else(|| Error::BadResponse {
            what: format!("read the power levels of {room}"),
            reason: "not an object".into(),
        })?
        .entry("users")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(users) = users {
        users.insert(user.to_owned(), Value::from(level));
    }
    put_state(client, room, "m.room.power_levels", "", &content)?;
    let after = state_content(client, room, "m.room.power_levels", "")?.unwrap_or_default();
    if level_of(&after) < Some(level) {
        return Err(Error::BadResponse {
            what: format!("check the power levels of {room}"),
            reason: "the new level is not in the room's power levels after sending it".into(),
        });
    }
    Ok(true)
}

/// Sends a state event (replacing the whole content of `kind`/`key`); returns its event ID.
pub fn put_state(
    client: &Client,
    room: &str,
    kind: &str,
    key: &str,
    content: &Value,
) -> Result<String> {
    #[derive(Deserialize)]
    struct Sent {
        event_id: String,
    }
    let body = serde_json::to_vec(content).expect("a JSON value serialises");
    let s: Sent = client.call_json(
        &format!("send {kind} to {room}"),
        Method::Put,
        &["v3", "rooms", room, "state", kind, key],
        &[],
        Body::Json(&body),
        true,
    )?;
    Ok(s.event_id)
}

/// The user's tags of a room (`m.tag`): tag name → its content (e.g. `{"order": 0.5}`).
pub fn tags(client: &Client, user: &str, room: &str) -> Result<Map<String, Value>> {
    #[derive(Deserialize)]
    struct Tags {
        #[serde(default)]
        tags: Map<String, Value>,
    }
    let t: Tags = client.call_json(
        &format!("read your tags of {room}"),
        Method::Get,
        &["v3", "user", user, "rooms", room, "tags"],
        &[],
        Body::None,
        true,
    )?;
    Ok(t.tags)
}

/// Sets one tag of a room.
pub fn put_tag(client: &Client, user: &str, room: &str, tag: &str, content: &Value) -> Result<()> {
    let body = serde_json::to_vec(content).expect("a JSON value serialises");
    client.call(
        &format!("tag {room} {tag}"),
        Method::Put,
        &["v3", "user", user, "rooms", room, "tags", tag],
        &[],
        Body::Json(&body),
    )?;
    Ok(())
}

/// The user's display name, when it has one.
pub fn displayname(client: &Client, user: &str) -> Result<Option<String>> {
    let what = format!("read the display name of {user}");
    let Some(bytes) = found(client.call(
        &what,
        Method::Get,
        &["v3", "profile", user, "displayname"],
        &[],
        Body::None,
    ))?
    else {
        return Ok(None);
    };
    Ok(parse_value(&bytes, &what)?
        .get("displayname")
        .and_then(Value::as_str)
        .map(str::to_owned))
}

/// Sets the user's display name (the server sends a member event to each room it is in).
pub fn set_displayname(client: &Client, user: &str, name: &str) -> Result<()> {
    let body = serde_json::json!({ "displayname": name }).to_string();
    client.call(
        &format!("set the display name of {user}"),
        Method::Put,
        &["v3", "profile", user, "displayname"],
        &[],
        Body::Json(body.as_bytes()),
    )?;
    Ok(())
}

/// One page of `/rooms/{id}/messages`.
#[derive(Debug, Clone, Deserialize)]
pub struct Page {
    /// The events, in the direction asked.
    #[serde(default)]
    pub chunk: Vec<TimelineEvent>,
    /// The token to continue from; `None` at the end of the timeline.
    #[serde(default)]
    pub end: Option<String>,
}

/// Which way to page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Towards older events.
    Backwards,
    /// Towards newer events.
    Forwards,
}

/// One page of the timeline that the account may see, from `from` (or the newest event),
/// only events of the given `types`.
pub fn messages(
    client: &Client,
    room: &str,
    from: Option<&str>,
    dir: Direction,
    types: &[&str],
    limit: u32,
) -> Result<Page> {
    let filter = serde_json::json!({ "types": types, "lazy_load_members": true }).to_string();
    let limit = limit.to_string();
    let mut query = vec![
        (
            "dir",
            match dir {
                Direction::Backwards => "b",
                Direction::Forwards => "f",
            },
        ),
        ("limit", limit.as_str()),
        ("filter", filter.as_str()),
    ];
    if let Some(from) = from {
        query.push(("from", from));
    }
    client.call_json(
        &format!("read the timeline of {room}"),
        Method::Get,
        &["v3", "rooms", room, "messages"],
        &query,
        Body::None,
        true,
    )
}

/// The pagination token just after `event_id` (`/context`, no surrounding events).
pub fn token_after(client: &Client, room: &str, event_id: &str) -> Result<Option<String>> {
    #[derive(Deserialize)]
    struct Context {
        #[serde(default)]
        end: Option<String>,
    }
    let what = format!("find event {event_id} in {room}");
    Ok(found(client.call_json::<Context>(
        &what,
        Method::Get,
        &["v3", "rooms", room, "context", event_id],
        &[("limit", "0")],
        Body::None,
        true,
    ))?
    .and_then(|c| c.end))
}

/// Whether the account may see one event: `Some` with the event, `None` when the server
/// says it is not found (hidden from this account, or never existed).
pub fn event(client: &Client, room: &str, event_id: &str) -> Result<Option<TimelineEvent>> {
    found(client.call_json(
        &format!("read event {event_id} in {room}"),
        Method::Get,
        &["v3", "rooms", room, "event", event_id],
        &[],
        Body::None,
        true,
    ))
}

/// True when `e` is the server refusing for lack of permission (HTTP 403).
pub fn is_forbidden(e: &Error) -> bool {
    matches!(e, Error::Api { status: 403, .. })
}

/// True when `e` may be a remote server's rate limit seen through federation: an invite or
/// join across servers answered 5xx (the other server's 429 does not reach the client; its
/// own server reports "can't connect"). Worth re-reading and retrying later, never a final
/// failure on the first try.
pub fn is_maybe_remote_limit(e: &Error) -> bool {
    matches!(
        e,
        Error::Api {
            status: 500 | 502 | 503 | 504,
            ..
        }
    )
}
