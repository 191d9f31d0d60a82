//! Startup recovery: the journal segments a previous run left (it stopped
//! before checkpointing them) are decided again by the series window, in
//! journal order, applied, flushed, then removed.
//!
//! * Same rule as live ([`super::window`]): a journaled point at or before
//!   its database's last update is already stored and skipped; one after
//!   it is applied. Replaying twice (a crash during replay) changes nothing.
//! * No single series stops the start: a series whose name cannot be
//!   stored, whose database cannot be opened or created, or whose points
//!   it cannot take has its points set aside ([`super::aside`]) and
//!   reported; everything else is replayed. A disk failure (full, I/O
//!   error) does stop the start, keeping the journal, rather than serve
//!   without those points.
//! * The work is proportional to the unapplied journal: no database is
//!   opened unless the journal has points for it.
//! * A damaged stretch of a segment is reported (file, offset, bytes,
//!   reason) and skipped; the segment is kept as `<seq>.wal-damaged`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::super::index::{Index, Series, parse_canonical};
use super::apply::{self, Ctx, Due, Tally};
use super::journal::format::{Record, read_segment};
use super::journal::{self, DIR};
use super::window::{self, Verdict};

/// Extension a damaged segment is renamed to.
pub const DAMAGED: &str = "wal-damaged";

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> rrdcore::Error {
    let path = path.to_path_buf();
    move |source| rrdcore::Error::Io { op, path, source }
}

/// What a replay did.
#[derive(Debug, Default)]
pub struct Replayed {
    /// The highest segment number seen (new segments are numbered after it).
    pub last_seq: u64,
    /// Points applied.
    pub applied: u64,
    /// Points set aside.
    pub set_aside: u64,
}

/// A series and its journaled points, (ms, value), in journal order.
type SeriesPoints = (Arc<Series>, Vec<(u64, f64)>);

/// Replays every segment in `DATA/.journal`.
pub fn replay(cx: &Ctx<'_>, index: &Index) -> Result<Replayed, rrdcore::Error> {
    let dir = cx.store.dir().join(DIR);
    let segments = journal::segments(&dir).map_err(io("read directory", &dir))?;
    let mut out = Replayed { last_seq: highest_seq(&dir), ..Replayed::default() };
    let mut damaged = Vec::new();
    let mut touched: HashMap<usize, Arc<Series>> = HashMap::new();
    for (seq, path) in &segments {
        out.last_seq = out.last_seq.max(*seq);
        if replay_segment(cx, index, path, &mut touched, &mut out)? {
            damaged.push(path.clone());
        }
    }
    if segments.is_empty() {
        return Ok(out);
    }
    let mut tally = Tally::default();
    for series in touched.values() {
        let mut mem = series.memory();
        apply::release(cx, series, &mut mem, Due::All, &mut tally).map_err(|reason| rrdcore::Error::Unavailable { key: series.key.to_string(), reason })?;
    }
    out.applied = tally.stored;
    out.set_aside += tally.set_aside;
    cx.store.flush()?;
    for path in &damaged {
        let aside = path.with_extension(DAMAGED);
        std::fs::rename(path, &aside).map_err(io("rename", path))?;
    }
    for (_, path) in &segments {
        if path.exists() {
            std::fs::remove_file(path).map_err(io("remove", path))?;
        }
    }
    rrdcore::sync::dir(&dir).map_err(io("fsync", &dir))?;
    tracing::info!(segments = segments.len(), points = out.applied, set_aside = out.set_aside, "journal replayed");
    Ok(out)
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

/// Decides one segment's points; whether the segment is damaged (to be
/// kept aside once its intact points are stored).
fn replay_segment(cx: &Ctx<'_>, index: &Index, path: &Path, touched: &mut HashMap<usize, Arc<Series>>, out: &mut Replayed) -> Result<bool, rrdcore::Error> {
    let bytes = std::fs::read(path).map_err(io("read", path))?;
    let mut ids: HashMap<u64, Result<Arc<Series>, String>> = HashMap::new();
    let mut points: Vec<SeriesPoints> = Vec::new();
    let mut at: HashMap<usize, usize> = HashMap::new();
    let mut unnamed: HashMap<String, Vec<(u64, f64)>> = HashMap::new();
    let mut orphans = 0u64;
    let scanned = read_segment(&bytes, |r| match r {
        Record::Define { id, text, counter } => {
            let s = index.get_or_insert(cx.store, text, || parse_canonical(text).ok_or_else(|| format!("bad series text {text:?}")));
            if let Ok(s) = &s
                && counter
            {
                s.counter.store(true, Ordering::Relaxed);
            }
            ids.insert(id, s.map_err(|e| format!("{text}: {e}")));
        }
        Record::Point { id, ms, value } => match ids.get(&id) {
            Some(Ok(s)) => {
                let k = *at.entry(Arc::as_ptr(s) as usize).or_insert_with(|| {
                    points.push((Arc::clone(s), Vec::new()));
                    points.len() - 1
                });
                if let Some(p) = points.get_mut(k) {
                    p.1.push((ms, value));
                }
            }
            Some(Err(why)) => unnamed.entry(why.clone()).or_default().push((ms, value)),
            None => orphans += 1,
        },
    });
    let scan = match scanned {
        Ok(scan) => scan,
        Err(reason) => {
            tracing::error!(file = %path.display(), %reason, "journal segment unreadable; kept aside");
            return Ok(true);
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
    for (why, pts) in unnamed {
        // Kept in the segment, which stays as damaged: no series can hold them.
        damaged = true;
        tracing::error!(file = %path.display(), points = pts.len(), reason = %why, "journal points of a series that cannot be named; kept in the damaged segment");
    }
    for (series, pts) in points {
        decide(cx, &series, &pts, out)?;
        touched.entry(Arc::as_ptr(&series) as usize).or_insert(series);
    }
    Ok(damaged)
}

/// Decides one series' journaled points with the window, holding the
/// accepted ones; points its database cannot take are set aside.
fn decide(cx: &Ctx<'_>, series: &Series, pts: &[(u64, f64)], out: &mut Replayed) -> Result<(), rrdcore::Error> {
    let mut mem = series.memory();
    let mut aside: Vec<(u64, f64)> = Vec::new();
    let mut why = String::new();
    match apply::load(cx, series, &mut mem) {
        Ok(()) => {}
        Err(apply::LoadError::Series(e)) => {
            aside.extend_from_slice(pts);
            why = e;
        }
        Err(apply::LoadError::Storage(reason)) => return Err(rrdcore::Error::Unavailable { key: series.key.to_string(), reason }),
    }
    if let Some(admit) = mem.admit.clone().filter(|_| aside.is_empty()) {
        let exists = cx.store.exists(&series.handle);
        for &(ms, value) in pts {
            if let Err(e) = admit.check(|| exists, ms, value) {
                why = e.to_string();
                aside.push((ms, value));
                continue;
            }
            // At or before the last update: already stored; a resend or a
            // conflicting value at a held time: only the first counts.
            if let Verdict::Accept(place) = window::judge(&mem, ms, value) {
                window::hold(&mut mem, place, ms, value, 0);
            }
        }
    }
    if !aside.is_empty() {
        cx.aside.put(series, &aside, &why).map_err(io("write", cx.aside.path()))?;
        out.set_aside += aside.len() as u64;
    }
    Ok(())
}
