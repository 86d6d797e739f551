//! What a whole move did (or, dry, would do): typed for scripts (serialised as JSON; the binary
//! adds its `format`), and rendered as Markdown for people.

use std::collections::BTreeMap;

use matrix_ids::text::printable;
use serde::Serialize;

use super::keys::Problem;
use crate::account_data::AccountDataReport;
use crate::rooms::moving::{MoveReport, Status};
use crate::rooms::plan::{Pair, Plan};

/// A phase not run, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Skip {
    /// An earlier run did it (the journal says what it did).
    DoneEarlier {
        /// What it did.
        detail: String,
    },
    /// The plan does not ask for it.
    NotAsked,
    /// The run stopped before it.
    NotReached,
}

/// The keys phase.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum KeysPhase {
    /// Not run: nothing to read, or nowhere to put the keys.
    Skipped {
        /// Why.
        why: String,
    },
    /// An earlier run did it.
    DoneEarlier {
        /// What it did.
        detail: String,
    },
    /// Done in this run (or, in a dry run, read and compared).
    Done(KeysDone),
}

/// The room keys read, merged and sent.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct KeysDone {
    /// Each source and the entries read from it.
    pub sources: Vec<(String, usize)>,
    /// The old account's backup, when read.
    pub old_backup: Option<OldBackup>,
    /// Sessions of the moving rooms after the merge (one best copy each).
    pub sessions: usize,
    /// Of those, the ones that improve the new account's backup.
    pub to_send: usize,
    /// Sent in this run (0 in a dry run).
    pub sent: usize,
    /// The new account's backup version (empty when a dry run could not open it).
    pub backup_version: String,
    /// Sessions the backup holds after the upload (as the server says).
    pub backup_count_after: u64,
    /// Sessions per moving room.
    pub rooms: BTreeMap<String, RoomKeys>,
    /// Moving rooms no source has keys for.
    pub rooms_without_keys: Vec<String>,
    /// Extra copies folded into one.
    pub duplicates_merged: usize,
    /// Conflicting copies (the first was kept).
    pub conflicts: usize,
    /// Invalid entries left out.
    pub dropped_invalid: usize,
    /// Nothing was sent (a dry run).
    pub dry_run: bool,
}

impl KeysDone {
    /// One line for the journal and `move status`.
    pub fn summary_line(&self) -> String {
        format!(
            "{} of {} from {}; {} sent to backup version {}, {} there already",
            count(self.sessions, "session", "sessions"),
            count(self.rooms.len(), "room", "rooms"),
            count(self.sources.len(), "source", "sources"),
            self.sent,
            self.backup_version,
            count(self.sessions - self.to_send, "was", "were")
        )
    }
}

/// `n` and the word for it: "1 source", "2 sources".
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The old account's backup as a source.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct OldBackup {
    /// Its version.
    pub version: String,
    /// How its key was found (secret storage, or the older layout).
    pub opened_via: online::backup::Via,
    /// Sessions of the moving rooms read from it.
    pub sessions: usize,
    /// Entries left out, and why.
    pub skipped: Vec<online::backup::Skipped>,
}

/// One moving room's keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct RoomKeys {
    /// Sessions after the merge.
    pub sessions: usize,
    /// Of those, the ones that improved the backup (sent, or to send in a dry run).
    pub to_send: usize,
}

/// The rooms phase.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RoomsPhase {
    /// The run stopped before it.
    NotReached,
    /// A dry run's plan.
    Planned(Plan),
    /// The move (with the DMs, the rename and the leaves).
    Moved(MoveReport),
}

/// The account-data phase.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum AccountDataPhase {
    /// Not run.
    Skipped(Skip),
    /// Copied (or, dry, what would be).
    Copied(Box<AccountDataReport>),
}

impl From<Skip> for AccountDataPhase {
    fn from(s: Skip) -> Self {
        AccountDataPhase::Skipped(s)
    }
}

impl From<AccountDataReport> for AccountDataPhase {
    fn from(r: AccountDataReport) -> Self {
        AccountDataPhase::Copied(Box::new(r))
    }
}

pub use crate::by_hand::ByHand;

/// How a run ended, for the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// Everything moved (or, dry, everything can).
    Complete,
    /// The run went to its end, but something is left to do by hand, or a step failed
    /// (a rerun retries it).
    LeftToDo,
    /// Stopped before the end: run again to resume.
    Stopped,
}

/// What a whole move did.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Report {
    /// The old account.
    pub old: String,
    /// The new account.
    pub new: String,
    /// Nothing was written: this is the plan.
    pub dry_run: bool,
    /// The room keys.
    pub keys: KeysPhase,
    /// The last keys pass, right before the rename and the leaves: keys the old account
    /// received during the move, from its backup (none without the old recovery key).
    pub keys_last: Option<KeysDone>,
    /// The rooms, the DMs, the rename and the leaves.
    pub rooms: RoomsPhase,
    /// A dry run's (peer, room) pairs that the new account's m.direct would get.
    pub direct_planned: Vec<(String, String)>,
    /// What a dry run found that would stop the move (a real run stops at the first).
    pub problems: Vec<Problem>,
    /// The new account's invite setting opened to the old account's invites for the move
    /// (a dry run: that would be).
    pub invites_opened: Option<String>,
    /// The invite setting put back as it was, once the invites were done.
    pub invites_restored: Option<String>,
    /// The account data.
    pub account_data: AccountDataPhase,
    /// What is left to do by hand.
    pub by_hand: Vec<ByHand>,
    /// The result checked as the new account at the end of a run that got through the
    /// rooms: joins, and the keys of the encrypted messages it can see.
    pub verification: Option<crate::verify::Verification>,
    /// How it ended.
    pub ending: Ending,
    /// This run changed something on a server (false: a rerun found everything done).
    pub changed: bool,
    /// Seconds the run took.
    pub seconds: f64,
}

