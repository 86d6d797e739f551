//! The jobs of moving a Matrix account, each one library call: a typed request in (inputs
//! already opened, secrets already resolved to values), events out while it runs, a typed
//! report back. A job never prints, prompts or exits; the command-line tool (and any later
//! front end) renders its events and its report.
//!
//! - [`events`]: what a job tells while it runs, and the sink it tells it to;
//! - [`keys`]: room keys into and out of an account's server-side key backup;
//! - [`direct`]: the DM list (`m.direct`): the new account's built from the old one's,
//!   read from and merged into an account;
//! - [`rooms`]: the old account's rooms listed, the move planned, and the move itself;
//! - [`account_move`]: the whole move as one resumable job (`move run`), and its report;
//! - [`account_data`]: the ignore list, push rules and profile copied;
//! - [`verify`]: the result checked as the new account, without a crypto device;
//! - [`journal`]: what a move did and decided, phase by phase and room by room, to resume it;
//! - [`connect`]: the accounts a job works with;
//! - [`by_hand`]: what a move leaves to do by hand, always with what to do;
//! - [`output`]: a file written whole or not at all;
//! - [`plan_file`]: the plan of a whole move (`move.toml`).
//!
//! The jobs that need no account (decrypt, inspect, encrypt, filter and merge a key
//! export) are `key_export::pipeline`'s; those of `m.direct` files alone are
//! `m_direct`'s (`build`, `merge`, `check`). This crate is where the libraries meet a
//! homeserver.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod account_data;
pub mod account_move;
pub mod by_hand;
pub mod connect;
pub mod direct;
pub mod error;
pub mod events;
#[cfg(feature = "testkit")]
pub mod fuzz;
pub mod journal;
pub mod keys;
pub mod output;
pub mod plan_file;
pub mod rooms;
pub mod verify;

pub use error::{Error, Result};
pub use events::{Event, Events, Limit, Silent, Stage};
