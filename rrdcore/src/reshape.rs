//! Changing an existing database's definition while keeping its history:
//! what `tune` and `resize` do. Archives can gain or lose rows, be removed,
//! or be added, a new archive being re-consolidated from the finest data
//! already stored; data source limits, heartbeats, types, names and xff can
//! change. The new database is written beside the old and renamed over it.

use crate::database::Rrd;
use crate::error::{Error, Result};
use crate::schema::{Archive, Cf, Schema};
use crate::state::{CdpState, DNAN, LastDs, State, cdp_initial};

/// Where an archive of the new definition takes its rows from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveSource {
    /// The archive at this index of the old definition (its newest rows are kept).
    Existing(usize),
    /// A new archive, re-consolidated from the finest data stored.
    New,
}

fn invalid(what: String) -> Error {
    Error::Schema {
        field: "reshape",
        value: what,
        reason: "the new definition does not fit the database",
    }
}

impl Rrd {
    /// Rebuilds this database under `schema` (same data sources, in order,
    /// possibly with changed attributes; archives as `sources` says) and
    /// replaces the file with the result. Returns the reopened database.
    pub fn reshape(self, schema: &Schema, sources: &[ArchiveSource]) -> Result<Rrd> {
        schema.validate()?;
        let old = self.schema().clone();
        if schema.data_sources.len() != old.data_sources.len() || schema.step != old.step {
            return Err(invalid("data sources and step must stay the same".into()));
        }
        if sources.len() != schema.archives.len() {
            return Err(invalid("one source per archive".into()));
        }
        let (state, rows) = self.rebuilt(schema, sources)?;
        let path = self.path().to_path_buf();
        self.replace(schema, &state, &rows, &path)
    }

    fn rebuilt(&self, schema: &Schema, sources: &[ArchiveSource]) -> Result<(State, Vec<Vec<f64>>)> {
        let nds = schema.data_sources.len();
        let old = self.state();
        let mut ds = old.ds.clone();
        for ((d, new), prev) in ds.iter_mut().zip(&schema.data_sources).zip(&self.schema().data_sources) {
            if new.kind != prev.kind {
                // As rrdtool tune does: the next reading starts afresh.
                d.last_ds = LastDs::new("UNKN");
            }
        }
        let mut cur_row = Vec::new();
        let mut cdp = Vec::new();
        let mut rows = Vec::new();
        for (a, (rra, source)) in schema.archives.iter().zip(sources).enumerate() {
            let values = match source {
                ArchiveSource::Existing(i) => {
                    let old_rra = self.schema().archives.get(*i).ok_or_else(|| invalid(format!("no archive {i}")))?;
                    if old_rra.steps != rra.steps {
                        return Err(invalid(format!("archive {a}: an existing archive keeps its steps")));
                    }
                    cdp.extend(old.cdp.iter().skip(i * nds).take(nds).copied());
                    self.newest_rows(*i, rra.rows)
                }
                ArchiveSource::New => {
                    let (values, open) = self.consolidated(rra);
                    cdp.extend(open);
                    values
                }
            };
            cur_row.push(rra.rows - 1);
            rows.push(values);
        }
        let state = State { last_update: old.last_update, ds, cur_row, cdp };
        Ok((state, rows))
    }

    /// The newest `keep` rows of archive `i`, oldest first, NaN-padded in front.
    fn newest_rows(&self, i: usize, keep: u64) -> Vec<f64> {
        let nds = self.schema().data_sources.len();
        let rra = &self.schema().archives[i];
        let cur = self.state().cur_row[i];
        let mut out = Vec::with_capacity(usize::try_from(keep).unwrap_or(0) * nds);
        for k in (0..keep).rev() {
            for d in 0..nds {
                let v = if k < rra.rows { self.stored_value(i, (cur + rra.rows - k) % rra.rows, d).unwrap_or(DNAN) } else { DNAN };
                out.push(v);
            }
        }
        out
    }

