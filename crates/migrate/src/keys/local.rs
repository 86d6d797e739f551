//! The key jobs that need no account — inspect, decrypt, encrypt, filter and merge an
//! export — over `key_export::pipeline` (the hot path stays there, measured in place),
//! each telling its stages to a front end's [`Events`] like every other job.

use std::io::{Read, Write};

use key_export::inspect::Report as InspectReport;
use key_export::merge::MergeOptions;
use key_export::pipeline::{
    self, DecryptReport, Destination, EncryptReport, Finished, PipelineError, Reached, Source,
};
use key_export::ReadOptions;

use crate::events::{stage, Event, Events, Stage};

/// Reads an export and says what is in it.
pub fn inspect<R: Read>(
    source: Source<R>,
    read: &ReadOptions,
    events: &dyn Events,
) -> Result<InspectReport, PipelineError> {
    stage(events, Stage::ReadExports, None, || {
        pipeline::inspect(source, read)
    })
}

/// Decrypts an export into its JSON, written to `sink`.
pub fn decrypt<R: Read, W: Write>(
    source: Source<R>,
    read: &ReadOptions,
    sink: W,
    events: &dyn Events,
) -> Result<(DecryptReport, W), PipelineError> {
    stage(events, Stage::ReadExports, None, || {
        pipeline::decrypt(source, read, sink)
    })
}

/// Encrypts the JSON of an export (`name` names it in errors) into `sink`.
pub fn encrypt<W: Write>(
    name: &str,
    json: &[u8],
    destination: Destination,
    allow_invalid: bool,
    sink: W,
    events: &dyn Events,
) -> Result<(EncryptReport, W), PipelineError> {
    stage(events, Stage::WriteExport, None, || {
        pipeline::encrypt(name, json, destination, allow_invalid, sink)
    })
}

/// Reads every export, keeps the selected sessions (one best copy each) and writes them,
/// sealed, into `sink`: the inputs read (one stage), then the export written (another,
/// counted in sessions).
pub fn filter_merge<R: Read + Send, W: Write>(
    sources: Vec<Source<R>>,
    destination: Destination,
    sink: W,
    read: &ReadOptions,
    options: &MergeOptions,
    events: &dyn Events,
) -> Result<(Finished, W), PipelineError> {
    let inputs = sources.len() as u64;
    events.emit(Event::Started {
        stage: Stage::ReadExports,
        total: Some(inputs),
    });
    let observe = |reached: Reached| match reached {
        Reached::Decrypted { .. } => events.emit(Event::Progress {
            stage: Stage::ReadExports,
            done: inputs,
            total: inputs,
        }),
        Reached::Merged { sessions } => {
            events.emit(Event::Finished {
                stage: Stage::ReadExports,
            });
            events.emit(Event::Started {
                stage: Stage::WriteExport,
                total: Some(sessions as u64),
            });
        }
        Reached::Written => events.emit(Event::Finished {
            stage: Stage::WriteExport,
        }),
    };
    pipeline::filter_merge_observed(sources, destination, sink, read, options, &observe)
}
