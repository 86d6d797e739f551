//! What every step of a move shares ([`Ctx`]: the accounts, the options, the journal, the
//! events), and the waits: each stage's own client (its 429 waits told as that stage's),
//! and the retry of a step that a 5xx across servers may have refused (the other server's
//! rate limit sends no time), counted in the run's wait budget.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use online::client::{Wait, WaitCause};
use online::rooms;
use online::Client;

use super::MoveOptions;
use crate::events::{Event, Events, Limit, Stage};
use crate::journal::{Entry, Journal, JournalError};

/// What every stage of a move shares.
pub(crate) struct Ctx<'a> {
    pub(crate) old_user: &'a str,
    pub(crate) new_user: &'a str,
    pub(crate) options: &'a MoveOptions,
    pub(crate) journal: &'a Mutex<Journal>,
    pub(crate) events: &'a dyn Events,
}

impl Ctx<'_> {
    /// Records a step, durably, before the next one.
    pub(crate) fn record(&self, entry: Entry) -> Result<(), JournalError> {
        self.journal.lock().expect("journal lock").record(entry)
    }

    /// True once the run was asked to stop.
    pub(crate) fn stopped(&self) -> bool {
        self.options.cancel.load(Ordering::Relaxed)
    }

    /// Tells what happened to one room in one stage.
    pub(crate) fn item(&self, stage: Stage, room: &str, outcome: impl Into<String>) {
        self.events.emit(Event::Item {
            stage,
            item: room.to_owned(),
            outcome: outcome.into(),
        });
    }

    /// Runs `attempt` until it succeeds, retrying a possible remote rate limit (5xx) with
    /// doubling waits; the waits count against `client`'s budget (the run's `--max-wait`).
    pub(crate) fn with_remote_retry<T>(
        &self,
        client: &Client,
        stage: Stage,
        what: &str,
        mut attempt: impl FnMut() -> online::Result<T>,
    ) -> online::Result<T> {
        let mut wait = self.options.remote_backoff;
        for tries in 1.. {
            match attempt() {
                Err(e) if rooms::is_maybe_remote_limit(&e) && tries < self.options.remote_tries => {
                    let cause = format!(
                        "{what} answered {e}: maybe the other server's rate limit (it sends no time \
                         over federation); trying again"
                    );
                    self.tell_wait(stage, wait, &cause);
                    client.wait_counted(&cause, wait, e)?;
                    wait = (wait * 2).min(Duration::from_secs(600));
                }
                other => return other,
            }
        }
        unreachable!("the loop returns")
    }

    fn tell_wait(&self, stage: Stage, wait: Duration, cause: &str) {
        self.events.emit(Event::Waiting {
            stage,
            ms: wait.as_millis() as u64,
            until_ms: now_ms() + wait.as_millis() as u64,
            limit: Limit::Remote,
            cause: cause.into(),
        });
    }
}

/// Milliseconds since 1970, for the waits' clock times.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A client for one stage: its own waits, told as that stage's, stopped by the cancel flag.
pub(crate) fn stage_client(
    base: &Client,
    stage: Stage,
    cancel: &Arc<AtomicBool>,
    waits: &mpsc::Sender<(Stage, Wait)>,
) -> Client {
    let mut c = base.fork();
    c.cancel_on(cancel.clone());
    let tx = Mutex::new(waits.clone());
    c.on_rate_limit(Box::new(move |w: &Wait| {
        let _ = tx.lock().map(|tx| tx.send((stage, w.clone())));
    }));
    c
}

/// The event that tells a wait of `stage`.
pub(crate) fn wait_event(stage: Stage, w: &Wait) -> Event {
    Event::Waiting {
        stage,
        ms: w.duration.as_millis() as u64,
        until_ms: now_ms() + w.duration.as_millis() as u64,
        limit: wait_limit(stage, w),
        cause: wait_cause(stage, w),
    }
}

fn wait_limit(stage: Stage, w: &Wait) -> Limit {
    match (&w.cause, stage) {
        (WaitCause::ServerError(_), _) => Limit::Retry,
        (_, Stage::Invite) => Limit::Invites,
        (_, Stage::Join) => Limit::Joins,
        (_, Stage::Power | Stage::Leave) => Limit::Messages,
        _ => Limit::Server,
    }
}

fn wait_cause(stage: Stage, w: &Wait) -> String {
    let limit = match stage {
        Stage::Invite => "the invite limit (rc_invites: per invitee, per room, per inviter)",
        Stage::Join => "the new account's join limit (rc_joins)",
        Stage::Power | Stage::Leave => "the old account's event limit (rc_message)",
        _ => "the server's rate limit",
    };
    match &w.cause {
        WaitCause::RateLimited { asked: Some(asked) } => format!(
            "{limit}: the server asked for {} s, waiting {} s at most before asking again",
            asked.as_secs(),
            w.duration.as_secs()
        ),
        WaitCause::RateLimited { asked: None } => limit.to_owned(),
        WaitCause::ServerError(Some(status)) => format!("a retry after HTTP {status}"),
        WaitCause::ServerError(None) => "a retry after a broken connection".into(),
    }
}
