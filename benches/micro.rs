//! Criterion micro-benchmarks (`cargo bench --bench micro`), each a few seconds:
//!
//! - `matcher/scan_1MiB_10k_sigs`: `SignatureSet::scan` over 1 MiB of random bytes with
//!   a `gen-sigs` set of 10,000 signatures (ndb with and without wildcards, hdb, hsb);
//! - `mime/scan_message_multipart`: `sie::scan::scan_message` on a typical multipart
//!   message of the benchmark corpus (text + HTML alternative and an attachment);
//! - `queue/move_entry_fsync`: `sie::queue::move_entry` of one locked entry between
//!   two queue directories of a spool in a temp dir (two renames, two directory fsyncs).
//!
//! `tools/bench` measures the programs end to end; these isolate the inner loops.

use std::fs;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sie::corpus::sigs::{SigSpec, write_sigs};
use sie::corpus::{CorpusSpec, Format, Mix, read_manifest, read_message, write_corpus};
use sie::queue::{LockOutcome, QueueId, Spool, lock_entry, move_entry};
use sie::rules::signatures::{ObjectInfo, SignatureSet, Target};
use sie::scan::{ScanOptions, VerdictKind, scan_message};

/// Deterministic pseudo-random bytes (SplitMix64).
fn random_bytes(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

fn matcher(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let spec = SigSpec {
        seed: 1,
        count: 10_000,
        match_corpus: None,
        corpus_hashes: 0,
    };
    write_sigs(&spec, dir.path()).unwrap();
    let (set, _problems) = SignatureSet::load_dir(dir.path()).unwrap();
    let data = random_bytes(1 << 20, 42);
    let object = ObjectInfo {
        target: Target::File,
        container: None,
    };
    assert!(set.scan(&data, &object).is_none(), "random data matched");
    let mut group = c.benchmark_group("matcher");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.bench_function("scan_1MiB_10k_sigs", |b| {
        b.iter(|| set.scan(black_box(&data), &object))
    });
    group.finish();
}

/// A clean medium-sized multipart message of the benchmark corpus (seed 1).
fn typical_message() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let spec = CorpusSpec {
        seed: 1,
        count: 60,
        mix: Mix::Realistic,
        eicar_rate: 0.0,
        spam_rate: 0.0,
        ext_rate: 0.0,
    };
    write_corpus(&spec.plan().unwrap(), dir.path(), Format::Eml, false).unwrap();
    let rows = read_manifest(dir.path()).unwrap();
    let mut candidates: Vec<Vec<u8>> = rows
        .iter()
        .map(|row| read_message(dir.path(), &row.id).unwrap())
        .filter(|m| {
            let text = String::from_utf8_lossy(m).to_ascii_lowercase();
            text.contains("multipart/mixed")
                && text.contains("multipart/alternative")
                && text.contains("content-transfer-encoding: base64")
                && (20_000..200_000).contains(&m.len())
        })
        .collect();
    candidates.sort_by_key(Vec::len);
    candidates
        .get(candidates.len() / 2)
        .cloned()
        .or_else(|| {
            // Fallback: the largest message under 200 KB.
            let mut all: Vec<Vec<u8>> = rows
                .iter()
                .map(|row| read_message(dir.path(), &row.id).unwrap())
                .filter(|m| m.len() < 200_000)
                .collect();
            all.sort_by_key(Vec::len);
            all.pop()
        })
        .expect("a message")
}

fn mime(c: &mut Criterion) {
    let message = typical_message();
    let options = ScanOptions::default();
    assert_eq!(scan_message(&message, &options).kind, VerdictKind::Clean);
    let mut group = c.benchmark_group("mime");
    group.throughput(Throughput::Bytes(message.len() as u64));
    group.bench_function("scan_message_multipart", |b| {
        b.iter(|| scan_message(black_box(&message), &options))
    });
    group.finish();
}

fn queue_moves(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::new(dir.path(), 5);
    spool.ensure_tree().unwrap();
    let from = spool.queue_dir("in").unwrap();
    let to = spool.queue_dir("feed1").unwrap();
    let id = QueueId::parse("6ALNNrgA023896").unwrap();
    fs::write(
        from.join(id.qf_name()),
        b"V8\nT1795303433\nK0\nN0\nP30216\nS<a@b.example>\nRPFD:<c@d.example>\nH??Subject: bench\n.\n",
    )
    .unwrap();
    fs::write(from.join(id.df_name()), random_bytes(8192, 7)).unwrap();
    let LockOutcome::Locked(mut entry) = lock_entry(&from, &id).unwrap() else {
        panic!("could not lock the entry");
    };
    let mut group = c.benchmark_group("queue");
    group.bench_function("move_entry_fsync", |b| {
        b.iter(|| {
            let target = if entry.dir == from { &to } else { &from };
            move_entry(&spool, &mut entry, target).unwrap();
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    targets = matcher, mime, queue_moves
}
criterion_main!(benches);
