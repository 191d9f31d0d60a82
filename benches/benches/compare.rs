//! Side by side: rrdcore against librrd (RRDtool 1.7) on the same machine in
//! the same run, printing medians (min-max) per operation and the ratios.
//!
//! ```sh
//! cargo bench -p rrd-benches --bench compare --features librrd   # needs librrd-dev
//! cargo bench -p rrd-benches --bench compare                      # rrdcore only
//! RRD_BENCH_LARGE=0 ...                                            # skip the 100,000-file runs
//! RRD_BENCH_ROUNDS=15 ...                                          # more rounds (default 5) on a noisy machine
//! RRD_BENCH_TRACE=1 ...                                            # each round's figure on stderr
//! ```
//!
//! Workloads (monitoring-default schema, one update per series per step):
//! update on one file; one update on each of 10,000 files (warm: files in the
//! page cache, the store's map cache holding them all); the same for 100,000;
//! batches of 12 values per series; fetch of 2 days and 2 years; create.
//! Also bytes dirtied per value (`/proc/self/io` write_bytes) and resident
//! memory per idle series in the store's index.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::cast_precision_loss, missing_docs, reason = "a benchmark program")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use rrd_benches::{rss_bytes, summary, write_bytes};
use rrdcore::{Cf, CreateOptions, FetchRequest, Point, Rrd, Schema, SeriesKey, Store, StoreConfig, Timestamp};

