//! Writer threads: journaled points are applied to their databases here,
//! sharded by series (a series always goes to the same thread), so request
//! threads never touch a database file and a slow disk never holds up
//! queries of other series.
//!
//! * A batch is split into one [`Job`] per shard; the put waits on its
//!   [`Done`] until every shard has taken its points.
//! * Taking a point ([`accept`]): a point not after the database's last
//!   update is a resend (acknowledged) or too old (refused); otherwise it is
//!   held in the series' reorder window, sorted by time, and applied when it
//!   has waited `reorder_window_ms`, when the series is read, or at a
//!   checkpoint (`release`). A late point that arrives inside the window
//!   is thus stored in order.
//! * The queue is bounded ([`Writers::reserve`]): past `max_queued_points`
//!   a put is refused (503) and telnet waits.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, RwLock, Weak};

use super::app::{App, store_time};
use super::index::{Held, Memory, Series};

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

/// One point on its way to a writer.
#[derive(Debug, Clone)]
pub struct Item {
    /// Its series.
    pub series: Arc<Series>,
    /// Milliseconds since the epoch.
    pub ms: u64,
    /// The value.
    pub value: f64,
    /// Its place in the batch.
    pub index: u32,
}

/// Completion of a batch spread over several writers.
#[derive(Debug)]
pub struct Done {
    state: Mutex<DoneState>,
    cv: Condvar,
}

#[derive(Debug)]
struct DoneState {
    pending: usize,
    results: Vec<Result<(), String>>,
    failure: Option<String>,
}

impl Done {
    /// A batch of `points` points handed to `parts` writers.
    pub fn new(points: usize, parts: usize) -> Arc<Done> {
        Arc::new(Done { state: Mutex::new(DoneState { pending: parts, results: vec![Ok(()); points], failure: None }), cv: Condvar::new() })
    }

    fn finish(&self, results: &mut Vec<(u32, Result<(), String>)>, failure: Option<String>) {
        let mut s = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (i, r) in results.drain(..) {
            if let Some(slot) = s.results.get_mut(i as usize) {
                *slot = r;
            }
        }
        if failure.is_some() {
            s.failure = failure;
        }
        s.pending = s.pending.saturating_sub(1);
        if s.pending == 0 {
            self.cv.notify_all();
        }
    }

    /// Waits for every part: the result per point, and a storage failure
    /// if one happened (the batch should then be retried).
    pub fn wait(&self) -> (Vec<Result<(), String>>, Option<String>) {
        let mut s = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while s.pending > 0 {
            s = self.cv.wait(s).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        (std::mem::take(&mut s.results), s.failure.take())
    }
}

/// Work for a writer thread.
#[derive(Debug)]
pub enum Job {
    /// Points to take.
    Points {
        /// The points (of this shard's series).
        items: Vec<Item>,
        /// Where the results go.
        done: Arc<Done>,
    },
    /// Apply the held points of these series that are due (or all of them).
    Release {
        /// The series.
        series: Vec<Arc<Series>>,
        /// Apply every held point, due or not.
        all: bool,
        /// Told when done (with a failure if some could not be applied).
        done: Arc<Done>,
    },
}

/// The writer threads and their bounded queue.
#[derive(Debug)]
pub struct Writers {
    senders: RwLock<Vec<mpsc::Sender<Job>>>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    queued: AtomicU64,
    max_queued: u64,
    room: (Mutex<()>, Condvar),
    /// Threads in [`Writers::wait_room`]: only then is room announced.
    waiting: std::sync::atomic::AtomicUsize,
}

/// Counts a writer adds to the server's counters once per job.
#[derive(Debug, Default)]
pub struct Tally {
    /// Resent points recognised.
    pub duplicate: u64,
    /// Points refused as older than their series' last update.
    pub too_old: u64,
    /// Points written to databases.
    pub stored: u64,
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
            waiting: std::sync::atomic::AtomicUsize::new(0),
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

    /// How many writer threads run.
    pub fn shards(&self) -> usize {
        self.senders.read().map_or(0, |s| s.len())
    }

    /// The shard of a series.
    pub fn shard_of(series: &Arc<Series>, shards: usize) -> usize {
        let p = Arc::as_ptr(series) as usize as u64;
        let h = (p >> 4).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
        usize::try_from(h).unwrap_or(0) % shards.max(1)
    }

