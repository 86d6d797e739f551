//! `matrix-transplant rooms list|plan|move` end to end, between the two federating test
//! Synapses (and the rate-limited one) that scripts/test-all starts. These tests FAIL,
//! never skip, when the servers are not running.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::support::*;
use online::rooms;
use online::testkit::{killer, server_named, Proxy, TestServer, TestUser};
use serde_json::{json, Value};

/// Runs `rooms SUBCOMMAND ...` with both accounts' tokens in the environment.
fn rooms_cmd(old: (&TestUser, &str), new: (&TestUser, &str), args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_matrix-transplant"));
    c.arg("rooms").args(args);
    c.args(["--old-user", &old.0.user_id, "--old-homeserver", old.1]);
    if args[0] != "list" {
        c.args(["--new-user", &new.0.user_id, "--new-homeserver", new.1]);
    }
    c.env("MATRIX_OLD_ACCESS_TOKEN", &old.0.token)
        .env("MATRIX_NEW_ACCESS_TOKEN", &new.0.token)
        .stdin(Stdio::null());
    c
}

/// `n` rooms of the old account: v12 invite-only rooms (one a DM with bob), a v10 public
/// room; each with a message.
fn rooms_of(old: &TestUser, bob: &TestUser, n: usize) -> Vec<String> {
    let mut rooms = Vec::new();
    for i in 0..n {
        let room = match i {
            0 => {
                let dm = old.create_room_with(json!({"preset": "trusted_private_chat", "is_direct": true, "invite": [bob.user_id]}));
                bob.join(&dm, &[old.server_name().to_owned()]);
                let direct =
                    m_direct::DirectMap::parse(&json!({ bob.user_id.clone(): [dm] }).to_string())
                        .unwrap();
                online::direct::replace(&old.client, &old.user_id, &direct).unwrap();
                dm
            }
            1 => old.create_room_with(
                json!({"name": "public", "preset": "public_chat", "room_version": "10"}),
            ),
            _ => old.create_room(&format!("room {i}")),
        };
        old.say(&room, "hello");
        rooms.push(room);
    }
    rooms
}

fn invites_and_power_events(old: &TestUser, new: &TestUser, room: &str) -> (usize, usize) {
    let page = rooms::messages(
        &old.client,
        room,
        None,
        rooms::Direction::Backwards,
        &["m.room.member", "m.room.power_levels"],
        200,
    )
    .unwrap();
    let invites = page
        .chunk
        .iter()
        .filter(|e| {
            e.kind == "m.room.member"
                && e.state_key.as_deref() == Some(new.user_id.as_str())
                && e.content["membership"] == json!("invite")
        })
        .count();
    let power = page
        .chunk
        .iter()
        .filter(|e| {
            e.kind == "m.room.power_levels" && e.content["users"].get(&new.user_id).is_some()
        })
        .count();
    (invites, power)
}

