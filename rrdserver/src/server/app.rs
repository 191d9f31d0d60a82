//! The server's shared state: the store, the series index, the settings and
//! the counters `/api/stats` reports; and the write path every protocol uses.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rrdcore::{SeriesKey, Store, StoreConfig, Timestamp};

use super::config::Config;
use super::index::{Index, Series, canonical};
use super::journal::{Durability, Journal};
use super::writer::{Done, Item, Writers};
use crate::opentsdb::point::{DataPoint, Value};
use crate::opentsdb::put::PointRef;

/// A point whose series is resolved.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The series.
    pub series: Arc<Series>,
    /// Milliseconds since the epoch.
    pub timestamp_ms: u64,
    /// The value.
    pub value: Value,
}

/// A validated point, owned or borrowing from a request body.
pub trait AsPoint {
    /// The metric name.
    fn metric(&self) -> &str;
    /// The tag pairs, sorted by key.
    fn tag_pairs(&self) -> impl Iterator<Item = (&str, &str)>;
    /// Milliseconds since the epoch.
    fn timestamp_ms(&self) -> u64;
    /// The value.
    fn value(&self) -> Value;
}

impl AsPoint for DataPoint {
    fn metric(&self) -> &str {
        &self.metric
    }
    fn tag_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
    fn timestamp_ms(&self) -> u64 {
        self.timestamp_ms
    }
    fn value(&self) -> Value {
        self.value
    }
}

impl AsPoint for PointRef<'_> {
    fn metric(&self) -> &str {
        &self.metric
    }
    fn tag_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.tags.iter().map(|(k, v)| (k.as_ref(), v.as_ref()))
    }
    fn timestamp_ms(&self) -> u64 {
        self.timestamp_ms
    }
    fn value(&self) -> Value {
        self.value
    }
}

/// Counters of what the server did since it started.
#[derive(Debug, Default)]
pub struct Counters {
    /// Points received (valid or not).
    pub points_received: AtomicU64,
    /// Points stored.
    pub points_stored: AtomicU64,
    /// Points refused: invalid, or older than their series' last update.
    pub points_rejected: AtomicU64,
    /// Of those, points not after their series' last update.
    pub points_too_old: AtomicU64,
    /// Denormalized copies (`__<host>.<metric>`) acknowledged, not stored.
    pub points_denormalized: AtomicU64,
    /// Points resent after they were stored (recognised and not stored twice).
    pub points_duplicate: AtomicU64,
    /// HTTP requests answered.
    pub http_requests: AtomicU64,
    /// HTTP answers with a 4xx or 5xx status.
    pub http_errors: AtomicU64,
    /// Telnet connections accepted.
    pub telnet_connections: AtomicU64,
    /// Telnet lines read.
    pub telnet_lines: AtomicU64,
    /// Queries answered (each `/api/query` request).
    pub queries: AtomicU64,
    /// Total and largest query latency in microseconds.
    pub query_micros_total: AtomicU64,
    /// The largest query latency in microseconds.
    pub query_micros_max: AtomicU64,
    /// Points refused because the write queue was full (503).
    pub queue_refused: AtomicU64,
    /// Checkpoints completed.
    pub checkpoints: AtomicU64,
    /// Damaged databases moved aside.
    pub quarantined: AtomicU64,
    /// Points applied from the journal at startup.
    pub points_replayed: AtomicU64,
}

impl Counters {
    /// Adds one query's latency.
    pub fn query_done(&self, started: Instant) {
        let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.queries.fetch_add(1, Ordering::Relaxed);
        self.query_micros_total.fetch_add(us, Ordering::Relaxed);
        self.query_micros_max.fetch_max(us, Ordering::Relaxed);
    }
}

/// The server's state, shared by every connection.
#[derive(Debug)]
pub struct App {
    /// The databases.
    pub store: Store,
    /// Which series exist.
    pub index: Index,
    /// The settings.
    pub config: Config,
    /// What happened so far.
    pub counters: Counters,
    /// When the server started.
    pub started: Instant,
    /// The host name reported in stats.
    pub hostname: String,
    /// Bosun's metadata and the series known only from `/api/index`.
    pub meta: super::bosun::meta::MetaDb,
    /// The write-ahead journal (none with `durability = "none"`).
    pub journal: Option<Journal>,
    /// The writer threads.
    pub writers: Writers,
    /// Appending to the journal and queueing to the writers happen under
    /// its read side; a checkpoint's rotation takes the write side, so no
    /// batch straddles it.
    pub(crate) gate: RwLock<()>,
    /// Series with points held in the reorder window.
    pub(crate) held_list: Mutex<Vec<Arc<Series>>>,
    /// The checkpoint thread and the perfdata spool watcher, with their stop signals.
    background: Mutex<Vec<(std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>)>>,
}

