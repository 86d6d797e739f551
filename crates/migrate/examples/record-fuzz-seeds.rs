//! Records the seeds of the fuzz targets over what servers send (`fuzz/seeds/<target>/`)
//! from the test Synapses, as they answer: room state, `/messages` pages, a whole key
//! backup sealed to `migrate::fuzz::BACKUP_KEY`, the OAuth 2.0 metadata of the
//! next-generation server (MAS), Synapse's `/versions`, `m.direct` as Synapse stores it, and
//! the rooms file, the plan and the journal of a real move between the two federating
//! servers. Run once, with the servers of scripts/test-all up, then commit the seeds:
//!
//! ```sh
//! cargo run -p migrate --features testkit --example record-fuzz-seeds -- fuzz/seeds
//! ```
//!
//! What no test server sends (a `.well-known`, a token answer) is written from the spec's
//! examples, and the answers other clients corrupt (`m.direct` with values that are not
//! lists) are added beside the recorded ones; each file says which it is by its name.

use std::path::{Path, PathBuf};

use migrate::rooms::moving::{self, MoveOptions};
use migrate::rooms::plan::Pair;
use migrate::Silent;
use online::backup::{self, BackupKey};
use online::client::{Body, Method};
use online::testkit::{nextgen, server_named, TestUser};
use serde_json::json;

fn main() {
    let out = PathBuf::from(std::env::args().nth(1).expect("the seeds folder"));
    let (org, personal) = (server_named("ORG"), server_named("PERSONAL"));
    let old = org.register("seedold");
    let new = personal.register("seednew");
    let friend = org.register("seedfriend");
    let rooms = rooms_of(&old, &new, &friend);
    for (name, room) in &rooms {
        let state = get(&old, &["v3", "rooms", room, "state"], &[]);
        write(&out, "room_state", &format!("recorded-{name}.json"), &state);
        let filter = json!({"types": ["m.room.history_visibility"]}).to_string();
        let query = [("dir", "b"), ("limit", "100"), ("filter", filter.as_str())];
        let page = get(&old, &["v3", "rooms", room, "messages"], &query);
        write(&out, "messages", &format!("recorded-{name}.json"), &page);
    }
    record_backup(&out, &old, &rooms);
    record_metadata(&out, &org.url);
    record_direct(&out, &old, &friend, &rooms);
    record_move(&out, &org.url, &personal.url, &old, &new, &rooms);
}

