//! The server's shared state: the store, the series index, the settings and
//! the counters `/api/stats` reports; and the write path every protocol uses.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rrdcore::{SeriesKey, Store, StoreConfig, Timestamp};

use super::config::Config;
use super::index::{Index, Series, canonical};
use super::write::apply::{self, Tally};
use super::write::journal::{Durability, Journal};
pub use super::write::{IngestError, PointError};
use super::write::{WritePath, aside::Aside};
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
    /// Acknowledged points their database refused, set aside.
    pub points_set_aside: AtomicU64,
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
    /// The journal, the writer threads and the points held in windows.
    pub write: WritePath,
    /// The checkpoint thread and the perfdata spool watcher, with their stop signals.
    background: Mutex<Vec<(std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>)>>,
}

impl super::write::journal::Journaled for &Series {
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

/// What answering a read needs, and nothing else: the series index, the
/// databases, the read settings, and applying a series' held points first
/// (so a read sees every accepted point). Query, `/api/query/last` and
/// Bosun's host inventory receive this rather than the whole [`App`].
#[derive(Debug, Clone, Copy)]
pub struct Reads<'a> {
    /// Which series exist.
    pub index: &'a Index,
    /// The databases.
    pub store: &'a Store,
    /// How `__<host>.<metric>` names resolve.
    pub denormalize: &'a super::bosun::denorm::Rules,
    /// Whether NaN is written as `null`.
    pub nan_as_null: bool,
    apply: apply::Ctx<'a>,
    counters: &'a Counters,
    writers: &'a apply::Writers,
}

