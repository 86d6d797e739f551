//! One module per command group, as cargo has them: each declares its subcommands' arguments
//! and turns them into one library call (arguments → request → one call → print).

pub mod direct;
pub mod download;
pub mod keys;
pub mod moves;
pub mod rooms;
pub mod ui;
pub mod upload;
