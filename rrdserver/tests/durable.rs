//! The journaled write path: replay after a crash (once, and again without
//! changing anything), damaged journal blocks, backpressure, the reorder
//! window and damaged databases. A "crash copy" is a copy of the data
//! directory taken while the server runs: what a crash would leave.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Server, copy_dir};
use rrdserver::server::Config;
use serde_json::{Value, json};

const B: u64 = 1_700_000_100;

fn config(dir: &Path) -> Config {
    Config { data_dir: dir.to_path_buf(), checkpoint_interval_ms: 3_600_000, reorder_window_ms: 3_600_000, ..Config::default() }
}

fn points(metric: &str, host: &str, n: u64, value: impl Fn(u64) -> f64) -> Vec<Value> {
    (0..n).map(|i| json!({"metric": metric, "timestamp": B + i * 300, "value": value(i), "tags": {"host": host}})).collect()
}

fn put(s: &Server, pts: &[Value]) {
    let r = s.post("/api/put", &json!(pts).to_string());
    assert_eq!(r.status, 204, "{}", r.text());
}

fn files_with_extension(dir: &Path, ext: &str) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == ext)).collect();
    out.sort();
    out
}

/// Waits (bounded) until `cond` holds.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < Duration::from_secs(20), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn replay_is_complete_and_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let crash = tempfile::tempdir().unwrap();
    let s = Server::with_config(config(dir.path()));
    for (h, n) in [("a", 60), ("b", 50), ("c", 1)] {
        put(&s, &points("replay", h, n, |i| i as f64 * 1.5));
    }
    copy_dir(dir.path(), crash.path());
    drop(s);
    let saved = tempfile::tempdir().unwrap();
    copy_dir(&crash.path().join(".journal"), saved.path());
    // The crash copy holds no database yet: everything was in the window.
    assert!(!crash.path().join("replay").exists());

    let s = Server::with_config(config(crash.path()));
    assert_eq!(s.stat("tsd.journal.replayed"), 111);
    for (h, n) in [("a", 60u64), ("b", 50), ("c", 1)] {
        let got = s.dps("replay", h, B, B + n * 300);
        assert_eq!(got.len() as u64, n, "series {h}");
        for i in 0..n {
            assert_eq!(got[&(B + i * 300).to_string()].as_f64().unwrap(), i as f64 * 1.5);
        }
    }
    drop(s);
    // The journal was emptied by the clean stop: only the current segment's header is left.
    for seg in files_with_extension(&crash.path().join(".journal"), "wal") {
        assert_eq!(std::fs::metadata(seg).unwrap().len(), 16);
    }
    // A crash during the next start, after the databases were written but
    // before the segments were removed: the same segments replay again.
    copy_dir(saved.path(), &crash.path().join(".journal"));
    let s = Server::with_config(config(crash.path()));
    assert_eq!(s.stat("tsd.journal.replayed"), 0, "every point was already there");
    assert_eq!(s.dps("replay", "a", B, B + 60 * 300).len(), 60);
    assert_eq!(s.dps("replay", "b", B, B + 50 * 300)[&(B + 49 * 300).to_string()].as_f64().unwrap(), 49.0 * 1.5);
}

/// Block offsets of a segment, from its byte map (docs/journal.md).
fn blocks(seg: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = 16;
    while at + 12 <= seg.len() {
        let len = u32::from_le_bytes(seg[at + 4..at + 8].try_into().unwrap()) as usize;
        out.push((at, at + 12 + len));
        at += 12 + len;
    }
    out
}

