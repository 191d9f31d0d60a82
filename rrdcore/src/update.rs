//! The update algorithm: input to rates, rates to PDPs, PDPs to rows.
//!
//! A faithful implementation of `rrd-semantics.md` §3 (RRDtool 1.7.2),
//! including its quirks: the left-open-PDP split (§3.7), the one-short
//! counter wrap, the unknown-seconds rule. Operation order is kept exactly,
//! because the results must agree bit for bit.
//!
//! [`prepare`] validates an update and computes each data source's input
//! without changing anything, so a rejected update leaves the database
//! untouched; [`apply`] then moves the data sources' state and queues the
//! PDPs the update closes; [`settle`], after one update or a whole run of
//! them, feeds the queued PDPs to every archive and writes the finished rows
//! through a [`RowSink`].

use crate::state::DNAN;
use crate::error::{Error, Result};
use crate::number::{self, Parsed};
use crate::schema::{Archive, Cf, DataSource, DsType, Schema};
use crate::state::{CdpState, DsState, LastDs, State, Timestamp, cdp_initial};

/// Where [`settle`] writes finished rows.
pub(crate) trait RowSink {
    /// Stores `value` for data source `ds` in row `row` of archive `rra`.
    fn write(&mut self, rra: usize, row: u64, ds: usize, value: f64);
}

/// Per-update buffers, kept between updates to avoid allocation.
#[derive(Debug, Default, Clone)]
pub(crate) struct Scratch {
    pdp_new: Vec<f64>,
    part: Vec<f64>,
    pdp_temp: Vec<f64>,
    /// PDPs closed by [`apply`] and not yet consolidated (see [`settle`]).
    pending: Pending,
}

/// Closed PDPs waiting for [`settle`] to feed them to the archives.
#[derive(Debug, Default, Clone)]
struct Pending {
    /// Each close: how many identical PDPs, and the count of PDPs before them.
    closes: Vec<Close>,
    /// The PDP values of each close, one per data source, close after close.
    pdps: Vec<f64>,
}

/// One call of RRDtool's consolidation: `elapsed` identical PDPs, the first
/// of which follows PDP number `proc_pdp_cnt` (counted from the epoch).
#[derive(Debug, Clone, Copy)]
struct Close {
    elapsed: u64,
    proc_pdp_cnt: u64,
}

impl Scratch {
    /// Sizes the buffers for `n` data sources. Their contents need no reset:
    /// [`prepare`] writes every `pdp_new`, and `part` and `pdp_temp` are
    /// written before they are read.
    #[inline(always)]
    fn reset(&mut self, n: usize) {
        if self.pdp_new.len() != n {
            self.resize(n);
        }
    }

    #[cold]
    fn resize(&mut self, n: usize) {
        for v in [&mut self.pdp_new, &mut self.part, &mut self.pdp_temp] {
            v.clear();
            v.resize(n, DNAN);
        }
    }

    /// Drops queued PDPs without consolidating them.
    pub(crate) fn discard_pending(&mut self) {
        self.pending.closes.clear();
        self.pending.pdps.clear();
    }
}

impl Pending {
    /// Queues `elapsed` PDPs of the values `pdps`.
    #[inline(always)]
    fn push(&mut self, elapsed: u64, proc_pdp_cnt: u64, pdps: &[f64]) {
        self.closes.push(Close { elapsed, proc_pdp_cnt });
        // Value by value: for the usual one data source, a call to memcpy costs more.
        for &pdp in pdps {
            self.pdps.push(pdp);
        }
    }
}

/// Seconds between the last update and `time`, or the RRDtool error when
/// `time` is not after it.
#[inline(always)]
pub(crate) fn interval(last: Timestamp, time: Timestamp) -> Result<f64> {
    if time.sec > crate::state::MAX_TIME || time.usec >= 1_000_000 {
        return Err(Error::Time {
            value: time.to_string(),
            reason: "out of range (at most 2^52 seconds, microseconds below 1,000,000)",
        });
    }
    if time <= last {
        return Err(Error::TimeNotAfter {
            time: time.to_string(),
            last: last.to_string(),
        });
    }
    #[expect(clippy::cast_precision_loss, reason = "RRDtool computes the interval in f64")]
    let whole = time.sec.wrapping_sub(last.sec) as f64;
    Ok(whole + usec_secs(i64::from(time.usec) - i64::from(last.usec)))
}

