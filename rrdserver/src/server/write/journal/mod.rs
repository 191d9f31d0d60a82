//! The write-ahead journal: every accepted point is appended here before
//! it is applied to its database, so a crash loses nothing acknowledged.
//!
//! * Segments `DATA/.journal/<seq>.wal` ([`mod@format`] has the byte map; the
//!   design and its version history are in `docs/journal.md`).
//! * [`Journal::begin`] takes the append lock and gives an [`Append`]: the
//!   caller decides each point and adds the ones it accepts while holding
//!   it, then [`Append::commit`] writes them as one block (batches never
//!   interleave, and the journal's order is the order of the decisions) and
//!   returns its end position; [`Journal::wait_synced`] waits until a sync
//!   thread has `fdatasync`ed past it. Concurrent writers
//!   share each sync (group commit). Under [`Durability::Interval`] the
//!   thread syncs every interval instead, or at once for a waiter.
//! * [`Journal::rotate`] starts a new segment; a checkpoint rotates, makes
//!   the databases durable, then [`Journal::remove_before`] deletes the
//!   segments whose points are all in the databases.
//! * A failed write (disk full) is cut off again, so the segment stays
//!   readable, and reported to the caller.
//! * A failed sync is fail-stop ([`rrdcore::sync`]): it is never retried,
//!   every waiter whose data it covered and every later append gets an
//!   error, and the journal takes nothing more until the server restarts
//!   (and replays what reached the disk).

pub mod format;

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use format::BlockWriter;

/// Directory of the journal inside the data directory (a leading `.`: no
/// series name reaches it).
pub const DIR: &str = ".journal";
/// Where the journal was in the earlier layout (see [`migrate`]).
const LEGACY_DIR: &str = "journal";
/// Extension of segment files.
pub const EXTENSION: &str = "wal";

/// When a put's points count as safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// The put is answered after the journal is on disk (`fdatasync`).
    Sync,
    /// The journal is synced every `sync_interval_ms`; a put is answered
    /// once written (a machine crash may lose that interval; a process
    /// crash loses nothing). `?sync` on a put waits for the sync.
    Interval,
    /// No journal: databases reach the disk at checkpoints.
    None,
}

impl Durability {
    /// Parses `sync`, `interval` or `none`.
    pub fn parse(s: &str) -> Option<Durability> {
        match s {
            "sync" => Some(Durability::Sync),
            "interval" => Some(Durability::Interval),
            "none" => Some(Durability::None),
            _ => None,
        }
    }
}

/// A series as the journal sees it.
pub trait Journaled {
    /// Where the journal keeps the series' id in the current segment:
    /// `(generation << 32) | (id + 1)`, 0 when never written.
    fn journal_slot(&self) -> &AtomicU64;
    /// The series' canonical text, written once per segment.
    fn text(&self) -> String;
    /// Whether its database is to be created with COUNTER data sources.
    fn counter(&self) -> bool;
}

/// The appending side, under one lock.
#[derive(Debug)]
struct Writer {
    file: File,
    path: PathBuf,
    seq: u64,
    /// Bytes in the current segment.
    len: u64,
    /// Bytes of the segments before this one (positions are global).
    base: u64,
    next_id: u64,
    /// Changes at each rotation and after a failed write, so that ids whose
    /// DEFINE is not (or may not be) in the current segment are not used.
    generation: u64,
    blocks: BlockWriter,
}

/// What the sync thread and waiters share.
#[derive(Debug)]
struct SyncState {
    /// The file to sync (a clone of the writer's) and its path.
    file: Arc<(File, PathBuf)>,
    written: u64,
    synced: u64,
    waiters: usize,
    /// Why a sync failed, once one has (fail-stop: never cleared).
    failed: Option<String>,
    stop: bool,
}

#[derive(Debug)]
struct Shared {
    sync: Mutex<SyncState>,
    /// The sync thread waits here for something to sync.
    work: Condvar,
    /// Puts wait here for their position to be synced.
    synced: Condvar,
    policy: Durability,
    interval: Duration,
}

/// The journal of one data directory.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    writer: Mutex<Writer>,
    shared: Arc<Shared>,
    syncer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Bytes appended since the start.
    appended: AtomicU64,
}

