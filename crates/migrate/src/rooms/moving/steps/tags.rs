//! The old account's tags of a room (favourite, low priority, its own), copied to the new
//! account where it lacks them.

use online::rooms;
use online::Client;

use super::super::ctx::Ctx;
use super::super::outcome::{Done, RoomSlot};
use crate::journal::{Entry, JournalError};

/// Copies the tags; true when the room can go on (a failure to copy them fails the room,
/// to be retried by a rerun).
pub(crate) fn copy_tags(
    ctx: &Ctx<'_>,
    old: &Client,
    new: &Client,
    slot: &RoomSlot,
) -> Result<bool, JournalError> {
    let room = slot.room_id();
    match missing_tags(ctx, old, new, &room) {
        Ok(n) => {
            ctx.record(Entry::Tags { room })?;
            if n > 0 {
                slot.with(|o| o.done.push(Done::Tags(n)));
            }
        }
        Err(online::Error::Cancelled { .. }) => return Ok(false),
        Err(e) => slot.with(|o| o.fail(format!("tags not copied: {e}"))),
    }
    Ok(true)
}

/// Copies the old account's tags of `room` that the new account lacks; returns how many.
fn missing_tags(ctx: &Ctx<'_>, old: &Client, new: &Client, room: &str) -> online::Result<usize> {
    let theirs = rooms::tags(old, ctx.old_user, room)?;
    if theirs.is_empty() {
        return Ok(0);
    }
    let ours = rooms::tags(new, ctx.new_user, room)?;
    let mut n = 0;
    for (tag, content) in &theirs {
        if !ours.contains_key(tag) {
            rooms::put_tag(new, ctx.new_user, room, tag, content)?;
            n += 1;
        }
    }
    Ok(n)
}
