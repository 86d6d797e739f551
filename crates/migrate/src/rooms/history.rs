//! What the new account will be able to read of a room's past.
//!
//! History visibility is applied when each event is sent (client-server API, "Room History
//! Visibility"): a user who joins later sees an event only if the setting in force at that
//! event was `shared` or `world_readable`. Changing the setting now exposes nothing old.
//! So the verdict is a list of periods: those under `joined` or `invited` stay hidden from
//! the new account forever. The periods come from the history-visibility changes in the
//! timeline (read as the old account); after the join the verdict is checked as the new
//! account, by asking for the first message of each period.

use online::rooms::{self, Direction};
use online::Client;
use serde::Serialize;
use std::collections::HashSet;

use crate::error::Result;

/// One stretch of a room's life under one history-visibility setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Period {
    /// The setting (`shared`, `world_readable`, `joined`, `invited`).
    pub visibility: String,
    /// When it began (ms since 1970; the room's creation for the first).
    pub from_ms: u64,
    /// When it ended; `None` while in force.
    pub to_ms: Option<u64>,
    /// The event that began it (`None` for the implicit `shared` before any setting).
    pub event_id: Option<String>,
}

impl Period {
    /// True when a user who joins later can read what was sent in it.
    pub fn visible_later(&self) -> bool {
        matches!(self.visibility.as_str(), "shared" | "world_readable")
    }
}

/// What the new account will see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct History {
    /// Every period, oldest first.
    pub periods: Vec<Period>,
}

impl History {
    /// The periods whose messages stay hidden from the new account.
    pub fn hidden(&self) -> impl Iterator<Item = &Period> {
        self.periods.iter().filter(|p| !p.visible_later())
    }

    /// One line: "shared since creation", or which periods stay hidden and why.
    pub fn verdict(&self) -> String {
        let hidden: Vec<&Period> = self.hidden().collect();
        if hidden.is_empty() {
            return if self.periods.len() <= 1 {
                "all history visible (shared since creation)".into()
            } else {
                "all history visible (shared or world-readable throughout)".into()
            };
        }
        let parts: Vec<String> = hidden
            .iter()
            .map(|p| match p.to_ms {
                Some(to) => {
                    // Within one minute, the minutes alone would name the same time twice.
                    let show = if utc(p.from_ms) == utc(to) { utc_seconds } else { utc };
                    format!(
                        "messages sent between {} and {} stay hidden from the new account (history was '{}' then)",
                        show(p.from_ms),
                        show(to),
                        p.visibility
                    )
                }
                None => format!(
                    "messages sent since {} until the new account joins stay hidden from it (history is '{}' now)",
                    utc(p.from_ms),
                    p.visibility
                ),
            })
            .collect();
        parts.join("; ")
    }
}

/// The most `/messages` pages read back through one room's history-visibility changes
/// (each up to 100 of them): far beyond any real room, and a bound on what a server that
/// keeps sending pages can make a run do.
pub const MAX_PAGES: usize = 200;

/// Reads the periods as an account in the room: pages back through its history-visibility
/// changes (at most [`MAX_PAGES`]). `created_ms` is the create event's time.
pub fn read(client: &Client, room: &str, created_ms: u64) -> Result<History> {
    let mut changes = Vec::new();
    let mut from: Option<String> = None;
    for page_number in 0.. {
        if page_number == MAX_PAGES {
            return Err(online::Error::BadResponse {
                what: format!("read the history settings of {room}"),
                reason: format!(
                    "the server kept sending pages ({MAX_PAGES} pages of history-visibility \
                     changes): the room was not planned"
                ),
            }
            .into());
        }
        let page = rooms::messages(
            client,
            room,
            from.as_deref(),
            Direction::Backwards,
            &["m.room.history_visibility"],
            100,
        )?;
        changes.extend(page.chunk.iter().filter_map(change));
        match page.end {
            Some(end) if !page.chunk.is_empty() && Some(&end) != from.as_ref() => from = Some(end),
            _ => break,
        }
    }
    changes.reverse();
    Ok(periods_from(created_ms, changes))
}

