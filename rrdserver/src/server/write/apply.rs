//! Applying held points to their databases: writer threads, sharded by
//! series (a series always goes to the same thread), so request threads
//! never write a database file and a slow disk never holds up queries of
//! other series.
//!
//! * `release` applies a series' held points that are due: those that
//!   waited `reorder_window_ms` (and everything before them in time), all
//!   of them for a read or a checkpoint, the oldest half when a series
//!   holds more than [`MAX_HELD`].
//! * A disk failure (full, I/O error) leaves the points held, to be retried
//!   by the next release or checkpoint; a refusal by the database itself
//!   (which admission should have made impossible) sets the points aside
//!   ([`super::aside`]). Nothing acknowledged is discarded.
//! * The queue is bounded ([`Writers::reserve`]): past `max_queued_points`
//!   held points a put is refused (503) and telnet waits.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, RwLock, Weak};

use rrdcore::{SchemaRules, Store};

use super::super::app::{App, store_time};
use super::super::index::{Held, Memory, Series};
use super::aside::Aside;
use super::window::Admit;

/// Which held points [`release`] applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    /// Every held point (a read, a checkpoint).
    All,
    /// Those that waited the window by `now` (milliseconds since the start).
    At(u64),
}

/// Most points a series holds in its window; past it the oldest half go
/// to the database (a fast series does not pile up memory).
pub const MAX_HELD: usize = 64;

/// What applying needs: the store, the rules new databases get, the
/// window, and where refused points go.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// The databases.
    pub store: &'a Store,
    /// The schemas of new series.
    pub rules: &'a SchemaRules,
    /// `reorder_window_ms`.
    pub window_ms: u64,
    /// The set-aside file.
    pub aside: &'a Aside,
}

/// Counts a writer adds to the server's counters once per job.
#[derive(Debug, Default)]
pub struct Tally {
    /// Points written to databases.
    pub stored: u64,
    /// Points set aside (their database refused them).
    pub set_aside: u64,
}

impl Tally {
    /// Points taken out of the window.
    pub fn taken(&self) -> u64 {
        self.stored + self.set_aside
    }
}

/// Why a series could not be loaded for deciding its points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LoadError {
    /// The series itself: its points are refused (a newer file format, say).
    Series(String),
    /// The disk: the batch is refused whole (503) and may be retried.
    Storage(String),
}

/// Fills in what deciding a series' points needs, once: its database's
/// last update and schema (opening it), or the schema it will be created with.
pub(crate) fn load(cx: &Ctx<'_>, series: &Series, mem: &mut Memory) -> Result<(), LoadError> {
    if mem.admit.is_some() {
        return Ok(());
    }
    if cx.store.exists(&series.handle) {
        match cx.store.with_handle(&series.handle, None, |db| (db.last_update(), Admit::of(db.schema()))) {
            Ok((last, admit)) => {
                mem.applied = Some(last);
                mem.admit = Some(admit);
                series.loaded.store(true, Ordering::Release);
                return Ok(());
            }
            // Moved aside as damaged when opened: the series starts afresh.
            Err(rrdcore::Error::UnknownSeries { .. }) => {}
            Err(e) if series_fault(&e) => return Err(LoadError::Series(format!("series {} unavailable: {e}", series.key))),
            Err(e) => return Err(LoadError::Storage(format!("series {}: {e}", series.key))),
        }
    }
    mem.admit = Some(Admit::of(&new_schema(cx.rules, series)));
    series.loaded.store(true, Ordering::Release);
    Ok(())
}

/// Whether an error is the series' own (it will not go away by retrying:
/// a bad schema or time, a file of another format, a path that cannot be
/// a file) rather than the disk's (full, I/O error, out of descriptors).
pub(crate) fn series_fault(e: &rrdcore::Error) -> bool {
    use rrdcore::Error as E;
    match e {
        E::Schema { .. } | E::Time { .. } | E::Value { .. } | E::ValueCount { .. } | E::TimeNotAfter { .. } | E::Version { .. } | E::Corrupt { .. } | E::Exists { .. } => true,
        // ENOTDIR, EISDIR, EEXIST, EINVAL, ENAMETOOLONG, ELOOP: the name, not the disk.
        E::Io { source, .. } => matches!(source.raw_os_error(), Some(20 | 21 | 17 | 22 | 36 | 40)),
        _ => false,
    }
}

