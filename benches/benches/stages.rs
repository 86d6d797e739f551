//! Throughput of each stage of the key-export pipeline, on a 20k-session corpus of real
//! vodozemac sessions, and of an `m.direct` merge of 50,000 entries. Run:
//! `cargo bench -p benches`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use key_export::merge::{self, MergeOptions};
use key_export::passphrase::DerivedKeys;
use key_export::{armor, container, entries, testkit, Passphrase, ReadOptions, Rounds, SealingKey};

fn stages(c: &mut Criterion) {
    let (sessions, _) = benches::corpus(20_000, 300, 0);
    let json = testkit::to_json(&sessions);
    let pass = Passphrase::new("bench".into());
    let armored = SealingKey::derive(&pass, Rounds::new(1).unwrap())
        .unwrap()
        .seal(&json)
        .unwrap();
    let (body, _) = armor::dearmor(armored.as_bytes()).unwrap();

    let mut g = c.benchmark_group("stage");
    g.sample_size(20);
    g.throughput(Throughput::Bytes(armored.len() as u64));
    g.bench_function("base64 dearmor", |b| {
        b.iter(|| armor::dearmor(armored.as_bytes()).unwrap())
    });
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("hmac+aes-ctr open (1 kdf round)", |b| {
        b.iter(|| container::decrypt_body(body.clone(), &pass, &ReadOptions::default()).unwrap())
    });
    g.throughput(Throughput::Bytes(json.len() as u64));
    g.bench_function("split entries", |b| {
        b.iter(|| entries::split(&json).unwrap().len())
    });
    let raw = entries::split(&json).unwrap();
    g.bench_function("parse+validate entries", |b| {
        b.iter(|| entries::parse_all(&raw).len())
    });
    let parsed = vec![entries::parse_all(&raw)];
    g.bench_function("merge (no duplicates)", |b| {
        b.iter(|| {
            merge::merge(&parsed, &MergeOptions::default())
                .unwrap()
                .sessions
                .len()
        })
    });
    g.bench_function("seal (aes-ctr+hmac+base64, 1 kdf round)", |b| {
        b.iter_batched(
            || SealingKey::derive(&pass, Rounds::new(1).unwrap()).unwrap(),
            |k| k.seal(&json).unwrap(),
            criterion::BatchSize::SmallInput,
        )
    });
    g.bench_function("full decrypt (1 kdf round)", |b| {
        b.iter(|| {
            container::decrypt(
                armored.as_bytes(),
                armored.len(),
                &pass,
                &ReadOptions::default(),
            )
            .unwrap()
        })
    });
    g.finish();

    let mut k = c.benchmark_group("pbkdf2-hmac-sha512");
    k.sample_size(10);
    let rounds = container::DEFAULT_ROUNDS;
    k.bench_with_input(BenchmarkId::from_parameter(rounds), &rounds, |b, &r| {
        b.iter(|| DerivedKeys::derive(&pass, &[7; 16], r))
    });
    k.finish();
}

/// Two `m.direct` maps of 50,000 users each (half shared), plus one user with 50,000
/// rooms in each (half shared): merging them must stay linear.
fn direct_merge(c: &mut Criterion) {
    let (a, b) = benches::direct_maps(50_000);
    let mut g = c.benchmark_group("m.direct");
    g.sample_size(10);
    g.throughput(Throughput::Elements(200_000));
    g.bench_function("merge 2 x 50k users + 2 x 50k rooms of one user", |bench| {
        bench.iter(|| m_direct::merge::merge([&a, &b]))
    });
    g.finish();
}

criterion_group!(benches, stages, direct_merge);
criterion_main!(benches);
