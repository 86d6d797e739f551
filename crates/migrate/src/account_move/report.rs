//! What a whole move did (or, dry, would do): typed for scripts (serialised as JSON; the binary
//! adds its `format`), and rendered as Markdown for people.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::keys::Problem;
use crate::account_data::AccountDataReport;
use crate::rooms::moving::{MoveReport, Status};
use crate::rooms::plan::{human_duration, Pair, Plan};

/// The name the old account's backup goes by among the key sources.
pub const OLD_BACKUP: &str = "the old account's key backup";

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
    Copied(AccountDataReport),
}

impl From<Skip> for AccountDataPhase {
    fn from(s: Skip) -> Self {
        AccountDataPhase::Skipped(s)
    }
}

impl From<AccountDataReport> for AccountDataPhase {
    fn from(r: AccountDataReport) -> Self {
        AccountDataPhase::Copied(r)
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
    /// The account data.
    pub account_data: AccountDataPhase,
    /// What is left to do by hand.
    pub by_hand: Vec<ByHand>,
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
            account_data: Skip::NotReached.into(),
            by_hand: Vec::new(),
            ending: Ending::Stopped,
            changed: false,
            seconds: 0.0,
        }
    }

    /// Works out what is left to do by hand, whether anything changed, and the ending
    /// (`stopped`: the run was stopped before its end).
    pub(crate) fn conclude(&mut self, stopped: bool) {
        let mut by_hand = Vec::new();
        let mut changed = false;
        let mut unfinished = false;
        if let KeysPhase::Done(k) = &self.keys {
            changed |= k.sent > 0;
        }
        if let Some(k) = &self.keys_last {
            changed |= k.sent > 0;
        }
        if let AccountDataPhase::Copied(a) = &self.account_data {
            changed |= !a.dry_run
                && (!a.ignored_added.is_empty()
                    || !a.rules.changes.is_empty()
                    || a.displayname.is_some()
                    || a.avatar.is_some());
        }
        match &self.rooms {
            RoomsPhase::NotReached => unfinished = true,
            RoomsPhase::Planned(plan) => {
                for r in &plan.rooms {
                    for (why, what) in r.decision.by_hand(&self.new) {
                        by_hand.push(ByHand {
                            room: Some(r.facts.room_id.clone()),
                            name: r.display_name(),
                            why,
                            what,
                        });
                    }
                }
            }
            RoomsPhase::Moved(m) => {
                changed |= !m.direct_added.is_empty() || m.rename_sent;
                for o in &m.rooms {
                    changed |= !o.done.is_empty();
                    let why = o.reasons.join("; ");
                    match o.status {
                        Status::Blocked | Status::Partial => by_hand.push(ByHand {
                            room: Some(o.room_id.clone()),
                            name: o.name.clone(),
                            why,
                            what: o.advice.join("; "),
                        }),
                        Status::Failed | Status::NotDone => unfinished = true,
                        Status::Moved | Status::AlreadyMoved => {}
                    }
                }
            }
        }
        self.by_hand = by_hand;
        self.changed = changed;
        self.ending = if stopped {
            Ending::Stopped
        } else if unfinished || !self.by_hand.is_empty() || !self.problems.is_empty() {
            Ending::LeftToDo
        } else {
            Ending::Complete
        };
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

    /// The report for people.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let w = &mut md;
        let title = if self.dry_run {
            "Plan of the move"
        } else {
            "Move"
        };
        let _ = writeln!(w, "# {title}: {} → {}\n", self.old, self.new);
        let verdict = match (self.dry_run, self.ending) {
            (true, _) => "A dry run: everything was read, nothing was written anywhere.",
            (false, Ending::Complete) => "The move is complete.",
            (false, Ending::LeftToDo) => {
                "The move ran to its end; some things are left (see below)."
            }
            (false, Ending::Stopped) => {
                "The move was stopped before the end: run the same command again to resume."
            }
        };
        let unchanged = if !self.dry_run && !self.changed {
            " This run changed nothing: everything it could do was done before."
        } else {
            ""
        };
        let _ = writeln!(w, "{verdict}{unchanged}\n");
        if !self.problems.is_empty() {
            let _ = writeln!(
                w,
                "## Problems to fix first\n\nThe move would stop at the first of these, before \
                 writing anything:\n"
            );
            for p in &self.problems {
                let _ = writeln!(w, "- **{}**: {}", p.what, p.why);
            }
            w.push('\n');
        }

        let _ = writeln!(w, "## Room keys\n");
        match &self.keys {
            KeysPhase::Skipped { why } => {
                let _ = writeln!(w, "Not moved: {why}.\n");
            }
            KeysPhase::DoneEarlier { detail } => {
                let _ = writeln!(w, "Done in an earlier run: {detail}.\n");
            }
            KeysPhase::Done(k) => keys_markdown(w, k),
        }
        if !self.dry_run {
            match &self.keys_last {
                Some(k) => {
                    let _ = writeln!(
                        w,
                        "Right before the leaves, the old account's backup was read again for \
                         the keys it received during the move: {} sent to the new backup.\n",
                        count(k.sent, "more session was", "more sessions were")
                    );
                }
                None if matches!(
                    self.keys,
                    KeysPhase::Done(_) | KeysPhase::DoneEarlier { .. }
                ) =>
                {
                    let _ = writeln!(
                        w,
                        "Key exports hold what their device had when they were made. The keys of \
                         messages sent in a moving room before the new account joined it came \
                         only to the old account's devices: without the old account's recovery \
                         key in the plan they are not in the new backup (export again from a \
                         device of the old account, and run the move again).\n"
                    );
                }
                None => {}
            }
        }

        let _ = writeln!(w, "## Rooms\n");
        match &self.rooms {
            RoomsPhase::NotReached => {
                let _ = writeln!(w, "Not reached.\n");
            }
            RoomsPhase::Planned(p) => plan_markdown(w, p),
            RoomsPhase::Moved(m) => moved_markdown(w, m),
        }

        let _ = writeln!(w, "## DMs\n");
        match &self.rooms {
            RoomsPhase::Planned(_) => {
                let _ = writeln!(
                    w,
                    "{} DM(s) to add to the new account's m.direct.\n",
                    self.direct_planned.len()
                );
            }
            RoomsPhase::Moved(m) => {
                let _ = writeln!(
                    w,
                    "{} DM(s) added to the new account's m.direct in this run.\n",
                    m.direct_added.len()
                );
            }
            RoomsPhase::NotReached => {
                let _ = writeln!(w, "Not reached.\n");
            }
        }

        let _ = writeln!(w, "## Account data\n");
        match &self.account_data {
            AccountDataPhase::Skipped(Skip::DoneEarlier { detail }) => {
                let _ = writeln!(w, "Done in an earlier run: {detail}.\n");
            }
            AccountDataPhase::Skipped(Skip::NotAsked) => {
                let _ = writeln!(w, "Not asked for in the plan.\n");
            }
            AccountDataPhase::Skipped(Skip::NotReached) => {
                let _ = writeln!(w, "Not reached.\n");
            }
            AccountDataPhase::Copied(a) => {
                let _ = writeln!(w, "{}.\n", account_data_line(a));
                for s in &a.rules.skipped {
                    let _ = writeln!(
                        w,
                        "- push rule {} `{}` not copied: {}",
                        s.kind, s.rule_id, s.why
                    );
                }
                if !a.rules.skipped.is_empty() {
                    w.push('\n');
                }
            }
        }

        if let RoomsPhase::Moved(m) = &self.rooms {
            if let Some(name) = &m.renamed {
                let _ = writeln!(w, "The old account is now called \"{name}\".\n");
            }
        }

        let _ = writeln!(w, "## Left to do by hand\n");
        if self.by_hand.is_empty() {
            let _ = writeln!(w, "Nothing.\n");
        }
        for b in &self.by_hand {
            let _ = writeln!(w, "- {}", b.line());
        }
        if !self.by_hand.is_empty() {
            w.push('\n');
        }
        let _ = writeln!(
            w,
            "## On your devices\n\nSign in to {} in Element (Web, desktop or X). Then verify \
             the new session from another one, or enter the new account's recovery key when \
             it asks: only then does the client read the room keys from the backup and show \
             the old messages. Until then they show as \"Unable to decrypt\".",
            self.new
        );
        md
    }
}

