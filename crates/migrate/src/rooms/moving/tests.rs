//! The engine's failure paths, each step against a scripted homeserver (no Synapse): a 5xx
//! retried, waits that run out of budget, a join the server answers but does not make, a
//! power level refused or already there, the check before a leave, a stop during a wait.

use crate::rooms::moving::Done;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use online::membership::Membership;
use online::testkit::stub::{Stub, CLIENT};
use online::Client;
use serde_json::json;

use super::ctx::Ctx;
use super::outcome::{RoomOutcome, RoomSlot, Status};
use super::{steps, MoveOptions};
use crate::events::Silent;
use crate::journal::Journal;
use crate::rooms::facts::RoomFacts;
use crate::rooms::history::History;
use crate::rooms::plan::{decide, RoomPlan};

const OLD: &str = "@old:org.example";
const NEW: &str = "@new:example.org";
const ROOM: &str = "!r:org.example";

struct Bench {
    options: MoveOptions,
    journal: Mutex<Journal>,
    _dir: tempfile::TempDir,
}

fn bench() -> Bench {
    let dir = tempfile::tempdir().unwrap();
    let mut options = MoveOptions::new(dir.path().join("j.jsonl"));
    options.remote_backoff = Duration::from_millis(10);
    options.federation_wait = Duration::from_millis(10);
    let journal = Mutex::new(Journal::open(&options.journal, OLD, NEW).unwrap());
    Bench {
        options,
        journal,
        _dir: dir,
    }
}

impl Bench {
    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            old_user: OLD,
            new_user: NEW,
            options: &self.options,
            journal: &self.journal,
            events: &Silent,
        }
    }
}

/// A planned room: version 10, invite only, the old account at `old_level`, power levels
/// needing `pl_needs` to change.
fn slot(old_level: i64, pl_needs: i64) -> RoomSlot {
    let state: Vec<online::rooms::StateEvent> = [
        json!({"type": "m.room.create", "state_key": "", "sender": "@admin:org.example", "content": {"room_version": "10"}}),
        json!({"type": "m.room.join_rules", "state_key": "", "sender": OLD, "content": {"join_rule": "invite"}}),
        json!({"type": "m.room.power_levels", "state_key": "", "sender": OLD,
            "content": {"users": {OLD: old_level}, "events": {"m.room.power_levels": pl_needs}}}),
        json!({"type": "m.room.member", "state_key": OLD, "sender": OLD, "content": {"membership": "join"}}),
    ]
    .into_iter()
    .map(|v| serde_json::from_value(v).unwrap())
    .collect();
    let facts = RoomFacts::from_state(ROOM, &state);
    let plan = RoomPlan {
        new_membership: None,
        decision: decide(&facts, OLD, NEW, &Default::default()),
        dm_with: None,
        history: History { periods: vec![] },
        history_verdict: "all history visible".into(),
        facts,
    };
    let mut outcome = RoomOutcome::new(ROOM);
    outcome.plan = Some(plan);
    RoomSlot::new(outcome)
}

fn path(tail: &str) -> String {
    format!("{CLIENT}/rooms/{ROOM}/{tail}")
}

fn member_path(user: &str) -> String {
    path(&format!("state/m.room.member/{user}"))
}

fn status(slot: &RoomSlot) -> (Status, Vec<String>, Vec<String>) {
    slot.with(|o| (o.status, o.reasons.clone(), o.advice.clone()))
}

