//! Property tests: the engine against a deliberately simple model of the same
//! rules, plus encode/decode round trips.
//!
//! The model knows nothing of RRDtool's bookkeeping (no open PDP, no scratch
//! values, no split). It keeps the list of (interval, rate) pairs the updates
//! define and computes every finished PDP as the time-weighted mean rate over
//! its known seconds, then every row with its consolidation function over the
//! PDPs. On the domain generated here (GAUGE and ABSOLUTE, integer times,
//! every interval within the heartbeat, archives of at least 4 rows) RRDtool's
//! rules reduce to exactly that, up to floating-point summation order.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

use proptest::prelude::*;
use rrdcore::{Archive, Cf, CreateOptions, DataSource, DsType, Rrd, Schema, Timestamp};

#[derive(Debug, Clone)]
struct Case {
    step: i64,
    kinds: Vec<DsType>,
    archives: Vec<Archive>,
    start: i64,
    /// (seconds since the previous update, one value per data source)
    updates: Vec<(i64, Vec<f64>)>,
}

fn archive() -> impl Strategy<Value = Archive> {
    (0usize..4, 0u32..100, 1u64..6, 4u64..24).prop_map(|(cf, xff, steps, rows)| {
        Archive::new(Cf::ALL[cf], f64::from(xff) / 100.0, steps, rows)
    })
}

fn case() -> impl Strategy<Value = Case> {
    (1i64..400, prop::collection::vec(prop::bool::ANY, 1..4), prop::collection::vec(archive(), 1..4), 0i64..100_000)
        .prop_flat_map(|(step, gauges, archives, offset)| {
            let kinds: Vec<DsType> = gauges.iter().map(|g| if *g { DsType::Gauge } else { DsType::Absolute }).collect();
            let n = kinds.len();
            let update = (1i64..=3 * step, prop::collection::vec(-1000i32..1000, n));
            let start = 1_500_000_000 + offset;
            (Just(step), Just(kinds), Just(archives), Just(start), prop::collection::vec(update, 1..80))
        })
        .prop_map(|(step, kinds, archives, start, ups)| Case {
            step,
            kinds,
            archives,
            start,
            updates: ups
                .into_iter()
                .map(|(dt, vs)| (dt, vs.into_iter().map(|v| f64::from(v) / 4.0).collect()))
                .collect(),
        })
}

fn schema(c: &Case) -> Schema {
    Schema {
        step: c.step as u64,
        data_sources: c
            .kinds
            .iter()
            .enumerate()
            .map(|(i, k)| DataSource::new(&format!("d{i}"), *k, 3 * c.step as u64))
            .collect(),
        archives: c.archives.clone(),
    }
}

/// The model: per data source, (from, to, rate) over the whole history.
struct Model {
    start: i64,
    step: i64,
    spans: Vec<Vec<(i64, i64, f64)>>,
    last: i64,
}

impl Model {
    fn new(c: &Case) -> Self {
        let mut spans = vec![Vec::new(); c.kinds.len()];
        let mut t = c.start;
        for (dt, values) in &c.updates {
            for ((span, kind), v) in spans.iter_mut().zip(&c.kinds).zip(values) {
                let rate = match kind {
                    DsType::Gauge => *v,
                    _ => *v / *dt as f64,
                };
                span.push((t, t + dt, rate));
            }
            t += dt;
        }
        Model { start: c.start, step: c.step, spans, last: t }
    }

    /// PDP `k` (the interval (k*step, (k+1)*step]); `None` if not finished.
    /// NaN when more than half of it lies before the start (RRDtool's rule).
    fn pdp(&self, ds: usize, k: i64) -> Option<f64> {
        let (from, to) = (k * self.step, (k + 1) * self.step);
        if to > self.last {
            return None;
        }
        if to <= self.start {
            return Some(f64::NAN);
        }
        let unknown = (self.start - from).max(0);
        if unknown as f64 > self.step as f64 / 2.0 {
            return Some(f64::NAN);
        }
        let mut sum = 0.0;
        for &(a, b, rate) in &self.spans[ds] {
            let overlap = b.min(to) - a.max(from);
            if overlap > 0 {
                sum += rate * overlap as f64;
            }
        }
        Some(sum / (self.step - unknown) as f64)
    }

