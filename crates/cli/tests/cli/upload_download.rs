//! End-to-end tests of `matrix-transplant upload|download` against the real Synapse
//! that scripts/test-all starts. They fail, never skip, when it is not running.

use std::process::Output;

use crate::support::*;
use key_export::{container, ExportedSession, Passphrase};
use online::backup::{self, BackupKey};
use online::testkit::{server, TestUser};

/// Runs a command line (see `Scratch::cmd`) as `user`, against the test server.
fn online(user: &TestUser, s: &Scratch, line: &str) -> std::process::Output {
    let mut c = s.cmd(line);
    c.env("MATRIX_ACCESS_TOKEN", &user.token);
    c.arg("--homeserver").arg(&server().url);
    c.output().unwrap()
}

#[test]
fn m_direct_download_build_and_upload() {
    let old = server().register("old");
    let new = server().register("new");
    let dm = old.create_room("dm");
    let s = Scratch::new();
    // The old account's m.direct, as its client wrote it.
    s.write(
        "old-set.json",
        format!(
            r#"{{"@peer:localhost": ["{dm}"], "{}": ["!self:localhost"]}}"#,
            old.user_id
        ),
    );
    let o = online(&old, &s, "upload direct %old-set.json");
    assert_code(&o, 0);
    let o = online(&old, &s, "download direct -o %old.json");
    assert_code(&o, 0);
    assert_eq!(s.mode("old.json"), 0o600);
    s.write("moving.txt", format!("{dm}\n!self:localhost\n"));
    let o = s.run(&format!(
        "direct build --from %old.json --rooms-file %moving.txt --old {} --new {} -o %new.json",
        old.user_id, new.user_id
    ));
    assert_code(&o, 0);
    // The new account already has an m.direct entry of its own: it must survive.
    s.write(
        "existing.json",
        r#"{"@friend:localhost": ["!f:localhost"]}"#,
    );
    assert_code(&online(&new, &s, "upload direct %existing.json"), 0);
    let o = online(&new, &s, "upload direct %new.json --dry-run");
    assert_code(&o, 0);
    assert!(
        stderr(&o).contains(&format!("+ @peer:localhost: {dm}")) && stderr(&o).contains("dry run"),
        "{}",
        stderr(&o)
    );
    let after_dry = online::direct::download(&new.client, &new.user_id).unwrap();
    assert_eq!(
        after_dry.to_value(),
        serde_json::json!({"@friend:localhost": ["!f:localhost"]})
    );
    let o = online(&new, &s, "upload direct %new.json");
    assert_code(&o, 0);
    let now = online::direct::download(&new.client, &new.user_id).unwrap();
    assert_eq!(
        now.to_value(),
        serde_json::json!({"@friend:localhost": ["!f:localhost"], "@peer:localhost": [dm]})
    );
    let o = online(&new, &s, "upload direct %new.json");
    assert!(stderr(&o).contains("nothing to do"));
}

