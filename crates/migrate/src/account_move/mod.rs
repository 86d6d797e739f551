//! The whole move of an account as one resumable job (`move run`): the room keys into the
//! new account's backup, the rooms (with the DMs), the account data, the old account
//! renamed, the leaves; each phase skipped when the journal says it is done, and every step
//! re-reading the server first, so a run killed at any moment and run again reaches the
//! same end without doing anything twice.
//!
//! - [`report`]: what a run did or (a dry run) would do, and the Markdown for people;
//! - [`status`]: where a move stands, read from its journal alone;
//! - [`init`]: `move init`, the plan and the rooms file written;
//! - [`from_plan`]: a plan file turned into the request, and the files beside it.
//!
//! The phases, in order:
//! 1. keys: every key export, plus the old account's backup when its recovery key is
//!    given, merged (one best copy per session, vodozemac deciding), only the moving
//!    rooms kept; the new account's recovery key checked against its backup before
//!    anything is read; only the sessions that improve what the backup holds are sent;
//! 2. rooms, then the DMs of the rooms that moved ([`crate::rooms::moving`]);
//! 3. account data ([`crate::account_data`]), with the notification rules of the rooms
//!    that moved;
//! 4. the rename of the old account, then the leaves (the rooms engine's last steps);
//! 5. the result checked as the new account ([`crate::verify`]).

pub mod from_plan;
pub mod init;
mod keys;
mod markdown;
pub mod report;
pub mod status;

use std::collections::HashSet;
use std::io::Read;
use std::sync::Mutex;
use std::time::Instant;

use crate::account_data::{self, AccountDataReport};
use crate::error::Result;
use crate::events::{stage, Events, Stage};
use crate::journal::{digest, Entry, Journal, Phase};
use crate::rooms::invite_rules::{self, AllowInvites, InviteRule, InviteRules};
use crate::rooms::moving::{self, MoveOptions, RoomOutcome};
use crate::rooms::plan::{self, Pair};
use crate::verify::{self, Budget};

pub use keys::{Account, KeySources, Problem};
pub use report::{
    AccountDataPhase, ByHand, Ending, KeysDone, KeysPhase, Report, RoomKeys, RoomsPhase, Skip,
};

/// Which account data to copy.
pub use crate::account_data::AccountDataToCopy as CopyWhat;

/// A whole move.
pub struct Request<R> {
    /// The rooms that move (the edited rooms file).
    pub rooms: Vec<String>,
    /// The room keys' sources and destination.
    pub keys: KeySources<R>,
    /// Which account data to copy.
    pub copy: CopyWhat,
    /// The rooms engine's options: the journal (shared by every phase), leave, rename,
    /// the cancel flag.
    pub options: MoveOptions,
    /// Read everything, write nothing anywhere (not even the journal).
    pub dry_run: bool,
    /// Whether the new account's invite setting may be opened to the old account for the
    /// move, when it refuses its invites.
    pub allow_invites: AllowInvites,
    /// Asks the person a yes-or-no question (for [`AllowInvites::Ask`]); a front end that
    /// cannot ask answers no.
    pub confirm: Box<dyn Fn(&str) -> bool + Send + Sync>,
}

