//! The account's `m.direct`: read it, and add to it without losing what is there.
//!
//! `PUT /user/{userId}/account_data/m.direct` replaces the whole object and there is no
//! compare-and-swap, so an upload always reads the current map first and merges.

use m_direct::merge::merge;
use m_direct::DirectMap;

use crate::client::{is_not_found, parse_value, Body, Client, Method};
use crate::error::{Error, Result};

/// The account's current `m.direct` (empty when none is set: the server answers 404).
pub fn download(client: &Client, user_id: &str) -> Result<DirectMap> {
    let what = "read m.direct";
    match client.call(
        what,
        Method::Get,
        &["v3", "user", user_id, "account_data", "m.direct"],
        &[],
        Body::None,
    ) {
        Ok(bytes) => {
            DirectMap::from_value(parse_value(&bytes, what)?).map_err(|e| Error::BadResponse {
                what: what.into(),
                reason: e.to_string(),
            })
        }
        Err(e) if is_not_found(&e) => Ok(DirectMap::new()),
        Err(e) => Err(e),
    }
}

/// Replaces the account's `m.direct` with `map`. The server must answer `{}`.
pub fn replace(client: &Client, user_id: &str, map: &DirectMap) -> Result<()> {
    let what = "write m.direct";
    let body = serde_json::to_vec(&map.to_value()).map_err(|e| Error::BadResponse {
        what: what.into(),
        reason: e.to_string(),
    })?;
    let answer = client.call(
        what,
        Method::Put,
        &["v3", "user", user_id, "account_data", "m.direct"],
        &[],
        Body::Json(&body),
    )?;
    match parse_value(&answer, what)? {
        serde_json::Value::Object(_) => Ok(()),
        other => Err(Error::BadResponse {
            what: what.into(),
            reason: format!("expected {{}}, got {other}"),
        }),
    }
}

/// An upload: what the account had, what it will have, and the (user, room) pairs added.
#[derive(Debug, Clone)]
pub struct DirectUpload {
    /// The current map.
    pub current: DirectMap,
    /// The merged map.
    pub merged: DirectMap,
    /// Pairs the merge adds.
    pub added: Vec<(String, String)>,
}

/// Reads the current map and merges `new` into it (existing entries first). Nothing is
/// written.
pub fn plan(client: &Client, user_id: &str, new: &DirectMap) -> Result<DirectUpload> {
    let current = download(client, user_id)?;
    let (merged, _) = merge([&current, new]);
    let added = merged
        .entries()
        .flat_map(|(user, rooms)| {
            let before: std::collections::HashSet<&str> = current
                .get(user)
                .map(|b| b.ids().collect())
                .unwrap_or_default();
            rooms
                .ids()
                .filter(move |room| !before.contains(room))
                .map(move |room| (user.clone(), room.to_owned()))
        })
        .collect();
    Ok(DirectUpload {
        current,
        merged,
        added,
    })
}

/// What [`merge_into`] did.
#[derive(Debug, Clone)]
pub struct Merged {
    /// The (user, room) pairs the first read lacked.
    pub added: Vec<(String, String)>,
    /// Users in the map as last read back.
    pub users_after: usize,
    /// PUTs made: 0 (nothing to add), 1, or 2 when another client wrote in between.
    pub writes: usize,
}

/// Adds `new` to the account's `m.direct` without losing what is there: reads it, merges,
/// writes, and reads it back. Account data has no compare-and-swap, so when another client
/// wrote in between and some pair is missing, it merges with what is there now and writes
/// once more; still missing after that is [`Error::DirectNotKept`].
pub fn merge_into(client: &Client, user_id: &str, new: &DirectMap) -> Result<Merged> {
    let first = plan(client, user_id, new)?;
    let mut current = first.clone();
    let mut writes = 0;
    while !current.added.is_empty() {
        if writes == 2 {
            return Err(Error::DirectNotKept {
                missing: current.added.len(),
            });
        }
        replace(client, user_id, &current.merged)?;
        writes += 1;
        current = plan(client, user_id, new)?;
    }
    Ok(Merged {
        added: first.added,
        users_after: current.current.len(),
        writes,
    })
}
