//! The online operations against a real Synapse (started by scripts/test-all). These
//! tests FAIL, never skip, when no server is running.

use std::collections::BTreeMap;

use key_export::testkit::Device;
use key_export::{ExportedSession, SessionRef};
use m_direct::DirectMap;
use online::backup::{self, BackupKey};
use online::testkit::server;
use online::{direct, Client, Error};
use serde_json::value::RawValue;

fn raws(sessions: &[ExportedSession]) -> Vec<Box<RawValue>> {
    sessions
        .iter()
        .map(|s| RawValue::from_string(s.to_json()).unwrap())
        .collect()
}

fn index_of(entry: &serde_json::Value) -> u32 {
    use base64::Engine;
    let k = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(entry["session_key"].as_str().unwrap())
        .unwrap();
    u32::from_be_bytes(k[1..5].try_into().unwrap())
}

/// (room, session) → (first index, session_key) of what the backup holds.
fn backup_contents(client: &Client, key: &BackupKey) -> BTreeMap<(String, String), (u32, String)> {
    let info = backup::current(client).unwrap().unwrap();
    backup::download(client, &info, key, &|_| true)
        .unwrap()
        .entries
        .iter()
        .map(|e| {
            let v: serde_json::Value = serde_json::from_str(e).unwrap();
            let id = (
                v["room_id"].as_str().unwrap().to_owned(),
                v["session_id"].as_str().unwrap().to_owned(),
            );
            (
                id,
                (index_of(&v), v["session_key"].as_str().unwrap().to_owned()),
            )
        })
        .collect()
}

