//! A move as a user of Element makes it, checked with Element's own engine at both ends.
//!
//! Element Web's client engine (matrix-js-sdk 37.5.0 with its Rust crypto, run by Node from
//! `crates/cli/tests/real-client/`, installed by scripts/test-all) makes the old account's history on
//! the "organisation" Synapse: two devices, a friend on each server, DMs, a private group,
//! a public room, a room whose history is `joined` and one `shared`; the phone's keys
//! exported as Element exports them; Secure Backup set up on both accounts as Element sets
//! it up (the recovery key Element shows opens secret storage, which holds the backup's own
//! key; the new account's was made from a security phrase). Then, through the binary:
//! `move init` → edit → `move run --dry-run` → `move run`, with those recovery keys. Then a
//! fresh device of the new account restores its backup as Element does and reads every
//! moved room: each message it should read, read, word for word.
//!
//! These tests FAIL, never skip, when Synapse, Node or the npm packages are missing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::support::*;
use online::testkit::{server_named, TestServer, TestUser};
use serde_json::{json, Value};

/// The real client's folder.
fn client_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/real-client")
}

/// `node SCRIPT ARGS…` in the real client's folder, or a panic that says what is missing;
/// on failure the end of the engine's log (`log`) is shown.
fn node(script: &str, args: &[&Path], log: &Path) {
    let dir = client_dir();
    assert!(
        dir.join("node_modules/matrix-js-sdk").is_dir()
            && dir.join(".element/MegolmExportEncryption.cjs").is_file(),
        "the real-client tests need Element's engine installed in {}: run scripts/test-all (it \
         installs it with npm), or source crates/cli/tests/real-client/install.sh and run \
         real_client_install",
        dir.display()
    );
    let started = Instant::now();
    let out = Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(&dir)
        .output()
        .unwrap_or_else(|e| panic!("the real-client tests need Node.js 20 (`node`): {e}"));
    let log = std::fs::read_to_string(log)
        .map(|l| l.lines().rev().take(40).collect::<Vec<_>>().join("\n"))
        .unwrap_or_default();
    assert!(
        out.status.success(),
        "node {script} failed:\n{}\n{}\nlast lines of the engine's log (newest first):\n{log}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("node {script}: {:.1} s", started.elapsed().as_secs_f64());
}

fn account(user: &TestUser, server: &TestServer) -> Value {
    json!({"homeserver": server.url, "user_id": user.user_id, "password": user.password})
}

/// The world the real client made.
struct History {
    old: TestUser,
    new: TestUser,
    old_server: TestServer,
    new_server: TestServer,
    rooms: BTreeMap<String, String>,
    messages: Vec<Value>,
    friends: (String, String),
    phrase: String,
    s: Scratch,
}

impl History {
    fn room(&self, role: &str) -> &str {
        &self.rooms[role]
    }

    /// Every text sent in the room of `role`, in order.
    fn texts(&self, role: &str) -> Vec<String> {
        self.messages
            .iter()
            .filter(|m| m["room"] == role)
            .map(|m| m["text"].as_str().unwrap().to_owned())
            .collect()
    }
}

const MOVING: [&str; 6] = [
    "dm_org",
    "dm_personal",
    "group",
    "public",
    "joined",
    "shared",
];

fn make_history() -> History {
    let (old_server, new_server) = (server_named("ORG"), server_named("PERSONAL"));
    let old = old_server.register("old");
    let org_friend = old_server.register("friend");
    let personal_friend = new_server.register("friend");
    let new = new_server.register("new");
    let s = Scratch::new();
    let phrase = "the new account's security phrase, as typed".to_owned();
    let server_name = |u: &TestUser| u.user_id.split_once(':').unwrap().1.to_owned();
    s.write(
        "world.json",
        json!({
            "old": account(&old, &old_server),
            "org_friend": account(&org_friend, &old_server),
            "personal_friend": account(&personal_friend, &new_server),
            "new": account(&new, &new_server),
            "org_server_name": server_name(&old),
            "personal_server_name": server_name(&new),
            "export_passphrase": "phone export passphrase",
            "new_security_phrase": phrase,
        })
        .to_string(),
    );
    let dir = s.path("");
    node(
        "history.mjs",
        &[&s.path("world.json"), &dir],
        &s.path("engine.log"),
    );
    let history: Value = serde_json::from_slice(&s.read("history.json")).unwrap();
    s.write("phone.pass", "phone export passphrase");
    s.write("new-phrase.txt", format!("{phrase}\n"));
    s.write("old.token", &old.token);
    s.write("new.token", &new.token);
    History {
        rooms: serde_json::from_value(history["rooms"].clone()).unwrap(),
        messages: history["messages"].as_array().unwrap().clone(),
        friends: (org_friend.user_id.clone(), personal_friend.user_id.clone()),
        old,
        new,
        old_server,
        new_server,
        phrase,
        s,
    }
}

/// What a fresh device of the new account reads, restoring with `recovery`.
fn read_as_new(h: &History, recovery: Value, name: &str) -> Value {
    let mut input = json!({
        "account": account(&h.new, &h.new_server),
        "rooms": MOVING.iter().chain(["notes"].iter()).map(|r| h.room(r)).collect::<Vec<_>>(),
    });
    input
        .as_object_mut()
        .unwrap()
        .extend(recovery.as_object().unwrap().clone());
    let request = h.s.write(&format!("{name}.in.json"), input.to_string());
    let out = h.s.path(&format!("{name}.json"));
    node("read.mjs", &[&request, &out], &h.s.path("read-engine.log"));
    serde_json::from_slice(&h.s.read(&format!("{name}.json"))).unwrap()
}

fn plan_edits(h: &History, new_recovery: &str) -> String {
    let plan = String::from_utf8(h.s.read("template.toml")).unwrap();
    let keys = format!(
        "exports = [{{ file = \"{}\", passphrase_file = \"{}\" }}]\n\
         old_recovery_key_file = \"{}\"\n{new_recovery}\n",
        h.s.path("phone-keys.txt").display(),
        h.s.path("phone.pass").display(),
        h.s.path("old-recovery.key").display(),
    );
    assert!(plan.contains("exports = []\n"), "{plan}");
    plan.replace("exports = []\n", &keys)
}

fn report_of(h: &History) -> Value {
    serde_json::from_slice(&h.s.read("move/move.report.json")).unwrap()
}

#[test]
fn a_move_made_with_elements_own_engine_reads_back_word_for_word() {
    let started = Instant::now();
    let h = make_history();
    let setup = started.elapsed();
    let (old_url, new_url) = (&h.old_server.url, &h.new_server.url);

    // 1. A plan, into a folder that does not exist yet.
    let init = h.s.run(&format!(
        "move init --old {} --new {} --old-homeserver {old_url} --new-homeserver {new_url} \
         --old-token-file %old.token --new-token-file %new.token -o %move/move.toml",
        h.old.user_id, h.new.user_id
    ));
    assert!(init.status.success(), "{}", text(&init.stderr));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(h.s.path("move"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "the plan's folder holds secrets");
    h.s.write("template.toml", h.s.read("move/move.toml"));

    // 2. Edit: the room that stays goes out of the rooms file; the key sources go in.
    let rooms = String::from_utf8(h.s.read("move/rooms.txt")).unwrap();
    for role in MOVING.iter().chain(["staying"].iter()) {
        assert!(
            rooms.contains(h.room(role)),
            "rooms.txt lists {role}:\n{rooms}"
        );
    }
    let kept: String = rooms
        .lines()
        .filter(|l| !l.contains(h.room("staying")))
        .map(|l| format!("{l}\n"))
        .collect();
    h.s.write("move/rooms.txt", kept);

    // 3. A dry run with a wrong new key and a wrong passphrase lists both problems and
    //    still shows every room; nothing is written.
    h.s.write("wrong.pass", "not the passphrase");
    let wrong = plan_edits(
        &h,
        &format!(
            "new_recovery_key_file = \"{}\"",
            h.s.path("old-recovery.key").display()
        ),
    )
    .replace(
        &h.s.path("phone.pass").display().to_string(),
        &h.s.path("wrong.pass").display().to_string(),
    );
    h.s.write("move/move.toml", wrong);
    let dry = h.s.run("move run --dry-run --json %move/move.toml");
    assert_eq!(dry.status.code(), Some(8), "{}", text(&dry.stderr));
    let plan: Value = serde_json::from_slice(&dry.stdout).unwrap();
    let problems = plan["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(
        problems[0]["what"]
            .as_str()
            .unwrap()
            .starts_with("the new account's key backup")
            && problems[0]["why"]
                .as_str()
                .unwrap()
                .contains("does not open"),
        "{problems:#?}"
    );
    assert!(
        problems[1]["what"]
            .as_str()
            .unwrap()
            .contains("phone-keys.txt"),
        "{problems:#?}"
    );
    assert_eq!(
        plan["rooms"]["rooms"].as_array().unwrap().len(),
        MOVING.len(),
        "every room is still planned"
    );
    assert!(
        plan["keys"]["old_backup"]["sessions"].as_u64().unwrap() > 0,
        "the old backup is still read: {}",
        plan["keys"]
    );
    assert!(!h.s.path("move/move.journal.jsonl").exists());

    // 4. The dry run as the README says, with the recovery keys Element showed.
    let planned = plan_edits(
        &h,
        &format!(
            "new_recovery_key_file = \"{}\"",
            h.s.path("new-recovery.key").display()
        ),
    );
    h.s.write("move/move.toml", &planned);
    let dry = h.s.run("move run --dry-run %move/move.toml");
    let shown = text(&dry.stdout);
    assert_eq!(dry.status.code(), Some(0), "{shown}\n{}", text(&dry.stderr));
    assert!(shown.contains("Left to do by hand\n\nNothing."), "{shown}");
    assert!(!shown.contains("Problems"), "{shown}");

    // 5. The move, the new backup opened with its security phrase this time.
    let run_plan = planned.replace(
        &format!(
            "new_recovery_key_file = \"{}\"",
            h.s.path("new-recovery.key").display()
        ),
        &format!(
            "new_security_phrase_file = \"{}\"",
            h.s.path("new-phrase.txt").display()
        ),
    );
    h.s.write("move/move.toml", run_plan);
    let moved = h.s.run("move run %move/move.toml");
    assert_eq!(
        moved.status.code(),
        Some(0),
        "{}\n{}",
        text(&moved.stdout),
        text(&moved.stderr)
    );
    let report = report_of(&h);
    assert_eq!(report["keys"]["old_backup"]["opened_via"], "secret_storage");
    assert!(
        report["by_hand"].as_array().unwrap().is_empty(),
        "{report:#}"
    );
    let markdown = String::from_utf8(h.s.read("move/move.report.md")).unwrap();
    for role in ["group", "shared"] {
        let name = report["rooms"]["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["room_id"] == h.room(role))
            .unwrap()["name"]
            .clone();
        assert!(name.is_string(), "{role} has its name in the report");
    }
    let dm_name = format!("DM with {}", h.friends.0);
    assert!(markdown.contains(&dm_name), "{markdown}");

    // 6. A fresh device of the new account, restoring as Element does.
    let read = read_as_new(
        &h,
        json!({"recovery_key": text(&h.s.read("new-recovery.key")).trim()}),
        "read",
    );
    let mut per_room = Vec::new();
    for role in MOVING.iter().chain(["notes"].iter()) {
        let seen = &read["rooms"][h.room(role)];
        let failures: Vec<&Value> = seen
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m.get("failure").is_some())
            .collect();
        assert!(failures.is_empty(), "{role}: undecryptable {failures:#?}");
        // Sorted: two servers may order concurrent events of a federated room differently.
        let mut texts: Vec<String> = seen
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["text"].as_str().unwrap().to_owned())
            .collect();
        texts.sort();
        // Messages sent while the history was `joined` are never served to a later member.
        let mut expected = if *role == "joined" {
            Vec::new()
        } else {
            h.texts(role)
        };
        expected.sort();
        assert_eq!(texts, expected, "what the new account reads in {role}");
        per_room.push(format!("{role}: {}/{}", texts.len(), expected.len()));
        if *role != "notes" {
            agrees_with_the_check(&report, h.room(role), seen, role);
        }
    }
    assert_eq!(
        report["verification"]["with_keys"], report["verification"]["encrypted"],
        "{:#}",
        report["verification"]
    );
    let direct = &read["direct"];
    assert_eq!(
        direct,
        &json!({h.friends.0.clone(): [h.room("dm_org")], h.friends.1.clone(): [h.room("dm_personal")]}),
        "the client's own view of the DMs"
    );
    let joined: BTreeSet<&str> = read["joined"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    for role in MOVING {
        assert!(joined.contains(h.room(role)), "joined {role}");
    }
    assert!(!joined.contains(h.room("staying")));
    // The settings newer clients keep, as the client reads them: the time zone carried
    // over, the recent emoji merged (the new account's first, each count the higher).
    assert_eq!(
        read["settings"]["tz"], "Europe/Berlin",
        "{:#}",
        read["settings"]
    );
    assert_eq!(
        read["settings"]["recent_emoji"],
        json!({"recent_emoji": [{"emoji": "👍", "total": 9}, {"emoji": "🎉", "total": 5}]}),
        "{:#}",
        read["settings"]
    );
    eprintln!(
        "real client read per room: {}; history {:.1} s, whole test {:.1} s",
        per_room.join(", "),
        setup.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    // The security phrase restores the same on another fresh device.
    let again = read_as_new(&h, json!({"security_phrase": h.phrase}), "again");
    assert_eq!(again["rooms"], read["rooms"]);
}

/// The move's own check of a room (read as the new account, without a device) agrees with
/// what the real client decrypted there: the encrypted messages it saw, and of those the
/// ones it could read.
fn agrees_with_the_check(report: &Value, room: &str, seen: &Value, role: &str) {
    let check = report["verification"]["rooms"]
        .as_array()
        .expect("the report has the check")
        .iter()
        .find(|c| c["room_id"] == room)
        .unwrap_or_else(|| panic!("{role} is checked: {:#}", report["verification"]));
    let seen = seen.as_array().unwrap();
    let encrypted = seen
        .iter()
        .filter(|m| m.get("failure").is_some() || m["encrypted"] == true)
        .count();
    let decrypted = seen.iter().filter(|m| m["encrypted"] == true).count();
    assert_eq!(
        (check["encrypted"].as_u64(), check["with_keys"].as_u64()),
        (Some(encrypted as u64), Some(decrypted as u64)),
        "{role}: the move's check {check:#} against the real client's {seen:#?}"
    );
    assert_eq!(check["joined_on_new_server"], true, "{role}: {check:#}");
    assert_eq!(check["whole_timeline"], true, "{role}: {check:#}");
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
