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
/// Whether any failure is injected (the common case checks only this).
static ANY: AtomicBool = AtomicBool::new(false);

/// Makes the next `count` syncs of files under `prefix` fail with EIO
/// (for tests: a disk that fails while the program runs).
#[doc(hidden)]
pub fn inject_failures(prefix: &Path, count: u64) {
    let mut list = INJECTED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    list.retain(|(p, _)| p != prefix);
    if count > 0 {
        list.push((prefix.to_path_buf(), count));
    }
    ANY.store(!list.is_empty(), Ordering::SeqCst);
}

/// An injected failure for `path`, if one is due.
fn injected(path: &Path) -> std::io::Result<()> {
    if !ANY.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut list = INJECTED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(entry) = list.iter_mut().find(|(p, _)| path.starts_with(p)) else { return Ok(()) };
    entry.1 -= 1;
    list.retain(|(_, n)| *n > 0);
    ANY.store(!list.is_empty(), Ordering::SeqCst);
    Err(std::io::Error::from_raw_os_error(5))
}

/// `fdatasync` of `file` (at `path`).
pub fn data(file: &File, path: &Path) -> std::io::Result<()> {
    injected(path)?;
    file.sync_data()
}

/// `fsync` of `file` (at `path`): data and metadata.
pub fn all(file: &File, path: &Path) -> std::io::Result<()> {
    injected(path)?;
    file.sync_all()
}

/// `fsync` of the directory `dir`, so the entries created, renamed or
/// removed in it survive a power cut.
pub fn dir(dir: &Path) -> std::io::Result<()> {
    injected(dir)?;
    File::open(dir)?.sync_all()
}

/// Runs `msync` (given as `flush`) of a map of `path`.
pub(crate) fn map(path: &Path, flush: impl FnOnce() -> std::io::Result<()>) -> std::io::Result<()> {
    injected(path)?;
    flush()
}
