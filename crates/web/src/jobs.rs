//! The one piece of work the page runs at a time (a login, the rooms read, the dry run, the
//! move), on its own thread, and what it tells while it runs: the jobs' [`Event`]s kept as
//! a [`Progress`] that the page shows and streams (server-sent events).

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use migrate::{Event, Events, Stage};

/// What runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A login of the old (`true`) or the new account.
    Login(bool),
    /// Reading the old account's rooms.
    Rooms,
    /// The dry run.
    DryRun,
    /// The move.
    Move,
}

impl Kind {
    /// What the page calls it.
    pub fn title(self) -> &'static str {
        match self {
            Kind::Login(true) => "Logging in to the old account",
            Kind::Login(false) => "Logging in to the new account",
            Kind::Rooms => "Reading your rooms",
            Kind::DryRun => "Planning the move (nothing is changed)",
            Kind::Move => "Moving",
        }
    }

    /// Where the page goes when it ends.
    pub fn next(self) -> &'static str {
        match self {
            Kind::Login(true) => "/old",
            Kind::Login(false) => "/new",
            Kind::Rooms => "/rooms",
            Kind::DryRun => "/plan",
            Kind::Move => "/report",
        }
    }

    /// Where the page goes when it fails (the screen that can start it again).
    pub fn back(self) -> &'static str {
        match self {
            Kind::Login(true) => "/old",
            Kind::Login(false) | Kind::Rooms => "/new",
            Kind::DryRun => "/keys",
            Kind::Move => "/plan",
        }
    }
}

/// One stage's progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageProgress {
    /// The stage.
    pub stage: Stage,
    /// Done so far.
    pub done: u64,
    /// In all, when known.
    pub total: Option<u64>,
    /// Ended.
    pub finished: bool,
}

/// What the running (or last) job has told.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Which job; `None` before the first.
    pub kind: Option<Kind>,
    /// Running.
    pub running: bool,
    /// Each stage begun, in order.
    pub stages: Vec<StageProgress>,
    /// The last items done (room, stage, outcome), newest last, at most [`ITEMS`].
    pub items: Vec<(Stage, String, String)>,
    /// The wait in force: why, and until when (ms since 1970).
    pub waiting: Option<(Stage, String, u64)>,
    /// A browser login's address to open, while it waits.
    pub login_address: Option<String>,
    /// A device login's code and where to enter it.
    pub login_code: Option<(String, String)>,
    /// Things to know ("using homeserver … found through …").
    pub notices: Vec<String>,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// Bumped at every change, for the listeners.
    pub version: u64,
}

/// The most item lines kept.
pub const ITEMS: usize = 200;

impl Progress {
    fn apply(&mut self, event: Event) {
        match event {
            Event::Started { stage, total } => {
                self.stages.retain(|s| s.stage != stage);
                self.stages.push(StageProgress {
                    stage,
                    done: 0,
                    total,
                    finished: false,
                });
            }
            Event::Progress { stage, done, total } => {
                if let Some(s) = self.stage(stage) {
                    (s.done, s.total) = (done, Some(total));
                }
                self.waiting = None;
            }
            Event::Finished { stage } => {
                if let Some(s) = self.stage(stage) {
                    s.finished = true;
                }
                self.waiting = None;
            }
            Event::Waiting {
                stage,
                until_ms,
                cause,
                ..
            } => self.waiting = Some((stage, cause, until_ms)),
            Event::Item {
                stage,
                item,
                outcome,
            } => {
                self.items.push((stage, item, outcome));
                if self.items.len() > ITEMS {
                    self.items.remove(0);
                }
                self.waiting = None;
            }
        }
    }

    fn stage(&mut self, stage: Stage) -> Option<&mut StageProgress> {
        self.stages.iter_mut().rev().find(|s| s.stage == stage)
    }
}

/// The job's progress, shared between its thread, the pages and the event streams.
#[derive(Default)]
pub struct Jobs {
    progress: Mutex<Progress>,
    changed: Condvar,
}

/// Why a job could not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

impl Jobs {
    /// The progress now.
    pub fn now(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().expect("progress lock")
    }

    /// Whether a job runs.
    pub fn running(&self) -> bool {
        self.now().running
    }

    /// Marks `kind` as running, unless a job runs.
    pub fn begin(&self, kind: Kind) -> Result<(), Busy> {
        let mut p = self.now();
        if p.running {
            return Err(Busy);
        }
        *p = Progress {
            kind: Some(kind),
            running: true,
            version: p.version + 1,
            ..Progress::default()
        };
        drop(p);
        self.changed.notify_all();
        Ok(())
    }

    /// Changes the progress and tells the listeners.
    pub fn update(&self, change: impl FnOnce(&mut Progress)) {
        let mut p = self.now();
        change(&mut p);
        p.version += 1;
        drop(p);
        self.changed.notify_all();
    }

    /// The job ended, with `error` when it failed.
    pub fn end(&self, error: Option<String>) {
        self.update(|p| {
            p.running = false;
            p.login_address = None;
            p.login_code = None;
            p.error = error;
        });
    }

    /// Waits (at most `timeout`) for a change after `version`; the progress then.
    pub fn wait_change(&self, version: u64, timeout: Duration) -> Progress {
        let p = self.now();
        let (p, _) = self
            .changed
            .wait_timeout_while(p, timeout, |p| p.version == version)
            .expect("progress lock");
        p.clone()
    }
}

impl Events for Jobs {
    fn emit(&self, event: Event) {
        self.update(|p| p.apply(event));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_become_progress_and_one_job_runs_at_a_time() {
        let jobs = Jobs::default();
        jobs.begin(Kind::Move).unwrap();
        assert_eq!(jobs.begin(Kind::DryRun), Err(Busy));
        jobs.emit(Event::Started {
            stage: Stage::Invite,
            total: Some(3),
        });
        jobs.emit(Event::Waiting {
            stage: Stage::Invite,
            ms: 1000,
            until_ms: 5,
            limit: migrate::Limit::Invites,
            cause: "the invite limit".into(),
        });
        assert!(jobs.now().waiting.is_some());
        jobs.emit(Event::Progress {
            stage: Stage::Invite,
            done: 2,
            total: 3,
        });
        let p = jobs.now().clone();
        assert_eq!((p.stages[0].done, p.stages[0].total), (2, Some(3)));
        assert!(p.waiting.is_none());
        let version = p.version;
        jobs.end(Some("stopped".into()));
        let after = jobs.wait_change(version, Duration::from_millis(10));
        assert!(!after.running && after.error.as_deref() == Some("stopped"));
        jobs.begin(Kind::DryRun).unwrap();
    }
}