/// A history-visibility change: its time, its event and the setting as the room's state
/// says it (any room admin writes it, so it is kept without control or format characters).
pub fn change(e: &rooms::TimelineEvent) -> Option<(u64, String, String)> {
    if e.kind != "m.room.history_visibility" || e.state_key.as_deref() != Some("") {
        return None;
    }
    let v = e
        .content
        .get("history_visibility")
        .and_then(|v| v.as_str())
        .unwrap_or("shared");
    Some((
        e.origin_server_ts,
        e.event_id.clone(),
        super::facts::clean(v),
    ))
}

/// The periods from the changes (oldest first): an implicit `shared` from creation until
/// the first setting (a missing setting means `shared`), then one per change.
pub fn periods_from(created_ms: u64, changes: Vec<(u64, String, String)>) -> History {
    let mut periods: Vec<Period> = Vec::new();
    let first_at = changes.first().map(|c| c.0);
    if first_at.is_none_or(|t| t > created_ms) {
        periods.push(Period {
            visibility: "shared".into(),
            from_ms: created_ms,
            to_ms: None,
            event_id: None,
        });
    }
    for (ts, id, vis) in changes {
        if let Some(last) = periods.last_mut() {
            if last.visibility == vis {
                continue;
            }
            last.to_ms = Some(ts);
        }
        periods.push(Period {
            visibility: vis,
            from_ms: ts,
            to_ms: None,
            event_id: Some(id),
        });
    }
    // A zero-length implicit period (the setting came with the room) says nothing.
    periods.retain(|p| p.to_ms != Some(p.from_ms) || p.event_id.is_some());
    History { periods }
}

/// One check of the verdict as the new account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Probe {
    /// The period's setting.
    pub visibility: String,
    /// When the period began.
    pub from_ms: u64,
    /// The first message of the period (read as the old account).
    pub event_id: matrix_ids::text::Untrusted,
    /// What the verdict said: visible to the new account.
    pub expected_visible: bool,
    /// What the server answered the new account.
    pub visible: bool,
}

/// Checks the verdict as the new account, once it has joined: for each period, the first
/// message sent in it is found as the old account; the new account then pages back through
/// the room (which makes its server fetch the history from the others) and must see
/// exactly the messages of the visible periods. Periods without messages are not probed.
pub fn verify(old: &Client, new: &Client, room: &str, history: &History) -> Result<Vec<Probe>> {
    let firsts = first_messages(old, room, history)?;
    let Some(oldest) = firsts.iter().map(|(_, e)| e.origin_server_ts).min() else {
        return Ok(Vec::new());
    };
    let seen = seen_back_to(new, room, oldest)?;
    let mut probes = Vec::new();
    for (p, first) in firsts {
        let visible =
            seen.contains(&first.event_id) || rooms::event(new, room, &first.event_id)?.is_some();
        probes.push(Probe {
            visibility: p.visibility.clone(),
            from_ms: p.from_ms,
            event_id: first.event_id.into(),
            expected_visible: p.visible_later(),
            visible,
        });
    }
    Ok(probes)
}

const MESSAGES: &[&str] = &["m.room.message", "m.room.encrypted"];

/// The first message of each period, as the old account finds it (periods without one
/// are left out).
fn first_messages<'h>(
    old: &Client,
    room: &str,
    history: &'h History,
) -> Result<Vec<(&'h Period, rooms::TimelineEvent)>> {
    let mut firsts = Vec::new();
    for p in &history.periods {
        let from = match &p.event_id {
            Some(id) => match rooms::token_after(old, room, id)? {
                Some(token) => Some(token),
                None => continue,
            },
            None => None,
        };
        let page = rooms::messages(old, room, from.as_deref(), Direction::Forwards, MESSAGES, 1)?;
        let Some(first) = page.chunk.into_iter().next() else {
            continue;
        };
        if p.to_ms.is_some_and(|to| first.origin_server_ts >= to) {
            continue;
        }
        firsts.push((p, first));
    }
    Ok(firsts)
}

