//! [`Store`]: many databases in one data directory, addressed by series key.
//!
//! * Layout: `DATA/<metric>/<tags>.rrd` (see [`SeriesKey`]), readable by a
//!   person and safe to copy with rsync while the store is closed. The
//!   directory alone lists every series again after a restart.
//! * `DATA/.lock` is locked exclusively while a store is open; a second store
//!   on the same directory gets [`Error::Locked`]. That lock covers every
//!   file in the directory, so files are mapped without locks of their own
//!   and without keeping a descriptor open. Names starting with `.` are the
//!   store's (and its user's: the server keeps `.journal/` and
//!   `.bosun.redb` there): no series name reaches them, since a leading `.`
//!   of a metric is written `%2E`. A directory of the earlier layout
//!   (`DATA/LOCK`) is taken over: that lock is taken too, then removed.
//! * A bounded CLOCK cache of open maps (`max_open`), so a million series
//!   never exhaust descriptors or `vm.max_map_count`; hit/miss counters.
//! * Each series has its own read/write lock: fetches of a series never see
//!   a half-applied update, and work on different series runs in parallel.
//! * Memory: an idle series costs one index entry, 171 heap bytes with its
//!   escaped key and its prefetch list (measured over 100,000 series,
//!   `BENCHMARKS.md`; 16 more since the parked state's place), plus its
//!   parked state until the next flush if it was evicted with changes; an
//!   open one adds its map and the pages it touches.
//! * [`Store::prefetch`] and [`Store::prefetch_handle`]: each write leaves the
//!   addresses its series' next write will touch; a loop over many series
//!   hints them a series or two ahead, so their cache misses overlap.
//! * A damaged database file (cut short, bad checksum, zeroed) is moved
//!   aside to `<file>.corrupt` when it is opened and reported by
//!   [`Store::take_quarantined`]; its series starts afresh.
//! * A database's live state (its first pages) is written only by
//!   [`Store::flush`], after its rows are synced ([`Rrd::checkpoint`]): a
//!   power cut between flushes leaves every file as of the last flush plus,
//!   at most, rows past its state (which a replay rewrites), never a state
//!   that claims rows the file lacks. A database evicted between flushes
//!   parks its state in the index until it is reopened or the next flush.
//!   Dropping a store flushes it.
//! * [`Store::flush`] also fsyncs files closed by eviction since the last
//!   flush, then the directories whose entries changed (new series files,
//!   metric directories, files moved aside), so everything written before
//!   it, names included, is on disk afterwards.
//! * A database opened on its own ([`Rrd::open`], [`Rrd::create`]) inside
//!   the directory of an open store is refused ([`Error::InStore`]); while
//!   one is open, the store does not open ([`Error::Locked`]).
//! * [`SeriesHandle`]s skip the index on every write: a server resolves each
//!   series once and writes through its handle.

mod key;
mod rules;

use std::collections::{HashMap, HashSet};

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockWriteGuard};

pub use key::SeriesKey;
pub use rules::{Pattern, SchemaRules};

use crate::database::{HOT_SPANS, Parked, Rrd};
use crate::error::{Error, Result};
use crate::fetch::{FetchRequest, Fetched};
use crate::schema::Schema;
use crate::state::Timestamp;

/// Name of the lock file in a data directory.
pub const LOCK_FILE: &str = ".lock";
/// The lock file of the earlier layout, where a metric named `LOCK` could
/// not be stored.
const LEGACY_LOCK_FILE: &str = "LOCK";

/// How a [`Store`] behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreConfig {
    /// Most databases kept open (mapped) at once. Each costs one memory map
    /// (one of `vm.max_map_count`, 65,530 by default on Linux) and its
    /// touched pages. Default 32,768.
    pub max_open: usize,
    /// Which schema a new series gets.
    pub rules: SchemaRules,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            max_open: 32_768,
            rules: SchemaRules::new(),
        }
    }
}

/// One (series, time, value) for [`Store::write_batch`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point<'a> {
    /// The series.
    pub key: &'a SeriesKey,
    /// When.
    pub time: Timestamp,
    /// The value; NaN for unknown.
    pub value: f64,
}

/// What [`Store::write_batch`] did.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    /// Points stored.
    pub applied: usize,
    /// Points rejected: their index in the batch and why.
    pub errors: Vec<(usize, Error)>,
}

/// Counters of a store's cache and index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreStats {
    /// Series known to the store.
    pub series: usize,
    /// Databases open (mapped) now.
    pub open: usize,
    /// Accesses that found the database open (counted in batches per
    /// thread, so it may lag by a few hundred).
    pub hits: u64,
    /// Accesses that had to open (or create) it.
    pub misses: u64,
    /// Databases closed to make room.
    pub evictions: u64,
    /// Databases created.
    pub created: u64,
}