#[test]
fn keys_upload_then_download_round_trip() {
    let user = server().register("keysup");
    let moving = user.create_room("moving");
    let s = Scratch::new();
    let dev = key_export::testkit::Device::new();
    let sessions: Vec<ExportedSession> = (0..300)
        .map(|i| {
            dev.new_session(if i % 3 == 0 {
                &moving
            } else {
                "!stays:localhost"
            })
            .export_at(i as u32 % 4)
        })
        .collect();
    s.write("keys.txt", export(&sessions, "pw"));
    s.write("pw", "pw");
    let (key, text) = BackupKey::generate();
    s.write("recovery", format!("{}\n", &*text));
    // No backup yet: a clear error, nothing else happens.
    let o = online(
        &user,
        &s,
        "upload keys %keys.txt --passphrase-file %pw --recovery-key-file %recovery",
    );
    assert_code(&o, 7);
    assert!(
        stderr(&o).contains("no server-side key backup"),
        "{}",
        stderr(&o)
    );
    backup::create_version(&user.client, &key).unwrap();
    // A wrong key: refused before anything is uploaded.
    let (_, wrong) = BackupKey::generate();
    s.write("wrong", &*wrong);
    let o = online(
        &user,
        &s,
        "upload keys %keys.txt --passphrase-file %pw --recovery-key-file %wrong",
    );
    assert_code(&o, 7);
    assert!(
        stderr(&o).contains("the key given is not that backup's own"),
        "{}",
        stderr(&o)
    );
    assert_eq!(backup::current(&user.client).unwrap().unwrap().count, 0);
    // Only the moving room's sessions.
    let o = online(
        &user,
        &s,
        &format!(
            "upload keys %keys.txt --passphrase-file %pw --recovery-key-file %recovery --room {}",
            moving
        ),
    );
    assert_code(&o, 0);
    assert!(
        stderr(&o).contains("uploaded 100 sessions") && stderr(&o).contains("(100 new)"),
        "{}",
        stderr(&o)
    );
    let o = online(
        &user,
        &s,
        &format!(
            "upload keys %keys.txt --passphrase-file %pw --recovery-key-file %recovery --room {}",
            moving
        ),
    );
    assert!(
        stderr(&o).contains("(0 new)"),
        "a rerun is safe: {}",
        stderr(&o)
    );
    // Back down into a new export.
    s.write("newpw", "fresh passphrase");
    let o = online(&user, &s, "download keys --recovery-key-file %recovery --out-passphrase-file %newpw --rounds 10 -o %from-backup.txt");
    assert_code(&o, 0);
    assert_eq!(s.mode("from-backup.txt"), 0o600);
    let plain = container::decrypt(
        &s.read("from-backup.txt")[..],
        0,
        &Passphrase::new("fresh passphrase".into()),
        &Default::default(),
    )
    .unwrap();
    let mut got: Vec<ExportedSession> = serde_json::from_slice(plain.as_bytes()).unwrap();
    // Each entry says it came from a backup; the rest is the session as uploaded.
    for g in &mut got {
        assert_eq!(
            g.other.remove(key_export::session::FROM_BACKUP),
            Some(serde_json::Value::Bool(true))
        );
    }
    assert!(stderr(&o).contains("not authenticated"), "{}", stderr(&o));
    let mut want: Vec<ExportedSession> = sessions
        .into_iter()
        .filter(|x| x.room_id == moving)
        .collect();
    got.sort_by(|a, b| a.session_id.cmp(&b.session_id));
    want.sort_by(|a, b| a.session_id.cmp(&b.session_id));
    assert_eq!(got, want);
}

#[test]
fn password_login_on_the_terminal_leaves_no_device_behind() {
    let user = server().register("pwlogin");
    let s = Scratch::new();
    let before = device_count(&user.client);
    let line = format!(
        "download direct --user {} --homeserver {} -o %d.json",
        user.user_id,
        server().url
    );
    let o = s.run_on_terminal(&line, &format!("{}\n", user.password));
    assert_code(&o, 0);
    assert_said_and_logged_out(&o, &format!("Password for {}", user.user_id), &user, before);
    assert_eq!(s.read("d.json"), b"{}\n");
    let o = s.run_on_terminal(&line.replace("%d.json", "%e.json"), "wrong password\n");
    assert_code(&o, 7);
    assert!(stdout(&o).contains("M_FORBIDDEN"), "{}", stdout(&o));
}

