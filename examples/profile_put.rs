//! Where the server's `/api/put` time goes, per point: decoding a body of
//! 1000 points, and storing them (10,000 series resolved through the index,
//! one database update each). For profilers: `N=rounds`, e.g.
//! `N=50 valgrind --tool=callgrind target/release/examples/profile_put`.
#![allow(clippy::unwrap_used, clippy::cast_precision_loss, reason = "a measuring tool")]

use std::time::Instant;

use rrdserver::opentsdb::put::parse_borrowed;
use rrdserver::server::{App, Config};

fn body(round: u64, chunk: usize) -> String {
    let points: Vec<String> = (chunk * 1000..(chunk + 1) * 1000)
        .map(|i| format!("{{\"metric\":\"lg.m{}\",\"timestamp\":{},\"value\":{},\"tags\":{{\"host\":\"h{}\",\"dc\":\"lga\"}}}}", i % 10, 1_700_000_000 + round, i, i / 10))
        .collect();
    format!("[{}]", points.join(","))
}

fn main() {
    let rounds: u64 = std::env::var("N").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let bodies: Vec<Vec<String>> = (0..=rounds).map(|r| (0..10).map(|c| body(r, c)).collect()).collect();
    let dir = tempfile::tempdir().unwrap();
    let app = App::open(Config { data_dir: dir.path().into(), ..Config::default() }).unwrap();
    // Round 0 creates the 10,000 series.
    for b in &bodies[0] {
        let pts: Vec<_> = parse_borrowed(b.as_bytes(), 8).unwrap().into_iter().map(Result::unwrap).collect();
        app.ingest(&pts, false).unwrap();
    }
    let (mut parse_ns, mut store_ns) = (0u128, 0u128);
    for round in &bodies[1..] {
        for b in round {
            let t = Instant::now();
            let pts: Vec<_> = parse_borrowed(b.as_bytes(), 8).unwrap().into_iter().map(Result::unwrap).collect();
            parse_ns += t.elapsed().as_nanos();
            let t = Instant::now();
            assert!(app.ingest(&pts, false).unwrap().iter().all(Result::is_ok));
            store_ns += t.elapsed().as_nanos();
        }
    }
    let n = (rounds * 10_000) as f64;
    println!("decode: {:.0} ns/point, store: {:.0} ns/point ({} points)", parse_ns as f64 / n, store_ns as f64 / n, n);
}
