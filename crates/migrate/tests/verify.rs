//! The result checked as the new account, against the test Synapses: a move of an
//! encrypted room whose messages were made by a real Megolm session (vodozemac), the keys
//! of some of them in the export that moves, then the count the new account finds.
//!
//! These tests need the test Synapses (scripts/test-all starts them) and FAIL without.

use std::sync::Arc;

use key_export::pipeline::Source;
use key_export::testkit::{export_file, Device, TestSession};
use key_export::Passphrase;
use migrate::account_move::{self, CopyWhat, KeySources, Request};
use migrate::rooms::invite_rules::AllowInvites;
use migrate::rooms::moving::MoveOptions;
use migrate::rooms::plan::Pair;
use migrate::verify::{self, Budget, MissingSession, Verification};
use migrate::Silent;
use online::backup::{self, BackupKey, Recovery};
use online::testkit::{server_named, Action, Hook, Proxy, TestUser};
use serde_json::json;

fn send(user: &TestUser, room: &str, session: &mut TestSession, text: &str) {
    let ciphertext = session.encrypt(text);
    user.send(
        room,
        "m.room.encrypted",
        json!({"algorithm": "m.megolm.v1.aes-sha2", "sender_key": "test", "device_id": "TEST",
            "session_id": session.session_id(), "ciphertext": ciphertext}),
    );
}

fn missing<'a>(v: &'a Verification, session: &str) -> &'a MissingSession {
    v.rooms[0]
        .missing
        .iter()
        .find(|m| m.session_id.as_deref() == Some(session))
        .unwrap_or_else(|| panic!("{session} missing from {:#?}", v.rooms[0].missing))
}

#[test]
fn the_new_account_counts_the_messages_whose_keys_it_holds() {
    let (org, personal) = (server_named("ORG"), server_named("PERSONAL"));
    let (old_user, new_user) = (org.register("old"), personal.register("new"));
    let room = old_user.create_room_with(json!({"name": "Encrypted", "preset": "private_chat",
        "initial_state": [{"type": "m.room.encryption", "state_key": "",
            "content": {"algorithm": "m.megolm.v1.aes-sha2"}}]}));
    let device = Device::new();
    let (mut whole, mut later, mut absent) = (
        device.new_session(&room),
        device.new_session(&room),
        device.new_session(&room),
    );
    for (session, texts) in [
        (&mut whole, ["w0", "w1"].as_slice()),
        (&mut later, &["l0", "l1"]),
        (&mut absent, &["a0"]),
    ] {
        for t in texts {
            send(&old_user, &room, session, t);
        }
    }
    // The export holds `whole` from its start, `later` from its second message only.
    let export = export_file(&[whole.export_at(0), later.export_at(1)], "pass", 10).unwrap();
    let (key, recovery_key) = BackupKey::generate();
    backup::create_version(&new_user.client, &key).unwrap();
    let (old, new) = (old_user.session(&org.url), new_user.session(&personal.url));
    let pair = Pair {
        old: &old,
        new: &new,
    };
    let dir = tempfile::tempdir().unwrap();
    let request = Request {
        rooms: vec![room.clone()],
        keys: KeySources {
            exports: vec![Source {
                name: "phone".into(),
                reader: export.as_bytes(),
                len: export.len(),
                passphrase: Passphrase::new("pass".into()),
            }],
            read: Default::default(),
            old_recovery: None,
            new_recovery: Some(Recovery::key(&recovery_key).unwrap()),
        },
        copy: CopyWhat::NOTHING,
        options: MoveOptions::new(dir.path().join("journal.jsonl")),
        dry_run: false,
        allow_invites: AllowInvites::No,
        confirm: Box::new(|_| false),
    };
    let report = account_move::run(&pair, request, &Silent).unwrap();

    let v = report
        .verification
        .as_ref()
        .expect("a run checks its result");
    assert_eq!((v.encrypted, v.with_keys), (5, 3), "{v:#?}");
    let r = &v.rooms[0];
    assert!(r.joined_on_new_server && r.whole_timeline, "{r:#?}");
    assert_eq!(r.joined_on_old_server, Some(true));
    assert_eq!(r.missing.len(), 2, "{r:#?}");
    let m = missing(v, later.session_id());
    assert_eq!(
        (m.events, m.backup_from_index, m.since_joined),
        (1, Some(1), 0)
    );
    let m = missing(v, absent.session_id());
    assert_eq!(
        (m.events, m.backup_from_index, m.since_joined),
        (1, None, 0)
    );
    let md = report.markdown();
    assert!(md.contains("## Checking the result"), "{md}");
    assert!(md.contains("**3 of 5 encrypted messages"), "{md}");

    // A message sent after the join, in a session no source had: counted as such.
    send(&old_user, &room, &mut absent, "a1");
    let check = || {
        verify::verify(
            &pair,
            std::slice::from_ref(&room),
            Budget::default(),
            &Silent,
        )
        .unwrap()
    };
    let started = std::time::Instant::now();
    let mut again = check();
    while again.encrypted < 6 && started.elapsed().as_secs() < 20 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        again = check(); // over federation, to the new account's server
    }
    assert_eq!((again.encrypted, again.with_keys), (6, 3));
    let m = missing(&again, absent.session_id());
    assert_eq!((m.events, m.since_joined), (2, 1), "{m:?}");

    // A budget of 2: the newest two only, and said so.
    let newest = verify::verify(
        &pair,
        std::slice::from_ref(&room),
        Budget { events_per_room: 2 },
        &Silent,
    )
    .unwrap();
    assert_eq!(
        (newest.encrypted, newest.rooms[0].whole_timeline),
        (2, false)
    );
    // A budget of none: nothing read, nothing asked for.
    let none = verify::verify(
        &pair,
        std::slice::from_ref(&room),
        Budget { events_per_room: 0 },
        &Silent,
    )
    .unwrap();
    assert_eq!((none.encrypted, none.rooms[0].whole_timeline), (0, false));

    // A server without /mutual_rooms: the membership is read instead, same answer.
    let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let hook: Hook = {
        let asked = asked.clone();
        Arc::new(move |_, _, path| match path.contains("/mutual_rooms") {
            true => {
                asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Action::Answer(404, r#"{"errcode":"M_UNRECOGNIZED","error":"no"}"#.into())
            }
            false => Action::Forward,
        })
    };
    let proxy = Proxy::start(&org.url, Arc::default(), hook);
    let old_via_proxy = old_user.session(&proxy.url);
    let without = Pair {
        old: &old_via_proxy,
        new: &new,
    };
    let read = verify::verify(
        &without,
        std::slice::from_ref(&room),
        Budget::default(),
        &Silent,
    )
    .unwrap();
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(read.rooms[0].joined_on_old_server, Some(true));
    assert_eq!(read.rooms, again.rooms);

    // After the old account leaves, its server no longer shares the room with the new one;
    // the new account's membership is still read as of the leave.
    online::rooms::leave(&old_user.client, &room, None).unwrap();
    let left = check();
    assert_eq!(left.rooms[0].joined_on_old_server, Some(true), "{left:#?}");
    assert_eq!(left.encrypted, 6);
}