/// Runs the move (or, with `dry_run`, plans it). Stopped by the cancel flag, it returns
/// what it did, its ending `Stopped`; the same call again resumes.
pub fn run<R: Read + Send>(
    pair: &Pair<'_>,
    request: Request<R>,
    events: &dyn Events,
) -> Result<Report> {
    pair.distinct()?;
    let started = Instant::now();
    let mut report = Report::new(pair, request.dry_run);
    if request.dry_run {
        return plan_only(pair, request, events, report, started);
    }
    let options = &request.options;
    let (old, new) = (pair.old.user_id(), pair.new.user_id());
    // Opened once, and locked for the whole run: a second run of this move is refused.
    let journal = Mutex::new(Journal::open(&options.journal, old, new)?);
    let (keys, mut backups) = keys_phase(
        pair,
        &request.rooms,
        request.keys,
        Some(&mut journal.lock().expect("journal lock")),
        None,
        events,
    )?;
    report.keys = keys;
    if options.cancel.load(std::sync::atomic::Ordering::Relaxed) {
        return finish(report, true, &journal, started);
    }
    report.invites_opened = open_invites(
        pair,
        request.allow_invites,
        request.confirm.as_ref(),
        &journal,
    )?;
    let mut rooms = moving::run_in(pair, &request.rooms, options, &journal, events)?;
    if !rooms.stopped {
        // Every invite of the move is done (or blocked): the setting goes back first.
        report.invites_restored =
            invite_rules::restore_after_move(pair.new.client(), pair.new.user_id(), &journal)?;
        let later = Later {
            pair,
            options,
            journal: &journal,
            events,
        };
        later.run(&mut report, &mut rooms, request.copy, backups.as_mut())?;
        if !rooms.stopped {
            let moved = in_new_account(&rooms.rooms);
            report.verification = Some(verify::verify(pair, &moved, Budget::default(), events)?);
        }
    }
    let stopped = rooms.stopped;
    report.rooms = RoomsPhase::Moved(rooms);
    finish(report, stopped, &journal, started)
}

/// The "Checking the result" section of a report alone (for `move status --verify`).
pub fn verification_markdown(v: &verify::Verification) -> String {
    let mut md = String::new();
    markdown::verification(&mut md, v, &|_| None);
    md
}

/// Opens the new account's invite setting to the old account for the move, when it refuses
/// its invites and the request allows it (or the person, asked, does); the setting opened.
fn open_invites(
    pair: &Pair<'_>,
    allow: AllowInvites,
    confirm: &(dyn Fn(&str) -> bool + Send + Sync),
    journal: &Mutex<Journal>,
) -> Result<Option<String>> {
    let (new, new_user, old_user) = (pair.new.client(), pair.new.user_id(), pair.old.user_id());
    let allowed = match allow {
        AllowInvites::Yes => true,
        AllowInvites::No => false,
        AllowInvites::Ask => {
            let rules = InviteRules::read(new, new_user, old_user)?;
            rules.rule != InviteRule::Block || confirm(&invites_question(pair, &rules))
        }
    };
    match allowed {
        true => invite_rules::open_for_move(new, new_user, old_user, journal),
        false => Ok(None),
    }
}

/// What the person is asked before the new account's invite setting is opened.
pub fn invites_question(pair: &Pair<'_>, rules: &InviteRules) -> String {
    format!(
        "{new} refuses invites from {old} ({setting}), and every room that needs an invite \
         would stay behind. Let {old}'s invites through for the move, and put the setting back \
         as it is once the invites are done?",
        new = pair.new.user_id(),
        old = pair.old.user_id(),
        setting = rules.setting.as_deref().unwrap_or("its invite settings"),
    )
}

/// The phases after the rooms: the DMs, the account data, the last keys pass, then what
/// cannot be undone (the rename and the leaves).
struct Later<'a, 'p> {
    pair: &'a Pair<'p>,
    options: &'a MoveOptions,
    journal: &'a Mutex<Journal>,
    events: &'a dyn Events,
}

impl Later<'_, '_> {
    fn run(
        &self,
        report: &mut Report,
        rooms: &mut crate::rooms::moving::MoveReport,
        copy: CopyWhat,
        backups: Option<&mut keys::Backups>,
    ) -> Result<()> {
        let (pair, journal, events) = (self.pair, self.journal, self.events);
        moving::merge_dms(pair, self.options, journal, events, rooms)?;
        report.account_data = account_data_phase(pair, &rooms.rooms, copy, journal, events)?;
        // The keys the old account received during the move, while it still receives them.
        if let Some(b) = backups {
            report.keys_last = keys::last_pass(pair, &in_new_account(&rooms.rooms), b, events)?;
        }
        moving::rename_and_leave(pair, self.options, journal, events, rooms)
    }
}

