//! Aggregator functions (`opentsdb-api.md` §4.8) over the values of one
//! timestamp (across series) or one downsample bucket, and how each fills
//! in a series that has no point at a timestamp (§4.7).

/// How a series without a point at a timestamp takes part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interp {
    /// Linear interpolation between its neighbours.
    Lerp,
    /// Zero.
    Zero,
    /// The largest value, so it never wins a minimum.
    Max,
    /// The smallest value, so it never wins a maximum.
    Min,
    /// Its previous value.
    Prev,
}

/// An aggregator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Agg {
    /// Σ.
    Sum,
    /// Minimum.
    Min,
    /// Maximum.
    Max,
    /// Mean (truncating for integers).
    Avg,
    /// Population standard deviation.
    Dev,
    /// Upper median.
    Median,
    /// Product.
    Mult,
    /// Last minus first.
    Diff,
    /// Number of values.
    Count,
    /// First value.
    First,
    /// Last value.
    Last,
    /// Σx².
    SquareSum,
    /// Percentile (0-1) by Commons Math's default estimator.
    Percentile(f64),
    /// Percentile by the R-3 estimator.
    R3(f64),
    /// Percentile by the R-7 estimator.
    R7(f64),
    /// No aggregation: every series is its own result.
    None,
}

/// An aggregator with its interpolation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aggregator {
    /// What it computes.
    pub agg: Agg,
    /// How missing points are filled in.
    pub interp: Interp,
}

/// The aggregator called `name`, if there is one.
pub fn aggregator(name: &str) -> Option<Aggregator> {
    use Interp::{Lerp, Max, Min, Prev, Zero};
    let (agg, interp) = match name {
        "sum" => (Agg::Sum, Lerp),
        "min" => (Agg::Min, Lerp),
        "max" => (Agg::Max, Lerp),
        "avg" => (Agg::Avg, Lerp),
        "dev" => (Agg::Dev, Lerp),
        "median" => (Agg::Median, Lerp),
        "mult" => (Agg::Mult, Lerp),
        "diff" => (Agg::Diff, Lerp),
        "none" => (Agg::None, Lerp),
        "count" => (Agg::Count, Zero),
        "zimsum" => (Agg::Sum, Zero),
        "first" => (Agg::First, Zero),
        "last" => (Agg::Last, Zero),
        "squareSum" => (Agg::SquareSum, Zero),
        "mimmin" => (Agg::Min, Max),
        "mimmax" => (Agg::Max, Min),
        "pfsum" => (Agg::Sum, Prev),
        other => {
            let (rest, kind) = if let Some(r) = other.strip_prefix("ep") {
                if let Some(p) = r.strip_suffix("r3") {
                    (p, 3)
                } else {
                    (r.strip_suffix("r7")?, 7)
                }
            } else {
                (other.strip_prefix('p')?, 0)
            };
            let p = match rest {
                "999" => 0.999,
                "99" => 0.99,
                "95" => 0.95,
                "90" => 0.90,
                "75" => 0.75,
                "50" => 0.50,
                _ => return None,
            };
            let agg = match kind {
                3 => Agg::R3(p),
                7 => Agg::R7(p),
                _ => Agg::Percentile(p),
            };
            (agg, Lerp)
        }
    };
    Some(Aggregator { agg, interp })
}

/// Aggregates doubles (NaN inputs are skipped; no input gives NaN).
pub fn run_f64(agg: Agg, values: &[f64]) -> f64 {
    let v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return if agg == Agg::Count { 0.0 } else { f64::NAN };
    }
    #[expect(clippy::cast_precision_loss, reason = "counts are small")]
    let n = v.len() as f64;
    match agg {
        Agg::Sum => v.iter().sum(),
        Agg::Min => v.iter().copied().fold(f64::INFINITY, f64::min),
        Agg::Max => v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        Agg::Avg => v.iter().sum::<f64>() / n,
        Agg::Dev => {
            let mean = v.iter().sum::<f64>() / n;
            (v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n).sqrt()
        }
        Agg::Median => sorted(v).get(values_mid(n)).copied().unwrap_or(f64::NAN),
        Agg::Mult => v.iter().product(),
        Agg::Diff => v.last().copied().unwrap_or(f64::NAN) - v.first().copied().unwrap_or(f64::NAN),
        Agg::Count => n,
        Agg::First | Agg::None => v.first().copied().unwrap_or(f64::NAN),
        Agg::Last => v.last().copied().unwrap_or(f64::NAN),
        Agg::SquareSum => v.iter().map(|x| x * x).sum(),
        Agg::Percentile(p) => legacy_percentile(&sorted(v), p),
        Agg::R3(p) => r3(&sorted(v), p),
        Agg::R7(p) => r7(&sorted(v), p),
    }
}