/// One job for a writer thread: apply the held points of these series that
/// are due (or all of them).
#[derive(Debug)]
pub struct Job {
    /// The series.
    series: Vec<Arc<Series>>,
    /// Apply every held point, due or not.
    all: bool,
    /// The series were taken off the list of series with held points.
    listed: bool,
    /// Told when done (with a failure if some could not be applied).
    done: Option<Arc<Done>>,
}

/// Completion of jobs spread over several writers.
#[derive(Debug)]
pub struct Done {
    state: Mutex<(usize, Option<String>)>,
    cv: Condvar,
}

impl Done {
    fn new(parts: usize) -> Arc<Done> {
        Arc::new(Done { state: Mutex::new((parts, None)), cv: Condvar::new() })
    }

    fn finish(&self, failure: Option<String>) {
        let mut s = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if failure.is_some() {
            s.1 = failure;
        }
        s.0 = s.0.saturating_sub(1);
        if s.0 == 0 {
            self.cv.notify_all();
        }
    }

    /// Waits for every part; a failure if one happened.
    fn wait(&self) -> Option<String> {
        let mut s = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while s.0 > 0 {
            s = self.cv.wait(s).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        s.1.take()
    }
}

/// The writer threads and the bound on held points.
#[derive(Debug)]
pub struct Writers {
    senders: RwLock<Vec<mpsc::Sender<Job>>>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    queued: AtomicU64,
    max_queued: u64,
    room: (Mutex<()>, Condvar),
    /// Threads in [`Writers::wait_room`]: only then is room announced.
    waiting: AtomicUsize,
}

impl Writers {
    /// An empty set; [`Writers::start`] starts the threads.
    pub fn new(max_queued: usize) -> Writers {
        Writers {
            senders: RwLock::default(),
            threads: Mutex::default(),
            queued: AtomicU64::new(0),
            max_queued: max_queued as u64,
            room: (Mutex::new(()), Condvar::new()),
            waiting: AtomicUsize::new(0),
        }
    }

    /// Starts `n` threads working for `app`.
    pub fn start(&self, app: &Arc<App>, n: usize) -> std::io::Result<()> {
        let mut senders = self.senders.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut threads = self.threads.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for i in 0..n.max(1) {
            let (tx, rx) = mpsc::channel::<Job>();
            let weak = Arc::downgrade(app);
            threads.push(std::thread::Builder::new().name(format!("writer-{i}")).spawn(move || work(&weak, &rx))?);
            senders.push(tx);
        }
        Ok(())
    }

    /// The shard of a series.
    fn shard_of(series: &Arc<Series>, shards: usize) -> usize {
        let p = Arc::as_ptr(series) as usize as u64;
        let h = (p >> 4).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
        usize::try_from(h).unwrap_or(0) % shards.max(1)
    }

    /// Takes room for `n` points; false when the queue is full (a batch
    /// alone is always let in, whatever its size).
    pub fn reserve(&self, n: usize) -> bool {
        let n = n as u64;
        let before = self.queued.fetch_add(n, Ordering::AcqRel);
        if before > 0 && before + n > self.max_queued {
            self.unreserve(n);
            return false;
        }
        true
    }

    /// Gives back room for `n` points.
    pub fn unreserve(&self, n: u64) {
        if n == 0 {
            return;
        }
        // SeqCst on both sides: a waiter either sees the room or is seen.
        self.queued.fetch_sub(n, Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) > 0 {
            let _guard = self.room.0.lock();
            self.room.1.notify_all();
        }
    }

    /// Points held and not yet applied.
    pub fn queued(&self) -> u64 {
        self.queued.load(Ordering::Relaxed)
    }

