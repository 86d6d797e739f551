use super::*;
use key_export::testkit::Device;
use serde_json::json;

const ROOM: &str = "!room:example.org";

fn event(content: serde_json::Value, membership: Option<&str>) -> TimelineEvent {
    serde_json::from_value(json!({
        "type": "m.room.encrypted",
        "event_id": "$e",
        "content": content,
        "unsigned": membership.map(|m| json!({"membership": m})).unwrap_or(json!({})),
    }))
    .unwrap()
}

/// The next message of `s`, as an event's content.
fn next(s: &mut key_export::testkit::TestSession, text: &str) -> serde_json::Value {
    let ciphertext = s.encrypt(text);
    megolm(s.session_id(), &ciphertext)
}

fn megolm(session: &str, ciphertext: &str) -> serde_json::Value {
    json!({"algorithm": "m.megolm.v1.aes-sha2", "session_id": session, "ciphertext": ciphertext,
        "sender_key": "k", "device_id": "D"})
}

fn stored_from(room: &str, session: &str, index: u32) -> ((String, String), StoredSession) {
    (
        (room.to_owned(), session.to_owned()),
        StoredSession {
            first_message_index: index,
            forwarded_count: 0,
            is_verified: false,
        },
    )
}

#[test]
fn each_event_is_judged_by_its_session_and_its_index() {
    let device = Device::new();
    let (mut full, mut later, mut absent, mut elsewhere) = (
        device.new_session(ROOM),
        device.new_session(ROOM),
        device.new_session(ROOM),
        device.new_session(ROOM),
    );
    let mut events = Vec::new();
    for i in 0..3 {
        events.push(event(next(&mut full, &format!("f{i}")), Some("leave")));
    }
    // Indices 0, 1, 2: the backup holds this one from index 2 only.
    for i in 0..3 {
        events.push(event(next(&mut later, &format!("l{i}")), None));
    }
    events.push(event(next(&mut absent, "a0"), Some("leave")));
    events.push(event(next(&mut absent, "a1"), Some("join")));
    // Held, but for another room: no client decrypts it here.
    events.push(event(next(&mut elsewhere, "e"), None));
    // No session named; a ciphertext that is not a megolm message; another algorithm.
    events.push(event(
        json!({"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AwgA"}),
        None,
    ));
    events.push(event(megolm("broken", "not base64!"), None));
    events.push(event(
        json!({"algorithm": "m.olm.v1.curve25519-aes-sha2", "session_id": "olm", "ciphertext": full.encrypt("x")}),
        None,
    ));
    let stored: backup::Stored = [
        stored_from(ROOM, full.session_id(), 0),
        stored_from(ROOM, later.session_id(), 2),
        stored_from("!other:example.org", elsewhere.session_id(), 0),
        stored_from(ROOM, "broken", 0),
    ]
    .into_iter()
    .collect();

    let check = judge(ROOM, &events, &stored);
    assert_eq!((check.encrypted, check.with_keys), (12, 4));
    let by_session = |s: Option<&str>| {
        check
            .missing
            .iter()
            .find(|m| m.session_id.as_deref() == s)
            .unwrap_or_else(|| panic!("{s:?} missing from {:#?}", check.missing))
            .clone()
    };
    let m = by_session(Some(later.session_id()));
    assert_eq!(
        (m.events, m.since_joined, m.backup_from_index),
        (2, 0, Some(2))
    );
    let m = by_session(Some(absent.session_id()));
    assert_eq!(
        (m.events, m.since_joined, m.backup_from_index),
        (2, 1, None)
    );
    let m = by_session(Some(elsewhere.session_id()));
    assert_eq!((m.events, m.backup_from_index), (1, None));
    assert_eq!(by_session(None).events, 1);
    assert_eq!(by_session(Some("broken")).events, 1, "held, but unreadable");
    assert_eq!(by_session(Some("olm")).events, 1);
    assert_eq!(check.missing.len(), 6);
    assert!(
        check.missing.windows(2).all(|w| w[0].events >= w[1].events),
        "most events first"
    );
}

#[test]
fn a_room_with_nothing_encrypted_has_nothing_missing() {
    let check = judge(ROOM, &[], &backup::Stored::new());
    assert_eq!((check.encrypted, check.with_keys), (0, 0));
    assert!(check.missing.is_empty());
}

#[test]
fn the_summary_says_n_of_m() {
    let v = Verification {
        backup_version: Some("1".into()),
        encrypted: 7,
        with_keys: 5,
        rooms: Vec::new(),
    };
    assert_eq!(
        v.summary_line(),
        "5 of 7 encrypted messages the new account can see have their keys in its backup"
    );
}
