//! A small blocking client of the Matrix client-server API, for what a migration needs:
//! the `m.direct` account data and server-side key backup
//! (`m.megolm_backup.v1.curve25519-aes-sha2`).
//!
//! - [`client`]: homeserver URL policy and discovery, access tokens, password login,
//!   requests with rate-limit handling;
//! - [`versions`]: the spec versions and unstable features a server announces;
//! - [`session`]: a token, or a login (OAuth 2.0, SSO, password), closed at the end when
//!   this tool opened it;
//! - [`login`] and [`loopback`]: what a server offers, and the browser logins through a
//!   listener on 127.0.0.1; [`auth`]: the token in force, renewed before it expires;
//! - [`direct`]: GET, merge and PUT `m.direct` (a PUT replaces the whole object);
//! - [`rooms`]: the rooms an account is in, their state, invites, joins, leaves, power
//!   levels, tags, display names and the timeline, for moving rooms;
//! - [`secret_storage`]: the account's secrets (the backup's key among them), opened
//!   with the recovery key Element shows;
//! - [`backup`]: the recovery key, the backup version, encrypting sessions to the backup
//!   key, uploading them in pipelined batches, downloading and decrypting them.
//!
//! Keys are uploaded only to a backup whose public key equals the one derived from the
//! recovery key the user gave: a server cannot substitute a key of its own.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod account;
pub mod auth;
pub mod backup;
pub mod client;
pub mod direct;
pub mod error;
pub mod homeserver;
pub mod login;
pub mod loopback;
pub mod membership;
pub mod retry;
pub mod rooms;
pub mod secret_storage;
pub mod session;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod tls;
pub mod token;
pub mod versions;
pub mod wire;

pub use client::{AccessToken, Client, Homeserver};
pub use error::{Error, Result};
pub use session::{Closer, Credentials, Session, SessionOptions};
pub use tls::Trust;