/// Microseconds as seconds, as RRDtool computes them (`usec / 1e6`); whole
/// seconds, the usual case, skip the division (0 / 1e6 is exactly 0).
fn usec_secs(usec: i64) -> f64 {
    if usec == 0 {
        return 0.0;
    }
    #[expect(clippy::cast_precision_loss, reason = "|usec| < 1,000,000 is exact in f64")]
    let u = usec as f64;
    u / 1e6
}

/// Validates one update and fills `scratch.pdp_new` (rate x seconds per data
/// source, NaN for unknown). Changes nothing.
#[inline(always)]
pub(crate) fn prepare(
    schema: &Schema,
    state: &State,
    time: Timestamp,
    values: &[&str],
    exact: Option<&[f64]>,
    scratch: &mut Scratch,
) -> Result<f64> {
    if values.len() != schema.data_sources.len() {
        return Err(Error::ValueCount {
            expected: schema.data_sources.len(),
            got: values.len(),
        });
    }
    let interval = interval(state.last_update, time)?;
    scratch.reset(values.len());
    let inputs = schema.data_sources.iter().zip(&state.ds).zip(values).enumerate();
    for (slot, (i, ((ds, ds_state), text))) in scratch.pdp_new.iter_mut().zip(inputs) {
        let given = exact.and_then(|v| v.get(i)).copied();
        *slot = pdp_input(ds, ds_state, text, given, interval)?;
    }
    Ok(interval)
}

fn value_error(ds: &DataSource, text: &str, reason: &'static str) -> Error {
    Error::Value {
        ds: ds.name.clone(),
        kind: ds.kind.name(),
        value: text.to_owned(),
        reason,
    }
}

fn parse_value(ds: &DataSource, text: &str) -> Result<f64> {
    match number::parse(text) {
        Parsed::Number(v) => Ok(v),
        Parsed::Trailing(..) => Err(value_error(ds, text, "text after the number")),
        Parsed::Nothing => Err(value_error(ds, text, "cannot convert to a number")),
    }
}

/// One data source's input as rate x seconds (`rrd-semantics.md` §3.4).
/// `exact` is a typed value, used as given by GAUGE and ABSOLUTE instead of
/// re-reading `text` (its decimal form, kept as `last_ds`).
#[inline(always)]
fn pdp_input(ds: &DataSource, state: &DsState, text: &str, exact: Option<f64>, interval: f64) -> Result<f64> {
    #[expect(clippy::cast_precision_loss, reason = "RRDtool compares the heartbeat as f64")]
    let heartbeat = ds.heartbeat as f64;
    if text.as_bytes().first() == Some(&b'U') || heartbeat < interval {
        return Ok(DNAN);
    }
    let (pdp_new, rate) = match ds.kind {
        DsType::Gauge => {
            let x = exact.map_or_else(|| parse_value(ds, text), Ok)?;
            (x * interval, x)
        }
        DsType::Absolute => {
            let x = exact.map_or_else(|| parse_value(ds, text), Ok)?;
            (x, x / interval)
        }
        DsType::Counter | DsType::Derive => {
            let signed = ds.kind == DsType::Derive;
            let simple = text
                .bytes()
                .enumerate()
                .all(|(i, b)| b.is_ascii_digit() || (signed && i == 0 && b == b'-'));
            if !simple {
                let reason = if signed {
                    "not a simple signed integer"
                } else {
                    "not a simple unsigned integer"
                };
                return Err(value_error(ds, text, reason));
            }
            if state.last_ds.is_unknown() {
                return Ok(DNAN);
            }
            let mut d = number::counter_diff(text, state.last_ds.as_str());
            if ds.kind == DsType::Counter {
                if d < 0.0 {
                    d += 4_294_967_295.0;
                }
                if d < 0.0 {
                    d += 18_446_744_069_414_584_320.0;
                }
            }
            (d, d / interval)
        }
        DsType::DCounter | DsType::DDerive => {
            if state.last_ds.is_unknown() {
                return Ok(DNAN);
            }
            let x = parse_value(ds, text)?;
            let old = state.last_ds.as_str();
            let o = number::parse_full(old)
                .ok_or_else(|| value_error(ds, old, "the previous reading is not a number"))?;
            if ds.kind == DsType::DCounter && ((x > 0.0 && o > x) || (x < 0.0 && x > o)) {
                return Ok(DNAN);
            }
            let d = x - o;
            (d, d / interval)
        }
    };
    let out_of_range = !rate.is_nan()
        && (ds.max.is_some_and(|max| rate > max) || ds.min.is_some_and(|min| rate < min));
    Ok(if out_of_range { DNAN } else { pdp_new })
}

