//! Selecting and merging sessions from one or more exports: exactly the rooms asked for,
//! one best copy of each session.
//!
//! A session is identified by (room_id, session_id). When it appears more than once:
//! - identical `session_key` text → the same copy, kept once (no crypto needed);
//! - otherwise vodozemac decides (`InboundGroupSession::compare`): the connected copy with
//!   the lower first known index decrypts more history and wins;
//! - copies that are not connected (forged or damaged), or that disagree on `sender_key`
//!   or the claimed Ed25519 key, are conflicts: a device export's copy is kept over one
//!   from a server-side backup (which anyone with the account's token can add to), else
//!   the first seen; the conflict is reported, never resolved silently.
//!
//! Only sessions seen twice touch vodozemac (or read their keys again), so the common path
//! is a hash lookup.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use serde::Serialize;
use vodozemac::megolm::{ExportedSessionKey, InboundGroupSession, SessionConfig, SessionOrdering};

use crate::inspect::InvalidEntry;
use crate::select::RoomSelection;
use crate::session::{Identity, SessionRef};

/// What to keep.
#[derive(Debug, Clone)]
pub struct MergeOptions {
    /// Rooms whose keys are kept.
    pub selection: RoomSelection,
    /// Leave out invalid entries (and report them) instead of failing.
    pub drop_invalid: bool,
    /// Fail on any conflict instead of keeping the first copy.
    pub strict: bool,
}

impl Default for MergeOptions {
    fn default() -> Self {
        MergeOptions {
            selection: RoomSelection::everything(),
            drop_invalid: false,
            strict: false,
        }
    }
}

/// An entry's place: which input, which position in its JSON array.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, schemars::JsonSchema)]
pub struct Origin {
    /// 0-based input number.
    pub input: usize,
    /// 0-based position in that input.
    pub index: usize,
}

/// Why two copies of a session cannot be merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConflictKind {
    /// The copies name different sending devices.
    SenderKeyDiffers,
    /// The copies claim different Ed25519 keys for the sender.
    ClaimedKeyDiffers,
    /// The ratchets do not belong to one session (vodozemac: Unconnected).
    Unconnected,
}

/// Two copies of one session that disagree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Conflict {
    /// The room.
    pub room_id: String,
    /// The session.
    pub session_id: String,
    /// What disagrees.
    pub kind: ConflictKind,
    /// The copy that was kept.
    pub kept: Origin,
    /// The copy that was not.
    pub rejected: Origin,
}

/// An invalid entry and the input it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct SourcedInvalid {
    /// 0-based input number.
    pub input: usize,
    /// The entry and its problem.
    #[serde(flatten)]
    pub entry: InvalidEntry,
}

/// Counts for the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Summary {
    /// Entries read from each input.
    pub read: Vec<usize>,
    /// Sessions in the result.
    pub kept: usize,
    /// Entries left out because their room is not selected.
    pub dropped_by_selection: usize,
    /// Extra copies folded into one.
    pub duplicates_merged: usize,
    /// Times a later copy replaced the kept one because it decrypts more history.
    pub upgraded: usize,
    /// Conflicting copies (see the list).
    pub conflicts: usize,
    /// Invalid entries in selected rooms (left out with drop_invalid).
    pub invalid: usize,
    /// Selected rooms with no keys in any input.
    pub rooms_without_keys: Vec<String>,
    /// Rooms in the result.
    pub rooms_kept: usize,
}

/// The merge result: the best copy of each selected session, in order of first
/// appearance, plus the report.
#[derive(Debug)]
pub struct Merged<'s, 'a> {
    /// The sessions to write.
    pub sessions: Vec<&'s SessionRef<'a>>,
    /// Counts.
    pub summary: Summary,
    /// Every conflict found.
    pub conflicts: Vec<Conflict>,
    /// Every invalid entry in a selected room.
    pub invalid: Vec<SourcedInvalid>,
}

