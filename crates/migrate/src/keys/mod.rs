//! Room keys: into and out of an account's server-side key backup, and ([`local`]) the
//! jobs on an export alone.

pub mod local;
pub mod sources;

use std::io::{Read, Write};
use std::time::Instant;

use key_export::container::SealWriter;
use key_export::entries::ArrayWriter;
use key_export::merge::MergeOptions;
use key_export::pipeline::{Destination, Finished, PipelineError, Source};
use key_export::select::RoomSelection;
use key_export::session::SessionRef;
use key_export::{ReadOptions, SealingKey};
use online::backup::{self, Opened, Recovery, UploadReport, Via};
use online::Session;
use serde::Serialize;

use crate::error::Result;
use crate::events::{stage, Event, Events, Stage};
use sources::KeySource;

/// What to put into the backup.
pub struct UploadKeys<R> {
    /// The key exports (one per device; merged, one best copy per session).
    pub sources: Vec<Source<R>>,
    /// How to read them.
    pub read: ReadOptions,
    /// Which rooms, and what to do with invalid entries and conflicts.
    pub options: MergeOptions,
    /// The recovery key or security phrase of the account: it opens the backup, and
    /// nothing is sent unless the key found is that backup's.
    pub recovery: Recovery,
    /// Sessions per upload request.
    pub batch: usize,
}

/// What an upload did.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct UploadKeysReport {
    /// The read and merge: counts, conflicting copies (the first was kept), invalid
    /// entries left out.
    #[serde(flatten)]
    pub merged: Finished,
    /// How the backup's key was found.
    pub opened_via: Via,
    /// The upload itself.
    pub upload: UploadReport,
    /// Wall time of the upload stage.
    pub upload_seconds: f64,
}

/// Opens the account's backup with the user's recovery key or phrase (no backup, a key
/// that opens nothing, a backup switched off: each stops before any export is read), reads
/// and merges the exports, keeps the selected rooms, and uploads one best copy of each
/// session.
pub fn upload<R: Read + Send>(
    session: &Session,
    request: UploadKeys<R>,
    events: &dyn Events,
) -> Result<UploadKeysReport> {
    let client = session.client();
    let Opened { info, key, via } = stage(events, Stage::CheckBackup, None, || {
        backup::open_for_upload(client, session.user_id(), &request.recovery)
    })?;
    let exports = request.sources.into_iter().map(KeySource::Export).collect();
    let decrypted = sources::read(exports, &request.read, &mut None, events)?.decrypted;
    let parsed = decrypted.parse(&request.options)?;
    let merged = parsed
        .merge(&request.options)
        .map_err(PipelineError::from)?;
    events.emit(Event::Finished {
        stage: Stage::ReadExports,
    });
    let started = Instant::now();
    let upload = send(client, &info, &key, &merged.sessions, request.batch, events)?;
    Ok(UploadKeysReport {
        upload_seconds: started.elapsed().as_secs_f64(),
        merged: Finished {
            summary: merged.summary,
            conflicts: merged.conflicts,
            dropped_invalid: merged.invalid,
        },
        opened_via: via,
        upload,
    })
}

/// Sends `sessions` into the backup `info` (sealed to `key`), `batch` per request, as the
/// `Upload` stage, counted.
pub fn send(
    client: &online::Client,
    info: &backup::BackupInfo,
    key: &backup::BackupKey,
    sessions: &[&SessionRef<'_>],
    batch: usize,
    events: &dyn Events,
) -> Result<UploadReport> {
    let total = sessions.len() as u64;
    let progress = |done: usize| {
        events.emit(Event::Progress {
            stage: Stage::Upload,
            done: done as u64,
            total,
        })
    };
    Ok(stage(events, Stage::Upload, Some(total), || {
        backup::upload(client, info, key, sessions, batch.max(1), &progress)
    })?)
}

/// What to take out of the backup.
pub struct DownloadKeys {
    /// The recovery key or security phrase of the account.
    pub recovery: Recovery,
    /// Which rooms.
    pub selection: RoomSelection,
    /// The new export's passphrase and rounds.
    pub destination: Destination,
}

/// What a download wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct DownloadKeysReport {
    /// Sessions written.
    pub sessions: usize,
    /// Rooms they belong to.
    pub rooms: usize,
    /// The backup version read.
    pub version: String,
    /// How the backup's key was found.
    pub opened_via: Via,
    /// Backup entries left out (undecryptable, disagreeing with where the server stores
    /// them, or invalid).
    pub skipped: Vec<backup::Skipped>,
}

