//! The whole jobs of the `keys` commands, each one call: [`decrypt`], [`inspect`],
//! [`encrypt`] and [`filter_merge`]; and the steps other jobs share ([`decrypt_all`],
//! [`Decrypted::parse`], [`Parsed::merge`], [`write_export`]).
//!
//! A job takes its inputs already opened ([`Source`]: a reader and its passphrase), writes
//! into a sink the caller chose, and returns a report. It never prints, prompts or exits.
//!
//! `filter_merge` is overlapped for speed: the output key is derived on its own thread
//! while the inputs are read, decoded and decrypted (each input deriving its own key at the
//! same time), then entries are read in parallel, merged, and streamed through encryption
//! into the sink.

use std::io::{Read, Write};

use rayon::prelude::*;
use serde::Serialize;

use crate::container::{self, Plaintext, ReadOptions, Rounds, SealingKey};
use crate::entries;
use crate::error::Error;
use crate::inspect::{self, InvalidEntry};
use crate::merge::{self, Conflict, MergeError, MergeOptions, Merged, SourcedInvalid, Summary};
use crate::passphrase::Passphrase;
use crate::session::SessionRef;
use zeroize::Zeroizing;

/// One input export.
pub struct Source<R> {
    /// Its name, for messages.
    pub name: String,
    /// Its armoured text.
    pub reader: R,
    /// Its size in bytes, when known (0 otherwise).
    pub len: usize,
    /// Its passphrase.
    pub passphrase: Passphrase,
}

/// How to write a new export.
pub struct Destination {
    /// Passphrase of the new export.
    pub passphrase: Passphrase,
    /// PBKDF2 rounds of the new export.
    pub rounds: Rounds,
}

/// A finished filter or merge.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Finished {
    /// Counts.
    pub summary: Summary,
    /// Conflicts found (the first copy was kept).
    pub conflicts: Vec<Conflict>,
    /// Invalid entries left out (only with `drop_invalid`).
    pub dropped_invalid: Vec<SourcedInvalid>,
}

/// Why a job failed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// An input could not be read, authenticated or parsed.
    #[error("{name}: {error}")]
    Input {
        /// 0-based input number.
        input: usize,
        /// Its name.
        name: String,
        /// What went wrong.
        error: Error,
    },
    /// The merge refused (invalid entries or, with `strict`, conflicts).
    #[error(transparent)]
    Merge(#[from] MergeError),
    /// The output could not be made.
    #[error(transparent)]
    Output(Error),
}

impl PipelineError {
    fn input(input: usize, name: &str, error: Error) -> Self {
        PipelineError::Input {
            input,
            name: name.to_owned(),
            error,
        }
    }

    /// The input's name, for an error of one input.
    pub fn input_name(&self) -> Option<&str> {
        match self {
            PipelineError::Input { name, .. } => Some(name),
            _ => None,
        }
    }
}

/// Decrypted inputs, in order, with their names.
pub struct Decrypted {
    names: Vec<String>,
    plains: Vec<Plain>,
}

/// One decrypted input: an export's plaintext, or entries that came decrypted from
/// elsewhere (a server-side key backup).
enum Plain {
    Export(Plaintext),
    Entries(Zeroizing<Vec<u8>>),
}

impl Plain {
    fn as_bytes(&self) -> &[u8] {
        match self {
            Plain::Export(p) => p.as_bytes(),
            Plain::Entries(json) => json,
        }
    }
}

/// Reads, authenticates and decrypts every source, in parallel (each derives its own key).
pub fn decrypt_all<R: Read + Send>(
    sources: Vec<Source<R>>,
    read: &ReadOptions,
) -> Result<Decrypted, PipelineError> {
    let names: Vec<String> = sources.iter().map(|s| s.name.clone()).collect();
    let plains = sources
        .into_par_iter()
        .enumerate()
        .map(|(input, s)| decrypt_one(input, s, read))
        .collect::<Result<_, _>>()?;
    Ok(Decrypted { names, plains })
}

/// Like [`decrypt_all`], but every source is tried: the ones that decrypt, and the error
/// of each one that does not (a dry run lists them all).
pub fn decrypt_each<R: Read + Send>(
    sources: Vec<Source<R>>,
    read: &ReadOptions,
) -> (Decrypted, Vec<PipelineError>) {
    let results: Vec<(String, Result<Plain, PipelineError>)> = sources
        .into_par_iter()
        .enumerate()
        .map(|(input, s)| (s.name.clone(), decrypt_one(input, s, read)))
        .collect();
    let mut decrypted = Decrypted {
        names: Vec::new(),
        plains: Vec::new(),
    };
    let mut failed = Vec::new();
    for (name, result) in results {
        match result {
            Ok(plain) => {
                decrypted.names.push(name);
                decrypted.plains.push(plain);
            }
            Err(e) => failed.push(e),
        }
    }
    (decrypted, failed)
}

