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

use online::rooms;
use online::Client;
use serde_json::Value;

use super::facts::{Power, RoomFacts};
use super::moving::{Ctx, RoomOutcome, Status};
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
    if let Some(next) = rooms::state_content(old, room, "m.room.tombstone", "")?.and_then(|c| {
        c.get("replacement_room")
            .and_then(Value::as_str)
            .map(str::to_owned)
    }) {
        return Ok(Some(format!(
            "the room was replaced by {next} since it was read: the old account stays; move {next} instead"
        )));
    }
    let seen_by_old = joined_as_old_sees_it(ctx, old, room)?;
    if seen_by_old.as_deref() != Some("join") {
        return Ok(Some(format!(
            "the new account is not joined as the old account's server sees the room (its \
             membership there: {}): the old account stays",
            seen_by_old.as_deref().unwrap_or("none")
        )));
    }
    let mine = rooms::membership(new, room, ctx.new_user)?;
    if mine.as_deref() != Some("join") {
        return Ok(Some(format!(
            "the new account is not joined as its own server sees the room (membership: {}): \
             the old account stays",
            mine.as_deref().unwrap_or("none")
        )));
    }
    let mut now = facts.clone();
    now.power_levels = rooms::state_content(old, room, "m.room.power_levels", "")?
        .unwrap_or_else(|| Value::Object(Default::default()));
    let (old_power, new_power) = (now.power_of(ctx.old_user), now.power_of(ctx.new_user));
    let needed = match old_power {
        Power::Creator => now.highest_level(),
        Power::Level(l) => l,
    };
    if !new_power.at_least(needed) {
        return Ok(Some(format!(
            "the old account has power {old_power} here now and the new account {new_power}: \
             the old account stays so the room keeps its admin"
        )));
    }
    Ok(None)
}

/// The new account's membership as the old account's server sees the room, given a little
/// time to arrive over federation (a `leave` or `ban` is final at once).
fn joined_as_old_sees_it(
    ctx: &Ctx<'_>,
    old: &Client,
    room: &str,
) -> online::Result<Option<String>> {
    let end = Instant::now() + ctx.options.federation_wait;
    loop {
        let m = rooms::membership(old, room, ctx.new_user)?;
        let settled = matches!(m.as_deref(), Some("join" | "leave" | "ban"));
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
        if ctx.stopped() {
            break;
        }
        let o = &mut outcomes[i];
        match rename_in(ctx, old, &o.room_id, suffix) {
            Ok((name, sent)) => {
                if sent {
                    o.done.push("renamed".into());
                }
                first.get_or_insert(name);
            }
            Err(online::Error::Cancelled { .. }) => break,
            Err(e) => o
                .notes
                .push(format!("the old account was not renamed here: {e}")),
        }
        ctx.events.emit(Event::Progress {
            stage: Stage::Rename,
            done: n as u64 + 1,
            total: rooms.len() as u64,
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
    match o.status {
        Status::Moved | Status::AlreadyMoved => {}
        Status::Partial => {
            o.stayed = Some("the new account does not have the old account's power here: the old account stays so the room keeps an admin".into());
            return Ok(true);
        }
        _ => {
            o.stayed = Some("the room did not move".into());
            return Ok(true);
        }
    }
    let Some(facts) = o.facts().cloned() else {
        o.stayed = Some("the room was not read in this run: the old account stays".into());
        return Ok(true);
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
    match rooms::leave(old, &o.room_id, Some(reason)) {
        Ok(()) => {
            ctx.record(Entry::Left {
                room: o.room_id.clone(),
            })?;
            o.left = true;
            o.done.push("left".into());
            ctx.item(Stage::Leave, &o.room_id, "left");
        }
        Err(online::Error::Cancelled { .. }) => return Ok(false),
        Err(e) => o.stayed = Some(format!("leaving failed: {e}")),
    }
    Ok(true)
}
