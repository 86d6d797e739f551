//! The malformed-file test kit (`crates/key-export/tests/testkit/`: one file per case, a
//! `.expect` sidecar each), run through the library AND through the binary by one runner:
//! the library's verdict, the exit code, the message, no output and no temporary file left
//! on failure, the input untouched. The same files are the fuzzers' seed corpora, replayed
//! here through the fuzz checks.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::support::*;
use key_export::merge::{MergeError, MergeOptions};
use key_export::pipeline::{self, Destination, PipelineError, Source};
use key_export::{Passphrase, ReadOptions, Rounds};

fn kit_dir() -> PathBuf {
    PathBuf::from(key_export::testkit::KIT_DIR)
}

/// One case: its file, and what its sidecar says.
struct Case {
    name: String,
    data: Vec<u8>,
    expect: BTreeMap<String, String>,
}

impl Case {
    fn get(&self, key: &str) -> &str {
        self.expect
            .get(key)
            .unwrap_or_else(|| panic!("{}: sidecar has no {key:?}", self.name))
    }
}

fn cases() -> Vec<Case> {
    let dir = kit_dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("the test kit folder")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".expect"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|side| {
            let name = side.trim_end_matches(".expect").to_owned();
            let text = std::fs::read_to_string(dir.join(&side)).unwrap();
            let expect = text
                .lines()
                .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
                .map(|l| {
                    let (k, v) = l.split_once(':').expect("key: value");
                    (k.trim().to_owned(), v.trim().to_owned())
                })
                .collect();
            let data = std::fs::read(dir.join(&name)).unwrap();
            Case { name, data, expect }
        })
        .collect()
}

fn passphrase() -> String {
    std::fs::read_to_string(kit_dir().join("passphrase")).unwrap()
}

/// The name of an error variant, as the sidecars write it.
fn kind(e: &impl std::fmt::Debug) -> String {
    let d = format!("{e:?}");
    d.split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap()
        .to_owned()
}

/// What the library does with a case, in the sidecar's words.
fn library_verdict(case: &Case) -> String {
    let pass = Passphrase::new(passphrase());
    let destination = Destination {
        passphrase: pass.clone(),
        rounds: Rounds::new(10).unwrap(),
    };
    let result = match case.get("job") {
        "filter" => {
            let source = Source {
                name: case.name.clone(),
                reader: &case.data[..],
                len: case.data.len(),
                passphrase: pass.clone(),
            };
            let options = MergeOptions::default();
            pipeline::filter_merge(
                vec![source],
                destination,
                Vec::new(),
                &ReadOptions::default(),
                &options,
            )
            .map(|(done, out)| (done.summary.kept, out))
        }
        "encrypt" => pipeline::encrypt(&case.name, &case.data, destination, false, Vec::new())
            .map(|(report, out)| (report.sessions, out)),
        other => panic!("{}: unknown job {other}", case.name),
    };
    match result {
        Ok((n, out)) => {
            // What we wrote is an export matrix-sdk-crypto reads, with those sessions.
            let sdk = matrix_sdk_crypto::decrypt_room_key_export(&out[..], pass.expose())
                .unwrap_or_else(|e| {
                    panic!("{}: matrix-sdk-crypto refused our output: {e}", case.name)
                });
            assert_eq!(sdk.len(), n, "{}", case.name);
            format!("ok {n}")
        }
        Err(PipelineError::Input { error, .. }) => kind(&error),
        Err(PipelineError::Merge(MergeError::Invalid(bad))) => {
            format!("invalid {}", kind(&bad[0].entry.problem))
        }
        Err(other) => format!("unexpected {other:?}"),
    }
}

/// Runs a case through the binary and checks everything a user relies on.
fn check_binary(case: &Case) {
    let s = Scratch::new();
    s.write("pass", passphrase());
    s.write(&case.name, &case.data);
    let o = s.run(&format!(
        "keys {} %{} --passphrase-file %pass --rounds 10 -o %out",
        case.get("job"),
        case.name
    ));
    let exit: i32 = case.get("exit").parse().unwrap();
    assert_eq!(o.status.code(), Some(exit), "{}: {}", case.name, stderr(&o));
    assert_eq!(
        s.read(&case.name),
        case.data,
        "{}: input untouched",
        case.name
    );
    assert!(
        !s.names().iter().any(|n| n.ends_with(".part")),
        "{}: a temporary file was left: {:?}",
        case.name,
        s.names()
    );
    if exit == 0 {
        assert_eq!(s.mode("out"), 0o600, "{}", case.name);
        return;
    }
    assert!(
        !s.path("out").exists(),
        "{}: no output on failure",
        case.name
    );
    let message = case.get("message");
    assert!(
        stderr(&o).contains(message),
        "{}: {message:?} not in {}",
        case.name,
        stderr(&o)
    );
    assert!(
        stderr(&o).contains(&case.name),
        "{}: the message names the file: {}",
        case.name,
        stderr(&o)
    );
}

#[test]
fn every_case_through_the_library_and_the_binary() {
    let cases = cases();
    assert!(cases.len() >= 30, "the kit holds {} cases", cases.len());
    for case in &cases {
        assert_eq!(
            library_verdict(case),
            case.get("library"),
            "{}: library verdict",
            case.name
        );
        check_binary(case);
    }
}

/// The kit is the fuzzers' seed corpus: every file goes through both fuzz checks.
#[test]
fn the_seed_corpus_replays_through_the_fuzz_checks() {
    let mut n = 0;
    for case in cases() {
        key_export::testkit::fuzz::container(&case.data);
        key_export::testkit::fuzz::sessions(&case.data);
        n += 1;
    }
    // The kit's JSON cases reach the sessions checks with valid entries.
    let valid = std::fs::read(kit_dir().join("valid.json")).unwrap();
    let raw = key_export::entries::split(&valid).unwrap();
    assert!(key_export::entries::parse_all(&raw)
        .iter()
        .all(|s| s.is_valid()));
    assert!(n >= 30);
}

/// The fuzz check of the MAC is a real check: a body sealed under its passphrase is the one
/// thing that authenticates, and the check says so.
#[test]
#[should_panic(expected = "authenticated")]
fn the_container_check_catches_a_body_that_authenticates() {
    let pass = Passphrase::new(key_export::testkit::fuzz::PASSPHRASE.into());
    let text = key_export::container::encrypt(b"[]", &pass, 1).unwrap();
    key_export::testkit::fuzz::container(text.as_bytes());
}