/// Applies an update that [`prepare`] accepted: moves the data sources' state
/// to `time` and queues the PDPs it closes in `scratch`, for [`settle`] to
/// feed to the archives (after one update, or after a run of them).
/// `values` become each data source's `last_ds`, unless they are `None`
/// (the caller then sets `last_ds` itself).
#[inline(always)]
pub(crate) fn apply(
    schema: &Schema,
    state: &mut State,
    time: Timestamp,
    interval: f64,
    values: Option<&[&str]>,
    scratch: &mut Scratch,
) {
    for (d, text) in state.ds.iter_mut().zip(values.unwrap_or_default()) {
        d.last_ds = LastDs::new(text);
    }
    #[expect(clippy::cast_possible_wrap, reason = "validated schemas keep step below i64::MAX")]
    let step = schema.step as i64;
    let last = state.last_update;
    // Each remainder once; the common crossings (0 or 1 PDP) without dividing.
    let time_rem = time.sec.rem_euclid(step);
    let proc_pdp_st = last.sec - last.sec.rem_euclid(step);
    let occu_pdp_st = time.sec - time_rem;
    let crossed = occu_pdp_st - proc_pdp_st;
    #[expect(clippy::cast_sign_loss, reason = "time is after last, so the difference is non-negative")]
    let mut elapsed = match crossed {
        0 => 0,
        d if d == step => 1,
        d => (d / step) as u64,
    };
    if elapsed == 0 {
        accumulate(state, interval, &scratch.pdp_new);
    } else {
        #[expect(clippy::cast_precision_loss, reason = "RRDtool's f64 arithmetic")]
        let mut pre_int = (occu_pdp_st - last.sec) as f64 - usec_secs(i64::from(last.usec));
        #[expect(clippy::cast_precision_loss, reason = "RRDtool's f64 arithmetic")]
        let post_int = time_rem as f64 + usec_secs(i64::from(time.usec));
        let mut interval = interval;
        #[expect(clippy::cast_sign_loss, reason = "times are after 1980")]
        let mut proc_pdp_cnt = (proc_pdp_st / step) as u64;
        let Scratch {
            pdp_new,
            part,
            pdp_temp,
            pending,
        } = scratch;
        if elapsed > 1 {
            #[expect(clippy::cast_possible_truncation, reason = "C's (long) cast of pre_int")]
            let sec_open = (pre_int.trunc() as i64).rem_euclid(step);
            if sec_open > 0 {
                #[expect(clippy::cast_precision_loss, reason = "sec_open < step")]
                let open = sec_open as f64;
                for (new, p) in pdp_new.iter_mut().zip(part.iter_mut()) {
                    *p = if !new.is_nan() && interval > 0.0 {
                        let share = *new * open / interval;
                        *new -= share;
                        share
                    } else {
                        DNAN
                    };
                }
                close(schema, state, open, open, 0.0, 1, part, pdp_temp);
                pending.push(1, proc_pdp_cnt, pdp_temp);
                interval -= open;
                pre_int -= open;
                elapsed -= 1;
                proc_pdp_cnt += 1;
            }
        }
        close(schema, state, interval, pre_int, post_int, elapsed, pdp_new, pdp_temp);
        pending.push(elapsed, proc_pdp_cnt, pdp_temp);
    }
    state.last_update = time;
}

