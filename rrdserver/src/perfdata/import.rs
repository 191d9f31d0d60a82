//! Importing perfdata spool files into the store, through the server's
//! journaled write path ([`App::ingest_resolved`] with `sync`).
//!
//! * Each value becomes a point of series `<label>{host=<host>,service=<service>}`
//!   (names made OpenTSDB-safe with [`super::opentsdb_name`]), at the
//!   check's time, stored as given; `U` is stored as unknown.
//! * The unit is kept as the metric's Bosun metadata (`unit`); a `c` value
//!   marks its series a counter, whose database is created with COUNTER
//!   data sources.
//! * A bad line or item is reported as `file:line: reason` and skipped; a
//!   duplicate label on one line keeps the first.
//! * A file is deleted only once every value in it is in the journal on disk
//!   and taken by the writers; if storage fails, the file stays for the
//!   next try.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use crate::opentsdb::point::Value;
use crate::server::App;
use crate::server::app::{IngestError, Resolved};
use crate::server::bosun::meta::MetaWrite;
use crate::server::index::canonical;

use super::opentsdb_name;
use super::spool::parse_line;

/// What an import did.
#[derive(Debug, Default)]
pub struct Report {
    /// Spool files imported (and deleted).
    pub files: usize,
    /// Values stored (or recognised as already stored).
    pub values: u64,
    /// Lines and items skipped, as `file:line: reason`.
    pub skipped: Vec<String>,
    /// Values the store refused (older than their series' last update...).
    pub refused: Vec<String>,
    /// Files left in place because storing failed, with the reason.
    pub failed: Vec<String>,
}

impl Report {
    fn add(&mut self, other: Report) {
        self.files += other.files;
        self.values += other.values;
        self.skipped.extend(other.skipped);
        self.refused.extend(other.refused);
        self.failed.extend(other.failed);
    }
}

/// The spool files of `dir` (regular, not hidden), oldest name first;
/// with `settled`, only those not modified in the last second (a monitor
/// may still be writing the others).
pub fn spool_files(dir: &Path, settled: bool) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name();
        if name.to_string_lossy().starts_with('.') || !e.file_type()?.is_file() {
            continue;
        }
        if settled {
            let age = e.metadata()?.modified().ok().and_then(|m| SystemTime::now().duration_since(m).ok());
            if age.is_none_or(|a| a < Duration::from_secs(1)) {
                continue;
            }
        }
        out.push(e.path());
    }
    out.sort();
    Ok(out)
}

/// Imports every spool file in `dir` (see [`spool_files`]).
pub fn import_dir(app: &App, dir: &Path, settled: bool) -> Result<Report, String> {
    let files = spool_files(dir, settled).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut report = Report::default();
    for f in files {
        report.add(import_file(app, &f));
    }
    Ok(report)
}