#[test]
fn list_then_plan_then_move_through_the_binary() {
    let (org, personal) = (server_named("ORG"), server_named("PERSONAL"));
    let old = org.register("old");
    let bob = org.register("bob");
    let new = personal.register("new");
    let rooms = rooms_of(&old, &bob, 3);
    let blocked = old.create_room("banned");
    rooms::put_state(
        &old.client,
        &blocked,
        "m.room.member",
        &new.user_id,
        &json!({"membership": "ban"}),
    )
    .unwrap();
    let s = Scratch::new();
    let (o, n) = ((&old, org.url.as_str()), (&new, personal.url.as_str()));

    let out = rooms_cmd(o, n, &["list", "-o", s.path("rooms.txt").to_str().unwrap()])
        .output()
        .unwrap();
    assert_code(&out, 0);
    let text = String::from_utf8(s.read("rooms.txt")).unwrap();
    assert!(text.starts_with("# Rooms of "), "{text}");
    assert!(
        text.contains(&format!(
            "{}  # (no name) — DM with {}",
            rooms[0], bob.user_id
        )),
        "{text}"
    );
    assert_eq!(s.mode("rooms.txt"), 0o600);
    let listed = rooms_cmd(o, n, &["list", "--json"]).output().unwrap();
    assert_code(&listed, 0);
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_schema("rooms-list", &listed);
    assert_eq!(
        listed["rooms"].as_array().unwrap().len(),
        text.lines().filter(|l| l.starts_with('!')).count()
    );
    // The user keeps the rooms that move (here: all of them) and plans.
    let plan = rooms_cmd(
        o,
        n,
        &[
            "plan",
            "--rooms-file",
            s.path("rooms.txt").to_str().unwrap(),
            "--json",
        ],
    )
    .output()
    .unwrap();
    assert_code(&plan, 0); // blocked rooms are part of the report, not an error
    let plan: Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_schema("rooms-plan", &plan);
    let banned = plan["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["facts"]["room_id"] == json!(blocked))
        .unwrap();
    assert_eq!(banned["blockers"][0]["kind"], json!("new_banned"));
    assert_eq!(plan["estimate"]["invites"], json!(2));
    let human = rooms_cmd(
        o,
        n,
        &[
            "plan",
            "--rooms-file",
            s.path("rooms.txt").to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    assert_code(&human, 0);
    let human = stdout(&human);
    assert!(
        human.contains("BLOCKED: ")
            && human.contains("what to do: ask one of the room's admins to unban"),
        "{human}"
    );
    assert!(
        human.contains("Expected duration at stock Synapse rate limits"),
        "{human}"
    );

    let journal = s.path("journal.jsonl");
    let moved = rooms_cmd(
        o,
        n,
        &[
            "move",
            "--rooms-file",
            s.path("rooms.txt").to_str().unwrap(),
            "--state",
            journal.to_str().unwrap(),
            "--json",
        ],
    )
    .output()
    .unwrap();
    assert_code(&moved, 0);
    let report: Value = serde_json::from_slice(&moved.stdout).unwrap();
    assert_schema("rooms-move", &report);
    let statuses: Vec<&str> = report["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == "moved").count(),
        3,
        "{report}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == "blocked").count(),
        1,
        "{report}"
    );
    assert_eq!(report["direct_added"], json!([[bob.user_id, rooms[0]]]));
    assert_eq!(s.mode("journal.jsonl"), 0o600);
    // Two accounts must be the ones named.
    let mut wrong = rooms_cmd(
        o,
        n,
        &[
            "plan",
            "--rooms-file",
            s.path("rooms.txt").to_str().unwrap(),
        ],
    );
    let other = personal.register("other");
    wrong.env("MATRIX_NEW_ACCESS_TOKEN", &other.token);
    let wrong = wrong.output().unwrap();
    assert_code(&wrong, 2);
    assert!(
        stderr(&wrong).contains(&other.user_id),
        "{}",
        stderr(&wrong)
    );
}

/// An old account on `old_server` with the six rooms of [`rooms_of`] (in a rooms file,
/// `rooms.txt` of the scratch folder), and a new account on `new_server`.
fn six_rooms(
    old_server: &TestServer,
    new_server: &TestServer,
) -> (TestUser, TestUser, Vec<String>, Scratch) {
    let old = old_server.register("old");
    let bob = old_server.register("bob");
    let new = new_server.register("new");
    let rooms = rooms_of(&old, &bob, 6);
    let s = Scratch::new();
    s.write("rooms.txt", rooms.join("\n"));
    (old, new, rooms, s)
}

/// One move of `rooms`, through proxies that kill it at request `kill_at` (never, for
/// `usize::MAX`); returns the output and how many requests were seen.
fn move_through_proxies(
    org: &TestServer,
    personal: &TestServer,
    old: &TestUser,
    new: &TestUser,
    rooms_file: &str,
    journal: &str,
    kill_at: usize,
) -> (Output, usize) {
    let count = Arc::new(AtomicUsize::new(0));
    let pid: Arc<Mutex<Option<u32>>> = Arc::default();
    let hook = killer(pid.clone(), move |n, _, _| n == kill_at);
    let (po, pn) = (
        Proxy::start(&org.url, count.clone(), hook.clone()),
        Proxy::start(&personal.url, count.clone(), hook),
    );
    let mut c = rooms_cmd(
        (old, &po.url),
        (new, &pn.url),
        &[
            "move",
            "--rooms-file",
            rooms_file,
            "--state",
            journal,
            "--leave",
            "--json",
        ],
    );
    let child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    *pid.lock().unwrap() = Some(child.id());
    let out = child.wait_with_output().unwrap();
    (out, count.load(Ordering::SeqCst))
}

/// SIGKILL after every Nth request, for every N up to the request count of a 6-room move,
/// then a rerun: the same final state as an uninterrupted run, and never a second invite or
/// power-level event from the tool.
#[test]
fn killed_at_any_request_a_rerun_ends_in_the_same_state() {
    let (org, personal) = (server_named("ORG"), server_named("PERSONAL"));
    let setup = || six_rooms(&org, &personal);
    // The uninterrupted run: how many requests a whole move makes.
    let (old, new, _, s) = setup();
    let (out, total) = move_through_proxies(
        &org,
        &personal,
        &old,
        &new,
        s.path("rooms.txt").to_str().unwrap(),
        s.path("j").to_str().unwrap(),
        usize::MAX,
    );
    assert_code(&out, 0);
    assert!(total > 30, "{total} requests");
    let next = AtomicUsize::new(1);
    std::thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n > total {
                    return;
                }
                let (old, new, rooms, s) = setup();
                let (file, journal) = (s.path("rooms.txt"), s.path("j"));
                let (killed, _) = move_through_proxies(
                    &org,
                    &personal,
                    &old,
                    &new,
                    file.to_str().unwrap(),
                    journal.to_str().unwrap(),
                    n,
                );
                assert_eq!(
                    killed.status.code(),
                    None,
                    "killed at request {n}: {}",
                    stderr(&killed)
                );
                let (rerun, _) = move_through_proxies(
                    &org,
                    &personal,
                    &old,
                    &new,
                    file.to_str().unwrap(),
                    journal.to_str().unwrap(),
                    usize::MAX,
                );
                assert_code(&rerun, 0);
                let report: Value = serde_json::from_slice(&rerun.stdout).unwrap();
                for r in report["rooms"].as_array().unwrap() {
                    assert!(
                        matches!(r["status"].as_str(), Some("moved" | "already_moved")),
                        "N={n}: {r}"
                    );
                    assert_eq!(r["left"], json!(true), "N={n}: {r}");
                }
                for room in &rooms {
                    assert_eq!(
                        rooms::membership(&new.client, room, &new.user_id)
                            .unwrap()
                            .as_ref()
                            .map(online::rooms::Membership::as_str),
                        Some("join"),
                        "N={n}"
                    );
                    let (invites, power) = invites_and_power_events(&old, &new, room);
                    // The public room needs no invite.
                    assert_eq!(invites, usize::from(room != &rooms[1]), "N={n} {room}");
                    assert_eq!(power, 1, "N={n} {room}");
                }
                let direct = online::direct::download(&new.client, &new.user_id).unwrap();
                assert_eq!(direct.len(), 1, "N={n}");
            });
        }
    });
}

