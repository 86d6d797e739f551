//! The key backup's floor, for benches/backup.sh: the time the server itself needs for what
//! `upload keys` and `download keys` ask of it, measured by a client that does nothing else.
//!
//! - `backup-floor upload DIR EXPORT`: builds, untimed, the very bodies `upload keys` sends
//!   for EXPORT (the same sessions in the same order, the same batches, the same sealing to
//!   the backup of the account in DIR), then replays only them, one request at a time as
//!   the tool sends them, and prints the seconds that took.
//! - `backup-floor download DIR`: reads the whole `GET /room_keys/keys` answer to its end,
//!   parsing nothing, and prints the seconds and the bytes.
//!
//! DIR holds `token` and `recovery-key` (benches/bench-account); the homeserver is
//! `$MATRIX_TRANSPLANT_TEST_HOMESERVER` and the export's passphrase
//! `$MATRIX_TRANSPLANT_PASSPHRASE`.

use std::io::Read;
use std::path::Path;
use std::time::Instant;

use key_export::merge::MergeOptions;
use key_export::pipeline::{self, Source};
use key_export::{Passphrase, ReadOptions, SessionRef};
use online::backup::{self, BackupKey, Encryptor};
use online::{AccessToken, Client, Homeserver};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let hs = std::env::var("MATRIX_TRANSPLANT_TEST_HOMESERVER").expect("the homeserver");
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["upload", dir, export] => upload(&hs, Path::new(dir), Path::new(export)),
        ["download", dir] => download(&hs, Path::new(dir)),
        _ => panic!("usage: backup-floor upload DIR EXPORT | backup-floor download DIR"),
    }
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name))
        .unwrap()
        .trim()
        .to_owned()
}

fn upload(hs: &str, dir: &Path, export: &Path) {
    let token = read(dir, "token");
    let client = Client::new(
        Homeserver::parse(hs, true).unwrap(),
        AccessToken::new(&token),
    );
    let info = backup::current(&client).unwrap().expect("a backup");
    let key = BackupKey::parse(&read(dir, "recovery-key")).unwrap();
    info.check_key(&key).unwrap();
    let passphrase = std::env::var("MATRIX_TRANSPLANT_PASSPHRASE").expect("the passphrase");
    let file = std::fs::File::open(export).unwrap();
    let source = Source {
        name: export.display().to_string(),
        len: file.metadata().unwrap().len() as usize,
        reader: file,
        passphrase: Passphrase::new(passphrase),
    };
    let decrypted = pipeline::decrypt_all(vec![source], &ReadOptions::default()).unwrap();
    let options = MergeOptions::default();
    let parsed = decrypted.parse(&options).unwrap();
    let merged = parsed.merge(&options).unwrap();
    // As online::backup::upload orders and batches them.
    let mut sessions: Vec<&SessionRef<'_>> = merged.sessions.clone();
    sessions.sort_by(|a, b| a.room_id.cmp(&b.room_id));
    let encryptor = Encryptor::new(&info, &key).unwrap();
    let bodies: Vec<Vec<u8>> = sessions
        .chunks(backup::DEFAULT_BATCH)
        .map(|chunk| backup::encrypt::encrypt_batch(&encryptor, &key, chunk).unwrap())
        .collect();
    let url = format!(
        "{}/_matrix/client/v3/room_keys/keys?version={}",
        hs.trim_end_matches('/'),
        info.version
    );
    let agent = ureq::agent();
    let started = Instant::now();
    for body in &bodies {
        let answer = agent
            .put(&url)
            .set("Authorization", &format!("Bearer {token}"))
            .set("Content-Type", "application/json")
            .send_bytes(body)
            .expect("the server stores the batch");
        std::io::copy(&mut answer.into_reader(), &mut std::io::sink()).unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{seconds:.3} s {} sessions {} requests",
        sessions.len(),
        bodies.len()
    );
}

fn download(hs: &str, dir: &Path) {
    let token = read(dir, "token");
    let client = Client::new(
        Homeserver::parse(hs, true).unwrap(),
        AccessToken::new(&token),
    );
    let info = backup::current(&client).unwrap().expect("a backup");
    let url = format!(
        "{}/_matrix/client/v3/room_keys/keys?version={}",
        hs.trim_end_matches('/'),
        info.version
    );
    let started = Instant::now();
    let answer = ureq::get(&url)
        .set("Authorization", &format!("Bearer {token}"))
        .call()
        .expect("the server answers");
    let mut reader = answer.into_reader().take(u64::MAX);
    let bytes = std::io::copy(&mut reader, &mut std::io::sink()).unwrap();
    let seconds = started.elapsed().as_secs_f64();
    println!("{seconds:.3} s {bytes} bytes");
}