    /// Waits (up to 100 ms) for the queue to have room.
    pub fn wait_room(&self) {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let guard = self.room.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.queued.load(Ordering::SeqCst) >= self.max_queued {
            let _ = self.room.1.wait_timeout(guard, std::time::Duration::from_millis(100));
        }
        self.waiting.fetch_sub(1, Ordering::SeqCst);
    }

    /// Sends jobs for `series` grouped by shard; the parts sent, or `None`
    /// when the writers have stopped.
    fn send(&self, series: Vec<Arc<Series>>, all: bool, listed: bool, done: Option<&dyn Fn(usize) -> Arc<Done>>) -> Option<Option<Arc<Done>>> {
        let senders = self.senders.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let shards = senders.len();
        if shards == 0 {
            return None;
        }
        let mut parts: Vec<Vec<Arc<Series>>> = vec![Vec::new(); shards];
        for s in series {
            if let Some(p) = parts.get_mut(Writers::shard_of(&s, shards)) {
                p.push(s);
            }
        }
        let used = parts.iter().filter(|p| !p.is_empty()).count();
        let done = done.map(|d| d(used));
        for (tx, p) in senders.iter().zip(parts).filter(|(_, p)| !p.is_empty()) {
            tx.send(Job { series: p, all, listed, done: done.clone() }).ok()?;
        }
        Some(done)
    }

    /// Applies the held points of `series` that are due (or all) and waits;
    /// false if some could not be applied. `listed`: the series were taken
    /// off the list of series with held points (they go back on it while
    /// they still hold some).
    pub(crate) fn release(&self, series: Vec<Arc<Series>>, all: bool) -> bool {
        if series.is_empty() {
            return true;
        }
        match self.send(series, all, true, Some(&Done::new)) {
            Some(Some(done)) => done.wait().is_none(),
            Some(None) => true,
            None => false,
        }
    }

    /// Asks for the due points of `series` to be applied, without waiting.
    pub(crate) fn release_later(&self, series: Vec<Arc<Series>>) {
        let _ = self.send(series, false, false, None);
    }

    /// Stops the threads (after the jobs already sent) and waits for them.
    pub fn stop(&self) {
        self.senders.write().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        for t in threads {
            let _ = t.join();
        }
    }
}

/// A writer thread's loop.
fn work(app: &Weak<App>, rx: &mpsc::Receiver<Job>) {
    while let Ok(job) = rx.recv() {
        let Some(app) = app.upgrade() else { return };
        let due = if job.all { Due::All } else { Due::At(app.clock_ms()) };
        let cx = app.apply_context();
        let mut failure = None;
        let mut tally = Tally::default();
        for (i, s) in job.series.iter().enumerate() {
            prefetch_ahead(&app, |k| job.series.get(i + k));
            let mut mem = s.memory();
            if job.listed {
                mem.listed = false;
            }
            if let Err(e) = release(&cx, s, &mut mem, due, &mut tally) {
                failure = Some(e);
            }
            app.write.list_if_held(s, &mut mem);
        }
        app.counted(&tally);
        if let Some(done) = job.done {
            done.finish(failure);
        }
    }
}

/// Hints the memory of the series coming up in a loop over many (`ahead(k)`
/// is the series `k` places on), so the misses of consecutive series
/// overlap: its record three ahead, its held points and index entry two
/// ahead, its database one ahead.
fn prefetch_ahead<'a>(app: &App, ahead: impl Fn(usize) -> Option<&'a Arc<Series>>) {
    if let Some(s) = ahead(3) {
        rrdcore::prefetch::value(&**s);
    }
    if let Some(s) = ahead(2) {
        rrdcore::prefetch::bytes_at(s.held_tail.load(Ordering::Relaxed), 2 * size_of::<Held>());
        app.store.prefetch_handle(&s.handle);
    }
    if let Some(s) = ahead(1) {
        app.store.prefetch(&s.handle);
    }
}

