//! The steps of one room's move, one file each. Every step reads the server first (a rerun
//! never invites twice nor sends a second power-level event), records what it did in the
//! journal before the next step, and turns what happened into the room's outcome: it
//! returns whether the room goes on to the next stage. A step stopped by the cancel flag
//! leaves the room as it is (the journal resumes it).

mod history;
mod invite;
mod join;
mod power;
mod tags;
mod take_plan;

pub(crate) use history::check_history;
pub(crate) use invite::invite;
pub(crate) use join::join;
pub(crate) use power::give_power;
pub(crate) use take_plan::{take_plan, Next};
