//! Profiling aid: the comparison bench's batched workload, 12 values per
//! series for N series per round through `Store::write_batch`.
//! `perf record -g target/release/examples/profile_batch 10000 20`
#![allow(clippy::unwrap_used, clippy::cast_precision_loss, reason = "a measuring tool")]

use rrdcore::{Point, SeriesKey, Store, StoreConfig, Timestamp};

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let rounds: i64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig { max_open: n, ..StoreConfig::default() }).unwrap();
    let keys: Vec<SeriesKey> = (0..n).map(|i| SeriesKey::new("bench.metric", [("host", format!("h{i:07}"))]).unwrap()).collect();
    let mut t = 1_600_000_000;
    for k in &keys {
        store.write(k, Timestamp::from_secs(t + 1), 0.0).unwrap();
    }
    t += 300;
    let started = std::time::Instant::now();
    for _ in 0..rounds {
        let points: Vec<Point<'_>> = keys.iter().flat_map(|k| (1..=12).map(move |j| Point { key: k, time: Timestamp::from_secs(t + 300 * j), value: 1.0 })).collect();
        let out = store.write_batch(&points);
        assert!(out.errors.is_empty());
        t += 12 * 300;
    }
    let per = started.elapsed().as_nanos() as f64 / (rounds as f64 * n as f64 * 12.0);
    println!("{per:.1} ns per value ({n} series x 12 values x {rounds} rounds)");
}
