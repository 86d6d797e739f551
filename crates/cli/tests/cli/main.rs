//! The binary's tests, end to end: one test crate (one link step), one module per command
//! group, helpers in `support`. Tests that need Synapse, the fake identity provider, MAS,
//! Node or Element's engine fail loudly when they are missing (`scripts/test-all` starts
//! and installs them).

mod direct;
mod filter_merge;
mod keys;
mod login;
mod manual;
mod moves;
mod real_client;
mod rooms;
mod support;
mod testkit;
mod ui;
mod upload_download;