#[test]
fn a_new_account_without_a_backup_has_no_keys_there() {
    let (org, personal) = (server_named("ORG"), server_named("PERSONAL"));
    let (old_user, new_user) = (org.register("old"), personal.register("new"));
    let room = old_user.create_room_with(json!({"name": "Public", "preset": "public_chat"}));
    let mut session = Device::new().new_session(&room);
    send(&old_user, &room, &mut session, "hello");
    new_user.join(&room, &[old_user.server_name().to_owned()]);
    let (old, new) = (old_user.session(&org.url), new_user.session(&personal.url));
    let pair = Pair {
        old: &old,
        new: &new,
    };
    let v = verify::verify(
        &pair,
        std::slice::from_ref(&room),
        Budget::default(),
        &Silent,
    )
    .unwrap();
    assert_eq!(v.backup_version, None);
    assert_eq!((v.encrypted, v.with_keys), (1, 0));
    assert_eq!(v.rooms[0].missing[0].backup_from_index, None);
    // A room the new account is not in: not joined, nothing it can see.
    let other = old_user.create_room_with(json!({"name": "Elsewhere", "preset": "private_chat"}));
    // Checked side by side, reported in the order asked.
    let many: Vec<String> = [&room, &other, &room, &other, &room]
        .into_iter()
        .cloned()
        .collect();
    let v = verify::verify(&pair, &many, Budget::default(), &Silent).unwrap();
    let ids: Vec<&str> = v.rooms.iter().map(|r| r.room_id.as_str()).collect();
    assert_eq!(ids, many.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!v.rooms[1].joined_on_new_server, "{v:#?}");
    assert_eq!(v.rooms[1].joined_on_old_server, Some(false));
    assert_eq!((v.encrypted, v.with_keys), (3, 0));
}
