//! Real OpenTSDB clients from PyPI against the server: opentsdb-py (HTTP
//! with gzip and `?details=true`, and telnet), potsdb and pyopentsdb. The
//! interpreter is `$RRD_PYTHON` (`.ci/run` makes a venv with the pinned
//! clients); without it the test says so and passes, unless
//! `RRD_REQUIRE_PYCLIENTS` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::process::Command;

use common::Server;
use serde_json::json;

#[test]
fn python_clients_put_and_read_back() {
    let Some(python) = std::env::var_os("RRD_PYTHON") else {
        assert!(std::env::var_os("RRD_REQUIRE_PYCLIENTS").is_none(), "RRD_REQUIRE_PYCLIENTS is set but RRD_PYTHON is not");
        eprintln!("RRD_PYTHON not set: skipping the PyPI client test");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    // Recent, step-aligned times: the clients stamp points themselves.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let base = now - now % 300 - 3600;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/pyclients.py");
    let out = Command::new(python).arg(script).arg(s.addr.port().to_string()).arg(base.to_string()).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("OK: "), "{text}");
    // Checked from this side too.
    let r = s.post("/api/query", &json!({"start": base, "end": base + 600, "queries": [{"aggregator": "sum", "metric": "py.potsdb"}]}).to_string());
    assert_eq!(r.json()[0]["dps"], json!({base.to_string(): 30, (base + 300).to_string(): 31, (base + 600).to_string(): 32}));
}