#[test]
fn credentials_are_never_sent_over_plain_http_to_another_machine() {
    let s = Scratch::new();
    s.write("d.json", "{}");
    let o = bin()
        .env("MATRIX_ACCESS_TOKEN", "secret-token")
        .args(["upload", "direct"])
        .arg(s.path("d.json"))
        .args(["--homeserver", "http://matrix.example.org"])
        .output()
        .unwrap();
    assert_code(&o, 2);
    assert!(
        stderr(&o).contains("plain http") && !stderr(&o).contains("secret-token"),
        "{}",
        stderr(&o)
    );
    // Told to use a token only, and given none: said before anything is sent.
    let o = bin()
        .env_remove("MATRIX_ACCESS_TOKEN")
        .args([
            "download",
            "direct",
            "--homeserver",
            "http://127.0.0.1:9",
            "--login",
            "token",
        ])
        .output()
        .unwrap();
    assert_code(&o, 2);
    assert!(
        stderr(&o)
            .contains("--login token: give --access-token-file PATH or set MATRIX_ACCESS_TOKEN"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn token_from_a_file_and_recovery_key_from_the_environment() {
    let user = server().register("sources");
    let room = user.create_room("moving");
    let s = Scratch::new();
    let sessions = sessions_of(&room, 5);
    s.write("keys.txt", export(&sessions, "pw"));
    s.write("pw", "pw");
    s.write("token", format!("{}\n", user.token));
    let (key, text) = BackupKey::generate();
    backup::create_version(&user.client, &key).unwrap();
    let o = s
        .cmd("upload keys %keys.txt --passphrase-file %pw --access-token-file %token --progress json")
        .arg("--homeserver")
        .arg(&server().url)
        .env("MATRIX_TRANSPLANT_RECOVERY_KEY", &*text)
        .output()
        .unwrap();
    assert_code(&o, 0);
    assert!(stderr(&o).contains("uploaded 5 sessions"), "{}", stderr(&o));
    // --progress json: the stages as JSON lines, the upload counted to its end.
    assert!(
        stderr(&o)
            .lines()
            .any(|l| l == r#"{"event":"progress","stage":"upload","done":5,"total":5}"#),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains(r#"{"event":"finished","stage":"check_backup"}"#),
        "{}",
        stderr(&o)
    );
    assert_eq!(backup::current(&user.client).unwrap().unwrap().count, 5);
    // A recovery key in the environment that is not this backup's: nothing is sent.
    let (_, other) = BackupKey::generate();
    let o = s
        .cmd("upload keys %keys.txt --passphrase-file %pw --access-token-file %token")
        .arg("--homeserver")
        .arg(&server().url)
        .env("MATRIX_TRANSPLANT_RECOVERY_KEY", &*other)
        .output()
        .unwrap();
    assert_code(&o, 7);
    assert!(
        stderr(&o).contains("the key given is not that backup's own"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn an_unreachable_homeserver_is_exit_7() {
    let s = Scratch::new();
    s.write("token", "t");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let o = s
        .cmd("download direct --access-token-file %token")
        .arg("--homeserver")
        .arg(format!("http://{closed}"))
        .output()
        .unwrap();
    assert_code(&o, 7);
    assert!(
        stderr(&o).contains("cannot reach the homeserver"),
        "{}",
        stderr(&o)
    );
}

/// The run's terminal showed `said`, and the device its login made is gone (the account
/// has the `before` devices it had).
fn assert_said_and_logged_out(o: &Output, said: &str, user: &TestUser, before: usize) {
    assert!(stdout(o).contains(said), "{}", stdout(o));
    assert_eq!(
        device_count(&user.client),
        before,
        "the session the tool opened was logged out"
    );
}

fn device_count(c: &online::Client) -> usize {
    let bytes = c
        .call(
            "list devices",
            online::client::Method::Get,
            &["v3", "devices"],
            &[],
            online::client::Body::None,
        )
        .unwrap();
    serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()["devices"]
        .as_array()
        .unwrap()
        .len()
}

#[test]
fn a_password_login_is_logged_out_when_the_job_fails_after_it() {
    let user = server().register("pwfail");
    let s = Scratch::new();
    s.write("keys.txt", export(&[], "pw"));
    s.write("pw", "pw");
    let (_, text) = BackupKey::generate();
    s.write("recovery", &*text);
    let before = device_count(&user.client);
    // The account has no backup: the job fails after the login.
    let line = format!(
        "upload keys %keys.txt --passphrase-file %pw --recovery-key-file %recovery --user {} --homeserver {}",
        user.user_id,
        server().url
    );
    let o = s.run_on_terminal(&line, &format!("{}\n", user.password));
    assert_code(&o, 7);
    assert_said_and_logged_out(&o, "no server-side key backup", &user, before);
}

/// A token of another account than --user names (a leftover in the environment): nothing
/// is written to either account.
#[test]
fn a_token_of_another_account_than_user_writes_nothing() {
    let alice = server().register("whoalice");
    let bob = server().register("whobob");
    let s = Scratch::new();
    s.write("new.json", r#"{"@peer:localhost": ["!dm:localhost"]}"#);
    let o = s
        .cmd("upload direct %new.json")
        .args(["--user", &alice.user_id, "--homeserver", &server().url])
        .env("MATRIX_ACCESS_TOKEN", &bob.token)
        .output()
        .unwrap();
    assert_code(&o, 2);
    assert!(
        stderr(&o).contains(&format!(
            "belongs to {}, not to {}",
            bob.user_id, alice.user_id
        )),
        "{}",
        stderr(&o)
    );
    for user in [&alice, &bob] {
        let map = online::direct::download(&user.client, &user.user_id).unwrap();
        assert!(map.is_empty(), "{} was not written", user.user_id);
    }
}

/// SIGTERM while a run that logged in with a password is working: its device is logged
/// out before the process ends.
#[test]
fn a_signal_logs_out_the_session_a_password_login_opened() {
    use std::io::Write;
    let user = server().register("pwsignal");
    let (key, text) = BackupKey::generate();
    backup::create_version(&user.client, &key).unwrap();
    let s = Scratch::new();
    s.write("pw", "pw");
    s.write("recovery", &*text);
    let before = device_count(&user.client);
    // The export comes from the terminal, which stays open: the run waits after its login.
    let line = format!(
        "upload keys - --passphrase-file %pw --recovery-key-file %recovery --user {} --homeserver {}",
        user.user_id,
        server().url
    );
    let mut child = s.spawn_on_terminal(&line);
    let mut keyboard = child.stdin.take().unwrap();
    keyboard
        .write_all(format!("{}\n", user.password).as_bytes())
        .unwrap();
    let mut logged_in = false;
    for _ in 0..600 {
        if device_count(&user.client) == before + 1 {
            logged_in = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(logged_in, "the run logged in");
    let tool = format!(
        "^{} upload keys - --passphrase-file {}",
        env!("CARGO_BIN_EXE_matrix-transplant"),
        s.path("pw").display()
    );
    let signalled = std::process::Command::new("pkill")
        .args(["-TERM", "-f", &tool])
        .status()
        .unwrap();
    assert!(signalled.success());
    let o = child.wait_with_output().unwrap();
    drop(keyboard);
    assert_said_and_logged_out(&o, "logged out the session", &user, before);
}

/// `-vv` shows each request, its status and the sizes of both bodies, and never a secret:
/// not the access token (given in a file, or made by a password login), not the password
/// typed at the terminal, not the recovery key, not the export's passphrase.
#[test]
fn verbose_logs_show_every_request_and_never_a_secret() {
    let user = server().register("verbose");
    let room = user.create_room("moving");
    let s = Scratch::new();
    let sessions = sessions_of(&room, 3);
    s.write("keys.txt", export(&sessions, "a passphrase"));
    s.write("pw", "a passphrase");
    s.write("token", format!("{}\n", user.token));
    let (key, text) = BackupKey::generate();
    s.write("recovery", text.as_bytes());
    backup::create_version(&user.client, &key).unwrap();
    let o = s
        .cmd("-vv upload keys %keys.txt --passphrase-file %pw --access-token-file %token --recovery-key-file %recovery")
        .arg("--homeserver")
        .arg(&server().url)
        .output()
        .unwrap();
    assert_code(&o, 0);
    let log = stderr(&o);
    let port = server().url.rsplit(':').next().unwrap().to_owned();
    assert!(
        log.contains(&format!(
            "PUT 127.0.0.1:{port}/_matrix/client/v3/room_keys/keys?version -> 200 in "
        )),
        "{log}"
    );
    assert!(
        log.contains("GET 127.0.0.1:") && log.contains("/account/whoami -> 200"),
        "{log}"
    );
    assert!(
        log.contains("  sent ") && log.contains("  received "),
        "{log}"
    );
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    for secret in [user.token.as_str(), &*text, &compact, "a passphrase"] {
        assert!(!log.contains(secret), "{secret} in {log}");
    }

    // A password login at the terminal: neither the password nor the token it makes.
    let line = format!(
        "-vv download direct --user {} --homeserver {} -o %d.json",
        user.user_id,
        server().url
    );
    let (code, screen) = s.run_answering(
        &line,
        &[(&format!("Password for {}", user.user_id), &user.password)],
    );
    assert_eq!(code, Some(0), "{screen}");
    assert!(
        screen.contains("POST 127.0.0.1:") && screen.contains("/login -> 200"),
        "{screen}"
    );
    assert!(screen.contains("/logout -> 200"), "{screen}");
    assert!(!screen.contains(&user.password), "{screen}");
    assert!(!screen.contains("syt_"), "a Synapse access token: {screen}");
}

/// On a terminal, `upload keys` draws a progress bar of the sessions sent, and clears it at
/// the end.
#[test]
fn upload_keys_draws_a_progress_bar_on_a_terminal() {
    let user = server().register("bar");
    let s = Scratch::new();
    let sessions = crate::support::sessions(600, 3);
    s.write("keys.txt", export(&sessions, "pw"));
    s.write("pw", "pw");
    let (key, text) = BackupKey::generate();
    s.write("recovery", &*text);
    backup::create_version(&user.client, &key).unwrap();
    let (code, screen) = s.screen_of(
        &format!(
            "upload keys %keys.txt --passphrase-file %pw --recovery-key-file %recovery --batch 20 --homeserver {}",
            server().url
        ),
        &[("MATRIX_ACCESS_TOKEN", &user.token)],
    );
    assert_eq!(code, Some(0), "{screen}");
    // indicatif draws at most 20 times a second: at least one frame of the 30 batches.
    let frames: Vec<&str> = screen
        .split(['\r', '\n'])
        .filter(|l| l.contains("/600 sessions"))
        .collect();
    assert!(!frames.is_empty(), "no progress bar: {screen:?}");
    assert!(
        frames.iter().any(|f| f.contains('█') || f.contains('░')),
        "{frames:?}"
    );
    assert!(screen.contains("uploaded 600 sessions"), "{screen}");
    assert_eq!(backup::current(&user.client).unwrap().unwrap().count, 600);
}

/// A security phrase given as a recovery key, and the reverse, are told apart before
/// anything is sent, each naming the flag that takes it; both at once is a usage error.
#[test]
fn a_phrase_for_a_key_and_a_key_for_a_phrase_are_refused_with_the_right_flag() {
    let s = Scratch::new();
    let (_, key) = BackupKey::generate();
    s.write("key.txt", format!("{}\n", key.as_str()));
    s.write("phrase.txt", "correct horse battery staple\n");
    s.write("token", "not used");
    // A port nothing listens on: had anything been sent, the exit would be 7.
    let base =
        "download keys --homeserver http://127.0.0.1:9 --access-token-file %token -o %out.txt";
    let o = s.run(&format!("{base} --recovery-key-file %phrase.txt"));
    assert_code(&o, 2);
    assert!(
        stderr(&o).contains("looks like a security phrase"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("--security-phrase-file"),
        "{}",
        stderr(&o)
    );
    let o = s.run(&format!("{base} --security-phrase-file %key.txt"));
    assert_code(&o, 2);
    assert!(
        stderr(&o).contains("this is a recovery key, not a security phrase"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("--recovery-key-file"), "{}", stderr(&o));
    let o = s.run(&format!(
        "{base} --recovery-key-file %key.txt --security-phrase-file %phrase.txt"
    ));
    assert_code(&o, 2);
    assert!(!s.path("out.txt").exists());
}
