//! The last steps of a room's move, the ones a user cannot undo: the old account renamed in
//! the room, then its leave. Each leave comes right after a fresh check that it is safe:
//! hours may have passed since the room was moved (rate limits), and in that time the new
//! account may have been kicked, banned or demoted, the old account promoted, the room
//! replaced, or the new server may be wrong about the join.
//!
//! The old account leaves a room only when, read right then:
//! - the new account's membership is `join` as the OLD account's server sees the room (the
//!   view it is about to give up), and on the new account's own server;
//! - the power levels give the new account at least the old account's power now (a
//!   creator of a version-12 room counts as the highest level);
//! - the room has no tombstone.
//!
//! Otherwise it stays, and the report says why.

use std::time::{Duration, Instant};

use online::membership::{or_none, Membership};
use online::rooms;
use online::Client;
use serde_json::Value;

use super::facts::{Power, RoomFacts};
use super::moving::{Ctx, Done, RoomOutcome, Status};
use crate::events::{Event, Stage};
use crate::journal::{Entry, JournalError};

/// Why the old account must stay in a room, read fresh; `None` when it may leave.
pub(super) fn must_stay(
    ctx: &Ctx<'_>,
    old: &Client,
    new: &Client,
    facts: &RoomFacts,
) -> online::Result<Option<String>> {
    let room = facts.room_id.as_str();
    if let Some(why) = replaced(old, room)? {
        return Ok(Some(why));
    }
    let seen_by_old = joined_as_old_sees_it(ctx, old, room)?;
    if seen_by_old != Some(Membership::Join) {
        return Ok(Some(format!(
            "the new account is not joined as the old account's server sees the room (its \
             membership there: {}): the old account stays",
            or_none(seen_by_old.as_ref())
        )));
    }
    let mine = rooms::membership(new, room, ctx.new_user)?;
    if mine != Some(Membership::Join) {
        return Ok(Some(format!(
            "the new account is not joined as its own server sees the room (membership: {}): \
             the old account stays",
            or_none(mine.as_ref())
        )));
    }
    outranked(ctx, old, facts)
}

