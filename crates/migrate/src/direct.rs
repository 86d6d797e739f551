//! The DM list: built for the new account, read from an account, merged into one.

use std::collections::HashSet;
use std::io::Read;

use key_export::pipeline::{self, Source};
use key_export::ReadOptions;
use m_direct::build::{self, Accounts, BuildReport};
use m_direct::DirectMap;
use online::Session;
use serde::Serialize;

use crate::error::Result;

/// Where the rooms that move come from.
pub enum MovingRooms<R> {
    /// A list (a rooms file).
    List(Vec<String>),
    /// The rooms of a key export (e.g. the output of a filter), so one selection drives
    /// keys and DMs.
    Export(Source<R>, ReadOptions),
}

/// The new account's DM list.
#[derive(Debug)]
pub struct BuiltDirect {
    /// The map to give the new account.
    pub map: DirectMap,
    /// What the build found.
    pub report: BuildReport,
    /// How many distinct rooms move.
    pub moving_rooms: usize,
}

/// Builds the new account's `m.direct` from the old account's: every moving room that was
/// a DM, under the peer the old account had for it (see [`m_direct::build`]).
pub fn build<R: Read>(
    old: &DirectMap,
    moving: MovingRooms<R>,
    accounts: &Accounts,
) -> Result<BuiltDirect> {
    let moving: HashSet<String> = match moving {
        MovingRooms::List(rooms) => rooms.into_iter().collect(),
        MovingRooms::Export(source, read) => pipeline::inspect(source, &read)?
            .rooms
            .into_iter()
            .map(|r| r.room_id)
            .collect(),
    };
    let (map, report) = build::build(old, &moving, accounts);
    Ok(BuiltDirect {
        map,
        report,
        moving_rooms: moving.len(),
    })
}

/// An account's DM list.
#[derive(Debug)]
pub struct Downloaded {
    /// Whose it is (the token's owner).
    pub user_id: String,
    /// The map (empty when the account has none).
    pub map: DirectMap,
}

/// Reads the `m.direct` of the session's account.
pub fn download(session: &Session) -> Result<Downloaded> {
    let user_id = session.user_id().to_owned();
    let map = online::direct::download(session.client(), &user_id)?;
    Ok(Downloaded { user_id, map })
}

/// What an upload did (or, in a dry run, would do).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Uploaded {
    /// The account written to.
    pub user_id: String,
    /// The (user, room) pairs added.
    pub added: Vec<(String, String)>,
    /// Users in the merged map.
    pub users_after: usize,
    /// Writes made (0 in a dry run or when nothing is missing; 2 when another client wrote
    /// at the same time and the merge was done again).
    pub writes: usize,
}

/// Merges `new` into the session account's `m.direct`: reads it, merges (what it has
/// first), writes, and reads it back to verify (see [`online::direct::merge_into`]). A dry
/// run only reads.
pub fn upload(session: &Session, new: &DirectMap, dry_run: bool) -> Result<Uploaded> {
    let user_id = session.user_id().to_owned();
    if dry_run {
        let plan = online::direct::plan(session.client(), &user_id, new)?;
        return Ok(Uploaded {
            user_id,
            users_after: plan.merged.len(),
            added: plan.added,
            writes: 0,
        });
    }
    let done = online::direct::merge_into(session.client(), &user_id, new)?;
    Ok(Uploaded {
        user_id,
        added: done.added,
        users_after: done.users_after,
        writes: done.writes,
    })
}
