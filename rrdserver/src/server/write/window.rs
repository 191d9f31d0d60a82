//! The series window: the one rule for what a series keeps. The live path
//! (`App::ingest_resolved`) decides every point with it before the point is
//! journaled or answered, and replay ([`super::recovery`]) decides every
//! journaled point with it again, so a restart keeps exactly what the
//! running server acknowledged.
//!
//! For one point of a series, in this order:
//!
//! 1. **Admission** (`Admit::check`): what the series' database could
//!    refuse later is refused now. A time beyond 2^52 s; for a series with
//!    no database yet, a time its database cannot start before (1980 plus
//!    half a step); a value its data source cannot take (a fractional or
//!    negative COUNTER reading, say); a database with more than one data
//!    source.
//! 2. **Judgement** (`judge`) against the database's last update and the
//!    points held in the window:
//!    * after the last update, at a time nothing is held at: **accepted**,
//!      held in time order until it has waited `reorder_window_ms`;
//!    * at a held time with the same value, or at or before the last update
//!      with the value of one of the last points stored: a **resend**,
//!      acknowledged and not stored again;
//!    * at a held time with a different value: **refused** (the first
//!      accepted value stays);
//!    * otherwise at or before the last update: **refused** as too old (an
//!      RRD only moves forward).
//! 3. Of several points of one batch at one time, the last one sent is
//!    judged; the earlier ones share its answer (they are overwritten).
//!
//! Every accepted point is after every point applied when it was accepted,
//! and held points are applied as a time-ordered prefix, so the points a
//! database holds are exactly the accepted points at or before its last
//! update. Replay relies on this: a journaled point at or before the last
//! update is already stored, one after it is held again, and nothing a
//! database refuses can have been acknowledged.

use rrdcore::{DataSource, Error as CoreError, MAX_TIME, MIN_START, Schema, Timestamp};

use super::super::app::store_time;
use super::super::index::{Held, Memory};
use super::show_time;
use super::PointError;

/// What admission needs to know of a series' database (its own schema, or
/// the one it will be created with).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Admit {
    /// The first data source.
    ds: DataSource,
    /// How many data sources the database has.
    ds_count: usize,
    /// Half the base step, rounded up: a new database starts this long
    /// before its first point.
    half_step: i64,
}

impl Admit {
    /// Admission for a database of `schema`.
    pub(crate) fn of(schema: &Schema) -> Admit {
        let ds = schema.data_sources.first().cloned().unwrap_or_else(|| DataSource::new("value", rrdcore::DsType::Gauge, 1));
        let half_step = i64::try_from(schema.step.div_ceil(2)).unwrap_or(i64::MAX).max(1);
        Admit { ds, ds_count: schema.data_sources.len(), half_step }
    }

    /// Whether the series' database can take a point at `ms` with `value`;
    /// `exists`: whether the database exists (else it will be created for
    /// it), asked only for a time near the earliest a database can start.
    pub(crate) fn check(&self, exists: impl Fn() -> bool, ms: u64, value: f64) -> Result<(), PointError> {
        if self.ds_count != 1 {
            return Err(PointError::Schema(format!("the series' database has {} data sources; a point carries one value", self.ds_count)));
        }
        let t = store_time(ms);
        if t.sec > MAX_TIME {
            return Err(PointError::Time(format!("time {} is beyond the latest an RRD can hold (2^52 seconds)", show_time(t))));
        }
        if t.sec.saturating_sub(self.half_step) < MIN_START && !exists() {
            return Err(PointError::Time(format!("time {} is before the earliest a new series can start (1980 plus half a step)", show_time(t))));
        }
        self.ds.check_value(value).map_err(|e| PointError::Value(value_reason(&e)))
    }
}

/// The text of a value refusal.
fn value_reason(e: &CoreError) -> String {
    e.to_string()
}

/// How [`judge`] finds a point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Accepted: it is to be held at this place of the window.
    Accept(usize),
    /// A resend of a point held or recently stored: acknowledged, not stored again.
    Resend,
    /// Refused: a different value is held at its time.
    Conflict,
    /// Refused: not after the database's last update (given).
    TooOld(Timestamp),
}

impl Verdict {
    /// The answer to the point's sender.
    pub(crate) fn answer(self, ms: u64) -> Result<(), PointError> {
        match self {
            Verdict::Accept(_) | Verdict::Resend => Ok(()),
            Verdict::Conflict => Err(PointError::Conflict { time: show_time(store_time(ms)) }),
            Verdict::TooOld(last) => Err(PointError::TooOld { time: show_time(store_time(ms)), last: show_time(last) }),
        }
    }
}

/// Judges a point of the series whose memory is `mem` (see the module
/// documentation). Changes nothing.
pub(crate) fn judge(mem: &Memory, ms: u64, value: f64) -> Verdict {
    if let Some(last) = mem.applied.filter(|last| store_time(ms) <= *last) {
        return if mem.stored_recently(ms, value) { Verdict::Resend } else { Verdict::TooOld(last) };
    }
    // Points usually come in time order: after every held one.
    let place = match mem.held.last() {
        None => Err(0),
        Some(last) if last.ms < ms => Err(mem.held.len()),
        Some(_) => mem.held.binary_search_by(|h| h.ms.cmp(&ms)),
    };
    match place {
        Err(i) => Verdict::Accept(i),
        Ok(i) if mem.held.get(i).is_some_and(|h| h.value.to_bits() == value.to_bits()) => Verdict::Resend,
        Ok(_) => Verdict::Conflict,
    }
}

/// Holds an accepted point at `place` (from [`judge`]); `now` is the
/// server clock ([`super::super::App::clock_ms`]).
pub(crate) fn hold(mem: &mut Memory, place: usize, ms: u64, value: f64, now: u64) {
    mem.earliest = if mem.held.is_empty() { now } else { mem.earliest.min(now) };
    let place = place.min(mem.held.len());
    mem.held.insert(place, Held { ms, value, arrived: now });
}

/// Takes back points held by [`hold`] (a batch whose journal write failed;
/// nothing else saw them, since the series stayed locked).
pub(crate) fn unhold(mem: &mut Memory, times: impl Iterator<Item = u64>) {
    for ms in times {
        if let Ok(i) = mem.held.binary_search_by(|h| h.ms.cmp(&ms)) {
            mem.held.remove(i);
        }
    }
    mem.earliest = mem.held.iter().map(|h| h.arrived).min().unwrap_or(0);
}
