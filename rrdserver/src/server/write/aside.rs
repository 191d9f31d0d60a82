//! Points set aside: acknowledged points their database refused anyway, or
//! journaled points replay could not store (a series whose database cannot
//! be created or opened). They are never discarded: each is appended, with
//! its series, to `DATA/.journal/aside.wal-aside`, in the journal's own
//! format and synced before anything that held it is deleted, and
//! reported. The server never reads the file again by itself; once the
//! cause is fixed, renaming it to `<16 hex digits>.wal` (a number above the
//! journal's segments) makes the next start replay it.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::journal::format::{BlockWriter, segment_header};
use super::super::index::Series;

/// File name of the set-aside points, in the journal directory.
pub const FILE: &str = "aside.wal-aside";

/// The set-aside file of one data directory.
#[derive(Debug)]
pub struct Aside {
    path: PathBuf,
    file: Mutex<Option<File>>,
    /// Points set aside since the start.
    count: AtomicU64,
}

impl Aside {
    /// The set-aside file in `journal_dir` (created on first use).
    pub fn new(journal_dir: &Path) -> Aside {
        Aside { path: journal_dir.join(FILE), file: Mutex::default(), count: AtomicU64::new(0) }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Points set aside since the start.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Appends `points` (ms, value) of `series`, refused for `why`, and
    /// syncs them to disk.
    pub fn put(&self, series: &Series, points: &[(u64, f64)], why: &str) -> std::io::Result<()> {
        if points.is_empty() {
            return Ok(());
        }
        tracing::error!(series = %series.key, points = points.len(), reason = %why, file = %self.path.display(), "points set aside: their database cannot take them");
        let mut blocks = BlockWriter::default();
        blocks.define(0, &super::journal::Journaled::text(&series), series.counter.load(Ordering::Relaxed));
        for &(ms, v) in points {
            blocks.point(0, ms, v);
        }
        blocks.seal();
        let mut guard = self.file.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if guard.is_none() {
            *guard = Some(self.open()?);
        }
        let Some(file) = guard.as_mut() else { return Ok(()) };
        file.write_all(blocks.bytes())?;
        rrdcore::sync::data(file, &self.path)?;
        self.count.fetch_add(points.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Opens the file for appending, writing its header when it is new.
    fn open(&self) -> std::io::Result<File> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let mut file = OpenOptions::new().create(true).append(true).open(&self.path)?;
        if file.metadata()?.len() == 0 {
            file.write_all(&segment_header(0))?;
            rrdcore::sync::data(&file, &self.path)?;
            rrdcore::sync::dir(dir)?;
        }
        Ok(file)
    }
}
