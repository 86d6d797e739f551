//! Moving rooms from the old account to the new one: listing them, planning the move,
//! and the move itself (resumable, at the pace the servers' rate limits allow).
//!
//! - [`facts`]: what a room's state says (version, creators, power, join rule, ACL);
//! - [`history`]: what the new account will be able to read, checked after the join;
//! - [`list`]: the old account's rooms, read for the rooms file;
//! - [`rooms_file`]: the rooms file, written and read;
//! - [`plan`]: the steps and blockers of each room, and the expected duration;
//! - [`moving`]: the move, its stages running side by side;
//! - `leave`: the steps a user cannot undo, the rename and the leave, each room's leave
//!   right after a fresh check that it is safe.

pub mod facts;
pub mod history;
pub mod invite_rules;
pub(crate) mod leave;
pub mod list;
pub mod moving;
pub mod plan;
pub mod rooms_file;

pub use plan::Pair;
