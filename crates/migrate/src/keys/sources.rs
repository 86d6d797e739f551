//! Where room keys come from — one seam for every job that gathers them (`upload keys`,
//! the whole move): key exports of the old account's devices, and an account's server-side
//! key backup (opened through secret storage as Element sets it up, or with the backup's own
//! key). Every source is read into one [`Decrypted`] set, so the merge keeps one best copy
//! of each session whatever the mix. A new kind of source is one more [`KeySource`] variant
//! and its reader here.
//!
//! A real run stops at the first source that cannot be read. A dry run reads every source
//! anyway and lists each problem ([`Problems`]), so one dry run shows all there is to fix.

use std::io::Read;

use key_export::pipeline::{self, Decrypted, Source};
use key_export::ReadOptions;
use online::backup::{self, Opened, Skipped, Via};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::events::{stage, Event, Events, Stage};

/// One place room keys come from.
pub enum KeySource<'a, R> {
    /// A key export of one device, opened, its passphrase given.
    Export(Source<R>),
    /// An account's server-side key backup, opened with its recovery key or phrase.
    Backup(BackupSource<'a>),
}

/// A key backup to read, and which of its rooms.
pub struct BackupSource<'a> {
    /// The account's client.
    pub client: &'a online::Client,
    /// Whose backup.
    pub account: Account,
    /// That account's user ID (for problems).
    pub user: &'a str,
    /// The backup, opened.
    pub opened: &'a Opened,
    /// The rooms whose sessions are read.
    pub rooms: &'a [String],
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

impl Account {
    /// The name its key backup goes by among the key sources.
    pub fn backup_source_name(self) -> &'static str {
        match self {
            Account::Old => "the old account's key backup",
            Account::New => "the new account's key backup",
        }
    }

    /// Its key backup, named for a problem.
    pub fn backup_name(self, user: &str) -> String {
        format!("{self}'s key backup ({user})")
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

/// Where a job's problems go: `None` (a real run) stops at the first, `Some` (a dry run)
/// lists each and goes on with what it can still read.
pub type Problems<'a> = Option<&'a mut Vec<Problem>>;

/// `result`'s value; its error stops a real run, and in a dry run is listed under `what`.
pub fn checked<T>(
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

/// What a key backup gave.
#[derive(Debug, Clone)]
pub struct BackupRead {
    /// Whose backup.
    pub account: Account,
    /// Its version.
    pub version: String,
    /// How its key was found.
    pub opened_via: Via,
    /// Sessions read.
    pub sessions: usize,
    /// Entries left out (they do not decrypt, or disagree with where they are stored).
    pub skipped: Vec<Skipped>,
}

/// Every source read: the decrypted set, and what each backup gave.
pub struct ReadKeys {
    /// Every source's entries, decrypted, in order (exports first, then backups).
    pub decrypted: Decrypted,
    /// The backups read.
    pub backups: Vec<BackupRead>,
}

/// Reads every source: the backups downloaded (a stage each), then the exports decrypted in
/// parallel. The `ReadExports` stage is started here; the caller finishes it once it has
/// merged what was read.
pub fn read<R: Read + Send>(
    sources: Vec<KeySource<'_, R>>,
    options: &ReadOptions,
    problems: &mut Problems<'_>,
    events: &dyn Events,
) -> Result<ReadKeys> {
    let mut exports = Vec::new();
    let mut downloaded = Vec::new();
    for source in sources {
        match source {
            KeySource::Export(e) => exports.push(e),
            KeySource::Backup(b) => downloaded.extend(read_backup(&b, problems, events)?),
        }
    }
    events.emit(Event::Started {
        stage: Stage::ReadExports,
        total: None,
    });
    let (mut decrypted, failed) = pipeline::decrypt_each(exports, options);
    for e in failed {
        let name = e.input_name().unwrap_or("a key export").to_owned();
        checked::<()>(problems, || format!("the key export {name}"), Err(e.into()))?;
    }
    let mut backups = Vec::new();
    for (read, entries) in downloaded {
        decrypted.add_entries(read.account.backup_source_name(), &entries);
        backups.push(read);
    }
    Ok(ReadKeys { decrypted, backups })
}

/// The listed rooms' sessions in one backup; `None` when a dry run could not read it.
fn read_backup(
    b: &BackupSource<'_>,
    problems: &mut Problems<'_>,
    events: &dyn Events,
) -> Result<Option<(BackupRead, Vec<Zeroizing<String>>)>> {
    let (info, mut entries) = (&b.opened.info, Vec::new());
    let done = stage(events, Stage::Download, Some(info.count), || {
        backup::download_each(
            b.client,
            info,
            &b.opened.key,
            backup::Rooms::Listed(b.rooms),
            &mut |got| {
                entries.extend(got);
                Ok(())
            },
        )
    })
    .map_err(|source| Error::Account {
        account: b.account,
        source,
    });
    let Some(done) = checked(problems, || b.account.backup_name(b.user), done)? else {
        return Ok(None);
    };
    let read = BackupRead {
        account: b.account,
        version: info.version.clone(),
        opened_via: b.opened.via,
        sessions: done.sessions,
        skipped: done.skipped,
    };
    Ok(Some((read, entries)))
}
