//! The write path: how a point becomes stored, and stays stored through a
//! crash. Every rule is here; `docs/journal.md` has the file format, the
//! design and every crash case.
//!
//! ```text
//! put / telnet / perfdata
//!   -> Ingest::ingest: under the journal's append lock, each point is
//!      decided by the series window (admission, then judgement: accepted,
//!      a resend, or refused) and the accepted ones are held in their
//!      series' window and appended to the journal as one block
//!   -> [sync: wait for the fdatasync covering the block] -> the answer
//! writer threads (apply): held points reach their database once they
//!   waited the window (or the series is read, or holds too many)
//! checkpoint: rotate the journal, apply every held point, flush every
//!   database, delete the old segments
//! startup (recovery): every point of the remaining segments is decided by
//!   the same window again, applied, flushed; then the segments go
//! ```
//!
//! The rules:
//!
//! 1. **Decided before answered.** Everything that could refuse a point is
//!    checked before the answer ([`window`]); a point is journaled only
//!    when it is accepted, and a refused point is never journaled.
//! 2. **One order.** Deciding and appending happen under one lock, so the
//!    journal lists the accepted points in the order they were decided, and
//!    a series is never decided by two batches at once.
//! 3. **Nothing acknowledged is dropped.** A point that cannot be applied
//!    for a reason of the disk (full, I/O error) stays held and is retried;
//!    one its database refuses anyway (a file replaced underneath, a schema
//!    changed by the configuration) is set aside to `.journal/aside.wal-aside`
//!    with the reason, never discarded.
//! 4. **Replay equals live.** Replay decides journaled points with the same
//!    window: a point at or before its database's last update is already
//!    stored, one after it is applied.
//! 5. **Fail-stop.** A failed fsync or msync is never retried: the journal
//!    (or the store) takes nothing more, puts get 503, no journal segment
//!    is deleted, and the next start replays what reached the disk.
//! 6. **Rows before state.** A database's live state reaches its file only
//!    at a checkpoint, after its rows are synced ([`rrdcore::Rrd::checkpoint`]),
//!    so after a power cut no file claims rows it lacks, whatever order the
//!    kernel wrote pages in, and replay from the kept segments rewrites
//!    every later row.

pub mod aside;
pub mod apply;
pub mod checkpoint;
pub mod journal;
pub mod recovery;
pub mod window;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use self::apply::{MAX_HELD, Writers};
use self::journal::{Durability, Journal, JournalError};
use super::app::{App, Resolved};
use super::index::{Memory, Series};

/// Why one point was refused (the text is OpenTSDB's per-point error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PointError {
    /// Not after the series' last update, and not a resend.
    #[error("point at {time} is not after the series' last update {last} (round-robin series only move forward)")]
    TooOld {
        /// The point's time.
        time: String,
        /// The series' last update.
        last: String,
    },
    /// A different value is already accepted at that time.
    #[error("a different value at {time} is already accepted for this series")]
    Conflict {
        /// The point's time.
        time: String,
    },
    /// A time the series' database cannot hold.
    #[error("{0}")]
    Time(String),
    /// A value the series' data source cannot take.
    #[error("{0}")]
    Value(String),
    /// The series' database cannot take points of this kind.
    #[error("{0}")]
    Schema(String),
    /// The series cannot be named or stored (its name, or its database).
    #[error("{0}")]
    Series(String),
}

/// Why a batch was not taken: nothing of it is stored; the client should
/// retry (503).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The write queue is full.
    #[error("the write queue is full; retry later")]
    Busy,
    /// The journal could not be written or synced.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// A database could not be read to decide the points (I/O error).
    #[error("storing points failed: {0}")]
    Storage(String),
    /// A sync failed earlier (fail-stop): no writes until a restart.
    #[error("{0}")]
    Failed(String),
    /// The server is stopping.
    #[error("the server is stopping")]
    Stopping,
}

