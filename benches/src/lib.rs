//! Shared helpers of the benchmark tools: a realistic corpus of key exports, and secret
//! files for the accounts they make.

use key_export::testkit::{Device, TestSession};
use key_export::ExportedSession;
use rayon::prelude::*;

/// A deterministic-enough index spread: most sessions are received from the start,
/// some later (a device that joined late).
fn index_for(i: usize) -> u32 {
    match i % 10 {
        0..=6 => 0,
        7 | 8 => (i % 37) as u32,
        _ => (i % 500) as u32,
    }
}

/// `n` real sessions over `rooms` rooms from a handful of devices, plus, for each of
/// the first `overlap` sessions, a second copy at another index (for merge benches).
pub fn corpus(
    n: usize,
    rooms: usize,
    overlap: usize,
) -> (Vec<ExportedSession>, Vec<ExportedSession>) {
    let devices: Vec<Device> = (0..16).map(|_| Device::new()).collect();
    let pairs: Vec<(ExportedSession, Option<ExportedSession>)> = (0..n)
        .into_par_iter()
        .map(|i| {
            // Room IDs mix server-suffixed IDs and room version 12 IDs.
            let room = if (i % rooms).is_multiple_of(3) {
                format!("!v12room{:08}AbCdEfGhIjKlMnOpQrStUvWxYz0123", i % rooms)
            } else {
                format!("!room{:06}:example.org", i % rooms)
            };
            let mut s: TestSession = devices[i % devices.len()].new_session(&room);
            let idx = index_for(i);
            let first = s.export_at(idx + 3);
            let second = (i < overlap).then(|| s.export_at(if i % 2 == 0 { idx } else { idx + 7 }));
            (first, second)
        })
        .collect();
    let mut a = Vec::with_capacity(n);
    let mut b = Vec::new();
    for (x, y) in pairs {
        a.push(x);
        b.extend(y);
    }
    (a, b)
}

/// Two `m.direct` maps: `n` users each with one room (users `n/2..` shared), and one user
/// with `n` rooms in each (half shared).
pub fn direct_maps(n: usize) -> (m_direct::DirectMap, m_direct::DirectMap) {
    let map = |from: usize| {
        let mut obj = serde_json::Map::new();
        for i in from..from + n {
            obj.insert(
                format!("@user{i}:example.org"),
                serde_json::json!([format!("!room{i}:example.org")]),
            );
        }
        let rooms: Vec<String> = (from..from + n)
            .map(|i| format!("!big{i}:example.org"))
            .collect();
        obj.insert("@busy:example.org".into(), serde_json::json!(rooms));
        m_direct::DirectMap::from_value(serde_json::Value::Object(obj)).expect("an object")
    };
    (map(0), map(n / 2))
}

/// Writes a secret (an access token, a recovery key) to `path`, mode 0600.
pub fn secret_file(path: &std::path::Path, text: &str) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .expect("create");
    f.write_all(text.as_bytes()).expect("write");
}
