//! Matrix `m.direct` account data: which rooms are direct chats, and with whom.
//!
//! The content maps a user identifier to the list of its DM room IDs:
//! `{"@alice:example.org": ["!abc:example.org"]}`. Real accounts also hold 3PID keys
//! (e.g. an email address invited to a DM) and junk: non-array values, non-string room
//! IDs, `!local.…` echo rooms, the account's own ID as a key. This crate keeps whatever it
//! does not understand unless asked to clean it, and reports what it found.
//!
//! - [`map`]: the typed map, read from bare content or a whole event;
//! - [`build`]: the new account's map from the old one and the rooms that move;
//! - [`merge`]: union of maps, per user, stable order;
//! - [`check`]: what is wrong with a map, and the cleaned map.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod build;
pub mod check;
pub mod ids;
pub mod map;
pub mod merge;

pub use map::{DirectMap, ParseError};
