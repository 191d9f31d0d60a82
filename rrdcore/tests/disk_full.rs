//! Disk full while creating a series. In a test binary of its own: the test
//! spawns a child process, and a child briefly inherits the parent's open
//! descriptors (and so the `flock`s of other tests' stores) until it execs.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

mod common;
use common::walk;

use rrdcore::{SeriesKey, Store, StoreConfig, Timestamp};

const T0: i64 = 1_700_000_000;

fn key(metric: &str, host: &str) -> SeriesKey {
    SeriesKey::new(metric, [("host", host)]).unwrap()
}

/// Creating a series on a full disk: the write fails, the error names the
/// file, nothing half-written is left, and the rest of the store keeps working.
/// The disk is "full" for a child process run under `RLIMIT_FSIZE` (with
/// SIGXFSZ ignored, so writes past the limit fail with EFBIG, as ENOSPC would).
#[test]
fn disk_full_on_create_leaves_nothing_behind() {
    if std::process::Command::new("prlimit").arg("--version").output().is_err() {
        eprintln!("prlimit is not installed: skipping");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        store.write(&key("m", "before"), Timestamp::from_secs(T0), 1.0).unwrap();
    }
    let exe = std::env::current_exe().unwrap();
    let script = "trap '' XFSZ; exec prlimit --fsize=8192 \"$0\" --exact disk_full_child --ignored --nocapture --test-threads=1";
    let out = std::process::Command::new("sh")
        .args(["-c", script, exe.to_str().unwrap()])
        .env("RRD_DISK_FULL_DIR", dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("1 passed"), "child failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    // Back with room: the failed series can be created, the old one is intact.
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    assert_eq!(store.series(), vec![key("m", "before")]);
    store.write(&key("m", "after"), Timestamp::from_secs(T0), 1.0).unwrap();
    assert_eq!(store.last_update(&key("m", "before")).unwrap().sec, T0 + 300);
}

/// Run by `disk_full_on_create_leaves_nothing_behind` under a file size limit.
#[test]
#[ignore = "run by disk_full_on_create_leaves_nothing_behind in a child process"]
fn disk_full_child() {
    let dir = std::path::PathBuf::from(std::env::var_os("RRD_DISK_FULL_DIR").expect("run by the parent test"));
    let store = Store::open(&dir, StoreConfig::default()).unwrap();
    let err = store.write(&key("m", "after"), Timestamp::from_secs(T0), 1.0).unwrap_err().to_string();
    assert!(err.contains("host=after.rrd"), "{err}");
    assert!(!dir.join("m/host=after.rrd").exists());
    let leftovers: Vec<_> = walk(&dir).into_iter().filter(|p| p.to_string_lossy().contains(".tmp-")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(!store.contains(&key("m", "after")));
    // The existing series still takes writes (in place, the file does not grow).
    store.write(&key("m", "before"), Timestamp::from_secs(T0 + 300), 2.0).unwrap();
}
