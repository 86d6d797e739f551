//! The whole move of an account as one resumable job (`move run`): the room keys into the
//! new account's backup, the rooms (with the DMs), the account data, the old account
//! renamed, the leaves; each phase skipped when the journal says it is done, and every step
//! re-reading the server first, so a run killed at any moment and run again reaches the
//! same end without doing anything twice.
//!
//! - [`report`]: what a run did or (a dry run) would do, and the Markdown for people;
//! - [`status`]: where a move stands, read from its journal alone.
//!
//! The phases, in order:
//! 1. keys: every key export, plus the old account's backup when its recovery key is
//!    given, merged (one best copy per session, vodozemac deciding), only the moving
//!    rooms kept; the new account's recovery key checked against its backup before
//!    anything is read; only the sessions that improve what the backup holds are sent;
//! 2. rooms, then the DMs of the rooms that moved ([`crate::rooms::moving`]);
//! 3. account data ([`crate::account_data`]), with the notification rules of the rooms
//!    that moved;
//! 4. the rename of the old account, then the leaves (the rooms engine's last steps).

pub mod report;
pub mod status;

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::time::Instant;

use key_export::merge::MergeOptions;
use key_export::pipeline::{self, PipelineError, Source};
use key_export::select::RoomSelection;
use key_export::ReadOptions;
use online::backup::{self, RecoveryKey, StoredSession};

use crate::account_data::{self, AccountDataReport};
use crate::error::Result;
use crate::events::{stage, Event, Events, Stage};
use crate::rooms::journal::{digest, Entry, Journal, Phase};
use crate::rooms::moving::{self, MoveOptions, RoomOutcome};
use crate::rooms::plan::{self, Pair};

pub use report::{
    AccountDataPhase, ByHand, Ending, KeysDone, KeysPhase, Report, RoomKeys, RoomsPhase, Skip,
};

/// Which account data to copy.
pub use crate::account_data::Copy as CopyWhat;

/// Where the room keys come from.
pub struct KeySources<R> {
    /// Key exports of the old account's devices (opened, passphrases given).
    pub exports: Vec<Source<R>>,
    /// How to read them.
    pub read: ReadOptions,
    /// The old account's recovery key: its backup is one more source.
    pub old_recovery_key: Option<RecoveryKey>,
    /// The new account's recovery key: the keys go into its backup, and nothing is sent
    /// unless it is that backup's.
    pub new_recovery_key: Option<RecoveryKey>,
}

impl<R> KeySources<R> {
    fn any(&self) -> bool {
        !self.exports.is_empty() || self.old_recovery_key.is_some()
    }
}

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
}

