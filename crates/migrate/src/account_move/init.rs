//! `move init` as a job: the plan's folder made (mode 0700: it will hold token and key
//! files) and checked writable before any network work, the old account's rooms listed into
//! the rooms file (an edited rooms file is never written over), and the commented plan
//! written with the token files' paths made absolute (so the plan reads them from anywhere).

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use online::Session;

use crate::events::Events;
use crate::output::{folder_of, AtomicFile, OutputError};
use crate::plan_file::{template, TemplateAccount};
use crate::rooms::{list, rooms_file};

/// One account as the plan will name it.
#[derive(Debug, Clone)]
pub struct PlanAccount {
    /// Its user ID.
    pub user: String,
    /// Its homeserver URL, when given.
    pub homeserver: Option<String>,
    /// Its token file, when given (relative to where the command runs).
    pub token_file: Option<PathBuf>,
}

/// A new plan.
#[derive(Debug, Clone)]
pub struct InitRequest {
    /// The plan to write (`move.toml`); the rooms file goes beside it (`rooms.txt`).
    pub plan: PathBuf,
    /// Replace a plan that exists (the rooms file is never replaced).
    pub replace: bool,
    /// The old account.
    pub old: PlanAccount,
    /// The new account.
    pub new: PlanAccount,
}

/// What `move init` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitReport {
    /// The plan.
    pub plan: PathBuf,
    /// The rooms file.
    pub rooms_file: PathBuf,
    /// Rooms listed into it; `None` when it existed and was kept.
    pub rooms_listed: Option<usize>,
}

/// Why `move init` stopped.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The plan's folder cannot be made or written.
    #[error("cannot write the plan into {}: {source}; nothing was read or written", folder.display())]
    Folder {
        /// The folder.
        folder: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Listing the rooms failed.
    #[error(transparent)]
    Job(#[from] crate::Error),
    /// A file could not be written.
    #[error(transparent)]
    Output(#[from] OutputError),
}

/// Makes the plan's folder (0700) if needed and checks that a file can be made in it: run
/// it before any network work.
pub fn prepare(plan: &Path) -> Result<(), InitError> {
    let folder = folder_of(plan);
    let failed = |source| InitError::Folder {
        folder: folder.to_owned(),
        source,
    };
    if !folder.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(folder)
            .map_err(failed)?;
    }
    tempfile::Builder::new()
        .prefix(".matrix-transplant-")
        .tempfile_in(folder)
        .map_err(failed)?;
    Ok(())
}

/// The rooms file beside `plan`.
pub fn rooms_file_of(plan: &Path) -> PathBuf {
    plan.with_file_name("rooms.txt")
}

/// Lists the old account's rooms into the rooms file (unless `old` is `None`: the rooms
/// file exists and is kept), then writes the plan.
pub fn init(
    request: &InitRequest,
    old: Option<&Session>,
    events: &dyn Events,
) -> Result<InitReport, InitError> {
    let rooms_path = rooms_file_of(&request.plan);
    let rooms_listed = match old {
        Some(session) => {
            let listed = list::list(session, events)?;
            AtomicFile::new(&rooms_path, false).write(rooms_file::render(&listed).as_bytes())?;
            Some(listed.rooms.len())
        }
        None => None,
    };
    AtomicFile::new(&request.plan, request.replace).write(plan_text(request).as_bytes())?;
    Ok(InitReport {
        plan: request.plan.clone(),
        rooms_file: rooms_path,
        rooms_listed,
    })
}

/// The commented plan, token files named by absolute paths.
fn plan_text(request: &InitRequest) -> String {
    let absolute = |p: &Option<PathBuf>| {
        p.as_deref()
            .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.to_owned()))
    };
    let (old_token, new_token) = (
        absolute(&request.old.token_file),
        absolute(&request.new.token_file),
    );
    fn account<'a>(a: &'a PlanAccount, token: Option<&'a Path>) -> TemplateAccount<'a> {
        TemplateAccount {
            user: &a.user,
            homeserver: a.homeserver.as_deref(),
            token_file: token,
        }
    }
    template(
        &account(&request.old, old_token.as_deref()),
        &account(&request.new, new_token.as_deref()),
    )
}
