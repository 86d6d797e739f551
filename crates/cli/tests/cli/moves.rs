//! `matrix-transplant move init|run|status` end to end, from an account on the
//! "organisation" Synapse to one on the "personal" Synapse (they federate on loopback;
//! scripts/test-all starts them), checked from the servers' side. These tests FAIL, never
//! skip, when the servers are not running.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::support::*;
use key_export::testkit::Device;
use key_export::SessionRef;
use online::backup::{self, BackupKey};
use online::testkit::{killer, server_named, Proxy, TestUser};
use online::{account, rooms};
use serde_json::{json, Value};

/// Two device exports, the old backup, six rooms of mixed kinds (five move, one of them
/// blocked), DMs, push rules and an ignore list.
struct World {
    old: TestUser,
    new: TestUser,
    bob: TestUser,
    /// Rooms by role.
    rooms: BTreeMap<&'static str, String>,
    /// (room, session) -> the index the new account's backup must end with.
    keys: BTreeMap<(String, String), u32>,
    new_key: BackupKey,
    s: Scratch,
}

impl World {
    fn room(&self, role: &str) -> &str {
        &self.rooms[role]
    }
    /// The rooms that move (the edited rooms file), in order.
    fn moving(&self) -> Vec<String> {
        ["dm", "private", "public", "knock", "blocked"]
            .iter()
            .map(|r| self.rooms[r].clone())
            .collect()
    }
    /// The moving rooms the new account can join (not the blocked one).
    fn movable(&self) -> Vec<String> {
        ["dm", "private", "public", "knock"]
            .iter()
            .map(|r| self.rooms[r].clone())
            .collect()
    }
}