/// What the write path holds: the journal, the writer threads, the series
/// with held points, the set-aside file and the fail-stop flag.
#[derive(Debug)]
pub struct WritePath {
    /// The write-ahead journal (none with `durability = "none"`).
    pub journal: Option<Journal>,
    /// Decisions are made under this lock when there is no journal (the
    /// journal's append lock otherwise).
    order: Mutex<()>,
    /// The writer threads.
    pub writers: Writers,
    /// Series with points held in the reorder window.
    pub(crate) held_list: Mutex<Vec<Arc<Series>>>,
    /// Where points that cannot be applied are kept.
    pub aside: aside::Aside,
    /// Why the server stopped taking writes (a failed sync), once it has.
    failed: Mutex<Option<String>>,
}

impl WritePath {
    /// The write path over `journal`, with room for `max_queued` held points.
    pub fn new(journal: Option<Journal>, max_queued: usize, aside: aside::Aside) -> WritePath {
        WritePath { journal, order: Mutex::default(), writers: Writers::new(max_queued), held_list: Mutex::default(), aside, failed: Mutex::default() }
    }

    /// Why writes are refused, once a sync failed (fail-stop).
    pub fn failure(&self) -> Option<String> {
        if let Some(f) = self.failed.lock().unwrap_or_else(PoisonError::into_inner).clone() {
            return Some(f);
        }
        self.journal.as_ref().and_then(Journal::failure)
    }

    /// Stops taking writes for good (a sync failed): logged once.
    pub fn fail(&self, why: &str) {
        let mut f = self.failed.lock().unwrap_or_else(PoisonError::into_inner);
        if f.is_none() {
            tracing::error!(error = %why, "a sync failed: the server takes no more writes and deletes no journal segment; restart it to recover from the journal");
            *f = Some(why.to_owned());
        }
    }

    /// Puts a series with held points on the list the releaser goes over.
    pub(crate) fn list_if_held(&self, series: &Arc<Series>, mem: &mut Memory) {
        series.held_tail.store(mem.held_tail(), Ordering::Relaxed);
        if !mem.held.is_empty() && !mem.listed {
            mem.listed = true;
            self.held_list.lock().unwrap_or_else(PoisonError::into_inner).push(Arc::clone(series));
        }
    }
}

/// The lock decisions are made under, with the journal's batch when there
/// is a journal.
enum Sequencer<'a> {
    Journal(journal::Append<'a>),
    Plain(#[expect(dead_code, reason = "held for its lock")] MutexGuard<'a, ()>),
}

impl Sequencer<'_> {
    fn point(&mut self, series: &Series, ms: u64, value: f64) {
        if let Sequencer::Journal(a) = self {
            a.point(series, ms, value);
        }
    }

    fn commit(self) -> Result<Option<u64>, JournalError> {
        match self {
            Sequencer::Journal(a) => a.commit(),
            Sequencer::Plain(_) => Ok(None),
        }
    }
}

/// One series' share of a batch while it is decided: its memory stays
/// locked until the batch is written, and the points it held (a range of
/// the batch's list, so no series allocates) are kept to take back should
/// the write fail.
struct Locked<'a> {
    series: &'a Arc<Series>,
    mem: MutexGuard<'a, Memory>,
    held: std::ops::Range<usize>,
}

/// The counts of one batch's decisions.
#[derive(Debug, Default)]
struct Counts {
    accepted: u64,
    resent: u64,
    too_old: u64,
    refused: u64,
}