/// Why a merge refused to produce output.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// Entries fail validation and `drop_invalid` was not set.
    #[error("{} entries fail validation", .0.len())]
    Invalid(Vec<SourcedInvalid>),
    /// Copies conflict and `strict` was set.
    #[error("{} conflicting copies of sessions", .0.len())]
    Conflicts(Vec<Conflict>),
}

struct Slot<'s, 'a> {
    session: &'s SessionRef<'a>,
    input: u32,
    index: u32,
}

impl Slot<'_, '_> {
    fn origin(&self) -> Origin {
        Origin {
            input: self.input as usize,
            index: self.index as usize,
        }
    }
}

/// Where each session's kept copy is, by session ID: a session ID names one session, so
/// the room is only compared, and the rare ID met in a second room (a forged or damaged
/// entry) has a map of its own. Half the size of one map keyed by (room, session).
struct Slots<'s, 'a> {
    slots: Vec<Slot<'s, 'a>>,
    by_session: HashMap<&'s str, u32>,
    elsewhere: HashMap<(&'s str, &'s str), u32>,
}

impl<'s, 'a> Slots<'s, 'a> {
    fn with_capacity(n: usize) -> Self {
        Slots {
            slots: Vec::with_capacity(n),
            by_session: HashMap::with_capacity(n),
            elsewhere: HashMap::new(),
        }
    }

    /// The slot of `s`'s session, or `None` after giving it a new slot.
    fn find_or_add(&mut self, s: &'s SessionRef<'a>, input: u32, index: u32) -> Option<usize> {
        let next = u32::try_from(self.slots.len()).expect("fewer than 2^32 sessions");
        let room = s.room_id.as_ref();
        let found = match self.by_session.entry(s.session_id.as_ref()) {
            Entry::Vacant(v) => {
                v.insert(next);
                None
            }
            Entry::Occupied(o) if self.slots[*o.get() as usize].session.room_id == room => {
                Some(*o.get())
            }
            Entry::Occupied(_) => match self.elsewhere.entry((room, s.session_id.as_ref())) {
                Entry::Vacant(v) => {
                    v.insert(next);
                    None
                }
                Entry::Occupied(o) => Some(*o.get()),
            },
        };
        if found.is_none() {
            self.slots.push(Slot {
                session: s,
                input,
                index,
            });
        }
        found.map(|slot| slot as usize)
    }
}

