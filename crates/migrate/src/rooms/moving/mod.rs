//! The move of the rooms: per room read (state, history settings) → invite (only where
//! needed) → join with `via` → check the membership → power level → tags → the history
//! verdict checked as the new account. Then, as phases of their own, the DMs into the new
//! account's m.direct ([`merge_dms`]), the old account renamed in the moved rooms and the
//! leaves ([`rename_and_leave`]). `rooms move` runs them in that order ([`run`]); the whole
//! move (`account_move`) puts its own phases between them.
//!
//! Invites, joins and state events are limited by different rate limiters (the invitee's
//! `rc_invites.per_user`, the joiner's `rc_joins`, the sender's `rc_message`) and reads by
//! none, so every stage runs as a pipeline on its own thread and client ([`stages`]): the
//! first invite goes out once the first room is read, and while the invites wait out a 429,
//! rooms already invited are joined, given power and checked. Each wait is the server's own
//! `retry_after_ms` (see [`online::client::RateLimits`]); a 5xx on an invite or a join
//! across servers may be the other server's limit, which sends no time: the membership is
//! re-read and the step retried with backoff ([`ctx`]).
//!
//! Every step ([`steps`]) first reads the server (membership, the power levels, the tags),
//! so a rerun never invites twice nor sends a second power-level event; the journal keeps
//! what the server cannot tell (the level decided before the old account left).
//!
//! - [`outcome`]: where each room ends up, and the transitions the steps make;
//! - [`ctx`]: what the steps share, the stage clients and the remote retry;
//! - [`stages`]: the pipeline, one generic worker per stage;
//! - [`steps`]: one file per step.

mod ctx;
mod outcome;
mod stages;
mod steps;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use m_direct::build::Accounts;
use m_direct::DirectMap;
use online::client::Wait;
use online::rooms;
use serde::Serialize;
use serde_json::Value;

pub(crate) use ctx::Ctx;
pub use outcome::{words, Done, RoomOutcome, Status};

use self::ctx::{stage_client, wait_event};
use self::outcome::RoomSlot;
use self::stages::{pipeline, Clients};
use crate::connect::Pair;
use crate::events::{Event, Events, Stage};
use crate::journal::{Entry, Journal};
use crate::rooms::invite_rules::InviteRules;
use crate::rooms::plan::{display_name, dm_peer, Planner};

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
    /// The old account's new display name in the moved rooms, when renamed.
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