impl Reads<'_> {
    /// Applies a series' held points, so a read sees every accepted point.
    pub fn settle(&self, series: &Series) {
        let mut mem = series.memory();
        if mem.held.is_empty() {
            return;
        }
        let mut tally = Tally::default();
        if let Err(e) = apply::release(&self.apply, series, &mut mem, apply::Due::All, &mut tally) {
            tracing::error!(series = %series.key, error = %e, "applying held points before a read failed");
        }
        self.counters.points_stored.fetch_add(tally.stored, Ordering::Relaxed);
        self.counters.points_set_aside.fetch_add(tally.set_aside, Ordering::Relaxed);
        self.writers.unreserve(tally.taken());
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
        super::write::journal::migrate(&config.data_dir).map_err(|e| rrdcore::Error::Io { op: "move the journal", path: config.data_dir.clone(), source: e })?;
        let meta = super::bosun::meta::MetaDb::open(&config.data_dir).map_err(|reason| rrdcore::Error::Unavailable { key: super::bosun::meta::FILE.into(), reason })?;
        for (text, value, time_ms) in meta.indexed().map_err(|reason| rrdcore::Error::Unavailable { key: super::bosun::meta::FILE.into(), reason })? {
            match super::index::parse_canonical(&text).map(|key| index.get_or_insert(&store, &text, || Ok(key))) {
                Some(Ok(series)) => series.observe(time_ms, value),
                Some(Err(reason)) => tracing::warn!(series = %text, %reason, "skipping an indexed series"),
                None => tracing::warn!(series = %text, "skipping an indexed series whose name does not parse"),
            }
        }
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_owned()).unwrap_or_else(|_| "localhost".into());
        let counters = Counters::default();
        let journal_dir = config.data_dir.join(super::write::journal::DIR);
        let aside = Aside::new(&journal_dir);
        let cx = apply::Ctx { store: &store, rules: &config.rules, window_ms: config.reorder_window_ms, aside: &aside };
        let replayed = super::write::recovery::replay(&cx, &index)?;
        counters.points_replayed.store(replayed.applied, Ordering::Relaxed);
        counters.points_set_aside.store(replayed.set_aside, Ordering::Relaxed);
        let journal = match config.durability {
            Durability::None => None,
            policy => Some(
                Journal::create(&config.data_dir, replayed.last_seq, policy, Duration::from_millis(config.sync_interval_ms))
                    .map_err(|e| rrdcore::Error::Io { op: "create journal segment", path: journal_dir.clone(), source: e })?,
            ),
        };
        let write = WritePath::new(journal, config.max_queued_points, aside);
        let threads = config.writers();
        let app = Arc::new(App {
            store,
            index,
            config,
            counters,
            started: Instant::now(),
            hostname,
            meta,
            write,
            background: Mutex::default(),
        });
        let io = |e: std::io::Error| rrdcore::Error::Io { op: "start thread", path: app.config.data_dir.clone(), source: e };
        app.write.writers.start(&app, threads).map_err(io)?;
        let mut bg = vec![super::write::checkpoint::start(&app).map_err(io)?];
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
    pub fn close(&self) -> Result<(), super::write::checkpoint::CheckpointError> {
        let bg = std::mem::take(&mut *self.background.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        for (stop, thread) in bg {
            drop(stop);
            let _ = thread.join();
        }
        let result = super::write::checkpoint::checkpoint(self);
        self.write.writers.stop();
        if let Some(j) = &self.write.journal {
            j.close();
        }
        result
    }

    /// What applying held points needs.
    pub fn apply_context(&self) -> apply::Ctx<'_> {
        apply::Ctx { store: &self.store, rules: &self.config.rules, window_ms: self.config.reorder_window_ms, aside: &self.write.aside }
    }

    /// Adds what applying did to the counters and gives its room back.
    pub(crate) fn counted(&self, tally: &Tally) {
        self.counters.points_stored.fetch_add(tally.stored, Ordering::Relaxed);
        self.counters.points_set_aside.fetch_add(tally.set_aside, Ordering::Relaxed);
        self.write.writers.unreserve(tally.taken());
    }

    /// What reads need ([`Reads`]).
    pub fn reads(&self) -> Reads<'_> {
        Reads {
            index: &self.index,
            store: &self.store,
            denormalize: &self.config.denormalize,
            nan_as_null: self.config.nan_as_null,
            apply: self.apply_context(),
            counters: &self.counters,
            writers: &self.write.writers,
        }
    }

    /// Applies a series' held points, so a read sees every accepted point.
    pub fn settle(&self, series: &Series) {
        self.reads().settle(series);
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

    /// The last point of a series ([`Reads::last_point`]).
    pub fn last_point(&self, series: &Series) -> Option<super::index::Last> {
        self.reads().last_point(series)
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
    pub fn ingest<P: AsPoint>(&self, points: &[P], sync: bool) -> Result<Vec<Result<(), PointError>>, IngestError> {
        self.ingest_with(points, sync, |p, buf| self.resolve(p, buf))
    }

    /// [`App::ingest`] for a connection that keeps its [`super::recall::Recall`]
    /// between requests, so its series are resolved in the order it sends them.
    pub fn ingest_recalling<P: AsPoint>(&self, points: &[P], sync: bool, recall: &mut super::recall::Recall) -> Result<Vec<Result<(), PointError>>, IngestError> {
        self.ingest_with(points, sync, |p, buf| recall.resolve(self, p, buf))
    }

    /// [`App::ingest`] with each point's series found by `resolve` (`buf` is scratch).
    fn ingest_with<P: AsPoint>(
        &self,
        points: &[P],
        sync: bool,
        mut resolve: impl FnMut(&P, &mut String) -> Result<Arc<Series>, String>,
    ) -> Result<Vec<Result<(), PointError>>, IngestError> {
        let mut results: Vec<Result<(), PointError>> = vec![Ok(()); points.len()];
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
                Err(e) => results[i] = Err(PointError::Series(e)),
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

    /// [`App::ingest_resolved`] that waits for room in the write queue
    /// instead of refusing (telnet: its reads pause meanwhile; perfdata).
    pub fn ingest_waiting(&self, points: &[Resolved], sync: bool) -> Result<Vec<Result<(), PointError>>, IngestError> {
        loop {
            match self.ingest_resolved(points, sync) {
                Err(IngestError::Busy) => self.write.writers.wait_room(),
                other => return other,
            }
        }
    }
}