    /// Takes room for `n` points in the queue; false when it is full (a
    /// batch alone is always let in, whatever its size).
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
        // SeqCst on both sides: a waiter either sees the room or is seen.
        self.queued.fetch_sub(n, Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) > 0 {
            let _guard = self.room.0.lock();
            self.room.1.notify_all();
        }
    }

    /// Points queued and not yet taken by a writer.
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

    /// Sends a job to shard `i`; false when the writers have stopped.
    pub fn send(&self, i: usize, job: Job) -> bool {
        let senders = self.senders.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        senders.get(i).is_some_and(|s| s.send(job).is_ok())
    }

    /// Sends `Release` jobs for `series` (grouped by shard) and waits for
    /// them; false if some held points could not be applied.
    pub fn release(&self, series: Vec<Arc<Series>>, all: bool) -> bool {
        let shards = self.shards();
        if series.is_empty() || shards == 0 {
            return true;
        }
        let mut parts: Vec<Vec<Arc<Series>>> = vec![Vec::new(); shards];
        for s in series {
            if let Some(p) = parts.get_mut(Writers::shard_of(&s, shards)) {
                p.push(s);
            }
        }
        let used = parts.iter().filter(|p| !p.is_empty()).count();
        let done = Done::new(0, used);
        for (i, p) in parts.into_iter().enumerate().filter(|(_, p)| !p.is_empty()) {
            if !self.send(i, Job::Release { series: p, all, done: Arc::clone(&done) }) {
                return false;
            }
        }
        done.wait().1.is_none()
    }

    /// Waits until every writer has taken the jobs sent before the call.
    pub fn barrier(&self) {
        let shards = self.shards();
        let done = Done::new(0, shards);
        for i in 0..shards {
            if !self.send(i, Job::Release { series: Vec::new(), all: true, done: Arc::clone(&done) }) {
                return;
            }
        }
        if shards > 0 {
            let _ = done.wait();
        }
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
    let mut results = Vec::new();
    while let Ok(job) = rx.recv() {
        let Some(app) = app.upgrade() else { return };
        match job {
            Job::Points { mut items, done } => {
                let n = items.len() as u64;
                let failure = take_points(&app, &mut items, &mut results);
                app.writers.unreserve(n);
                done.finish(&mut results, failure);
            }
            Job::Release { series, all, done } => {
                let due = if all { Due::All } else { Due::At(app.clock_ms()) };
                let mut failure = None;
                let mut tally = Tally::default();
                for (i, s) in series.iter().enumerate() {
                    prefetch_ahead(&app, true, |k| series.get(i + k));
                    let mut mem = s.memory();
                    mem.listed = false;
                    if let Err(e) = release(&app, s, &mut mem, due, &mut tally, &mut |_, _| {}) {
                        failure = Some(e);
                    }
                    list_if_held(&app, s, &mut mem);
                }
                app.counters.points_stored.fetch_add(tally.stored, Ordering::Relaxed);
                done.finish(&mut results, failure);
            }
        }
    }
}

/// Takes one job's points: per series in time order (a batch may list
/// them in any order). Results go to `out`; a storage failure is returned.
fn take_points(app: &App, items: &mut [Item], out: &mut Vec<(u32, Result<(), String>)>) -> Option<String> {
    // The index makes every key distinct: an unstable sort gives the stable order.
    items.sort_unstable_by_key(|it| (Arc::as_ptr(&it.series) as usize, it.ms, it.index));
    let mut tally = Tally::default();
    let mut failure = None;
    let mut runs = Vec::new();
    let mut rest = &*items;
    while let Some(first) = rest.first() {
        let run = rest.iter().take_while(|it| Arc::ptr_eq(&it.series, &first.series)).count();
        let (now, later) = rest.split_at(run);
        runs.push(now);
        rest = later;
    }
    // One clock read per job: its points arrived together.
    let now = app.clock_ms();
    // With a reorder window, taking a point seldom writes its database (it
    // is held): hinting the databases then only crowds out what is used.
    let writes = app.config.reorder_window_ms == 0;
    for (i, run) in runs.iter().enumerate() {
        prefetch_ahead(app, writes, |k| runs.get(i + k).and_then(|r| r.first()).map(|it| &it.series));
        let Some(first) = run.first() else { continue };
        if let Err(e) = accept(app, &first.series, run, now, out, &mut tally) {
            tracing::error!(series = %first.series.key, error = %e, "storing points failed");
            failure = Some(e);
        }
    }
    let c = &app.counters;
    c.points_duplicate.fetch_add(tally.duplicate, Ordering::Relaxed);
    c.points_too_old.fetch_add(tally.too_old, Ordering::Relaxed);
    c.points_stored.fetch_add(tally.stored, Ordering::Relaxed);
    failure
}

/// Hints the memory of the series coming up in a loop over many (`ahead(k)`
/// is the series `k` places on), so the misses of consecutive series
/// overlap: its record three ahead, its held points and index entry two
/// ahead, its database one ahead (when `writes`: the loop writes databases).
fn prefetch_ahead<'a>(app: &App, writes: bool, ahead: impl Fn(usize) -> Option<&'a Arc<Series>>) {
    if let Some(s) = ahead(3) {
        rrdcore::prefetch::value(&**s);
    }
    if let Some(s) = ahead(2) {
        rrdcore::prefetch::bytes_at(s.held_tail.load(Ordering::Relaxed), 2 * size_of::<Held>());
        if writes {
            app.store.prefetch_handle(&s.handle);
        }
    }
    if let Some(s) = ahead(1).filter(|_| writes) {
        app.store.prefetch(&s.handle);
    }
}

