//! The account's `m.direct`: read it, and add to it without losing what is there.
//!
//! `PUT /user/{userId}/account_data/m.direct` replaces the whole object and there is no
//! compare-and-swap, so an upload always reads the current map first and merges.

use m_direct::merge::merge;
use m_direct::DirectMap;

use crate::client::{is_not_found, parse_value, Body, Client};
use crate::error::{Error, Result};

/// The account's current `m.direct` (empty when none is set: the server answers 404).
pub fn download(client: &Client, user_id: &str) -> Result<DirectMap> {
    let what = "read m.direct";
    match client.call(
        what,
        "GET",
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

/// Replaces the account's `m.direct` with `map`.
pub fn replace(client: &Client, user_id: &str, map: &DirectMap) -> Result<()> {
    let body = serde_json::to_vec(&map.to_value()).expect("JSON serialises");
    client.call(
        "write m.direct",
        "PUT",
        &["v3", "user", user_id, "account_data", "m.direct"],
        &[],
        Body::Json(&body),
    )?;
    Ok(())
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

/// Reads the current map and merges `new` into it (existing entries first).
pub fn plan(client: &Client, user_id: &str, new: &DirectMap) -> Result<DirectUpload> {
    let current = download(client, user_id)?;
    let (merged, _) = merge([&current, new]);
    let added = merged
        .entries()
        .iter()
        .flat_map(|(user, rooms)| {
            let before = current.get(user);
            rooms
                .ids()
                .filter(move |room| !before.is_some_and(|b| b.ids().any(|r| r == *room)))
                .map(move |room| (user.clone(), room.to_owned()))
        })
        .collect();
    Ok(DirectUpload {
        current,
        merged,
        added,
    })
}

/// Writes a planned upload (nothing when it adds nothing).
pub fn apply(client: &Client, user_id: &str, upload: &DirectUpload) -> Result<()> {
    if upload.added.is_empty() {
        return Ok(());
    }
    replace(client, user_id, &upload.merged)
}