/// Why a batch was not taken (the client should retry: 503).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestError {
    /// The write queue is full.
    Busy,
    /// The journal could not be written or synced (disk full, I/O error).
    Journal(String),
    /// A database could not be written (disk full, I/O error).
    Storage(String),
}

impl std::fmt::Display for IngestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IngestError::Busy => f.write_str("the write queue is full; retry later"),
            IngestError::Journal(e) => f.write_str(e),
            IngestError::Storage(e) => write!(f, "storing points failed: {e}"),
        }
    }
}

impl super::journal::Journaled for &Series {
    fn journal_slot(&self) -> &std::sync::atomic::AtomicU64 {
        &self.journal
    }
    fn text(&self) -> String {
        let mut out = String::new();
        canonical(&mut out, self.key.metric(), self.key.tags().iter().map(|(k, v)| (k.as_str(), v.as_str())));
        out
    }
    fn counter(&self) -> bool {
        self.counter.load(Ordering::Relaxed)
    }
}

/// The milliseconds timestamp as a store time.
pub fn store_time(ms: u64) -> Timestamp {
    let sec = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    #[expect(clippy::cast_possible_truncation, reason = "ms % 1000 * 1000 < 1e6")]
    let usec = ((ms % 1000) * 1000) as u32;
    Timestamp { sec, usec }
}

