//! The keys phase of a whole move: both backups opened with what the user has (the recovery
//! key Element shows, or a security phrase), every source read and merged (one best copy
//! per session, vodozemac deciding), only the moving rooms kept, only what improves the new
//! backup sent.
//!
//! A real run stops at the first problem, before anything is written. A dry run reads
//! every source anyway and lists every problem ([`Problems`]), so one dry run shows all
//! there is to fix.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use key_export::merge::MergeOptions;
use key_export::pipeline::{self, PipelineError, Source};
use key_export::select::RoomSelection;
use key_export::ReadOptions;
use online::backup::{self, Opened, Recovery, StoredSession};
use serde::Serialize;

use super::report::{self, KeysDone, KeysPhase, OldBackup, RoomKeys};
use crate::error::{Error, Result};
use crate::events::{stage, Event, Events, Stage};
use crate::journal::digest;
use crate::rooms::plan::Pair;

/// Where the room keys come from.
pub struct KeySources<R> {
    /// Key exports of the old account's devices (opened, passphrases given).
    pub exports: Vec<Source<R>>,
    /// How to read them.
    pub read: ReadOptions,
    /// The old account's recovery key or security phrase: its backup is one more source.
    pub old_recovery: Option<Recovery>,
    /// The new account's recovery key or security phrase: the keys go into its backup,
    /// and nothing is sent unless the backup key found is that backup's.
    pub new_recovery: Option<Recovery>,
}

impl<R> KeySources<R> {
    /// Why the phase does not run, when it does not.
    pub(super) fn skipped(&self) -> Option<&'static str> {
        if self.exports.is_empty() && self.old_recovery.is_none() {
            Some("the plan names no key export and no recovery key of the old account")
        } else if self.new_recovery.is_none() {
            Some(
                "the plan names no recovery key or security phrase of the new account: the \
                 keys can only go into its backup",
            )
        } else {
            None
        }
    }
}

/// Which account something concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Account {
    /// The account moved from.
    Old,
    /// The account moved to.
    New,
}

impl std::fmt::Display for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Account::Old => "the old account",
            Account::New => "the new account",
        })
    }
}

/// Something that stops the move, found by a dry run (a real run stops at it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Problem {
    /// What it concerns: a backup, a key export.
    pub what: String,
    /// What is wrong and what to do.
    pub why: String,
}

/// Where a phase's problems go: `None` (a real run) stops at the first, `Some` (a dry
/// run) lists each and goes on with what it can still read.
pub(super) type Problems<'a> = Option<&'a mut Vec<Problem>>;

/// `result`'s value; its error stops a real run, and in a dry run is listed under `what`.
fn checked<T>(
    problems: &mut Problems<'_>,
    what: impl FnOnce() -> String,
    result: Result<T>,
) -> Result<Option<T>> {
    match (result, problems) {
        (Ok(v), _) => Ok(Some(v)),
        (Err(e), Some(list)) => {
            list.push(Problem {
                what: what(),
                why: e.to_string(),
            });
            Ok(None)
        }
        (Err(e), None) => Err(e),
    }
}

/// Both accounts' backups, opened.
pub(crate) struct Backups {
    /// The new account's (the keys go there); `None` only in a dry run that could not open it.
    pub new: Option<Opened>,
    /// The old account's, when the plan gives its recovery key or phrase.
    pub old: Option<Opened>,
}

fn backup_name(account: Account, user: &str) -> String {
    format!("{account}'s key backup ({user})")
}

/// Opens the backups: the new one first (a wrong key stops a real run before anything is
/// read), refused when its account switched key storage off; then the old one.
pub(super) fn open_backups<R>(
    pair: &Pair<'_>,
    sources: &KeySources<R>,
    problems: &mut Problems<'_>,
    events: &dyn Events,
) -> Result<Backups> {
    let open = |account: Account, recovery: &Recovery, problems: &mut Problems<'_>| {
        let (session, upload) = match account {
            Account::Old => (pair.old, false),
            Account::New => (pair.new, true),
        };
        let (client, user) = (session.client(), session.user_id());
        let opened = stage(events, Stage::CheckBackup, None, || {
            if upload {
                backup::open_for_upload(client, user, recovery)
            } else {
                backup::open(client, user, recovery)
            }
        })
        .map_err(|e| Error::Account { account, source: e });
        checked(problems, || backup_name(account, user), opened)
    };
    let new = match &sources.new_recovery {
        Some(r) => open(Account::New, r, problems)?,
        None => None,
    };
    let old = match &sources.old_recovery {
        Some(r) => open(Account::Old, r, problems)?,
        None => None,
    };
    Ok(Backups { new, old })
}

/// What the keys phase covers, for the journal: the moving rooms, the sources (names and
/// sizes), the backups (versions and public keys), and what the old backup holds now (its
/// `etag` and count: keys the old account received since the last run make a rerun do the
/// phase again).
pub(super) fn inputs<R>(rooms: &[String], exports: &[Source<R>], backups: &Backups) -> String {
    let mut rooms: Vec<&str> = rooms.iter().map(String::as_str).collect();
    rooms.sort_unstable();
    let mut parts: Vec<String> = vec!["rooms".into()];
    parts.extend(rooms.iter().map(|r| r.to_string()));
    parts.push("exports".into());
    parts.extend(exports.iter().map(|s| format!("{} {}", s.name, s.len)));
    for opened in [&backups.old, &backups.new] {
        parts.push(opened.as_ref().map_or_else(String::new, |o| {
            format!("{} {}", o.info.version, o.key.public_key())
        }));
    }
    if let Some(old) = &backups.old {
        parts.push(format!("{} {}", old.info.etag, old.info.count));
    }
    digest(parts)
}

