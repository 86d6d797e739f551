//! The move: per room read (state, history settings) → invite (only where needed) → join
//! with `via` → check the membership → power level → tags → the history verdict checked as
//! the new account; then the DMs into the new account's m.direct, the old account renamed,
//! and (asked for) the leaves.
//!
//! Invites, joins and state events are limited by different rate limiters (the invitee's
//! `rc_invites.per_user`, the joiner's `rc_joins`, the sender's `rc_message`) and reads by
//! none, so every stage runs as a pipeline on its own thread and client: the first invite
//! goes out once the first room is read, and while the invites wait out a 429, rooms
//! already invited are joined, given power and checked. Each wait is the server's own
//! `retry_after_ms` (see [`online::client::RateLimits`]); a 5xx on an invite or a join
//! across servers may be the other server's limit, which sends no time: the membership is
//! re-read and the step retried with backoff.
//!
//! Every step first reads the server (membership, the power levels, the tags), so a rerun
//! never invites twice nor sends a second power-level event; the journal keeps what the
//! server cannot tell (the level decided before the old account left, its old name).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use m_direct::build::Accounts;
use online::client::{Wait, WaitCause};
use online::rooms;
use online::Client;
use serde::Serialize;
use serde_json::Value;

use super::facts::server_of;
use super::history::{self, Probe};
use super::journal::{Entry, Journal, JournalError};
use super::plan::{dm_peer, power_advice, Pair, Planner, RoomPlan, Step};
use crate::events::{Event, Events, Limit, Stage};

/// How to move.
#[derive(Debug, Clone)]
pub struct MoveOptions {
    /// Leave each fully moved room with the old account, at the end.
    pub leave: bool,
    /// Rename the old account in the moved rooms (its member event there, not its global
    /// profile): its name followed by this, before any leave.
    pub rename_old: Option<String>,
    /// The journal file.
    pub journal: PathBuf,
    /// The first wait after a 5xx on an invite or a join (then doubled, at most 10 min).
    pub remote_backoff: Duration,
    /// Tries of one invite or join answered 5xx.
    pub remote_tries: u32,
    /// How long the check before a leave waits for the new account's join to reach the
    /// old account's server.
    pub federation_wait: Duration,
    /// Set (e.g. by Ctrl-C) to stop between steps.
    pub cancel: Arc<AtomicBool>,
}

impl MoveOptions {
    /// Defaults for a journal at `journal`.
    pub fn new(journal: PathBuf) -> Self {
        MoveOptions {
            leave: false,
            rename_old: None,
            journal,
            remote_backoff: Duration::from_secs(30),
            remote_tries: 8,
            federation_wait: Duration::from_secs(60),
            cancel: Arc::new(AtomicBool::new(false)),
        }
    }
}

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
    pub done: Vec<String>,
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
    plan: Option<RoomPlan>,
}

impl RoomOutcome {
    /// The new account is in the room (moved fully, earlier, or without the power).
    pub fn in_new_account(&self) -> bool {
        matches!(
            self.status,
            Status::Moved | Status::AlreadyMoved | Status::Partial
        )
    }

    fn new(room: &str) -> Self {
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
    fn fail(&mut self, why: String) {
        const RERUN: &str = "run the same command again: it resumes where this run stopped, \
                             after reading the room again";
        self.status = Status::Failed;
        self.reasons.push(why);
        if !self.advice.iter().any(|a| a == RERUN) {
            self.advice.push(RERUN.into());
        }
    }

    /// The room's facts as read in this run (`None` when it was not read: left earlier).
    pub(super) fn facts(&self) -> Option<&super::facts::RoomFacts> {
        self.plan.as_ref().map(|p| &p.facts)
    }

    /// The check right before the leave found it unsafe: the old account stays, and the
    /// room counts as not moved (a rerun reads it again and does what is missing).
    pub(super) fn stay_after_check(&mut self, why: String) {
        self.stayed = Some(why.clone());
        self.fail(why);
    }
}

/// What a move did.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct MoveReport {
    /// The old account.
    pub old: String,
    /// The new account.
    pub new: String,
    /// Each room, in the rooms file's order.
    pub rooms: Vec<RoomOutcome>,
    /// (peer, room) pairs added to the new account's m.direct.
    pub direct_added: Vec<(String, String)>,
    /// The old account's new display name, when renamed.
    pub renamed: Option<String>,
    /// The rename was sent in this run (not found done).
    pub rename_sent: bool,
    /// The run was stopped before the end; run the same command again to resume.
    pub stopped: bool,
    /// The journal.
    pub journal: PathBuf,
    /// Rate-limit and retry waits.
    pub waits: usize,
    /// Times an access token of a login this tool made was renewed during the move.
    pub renewals: usize,
    /// Seconds the move took.
    pub seconds: f64,
}

