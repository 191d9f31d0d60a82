//! rrdcore's engine: update, fetch and create on the monitoring-default schema.
//!
//! `cargo bench -p rrd-benches --bench engine`

#![allow(clippy::expect_used, missing_docs, reason = "a benchmark fails by panicking; criterion_group! generates undocumented items")]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use rrdcore::{Cf, CreateOptions, FetchRequest, Rrd, Schema, Timestamp};

const START: i64 = 1_600_000_000;

fn opsview(dir: &std::path::Path, name: &str) -> Rrd {
    let opts = CreateOptions { start: Some(START), overwrite: true, ..CreateOptions::default() };
    Rrd::create(dir.join(name), &Schema::monitoring_default(), &opts).expect("create")
}

/// Two years of 5-minute samples, so every archive is full.
fn filled(dir: &std::path::Path) -> Rrd {
    let mut db = opsview(dir, "filled.rrd");
    let samples = 2 * 365 * 288;
    for i in 1..=samples {
        let v = (i % 1000) as f64 * 0.25;
        db.update(Timestamp::from_secs(START + i * 300), &[v]).expect("update");
    }
    db
}

fn update(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut g = c.benchmark_group("update");
    let mut db = opsview(dir.path(), "u.rrd");
    let mut t = START;
    g.bench_function("one file, typed, every 300 s", |b| {
        b.iter(|| {
            t += 300;
            db.update(Timestamp::from_secs(t), black_box(&[42.5])).expect("update");
        });
    });
    let mut db = opsview(dir.path(), "t.rrd");
    let mut t = START;
    let mut arg = String::new();
    g.bench_function("one file, text, every 300 s", |b| {
        b.iter(|| {
            use std::fmt::Write as _;
            t += 300;
            arg.clear();
            let _ = write!(arg, "{t}:42.5");
            db.update_text(black_box(&arg)).expect("update");
        });
    });
    let mut db = opsview(dir.path(), "b.rrd");
    let mut t = START;
    g.bench_function("one file, batch of 12", |b| {
        let values = [[1.0]; 12];
        b.iter(|| {
            let batch: Vec<(Timestamp, &[f64])> = values
                .iter()
                .map(|v| {
                    t += 300;
                    (Timestamp::from_secs(t), v.as_slice())
                })
                .collect();
            db.update_many(batch).expect("update");
        });
    });
    g.finish();
}

fn fetch(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = filled(dir.path());
    let end = db.last_update().sec;
    let mut g = c.benchmark_group("fetch");
    let two_days = FetchRequest::new(Cf::Average, end - 2 * 86_400, end);
    g.bench_function("2 days (576 rows of 5 min)", |b| {
        b.iter(|| black_box(db.fetch(black_box(&two_days)).expect("fetch")));
    });
    let two_years = FetchRequest::new(Cf::Average, end - 729 * 86_400, end);
    g.bench_function("2 years (730 daily rows)", |b| {
        b.iter(|| black_box(db.fetch(black_box(&two_years)).expect("fetch")));
    });
    g.finish();
}

fn create(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut g = c.benchmark_group("create");
    let mut i = 0u64;
    g.bench_function("monitoring default (new file)", |b| {
        b.iter(|| {
            i += 1;
            black_box(opsview(dir.path(), &format!("c{}.rrd", i % 64)));
        });
    });
    g.finish();
}

criterion_group!(benches, update, fetch, create);
criterion_main!(benches);
