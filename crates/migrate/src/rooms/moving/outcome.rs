//! Where each room of a move ends up ([`Status`], [`RoomOutcome`]), and the transitions
//! the steps make: failed (a rerun retries), partial, moved, stayed after the check before
//! the leave.

use std::sync::Mutex;

use serde::Serialize;

use super::super::facts::RoomFacts;
use super::super::history::Probe;
use super::super::plan::RoomPlan;

/// Where a room ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Joined, power given, tags copied.
    Moved,
    /// Nothing was left to do (an earlier run did it).
    AlreadyMoved,
    /// Joined, but the power could not be copied: the old account stays.
    Partial,
    /// It cannot move (see the reasons).
    Blocked,
    /// A step failed (see the reasons); a rerun tries again.
    Failed,
    /// Not reached: the run was stopped.
    NotDone,
}

impl Status {
    /// Its name, as in the JSON report.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Moved => "moved",
            Status::AlreadyMoved => "already_moved",
            Status::Partial => "partial",
            Status::Blocked => "blocked",
            Status::Failed => "failed",
            Status::NotDone => "not_done",
        }
    }
}

/// A step done in a run, as data: the words are for the edge (the report, the terminal;
/// the JSON report carries the same words, e.g. `power 100`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    /// The old account invited the new one.
    Invited,
    /// The new account joined.
    Joined,
    /// The new account was given this power level.
    Power(i64),
    /// This many room tags were copied.
    Tags(usize),
    /// The old account's name in the room got the suffix.
    Renamed,
    /// The old account left.
    Left,
}

impl std::fmt::Display for Done {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Done::Invited => f.write_str("invited"),
            Done::Joined => f.write_str("joined"),
            Done::Power(level) => write!(f, "power {level}"),
            Done::Tags(n) => write!(f, "tags {n}"),
            Done::Renamed => f.write_str("renamed"),
            Done::Left => f.write_str("left"),
        }
    }
}

impl Serialize for Done {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

matrix_ids::string_schema!(Done);

/// Steps done, as words: `invited, joined, power 100`.
pub fn words(done: &[Done]) -> String {
    done.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// One room's outcome.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RoomOutcome {
    /// The room.
    pub room_id: String,
    /// Its name.
    pub name: Option<String>,
    /// Where it ended up.
    pub status: Status,
    /// Steps done in this run (`invited`, `joined`, `power 100`, `tags 2`).
    pub done: Vec<Done>,
    /// Why it is blocked, partial or failed.
    pub reasons: Vec<String>,
    /// What the user can do about it.
    pub advice: Vec<String>,
    /// What the user should know (creator status).
    pub notes: Vec<String>,
    /// The old account left it (in this run or an earlier one).
    pub left: bool,
    /// Why the old account did not leave, when `--leave` was asked.
    pub stayed: Option<String>,
    /// The history verdict.
    pub history: matrix_ids::text::Untrusted,
    /// The verdict, checked as the new account.
    pub probes: Vec<Probe>,
    #[serde(skip)]
    pub(super) plan: Option<RoomPlan>,
}

/// What to do about a step that failed: a rerun.
const RERUN: &str =
    "run the same command again: it resumes where this run stopped, after reading the room again";

impl RoomOutcome {
    /// The new account is in the room (moved fully, earlier, or without the power).
    pub fn in_new_account(&self) -> bool {
        matches!(
            self.status,
            Status::Moved | Status::AlreadyMoved | Status::Partial
        )
    }

    /// A room not reached yet.
    pub(crate) fn new(room: &str) -> Self {
        RoomOutcome {
            room_id: room.to_owned(),
            name: None,
            status: Status::NotDone,
            done: Vec::new(),
            reasons: Vec::new(),
            advice: Vec::new(),
            notes: Vec::new(),
            left: false,
            stayed: None,
            history: Default::default(),
            probes: Vec::new(),
            plan: None,
        }
    }

    /// A step failed: the room is `failed`, and a rerun is the advice (once).
    pub(crate) fn fail(&mut self, why: String) {
        self.status = Status::Failed;
        self.reasons.push(why);
        if !self.advice.iter().any(|a| a == RERUN) {
            self.advice.push(RERUN.into());
        }
    }

    /// The power could not be given: the room is `partial` (the old account stays).
    pub(crate) fn partial(&mut self, why: String, advice: String) {
        self.status = Status::Partial;
        self.reasons.push(why);
        self.advice.push(advice);
    }

    /// The room's last step is done: moved, already moved, or (without the power) partial.
    pub(crate) fn finished(&mut self, not_copied: Option<(&str, &str)>) {
        if self.status == Status::NotDone {
            self.status = if not_copied.is_some() {
                Status::Partial
            } else if self.done.is_empty() {
                Status::AlreadyMoved
            } else {
                Status::Moved
            };
        }
        if let Some((why, advice)) = not_copied {
            self.reasons.push(why.to_owned());
            self.advice.push(advice.to_owned());
        }
    }

    /// The room is blocked: each blocker's reason and advice.
    pub(crate) fn block(&mut self, plan: &RoomPlan) {
        self.status = Status::Blocked;
        for b in &plan.decision.blockers {
            self.reasons.push(b.reason.clone());
            self.advice.push(b.advice.clone());
        }
    }

    /// Left in an earlier run (the journal says): nothing more to do.
    pub(crate) fn left_earlier(&mut self, name: Option<String>) {
        self.status = Status::AlreadyMoved;
        self.left = true;
        self.history = "(not checked: the old account has left)".into();
        self.name = name;
    }

    /// The room's facts as read in this run (`None` when it was not read: left earlier).
    pub(crate) fn facts(&self) -> Option<&RoomFacts> {
        self.plan.as_ref().map(|p| &p.facts)
    }

    /// The check right before the leave found it unsafe: the old account stays, and the
    /// room counts as not moved (a rerun reads it again and does what is missing).
    pub(crate) fn stay_after_check(&mut self, why: String) {
        self.stayed = Some(why.clone());
        self.fail(why);
    }
}

/// One room's outcome while the stages work on it, each on its own thread.
pub(crate) struct RoomSlot {
    outcome: Mutex<RoomOutcome>,
}

impl RoomSlot {
    pub(crate) fn new(outcome: RoomOutcome) -> Self {
        RoomSlot {
            outcome: Mutex::new(outcome),
        }
    }

    /// Runs `f` on the outcome (a step's bookkeeping; never held across a request).
    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut RoomOutcome) -> T) -> T {
        f(&mut self.outcome.lock().expect("outcome lock"))
    }

    /// The room's ID.
    pub(crate) fn room_id(&self) -> String {
        self.with(|o| o.room_id.clone())
    }

    /// The plan the read stage took in (every later stage has one).
    pub(crate) fn plan(&self) -> RoomPlan {
        self.with(|o| o.plan.clone().expect("planned rooms only"))
    }

    pub(crate) fn into_outcome(self) -> RoomOutcome {
        self.outcome.into_inner().expect("outcome lock")
    }
}