impl App {
    /// Stores points whose series are known; the result per point is `Ok`
    /// or why it was refused. Each point is decided by the series window
    /// (see [`window`]) and the accepted ones are journaled; the answer
    /// comes once the journal holds them (and, under `durability = "sync"`
    /// or with `sync`, once it is on disk). An `Err` means nothing of the
    /// batch is stored: retry it.
    pub fn ingest_resolved(&self, points: &[Resolved], sync: bool) -> Result<Vec<Result<(), PointError>>, IngestError> {
        if points.is_empty() {
            return Ok(Vec::new());
        }
        let w = &self.write;
        if let Some(why) = w.failure() {
            return Err(IngestError::Failed(format!("the server takes no writes since a sync failed ({why}); restart it")));
        }
        let n = points.len();
        if !w.writers.reserve(n) {
            self.counters.queue_refused.fetch_add(n as u64, Ordering::Relaxed);
            return Err(IngestError::Busy);
        }
        let decided = self.decide_and_append(points);
        let (results, counts, position, release) = match decided {
            Ok(d) => d,
            Err(e) => {
                w.writers.unreserve(n as u64);
                return Err(e);
            }
        };
        w.writers.unreserve(n as u64 - counts.accepted);
        let c = &self.counters;
        c.points_received.fetch_add(n as u64, Ordering::Relaxed);
        c.points_rejected.fetch_add(counts.refused + counts.too_old, Ordering::Relaxed);
        c.points_too_old.fetch_add(counts.too_old, Ordering::Relaxed);
        c.points_duplicate.fetch_add(counts.resent, Ordering::Relaxed);
        if !release.is_empty() {
            w.writers.release_later(release);
        }
        if let (Some(j), Some(pos)) = (&w.journal, position)
            && (sync || j.policy() == Durability::Sync)
        {
            j.wait_synced(pos)?;
        }
        Ok(results)
    }

    /// Loads what deciding needs of each series of the batch, then decides
    /// and appends under the journal's lock (see the module documentation).
    /// The answers, counts, journal end position and the series whose held
    /// points should be applied now.
    #[expect(clippy::type_complexity, reason = "one private return")]
    fn decide_and_append(&self, points: &[Resolved]) -> Result<(Vec<Result<(), PointError>>, Counts, Option<u64>, Vec<Arc<Series>>), IngestError> {
        let w = &self.write;
        // Per series, by time, in the order sent among equal times.
        let mut order: Vec<u32> = (0..u32::try_from(points.len()).unwrap_or(u32::MAX)).collect();
        let at = |i: u32| points.get(i as usize);
        order.sort_unstable_by_key(|&i| at(i).map(|p| (Arc::as_ptr(&p.series) as usize, p.timestamp_ms, i)));
        let runs: Vec<&[u32]> = order.chunk_by(|a, b| at(*a).zip(at(*b)).is_some_and(|(x, y)| Arc::ptr_eq(&x.series, &y.series))).collect();
        let cx = self.apply_context();
        let mut results: Vec<Result<(), PointError>> = vec![Ok(()); points.len()];
        for run in &runs {
            let Some(p) = run.first().and_then(|&i| at(i)).filter(|p| !p.series.loaded.load(Ordering::Acquire)) else { continue };
            if let Err(e) = apply::load(&cx, &p.series, &mut p.series.memory()) {
                match e {
                    apply::LoadError::Series(why) => run.iter().for_each(|&i| results[i as usize] = Err(PointError::Series(why.clone()))),
                    apply::LoadError::Storage(why) => return Err(IngestError::Storage(why)),
                }
            }
        }
        let now = self.clock_ms();
        let window_now = self.config.reorder_window_ms == 0;
        let mut counts = Counts::default();
        let mut release = Vec::new();
        let mut seq = match &w.journal {
            Some(j) => Sequencer::Journal(j.begin()?),
            None => Sequencer::Plain(w.order.lock().unwrap_or_else(PoisonError::into_inner)),
        };
        let mut locked: Vec<Locked<'_>> = Vec::with_capacity(runs.len());
        let mut held: Vec<(u64, f64)> = Vec::with_capacity(points.len());
        for run in &runs {
            let Some(first) = run.first().and_then(|&i| at(i)) else { continue };
            if results.get(run[0] as usize).is_some_and(Result::is_err) {
                counts.refused += run.len() as u64;
                continue;
            }
            let mut l = Locked { series: &first.series, mem: first.series.memory(), held: held.len()..held.len() };
            decide_run(self, &mut l, run, points, now, &mut results, &mut counts, &mut seq, &mut held);
            if !l.held.is_empty() {
                w.list_if_held(l.series, &mut l.mem);
                if window_now || l.mem.held.len() > MAX_HELD {
                    release.push(Arc::clone(l.series));
                }
            }
            locked.push(l);
        }
        match seq.commit() {
            Ok(position) => {
                for l in &mut locked {
                    for &(ms, v) in held.get(l.held.clone()).unwrap_or_default() {
                        l.mem.observe(ms, v);
                    }
                }
                Ok((results, counts, position, release))
            }
            Err(e) => {
                for l in &mut locked {
                    window::unhold(&mut l.mem, held.get(l.held.clone()).unwrap_or_default().iter().map(|h| h.0));
                }
                Err(e.into())
            }
        }
    }
}

