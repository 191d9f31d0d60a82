//! Acknowledged means stored: whatever could refuse a point is decided
//! before the answer, a refused point is never journaled, and replay after
//! a crash keeps exactly what the running server answered. A "crash copy"
//! is a copy of the data directory taken while the server runs (what a
//! SIGKILL leaves: the journal written, nothing checkpointed).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::path::Path;

use common::{Server, copy_dir, journal_payload};
use rrdserver::server::Config;
use serde_json::{Value, json};

const B: u64 = 1_700_000_100;

/// A server config over `dir` with the reorder window given and `schemas`
/// (TOML `[[schema]]` tables).
fn config(dir: &Path, window_ms: u64, schemas: &str) -> Config {
    let mut c = Config::from_toml(schemas).unwrap();
    c.data_dir = dir.to_path_buf();
    c.reorder_window_ms = window_ms;
    c.checkpoint_interval_ms = 3_600_000;
    c
}

fn point(metric: &str, host: &str, t: u64, value: f64) -> Value {
    json!({"metric": metric, "timestamp": t, "value": value, "tags": {"host": host}})
}

/// A put with `?details`: its status (204 for all stored) and, per refused point, the point's
/// timestamp and the error text.
fn put(s: &Server, pts: &[Value]) -> (u16, Vec<(u64, String)>) {
    let r = s.post("/api/put?details", &json!(pts).to_string());
    let j = r.json();
    if r.status == 200 && j["failed"] == 0 {
        return (204, Vec::new());
    }
    let errors = j["errors"].as_array().cloned().unwrap_or_default();
    (r.status, errors.iter().map(|e| (e["datapoint"]["timestamp"].as_u64().unwrap_or(0), e["error"].as_str().unwrap_or("").to_owned())).collect())
}

/// `/api/query/last` of one series: its time (ms) and value.
fn last_value(s: &Server, series: &str) -> Option<(u64, f64)> {
    let got = s.get(&format!("/api/query/last?timeseries={series}&back_scan=0")).json();
    let p = got.get(0)?;
    Some((p["timestamp"].as_u64()?, p["value"].as_str()?.parse().ok()?))
}

fn journal_files(data: &Path, ext: &str) -> usize {
    std::fs::read_dir(data.join(".journal")).unwrap().filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == ext)).count()
}

const COUNTER: &str = "[[schema]]\nmetric = \"ctr\"\ncreate = \"--step 300 DS:value:COUNTER:600:U:U RRA:LAST:0.5:1:100\"\n";

#[test]
fn a_value_its_schema_cannot_take_is_refused_before_the_answer() {
    for window in [0, 3_600_000] {
        let dir = tempfile::tempdir().unwrap();
        let crash = tempfile::tempdir().unwrap();
        let s = Server::with_config(config(dir.path(), window, COUNTER));
        // A COUNTER reading must be a whole number: 100.5 is refused, per point.
        let (status, errors) = put(&s, &[point("ctr", "a", B, 100.0), point("ctr", "a", B + 300, 100.5), point("ctr", "a", B + 600, 400.0)]);
        assert_eq!(status, 400, "window {window}");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].0, B + 300);
        assert!(errors[0].1.contains("100.5"), "the error names the value: {}", errors[0].1);
        // A negative reading too.
        let (status, errors) = put(&s, &[point("ctr", "a", B + 900, -5.0)]);
        assert_eq!(status, 400);
        assert!(errors[0].1.contains("-5"), "{}", errors[0].1);
        copy_dir(dir.path(), crash.path());
        drop(s);

        let s = Server::with_config(config(crash.path(), window, COUNTER));
        assert_eq!(s.stat("tsd.journal.set_aside"), 0, "nothing acknowledged was refused later");
        // The two accepted readings: (400 - 100) / 600 s over both rows.
        let got = s.dps("ctr", "a", B, B + 900);
        assert_eq!(got.get(&(B + 300).to_string()).and_then(Value::as_f64), Some(0.5), "window {window}: {got:?}");
        assert_eq!(got.get(&(B + 600).to_string()).and_then(Value::as_f64), Some(0.5), "window {window}: {got:?}");
        // The refused one left the series free to go on.
        assert_eq!(put(&s, &[point("ctr", "a", B + 900, 700.0)]).0, 204);
    }
}

#[test]
fn replay_keeps_the_first_value_accepted_at_a_time() {
    for window in [0, 3_600_000] {
        let dir = tempfile::tempdir().unwrap();
        let crash = tempfile::tempdir().unwrap();
        let s = Server::with_config(config(dir.path(), window, ""));
        assert_eq!(put(&s, &[point("first", "a", B, 1.0)]).0, 204);
        if window == 0 {
            // Applied: wait until the database holds it (a read applies it).
            assert_eq!(s.dps("first", "a", B, B).len(), 1);
        }
        let (status, errors) = put(&s, &[point("first", "a", B, 2.0)]);
        assert_eq!(status, 400, "window {window}: a different value at an accepted time");
        assert_eq!(errors.len(), 1);
        // The same value again is a resend: acknowledged, stored once.
        assert_eq!(put(&s, &[point("first", "a", B, 1.0)]).0, 204);
        copy_dir(dir.path(), crash.path());
        drop(s);

        let s = Server::with_config(config(crash.path(), window, ""));
        let got = s.dps("first", "a", B, B + 300);
        assert_eq!(got.get(&B.to_string()).and_then(Value::as_f64), Some(1.0), "window {window}: {got:?}");
        assert_eq!(s.stat("tsd.journal.set_aside"), 0);
    }
}