/// Aggregates integers in 64-bit integer arithmetic (as OpenTSDB does when
/// every input is an integer); `None` for aggregators that yield doubles.
pub fn run_i64(agg: Agg, v: &[i64]) -> Option<i64> {
    if v.is_empty() {
        return None;
    }
    let n = i64::try_from(v.len()).ok()?;
    Some(match agg {
        Agg::Sum => v.iter().fold(0i64, |a, b| a.wrapping_add(*b)),
        Agg::Min => *v.iter().min()?,
        Agg::Max => *v.iter().max()?,
        Agg::Avg => v.iter().fold(0i64, |a, b| a.wrapping_add(*b)) / n,
        Agg::Median => {
            let mut s = v.to_vec();
            s.sort_unstable();
            *s.get(s.len() / 2)?
        }
        Agg::Mult => v.iter().fold(1i64, |a, b| a.wrapping_mul(*b)),
        Agg::Diff => v.last()?.wrapping_sub(*v.first()?),
        Agg::Count => n,
        Agg::First | Agg::None => *v.first()?,
        Agg::Last => *v.last()?,
        Agg::SquareSum => v.iter().fold(0i64, |a, b| a.wrapping_add(b.wrapping_mul(*b))),
        Agg::Dev | Agg::Percentile(_) | Agg::R3(_) | Agg::R7(_) => return None,
    })
}

fn values_mid(n: f64) -> usize {
    #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "n is a small positive count")]
    let half = (n as usize) / 2;
    half
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// `x_k` for a 1-based `k` clamped to the sample.
fn at(v: &[f64], k: f64) -> f64 {
    #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "clamped to 1..=len first")]
    let i = k.clamp(1.0, v.len() as f64) as usize;
    v.get(i - 1).copied().unwrap_or(f64::NAN)
}

fn between(v: &[f64], pos: f64) -> f64 {
    let lo = pos.floor();
    let (a, b) = (at(v, lo), at(v, lo + 1.0));
    a + (pos - lo) * (b - a)
}

/// Commons Math's default (legacy) estimator: position p(n+1).
fn legacy_percentile(v: &[f64], p: f64) -> f64 {
    #[expect(clippy::cast_precision_loss, reason = "small counts")]
    let n = v.len() as f64;
    let pos = p * (n + 1.0);
    if pos < 1.0 {
        at(v, 1.0)
    } else if pos >= n {
        at(v, n)
    } else {
        between(v, pos)
    }
}

/// the sample value nearest to position np, ties to the even one.
fn r3(v: &[f64], p: f64) -> f64 {
    #[expect(clippy::cast_precision_loss, reason = "small counts")]
    let h = v.len() as f64 * p;
    at(v, h.round_ties_even().max(1.0))
}

/// linear between the values at (n-1)p + 1.
fn r7(v: &[f64], p: f64) -> f64 {
    #[expect(clippy::cast_precision_loss, reason = "small counts")]
    let h = (v.len() as f64 - 1.0) * p + 1.0;
    between(v, h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cover_the_list() {
        for name in crate::opentsdb::query::AGGREGATORS {
            assert!(aggregator(name).is_some(), "{name}");
        }
        assert!(aggregator("p12").is_none() && aggregator("bogus").is_none());
    }

    #[test]
    fn values() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(run_f64(Agg::Sum, &v), 10.0);
        assert_eq!(run_f64(Agg::Avg, &v), 2.5);
        assert_eq!(run_f64(Agg::Median, &v), 3.0);
        assert_eq!(run_f64(Agg::Dev, &[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]), 2.0);
        assert_eq!(run_f64(Agg::Diff, &v), 3.0);
        assert_eq!(run_f64(Agg::SquareSum, &v), 30.0);
        assert_eq!(run_f64(Agg::Count, &[1.0, f64::NAN]), 1.0);
        assert!(run_f64(Agg::Sum, &[f64::NAN]).is_nan());
        assert_eq!(run_i64(Agg::Avg, &[1, 2]), Some(1));
        assert_eq!(run_i64(Agg::Dev, &[1, 2]), None);
        // Percentiles: 1..=10.
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(run_f64(Agg::Percentile(0.5), &ten), 5.5);
        assert_eq!(run_f64(Agg::Percentile(0.99), &ten), 10.0);
        assert_eq!(run_f64(Agg::R7(0.5), &ten), 5.5);
        assert_eq!(run_f64(Agg::R7(0.9), &ten), 9.1);
        assert_eq!(run_f64(Agg::R3(0.5), &ten), 5.0);
        assert_eq!(run_f64(Agg::R3(0.75), &ten), 8.0);
    }
}
