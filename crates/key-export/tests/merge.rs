//! Filtering and merging with real vodozemac sessions, checked against matrix-sdk-crypto's
//! own key store.

use std::collections::BTreeMap;

use key_export::merge::{self, ConflictKind, MergeError, MergeOptions};
use key_export::pipeline::{self, Destination, Source};
use key_export::select::RoomSelection;
use key_export::testkit::{self, Device, TestSession};
use key_export::{
    container, entries, ExportedSession, Invalid, Passphrase, ReadOptions, SessionRef,
};
use proptest::prelude::*;

fn raw_entries(sessions: &[ExportedSession]) -> Vec<Box<serde_json::value::RawValue>> {
    sessions
        .iter()
        .map(|s| serde_json::value::RawValue::from_string(s.to_json()).unwrap())
        .collect()
}

/// Runs the merge on owned sessions; returns (room, session) → first known index.
fn merged_indexes(
    inputs: &[Vec<ExportedSession>],
    options: &MergeOptions,
) -> Result<BTreeMap<(String, String), u32>, MergeError> {
    let raws: Vec<_> = inputs.iter().map(|i| raw_entries(i)).collect();
    let parsed: Vec<Vec<SessionRef<'_>>> = raws
        .iter()
        .map(|r| r.iter().map(|b| SessionRef::parse(b)).collect())
        .collect();
    let m = merge::merge(&parsed, options)?;
    Ok(m.sessions
        .iter()
        .map(|s| {
            (
                (s.room_id.to_string(), s.session_id.to_string()),
                s.first_known_index,
            )
        })
        .collect())
}

fn select(rooms: &[&str]) -> MergeOptions {
    MergeOptions {
        selection: RoomSelection::new(rooms.iter().map(|s| s.to_string()).collect(), false),
        ..Default::default()
    }
}

struct World {
    sessions: Vec<TestSession>,
}

impl World {
    fn new(n: usize, rooms: usize) -> Self {
        let device = Device::new();
        World {
            sessions: (0..n)
                .map(|i| device.new_session(&format!("!r{}:example.org", i % rooms)))
                .collect(),
        }
    }
    fn export(&mut self, picks: &[(usize, u32)]) -> Vec<ExportedSession> {
        picks
            .iter()
            .map(|&(i, idx)| self.sessions[i].export_at(idx))
            .collect()
    }
}

#[test]
fn lowest_index_wins_in_any_order_across_files() {
    let mut w = World::new(4, 2);
    let laptop = w.export(&[(0, 10), (1, 0), (2, 7)]);
    let phone = w.export(&[(0, 3), (1, 5), (3, 1), (2, 7)]);
    for inputs in [
        vec![laptop.clone(), phone.clone()],
        vec![phone.clone(), laptop.clone()],
    ] {
        let got = merged_indexes(&inputs, &MergeOptions::default()).unwrap();
        let idx: Vec<u32> = (0..4)
            .map(|i| {
                got[&(
                    format!("!r{}:example.org", i % 2),
                    w.sessions[i].session_id().to_owned(),
                )]
            })
            .collect();
        assert_eq!(idx, [3, 0, 7, 1]);
    }
    let raws: Vec<_> = [laptop, phone].iter().map(|i| raw_entries(i)).collect();
    let parsed: Vec<Vec<SessionRef<'_>>> = raws
        .iter()
        .map(|r| r.iter().map(|b| SessionRef::parse(b)).collect())
        .collect();
    let m = merge::merge(&parsed, &MergeOptions::default()).unwrap();
    assert_eq!(m.summary.read, [3, 4]);
    assert_eq!(m.summary.kept, 4);
    assert_eq!(m.summary.duplicates_merged, 3);
    assert_eq!(m.summary.upgraded, 1, "session 0: index 10 replaced by 3");
    assert_eq!(m.summary.conflicts, 0);
}