/// C's `floor()` into an unsigned long, as RRDtool counts unknown seconds
/// (negative and NaN give 0). The cast alone is the same: for `x >= 0`
/// truncating is flooring, and every other `x` saturates to 0 either way.
/// (Without SSE4.1 in the baseline, `f64::floor` is a call into libm.)
fn floor_secs(x: f64) -> u64 {
    #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "the saturating cast is the point")]
    let secs = x as u64;
    secs
}

/// No PDP boundary crossed: add the input to the open PDP (§3.5).
fn accumulate(state: &mut State, interval: f64, pdp_new: &[f64]) {
    for (d, new) in state.ds.iter_mut().zip(pdp_new) {
        if new.is_nan() {
            let secs = floor_secs(interval);
            d.unknown_sec = d.unknown_sec.wrapping_add(secs);
        } else if d.pdp_value.is_nan() {
            d.pdp_value = *new;
        } else {
            d.pdp_value += *new;
        }
    }
}

/// Closes `n` PDPs: each data source's value goes to `pdp_temp`, and the open
/// PDP restarts with the part of the input after the last boundary (§3.6).
#[expect(clippy::too_many_arguments, reason = "mirrors RRDtool's process_pdp_st")]
#[inline(always)]
fn close(
    schema: &Schema,
    state: &mut State,
    interval: f64,
    pre_int: f64,
    post_int: f64,
    n: u64,
    pdp_new: &[f64],
    pdp_temp: &mut [f64],
) {
    #[expect(clippy::cast_precision_loss, reason = "RRDtool's f64 arithmetic")]
    let half_step = schema.step as f64 / 2.0;
    let span = n.wrapping_mul(schema.step);
    let rows = state.ds.iter_mut().zip(&schema.data_sources).zip(pdp_new).zip(pdp_temp);
    for (((d, def), &new), temp) in rows {
        let mut pre_unknown = 0.0;
        if new.is_nan() {
            pre_unknown = pre_int;
        } else {
            if d.pdp_value.is_nan() {
                d.pdp_value = 0.0;
            }
            d.pdp_value += new / interval * pre_int;
        }
        #[expect(clippy::cast_precision_loss, reason = "RRDtool's f64 arithmetic")]
        let stale = interval > def.heartbeat as f64 || half_step < d.unknown_sec as f64;
        *temp = if stale {
            DNAN
        } else {
            #[expect(clippy::cast_precision_loss, reason = "RRDtool's f64 arithmetic")]
            let known = span.wrapping_sub(d.unknown_sec) as f64;
            d.pdp_value / (known - pre_unknown)
        };
        if new.is_nan() {
            let secs = floor_secs(post_int);
            d.unknown_sec = secs;
            d.pdp_value = DNAN;
        } else {
            d.unknown_sec = 0;
            d.pdp_value = new / interval * post_int;
        }
    }
}

/// Feeds the PDPs that [`apply`] queued into every archive and writes the
/// rows they finish (§3.8, §3.9); leaves nothing queued.
///
/// One archive and data source at a time, each taking every queued close in
/// order. An open CDP depends only on its own past and the PDPs, and which
/// rows an update writes depends only on the archive's position, which every
/// data source of the archive walks alike. So this computes exactly what
/// RRDtool's update-after-update order does, with the few numbers each CDP
/// needs kept at hand through a whole run of updates.
pub(crate) fn settle(schema: &Schema, state: &mut State, scratch: &mut Scratch, sink: &mut impl RowSink) {
    let Pending { closes, pdps } = &mut scratch.pending;
    let nds = schema.data_sources.len();
    let State { cur_row, cdp, .. } = state;
    let mut rest = cdp.as_mut_slice();
    for (r, (rra, cur)) in schema.archives.iter().zip(cur_row.iter_mut()).enumerate() {
        let Some((cdps, after)) = rest.split_at_mut_checked(nds) else { break };
        rest = after;
        let first_row = *cur;
        for (ds, c) in cdps.iter_mut().enumerate() {
            *cur = first_row;
            if nds == 1 {
                feed(rra, (r, ds), cur, c, closes.iter().zip(pdps.iter().copied()), sink);
            } else {
                // Each close holds one PDP per data source.
                let mine = pdps.iter().skip(ds).step_by(nds).copied();
                feed(rra, (r, ds), cur, c, closes.iter().zip(mine), sink);
            }
        }
    }
    scratch.discard_pending();
}