#[test]
fn a_5xx_on_an_invite_is_retried_and_the_invite_sent_once() {
    let (b, stub) = (bench(), Stub::start());
    stub.once("POST", &path("invite"), 502, r#"{"errcode": "M_UNKNOWN"}"#)
        .on("POST", &path("invite"), 200, "{}");
    let s = slot(100, 100);
    assert!(steps::invite(&b.ctx(), &stub.client(), &s).unwrap());
    assert_eq!(s.with(|o| o.done.clone()), [Done::Invited]);
    assert_eq!(stub.count("POST", "/invite"), 2);
    assert_eq!(
        stub.count("GET", "m.room.member"),
        2,
        "the membership read before each try"
    );
}

#[test]
fn retries_that_outlast_the_wait_budget_fail_the_room() {
    let (b, stub) = (bench(), Stub::start());
    stub.fail("POST", &path("invite"), 502, "M_UNKNOWN");
    let mut client = stub.client();
    client.set_rate_limits(online::client::RateLimits {
        budget: Duration::from_millis(25),
        ..online::client::RateLimits::default()
    });
    let s = slot(100, 100);
    assert!(!steps::invite(&b.ctx(), &client, &s).unwrap());
    let (st, reasons, advice) = status(&s);
    assert_eq!(st, Status::Failed);
    assert!(
        reasons[0].contains("the most this run allows"),
        "{reasons:?}"
    );
    assert!(
        advice[0].contains("run the same command again"),
        "{advice:?}"
    );
    assert_eq!(
        stub.count("POST", "/invite"),
        2,
        "a 10 ms wait, then 20 ms more is over"
    );
}

#[test]
fn a_join_the_server_answers_but_does_not_make_fails_the_room() {
    let (b, stub) = (bench(), Stub::start());
    stub.once(
        "GET",
        &member_path(NEW),
        404,
        r#"{"errcode": "M_NOT_FOUND"}"#,
    )
    .membership(ROOM, NEW, Membership::Leave)
    .on(
        "POST",
        &format!("{CLIENT}/join/{ROOM}"),
        200,
        &json!({"room_id": ROOM}).to_string(),
    );
    let s = slot(100, 100);
    let old = Stub::start();
    assert!(!steps::join(&b.ctx(), &stub.client(), &old.client(), &s).unwrap());
    let (st, reasons, _) = status(&s);
    assert_eq!(st, Status::Failed);
    assert!(
        reasons[0].contains("the new account's membership is leave"),
        "{reasons:?}"
    );
    assert!(b.journal.lock().unwrap().room(ROOM).joined.eq(&false));
}

#[test]
fn a_power_level_refused_makes_the_room_partial_and_says_what_to_ask_for() {
    let (b, stub) = (bench(), Stub::start());
    // The plan thinks 50 may be given (the old account has 50, changing needs 50)...
    let s = slot(50, 50);
    // ... but the server refuses.
    stub.power_levels(ROOM, &json!({"users": {OLD: 50}})).fail(
        "PUT",
        &path("state/m.room.power_levels/"),
        403,
        "M_FORBIDDEN",
    );
    steps::give_power(&b.ctx(), &stub.client(), &s).unwrap();
    let (st, reasons, advice) = status(&s);
    assert_eq!(st, Status::Partial);
    assert!(reasons[0].starts_with("power not copied"), "{reasons:?}");
    assert!(
        advice[0].contains(&format!("give {NEW} power 50")),
        "{advice:?}"
    );
}

#[test]
fn a_level_the_new_account_has_is_not_sent_again() {
    let (b, stub) = (bench(), Stub::start());
    stub.power_levels(ROOM, &json!({"users": {OLD: 100, NEW: 100}}));
    let s = slot(100, 100);
    steps::give_power(&b.ctx(), &stub.client(), &s).unwrap();
    assert_eq!(status(&s).0, Status::AlreadyMoved);
    assert_eq!(stub.count("PUT", "power_levels"), 0);
    assert!(b.journal.lock().unwrap().room(ROOM).power);
}

#[test]
fn the_check_before_a_leave_keeps_the_old_account_in_unless_everything_holds() {
    let b = bench();
    let (old, new) = (Stub::start(), Stub::start());
    let s = slot(100, 100);
    let facts = s.plan().facts;
    let check = |old: &Client, new: &Client| {
        crate::rooms::leave::must_stay(&b.ctx(), old, new, &facts).unwrap()
    };
    // Banned, as the old server sees it.
    old.membership(ROOM, NEW, Membership::Ban);
    let why = check(&old.client(), &new.client()).unwrap();
    assert!(why.contains("its membership there: ban"), "{why}");
    // Joined on both, but with less power than the old account has now.
    old.membership(ROOM, NEW, Membership::Join)
        .power_levels(ROOM, &json!({"users": {OLD: 100, NEW: 50}}));
    new.membership(ROOM, NEW, Membership::Join);
    let why = check(&old.client(), &new.client()).unwrap();
    assert!(
        why.contains("power 100 here now and the new account 50"),
        "{why}"
    );
    // Everything holds.
    old.power_levels(ROOM, &json!({"users": {OLD: 100, NEW: 100}}));
    assert_eq!(check(&old.client(), &new.client()), None);
    // A tombstone since.
    old.on(
        "GET",
        &path("state/m.room.tombstone/"),
        200,
        &json!({"replacement_room": "!next:org.example"}).to_string(),
    );
    assert!(check(&old.client(), &new.client())
        .unwrap()
        .contains("replaced by !next"));
}

#[test]
fn a_stop_during_a_wait_leaves_the_room_for_the_next_run() {
    let (b, stub) = (bench(), Stub::start());
    stub.fail("POST", &path("invite"), 502, "M_UNKNOWN");
    let mut client = stub.client();
    let stop = Arc::new(AtomicBool::new(true));
    client.cancel_on(stop);
    let s = slot(100, 100);
    assert!(!steps::invite(&b.ctx(), &client, &s).unwrap());
    assert_eq!(
        status(&s).0,
        Status::NotDone,
        "not failed: resumed by a rerun"
    );
    assert!(!b.journal.lock().unwrap().room(ROOM).invited);
}

#[test]
fn a_blocked_room_says_why_and_what_to_do() {
    let b = bench();
    let s = RoomSlot::new(RoomOutcome::new(ROOM));
    let mut plan = slot(0, 100).plan();
    plan.facts.power_levels = json!({"invite": 50});
    plan.decision = decide(&plan.facts, OLD, NEW, &Default::default());
    let next = steps::take_plan(&b.ctx(), &s, Ok(plan)).unwrap();
    assert!(next.is_none());
    let (st, reasons, advice) = status(&s);
    assert_eq!(st, Status::Blocked);
    assert_eq!(
        reasons,
        ["the old account cannot invite: needs power 50, has 0"]
    );
    assert!(advice[0].starts_with(&format!("ask one of the room's admins to invite {NEW}")));
}
