//! The read stage's step: a room's plan (read from its state) taken into its outcome, the
//! level decided for the new account recorded, and where the room goes next.

use super::super::ctx::Ctx;
use super::super::outcome::RoomSlot;
use crate::events::Stage;
use crate::journal::{Entry, JournalError};
use crate::rooms::plan::{RoomPlan, Step};

/// Where a room read goes next.
pub(crate) enum Next {
    /// The old account invites the new one first.
    Invite,
    /// The new account joins (no invite needed, or it has one).
    Join,
}

/// Takes `plan` into the room's outcome; where it goes next, if anywhere.
pub(crate) fn take_plan(
    ctx: &Ctx<'_>,
    slot: &RoomSlot,
    plan: Result<RoomPlan, crate::Error>,
) -> Result<Option<Next>, JournalError> {
    let room = slot.room_id();
    let mut plan = match plan {
        Ok(plan) => plan,
        Err(crate::Error::Online(online::Error::Cancelled { .. })) => return Ok(None),
        Err(e) => {
            slot.with(|o| o.fail(format!("cannot read the room: {e}")));
            ctx.item(Stage::ReadRooms, &room, format!("failed: {e}"));
            return Ok(None);
        }
    };
    settle_target(ctx, &room, &mut plan)?;
    let blocked = !plan.decision.blockers.is_empty();
    let next = next_of(&plan);
    let reasons = slot.with(|o| {
        o.name = plan.display_name();
        o.history = plan.history_verdict.clone();
        o.notes = plan.decision.notes.clone();
        if blocked {
            o.block(&plan);
        }
        let reasons = o.reasons.join("; ");
        o.plan = Some(plan);
        reasons
    });
    if blocked {
        ctx.item(Stage::ReadRooms, &room, format!("blocked: {reasons}"));
    }
    Ok(next)
}

/// Where a planned room goes: nowhere when blocked, else to the invites or the joins.
fn next_of(plan: &RoomPlan) -> Option<Next> {
    if !plan.decision.blockers.is_empty() {
        None
    } else if plan.decision.steps.contains(&Step::Invite) {
        Some(Next::Invite)
    } else {
        Some(Next::Join)
    }
}

/// The level the new account is owed. The first run's (from the journal) never lowers the
/// one read now: the old account's power may have dropped since (given to the new account
/// and then lowered), or have been raised, and then the higher level is owed. The check
/// before the leave compares with the old account's power at that moment.
fn settle_target(ctx: &Ctx<'_>, room: &str, plan: &mut RoomPlan) -> Result<(), JournalError> {
    let recorded = ctx.journal.lock().expect("journal lock").room(room).planned;
    match recorded {
        Some(target) => {
            plan.decision.target = target.max(plan.decision.target);
            for s in &mut plan.decision.steps {
                if let (Step::Power { level }, Some(t)) = (&mut *s, target) {
                    *level = (*level).max(t);
                }
            }
            Ok(())
        }
        None if plan.decision.blockers.is_empty() => ctx.record(Entry::Planned {
            room: room.to_owned(),
            target: plan.decision.target,
        }),
        None => Ok(()),
    }
}