#[test]
fn a_damaged_journal_block_loses_only_that_block() {
    let dir = tempfile::tempdir().unwrap();
    let crash = tempfile::tempdir().unwrap();
    let s = Server::with_config(config(dir.path()));
    for h in ["a", "b", "c"] {
        put(&s, &points("dmg", h, 50, |i| i as f64));
    }
    copy_dir(dir.path(), crash.path());
    drop(s);
    let segs = files_with_extension(&crash.path().join(".journal"), "wal");
    let seg = segs.iter().find(|p| std::fs::metadata(p).unwrap().len() > 16).unwrap();
    let mut bytes = std::fs::read(seg).unwrap();
    let b = blocks(&bytes);
    assert_eq!(b.len(), 3, "one block per put");
    bytes[(b[1].0 + b[1].1) / 2] ^= 0x04;
    std::fs::write(seg, &bytes).unwrap();

    let s = Server::with_config(config(crash.path()));
    assert_eq!(s.dps("dmg", "a", B, B + 50 * 300).len(), 50);
    assert_eq!(s.dps("dmg", "c", B, B + 50 * 300).len(), 50);
    assert_eq!(s.dps("dmg", "b", B, B + 50 * 300).len(), 0, "the damaged block's points are gone, nothing else");
    assert_eq!(files_with_extension(&crash.path().join(".journal"), "wal-damaged").len(), 1, "the damaged segment is kept aside");
}

#[test]
fn a_big_batch_spans_blocks_and_replays_whole() {
    let dir = tempfile::tempdir().unwrap();
    let crash = tempfile::tempdir().unwrap();
    let s = Server::with_config(config(dir.path()));
    let mut pts = Vec::new();
    for h in 0..1000 {
        pts.extend(points("big", &format!("h{h}"), 150, |i| i as f64 + 0.5));
    }
    put(&s, &pts);
    copy_dir(dir.path(), crash.path());
    drop(s);
    let segs = files_with_extension(&crash.path().join(".journal"), "wal");
    let bytes = std::fs::read(segs.iter().max_by_key(|p| std::fs::metadata(p).unwrap().len()).unwrap()).unwrap();
    assert!(blocks(&bytes).len() >= 2, "150,000 points in blocks of about 1 MiB");
    assert!(bytes.len() < 150_000 * 24, "journal bytes per point under 24: {}", bytes.len());
    let s = Server::with_config(config(crash.path()));
    // Series over the window cap were partly in databases already; the rest replays.
    assert_eq!(s.dps("big", "h0", B, B + 150 * 300).len(), 150);
    assert_eq!(s.dps("big", "h999", B, B + 150 * 300)[&(B + 149 * 300).to_string()].as_f64().unwrap(), 149.5);
    assert_eq!(s.stat("tsd.series.count"), 1000);
}

#[test]
fn a_full_queue_answers_503_and_telnet_waits() {
    let dir = tempfile::tempdir().unwrap();
    let c = Config { data_dir: dir.path().to_path_buf(), max_queued_points: 10, reorder_window_ms: 0, writer_threads: 1, ..Config::default() };
    let s = Server::with_config(c);
    put(&s, &points("bp", "x", 1, |_| 1.0));
    let x = s.app.index.get("bp{host=x}").unwrap();
    // Hold series x's database: the one writer thread stalls on it.
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let (held_tx, held_rx) = std::sync::mpsc::channel::<()>();
    let app = std::sync::Arc::clone(&s.app);
    let holder = std::thread::spawn(move || {
        app.store
            .with_handle(&x.handle, None, |_| {
                held_tx.send(()).unwrap();
                release_rx.recv().unwrap();
            })
            .unwrap();
    });
    held_rx.recv().unwrap();
    let addr = s.addr;
    let stalled = std::thread::spawn(move || {
        let pts: Vec<Value> = (1..6).map(|i| json!({"metric": "bp", "timestamp": B + i * 300, "value": i, "tags": {"host": "x"}})).collect();
        common::Client::connect(addr).send("POST", "/api/put", &[], json!(pts).to_string().as_bytes()).status
    });
    eventually("the stalled put to be queued", || s.stat("tsd.write_queue.points") == 5);
    let r = s.post("/api/put", &json!(points("bp", "y", 20, |i| i as f64)).to_string());
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.header("Retry-After"), Some("1"));
    assert!(r.text().contains("write queue is full"), "{}", r.text());
    assert!(s.stat("tsd.write_queue.refused") >= 20);
    // Telnet is not refused: its reads pause until there is room.
    let mut t = s.connect();
    let lines: String = (0..20).map(|i| format!("put bp {} {i} host=z\n", B + i * 300)).collect();
    std::io::Write::write_all(&mut t, format!("{lines}version\n").as_bytes()).unwrap();
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    assert_eq!(stalled.join().unwrap(), 204);
    let mut reply = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(&t), &mut reply).unwrap();
    assert!(reply.starts_with("net.opentsdb"), "{reply}");
    assert_eq!(s.dps("bp", "z", B, B + 20 * 300).len(), 20);
    assert_eq!(s.dps("bp", "x", B, B + 6 * 300).len(), 6);
    // The refused batch, sent again, is taken.
    put(&s, &points("bp", "y", 20, |i| i as f64));
    assert_eq!(s.dps("bp", "y", B, B + 20 * 300).len(), 20);
}