#[test]
fn whoami_and_m_direct_get_merge_put() {
    let hs = server();
    let alice = hs.register("alice");
    assert_eq!(alice.client.whoami().unwrap().user_id, alice.user_id);
    // No m.direct yet: the server answers 404, which is an empty map.
    assert!(direct::download(&alice.client, &alice.user_id)
        .unwrap()
        .is_empty());
    let room_v12 = alice.create_room("dm with bob");
    assert!(
        !room_v12.contains(':'),
        "Synapse 1.163 makes room version 12 rooms: {room_v12}"
    );
    let existing = DirectMap::parse(
        r#"{"@bob:localhost": ["!old:localhost"], "@x:localhost": ["!x:localhost"]}"#,
    )
    .unwrap();
    direct::replace(&alice.client, &alice.user_id, &existing).unwrap();
    let new = DirectMap::parse(&format!(r#"{{"@bob:localhost": ["{room_v12}", "!old:localhost"], "@carol:localhost": ["!c:localhost"]}}"#)).unwrap();
    let plan = direct::plan(&alice.client, &alice.user_id, &new).unwrap();
    assert_eq!(
        plan.added,
        [
            ("@bob:localhost".to_owned(), room_v12.clone()),
            ("@carol:localhost".to_owned(), "!c:localhost".to_owned())
        ]
    );
    let done = direct::merge_into(&alice.client, &alice.user_id, &new).unwrap();
    assert_eq!((done.added, done.writes), (plan.added, 1));
    let now = direct::download(&alice.client, &alice.user_id).unwrap();
    assert_eq!(
        now.to_value(),
        serde_json::json!({"@bob:localhost": ["!old:localhost", room_v12], "@carol:localhost": ["!c:localhost"], "@x:localhost": ["!x:localhost"]})
    );
    // Merging the same again adds nothing and writes nothing.
    let again = direct::merge_into(&alice.client, &alice.user_id, &new).unwrap();
    assert_eq!((again.added.len(), again.writes), (0, 0));
}

#[test]
fn keys_go_up_and_come_back_down_identical() {
    let hs = server();
    let user = hs.register("keys");
    let room_v12 = user.create_room("moving");
    let (key, _) = BackupKey::generate();
    assert!(
        backup::current(&user.client).unwrap().is_none(),
        "no backup yet"
    );
    backup::create_version(&user.client, &key).unwrap();
    let info = backup::current(&user.client).unwrap().unwrap();
    let dev = Device::new();
    let mut exported: Vec<ExportedSession> = (0..2500)
        .map(|i| {
            dev.new_session(if i % 2 == 0 {
                &room_v12
            } else {
                "!other:localhost"
            })
            .export_at((i % 7) as u32)
        })
        .collect();
    exported[3].forwarding_curve25519_key_chain = vec![Device::new().curve25519().to_owned()];
    let raw = raws(&exported);
    let parsed: Vec<SessionRef<'_>> = raw.iter().map(|r| SessionRef::parse(r)).collect();
    let refs: Vec<&SessionRef<'_>> = parsed.iter().collect();
    let seen = std::sync::atomic::AtomicUsize::new(0);
    let report = backup::upload(&user.client, &info, &key, &refs, 1000, &|n| {
        seen.store(n, std::sync::atomic::Ordering::Relaxed);
    })
    .unwrap();
    assert_eq!(
        (report.sent, report.count_before, report.count_after),
        (2500, 0, 2500)
    );
    assert_eq!(seen.into_inner(), 2500);
    let held = backup_contents(&user.client, &key);
    let want: BTreeMap<(String, String), (u32, String)> = exported
        .iter()
        .enumerate()
        .map(|(i, s)| {
            (
                (s.room_id.clone(), s.session_id.clone()),
                ((i % 7) as u32, s.session_key.0.to_string()),
            )
        })
        .collect();
    assert_eq!(held, want);
    // The downloaded entries are whole sessions: the forwarding chain and unknown fields came back.
    let downloaded = backup::download(&user.client, &info, &key, &|r| r == room_v12).unwrap();
    assert_eq!(downloaded.rooms, 1);
    let entries = downloaded.entries;
    assert_eq!(entries.len(), 1250);
    let back: Vec<ExportedSession> = entries
        .iter()
        .map(|e| {
            let mut s: ExportedSession = serde_json::from_str(e).unwrap();
            let mark = s.other.remove(key_export::session::FROM_BACKUP);
            assert_eq!(
                mark,
                Some(serde_json::Value::Bool(true)),
                "marked as from a backup"
            );
            s
        })
        .collect();
    let original: BTreeMap<&str, &ExportedSession> = exported
        .iter()
        .map(|s| (s.session_id.as_str(), s))
        .collect();
    for b in &back {
        assert_eq!(&b, &original[b.session_id.as_str()]);
    }
    // A rerun is safe and adds nothing.
    let again = backup::upload(
        &user.client,
        &backup::current(&user.client).unwrap().unwrap(),
        &key,
        &refs,
        1000,
        &|_| {},
    )
    .unwrap();
    assert_eq!((again.count_before, again.count_after), (2500, 2500));
}

/// The shared-history flag (MSC4268) goes into the backup and comes back out exactly as
/// each session had it: each spelling true and false, and no flag at all.
#[test]
fn shared_history_goes_up_and_comes_back_exactly() {
    use key_export::testkit::{shared_history_cases, shared_history_fields};
    let hs = server();
    let user = hs.register("shared");
    let (key, _) = BackupKey::generate();
    backup::create_version(&user.client, &key).unwrap();
    let info = backup::current(&user.client).unwrap().unwrap();
    let cases = shared_history_cases("!shared:localhost");
    let raw = raws(&cases);
    let parsed: Vec<SessionRef<'_>> = raw.iter().map(|r| SessionRef::parse(r)).collect();
    let refs: Vec<&SessionRef<'_>> = parsed.iter().collect();
    backup::upload(&user.client, &info, &key, &refs, 1000, &|_| {}).unwrap();
    let info = backup::current(&user.client).unwrap().unwrap();
    let down = backup::download(&user.client, &info, &key, &|_| true).unwrap();
    let flags = |entry: &str| {
        let v: serde_json::Value = serde_json::from_str(entry).unwrap();
        let id = v["session_id"].as_str().unwrap().to_owned();
        (id, shared_history_fields(entry))
    };
    let got: BTreeMap<_, _> = down.entries.iter().map(|e| flags(e)).collect();
    let want: BTreeMap<_, _> = cases.iter().map(|s| flags(&s.to_json())).collect();
    assert_eq!(got.len(), 7);
    assert_eq!(got, want);
}

#[test]
fn the_server_keeps_the_better_copy() {
    let hs = server();
    let user = hs.register("better");
    let (key, _) = BackupKey::generate();
    backup::create_version(&user.client, &key).unwrap();
    let mut s = Device::new().new_session("!r:localhost");
    let worse = s.export_at(9);
    let better = s.export_at(2);
    for copy in [&worse, &better, &worse] {
        let raw = raws(std::slice::from_ref(copy));
        let parsed = SessionRef::parse(&raw[0]);
        let info = backup::current(&user.client).unwrap().unwrap();
        backup::upload(&user.client, &info, &key, &[&parsed], 100, &|_| {}).unwrap();
    }
    let held = backup_contents(&user.client, &key);
    assert_eq!(held.values().next().unwrap().0, 2);
}

#[test]
fn a_wrong_recovery_key_uploads_nothing() {
    let hs = server();
    let user = hs.register("wrongkey");
    let (key, _) = BackupKey::generate();
    let (other, _) = BackupKey::generate();
    backup::create_version(&user.client, &key).unwrap();
    let info = backup::current(&user.client).unwrap().unwrap();
    let exported = vec![Device::new().new_session("!r:localhost").export_at(0)];
    let raw = raws(&exported);
    let parsed = SessionRef::parse(&raw[0]);
    let err = backup::upload(&user.client, &info, &other, &[&parsed], 100, &|_| {
        panic!("nothing may be sent")
    })
    .unwrap_err();
    assert!(matches!(err, Error::BackupKeyMismatch { .. }), "{err}");
    assert_eq!(backup::current(&user.client).unwrap().unwrap().count, 0);
    assert!(matches!(
        backup::download(&user.client, &info, &other, &|_| true),
        Err(Error::BackupKeyMismatch { .. })
    ));
}

#[test]
fn a_replaced_backup_version_stops_the_upload() {
    let hs = server();
    let user = hs.register("replaced");
    let (key, _) = BackupKey::generate();
    backup::create_version(&user.client, &key).unwrap();
    let old = backup::current(&user.client).unwrap().unwrap();
    backup::create_version(&user.client, &key).unwrap();
    let exported = vec![Device::new().new_session("!r:localhost").export_at(0)];
    let raw = raws(&exported);
    let parsed = SessionRef::parse(&raw[0]);
    let err = backup::upload(&user.client, &old, &key, &[&parsed], 100, &|_| {}).unwrap_err();
    assert!(
        matches!(err, Error::WrongBackupVersion { uploaded: 0 }),
        "{err}"
    );
    assert!(err.to_string().contains("run again"));
}

#[test]
fn password_login_waits_out_rate_limits_and_logs_out() {
    // The test server keeps rc_login tight (burst 2, 0.5/s), so the third login in a row
    // gets HTTP 429 with retry_after_ms, which the client must wait out.
    let hs = server();
    let user = hs.register("ratelimit");
    let mut clients = Vec::new();
    let mut waits = 0;
    let started = std::time::Instant::now();
    for _ in 0..4 {
        let c = Client::login_password(hs.homeserver(), &user.user_id, &user.password).unwrap();
        waits += c.rate_limit_waits();
        assert_eq!(c.whoami().unwrap().user_id, user.user_id);
        clients.push(c);
    }
    assert!(waits >= 1, "the server rate-limited at least one login");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "bounded in time"
    );
    for c in &clients {
        c.logout().unwrap();
        // The token is gone after logout, and its refresh token with it.
        let after = c.whoami();
        assert!(
            matches!(after, Err(Error::SessionEnded { .. })),
            "{after:?}"
        );
    }
    let bad = Client::login_password(hs.homeserver(), &user.user_id, "wrong password");
    assert!(
        matches!(bad, Err(Error::Api { status: 403, .. })),
        "{bad:?}"
    );
}

/// Backup entries are not authenticated: anyone with the account's token can store one,
/// encrypted to the public key. Entries that do not decrypt, whose contents name another
/// room or session than the server stores them under, or that are not valid sessions are
/// left out and reported; the rest come back marked as from a backup.
#[test]
fn planted_backup_entries_are_left_out_and_reported() {
    use backup::{Encryptor, KeyBackupData, SessionData, SkipReason};
    let user = server().register("planted");
    let (key, _) = BackupKey::generate();
    let version = backup::create_version(&user.client, &key).unwrap();
    let info = backup::current(&user.client).unwrap().unwrap();
    let device = Device::new();
    let genuine = device.new_session("!room:localhost").export_at(0);
    let raw = raws(std::slice::from_ref(&genuine));
    let parsed = SessionRef::parse(&raw[0]);
    backup::upload(&user.client, &info, &key, &[&parsed], 10, &|_| {}).unwrap();
    let enc = Encryptor::new(&info, &key).unwrap();
    let plant = |room: &str, session: &str, data: SessionData| {
        let body = serde_json::to_vec(&KeyBackupData {
            first_message_index: 0,
            forwarded_count: 0,
            is_verified: false,
            session_data: data,
        })
        .unwrap();
        user.client
            .call(
                "plant",
                online::client::Method::Put,
                &["v3", "room_keys", "keys", room, session],
                &[("version", version.as_str())],
                online::client::Body::Json(&body),
            )
            .unwrap();
    };
    // Its contents say another room: it would be imported into a room it was not stored for.
    let elsewhere = device.new_session("!stored:localhost").export_at(0);
    let mut v: serde_json::Value = serde_json::from_str(&elsewhere.to_json()).unwrap();
    v["room_id"] = "!victim:localhost".into();
    plant(
        "!stored:localhost",
        &elsewhere.session_id,
        enc.encrypt_payload(v.to_string().as_bytes()).unwrap(),
    );
    // Does not decrypt.
    let mut broken = enc.encrypt_payload(b"{}").unwrap();
    broken.mac = "AAAAAAAAAAA".into();
    plant("!broken:localhost", "sessionB", broken);
    // Decrypts, but is no valid session.
    plant(
        "!junk:localhost",
        "sessionC",
        enc.encrypt_payload(br#"{"algorithm": "m.megolm.v1.aes-sha2"}"#)
            .unwrap(),
    );
    let got = backup::download(&user.client, &info, &key, &|_| true).unwrap();
    assert_eq!(got.entries.len(), 1, "only the genuine entry");
    let entry: serde_json::Value = serde_json::from_str(&got.entries[0]).unwrap();
    assert_eq!(entry["session_id"], genuine.session_id.as_str());
    assert_eq!(entry[key_export::session::FROM_BACKUP], true);
    let mut reasons: Vec<(String, String)> = got
        .skipped
        .iter()
        .map(|s| {
            let kind = match &s.reason {
                SkipReason::Undecryptable(_) => "undecryptable",
                SkipReason::NotAnObject(_) => "not an object",
                SkipReason::Mismatch { field, .. } => field.as_str(),
                SkipReason::Invalid(_) => "invalid",
            };
            (s.room_id.clone(), kind.to_owned())
        })
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            ("!broken:localhost".to_owned(), "undecryptable".to_owned()),
            ("!junk:localhost".to_owned(), "invalid".to_owned()),
            ("!stored:localhost".to_owned(), "room_id".to_owned()),
        ]
    );
}