/// Takes one series' points (sorted by time). Errors per point go to
/// `out`; an error storing the series is returned (its points stay held,
/// so a retry of the batch is recognised). `now` is the server clock
/// ([`App::clock_ms`]) when the points were taken.
pub fn accept(app: &App, series: &Arc<Series>, run: &[Item], now: u64, out: &mut Vec<(u32, Result<(), String>)>, tally: &mut Tally) -> Result<(), String> {
    let mut mem = series.memory();
    let applied = applied(app, series, &mut mem)?;
    let first_out = out.len();
    for (k, it) in run.iter().enumerate() {
        // Of several points at one time in a batch, the last sent wins.
        if run.get(k + 1).is_some_and(|next| next.ms == it.ms) {
            tally.duplicate += 1;
            out.push((it.index, Ok(())));
            continue;
        }
        let t = store_time(it.ms);
        if let Some(last) = applied.filter(|last| t <= *last) {
            if mem.stored_recently(it.ms, it.value) {
                tally.duplicate += 1;
                out.push((it.index, Ok(())));
            } else {
                tally.too_old += 1;
                out.push((
                    it.index,
                    Err(format!("point at {} is not after the series' last update {} (round-robin series only move forward)", show_time(t), show_time(last))),
                ));
            }
            continue;
        }
        // Points usually come in time order: after every held one.
        let place = match mem.held.last() {
            Some(last) if last.ms < it.ms => Err(mem.held.len()),
            None => Err(0),
            Some(_) => mem.held.binary_search_by(|h| h.ms.cmp(&it.ms)),
        };
        match place {
            Ok(i) if mem.held.get(i).is_some_and(|h| h.value.to_bits() == it.value.to_bits()) => {
                tally.duplicate += 1;
                out.push((it.index, Ok(())));
            }
            Ok(_) => out.push((it.index, Err(format!("a different value at {} is already accepted for this series", show_time(t))))),
            Err(i) => {
                mem.earliest = if mem.held.is_empty() { now } else { mem.earliest.min(now) };
                mem.held.insert(i, Held { ms: it.ms, value: it.value, arrived: now });
                mem.observe(it.ms, it.value);
                out.push((it.index, Ok(())));
            }
        }
    }
    // Points of this batch the database refused when applied now.
    let mut refused = |ms: u64, e: String| {
        if let Some(r) = out.get_mut(first_out..).and_then(|o| o.iter_mut().find(|(i, r)| r.is_ok() && run.iter().any(|it| it.index == *i && it.ms == ms))) {
            r.1 = Err(e);
        }
    };
    let released = release(app, series, &mut mem, Due::At(now), tally, &mut refused);
    list_if_held(app, series, &mut mem);
    released
}

