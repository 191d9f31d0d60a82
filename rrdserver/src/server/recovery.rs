//! Startup recovery: the journal segments a previous run left (it stopped
//! before checkpointing them) are applied to the databases, then removed.
//!
//! Replay is idempotent: per series, points are sorted by time (of equal
//! times the last appended wins) and those at or before the database's last
//! update are skipped, so replaying twice (a crash during replay) changes
//! nothing. The work is proportional to the unapplied journal: no database
//! is opened unless the journal has points for it. A damaged stretch of a
//! segment is reported (file, offset, bytes, reason) and skipped; the
//! segment is kept as `<seq>.wal-damaged` for a person to look at.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use rrdcore::{SchemaRules, Store};

use super::app::{Counters, store_time};
use super::index::{Index, Series, parse_canonical};
use super::journal::format::{Record, read_segment};
use super::journal::{self, DIR};
use super::writer::write_series;

/// Extension a damaged segment is renamed to.
pub const DAMAGED: &str = "wal-damaged";

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> rrdcore::Error {
    let path = path.to_path_buf();
    move |source| rrdcore::Error::Io { op, path, source }
}

/// A series and its journaled points, (ms, value), in append order.
type SeriesPoints = (Arc<Series>, Vec<(u64, f64)>);

/// Replays every segment in `DATA/journal`; returns the highest segment
/// number seen (new segments are numbered after it).
pub fn replay(store: &Store, index: &Index, counters: &Counters, rules: &SchemaRules) -> Result<u64, rrdcore::Error> {
    let dir = store.dir().join(DIR);
    let segments = journal::segments(&dir).map_err(io("read directory", &dir))?;
    let mut last_seq = highest_seq(&dir);
    let mut total = 0u64;
    for (seq, path) in &segments {
        last_seq = last_seq.max(*seq);
        total += replay_segment(store, index, rules, path)?;
    }
    if segments.is_empty() {
        return Ok(last_seq);
    }
    store.flush()?;
    for (_, path) in &segments {
        if path.exists() {
            std::fs::remove_file(path).map_err(io("remove", path))?;
        }
    }
    counters.points_replayed.fetch_add(total, Ordering::Relaxed);
    tracing::info!(segments = segments.len(), points = total, "journal replayed");
    Ok(last_seq)
}

/// The highest number among the journal's files, damaged ones included.
fn highest_seq(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.path().file_stem().and_then(|s| s.to_str()).and_then(|s| u64::from_str_radix(s, 16).ok()))
        .max()
        .unwrap_or(0)
}

/// Applies one segment; the number of points it applied.
fn replay_segment(store: &Store, index: &Index, rules: &SchemaRules, path: &Path) -> Result<u64, rrdcore::Error> {
    let bytes = std::fs::read(path).map_err(io("read", path))?;
    let mut ids: HashMap<u64, Arc<Series>> = HashMap::new();
    let mut points: HashMap<usize, SeriesPoints> = HashMap::new();
    let mut orphans = 0u64;
    let scanned = read_segment(&bytes, |r| match r {
        Record::Define { id, text, counter } => match index.get_or_insert(store, text, || parse_canonical(text).ok_or_else(|| format!("bad series text {text:?}"))) {
            Ok(s) => {
                if counter {
                    s.counter.store(true, Ordering::Relaxed);
                }
                ids.insert(id, s);
            }
            Err(e) => tracing::warn!(file = %path.display(), error = %e, "journal names a series that cannot be stored"),
        },
        Record::Point { id, ms, value } => match ids.get(&id) {
            Some(s) => points.entry(Arc::as_ptr(s) as usize).or_insert_with(|| (Arc::clone(s), Vec::new())).1.push((ms, value)),
            None => orphans += 1,
        },
    });
    let scan = match scanned {
        Ok(scan) => scan,
        Err(reason) => {
            tracing::error!(file = %path.display(), %reason, "journal segment unreadable; kept aside");
            keep_aside(path)?;
            return Ok(0);
        }
    };
    let mut damaged = false;
    for d in &scan.damage {
        if d.torn_tail {
            tracing::info!(file = %path.display(), offset = d.offset, bytes = d.skipped, reason = %d.reason, "journal ends in a write cut short (never acknowledged); ignored");
        } else {
            damaged = true;
            tracing::error!(file = %path.display(), offset = d.offset, bytes = d.skipped, reason = %d.reason, "damaged journal block skipped");
        }
    }
    if orphans > 0 {
        damaged = true;
        tracing::error!(file = %path.display(), points = orphans, "journal points whose series definition was damaged; skipped");
    }
    let mut applied = 0u64;
    for (series, mut pts) in points.into_values() {
        applied += apply(store, rules, &series, &mut pts)?;
    }
    if damaged {
        keep_aside(path)?;
    }
    Ok(applied)
}

/// Applies one series' points: sorted, the last of equal times kept,
/// those not after the database's last update skipped.
fn apply(store: &Store, rules: &SchemaRules, series: &Series, pts: &mut Vec<(u64, f64)>) -> Result<u64, rrdcore::Error> {
    // A stable sort keeps the append order among equal times; the last is
    // moved into the place of the first and the others dropped.
    pts.sort_by_key(|p| p.0);
    pts.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            *kept = *later;
        }
        same
    });
    let Some(first) = pts.first() else { return Ok(0) };
    let mut refused = 0u64;
    let applied = write_series(store, rules, series, store_time(first.0), |db| {
        let last = db.last_update();
        db.update_points(pts.iter().map(|(ms, v)| (store_time(*ms), *v)).filter(|(t, _)| *t > last), |_, _| refused += 1)
    })?;
    if refused > 0 {
        tracing::warn!(series = %series.key, points = refused, "journal points refused by their database during replay");
    }
    Ok(applied as u64)
}

/// Renames a damaged segment so it is kept but not replayed again.
fn keep_aside(path: &Path) -> Result<(), rrdcore::Error> {
    let aside = path.with_extension(DAMAGED);
    std::fs::rename(path, &aside).map_err(io("rename", path))
}