/// The end of a run: what is left by hand and the ending worked out, and (unless stopped)
/// recorded in the journal for `move status`.
fn finish(
    mut report: Report,
    stopped: bool,
    journal: &Mutex<Journal>,
    started: Instant,
) -> Result<Report> {
    report.conclude(stopped);
    if report.ending != report::Ending::Stopped {
        let mut journal = journal.lock().expect("journal lock");
        journal.record(Entry::ByHand {
            items: report.by_hand.clone(),
        })?;
        journal.record(Entry::done(
            Phase::Finished,
            report.summary_line(),
            String::new(),
        ))?;
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The account-data phase, skipped when the journal says it was done for the rooms in the
/// new account and what is copied.
fn account_data_phase(
    pair: &Pair<'_>,
    outcomes: &[RoomOutcome],
    copy: CopyWhat,
    journal: &Mutex<Journal>,
    events: &dyn Events,
) -> Result<AccountDataPhase> {
    let inputs = account_data_digest(outcomes, copy);
    let done = done_earlier(
        Some(&journal.lock().expect("journal lock")),
        Phase::AccountData,
        &inputs,
    );
    Ok(match done {
        Some(detail) => Skip::DoneEarlier { detail }.into(),
        None if !(copy.ignored || copy.push_rules || copy.profile) => Skip::NotAsked.into(),
        None => {
            let copied = copy_account_data(pair, outcomes, copy, false, events)?;
            let done = Entry::done(
                Phase::AccountData,
                report::account_data_line(&copied),
                inputs,
            );
            journal.lock().expect("journal lock").record(done)?;
            copied.into()
        }
    })
}

/// The keys phase, skipped when the journal says it was done for the same inputs (the
/// rooms, the sources, the backups). `problems` is `Some` in a dry run: nothing is written
/// (the journal neither), and every problem is listed instead of stopping at the first.
fn keys_phase<R: Read + Send>(
    pair: &Pair<'_>,
    rooms: &[String],
    sources: KeySources<R>,
    journal: Option<&mut Journal>,
    mut problems: keys::Problems<'_>,
    events: &dyn Events,
) -> Result<(KeysPhase, Option<keys::Backups>)> {
    if let Some(why) = sources.skipped() {
        // A rerun given no keys (a web page keeps them in memory only): what an earlier
        // run did stands.
        if let Some(done) = journal.as_deref().and_then(|j| j.phase(Phase::Keys)) {
            let detail = format!("{done} (no key source was given to this run)");
            return Ok((KeysPhase::DoneEarlier { detail }, None));
        }
        return Ok((KeysPhase::Skipped { why: why.into() }, None));
    }
    let backups = keys::open_backups(pair, &sources, &mut problems, events)?;
    let inputs = keys::inputs(rooms, &sources.exports, &backups);
    if let Some(done) = done_earlier(journal.as_deref(), Phase::Keys, &inputs) {
        return Ok((KeysPhase::DoneEarlier { detail: done }, Some(backups)));
    }
    let dry_run = problems.is_some();
    let phase = keys::run(
        pair,
        rooms,
        sources.exports,
        &sources.read,
        &backups,
        problems,
        events,
    )?;
    if let (KeysPhase::Done(done), false, Some(journal)) = (&phase, dry_run, journal) {
        journal.record(Entry::done(Phase::Keys, done.summary_line(), inputs))?;
    }
    Ok((phase, Some(backups)))
}

/// What the journal says `phase` did, when it was done for the same `inputs`.
fn done_earlier(journal: Option<&Journal>, phase: Phase, inputs: &str) -> Option<String> {
    journal
        .and_then(|j| j.phase_for(phase, inputs))
        .map(str::to_owned)
}

/// The rooms the new account is in (moved now, earlier, or without the power).
fn in_new_account(outcomes: &[RoomOutcome]) -> Vec<String> {
    outcomes
        .iter()
        .filter(|o| o.in_new_account())
        .map(|o| o.room_id.clone())
        .collect()
}

/// The dry run: every read of every phase, nothing written, every problem listed.
fn plan_only<R: Read + Send>(
    pair: &Pair<'_>,
    request: Request<R>,
    events: &dyn Events,
    mut report: Report,
    started: Instant,
) -> Result<Report> {
    let mut journal = Journal::read_only(&request.options.journal)?;
    if let Some(j) = &journal {
        j.check_pair(pair.old.user_id(), pair.new.user_id())?;
    }
    let mut problems = Vec::new();
    report.keys = keys_phase(
        pair,
        &request.rooms,
        request.keys,
        journal.as_mut(),
        Some(&mut problems),
        events,
    )?
    .0;
    report.problems = problems;
    let (new, new_user, old_user) = (pair.new.client(), pair.new.user_id(), pair.old.user_id());
    let mut rules = InviteRules::read(new, new_user, old_user)?;
    if rules.rule == InviteRule::Block && request.allow_invites == AllowInvites::Yes {
        // The run would open the setting first: plan as it would then be.
        report.invites_opened = rules.setting.clone();
        rules.rule = InviteRule::Allow;
    }
    let mut planned = plan::plan_with(pair, &request.rooms, request.options.leave, &rules, events)?;
    if request.allow_invites == AllowInvites::Ask {
        will_ask(&mut planned, old_user);
    }
    let movable: HashSet<String> = planned
        .rooms
        .iter()
        .filter(|r| r.decision.blockers.is_empty())
        .map(|r| r.facts.room_id.clone())
        .collect();
    report.direct_planned = dms_planned(pair, &movable)?;
    report.account_data = account_data_planned(pair, &movable, request.copy, journal.as_ref())?;
    report.rooms = RoomsPhase::Planned(planned);
    report.conclude(false);
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// A dry run of a move that will ask before it opens the invite setting: each room the
/// setting blocks says so.
fn will_ask(planned: &mut plan::Plan, old: &str) {
    let blocked = planned
        .rooms
        .iter_mut()
        .flat_map(|r| r.decision.blockers.iter_mut())
        .filter(|b| b.kind == plan::BlockerKind::InvitesBlocked);
    for b in blocked {
        b.advice = format!(
            "the run will ask first whether to let {old}'s invites through for the move \
             (allow_invites = \"ask\" in the plan): answer yes, or set allow_invites = \"yes\"; \
             else {}",
            b.advice
        );
    }
}

/// The (peer, room) pairs the new account's m.direct would get for the `movable` rooms.
fn dms_planned(pair: &Pair<'_>, movable: &HashSet<String>) -> Result<Vec<(String, String)>> {
    let (old, new) = (pair.old.user_id(), pair.new.user_id());
    let old_direct = online::direct::download(pair.old.client(), old)?;
    let accounts = m_direct::build::Accounts {
        old: old.into(),
        new: new.into(),
    };
    let (map, _) = m_direct::build::build(&old_direct, movable, &accounts);
    Ok(online::direct::plan(pair.new.client(), new, &map)?.added)
}

/// The account data a run would copy, unless the journal says it was done for the same
/// rooms and settings.
fn account_data_planned(
    pair: &Pair<'_>,
    movable: &HashSet<String>,
    copy: CopyWhat,
    journal: Option<&Journal>,
) -> Result<AccountDataPhase> {
    let mut sorted: Vec<&str> = movable.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    let inputs = digest_account_data(&sorted, copy);
    Ok(match done_earlier(journal, Phase::AccountData, &inputs) {
        Some(detail) => Skip::DoneEarlier { detail }.into(),
        None => account_data::copy(pair, movable, copy, true)?.into(),
    })
}

/// What the account-data phase covers: the rooms in the new account, what is copied.
fn account_data_digest(outcomes: &[RoomOutcome], copy: CopyWhat) -> String {
    let mut rooms: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.in_new_account())
        .map(|o| o.room_id.as_str())
        .collect();
    rooms.sort_unstable();
    digest_account_data(&rooms, copy)
}

fn digest_account_data(rooms: &[&str], copy: CopyWhat) -> String {
    let flags = format!("{} {} {}", copy.ignored, copy.push_rules, copy.profile);
    digest(std::iter::once(flags.as_str()).chain(rooms.iter().copied()))
}

/// Copies the account data, with the room rules of the rooms the new account is in.
fn copy_account_data(
    pair: &Pair<'_>,
    outcomes: &[RoomOutcome],
    copy: CopyWhat,
    dry_run: bool,
    events: &dyn Events,
) -> Result<AccountDataReport> {
    let moved: HashSet<String> = outcomes
        .iter()
        .filter(|o| o.in_new_account())
        .map(|o| o.room_id.clone())
        .collect();
    stage(events, Stage::AccountData, None, || {
        account_data::copy(pair, &moved, copy, dry_run)
    })
}
