//! The join: the new account's own server decides whether it is in (a join may still be in
//! flight from a run that was killed); it joins through the plan's servers, and the
//! membership is read back before the room goes on. Then the tags.

use online::membership::{or_none, Membership};
use online::rooms;
use online::Client;

use super::super::ctx::Ctx;
use super::super::outcome::{Done, RoomSlot};
use super::tags::copy_tags;
use crate::events::Stage;
use crate::journal::{Entry, JournalError};
use crate::rooms::facts::server_of;
use crate::rooms::plan::Step;

/// Joins (unless joined), checks the membership as the new account, copies the tags. True
/// when the room can go on to the power level.
pub(crate) fn join(
    ctx: &Ctx<'_>,
    new: &Client,
    old: &Client,
    slot: &RoomSlot,
) -> Result<bool, JournalError> {
    let (room, via) = (slot.room_id(), via_for(ctx, slot));
    let joined = ctx.with_remote_retry(new, Stage::Join, "the join", || {
        let mine = match rooms::membership(new, &room, ctx.new_user) {
            Ok(m) => m,
            Err(e) if rooms::is_forbidden(&e) => None,
            Err(e) => return Err(e),
        };
        if mine == Some(Membership::Join) {
            return Ok(false);
        }
        rooms::join(new, &room, &via).map(|_| true)
    });
    let sent = match joined {
        Ok(sent) => sent,
        Err(online::Error::Cancelled { .. }) => return Ok(false),
        Err(e) => {
            slot.with(|o| o.fail(format!("join failed: {e}")));
            ctx.item(Stage::Join, &room, format!("failed: {e}"));
            return Ok(false);
        }
    };
    if !joined_now(new, ctx, slot, &room) {
        return Ok(false);
    }
    ctx.record(Entry::Joined { room: room.clone() })?;
    if sent {
        slot.with(|o| o.done.push(Done::Joined));
    }
    let said = if sent { "joined" } else { "already joined" };
    ctx.item(Stage::Join, &room, said);
    copy_tags(ctx, old, new, slot)
}

/// The servers to join through: the plan's, or (the plan had no join step: joined as the
/// old server saw it, not yet as the new one does) the room's members'.
fn via_for(ctx: &Ctx<'_>, slot: &RoomSlot) -> Vec<String> {
    let plan = slot.plan();
    plan.decision
        .steps
        .iter()
        .find_map(|s| match s {
            Step::Join { via } => Some(via.clone()),
            _ => None,
        })
        .unwrap_or_else(|| plan.facts.via(server_of(ctx.old_user)))
}

/// Reads the membership back as the new account: true when it is `join`; otherwise the
/// room failed, and says why.
fn joined_now(new: &Client, ctx: &Ctx<'_>, slot: &RoomSlot, room: &str) -> bool {
    let why = match rooms::membership(new, room, ctx.new_user) {
        Ok(Some(Membership::Join)) => return true,
        Ok(m) => format!(
            "the join was answered, but the new account's membership is {}",
            or_none(m.as_ref())
        ),
        Err(online::Error::Cancelled { .. }) => return false,
        Err(e) => format!("cannot check the join: {e}"),
    };
    slot.with(|o| o.fail(why));
    false
}