#[test]
fn within_one_batch_the_last_value_at_a_time_wins_live_and_after_replay() {
    let dir = tempfile::tempdir().unwrap();
    let crash = tempfile::tempdir().unwrap();
    let s = Server::with_config(config(dir.path(), 3_600_000, ""));
    assert_eq!(put(&s, &[point("batch", "a", B, 1.0), point("batch", "a", B, 3.0)]).0, 204);
    assert_eq!(s.dps("batch", "a", B, B)[&B.to_string()].as_f64(), Some(3.0));
    copy_dir(dir.path(), crash.path());
    drop(s);
    let s = Server::with_config(config(crash.path(), 3_600_000, ""));
    assert_eq!(s.dps("batch", "a", B, B)[&B.to_string()].as_f64(), Some(3.0));
}

#[test]
fn a_huge_name_is_refused_and_never_journaled() {
    let dir = tempfile::tempdir().unwrap();
    let crash = tempfile::tempdir().unwrap();
    let s = Server::with_config(config(dir.path(), 3_600_000, ""));
    let huge = "v".repeat(70_000);
    let pts = [json!({"metric": "huge", "timestamp": B, "value": 1, "tags": {"host": huge}}), point("huge", "ok", B, 2.0)];
    let (status, errors) = put(&s, &pts);
    assert_eq!(status, 400);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].1.contains("over the limit"), "{}", errors[0].1);
    let with_one = journal_payload(dir.path());
    assert!(with_one > 0 && with_one < 1000, "only the small point is journaled: {with_one} bytes");
    copy_dir(dir.path(), crash.path());
    drop(s);
    let s = Server::with_config(config(crash.path(), 3_600_000, ""));
    assert_eq!(s.dps("huge", "ok", B, B)[&B.to_string()].as_f64(), Some(2.0));
    assert_eq!(journal_files(crash.path(), "wal-damaged"), 0, "the journal replayed whole");
}

#[test]
fn times_a_database_cannot_take_are_refused_before_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let crash = tempfile::tempdir().unwrap();
    let s = Server::with_config(config(dir.path(), 3_600_000, ""));
    // Before 1980 a new series cannot start (9999999999 is past 2^32, so
    // milliseconds, as OpenTSDB reads it: 1970); OpenTSDB takes no
    // timestamp of more than 13 digits.
    let early = [point("when", "early", 1, 1.0), point("when", "ms", 9_999_999_999, 1.0)];
    let (status, errors) = put(&s, &[early[0].clone(), early[1].clone(), point("when", "late", 1 << 53, 1.0)]);
    assert_eq!(status, 400);
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert_eq!(errors.iter().filter(|e| e.1.contains("earliest")).count(), 2, "{errors:?}");
    assert!(errors.iter().any(|e| e.1.contains("too large")), "{errors:?}");
    assert_eq!(journal_payload(dir.path()), 0, "refused points are not journaled");
    // Far in the future but within reach: accepted, and stays.
    let far = 4_000_000_000;
    assert_eq!(put(&s, &[point("when", "far", far, 7.0)]).0, 204);
    // Once it is applied (a read applies held points), an earlier point of
    // that series is refused at once, not dropped later.
    assert_eq!(last_value(&s, "when{host=far}"), Some((far * 1000, 7.0)));
    let (status, errors) = put(&s, &[point("when", "far", B, 8.0)]);
    assert_eq!(status, 400);
    assert!(errors[0].1.contains("not after"), "{errors:?}");
    copy_dir(dir.path(), crash.path());
    drop(s);
    let s = Server::with_config(config(crash.path(), 3_600_000, ""));
    assert_eq!(last_value(&s, "when{host=far}"), Some((far * 1000, 7.0)));
    assert_eq!(s.stat("tsd.journal.set_aside"), 0);
    assert_eq!(put(&s, &[point("when", "b", B, 1.0)]).0, 204, "the server takes writes");
}

