//! A failed fsync or msync is fail-stop: injected through `rrdcore::sync`
//! (the one layer every journal and store sync goes through), it is never
//! reported as success, the server takes no more writes (503), no journal
//! segment is deleted, and the next start replays everything acknowledged.
//! The injection is per path prefix, so the tests of this binary do not
//! see each other's failures.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::path::Path;

use common::{Server, journal_payload};
use rrdserver::server::Config;
use serde_json::{Value, json};

const B: u64 = 1_700_000_100;

fn config(dir: &Path) -> Config {
    Config { data_dir: dir.to_path_buf(), checkpoint_interval_ms: 3_600_000, reorder_window_ms: 3_600_000, ..Config::default() }
}

fn put(s: &Server, metric: &str, host: &str, from: u64, n: u64) -> common::Response {
    let pts: Vec<Value> = (from..from + n).map(|i| json!({"metric": metric, "timestamp": B + i * 300, "value": i as f64, "tags": {"host": host}})).collect();
    s.post("/api/put", &json!(pts).to_string())
}

fn assert_all_read_back(s: &Server, metric: &str, host: &str, n: u64) {
    let got = s.dps(metric, host, B, B + n * 300);
    for i in 0..n {
        assert_eq!(got.get(&(B + i * 300).to_string()).and_then(Value::as_f64), Some(i as f64), "{metric} {host} point {i}: {got:?}");
    }
}

#[test]
fn a_failed_journal_fsync_stops_writes_and_the_restart_replays() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::with_config(config(dir.path()));
    assert_eq!(put(&s, "jf", "a", 0, 10).status, 204);
    rrdcore::sync::inject_failures(&dir.path().join(".journal"), 1);
    let r = put(&s, "jf", "a", 10, 10);
    assert_eq!(r.status, 503, "a batch whose fsync failed is not acknowledged: {}", r.text());
    // Fail-stop: the next fsync would succeed, and still nothing is taken.
    let r = put(&s, "jf", "b", 0, 1);
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.text().contains("restart"), "{}", r.text());
    assert_eq!(s.stat("tsd.write.failed"), 1);
    // A checkpoint refuses, so no segment is deleted.
    assert!(rrdserver::server::checkpoint::checkpoint(&s.app).is_err());
    let end = s.stop_result().unwrap_err().to_string();
    assert!(end.contains("Input/output error"), "the server ends with the failure: {end}");
    assert!(journal_payload(dir.path()) > 0, "the journal is kept for the next start");

    let s = Server::with_config(config(dir.path()));
    assert_eq!(s.stat("tsd.write.failed"), 0);
    assert_all_read_back(&s, "jf", "a", 10);
    assert_eq!(put(&s, "jf", "b", 0, 1).status, 204, "a restart takes writes again");
}

#[test]
fn a_failed_msync_at_checkpoint_keeps_the_journal_and_stops_writes() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::with_config(config(dir.path()));
    assert_eq!(put(&s, "mf", "a", 0, 20).status, 204);
    // The databases' msync fails once; the journal's syncs work.
    rrdcore::sync::inject_failures(&dir.path().join("mf"), 1);
    assert!(rrdserver::server::checkpoint::checkpoint(&s.app).is_err());
    let before = journal_payload(dir.path());
    assert!(before > 0, "the segment holding the points is not deleted");
    // A second checkpoint, whose msync would succeed, does not delete it either.
    assert!(rrdserver::server::checkpoint::checkpoint(&s.app).is_err());
    assert_eq!(journal_payload(dir.path()), before);
    assert_eq!(put(&s, "mf", "a", 20, 1).status, 503);
    assert_eq!(s.stat("tsd.write.failed"), 1);
    assert!(s.stop_result().is_err(), "the server ends with the failure");
    assert_eq!(journal_payload(dir.path()), before, "a stop after a failed sync deletes nothing");

    let s = Server::with_config(config(dir.path()));
    assert_all_read_back(&s, "mf", "a", 20);
    assert_eq!(put(&s, "mf", "a", 20, 1).status, 204);
}