impl App {
    /// Opens the store in `config.data_dir` and indexes its series.
    pub fn open(config: Config) -> Result<Arc<App>, rrdcore::Error> {
        let store_config = StoreConfig { max_open: config.max_open_databases, rules: config.rules.clone() };
        let store = Store::open(&config.data_dir, store_config)?;
        for p in store.scan_problems() {
            tracing::warn!(path = %p.path.display(), reason = %p.reason, "skipping a file in the data directory");
        }
        let index = Index::build(&store)?;
        let meta = super::bosun::meta::MetaDb::open(&config.data_dir).map_err(|reason| rrdcore::Error::Unavailable { key: super::bosun::meta::FILE.into(), reason })?;
        for (text, value, time_ms) in meta.indexed().map_err(|reason| rrdcore::Error::Unavailable { key: super::bosun::meta::FILE.into(), reason })? {
            if let Some(key) = super::index::parse_canonical(&text) {
                let series = index.get_or_insert(&store, &text, || Ok(key)).map_err(|reason| rrdcore::Error::Unavailable { key: text.clone(), reason })?;
                series.observe(time_ms, value);
            }
        }
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_owned()).unwrap_or_else(|_| "localhost".into());
        let counters = Counters::default();
        let last_seq = super::recovery::replay(&store, &index, &counters, &config.rules)?;
        let journal = match config.durability {
            Durability::None => None,
            policy => Some(
                Journal::create(&config.data_dir, last_seq, policy, Duration::from_millis(config.sync_interval_ms))
                    .map_err(|e| rrdcore::Error::Io { op: "create journal segment", path: config.data_dir.join(super::journal::DIR), source: e })?,
            ),
        };
        let writers = Writers::new(config.max_queued_points);
        let threads = config.writers();
        let app = Arc::new(App {
            store,
            index,
            config,
            counters,
            started: Instant::now(),
            hostname,
            meta,
            journal,
            writers,
            gate: RwLock::new(()),
            held_list: Mutex::default(),
            background: Mutex::default(),
        });
        let io = |e: std::io::Error| rrdcore::Error::Io { op: "start thread", path: app.config.data_dir.clone(), source: e };
        app.writers.start(&app, threads).map_err(io)?;
        let mut bg = vec![super::checkpoint::start(&app).map_err(io)?];
        if let Some(dir) = app.config.perfdata_spool.clone() {
            bg.push(crate::perfdata::import::watch(&app, dir).map_err(io)?);
        }
        *app.background.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = bg;
        Ok(app)
    }

    /// Milliseconds since the server started (the reorder window's clock).
    pub fn clock_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Stops the background work after the connections ended: the last
    /// checkpoint (held points applied, databases on disk, journal emptied),
    /// then the writer threads.
    pub fn close(&self) -> Result<(), String> {
        let bg = std::mem::take(&mut *self.background.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        for (stop, thread) in bg {
            drop(stop);
            let _ = thread.join();
        }
        let result = super::checkpoint::checkpoint(self);
        self.writers.stop();
        if let Some(j) = &self.journal {
            j.close();
        }
        result
    }

    /// Applies a series' held points, so a read sees every accepted point.
    pub fn settle(&self, series: &Series) {
        let mut mem = series.memory();
        if mem.held.is_empty() {
            return;
        }
        let mut tally = super::writer::Tally::default();
        if let Err(e) = super::writer::release(self, series, &mut mem, super::writer::Due::All, &mut tally, &mut |_, _| {}) {
            tracing::error!(series = %series.key, error = %e, "applying held points before a read failed");
        }
        self.counters.points_stored.fetch_add(tally.stored, Ordering::Relaxed);
    }

    /// The series of a point, created in the index on first sight. `buf`
    /// is scratch space, reused across calls.
    pub fn resolve(&self, p: &impl AsPoint, buf: &mut String) -> Result<Arc<Series>, String> {
        canonical(buf, p.metric(), p.tag_pairs());
        self.resolve_text(p, buf)
    }

    /// [`App::resolve`] when `text` already holds the point's canonical text.
    pub fn resolve_text(&self, p: &impl AsPoint, text: &str) -> Result<Arc<Series>, String> {
        self.index.get_or_insert(&self.store, text, || SeriesKey::new(p.metric(), p.tag_pairs()).map_err(|e| e.to_string()))
    }

    /// The last point of a series: from the last-value table, or, for a
    /// stored series not written since the start, from its database (rate 0).
    pub fn last_point(&self, series: &Series) -> Option<super::index::Last> {
        if let Some(l) = series.last() {
            return Some(l);
        }
        if !self.store.exists(&series.handle) {
            return None;
        }
        let (t, text) = self
            .store
            .with_handle(&series.handle, None, |db| (db.last_update(), db.state().ds.first().map(|d| d.last_ds.as_str().to_owned()).unwrap_or_default()))
            .ok()?;
        let value: f64 = text.parse().ok()?;
        let ms = u64::try_from(t.sec).ok()? * 1000 + u64::from(t.usec / 1000);
        series.observe(ms, value);
        series.last()
    }

    /// Whether a point is a denormalized copy (`__<host>.<metric>` with its
    /// own tags) that a tsdbrelay in front sends besides the original: it is
    /// acknowledged and not stored again (the name is resolved when queried).
    pub fn is_denormalized_copy(&self, p: &impl AsPoint) -> bool {
        let metric = p.metric();
        metric.starts_with("__") && self.config.denormalize.is_copy(metric, |k| p.tag_pairs().find(|(key, _)| *key == k).map(|(_, v)| v))
    }

    /// Stores valid points; the result per point is `Ok` or the error text.
    /// Denormalized copies are acknowledged without being stored. See
    /// [`App::ingest_resolved`].
    pub fn ingest<P: AsPoint>(&self, points: &[P], sync: bool) -> Result<Vec<Result<(), String>>, IngestError> {
        self.ingest_with(points, sync, |p, buf| self.resolve(p, buf))
    }

    /// [`App::ingest`] for a connection that keeps its [`super::recall::Recall`]
    /// between requests, so its series are resolved in the order it sends them.
    pub fn ingest_recalling<P: AsPoint>(&self, points: &[P], sync: bool, recall: &mut super::recall::Recall) -> Result<Vec<Result<(), String>>, IngestError> {
        self.ingest_with(points, sync, |p, buf| recall.resolve(self, p, buf))
    }

    /// [`App::ingest`] with each point's series found by `resolve` (`buf` is scratch).
    fn ingest_with<P: AsPoint>(
        &self,
        points: &[P],
        sync: bool,
        mut resolve: impl FnMut(&P, &mut String) -> Result<Arc<Series>, String>,
    ) -> Result<Vec<Result<(), String>>, IngestError> {
        let mut results: Vec<Result<(), String>> = vec![Ok(()); points.len()];
        let mut buf = String::new();
        let mut resolved = Vec::with_capacity(points.len());
        let mut at = Vec::with_capacity(points.len());
        let mut copies = 0;
        for (i, p) in points.iter().enumerate() {
            if self.is_denormalized_copy(p) {
                copies += 1;
                continue;
            }
            match resolve(p, &mut buf) {
                Ok(series) => {
                    resolved.push(Resolved { series, timestamp_ms: p.timestamp_ms(), value: p.value() });
                    at.push(i);
                }
                Err(e) => results[i] = Err(e),
            }
        }
        let failed = (points.len() - resolved.len()) as u64 - copies;
        self.counters.points_received.fetch_add(failed, Ordering::Relaxed);
        self.counters.points_rejected.fetch_add(failed, Ordering::Relaxed);
        for (r, i) in self.ingest_resolved(&resolved, sync)?.into_iter().zip(at) {
            results[i] = r;
        }
        self.counters.points_denormalized.fetch_add(copies, Ordering::Relaxed);
        Ok(results)
    }

    /// Stores points whose series are known; the result per point is `Ok`
    /// or the error text. The batch is appended to the journal, then the
    /// writer threads take it (see [`super::writer`]); the answer comes
    /// when they have, and, under `durability = "sync"` or with `sync`,
    /// when the journal is on disk. A point not after its series' last
    /// update is refused, unless it is a resend of one stored or held.
    /// An `Err` means nothing needs to be assumed stored: retry the batch.
    pub fn ingest_resolved(&self, points: &[Resolved], sync: bool) -> Result<Vec<Result<(), String>>, IngestError> {
        if points.is_empty() {
            return Ok(Vec::new());
        }
        let n = points.len();
        if !self.writers.reserve(n) {
            self.counters.queue_refused.fetch_add(n as u64, Ordering::Relaxed);
            return Err(IngestError::Busy);
        }
        let shards = self.writers.shards();
        let mut parts: Vec<Vec<Item>> = (0..shards).map(|_| Vec::new()).collect();
        for (i, p) in points.iter().enumerate() {
            if let Some(part) = parts.get_mut(Writers::shard_of(&p.series, shards)) {
                let index = u32::try_from(i).unwrap_or(u32::MAX);
                part.push(Item { series: Arc::clone(&p.series), ms: p.timestamp_ms, value: p.value.as_f64(), index });
            }
        }
        let done = Done::new(n, parts.iter().filter(|p| !p.is_empty()).count());
        let position = {
            let _gate = self.gate.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            let position = match &self.journal {
                Some(j) => match j.append(points.iter().map(|p| (&*p.series, p.timestamp_ms, p.value.as_f64()))) {
                    Ok(pos) => Some(pos),
                    Err(e) => {
                        self.writers.unreserve(n as u64);
                        return Err(IngestError::Journal(e.0));
                    }
                },
                None => None,
            };
            let mut unsent = n as u64;
            for (i, items) in parts.into_iter().enumerate().filter(|(_, p)| !p.is_empty()) {
                let len = items.len() as u64;
                if !self.writers.send(i, super::writer::Job::Points { items, done: Arc::clone(&done) }) {
                    self.writers.unreserve(unsent);
                    return Err(IngestError::Storage("the server is stopping".into()));
                }
                unsent -= len;
            }
            position
        };
        if let (Some(j), Some(pos)) = (&self.journal, position)
            && (sync || j.policy() == Durability::Sync)
        {
            j.wait_synced(pos).map_err(|e| IngestError::Journal(e.0))?;
        }
        let (results, failure) = done.wait();
        if let Some(f) = failure {
            return Err(IngestError::Storage(f));
        }
        let stored = results.iter().filter(|r| r.is_ok()).count() as u64;
        self.counters.points_received.fetch_add(n as u64, Ordering::Relaxed);
        self.counters.points_rejected.fetch_add(n as u64 - stored, Ordering::Relaxed);
        Ok(results)
    }

    /// [`App::ingest_resolved`] that waits for room in the write queue
    /// instead of refusing (telnet: its reads pause meanwhile; perfdata).
    pub fn ingest_waiting(&self, points: &[Resolved], sync: bool) -> Result<Vec<Result<(), String>>, IngestError> {
        loop {
            match self.ingest_resolved(points, sync) {
                Err(IngestError::Busy) => self.writers.wait_room(),
                other => return other,
            }
        }
    }
}