/// The messages the new account can page back to, down to `oldest` (its server backfills
/// as it goes; at most 200 pages).
fn seen_back_to(new: &Client, room: &str, oldest: u64) -> Result<HashSet<String>> {
    let mut seen = HashSet::new();
    let mut from: Option<String> = None;
    for _ in 0..200 {
        let page = rooms::messages(
            new,
            room,
            from.as_deref(),
            Direction::Backwards,
            MESSAGES,
            100,
        )?;
        let reached = page.chunk.iter().map(|e| e.origin_server_ts).min();
        seen.extend(page.chunk.iter().map(|e| e.event_id.clone()));
        match page.end {
            Some(end) if !page.chunk.is_empty() && reached.is_some_and(|r| r >= oldest) => {
                from = Some(end)
            }
            Some(end) if page.chunk.is_empty() && from.as_ref() != Some(&end) => from = Some(end),
            _ => break,
        }
    }
    Ok(seen)
}

/// A time as `YYYY-MM-DD HH:MM UTC`.
pub fn utc(ms: u64) -> String {
    let (date, secs) = civil(ms);
    format!("{date} {:02}:{:02} UTC", secs / 3600, secs % 3600 / 60)
}

/// A time as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc_seconds(ms: u64) -> String {
    let (date, secs) = civil(ms);
    format!(
        "{date} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// The civil date (`YYYY-MM-DD`) of `ms`, and the seconds into that day.
fn civil(ms: u64) -> (String, u64) {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (format!("{year:04}-{month:02}-{day:02}"), rem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_795_000_000_000), "2026-11-18 11:06 UTC");
    }

    #[test]
    fn shared_since_creation_is_all_visible() {
        let h = periods_from(1000, vec![(1000, "$a".into(), "shared".into())]);
        assert_eq!(h.periods.len(), 1);
        assert_eq!(h.hidden().count(), 0);
        assert!(h
            .verdict()
            .starts_with("all history visible (shared since creation)"));
        // No setting at all means shared.
        let h = periods_from(1000, vec![]);
        assert_eq!(h.hidden().count(), 0);
    }

    #[test]
    fn a_joined_period_is_named_with_its_dates() {
        let day = 86_400_000;
        let h = periods_from(
            0,
            vec![
                (0, "$a".into(), "shared".into()),
                (day, "$b".into(), "joined".into()),
                (2 * day, "$c".into(), "shared".into()),
                (3 * day, "$d".into(), "invited".into()),
            ],
        );
        let hidden: Vec<_> = h.hidden().map(|p| p.visibility.as_str()).collect();
        assert_eq!(hidden, ["joined", "invited"]);
        let v = h.verdict();
        assert!(
            v.contains("between 1970-01-02 00:00 UTC and 1970-01-03 00:00 UTC stay hidden"),
            "{v}"
        );
        assert!(v.contains("history was 'joined' then"), "{v}");
        assert!(
            v.contains("since 1970-01-04 00:00 UTC until the new account joins"),
            "{v}"
        );
        // Repeating a setting does not start a period.
        let h = periods_from(
            0,
            vec![
                (0, "$a".into(), "joined".into()),
                (5, "$b".into(), "joined".into()),
            ],
        );
        assert_eq!(h.periods.len(), 1);
    }

    #[test]
    fn a_period_within_one_minute_is_named_to_the_second() {
        let minute = 60_000 * 1_000_000;
        let h = periods_from(
            minute,
            vec![
                (minute + 10_000, "$a".into(), "joined".into()),
                (minute + 40_000, "$b".into(), "shared".into()),
            ],
        );
        let v = h.verdict();
        assert!(
            v.contains("between 1971-11-26 10:40:10 UTC and 1971-11-26 10:40:40 UTC"),
            "{v}"
        );
    }
}