/// Rooms of several kinds, with history-visibility changes and messages.
fn rooms_of(old: &TestUser, new: &TestUser, friend: &TestUser) -> Vec<(&'static str, String)> {
    let public = old.create_room_with(json!({"preset": "public_chat", "name": "Public"}));
    let private = old.create_room_with(json!({
        "preset": "private_chat", "name": "Private", "room_version": "10",
        "power_level_content_override": {"users": {old.user_id.clone(): 100, friend.user_id.clone(): 50}},
        "initial_state": [{"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}],
    }));
    old.invite(&private, &friend.user_id);
    friend.join(&private, &[]);
    let dm = old.create_room_with(json!({"preset": "trusted_private_chat", "is_direct": true,
        "invite": [friend.user_id.clone()]}));
    friend.join(&dm, &[]);
    let v12 = old.create_room_with(json!({"room_version": "12", "name": "Twelve"}));
    let banned = old.create_room("banned");
    old.invite(&banned, &new.user_id);
    old.set_state(
        &banned,
        "m.room.member",
        &new.user_id,
        json!({"membership": "ban"}),
    );
    for (room, settings) in [
        (&private, ["joined", "invited", "shared"]),
        (&public, ["world_readable", "joined", "shared"]),
    ] {
        for v in settings {
            old.say(room, &format!("before {v}"));
            old.set_state(
                room,
                "m.room.history_visibility",
                "",
                json!({"history_visibility": v}),
            );
        }
        old.say(room, "last");
    }
    vec![
        ("public", public),
        ("private", private),
        ("dm", dm),
        ("v12", v12),
        ("banned", banned),
    ]
}

/// A whole-backup answer: one session a room, sealed to the seeds' key, with a chunk-size
/// byte first (the target splits the answer by it).
fn record_backup(out: &Path, old: &TestUser, rooms: &[(&str, String)]) {
    let key = BackupKey::parse(migrate::fuzz::BACKUP_KEY).unwrap();
    backup::create_version(&old.client, &key).unwrap();
    let info = backup::version::current(&old.client).unwrap().unwrap();
    let device = key_export::testkit::Device::new();
    let sessions: Vec<_> = rooms
        .iter()
        .map(|(_, r)| device.new_session(r).export_at(0))
        .collect();
    let json = key_export::testkit::to_json(&sessions);
    let text = std::str::from_utf8(&json).unwrap();
    let refs: Vec<key_export::session::SessionRef<'_>> =
        serde_json::from_str::<Vec<&serde_json::value::RawValue>>(text)
            .unwrap()
            .into_iter()
            .map(key_export::session::SessionRef::parse)
            .collect();
    let refs: Vec<&_> = refs.iter().collect();
    backup::upload(&old.client, &info, &key, &refs, 100, &|_| {}).unwrap();
    let version = info.version.clone();
    let whole = get(
        old,
        &["v3", "room_keys", "keys"],
        &[("version", version.as_str())],
    );
    for size in [1u8, 7, 63] {
        let mut seed = vec![size];
        seed.extend_from_slice(&whole);
        write(
            out,
            "backup_stream",
            &format!("recorded-chunk{size}.bin"),
            &seed,
        );
    }
}

/// The next-generation server's OAuth 2.0 metadata (kind byte 0x80: a loopback homeserver),
/// a `.well-known` (kind 1), a token answer (kind 2) and Synapse's `/versions` (kind 3).
fn record_metadata(out: &Path, synapse: &str) {
    let ng = nextgen();
    let meta = http_get(&format!("{}/_matrix/client/v1/auth_metadata", ng.url));
    write(
        out,
        "metadata",
        "recorded-auth-metadata.bin",
        &[&[0x80u8][..], &meta].concat(),
    );
    write(
        out,
        "metadata",
        "refused-loopback-auth-metadata-for-a-remote-server.bin",
        &[&[0u8][..], &meta].concat(),
    );
    let wk = br#"{"m.homeserver": {"base_url": "https://matrix.example.org"}, "m.identity_server": {"base_url": "https://identity.example.org"}}"#;
    write(
        out,
        "metadata",
        "spec-well-known.bin",
        &[&[1u8][..], wk].concat(),
    );
    let granted = br#"{"access_token": "mat_x", "token_type": "Bearer", "expires_in": 300, "refresh_token": "mar_y", "scope": "urn:matrix:client:api:*"}"#;
    write(
        out,
        "metadata",
        "spec-token-answer.bin",
        &[&[2u8][..], granted].concat(),
    );
    let versions = http_get(&format!("{synapse}/_matrix/client/versions"));
    write(
        out,
        "metadata",
        "recorded-versions.bin",
        &[&[3u8][..], &versions].concat(),
    );
}

/// `m.direct` as Synapse stores it after a client wrote it, and two maps other clients
/// corrupted (element-web#27495: a value that is not a list; a null), split by a NUL.
fn record_direct(out: &Path, old: &TestUser, friend: &TestUser, rooms: &[(&str, String)]) {
    let dm = &rooms.iter().find(|(n, _)| *n == "dm").unwrap().1;
    let mut map = m_direct::DirectMap::new();
    map.add(&friend.user_id, dm);
    online::direct::merge_into(&old.client, &old.user_id, &map).unwrap();
    let stored = get(
        old,
        &["v3", "user", &old.user_id, "account_data", "m.direct"],
        &[],
    );
    let corrupt = format!(
        r#"{{"{}": "{dm}", "@x:example.org": null, "@me:example.org": ["{dm}"]}}"#,
        friend.user_id
    );
    write(out, "m_direct", "recorded.json", &stored);
    write(
        out,
        "m_direct",
        "recorded-and-corrupt.bin",
        &[&stored[..], &[0], corrupt.as_bytes()].concat(),
    );
}

/// The rooms file of the old account, the plan `move init` writes, and the journal of a
/// real move of two rooms (with the leave).
fn record_move(
    out: &Path,
    org: &str,
    personal: &str,
    old: &TestUser,
    new: &TestUser,
    rooms: &[(&str, String)],
) {
    let (old_s, new_s) = (old.session(org), new.session(personal));
    let pair = Pair {
        old: &old_s,
        new: &new_s,
    };
    let listed = migrate::rooms::list::list(&old_s, &Silent).unwrap();
    let text = migrate::rooms::rooms_file::render(&listed);
    write(out, "rooms_file", "recorded.txt", text.as_bytes());
    let template = migrate::plan_file::template(
        &migrate::plan_file::TemplateAccount {
            user: &old.user_id,
            homeserver: Some(org),
            token_file: None,
        },
        &migrate::plan_file::TemplateAccount {
            user: &new.user_id,
            homeserver: Some(personal),
            token_file: None,
        },
    );
    write(
        out,
        "plan_file",
        "template-move-init.toml",
        template.as_bytes(),
    );
    let dir = tempfile::tempdir().unwrap();
    let mut options = MoveOptions::new(dir.path().join("journal.jsonl"));
    options.leave = true;
    let moving: Vec<String> = rooms
        .iter()
        .filter(|(n, _)| matches!(*n, "public" | "dm"))
        .map(|(_, r)| r.clone())
        .collect();
    moving::run(&pair, &moving, &options, &Silent).unwrap();
    let journal = std::fs::read(&options.journal).unwrap();
    write(out, "journal", "recorded.jsonl", &journal);
    write(
        out,
        "journal",
        "recorded-cut.jsonl",
        &journal[..journal.len() * 2 / 3],
    );
}

fn get(user: &TestUser, path: &[&str], query: &[(&str, &str)]) -> Vec<u8> {
    user.client
        .call("record a seed", Method::Get, path, query, Body::None)
        .unwrap()
}

fn http_get(url: &str) -> Vec<u8> {
    let resp = ureq::get(url).call().unwrap();
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut resp.into_reader(), &mut body).unwrap();
    body
}

fn write(out: &Path, target: &str, name: &str, data: &[u8]) {
    let dir = out.join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), data).unwrap();
    println!("{target}/{name}: {} bytes", data.len());
}