/// The database's last update (read once, then kept in memory); `None`
/// for a series without a file yet.
fn applied(app: &App, series: &Series, mem: &mut Memory) -> Result<Option<rrdcore::Timestamp>, String> {
    if mem.applied.is_none() && app.store.exists(&series.handle) {
        match app.store.with_handle(&series.handle, None, |db| db.last_update()) {
            Ok(t) => mem.applied = Some(t),
            Err(rrdcore::Error::UnknownSeries { .. }) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(mem.applied)
}

/// Applies the held points that are due: all of them, or those that
/// waited the window and everything before them in time, and the oldest
/// half when the series holds more than [`MAX_HELD`]. A point the database
/// refuses goes to `refused`. On a storage error the points stay held.
pub(crate) fn release(app: &App, series: &Series, mem: &mut Memory, due: Due, tally: &mut Tally, refused: &mut dyn FnMut(u64, String)) -> Result<(), String> {
    let len = mem.held.len();
    if len == 0 {
        return Ok(());
    }
    let n = match due {
        Due::All => len,
        Due::At(now) => {
            let window = app.config.reorder_window_ms;
            let waited = if mem.earliest.saturating_add(window) > now {
                0
            } else {
                mem.held.iter().rposition(|h| h.arrived.saturating_add(window) <= now).map_or(0, |i| i + 1)
            };
            let over = if len > MAX_HELD { len - MAX_HELD / 2 } else { 0 };
            waited.max(over)
        }
    };
    let Some(first) = mem.held.first().filter(|_| n > 0) else { return Ok(()) };
    let create_at = store_time(first.ms);
    let mut failed: Vec<(usize, String)> = Vec::new();
    let held = mem.held.get(..n).unwrap_or_default();
    let apply = |db: &mut rrdcore::Rrd| {
        let applied = db.update_points(held.iter().map(|h| (store_time(h.ms), h.value)), |k, e| failed.push((k, e.to_string())));
        (applied, db.last_update())
    };
    let (applied, last) = write_series(&app.store, &app.config.rules, series, create_at, apply).map_err(|e| e.to_string())?;
    mem.applied = Some(last);
    tally.stored += applied as u64;
    // Taken out while the applied points are remembered (no copy of them).
    let mut held = std::mem::take(&mut mem.held);
    for (k, h) in held.drain(..n).enumerate() {
        match failed.iter().find(|(j, _)| *j == k) {
            Some((_, e)) => {
                tracing::warn!(series = %series.key, ms = h.ms, error = %e, "a held point was refused by its database");
                refused(h.ms, e.clone());
            }
            None => mem.stored(h.ms, h.value),
        }
    }
    mem.earliest = held.iter().map(|h| h.arrived).min().unwrap_or(0);
    mem.held = held;
    Ok(())
}

/// Runs `f` on a series' database, creating it at `create_at` if missing:
/// with COUNTER data sources for a counter series, else as the rules say.
pub(crate) fn write_series<R>(store: &rrdcore::Store, rules: &rrdcore::SchemaRules, series: &Series, create_at: rrdcore::Timestamp, f: impl FnOnce(&mut rrdcore::Rrd) -> R) -> rrdcore::Result<R> {
    if series.counter.load(Ordering::Relaxed) && !store.exists(&series.handle) {
        store.with_handle_as(&series.handle, create_at, &counter_schema(rules, series.key.metric()), f)
    } else {
        store.with_handle(&series.handle, Some(create_at), f)
    }
}

/// The schema the rules give a metric, with COUNTER data sources.
fn counter_schema(rules: &rrdcore::SchemaRules, metric: &str) -> rrdcore::Schema {
    let mut schema = rules.schema_for(metric);
    for ds in &mut schema.data_sources {
        ds.kind = rrdcore::DsType::Counter;
    }
    schema
}

/// Puts a series with held points on the list the releaser goes over, and
/// keeps where its next held point goes as a prefetch hint.
fn list_if_held(app: &App, series: &Arc<Series>, mem: &mut Memory) {
    series.held_tail.store(mem.held_tail(), Ordering::Relaxed);
    if !mem.held.is_empty() && !mem.listed {
        mem.listed = true;
        app.held_list.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(Arc::clone(series));
    }
}

/// A store time as text: seconds, with milliseconds when there are some.
pub fn show_time(t: rrdcore::Timestamp) -> String {
    if t.usec == 0 { t.sec.to_string() } else { format!("{}.{:03}", t.sec, t.usec / 1000) }
}