/// `rooms move` of six fresh rooms on the rate-limited server, with `extra` arguments.
fn move_six_rooms_on_limited(extra: &[&str]) -> Output {
    let limited = server_named("LIMITED");
    let (old, new, _, s) = six_rooms(&limited, &limited);
    let (file, journal) = (s.path("rooms.txt"), s.path("j"));
    let mut args = vec![
        "move",
        "--rooms-file",
        file.to_str().unwrap(),
        "--state",
        journal.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    rooms_cmd((&old, &limited.url), (&new, &limited.url), &args)
        .output()
        .unwrap()
}

/// Stock-shaped limits, scaled (invites into one user: 2, then 1 a second; joins: 3, then
/// 1 a second): the move waits as the server says and finishes.
#[test]
fn waits_out_the_servers_rate_limits() {
    let out = move_six_rooms_on_limited(&["--json"]);
    assert_code(&out, 0);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == json!("moved")),
        "{report}"
    );
    assert!(report["waits"].as_u64().unwrap() >= 2, "{report}");
    let err = stderr(&out);
    assert!(
        err.contains("waiting") && err.contains("rc_invites"),
        "{err}"
    );
}

/// On a terminal, the bars of the stages side by side, and the wait of the invite stage
/// shown in its bar with the limit that holds it and until when.
#[test]
fn a_terminal_shows_the_wait_in_the_invite_bar() {
    let limited = server_named("LIMITED");
    let (old, new, _, s) = six_rooms(&limited, &limited);
    let (code, screen) = s.screen_of(
        &format!(
            "rooms move --rooms-file %rooms.txt --state %j --old-user {} --old-homeserver {} --new-user {} --new-homeserver {}",
            old.user_id, limited.url, new.user_id, limited.url
        ),
        &[
            ("MATRIX_OLD_ACCESS_TOKEN", &old.token),
            ("MATRIX_NEW_ACCESS_TOKEN", &new.token),
        ],
    );
    assert_eq!(code, Some(0), "{screen}");
    let frames: Vec<&str> = screen
        .split(['\r', '\n'])
        .filter(|l| l.contains("  invite ") && l.contains("rooms, ETA"))
        .collect();
    assert!(
        frames
            .iter()
            .any(|f| f.contains("waiting") && f.contains("rc_invites") && f.contains("UTC")),
        "no wait in the invite bar: {frames:?}"
    );
    assert!(screen.contains("6 moved"), "{screen}");
}