/// Downloads the account's backup (opened with the recovery key or phrase), decrypts
/// the sessions of the selected rooms and writes them into `sink` as a key export. The
/// export's key is derived while the download starts; rooms are decrypted in parallel and
/// streamed into the sealer as they arrive, so memory holds one room at a time. A selection
/// that lists rooms fetches only those rooms.
pub fn download<W: Write>(
    session: &Session,
    request: DownloadKeys,
    sink: W,
    events: &dyn Events,
) -> Result<(DownloadKeysReport, W)> {
    let client = session.client();
    let Opened { info, key, via } = stage(events, Stage::CheckBackup, None, || {
        backup::open(client, session.user_id(), &request.recovery)
    })?;
    let destination = request.destination;
    let sealing =
        std::thread::spawn(move || SealingKey::derive(&destination.passphrase, destination.rounds));
    let mut out = Sealed::Deriving(sealing, sink);
    let listed = request.selection.listed();
    let keep = |room: &str| request.selection.matches(room);
    let rooms = match &listed {
        Some(list) => backup::Rooms::Listed(list),
        None => backup::Rooms::Matching(&keep),
    };
    let total = info.count;
    let mut written = 0u64;
    let done = stage(events, Stage::Download, Some(total), || {
        backup::download_each(client, &info, &key, rooms, &mut |entries| {
            written += out.push_all(&entries)?;
            events.emit(Event::Progress {
                stage: Stage::Download,
                done: written,
                total,
            });
            Ok(())
        })
    })?;
    let sink = out.finish()?;
    let report = DownloadKeysReport {
        sessions: done.sessions,
        rooms: done.rooms,
        version: info.version,
        opened_via: via,
        skipped: done.skipped,
    };
    Ok((report, sink))
}

/// The export being written: its key still being derived, or its array open.
enum Sealed<W: Write> {
    Deriving(std::thread::JoinHandle<key_export::Result<SealingKey>>, W),
    Writing(Box<ArrayWriter<SealWriter<W>>>),
    Spent,
}

impl<W: Write> Sealed<W> {
    /// The array writer, waiting for the key the first time.
    fn writer(&mut self) -> online::Result<&mut ArrayWriter<SealWriter<W>>> {
        if let Sealed::Deriving(..) = self {
            let Sealed::Deriving(handle, sink) = std::mem::replace(self, Sealed::Spent) else {
                unreachable!("matched above")
            };
            let key = handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
            let writer = ArrayWriter::new(key.seal_to(sink)?).map_err(key_export::Error::from)?;
            *self = Sealed::Writing(Box::new(writer));
        }
        match self {
            Sealed::Writing(w) => Ok(w),
            _ => Err(online::Error::KeyExport(key_export::Error::Io(
                std::io::Error::other("the export was already closed"),
            ))),
        }
    }

    /// Writes `entries` into the export; how many.
    fn push_all(&mut self, entries: &[zeroize::Zeroizing<String>]) -> online::Result<u64> {
        let writer = self.writer()?;
        for e in entries {
            writer.push(e).map_err(key_export::Error::from)?;
        }
        Ok(entries.len() as u64)
    }

    /// Closes the array and the seal; returns the sink.
    fn finish(mut self) -> Result<W> {
        self.writer()?;
        let Sealed::Writing(w) = self else {
            unreachable!("writer() leaves it writing")
        };
        let sealer = (*w).finish().map_err(|e| PipelineError::Output(e.into()))?;
        Ok(sealer.finish().map_err(PipelineError::Output)?)
    }
}