impl Report {
    pub(crate) fn new(pair: &Pair<'_>, dry_run: bool) -> Self {
        Report {
            old: pair.old.user_id().to_owned(),
            new: pair.new.user_id().to_owned(),
            dry_run,
            keys: KeysPhase::Skipped {
                why: "not reached".into(),
            },
            keys_last: None,
            rooms: RoomsPhase::NotReached,
            direct_planned: Vec::new(),
            problems: Vec::new(),
            invites_opened: None,
            invites_restored: None,
            account_data: Skip::NotReached.into(),
            by_hand: Vec::new(),
            verification: None,
            ending: Ending::Stopped,
            changed: false,
            seconds: 0.0,
        }
    }

    /// Works out what is left to do by hand, whether anything changed, and the ending
    /// (`stopped`: the run was stopped before its end).
    pub(crate) fn conclude(&mut self, stopped: bool) {
        let (by_hand, unfinished) = match &self.rooms {
            RoomsPhase::NotReached => (Vec::new(), true),
            RoomsPhase::Planned(plan) => (planned_by_hand(plan, &self.new), false),
            RoomsPhase::Moved(m) => moved_by_hand(m),
        };
        self.by_hand = by_hand;
        self.changed = self.changed_anything();
        self.ending = if stopped {
            Ending::Stopped
        } else if unfinished || !self.by_hand.is_empty() || !self.problems.is_empty() {
            Ending::LeftToDo
        } else {
            Ending::Complete
        };
    }

    /// Whether this run changed anything on a server.
    fn changed_anything(&self) -> bool {
        let keys = self
            .keys_last
            .iter()
            .chain(self.keys_done())
            .any(|k| k.sent > 0);
        let data = match &self.account_data {
            AccountDataPhase::Copied(a) => !a.dry_run && a.changes_anything(),
            AccountDataPhase::Skipped(_) => false,
        };
        let rooms = match &self.rooms {
            RoomsPhase::Moved(m) => {
                !m.direct_added.is_empty()
                    || m.rename_sent
                    || m.rooms.iter().any(|o| !o.done.is_empty())
            }
            _ => false,
        };
        keys || data || rooms
    }

    fn keys_done(&self) -> Option<&KeysDone> {
        match &self.keys {
            KeysPhase::Done(k) => Some(k),
            _ => None,
        }
    }

    /// One line for the journal and `move status`.
    pub fn summary_line(&self) -> String {
        let rooms = match &self.rooms {
            RoomsPhase::Moved(m) => {
                let n = |s: Status| m.rooms.iter().filter(|o| o.status == s).count();
                format!(
                    "{} rooms moved ({} in earlier runs), {} blocked, {} partly",
                    n(Status::Moved) + n(Status::AlreadyMoved),
                    n(Status::AlreadyMoved),
                    n(Status::Blocked),
                    n(Status::Partial)
                )
            }
            _ => "rooms not moved".into(),
        };
        format!("{rooms}; {} things left to do by hand", self.by_hand.len())
    }

    /// The report for people (Markdown).
    pub fn markdown(&self) -> String {
        super::markdown::report(self)
    }
}

/// What a plan leaves by hand: each room's blockers and the power it cannot give.
fn planned_by_hand(plan: &Plan, new: &str) -> Vec<ByHand> {
    let mut by_hand = Vec::new();
    for r in &plan.rooms {
        for (why, what) in r.decision.by_hand(new) {
            by_hand.push(ByHand {
                room: Some(r.facts.room_id.clone()),
                name: r.display_name(),
                why,
                what,
            });
        }
    }
    by_hand
}

/// What a move left by hand (the blocked and partly moved rooms), and whether a step
/// failed or was not reached (a rerun retries it).
fn moved_by_hand(m: &MoveReport) -> (Vec<ByHand>, bool) {
    let mut by_hand = Vec::new();
    let mut unfinished = false;
    for o in &m.rooms {
        match o.status {
            Status::Blocked | Status::Partial => by_hand.push(ByHand {
                room: Some(o.room_id.clone()),
                name: o.name.clone(),
                why: o.reasons.join("; "),
                what: o.advice.join("; "),
            }),
            Status::Failed | Status::NotDone => unfinished = true,
            Status::Moved | Status::AlreadyMoved => {}
        }
    }
    (by_hand, unfinished)
}

/// One line on the account data copied.
pub fn account_data_line(a: &AccountDataReport) -> String {
    let verb = if a.dry_run { "to copy" } else { "copied" };
    let mut parts = vec![
        format!("{} ignored user(s)", a.ignored_added.len()),
        format!("{} push rule change(s)", a.rules.changes.len()),
    ];
    if a.displayname.is_some() {
        parts.push("the display name".into());
    }
    if a.avatar.is_some() {
        parts.push("the avatar".into());
    }
    if !a.profile_fields.is_empty() {
        let fields: Vec<String> = a.profile_fields.iter().map(|f| printable(f)).collect();
        parts.push(format!("profile field(s) {}", fields.join(", ")));
    }
    let emoji = a.recent_emoji.added.len() + a.recent_emoji.raised.len();
    if emoji > 0 {
        parts.push(format!("{emoji} recent emoji"));
    }
    if !a.image_packs.added.is_empty() {
        parts.push(format!(
            "the image packs of {} room(s)",
            a.image_packs.added.len()
        ));
    }
    let mut line = format!("{verb}: {}", parts.join(", "));
    if !a.image_packs.left_behind.is_empty() {
        line.push_str(&format!(
            "; the image packs of {} room(s) that do not move stay behind",
            a.image_packs.left_behind.len()
        ));
    }
    line
}
