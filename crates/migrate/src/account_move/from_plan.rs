//! A plan file turned into the move's request: the files a plan's runs keep beside it
//! ([`PlanFiles`]), and its key sources opened through a front end's [`Open`] (a terminal
//! reads files, the environment and prompts; a web page takes uploads).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use key_export::pipeline::Source;
use key_export::ReadOptions;
use online::backup::Recovery;

use super::{CopyWhat, KeySources, Request};
use crate::plan_file::MovePlan;
use crate::rooms::moving::MoveOptions;

/// The files a plan's runs keep beside it, all mode 0600.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanFiles {
    /// One fsynced line per step: a rerun resumes from it.
    pub journal: PathBuf,
    /// The report for people.
    pub markdown: PathBuf,
    /// The report for scripts.
    pub json: PathBuf,
}

impl PlanFiles {
    /// The files beside `plan` (`move.toml` → `move.journal.jsonl`, `move.report.md`,
    /// `move.report.json`).
    pub fn of(plan: &Path) -> Self {
        let stem = plan
            .file_stem()
            .map_or_else(|| "move".into(), |s| s.to_string_lossy().into_owned());
        let at = |suffix: &str| plan.with_file_name(format!("{stem}.{suffix}"));
        PlanFiles {
            journal: at("journal.jsonl"),
            markdown: at("report.md"),
            json: at("report.json"),
        }
    }
}

/// What a front end opens for a plan.
pub trait Open {
    /// What an export is read from.
    type Reader: Read + Send;
    /// Why something could not be opened (the front end's own error, with its advice).
    type Error;
    /// A key export and its passphrase.
    fn export(
        &self,
        file: &Path,
        passphrase_file: &Path,
    ) -> Result<Source<Self::Reader>, Self::Error>;
    /// What opens `whose` backup: the recovery key in `file`, or (`phrase`) a security phrase.
    fn recovery(&self, file: &Path, phrase: bool, whose: &str) -> Result<Recovery, Self::Error>;
    /// What asks the person a yes-or-no question during the move (answering no when it
    /// cannot ask).
    fn confirmer(&self) -> Box<dyn Fn(&str) -> bool + Send + Sync>;
}

/// The move `plan` describes, over the moving `rooms` (the rooms file, read).
pub fn request<O: Open>(
    plan: &MovePlan,
    rooms: Vec<String>,
    dry_run: bool,
    files: &PlanFiles,
    cancel: Arc<AtomicBool>,
    open: &O,
) -> Result<Request<O::Reader>, O::Error> {
    let exports = plan
        .keys
        .exports
        .iter()
        .map(|e| open.export(&e.file, &e.passphrase_file))
        .collect::<Result<Vec<_>, _>>()?;
    let recovery = |given: Option<(&Path, bool)>, whose: &str| {
        given
            .map(|(file, phrase)| open.recovery(file, phrase, whose))
            .transpose()
    };
    let keys = KeySources {
        exports,
        read: ReadOptions::default(),
        old_recovery: recovery(plan.keys.old_recovery(), &plan.old.user)?,
        new_recovery: recovery(plan.keys.new_recovery(), &plan.new.user)?,
    };
    let ask = open.confirmer();
    Ok(request_with(plan, rooms, dry_run, files, cancel, keys, ask))
}

/// The move `plan` describes, with key sources a front end opened itself (a web page keeps
/// uploaded exports and typed recovery keys in memory: the plan names no key file) and
/// its way of asking yes or no.
pub fn request_with<R>(
    plan: &MovePlan,
    rooms: Vec<String>,
    dry_run: bool,
    files: &PlanFiles,
    cancel: Arc<AtomicBool>,
    keys: KeySources<R>,
    confirm: Box<dyn Fn(&str) -> bool + Send + Sync>,
) -> Request<R> {
    Request {
        rooms,
        keys,
        copy: CopyWhat {
            ignored: plan.copy.ignored_users,
            push_rules: plan.copy.push_rules,
            profile: plan.copy.profile,
            time_zone: plan.copy.time_zone,
            profile_fields: plan.copy.profile_fields,
            recent_emoji: plan.copy.recent_emoji,
            image_packs: plan.copy.image_packs,
        },
        options: options(plan, files, cancel),
        dry_run,
        allow_invites: plan.allow_invites,
        confirm,
    }
}

/// The rooms engine's options the plan gives: its journal, the leaves, the rename.
fn options(plan: &MovePlan, files: &PlanFiles, cancel: Arc<AtomicBool>) -> MoveOptions {
    let mut options = MoveOptions::new(files.journal.clone());
    options.leave = plan.leave;
    options.rename_old = plan.rename_old.clone();
    options.cancel = cancel;
    options
}
