//! How far a server may make a request wait: the bounds ([`RateLimits`]), each wait as the
//! user is told it ([`Wait`]), and the loop that sends a request until its answer is final,
//! waiting out HTTP 429 as the server asks and retrying an idempotent request after a 5xx,
//! all within one budget per client.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use url::Url;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::wire::{self, Attempt, Body, Method};

/// How far the client trusts a server to make it wait and retry. Every number is a bound:
/// a hostile or broken server cannot keep a run waiting forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Retries of one request after HTTP 429 before giving up.
    pub max_retries: usize,
    /// The wait when the server names none (no `retry_after_ms`, no `Retry-After`).
    pub default_wait: Duration,
    /// The longest single wait; a server asking for more is waited this long, and told so.
    pub max_single_wait: Duration,
    /// All waits of this client together; past it, requests stop with [`Error::WaitBudget`].
    pub budget: Duration,
    /// Retries of an idempotent request (GET, PUT, DELETE) after a 5xx answer or a broken
    /// connection.
    pub server_error_retries: usize,
    /// The first wait before such a retry; each next one is twice as long.
    pub backoff: Duration,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            max_retries: 50,
            default_wait: Duration::from_secs(5),
            max_single_wait: Duration::from_secs(120),
            budget: Duration::from_secs(30 * 60),
            server_error_retries: 4,
            backoff: Duration::from_secs(1),
        }
    }
}

/// Why a request waits before it is sent again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitCause {
    /// HTTP 429; `asked` is what the server asked for, when it was more than the clamp.
    RateLimited {
        /// The wait the server asked for, when longer than the one taken.
        asked: Option<Duration>,
    },
    /// A 5xx answer (its status) or a broken connection (`None`).
    ServerError(Option<u16>),
}

/// One wait, as shown to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wait {
    /// How long.
    pub duration: Duration,
    /// Why.
    pub cause: WaitCause,
}

/// Called with each wait before a request is sent again, to show it to the user.
pub type WaitNotice = Box<dyn Fn(&Wait) + Send + Sync>;

/// Sleeps `duration`, in short slices when there is a `stop` flag so that setting it is
/// seen at once; false when it was set before the end.
pub fn sleep_unless(stop: Option<&AtomicBool>, duration: Duration) -> bool {
    let Some(flag) = stop else {
        std::thread::sleep(duration);
        return true;
    };
    let end = Instant::now() + duration;
    loop {
        if flag.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        if now >= end {
            return true;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(100)));
    }
}

impl Client {
    /// Sends until an answer is final: a 2xx answer (its body unread), or an error. Each
    /// attempt, its answer read in full included, must end within `deadline`.
    pub(crate) fn respond(
        &self,
        what: &str,
        method: Method,
        url: Url,
        body: &Body<'_>,
        auth: bool,
        deadline: Option<Duration>,
    ) -> Result<ureq::Response> {
        let limits = self.rate_limits;
        let idempotent = method.idempotent();
        let (mut limited, mut failed, mut renewed) = (0, 0, false);
        loop {
            let token = if auth {
                Some(self.auth.current(&self.agent)?)
            } else {
                None
            };
            let bearer = token.as_ref().map(|(t, _)| t.bearer());
            let bearer = bearer.as_ref().map(|b| b.as_str());
            let wait = match wire::send(&self.agent, what, method, &url, body, bearer, deadline) {
                Attempt::Done(resp) => return Ok(resp),
                Attempt::Unauthorized(error) => match token {
                    Some((_, generation)) if !renewed => {
                        if !self.auth.renew_after_rejection(&self.agent, generation)? {
                            return Err(Error::TokenRejected {
                                what: what.into(),
                                cause: Box::new(error),
                            });
                        }
                        renewed = true;
                        continue;
                    }
                    _ => return Err(error),
                },
                Attempt::RateLimited { asked, error } if limited < limits.max_retries => {
                    limited += 1;
                    let duration = asked.unwrap_or(limits.default_wait);
                    let clamped = duration.min(limits.max_single_wait);
                    let cause = WaitCause::RateLimited {
                        asked: (clamped < duration).then_some(duration),
                    };
                    self.budget_check(what, clamped, error)?;
                    Wait {
                        duration: clamped,
                        cause,
                    }
                }
                Attempt::Retryable { status, error }
                    if idempotent && failed < limits.server_error_retries =>
                {
                    let duration = limits.backoff * 2u32.saturating_pow(failed as u32);
                    failed += 1;
                    self.budget_check(what, duration, error)?;
                    Wait {
                        duration,
                        cause: WaitCause::ServerError(status),
                    }
                }
                Attempt::RateLimited { error, .. }
                | Attempt::Retryable { error, .. }
                | Attempt::Failed(error) => return Err(error),
            };
            self.waits.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                "waiting {:.1} s before sending again ({})",
                wait.duration.as_secs_f64(),
                match &wait.cause {
                    WaitCause::RateLimited { .. } => "rate limited".to_owned(),
                    WaitCause::ServerError(Some(s)) => format!("HTTP {s}"),
                    WaitCause::ServerError(None) => "connection broken".to_owned(),
                }
            );
            if let Some(notice) = &self.on_wait {
                notice(&wait);
            }
            self.sleep(what, wait.duration)?;
        }
    }

    /// Sleeps, stopping early with [`Error::Cancelled`] once the cancel flag is set.
    pub(crate) fn sleep(&self, what: &str, duration: Duration) -> Result<()> {
        if sleep_unless(self.cancel.as_deref(), duration) {
            Ok(())
        } else {
            Err(Error::Cancelled { what: what.into() })
        }
    }

    /// Waits `duration` for a reason of the caller's (a retry it decided on), counted
    /// against this client's wait budget like the waits the server asks for, and stopped by
    /// the cancel flag.
    pub fn wait_counted(&self, what: &str, duration: Duration, cause: Error) -> Result<()> {
        self.budget_check(what, duration, cause)?;
        self.sleep(what, duration)
    }

    /// Counts `wait` against the budget; an error (`error` kept as the cause) when it
    /// would go over.
    fn budget_check(&self, what: &str, wait: Duration, error: Error) -> Result<()> {
        let before = Duration::from_millis(self.waited_ms.load(Ordering::Relaxed));
        if before + wait > self.rate_limits.budget {
            return Err(Error::WaitBudget {
                what: what.into(),
                waited: before,
                last: Box::new(error),
            });
        }
        self.waited_ms
            .fetch_add(wait.as_millis() as u64, Ordering::Relaxed);
        Ok(())
    }
}