/// Feeds one archive and data source (`at`) its PDPs, close after close.
#[inline(always)]
fn feed<'a>(
    rra: &Archive,
    at: (usize, usize),
    cur: &mut u64,
    c: &mut CdpState,
    closes: impl Iterator<Item = (&'a Close, f64)>,
    sink: &mut impl RowSink,
) {
    let mut open = *c;
    if rra.steps == 1 {
        // The same steps, with `steps` a constant 1 the compiler folds
        // (one PDP per row: the phase is always 0).
        for (close, pdp) in closes {
            consolidate(rra, 1, at, cur, &mut open, close.elapsed, 0, pdp, sink);
        }
    } else {
        let mut phase = Phase::new(rra.steps);
        for (close, pdp) in closes {
            let into = phase.at(close.proc_pdp_cnt);
            consolidate(rra, rra.steps, at, cur, &mut open, close.elapsed, into, pdp, sink);
        }
    }
    *c = open;
}

/// `proc_pdp_cnt % steps` for a non-decreasing sequence of counts: divides
/// only when a count moves on by `steps` or more.
struct Phase {
    steps: u64,
    /// The last count and its remainder.
    last: Option<(u64, u64)>,
}

impl Phase {
    fn new(steps: u64) -> Self {
        Phase { steps: steps.max(1), last: None }
    }

    fn at(&mut self, count: u64) -> u64 {
        let rem = match self.last {
            Some((before, rem)) if count >= before && count - before < self.steps => {
                let rem = rem + (count - before);
                if rem >= self.steps { rem - self.steps } else { rem }
            }
            _ => count % self.steps,
        };
        self.last = Some((count, rem));
        rem
    }
}

/// Feeds `elapsed` identical PDPs of value `pdp` into the open CDP `c` of
/// archive and data source `at`, whose CDP is `phase` PDPs old
/// (`proc_pdp_cnt % steps`), and writes the rows they finish, moving the
/// archive's current row `cur`. `n` is the archive's `steps`, passed apart
/// so that a caller can make it a constant.
#[expect(clippy::too_many_arguments, reason = "one CDP's share of RRDtool's update_cdp_prep")]
#[inline(always)]
fn consolidate(
    rra: &Archive,
    n: u64,
    at: (usize, usize),
    cur: &mut u64,
    c: &mut CdpState,
    elapsed: u64,
    phase: u64,
    pdp: f64,
    sink: &mut impl RowSink,
) {
    let start_off = n - phase;
    let rows_due = if start_off > elapsed {
        0
    } else if elapsed - start_off < n {
        1.min(rra.rows)
    } else {
        ((elapsed - start_off) / n + 1).min(rra.rows)
    };
    if n == 1 {
        c.primary = pdp;
        if elapsed >= 2 {
            c.secondary = pdp;
        }
    } else if rows_due > 0 {
        finish_cdp(c, rra.cf, rra.xff, n, pdp, elapsed, start_off);
    } else {
        extend_cdp(c, rra.cf, pdp, elapsed);
    }
    for k in 0..rows_due {
        *cur += 1;
        if *cur >= rra.rows {
            *cur = 0;
        }
        sink.write(at.0, *cur, at.1, if k == 0 { c.primary } else { c.secondary });
    }
}