/// Runs the move (or, with `dry_run`, plans it). Stopped by the cancel flag, it returns
/// what it did, its ending `Stopped`; the same call again resumes.
pub fn run<R: Read + Send>(
    pair: &Pair<'_>,
    request: Request<R>,
    events: &dyn Events,
) -> Result<Report> {
    let started = Instant::now();
    let mut report = Report::new(pair, request.dry_run);
    if request.dry_run {
        return plan_only(pair, request, events, report, started);
    }
    let options = &request.options;
    let mut journal = Journal::open(&options.journal)?;

    let keys_inputs = keys_digest(&request.rooms, &request.keys);
    report.keys = match journal.phase_for(Phase::Keys, &keys_inputs) {
        Some(detail) => KeysPhase::DoneEarlier {
            detail: detail.to_owned(),
        },
        None => match keys_phase(pair, &request.rooms, request.keys, false, events)? {
            KeysPhase::Done(done) => {
                journal.record(Entry::Done {
                    phase: Phase::Keys,
                    detail: done.summary_line(),
                    inputs: keys_inputs,
                })?;
                KeysPhase::Done(done)
            }
            other => other,
        },
    };
    drop(journal);
    if options.cancel.load(std::sync::atomic::Ordering::Relaxed) {
        report.conclude(true);
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }

    let copy = request.copy;
    let mut account_data = None;
    let rooms = moving::run_with(pair, &request.rooms, options, events, &mut |outcomes| {
        let inputs = account_data_digest(outcomes, copy);
        let mut journal = Journal::open(&options.journal)?;
        account_data = Some(match journal.phase_for(Phase::AccountData, &inputs) {
            Some(detail) => Skip::DoneEarlier {
                detail: detail.to_owned(),
            }
            .into(),
            None if !(copy.ignored || copy.push_rules || copy.profile) => Skip::NotAsked.into(),
            None => {
                let copied = copy_account_data(pair, outcomes, copy, false, events)?;
                journal.record(Entry::Done {
                    phase: Phase::AccountData,
                    detail: report::account_data_line(&copied),
                    inputs,
                })?;
                copied.into()
            }
        });
        Ok(())
    })?;
    report.account_data = account_data.unwrap_or_else(|| Skip::NotReached.into());
    let stopped = rooms.stopped;
    report.rooms = RoomsPhase::Moved(rooms);
    report.conclude(stopped);
    if report.ending != report::Ending::Stopped {
        Journal::open(&options.journal)?.record(Entry::Done {
            phase: Phase::Finished,
            detail: report.summary_line(),
            inputs: String::new(),
        })?;
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The dry run: every read of every phase, nothing written.
fn plan_only<R: Read + Send>(
    pair: &Pair<'_>,
    request: Request<R>,
    events: &dyn Events,
    mut report: Report,
    started: Instant,
) -> Result<Report> {
    let journal = Journal::read_only(&request.options.journal)?;
    let earlier = |phase, inputs: &str| {
        journal
            .as_ref()
            .and_then(|j| j.phase_for(phase, inputs).map(str::to_owned))
    };
    report.keys = match earlier(Phase::Keys, &keys_digest(&request.rooms, &request.keys)) {
        Some(detail) => KeysPhase::DoneEarlier { detail },
        None => keys_phase(pair, &request.rooms, request.keys, true, events)?,
    };
    let planned = plan::plan(pair, &request.rooms, request.options.leave, events)?;
    let movable: HashSet<String> = planned
        .rooms
        .iter()
        .filter(|r| r.decision.blockers.is_empty())
        .map(|r| r.facts.room_id.clone())
        .collect();
    let (old, new) = (pair.old.user_id(), pair.new.user_id());
    let old_direct = online::direct::download(pair.old.client(), old)?;
    let accounts = m_direct::build::Accounts {
        old: old.into(),
        new: new.into(),
    };
    let (map, _) = m_direct::build::build(&old_direct, &movable, &accounts);
    report.direct_planned = online::direct::plan(pair.new.client(), new, &map)?.added;
    let mut movable_sorted: Vec<&str> = movable.iter().map(String::as_str).collect();
    movable_sorted.sort_unstable();
    let inputs = digest_account_data(&movable_sorted, request.copy);
    report.account_data = match earlier(Phase::AccountData, &inputs) {
        Some(detail) => Skip::DoneEarlier { detail }.into(),
        None => account_data::copy(pair, &movable, request.copy, true)?.into(),
    };
    report.rooms = RoomsPhase::Planned(planned);
    report.conclude(false);
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// What the keys phase covers: the moving rooms, the sources (names and sizes), and the
/// backups (their public keys).
fn keys_digest<R>(rooms: &[String], keys: &KeySources<R>) -> String {
    let mut rooms: Vec<&str> = rooms.iter().map(String::as_str).collect();
    rooms.sort_unstable();
    let mut parts: Vec<String> = vec!["rooms".into()];
    parts.extend(rooms.iter().map(|r| r.to_string()));
    parts.push("exports".into());
    parts.extend(keys.exports.iter().map(|s| format!("{} {}", s.name, s.len)));
    for key in [&keys.old_recovery_key, &keys.new_recovery_key] {
        parts.push(key.as_ref().map_or_else(String::new, |k| k.public_key()));
    }
    digest(parts)
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

/// The keys phase: sources merged, only the moving rooms, only what improves the backup.
fn keys_phase<R: Read + Send>(
    pair: &Pair<'_>,
    rooms: &[String],
    sources: KeySources<R>,
    dry_run: bool,
    events: &dyn Events,
) -> Result<KeysPhase> {
    if !sources.any() {
        return Ok(KeysPhase::Skipped {
            why: "the plan names no key export and no old recovery key".into(),
        });
    }
    let Some(new_key) = sources.new_recovery_key else {
        return Ok(KeysPhase::Skipped {
            why: "the plan names no recovery key of the new account (keys.new_recovery_key_file): \
                  the keys can only go into its backup"
                .into(),
        });
    };
    let (old, new) = (pair.old.client(), pair.new.client());
    // The new account's backup first: a wrong key stops the move before anything is read.
    let info = stage(events, Stage::CheckBackup, None, || {
        crate::keys::checked_backup(new, &new_key)
    })?;
    let mut old_backup = None;
    let mut backup_entries = Vec::new();
    if let Some(old_key) = &sources.old_recovery_key {
        let old_info = crate::keys::checked_backup(old, old_key)?;
        let done = stage(events, Stage::Download, Some(old_info.count), || {
            backup::download_each(
                old,
                &old_info,
                old_key,
                backup::Rooms::Listed(rooms),
                &mut |entries| {
                    backup_entries.extend(entries);
                    Ok(())
                },
            )
        })?;
        old_backup = Some(report::OldBackup {
            version: old_info.version,
            sessions: done.sessions,
            skipped: done.skipped,
        });
    }
    events.emit(Event::Started {
        stage: Stage::ReadExports,
        total: None,
    });
    let options = MergeOptions {
        selection: RoomSelection::new(rooms.to_vec(), false),
        drop_invalid: true,
        strict: false,
    };
    let mut decrypted = pipeline::decrypt_all(sources.exports, &sources.read)?;
    if old_backup.is_some() {
        decrypted.add_entries(report::OLD_BACKUP, &backup_entries);
    }
    drop(backup_entries);
    let parsed = decrypted.parse(&options)?;
    let merged = parsed.merge(&options).map_err(PipelineError::from)?;
    events.emit(Event::Finished {
        stage: Stage::ReadExports,
    });
    let with_keys: Vec<String> = {
        let set: std::collections::BTreeSet<&str> =
            merged.sessions.iter().map(|s| s.room_id.as_ref()).collect();
        set.into_iter().map(str::to_owned).collect()
    };
    let stored = backup::stored(new, &info, &with_keys)?;
    let mut per_room: BTreeMap<String, RoomKeys> = BTreeMap::new();
    let mut to_send = Vec::new();
    for s in &merged.sessions {
        let ours = StoredSession {
            first_message_index: s.first_known_index,
            forwarded_count: backup::forwarded_count(s),
            is_verified: false,
        };
        let key = (s.room_id.to_string(), s.session_id.to_string());
        let room = per_room.entry(key.0.clone()).or_default();
        room.sessions += 1;
        if backup::improves(stored.get(&key), &ours) {
            room.to_send += 1;
            to_send.push(*s);
        }
    }
    let total = to_send.len() as u64;
    let upload = if dry_run || to_send.is_empty() {
        None
    } else {
        Some(stage(events, Stage::Upload, Some(total), || {
            backup::upload(
                new,
                &info,
                &new_key,
                &to_send,
                backup::DEFAULT_BATCH,
                &|done| {
                    events.emit(Event::Progress {
                        stage: Stage::Upload,
                        done: done as u64,
                        total,
                    })
                },
            )
        })?)
    };
    Ok(KeysPhase::Done(KeysDone {
        sources: decrypted
            .names()
            .iter()
            .cloned()
            .zip(merged.summary.read.iter().copied())
            .collect(),
        old_backup,
        sessions: merged.sessions.len(),
        to_send: to_send.len(),
        sent: upload.as_ref().map_or(0, |u| u.sent),
        backup_version: info.version,
        backup_count_after: upload.map_or(info.count, |u| u.count_after),
        rooms: per_room,
        rooms_without_keys: merged.summary.rooms_without_keys.clone(),
        duplicates_merged: merged.summary.duplicates_merged,
        conflicts: merged.conflicts.len(),
        dropped_invalid: merged.invalid.len(),
        dry_run,
    }))
}
