//! The server's shared state: the store, the series index, the settings and
//! the counters `/api/stats` reports; and the write path every protocol uses.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rrdcore::{SeriesKey, Store, StoreConfig, Timestamp};

use super::config::Config;
use super::index::{Index, Series, canonical};
use crate::opentsdb::point::{DataPoint, Value};
use crate::opentsdb::put::PointRef;

/// Counts of one batch, added to [`Counters`] once.
#[derive(Debug, Default)]
struct Tally {
    duplicate: u64,
    too_old: u64,
    stored: u64,
}

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
        Ok(Arc::new(App { store, index, config, counters: Counters::default(), started: Instant::now(), hostname, meta }))
    }

    /// The series of a point, created in the index on first sight. `buf`
    /// is scratch space, reused across calls.
    pub fn resolve(&self, p: &impl AsPoint, buf: &mut String) -> Result<Arc<Series>, String> {
        canonical(buf, p.metric(), p.tag_pairs());
        self.index.get_or_insert(&self.store, buf, || SeriesKey::new(p.metric(), p.tag_pairs()).map_err(|e| e.to_string()))
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
    pub fn ingest<P: AsPoint>(&self, points: &[P], sync: bool) -> Vec<Result<(), String>> {
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
            match self.resolve(p, &mut buf) {
                Ok(series) => {
                    resolved.push(Resolved { series, timestamp_ms: p.timestamp_ms(), value: p.value() });
                    at.push(i);
                }
                Err(e) => results[i] = Err(e),
            }
        }
        self.counters.points_denormalized.fetch_add(copies, Ordering::Relaxed);
        let failed = (points.len() - resolved.len()) as u64 - copies;
        self.counters.points_received.fetch_add(failed, Ordering::Relaxed);
        self.counters.points_rejected.fetch_add(failed, Ordering::Relaxed);
        for (r, i) in self.ingest_resolved(&resolved, sync).into_iter().zip(at) {
            results[i] = r;
        }
        results
    }

    /// Stores points whose series are known; the result per point is `Ok`
    /// or the error text. Points are applied per series in time order (a
    /// batch may list them in any order). A point not after its series'
    /// last update is refused, unless it is one of the series' recently
    /// stored points with the same value: collectors resend whole batches
    /// after any failure, and a resent point is reported as stored. With
    /// `sync`, the touched databases are written to disk before returning.
    pub fn ingest_resolved(&self, points: &[Resolved], sync: bool) -> Vec<Result<(), String>> {
        let mut results: Vec<Result<(), String>> = vec![Ok(()); points.len()];
        let mut order: Vec<usize> = (0..points.len()).collect();
        order.sort_by_key(|i| (Arc::as_ptr(&points[*i].series) as usize, points[*i].timestamp_ms, *i));
        let mut run_start = 0;
        // Counted here and added once per batch: shared counters bumped per
        // point would bounce their cache line between the writing threads.
        let mut tally = Tally::default();
        let mut accepted = Vec::new();
        while let Some(first) = order.get(run_start) {
            let series = &points[*first].series;
            let run = order[run_start..].iter().take_while(|i| Arc::ptr_eq(&points[**i].series, series)).count();
            self.apply_run(series, &order[run_start..run_start + run], points, &mut results, sync, &mut tally, &mut accepted);
            run_start += run;
        }
        self.counters.points_duplicate.fetch_add(tally.duplicate, Ordering::Relaxed);
        self.counters.points_too_old.fetch_add(tally.too_old, Ordering::Relaxed);
        self.counters.points_stored.fetch_add(tally.stored, Ordering::Relaxed);
        let stored = results.iter().filter(|r| r.is_ok()).count() as u64;
        self.counters.points_received.fetch_add(points.len() as u64, Ordering::Relaxed);
        self.counters.points_rejected.fetch_add(points.len() as u64 - stored, Ordering::Relaxed);
        results
    }

    /// Applies one series' points (sorted by time). `accepted` is scratch space.
    #[expect(clippy::too_many_arguments, reason = "the batch's shared state, passed down to avoid per-run allocations")]
    fn apply_run(
        &self,
        series: &Series,
        run: &[usize],
        points: &[Resolved],
        results: &mut [Result<(), String>],
        sync: bool,
        tally: &mut Tally,
        accepted: &mut Vec<(usize, Timestamp, f64)>,
    ) {
        let Some(first) = run.first() else { return };
        let create_at = store_time(points[*first].timestamp_ms);
        let outcome = self.store.with_handle(&series.handle, Some(create_at), |db| {
            let last = db.last_update();
            accepted.clear();
            let (mut dup, mut old) = (0u64, 0u64);
            for (k, i) in run.iter().enumerate() {
                let p = &points[*i];
                let t = store_time(p.timestamp_ms);
                let v = p.value.as_f64();
                // Of several points at one time in a batch, the last sent wins.
                let superseded = run.get(k + 1).is_some_and(|j| points[*j].timestamp_ms == p.timestamp_ms);
                if superseded || (t <= last && series.stored_recently(p.timestamp_ms, v)) {
                    dup += 1;
                } else if t <= last {
                    old += 1;
                    results[*i] = Err(format!(
                        "point at {} is not after the series' last update {} (round-robin series only move forward)",
                        show_time(t),
                        show_time(last)
                    ));
                } else {
                    accepted.push((*i, t, v));
                }
            }
            let applied = db.update_points(accepted.iter().map(|(_, t, v)| (*t, *v)), |k, e| {
                if let Some((i, _, _)) = accepted.get(k) {
                    results[*i] = Err(e.to_string());
                }
            });
            for (i, _, v) in accepted.iter().filter(|(i, _, _)| results[*i].is_ok()) {
                series.stored(points[*i].timestamp_ms, *v);
            }
            if sync && applied > 0 {
                db.flush()?;
            }
            tally.duplicate += dup;
            tally.too_old += old;
            tally.stored += applied as u64;
            Ok::<(), rrdcore::Error>(())
        });
        if let Err(e) = outcome.and_then(|r| r) {
            let msg = e.to_string();
            tracing::error!(series = %series.key, error = %msg, "storing points failed");
            for i in run {
                if results[*i].is_ok() {
                    results[*i] = Err(msg.clone());
                }
            }
        }
    }
}

fn show_time(t: Timestamp) -> String {
    if t.usec == 0 { t.sec.to_string() } else { format!("{}.{:03}", t.sec, t.usec / 1000) }
}
