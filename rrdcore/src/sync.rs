//! Durability calls: every `fsync`, `fdatasync` and `msync` the store (and
//! the server's journal) depends on goes through here, so that tests can
//! make one fail ([`inject_failures`]) as a dying disk would.
//!
//! A failed sync is never retried as if nothing happened: after one, the
//! kernel may already have dropped the dirty pages and cleared the error, so
//! a second call can succeed without the data ever reaching the disk. The
//! callers treat it as fail-stop ([`crate::Store`] refuses every later
//! flush; the server stops taking writes).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Injected failures: (path prefix, how many syncs of files under it fail).
static INJECTED: Mutex<Vec<(PathBuf, u64)>> = Mutex::new(Vec::new());
/// Whether a failure was ever injected or syncs recorded (the common case
/// checks only this).
static ANY: AtomicBool = AtomicBool::new(false);

/// Syncs of files under these prefixes are recorded ([`record`]).
static RECORDING: Mutex<Vec<(PathBuf, Syncs)>> = Mutex::new(Vec::new());

/// Recorded syncs, in order.
type Syncs = Vec<(Kind, PathBuf)>;

/// What a recorded sync was.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `fdatasync` or `fsync` of a file.
    File,
    /// `fsync` of a directory.
    Dir,
    /// `msync` of a map.
    Map,
}

/// Starts recording the syncs of paths under `prefix`, or (with `false`)
/// stops and returns them in order (for tests: what reached the disk when).
#[doc(hidden)]
pub fn record(prefix: &Path, on: bool) -> Vec<(Kind, PathBuf)> {
    let mut list = RECORDING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let taken = list.iter().position(|(p, _)| p == prefix).map(|i| list.remove(i).1).unwrap_or_default();
    if on {
        list.push((prefix.to_path_buf(), Vec::new()));
    }
    ANY.store(true, Ordering::SeqCst);
    taken
}

/// Makes the next `count` syncs of files under `prefix` fail with EIO
/// (for tests: a disk that fails while the program runs).
#[doc(hidden)]
pub fn inject_failures(prefix: &Path, count: u64) {
    let mut list = INJECTED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    list.retain(|(p, _)| p != prefix);
    if count > 0 {
        list.push((prefix.to_path_buf(), count));
    }
    ANY.store(true, Ordering::SeqCst);
}

/// An injected failure for `path`, if one is due (and the sync recorded).
fn injected(path: &Path, kind: Kind) -> std::io::Result<()> {
    if !ANY.load(Ordering::Relaxed) {
        return Ok(());
    }
    if let Some((_, seen)) = RECORDING.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter_mut().find(|(p, _)| path.starts_with(p)) {
        seen.push((kind, path.to_path_buf()));
    }
    let mut list = INJECTED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(entry) = list.iter_mut().find(|(p, _)| path.starts_with(p)) else { return Ok(()) };
    entry.1 -= 1;
    list.retain(|(_, n)| *n > 0);
    Err(std::io::Error::from_raw_os_error(5))
}

/// `fdatasync` of `file` (at `path`).
pub fn data(file: &File, path: &Path) -> std::io::Result<()> {
    injected(path, Kind::File)?;
    file.sync_data()
}

/// `fsync` of `file` (at `path`): data and metadata.
pub fn all(file: &File, path: &Path) -> std::io::Result<()> {
    injected(path, Kind::File)?;
    file.sync_all()
}

/// `fsync` of the directory `dir`, so the entries created, renamed or
/// removed in it survive a power cut.
pub fn dir(dir: &Path) -> std::io::Result<()> {
    injected(dir, Kind::Dir)?;
    File::open(dir)?.sync_all()
}

/// Runs `msync` (given as `flush`) of a map of `path`.
pub(crate) fn map(path: &Path, flush: impl FnOnce() -> std::io::Result<()>) -> std::io::Result<()> {
    injected(path, Kind::Map)?;
    flush()
}
