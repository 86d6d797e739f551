//! The new account's power: the old account raises it to the level the plan decided (the
//! power levels read fresh, only `users[new]` changed, read back to check). A level the
//! old account may not give makes the room partial: the old account stays, and the report
//! says what to ask a room admin for.

use online::rooms;
use online::Client;

use super::super::ctx::Ctx;
use super::super::outcome::{Done, RoomSlot};
use crate::events::Stage;
use crate::journal::{Entry, JournalError};
use crate::rooms::plan::{power_advice, Step};

/// Gives the new account its level, or records why not.
pub(crate) fn give_power(
    ctx: &Ctx<'_>,
    client: &Client,
    slot: &RoomSlot,
) -> Result<(), JournalError> {
    let plan = slot.plan();
    let room = plan.facts.room_id.clone();
    let advice = power_advice(ctx.new_user, plan.decision.target.unwrap_or(100));
    let level = plan.decision.steps.iter().find_map(|s| match s {
        Step::Power { level } => Some(*level),
        _ => None,
    });
    let Some(level) = level else {
        let not_copied = plan.decision.power_not_copied.clone();
        slot.with(|o| o.finished(not_copied.as_deref().map(|w| (w, advice.as_str()))));
        ctx.record(Entry::Power { room: room.clone() })?;
        let said = not_copied.unwrap_or_else(|| "no power to give".into());
        ctx.item(Stage::Power, &room, said);
        return Ok(());
    };
    match rooms::raise_power(client, &room, ctx.new_user, level) {
        Ok(sent) => given(ctx, slot, &room, level, sent)?,
        Err(online::Error::Cancelled { .. }) => {}
        Err(e) if rooms::is_forbidden(&e) => {
            slot.with(|o| o.partial(format!("power not copied: {e}"), advice));
            ctx.item(Stage::Power, &room, format!("power not copied: {e}"));
        }
        Err(e) => {
            slot.with(|o| o.fail(format!("power not copied: {e}")));
            ctx.item(Stage::Power, &room, format!("failed: {e}"));
        }
    }
    Ok(())
}

/// The level is there (`sent`: given in this run): recorded, and the room finished.
fn given(
    ctx: &Ctx<'_>,
    slot: &RoomSlot,
    room: &str,
    level: i64,
    sent: bool,
) -> Result<(), JournalError> {
    ctx.record(Entry::Power {
        room: room.to_owned(),
    })?;
    slot.with(|o| {
        if sent {
            o.done.push(Done::Power(level));
        }
        o.finished(None)
    });
    let said = match sent {
        true => format!("power {level}"),
        false => format!("already has power {level}"),
    };
    ctx.item(Stage::Power, room, said);
    Ok(())
}