#[test]
fn late_points_are_stored_in_order_within_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::with_config(config(dir.path()));
    let p = |t: u64, v: f64| json!({"metric": "late", "timestamp": t, "value": v, "tags": {"host": "a"}});
    put(&s, &[p(B + 600, 2.0)]);
    put(&s, &[p(B + 300, 1.0)]);
    put(&s, &[p(B + 300, 1.0)]); // a resend of a held point
    let r = s.post("/api/put?details", &json!([p(B + 300, 9.0)]).to_string());
    assert_eq!(r.status, 400);
    assert!(r.json()["errors"][0]["error"].as_str().unwrap().contains("a different value"), "{}", r.text());
    let got = s.dps("late", "a", B, B + 2 * 300);
    assert_eq!(got, json!({(B + 300).to_string(): 1, (B + 600).to_string(): 2}).as_object().unwrap().clone());
    // The read applied them; an older point is now refused and counted.
    let r = s.post("/api/put?details", &json!([p(B, 0.5)]).to_string());
    assert!(r.json()["errors"][0]["error"].as_str().unwrap().contains("not after the series' last update"), "{}", r.text());
    assert_eq!(s.stat("tsd.datapoints.too_old"), 1);
    assert_eq!(s.stat("tsd.datapoints.duplicate"), 1);
    drop(s);

    // Held points reach the database when their window passes, with no read.
    let dir = tempfile::tempdir().unwrap();
    let s = Server::with_config(Config { reorder_window_ms: 1000, ..config(dir.path()) });
    put(&s, &[p(B + 300, 1.0), p(B + 600, 2.0)]);
    assert_eq!(s.stat("tsd.datapoints.added"), 0, "held in the window");
    eventually("the window to pass", || s.stat("tsd.datapoints.added") == 2);
}

#[test]
fn a_damaged_database_is_moved_aside_and_its_series_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let c = Config { reorder_window_ms: 0, ..config(dir.path()) };
    let s = Server::with_config(c.clone());
    put(&s, &points("db", "a", 10, |i| i as f64));
    put(&s, &points("db", "b", 10, |i| i as f64));
    drop(s);
    let path = dir.path().join("db/host=a.rrd");
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len / 3).unwrap();
    let s = Server::with_config(c);
    let later: Vec<Value> = (20..25).map(|i| json!({"metric": "db", "timestamp": B + i * 300, "value": i, "tags": {"host": "a"}})).collect();
    put(&s, &later);
    assert_eq!(s.dps("db", "a", B, B + 30 * 300).len(), 5);
    assert_eq!(s.dps("db", "b", B, B + 10 * 300).len(), 10);
    drop(s);
    assert_eq!(std::fs::metadata(dir.path().join("db/host=a.rrd.corrupt")).unwrap().len(), len / 3);
    assert!(rrdcore::check_bytes(&std::fs::read(&path).unwrap()).is_ok());
}
