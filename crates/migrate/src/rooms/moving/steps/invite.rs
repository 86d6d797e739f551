//! The invite: sent by the old account unless the server says the new account is invited
//! or in already; a 5xx across servers retried as a possible remote rate limit.

use online::rooms;
use online::Client;

use super::super::ctx::Ctx;
use super::super::outcome::{Done, RoomSlot};
use crate::events::Stage;
use crate::journal::{Entry, JournalError};

/// Invites the new account. True when the room can go on to the join.
pub(crate) fn invite(
    ctx: &Ctx<'_>,
    client: &Client,
    slot: &RoomSlot,
) -> Result<bool, JournalError> {
    let room = slot.room_id();
    let result = ctx.with_remote_retry(client, Stage::Invite, "the invite", || {
        let mine = rooms::membership(client, &room, ctx.new_user)?;
        if mine.is_some_and(|m| m.in_or_invited()) {
            return Ok(false);
        }
        rooms::invite(client, &room, ctx.new_user).map(|()| true)
    });
    match result {
        Ok(sent) => {
            ctx.record(Entry::Invited { room: room.clone() })?;
            if sent {
                slot.with(|o| o.done.push(Done::Invited));
            }
            let said = if sent { "invited" } else { "already invited" };
            ctx.item(Stage::Invite, &room, said);
            Ok(true)
        }
        Err(online::Error::Cancelled { .. }) => Ok(false),
        Err(e) => {
            slot.with(|o| o.fail(format!("invite failed: {e}")));
            ctx.item(Stage::Invite, &room, format!("failed: {e}"));
            Ok(false)
        }
    }
}