/// A journal problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// A write failed (disk full, file too large): nothing of the batch is
    /// in the journal, and the next batch may succeed.
    #[error("journal write failed: {0}")]
    Write(String),
    /// A sync failed: fail-stop, nothing more is taken until a restart.
    #[error("journal sync failed: {0}; no more writes are taken; restart the server to recover from the journal")]
    Failed(String),
    /// The journal was closed (the server is stopping).
    #[error("the journal is closed")]
    Closed,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The segment files in `dir` by sequence, oldest first.
pub fn segments(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some(EXTENSION) {
            continue;
        }
        if let Some(seq) = path.file_stem().and_then(|s| s.to_str()).and_then(|s| u64::from_str_radix(s, 16).ok()) {
            out.push((seq, path));
        }
    }
    out.sort();
    Ok(out)
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:016x}.{EXTENSION}"))
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    rrdcore::sync::dir(dir)
}

/// Creates segment `seq` with its header, durably.
fn new_segment(dir: &Path, seq: u64) -> std::io::Result<File> {
    let path = segment_path(dir, seq);
    let mut file = OpenOptions::new().create_new(true).append(true).open(&path)?;
    let written = file.write_all(&format::segment_header(seq)).and_then(|()| rrdcore::sync::data(&file, &path)).and_then(|()| sync_dir(dir));
    if let Err(e) = written {
        drop(file);
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    Ok(file)
}

/// Moves the journal's files of the earlier layout (`DATA/journal/*.wal*`)
/// into [`DIR`], before replay. Anything else there (series of a metric
/// named `journal`) stays; the old directory goes once empty.
pub fn migrate(data_dir: &Path) -> std::io::Result<()> {
    let old = data_dir.join(LEGACY_DIR);
    let Ok(entries) = std::fs::read_dir(&old) else { return Ok(()) };
    let new = data_dir.join(DIR);
    std::fs::create_dir_all(&new)?;
    let mut moved = 0;
    for e in entries {
        let path = e?.path();
        let ours = path.extension().and_then(|x| x.to_str()).is_some_and(|x| x.starts_with(EXTENSION));
        if let (true, Some(name)) = (ours, path.file_name()) {
            std::fs::rename(&path, new.join(name))?;
            moved += 1;
        }
    }
    if moved > 0 {
        rrdcore::sync::dir(&new)?;
        rrdcore::sync::dir(&old)?;
        tracing::info!(from = %old.display(), to = %new.display(), files = moved, "moved the journal to its new place");
    }
    if std::fs::remove_dir(&old).is_ok() {
        rrdcore::sync::dir(data_dir)?;
    }
    Ok(())
}

impl Journal {
    /// Starts a new segment after `last_seq` in `data_dir/journal` and the
    /// sync thread. Replay the old segments first (see `replay`).
    pub fn create(data_dir: &Path, last_seq: u64, policy: Durability, interval: Duration) -> std::io::Result<Journal> {
        let dir = data_dir.join(DIR);
        if !dir.is_dir() {
            std::fs::create_dir_all(&dir)?;
            rrdcore::sync::dir(data_dir)?;
        }
        let seq = last_seq + 1;
        let file = new_segment(&dir, seq)?;
        let len = format::SEGMENT_HEADER as u64;
        let shared = Arc::new(Shared {
            sync: Mutex::new(SyncState { file: Arc::new((file.try_clone()?, segment_path(&dir, seq))), written: len, synced: len, waiters: 0, failed: None, stop: false }),
            work: Condvar::new(),
            synced: Condvar::new(),
            policy,
            interval,
        });
        let writer = Writer { file, path: segment_path(&dir, seq), seq, len, base: 0, next_id: 0, generation: 1, blocks: BlockWriter::default() };
        let thread_shared = Arc::clone(&shared);
        let syncer = std::thread::Builder::new().name("journal-sync".into()).spawn(move || sync_loop(&thread_shared))?;
        Ok(Journal { dir, writer: Mutex::new(writer), shared, syncer: Mutex::new(Some(syncer)), appended: AtomicU64::new(0) })
    }

    /// The durability policy.
    pub fn policy(&self) -> Durability {
        self.shared.policy
    }

    /// Bytes in the current segment.
    pub fn segment_len(&self) -> u64 {
        lock(&self.writer).len
    }

    /// Bytes appended since the start (segment headers not counted).
    pub fn bytes_appended(&self) -> u64 {
        self.appended.load(Ordering::Relaxed)
    }

    /// Takes the append lock for one batch: see [`Append`]. Fails at once
    /// when an earlier sync failed (fail-stop).
    pub fn begin(&self) -> Result<Append<'_>, JournalError> {
        let mut w = lock(&self.writer);
        if let Some(why) = &lock(&self.shared.sync).failed {
            return Err(JournalError::Failed(why.clone()));
        }
        w.blocks.clear();
        Ok(Append { journal: self, w })
    }

    /// Why the journal failed, if it has (fail-stop).
    pub fn failure(&self) -> Option<String> {
        lock(&self.shared.sync).failed.clone()
    }

    /// Marks the journal failed (fail-stop) and wakes every waiter.
    fn fail(&self, why: String) {
        fail(&self.shared, why);
    }

    /// Waits until the journal is on disk up to `pos`.
    pub fn wait_synced(&self, pos: u64) -> Result<(), JournalError> {
        let mut s = lock(&self.shared.sync);
        s.waiters += 1;
        // Under `Sync` the append has woken the sync thread already.
        if self.shared.policy != Durability::Sync {
            self.shared.work.notify_one();
        }
        let out = loop {
            // Synced before any failure: that data is on disk.
            if s.synced >= pos {
                break Ok(());
            }
            if let Some(why) = &s.failed {
                break Err(JournalError::Failed(why.clone()));
            }
            if s.stop {
                break Err(JournalError::Closed);
            }
            s = self.shared.synced.wait(s).unwrap_or_else(std::sync::PoisonError::into_inner);
        };
        s.waiters -= 1;
        out
    }

    /// Starts a new segment (the old one synced first); returns its number.
    /// Points appended before the call are in older segments.
    pub fn rotate(&self) -> Result<u64, JournalError> {
        let mut w = lock(&self.writer);
        if let Some(why) = &lock(&self.shared.sync).failed {
            return Err(JournalError::Failed(why.clone()));
        }
        if let Err(e) = rrdcore::sync::data(&w.file, &w.path) {
            let why = format!("fdatasync {}: {e}", w.path.display());
            self.fail(why.clone());
            return Err(JournalError::Failed(why));
        }
        let path = segment_path(&self.dir, w.seq + 1);
        let file = new_segment(&self.dir, w.seq + 1).map_err(|e| JournalError::Write(format!("creating {}: {e}", path.display())))?;
        let clone = Arc::new((file.try_clone().map_err(|e| JournalError::Write(e.to_string()))?, path.clone()));
        w.base += w.len;
        w.len = format::SEGMENT_HEADER as u64;
        w.seq += 1;
        w.next_id = 0;
        w.generation += 1;
        w.file = file;
        w.path = path;
        let end = w.base + w.len;
        let mut s = lock(&self.shared.sync);
        s.file = clone;
        s.written = end;
        s.synced = end;
        self.shared.synced.notify_all();
        Ok(w.seq)
    }

    /// Deletes the segments numbered below `seq`.
    pub fn remove_before(&self, seq: u64) -> std::io::Result<()> {
        for (s, path) in segments(&self.dir)? {
            if s < seq {
                std::fs::remove_file(&path)?;
            }
        }
        sync_dir(&self.dir)
    }

    /// Syncs what is written and stops the sync thread.
    pub fn close(&self) {
        let w = lock(&self.writer);
        if let Err(e) = rrdcore::sync::data(&w.file, &w.path) {
            self.fail(format!("fdatasync {}: {e}", w.path.display()));
        }
        drop(w);
        lock(&self.shared.sync).stop = true;
        self.shared.work.notify_all();
        self.shared.synced.notify_all();
        if let Some(t) = lock(&self.syncer).take() {
            let _ = t.join();
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.close();
    }
}

/// Marks the journal failed and wakes everyone waiting on it.
fn fail(shared: &Shared, why: String) {
    let mut s = lock(&shared.sync);
    if s.failed.is_none() {
        tracing::error!(error = %why, "journal failed: the server takes no more writes until it is restarted");
        s.failed = Some(why);
    }
    shared.synced.notify_all();
    shared.work.notify_all();
}

/// One batch being appended, under the journal's append lock: points added
/// with [`Append::point`] are written by [`Append::commit`]; dropping it
/// without a commit writes nothing. No other batch is decided or written
/// meanwhile, so the journal holds the decisions in the order they were made.
pub struct Append<'a> {
    journal: &'a Journal,
    w: MutexGuard<'a, Writer>,
}

