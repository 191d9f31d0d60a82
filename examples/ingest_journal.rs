//! Ingest through the journal, in process: each durability policy side by
//! side in one run (`none`, `interval`, `sync`), on the same machine.
//!
//! ```sh
//! cargo run --release -p rrd-examples --example ingest_journal -- [--series N] [--rounds R] [--threads T] [--reorder-ms W] [--repeat K] [--dir PATH]
//! ```
//!
//! Per policy: a fresh data directory (under `--dir`, default the system
//! temp directory: it must be a real disk for the sync figures to mean
//! anything), `series` series created by an untimed first round, then
//! `rounds` rounds of one point per series (10 s apart), sent by `threads`
//! threads in batches of 1000 points through `App::ingest_resolved` (the
//! path every put takes after decoding). Printed: points answered per
//! second; per second through the final checkpoint (every held point
//! applied, every database flushed, the journal emptied); bytes written to
//! storage per point (`/proc/self/io` write_bytes: journal plus dirtied
//! database pages), and the journal's own bytes per point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::cast_precision_loss, reason = "a measuring tool")]

use std::sync::Arc;
use std::time::Instant;

use rrdserver::opentsdb::point::Value;
use rrdserver::server::app::Resolved;
use rrdserver::server::index::Series;
use rrdserver::server::journal::Durability;
use rrdserver::server::{App, Config};

struct Opts {
    series: usize,
    rounds: u64,
    threads: usize,
    reorder_ms: u64,
    repeat: usize,
    dir: std::path::PathBuf,
}

fn opts() -> Opts {
    let mut o = Opts { series: 10_000, rounds: 1000, threads: 2, reorder_ms: 10_000, repeat: 1, dir: std::env::temp_dir() };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = it.next().unwrap_or_else(|| panic!("{a} needs a value"));
        let n = || v.parse::<u64>().unwrap_or_else(|_| panic!("{a} needs a number"));
        match a.as_str() {
            "--series" => o.series = n() as usize,
            "--rounds" => o.rounds = n(),
            "--threads" => o.threads = n() as usize,
            "--reorder-ms" => o.reorder_ms = n(),
            "--repeat" => o.repeat = n() as usize,
            "--dir" => o.dir = v.into(),
            other => panic!("unknown option {other}"),
        }
    }
    o
}

fn write_bytes() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    io.lines().find_map(|l| l.strip_prefix("write_bytes: ")).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

const BASE: u64 = 1_700_000_000;

/// Sends `rounds` rounds from `threads` threads; each thread owns a share of the series.
fn send(app: &Arc<App>, series: &[Arc<Series>], rounds: std::ops::Range<u64>, threads: usize) {
    let chunk = series.len().div_ceil(threads);
    std::thread::scope(|s| {
        for part in series.chunks(chunk) {
            let rounds = rounds.clone();
            s.spawn(move || {
                let mut batch = Vec::with_capacity(1000);
                for r in rounds {
                    for (i, se) in part.iter().enumerate() {
                        batch.push(Resolved { series: Arc::clone(se), timestamp_ms: (BASE + r * 10) * 1000, value: Value::Int((r * 7 + i as u64) as i64) });
                        if batch.len() == 1000 {
                            assert!(app.ingest_resolved(&batch, false).unwrap().iter().all(Result::is_ok));
                            batch.clear();
                        }
                    }
                    if !batch.is_empty() {
                        assert!(app.ingest_resolved(&batch, false).unwrap().iter().all(Result::is_ok));
                        batch.clear();
                    }
                }
            });
        }
    });
}

fn run(o: &Opts, durability: Durability, name: &str) {
    let dir = tempfile::tempdir_in(&o.dir).unwrap();
    let config = Config { data_dir: dir.path().into(), durability, reorder_window_ms: o.reorder_ms, writer_threads: o.threads, ..Config::default() };
    let app = App::open(config).unwrap();
    let mut text = String::new();
    let series: Vec<Arc<Series>> = (0..o.series)
        .map(|i| {
            let p = rrdserver::opentsdb::point::DataPoint {
                metric: format!("bench.m{}", i % 10),
                timestamp_ms: BASE * 1000,
                value: Value::Int(0),
                tags: [("host".to_owned(), format!("h{i}"))].into_iter().collect(),
            };
            app.resolve(&p, &mut text).unwrap()
        })
        .collect();
    send(&app, &series, 0..1, o.threads);
    app.close().unwrap();
    drop(app);
    // Timed: a restarted server over the created series.
    let config = Config { data_dir: dir.path().into(), durability, reorder_window_ms: o.reorder_ms, writer_threads: o.threads, ..Config::default() };
    let app = App::open(config).unwrap();
    let series: Vec<Arc<Series>> = series.iter().map(|s| app.index.get(&canonical(s)).unwrap()).collect();
    let points = o.series as u64 * o.rounds;
    let before = write_bytes();
    let t = Instant::now();
    send(&app, &series, 1..o.rounds + 1, o.threads);
    let answered = t.elapsed().as_secs_f64();
    let journal = app.write.journal.as_ref().map_or(0, |j| j.bytes_appended());
    app.close().unwrap();
    let through = t.elapsed().as_secs_f64();
    let written = write_bytes() - before;
    println!(
        "{name:<9} {points:>10} points  answered {:>10.0}/s  through checkpoint {:>10.0}/s  written {:>6.1} B/point  journal {:>5.1} B/point",
        points as f64 / answered,
        points as f64 / through,
        written as f64 / points as f64,
        journal as f64 / points as f64
    );
}

fn canonical(s: &Series) -> String {
    let mut out = String::new();
    rrdserver::server::index::canonical(&mut out, s.key.metric(), s.key.tags().iter().map(|(k, v)| (k.as_str(), v.as_str())));
    out
}

fn main() {
    let o = opts();
    println!("{} series x {} rounds, {} threads, reorder window {} ms, in {}", o.series, o.rounds, o.threads, o.reorder_ms, o.dir.display());
    for _ in 0..o.repeat {
        run(&o, Durability::None, "none");
        run(&o, Durability::Interval, "interval");
        run(&o, Durability::Sync, "sync");
    }
}
