//! Where a move stands, from its journal alone (`move status`): no network, nothing
//! written.

use std::path::Path;

use serde::Serialize;

use crate::journal::{Journal, JournalError, Phase};

/// One room's progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct RoomStatus {
    /// The room.
    pub room_id: String,
    /// The last step the journal records: `not started`, `planned`, `invited`, `joined`,
    /// `power`, `moved` (tags copied too), `left`; `partial` when the new account is in
    /// but something is left to do by hand (its power), `blocked` when it cannot move.
    pub step: &'static str,
}

/// Where a move stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct MoveStatus {
    /// A run was ever made (the journal exists).
    pub started: bool,
    /// The keys phase, when done.
    pub keys: Option<String>,
    /// Each moving room.
    pub rooms: Vec<RoomStatus>,
    /// The DMs were merged.
    pub direct: bool,
    /// The account data phase, when done.
    pub account_data: Option<String>,
    /// The old account's new name, when renamed.
    pub renamed: Option<String>,
    /// The summary of the last run that went to the end, if any.
    pub finished: Option<String>,
    /// What that run left to do by hand, each with what to do.
    pub by_hand: Vec<crate::by_hand::ByHand>,
    /// The new account's invite setting the move opened to the old account's invites and
    /// has not put back yet (the next run that gets through the rooms does).
    pub invites_open: Option<String>,
    /// The result checked as the new account (`move status --verify` only).
    pub verification: Option<crate::verify::Verification>,
}

/// How far the journal says a room got.
fn step_of(j: &Journal, room: &str) -> &'static str {
    let r = j.room(room);
    let by_hand = j.by_hand().iter().any(|b| b.room.as_deref() == Some(room));
    if r.left {
        "left"
    } else if by_hand && r.joined {
        "partial"
    } else if by_hand {
        "blocked"
    } else if r.tags && r.power {
        "moved"
    } else if r.power {
        "power"
    } else if r.joined {
        "joined"
    } else if r.invited {
        "invited"
    } else if r.planned.is_some() {
        "planned"
    } else {
        "not started"
    }
}

/// Reads the journal at `journal` of the move `old` -> `new` for the moving `rooms`.
pub fn status(
    journal: &Path,
    (old, new): (&str, &str),
    rooms: &[String],
) -> Result<MoveStatus, JournalError> {
    let j = Journal::read_only(journal)?;
    if let Some(j) = &j {
        j.check_pair(old, new)?;
    }
    let room_step = |room: &str| j.as_ref().map_or("not started", |j| step_of(j, room));
    Ok(MoveStatus {
        started: j.is_some(),
        keys: j
            .as_ref()
            .and_then(|j| j.phase(Phase::Keys).map(str::to_owned)),
        rooms: rooms
            .iter()
            .map(|r| RoomStatus {
                room_id: r.clone(),
                step: room_step(r),
            })
            .collect(),
        direct: j.as_ref().is_some_and(Journal::direct_done),
        account_data: j
            .as_ref()
            .and_then(|j| j.phase(Phase::AccountData).map(str::to_owned)),
        renamed: j.as_ref().and_then(|j| j.renamed().map(str::to_owned)),
        finished: j
            .as_ref()
            .and_then(|j| j.phase(Phase::Finished).map(str::to_owned)),
        by_hand: j.as_ref().map_or_else(Vec::new, |j| j.by_hand().to_vec()),
        invites_open: j
            .as_ref()
            .and_then(|j| j.invites_allowed().map(|(s, _)| s.to_owned())),
        verification: None,
    })
}