/// Ctrl-C while the move waits out a rate limit: it stops between steps, says so, prints
/// the command that resumes (no secret in it), and that command finishes the move.
#[test]
fn ctrl_c_stops_between_steps_and_prints_the_command_that_resumes() {
    let limited = server_named("LIMITED");
    let (old, new, rooms, s) = six_rooms(&limited, &limited);
    let (file, journal) = (s.path("rooms.txt"), s.path("j"));
    let args = [
        "move",
        "--rooms-file",
        file.to_str().unwrap(),
        "--state",
        journal.to_str().unwrap(),
    ];
    let mut child = rooms_cmd((&old, &limited.url), (&new, &limited.url), &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupted at the first wait (invites into one user: 2, then 1 a second).
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "no wait before the end: {seen}"
        );
        seen.push_str(&line);
        if line.contains("waiting") {
            break;
        }
    }
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    err.read_to_string(&mut seen).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "{seen}");
    assert!(seen.contains("stopping after the current step"), "{seen}");
    let resume = seen
        .lines()
        .skip_while(|l| !l.contains("To resume, run the same command again:"))
        .nth(1)
        .unwrap_or_else(|| panic!("no resume command: {seen}"))
        .trim()
        .to_owned();
    assert!(
        resume.contains("rooms move --rooms-file") && resume.contains("--state"),
        "{resume}"
    );
    assert!(!resume.contains(&old.token) && !resume.contains(&new.token));
    // Not every room was done, and the journal reads back.
    assert!(rooms
        .iter()
        .any(|r| rooms::membership(&old.client, r, &new.user_id)
            .unwrap()
            .as_ref()
            .map(online::rooms::Membership::as_str)
            != Some("join")));
    let again = rooms_cmd(
        (&old, &limited.url),
        (&new, &limited.url),
        &[&args[..], &["--json"]].concat(),
    )
    .output()
    .unwrap();
    assert_code(&again, 0);
    let report: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert!(
        report["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| matches!(r["status"].as_str(), Some("moved" | "already_moved"))),
        "{report}"
    );
    for r in &rooms {
        let (invites, _) = invites_and_power_events(&old, &new, r);
        assert_eq!(invites, usize::from(r != &rooms[1]), "{r}");
    }
}

/// Both accounts log in with passwords typed at the terminal, on the LIMITED server whose
/// password logins get access tokens that live 2 s: the move waits out the invite and join
/// limits for longer than that, renews the tokens itself (no second prompt) and finishes.
#[test]
fn a_move_by_password_logins_outlives_their_access_tokens() {
    let limited = server_named("LIMITED");
    let (old, new, rooms, s) = six_rooms(&limited, &limited);
    let line = format!(
        "rooms move --rooms-file %rooms.txt --state %j --old-user {} --old-homeserver {} \
         --new-user {} --new-homeserver {} --json",
        old.user_id, limited.url, new.user_id, limited.url
    );
    let (code, text) = s.run_answering(
        &line,
        &[
            (&format!("Password for {}", old.user_id), &old.password),
            (&format!("Password for {}", new.user_id), &new.password),
        ],
    );
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(
        text.matches("Password for").count(),
        2,
        "no other prompt: {text}"
    );
    assert!(
        !text.contains(&old.password) && !text.contains(&new.password),
        "{text}"
    );
    // The report says how often the tool renewed its tokens: the move outlived them.
    let renewals: usize = text
        .split("\"renewals\": ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no renewals in the report: {text}"));
    assert!(renewals >= 1, "{text}");
    for room in &rooms {
        assert_eq!(
            rooms::membership(&new.client, room, &new.user_id)
                .unwrap()
                .as_ref()
                .map(online::rooms::Membership::as_str),
            Some("join")
        );
    }
}

