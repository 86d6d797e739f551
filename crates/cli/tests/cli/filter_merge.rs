//! End-to-end tests of `matrix-transplant keys filter` and `keys merge`.

use crate::support::*;
use key_export::testkit::Device;
use key_export::ExportedSession;

fn index(s: &ExportedSession) -> u32 {
    use base64::Engine;
    let b = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(s.session_key.0.as_str())
        .unwrap();
    u32::from_be_bytes(b[1..5].try_into().unwrap())
}

#[test]
fn filter_keeps_exactly_the_moving_rooms_with_the_input_passphrase() {
    let s = Scratch::new();
    let all = sessions(12, 4); // rooms 0..3
    s.write("keys.txt", export(&all, "old"));
    s.write("pass", "old\n");
    s.write("rooms.txt", "# moving to the personal account\n!room1:example.org\n\n!room3:example.org  # book club\n!gone:example.org\n");
    let o = s.run("keys filter %keys.txt --passphrase-file %pass --rooms-file %rooms.txt --rounds 10 -o %moving.txt");
    assert_code(&o, 0);
    let kept = s.sessions_in("moving.txt", "old");
    let want: Vec<&ExportedSession> = all
        .iter()
        .filter(|x| x.room_id == "!room1:example.org" || x.room_id == "!room3:example.org")
        .collect();
    assert_eq!(kept.iter().collect::<Vec<_>>(), want);
    let err = stderr(&o);
    assert!(
        err.contains("kept             6 sessions in 2 rooms"),
        "{err}"
    );
    assert!(
        err.contains("!gone:example.org"),
        "rooms without keys are listed: {err}"
    );
    assert_eq!(s.mode("moving.txt"), 0o600);

    // --exclude inverts; a new passphrase from a file.
    s.write("newpass", "fresh");
    let o = s.run("keys filter %keys.txt --passphrase-file %pass --room !room1:example.org --exclude --out-passphrase-file %newpass --rounds 10 -o %rest.txt");
    assert_code(&o, 0);
    let rest = s.sessions_in("rest.txt", "fresh");
    assert_eq!(rest.len(), 9);
    assert!(rest.iter().all(|x| x.room_id != "!room1:example.org"));
}

#[test]
fn merge_of_two_devices_keeps_the_best_copy_and_reports() {
    let s = Scratch::new();
    let dev = Device::new();
    let mut t: Vec<_> = (0..5)
        .map(|i| dev.new_session(&format!("!r{}:example.org", i % 2)))
        .collect();
    let laptop = vec![t[0].export_at(10), t[1].export_at(0), t[2].export_at(4)];
    let phone = vec![
        t[0].export_at(2),
        t[1].export_at(7),
        t[3].export_at(0),
        t[4].forged_at(0),
    ];
    let mut laptop = laptop;
    laptop.push(t[4].export_at(1));
    s.write("laptop.txt", export(&laptop, "lap"));
    s.write("phone.txt", export(&phone, "pho"));
    s.write("p1", "lap");
    s.write("p2", "pho");
    // A conflict: the output is written, and the exit status says so.
    let o = s.run("keys merge %laptop.txt %phone.txt --passphrase-file %p1 --passphrase-file %p2 --rounds 10 --conflicts %flagged.json -o %flagged.txt");
    assert_code(&o, 5);
    assert!(stderr(&o).contains("--allow-conflicts"), "{}", stderr(&o));
    assert_eq!(s.sessions_in("flagged.txt", "lap").len(), 5);
    let o = s.run("keys merge %laptop.txt %phone.txt --passphrase-file %p1 --passphrase-file %p2 --rounds 10 --json --allow-conflicts --conflicts %conflicts.json -o %merged.txt");
    assert_code(&o, 0);
    assert_schema("keys-merge", &serde_json::from_slice(&o.stdout).unwrap());
    let merged = s.sessions_in("merged.txt", "lap");
    let got: Vec<(String, u32)> = merged
        .iter()
        .map(|x| (x.session_id.clone(), index(x)))
        .collect();
    let want: Vec<(String, u32)> = [(0, 2), (1, 0), (2, 4), (4, 1), (3, 0)]
        .iter()
        .map(|&(i, x)| (t[i].session_id().to_owned(), x))
        .collect();
    assert_eq!(got, want);
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["summary"]["read"], serde_json::json!([4, 4]));
    assert_eq!(summary["summary"]["kept"], 5);
    assert_eq!(summary["summary"]["duplicates_merged"], 2);
    assert_eq!(summary["summary"]["upgraded"], 1);
    assert_eq!(summary["summary"]["conflicts"], 1);
    let conflicts: serde_json::Value = serde_json::from_slice(&s.read("conflicts.json")).unwrap();
    assert_eq!(conflicts[0]["kind"], "unconnected");
    assert_eq!(conflicts[0]["session_id"], t[4].session_id());
    assert_eq!(s.mode("conflicts.json"), 0o600);

    let o = s.run("keys merge %laptop.txt %phone.txt --passphrase-file %p1 --passphrase-file %p2 --strict -o %strict.txt");
    assert_code(&o, 5);
    assert!(
        stderr(&o).contains("Unconnected") && stderr(&o).contains("--strict"),
        "{}",
        stderr(&o)
    );
    assert!(!s.path("strict.txt").exists());
}