/// The work of one room in the pipeline.
struct Work {
    outcome: Mutex<RoomOutcome>,
}

/// What every stage of a move shares.
pub(super) struct Ctx<'a> {
    pub(super) old_user: &'a str,
    pub(super) new_user: &'a str,
    pub(super) options: &'a MoveOptions,
    journal: &'a Mutex<Journal>,
    pub(super) events: &'a dyn Events,
}

impl Ctx<'_> {
    pub(super) fn record(&self, entry: Entry) -> Result<(), JournalError> {
        self.journal.lock().expect("journal lock").record(entry)
    }
    pub(super) fn stopped(&self) -> bool {
        self.options.cancel.load(Ordering::Relaxed)
    }
    pub(super) fn item(&self, stage: Stage, room: &str, outcome: impl Into<String>) {
        self.events.emit(Event::Item {
            stage,
            item: room.to_owned(),
            outcome: outcome.into(),
        });
    }
    /// Waits `wait` on `client`'s budget (the run's `--max-wait`), telling why.
    fn back_off(
        &self,
        client: &Client,
        stage: Stage,
        wait: Duration,
        cause: &str,
        error: online::Error,
    ) -> online::Result<()> {
        self.events.emit(Event::Waiting {
            stage,
            ms: wait.as_millis() as u64,
            until_ms: now_ms() + wait.as_millis() as u64,
            limit: Limit::Remote,
            cause: cause.into(),
        });
        client.wait_counted(cause, wait, error)
    }
    /// Runs `attempt` until it succeeds, retrying a possible remote rate limit (5xx); the
    /// waits count against `client`'s budget.
    fn with_remote_retry<T>(
        &self,
        client: &Client,
        stage: Stage,
        what: &str,
        mut attempt: impl FnMut() -> online::Result<T>,
    ) -> online::Result<T> {
        let mut wait = self.options.remote_backoff;
        let mut tries = 0;
        loop {
            match attempt() {
                Err(e)
                    if rooms::is_maybe_remote_limit(&e)
                        && tries + 1 < self.options.remote_tries =>
                {
                    tries += 1;
                    let cause = format!(
                        "{what} answered {e}: maybe the other server's rate limit (it sends no time \
                         over federation); trying again"
                    );
                    self.back_off(client, stage, wait, &cause, e)?;
                    wait = (wait * 2).min(Duration::from_secs(600));
                }
                other => return other,
            }
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A client for one stage: its own waits, told as that stage's, stopped by the cancel flag.
fn stage_client(
    base: &Client,
    stage: Stage,
    cancel: &Arc<AtomicBool>,
    waits: &mpsc::Sender<(Stage, Wait)>,
) -> Client {
    let mut c = base.fork();
    c.cancel_on(cancel.clone());
    let tx = Mutex::new(waits.clone());
    c.on_rate_limit(Box::new(move |w: &Wait| {
        let _ = tx.lock().map(|tx| tx.send((stage, w.clone())));
    }));
    c
}

fn wait_limit(stage: Stage, w: &Wait) -> Limit {
    match (&w.cause, stage) {
        (WaitCause::ServerError(_), _) => Limit::Retry,
        (_, Stage::Invite) => Limit::Invites,
        (_, Stage::Join) => Limit::Joins,
        (_, Stage::Power | Stage::Leave) => Limit::Messages,
        _ => Limit::Server,
    }
}

fn wait_cause(stage: Stage, w: &Wait) -> String {
    let limit = match stage {
        Stage::Invite => "the invite limit (rc_invites: per invitee, per room, per inviter)",
        Stage::Join => "the new account's join limit (rc_joins)",
        Stage::Power | Stage::Leave => "the old account's event limit (rc_message)",
        _ => "the server's rate limit",
    };
    match &w.cause {
        WaitCause::RateLimited { asked: Some(asked) } => format!(
            "{limit}: the server asked for {} s, waiting {} s at most before asking again",
            asked.as_secs(),
            w.duration.as_secs()
        ),
        WaitCause::RateLimited { asked: None } => limit.to_owned(),
        WaitCause::ServerError(Some(status)) => format!("a retry after HTTP {status}"),
        WaitCause::ServerError(None) => "a retry after a broken connection".into(),
    }
}

/// Moves the rooms. Stopped (the cancel flag), it returns what it did, `stopped` set;
/// the same call again resumes.
pub fn run(
    pair: &Pair<'_>,
    rooms_wanted: &[String],
    options: &MoveOptions,
    events: &dyn Events,
) -> Result<MoveReport, crate::Error> {
    run_with(pair, rooms_wanted, options, events, &mut |_| Ok(()))
}

/// Work a caller fits between the DMs and the rename: it gets each room's outcome so far
/// (e.g. to copy the notification rules of the rooms that moved).
pub type Between<'a> = dyn FnMut(&[RoomOutcome]) -> Result<(), crate::Error> + 'a;

/// [`run`], with `between` called once the rooms and the DMs are done and before the old
/// account is renamed or leaves (not at all when the run is stopped before).
pub fn run_with(
    pair: &Pair<'_>,
    rooms_wanted: &[String],
    options: &MoveOptions,
    events: &dyn Events,
    between: &mut Between<'_>,
) -> Result<MoveReport, crate::Error> {
    pair.distinct()?;
    let journal = Journal::open(&options.journal, pair.old.user_id(), pair.new.user_id())?;
    run_in(
        pair,
        rooms_wanted,
        options,
        &Mutex::new(journal),
        events,
        between,
    )
}

/// [`run_with`], in a journal the caller opened (and holds locked) for a whole move.
pub fn run_in(
    pair: &Pair<'_>,
    rooms_wanted: &[String],
    options: &MoveOptions,
    journal: &Mutex<Journal>,
    events: &dyn Events,
    between: &mut Between<'_>,
) -> Result<MoveReport, crate::Error> {
    pair.distinct()?;
    let started = Instant::now();
    let (old_user, new_user) = (pair.old.user_id(), pair.new.user_id());
    let ctx = Ctx {
        old_user,
        new_user,
        options,
        journal,
        events,
    };
    let old = pair.old.client();
    let new = pair.new.client();
    let renewals_before = old.refreshes() + new.refreshes();
    let new_joined: HashSet<String> = rooms::joined_rooms(new)?.into_iter().collect();
    let old_direct = online::direct::download(old, old_user)?;

    let work: Vec<Work> = rooms_wanted
        .iter()
        .map(|room| {
            let mut outcome = RoomOutcome::new(room);
            if journal.lock().expect("journal lock").room(room).left {
                outcome.status = Status::AlreadyMoved;
                outcome.left = true;
                outcome.history = "(not checked: the old account has left)".into();
                // The old account can no longer read the room: its name as the new
                // account sees it (a name is only for people: no name is no error).
                let name = rooms::state_content(new, room, "m.room.name", "")
                    .ok()
                    .flatten()
                    .and_then(|c| c.get("name").and_then(Value::as_str).map(str::to_owned));
                outcome.name = super::plan::display_name(
                    name.as_deref(),
                    dm_peer(&old_direct, room, old_user).as_deref(),
                );
            }
            Work {
                outcome: Mutex::new(outcome),
            }
        })
        .collect();

    let (wait_tx, wait_rx) = mpsc::channel::<(Stage, Wait)>();
    // Reads are not rate-limited: the readers need the cancel flag, not a wait notice (which
    // would hold the waits channel open past the pipeline).
    let mut reader = old.fork();
    reader.cancel_on(options.cancel.clone());
    let planner = Planner {
        old: &reader,
        old_user,
        new_user,
        new_joined: &new_joined,
        old_direct: &old_direct,
    };
    let clients = Clients {
        inviter: stage_client(old, Stage::Invite, &options.cancel, &wait_tx),
        joiner: stage_client(new, Stage::Join, &options.cancel, &wait_tx),
        joiner_old: stage_client(old, Stage::Join, &options.cancel, &wait_tx),
        empowerer: stage_client(old, Stage::Power, &options.cancel, &wait_tx),
        checker_old: stage_client(old, Stage::History, &options.cancel, &wait_tx),
        checker_new: stage_client(new, Stage::History, &options.cancel, &wait_tx),
    };
    drop(wait_tx);
    let waits = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| -> Result<(), crate::Error> {
        // Shows every wait of every stage, as it starts.
        scope.spawn(|| {
            for (stage, w) in wait_rx {
                waits.fetch_add(1, Ordering::Relaxed);
                events.emit(Event::Waiting {
                    stage,
                    ms: w.duration.as_millis() as u64,
                    until_ms: now_ms() + w.duration.as_millis() as u64,
                    limit: wait_limit(stage, &w),
                    cause: wait_cause(stage, &w),
                });
            }
        });
        pipeline(&ctx, &planner, &work, clients)
    })?;

    let stopped = ctx.stopped();
    let mut report = MoveReport {
        old: old_user.to_owned(),
        new: new_user.to_owned(),
        rooms: Vec::new(),
        direct_added: Vec::new(),
        renamed: None,
        rename_sent: false,
        stopped,
        journal: options.journal.clone(),
        waits: 0,
        renewals: 0,
        seconds: 0.0,
    };
    let mut outcomes: Vec<RoomOutcome> = work
        .into_iter()
        .map(|w| w.outcome.into_inner().expect("outcome lock"))
        .collect();
    if !stopped {
        finish(&ctx, pair, &old_direct, &mut outcomes, &mut report, between)?;
    }
    report.stopped = ctx.stopped();
    report.rooms = outcomes;
    report.waits = waits.load(Ordering::Relaxed) + old.rate_limit_waits() + new.rate_limit_waits();
    report.renewals = old.refreshes() + new.refreshes() - renewals_before;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Each stage's own clients (each with its own waits), moved into its thread.
struct Clients {
    inviter: Client,
    joiner: Client,
    joiner_old: Client,
    empowerer: Client,
    checker_old: Client,
    checker_new: Client,
}

/// How far the reading has got: the other stages' totals are known only once every room
/// is read, so until then each shows an upper bound (what it has, plus every room unread).
#[derive(Default)]
struct Counts {
    unread: AtomicU64,
    invites: AtomicU64,
    moving: AtomicU64,
}

impl Counts {
    fn invites(&self) -> u64 {
        self.invites.load(Ordering::Relaxed) + self.unread.load(Ordering::Relaxed)
    }
    fn moving(&self) -> u64 {
        self.moving.load(Ordering::Relaxed) + self.unread.load(Ordering::Relaxed)
    }
}

/// Where a room read goes next.
enum Next {
    Invite,
    Join,
}

/// The stages, side by side: read → invite → join → power level → history check. Reading
/// is not rate-limited and each later stage is limited by its own bucket, so the first
/// invite goes out as soon as the first room is read, and every stage keeps working while
/// another waits out a 429.
fn pipeline(
    ctx: &Ctx<'_>,
    planner: &Planner<'_>,
    work: &[Work],
    clients: Clients,
) -> Result<(), crate::Error> {
    let Clients {
        inviter,
        joiner,
        joiner_old,
        empowerer,
        checker_old,
        checker_new,
    } = clients;
    let (invite_tx, invite_rx) = mpsc::channel::<usize>();
    let (join_tx, join_rx) = mpsc::channel::<usize>();
    let (power_tx, power_rx) = mpsc::channel::<usize>();
    let (check_tx, check_rx) = mpsc::channel::<usize>();
    let to_read: Vec<usize> = (0..work.len())
        .filter(|&i| !work[i].outcome.lock().expect("outcome lock").left)
        .collect();
    let names: Vec<String> = to_read
        .iter()
        .map(|&i| {
            work[i]
                .outcome
                .lock()
                .expect("outcome lock")
                .room_id
                .clone()
        })
        .collect();
    let counts = Counts::default();
    counts.unread.store(to_read.len() as u64, Ordering::Relaxed);
    let counts = &counts;
    ctx.events.emit(Event::Started {
        stage: Stage::ReadRooms,
        total: Some(to_read.len() as u64),
    });
    for stage in [Stage::Invite, Stage::Join, Stage::Power, Stage::History] {
        ctx.events.emit(Event::Started {
            stage,
            total: Some(counts.moving()),
        });
    }
    let progress = |stage: Stage, done: u64, total: u64| {
        ctx.events.emit(Event::Progress { stage, done, total })
    };
    let invite_join_tx = join_tx.clone();
    std::thread::scope(|scope| -> Result<(), crate::Error> {
        let reading = scope.spawn(move || -> Result<(), JournalError> {
            let total = to_read.len() as u64;
            let failed: Mutex<Option<JournalError>> = Mutex::new(None);
            let read = AtomicU64::new(0);
            let stop = || ctx.stopped() || failed.lock().expect("error lock").is_some();
            planner.plan_all(&names, &stop, &|n, plan| {
                let i = to_read[n];
                let next = match admit(ctx, &work[i], plan) {
                    Ok(next) => next,
                    Err(e) => {
                        failed.lock().expect("error lock").get_or_insert(e);
                        None
                    }
                };
                match next {
                    Some(Next::Invite) => {
                        counts.invites.fetch_add(1, Ordering::Relaxed);
                        counts.moving.fetch_add(1, Ordering::Relaxed);
                        let _ = invite_tx.send(i);
                    }
                    Some(Next::Join) => {
                        counts.moving.fetch_add(1, Ordering::Relaxed);
                        let _ = join_tx.send(i);
                    }
                    None => {}
                }
                counts.unread.fetch_sub(1, Ordering::Relaxed);
                progress(
                    Stage::ReadRooms,
                    read.fetch_add(1, Ordering::Relaxed) + 1,
                    total,
                );
            });
            // Rooms never read (stopped) leave the upper bounds.
            counts.unread.store(0, Ordering::Relaxed);
            ctx.events.emit(Event::Finished {
                stage: Stage::ReadRooms,
            });
            failed.into_inner().expect("error lock").map_or(Ok(()), Err)
        });
        let inviting = scope.spawn(move || -> Result<(), JournalError> {
            let mut done = 0;
            for i in invite_rx {
                if ctx.stopped() {
                    break;
                }
                if invite(ctx, &inviter, &work[i])? {
                    let _ = invite_join_tx.send(i);
                }
                done += 1;
                progress(Stage::Invite, done, counts.invites());
            }
            ctx.events.emit(Event::Finished {
                stage: Stage::Invite,
            });
            Ok(())
        });
        let joining = scope.spawn(move || -> Result<(), JournalError> {
            let mut done = 0;
            for i in join_rx {
                if ctx.stopped() {
                    break;
                }
                if join(ctx, &joiner, &joiner_old, &work[i])? {
                    let _ = power_tx.send(i);
                }
                done += 1;
                progress(Stage::Join, done, counts.moving());
            }
            ctx.events.emit(Event::Finished { stage: Stage::Join });
            Ok(())
        });
        let empowering = scope.spawn(move || -> Result<(), JournalError> {
            let mut done = 0;
            for i in power_rx {
                if ctx.stopped() {
                    break;
                }
                power(ctx, &empowerer, &work[i])?;
                let in_new = work[i]
                    .outcome
                    .lock()
                    .expect("outcome lock")
                    .in_new_account();
                if in_new {
                    let _ = check_tx.send(i);
                }
                done += 1;
                progress(Stage::Power, done, counts.moving());
            }
            ctx.events.emit(Event::Finished {
                stage: Stage::Power,
            });
            Ok(())
        });
        let checking = scope.spawn(move || -> Result<(), JournalError> {
            let mut done = 0;
            for i in check_rx {
                if ctx.stopped() {
                    break;
                }
                check_history(ctx, &checker_old, &checker_new, &work[i]);
                done += 1;
                progress(Stage::History, done, counts.moving());
            }
            ctx.events.emit(Event::Finished {
                stage: Stage::History,
            });
            Ok(())
        });
        for handle in [reading, inviting, joining, empowering, checking] {
            handle.join().expect("a stage panicked")?;
        }
        Ok(())
    })
}

/// Takes a room's plan into its outcome; where it goes next, if anywhere.
fn admit(
    ctx: &Ctx<'_>,
    w: &Work,
    plan: Result<RoomPlan, crate::Error>,
) -> Result<Option<Next>, JournalError> {
    let mut o = w.outcome.lock().expect("outcome lock");
    let room = o.room_id.clone();
    let mut plan = match plan {
        Ok(plan) => plan,
        Err(crate::Error::Online(online::Error::Cancelled { .. })) => return Ok(None),
        Err(e) => {
            o.fail(format!("cannot read the room: {e}"));
            ctx.item(Stage::ReadRooms, &room, format!("failed: {e}"));
            return Ok(None);
        }
    };
    let record = ctx.journal.lock().expect("journal lock").room(&room);
    match record.planned {
        // The level decided by the first run never lowers the level read now (the old
        // account's power may have dropped since, e.g. given to the new account and then
        // lowered; or it may have been raised, and then the higher level is owed). The
        // check before the leave compares with the old account's power at that moment.
        Some(target) => {
            let fresh = plan.decision.target;
            plan.decision.target = target.max(fresh);
            for s in &mut plan.decision.steps {
                if let (Step::Power { level }, Some(t)) = (&mut *s, target) {
                    *level = (*level).max(t);
                }
            }
        }
        None if plan.decision.blockers.is_empty() => ctx.record(Entry::Planned {
            room: room.clone(),
            target: plan.decision.target,
        })?,
        None => {}
    }
    o.name = plan.display_name();
    o.history = plan.history_verdict.clone();
    o.notes = plan.decision.notes.clone();
    let next = if !plan.decision.blockers.is_empty() {
        o.status = Status::Blocked;
        o.reasons = plan
            .decision
            .blockers
            .iter()
            .map(|b| b.reason.clone())
            .collect();
        o.advice = plan
            .decision
            .blockers
            .iter()
            .map(|b| b.advice.clone())
            .collect();
        ctx.item(
            Stage::ReadRooms,
            &room,
            format!("blocked: {}", o.reasons.join("; ")),
        );
        None
    } else if plan.decision.steps.contains(&Step::Invite) {
        Some(Next::Invite)
    } else {
        Some(Next::Join)
    };
    o.plan = Some(plan);
    Ok(next)
}

/// Checks the history verdict as the new account. A check that cannot be made is said,
/// and does not undo the move.
fn check_history(ctx: &Ctx<'_>, old: &Client, new: &Client, w: &Work) {
    let (room, history) = {
        let o = w.outcome.lock().expect("outcome lock");
        match &o.plan {
            Some(plan) => (o.room_id.clone(), plan.history.clone()),
            None => return,
        }
    };
    let checked = history::verify(old, new, &room, &history);
    let mut o = w.outcome.lock().expect("outcome lock");
    match checked {
        Ok(probes) => o.probes = probes,
        Err(crate::Error::Online(online::Error::Cancelled { .. })) => {}
        Err(e) => {
            o.notes.push(format!(
                "the history verdict could not be checked as the new account: {e}"
            ));
            ctx.item(Stage::History, &room, format!("not checked: {e}"));
        }
    }
}

/// Invites the new account unless the server says it is invited or in already. True when
/// the room can go on to the join.
fn invite(ctx: &Ctx<'_>, client: &Client, w: &Work) -> Result<bool, JournalError> {
    let room = w.outcome.lock().expect("outcome lock").room_id.clone();
    let result = ctx.with_remote_retry(client, Stage::Invite, "the invite", || {
        match rooms::membership(client, &room, ctx.new_user)?.as_deref() {
            Some("join") | Some("invite") => return Ok(false),
            _ => {}
        }
        rooms::invite(client, &room, ctx.new_user).map(|()| true)
    });
    let mut o = w.outcome.lock().expect("outcome lock");
    match result {
        Ok(sent) => {
            ctx.record(Entry::Invited { room: room.clone() })?;
            if sent {
                o.done.push("invited".into());
            }
            ctx.item(
                Stage::Invite,
                &room,
                if sent { "invited" } else { "already invited" },
            );
            Ok(true)
        }
        Err(online::Error::Cancelled { .. }) => Ok(false),
        Err(e) => {
            o.fail(format!("invite failed: {e}"));
            ctx.item(Stage::Invite, &room, format!("failed: {e}"));
            Ok(false)
        }
    }
}

/// Joins (unless joined), checks the membership as the new account, copies the tags. True
/// when the room can go on to the power level.
fn join(ctx: &Ctx<'_>, new: &Client, old: &Client, w: &Work) -> Result<bool, JournalError> {
    let (room, via) = {
        let o = w.outcome.lock().expect("outcome lock");
        let plan = o.plan.as_ref().expect("planned rooms only");
        // Joined as the old server sees it may not be joined as the new server sees it
        // yet (a join still in flight when an earlier run was killed): the servers to
        // join through are known either way.
        let via = plan
            .decision
            .steps
            .iter()
            .find_map(|s| match s {
                Step::Join { via } => Some(via.clone()),
                _ => None,
            })
            .unwrap_or_else(|| plan.facts.via(server_of(ctx.old_user)));
        (o.room_id.clone(), via)
    };
    let joined = ctx.with_remote_retry(new, Stage::Join, "the join", || {
        // The new account's own server decides whether it is in.
        let mine = match rooms::membership(new, &room, ctx.new_user) {
            Ok(m) => m,
            Err(e) if rooms::is_forbidden(&e) => None,
            Err(e) => return Err(e),
        };
        if mine.as_deref() == Some("join") {
            return Ok(false);
        }
        rooms::join(new, &room, &via).map(|_| true)
    });
    let sent = match joined {
        Ok(sent) => sent,
        Err(online::Error::Cancelled { .. }) => return Ok(false),
        Err(e) => {
            let mut o = w.outcome.lock().expect("outcome lock");
            o.fail(format!("join failed: {e}"));
            ctx.item(Stage::Join, &room, format!("failed: {e}"));
            return Ok(false);
        }
    };
    let checked = rooms::membership(new, &room, ctx.new_user);
    let mut o = w.outcome.lock().expect("outcome lock");
    match checked {
        Ok(Some(m)) if m == "join" => {}
        Ok(m) => {
            o.fail(format!(
                "the join was answered, but the new account's membership is {}",
                m.as_deref().unwrap_or("none")
            ));
            return Ok(false);
        }
        Err(online::Error::Cancelled { .. }) => return Ok(false),
        Err(e) => {
            o.fail(format!("cannot check the join: {e}"));
            return Ok(false);
        }
    }
    ctx.record(Entry::Joined { room: room.clone() })?;
    if sent {
        o.done.push("joined".into());
    }
    ctx.item(
        Stage::Join,
        &room,
        if sent { "joined" } else { "already joined" },
    );
    drop(o);
    match copy_tags(ctx, old, new, &room) {
        Ok(n) => {
            ctx.record(Entry::Tags { room: room.clone() })?;
            if n > 0 {
                w.outcome
                    .lock()
                    .expect("outcome lock")
                    .done
                    .push(format!("tags {n}"));
            }
        }
        Err(online::Error::Cancelled { .. }) => return Ok(false),
        Err(e) => w
            .outcome
            .lock()
            .expect("outcome lock")
            .fail(format!("tags not copied: {e}")),
    }
    Ok(true)
}

/// Copies the old account's tags of `room` that the new account lacks; returns how many.
fn copy_tags(ctx: &Ctx<'_>, old: &Client, new: &Client, room: &str) -> online::Result<usize> {
    let theirs = rooms::tags(old, ctx.old_user, room)?;
    if theirs.is_empty() {
        return Ok(0);
    }
    let ours = rooms::tags(new, ctx.new_user, room)?;
    let mut n = 0;
    for (tag, content) in &theirs {
        if !ours.contains_key(tag) {
            rooms::put_tag(new, ctx.new_user, room, tag, content)?;
            n += 1;
        }
    }
    Ok(n)
}

/// Gives the new account its level: the power levels read fresh, only `users[new]`
/// changed, the whole content sent back; then read again to check.
fn power(ctx: &Ctx<'_>, client: &Client, w: &Work) -> Result<(), JournalError> {
    let (room, level, not_copied, target) = {
        let o = w.outcome.lock().expect("outcome lock");
        let plan = o.plan.as_ref().expect("planned rooms only");
        let level = plan.decision.steps.iter().find_map(|s| match s {
            Step::Power { level } => Some(*level),
            _ => None,
        });
        (
            o.room_id.clone(),
            level,
            plan.decision.power_not_copied.clone(),
            plan.decision.target.unwrap_or(100),
        )
    };
    let advice = power_advice(ctx.new_user, target);
    let done = |o: &mut RoomOutcome| {
        if o.status == Status::NotDone {
            o.status = if not_copied.is_some() {
                Status::Partial
            } else if o.done.is_empty() {
                Status::AlreadyMoved
            } else {
                Status::Moved
            };
        }
        if let Some(why) = &not_copied {
            o.reasons.push(why.clone());
            o.advice.push(advice.clone());
        }
    };
    let Some(level) = level else {
        done(&mut w.outcome.lock().expect("outcome lock"));
        ctx.record(Entry::Power { room: room.clone() })?;
        ctx.item(
            Stage::Power,
            &room,
            not_copied
                .clone()
                .unwrap_or_else(|| "no power to give".into()),
        );
        return Ok(());
    };
    let result = (|| -> online::Result<bool> {
        let mut content = rooms::state_content(client, &room, "m.room.power_levels", "")?
            .unwrap_or_else(|| Value::Object(Default::default()));
        if current_level(&content, ctx.new_user) >= Some(level) {
            return Ok(false);
        }
        let users = content
            .as_object_mut()
            .ok_or_else(|| online::Error::BadResponse {
                what: "read the power levels".into(),
                reason: "not an object".into(),
            })?
            .entry("users")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Value::Object(users) = users {
            users.insert(ctx.new_user.to_owned(), Value::from(level));
        }
        rooms::put_state(client, &room, "m.room.power_levels", "", &content)?;
        let after =
            rooms::state_content(client, &room, "m.room.power_levels", "")?.unwrap_or_default();
        if current_level(&after, ctx.new_user) < Some(level) {
            return Err(online::Error::BadResponse {
                what: "check the power levels".into(),
                reason: "the new level is not in the room's power levels after sending it".into(),
            });
        }
        Ok(true)
    })();
    let mut o = w.outcome.lock().expect("outcome lock");
    match result {
        Ok(sent) => {
            ctx.record(Entry::Power { room: room.clone() })?;
            if sent {
                o.done.push(format!("power {level}"));
            }
            done(&mut o);
            ctx.item(
                Stage::Power,
                &room,
                if sent {
                    format!("power {level}")
                } else {
                    format!("already has power {level}")
                },
            );
        }
        Err(online::Error::Cancelled { .. }) => {}
        Err(e) if rooms::is_forbidden(&e) => {
            o.status = Status::Partial;
            o.reasons.push(format!("power not copied: {e}"));
            o.advice.push(advice);
            ctx.item(Stage::Power, &room, format!("power not copied: {e}"));
        }
        Err(e) => {
            o.fail(format!("power not copied: {e}"));
            ctx.item(Stage::Power, &room, format!("failed: {e}"));
        }
    }
    Ok(())
}

fn current_level(content: &Value, user: &str) -> Option<i64> {
    content.get("users")?.get(user)?.as_i64()
}

/// After the pipeline: DMs, the caller's work, the rename, the leaves.
fn finish(
    ctx: &Ctx<'_>,
    pair: &Pair<'_>,
    old_direct: &m_direct::DirectMap,
    outcomes: &mut [RoomOutcome],
    report: &mut MoveReport,
    between: &mut Between<'_>,
) -> Result<(), crate::Error> {
    let (old, new) = (pair.old.client(), pair.new.client());
    // The moved DMs, under the peer the old account had for each.
    let moved: HashSet<String> = outcomes
        .iter()
        .filter(|o| o.in_new_account())
        .map(|o| o.room_id.clone())
        .collect();
    let accounts = Accounts {
        old: ctx.old_user.into(),
        new: ctx.new_user.into(),
    };
    let (map, _) = m_direct::build::build(old_direct, &moved, &accounts);
    ctx.events.emit(Event::Started {
        stage: Stage::Direct,
        total: None,
    });
    if !map.is_empty() {
        let done = online::direct::merge_into(new, ctx.new_user, &map)?;
        report.direct_added = done.added;
    }
    ctx.record(Entry::Direct)?;
    ctx.events.emit(Event::Finished {
        stage: Stage::Direct,
    });
    between(outcomes)?;
    if ctx.stopped() {
        return Ok(());
    }

    // The rename, before any leave, in the moved rooms only.
    if let Some(suffix) = &ctx.options.rename_old {
        report.renamed = super::leave::rename_all(ctx, old, outcomes, suffix)?;
        report.rename_sent = outcomes
            .iter()
            .any(|o| o.done.iter().any(|d| d == "renamed"));
    }
    if ctx.options.leave && !ctx.stopped() {
        super::leave::leave_all(ctx, old, new, outcomes)?;
    }
    Ok(())
}
