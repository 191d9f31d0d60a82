//! Reading rows back: choosing the archive and aligning the time range
//! exactly as `rrdtool fetch` does (`rrd-semantics.md` §4).

use crate::state::DNAN;
use crate::error::{Error, Result};
use crate::schema::{Cf, MIN_START, Schema};

/// Most values one fetch returns (rows x data sources), a guard against a
/// request that would allocate without bound.
pub const MAX_FETCH_VALUES: u64 = 64 << 20;

/// A fetch request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FetchRequest {
    /// The consolidation function wanted.
    pub cf: Cf,
    /// Start of the range (seconds since the epoch).
    pub start: i64,
    /// End of the range (seconds since the epoch).
    pub end: i64,
    /// Preferred seconds per row; 1 (the default) asks for the finest.
    pub resolution: u64,
    /// `--align-start`: move start (and end) back to a multiple of the resolution.
    pub align_start: bool,
}

impl FetchRequest {
    /// A request at the finest resolution.
    pub fn new(cf: Cf, start: i64, end: i64) -> Self {
        FetchRequest {
            cf,
            start,
            end,
            resolution: 1,
            align_start: false,
        }
    }

    /// The same request with a preferred resolution in seconds.
    pub fn resolution(self, resolution: u64) -> Self {
        FetchRequest { resolution, ..self }
    }
}

/// The rows a fetch returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    /// Start of the range, aligned to `step`. The first row ends at `start + step`.
    pub start: i64,
    /// End of the range: the time stamp of the last row.
    pub end: i64,
    /// Seconds per row.
    pub step: u64,
    /// Index of the archive the rows come from.
    pub archive: usize,
    /// Names of the data sources, one per column.
    pub ds_names: Vec<String>,
    /// Row-major values: `row_count() * ds_names.len()`, NaN for unknown.
    pub values: Vec<f64>,
}

impl Fetched {
    /// Number of rows.
    pub fn row_count(&self) -> usize {
        self.values.len().checked_div(self.ds_names.len()).unwrap_or(0)
    }

    /// The rows as (time stamp, values); the stamp is the end of the row's interval.
    pub fn rows(&self) -> impl Iterator<Item = (i64, &[f64])> {
        let step = i64::try_from(self.step).unwrap_or(i64::MAX);
        self.values
            .chunks(self.ds_names.len().max(1))
            .zip(1i64..)
            .map(move |(row, k)| (self.start.saturating_add(step.saturating_mul(k)), row))
    }
}

/// Where a fetch reads stored values from.
pub(crate) trait RowSource {
    /// Appends the values of `count` consecutive ring rows of archive `rra`,
    /// starting at `first` (all within the ring), to `out`.
    fn read_rows(&self, rra: usize, first: u64, count: u64, out: &mut Vec<f64>);
}

fn err(msg: impl Into<String>) -> Error {
    Error::Fetch(msg.into())
}

/// Chooses the archive for `req` (§4.2): `(archive index, seconds per row)`.
pub(crate) fn choose_archive(schema: &Schema, last_up: i64, req: &FetchRequest) -> Result<(usize, i64)> {
    let step = i64::try_from(schema.step).map_err(|_| err("step too large"))?;
    let resolution = i64::try_from(req.resolution).unwrap_or(i64::MAX);
    let mut best_full: Option<(usize, i64, i64)> = None; // (index, rra_step, diff)
    let mut best_part: Option<(usize, i64, i64, i64)> = None; // (index, rra_step, match, diff)
    for (i, rra) in schema.archives.iter().enumerate() {
        if rra.cf != req.cf && rra.steps != 1 {
            continue;
        }
        #[expect(clippy::cast_possible_wrap, reason = "validated schemas keep spans below i64::MAX")]
        let (rra_step, rows) = (rra.steps as i64 * step, rra.rows as i64);
        let cal_end = last_up - last_up.rem_euclid(rra_step);
        let cal_start = cal_end - rows * rra_step;
        let diff = resolution.abs_diff(rra_step);
        let diff = i64::try_from(diff).unwrap_or(i64::MAX);
        if cal_start <= req.start {
            if best_full.is_none_or(|(_, _, d)| diff < d) {
                best_full = Some((i, rra_step, diff));
            }
        } else {
            let matched = req.end.saturating_sub(cal_start);
            let better = best_part.is_none_or(|(_, _, m, d)| m < matched || (m == matched && diff < d));
            if better {
                best_part = Some((i, rra_step, matched, diff));
            }
        }
    }
    match (best_full, best_part) {
        (Some((i, s, _)), _) | (None, Some((i, s, _, _))) => Ok((i, s)),
        (None, None) => Err(err("the RRD does not contain an RRA matching the chosen CF")),
    }
}