#[test]
fn forged_copy_and_other_sender_are_conflicts_first_copy_kept() {
    let mut w = World::new(1, 1);
    let real = w.sessions[0].export_at(5);
    let forged = w.sessions[0].forged_at(0);
    let mut other_sender = w.sessions[0].export_at(2);
    other_sender.sender_key = Device::new().curve25519().to_owned();
    let mut other_claim = w.sessions[0].export_at(2);
    other_claim
        .sender_claimed_keys
        .insert("ed25519".into(), Device::new().ed25519().to_owned());
    let raws = [
        raw_entries(std::slice::from_ref(&real)),
        raw_entries(&[forged, other_sender, other_claim]),
    ];
    let parsed: Vec<Vec<SessionRef<'_>>> = raws
        .iter()
        .map(|r| r.iter().map(|b| SessionRef::parse(b)).collect())
        .collect();
    assert!(
        parsed.iter().flatten().all(|s| s.is_valid()),
        "a forged copy passes structural checks"
    );
    let m = merge::merge(&parsed, &MergeOptions::default()).unwrap();
    let kinds: Vec<_> = m.conflicts.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        [
            ConflictKind::Unconnected,
            ConflictKind::SenderKeyDiffers,
            ConflictKind::ClaimedKeyDiffers
        ]
    );
    assert_eq!(m.sessions.len(), 1);
    assert_eq!(
        m.sessions[0].first_known_index, 5,
        "the first copy stays, even though others claim lower indexes"
    );
    assert_eq!(m.conflicts[0].kept.input, 0);
    assert_eq!(
        (m.conflicts[0].rejected.input, m.conflicts[0].rejected.index),
        (1, 0)
    );
    assert_eq!(m.summary.duplicates_merged, 0);
    let strict = MergeOptions {
        strict: true,
        ..Default::default()
    };
    assert!(
        matches!(merge::merge(&parsed, &strict), Err(MergeError::Conflicts(c)) if c.len() == 3)
    );
}

/// A session ID is one session of one room; the same ID met in another room (a copy
/// re-filed there, or forged) is a session of its own there, and each room's copies merge
/// only with each other, whichever room comes first.
#[test]
fn one_session_id_in_two_rooms_is_two_sessions() {
    let mut w = World::new(1, 1);
    let in_room = |mut s: ExportedSession, room: &str| {
        s.room_id = room.into();
        s
    };
    let (a, b) = ("!a:example.org", "!b:example.org");
    let inputs = [
        vec![in_room(w.sessions[0].export_at(4), a)],
        vec![
            in_room(w.sessions[0].export_at(6), b),
            in_room(w.sessions[0].export_at(1), a),
            in_room(w.sessions[0].export_at(3), b),
        ],
        vec![in_room(w.sessions[0].export_at(9), a)],
    ];
    let sid = inputs[0][0].session_id.clone();
    let merged = merged_indexes(&inputs, &MergeOptions::default()).unwrap();
    assert_eq!(
        merged,
        BTreeMap::from([((a.into(), sid.clone()), 1), ((b.into(), sid), 3)])
    );
}

/// A forged copy planted in a server-side backup (anyone with the account's token can add
/// one) loses to the device export's copy, whichever input comes first.
#[test]
fn a_device_exports_copy_wins_a_conflict_with_a_backups_copy_in_either_order() {
    let mut w = World::new(1, 1);
    let device = w.sessions[0].export_at(5);
    let mut planted = w.sessions[0].forged_at(0);
    planted
        .other
        .insert(key_export::session::FROM_BACKUP.into(), true.into());
    for (inputs, device_input) in [
        ([vec![planted.clone()], vec![device.clone()]], 1),
        ([vec![device.clone()], vec![planted.clone()]], 0),
    ] {
        let raws: Vec<_> = inputs.iter().map(|i| raw_entries(i)).collect();
        let parsed: Vec<Vec<SessionRef<'_>>> = raws
            .iter()
            .map(|r| r.iter().map(|b| SessionRef::parse(b)).collect())
            .collect();
        assert!(parsed[1 - device_input][0].from_backup);
        let m = merge::merge(&parsed, &MergeOptions::default()).unwrap();
        assert_eq!(m.sessions.len(), 1);
        assert!(!m.sessions[0].from_backup, "the device copy is kept");
        assert_eq!(m.sessions[0].first_known_index, 5);
        assert_eq!(m.conflicts.len(), 1);
        assert_eq!(m.conflicts[0].kind, ConflictKind::Unconnected);
        assert_eq!(m.conflicts[0].kept.input, device_input);
        assert_eq!(m.conflicts[0].rejected.input, 1 - device_input);
    }
}