impl std::fmt::Debug for Append<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Append").field("bytes", &self.w.blocks.bytes().len()).finish()
    }
}

impl Append<'_> {
    /// Adds a point of `series` (defining the series in this segment first
    /// when it is not yet).
    pub fn point<S: Journaled>(&mut self, series: S, ms: u64, value: f64) {
        let w = &mut *self.w;
        let seg = w.generation << 32;
        let slot = series.journal_slot();
        let tag = slot.load(Ordering::Relaxed);
        let id = if tag != 0 && tag & !0xffff_ffff == seg {
            (tag & 0xffff_ffff) - 1
        } else {
            let id = w.next_id;
            w.next_id += 1;
            w.blocks.define(id, &series.text(), series.counter());
            slot.store(seg | (id + 1), Ordering::Relaxed);
            id
        };
        w.blocks.point(id, ms, value);
    }

    /// Writes the batch; the end position for [`Journal::wait_synced`], or
    /// `None` when it held no point. On an error nothing of the batch is in
    /// the journal.
    pub fn commit(mut self) -> Result<Option<u64>, JournalError> {
        let journal = self.journal;
        let w = &mut *self.w;
        w.blocks.seal();
        if w.blocks.bytes().is_empty() {
            return Ok(None);
        }
        if let Err(e) = w.file.write_all(w.blocks.bytes()) {
            // Ids defined in the lost bytes must be defined again.
            w.generation += 1;
            // Cut off whatever part was written, so the segment stays readable.
            if let Err(cut) = w.file.set_len(w.len) {
                journal.fail(format!("cutting off a failed write of {}: {cut}", w.path.display()));
            }
            return Err(JournalError::Write(format!("{}: {e}", w.path.display())));
        }
        journal.appended.fetch_add(w.blocks.bytes().len() as u64, Ordering::Relaxed);
        w.len += w.blocks.bytes().len() as u64;
        let end = w.base + w.len;
        let shared = &journal.shared;
        let mut s = lock(&shared.sync);
        let was_idle = s.written == s.synced;
        s.written = s.written.max(end);
        // The sync thread sleeps until there is something to sync.
        if shared.policy == Durability::Sync || was_idle {
            shared.work.notify_one();
        }
        Ok(Some(end))
    }
}

