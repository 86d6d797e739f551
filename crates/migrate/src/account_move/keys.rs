//! The keys phase of a whole move: both backups opened with what the user has (the recovery
//! key Element shows, or a security phrase), every source read through the one seam for key
//! sources ([`crate::keys::sources`]) and merged (one best copy per session, vodozemac
//! deciding), only the moving rooms kept, only what improves the new backup sent.
//!
//! A real run stops at the first problem, before anything is written. A dry run reads
//! every source anyway and lists every problem ([`Problems`]), so one dry run shows all
//! there is to fix.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use key_export::merge::MergeOptions;
use key_export::pipeline::{PipelineError, Source};
use key_export::select::RoomSelection;
use key_export::session::SessionRef;
use key_export::ReadOptions;
use online::backup::{self, Opened, Recovery, StoredSession};

use super::report::{KeysDone, KeysPhase, OldBackup, RoomKeys};
use crate::error::{Error, Result};
use crate::events::{stage, Event, Events, Stage};
use crate::journal::digest;
use crate::keys::sources::{self, BackupRead, BackupSource, KeySource};
pub use crate::keys::sources::{checked, Account, Problem, Problems};
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

/// Both accounts' backups, opened.
pub(crate) struct Backups {
    /// The new account's (the keys go there); `None` only in a dry run that could not open it.
    pub new: Option<Opened>,
    /// The old account's, when the plan gives its recovery key or phrase.
    pub old: Option<Opened>,
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
        checked(problems, || account.backup_name(user), opened)
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
    let sources = sources_of(pair, rooms, exports, backups);
    let got = sources::read(sources, read, &mut problems, events)?;
    let options = MergeOptions {
        selection: RoomSelection::new(rooms.to_vec(), false),
        drop_invalid: true,
        strict: false,
    };
    let parsed = got.decrypted.parse(&options)?;
    let merged = parsed.merge(&options).map_err(PipelineError::from)?;
    events.emit(Event::Finished {
        stage: Stage::ReadExports,
    });
    let sends = Sends::of(pair.new.client(), backups.new.as_ref(), &merged.sessions)?;
    let upload = match &backups.new {
        Some(opened) if !dry_run => sends.upload(pair.new.client(), opened, events)?,
        _ => None,
    };
    let (backup_version, count) = backups.new.as_ref().map_or((String::new(), 0), |o| {
        (o.info.version.clone(), o.info.count)
    });
    Ok(KeysPhase::Done(KeysDone {
        sources: got
            .decrypted
            .names()
            .iter()
            .cloned()
            .zip(merged.summary.read.iter().copied())
            .collect(),
        old_backup: got.backups.into_iter().next().map(old_backup),
        sessions: merged.sessions.len(),
        to_send: sends.sessions.len(),
        sent: upload.as_ref().map_or(0, |u| u.sent),
        backup_version,
        backup_count_after: upload.map_or(count, |u| u.count_after),
        rooms: sends.per_room,
        rooms_without_keys: merged.summary.rooms_without_keys.clone(),
        duplicates_merged: merged.summary.duplicates_merged,
        conflicts: merged.conflicts.len(),
        dropped_invalid: merged.invalid.len(),
        dry_run,
    }))
}

/// The move's key sources: the exports, and the old account's backup when it is open.
fn sources_of<'a, R>(
    pair: &'a Pair<'_>,
    rooms: &'a [String],
    exports: Vec<Source<R>>,
    backups: &'a Backups,
) -> Vec<KeySource<'a, R>> {
    let mut sources: Vec<KeySource<'a, R>> = exports.into_iter().map(KeySource::Export).collect();
    if let Some(opened) = &backups.old {
        sources.push(KeySource::Backup(BackupSource {
            client: pair.old.client(),
            account: Account::Old,
            user: pair.old.user_id(),
            opened,
            rooms,
        }));
    }
    sources
}

fn old_backup(b: BackupRead) -> OldBackup {
    OldBackup {
        version: b.version,
        opened_via: b.opened_via,
        sessions: b.sessions,
        skipped: b.skipped,
    }
}

/// The merged sessions that improve the new backup, counted per room.
struct Sends<'s, 'a> {
    per_room: BTreeMap<String, RoomKeys>,
    sessions: Vec<&'s SessionRef<'a>>,
}

impl<'s, 'a> Sends<'s, 'a> {
    /// Compares each merged session with what the new backup stores (nothing stored when
    /// there is no backup: everything counts as to send).
    fn of(
        new: &online::Client,
        backup: Option<&Opened>,
        merged: &'s [&'s SessionRef<'a>],
    ) -> Result<Self> {
        let with_keys: BTreeSet<&str> = merged.iter().map(|s| s.room_id.as_ref()).collect();
        let with_keys: Vec<String> = with_keys.into_iter().map(str::to_owned).collect();
        let stored = match backup {
            Some(opened) => backup::stored(new, &opened.info, &with_keys)?,
            None => Default::default(),
        };
        let mut sends = Sends {
            per_room: BTreeMap::new(),
            sessions: Vec::new(),
        };
        for s in merged {
            let key = (s.room_id.to_string(), s.session_id.to_string());
            let room = sends.per_room.entry(key.0.clone()).or_default();
            room.sessions += 1;
            if backup::improves(stored.get(&key), &ours(s)) {
                room.to_send += 1;
                sends.sessions.push(*s);
            }
        }
        Ok(sends)
    }

    /// Sends them into the new backup (`None`: nothing to send).
    fn upload(
        &self,
        new: &online::Client,
        opened: &Opened,
        events: &dyn Events,
    ) -> Result<Option<online::backup::UploadReport>> {
        if self.sessions.is_empty() {
            return Ok(None);
        }
        let batch = backup::DEFAULT_BATCH;
        let report = crate::keys::send(
            new,
            &opened.info,
            &opened.key,
            &self.sessions,
            batch,
            events,
        )?;
        Ok(Some(report))
    }
}

/// How a merged session would be stored in a backup.
fn ours(s: &SessionRef<'_>) -> StoredSession {
    StoredSession {
        first_message_index: s.first_known_index,
        forwarded_count: backup::forwarded_count(s),
        is_verified: false,
    }
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