fn decrypt_one<R: Read>(
    input: usize,
    s: Source<R>,
    read: &ReadOptions,
) -> Result<Plain, PipelineError> {
    container::decrypt(s.reader, s.len, &s.passphrase, read)
        .map(Plain::Export)
        .map_err(|error| PipelineError::input(input, &s.name, error))
}

/// The entries of decrypted inputs, read only as far as the selection needs.
pub struct Parsed<'a> {
    inputs: Vec<Vec<SessionRef<'a>>>,
    left_out: Vec<usize>,
}

impl Decrypted {
    /// The names of the inputs, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Adds one more input made of export entries (JSON objects) that are already
    /// plaintext, e.g. the sessions of a server-side key backup; they are checked and
    /// merged like any export's. The array is written into a buffer sized up front and
    /// wiped on drop, so no copy of a key is left behind by a growing buffer.
    pub fn add_entries<T: AsRef<str>>(&mut self, name: impl Into<String>, entries: &[T]) {
        let len = 2 + entries.iter().map(|e| e.as_ref().len() + 1).sum::<usize>();
        let mut json = Zeroizing::new(Vec::with_capacity(len));
        json.push(b'[');
        for (i, e) in entries.iter().enumerate() {
            if i > 0 {
                json.push(b',');
            }
            json.extend_from_slice(e.as_ref().as_bytes());
        }
        json.push(b']');
        self.names.push(name.into());
        self.plains.push(Plain::Entries(json));
    }

    /// Splits every input into entries and reads those of the selected rooms. Entries of
    /// rooms that do not move are only counted: their room_id is all that is read.
    pub fn parse(&self, options: &MergeOptions) -> Result<Parsed<'_>, PipelineError> {
        let mut left_out = Vec::with_capacity(self.plains.len());
        let inputs = self
            .plains
            .iter()
            .enumerate()
            .map(|(input, p)| {
                let raw = entries::split(p.as_bytes())
                    .map_err(|error| PipelineError::input(input, &self.names[input], error))?;
                let (kept, dropped) = match options.selection.takes_all() {
                    true => (entries::parse_all(&raw), 0),
                    false => entries::parse_where(&raw, |room| options.selection.matches(room)),
                };
                left_out.push(dropped);
                Ok(kept)
            })
            .collect::<Result<_, PipelineError>>()?;
        Ok(Parsed { inputs, left_out })
    }
}

impl<'a> Parsed<'a> {
    /// One best copy of each selected session (see [`merge::merge`]); the summary counts
    /// the entries the selection left unread too.
    pub fn merge(&self, options: &MergeOptions) -> Result<Merged<'_, 'a>, MergeError> {
        let mut merged = merge::merge(&self.inputs, options)?;
        for (read, dropped) in merged.summary.read.iter_mut().zip(&self.left_out) {
            *read += dropped;
        }
        merged.summary.dropped_by_selection += self.left_out.iter().sum::<usize>();
        Ok(merged)
    }
}

/// Streams `entries` (JSON objects) as one sealed, armoured export into `sink`.
pub fn write_export<W: Write, T: AsRef<str>>(
    key: SealingKey,
    entries: impl IntoIterator<Item = T>,
    sink: W,
) -> Result<W, Error> {
    let mut writer = key.seal_to(sink)?;
    entries::write_array_to(entries, &mut writer)?;
    writer.finish()
}

/// Reads every source, keeps the selected sessions (best copy of each) and streams them,
/// sealed, into `sink` as a new armoured export. Returns the report and the sink.
pub fn filter_merge<R: Read + Send, W: Write>(
    sources: Vec<Source<R>>,
    destination: Destination,
    sink: W,
    read: &ReadOptions,
    options: &MergeOptions,
) -> Result<(Finished, W), PipelineError> {
    filter_merge_observed(sources, destination, sink, read, options, &|_| {})
}

/// How far a [`filter_merge`] has got, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reached {
    /// Every input was read, authenticated and decrypted.
    Decrypted {
        /// Inputs.
        inputs: usize,
    },
    /// The selected sessions were merged; writing starts.
    Merged {
        /// Sessions to write.
        sessions: usize,
    },
    /// The new export was written.
    Written,
}

