//! The whole job of `keys filter` and `keys merge`, overlapped for speed: the output
//! key is derived on its own thread while the inputs are read, decoded and decrypted
//! (each input deriving its own key at the same time), then entries are read in
//! parallel, merged, and the result is encrypted in parallel.

use std::io::{Read, Write};

use rayon::prelude::*;

use crate::container::{self, Plaintext, ReadOptions, SealingKey};
use crate::entries;
use crate::error::Error;
use crate::merge::{self, Conflict, MergeError, MergeOptions, SourcedInvalid, Summary};
use crate::passphrase::Passphrase;
use crate::session::SessionRef;

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

/// How to write the result.
pub struct Destination {
    /// Passphrase of the new export.
    pub passphrase: Passphrase,
    /// PBKDF2 rounds of the new export.
    pub rounds: u32,
}

/// A finished job.
#[derive(Debug)]
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

/// Reads every source, keeps the selected sessions (best copy of each) and streams them,
/// sealed, into `sink` as a new armoured export. Returns the sink and the report.
pub fn filter_merge<R: Read + Send, W: Write>(
    sources: Vec<Source<R>>,
    destination: Destination,
    sink: W,
    read: &ReadOptions,
    options: &MergeOptions,
) -> Result<(Finished, W), PipelineError> {
    // Detached, so that a bad input is reported at once instead of after the KDF.
    let out_key =
        std::thread::spawn(move || SealingKey::derive(&destination.passphrase, destination.rounds));
    let names: Vec<String> = sources.iter().map(|s| s.name.clone()).collect();
    let plains: Vec<Plaintext> = sources
        .into_par_iter()
        .enumerate()
        .map(|(input, s)| {
            container::decrypt(s.reader, s.len, &s.passphrase, read).map_err(|error| {
                PipelineError::Input {
                    input,
                    name: s.name,
                    error,
                }
            })
        })
        .collect::<Result<_, _>>()?;
    // Entries of rooms that do not move are only counted: their room_id is all we read.
    let mut left_out = Vec::with_capacity(plains.len());
    let parsed: Vec<Vec<SessionRef<'_>>> = plains
        .iter()
        .enumerate()
        .map(|(input, p)| {
            let raw = entries::split(p.as_bytes()).map_err(|error| PipelineError::Input {
                input,
                name: names[input].clone(),
                error,
            })?;
            let (kept, dropped) =
                entries::parse_where(&raw, |room| options.selection.matches(room));
            left_out.push(dropped);
            Ok(kept)
        })
        .collect::<Result<_, PipelineError>>()?;
    let mut merged = merge::merge(&parsed, options)?;
    for (read, dropped) in merged.summary.read.iter_mut().zip(&left_out) {
        *read += dropped;
    }
    merged.summary.dropped_by_selection += left_out.iter().sum::<usize>();
    let key = out_key
        .join()
        .expect("key derivation does not panic")
        .map_err(PipelineError::Output)?;
    let mut writer = key.seal_to(sink).map_err(PipelineError::Output)?;
    entries::write_array_to(merge::output_entries(&merged), &mut writer)
        .map_err(|e| PipelineError::Output(e.into()))?;
    let sink = writer.finish().map_err(PipelineError::Output)?;
    let done = Finished {
        summary: merged.summary,
        conflicts: merged.conflicts,
        dropped_invalid: merged.invalid,
    };
    Ok((done, sink))
}
