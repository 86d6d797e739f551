//! The rooms jobs between two real homeservers that federate on loopback (an
//! "organisation" and a "personal" Synapse, started by scripts/test-all). These tests
//! FAIL, never skip, when the servers are not running.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use migrate::rooms::list;
use migrate::rooms::moving::{self, MoveOptions, MoveReport, Status};
use migrate::rooms::plan::{self, BlockerKind, Pair};
use migrate::{Event, Silent};
use online::rooms;
use online::testkit::{server_named, Action, Hook, Proxy, TestUser};
use online::{Credentials, Session, SessionOptions};
use serde_json::{json, Value};

/// The rooms of the scenario, by role.
struct World {
    old: TestUser,
    new: TestUser,
    bob: TestUser,
    rooms: BTreeMap<&'static str, String>,
    /// Events of the history room: (text, event ID).
    said: Vec<(&'static str, String)>,
}

fn world() -> World {
    let org = server_named("ORG");
    let personal = server_named("PERSONAL");
    let old = org.register("old");
    let bob = org.register("bob");
    let carol = org.register("carol");
    let new = personal.register("new");
    let org_name = old.server_name().to_owned();
    let via = vec![org_name.clone()];
    let mut rooms = BTreeMap::new();
    // v12, invite only, encrypted; the old account is its creator; one tag.
    let private = old.create_room_with(json!({"name": "Private v12", "preset": "private_chat",
        "initial_state": [{"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}]}));
    rooms::put_tag(
        &old.client,
        &old.user_id,
        &private,
        "m.favourite",
        &json!({"order": 0.25}),
    )
    .unwrap();
    rooms.insert("private", private);
    // v10, public: no invite needed.
    rooms.insert(
        "public",
        old.create_room_with(
            json!({"name": "Public v10", "preset": "public_chat", "room_version": "10"}),
        ),
    );
    // A DM as Element makes one.
    let dm = old.create_room_with(
        json!({"preset": "trusted_private_chat", "is_direct": true, "invite": [bob.user_id]}),
    );
    bob.join(&dm, &via);
    rooms::put_state(
        &old.client,
        &dm,
        "m.room.name",
        "",
        &json!({"name": "chat with bob"}),
    )
    .ok();
    let direct =
        m_direct::DirectMap::parse(&json!({ bob.user_id.clone(): [dm] }).to_string()).unwrap();
    online::direct::replace(&old.client, &old.user_id, &direct).unwrap();
    rooms.insert("dm", dm);
    // Carol's room where inviting needs 50: the old account (0) cannot invite.
    let no_invite = carol.create_room_with(
        json!({"name": "No invites", "preset": "private_chat", "invite": [old.user_id],
        "power_level_content_override": {"invite": 50}}),
    );
    old.join(&no_invite, &via);
    rooms.insert("no_invite", no_invite);
    // The new account is banned.
    let banned = old.create_room_with(json!({"name": "Banned", "preset": "private_chat"}));
    rooms::put_state(
        &old.client,
        &banned,
        "m.room.member",
        &new.user_id,
        &json!({"membership": "ban", "reason": "test"}),
    )
    .unwrap();
    rooms.insert("banned", banned);
    // Replaced by another room.
    let tombstoned = old.create_room_with(json!({"name": "Old version", "preset": "private_chat"}));
    old.set_state(
        &tombstoned,
        "m.room.tombstone",
        "",
        json!({"body": "moved", "replacement_room": "!next:example.org"}),
    );
    rooms.insert("tombstoned", tombstoned);
    // Made not to federate: accounts on other servers can never join.
    rooms.insert(
        "local_only",
        old.create_room_with(json!({"name": "Local only", "preset": "private_chat",
            "creation_content": {"m.federate": false}})),
    );
    // Public v10 room where the old account has 50 and power levels need 100: partial.
    let partial = carol.create_room_with(
        json!({"name": "Partial", "preset": "public_chat", "room_version": "10"}),
    );
    old.join(&partial, &via);
    let mut pl = rooms::state_content(&carol.client, &partial, "m.room.power_levels", "")
        .unwrap()
        .unwrap();
    pl["users"][&old.user_id] = json!(50);
    pl["events"]["m.room.power_levels"] = json!(100);
    carol.set_state(&partial, "m.room.power_levels", "", pl);
    rooms.insert("partial", partial);
    // History: shared, then joined, then shared again, a message in each period.
    let history = old.create_room_with(json!({"name": "History", "preset": "private_chat"}));
    let mut said = vec![("before", old.say(&history, "before"))];
    std::thread::sleep(Duration::from_millis(5));
    old.set_state(
        &history,
        "m.room.history_visibility",
        "",
        json!({"history_visibility": "joined"}),
    );
    said.push(("hidden", old.say(&history, "hidden")));
    std::thread::sleep(Duration::from_millis(5));
    old.set_state(
        &history,
        "m.room.history_visibility",
        "",
        json!({"history_visibility": "shared"}),
    );
    said.push(("after", old.say(&history, "after")));
    rooms.insert("history", history);
    // A knock room, and a restricted room inside a space.
    rooms.insert("knock", old.create_room_with(json!({"name": "Knock", "preset": "private_chat",
        "initial_state": [{"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "knock"}}]})));
    let space = old.create_room_with(json!({"name": "Team space", "preset": "private_chat", "creation_content": {"type": "m.space"}}));
    let restricted = old.create_room_with(json!({"name": "Space room", "preset": "private_chat",
        "initial_state": [{"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "restricted",
            "allow": [{"type": "m.room_membership", "room_id": space}]}}]}));
    old.set_state(
        &space,
        "m.space.child",
        &restricted,
        json!({"via": [org_name]}),
    );
    rooms.insert("space", space);
    rooms.insert("restricted", restricted);
    World {
        old,
        new,
        bob,
        rooms,
        said,
    }
}

/// Events of `kind` in the room's timeline as `user` sees it, newest first.
fn timeline(user: &TestUser, room: &str, kind: &str) -> Vec<Value> {
    let page = rooms::messages(
        &user.client,
        room,
        None,
        rooms::Direction::Backwards,
        &[kind],
        100,
    )
    .unwrap();
    page.chunk
        .into_iter()
        .filter(|e| e.kind == kind)
        .map(|e| json!({"content": e.content, "state_key": e.state_key}))
        .collect()
}

/// Waits up to 20 s for `check` (what one server did reaches the other over federation).
fn eventually(what: &str, check: impl Fn() -> bool) {
    let start = std::time::Instant::now();
    while !check() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{what}: not seen after 20 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn by_room<'a>(report: &'a MoveReport, room: &str) -> &'a moving::RoomOutcome {
    report.rooms.iter().find(|r| r.room_id == room).unwrap()
}

#[test]
fn list_plan_and_move_between_two_servers() {
    let w = world();
    let org = server_named("ORG");
    let personal = server_named("PERSONAL");
    let old = w.old.session(&org.url);
    let new = w.new.session(&personal.url);
    let pair = Pair {
        old: &old,
        new: &new,
    };
    let wanted: Vec<String> = w.rooms.values().cloned().collect();

    // The list: every room, the DM named, the space first with its room under it.
    let listed = list::list(&old, &Silent).unwrap();
    let lines: Vec<String> = listed
        .rooms
        .iter()
        .map(migrate::rooms::rooms_file::line)
        .collect();
    let text = lines.join("\n");
    assert_eq!(listed.rooms.len(), w.rooms.len(), "{text}");
    let line_of = |key: &str| {
        lines
            .iter()
            .find(|l| l.trim_start().starts_with(&w.rooms[key]))
            .unwrap()
            .clone()
    };
    assert!(
        line_of("dm").contains(&format!("DM with {}", w.bob.user_id)),
        "{text}"
    );
    assert!(line_of("private").contains("Private v12 — encrypted — v12 — invite only — your power 150 (creator) — history: shared since creation"), "{text}");
    // (150: version 12 power levels ask 150 for m.room.tombstone, the highest any event needs.)
    assert!(
        line_of("public").contains("v10 — public — your power 100"),
        "{text}"
    );
    assert!(line_of("history").contains("1 period(s) hidden"), "{text}");
    let space_at = lines
        .iter()
        .position(|l| l.starts_with(&w.rooms["space"]))
        .unwrap();
    assert!(lines[space_at].contains("[space] Team space"), "{text}");
    assert_eq!(
        lines[space_at + 1],
        format!("  {}", line_of("restricted").trim_start()),
        "{text}"
    );
    // The list is a rooms file the other commands read.
    let parsed = key_export::select::parse_rooms_file(&text, "list").unwrap();
    assert_eq!(parsed.len(), w.rooms.len());

    // The plan.
    let p = plan::plan(&pair, &wanted, true, &Silent).unwrap();
    let plan_of = |key: &str| {
        p.rooms
            .iter()
            .find(|r| r.facts.room_id == w.rooms[key])
            .unwrap()
    };
    assert_eq!(
        plan_of("no_invite").decision.blockers[0].kind,
        BlockerKind::CannotInvite
    );
    assert_eq!(
        plan_of("banned").decision.blockers[0].kind,
        BlockerKind::NewBanned
    );
    assert_eq!(
        plan_of("tombstoned").decision.blockers[0].kind,
        BlockerKind::Tombstoned
    );
    assert_eq!(
        plan_of("local_only").decision.blockers[0].kind,
        BlockerKind::NoFederation
    );
    assert!(plan_of("tombstoned").decision.blockers[0]
        .advice
        .contains("!next:example.org"));
    assert_eq!(
        plan_of("partial").decision.power_not_copied.as_deref(),
        Some("power not copied: needs 100, has 50")
    );
    assert!(!plan_of("public")
        .decision
        .steps
        .contains(&plan::Step::Invite));
    assert!(plan_of("knock")
        .decision
        .steps
        .contains(&plan::Step::Invite));
    let verdict = plan_of("history").history_verdict.as_str();
    assert!(
        verdict.contains("stay hidden from the new account (history was 'joined' then)"),
        "{verdict}"
    );
    assert!(plan_of("private")
        .history_verdict
        .as_str()
        .starts_with("all history visible"));
    assert_eq!(p.estimate.invites, 6, "{:?}", p.estimate); // private, dm, history, knock, space, restricted
                                                           // The restricted room: its space moves too, so the new account will be a member...
    let notes = &plan_of("restricted").decision.notes;
    assert!(
        notes.contains(&format!(
            "members of {} may join without an invite; it moves too, so the new account will be one of them",
            w.rooms["space"]
        )),
        "{notes:?}"
    );
    // ...and without its space in the move, the plan says so.
    let alone = plan::plan(&pair, &[w.rooms["restricted"].clone()], false, &Silent).unwrap();
    let notes = &alone.rooms[0].decision.notes;
    assert!(
        notes.iter().any(|n| n.starts_with(&format!(
            "only members of {} may join without an invite",
            w.rooms["space"]
        ))),
        "{notes:?}"
    );
    assert_eq!(p.estimate.seconds, 334, "{:?}", p.estimate);

    // The move, with the rename and without leaving.
    let dir = tempfile::tempdir().unwrap();
    let mut options = MoveOptions::new(dir.path().join("journal.jsonl"));
    options.rename_old = Some("(old account)".into());
    options.federation_wait = Duration::from_secs(20);
    let seen = Mutex::new(Vec::new());
    let record = |e: Event| seen.lock().unwrap().push(e);
    let report = moving::run(&pair, &wanted, &options, &record).unwrap();
    let status = |key: &str| by_room(&report, &w.rooms[key]).status;
    for key in [
        "private",
        "public",
        "dm",
        "history",
        "knock",
        "space",
        "restricted",
    ] {
        assert_eq!(
            status(key),
            Status::Moved,
            "{key}: {:?}",
            by_room(&report, &w.rooms[key])
        );
    }
    assert_eq!(status("partial"), Status::Partial);
    for key in ["no_invite", "banned", "tombstoned", "local_only"] {
        assert_eq!(status(key), Status::Blocked, "{key}");
    }
    assert!(!report.stopped);
    // Checked as the new account: joined, the creator's power as the highest level, the tag.
    let new_c = &w.new.client;
    for key in [
        "private",
        "public",
        "dm",
        "history",
        "knock",
        "restricted",
        "partial",
    ] {
        assert_eq!(
            rooms::membership(new_c, &w.rooms[key], &w.new.user_id)
                .unwrap()
                .as_ref()
                .map(online::rooms::Membership::as_str),
            Some("join"),
            "{key}"
        );
    }
    let pl = rooms::state_content(new_c, &w.rooms["private"], "m.room.power_levels", "")
        .unwrap()
        .unwrap();
    assert_eq!(pl["users"][&w.new.user_id], json!(150));
    assert!(
        pl["users"].get(&w.old.user_id).is_none(),
        "a creator never goes into users"
    );
    let pl = rooms::state_content(new_c, &w.rooms["public"], "m.room.power_levels", "")
        .unwrap()
        .unwrap();
    assert_eq!(pl["users"][&w.new.user_id], json!(100));
    assert_eq!(pl["users"][&w.old.user_id], json!(100));
    let tags = rooms::tags(new_c, &w.new.user_id, &w.rooms["private"]).unwrap();
    assert_eq!(tags["m.favourite"], json!({"order": 0.25}));
    // The DM is in the new account's m.direct under the peer.
    let direct = online::direct::download(new_c, &w.new.user_id).unwrap();
    assert_eq!(
        direct.to_value(),
        json!({ w.bob.user_id.clone(): [w.rooms["dm"]] })
    );
    // The history verdict, checked as the new account.
    let probes = &by_room(&report, &w.rooms["history"]).probes;
    let seen_ids: Vec<(&str, bool)> = probes
        .iter()
        .map(|p| (p.event_id.as_str(), p.visible))
        .collect();
    let expect: Vec<(&str, bool)> = w
        .said
        .iter()
        .map(|(t, id)| (id.as_str(), *t != "hidden"))
        .collect();
    assert_eq!(seen_ids, expect);
    assert!(probes.iter().all(|p| p.visible == p.expected_visible));
    for (text, id) in &w.said {
        assert_eq!(
            rooms::event(new_c, &w.rooms["history"], id)
                .unwrap()
                .is_some(),
            *text != "hidden"
        );
    }
    // The rename reached the moved rooms (seen by the new account).
    let renamed = report.renamed.clone().unwrap();
    assert!(renamed.ends_with(" (old account)"), "{renamed}");
    for key in ["private", "public", "dm"] {
        eventually(key, || {
            let m = rooms::state_content(new_c, &w.rooms[key], "m.room.member", &w.old.user_id)
                .unwrap()
                .unwrap();
            m["displayname"] == json!(renamed)
        });
    }
    // Events told each stage.
    let events = seen.lock().unwrap();
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::Item { outcome, .. } if outcome == "invited")));

    // Again, with --leave: nothing is invited or given twice; the old account leaves the
    // rooms that fully moved and stays in the partial one.
    options.leave = true;
    let again = moving::run(&pair, &wanted, &options, &Silent).unwrap();
    for key in [
        "private",
        "public",
        "dm",
        "history",
        "knock",
        "space",
        "restricted",
    ] {
        let o = by_room(&again, &w.rooms[key]);
        assert_eq!(o.status, Status::AlreadyMoved, "{key}: {o:?}");
        assert!(o.left, "{key}: {o:?}");
        // Seen by the new account's server a moment later.
        eventually(key, || {
            rooms::membership(new_c, &w.rooms[key], &w.old.user_id)
                .unwrap()
                .as_ref()
                .map(online::rooms::Membership::as_str)
                == Some("leave")
        });
    }
    let partial = by_room(&again, &w.rooms["partial"]);
    assert!(
        !partial.left && partial.stayed.as_deref().unwrap().contains("stays"),
        "{partial:?}"
    );
    for key in ["private", "dm", "history", "knock"] {
        // Counted on the organisation's server, where the events were sent (the old account
        // still reads the timeline up to its leave).
        let invites = timeline(&w.old, &w.rooms[key], "m.room.member")
            .into_iter()
            .filter(|e| {
                e["state_key"] == json!(w.new.user_id)
                    && e["content"]["membership"] == json!("invite")
            })
            .count();
        assert_eq!(invites, 1, "{key}");
        let pls = timeline(&w.old, &w.rooms[key], "m.room.power_levels")
            .into_iter()
            .filter(|e| e["content"]["users"].get(&w.new.user_id).is_some())
            .count();
        assert_eq!(pls, 1, "{key}");
    }
    // A third run finds everything done and changes nothing.
    let third = moving::run(&pair, &wanted, &options, &Silent).unwrap();
    assert!(
        third.rooms.iter().all(|r| r.done.is_empty()),
        "{:?}",
        third.rooms
    );
}

/// A 502 on an invite across servers may be the invitee's server limiting (no wait time
/// crosses federation): the membership is re-read and the invite tried again after a
/// backoff, never a failure on the first answer, and the room ends with one invite.
#[test]
fn a_502_on_an_invite_is_retried_not_fatal() {
    let (org, personal) = (server_named("ORG"), server_named("PERSONAL"));
    let old_user = org.register("old");
    let new_user = personal.register("new");
    let room = old_user.create_room_with(json!({"name": "Flaky", "preset": "private_chat"}));
    let failed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let hook: Hook = {
        let failed = failed.clone();
        std::sync::Arc::new(move |_, method, path| {
            if method == "POST"
                && path.ends_with("/invite")
                && failed.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2
            {
                Action::Answer(
                    502,
                    r#"{"errcode":"M_UNKNOWN","error":"Bad Gateway"}"#.into(),
                )
            } else {
                Action::Forward
            }
        })
    };
    let proxy = Proxy::start(&org.url, std::sync::Arc::default(), hook);
    let old = old_user.session(&proxy.url);
    let new = new_user.session(&personal.url);
    let pair = Pair {
        old: &old,
        new: &new,
    };
    let dir = tempfile::tempdir().unwrap();
    let mut options = MoveOptions::new(dir.path().join("journal.jsonl"));
    options.remote_backoff = Duration::from_millis(200);
    let seen = Mutex::new(Vec::new());
    let record = |e: Event| seen.lock().unwrap().push(e);
    let report = moving::run(&pair, std::slice::from_ref(&room), &options, &record).unwrap();
    assert_eq!(by_room(&report, &room).status, Status::Moved, "{report:?}");
    // Two answered 502, the third went through.
    assert_eq!(failed.load(std::sync::atomic::Ordering::SeqCst), 3);
    let waits: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::Waiting { cause, .. } => Some(cause.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(waits.len(), 2, "{waits:?}");
    assert!(
        waits[0].contains("the other server's rate limit"),
        "{waits:?}"
    );
    let invites: Vec<Value> = timeline(&old_user, &room, "m.room.member")
        .into_iter()
        .filter(|e| {
            e["state_key"] == json!(new_user.user_id)
                && e["content"]["membership"] == json!("invite")
        })
        .collect();
    assert_eq!(invites.len(), 1, "{invites:?}");
}

/// Password logins on the LIMITED server get access tokens that live 2 s: a move that
/// waits out the server's invite and join limits for longer renews them (every stage's
/// client shares the renewal) and finishes; the sessions are logged out at the end.
#[test]
fn a_move_outlives_its_password_logins_access_tokens() {
    let limited = server_named("LIMITED");
    let (old_user, new_user) = (limited.register("old"), limited.register("new"));
    let wanted: Vec<String> = (0..6)
        .map(|i| {
            old_user
                .create_room_with(json!({"name": format!("Room {i}"), "preset": "private_chat"}))
        })
        .collect();
    let open = |u: &TestUser| {
        Session::open(
            limited.homeserver(),
            Credentials::Password {
                user_id: u.user_id.clone(),
                password: u.password.clone().into(),
            },
            SessionOptions {
                expected_user: Some(u.user_id.clone()),
                ..SessionOptions::default()
            },
        )
        .unwrap()
    };
    let (old, new) = (open(&old_user), open(&new_user));
    assert!(old.client().refreshable() && new.client().refreshable());
    let dir = tempfile::tempdir().unwrap();
    let options = MoveOptions::new(dir.path().join("journal.jsonl"));
    let pair = Pair {
        old: &old,
        new: &new,
    };
    let report = moving::run(&pair, &wanted, &options, &Silent).unwrap();
    assert!(
        report.rooms.iter().all(|r| r.status == Status::Moved),
        "{report:?}"
    );
    assert!(report.waits >= 2, "the limits made it wait: {report:?}");
    // Renewed as it went: at least once per 2 s lifetime the waits took.
    assert!(
        old.client().refreshes() >= 2,
        "{}",
        old.client().refreshes()
    );
    assert!(
        new.client().refreshes() >= 1,
        "{}",
        new.client().refreshes()
    );
    old.close().unwrap();
    new.close().unwrap();
}

/// L4: the waits after a server error on an invite count against the run's wait budget
/// (`--max-wait`): a server that answers 502 for ever stops the room at the budget, not after
/// half an hour of doubling waits.
#[test]
fn remote_retries_count_against_the_wait_budget() {
    let (org, personal) = (server_named("ORG"), server_named("PERSONAL"));
    let old_user = org.register("old");
    let new_user = personal.register("new");
    let room = old_user.create_room("Always 502");
    let hook: Hook = std::sync::Arc::new(|_, method, path| {
        if method == "POST" && path.ends_with("/invite") {
            Action::Answer(
                502,
                r#"{"errcode":"M_UNKNOWN","error":"Bad Gateway"}"#.into(),
            )
        } else {
            Action::Forward
        }
    });
    let proxy = Proxy::start(&org.url, std::sync::Arc::default(), hook);
    let old = Session::open(
        online::Homeserver::parse(&proxy.url, false).unwrap(),
        Credentials::Token(online::AccessToken::new(&old_user.token)),
        SessionOptions {
            limits: online::client::RateLimits {
                budget: Duration::from_secs(1),
                ..online::client::RateLimits::default()
            },
            ..SessionOptions::default()
        },
    )
    .unwrap();
    let new = new_user.session(&personal.url);
    let dir = tempfile::tempdir().unwrap();
    let mut options = MoveOptions::new(dir.path().join("journal.jsonl"));
    options.remote_backoff = Duration::from_millis(600);
    let started = std::time::Instant::now();
    let report = moving::run(
        &Pair {
            old: &old,
            new: &new,
        },
        std::slice::from_ref(&room),
        &options,
        &Silent,
    )
    .unwrap();
    let o = by_room(&report, &room);
    assert_eq!(o.status, Status::Failed, "{o:?}");
    assert!(o.reasons[0].contains("the most this run allows"), "{o:?}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

/// L4: a server that sends `/messages` pages for ever cannot keep the planning of a room
/// going: it stops after a bounded number of pages, saying so.
#[test]
fn endless_history_pages_are_bounded() {
    let (org, personal) = (server_named("ORG"), server_named("PERSONAL"));
    let old_user = org.register("old");
    let new_user = personal.register("new");
    let room = old_user.create_room("Endless");
    let pages = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let hook: Hook = {
        let pages = pages.clone();
        std::sync::Arc::new(move |_, method, path| {
            if method == "GET" && path.contains("/messages") {
                let n = pages.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Action::Answer(
                    200,
                    json!({"chunk": [{"type": "m.room.history_visibility", "state_key": "",
                        "event_id": format!("$e{n}"), "origin_server_ts": 1000, "sender": "@x:y",
                        "content": {"history_visibility": "shared"}}],
                        "start": format!("t{n}"), "end": format!("t{}", n + 1)})
                    .to_string(),
                )
            } else {
                Action::Forward
            }
        })
    };
    let proxy = Proxy::start(&org.url, std::sync::Arc::default(), hook);
    let old = old_user.session(&proxy.url);
    let new = new_user.session(&personal.url);
    let e = plan::plan(
        &Pair {
            old: &old,
            new: &new,
        },
        std::slice::from_ref(&room),
        false,
        &Silent,
    )
    .unwrap_err();
    assert!(e.to_string().contains("kept sending pages"), "{e}");
    assert_eq!(
        pages.load(std::sync::atomic::Ordering::SeqCst),
        migrate::rooms::history::MAX_PAGES
    );
}

/// Invite blocking (spec v1.18): when the new account refuses invites from the old one, the
/// invite would fail with M_INVITE_BLOCKED (checked on the server first), so the plan blocks
/// each room that needs an invite before any wait; a public room, which needs none, still
/// moves. With the setting allowing invites again, the same rooms plan an invite and no
/// blocker, and the move goes through.
#[test]
fn a_new_account_that_blocks_invites_is_seen_before_the_first_invite() {
    let (org, personal) = (server_named("ORG"), server_named("PERSONAL"));
    let old_user = org.register("old");
    let new_user = personal.register("new");
    let private = old_user.create_room_with(json!({"name": "Blocked", "preset": "private_chat"}));
    let public = old_user.create_room_with(json!({"name": "Open", "preset": "public_chat"}));
    let probe = old_user.create_room_with(json!({"name": "Probe", "preset": "private_chat"}));
    let setting = "m.invite_permission_config";
    let set = |action: &str| {
        online::account::put_account_data(
            &new_user.client,
            &new_user.user_id,
            setting,
            &json!({"default_action": action}),
        )
        .unwrap()
    };
    set("block");
    match rooms::invite(&old_user.client, &probe, &new_user.user_id) {
        Err(online::Error::Api { errcode, .. }) => assert_eq!(errcode, "M_INVITE_BLOCKED"),
        other => panic!("the server let the invite through: {other:?}"),
    }
    let (old, new) = (old_user.session(&org.url), new_user.session(&personal.url));
    let pair = Pair {
        old: &old,
        new: &new,
    };
    let wanted = [private.clone(), public.clone()];
    let blocked = plan::plan(&pair, &wanted, false, &Silent).unwrap();
    let kinds = |p: &plan::Plan, i: usize| -> Vec<BlockerKind> {
        p.rooms[i]
            .decision
            .blockers
            .iter()
            .map(|b| b.kind)
            .collect()
    };
    assert_eq!(kinds(&blocked, 0), [BlockerKind::InvitesBlocked]);
    assert!(blocked.rooms[0].decision.blockers[0]
        .reason
        .contains(setting));
    assert!(blocked.rooms[0].decision.steps.is_empty());
    assert_eq!(kinds(&blocked, 1), [], "a public room needs no invite");
    // The move itself stops the room before its invite, and moves the public room.
    let dir = tempfile::tempdir().unwrap();
    let first = MoveOptions::new(dir.path().join("blocked.jsonl"));
    let report = moving::run(&pair, &wanted, &first, &Silent).unwrap();
    assert_eq!(by_room(&report, &private).status, Status::Blocked);
    assert_eq!(by_room(&report, &public).status, Status::Moved);
    let invites = timeline(&old_user, &private, "m.room.member")
        .into_iter()
        .filter(|e| e["content"]["membership"] == json!("invite"))
        .count();
    assert_eq!(invites, 0, "no invite was tried");

    set("allow");
    let open = plan::plan(&pair, &wanted, false, &Silent).unwrap();
    assert_eq!(kinds(&open, 0), []);
    assert_eq!(open.rooms[0].decision.steps[0], plan::Step::Invite);
    let options = MoveOptions::new(dir.path().join("journal.jsonl"));
    let report = moving::run(&pair, &wanted, &options, &Silent).unwrap();
    assert_eq!(
        by_room(&report, &private).status,
        Status::Moved,
        "{report:?}"
    );
    assert_eq!(by_room(&report, &public).status, Status::AlreadyMoved);
}

/// A move the plan allows to (`allow_invites`) opens the new account's invite setting to
/// the old account for its duration and puts it back exactly as it was; asked and answered
/// no, it leaves the setting alone and the room blocked; after a run that opened it and
/// stopped, the next run puts it back.
#[test]
fn a_move_lets_its_invites_through_and_puts_the_setting_back() {
    use migrate::account_move::{self, CopyWhat, KeySources, Request};
    use migrate::rooms::invite_rules::{self, AllowInvites};
    let (org, personal) = (server_named("ORG"), server_named("PERSONAL"));
    let old_user = org.register("old");
    let new_user = personal.register("new");
    let room = old_user.create_room_with(json!({"name": "Private", "preset": "private_chat"}));
    let setting = "m.invite_permission_config";
    let original = json!({"default_action": "block", "mine": [1, 2]});
    let read = || online::account::account_data(&new_user.client, &new_user.user_id, setting);
    online::account::put_account_data(&new_user.client, &new_user.user_id, setting, &original)
        .unwrap();
    let (old, new) = (old_user.session(&org.url), new_user.session(&personal.url));
    let pair = Pair {
        old: &old,
        new: &new,
    };
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.jsonl");
    let asked = std::sync::Arc::new(Mutex::new(Vec::<String>::new()));
    let request = |allow, dry_run| {
        let asked = asked.clone();
        Request::<&[u8]> {
            rooms: vec![room.clone()],
            keys: KeySources {
                exports: Vec::new(),
                read: Default::default(),
                old_recovery: None,
                new_recovery: None,
            },
            copy: CopyWhat::NOTHING,
            options: MoveOptions::new(journal.clone()),
            dry_run,
            allow_invites: allow,
            confirm: Box::new(move |q: &str| {
                asked.lock().unwrap().push(q.to_owned());
                false
            }),
        }
    };
    let status = |r: &account_move::Report| match &r.rooms {
        account_move::RoomsPhase::Moved(m) => by_room(m, &room).status,
        other => panic!("{other:?}"),
    };

    // The dry run plans as the run would: the setting opened first, the room moving.
    let dry = account_move::run(&pair, request(AllowInvites::Yes, true), &Silent).unwrap();
    assert_eq!(dry.invites_opened.as_deref(), Some(setting));
    let account_move::RoomsPhase::Planned(planned) = &dry.rooms else {
        panic!("{:?}", dry.rooms);
    };
    assert!(planned.rooms[0].decision.blockers.is_empty());
    assert_eq!(
        read().unwrap(),
        Some(original.clone()),
        "a dry run writes nothing"
    );

    // A dry run of a move that will ask: the room says so, and nobody is asked yet.
    let dry = account_move::run(&pair, request(AllowInvites::Ask, true), &Silent).unwrap();
    let account_move::RoomsPhase::Planned(planned) = &dry.rooms else {
        panic!("{:?}", dry.rooms);
    };
    let advice = &planned.rooms[0].decision.blockers[0].advice;
    assert!(advice.starts_with("the run will ask first"), "{advice}");
    assert!(asked.lock().unwrap().is_empty());

    // Asked, and answered no: the setting stays, the room is blocked.
    let no = account_move::run(&pair, request(AllowInvites::Ask, false), &Silent).unwrap();
    assert_eq!(asked.lock().unwrap().len(), 1);
    assert!(asked.lock().unwrap()[0].contains(setting));
    assert_eq!(status(&no), Status::Blocked);
    assert_eq!((no.invites_opened, no.invites_restored), (None, None));
    assert_eq!(read().unwrap(), Some(original.clone()));

    // A run that opened the setting and was stopped before the end (as the journal says)...
    {
        let j = Mutex::new(
            migrate::journal::Journal::open(&journal, &old_user.user_id, &new_user.user_id)
                .unwrap(),
        );
        invite_rules::open_for_move(&new_user.client, &new_user.user_id, &old_user.user_id, &j)
            .unwrap();
    }
    assert_ne!(read().unwrap(), Some(original.clone()));
    // ...then a run that may not open it: the room moves through the open setting, and the
    // setting is put back exactly.
    let done = account_move::run(&pair, request(AllowInvites::No, false), &Silent).unwrap();
    assert_eq!(status(&done), Status::Moved, "{done:?}");
    assert_eq!(done.invites_restored.as_deref(), Some(setting));
    assert_eq!(read().unwrap(), Some(original.clone()));

    // With `yes` from the start, in a second room: opened, moved, put back.
    let second = old_user.create_room_with(json!({"name": "Second", "preset": "private_chat"}));
    let mut req = request(AllowInvites::Yes, false);
    req.rooms = vec![second.clone()];
    let yes = account_move::run(&pair, req, &Silent).unwrap();
    assert_eq!(yes.invites_opened.as_deref(), Some(setting));
    assert_eq!(yes.invites_restored.as_deref(), Some(setting));
    let account_move::RoomsPhase::Moved(m) = &yes.rooms else {
        panic!("{:?}", yes.rooms);
    };
    assert_eq!(by_room(m, &second).status, Status::Moved);
    assert_eq!(read().unwrap(), Some(original));
}

/// A server ACL that denies the new account's server blocks the room in the plan, with
/// what to do; one that allows it does not. (Both test servers are 127.0.0.1, which an ACL
/// cannot tell apart, so the denied room is only planned, never moved.)
#[test]
fn a_server_acl_that_denies_the_new_server_blocks_the_room() {
    let (org, personal) = (server_named("ORG"), server_named("PERSONAL"));
    let old_user = org.register("old");
    let new_user = personal.register("new");
    let room = old_user.create_room_with(json!({"name": "ACL", "preset": "public_chat"}));
    let (old, new) = (old_user.session(&org.url), new_user.session(&personal.url));
    let pair = Pair {
        old: &old,
        new: &new,
    };
    let plan = || plan::plan(&pair, std::slice::from_ref(&room), false, &Silent).unwrap();
    old_user.set_state(
        &room,
        "m.room.server_acl",
        "",
        json!({"allow": ["*"], "deny": ["evil.example"], "allow_ip_literals": true}),
    );
    let allowed = plan();
    assert!(allowed.rooms[0].decision.blockers.is_empty(), "{allowed:?}");
    old_user.set_state(
        &room,
        "m.room.server_acl",
        "",
        json!({"allow": ["*"], "deny": ["127.0.0.1"], "allow_ip_literals": true}),
    );
    let denied = plan();
    let b = &denied.rooms[0].decision.blockers[0];
    assert_eq!(b.kind, BlockerKind::AclDenies, "{b:?}");
    assert!(
        b.advice
            .starts_with("ask the room's admins to allow 127.0.0.1"),
        "{}",
        b.advice
    );
}