/// Runs a fetch over a database's schema, last update time, ring positions and rows.
pub(crate) fn fetch(
    schema: &Schema,
    last_up: i64,
    cur_row: &[u64],
    req: &FetchRequest,
    rows: &impl RowSource,
) -> Result<Fetched> {
    let mut req = *req;
    if req.resolution == 0 {
        return Err(err("the resolution must be positive"));
    }
    if req.align_start {
        let r = i64::try_from(req.resolution).unwrap_or(i64::MAX);
        let delta = req.start.rem_euclid(r);
        req.start -= delta;
        req.end = req.end.saturating_sub(delta);
    }
    if req.start < MIN_START {
        return Err(err(format!("start time {} should be after 1980", req.start)));
    }
    if req.end < req.start {
        return Err(err(format!("start ({}) should be less than end ({})", req.start, req.end)));
    }
    let (archive, st) = choose_archive(schema, last_up, &req)?;
    let start = req.start - req.start.rem_euclid(st);
    let end = req
        .end
        .checked_add(st - req.end.rem_euclid(st))
        .ok_or_else(|| err("end time out of range"))?;
    #[expect(clippy::cast_sign_loss, reason = "end > start")]
    let row_count = ((end - start) / st) as u64;
    let ds_count = schema.data_sources.len();
    if row_count.saturating_mul(ds_count as u64) > MAX_FETCH_VALUES {
        return Err(err(format!("{row_count} rows of {st} s is more than one fetch returns; ask for a coarser resolution or a shorter range")));
    }
    let rra = schema.archives.get(archive).ok_or_else(|| err("archive index"))?;
    let cur = cur_row.get(archive).copied().unwrap_or(0);
    #[expect(clippy::cast_possible_wrap, reason = "validated row counts fit i64")]
    let rra_rows = rra.rows as i64;
    let rra_end = last_up - last_up.rem_euclid(st);
    let rra_first = rra_end - (rra_rows - 1) * st;
    let mut values = Vec::with_capacity(usize::try_from(row_count).unwrap_or(0) * ds_count);
    // Rows stamped start+st ..= end: NaN before the ring's first row and after
    // its last, the ring's rows (one or two contiguous runs) in between.
    let first_t = start + st;
    let lo = first_t.max(rra_first);
    let hi = end.min(rra_end);
    #[expect(clippy::cast_sign_loss, reason = "each count is checked non-negative")]
    let (lead, inside) = if lo > hi {
        (row_count, 0)
    } else {
        (((lo - first_t) / st) as u64, ((hi - lo) / st + 1) as u64)
    };
    let nan_rows = |n: u64, values: &mut Vec<f64>| {
        values.extend(std::iter::repeat_n(DNAN, usize::try_from(n).unwrap_or(0) * ds_count));
    };
    nan_rows(lead, &mut values);
    if inside > 0 {
        #[expect(clippy::cast_possible_wrap, reason = "cur < rows <= i64::MAX")]
        let first_row = (cur as i64 - (rra_end - lo) / st).rem_euclid(rra_rows).unsigned_abs();
        let until_wrap = rra.rows - first_row;
        rows.read_rows(archive, first_row, inside.min(until_wrap), &mut values);
        if inside > until_wrap {
            rows.read_rows(archive, 0, inside - until_wrap, &mut values);
        }
    }
    nan_rows(row_count - lead - inside, &mut values);
    Ok(Fetched {
        start,
        end,
        step: st.unsigned_abs(),
        archive,
        ds_names: schema.data_sources.iter().map(|d| d.name.clone()).collect(),
        values,
    })
}
