//! Writes realistic key exports with real vodozemac sessions for benchmarks and samples.
//!
//! gen-corpus --sessions N --rooms R [--overlap-share F] --rounds N --passphrase-file P
//!            --out A.txt [--out-b B.txt] [--rooms-out ROOMS.txt --rooms-share F]
//!
//! With --out-b, B holds N fresh sessions plus copies of the first F*N sessions of A
//! at other message indexes (half better, half worse), shuffled in.

use std::path::PathBuf;

use key_export::{testkit, ExportedSession, Passphrase, Rounds, SealingKey};

fn arg<T: std::str::FromStr>(args: &[String], name: &str) -> Option<T> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = arg(&args, "--sessions").expect("--sessions N");
    let rooms: usize = arg(&args, "--rooms").unwrap_or(300);
    let share: f64 = arg(&args, "--overlap-share").unwrap_or(0.05);
    let rounds: u32 = arg(&args, "--rounds").unwrap_or(500_000);
    let pass_file: PathBuf = arg(&args, "--passphrase-file").expect("--passphrase-file P");
    let out_a: PathBuf = arg(&args, "--out").expect("--out A.txt");
    let out_b: Option<PathBuf> = arg(&args, "--out-b");
    let pass = Passphrase::new(std::fs::read_to_string(&pass_file).expect("passphrase file"));
    let overlap = if out_b.is_some() {
        (n as f64 * share) as usize
    } else {
        0
    };
    let (a, copies) = benches::corpus(n, rooms, overlap);
    write(&out_a, &a, &pass, rounds);
    if let Some(out_b) = out_b {
        let (fresh, _) = benches::corpus(n - copies.len(), rooms, 0);
        // Interleave the copies through B.
        let step = (fresh.len() / copies.len().max(1)).max(1);
        let mut b = Vec::with_capacity(n);
        let mut copies = copies.into_iter();
        for (i, s) in fresh.into_iter().enumerate() {
            b.push(s);
            if i % step == 0 {
                b.extend(copies.next());
            }
        }
        b.extend(copies);
        write(&out_b, &b, &pass, rounds);
    }
    if let Some(rooms_out) = arg::<PathBuf>(&args, "--rooms-out") {
        let share: f64 = arg(&args, "--rooms-share").unwrap_or(0.1);
        let mut ids: Vec<&str> = a.iter().map(|s| s.room_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let take = ((ids.len() as f64) * share).ceil() as usize;
        let text: String = ids
            .iter()
            .step_by((ids.len() / take.max(1)).max(1))
            .take(take)
            .map(|r| format!("{r}\n"))
            .collect();
        std::fs::write(rooms_out, text).expect("write rooms file");
    }
}

fn write(path: &PathBuf, sessions: &[ExportedSession], pass: &Passphrase, rounds: u32) {
    let json = testkit::to_json(sessions);
    let text = SealingKey::derive(pass, Rounds::new(rounds).expect("rounds"))
        .expect("key derivation")
        .seal(&json)
        .expect("seal");
    std::fs::write(path, text).expect("write export");
    eprintln!("wrote {} sessions to {}", sessions.len(), path.display());
}
