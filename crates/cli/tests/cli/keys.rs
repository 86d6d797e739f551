//! End-to-end tests of `matrix-transplant keys inspect|decrypt|encrypt`: real files,
//! the real binary, exit codes, messages, and the file-safety promises.

use crate::support::*;
use key_export::{armor, container, ExportedSession, Passphrase};

const PASS: &str = "correct horse battery staple";

fn setup(n: usize) -> (Scratch, Vec<ExportedSession>) {
    let s = Scratch::new();
    let sessions = sessions(n, 3);
    s.write("keys.txt", export(&sessions, PASS));
    s.write("pass", format!("{PASS}\n"));
    (s, sessions)
}

#[test]
fn decrypt_writes_the_json_mode_0600_and_leaves_the_input_alone() {
    let (s, sessions) = setup(6);
    let before = s.read("keys.txt");
    let o = s.run("keys decrypt %keys.txt --passphrase-file %pass -o %out.json");
    assert_code(&o, 0);
    assert!(stderr(&o).contains("decrypted 6 sessions"));
    let back: Vec<ExportedSession> = serde_json::from_slice(&s.read("out.json")).unwrap();
    assert_eq!(back, sessions);
    assert_eq!(s.mode("out.json"), 0o600);
    assert_eq!(s.read("keys.txt"), before);
    assert_eq!(s.names(), ["keys.txt", "out.json", "pass"]);
}

#[test]
fn passphrase_from_the_environment_and_stdin_stdout() {
    let (s, _) = setup(2);
    let o = bin()
        .args(["keys", "decrypt", "-", "-o", "-"])
        .env("MATRIX_TRANSPLANT_PASSPHRASE", PASS)
        .stdin(std::fs::File::open(s.path("keys.txt")).unwrap())
        .output()
        .unwrap();
    assert_code(&o, 0);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
}