/// The room's replacement, when it was replaced since it was read.
fn replaced(old: &Client, room: &str) -> online::Result<Option<String>> {
    let next = rooms::state_content(old, room, "m.room.tombstone", "")?.and_then(|c| {
        c.get("replacement_room")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    Ok(next.map(|next| {
        format!(
            "the room was replaced by {next} since it was read: the old account stays; move {next} instead"
        )
    }))
}

/// Whether the power levels now give the new account less than the old account's power.
fn outranked(ctx: &Ctx<'_>, old: &Client, facts: &RoomFacts) -> online::Result<Option<String>> {
    let mut now = facts.clone();
    now.power_levels = rooms::state_content(old, &facts.room_id, "m.room.power_levels", "")?
        .unwrap_or_else(|| Value::Object(Default::default()));
    let (old_power, new_power) = (now.power_of(ctx.old_user), now.power_of(ctx.new_user));
    let needed = match old_power {
        Power::Creator => now.highest_level(),
        Power::Level(l) => l,
    };
    Ok((!new_power.at_least(needed)).then(|| {
        format!(
            "the old account has power {old_power} here now and the new account {new_power}: \
             the old account stays so the room keeps its admin"
        )
    }))
}

/// The new account's membership as the old account's server sees the room, given a little
/// time to arrive over federation (a `leave` or `ban` is final at once).
fn joined_as_old_sees_it(
    ctx: &Ctx<'_>,
    old: &Client,
    room: &str,
) -> online::Result<Option<Membership>> {
    let end = Instant::now() + ctx.options.federation_wait;
    loop {
        let m = rooms::membership(old, room, ctx.new_user)?;
        let settled = m.as_ref().is_some_and(Membership::settled);
        if settled || Instant::now() >= end || ctx.stopped() {
            return Ok(m);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Renames the old account in every room the new account is in (its member event there,
/// never the global profile, which would tell the rooms it keeps). Idempotent: a name that
/// already ends with the suffix is left alone. Returns the name given in the first room.
pub(super) fn rename_all(
    ctx: &Ctx<'_>,
    old: &Client,
    outcomes: &mut [RoomOutcome],
    suffix: &str,
) -> Result<Option<String>, crate::Error> {
    let rooms: Vec<usize> = (0..outcomes.len())
        .filter(|&i| outcomes[i].in_new_account() && !outcomes[i].left)
        .collect();
    ctx.events.emit(Event::Started {
        stage: Stage::Rename,
        total: Some(rooms.len() as u64),
    });
    let mut first = None;
    for (n, &i) in rooms.iter().enumerate() {
        if ctx.stopped() || !rename_one(ctx, old, &mut outcomes[i], suffix, &mut first) {
            break;
        }
        let total = rooms.len() as u64;
        let done = n as u64 + 1;
        ctx.events.emit(Event::Progress {
            stage: Stage::Rename,
            done,
            total,
        });
    }
    if let Some(name) = &first {
        ctx.record(Entry::Renamed { name: name.clone() })?;
    }
    ctx.events.emit(Event::Finished {
        stage: Stage::Rename,
    });
    Ok(first)
}

/// Renames the old account in one room (the first name given kept in `first`); false
/// when the run was stopped meanwhile.
fn rename_one(
    ctx: &Ctx<'_>,
    old: &Client,
    o: &mut RoomOutcome,
    suffix: &str,
    first: &mut Option<String>,
) -> bool {
    match rename_in(ctx, old, &o.room_id, suffix) {
        Ok((name, sent)) => {
            if sent {
                o.done.push(Done::Renamed);
            }
            first.get_or_insert(name);
        }
        Err(online::Error::Cancelled { .. }) => return false,
        Err(e) => o
            .notes
            .push(format!("the old account was not renamed here: {e}")),
    }
    true
}

/// The old account's name in `room` with `suffix`, set unless it has it already; returns
/// the name and whether it was sent.
fn rename_in(
    ctx: &Ctx<'_>,
    old: &Client,
    room: &str,
    suffix: &str,
) -> online::Result<(String, bool)> {
    let suffix = suffix.trim();
    let mut member = rooms::state_content(old, room, "m.room.member", ctx.old_user)?
        .unwrap_or_else(|| serde_json::json!({"membership": "join"}));
    let current = member
        .get("displayname")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
        .map(str::to_owned)
        .unwrap_or_else(|| localpart(ctx.old_user));
    if current.ends_with(suffix) {
        return Ok((current, false));
    }
    let name = format!("{current} {suffix}");
    member["displayname"] = Value::from(name.clone());
    member["membership"] = Value::from("join");
    rooms::put_state(old, room, "m.room.member", ctx.old_user, &member)?;
    Ok((name, true))
}

fn localpart(user: &str) -> String {
    user.trim_start_matches('@')
        .split(':')
        .next()
        .unwrap_or("")
        .to_owned()
}

/// Leaves every room that fully moved, each right after a fresh check ([`must_stay`]),
/// with a reason every member's client shows ("moved to @new:…").
pub(super) fn leave_all(
    ctx: &Ctx<'_>,
    old: &Client,
    new: &Client,
    outcomes: &mut [RoomOutcome],
) -> Result<(), JournalError> {
    let eligible: Vec<usize> = (0..outcomes.len()).filter(|&i| !outcomes[i].left).collect();
    let total = eligible.len() as u64;
    ctx.events.emit(Event::Started {
        stage: Stage::Leave,
        total: Some(total),
    });
    let reason = format!("moved to {}", ctx.new_user);
    for (n, i) in eligible.into_iter().enumerate() {
        // Counted as each room is taken up, so rooms that stay count too.
        ctx.events.emit(Event::Progress {
            stage: Stage::Leave,
            done: n as u64 + 1,
            total,
        });
        if ctx.stopped() {
            break;
        }
        let o = &mut outcomes[i];
        if !leave_one(ctx, old, new, o, &reason)? {
            break;
        }
    }
    ctx.events.emit(Event::Finished {
        stage: Stage::Leave,
    });
    Ok(())
}

/// One room's leave, if it may; false when the run was stopped meanwhile.
fn leave_one(
    ctx: &Ctx<'_>,
    old: &Client,
    new: &Client,
    o: &mut RoomOutcome,
    reason: &str,
) -> Result<bool, JournalError> {
    let facts = match may_leave(o) {
        Ok(facts) => facts,
        Err(why) => {
            o.stayed = Some(why.into());
            return Ok(true);
        }
    };
    match must_stay(ctx, old, new, &facts) {
        Ok(None) => {}
        Ok(Some(why)) => {
            ctx.item(Stage::Leave, &o.room_id, format!("stays: {why}"));
            o.stay_after_check(why);
            return Ok(true);
        }
        Err(online::Error::Cancelled { .. }) => return Ok(false),
        Err(e) => {
            o.stay_after_check(format!("could not check it is safe to leave: {e}"));
            return Ok(true);
        }
    }
    leave(ctx, old, o, reason)
}

/// The room's facts when its move says the old account may leave; else why it stays.
fn may_leave(o: &RoomOutcome) -> Result<RoomFacts, &'static str> {
    match o.status {
        Status::Moved | Status::AlreadyMoved => {}
        Status::Partial => return Err("the new account does not have the old account's power here: the old account stays so the room keeps an admin"),
        _ => return Err("the room did not move"),
    }
    o.facts()
        .cloned()
        .ok_or("the room was not read in this run: the old account stays")
}

/// The leave itself, recorded; false when the run was stopped meanwhile.
fn leave(
    ctx: &Ctx<'_>,
    old: &Client,
    o: &mut RoomOutcome,
    reason: &str,
) -> Result<bool, JournalError> {
    match rooms::leave(old, &o.room_id, Some(reason)) {
        Ok(()) => {
            ctx.record(Entry::Left {
                room: o.room_id.clone(),
            })?;
            o.left = true;
            o.done.push(Done::Left);
            ctx.item(Stage::Leave, &o.room_id, "left");
        }
        Err(online::Error::Cancelled { .. }) => return Ok(false),
        Err(e) => o.stayed = Some(format!("leaving failed: {e}")),
    }
    Ok(true)
}
