//! Crash test: the real `rrdserver serve` binary under puts from several
//! connections is killed with SIGKILL at random moments, again and again,
//! and restarted. Every point that got a 204 must be there at the end, and
//! every database must pass the store's check.
//!
//! Lives alternate between `durability = "sync"` and `"interval"` (a
//! process crash loses nothing under either: the journal write is in the
//! page cache before the answer). `RRD_CRASH_KILLS` sets the number of
//! kills (default 24) for a longer soak.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;

const CONNECTIONS: usize = 3;
const BATCH: u64 = 20;

/// One step per second, one row per point: a stored point reads back as itself.
const CONFIG: &str = r#"
checkpoint_interval_ms = 150
reorder_window_ms = 40
[[schema]]
metric = "crash.*"
create = "--step 1 DS:value:GAUGE:600:U:U RRA:LAST:0.5:1:100000"
"#;

#[test]
fn sigkill_at_random_moments_loses_nothing_acknowledged() {
    let kills: usize = std::env::var("RRD_CRASH_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(24);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let base = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() - 90_000;
    // Per connection: the next offset to send, and every acknowledged (offset, value).
    let mut next = [0u64; CONNECTIONS];
    let mut acked: Vec<Vec<(u64, u64)>> = vec![Vec::new(); CONNECTIONS];
    let mut rng = common::Rng(0x9E37_79B9_7F4A_7C15);
    for life in 0..kills {
        let durability = if life % 2 == 0 { "sync" } else { "interval" };
        let config = dir.path().join(format!("{durability}.toml"));
        std::fs::write(&config, format!("durability = \"{durability}\"\n{CONFIG}")).unwrap();
        let (mut child, addr) = common::serve_binary(&data, &["--config", config.to_str().unwrap()]);
        let _guard = common::KillOnPanic(child.id());
        let dead = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..CONNECTIONS)
            .map(|c| {
                let (dead, mut at) = (Arc::clone(&dead), next[c]);
                std::thread::spawn(move || {
                    let mut conn = None;
                    let mut got = Vec::new();
                    while !dead.load(Ordering::Relaxed) && at + BATCH < 90_000 {
                        let pts: Vec<_> = (at..at + BATCH)
                            .map(|k| json!({"metric": "crash.pts", "timestamp": base + k, "value": k * 7 + c as u64, "tags": {"conn": c.to_string()}}))
                            .collect();
                        // Acknowledged or not, the next batch moves on (an
                        // unacknowledged one may or may not be stored). No
                        // answer means the server died: this life is over
                        // (going on would leave gaps longer than the
                        // heartbeat, whose first point RRD rules make unknown).
                        let status = common::try_put(&mut conn, addr, "/api/put", &json!(pts).to_string());
                        if status == Some(204) {
                            got.extend((at..at + BATCH).map(|k| (k, k * 7 + c as u64)));
                        }
                        at += BATCH;
                        if status.is_none() {
                            break;
                        }
                    }
                    (got, at)
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(rng.below(400)));
        child.kill().unwrap();
        child.wait().unwrap();
        dead.store(true, Ordering::Relaxed);
        for (c, t) in clients.into_iter().enumerate() {
            let (got, at) = t.join().unwrap();
            acked[c].extend(got);
            next[c] = at;
        }
    }
    let total: usize = acked.iter().map(Vec::len).sum();
    assert!(total > 0, "no put was acknowledged in {kills} lives");

    let (child, addr) = common::serve_binary(&data, &[]);
    let _guard = common::KillOnPanic(child.id());
    let mut client = common::Client::connect(addr);
    let mut failures = Vec::new();
    for (c, points) in acked.iter().enumerate() {
        let q = json!({"start": base, "end": base + next[c], "queries": [{"aggregator": "sum", "metric": "crash.pts", "tags": {"conn": c.to_string()}}]});
        let got = client.send("POST", "/api/query", &[], q.to_string().as_bytes()).json();
        let dps = got[0]["dps"].as_object().cloned().unwrap_or_default();
        let wrong: Vec<(u64, Option<u64>, u64)> = points
            .iter()
            .filter_map(|(k, v)| {
                let stored = dps.get(&(base + k).to_string()).and_then(serde_json::Value::as_u64);
                (stored != Some(*v)).then_some((*k, stored, *v))
            })
            .collect();
        if let Some(dir) = std::env::var_os("RRD_CRASH_KEEP") {
            common::copy_dir(&data, std::path::Path::new(&dir));
        }
        if !wrong.is_empty() {
            failures.push(format!("connection {c}: {} of {} acknowledged points wrong or missing (offset, stored, sent), first: {:?}", wrong.len(), points.len(), &wrong[..wrong.len().min(30)]));
        }
    }
    common::stop_binary(child, "TERM");
    assert!(failures.is_empty(), "{failures:#?}");
    let mut checked = 0;
    for e in std::fs::read_dir(data.join("crash.pts")).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "rrd") {
            let report = rrdcore::check_bytes(&std::fs::read(&path).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(report.torn_slot.is_none(), "{}: {:?}", path.display(), report.torn_slot);
            checked += 1;
        }
    }
    assert_eq!(checked, CONNECTIONS);
    eprintln!("{kills} kills, {total} acknowledged points, all present");
}