/// A resolved series: writes and fetches through it skip the index lookup.
/// Get one with [`Store::handle`]; keep it as long as the series is in use.
#[derive(Debug, Clone)]
pub struct SeriesHandle {
    key: SeriesKey,
    slot: Arc<Slot>,
}

impl SeriesHandle {
    /// The series' key.
    pub fn key(&self) -> &SeriesKey {
        &self.key
    }
}

/// A problem found while listing the data directory (the file is skipped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanProblem {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub reason: String,
}

/// A series' index entry as [`Store::write_batch`] resolves it; a failure
/// is boxed, so that the batch's list of runs stays 32 bytes per series.
type Resolved = std::result::Result<Arc<Slot>, Box<Error>>;

/// One series' place in the index.
#[derive(Debug, Default)]
struct Slot {
    db: RwLock<Option<Box<Rrd>>>,
    referenced: AtomicBool,
    /// The series' file exists (index entries of failed creates stay, unlisted).
    exists: AtomicBool,
    /// What the series' next write will touch ([`Rrd::hot_spans`]), kept
    /// by each write for [`Store::prefetch`]. Hints only: never dereferenced.
    hot: [AtomicUsize; HOT_SPANS],
    /// The live state of a database evicted between checkpoints, which its
    /// file does not hold yet: taken back when the series is reopened,
    /// written (after the rows) by the next flush otherwise. Only touched
    /// with `db` write-locked.
    parked: Mutex<Option<Box<Parked>>>,
}

impl Slot {
    fn publish(&self, db: &Rrd) {
        for (h, span) in self.hot.iter().zip(db.hot_spans()) {
            h.store(span, Ordering::Relaxed);
        }
    }

    fn forget_hot(&self) {
        for h in &self.hot {
            h.store(0, Ordering::Relaxed);
        }
    }

    /// Hints what the series' next write touches (see [`Store::prefetch`]).
    fn prefetch_hot(&self) {
        for h in &self.hot {
            crate::prefetch::lines(h.load(Ordering::Relaxed));
        }
    }

    fn existing() -> Arc<Slot> {
        let slot = Slot::default();
        slot.exists.store(true, Ordering::Relaxed);
        Arc::new(slot)
    }
}

/// The CLOCK ring of open slots.
#[derive(Debug, Default)]
struct Clock {
    entries: Vec<Arc<Slot>>,
    hand: usize,
}

/// Cache hits a thread counts before adding them to the shared counter
/// (one shared increment per access would bounce its cache line between
/// the threads writing).
const HIT_BATCH: u64 = 256;

thread_local! {
    /// (the counters they belong to, hits not yet added).
    static PENDING_HITS: std::cell::Cell<(usize, u64)> = const { std::cell::Cell::new((0, 0)) };
}

#[derive(Debug, Default)]
struct Counters {
    /// Series whose file exists (slots with `exists` set).
    series: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
    created: AtomicU64,
}

/// Many databases in one data directory. All methods take `&self` and may be
/// called from several threads.
///
/// ```
/// use rrdcore::{Cf, FetchRequest, SeriesKey, Store, StoreConfig, Timestamp};
/// let dir = tempfile::tempdir().unwrap();
/// let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
/// let cpu = SeriesKey::new("os.cpu", [("host", "web1")]).unwrap();
/// for i in 0..10 {
///     store.write(&cpu, Timestamp::from_secs(1_700_000_000 + i * 300), i as f64).unwrap();
/// }
/// let got = store.fetch(&cpu, &FetchRequest::new(Cf::Average, 1_700_000_000, 1_700_003_000)).unwrap();
/// assert_eq!(got.step, 300);
/// assert_eq!(store.series(), vec![cpu]);
/// ```
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    _lock: File,
    config: StoreConfig,
    index: RwLock<HashMap<Box<str>, Arc<Slot>>>,
    clock: Mutex<Clock>,
    counters: Counters,
    problems: Vec<ScanProblem>,
    /// Files closed by eviction since the last [`Store::flush`]: their pages
    /// may still be only in the page cache, so the flush fsyncs them (each
    /// once, however often it was evicted).
    evicted: Mutex<HashSet<PathBuf>>,
    /// Slots that parked a state since the last [`Store::flush`].
    parked: Mutex<Vec<Arc<Slot>>>,
    /// Directories whose entries changed since the last [`Store::flush`] (a
    /// series file renamed into place, a metric directory made, a damaged
    /// file moved aside): the flush fsyncs them, after the files, so the
    /// names survive a power cut too.
    changed_dirs: Mutex<HashSet<PathBuf>>,
    /// Damaged databases moved aside since the last [`Store::take_quarantined`].
    quarantined: Mutex<Vec<ScanProblem>>,
    /// Why a sync failed, once one has: every later flush refuses.
    failed: Mutex<Option<String>>,
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io { op, path, source }
}

