//! Power-cut test: the real `rrdserver serve` binary on an ext4 image
//! mounted through a loop device, with the kernel's periodic writeback off
//! (`vm.dirty_writeback_centisecs = 0`, restored afterwards) and
//! `-o commit=600`, so nothing reaches the image unless the server syncs it.
//! Several writers put with `?sync`; a cut is SIGKILL, then a copy of the
//! image file: only what was synced survives. Before half of the cuts, the
//! first page of some series files is written on its own
//! (`sync_file_range`), as the kernel may. The copy is checked with fsck,
//! mounted, served by a fresh server, and every acknowledged point must
//! read back with its value; the copy is then the disk the next life runs
//! on, as after a real cut.
//!
//! Needs root, `losetup`, `mkfs.ext4` and `python3` (to call
//! `sync_file_range` through ctypes); without them it says so and passes, unless
//! `RRD_REQUIRE_POWER_CUT` is set (CI sets it). `RRD_POWER_CUTS` sets the
//! number of cuts (default 24).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;

const WRITERS: usize = 4;
/// Series per writer; each put carries one point of each.
const SERIES: usize = 3;
const WRITEBACK: &str = "/proc/sys/vm/dirty_writeback_centisecs";

/// One step per second and one row per point, so a stored point reads back as itself.
const SCHEMA: &str = r#"
durability = "sync"
[[schema]]
metric = "cut.*"
create = "--step 1 DS:value:GAUGE:600:U:U RRA:LAST:0.5:1:100000"
"#;

fn run(cmd: &str, args: &[&str]) -> std::process::Output {
    let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(out.status.success() || cmd.starts_with("fsck") && out.status.code().is_some_and(|c| c < 4), "{cmd} {args:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    out
}

fn have(cmd: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {cmd}")]).output().is_ok_and(|o| o.status.success())
}

/// An image mounted through a loop device, unmounted and detached when dropped.
struct Mounted {
    image: PathBuf,
    device: String,
    at: PathBuf,
}

impl Mounted {
    fn new(image: &Path, at: &Path) -> Mounted {
        std::fs::create_dir_all(at).unwrap();
        let device = String::from_utf8(run("losetup", &["-f", "--show", image.to_str().unwrap()]).stdout).unwrap().trim().to_owned();
        let mounted = Mounted { image: image.to_path_buf(), device, at: at.to_path_buf() };
        run("mount", &["-o", "commit=600", &mounted.device, at.to_str().unwrap()]);
        mounted
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.at).status();
        let _ = Command::new("losetup").args(["-d", &self.device]).status();
    }
}

/// The kernel's periodic writeback, off while this lives.
struct WritebackOff(String);

impl WritebackOff {
    fn new() -> WritebackOff {
        let saved = std::fs::read_to_string(WRITEBACK).unwrap().trim().to_owned();
        std::fs::write(WRITEBACK, "0").unwrap();
        WritebackOff(saved)
    }
}

impl Drop for WritebackOff {
    fn drop(&mut self) {
        let _ = std::fs::write(WRITEBACK, &self.0);
    }
}

/// The value writer `w` sends for its series `s` at offset `k`.
fn value(w: usize, s: usize, k: u64) -> u64 {
    k * 11 + (w * SERIES + s) as u64
}

/// What one writer knows: the next offset, and the offsets acknowledged
/// (every series of the writer has a point at each).
#[derive(Default, Clone)]
struct Writer {
    next: u64,
    acked: Vec<u64>,
}

/// One life of the server on `data`: writers put until the server is
/// killed after `ms`.
fn life(data: &Path, config: &Path, base: u64, writers: &mut [Writer], ms: u64) {
    let (mut child, addr) = common::serve_binary(data, &["--config", config.to_str().unwrap()]);
    let _guard = common::KillOnPanic(child.id());
    let dead = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = writers
        .iter()
        .enumerate()
        .map(|(w, state)| {
            let (dead, mut at) = (Arc::clone(&dead), state.next);
            std::thread::spawn(move || {
                let mut conn = None;
                let mut acked = Vec::new();
                while !dead.load(Ordering::Relaxed) {
                    let pts: Vec<_> = (0..SERIES)
                        .map(|s| json!({"metric": "cut.pts", "timestamp": base + at, "value": value(w, s, at), "tags": {"w": w.to_string(), "s": s.to_string()}}))
                        .collect();
                    let status = common::try_put(&mut conn, addr, "/api/put?sync", &json!(pts).to_string());
                    if status == Some(204) {
                        acked.push(at);
                    }
                    at += 1;
                    if status.is_none() {
                        break;
                    }
                }
                (acked, at)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(ms));
    child.kill().unwrap();
    child.wait().unwrap();
    dead.store(true, Ordering::Relaxed);
    for (state, t) in writers.iter_mut().zip(threads) {
        let (acked, at) = t.join().unwrap();
        state.acked.extend(acked);
        state.next = at;
    }
}

/// Writes the first page of every other series file on its own.
fn write_first_pages(data: &Path) -> usize {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data.join("cut.pts")).map(|d| d.map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|x| x == "rrd")).collect()).unwrap_or_default();
    files.sort();
    let chosen: Vec<&str> = files.iter().step_by(2).map(|p| p.to_str().unwrap()).collect();
    if !chosen.is_empty() {
        // SYNC_FILE_RANGE_WAIT_BEFORE | WRITE | WAIT_AFTER = 7 (Python's os module lacks the call).
        let script = "import ctypes,os,sys\nlibc = ctypes.CDLL(None, use_errno=True)\nfor p in sys.argv[1:]:\n    fd = os.open(p, os.O_RDWR)\n    if libc.sync_file_range(fd, ctypes.c_int64(0), ctypes.c_int64(4096), 7) != 0:\n        raise OSError(ctypes.get_errno(), p)\n    os.close(fd)\n";
        run("python3", &[&["-c", script], &chosen[..]].concat());
    }
    chosen.len()
}