#[test]
fn merge_errors_invalid_entries_bad_rooms_and_passphrase_counts() {
    let s = Scratch::new();
    let mut a = sessions(3, 1);
    a[2].sender_claimed_keys.clear();
    s.write("a.txt", export(&a, "pw"));
    s.write("b.txt", export(&sessions(2, 1), "pw"));
    s.write("pw", "pw");
    let base = |extra: &[&str], out: &str| {
        let mut c = bin();
        c.args(["keys", "merge"])
            .arg(s.path("a.txt"))
            .arg(s.path("b.txt"))
            .arg("--passphrase-file")
            .arg(s.path("pw"))
            .args(["--rounds", "10"]);
        c.args(extra).arg("-o").arg(s.path(out));
        c.output().unwrap()
    };
    let o = base(&[], "m.txt");
    assert_code(&o, 5);
    assert!(
        stderr(&o).contains("a.txt: 1 entries fail validation") && stderr(&o).contains("entry 2"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("--drop-invalid"));
    assert!(!s.path("m.txt").exists());
    let o = base(&["--drop-invalid"], "m.txt");
    assert_code(&o, 0);
    assert!(
        stderr(&o).contains("invalid          1 (left out)"),
        "{}",
        stderr(&o)
    );
    assert_eq!(s.sessions_in("m.txt", "pw").len(), 4);

    s.write("rooms.txt", "!ok:example.org\n@bob:example.org\n");
    let o = base(
        &[
            "--drop-invalid",
            "--rooms-file",
            s.path("rooms.txt").to_str().unwrap(),
        ],
        "r.txt",
    );
    assert_code(&o, 3);
    assert!(
        stderr(&o).contains("line 2") && stderr(&o).contains("@bob"),
        "{}",
        stderr(&o)
    );

    let o = s.run(
        "keys merge %a.txt %b.txt %b.txt --passphrase-file %pw --passphrase-file %pw -o %x.txt",
    );
    assert_code(&o, 2);
    assert!(stderr(&o).contains("one per input"));
}

#[test]
fn an_empty_selection_result_is_a_valid_empty_export() {
    let s = Scratch::new();
    s.write("k.txt", export(&sessions(3, 1), "pw"));
    s.write("pw", "pw");
    let o = s.run("keys filter %k.txt --passphrase-file %pw --room !elsewhere:example.org --rounds 10 -o %empty.txt");
    assert_code(&o, 0);
    assert!(s.sessions_in("empty.txt", "pw").is_empty());
    // matrix-sdk-crypto reads it as an export with no keys.
    let sdk = matrix_sdk_crypto::decrypt_room_key_export(&s.read("empty.txt")[..], "pw")
        .expect("matrix-sdk-crypto imports the empty export");
    assert!(sdk.is_empty());
}

/// `-q`: the same filter prints nothing but writes the same file; an error still says
/// what is wrong.
#[test]
fn quiet_prints_errors_only() {
    let s = Scratch::new();
    s.write("keys.txt", export(&sessions(4, 2), "old"));
    s.write("pass", "old\n");
    let o = s.run("-q keys filter %keys.txt --passphrase-file %pass --room !room1:example.org --rounds 10 -o %moving.txt");
    assert_code(&o, 0);
    assert_eq!(stderr(&o), "", "nothing but errors");
    assert_eq!(s.sessions_in("moving.txt", "old").len(), 2);
    let loud = s.run("keys filter %keys.txt --passphrase-file %pass --room !room1:example.org --rounds 10 -o %again.txt");
    assert!(stderr(&loud).contains("kept"), "{}", stderr(&loud));
    s.write("wrong", "not it\n");
    let o = s.run(
        "-q keys filter %keys.txt --passphrase-file %wrong --room !room1:example.org -o %x.txt",
    );
    assert_ne!(o.status.code(), Some(0));
    assert!(
        stderr(&o).starts_with("matrix-transplant: "),
        "{}",
        stderr(&o)
    );
}

/// `--progress json`: the local keys jobs tell their stages as JSON lines too (reading the
/// inputs, then writing the new export with its session count); `keys inspect` its one.
#[test]
fn progress_json_tells_the_stages_of_a_merge_and_an_inspect() {
    let s = Scratch::new();
    let sessions = crate::support::sessions(12, 3);
    s.write("a.txt", export(&sessions[..8], "pw"));
    s.write("b.txt", export(&sessions[4..], "pw"));
    s.write("pw", "pw");
    let o = s.run(
        "--progress json keys merge %a.txt %b.txt --passphrase-file %pw --rounds 10 -o %m.txt",
    );
    assert_code(&o, 0);
    let events: Vec<serde_json::Value> = stderr(&o)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        events,
        [
            serde_json::json!({"event": "started", "stage": "read_exports", "total": 2}),
            serde_json::json!({"event": "progress", "stage": "read_exports", "done": 2, "total": 2}),
            serde_json::json!({"event": "finished", "stage": "read_exports"}),
            serde_json::json!({"event": "started", "stage": "write_export", "total": 12}),
            serde_json::json!({"event": "finished", "stage": "write_export"}),
        ]
    );
    let o = s.run("keys inspect %m.txt --passphrase-file %pw --progress json");
    assert_code(&o, 0);
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines,
        [
            r#"{"event":"started","stage":"read_exports","total":null}"#,
            r#"{"event":"finished","stage":"read_exports"}"#
        ]
    );
}