/// Counts live heap bytes, to measure memory per idle series exactly.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
#[expect(unsafe_code, reason = "a counting global allocator for the memory measurement")]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const START: i64 = 1_600_000_000;
/// Timed rounds per workload and side: `RRD_BENCH_ROUNDS`, default 5.
fn rounds_wanted() -> usize {
    std::env::var("RRD_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).filter(|n| *n > 0).unwrap_or(5)
}
#[cfg_attr(not(feature = "librrd"), allow(dead_code))]
const OPSVIEW_ARGS: [&str; 5] = [
    "DS:value:GAUGE:4200:U:U",
    "RRA:AVERAGE:0.5:1:600",
    "RRA:AVERAGE:0.5:6:672",
    "RRA:AVERAGE:0.5:24:744",
    "RRA:AVERAGE:0.5:288:730",
];

type Stat = (f64, f64, f64);

struct Row {
    name: String,
    unit: &'static str,
    ours: Stat,
    theirs: Option<Stat>,
}

/// Runs [`rounds_wanted`] timed rounds of `ops` operations each; nanoseconds per operation.
fn rounds(ops: usize, mut round: impl FnMut(usize)) -> Stat {
    let n = rounds_wanted();
    let mut per_op = Vec::with_capacity(n);
    for r in 0..n {
        let t = Instant::now();
        round(r);
        let per = t.elapsed().as_nanos() as f64 / ops as f64;
        if std::env::var_os("RRD_BENCH_TRACE").is_some() {
            eprint!("{per:.0} ");
        }
        per_op.push(per);
    }
    summary(&mut per_op)
}

fn keys(n: usize) -> Vec<SeriesKey> {
    (0..n).map(|i| SeriesKey::new("bench.metric", [("host", format!("h{i:07}"))]).expect("key")).collect()
}

/// One update on each of `n` series, once per round (after one warm round).
fn store_rounds(dir: &Path, n: usize) -> (Stat, f64) {
    let max_open = n.max(1);
    let store = Store::open(dir, StoreConfig { max_open, ..StoreConfig::default() }).expect("store");
    // Series handles, as a server keeps them: no index lookup per write.
    let keys: Vec<_> = keys(n).iter().map(|k| store.handle(k).expect("handle")).collect();
    for k in &keys {
        store.write_to(k, Timestamp::from_secs(START + 300), 1.0).expect("write");
    }
    let mut t = START + 300;
    for k in &keys {
        store.write_to(k, Timestamp::from_secs(t + 300), 1.0).expect("write");
    }
    t += 300;
    let mut next = t;
    // As a server's writer loop does: each series' memory is hinted one
    // series ahead (its index entry two ahead), so the misses overlap.
    let stat = rounds(n, |_| {
        next += 300;
        for (i, k) in keys.iter().enumerate() {
            if let Some(ahead) = keys.get(i + 2) {
                store.prefetch_handle(ahead);
            }
            if let Some(following) = keys.get(i + 1) {
                store.prefetch(following);
            }
            store.write_to(k, Timestamp::from_secs(next), 2.0).expect("write");
        }
    });
    sync();
    let before = write_bytes();
    next += 300;
    for k in &keys {
        store.write_to(k, Timestamp::from_secs(next), 3.0).expect("write");
    }
    let per_value = (write_bytes() - before) as f64 / n as f64;
    let s = store.stats();
    assert_eq!(s.evictions, 0, "the warm runs must not evict: {s:?}");
    (stat, per_value)
}

fn sync() {
    let _ = std::process::Command::new("sync").status();
}

#[cfg(feature = "librrd")]
mod theirs {
    use super::*;
    use rrd_benches::librrd;
    use std::ffi::CString;

    pub fn create_files(dir: &Path, n: usize) -> Vec<CString> {
        std::fs::create_dir_all(dir).expect("dir");
        (0..n)
            .map(|i| {
                let p = dir.join(format!("h{i:07}.rrd"));
                let s = p.to_str().expect("utf8").to_owned();
                librrd::create(&s, 300, START, &OPSVIEW_ARGS).expect("rrd_create_r");
                CString::new(s).expect("path")
            })
            .collect()
    }

    fn arg(t: i64, v: f64) -> CString {
        CString::new(format!("{t}:{v}")).expect("arg")
    }

    pub fn update_rounds(files: &[CString]) -> (Stat, f64) {
        let mut t = START;
        for _ in 0..2 {
            t += 300;
            for f in files {
                librrd::update(f, &[arg(t, 1.0)]).expect("rrd_update_r");
            }
        }
        let stat = rounds(files.len(), |_| {
            t += 300;
            for f in files {
                librrd::update(f, &[arg(t, 2.0)]).expect("rrd_update_r");
            }
        });
        sync();
        let before = write_bytes();
        t += 300;
        for f in files {
            librrd::update(f, &[arg(t, 3.0)]).expect("rrd_update_r");
        }
        (stat, (write_bytes() - before) as f64 / files.len() as f64)
    }

    pub fn one_file(dir: &Path, ops: usize) -> Stat {
        let f = create_files(&dir.join("one"), 1).remove(0);
        let mut t = START;
        let args: Vec<CString> = (0..ops * (rounds_wanted() + 1)).map(|i| arg(START + 300 * (i as i64 + 1), 1.5)).collect();
        let mut it = args.chunks(ops);
        for a in it.next().unwrap_or_default() {
            librrd::update(&f, std::slice::from_ref(a)).expect("update");
            t += 300;
        }
        let _ = t;
        rounds(ops, |_| {
            for a in it.next().unwrap_or_default() {
                librrd::update(&f, std::slice::from_ref(a)).expect("update");
            }
        })
    }

    pub fn batch12(dir: &Path, n: usize) -> Stat {
        let files = create_files(dir, n);
        let mut t = START;
        let batch = |t: i64| {
            for f in &files {
                let args: Vec<CString> = (1..=12).map(|k| arg(t + 300 * k, 1.0)).collect();
                librrd::update(f, &args).expect("rrd_update_r");
            }
        };
        // As for rrdcore: written back, then one untimed round.
        super::quiesce();
        batch(t);
        t += 12 * 300;
        rounds(n * 12, |_| {
            batch(t);
            t += 12 * 300;
        })
    }

    pub fn filled(dir: &Path) -> CString {
        let f = create_files(&dir.join("filled"), 1).remove(0);
        let samples = 2 * 365 * 288;
        for chunk in (1..=samples).collect::<Vec<i64>>().chunks(1000) {
            let args: Vec<CString> = chunk.iter().map(|i| arg(START + i * 300, (i % 1000) as f64 * 0.25)).collect();
            librrd::update(&f, &args).expect("fill");
        }
        f
    }

    pub fn fetch(f: &CString, start: i64, end: i64, ops: usize) -> Stat {
        let cf = CString::new("AVERAGE").expect("cf");
        rounds(ops, |_| {
            for _ in 0..ops {
                std::hint::black_box(librrd::fetch(f, &cf, start, end).expect("rrd_fetch_r"));
            }
        })
    }

    pub fn create(dir: &Path, ops: usize) -> Stat {
        std::fs::create_dir_all(dir).expect("dir");
        rounds(ops, |r| {
            for i in 0..ops {
                let p = dir.join(format!("c{r}-{i}.rrd"));
                librrd::create(p.to_str().expect("utf8"), 300, START, &OPSVIEW_ARGS).expect("create");
            }
        })
    }
}

/// `Some(expr)` when built with the `librrd` feature; otherwise `None` and
/// the expression is not compiled.
#[cfg(feature = "librrd")]
macro_rules! theirs {
    ($e:expr) => {
        Some($e)
    };
}
#[cfg(not(feature = "librrd"))]
macro_rules! theirs {
    ($e:expr) => {
        None
    };
}

/// Writes every dirty page back and waits, so that no earlier workload's
/// writeback runs inside the next one's timed rounds.
fn quiesce() {
    let _ = std::process::Command::new("sync").status();
}

fn opsview_file(path: &Path) -> Rrd {
    let opts = CreateOptions { start: Some(START), overwrite: true, ..CreateOptions::default() };
    Rrd::create(path, &Schema::monitoring_default(), &opts).expect("create")
}

fn fmt(s: Stat) -> String {
    let f = |ns: f64| if ns >= 1000.0 { format!("{:.2} µs", ns / 1000.0) } else { format!("{ns:.0} ns") };
    format!("{} ({}-{})", f(s.0), f(s.1), f(s.2))
}

fn raise_map_count(needed: usize) {
    let path = "/proc/sys/vm/max_map_count";
    let current: usize = std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
    if current < needed + 10_000 {
        let want = (needed + 10_000).max(262_144);
        match std::fs::write(path, want.to_string()) {
            Ok(()) => println!("note: raised vm.max_map_count from {current} to {want} to keep {needed} maps open"),
            Err(e) => println!("note: vm.max_map_count is {current} and could not be raised ({e}); large runs will evict"),
        }
    }
}

fn main() {
    let base: PathBuf = std::env::var_os("RRD_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let tmp = tempfile::tempdir_in(&base).expect("tempdir");
    let dir = tmp.path();
    let small: usize = std::env::var("RRD_BENCH_SMALL").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let large: usize = std::env::var("RRD_BENCH_LARGE").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let mut rows: Vec<Row> = Vec::new();
    let mut bytes: Vec<(String, f64, Option<f64>)> = Vec::new();
    println!("rrdcore vs librrd: {} rounds each, median (min-max) per operation; data in {}", rounds_wanted(), dir.display());

    // 1. update on one file
    let ops = 20_000;
    let mut db = opsview_file(&dir.join("one.rrd"));
    let mut t = START;
    let ours = rounds(ops, |_| {
        for _ in 0..ops {
            t += 300;
            db.update(Timestamp::from_secs(t), &[1.5]).expect("update");
        }
    });
    drop(db);
    let theirs = theirs!(theirs::one_file(&dir.join("librrd"), ops));
    rows.push(Row { name: "update, 1 file".into(), unit: "update", ours, theirs });

    // 2. and 3. one update on each of N files
    for n in [small, large].into_iter().filter(|n| *n > 0) {
        raise_map_count(n);
        let (ours, ours_bytes) = store_rounds(&dir.join(format!("store{n}")), n);
        let both: Option<(Stat, f64)> =
            theirs!(theirs::update_rounds(&theirs::create_files(&dir.join(format!("librrd{n}")), n)));
        let (theirs, theirs_bytes) = (both.map(|b| b.0), both.map(|b| b.1));
        rows.push(Row { name: format!("update, 1 each on {n} files (warm)"), unit: "update", ours, theirs });
        bytes.push((format!("{n} files x 1 update"), ours_bytes, theirs_bytes));
    }

    // 4. batches of 12 values per series
    let n = small;
    let store = Store::open(dir.join("batch"), StoreConfig { max_open: n, ..StoreConfig::default() }).expect("store");
    let ks = keys(n);
    let mut t = START;
    // One untimed round creates the series; the timed rounds are the steady state.
    for k in &ks {
        store.write(k, Timestamp::from_secs(t + 1), 0.0).expect("write");
    }
    t += 300;
    let batch = |t: i64| {
        let points: Vec<Point<'_>> = ks
            .iter()
            .flat_map(|k| (1..=12).map(move |j| Point { key: k, time: Timestamp::from_secs(t + 300 * j), value: 1.0 }))
            .collect();
        let out = store.write_batch(&points);
        assert!(out.errors.is_empty());
    };
    // Steady state: earlier workloads' dirty pages written back first, and
    // one untimed round that takes the first write faults of the new files.
    quiesce();
    batch(t);
    t += 12 * 300;
    let ours = rounds(n * 12, |_| {
        batch(t);
        t += 12 * 300;
    });
    drop(store);
    let theirs = theirs!(theirs::batch12(&dir.join("librrd-batch"), n));
    rows.push(Row { name: format!("batched update, 12 values x {n} series"), unit: "value", ours, theirs });

    // 5. fetch 2 days and 2 years from a full file
    let mut db = opsview_file(&dir.join("filled.rrd"));
    for i in 1..=(2 * 365 * 288) {
        db.update(Timestamp::from_secs(START + i * 300), &[(i % 1000) as f64 * 0.25]).expect("fill");
    }
    let end = db.last_update().sec;
    #[cfg(feature = "librrd")]
    let filled = theirs::filled(dir);
    for (label, span) in [("fetch 2 days", 2 * 86_400), ("fetch 2 years", 729 * 86_400)] {
        let ops = 20_000;
        let req = FetchRequest::new(Cf::Average, end - span, end);
        let ours = rounds(ops, |_| {
            for _ in 0..ops {
                std::hint::black_box(db.fetch(&req).expect("fetch"));
            }
        });
        let theirs = theirs!(theirs::fetch(&filled, end - span, end, ops));
        rows.push(Row { name: label.into(), unit: "fetch", ours, theirs });
    }
    drop(db);

    // 6. create
    let ops = 200;
    let cdir = dir.join("create");
    std::fs::create_dir_all(&cdir).expect("dir");
    let ours = rounds(ops, |r| {
        for i in 0..ops {
            drop(opsview_file(&cdir.join(format!("c{r}-{i}.rrd"))));
        }
    });
    let theirs = theirs!(theirs::create(&dir.join("librrd-create"), ops));
    rows.push(Row { name: "create (monitoring default)".into(), unit: "file", ours, theirs });

    // Memory per idle series: open a store over the largest directory.
    let mem_n = if large > 0 { large } else { small };
    let (heap0, rss0) = (LIVE.load(Ordering::Relaxed), rss_bytes());
    let store = Store::open(dir.join(format!("store{mem_n}")), StoreConfig::default()).expect("store");
    let idle = LIVE.load(Ordering::Relaxed).saturating_sub(heap0) as f64 / mem_n as f64;
    let idle_rss = rss_bytes().saturating_sub(rss0) as f64 / mem_n as f64;
    assert_eq!(store.stats().series, mem_n);
    drop(store);

    println!();
    println!("| workload | rrdcore | librrd | rrdcore / librrd | speed-up |");
    println!("|---|---|---|---|---|");
    for r in &rows {
        let (theirs, ratio, speedup) = match r.theirs {
            Some(t) => (fmt(t), format!("{:.4}", r.ours.0 / t.0), format!("{:.1}x", t.0 / r.ours.0)),
            None => ("(not run)".into(), "-".into(), "-".into()),
        };
        println!("| {} (per {}) | {} | {} | {} | {} |", r.name, r.unit, fmt(r.ours), theirs, ratio, speedup);
    }
    println!();
    println!("| bytes dirtied per value | rrdcore | librrd |");
    println!("|---|---|---|");
    for (name, ours, theirs) in &bytes {
        let t = theirs.map_or_else(|| "(not run)".to_owned(), |b| format!("{b:.0}"));
        println!("| {name} | {ours:.0} | {t} |");
    }
    println!();
    println!(
        "memory per idle series in the store's index: {idle:.0} heap bytes (live allocations after opening {mem_n} series; RSS growth {idle_rss:.0} bytes, allocator reuse makes it an underestimate)"
    );
}