/// Merges `inputs` (each the parsed entries of one export, in file order).
///
/// Inputs may already be narrowed to the selected rooms (see
/// [`crate::entries::parse_where`]); the caller then adds what it left out to
/// [`Summary::dropped_by_selection`] and [`Summary::read`].
pub fn merge<'s, 'a>(
    inputs: &'s [Vec<SessionRef<'a>>],
    options: &MergeOptions,
) -> Result<Merged<'s, 'a>, MergeError> {
    let total: usize = inputs.iter().map(Vec::len).sum();
    let mut slots = Slots::with_capacity(total);
    let mut summary = Summary {
        read: inputs.iter().map(Vec::len).collect(),
        ..Summary::default()
    };
    let mut conflicts = Vec::new();
    let mut invalid = Vec::new();

    for (input, sessions) in inputs.iter().enumerate() {
        for (index, s) in sessions.iter().enumerate() {
            if !options.selection.matches(&s.room_id) {
                summary.dropped_by_selection += 1;
                continue;
            }
            if let Some(entry) = InvalidEntry::of(index, s) {
                invalid.push(SourcedInvalid { input, entry });
                continue;
            }
            let (input32, index32) = (narrow(input), narrow(index));
            let Some(slot) = slots.find_or_add(s, input32, index32) else {
                continue;
            };
            summary.duplicates_merged += 1;
            let origin = Origin { input, index };
            let kept = &mut slots.slots[slot];
            let new = Slot {
                session: s,
                input: input32,
                index: index32,
            };
            match decide(kept.session, s) {
                Decision::KeepExisting => {}
                Decision::Replace => {
                    summary.upgraded += 1;
                    *kept = new;
                }
                // A copy from a device export wins over one from a backup (not
                // authenticated); otherwise the first seen is kept.
                Decision::Conflict(kind) if kept.session.from_backup && !s.from_backup => {
                    conflicts.push(Conflict {
                        room_id: s.room_id.to_string(),
                        session_id: s.session_id.to_string(),
                        kind,
                        kept: origin,
                        rejected: kept.origin(),
                    });
                    *kept = new;
                }
                Decision::Conflict(kind) => conflicts.push(Conflict {
                    room_id: s.room_id.to_string(),
                    session_id: s.session_id.to_string(),
                    kind,
                    kept: kept.origin(),
                    rejected: origin,
                }),
            }
        }
    }
    summary.invalid = invalid.len();
    summary.conflicts = conflicts.len();
    if !invalid.is_empty() && !options.drop_invalid {
        return Err(MergeError::Invalid(invalid));
    }
    if !conflicts.is_empty() && options.strict {
        return Err(MergeError::Conflicts(conflicts));
    }
    // Conflicting copies are not "merged duplicates".
    summary.duplicates_merged -= conflicts.len();
    let slots = slots.slots;
    summary.kept = slots.len();
    let present: HashSet<&str> = slots.iter().map(|s| s.session.room_id.as_ref()).collect();
    summary.rooms_kept = present.len();
    let all_rooms: HashSet<&str> = inputs
        .iter()
        .flatten()
        .map(|s| s.room_id.as_ref())
        .collect();
    summary.rooms_without_keys = options
        .selection
        .missing(&all_rooms)
        .into_iter()
        .map(str::to_owned)
        .collect();
    Ok(Merged {
        sessions: slots.into_iter().map(|s| s.session).collect(),
        summary,
        conflicts,
        invalid,
    })
}

fn narrow(n: usize) -> u32 {
    u32::try_from(n).expect("fewer than 2^32 entries")
}

enum Decision {
    KeepExisting,
    Replace,
    Conflict(ConflictKind),
}

/// Two copies of one session: compared on what only this needs, read again from each
/// entry (a session seen twice is the rare case).
fn decide(kept: &SessionRef<'_>, new: &SessionRef<'_>) -> Decision {
    let (kept, new) = (kept.identity(), new.identity());
    if kept.sender_key != new.sender_key {
        return Decision::Conflict(ConflictKind::SenderKeyDiffers);
    }
    if kept.claimed_ed25519 != new.claimed_ed25519 {
        return Decision::Conflict(ConflictKind::ClaimedKeyDiffers);
    }
    if kept.session_key() == new.session_key() {
        return Decision::KeepExisting;
    }
    match compare(&kept, &new) {
        SessionOrdering::Better | SessionOrdering::Equal => Decision::KeepExisting,
        SessionOrdering::Worse => Decision::Replace,
        SessionOrdering::Unconnected => Decision::Conflict(ConflictKind::Unconnected),
    }
}

/// vodozemac's verdict on two copies (both already validated, so both import; a copy that
/// did not would be no copy of the same session: Unconnected).
fn compare(a: &Identity<'_>, b: &Identity<'_>) -> SessionOrdering {
    let import = |s: &Identity<'_>| {
        let key = ExportedSessionKey::from_base64(s.session_key()?).ok()?;
        Some(InboundGroupSession::import(
            &key,
            SessionConfig::version_1(),
        ))
    };
    match (import(a), import(b)) {
        (Some(mut a), Some(mut b)) => a.compare(&mut b),
        _ => SessionOrdering::Unconnected,
    }
}

/// The JSON text of each merged session, ready for [`crate::entries::write_array`].
pub fn output_entries<'s, 'a>(
    merged: &'s Merged<'s, 'a>,
) -> impl Iterator<Item = crate::session::EntryText<'a>> + 's {
    merged.sessions.iter().map(|s| s.output_json())
}
