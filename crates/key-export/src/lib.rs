//! Element / Matrix end-to-end room-key export files.
//!
//! An export is a passphrase-encrypted JSON array of Megolm sessions wrapped in a text
//! armour (Matrix spec, client-server API, "Key exports"). This crate reads every layout
//! real clients write, writes what Element writes, and filters and merges exports so a
//! new account receives exactly the keys of the rooms it takes over, one best copy of
//! each session.
//!
//! Layers, one module each:
//! - [`armor`]: the BEGIN/END text and base64, streamed;
//! - [`container`]: header, PBKDF2, HMAC-SHA-256 and AES-256-CTR (64-bit counter);
//! - [`entries`]: the decrypted JSON array, split without copying;
//! - [`session`]: one exported session, checked; [`ExportedSession`] to build one;
//! - [`point`]: whether a signing key is a curve point, as importers decode it;
//! - [`inspect`]: what a file holds, without writing any key;
//! - [`select`] and [`merge`]: the rooms that move, one best copy of each session;
//! - [`pipeline`]: filter/merge end to end, overlapped across cores.
//!
//! ```
//! use key_export::{container, Passphrase};
//! let pass = Passphrase::new("correct horse".into());
//! let text = container::encrypt(b"[]", &pass, 1000).unwrap();
//! let plain = container::decrypt(text.as_bytes(), 0, &pass, &Default::default()).unwrap();
//! assert_eq!(plain.as_bytes(), b"[]");
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod armor;
pub mod container;
pub mod entries;
pub mod error;
pub mod inspect;
pub mod merge;
pub mod passphrase;
pub mod pipeline;
pub mod point;
pub mod select;
pub mod session;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use container::{Plaintext, ReadOptions, Rounds, SealingKey};
pub use error::{Error, Result};
pub use passphrase::Passphrase;
pub use session::{EntryText, ExportedSession, Invalid, SessionRef};
