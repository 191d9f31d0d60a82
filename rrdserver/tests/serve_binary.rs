//! The real `rrdserver serve` binary: settings errors at startup, a clean
//! stop on SIGTERM and SIGINT, and everything acknowledged there after a
//! restart. (Child processes: this test binary holds nothing else.)
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::process::Command;

use serde_json::json;

use common::{BIN, serve_binary, stop_binary as stop};

const B: u64 = 1_700_000_100;

fn serve(dir: &std::path::Path) -> (std::process::Child, std::net::SocketAddr) {
    serve_binary(dir, &[])
}

#[test]
fn stops_cleanly_and_keeps_what_it_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let (child, addr) = serve(dir.path());
    let mut c = common::Client::connect(addr);
    assert_eq!(c.send("GET", "/api/version", &[], b"").status, 200);
    let points: Vec<_> = (0..50u64).map(|i| json!({"metric": "keep", "timestamp": B + i * 300, "value": i, "tags": {"h": "a"}})).collect();
    assert_eq!(c.send("POST", "/api/put", &[], json!(points).to_string().as_bytes()).status, 204);
    // An idle keep-alive connection must not hold the stop up.
    stop(child, "TERM");
    let (child, addr) = serve(dir.path());
    let mut c = common::Client::connect(addr);
    let q = json!({"start": B, "end": B + 49 * 300, "queries": [{"aggregator": "sum", "metric": "keep"}]});
    let got = c.send("POST", "/api/query", &[], q.to_string().as_bytes()).json();
    assert_eq!(got[0]["dps"].as_object().unwrap().len(), 50);
    assert_eq!(got[0]["dps"][(B + 49 * 300).to_string()], 49);
    stop(child, "INT");
}

#[test]
fn bad_settings_stop_startup_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\nmax_tagz = 9\n").unwrap();
    let out = Command::new(BIN).args(["serve", "--config"]).arg(&config).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown config key `max_tagz`"), "{err}");
    std::fs::write(&config, "max_body_bytes = -1\n").unwrap();
    let out = Command::new(BIN).args(["serve", "--config"]).arg(&config).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("config key `max_body_bytes`"));
    // A data directory held by another server.
    let (child, _) = serve(dir.path());
    let out = Command::new(BIN).args(["serve", "--listen", "127.0.0.1:0", "--data-dir"]).arg(dir.path()).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot open the data directory") && err.to_lowercase().contains("lock"), "{err}");
    stop(child, "TERM");
}

/// Metadata and index-only series answered with 204/200 survive kill -9.
#[test]
fn metadata_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = serve(dir.path());
    let mut c = common::Client::connect(addr);
    let meta = json!([{"Metric": "os.cpu", "Name": "unit", "Value": "percent"}, {"Tags": {"host": "vm"}, "Name": "version", "Value": "Debian 12"}]);
    assert_eq!(c.send("POST", "/api/metadata/put", &[], meta.to_string().as_bytes()).status, 204);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let idx = json!([{"metric": "seen.only", "timestamp": now, "value": 1, "tags": {"host": "vm"}}]);
    assert_eq!(c.send("POST", "/api/index", &[], idx.to_string().as_bytes()).status, 200);
    let pts = json!([{"metric": "os.cpu", "timestamp": B, "value": 5, "tags": {"host": "vm"}}]);
    assert_eq!(c.send("POST", "/api/put", &[], pts.to_string().as_bytes()).status, 204);
    child.kill().unwrap();
    child.wait().unwrap();
    let (child, addr) = serve(dir.path());
    let mut c = common::Client::connect(addr);
    assert_eq!(c.send("GET", "/api/metadata/metrics?metric=os.cpu", &[], b"").json()["Unit"], "percent");
    let got = c.send("GET", "/api/metadata/get?tagk=host&tagv=vm", &[], b"").json();
    assert_eq!(got[0]["Value"], "Debian 12");
    let names = c.send("GET", "/api/metric/host", &[], b"").json();
    assert!(names["vm"].as_array().unwrap().contains(&json!("seen.only")), "{names}");
    let last = c.send("GET", "/api/query/last?timeseries=os.cpu%7Bhost=vm%7D", &[], b"").json();
    assert_eq!(last[0]["value"], "5");
    stop(child, "TERM");
}
