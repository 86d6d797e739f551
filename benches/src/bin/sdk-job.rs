//! The same jobs as `matrix-transplant keys decrypt|filter|merge`, done with
//! matrix-sdk-crypto's own `decrypt_room_key_export` / `encrypt_room_key_export`: the
//! baseline of benches/compare.sh.
//!
//! sdk-job decrypt IN PASSFILE OUT.json
//! sdk-job filter IN PASSFILE ROOMS.txt OUT
//! sdk-job merge A B PASSFILE OUT [ROOMS.txt]   (keeps the copy with the lowest index, as we do)

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::BufReader;

use matrix_sdk_crypto::olm::ExportedRoomKey;
use matrix_sdk_crypto::{decrypt_room_key_export, encrypt_room_key_export};

fn pass(path: &str) -> String {
    std::fs::read_to_string(path)
        .expect("passphrase file")
        .trim_end_matches('\n')
        .to_owned()
}

fn read(path: &str, pass: &str) -> Vec<ExportedRoomKey> {
    decrypt_room_key_export(BufReader::new(File::open(path).expect("input")), pass)
        .expect("decrypt")
}

fn index(k: &ExportedRoomKey) -> u32 {
    u32::from_be_bytes(k.session_key.to_bytes()[1..5].try_into().expect("4 bytes"))
}

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    match a[0].as_str() {
        "decrypt" => {
            let keys = read(&a[1], &pass(&a[2]));
            std::fs::write(&a[3], serde_json::to_vec(&keys).expect("json")).expect("write");
        }
        "filter" => {
            let p = pass(&a[2]);
            let rooms: HashSet<String> = std::fs::read_to_string(&a[3])
                .expect("rooms")
                .lines()
                .map(str::to_owned)
                .collect();
            let keys: Vec<ExportedRoomKey> = read(&a[1], &p)
                .into_iter()
                .filter(|k| rooms.contains(k.room_id.as_str()))
                .collect();
            std::fs::write(
                &a[4],
                encrypt_room_key_export(&keys, &p, 500_000).expect("encrypt"),
            )
            .expect("write");
        }
        "merge" => {
            let p = pass(&a[3]);
            let (ka, kb) = std::thread::scope(|s| {
                let x = s.spawn(|| read(&a[1], &p));
                let y = read(&a[2], &p);
                (x.join().expect("thread"), y)
            });
            let rooms: Option<HashSet<String>> = a.get(5).map(|f| {
                std::fs::read_to_string(f)
                    .expect("rooms")
                    .lines()
                    .map(str::to_owned)
                    .collect()
            });
            let mut best: HashMap<(String, String), ExportedRoomKey> = HashMap::new();
            for k in ka.into_iter().chain(kb) {
                if rooms
                    .as_ref()
                    .is_some_and(|r| !r.contains(k.room_id.as_str()))
                {
                    continue;
                }
                let id = (k.room_id.to_string(), k.session_id.clone());
                match best.get(&id) {
                    Some(old) if index(old) <= index(&k) => {}
                    _ => {
                        best.insert(id, k);
                    }
                }
            }
            let keys: Vec<ExportedRoomKey> = best.into_values().collect();
            std::fs::write(
                &a[4],
                encrypt_room_key_export(&keys, &p, 500_000).expect("encrypt"),
            )
            .expect("write");
        }
        other => panic!("unknown job {other}"),
    }
}
