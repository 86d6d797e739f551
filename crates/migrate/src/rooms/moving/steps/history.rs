//! The history verdict checked as the new account, once it is in: the first message of
//! each period is asked for. A check that cannot be made is said, and undoes nothing.

use online::Client;

use super::super::ctx::Ctx;
use super::super::outcome::RoomSlot;
use crate::events::Stage;
use crate::rooms::history;

/// Checks the room's history verdict as the new account.
pub(crate) fn check_history(ctx: &Ctx<'_>, old: &Client, new: &Client, slot: &RoomSlot) {
    let Some((room, periods)) = slot.with(|o| {
        o.plan
            .as_ref()
            .map(|plan| (o.room_id.clone(), plan.history.clone()))
    }) else {
        return;
    };
    match history::verify(old, new, &room, &periods) {
        Ok(probes) => slot.with(|o| o.probes = probes),
        Err(crate::Error::Online(online::Error::Cancelled { .. })) => {}
        Err(e) => {
            slot.with(|o| {
                o.notes.push(format!(
                    "the history verdict could not be checked as the new account: {e}"
                ))
            });
            ctx.item(Stage::History, &room, format!("not checked: {e}"));
        }
    }
}
