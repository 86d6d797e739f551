//! Interoperability with matrix-sdk-crypto (the code inside Element Web and Element X):
//! files it writes we read, files we write it reads, with real vodozemac sessions.

use std::io::Cursor;

use key_export::testkit::{self, Device};
use key_export::{container, entries, ExportedSession, Passphrase, ReadOptions};
use matrix_sdk_crypto::{decrypt_room_key_export, encrypt_room_key_export};

fn sessions(n: usize) -> Vec<ExportedSession> {
    let device = Device::new();
    (0..n)
        .map(|i| {
            let mut s = device.new_session(&format!("!room{}:example.org", i % 3));
            let mut e = s.export_at(i as u32 * 5);
            e.set_shared_history(i % 2 == 0);
            e
        })
        .collect()
}

fn same_session(ours: &ExportedSession, theirs: &matrix_sdk_crypto::olm::ExportedRoomKey) {
    assert_eq!(ours.room_id, theirs.room_id.as_str());
    assert_eq!(ours.session_id, theirs.session_id);
    assert_eq!(ours.sender_key, theirs.sender_key.to_base64());
    assert_eq!(ours.session_key.0.as_str(), theirs.session_key.to_base64());
    assert_eq!(
        ours.shared_history().map(|(b, _)| b).unwrap_or(false),
        theirs.shared_history
    );
}

#[test]
fn matrix_sdk_crypto_reads_what_we_write() {
    let ours = sessions(12);
    let file = testkit::export_file(&ours, "pässwörd", 1000).unwrap();
    assert!(file.ends_with("-----END MEGOLM SESSION DATA-----\n"));
    let theirs = decrypt_room_key_export(Cursor::new(file), "pässwörd").unwrap();
    assert_eq!(theirs.len(), ours.len());
    for (a, b) in ours.iter().zip(&theirs) {
        same_session(a, b);
    }
}

#[test]
fn we_read_what_matrix_sdk_crypto_writes() {
    let ours = sessions(9);
    // Let matrix-sdk-crypto parse our sessions into its own type, then export them itself.
    let json = testkit::to_json(&ours);
    let theirs: Vec<matrix_sdk_crypto::olm::ExportedRoomKey> =
        serde_json::from_slice(&json).unwrap();
    let file = encrypt_room_key_export(&theirs, "pässwörd", 1000).unwrap();
    assert!(!file.ends_with('\n'), "the SDK writes no final newline");
    let plain = container::decrypt(
        file.as_bytes(),
        0,
        &Passphrase::new("pässwörd".into()),
        &ReadOptions::default(),
    )
    .unwrap();
    assert_eq!(plain.layout().base64_lines, 1);
    let back: Vec<ExportedSession> = serde_json::from_slice(plain.as_bytes()).unwrap();
    assert_eq!(back.len(), 9);
    for (a, b) in back.iter().zip(&theirs) {
        same_session(a, b);
    }
    // Every entry passes our validation.
    let raw = entries::split(plain.as_bytes()).unwrap();
    assert!(entries::parse_all(&raw).iter().all(|s| s.is_valid()));
}

#[test]
fn decrypt_encrypt_decrypt_is_lossless() {
    let mut ours = sessions(4);
    ours[0]
        .other
        .insert("x.custom".into(), serde_json::json!({"keep": [1, "two"]}));
    ours[1].other.remove("org.matrix.msc3061.shared_history");
    ours[1].other.insert("shared_history".into(), true.into());
    ours[2].other.remove("org.matrix.msc3061.shared_history");
    ours[2].other.insert("m.shared_history".into(), true.into());
    let pass = Passphrase::new("pw".into());
    let file = testkit::export_file(&ours, "pw", 10).unwrap();
    let plain = container::decrypt(file.as_bytes(), 0, &pass, &ReadOptions::default()).unwrap();
    let again = container::encrypt(plain.as_bytes(), &pass, 10).unwrap();
    let plain2 = container::decrypt(again.as_bytes(), 0, &pass, &ReadOptions::default()).unwrap();
    assert_eq!(plain.as_bytes(), plain2.as_bytes(), "byte for byte");
    let back: Vec<ExportedSession> = serde_json::from_slice(plain2.as_bytes()).unwrap();
    assert_eq!(back, ours);
    use key_export::session::SharedHistoryKey::*;
    let spellings: Vec<_> = back
        .iter()
        .map(|s| s.shared_history().map(|x| x.1))
        .collect();
    assert_eq!(
        spellings,
        [Some(Msc3061), Some(Spec), Some(Stable), Some(Msc3061)]
    );
}

/// A reader that hands out at most 4,096 bytes per call, as a pipe would.
struct Trickle<'a>(&'a [u8]);

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.0.len()).min(4096);
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

/// Files of several MB take the streamed sealer and the pipelined MAC/decrypt (pieces of
/// 1 MiB across threads), in both directions.
#[test]
fn files_over_6_mb_cross_both_ways_through_the_streamed_paths() {
    use key_export::merge::MergeOptions;
    use key_export::pipeline::{self, Destination, Source};
    let ours = sessions(12_000);
    assert!(testkit::to_json(&ours).len() > 6 << 20);
    let pass = Passphrase::new("pw".into());
    // Ours, written by the filter/merge job's streamed sealer → matrix-sdk-crypto.
    let input = testkit::export_file(&ours, "pw", 10).unwrap();
    let source = Source {
        name: "input".into(),
        reader: Trickle(input.as_bytes()),
        len: 0,
        passphrase: pass.clone(),
    };
    let destination = Destination {
        passphrase: pass.clone(),
        rounds: key_export::Rounds::new(10).unwrap(),
    };
    let (done, written) = pipeline::filter_merge(
        vec![source],
        destination,
        Vec::new(),
        &ReadOptions::default(),
        &MergeOptions::default(),
    )
    .unwrap();
    assert_eq!(done.summary.kept, 12_000);
    assert!(written.len() > 8 << 20);
    let theirs = decrypt_room_key_export(&written[..], "pw").unwrap();
    assert_eq!(theirs.len(), ours.len());
    for (a, b) in ours.iter().zip(&theirs) {
        same_session(a, b);
    }
    // matrix-sdk-crypto's file → ours, read through a pipe-sized reader.
    let file = encrypt_room_key_export(&theirs, "pw", 10).unwrap();
    let plain =
        container::decrypt(Trickle(file.as_bytes()), 0, &pass, &ReadOptions::default()).unwrap();
    let back: Vec<ExportedSession> = serde_json::from_slice(plain.as_bytes()).unwrap();
    assert_eq!(back.len(), theirs.len());
    for (a, b) in back.iter().zip(&theirs) {
        same_session(a, b);
    }
}
