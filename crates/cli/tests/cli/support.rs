//! Helpers shared by the end-to-end tests of the binary.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};

use key_export::testkit::{self, Device};
use key_export::ExportedSession;

/// A scratch folder with named files.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        Scratch {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    pub fn write(&self, name: &str, data: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(name);
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(&p, data).unwrap();
        p
    }
    pub fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap()
    }
    /// Every file name in the folder, sorted (to prove no temporary file is left).
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
    /// The binary with the arguments of `line`, split at spaces; a word `%name` stands
    /// for the path of `name` in this folder.
    pub fn cmd(&self, line: &str) -> Command {
        let mut c = bin();
        for word in line.split_whitespace() {
            match word.strip_prefix('%') {
                Some(name) => c.arg(self.path(name)),
                None => c.arg(word),
            };
        }
        c
    }

    /// Runs [`Scratch::cmd`] and waits for it.
    pub fn run(&self, line: &str) -> Output {
        self.cmd(line).output().unwrap()
    }

    /// Runs `line` (as in [`Scratch::cmd`]) on a pseudo-terminal made by `script`, with
    /// `typed` as the keyboard: what a person at a terminal would see and do. No
    /// passphrase is in the environment.
    pub fn run_on_terminal(&self, line: &str, typed: &str) -> Output {
        use std::io::Write;
        let mut child = self.spawn_on_terminal(line);
        child
            .stdin
            .take()
            .unwrap()
            .write_all(typed.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// Runs `line` on a pseudo-terminal and answers each prompt of `answers` (the prompt's
    /// text, what to type) once it is on the screen: typed ahead, the terminal itself would
    /// echo an answer before the tool turns echo off. Returns the exit code and the screen.
    pub fn run_answering(&self, line: &str, answers: &[(&str, &str)]) -> (Option<i32>, String) {
        use std::io::{Read, Write};
        use std::sync::{Arc, Mutex};
        let started = std::time::Instant::now();
        let mut child = self.spawn_on_terminal(line);
        let screen = Arc::new(Mutex::new(String::new()));
        let reader = {
            let (screen, mut out) = (screen.clone(), child.stdout.take().unwrap());
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = out.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    screen
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            })
        };
        let mut keyboard = child.stdin.take().unwrap();
        for (prompt, answer) in answers {
            while !screen.lock().unwrap().contains(prompt) {
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(60),
                    "no prompt {prompt:?}: {}",
                    screen.lock().unwrap()
                );
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            // A prompt is printed before the terminal's echo is turned off: typed at once,
            // the answer could be echoed and lost.
            std::thread::sleep(std::time::Duration::from_millis(300));
            if writeln!(keyboard, "{answer}").is_err() {
                break; // it ended: the caller sees how, on the screen
            }
        }
        let status = child.wait().unwrap();
        reader.join().unwrap();
        let text = screen.lock().unwrap().clone();
        (status.code(), text)
    }

    /// Runs `line` on a pseudo-terminal (`TERM=xterm`) with `env` set and nothing typed;
    /// returns the exit code and everything the terminal showed, escape sequences included.
    pub fn screen_of(&self, line: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
        let mut c = self.terminal_command(line);
        c.env("TERM", "xterm").env_remove("NO_COLOR");
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c
            .stdin(std::process::Stdio::null())
            .output()
            .expect("script(1) from util-linux");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// Starts `line` (as in [`Scratch::cmd`]) on a pseudo-terminal made by `script`, its
    /// keyboard a pipe the caller writes to and keeps open.
    pub fn spawn_on_terminal(&self, line: &str) -> std::process::Child {
        self.terminal_command(line)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("script(1) from util-linux")
    }

    /// `script` running `line` (as in [`Scratch::cmd`]) on a pseudo-terminal.
    fn terminal_command(&self, line: &str) -> Command {
        let mut words = vec![env!("CARGO_BIN_EXE_matrix-transplant").to_owned()];
        for word in line.split_whitespace() {
            words.push(match word.strip_prefix('%') {
                Some(name) => self.path(name).display().to_string(),
                None => word.to_owned(),
            });
        }
        let mut c = Command::new("script");
        c.args(["-qec", &words.join(" "), "/dev/null"])
            .env_remove("MATRIX_TRANSPLANT_PASSPHRASE")
            .env_remove("MATRIX_TRANSPLANT_OUT_PASSPHRASE");
        c
    }

    /// The sessions in the export `name`, decrypted with `pass`.
    pub fn sessions_in(&self, name: &str, pass: &str) -> Vec<ExportedSession> {
        let text = self.read(name);
        let pass = key_export::Passphrase::new(pass.into());
        let plain =
            key_export::container::decrypt(&text[..], 0, &pass, &Default::default()).unwrap();
        serde_json::from_slice(plain.as_bytes()).unwrap()
    }

    pub fn mode(&self, name: &str) -> u32 {
        std::fs::metadata(self.path(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    }
}

/// The binary, with no passphrase in its environment and no terminal: `setsid` starts it
/// in a new session, so even when the tests run in a terminal it cannot prompt.
pub fn bin() -> Command {
    let mut c = Command::new("setsid");
    c.arg("-w").arg(env!("CARGO_BIN_EXE_matrix-transplant"));
    c.env_remove("MATRIX_TRANSPLANT_PASSPHRASE");
    c.env_remove("MATRIX_TRANSPLANT_OUT_PASSPHRASE");
    c
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts an exit code, showing stderr when it differs.
pub fn assert_code(o: &Output, code: i32) {
    assert_eq!(o.status.code(), Some(code), "stderr: {}", stderr(o));
}

/// `n` real sessions spread over `rooms` rooms, exported at index `5 * i`.
pub fn sessions(n: usize, rooms: usize) -> Vec<ExportedSession> {
    let device = Device::new();
    (0..n)
        .map(|i| {
            device
                .new_session(&format!("!room{}:example.org", i % rooms))
                .export_at(5 * i as u32)
        })
        .collect()
}

/// `n` sessions of `room`, each a session of its own from one device, exported at index
/// 0, 1, …
pub fn sessions_of(room: &str, n: u32) -> Vec<ExportedSession> {
    let device = Device::new();
    (0..n)
        .map(|i| device.new_session(room).export_at(i))
        .collect()
}

pub fn export(sessions: &[ExportedSession], pass: &str) -> String {
    export_at_rounds(sessions, pass, 10)
}

pub fn export_at_rounds(sessions: &[ExportedSession], pass: &str, rounds: u32) -> String {
    testkit::export_file(sessions, pass, rounds).unwrap()
}

/// Checks `doc` against the committed JSON Schema `docs/schemas/<kind>.json` (and that it
/// says it is that kind).
pub fn assert_schema(kind: &str, doc: &serde_json::Value) {
    let errors = schema_errors(kind, doc);
    assert!(errors.is_empty(), "{kind}: {errors:#?}\n{doc:#}");
}

/// What the committed JSON Schema `docs/schemas/<kind>.json` finds wrong with `doc`.
pub fn schema_errors(kind: &str, doc: &serde_json::Value) -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/schemas")
        .join(format!("{kind}.json"));
    let schema: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect()
}

/// A DM of `old` with `peer`, as Element makes one (a v12 room, `trusted_private_chat`),
/// joined by the peer and in `old`'s m.direct.
pub fn element_dm(old: &online::testkit::TestUser, peer: &online::testkit::TestUser) -> String {
    let via = vec![old.server_name().to_owned()];
    let dm = old.create_room_with(serde_json::json!({
        "preset": "trusted_private_chat", "is_direct": true, "invite": [peer.user_id]
    }));
    peer.join(&dm, &via);
    let map = serde_json::json!({ peer.user_id.clone(): [dm] }).to_string();
    let direct = m_direct::DirectMap::parse(&map).unwrap();
    online::direct::replace(&old.client, &old.user_id, &direct).unwrap();
    dm
}

/// `owner`'s room that `old` is in but may not invite into (inviting needs 50, it has 0).
pub fn room_old_cannot_invite(
    owner: &online::testkit::TestUser,
    old: &online::testkit::TestUser,
) -> String {
    let room = owner.create_room_with(
        serde_json::json!({"name": "Carol's", "preset": "private_chat",
        "invite": [old.user_id], "power_level_content_override": {"invite": 50}}),
    );
    old.join(&room, &[owner.server_name().to_owned()]);
    room
}

/// Puts `sessions` into the account's backup (made with `key` if it has none).
pub fn back_up(
    user: &online::testkit::TestUser,
    key: &online::backup::BackupKey,
    sessions: &[ExportedSession],
) {
    use online::backup;
    if backup::current(&user.client).unwrap().is_none() {
        backup::create_version(&user.client, key).unwrap();
    }
    let info = backup::current(&user.client).unwrap().unwrap();
    let raws = exported(sessions);
    let refs: Vec<key_export::SessionRef<'_>> = raws
        .iter()
        .map(|r| key_export::SessionRef::parse(r))
        .collect();
    let refs: Vec<&key_export::SessionRef<'_>> = refs.iter().collect();
    backup::upload(&user.client, &info, key, &refs, 100, &|_| {}).unwrap();
}

/// The sessions as raw JSON entries.
pub fn exported(sessions: &[ExportedSession]) -> Vec<Box<serde_json::value::RawValue>> {
    sessions
        .iter()
        .map(|s| serde_json::value::RawValue::from_string(s.to_json()).unwrap())
        .collect()
}
