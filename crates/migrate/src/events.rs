//! What a job tells while it runs. The job does not know who listens: a terminal's
//! progress bars, JSON lines for scripts, nothing at all, or a test recording them.

use serde::Serialize;

/// A stage of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Checking the recovery key against the account's backup.
    CheckBackup,
    /// Reading, decrypting and merging key exports.
    ReadExports,
    /// Encrypting sessions to the backup key and uploading them.
    Upload,
    /// Downloading and decrypting the backup.
    Download,
    /// Writing a new key export.
    WriteExport,
    /// Reading the rooms' state, the accounts' memberships and history settings.
    ReadRooms,
    /// Inviting the new account (old account).
    Invite,
    /// Joining, checking the membership, copying tags (new account).
    Join,
    /// Giving the new account the old account's power (old account).
    Power,
    /// Adding the moved DMs to the new account's m.direct.
    Direct,
    /// Checking, as the new account, what history it can read.
    History,
    /// Copying the account data (ignore list, push rules, profile).
    AccountData,
    /// Checking the result as the new account: joins, and the keys of what it can see.
    Verify,
    /// Renaming the old account.
    Rename,
    /// Leaving with the old account.
    Leave,
}

/// The limit a wait is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// Invites into the new account (`rc_invites`).
    Invites,
    /// The new account's joins (`rc_joins`).
    Joins,
    /// The old account's events: power levels, leaves (`rc_message`).
    Messages,
    /// Another server's, over federation (it sends no time: a backoff).
    Remote,
    /// Any other rate limit of the server.
    Server,
    /// A retry after a server error or a broken connection.
    Retry,
}

/// One thing a job tells.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A stage began; `total` is the work it has, when known.
    Started {
        /// The stage.
        stage: Stage,
        /// Items to do, when known.
        total: Option<u64>,
    },
    /// Work done so far in a stage.
    Progress {
        /// The stage.
        stage: Stage,
        /// Items done.
        done: u64,
        /// Items in all.
        total: u64,
    },
    /// A stage ended.
    Finished {
        /// The stage.
        stage: Stage,
    },
    /// A stage waits before it sends again.
    Waiting {
        /// The stage.
        stage: Stage,
        /// For how long, in milliseconds.
        ms: u64,
        /// Until when (milliseconds since 1970).
        until_ms: u64,
        /// Which limit holds it, for scripts.
        limit: Limit,
        /// Which limit holds it, in words.
        cause: String,
    },
    /// One item (a room) is done with in a stage.
    Item {
        /// The stage.
        stage: Stage,
        /// The item (a room ID).
        item: String,
        /// What came of it, in words.
        outcome: String,
    },
}

/// Where a job's events go.
pub trait Events: Sync {
    /// Receives one event. Must not block for long: the job waits for it.
    fn emit(&self, event: Event);
}

/// Nobody listens.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Events for Silent {
    fn emit(&self, _: Event) {}
}

impl<F: Fn(Event) + Sync> Events for F {
    fn emit(&self, event: Event) {
        self(event)
    }
}

/// Runs `work` as `stage`, with its Started and Finished events around it.
pub(crate) fn stage<T>(
    events: &dyn Events,
    stage: Stage,
    total: Option<u64>,
    work: impl FnOnce() -> T,
) -> T {
    events.emit(Event::Started { stage, total });
    let value = work();
    events.emit(Event::Finished { stage });
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialise_as_tagged_json_lines() {
        let e = Event::Progress {
            stage: Stage::Upload,
            done: 3,
            total: 10,
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"event":"progress","stage":"upload","done":3,"total":10}"#
        );
    }
}