/// [`filter_merge`], telling `observe` each point it reaches.
pub fn filter_merge_observed<R: Read + Send, W: Write>(
    sources: Vec<Source<R>>,
    destination: Destination,
    sink: W,
    read: &ReadOptions,
    options: &MergeOptions,
    observe: &dyn Fn(Reached),
) -> Result<(Finished, W), PipelineError> {
    let inputs = sources.len();
    // Detached, so that a bad input is reported at once instead of after the KDF.
    let out_key =
        std::thread::spawn(move || SealingKey::derive(&destination.passphrase, destination.rounds));
    let decrypted = decrypt_all(sources, read)?;
    observe(Reached::Decrypted { inputs });
    let parsed = decrypted.parse(options)?;
    let merged = parsed.merge(options)?;
    observe(Reached::Merged {
        sessions: merged.sessions.len(),
    });
    let key = out_key
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        .map_err(PipelineError::Output)?;
    let sink =
        write_export(key, merge::output_entries(&merged), sink).map_err(PipelineError::Output)?;
    observe(Reached::Written);
    let done = Finished {
        summary: merged.summary,
        conflicts: merged.conflicts,
        dropped_invalid: merged.invalid,
    };
    Ok((done, sink))
}

/// What [`decrypt`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct DecryptReport {
    /// Entries in the export.
    pub sessions: usize,
}

/// Decrypts one export and writes its JSON, byte for byte as it was encrypted, into
/// `sink`. Nothing is written unless the export authenticates and its JSON is an array.
pub fn decrypt<R: Read, W: Write>(
    source: Source<R>,
    read: &ReadOptions,
    mut sink: W,
) -> Result<(DecryptReport, W), PipelineError> {
    let plain = container::decrypt(source.reader, source.len, &source.passphrase, read)
        .map_err(|error| PipelineError::input(0, &source.name, error))?;
    let sessions = entries::split(plain.as_bytes())
        .map_err(|error| PipelineError::input(0, &source.name, error))?
        .len();
    sink.write_all(plain.as_bytes())
        .map_err(|e| PipelineError::Output(e.into()))?;
    Ok((DecryptReport { sessions }, sink))
}

/// What an export holds (see [`inspect::inspect`]), without writing anything.
pub fn inspect<R: Read>(
    source: Source<R>,
    read: &ReadOptions,
) -> Result<inspect::Report, PipelineError> {
    let plain = container::decrypt(source.reader, source.len, &source.passphrase, read)
        .map_err(|error| PipelineError::input(0, &source.name, error))?;
    inspect::inspect(&plain).map_err(|error| PipelineError::input(0, &source.name, error))
}

/// What [`encrypt`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct EncryptReport {
    /// Entries written.
    pub sessions: usize,
    /// Entries that fail validation, written anyway (`allow_invalid`).
    pub invalid_written: Vec<InvalidEntry>,
    /// PBKDF2 rounds of the new export.
    pub rounds: u32,
}

/// Encrypts a JSON array of sessions (named `name` in messages) into an export Element can
/// import, written into `sink`. Every entry gets the fields importers need (a forwarding
/// chain); unknown fields pass through. Entries that fail validation stop the job
/// ([`MergeError::Invalid`]) unless `allow_invalid`.
pub fn encrypt<W: Write>(
    name: &str,
    json: &[u8],
    destination: Destination,
    allow_invalid: bool,
    sink: W,
) -> Result<(EncryptReport, W), PipelineError> {
    let raw = entries::split(json).map_err(|error| PipelineError::input(0, name, error))?;
    let sessions = entries::parse_all(&raw);
    let invalid: Vec<InvalidEntry> = sessions
        .iter()
        .enumerate()
        .filter_map(|(i, s)| InvalidEntry::of(i, s))
        .collect();
    if !invalid.is_empty() && !allow_invalid {
        let sourced = invalid
            .into_iter()
            .map(|entry| SourcedInvalid { input: 0, entry })
            .collect();
        return Err(MergeError::Invalid(sourced).into());
    }
    let rounds = destination.rounds.get();
    let key = SealingKey::derive(&destination.passphrase, destination.rounds)
        .map_err(PipelineError::Output)?;
    let sink = write_export(key, sessions.iter().map(SessionRef::output_json), sink)
        .map_err(PipelineError::Output)?;
    let report = EncryptReport {
        sessions: sessions.len(),
        invalid_written: invalid,
        rounds,
    };
    Ok((report, sink))
}