fn world() -> World {
    let (org, personal) = (server_named("ORG"), server_named("PERSONAL"));
    let old = org.register("old");
    let bob = org.register("bob");
    let carol = org.register("carol");
    let new = personal.register("new");
    let mut rooms = BTreeMap::new();
    // A v12 DM, as Element makes one, in the old account's m.direct.
    let dm = element_dm(&old, &bob);
    rooms.insert("dm", dm);
    rooms.insert("private", old.create_room_with(json!({"name": "Private", "preset": "private_chat",
        "initial_state": [{"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}]})));
    rooms.insert(
        "public",
        old.create_room_with(
            json!({"name": "Public v10", "preset": "public_chat", "room_version": "10"}),
        ),
    );
    rooms.insert("knock", old.create_room_with(json!({"name": "Knock", "preset": "private_chat",
        "initial_state": [{"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "knock"}}]})));
    // Carol's room, where inviting needs 50 and the old account has 0: blocked.
    let blocked = room_old_cannot_invite(&carol, &old);
    rooms.insert("blocked", blocked);
    rooms.insert("staying", old.create_room("Staying"));

    // Keys: a laptop and a phone export, the old backup, and what the new backup has.
    let device = Device::new();
    let session = |role: &str| device.new_session(&rooms[role]);
    let (mut dm_s, mut priv_s, mut pub_s, mut knock_s, mut stay_s) = (
        session("dm"),
        session("private"),
        session("public"),
        session("knock"),
        session("staying"),
    );
    let s = Scratch::new();
    let laptop = [priv_s.export_at(5), dm_s.export_at(0), stay_s.export_at(0)];
    let phone = [priv_s.export_at(0), pub_s.export_at(3)];
    s.write("laptop.txt", export(&laptop, "laptop pass"));
    s.write("laptop.pass", "laptop pass");
    s.write("phone.txt", export(&phone, "phone pass"));
    s.write("phone.pass", "phone pass");
    let (old_key, old_text) = BackupKey::generate();
    back_up(
        &old,
        &old_key,
        &[
            dm_s.export_at(4),
            knock_s.export_at(0),
            stay_s.export_at(1),
            pub_s.export_at(1),
        ],
    );
    s.write("old-recovery.key", old_text.as_bytes());
    let (new_key, new_text) = BackupKey::generate();
    // The new account's backup holds the DM's session as good already, and the public
    // room's worse.
    back_up(&new, &new_key, &[dm_s.export_at(0), pub_s.export_at(2)]);
    s.write("new-recovery.key", new_text.as_bytes());
    let keys = [
        (&dm_s, "dm", 0),
        (&priv_s, "private", 0),
        (&pub_s, "public", 1),
        (&knock_s, "knock", 0),
    ]
    .iter()
    .map(|(t, role, i)| ((rooms[role].clone(), t.session_id().to_owned()), *i))
    .collect();

    // Account data.
    let c = &old.client;
    account::put_account_data(
        c,
        &old.user_id,
        "m.ignored_user_list",
        &json!({"ignored_users": {"@spam:example.org": {}}}),
    )
    .unwrap();
    account::put_push_rule(
        c,
        "content",
        "deploys",
        &json!({"pattern": "deploy", "actions": ["notify", {"set_tweak": "highlight"}]}),
    )
    .unwrap();
    account::put_push_rule(c, "room", &rooms["private"], &json!({"actions": []})).unwrap();
    account::put_push_rule(c, "room", &rooms["staying"], &json!({"actions": []})).unwrap();
    account::set_push_rule_enabled(c, "underride", ".m.rule.message", false).unwrap();
    rooms::set_displayname(c, &old.user_id, "Old Name").unwrap();
    s.write("old.token", &old.token);
    s.write("new.token", &new.token);
    World {
        old,
        new,
        bob,
        rooms,
        keys,
        new_key,
        s,
    }
}

/// A plan for the world, its accounts reached at these URLs.
fn plan_text(w: &World, old_url: &str, new_url: &str) -> String {
    format!(
        r#"rooms_file = "rooms.txt"
leave = true
rename_old = "(moved)"
[old]
user = "{}"
homeserver = "{old_url}"
token_file = "old.token"
[new]
user = "{}"
homeserver = "{new_url}"
token_file = "new.token"
[keys]
exports = [
  {{ file = "laptop.txt", passphrase_file = "laptop.pass" }},
  {{ file = "phone.txt", passphrase_file = "phone.pass" }},
]
old_recovery_key_file = "old-recovery.key"
new_recovery_key_file = "new-recovery.key"
[copy]
ignored_users = true
push_rules = true
"#,
        w.old.user_id, w.new.user_id
    )
}

/// What the new account's backup holds: (room, session) -> first known index.
fn backup_of(w: &World) -> BTreeMap<(String, String), u32> {
    let info = backup::current(&w.new.client).unwrap().unwrap();
    let got = backup::download(&w.new.client, &info, &w.new_key, &|_| true).unwrap();
    got.entries
        .iter()
        .map(|e| {
            let raw = serde_json::value::RawValue::from_string(e.to_string()).unwrap();
            let s = SessionRef::parse(&raw);
            (
                (s.room_id.to_string(), s.session_id.to_string()),
                s.first_known_index,
            )
        })
        .collect()
}

/// Invites of the new account in `room`, as the old account sees the timeline.
fn invites(w: &World, room: &str) -> usize {
    let page = rooms::messages(
        &w.old.client,
        room,
        None,
        rooms::Direction::Backwards,
        &["m.room.member"],
        100,
    )
    .unwrap();
    page.chunk
        .iter()
        .filter(|e| {
            e.state_key.as_deref() == Some(w.new.user_id.as_str())
                && e.content["membership"] == json!("invite")
        })
        .count()
}

/// The end state of a complete move, checked from the servers' side.
fn assert_moved(w: &World, when: &str) {
    assert_eq!(backup_of(w), w.keys, "{when}: the new backup");
    let direct = online::direct::download(&w.new.client, &w.new.user_id).unwrap();
    assert_eq!(
        direct.to_value(),
        json!({ w.bob.user_id.clone(): [w.room("dm")] }),
        "{when}"
    );
    let joined: BTreeSet<String> = rooms::joined_rooms(&w.new.client)
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(
        joined,
        w.movable().into_iter().collect::<BTreeSet<_>>(),
        "{when}"
    );
    let pl = rooms::state_content(&w.new.client, w.room("public"), "m.room.power_levels", "")
        .unwrap()
        .unwrap();
    assert_eq!(pl["users"][&w.new.user_id], json!(100), "{when}");
    for room in w.movable() {
        let expected = usize::from(room != w.room("public"));
        assert_eq!(invites(w, &room), expected, "{when}: invites into {room}");
    }
    let rules = account::push_rules(&w.new.client).unwrap();
    assert_eq!(
        account::find_rule(&rules, "content", "deploys").unwrap()["pattern"],
        json!("deploy"),
        "{when}"
    );
    assert!(
        account::find_rule(&rules, "room", w.room("private")).is_some(),
        "{when}"
    );
    assert!(
        account::find_rule(&rules, "room", w.room("staying")).is_none(),
        "{when}"
    );
    assert_eq!(
        account::find_rule(&rules, "underride", ".m.rule.message").unwrap()["enabled"],
        json!(false),
        "{when}"
    );
    assert_eq!(
        account::account_data(&w.new.client, &w.new.user_id, "m.ignored_user_list").unwrap(),
        Some(json!({"ignored_users": {"@spam:example.org": {}}})),
        "{when}"
    );
    // Renamed in the moved rooms only (its member event there), not in its profile.
    assert_eq!(
        rooms::displayname(&w.old.client, &w.old.user_id)
            .unwrap()
            .as_deref(),
        Some("Old Name"),
        "{when}"
    );
    // The names the old account's member events carried in a room, oldest first.
    let names_in = |room: &str| -> Vec<Value> {
        let page = rooms::messages(
            &w.old.client,
            room,
            None,
            rooms::Direction::Backwards,
            &["m.room.member"],
            100,
        )
        .unwrap();
        let mut names: Vec<Value> = page
            .chunk
            .iter()
            .filter(|e| e.state_key.as_deref() == Some(w.old.user_id.as_str()))
            .map(|e| e.content["displayname"].clone())
            .collect();
        names.reverse();
        names
    };
    let private = names_in(w.room("private"));
    assert!(
        private.contains(&json!("Old Name (moved)")) && private.last() == Some(&Value::Null),
        "{when}: renamed, then left: {private:?}"
    );
    assert!(
        !names_in(w.room("staying")).contains(&json!("Old Name (moved)")),
        "{when}: a room that stays is not told"
    );
    let old_joined: BTreeSet<String> = rooms::joined_rooms(&w.old.client)
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(
        old_joined,
        [w.room("blocked"), w.room("staying")]
            .map(str::to_owned)
            .into(),
        "{when}: the old account left the moved rooms only"
    );
}

/// Everything a dry run must not change, as the servers tell it.
fn server_state(w: &World) -> Value {
    let (o, n) = (&w.old.client, &w.new.client);
    let mut joined = rooms::joined_rooms(n).unwrap();
    joined.sort();
    let mut old_joined = rooms::joined_rooms(o).unwrap();
    old_joined.sort();
    json!({
        "new_joined": joined,
        "old_joined": old_joined,
        "backup": backup::current(n).unwrap().unwrap().count,
        "direct": online::direct::download(n, &w.new.user_id).unwrap().to_value(),
        "rules": account::push_rules(n).unwrap(),
        "ignored": account::account_data(n, &w.new.user_id, "m.ignored_user_list").unwrap(),
        "old_name": rooms::displayname(o, &w.old.user_id).unwrap(),
        "new_name": rooms::displayname(n, &w.new.user_id).unwrap(),
    })
}

/// The keys line `move status` must show: what the run's report says, in the journal's words.
fn saved_keys_line(report: &Value) -> String {
    let k = &report["keys"];
    let there = k["sessions"].as_u64().unwrap() - k["to_send"].as_u64().unwrap();
    format!(
        "{} sessions of {} rooms from {} sources; {} sent to backup version {}, {there} {} there already",
        k["sessions"],
        k["rooms"].as_object().unwrap().len(),
        k["sources"].as_array().unwrap().len(),
        k["sent"],
        k["backup_version"].as_str().unwrap(),
        if there == 1 { "was" } else { "were" }
    )
}

fn json_out(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(o), stderr(o)))
}

#[test]
fn init_dry_run_run_status_and_a_second_run_that_changes_nothing() {
    let (org, personal) = (server_named("ORG"), server_named("PERSONAL"));
    let w = world();
    let s = &w.s;
    // init: the plan and every room of the old account.
    let init = s
        .cmd(&format!(
            "move init --old {} --new {} -o %move.toml --old-homeserver {} --new-homeserver {} --old-token-file %old.token --new-token-file %new.token",
            w.old.user_id, w.new.user_id, org.url, personal.url
        ))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_code(&init, 0);
    let listed = String::from_utf8(s.read("rooms.txt")).unwrap();
    for room in w.rooms.values() {
        assert!(listed.contains(room.as_str()), "{room} in\n{listed}");
    }
    assert_eq!(s.mode("move.toml"), 0o600);
    // init again: the plan is not written over without --force.
    let again = s
        .cmd(&format!(
            "move init --old {} --new {} -o %move.toml --old-token-file %old.token",
            w.old.user_id, w.new.user_id
        ))
        .output()
        .unwrap();
    assert_code(&again, 6);
    // The user's edits: the staying room's line deleted, the key sources named.
    let kept: Vec<&str> = listed
        .lines()
        .filter(|l| !l.contains(w.room("staying")))
        .collect();
    s.write("rooms.txt", kept.join("\n"));
    let plan = String::from_utf8(s.read("move.toml"))
        .unwrap()
        .replace(
            "exports = []",
            r#"exports = [{ file = "laptop.txt", passphrase_file = "laptop.pass" }, { file = "phone.txt", passphrase_file = "phone.pass" }]"#,
        )
        .replace("# old_recovery_key_file", "old_recovery_key_file")
        .replace("# new_recovery_key_file", "new_recovery_key_file")
        .replace(
            &format!("(moved to {})", w.new.user_id),
            "(moved)",
        );
    s.write("move.toml", plan);

    // The dry run reads everything and writes nothing anywhere.
    let files_before = s.names();
    let before = server_state(&w);
    let dry = s.run("move run --dry-run --json %move.toml");
    assert_code(&dry, 8);
    let report = json_out(&dry);
    assert_schema("move-run", &report);
    assert_eq!(report["dry_run"], json!(true));
    assert_eq!(report["keys"]["sessions"], json!(4), "{report}");
    assert_eq!(report["keys"]["to_send"], json!(3), "{report}");
    assert_eq!(report["rooms"]["status"], json!("planned"));
    assert_eq!(
        report["direct_planned"],
        json!([[w.bob.user_id, w.room("dm")]])
    );
    assert_eq!(
        report["account_data"]["rules"]["changes"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(report["by_hand"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["by_hand"][0]["room"], json!(w.room("blocked")));
    assert_eq!(server_state(&w), before, "a dry run changed a server");
    assert_eq!(s.names(), files_before, "a dry run wrote a file");

    // The move: everything but the blocked room, which is left to do by hand (exit 8).
    let run = s.run("move run %move.toml");
    assert_code(&run, 8);
    let md = stdout(&run);
    assert!(md.contains("## Left to do by hand"), "{md}");
    assert!(md.contains(w.room("blocked")), "{md}");
    assert!(md.contains("enter the new account's recovery key"), "{md}");
    assert!(
        stderr(&run).contains("left to do by hand"),
        "{}",
        stderr(&run)
    );
    assert_moved(&w, "after the move");
    let saved: Value = serde_json::from_slice(&s.read("move.report.json")).unwrap();
    assert_schema("move-run", &saved);
    assert_eq!(saved["ending"], json!("left_to_do"));
    assert_eq!(saved["changed"], json!(true));
    assert_eq!(saved["keys"]["sent"], json!(3));
    assert_eq!(
        saved["keys"]["rooms"][w.room("private")]["sessions"],
        json!(1)
    );
    assert_eq!(
        String::from_utf8(s.read("move.report.md")).unwrap(),
        md,
        "the Markdown report beside the plan is what was printed"
    );
    for f in ["move.report.json", "move.report.md", "move.journal.jsonl"] {
        assert_eq!(s.mode(f), 0o600, "{f}");
    }

    // Status, from the journal alone.
    let status = s.run("move status --json %move.toml");
    assert_code(&status, 0);
    let doc = json_out(&status);
    assert_schema("move-status", &doc);
    assert_eq!(doc["keys"], json!(saved_keys_line(&saved)));
    let status = s.run("move status %move.toml");
    assert_code(&status, 0);
    let text = stdout(&status);
    assert!(
        text.contains("keys: done (4 sessions of 4 rooms from 3 sources; 3 sent"),
        "{text}"
    );
    assert!(text.contains("rooms: 4 of 5 moved"), "{text}");
    assert!(text.contains("a run went to the end"), "{text}");
    // The run checked its result as the new account; `--verify` checks it again, for every
    // room of the rooms file (the blocked one too: the new account is not in it).
    let checked = &saved["verification"];
    assert_eq!(checked["rooms"].as_array().unwrap().len(), 4, "{checked}");
    assert!(
        checked["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["joined_on_new_server"] == json!(true)),
        "{checked}"
    );
    assert!(md.contains("## Checking the result"), "{md}");
    let verified = s.run("move status --verify --json %move.toml");
    assert_code(&verified, 0);
    let doc = json_out(&verified);
    assert_schema("move-status", &doc);
    let rooms = doc["verification"]["rooms"].as_array().unwrap();
    assert_eq!(rooms.len(), 5, "{doc}");
    let blocked = rooms
        .iter()
        .find(|r| r["room_id"] == json!(w.room("blocked")));
    assert_eq!(blocked.unwrap()["joined_on_new_server"], json!(false));
    assert_eq!(
        (
            &doc["verification"]["encrypted"],
            &doc["verification"]["with_keys"]
        ),
        (&checked["encrypted"], &checked["with_keys"])
    );
    let text = stdout(&s.run("move status --verify %move.toml"));
    assert!(text.contains("## Checking the result"), "{text}");
    assert!(
        text.contains("encrypted messages the new account can see"),
        "{text}"
    );

    // A second run changes nothing, and says so.
    let before = server_state(&w);
    let second = s.run("move run --json %move.toml");
    assert_code(&second, 8);
    let report = json_out(&second);
    assert_schema("move-run", &report);
    assert_eq!(report["changed"], json!(false), "{report}");
    assert_eq!(report["keys"]["status"], json!("done_earlier"));
    assert_eq!(report["account_data"]["status"], json!("done_earlier"));
    assert_eq!(server_state(&w), before);
    assert_moved(&w, "after the second run");
    let md = String::from_utf8(s.read("move.report.md")).unwrap();
    assert!(md.contains("This run changed nothing"), "{md}");

    // One more room in the rooms file: the keys phase runs again and sends only its session,
    // the account data phase adds only its notification rule.
    let mut edited = String::from_utf8(s.read("rooms.txt")).unwrap();
    edited.push_str(&format!("\n{}\n", w.room("staying")));
    s.write("rooms.txt", edited);
    let third = s.run("move run --json %move.toml");
    assert_code(&third, 8);
    let report = json_out(&third);
    assert_eq!(report["keys"]["status"], json!("done"), "{report}");
    assert_eq!(report["keys"]["sessions"], json!(5));
    assert_eq!(report["keys"]["sent"], json!(1));
    assert_eq!(backup_of(&w).len(), 5);
    let changes = report["account_data"]["rules"]["changes"]
        .as_array()
        .unwrap();
    assert_eq!(changes.len(), 1, "{report}");
    assert!(
        changes[0].to_string().contains(w.room("staying")),
        "{report}"
    );
    let rules = account::push_rules(&w.new.client).unwrap();
    assert!(account::find_rule(&rules, "room", w.room("staying")).is_some());
}

/// A plan that reaches both servers through proxies that SIGKILL the run at the first
/// request `kill` accepts; returns the output.
fn run_killed_at(w: &World, kill: Option<(&'static str, &'static str, usize)>) -> Output {
    let (org, personal) = (server_named("ORG"), server_named("PERSONAL"));
    let pid: Arc<Mutex<Option<u32>>> = Arc::default();
    let seen = AtomicUsize::new(0);
    // The nth request of that method whose path holds that part.
    let hook = killer(pid.clone(), move |_, method, path| {
        kill.is_some_and(|(m, part, nth)| {
            method == m && path.contains(part) && seen.fetch_add(1, Ordering::SeqCst) + 1 == nth
        })
    });
    let count = Arc::new(AtomicUsize::new(0));
    let (po, pn) = (
        Proxy::start(&org.url, count.clone(), hook.clone()),
        Proxy::start(&personal.url, count, hook),
    );
    w.s.write("move.toml", plan_text(w, &po.url, &pn.url));
    let child =
        w.s.cmd("move run --json %move.toml")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
    *pid.lock().unwrap() = Some(child.id());
    child.wait_with_output().unwrap()
}

/// SIGKILL at each phase boundary and inside each phase, then a rerun: the same end state
/// as an uninterrupted move, nothing done twice (one invite per room, each session once at
/// its best index).
#[test]
fn killed_at_each_phase_a_rerun_ends_in_the_same_state() {
    let points: &[(&str, &str, usize)] = &[
        // The keys phase starts: the new backup's version is read.
        ("GET", "/room_keys/version", 1),
        // Inside it: the upload.
        ("PUT", "/room_keys/keys", 1),
        // The boundary keys -> rooms: the new account's rooms are read first.
        ("GET", "/joined_rooms", 1),
        // Inside the rooms: the second invite, then the second join.
        ("POST", "/invite", 2),
        ("POST", "/join/", 2),
        // The DMs.
        ("PUT", "/account_data/m.direct", 1),
        // Inside the account data: the second push rule.
        ("PUT", "/pushrules/", 2),
        // The rename, then the second leave.
        ("PUT", "/state/m.room.member/", 1),
        ("POST", "/leave", 2),
    ];
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(&point) = points.get(i) else { return };
                let w = world();
                w.s.write("rooms.txt", w.moving().join("\n"));
                let killed = run_killed_at(&w, Some(point));
                assert_eq!(
                    killed.status.code(),
                    None,
                    "{point:?} was never reached: {}",
                    stderr(&killed)
                );
                let rerun = run_killed_at(&w, None);
                assert_code(&rerun, 8);
                let report = json_out(&rerun);
                assert_eq!(report["ending"], json!("left_to_do"), "{point:?}");
                assert_moved(&w, &format!("killed at {point:?}, then rerun"));
            });
        }
    });
}

/// A room where the old account (power 50) can invite but not give power (that needs 100):
/// the dry run and the run say the same thing is left to do by hand, each with what to do;
/// `move status` shows it; and a rerun still names the rooms the old account has left (a
/// DM by its peer).
#[test]
fn plan_and_run_agree_on_what_is_left_by_hand_and_name_every_room() {
    let (org, personal) = (server_named("ORG"), server_named("PERSONAL"));
    let old = org.register("old");
    let carol = org.register("carol");
    let new = personal.register("new");
    let via = vec![old.server_name().to_owned()];
    let partial = carol.create_room_with(json!({"name": "Carol's team", "preset": "private_chat",
        "invite": [old.user_id], "power_level_content_override": {"users": {old.user_id.clone(): 50}}}));
    old.join(&partial, &via);
    let named = old.create_room("Named room");
    let dm = old.create_room_with(
        json!({"preset": "trusted_private_chat", "is_direct": true, "invite": [carol.user_id]}),
    );
    carol.join(&dm, &via);
    let direct =
        m_direct::DirectMap::parse(&json!({ carol.user_id.clone(): [dm] }).to_string()).unwrap();
    online::direct::replace(&old.client, &old.user_id, &direct).unwrap();
    let s = Scratch::new();
    s.write("old.token", &old.token);
    s.write("new.token", &new.token);
    s.write(
        "rooms.txt",
        [&partial, &named, &dm].map(|r| r.as_str()).join("\n"),
    );
    s.write(
        "move.toml",
        format!(
            "rooms_file = \"rooms.txt\"\nleave = true\n[old]\nuser = \"{}\"\nhomeserver = \"{}\"\n\
             token_file = \"old.token\"\n[new]\nuser = \"{}\"\nhomeserver = \"{}\"\ntoken_file = \"new.token\"\n",
            old.user_id, org.url, new.user_id, personal.url
        ),
    );
    let what = format!(
        "ask one of the room's admins to give {} power 50",
        new.user_id
    );

    let dry = s.run("move run --dry-run --json %move.toml");
    assert_code(&dry, 8);
    let planned = json_out(&dry)["by_hand"].clone();
    assert_eq!(planned.as_array().unwrap().len(), 1, "{planned}");
    assert_eq!(planned[0]["room"], json!(partial));
    assert_eq!(planned[0]["name"], json!("Carol's team"));
    assert_eq!(
        planned[0]["why"],
        json!("power not copied: needs 100, has 50")
    );
    assert!(
        planned[0]["what"].as_str().unwrap().starts_with(&what),
        "{planned}"
    );

    let run = s.run("move run --json %move.toml");
    assert_code(&run, 8);
    let report = json_out(&run);
    assert_schema("move-run", &report);
    assert_eq!(
        report["by_hand"], planned,
        "the run says what the plan said"
    );
    let md = String::from_utf8(s.read("move.report.md")).unwrap();
    assert!(
        md.contains(&format!("Carol's team ({partial}): power not copied")),
        "{md}"
    );
    assert!(md.contains(&format!("What to do: {what}")), "{md}");

    let status = s.run("move status --json %move.toml");
    assert_code(&status, 0);
    let doc = json_out(&status);
    assert_schema("move-status", &doc);
    assert_eq!(doc["by_hand"], planned);
    let step = |room: &str| {
        doc["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["room_id"] == json!(room))
            .unwrap()["step"]
            .clone()
    };
    assert_eq!(step(&partial), json!("partial"));
    assert_eq!(step(&named), json!("left"));
    let text = stdout(&s.run("move status %move.toml"));
    assert!(text.contains(&format!("What to do: {what}")), "{text}");

    // A rerun: the old account has left two rooms and still the report names them.
    let again = s.run("move run --json %move.toml");
    assert_code(&again, 8);
    let rooms = json_out(&again)["rooms"]["rooms"].clone();
    let name = |room: &str| {
        rooms
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["room_id"] == json!(room))
            .unwrap()["name"]
            .clone()
    };
    assert_eq!(name(&named), json!("Named room"));
    assert_eq!(name(&dm), json!(format!("DM with {}", carol.user_id)));
    assert_eq!(name(&partial), json!("Carol's team"));
}

/// `move init` makes the plan's folder (0700) and checks it can write there before any
/// network work: a folder it cannot make fails at once, not after listing every room.
#[test]
fn init_checks_its_folder_before_any_network_work() {
    let s = Scratch::new();
    s.write("old.token", "unused");
    // Nothing listens on port 9: a request would end in exit 7.
    let o = s.run(
        "move init --old @a:example.org --new @b:example.org --old-homeserver http://127.0.0.1:9 \
         --old-token-file %old.token -o /proc/no-such-folder/move.toml",
    );
    assert_code(&o, 1);
    assert!(
        stderr(&o).contains("cannot write the plan into /proc/no-such-folder"),
        "{}",
        stderr(&o)
    );
}

/// M1: a key the old account receives during the move (its device backs it up while the
/// rooms phase runs, before the new account joins) still reaches the new backup: the old
/// backup is read again right before the leaves.
#[test]
fn keys_received_during_the_move_reach_the_new_backup() {
    let (org, personal) = (server_named("ORG"), server_named("PERSONAL"));
    let mut w = world();
    w.s.write("rooms.txt", w.moving().join("\n"));
    let late = Device::new().new_session(w.room("private")).export_at(0);
    let late_id = (w.room("private").to_owned(), late.session_id.to_string());
    let old_key =
        BackupKey::parse(&String::from_utf8(w.s.read("old-recovery.key")).unwrap()).unwrap();
    let sent = Arc::new(AtomicUsize::new(0));
    let hook: online::testkit::Hook = {
        let (old_client, sent) = (w.old.client.fork(), sent.clone());
        Arc::new(move |_, method, path| {
            // At the new account's first join, the old account's phone backs up a new key.
            if method == "POST"
                && path.contains("/join/")
                && sent.fetch_add(1, Ordering::SeqCst) == 0
            {
                let info = backup::current(&old_client).unwrap().unwrap();
                let raw = exported(std::slice::from_ref(&late));
                let parsed = SessionRef::parse(&raw[0]);
                backup::upload(&old_client, &info, &old_key, &[&parsed], 100, &|_| {}).unwrap();
            }
            online::testkit::Action::Forward
        })
    };
    let count = Arc::new(AtomicUsize::new(0));
    let (po, pn) = (
        Proxy::start(&org.url, count.clone(), hook.clone()),
        Proxy::start(&personal.url, count, hook),
    );
    w.s.write("move.toml", plan_text(&w, &po.url, &pn.url));
    let run = w.s.run("move run --json %move.toml");
    assert_code(&run, 8);
    assert!(sent.load(Ordering::SeqCst) > 0, "the hook ran");
    let report = json_out(&run);
    assert_eq!(
        report["keys_last"]["sent"],
        json!(1),
        "{}",
        report["keys_last"]
    );
    let held = backup_of(&w);
    assert_eq!(
        held.get(&late_id),
        Some(&0),
        "the late key is in the new backup"
    );
    w.keys.insert(late_id, 0);
    assert_moved(&w, "after a move that received a key on the way");
}

/// M2: a journal belongs to one pair of accounts: after a move, a plan edited to another new
/// account is refused (it used to report every room "already moved", exit 0, for an account
/// that never joined any).
#[test]
fn a_journal_of_another_pair_is_refused() {
    let (org, personal) = (server_named("ORG"), server_named("PERSONAL"));
    let old = org.register("old");
    let (new, other) = (personal.register("new"), personal.register("other"));
    let room = old.create_room("Moving");
    let s = Scratch::new();
    s.write("old.token", &old.token);
    s.write("new.token", &new.token);
    s.write("other.token", &other.token);
    s.write("rooms.txt", &room);
    let plan = |user: &str, token: &str| {
        format!(
            "rooms_file = \"rooms.txt\"\nleave = true\n[old]\nuser = \"{}\"\nhomeserver = \"{}\"\n\
             token_file = \"old.token\"\n[new]\nuser = \"{user}\"\nhomeserver = \"{}\"\ntoken_file = \"{token}\"\n",
            old.user_id, org.url, personal.url
        )
    };
    s.write("move.toml", plan(&new.user_id, "new.token"));
    assert_code(&s.run("move run %move.toml"), 0);
    s.write("move.toml", plan(&other.user_id, "other.token"));
    for line in ["move run %move.toml", "move run --dry-run %move.toml"] {
        let again = s.run(line);
        assert_code(&again, 2);
        assert!(
            stderr(&again).contains("start it in a new plan folder"),
            "{}",
            stderr(&again)
        );
    }
    assert_eq!(
        rooms::membership(&other.client, &room, &other.user_id)
            .ok()
            .flatten(),
        None,
        "nothing was done for the other account"
    );
}