#[test]
fn a_newer_format_version_is_refused_by_name_and_left_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::with_config(config(dir.path(), 0, ""));
    assert_eq!(put(&s, &[point("newer", "a", B, 1.0), point("newer", "b", B, 2.0)]).0, 204);
    drop(s);
    // As a later build would write it: format version 2 (bytes 8..12).
    let file = dir.path().join("newer/host=a.rrd");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[8..12].copy_from_slice(&2u32.to_le_bytes());
    std::fs::write(&file, &bytes).unwrap();

    let s = Server::with_config(config(dir.path(), 0, ""));
    let (status, errors) = put(&s, &[point("newer", "a", B + 300, 3.0), point("newer", "b", B + 300, 4.0)]);
    assert_eq!(status, 400);
    assert_eq!(errors.len(), 1, "only the series of the newer file: {errors:?}");
    assert!(errors[0].1.contains("version 2"), "the error names the version: {}", errors[0].1);
    assert_eq!(last_value(&s, "newer{host=b}"), Some(((B + 300) * 1000, 4.0)));
    assert_eq!(s.stat("tsd.store.quarantined"), 0);
    drop(s);
    assert_eq!(std::fs::read(&file).unwrap(), bytes, "the file is left as it is, where it is");
}

#[test]
fn series_named_like_the_store_files_are_series_like_any_other() {
    let dir = tempfile::tempdir().unwrap();
    let crash = tempfile::tempdir().unwrap();
    let names = ["LOCK", "journal", "bosun.redb", ".lock", ".journal", "..", "."];
    let s = Server::with_config(config(dir.path(), 3_600_000, ""));
    let pts: Vec<Value> = names.iter().enumerate().map(|(i, m)| point(m, "a", B, i as f64)).collect();
    assert_eq!(put(&s, &pts).0, 204);
    copy_dir(dir.path(), crash.path());
    drop(s);
    for d in [dir.path(), crash.path()] {
        let s = Server::with_config(config(d, 3_600_000, ""));
        for (i, m) in names.iter().enumerate() {
            assert_eq!(last_value(&s, &format!("{m}{{host=a}}")), Some((B * 1000, i as f64)), "{m} in {}", d.display());
        }
        assert_eq!(s.stat("tsd.journal.set_aside"), 0);
    }
}

#[test]
fn a_data_directory_of_the_earlier_layout_is_moved_over() {
    let dir = tempfile::tempdir().unwrap();
    let crash = tempfile::tempdir().unwrap();
    let s = Server::with_config(config(dir.path(), 3_600_000, ""));
    assert_eq!(put(&s, &[point("old", "a", B, 5.0)]).0, 204);
    assert_eq!(s.post("/api/metadata/put", &json!([{"Metric": "old", "Name": "unit", "Value": "bytes"}]).to_string()).status, 204);
    copy_dir(dir.path(), crash.path());
    drop(s);
    // As the earlier layout had them: LOCK, journal/, bosun.redb.
    let d = crash.path();
    std::fs::rename(d.join(".lock"), d.join("LOCK")).unwrap();
    std::fs::rename(d.join(".journal"), d.join("journal")).unwrap();
    std::fs::rename(d.join(".bosun.redb"), d.join("bosun.redb")).unwrap();
    let s = Server::with_config(config(d, 3_600_000, ""));
    assert_eq!(last_value(&s, "old{host=a}"), Some((B * 1000, 5.0)), "the old journal replayed");
    let meta = s.get("/api/metadata/get?metric=old").json();
    assert!(meta.to_string().contains("bytes"), "the old metadata kept: {meta}");
    // A metric named as the old files is a series again.
    assert_eq!(put(&s, &[point("journal", "a", B, 1.0), point("LOCK", "a", B, 2.0)]).0, 204);
    assert_eq!(last_value(&s, "LOCK{host=a}"), Some((B * 1000, 2.0)));
    drop(s);
    for old in ["LOCK", "bosun.redb"] {
        assert!(!d.join(old).is_file(), "{old} is gone");
    }
    assert_eq!(std::fs::read_dir(d.join("journal")).unwrap().count(), 1, "only the series of metric `journal` is there");
}

/// Runs the `rrdserver` binary with `args`: exit code and stderr.
fn cli(args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(common::BIN).args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn the_cli_refuses_to_write_files_a_running_server_holds() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    assert_eq!(put(&s, &[point("held", "a", B, 1.0)]).0, 204);
    assert_eq!(last_value(&s, "held{host=a}"), Some((B * 1000, 1.0)));
    let file = dir.path().join("held").join("host=a.rrd");
    let file = file.to_str().unwrap();
    let attempts: [&[&str]; 4] = [
        &["update", file, &format!("{}:9", B + 300)],
        &["tune", file, "--heartbeat", "value:900"],
        &["resize", file, "0", "GROW", "10"],
        &["create", file, "--step", "300", "DS:value:GAUGE:600:U:U", "RRA:AVERAGE:0.5:1:10"],
    ];
    for args in attempts {
        let (code, err) = cli(args);
        assert_ne!(code, 0, "{args:?} must fail");
        assert!(err.contains("inside the data directory") && err.contains("stop it first"), "{args:?}: {err}");
    }
    let (code, err) = cli(&["lastupdate", file]);
    assert_eq!(code, 0, "reading is allowed: {err}");
    assert_eq!(last_value(&s, "held{host=a}"), Some((B * 1000, 1.0)), "the server's series is as it was");
    s.stop();

    let (code, err) = cli(&["update", file, &format!("{}:9", B + 300)]);
    assert_eq!(code, 0, "with the server stopped the file is the CLI's: {err}");
}