#[test]
fn no_passphrase_source_and_no_terminal_is_a_clear_error() {
    let (s, _) = setup(1);
    let o = bin()
        .args(["keys", "inspect"])
        .arg(s.path("keys.txt"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_code(&o, 1);
    assert!(stderr(&o).contains("--passphrase-file"), "{}", stderr(&o));
}

#[test]
fn on_a_terminal_passphrases_are_asked_and_a_new_one_twice() {
    let (s, sessions) = setup(2);
    s.write("in.json", &*key_export::testkit::to_json(&sessions));
    let o = s.run_on_terminal(
        "keys encrypt %in.json --rounds 10 -o %new.txt",
        "fresh one\nfresh one\n",
    );
    assert_code(&o, 0);
    let screen = stdout(&o);
    assert!(
        screen.contains("New passphrase for the output:") && screen.contains("Type it again:"),
        "{screen}"
    );
    assert_eq!(s.sessions_in("new.txt", "fresh one"), sessions);
    // Two different typings: nothing is written.
    let o = s.run_on_terminal(
        "keys encrypt %in.json --rounds 10 -o %other.txt",
        "one\ntwo\n",
    );
    assert_code(&o, 1);
    assert!(
        stdout(&o).contains("the two passphrases differ"),
        "{}",
        stdout(&o)
    );
    assert!(!s.path("other.txt").exists());
    // Reading asks once; decrypted keys are not printed to the terminal.
    let o = s.run_on_terminal("keys inspect %new.txt", "fresh one\n");
    assert_code(&o, 0);
    assert!(
        stdout(&o).contains("Passphrase for") && stdout(&o).contains("2 distinct sessions"),
        "{}",
        stdout(&o)
    );
    let o = s.run_on_terminal("keys decrypt %new.txt", "fresh one\n");
    assert_code(&o, 1);
    assert!(
        stdout(&o).contains("refusing to print decrypted keys to the terminal"),
        "{}",
        stdout(&o)
    );
    // A filter on a terminal: Enter keeps the input's passphrase for the output.
    let o = s.run_on_terminal(
        "keys filter %new.txt --rounds 10 -o %kept.txt",
        "fresh one\n\n",
    );
    assert_code(&o, 0);
    assert_eq!(s.sessions_in("kept.txt", "fresh one"), sessions);
}

#[test]
fn the_passphrase_is_never_an_argument() {
    let o = Scratch::new().run("keys decrypt x --passphrase secret");
    assert_code(&o, 2);
    assert!(
        stderr(&o).contains("unexpected argument '--passphrase'"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn encrypt_then_decrypt_round_trips_and_matches_element_layout() {
    let (s, sessions) = setup(4);
    let json = key_export::testkit::to_json(&sessions);
    s.write("in.json", &*json);
    let o = s.run("keys encrypt %in.json --passphrase-file %pass --rounds 1000 -o %new.txt");
    assert_code(&o, 0);
    let text = String::from_utf8(s.read("new.txt")).unwrap();
    assert!(text.starts_with(armor::BEGIN) && text.ends_with(&format!("{}\n", armor::END)));
    assert!(text.lines().nth(1).unwrap().len() == 128);
    assert_eq!(s.mode("new.txt"), 0o600);
    let plain = container::decrypt(
        text.as_bytes(),
        0,
        &Passphrase::new(PASS.into()),
        &Default::default(),
    )
    .unwrap();
    assert_eq!(plain.header().rounds, 1000);
    assert_eq!(plain.as_bytes(), &json[..]);
}

#[test]
fn encrypt_refuses_invalid_entries_unless_allowed() {
    let (s, mut sessions) = setup(2);
    sessions[1].session_id = sessions[0].session_id.clone();
    s.write("in.json", &*key_export::testkit::to_json(&sessions));
    let o = s.run("keys encrypt %in.json --passphrase-file %pass --rounds 10 -o %new.txt");
    assert_code(&o, 5);
    assert!(
        stderr(&o).contains("entry 1") && stderr(&o).contains("session_id does not match"),
        "{}",
        stderr(&o)
    );
    assert!(!s.path("new.txt").exists());
    let o = s.run(
        "keys encrypt %in.json --passphrase-file %pass --rounds 10 --allow-invalid -o %new.txt",
    );
    assert_code(&o, 0);
}

#[test]
fn never_clobbers_without_force_and_never_writes_over_an_input() {
    let (s, _) = setup(1);
    s.write("out.json", "precious");
    let args = |force: bool| {
        let mut c = bin();
        c.args(["keys", "decrypt"])
            .arg(s.path("keys.txt"))
            .arg("--passphrase-file")
            .arg(s.path("pass"))
            .arg("-o")
            .arg(s.path("out.json"));
        if force {
            c.arg("--force");
        }
        c.output().unwrap()
    };
    let o = args(false);
    assert_code(&o, 6);
    assert!(stderr(&o).contains("--force"));
    assert_eq!(s.read("out.json"), b"precious");
    let o = args(true);
    assert_code(&o, 0);
    assert_ne!(s.read("out.json"), b"precious");
    assert_eq!(s.mode("out.json"), 0o600);
    let o = s.run("keys decrypt %keys.txt --passphrase-file %pass -o %keys.txt --force");
    assert_code(&o, 6);
    assert!(stderr(&o).contains("also an input"));
}

#[test]
fn inspect_reports_without_printing_keys() {
    let s = Scratch::new();
    let mut sessions = sessions(5, 2);
    let dev = key_export::testkit::Device::new();
    let mut t = dev.new_session("!GmZ1jXGQ9OYb0Sy4sZ0I2mG-9cxNtZx4ZI2Gw3hvzBs");
    sessions.push(t.export_at(10));
    sessions.push(t.export_at(3));
    let mut bad = sessions[0].clone();
    bad.sender_claimed_keys.clear();
    sessions.push(bad);
    s.write("keys.txt", export(&sessions, PASS));
    s.write("pass", PASS);
    let o = s.run("keys inspect %keys.txt --passphrase-file %pass --json");
    assert_code(&o, 0);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_schema("keys-inspect", &r);
    // The schema holds the document to its kind and its fields.
    let mut other = r.clone();
    other["format"] = serde_json::json!("matrix-transplant.keys-merge/1");
    assert_eq!(schema_errors("keys-inspect", &other).len(), 1);
    let mut other = r.clone();
    other.as_object_mut().unwrap().remove("rounds");
    other["sessions"] = serde_json::json!("8");
    assert_eq!(schema_errors("keys-inspect", &other).len(), 2, "{other}");
    assert_eq!(r["rounds"], 10);
    assert_eq!(r["sessions"], 8);
    assert_eq!(r["distinct_sessions"], 6);
    assert_eq!(r["rooms"].as_array().unwrap().len(), 3);
    assert_eq!(
        r["duplicates"][0]["first_known_indexes"],
        serde_json::json!([10, 3])
    );
    assert_eq!(r["invalid"][0]["index"], 7);
    assert_eq!(
        r["invalid"][0]["problem"]["kind"],
        "missing_claimed_ed25519"
    );
    assert_eq!(r["layout"]["longest_line"], 128);
    let human = s.run("keys inspect %keys.txt --passphrase-file %pass");
    assert_code(&human, 0);
    assert!(stdout(&human).contains("6 distinct sessions"));
    for sess in &sessions {
        for out in [stdout(&o), stdout(&human)] {
            assert!(
                !out.contains(sess.session_key.0.as_str()),
                "no key material is printed"
            );
        }
    }
}

/// One bad file per error kind: exit code, message, no output, input untouched.
#[test]
fn every_error_kind_through_the_binary() {
    let s = Scratch::new();
    s.write("pass", PASS);
    let good = export(&sessions(1, 1), PASS);
    let body_b64 = good.lines().nth(1).unwrap().to_owned();
    let seal_raw =
        |plain: &[u8]| container::encrypt(plain, &Passphrase::new(PASS.into()), 10).unwrap();
    let mut version2 = armor::dearmor(good.as_bytes()).unwrap().0;
    version2[0] = 2;
    let mut huge_rounds = armor::dearmor(good.as_bytes()).unwrap().0;
    huge_rounds[33..37].copy_from_slice(&u32::MAX.to_be_bytes());
    let cases: Vec<(&str, String, i32, &str)> = vec![
        (
            "not-export",
            "just some text\n".into(),
            3,
            "not a Matrix key export",
        ),
        (
            "truncated",
            good[..good.len() / 2].to_owned(),
            3,
            "truncated",
        ),
        (
            "bad-b64",
            format!("{}\n{}\n*bad*\n{}\n", armor::BEGIN, body_b64, armor::END),
            3,
            "bad base64 on line 3",
        ),
        (
            "short",
            format!("{}\nAQID\n{}\n", armor::BEGIN, armor::END),
            3,
            "only 3 bytes",
        ),
        (
            "version",
            armor::armor(&version2),
            3,
            "unsupported key-export version 2",
        ),
        ("rounds", armor::armor(&huge_rounds), 3, "--max-rounds"),
        ("not-utf8", seal_raw(b"[\"\xff\"]"), 3, "not UTF-8"),
        (
            "not-array",
            seal_raw(b"{\"a\": 1}"),
            3,
            "not an array of sessions",
        ),
        (
            "wrong-pass",
            export(&sessions(1, 1), "other"),
            4,
            "wrong passphrase",
        ),
    ];
    for (name, content, code, needle) in cases {
        s.write(name, &content);
        let o = s.run(&format!(
            "keys decrypt %{name} --passphrase-file %pass -o %out.json"
        ));
        assert_code(&o, code);
        assert!(stderr(&o).contains(needle), "{name}: {}", stderr(&o));
        assert!(stderr(&o).contains(name), "names the file: {}", stderr(&o));
        assert!(!s.path("out.json").exists(), "{name}: no output");
        assert_eq!(s.read(name), content.as_bytes(), "{name}: input untouched");
        assert!(
            !s.names().iter().any(|n| n.ends_with(".part")),
            "no temporary file left"
        );
    }
    // The cap at its boundary, set by the flag: a file of 11 rounds is refused under
    // --max-rounds 10 (with the flag named as the way out) and read under --max-rounds 11.
    s.write("eleven", export_at_rounds(&sessions(1, 1), PASS, 11));
    let o = s.run("keys inspect %eleven --passphrase-file %pass --max-rounds 10");
    assert_code(&o, 3);
    assert!(
        stderr(&o).contains("asks for 11 PBKDF2 rounds"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("--max-rounds"), "{}", stderr(&o));
    let o = s.run("keys inspect %eleven --passphrase-file %pass --max-rounds 11");
    assert_code(&o, 0);
    // Missing input file.
    let o = s.run("keys decrypt %nope --passphrase-file %pass -o %out.json");
    assert_code(&o, 1);
    assert!(stderr(&o).contains("cannot open"));
    // Rounds the writer refuses.
    s.write("in.json", "[]");
    let o = s.run("keys encrypt %in.json --passphrase-file %pass --rounds 0 -o %o.txt");
    assert_code(&o, 2);
    assert!(stderr(&o).contains("choose 1 to 2147483647"));
    assert!(!s.path("o.txt").exists());
}

/// No output, even with --force, goes over a file another argument names (the passphrase
/// file, the rooms file, the other output, a link to an input) or over something that is
/// not a regular file; each is refused before any work, and the file is left as it was.
#[test]
fn outputs_never_replace_other_arguments_or_special_files() {
    let s = Scratch::new();
    s.write("pass", PASS);
    s.write("keys.txt", export(&sessions(2, 1), PASS));
    s.write("rooms.txt", "!room0:example.org\n");
    std::os::unix::fs::symlink(s.path("keys.txt"), s.path("link.txt")).unwrap();
    let cases = [
        ("pass", "keys filter %keys.txt --passphrase-file %pass --rounds 10 --force -o %pass"),
        ("rooms.txt", "keys filter %keys.txt --passphrase-file %pass --rooms-file %rooms.txt --rounds 10 --force -o %rooms.txt"),
        ("keys.txt", "keys filter %keys.txt --passphrase-file %pass --rounds 10 --force -o %link.txt"),
        ("pass", "keys decrypt %keys.txt --passphrase-file %pass --force -o %pass"),
    ];
    for (victim, line) in cases {
        let before = s.read(victim);
        let o = s.run(line);
        assert_code(&o, 6);
        assert!(
            stderr(&o).contains("also an input"),
            "{line}: {}",
            stderr(&o)
        );
        assert_eq!(s.read(victim), before, "{line}: {victim} untouched");
    }
    // --conflicts and -o naming one file: refused, nothing written.
    let o = s.run("keys filter %keys.txt --passphrase-file %pass --rounds 10 --conflicts %same.json -o %same.json");
    assert_code(&o, 6);
    assert!(!s.path("same.json").exists());
    // A FIFO stays a FIFO.
    let fifo = s.path("fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let o = s.run("keys filter %keys.txt --passphrase-file %pass --rounds 10 --force -o %fifo");
    assert_code(&o, 6);
    assert!(stderr(&o).contains("not a regular file"), "{}", stderr(&o));
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
}

/// Sends `signal` to the processes whose command line mentions `marker`.
fn signal_all(signal: &str, marker: &str) {
    let ok = std::process::Command::new("pkill")
        .args([&format!("-{signal}"), "-f", marker])
        .status()
        .unwrap();
    assert!(ok.success(), "no process to signal");
}

/// Waits (bounded) until `check` holds.
fn wait_until(what: &str, check: impl Fn() -> bool) {
    for _ in 0..600 {
        if check() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("timed out waiting until {what}");
}

/// SIGTERM while decrypted keys are being written: the temporary file is removed and the
/// exit status says which signal; the next run in that folder reports any leftover.
#[test]
fn a_signal_removes_the_temporary_file_and_leftovers_are_reported() {
    let s = Scratch::new();
    s.write("pass", PASS);
    // The input comes from a pipe kept open, so the run waits with its temporary file made.
    let mut child = s
        .cmd("keys decrypt - --passphrase-file %pass -o %out.json")
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Held open until the process has ended (wait_with_output would close it first).
    let keyboard = child.stdin.take();
    let part = || s.names().iter().any(|n| n.ends_with(".part"));
    wait_until("the temporary file exists", part);
    signal_all("TERM", &s.path("out.json").display().to_string());
    let o = child.wait_with_output().unwrap();
    drop(keyboard);
    assert_eq!(o.status.code(), Some(143), "{}", stderr(&o));
    assert!(stderr(&o).contains("removed"), "{}", stderr(&o));
    assert!(!part(), "{:?}", s.names());
    assert!(!s.path("out.json").exists());
    // A leftover of a killed run (SIGKILL cannot be caught) is reported, not deleted.
    s.write(".matrix-transplant-killed.part", "plaintext");
    s.write("keys.txt", export(&sessions(1, 1), PASS));
    let o = s.run("keys decrypt %keys.txt --passphrase-file %pass -o %again.json");
    assert_code(&o, 0);
    assert!(
        stderr(&o).contains(".matrix-transplant-killed.part")
            && stderr(&o).contains("interrupted run"),
        "{}",
        stderr(&o)
    );
    assert!(s.path(".matrix-transplant-killed.part").exists());
}