    /// The value of data source `ds` for the PDP ending at `t`, from the finest
    /// archive holding it: PDPs from a steps=1 archive (any CF), else the row
    /// covering `t` of the finest archive with the wanted CF.
    fn pdp_at(&self, cf: Cf, ds: usize, t: i64) -> f64 {
        let s = self.schema();
        let step = i64::try_from(s.step).unwrap_or(i64::MAX);
        let last = self.state().last_update.sec;
        let mut best: Option<(u64, f64)> = None;
        for (i, rra) in s.archives.iter().enumerate() {
            if !(rra.steps == 1 || rra.cf == cf) || best.is_some_and(|(st, _)| st <= rra.steps) {
                continue;
            }
            let rra_step = i64::try_from(rra.steps).unwrap_or(i64::MAX).saturating_mul(step);
            let end = last - last.rem_euclid(rra_step);
            let row_end = t + (rra_step - t.rem_euclid(rra_step)).rem_euclid(rra_step);
            let back = (end - row_end) / rra_step;
            if row_end > end || back >= i64::try_from(rra.rows).unwrap_or(0) || back < 0 {
                continue;
            }
            let cur = self.state().cur_row[i];
            let slot = (cur + rra.rows - back.unsigned_abs() % rra.rows) % rra.rows;
            best = Some((rra.steps, self.stored_value(i, slot, ds).unwrap_or(DNAN)));
        }
        best.map_or(DNAN, |(_, v)| v)
    }

    /// Rows (oldest first) and open-CDP state of a new archive.
    fn consolidated(&self, rra: &Archive) -> (Vec<f64>, Vec<CdpState>) {
        let s = self.schema();
        let nds = s.data_sources.len();
        let step = i64::try_from(s.step).unwrap_or(i64::MAX);
        let n = i64::try_from(rra.steps).unwrap_or(1);
        let rra_step = n * step;
        let last = self.state().last_update.sec;
        let cal_end = last - last.rem_euclid(rra_step);
        let mut rows = Vec::new();
        for j in (0..i64::try_from(rra.rows).unwrap_or(0)).rev() {
            let end = cal_end - j * rra_step;
            for d in 0..nds {
                let pdps: Vec<f64> = (0..n).map(|k| self.pdp_at(rra.cf, d, end - (n - 1 - k) * step)).collect();
                rows.push(combine(rra, &pdps));
            }
        }
        // The open row: the PDPs since the last row boundary, fed in order.
        let last_pdp = last - last.rem_euclid(step);
        let open = (last_pdp - cal_end) / step;
        let newest = |d: usize| rows.len().checked_sub(nds - d).and_then(|i| rows.get(i)).copied().unwrap_or(DNAN);
        let cdp = (0..nds)
            .map(|d| {
                // primary/secondary are display-only scratch; the newest row is the best stand-in.
                let mut c = CdpState { value: cdp_initial(rra.cf), unknown_pdps: 0, primary: newest(d), secondary: DNAN };
                if rra.steps == 1 {
                    c.value = DNAN;
                    return c;
                }
                for k in 0..open {
                    let p = self.pdp_at(rra.cf, d, cal_end + (k + 1) * step);
                    crate::update::extend_cdp(&mut c, rra.cf, p, 1);
                }
                c
            })
            .collect();
        (rows, cdp)
    }
}

/// One row from its PDPs, by the archive's CF and xff.
fn combine(rra: &Archive, pdps: &[f64]) -> f64 {
    let known: Vec<f64> = pdps.iter().copied().filter(|p| !p.is_nan()).collect();
    let unknown = pdps.len() - known.len();
    #[expect(clippy::cast_precision_loss, reason = "counts of PDPs")]
    if rra.steps > 1 && unknown as f64 > rra.steps as f64 * rra.xff || known.is_empty() {
        return DNAN;
    }
    match rra.cf {
        #[expect(clippy::cast_precision_loss, reason = "counts of PDPs")]
        Cf::Average => known.iter().sum::<f64>() / known.len() as f64,
        Cf::Min => known.iter().copied().fold(f64::INFINITY, f64::min),
        Cf::Max => known.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        Cf::Last => pdps.last().copied().unwrap_or(DNAN),
    }
}
