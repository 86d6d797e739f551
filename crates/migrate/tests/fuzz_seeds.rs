//! The fuzz targets' seeds (`fuzz/seeds/<target>/`) replayed through the same checks as
//! ordinary tests, so a fixed crash stays fixed without cargo-fuzz. A seed's name says what
//! it is: `recorded-*` an answer or file recorded from the test servers, `spec-*` an example
//! of the spec, `template-*` a file this tool writes: all of them must be read, not refused;
//! `refused-*` an answer that must be refused; `found-*` an input a fuzzer found failing
//! (read or refused, but without failing a check).

use std::path::PathBuf;

use migrate::fuzz::{Verdict, TARGETS};

fn seeds_of(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(target);
    let mut seeds: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    seeds.sort();
    seeds
}

/// What a seed is, by the first word of its name.
fn kind(name: &str) -> &str {
    name.split(['-', '.']).next().unwrap_or_default()
}

#[test]
fn every_seed_passes_its_targets_checks() {
    for (target, check) in TARGETS {
        let seeds = seeds_of(target);
        assert!(
            seeds
                .iter()
                .any(|(name, _)| matches!(kind(name), "recorded" | "template")),
            "{target}: no seed recorded from a server or written by this tool"
        );
        for (name, data) in &seeds {
            let verdict = check(data);
            let expected = match kind(name) {
                "recorded" | "spec" | "template" => Some(Verdict::Read),
                "refused" => Some(Verdict::Refused),
                "found" => None,
                _ => panic!("{target}/{name}: a seed's name says what it is"),
            };
            assert!(
                expected.is_none_or(|e| e == verdict),
                "{target}/{name}: {verdict:?}, expected {expected:?}"
            );
        }
    }
}