/// One line on the account data copied.
pub fn account_data_line(a: &AccountDataReport) -> String {
    let verb = if a.dry_run { "to copy" } else { "copied" };
    format!(
        "{verb}: {} ignored user(s), {} push rule change(s){}{}",
        a.ignored_added.len(),
        a.rules.changes.len(),
        if a.displayname.is_some() {
            ", the display name"
        } else {
            ""
        },
        if a.avatar.is_some() {
            ", the avatar"
        } else {
            ""
        }
    )
}

fn keys_markdown(w: &mut String, k: &KeysDone) {
    let rooms = count(k.rooms.len(), "moving room", "moving rooms");
    if k.backup_version.is_empty() {
        let _ = writeln!(
            w,
            "{} of {rooms} after the merge; the new account's backup could not be opened (see \
             the problems above), so all of them are counted as to send.\n",
            count(k.sessions, "session", "sessions"),
        );
    } else {
        let _ = writeln!(
            w,
            "{} of {rooms} after the merge; {} {} the new account's backup (version {}), {} \
             there already at least as good.\n",
            count(k.sessions, "session", "sessions"),
            if k.dry_run { k.to_send } else { k.sent },
            if k.dry_run {
                "would go into"
            } else {
                "went into"
            },
            k.backup_version,
            count(k.sessions - k.to_send, "was", "were"),
        );
    }
    let _ = writeln!(w, "| source | entries read |\n|---|---|");
    for (name, read) in &k.sources {
        let _ = writeln!(w, "| {name} | {read} |");
    }
    w.push('\n');
    if let Some(b) = &k.old_backup {
        let _ = writeln!(
            w,
            "The old account's backup (version {}) was opened with its recovery key: {}.\n",
            b.version,
            match b.opened_via {
                online::backup::Via::SecretStorage =>
                    "through its secret storage, as Element sets it up",
                online::backup::Via::BackupKey => "the key is the backup's own (the older layout)",
                online::backup::Via::BackupPhrase =>
                    "the phrase gives the backup's own key (the older layout)",
            }
        );
        if !b.skipped.is_empty() {
            let _ = writeln!(
                w,
                "{} entries of the old backup (version {}) were left out (they do not decrypt \
                 or do not belong where the server stores them).\n",
                b.skipped.len(),
                b.version
            );
        }
    }
    if k.conflicts + k.dropped_invalid > 0 {
        let _ = writeln!(
            w,
            "{} conflicting copies (the first kept) and {} invalid entries left out: \
             `matrix-transplant keys filter` on the exports names them.\n",
            k.conflicts, k.dropped_invalid
        );
    }
    let _ = writeln!(
        w,
        "| room | sessions | {} |\n|---|---|---|",
        if k.dry_run { "to send" } else { "sent" }
    );
    for (room, r) in &k.rooms {
        let _ = writeln!(w, "| {room} | {} | {} |", r.sessions, r.to_send);
    }
    w.push('\n');
    if !k.rooms_without_keys.is_empty() {
        let _ = writeln!(
            w,
            "No source has keys for {} moving room(s): {}.\n",
            k.rooms_without_keys.len(),
            k.rooms_without_keys.join(", ")
        );
    }
}