/// The sync thread: syncs when a waiter asks (or, under `Sync`, whenever
/// something is written), else every interval.
fn sync_loop(shared: &Shared) {
    let mut last = Instant::now();
    let mut s = lock(&shared.sync);
    loop {
        if s.stop {
            return;
        }
        let pending = s.written > s.synced;
        let due = pending && (shared.policy == Durability::Sync || s.waiters > 0 || last.elapsed() >= shared.interval);
        if !due {
            s = if pending {
                let wait = shared.interval.saturating_sub(last.elapsed());
                shared.work.wait_timeout(s, wait).map(|(g, _)| g).unwrap_or_else(|e| e.into_inner().0)
            } else {
                shared.work.wait(s).unwrap_or_else(std::sync::PoisonError::into_inner)
            };
            continue;
        }
        let (file, target) = (Arc::clone(&s.file), s.written);
        drop(s);
        let result = rrdcore::sync::data(&file.0, &file.1);
        last = Instant::now();
        s = lock(&shared.sync);
        match result {
            Ok(()) => s.synced = s.synced.max(target),
            Err(e) => {
                let why = format!("fdatasync {}: {e}", file.1.display());
                tracing::error!(error = %why, "journal sync failed: the server takes no more writes until it is restarted");
                s.failed = Some(why);
                shared.synced.notify_all();
                return;
            }
        }
        shared.synced.notify_all();
    }
}