/// How many held points are due.
fn due_count(mem: &Memory, due: Due, window: u64) -> usize {
    let len = mem.held.len();
    match due {
        Due::All => len,
        Due::At(now) => {
            let waited = if mem.earliest.saturating_add(window) > now {
                0
            } else {
                mem.held.iter().rposition(|h| h.arrived.saturating_add(window) <= now).map_or(0, |i| i + 1)
            };
            let over = if len > MAX_HELD { len - MAX_HELD / 2 } else { 0 };
            waited.max(over)
        }
    }
}

/// Applies the held points that are due (see the module documentation).
/// On a disk failure the points stay held and the error is returned.
pub(crate) fn release(cx: &Ctx<'_>, series: &Series, mem: &mut Memory, due: Due, tally: &mut Tally) -> Result<(), String> {
    let n = due_count(mem, due, cx.window_ms);
    let Some(first) = mem.held.first().filter(|_| n > 0) else { return Ok(()) };
    let create_at = store_time(first.ms);
    let mut refused: Vec<(usize, String)> = Vec::new();
    let held = mem.held.get(..n).unwrap_or_default();
    let apply = |db: &mut rrdcore::Rrd| {
        let applied = db.update_points(held.iter().map(|h| (store_time(h.ms), h.value)), |k, e| refused.push((k, e.to_string())));
        (applied, db.last_update())
    };
    match write_series(cx.store, cx.rules, series, create_at, apply) {
        Ok((applied, last)) => {
            mem.applied = Some(last);
            tally.stored += applied as u64;
        }
        Err(e) if series_fault(&e) => {
            // Nothing of the series can be stored: every held point is kept aside.
            let all: Vec<(u64, f64)> = mem.held.iter().map(|h| (h.ms, h.value)).collect();
            cx.aside.put(series, &all, &e.to_string()).map_err(|a| format!("{e}; setting its points aside failed: {a}"))?;
            tally.set_aside += all.len() as u64;
            mem.held.clear();
            mem.earliest = 0;
            return Ok(());
        }
        Err(e) => return Err(e.to_string()),
    }
    if !refused.is_empty() {
        let points: Vec<(u64, f64)> = refused.iter().filter_map(|(k, _)| mem.held.get(*k)).map(|h| (h.ms, h.value)).collect();
        let why = refused.first().map(|(_, e)| e.clone()).unwrap_or_default();
        if let Err(a) = cx.aside.put(series, &points, &why) {
            tracing::error!(series = %series.key, error = %a, "points refused by their database could not be set aside; they are lost");
        }
        tally.set_aside += points.len() as u64;
    }
    // Taken out while the applied points are remembered (no copy of them).
    let mut held = std::mem::take(&mut mem.held);
    for (k, h) in held.drain(..n).enumerate() {
        if !refused.iter().any(|(j, _)| *j == k) {
            mem.stored(h.ms, h.value);
        }
    }
    mem.earliest = held.iter().map(|h| h.arrived).min().unwrap_or(0);
    mem.held = held;
    Ok(())
}

/// The schema a new database of `series` gets: with COUNTER data sources
/// for a counter series, else as the rules say.
pub(crate) fn new_schema(rules: &SchemaRules, series: &Series) -> rrdcore::Schema {
    let mut schema = rules.schema_for(series.key.metric());
    if series.counter.load(Ordering::Relaxed) {
        for ds in &mut schema.data_sources {
            ds.kind = rrdcore::DsType::Counter;
        }
    }
    schema
}

/// Runs `f` on a series' database, creating it at `create_at` if missing
/// (with [`new_schema`]).
pub(crate) fn write_series<R>(store: &Store, rules: &SchemaRules, series: &Series, create_at: rrdcore::Timestamp, f: impl FnOnce(&mut rrdcore::Rrd) -> R) -> rrdcore::Result<R> {
    if series.counter.load(Ordering::Relaxed) && !store.exists(&series.handle) {
        store.with_handle_as(&series.handle, create_at, &new_schema(rules, series), f)
    } else {
        store.with_handle(&series.handle, Some(create_at), f)
    }
}