/// Text from a server, fit for one table cell: no line breaks, no pipes, no control
/// characters.
fn cell(s: &str) -> String {
    online::client::printable(&s.replace('|', "\\|").replace('\n', " "))
}

fn plan_markdown(w: &mut String, p: &Plan) {
    let _ = writeln!(
        w,
        "| room | name | steps or blocker | history |\n|---|---|---|---|"
    );
    for r in &p.rooms {
        let what = if let Some(b) = r.decision.blockers.first() {
            format!("BLOCKED: {}", b.reason)
        } else if r.done() {
            "none (already moved)".into()
        } else {
            r.decision
                .steps
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} |",
            r.facts.room_id,
            cell(r.facts.name.as_deref().unwrap_or("")),
            cell(&what),
            cell(r.history_verdict.as_str())
        );
    }
    let e = &p.estimate;
    let _ = writeln!(
        w,
        "\n{} invites, {} joins ({} into rooms the new server is not in yet), {} events from \
         the old account. Expected duration at stock Synapse rate limits: {}.\n",
        e.invites,
        e.joins,
        e.remote_joins,
        e.old_events,
        human_duration(e.seconds)
    );
    if e.seconds > 3600 {
        let _ = writeln!(w, "{}\n", crate::rooms::plan::speed_up_advice(&p.old));
    }
}

fn moved_markdown(w: &mut String, m: &MoveReport) {
    let _ = writeln!(
        w,
        "| room | name | status | done in this run | history |\n|---|---|---|---|---|"
    );
    for o in &m.rooms {
        let status = serde_json::to_value(o.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} |",
            o.room_id,
            cell(o.name.as_deref().unwrap_or("")),
            status,
            cell(&o.done.join(", ")),
            cell(o.history.as_str())
        );
    }
    w.push('\n');
    for o in &m.rooms {
        if let Some(why) = &o.stayed {
            let _ = writeln!(w, "- the old account stays in {}: {why}", o.room_id);
        }
        for n in &o.notes {
            let _ = writeln!(w, "- {}: {n}", o.room_id);
        }
    }
    let _ = writeln!(w, "\n{} rate-limit waits; {:.0} s.\n", m.waits, m.seconds);
}