/// `rooms move`: the rooms, then the DMs, the rename and the leaves. Stopped (the cancel
/// flag), it returns what it did, `stopped` set; the same call again resumes.
pub fn run(
    pair: &Pair<'_>,
    rooms_wanted: &[String],
    options: &MoveOptions,
    events: &dyn Events,
) -> Result<MoveReport, crate::Error> {
    pair.distinct()?;
    let journal = Journal::open(&options.journal, pair.old.user_id(), pair.new.user_id())?;
    let journal = Mutex::new(journal);
    let started = Instant::now();
    let mut report = run_in(pair, rooms_wanted, options, &journal, events)?;
    if !report.stopped {
        merge_dms(pair, options, &journal, events, &mut report)?;
        rename_and_leave(pair, options, &journal, events, &mut report)?;
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The rooms alone (no DMs, no rename, no leave), in a journal the caller opened and holds
/// locked for a whole move.
pub fn run_in(
    pair: &Pair<'_>,
    rooms_wanted: &[String],
    options: &MoveOptions,
    journal: &Mutex<Journal>,
    events: &dyn Events,
) -> Result<MoveReport, crate::Error> {
    pair.distinct()?;
    let started = Instant::now();
    let ctx = ctx_of(pair, options, journal, events);
    let (old, new) = (pair.old.client(), pair.new.client());
    let renewals_before = old.refreshes() + new.refreshes();
    let new_joined: HashSet<String> = rooms::joined_rooms(new)?.into_iter().collect();
    let old_direct = online::direct::download(old, ctx.old_user)?;
    let invite_rules = InviteRules::read(new, ctx.new_user, ctx.old_user)?;
    let slots: Vec<RoomSlot> = rooms_wanted
        .iter()
        .map(|room| RoomSlot::new(outcome_from_journal(&ctx, pair, &old_direct, room)))
        .collect();
    let moving: HashSet<String> = rooms_wanted.iter().cloned().collect();
    let known = Known {
        moving: &moving,
        new_joined: &new_joined,
        old_direct: &old_direct,
        invite_rules: &invite_rules,
    };
    let waits = run_stages(&ctx, pair, &known, &slots)?;
    Ok(MoveReport {
        old: ctx.old_user.to_owned(),
        new: ctx.new_user.to_owned(),
        rooms: slots.into_iter().map(RoomSlot::into_outcome).collect(),
        direct_added: Vec::new(),
        renamed: None,
        rename_sent: false,
        stopped: ctx.stopped(),
        journal: options.journal.clone(),
        waits: waits + old.rate_limit_waits() + new.rate_limit_waits(),
        renewals: old.refreshes() + new.refreshes() - renewals_before,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn ctx_of<'a>(
    pair: &'a Pair<'_>,
    options: &'a MoveOptions,
    journal: &'a Mutex<Journal>,
    events: &'a dyn Events,
) -> Ctx<'a> {
    Ctx {
        old_user: pair.old.user_id(),
        new_user: pair.new.user_id(),
        options,
        journal,
        events,
    }
}

/// A room's outcome before this run: left in an earlier one (the journal says), or not
/// reached yet. A room left earlier is named as the new account sees it: the old account
/// can no longer read it (and a name is only for people: no name is no error).
fn outcome_from_journal(
    ctx: &Ctx<'_>,
    pair: &Pair<'_>,
    old_direct: &DirectMap,
    room: &str,
) -> RoomOutcome {
    let mut outcome = RoomOutcome::new(room);
    if ctx.journal.lock().expect("journal lock").room(room).left {
        let name = rooms::state_content(pair.new.client(), room, "m.room.name", "")
            .ok()
            .flatten()
            .and_then(|c| c.get("name").and_then(Value::as_str).map(str::to_owned));
        let peer = dm_peer(old_direct, room, ctx.old_user);
        outcome.left_earlier(display_name(name.as_deref(), peer.as_deref()));
    }
    outcome
}

impl Clients {
    /// Each stage's clients, forked from the pair's: cancelled by `cancel`, each wait told
    /// on `waits` (closed when the last of them is dropped).
    fn forked(
        pair: &Pair<'_>,
        cancel: &Arc<AtomicBool>,
        waits: mpsc::Sender<(Stage, Wait)>,
    ) -> Self {
        let (old, new) = (pair.old.client(), pair.new.client());
        Clients {
            inviter: stage_client(old, Stage::Invite, cancel, &waits),
            joiner: stage_client(new, Stage::Join, cancel, &waits),
            joiner_old: stage_client(old, Stage::Join, cancel, &waits),
            empowerer: stage_client(old, Stage::Power, cancel, &waits),
            checker_old: stage_client(old, Stage::History, cancel, &waits),
            checker_new: stage_client(new, Stage::History, cancel, &waits),
        }
    }
}

/// The pipeline, with its stage clients and a thread that tells every wait as it starts;
/// returns how many waits there were.
/// What is read once before the rooms: of the new account, and the old account's m.direct.
struct Known<'a> {
    moving: &'a HashSet<String>,
    new_joined: &'a HashSet<String>,
    old_direct: &'a DirectMap,
    invite_rules: &'a InviteRules,
}

fn run_stages(
    ctx: &Ctx<'_>,
    pair: &Pair<'_>,
    known: &Known<'_>,
    slots: &[RoomSlot],
) -> Result<usize, crate::Error> {
    let old = pair.old.client();
    let cancel = &ctx.options.cancel;
    // Reads are not rate-limited: the readers need the cancel flag, not a wait notice (which
    // would hold the waits channel open past the pipeline).
    let mut reader = old.fork();
    reader.cancel_on(cancel.clone());
    let planner = Planner {
        old: &reader,
        old_user: ctx.old_user,
        new_user: ctx.new_user,
        moving: known.moving,
        new_joined: known.new_joined,
        old_direct: known.old_direct,
        invite_rules: known.invite_rules,
    };
    let (wait_tx, wait_rx) = mpsc::channel::<(Stage, Wait)>();
    let clients = Clients::forked(pair, cancel, wait_tx);
    let waits = AtomicUsize::new(0);
    std::thread::scope(|scope| -> Result<(), crate::Error> {
        scope.spawn(|| {
            for (stage, w) in wait_rx {
                waits.fetch_add(1, Ordering::Relaxed);
                ctx.events.emit(wait_event(stage, &w));
            }
        });
        pipeline(ctx, &planner, slots, clients)
    })?;
    Ok(waits.into_inner())
}

/// The DMs phase: the moved DMs into the new account's m.direct, under the peer the old
/// account had for each (merged with what it has: a PUT replaces the whole object).
pub fn merge_dms(
    pair: &Pair<'_>,
    options: &MoveOptions,
    journal: &Mutex<Journal>,
    events: &dyn Events,
    report: &mut MoveReport,
) -> Result<(), crate::Error> {
    let ctx = ctx_of(pair, options, journal, events);
    let (old, new) = (pair.old.client(), pair.new.client());
    let moved: HashSet<String> = report
        .rooms
        .iter()
        .filter(|o| o.in_new_account())
        .map(|o| o.room_id.clone())
        .collect();
    let accounts = Accounts {
        old: ctx.old_user.into(),
        new: ctx.new_user.into(),
    };
    let old_direct = online::direct::download(old, ctx.old_user)?;
    let (map, _) = m_direct::build::build(&old_direct, &moved, &accounts);
    events.emit(Event::Started {
        stage: Stage::Direct,
        total: None,
    });
    if !map.is_empty() {
        report.direct_added = online::direct::merge_into(new, ctx.new_user, &map)?.added;
    }
    ctx.record(Entry::Direct)?;
    events.emit(Event::Finished {
        stage: Stage::Direct,
    });
    Ok(())
}

/// The last phases, the ones a user cannot undo: the old account renamed in the moved
/// rooms, then (asked for) its leaves, each right after a fresh check that it is safe.
pub fn rename_and_leave(
    pair: &Pair<'_>,
    options: &MoveOptions,
    journal: &Mutex<Journal>,
    events: &dyn Events,
    report: &mut MoveReport,
) -> Result<(), crate::Error> {
    let ctx = ctx_of(pair, options, journal, events);
    let (old, new) = (pair.old.client(), pair.new.client());
    if ctx.stopped() {
        return Ok(());
    }
    if let Some(suffix) = &options.rename_old {
        report.renamed = super::leave::rename_all(&ctx, old, &mut report.rooms, suffix)?;
        report.rename_sent = report.rooms.iter().any(|o| o.done.contains(&Done::Renamed));
    }
    if options.leave && !ctx.stopped() {
        super::leave::leave_all(&ctx, old, new, &mut report.rooms)?;
    }
    report.stopped = ctx.stopped();
    Ok(())
}