/// A CDP is finished: compute the row values and restart the open CDP.
fn finish_cdp(c: &mut CdpState, cf: Cf, xff: f64, n: u64, pdp: f64, elapsed: u64, start_off: u64) {
    if pdp.is_nan() {
        c.unknown_pdps = c.unknown_pdps.wrapping_add(start_off);
        c.secondary = DNAN;
    } else {
        c.secondary = pdp;
    }
    #[expect(clippy::cast_precision_loss, reason = "RRDtool's f64 arithmetic")]
    let too_unknown = c.unknown_pdps as f64 > n as f64 * xff;
    c.primary = if too_unknown {
        DNAN
    } else {
        match cf {
            Cf::Average => {
                #[expect(clippy::cast_precision_loss, reason = "RRDtool's f64 arithmetic")]
                let (off, known) = (start_off as f64, n.wrapping_sub(c.unknown_pdps) as f64);
                (nz(c.value, 0.0) + nz(pdp, 0.0) * off) / known
            }
            Cf::Max => {
                let (cum, cur) = (nz(c.value, f64::NEG_INFINITY), nz(pdp, f64::NEG_INFINITY));
                if cur > cum { cur } else { cum }
            }
            Cf::Min => {
                let (cum, cur) = (nz(c.value, f64::INFINITY), nz(pdp, f64::INFINITY));
                if cur < cum { cur } else { cum }
            }
            Cf::Last => pdp,
        }
    };
    let past = elapsed - start_off;
    let into = if past < n { past } else { past % n };
    c.value = if into == 0 || pdp.is_nan() {
        cdp_initial(cf)
    } else if cf == Cf::Average {
        #[expect(clippy::cast_precision_loss, reason = "into < steps")]
        let weight = into as f64;
        pdp * weight
    } else {
        pdp
    };
    c.unknown_pdps = if pdp.is_nan() { into } else { 0 };
}

/// The CDP stays open: fold `elapsed` copies of `pdp` into it.
pub(crate) fn extend_cdp(c: &mut CdpState, cf: Cf, pdp: f64, elapsed: u64) {
    #[expect(clippy::cast_precision_loss, reason = "RRDtool's f64 arithmetic")]
    let weight = elapsed as f64;
    if pdp.is_nan() {
        c.unknown_pdps = c.unknown_pdps.wrapping_add(elapsed);
    } else if c.value.is_nan() {
        c.value = if cf == Cf::Average { pdp * weight } else { pdp };
    } else {
        match cf {
            Cf::Average => c.value += pdp * weight,
            Cf::Min => {
                if pdp < c.value {
                    c.value = pdp;
                }
            }
            Cf::Max => {
                if pdp > c.value {
                    c.value = pdp;
                }
            }
            Cf::Last => c.value = pdp,
        }
    }
}