#[test]
fn invalid_entries_fail_unless_dropped_and_only_in_selected_rooms() {
    let mut w = World::new(3, 3);
    let mut s = w.export(&[(0, 0), (1, 0), (2, 0)]);
    s[1].sender_claimed_keys
        .insert("ed25519".into(), String::new());
    s[2].session_id = s[0].session_id.clone();
    match merged_indexes(&[s.clone()], &MergeOptions::default()) {
        Err(MergeError::Invalid(bad)) => {
            let got: Vec<_> = bad
                .iter()
                .map(|b| (b.entry.index, b.entry.problem.clone()))
                .collect();
            assert_eq!(
                got,
                [
                    (1, Invalid::MissingClaimedEd25519),
                    (2, Invalid::SessionIdMismatch)
                ]
            );
        }
        other => panic!("{other:?}"),
    }
    let drop = MergeOptions {
        drop_invalid: true,
        ..Default::default()
    };
    assert_eq!(merged_indexes(&[s.clone()], &drop).unwrap().len(), 1);
    // Bad entries in rooms that are not moving do not matter.
    assert_eq!(
        merged_indexes(&[s], &select(&["!r0:example.org"]))
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn selection_reports_rooms_without_keys_and_an_empty_result_is_a_valid_export() {
    let mut w = World::new(2, 2);
    let s = w.export(&[(0, 0), (1, 0)]);
    let raws = [raw_entries(&s)];
    let parsed: Vec<Vec<SessionRef<'_>>> = raws
        .iter()
        .map(|r| r.iter().map(|b| SessionRef::parse(b)).collect())
        .collect();
    let opts = select(&["!r1:example.org", "!nothing:example.org"]);
    let m = merge::merge(&parsed, &opts).unwrap();
    assert_eq!(m.summary.rooms_without_keys, ["!nothing:example.org"]);
    assert_eq!(m.summary.dropped_by_selection, 1);
    let opts = select(&["!nothing:example.org"]);
    let m = merge::merge(&parsed, &opts).unwrap();
    assert!(m.sessions.is_empty());
    let json = entries::write_array(merge::output_entries(&m));
    assert_eq!(&json[..], b"[]");
    let sdk: Vec<matrix_sdk_crypto::olm::ExportedRoomKey> = serde_json::from_slice(&json).unwrap();
    assert!(sdk.is_empty());
}

/// The pipeline's filter and merge of `sources` to the rooms `rooms`, sealed with the
/// passphrase "new" (10 rounds).
fn filter_merge_to_new(
    sources: Vec<Source<&[u8]>>,
    rooms: &[&str],
) -> (pipeline::Finished, Vec<u8>) {
    let destination = Destination {
        passphrase: Passphrase::new("new".into()),
        rounds: key_export::Rounds::new(10).unwrap(),
    };
    let read = ReadOptions::default();
    pipeline::filter_merge(sources, destination, Vec::new(), &read, &select(rooms)).unwrap()
}

#[test]
fn pipeline_output_imports_into_matrix_sdk_crypto_with_the_lowest_index() {
    let mut w = World::new(6, 3);
    let a = w.export(&[(0, 9), (1, 4), (2, 0), (3, 8)]);
    let mut b = w.export(&[(0, 2), (1, 6), (4, 3), (5, 0), (3, 1)]);
    // An entry without a forwarding chain: matrix-nio would reject the file; we add one.
    b[2].forwarding_curve25519_key_chain.clear();
    let b_json = testkit::to_json(&b);
    let mut b_value: serde_json::Value = serde_json::from_slice(&b_json).unwrap();
    b_value[2]
        .as_object_mut()
        .unwrap()
        .remove("forwarding_curve25519_key_chain");
    let b_plain = serde_json::to_vec(&b_value).unwrap();
    let file_a = testkit::export_file(&a, "laptop", 10).unwrap();
    let file_b = container::encrypt(&b_plain, &Passphrase::new("phone".into()), 10).unwrap();
    let sources = vec![
        Source {
            name: "a".into(),
            reader: file_a.as_bytes(),
            len: file_a.len(),
            passphrase: Passphrase::new("laptop".into()),
        },
        Source {
            name: "b".into(),
            reader: file_b.as_bytes(),
            len: file_b.len(),
            passphrase: Passphrase::new("phone".into()),
        },
    ];
    let (done, armored) = filter_merge_to_new(sources, &["!r0:example.org", "!r1:example.org"]);
    // Sessions 0 and 3 (room r0), 1 and 4 (room r1).
    assert_eq!(done.summary.kept, 4);
    let plain = container::decrypt(
        &armored[..],
        0,
        &Passphrase::new("new".into()),
        &ReadOptions::default(),
    )
    .unwrap();
    let v: Vec<serde_json::Value> = serde_json::from_slice(plain.as_bytes()).unwrap();
    assert!(v
        .iter()
        .all(|e| e["forwarding_curve25519_key_chain"].is_array()
            && e["sender_claimed_keys"]["ed25519"].is_string()));

    // Import into matrix-sdk-crypto's store and read back what it holds.
    let keys = matrix_sdk_crypto::decrypt_room_key_export(&armored[..], "new").unwrap();
    let held = futures_executor::block_on(async {
        let machine = matrix_sdk_crypto::OlmMachine::new(
            ruma::user_id!("@new:example.org"),
            ruma::device_id!("NEWDEVICE"),
        )
        .await;
        let result = machine
            .store()
            .import_exported_room_keys(keys, |_, _| {})
            .await
            .unwrap();
        assert_eq!((result.imported_count, result.total_count), (4, 4));
        machine.store().export_room_keys(|_| true).await.unwrap()
    });
    let mut got: Vec<(String, u32)> = held
        .iter()
        .map(|k| {
            let idx = u32::from_be_bytes(k.session_key.to_bytes()[1..5].try_into().unwrap());
            (k.session_id.clone(), idx)
        })
        .collect();
    got.sort();
    let mut want: Vec<(String, u32)> = [(0, 2), (1, 4), (3, 1), (4, 3)]
        .iter()
        .map(|&(i, x)| (w.sessions[i].session_id().to_owned(), x))
        .collect();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn pipeline_names_the_input_that_failed() {
    let good = testkit::export_file(&[], "p", 10).unwrap();
    let sources = vec![
        Source {
            name: "good.txt".into(),
            reader: good.as_bytes(),
            len: 0,
            passphrase: Passphrase::new("p".into()),
        },
        Source {
            name: "bad.txt".into(),
            reader: good.as_bytes(),
            len: 0,
            passphrase: Passphrase::new("wrong".into()),
        },
    ];
    let err = pipeline::filter_merge(
        sources,
        Destination {
            passphrase: Passphrase::new("n".into()),
            rounds: key_export::Rounds::new(10).unwrap(),
        },
        Vec::new(),
        &ReadOptions::default(),
        &MergeOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(
            &err,
            pipeline::PipelineError::Input {
                input: 1,
                error: key_export::Error::WrongPassphraseOrCorrupted,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().starts_with("bad.txt: wrong passphrase"));
}

/// A pool of real sessions and, for each file, which sessions at which index.
fn pool() -> &'static (Vec<ExportedSession>, usize) {
    use std::sync::OnceLock;
    static POOL: OnceLock<(Vec<ExportedSession>, usize)> = OnceLock::new();
    POOL.get_or_init(|| {
        // 8 sessions in 4 rooms, each exported at indexes 0..4: entry 4*s + i.
        let mut w = World::new(8, 4);
        let mut v = Vec::new();
        for s in 0..8 {
            for i in 0..4 {
                v.push(w.sessions[s].export_at(i * 3));
            }
        }
        (v, 4)
    })
}

fn files_strategy() -> impl Strategy<Value = Vec<Vec<usize>>> {
    prop::collection::vec(prop::collection::vec(0usize..32, 0..12), 1..4)
}

fn build(files: &[Vec<usize>]) -> Vec<Vec<ExportedSession>> {
    files
        .iter()
        .map(|f| f.iter().map(|&i| pool().0[i].clone()).collect())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn merge_is_independent_of_input_order(files in files_strategy(), seed in any::<u64>()) {
        let a = merged_indexes(&build(&files), &MergeOptions::default()).unwrap();
        let mut shuffled: Vec<Vec<usize>> = files.clone();
        shuffled.reverse();
        for f in &mut shuffled { let n = f.len().max(1); f.rotate_left((seed as usize) % n); }
        let b = merged_indexes(&build(&shuffled), &MergeOptions::default()).unwrap();
        prop_assert_eq!(&a, &b);
        // And every kept index is the lowest offered for that session.
        for ((_, sid), idx) in &a {
            let lowest = build(&files).iter().flatten().filter(|s| &s.session_id == sid)
                .map(|s| u32::from_be_bytes(base64_decode(&s.session_key.0)[1..5].try_into().unwrap())).min().unwrap();
            prop_assert_eq!(*idx, lowest);
        }
    }

    #[test]
    fn merging_a_file_with_itself_changes_nothing(files in files_strategy()) {
        let once = merged_indexes(&build(&files), &MergeOptions::default()).unwrap();
        let mut doubled = files.clone();
        doubled.extend(files.clone());
        prop_assert_eq!(&once, &merged_indexes(&build(&doubled), &MergeOptions::default()).unwrap());
    }

    #[test]
    fn filter_then_merge_equals_merge_then_filter(files in files_strategy(), rooms in prop::collection::vec(0usize..5, 0..4)) {
        let names: Vec<String> = rooms.iter().map(|r| format!("!r{r}:example.org")).collect();
        let sel = MergeOptions { selection: RoomSelection::new(names.clone(), false), ..Default::default() };
        let merged_then_filtered = merged_indexes(&build(&files), &sel).unwrap();
        let filtered: Vec<Vec<ExportedSession>> = build(&files).into_iter()
            .map(|f| f.into_iter().filter(|s| names.contains(&s.room_id)).collect()).collect();
        prop_assert_eq!(merged_then_filtered, merged_indexes(&filtered, &MergeOptions::default()).unwrap());
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(s)
        .unwrap()
}

#[test]
fn entries_added_as_plaintext_merge_with_the_exports_and_the_selection_applies() {
    let mut w = World::new(3, 3);
    // The export has sessions 0 at 5 and 1 at 0; the "backup" has 0 at 2, 1 at 4 and 2 at 0
    // (room 2 does not move).
    let file = testkit::export_file(&w.export(&[(0, 5), (1, 0)]), "p", 10).unwrap();
    let backup: Vec<String> = w
        .export(&[(0, 2), (1, 4), (2, 0)])
        .iter()
        .map(|s| s.to_json())
        .collect();
    let source = Source {
        name: "device.txt".into(),
        reader: file.as_bytes(),
        len: 0,
        passphrase: Passphrase::new("p".into()),
    };
    let mut decrypted = pipeline::decrypt_all(vec![source], &ReadOptions::default()).unwrap();
    decrypted.add_entries("the old backup", &backup);
    assert_eq!(decrypted.names(), ["device.txt", "the old backup"]);
    let options = select(&["!r0:example.org", "!r1:example.org"]);
    let parsed = decrypted.parse(&options).unwrap();
    let merged = parsed.merge(&options).unwrap();
    let got: BTreeMap<String, u32> = merged
        .sessions
        .iter()
        .map(|s| (s.room_id.to_string(), s.first_known_index))
        .collect();
    assert_eq!(
        got,
        BTreeMap::from([
            ("!r0:example.org".to_owned(), 2),
            ("!r1:example.org".to_owned(), 0)
        ])
    );
    assert_eq!(merged.summary.read, [2, 3]);
    assert_eq!(merged.summary.dropped_by_selection, 1);
}

/// The shared-history flag decides what the new account may pass on when it invites
/// someone (MSC4268): a filter and a merge keep it exactly as each copy had it (spelling,
/// value, or no flag at all), and never set it.
#[test]
fn shared_history_is_kept_exactly_through_filter_and_merge() {
    let moving = testkit::shared_history_cases("!moving:example.org");
    let staying = testkit::shared_history_cases("!staying:example.org");
    let laptop: Vec<ExportedSession> = moving[..4].iter().chain(&staying).cloned().collect();
    let phone: Vec<ExportedSession> = moving[3..].to_vec();
    let files = [
        testkit::export_file(&laptop, "laptop", 10).unwrap(),
        testkit::export_file(&phone, "phone", 10).unwrap(),
    ];
    let sources = files
        .iter()
        .zip(["laptop", "phone"])
        .map(|(file, pass)| Source {
            name: pass.into(),
            reader: file.as_bytes(),
            len: file.len(),
            passphrase: Passphrase::new(pass.into()),
        })
        .collect();
    let (done, armored) = filter_merge_to_new(sources, &["!moving:example.org"]);
    assert_eq!(done.summary.kept, moving.len());
    let plain = container::decrypt(
        &armored[..],
        0,
        &Passphrase::new("new".into()),
        &ReadOptions::default(),
    )
    .unwrap();
    let raw = entries::split(plain.as_bytes()).unwrap();
    let written: BTreeMap<String, BTreeMap<String, serde_json::Value>> = raw
        .iter()
        .map(|r| {
            let id = SessionRef::parse(r).session_id.to_string();
            (id, testkit::shared_history_fields(r.get()))
        })
        .collect();
    let expected: BTreeMap<String, BTreeMap<String, serde_json::Value>> = moving
        .iter()
        .map(|s| {
            (
                s.session_id.clone(),
                testkit::shared_history_fields(&s.to_json()),
            )
        })
        .collect();
    assert_eq!(written, expected);
    let flags: Vec<usize> = expected.values().map(BTreeMap::len).collect();
    assert_eq!(
        flags.iter().filter(|&&n| n == 0).count(),
        1,
        "one had no flag"
    );
}
