//! The store: one update on each of 10,000 series (warm), batches of 12
//! values per series, and fetch through the store.
//!
//! `cargo bench -p rrd-benches --bench store`

#![allow(clippy::expect_used, missing_docs, reason = "a benchmark fails by panicking; criterion_group! generates undocumented items")]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rrdcore::{Cf, FetchRequest, Point, SeriesKey, Store, StoreConfig, Timestamp};

const START: i64 = 1_600_000_000;
const SERIES: usize = 10_000;

fn keys() -> Vec<SeriesKey> {
    (0..SERIES)
        .map(|i| SeriesKey::new("bench.metric", [("host", format!("h{i:05}"))]).expect("key"))
        .collect()
}

fn store(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), StoreConfig { max_open: SERIES, ..StoreConfig::default() }).expect("store");
    let keys = keys();
    let mut t = START;
    for k in &keys {
        store.write(k, Timestamp::from_secs(t), 1.0).expect("write");
    }
    let mut g = c.benchmark_group("store");
    g.throughput(Throughput::Elements(SERIES as u64));
    g.sample_size(20);
    g.bench_function("1 update on each of 10,000 series (warm), by key", |b| {
        b.iter(|| {
            t += 300;
            for k in &keys {
                store.write(k, Timestamp::from_secs(t), 2.0).expect("write");
            }
        });
    });
    let handles: Vec<_> = keys.iter().map(|k| store.handle(k).expect("handle")).collect();
    g.bench_function("1 update on each of 10,000 series (warm), by handle", |b| {
        b.iter(|| {
            t += 300;
            for h in &handles {
                store.write_to(h, Timestamp::from_secs(t), 2.0).expect("write");
            }
        });
    });
    g.throughput(Throughput::Elements(12 * SERIES as u64));
    g.bench_function("batch of 12 values x 10,000 series", |b| {
        b.iter(|| {
            let base = t;
            let points: Vec<Point<'_>> = keys
                .iter()
                .flat_map(|k| (1..=12).map(move |j| Point { key: k, time: Timestamp::from_secs(base + 300 * j), value: 1.0 }))
                .collect();
            let out = store.write_batch(&points);
            assert!(out.errors.is_empty());
            t += 12 * 300;
        });
    });
    g.throughput(Throughput::Elements(1));
    let key = &keys[17];
    let req = FetchRequest::new(Cf::Average, t - 2 * 86_400, t);
    g.bench_function("fetch 2 days through the store", |b| {
        b.iter(|| black_box(store.fetch(key, black_box(&req)).expect("fetch")));
    });
    g.finish();
    let s = store.stats();
    assert_eq!(s.evictions, 0, "{s:?}");
}

criterion_group!(benches, store);
criterion_main!(benches);