/// Appends the decimal form of `n`.
fn push_int(out: &mut String, n: i64) {
    let mut digits = [0u8; 20];
    let mut len = 0;
    let mut m = n.unsigned_abs();
    loop {
        if let Some(d) = digits.get_mut(len) {
            *d = b'0' + u8::try_from(m % 10).unwrap_or(0);
        }
        len += 1;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    if n < 0 {
        out.push('-');
    }
    for d in digits.iter().take(len).rev() {
        out.push(char::from(*d));
    }
}

fn nz(x: f64, default: f64) -> f64 {
    if x.is_nan() { default } else { x }
}

impl DataSource {
    /// Whether a typed update value ([`crate::Rrd::update`],
    /// [`crate::Rrd::update_points`]) can be taken by this data source,
    /// whatever the database's state: the same checks an update makes of
    /// the value itself (a COUNTER or DERIVE reading must be a whole number,
    /// DCOUNTER and DDERIVE ones a number RRDtool's parser reads). NaN, the
    /// unknown value, is always taken. A server decides with this before it
    /// acknowledges a point, so applying it later cannot refuse it.
    ///
    /// ```
    /// use rrdcore::{DataSource, DsType};
    /// let counter = DataSource::new("in", DsType::Counter, 600);
    /// assert!(counter.check_value(42.0).is_ok());
    /// assert!(counter.check_value(0.5).is_err());
    /// assert!(DataSource::new("t", DsType::Gauge, 600).check_value(0.5).is_ok());
    /// ```
    pub fn check_value(&self, v: f64) -> Result<()> {
        if v.is_nan() || matches!(self.kind, DsType::Gauge | DsType::Absolute) {
            return Ok(());
        }
        let mut text = String::new();
        value_text(self, v, &mut text)?;
        if matches!(self.kind, DsType::DCounter | DsType::DDerive) {
            parse_value(self, &text)?;
        }
        Ok(())
    }
}

/// Text for a typed update value: `U` for NaN, an integer for COUNTER/DERIVE,
/// otherwise the shortest decimal that reads back as the same f64.
pub(crate) fn value_text(ds: &DataSource, v: f64, out: &mut String) -> Result<()> {
    use std::fmt::Write as _;
    out.clear();
    if v.is_nan() {
        out.push('U');
        return Ok(());
    }
    let integral = matches!(ds.kind, DsType::Counter | DsType::Derive);
    if integral {
        let negative_ok = ds.kind == DsType::Derive;
        if !v.is_finite() || v.fract() != 0.0 || (v < 0.0 && !negative_ok) || v.abs() >= 1e30 {
            return Err(value_error(ds, &v.to_string(), "a counter reading must be a whole number"));
        }
        let _ = write!(out, "{v:.0}");
        if out == "-0" {
            out.clear();
            out.push('0');
        }
        return Ok(());
    }
    if v.fract() == 0.0 && v.abs() < 9.0e15 && !(v == 0.0 && v.is_sign_negative()) {
        // Whole numbers (typical of counters and many gauges): the same text as
        // `Display`, written without the general float formatter.
        #[expect(clippy::cast_possible_truncation, reason = "|v| < 9e15 and integral")]
        push_int(out, v as i64);
        return Ok(());
    }
    let _ = write!(out, "{v}");
    if out.len() > crate::state::LAST_DS_MAX {
        out.clear();
        let _ = write!(out, "{v:e}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::DsType;

    #[test]
    fn floor_secs_is_floor_then_cast() {
        let odd = [-0.0, 0.0, 0.5, 0.999_999, 1.0, 299.999_999, -0.5, -1.0, -1e300, 1e300, 1.8e19, 2e19];
        for x in odd.into_iter().chain([f64::NAN, f64::INFINITY, f64::NEG_INFINITY, f64::MIN_POSITIVE]) {
            #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "the reference")]
            let floored = x.floor() as u64;
            assert_eq!(floor_secs(x), floored, "{x}");
        }
    }

    #[test]
    fn phase_is_the_remainder() {
        for steps in [1, 6, 24, 288] {
            let mut phase = Phase::new(steps);
            let mut count = 5_000_000_u64;
            for jump in [0, 1, 1, 5, 6, 7, 0, 287, 288, 289, 1000, 3, 1] {
                count += jump;
                assert_eq!(phase.at(count), count % steps, "steps {steps}, count {count}");
            }
            assert_eq!(phase.at(17), 17 % steps, "a smaller count divides afresh");
        }
    }

    #[test]
    fn typed_value_text_matches_display() {
        let gauge = DataSource::new("g", DsType::Gauge, 600);
        let mut out = String::new();
        for v in [0.0, -0.0, 1.0, -17.0, 42.5, 1e15, 8.9e15, 9.1e15, 1e300, -3.25e-7, f64::INFINITY, 123_456_789.0] {
            value_text(&gauge, v, &mut out).unwrap();
            let display = v.to_string();
            if display.len() <= crate::state::LAST_DS_MAX {
                assert_eq!(out, display, "{v}");
            } else {
                assert_eq!(out.parse::<f64>().unwrap(), v, "{v}");
            }
        }
        let counter = DataSource::new("c", DsType::Counter, 600);
        value_text(&counter, 18_446_744_073_709_549_568.0, &mut out).unwrap();
        assert_eq!(out, "18446744073709549568");
        assert!(value_text(&counter, 1.5, &mut out).is_err());
        assert!(value_text(&counter, -1.0, &mut out).is_err());
    }
}