/// Imports one spool file; deletes it when everything in it is stored.
pub fn import_file(app: &App, path: &Path) -> Report {
    let mut report = Report::default();
    let name = path.display().to_string();
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            report.failed.push(format!("{name}: {e}"));
            return report;
        }
    };
    let text = String::from_utf8_lossy(&bytes);
    // The values, and the line each came from.
    let mut points: Vec<Resolved> = Vec::new();
    let mut lines: Vec<usize> = Vec::new();
    let mut units: Vec<(String, String)> = Vec::new();
    let mut key = String::new();
    for (n, line) in text.split('\n').enumerate() {
        let line_no = n + 1;
        let check = match parse_line(line) {
            Ok(Some(c)) => c,
            Ok(None) => continue,
            Err(reason) => {
                report.skipped.push(format!("{name}:{line_no}: {reason}"));
                continue;
            }
        };
        let (host, service) = (opentsdb_name(check.host), opentsdb_name(check.service));
        let mut seen: Vec<String> = Vec::new();
        for item in super::parse(check.perfdata) {
            let item = match item {
                Ok(i) => i,
                Err(e) => {
                    report.skipped.push(format!("{name}:{line_no}: bad perfdata item {e}"));
                    continue;
                }
            };
            if seen.contains(&item.label) {
                report.skipped.push(format!("{name}:{line_no}: duplicate label {:?}; the first is kept", item.label));
                continue;
            }
            seen.push(item.label.clone());
            let metric = opentsdb_name(&item.label);
            canonical(&mut key, &metric, [("host", host.as_str()), ("service", service.as_str())]);
            let series = match app.index.get_or_insert(&app.store, &key, || rrdcore::SeriesKey::new(&metric, [("host", host.as_str()), ("service", service.as_str())]).map_err(|e| e.to_string())) {
                Ok(s) => s,
                Err(e) => {
                    report.skipped.push(format!("{name}:{line_no}: {:?}: {e}", item.label));
                    continue;
                }
            };
            if item.is_counter() {
                series.counter.store(true, Ordering::Relaxed);
            }
            if !item.unit.is_empty() && !units.iter().any(|(m, _)| *m == metric) {
                units.push((metric.clone(), item.unit.clone()));
            }
            let value = item.value.map_or(Value::Float(f64::NAN), Value::Float);
            points.push(Resolved { series, timestamp_ms: check.time * 1000, value });
            lines.push(line_no);
        }
    }
    if let Err(e) = store_units(app, &units) {
        report.failed.push(format!("{name}: storing units: {e}"));
        return report;
    }
    match store(app, &points) {
        Ok(results) => {
            for ((p, line), r) in points.iter().zip(&lines).zip(results) {
                match r {
                    Ok(()) => report.values += 1,
                    Err(e) => report.refused.push(format!("{name}:{line}: {}: {e}", p.series.key)),
                }
            }
        }
        Err(e) => {
            report.failed.push(format!("{name}: {e}; the file is kept for the next try"));
            return report;
        }
    }
    // Without a journal, durable means the databases are on disk.
    if app.write.journal.is_none()
        && let Err(e) = crate::server::checkpoint::checkpoint(app)
    {
        report.failed.push(format!("{name}: {e}; the file is kept for the next try"));
        return report;
    }
    match std::fs::remove_file(path) {
        Ok(()) => report.files += 1,
        Err(e) => report.failed.push(format!("{name}: stored, but cannot be removed: {e}")),
    }
    report
}

/// Units as metric metadata, where they changed.
fn store_units(app: &App, units: &[(String, String)]) -> Result<(), String> {
    let writes: Vec<MetaWrite> = units
        .iter()
        .filter(|(m, u)| app.meta.metric(m).is_none_or(|meta| meta.unit != *u))
        .map(|(m, u)| MetaWrite { metric: m.clone(), tags: Vec::new(), name: "unit".into(), value: u.clone() })
        .collect();
    if writes.is_empty() {
        return Ok(());
    }
    let now = i64::try_from(SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())).unwrap_or(0);
    app.meta.put(&writes, now)
}

/// Stores the values durably: journaled with `sync`, in batches, waiting
/// for room when the queue is full. The result per value.
fn store(app: &App, points: &[Resolved]) -> Result<Vec<Result<(), crate::server::app::PointError>>, IngestError> {
    const CHUNK: usize = 50_000;
    let mut out = Vec::with_capacity(points.len());
    for chunk in points.chunks(CHUNK) {
        out.extend(app.ingest_waiting(chunk, true)?);
    }
    Ok(out)
}

/// Starts the server's spool watcher: every `perfdata_poll_ms`, the files
/// of `dir` not modified in the last second are imported. Dropping the
/// returned sender stops it.
pub fn watch(app: &Arc<App>, dir: PathBuf) -> std::io::Result<(std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>)> {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let weak = Arc::downgrade(app);
    let poll = Duration::from_millis(app.config.perfdata_poll_ms);
    let thread = std::thread::Builder::new().name("perfdata-spool".into()).spawn(move || {
        loop {
            match rx.recv_timeout(poll) {
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
            }
            let Some(app) = weak.upgrade() else { return };
            match import_dir(&app, &dir, true) {
                Ok(r) => {
                    for line in r.skipped.iter().chain(&r.refused) {
                        tracing::warn!("perfdata: {line}");
                    }
                    for line in &r.failed {
                        tracing::error!("perfdata: {line}");
                    }
                    if r.files > 0 {
                        tracing::info!(files = r.files, values = r.values, "perfdata imported");
                    }
                }
                Err(e) => tracing::error!(error = %e, "perfdata spool unreadable"),
            }
        }
    })?;
    Ok((tx, thread))
}