/// Decides one series' points of a batch (`run`, indices into `points` in
/// time order), holding and journaling the accepted ones (and listing
/// them in `held`, whose end `l.held` follows).
#[expect(clippy::too_many_arguments, reason = "the batch's shared state, threaded through one loop")]
fn decide_run(
    app: &App,
    l: &mut Locked<'_>,
    run: &[u32],
    points: &[Resolved],
    now: u64,
    results: &mut [Result<(), PointError>],
    counts: &mut Counts,
    seq: &mut Sequencer<'_>,
    held: &mut Vec<(u64, f64)>,
) {
    // Read only when a time needs it (a new database's earliest start):
    // the store's entry is one more cache line per series.
    let exists = || app.store.exists(&l.series.handle);
    // Taken out while the window changes, and put back: no copy per batch.
    let admit = l.mem.admit.take();
    let mut k = 0;
    while let Some(&i) = run.get(k) {
        // The points of this batch at this time: the last one sent is judged.
        let Some(p) = points.get(i as usize) else { break };
        let same = run.get(k..).unwrap_or_default().iter().take_while(|&&j| points.get(j as usize).is_some_and(|q| q.timestamp_ms == p.timestamp_ms)).count();
        let group = run.get(k..k + same).unwrap_or_default();
        k += same;
        let Some(&last) = group.last() else { continue };
        let Some(winner) = points.get(last as usize) else { continue };
        let (ms, value) = (winner.timestamp_ms, winner.value.as_f64());
        let verdict = if l.series.name_too_long {
            let text_len = l.series.text_len();
            Err(PointError::Series(format!("the series name is {text_len} bytes, over the limit of {}", journal::format::MAX_SERIES_TEXT)))
        } else {
            match &admit {
                Some(a) => a.check(exists, ms, value).map(|()| window::judge(&l.mem, ms, value)),
                None => Err(PointError::Series("the series' database could not be read".into())),
            }
        };
        let answer = match verdict {
            Ok(window::Verdict::Accept(place)) => {
                window::hold(&mut l.mem, place, ms, value, now);
                seq.point(l.series, ms, value);
                held.push((ms, value));
                l.held.end = held.len();
                counts.accepted += 1;
                counts.resent += same as u64 - 1;
                Ok(())
            }
            Ok(v @ window::Verdict::Resend) => {
                counts.resent += same as u64;
                v.answer(ms)
            }
            Ok(v @ window::Verdict::TooOld(_)) => {
                counts.too_old += same as u64;
                v.answer(ms)
            }
            Ok(v) => {
                counts.refused += same as u64;
                v.answer(ms)
            }
            Err(e) => {
                counts.refused += same as u64;
                Err(e)
            }
        };
        for &j in group {
            if let Some(r) = results.get_mut(j as usize) {
                *r = answer.clone();
            }
        }
    }    l.mem.admit = admit;
}

/// A store time as text: seconds, with milliseconds when there are some.
pub fn show_time(t: rrdcore::Timestamp) -> String {
    if t.usec == 0 { t.sec.to_string() } else { format!("{}.{:03}", t.sec, t.usec / 1000) }
}