/// The keys phase itself, on opened backups. A dry run sends nothing.
pub(super) fn run<R: Read + Send>(
    pair: &Pair<'_>,
    rooms: &[String],
    exports: Vec<Source<R>>,
    read: &ReadOptions,
    backups: &Backups,
    mut problems: Problems<'_>,
    events: &dyn Events,
) -> Result<KeysPhase> {
    let dry_run = problems.is_some();
    let (old_backup, backup_entries) = match &backups.old {
        Some(opened) => read_old_backup(pair, rooms, opened, &mut problems, events)?,
        None => (None, Vec::new()),
    };
    events.emit(Event::Started {
        stage: Stage::ReadExports,
        total: None,
    });
    let options = MergeOptions {
        selection: RoomSelection::new(rooms.to_vec(), false),
        drop_invalid: true,
        strict: false,
    };
    let (mut decrypted, failed) = pipeline::decrypt_each(exports, read);
    for e in failed {
        let name = e.input_name().unwrap_or("a key export").to_owned();
        checked::<()>(
            &mut problems,
            || format!("the key export {name}"),
            Err(e.into()),
        )?;
    }
    if old_backup.is_some() {
        decrypted.add_entries(report::OLD_BACKUP, &backup_entries);
    }
    drop(backup_entries);
    let parsed = decrypted.parse(&options)?;
    let merged = parsed.merge(&options).map_err(PipelineError::from)?;
    events.emit(Event::Finished {
        stage: Stage::ReadExports,
    });
    let with_keys: Vec<String> = merged
        .sessions
        .iter()
        .map(|s| s.room_id.as_ref())
        .collect::<BTreeSet<&str>>()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let new = pair.new.client();
    let stored = match &backups.new {
        Some(opened) => backup::stored(new, &opened.info, &with_keys)?,
        None => Default::default(),
    };
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
    let upload = match &backups.new {
        Some(opened) if !dry_run && !to_send.is_empty() => {
            Some(stage(events, Stage::Upload, Some(total), || {
                backup::upload(
                    new,
                    &opened.info,
                    &opened.key,
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
        }
        _ => None,
    };
    let (backup_version, count) = backups.new.as_ref().map_or((String::new(), 0), |o| {
        (o.info.version.clone(), o.info.count)
    });
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
        backup_version,
        backup_count_after: upload.map_or(count, |u| u.count_after),
        rooms: per_room,
        rooms_without_keys: merged.summary.rooms_without_keys.clone(),
        duplicates_merged: merged.summary.duplicates_merged,
        conflicts: merged.conflicts.len(),
        dropped_invalid: merged.invalid.len(),
        dry_run,
    }))
}

/// The last keys pass, right before the rename and the leaves: what the old account's
/// backup holds now of the rooms the new account is in, into the new backup where it
/// improves it. Until the new account joined a room, the room's keys were shared with the
/// old account's devices only; once the old account leaves, they stop coming; so this is
/// the last moment they can be carried over. `None` when there is no old backup to read.
pub(super) fn last_pass(
    pair: &Pair<'_>,
    rooms: &[String],
    backups: &mut Backups,
    events: &dyn Events,
) -> Result<Option<KeysDone>> {
    let (Some(old), Some(_)) = (&mut backups.old, &backups.new) else {
        return Ok(None);
    };
    // What the old backup holds now: it has grown since it was opened if the old account's
    // devices kept backing up. Another version means another key: that one is not read.
    match backup::current(pair.old.client())? {
        Some(info) if info.version == old.info.version => old.info = info,
        _ => return Ok(None),
    }
    let no_exports: Vec<Source<std::io::Empty>> = Vec::new();
    match run(
        pair,
        rooms,
        no_exports,
        &ReadOptions::default(),
        backups,
        None,
        events,
    )? {
        KeysPhase::Done(done) => Ok(Some(done)),
        _ => Ok(None),
    }
}

/// The moving rooms' sessions in the old account's backup.
fn read_old_backup(
    pair: &Pair<'_>,
    rooms: &[String],
    opened: &Opened,
    problems: &mut Problems<'_>,
    events: &dyn Events,
) -> Result<(Option<OldBackup>, Vec<zeroize::Zeroizing<String>>)> {
    let old = pair.old.client();
    let mut entries = Vec::new();
    let done = stage(events, Stage::Download, Some(opened.info.count), || {
        backup::download_each(
            old,
            &opened.info,
            &opened.key,
            backup::Rooms::Listed(rooms),
            &mut |got| {
                entries.extend(got);
                Ok(())
            },
        )
    })
    .map_err(|e| Error::Account {
        account: Account::Old,
        source: e,
    });
    let user = pair.old.user_id();
    let Some(done) = checked(problems, || backup_name(Account::Old, user), done)? else {
        return Ok((None, Vec::new()));
    };
    Ok((
        Some(OldBackup {
            version: opened.info.version.clone(),
            opened_via: opened.via,
            sessions: done.sessions,
            skipped: done.skipped,
        }),
        entries,
    ))
}