/// Every acknowledged point of every writer, read from a server on `data`:
/// the problems found (empty when all are there with their values).
fn check(data: &Path, base: u64, writers: &[Writer]) -> Vec<String> {
    let (mut child, addr) = common::serve_binary(data, &[]);
    let _guard = common::KillOnPanic(child.id());
    let mut client = common::Client::connect(addr);
    let mut problems = Vec::new();
    for (w, state) in writers.iter().enumerate() {
        for s in 0..SERIES {
            let q = json!({"start": base, "end": base + state.next, "queries": [{"aggregator": "sum", "metric": "cut.pts", "tags": {"w": w.to_string(), "s": s.to_string()}}]});
            let got = client.send("POST", "/api/query", &[], q.to_string().as_bytes()).json();
            let dps = got[0]["dps"].as_object().cloned().unwrap_or_default();
            let wrong: Vec<(u64, Option<u64>)> = state
                .acked
                .iter()
                .filter_map(|k| {
                    let stored = dps.get(&(base + k).to_string()).and_then(serde_json::Value::as_u64);
                    (stored != Some(value(w, s, *k))).then_some((*k, stored))
                })
                .collect();
            if !wrong.is_empty() {
                problems.push(format!("writer {w} series {s}: {} of {} acknowledged points wrong or missing (offset, stored), first: {:?}", wrong.len(), state.acked.len(), &wrong[..wrong.len().min(20)]));
            }
        }
    }
    // Killed, not stopped: the next life starts from what this one synced.
    child.kill().unwrap();
    child.wait().unwrap();
    problems
}

#[test]
fn power_cuts_lose_no_acknowledged_point() {
    let tools = ["losetup", "mkfs.ext4", "fsck.ext4", "mount", "python3"];
    let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| s.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0")));
    if !root || !tools.iter().all(|t| have(t)) || !Path::new(WRITEBACK).exists() {
        assert!(std::env::var_os("RRD_REQUIRE_POWER_CUT").is_none(), "the power-cut test needs root and {tools:?}");
        eprintln!("power-cut test skipped: needs root and {tools:?}");
        return;
    }
    let cuts: usize = std::env::var("RRD_POWER_CUTS").ok().and_then(|v| v.parse().ok()).unwrap_or(24);
    let work = tempfile::tempdir().unwrap();
    let live_image = work.path().join("disk.img");
    std::fs::File::create(&live_image).unwrap().set_len(96 << 20).unwrap();
    run("mkfs.ext4", &["-q", "-F", live_image.to_str().unwrap()]);
    let _writeback = WritebackOff::new();
    let mut disk = Mounted::new(&live_image, &work.path().join("mnt0"));

    let base = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() - 150_000;
    let mut writers = vec![Writer::default(); WRITERS];
    let mut rng = common::Rng(0x9E37_79B9_7F4A_7C15);
    let mut first_pages = 0;
    for cut in 0..cuts {
        // Checkpoints often (so states are written between cuts), reorder
        // windows on and off, and few open databases in every third life
        // (so evicted databases park their state).
        let config = work.path().join("serve.toml");
        let window = if cut % 2 == 0 { 0 } else { 1500 };
        let max_open = if cut % 3 == 0 { 4 } else { 1000 };
        let interval = [80, 250, 700][cut % 3];
        std::fs::write(&config, format!("checkpoint_interval_ms = {interval}\nreorder_window_ms = {window}\nmax_open_databases = {max_open}\n{SCHEMA}")).unwrap();
        let data = disk.at.join("data");
        life(&data, &config, base, &mut writers, 150 + rng.below(900));
        // Two cuts in four, over both reorder windows.
        if cut % 4 >= 2 {
            first_pages += write_first_pages(&data);
        }
        // The cut: what reached the image file is all that survives.
        let image = work.path().join(format!("cut{cut}.img"));
        std::fs::copy(&disk.image, &image).unwrap();
        run("fsck.ext4", &["-f", "-y", image.to_str().unwrap()]);
        let next = Mounted::new(&image, &work.path().join(format!("mnt{}", cut + 1)));
        let problems = check(&next.at.join("data"), base, &writers);
        let acked: usize = writers.iter().map(|w| w.acked.len() * SERIES).sum();
        assert!(problems.is_empty(), "after cut {cut} ({acked} points acknowledged so far): {problems:#?}");
        let old = std::mem::replace(&mut disk, next);
        let old_image = old.image.clone();
        drop(old);
        std::fs::remove_file(old_image).unwrap();
    }
    let acked: usize = writers.iter().map(|w| w.acked.len() * SERIES).sum();
    assert!(writers.iter().all(|w| !w.acked.is_empty()), "every writer had puts acknowledged");
    eprintln!("{cuts} power cuts ({first_pages} first pages written alone), {acked} acknowledged points, all present with their values");
}