fn poisoned() -> Error {
    Error::Io {
        op: "lock",
        path: PathBuf::new(),
        source: std::io::Error::other("a thread panicked while holding a store lock"),
    }
}

impl Counters {
    /// Counts a cache hit, batched per thread: [`Store::stats`] lags by
    /// fewer than [`HIT_BATCH`] hits per thread (and a thread switching
    /// between stores drops its pending ones: the figure is a gauge of cache
    /// health, not an account).
    fn hit(&self) {
        let me = std::ptr::from_ref(self) as usize;
        PENDING_HITS.with(|p| {
            let (owner, pending) = p.get();
            let n = if owner == me { pending + 1 } else { 1 };
            if n >= HIT_BATCH {
                self.hits.fetch_add(n, Ordering::Relaxed);
                p.set((me, 0));
            } else {
                p.set((me, n));
            }
        });
    }
}

impl Store {
    /// Opens (creating if needed) the data directory `dir`, takes its lock and
    /// lists the series in it. Files it cannot read as series are reported by
    /// [`Store::scan_problems`] and skipped.
    pub fn open(dir: impl AsRef<Path>, config: StoreConfig) -> Result<Store> {
        let dir = dir.as_ref().to_path_buf();
        if config.max_open == 0 {
            return Err(Error::Schema {
                field: "max_open",
                value: "0".into(),
                reason: "the store needs room for at least one open database",
            });
        }
        std::fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
        let lock = lock_dir(&dir)?;
        let (keys, problems) = scan(&dir)?;
        let counters = Counters::default();
        counters.series.store(keys.len() as u64, Ordering::Relaxed);
        let index = keys.into_iter().map(|k| (k.into_boxed_str(), Slot::existing())).collect();
        Ok(Store {
            dir,
            _lock: lock,
            config,
            index: RwLock::new(index),
            clock: Mutex::default(),
            counters,
            problems,
            evicted: Mutex::default(),
            parked: Mutex::default(),
            changed_dirs: Mutex::default(),
            quarantined: Mutex::default(),
            failed: Mutex::default(),
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Files found at open that are not series (with the reason).
    pub fn scan_problems(&self) -> &[ScanProblem] {
        &self.problems
    }

    /// Every series, sorted.
    pub fn series(&self) -> Vec<SeriesKey> {
        let index = self.index.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut keys: Vec<SeriesKey> = index
            .iter()
            .filter(|(_, slot)| slot.exists.load(Ordering::Relaxed))
            .filter_map(|(k, _)| SeriesKey::from_escaped(k).ok())
            .collect();
        keys.sort();
        keys
    }

    /// Whether the store holds `key`.
    pub fn contains(&self, key: &SeriesKey) -> bool {
        let index = self.index.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        index.get(key.escaped().as_str()).is_some_and(|s| s.exists.load(Ordering::Relaxed))
    }

    /// Cache and index counters.
    pub fn stats(&self) -> StoreStats {
        let series = usize::try_from(self.counters.series.load(Ordering::Relaxed)).unwrap_or(usize::MAX);
        let open = self.clock.lock().map(|c| c.entries.len()).unwrap_or(0);
        StoreStats {
            series,
            open,
            hits: self.counters.hits.load(Ordering::Relaxed),
            misses: self.counters.misses.load(Ordering::Relaxed),
            evictions: self.counters.evictions.load(Ordering::Relaxed),
            created: self.counters.created.load(Ordering::Relaxed),
        }
    }

    /// Stores one point, creating the series (schema by the rules) on first write.
    pub fn write(&self, key: &SeriesKey, time: Timestamp, value: f64) -> Result<()> {
        self.with_db_at(key, Some(time), |db| db.update(time, &[value]))?
    }

    /// A handle on `key` for repeated writes and fetches without index lookups.
    /// The series need not exist yet: the first write through the handle creates it.
    pub fn handle(&self, key: &SeriesKey) -> Result<SeriesHandle> {
        Ok(SeriesHandle {
            key: key.clone(),
            slot: self.slot(key, true)?,
        })
    }

    /// [`Store::write`] through a handle.
    pub fn write_to(&self, handle: &SeriesHandle, time: Timestamp, value: f64) -> Result<()> {
        self.with_handle(handle, Some(time), |db| db.update(time, &[value]))?
    }

    /// Runs `f` on the database of `handle` with its write lock held, opening
    /// it if needed. A missing series is created to start just before
    /// `create_at` when that is given (as its first write would), otherwise
    /// it is [`Error::UnknownSeries`].
    pub fn with_handle<R>(&self, handle: &SeriesHandle, create_at: Option<Timestamp>, f: impl FnOnce(&mut Rrd) -> R) -> Result<R> {
        self.with_slot(&handle.key, &handle.slot, create_at.map(|t| (t, None)), f)
    }

    /// As [`Store::with_handle`], but a missing series is created with
    /// `schema` rather than the one the rules give (a caller that knows
    /// better, such as a perfdata counter).
    pub fn with_handle_as<R>(&self, handle: &SeriesHandle, create_at: Timestamp, schema: &Schema, f: impl FnOnce(&mut Rrd) -> R) -> Result<R> {
        self.with_slot(&handle.key, &handle.slot, Some((create_at, Some(schema))), f)
    }

    /// Stores a whole database image as the series `key` (an import): its
    /// schema, state and rows as given. An existing series is an error
    /// unless `overwrite`; its open map is closed first.
    pub fn insert_image(&self, key: &SeriesKey, schema: &Schema, state: &crate::state::State, rows: &[Vec<f64>], overwrite: bool) -> Result<()> {
        let slot = self.slot(key, true)?;
        let mut guard = slot.db.write().map_err(|_| poisoned())?;
        let (path, hashed) = key.path_in(&self.dir);
        if path.exists() && !overwrite {
            return Err(Error::Exists { path });
        }
        *guard = None;
        lock_leaf(&slot.parked).take();
        slot.forget_hot();
        self.prepare_dir(key, &path, hashed)?;
        Rrd::write_restored(&path, schema, state, rows)?;
        // Not mapped: the next flush fsyncs the file, then its directory.
        if let Ok(mut files) = self.evicted.lock() {
            files.insert(path.clone());
        }
        self.dir_changed(path.parent());
        if !slot.exists.swap(true, Ordering::Relaxed) {
            self.counters.series.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Runs `f` on the database of `slot` with its write lock held, opening
    /// (or, at `create_at`, creating) it if needed.
    fn with_slot<R>(&self, key: &SeriesKey, slot: &Arc<Slot>, create_at: Option<(Timestamp, Option<&Schema>)>, f: impl FnOnce(&mut Rrd) -> R) -> Result<R> {
        let mut guard = self.open_slot(key, slot, create_at)?;
        match guard.as_mut() {
            Some(db) => {
                let out = f(db);
                slot.publish(db);
                Ok(out)
            }
            None => Err(unknown(key)),
        }
    }

    /// Hints that `handle`'s series will be written soon: starts loading
    /// the memory its next write touches (its open database, state, live
    /// slot and next rows) without waiting for it. A loop writing many
    /// series calls this for the next series before writing the current
    /// one, so their cache and TLB misses overlap (see also
    /// [`Store::prefetch_handle`]). Changes nothing; costs a few instructions.
    pub fn prefetch(&self, handle: &SeriesHandle) {
        handle.slot.prefetch_hot();
    }

    /// The first stage of [`Store::prefetch`]: starts loading the handle's
    /// own index entry, where `prefetch` finds what to load. Call it two
    /// series ahead.
    pub fn prefetch_handle(&self, handle: &SeriesHandle) {
        Self::prefetch_slot(&handle.slot);
    }

    fn prefetch_slot(slot: &Arc<Slot>) {
        crate::prefetch::lines(crate::prefetch::span(Arc::as_ptr(slot).addr(), size_of::<Slot>()));
    }

    /// [`Store::fetch`] through a handle (readers of one series share its lock).
    pub fn fetch_from(&self, handle: &SeriesHandle, req: &FetchRequest) -> Result<Fetched> {
        self.fetch_slot(&handle.key, &handle.slot, req)
    }

    /// Reads through a slot: under its read lock when open, else opening it.
    fn fetch_slot(&self, key: &SeriesKey, slot: &Arc<Slot>, req: &FetchRequest) -> Result<Fetched> {
        {
            let guard = slot.db.read().map_err(|_| poisoned())?;
            if let Some(db) = guard.as_ref() {
                self.counters.hit();
                slot.referenced.store(true, Ordering::Relaxed);
                return db.fetch(req);
            }
        }
        let guard = self.open_slot(key, slot, None)?;
        guard.as_ref().map_or_else(|| Err(unknown(key)), |db| db.fetch(req))
    }

    /// Whether the series of `handle` has a file (a handle may be taken
    /// before the first write creates it).
    pub fn exists(&self, handle: &SeriesHandle) -> bool {
        handle.slot.exists.load(Ordering::Relaxed)
    }

    /// Stores many points. Consecutive points of one series are applied with
    /// one lookup and one state commit (send each series' points together for
    /// the best speed; order within a series is always kept). A rejected point
    /// (too old, bad value) is reported by its index and does not stop the others.
    pub fn write_batch(&self, points: &[Point<'_>]) -> BatchOutcome {
        let mut outcome = BatchOutcome::default();
        // The runs of one series each, with their index entries resolved
        // first, so each series' memory can be hinted ahead of its write.
        let mut runs: Vec<(usize, usize, Resolved)> = Vec::new();
        let mut start = 0;
        while let Some(first) = points.get(start) {
            let run = points
                .get(start..)
                .unwrap_or_default()
                .iter()
                .take_while(|p| std::ptr::eq(p.key, first.key) || p.key == first.key)
                .count();
            runs.push((start, run, self.slot(first.key, true).map_err(Box::new)));
            start += run;
        }
        for (i, (start, run, slot)) in runs.iter().enumerate() {
            if let Some((_, _, Ok(ahead))) = runs.get(i + 2) {
                Self::prefetch_slot(ahead);
            }
            if let Some((_, _, Ok(next))) = runs.get(i + 1) {
                next.prefetch_hot();
            }
            let (start, run) = (*start, *run);
            let group = points.get(start..start + run).unwrap_or_default();
            let Some(first) = group.first() else { continue };
            let mut errors = Vec::new();
            let result = match slot {
                Ok(slot) => self
                    .with_slot(first.key, slot, Some((first.time, None)), |db| {
                        db.update_points(group.iter().map(|p| (p.time, p.value)), |j, e| errors.push((start + j, e)))
                    })
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match result {
                Ok(applied) => outcome.applied += applied,
                Err(msg) => {
                    for i in start..start + run {
                        outcome.errors.push((i, Error::Unavailable { key: first.key.to_string(), reason: msg.clone() }));
                    }
                }
            }
            outcome.errors.extend(errors);
        }
        outcome
    }

    /// Reads rows of one series, as [`Rrd::fetch`].
    pub fn fetch(&self, key: &SeriesKey, req: &FetchRequest) -> Result<Fetched> {
        let slot = self.slot(key, false)?;
        self.fetch_slot(key, &slot, req)
    }

    /// Runs `f` on the open database of an existing series (opening it if
    /// needed). The series' write lock is held meanwhile.
    pub fn with_db<R>(&self, key: &SeriesKey, f: impl FnOnce(&mut Rrd) -> R) -> Result<R> {
        self.with_db_at(key, None, f)
    }

    /// As [`Store::with_db`]; a missing series is created so that a point at
    /// `create_at` is its first (see `create`).
    fn with_db_at<R>(&self, key: &SeriesKey, create_at: Option<Timestamp>, f: impl FnOnce(&mut Rrd) -> R) -> Result<R> {
        let slot = self.slot(key, create_at.is_some())?;
        self.with_slot(key, &slot, create_at.map(|t| (t, None)), f)
    }

    /// The last update time of `key`.
    pub fn last_update(&self, key: &SeriesKey) -> Result<Timestamp> {
        self.with_db(key, |db| db.last_update())
    }

    /// Writes every open database to disk and waits for it, and fsyncs the
    /// files closed by eviction since the last flush: after it returns,
    /// everything written before it is on disk.
    ///
    /// A failed sync is fail-stop ([`crate::sync`]): this flush and every
    /// later one return [`Error::SyncFailed`], since data the failed call
    /// was to write may be lost even if a retry reports success.
    pub fn flush(&self) -> Result<()> {
        if let Some(e) = self.sync_failure() {
            return Err(e);
        }
        let result = self.flush_all();
        if let Err(e) = &result {
            let mut failed = self.failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            failed.get_or_insert_with(|| e.to_string());
        }
        result
    }

    /// The error every flush gives after a sync failed, if one did.
    pub fn sync_failure(&self) -> Option<Error> {
        let failed = self.failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        failed.as_ref().map(|reason| Error::SyncFailed { path: self.dir.clone(), reason: reason.clone() })
    }

    fn flush_all(&self) -> Result<()> {
        let entries: Vec<Arc<Slot>> = self.clock.lock().map_err(|_| poisoned())?.entries.clone();
        for slot in entries {
            if let Some(db) = slot.db.write().map_err(|_| poisoned())?.as_mut() {
                db.checkpoint()?;
            }
        }
        let parked = std::mem::take(&mut *self.parked.lock().map_err(|_| poisoned())?);
        for slot in parked {
            Store::checkpoint_parked(&slot)?;
        }
        let evicted = std::mem::take(&mut *self.evicted.lock().map_err(|_| poisoned())?);
        for path in evicted {
            let file = File::open(&path).map_err(io_err("open", &path))?;
            crate::sync::data(&file, &path).map_err(io_err("fsync", &path))?;
        }
        // Deepest first: a metric directory's entries before the data
        // directory's entry for it.
        let mut dirs: Vec<PathBuf> = std::mem::take(&mut *self.changed_dirs.lock().map_err(|_| poisoned())?).into_iter().collect();
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for dir in dirs {
            crate::sync::dir(&dir).map_err(io_err("fsync directory", &dir))?;
        }
        Ok(())
    }

    /// Checkpoints the database `slot` parked, if it is still parked (it
    /// may have been reopened meanwhile, and is then checkpointed open):
    /// its file is opened again for that, under the series' lock.
    fn checkpoint_parked(slot: &Slot) -> Result<()> {
        let mut guard = slot.db.write().map_err(|_| poisoned())?;
        if let Some(db) = guard.as_mut() {
            return db.checkpoint();
        }
        let Some(parked) = lock_leaf(&slot.parked).take() else { return Ok(()) };
        let mut db = Rrd::open_in_store(&parked.path)?;
        db.adopt(*parked);
        db.checkpoint()
    }

    /// Damaged databases found since the last call: each was moved aside to
    /// `<file>.corrupt` when it was opened, and its series starts afresh.
    pub fn take_quarantined(&self) -> Vec<ScanProblem> {
        self.quarantined.lock().map(|mut q| std::mem::take(&mut *q)).unwrap_or_default()
    }

    /// Opens a series' file; a damaged one (bad checksum, cut short, zeroed)
    /// is renamed to `<file>.corrupt` and reported, and `None` is returned
    /// as if the series had no file.
    fn open_or_quarantine(&self, path: &Path) -> Result<Option<Rrd>> {
        match Rrd::open_in_store(path) {
            Ok(db) => Ok(Some(db)),
            Err(e @ Error::Corrupt { .. }) => self.quarantine(path, e.to_string()),
            // A newer format is not damage: the file stays for the build that reads it.
            Err(e @ Error::Version { .. }) => Err(e),
            Err(e) if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) => self.quarantine(path, format!("empty file ({e})")),
            Err(e) => Err(e),
        }
    }

    fn quarantine(&self, path: &Path, reason: String) -> Result<Option<Rrd>> {
        let mut aside = path.as_os_str().to_owned();
        aside.push(".corrupt");
        let aside = PathBuf::from(aside);
        std::fs::rename(path, &aside).map_err(io_err("rename", path))?;
        self.dir_changed(path.parent());
        if let Ok(mut q) = self.quarantined.lock() {
            q.push(ScanProblem { path: aside, reason });
        }
        Ok(None)
    }

    /// The index slot of `key`, inserted when `create`.
    fn slot(&self, key: &SeriesKey, create: bool) -> Result<Arc<Slot>> {
        thread_local! {
            static BUF: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
        }
        let found = BUF.with(|buf| {
            let mut buf = buf.borrow_mut();
            key.escape_into(&mut buf);
            let index = self.index.read().map_err(|_| poisoned())?;
            Ok::<_, Error>(index.get(buf.as_str()).map(Arc::clone))
        })?;
        if let Some(slot) = found {
            return Ok(slot);
        }
        if !create {
            return Err(unknown(key));
        }
        let mut index = self.index.write().map_err(|_| poisoned())?;
        Ok(Arc::clone(index.entry(key.escaped().into_boxed_str()).or_default()))
    }

    /// Write-locks `slot`, opening or creating its database on a miss.
    fn open_slot<'s>(
        &self,
        key: &SeriesKey,
        slot: &'s Arc<Slot>,
        create_at: Option<(Timestamp, Option<&Schema>)>,
    ) -> Result<RwLockWriteGuard<'s, Option<Box<Rrd>>>> {
        let mut guard = slot.db.write().map_err(|_| poisoned())?;
        slot.referenced.store(true, Ordering::Relaxed);
        if guard.is_some() {
            self.counters.hit();
            return Ok(guard);
        }
        self.counters.misses.fetch_add(1, Ordering::Relaxed);
        let (path, hashed) = key.path_in(&self.dir);
        let existing = if path.exists() { self.open_or_quarantine(&path)? } else { None };
        let parked = lock_leaf(&slot.parked).take();
        let db = if let Some(mut db) = existing {
            if let Some(parked) = parked {
                db.adopt(*parked);
            }
            db
        } else if let Some((first, schema)) = create_at {
            self.create(key, &path, hashed, first, schema)?
        } else {
            return Err(unknown(key));
        };
        if !slot.exists.swap(true, Ordering::Relaxed) {
            self.counters.series.fetch_add(1, Ordering::Relaxed);
        }
        self.admit(slot);
        *guard = Some(Box::new(db));
        Ok(guard)
    }

    /// Makes a series file's directory, and its `.key` file when its name is
    /// hashed; the next flush syncs them.
    fn prepare_dir(&self, key: &SeriesKey, path: &Path, hashed: bool) -> Result<()> {
        let parent = path.parent().unwrap_or(&self.dir);
        if !parent.is_dir() {
            std::fs::create_dir_all(parent).map_err(io_err("create directory", parent))?;
            self.dir_changed(parent.parent());
        }
        if hashed {
            let key_path = path.with_extension(key::KEY_EXTENSION);
            std::fs::write(&key_path, key.escaped()).map_err(io_err("write", &key_path))?;
            if let Ok(mut files) = self.evicted.lock() {
                files.insert(key_path);
            }
        }
        Ok(())
    }

    /// Notes that `dir`'s entries changed, for the next flush to sync.
    fn dir_changed(&self, dir: Option<&Path>) {
        if let (Some(d), Ok(mut dirs)) = (dir, self.changed_dirs.lock()) {
            dirs.insert(d.to_path_buf());
        }
    }

    fn create(&self, key: &SeriesKey, path: &Path, hashed: bool, first: Timestamp, schema: Option<&Schema>) -> Result<Rrd> {
        self.prepare_dir(key, path, hashed)?;
        let schema = schema.cloned().unwrap_or_else(|| self.config.rules.schema_for(key.metric()));
        // The series starts half a step (rounded up) before its first point:
        // RRDtool keeps a primary point whose unknown part is at most half a
        // step, so a first point on a step boundary fills the row it ends,
        // and one inside a step leaves the row before it unknown rather than
        // invent a value there.
        let half = i64::try_from(schema.step.div_ceil(2)).unwrap_or(1).max(1);
        let start = first.sec.saturating_sub(half);
        let db = Rrd::create_in_store(path, &schema, start).inspect_err(|_| {
            if hashed {
                let _ = std::fs::remove_file(path.with_extension(key::KEY_EXTENSION));
            }
        })?;
        self.dir_changed(path.parent());
        self.counters.created.fetch_add(1, Ordering::Relaxed);
        Ok(db)
    }

    /// Closes `db`, the database of `slot`: the next flush fsyncs its file
    /// and, if it has changes since its last checkpoint, writes its state
    /// (parked in the slot until then, or until it is reopened).
    fn evict(&self, slot: &Arc<Slot>, db: Rrd) {
        if let Ok(mut evicted) = self.evicted.lock() {
            evicted.insert(db.path().to_path_buf());
        }
        if let Some(parked) = db.park() {
            *lock_leaf(&slot.parked) = Some(Box::new(parked));
            if let Ok(mut list) = self.parked.lock() {
                list.push(Arc::clone(slot));
            }
        }
    }

    /// Registers `slot` as open, closing another database if the cache is full.
    fn admit(&self, slot: &Arc<Slot>) {
        let Ok(mut clock) = self.clock.lock() else { return };
        if clock.entries.len() < self.config.max_open {
            clock.entries.push(Arc::clone(slot));
            return;
        }
        let len = clock.entries.len();
        for _ in 0..2 * len {
            let hand = clock.hand % len;
            clock.hand = hand + 1;
            let Some(victim) = clock.entries.get(hand).cloned() else { break };
            if victim.referenced.swap(false, Ordering::Relaxed) {
                continue;
            }
            // Never wait on a series lock while holding the clock: skip busy ones.
            if let Ok(mut db) = victim.db.try_write() {
                victim.forget_hot();
                if let Some(old) = db.take() {
                    self.evict(&victim, *old);
                }
                self.counters.evictions.fetch_add(1, Ordering::Relaxed);
                if let Some(entry) = clock.entries.get_mut(hand) {
                    *entry = Arc::clone(slot);
                }
                return;
            }
        }
        // Everything is busy: go over the cap rather than wait.
        clock.entries.push(Arc::clone(slot));
    }
}

/// Locks a mutex that guards no invariant across a panic (a leaf value).
fn lock_leaf<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Drop for Store {
    /// Closing a store checkpoints it (unless a sync has failed, when the
    /// files must keep claiming only what was synced): a store dropped
    /// without [`Store::flush`] keeps every write.
    fn drop(&mut self) {
        if self.sync_failure().is_none() {
            let _ = self.flush();
        }
    }
}

/// Takes the data directory's lock (see the module documentation),
/// taking over the earlier layout's `LOCK` file.
fn lock_dir(dir: &Path) -> Result<File> {
    let lock = lock_file(&dir.join(LOCK_FILE))?.ok_or_else(|| Error::Locked { path: dir.to_path_buf() })?;
    let legacy = dir.join(LEGACY_LOCK_FILE);
    if std::fs::symlink_metadata(&legacy).is_ok_and(|m| m.is_file() && m.len() == 0) {
        // An earlier build holding the directory holds this one.
        let old = lock_file(&legacy)?.ok_or_else(|| Error::Locked { path: dir.to_path_buf() })?;
        std::fs::remove_file(&legacy).map_err(io_err("remove", &legacy))?;
        drop(old);
    }
    Ok(lock)
}

/// Opens (creating) and locks `path`; `None` when another holds it.
fn lock_file(path: &Path) -> Result<Option<File>> {
    let file = OpenOptions::new().create(true).truncate(false).write(true).open(path).map_err(io_err("open", path))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(io_err("lock", path)(e)),
    }
}

fn unknown(key: &SeriesKey) -> Error {
    Error::UnknownSeries { key: key.to_string() }
}

/// Lists `DATA/<metric>/<tags>.rrd` files as escaped keys. Names starting
/// with `.` are not series; a metric directory that cannot be read is a
/// problem reported, not a reason to refuse the whole directory.
fn scan(dir: &Path) -> Result<(Vec<String>, Vec<ScanProblem>)> {
    let mut keys = Vec::new();
    let mut problems = Vec::new();
    for metric in std::fs::read_dir(dir).map_err(io_err("read directory", dir))? {
        let metric = metric.map_err(io_err("read directory", dir))?;
        if !metric.file_type().map(|t| t.is_dir()).unwrap_or(false) || metric.file_name().as_encoded_bytes().starts_with(b".") {
            continue;
        }
        let metric_path = metric.path();
        let Some(metric_name) = metric.file_name().to_str().map(str::to_owned) else {
            problems.push(ScanProblem { path: metric_path, reason: "directory name is not UTF-8".into() });
            continue;
        };
        let files = match std::fs::read_dir(&metric_path) {
            Ok(f) => f,
            Err(e) => {
                problems.push(ScanProblem { path: metric_path, reason: format!("cannot read the directory: {e}") });
                continue;
            }
        };
        for file in files {
            let path = match file {
                Ok(f) => f.path(),
                Err(e) => {
                    problems.push(ScanProblem { path: metric_path.clone(), reason: format!("cannot read the directory: {e}") });
                    break;
                }
            };
            if path.extension().and_then(|e| e.to_str()) != Some(key::EXTENSION) {
                continue;
            }
            match key_of(&metric_name, &path) {
                Ok(k) => keys.push(k),
                Err(reason) => problems.push(ScanProblem { path, reason }),
            }
        }
    }
    Ok((keys, problems))
}

/// The escaped key of a series file, from its name or its `.key` file.
fn key_of(metric_dir: &str, path: &Path) -> std::result::Result<String, String> {
    let stem = path.file_stem().and_then(|s| s.to_str()).ok_or("file name is not UTF-8")?;
    if stem.starts_with('.') {
        return Err("a temporary or hidden file".into());
    }
    let escaped = if stem.contains('~') || metric_dir.contains('~') {
        let key_path = path.with_extension(key::KEY_EXTENSION);
        std::fs::read_to_string(&key_path).map_err(|e| format!("hashed name without a readable .key file: {e}"))?
    } else {
        format!("{metric_dir}/{stem}")
    };
    let key = SeriesKey::from_escaped(&escaped).map_err(|e| e.to_string())?;
    // The name must be the one the key maps to, or two files could claim one series.
    let (expected, _) = key.path_in(Path::new(""));
    let actual = Path::new(metric_dir).join(path.file_name().unwrap_or_default());
    if expected != actual {
        return Err(format!("file name does not match its key {key}"));
    }
    Ok(key.escaped())
}