    /// The row of archive `rra` ending at `end`; NaN if never written.
    fn row(&self, rra: &Archive, ds: usize, end: i64) -> f64 {
        let n = rra.steps as i64;
        let first_pdp = end / self.step - n;
        if end <= self.start - self.start.rem_euclid(self.step) {
            return f64::NAN; // the whole row lies before the start PDP: never written
        }
        let pdps: Vec<f64> = (first_pdp..first_pdp + n).map(|k| self.pdp(ds, k).unwrap()).collect();
        let unknown = pdps.iter().filter(|p| p.is_nan()).count();
        if n > 1 && unknown as f64 > n as f64 * rra.xff {
            return f64::NAN;
        }
        let known = pdps.iter().copied().filter(|p| !p.is_nan());
        match rra.cf {
            Cf::Average => {
                let (s, c) = known.fold((0.0, 0), |(s, c), p| (s + p, c + 1));
                if c == 0 { f64::NAN } else { s / f64::from(c) }
            }
            Cf::Min => known.fold(f64::NAN, |m: f64, p| if m.is_nan() || p < m { p } else { m }),
            Cf::Max => known.fold(f64::NAN, |m: f64, p| if m.is_nan() || p > m { p } else { m }),
            Cf::Last => *pdps.last().unwrap(),
        }
    }
}

fn close(a: f64, b: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()))
}

fn run_engine(c: &Case) -> Rrd {
    let opts = CreateOptions { start: Some(c.start), cur_rows: Some(vec![0; c.archives.len()]), ..Default::default() };
    let mut db = Rrd::create_in_memory(&schema(c), &opts).unwrap();
    let mut t = c.start;
    for (dt, values) in &c.updates {
        t += dt;
        db.update(Timestamp::from_secs(t), values).unwrap();
    }
    db
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn engine_agrees_with_the_model(c in case()) {
        let db = run_engine(&c);
        let model = Model::new(&c);
        for (r, rra) in c.archives.iter().enumerate() {
            let rra_step = rra.steps as i64 * c.step;
            let cal_end = model.last - model.last.rem_euclid(rra_step);
            let cur = db.state().cur_row[r];
            for back in 0..rra.rows {
                let end = cal_end - back as i64 * rra_step;
                let row = (cur + rra.rows - back) % rra.rows;
                for ds in 0..c.kinds.len() {
                    let got = db.stored_value(r, row, ds).unwrap();
                    let want = model.row(rra, ds, end);
                    prop_assert!(close(got, want), "archive {r} {rra:?}, row ending {end}, ds {ds}: engine {got}, model {want}");
                }
            }
        }
    }

    #[test]
    fn image_round_trips(c in case()) {
        let db = run_engine(&c);
        let again = Rrd::from_bytes(db.as_bytes().to_vec()).unwrap();
        prop_assert_eq!(again.schema(), db.schema());
        prop_assert_eq!(again.state(), db.state());
        prop_assert_eq!(again.as_bytes(), db.as_bytes());
    }

    #[test]
    fn times_past_2038_behave_like_earlier_ones(c in case(), years in 0i64..80) {
        // Shifting everything by a whole number of the largest row spans leaves every row value unchanged.
        let lcm = c.archives.iter().fold(c.step, |acc, a| lcm(acc, a.steps as i64 * c.step));
        let shift = (2_200_000_000 - c.start + years * 31_557_600) / lcm * lcm;
        let shifted = Case { start: c.start + shift, ..c.clone() };
        prop_assume!(shift > 0);
        let (a, b) = (run_engine(&c), run_engine(&shifted));
        prop_assert!(b.last_update().sec > i64::from(i32::MAX));
        prop_assert_eq!(a.state().cur_row.clone(), b.state().cur_row.clone());
        for (r, rra) in c.archives.iter().enumerate() {
            for row in 0..rra.rows {
                for ds in 0..c.kinds.len() {
                    let (x, y) = (a.stored_value(r, row, ds).unwrap(), b.stored_value(r, row, ds).unwrap());
                    prop_assert!(close(x, y), "archive {r} row {row} ds {ds}: {x} vs {y}");
                }
            }
        }
    }
}

fn lcm(a: i64, b: i64) -> i64 {
    fn gcd(a: i64, b: i64) -> i64 {
        if b == 0 { a } else { gcd(b, a % b) }
    }
    a / gcd(a, b) * b
}