/// `--progress json`: every line on standard error is one event object; the invites' wait
/// on the rate-limited server comes as a `waiting` event naming the limit and until when,
/// and every stage's progress reaches its total.
#[test]
fn progress_json_is_one_event_per_line() {
    let out = move_six_rooms_on_limited(&["--progress", "json"]);
    assert_code(&out, 0);
    let events: Vec<Value> = stderr(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    assert!(events.iter().all(|e| e["event"].is_string()), "{events:?}");
    let waiting = events
        .iter()
        .find(|e| e["event"] == json!("waiting") && e["stage"] == json!("invite"))
        .unwrap_or_else(|| panic!("no invite wait: {events:?}"));
    assert!(
        waiting["cause"].as_str().unwrap().contains("rc_invites"),
        "{waiting}"
    );
    assert!(waiting["until_ms"].as_u64().unwrap() > waiting["ms"].as_u64().unwrap());
    assert_eq!(waiting["limit"], json!("invites"), "{waiting}");
    for stage in ["read_rooms", "invite", "join", "power", "history"] {
        let last = events
            .iter()
            .rev()
            .find(|e| e["event"] == json!("progress") && e["stage"] == json!(stage))
            .unwrap_or_else(|| panic!("no progress of {stage}: {events:?}"));
        assert_eq!(last["done"], last["total"], "{stage}: {last}");
        assert!(
            events
                .iter()
                .any(|e| e["event"] == json!("finished") && e["stage"] == json!(stage)),
            "{stage}"
        );
    }
}

/// M4: what any room admin writes into a room's state (its name, its history visibility)
/// never reaches the terminal raw: no escape sequence, no bidirectional control, in
/// `rooms list`, `rooms plan` and `rooms move`.
#[test]
fn escape_sequences_in_room_state_never_reach_the_terminal() {
    let (org, personal) = (server_named("ORG"), server_named("PERSONAL"));
    let old = org.register("old");
    let new = personal.register("new");
    let room = old.create_room("plain");
    old.set_state(
        &room,
        "m.room.history_visibility",
        "",
        json!({"history_visibility": "joined\u{1b}]0;PWNED\u{7}\u{1b}[2J"}),
    );
    old.set_state(
        &room,
        "m.room.name",
        "",
        json!({"name": "x\u{202e}txt.exe\u{1b}[2J"}),
    );
    let s = Scratch::new();
    s.write("rooms.txt", &room);
    let raw = |o: &Output| {
        let all = format!("{}{}", stdout(o), stderr(o));
        all.contains('\u{1b}') || all.contains('\u{7}') || all.contains('\u{202e}')
    };
    let list = rooms_cmd((&old, &org.url), (&new, &personal.url), &["list"])
        .output()
        .unwrap();
    assert_code(&list, 0);
    assert!(!raw(&list), "{}", stdout(&list));
    assert!(stdout(&list).contains(&room));
    let rooms_file = s.path("rooms.txt");
    let rooms_file = rooms_file.to_str().unwrap();
    let plan = rooms_cmd(
        (&old, &org.url),
        (&new, &personal.url),
        &["plan", "--rooms-file", rooms_file],
    )
    .output()
    .unwrap();
    assert_code(&plan, 0);
    assert!(!raw(&plan), "{}", stdout(&plan));
    assert!(
        stdout(&plan).contains("history is 'joined ]0;PWNED"),
        "{}",
        stdout(&plan)
    );
    let state = s.path("j.jsonl");
    let moved = rooms_cmd(
        (&old, &org.url),
        (&new, &personal.url),
        &[
            "move",
            "--rooms-file",
            rooms_file,
            "--state",
            state.to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    assert_code(&moved, 0);
    assert!(!raw(&moved), "{}", stdout(&moved));
}

/// M5: a room whose state is larger than any ordinary answer (here 4.6 MB, as a room of
/// some 14,000 members has) is listed, planned and moved like any other.
#[test]
fn a_room_with_huge_state_is_listed_and_planned() {
    let (org, personal) = (server_named("ORG"), server_named("PERSONAL"));
    let old = org.register("old");
    let new = personal.register("new");
    let room = old.create_room("Huge state");
    let filler = "x".repeat(60_000);
    for i in 0..80 {
        old.set_state(
            &room,
            "org.example.filler",
            &i.to_string(),
            json!({"data": filler}),
        );
    }
    let s = Scratch::new();
    s.write("rooms.txt", &room);
    let list = rooms_cmd((&old, &org.url), (&new, &personal.url), &["list"])
        .output()
        .unwrap();
    assert_code(&list, 0);
    assert!(
        stdout(&list).contains(&format!("{room}  # Huge state")),
        "{}",
        stdout(&list)
    );
    let rooms_file = s.path("rooms.txt");
    let plan = rooms_cmd(
        (&old, &org.url),
        (&new, &personal.url),
        &[
            "plan",
            "--json",
            "--rooms-file",
            rooms_file.to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    assert_code(&plan, 0);
    let doc: Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(doc["rooms"][0]["facts"]["name"], json!("Huge state"));
}
