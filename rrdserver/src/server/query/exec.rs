//! Running a query (`opentsdb-api.md` §4.4-4.9): select series by filters,
//! read each from the finest archive covering the range, downsample, rate,
//! group and aggregate with OpenTSDB's interpolation, trim to the range and
//! shape the answer.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use regex::Regex;
use rrdcore::{Cf, FetchRequest};
use serde_json::{Map, Value as Json, json};

use super::agg::{Agg, Aggregator, Interp, aggregator, run_f64, run_i64};
use super::{Query, Sub};
use crate::opentsdb::query::{Downsample, Fill, Filter, FilterType, Rate};
use crate::server::app::Reads;
use crate::server::http::ApiError;
use crate::server::index::{Kind, Series};

/// Most buckets fill policies may emit in one query, over all its series
/// (a `1ms-sum-zero` over a year would otherwise fill memory).
pub const MAX_FILL_BUCKETS: u64 = 2_000_000;

/// A point on the way through the pipeline.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Pt {
    /// Milliseconds.
    t: u64,
    /// The value; NaN only from a fill policy.
    v: f64,
    /// Whether the value is an integer (and emitted as one).
    int: bool,
}

fn is_int(v: f64) -> bool {
    v.fract() == 0.0 && v.abs() < 9.007_199_254_740_992e15
}

#[expect(clippy::cast_possible_truncation, reason = "only called on integral values below 2^53")]
fn as_i64(v: f64) -> i64 {
    v as i64
}

#[expect(clippy::cast_precision_loss, reason = "integers from doubles below 2^53")]
fn as_f64(v: i64) -> f64 {
    v as f64
}

/// A selected series and its points after downsampling and rate.
type Member = (Arc<Series>, Vec<Pt>);

/// Runs every sub-query; the JSON array to send, as bytes.
pub fn run(r: &Reads<'_>, q: &Query) -> Result<Vec<u8>, ApiError> {
    let mut out = vec![b'['];
    for sub in &q.subs {
        let agg = aggregator(&sub.q.aggregator).ok_or_else(|| ApiError::bad(format!("No such aggregation function: {}", sub.q.aggregator)))?;
        let series = select(r, sub)?;
        check_fill_budget(q, sub, series.len())?;
        let read = read_all(r, q, sub, &series);
        let mut groups: BTreeMap<Vec<String>, Vec<Member>> = BTreeMap::new();
        let group_keys = group_keys(sub, agg);
        for (s, pts) in read {
            let key = match &group_keys {
                Some(keys) => keys.iter().map(|k| s.tag(k).unwrap_or("").to_owned()).collect(),
                None => vec![s.key.to_string()],
            };
            groups.entry(key).or_default().push((s, pts));
        }
        for members in groups.into_values() {
            let dps = if agg.agg == Agg::None || members.len() == 1 {
                members.first().map(|(_, p)| p.clone()).unwrap_or_default()
            } else {
                let pts: Vec<&[Pt]> = members.iter().map(|(_, p)| p.as_slice()).collect();
                aggregate(agg, sub.q.rate.is_some(), &pts)
            };
            let dps: Vec<Pt> = dps.into_iter().filter(|p| p.t >= q.start_ms && p.t <= q.end_ms).collect();
            if out.len() > 1 {
                out.push(b',');
            }
            render(&mut out, r, q, sub, &members, &dps);
        }
    }
    out.push(b']');
    Ok(out)
}

/// The tag keys to group by; `None` when every series stands alone.
fn group_keys(sub: &Sub, agg: Aggregator) -> Option<Vec<String>> {
    if agg.agg == Agg::None {
        return None;
    }
    let keys: BTreeSet<String> = sub.q.filters.iter().filter(|f| f.group_by).map(|f| f.tagk.clone()).collect();
    Some(keys.into_iter().collect())
}

/// A compiled filter.
enum Matcher {
    Literals(Vec<String>, bool),
    NotLiterals(Vec<String>, bool),
    Glob(String, bool),
    Regex(Regex),
    NotKey,
}

fn matcher(f: &Filter) -> Result<Matcher, ApiError> {
    let lits = |ci: bool| f.filter.split('|').map(|s| if ci { s.to_lowercase() } else { s.to_owned() }).collect::<Vec<_>>();
    Ok(match f.kind {
        FilterType::LiteralOr => Matcher::Literals(lits(false), false),
        FilterType::ILiteralOr => Matcher::Literals(lits(true), true),
        FilterType::NotLiteralOr => Matcher::NotLiterals(lits(false), false),
        FilterType::NotILiteralOr => Matcher::NotLiterals(lits(true), true),
        FilterType::Wildcard => Matcher::Glob(f.filter.clone(), false),
        FilterType::IWildcard => Matcher::Glob(f.filter.to_lowercase(), true),
        FilterType::Regexp => Matcher::Regex(
            Regex::new(&f.filter).map_err(|e| ApiError::bad(format!("Invalid regular expression: {}", f.filter)).with_details(e.to_string()))?,
        ),
        FilterType::NotKey => Matcher::NotKey,
    })
}

fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let [first, middle @ .., last] = parts.as_slice() else { return pattern == text };
    let Some(mut rest) = text.strip_prefix(first) else { return false };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = rest.get(i + part.len()..).unwrap_or(""),
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

impl Matcher {
    fn matches(&self, value: Option<&str>) -> bool {
        let Some(v) = value else { return matches!(self, Matcher::NotKey) };
        let fold = |ci: bool| if ci { v.to_lowercase() } else { v.to_owned() };
        match self {
            Matcher::Literals(l, ci) => l.contains(&fold(*ci)),
            Matcher::NotLiterals(l, ci) => !l.contains(&fold(*ci)),
            Matcher::Glob(p, ci) => glob(p, &fold(*ci)),
            Matcher::Regex(r) => r.is_match(v),
            Matcher::NotKey => false,
        }
    }
}

fn no_such(kind: Kind, name: &str) -> ApiError {
    let msg = format!("No such name for '{}': '{name}'", kind.name());
    ApiError::bad(msg.clone()).with_details(msg)
}

/// The series a sub-query selects (§4.4 step 1).
fn select(r: &Reads<'_>, sub: &Sub) -> Result<Vec<Arc<Series>>, ApiError> {
    if !sub.tsuids.is_empty() {
        return sub
            .tsuids
            .iter()
            .map(|t| r.index.by_tsuid(t).ok_or_else(|| ApiError::bad(format!("No such series: '{t}'"))))
            .collect();
    }
    // A denormalized name (`__<host>.<metric>`) stands for the series it names.
    let base: Vec<Arc<Series>> = if r.index.has(Kind::Metric, &sub.q.metric) {
        r.index.series_of(&sub.q.metric)
    } else {
        let rules = &r.denormalize;
        let aliased: Vec<Arc<Series>> = rules
            .candidates(&sub.q.metric)
            .flat_map(|m| r.index.series_of(m))
            .filter(|s| rules.alias_of(s).is_some_and(|a| a == sub.q.metric))
            .collect();
        if aliased.is_empty() {
            return Err(no_such(Kind::Metric, &sub.q.metric));
        }
        aliased
    };
    let mut compiled = Vec::new();
    for f in &sub.q.filters {
        if f.kind != FilterType::NotKey && !r.index.has(Kind::TagK, &f.tagk) {
            return Err(no_such(Kind::TagK, &f.tagk));
        }
        if f.kind == FilterType::LiteralOr
            && let Some(v) = f.filter.split('|').find(|v| !r.index.has(Kind::TagV, v))
        {
            return Err(no_such(Kind::TagV, v));
        }
        compiled.push((f.tagk.as_str(), matcher(f)?));
    }
    let explicit: Option<BTreeSet<&str>> =
        sub.q.explicit_tags.then(|| sub.q.filters.iter().filter(|f| f.kind != FilterType::NotKey).map(|f| f.tagk.as_str()).collect());
    let mut selected: Vec<Arc<Series>> = base
        .into_iter()
        .filter(|s| compiled.iter().all(|(k, m)| m.matches(s.tag(k))))
        .filter(|s| explicit.as_ref().is_none_or(|keys| s.key.tags().len() == keys.len() && s.key.tags().iter().all(|(k, _)| keys.contains(k.as_str()))))
        .collect();
    selected.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(selected)
}

/// Refuses (413) a query whose fill policy would emit too many buckets.
fn check_fill_budget(q: &Query, sub: &Sub, series: usize) -> Result<(), ApiError> {
    let Some(d) = sub.q.downsample.as_ref().filter(|d| d.fill != Fill::None) else { return Ok(()) };
    let Some(iv) = d.interval_ms else { return Ok(()) };
    let per_series = (q.end_ms - q.start_ms) / iv + 2;
    if per_series.saturating_mul(series as u64) > MAX_FILL_BUCKETS {
        return Err(ApiError::new(
            hyper::StatusCode::PAYLOAD_TOO_LARGE,
            format!("Sorry, the query would fill {per_series} buckets in each of {series} series; the limit is {MAX_FILL_BUCKETS} in all. Use a longer downsample interval or a shorter range"),
        ));
    }
    Ok(())
}

/// Reads, downsamples and rates every selected series; series with no
/// point in the scanned window are left out.
fn read_all(r: &Reads<'_>, q: &Query, sub: &Sub, series: &[Arc<Series>]) -> Vec<(Arc<Series>, Vec<Pt>)> {
    let ds = sub.q.downsample.as_ref();
    let scan_start = ds.map_or(q.start_ms, |d| bucket_start(d, q.start_ms, q.start_ms));
    let mut out = Vec::new();
    for s in series {
        let (raw, step_ms) = read_series(r, s, scan_start, q.end_ms, ds);
        if raw.is_empty() {
            continue;
        }
        let mut pts = match ds {
            Some(d) => downsample(&widen(d, step_ms), &raw, q.start_ms, q.end_ms),
            None => raw,
        };
        if let Some(rate) = &sub.q.rate {
            pts = rates(rate, &pts);
        }
        out.push((Arc::clone(s), pts));
    }
    out
}

/// A downsample no finer than the rows it reads: an interval below the
/// rows' step, or not a multiple of it, is widened to a whole number of
/// rows. (Averaging 5-minute rows into 172-second buckets stamped at their
/// starts would put rows 172 or 344 s apart and distort every rate.)
fn widen(d: &Downsample, step_ms: u64) -> Downsample {
    match d.interval_ms {
        Some(iv) if !d.calendar && step_ms > 0 && iv % step_ms != 0 => Downsample { interval_ms: Some(iv.div_ceil(step_ms) * step_ms), ..d.clone() },
        _ => d.clone(),
    }
}

/// The known rows of one series stamped within `[from, to]` ms, and the
/// rows' step in ms. A row covers `(t - step, t]` and is reported at `t`.
fn read_series(r: &Reads<'_>, s: &Series, from: u64, to: u64, ds: Option<&Downsample>) -> (Vec<Pt>, u64) {
    let first_sec = i64::try_from(from.div_ceil(1000)).unwrap_or(i64::MAX);
    let last_sec = i64::try_from(to / 1000).unwrap_or(i64::MAX);
    if last_sec < first_sec {
        return (Vec::new(), 0);
    }
    // The fetch starts one second early so that a row stamped at `from` is included.
    let cfs: &[Cf] = match ds.map(|d| d.aggregator.as_str()) {
        Some("max" | "mimmax") => &[Cf::Max, Cf::Average, Cf::Last, Cf::Min],
        Some("min" | "mimmin") => &[Cf::Min, Cf::Average, Cf::Last, Cf::Max],
        _ => &[Cf::Average, Cf::Last, Cf::Max, Cf::Min],
    };
    r.settle(s);
    let fetched = cfs.iter().find_map(|cf| r.store.fetch_from(&s.handle, &FetchRequest::new(*cf, first_sec - 1, last_sec)).ok());
    let Some(f) = fetched else { return (Vec::new(), 0) };
    let step_ms = f.step.saturating_mul(1000);
    let rows = f
        .rows()
        .filter_map(|(t, row)| {
            let v = *row.first()?;
            let t_ms = u64::try_from(t).ok()?.checked_mul(1000)?;
            (!v.is_nan() && t_ms >= from && t_ms <= to).then_some(Pt { t: t_ms, v, int: is_int(v) })
        })
        .collect();
    (rows, step_ms)
}

const DAY_MS: u64 = 86_400_000;

/// The start of the bucket holding `t` (ms).
fn bucket_start(d: &Downsample, t: u64, query_start: u64) -> u64 {
    let Some(iv) = d.interval_ms else { return query_start };
    if d.calendar {
        if iv % (365 * DAY_MS) == 0 {
            let (y, _, _) = civil(t / DAY_MS);
            let n = iv / (365 * DAY_MS);
            let y0 = y - (y - 1970).rem_euclid(i64::try_from(n).unwrap_or(1));
            return days_ms(y0, 1, 1);
        }
        if iv % (30 * DAY_MS) == 0 {
            let (y, m, _) = civil(t / DAY_MS);
            let n = i64::try_from(iv / (30 * DAY_MS)).unwrap_or(1);
            let months = (y - 1970) * 12 + (m - 1);
            let m0 = months - months.rem_euclid(n);
            return days_ms(1970 + m0.div_euclid(12), m0.rem_euclid(12) + 1, 1);
        }
        if iv % (7 * DAY_MS) == 0 {
            // Weeks start on Sunday; 1970-01-04 was one.
            let offset = 3 * DAY_MS;
            return t.saturating_add(iv - offset % iv).saturating_sub(iv) / iv * iv + offset % iv;
        }
    }
    t - t % iv
}

/// (year, month, day) of a day number since 1970-01-01.
fn civil(days: u64) -> (i64, i64, i64) {
    rrdcore::timespec::civil_from_days(i64::try_from(days).unwrap_or(0))
}

fn days_ms(y: i64, m: i64, d: i64) -> u64 {
    u64::try_from(rrdcore::timespec::days_from_civil(y, m, d)).unwrap_or(0) * DAY_MS
}

/// The start of the bucket after the one starting at `b`.
fn next_bucket(d: &Downsample, b: u64) -> u64 {
    let Some(iv) = d.interval_ms else { return u64::MAX };
    if d.calendar && (iv % (30 * DAY_MS) == 0) {
        // Calendar months and years have uneven lengths: step to the next start.
        let mut probe = b + iv;
        while bucket_start(d, probe, 0) > b + iv / 2 && probe > b {
            probe -= DAY_MS;
        }
        let next = bucket_start(d, probe + 3 * DAY_MS, 0);
        return if next > b { next } else { b + iv };
    }
    b.saturating_add(iv)
}

/// Downsamples (§4.5): buckets stamped at their start, values as doubles,
/// empty buckets filled by the fill policy.
fn downsample(d: &Downsample, raw: &[Pt], start: u64, end: u64) -> Vec<Pt> {
    let agg = aggregator(&d.aggregator).map_or(Agg::Avg, |a| a.agg);
    let mut buckets: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for p in raw {
        buckets.entry(bucket_start(d, p.t, start)).or_default().push(p.v);
    }
    let mut out: Vec<Pt> = buckets.iter().map(|(t, vals)| Pt { t: *t, v: run_f64(agg, vals), int: false }).collect();
    let fill = match d.fill {
        Fill::None => return out,
        Fill::Zero => 0.0,
        Fill::Nan | Fill::Null => f64::NAN,
    };
    if d.interval_ms.is_none() {
        return out;
    }
    let mut b = bucket_start(d, start, start);
    let mut filled = Vec::new();
    let mut count = 0u64;
    while b <= end && count < MAX_FILL_BUCKETS {
        filled.push(buckets.get(&b).map_or(Pt { t: b, v: fill, int: false }, |vals| Pt { t: b, v: run_f64(agg, vals), int: false }));
        let next = next_bucket(d, b);
        if next <= b {
            break;
        }
        b = next;
        count += 1;
    }
    out = filled;
    out
}

/// Per-second rates (§4.4): the first point gives none; counters wrap at
/// `counter_max` or drop resets; a wrapped rate above `reset_value` is 0.
fn rates(r: &Rate, pts: &[Pt]) -> Vec<Pt> {
    let mut out = Vec::with_capacity(pts.len());
    let mut prev: Option<Pt> = None;
    for p in pts {
        let Some(p0) = prev else {
            prev = Some(*p);
            continue;
        };
        #[expect(clippy::cast_precision_loss, reason = "millisecond differences are far below 2^53")]
        let dt = (p.t - p0.t) as f64 / 1000.0;
        let delta = p.v - p0.v;
        let rate = if r.counter && delta < 0.0 {
            if r.drop_resets {
                prev = Some(*p);
                continue;
            }
            let rate = (as_f64(r.counter_max) - p0.v + p.v) / dt;
            if r.reset_value > 0 && rate > as_f64(r.reset_value) { 0.0 } else { rate }
        } else {
            delta / dt
        };
        out.push(Pt { t: p.t, v: rate, int: false });
        prev = Some(*p);
    }
    out
}

/// Aggregates a group point by point with the aggregator's interpolation (§4.7).
fn aggregate(agg: Aggregator, rate: bool, members: &[&[Pt]]) -> Vec<Pt> {
    let times: BTreeSet<u64> = members.iter().flat_map(|p| p.iter().map(|x| x.t)).collect();
    let mut cursors = vec![0usize; members.len()];
    let mut out = Vec::with_capacity(times.len());
    let mut vals: Vec<Pt> = Vec::with_capacity(members.len());
    for t in times {
        vals.clear();
        for (pts, cur) in members.iter().zip(cursors.iter_mut()) {
            while pts.get(*cur).is_some_and(|p| p.t < t) {
                *cur += 1;
            }
            if let Some(p) = pts.get(*cur).filter(|p| p.t == t) {
                vals.push(*p);
                continue;
            }
            // Before its first or after its last point, a series takes no part.
            let (Some(prev), Some(next)) = (cur.checked_sub(1).and_then(|i| pts.get(i)), pts.get(*cur)) else { continue };
            vals.push(substitute(agg.interp, rate, *prev, *next, t));
        }
        if vals.is_empty() {
            continue;
        }
        if vals.iter().all(|p| p.int)
            && let Some(i) = run_i64(agg.agg, &vals.iter().map(|p| as_i64(p.v)).collect::<Vec<_>>())
        {
            out.push(Pt { t, v: as_f64(i), int: true });
            continue;
        }
        let fs: Vec<f64> = vals.iter().map(|p| p.v).collect();
        out.push(Pt { t, v: run_f64(agg.agg, &fs), int: false });
    }
    out
}

fn substitute(interp: Interp, rate: bool, prev: Pt, next: Pt, t: u64) -> Pt {
    if rate {
        return Pt { t, ..prev };
    }
    match interp {
        Interp::Zero => Pt { t, v: 0.0, int: prev.int },
        Interp::Max => Pt { t, v: f64::MAX, int: false },
        Interp::Min => Pt { t, v: f64::MIN, int: false },
        Interp::Prev => Pt { t, ..prev },
        Interp::Lerp => {
            let (x0, x1) = (i128::from(prev.t), i128::from(next.t));
            let x = i128::from(t);
            if prev.int && next.int {
                let (y0, y1) = (i128::from(as_i64(prev.v)), i128::from(as_i64(next.v)));
                let y = y0 + (y1 - y0) * (x - x0) / (x1 - x0);
                #[expect(clippy::cast_precision_loss, reason = "between two integers below 2^53")]
                return Pt { t, v: y as f64, int: true };
            }
            #[expect(clippy::cast_precision_loss, reason = "millisecond offsets are far below 2^53")]
            let frac = (x - x0) as f64 / (x1 - x0) as f64;
            Pt { t, v: prev.v + (next.v - prev.v) * frac, int: false }
        }
    }
}

/// One result object (§4.9).
fn render(out: &mut Vec<u8>, r: &Reads<'_>, q: &Query, sub: &Sub, members: &[(Arc<Series>, Vec<Pt>)], dps: &[Pt]) {
    let mut common: BTreeMap<&str, &str> = BTreeMap::new();
    let mut aggregated: BTreeSet<&str> = BTreeSet::new();
    if let Some((first, _)) = members.first() {
        for (k, v) in first.key.tags() {
            common.insert(k, v);
        }
    }
    for (s, _) in members.iter().skip(1) {
        common.retain(|k, v| {
            let same = s.tag(k) == Some(*v);
            if !same {
                aggregated.insert(k);
            }
            same
        });
        for (k, _) in s.key.tags() {
            if !common.contains_key(k.as_str()) {
                aggregated.insert(k);
            }
        }
    }
    let null_nan = r.nan_as_null || sub.q.downsample.as_ref().is_some_and(|d| d.fill == Fill::Null);
    // The name asked for (a denormalized one stays as asked); tsuid queries name none.
    let metric = if sub.q.metric.is_empty() { members.first().map_or("", |(s, _)| s.key.metric()) } else { sub.q.metric.as_str() };
    out.extend_from_slice(b"{\"metric\":");
    put_json(out, &json!(metric));
    out.extend_from_slice(b",\"tags\":");
    put_json(out, &json!(common));
    out.extend_from_slice(b",\"aggregateTags\":");
    put_json(out, &json!(aggregated));
    out.extend_from_slice(b",\"dps\":");
    put_dps(out, q, dps, null_nan);
    if q.show_tsuids {
        let mut ids: Vec<&str> = members.iter().map(|(s, _)| s.tsuid.as_str()).collect();
        ids.sort_unstable();
        out.extend_from_slice(b",\"tsuids\":");
        put_json(out, &json!(ids));
    }
    if q.show_query {
        out.extend_from_slice(b",\"query\":");
        put_json(out, &echo(sub));
    }
    out.push(b'}');
}

fn put_json(out: &mut Vec<u8>, v: &Json) {
    // Writing JSON into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, v);
}

/// `dps` written straight out: `{"t":v,...}` or `[[t,v],...]`, ascending;
/// several points in one second (without msResolution) keep the last.
fn put_dps(out: &mut Vec<u8>, q: &Query, dps: &[Pt], null_nan: bool) {
    let mut num = itoa::Buffer::new();
    out.reserve(dps.len() * 24);
    let stamp = |t: u64| if q.ms_resolution { t } else { t / 1000 };
    out.push(if q.arrays { b'[' } else { b'{' });
    let mut first = true;
    for (i, p) in dps.iter().enumerate() {
        let t = stamp(p.t);
        if dps.get(i + 1).is_some_and(|next| stamp(next.t) == t) {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        if q.arrays {
            out.push(b'[');
            out.extend_from_slice(num.format(t).as_bytes());
            out.push(b',');
        } else {
            out.push(b'"');
            out.extend_from_slice(num.format(t).as_bytes());
            out.extend_from_slice(b"\":");
        }
        if p.int {
            out.extend_from_slice(num.format(as_i64(p.v)).as_bytes());
        } else if p.v.is_finite() {
            put_json(out, &Json::from(p.v));
        } else if p.v.is_nan() && !null_nan {
            out.extend_from_slice(b"\"NaN\"");
        } else {
            out.extend_from_slice(b"null");
        }
        if q.arrays {
            out.push(b']');
        }
    }
    out.push(if q.arrays { b']' } else { b'}' });
}

/// The sub-query as `showQuery` echoes it.
fn echo(sub: &Sub) -> Json {
    let q = &sub.q;
    let filters: Vec<Json> = q
        .filters
        .iter()
        .map(|f| json!({"tagk": f.tagk, "filter": f.filter, "group_by": f.group_by, "type": type_name(f.kind)}))
        .collect();
    let tags: Map<String, Json> =
        q.filters.iter().filter(|f| f.group_by).map(|f| (f.tagk.clone(), json!(format!("{}({})", type_name(f.kind), f.filter)))).collect();
    let rate = q.rate.unwrap_or_default();
    json!({
        "index": sub.index,
        "aggregator": q.aggregator,
        "metric": q.metric,
        "tsuids": sub.tsuids,
        "downsample": q.downsample.as_ref().map(|d| d.spec.clone()),
        "rate": q.rate.is_some(),
        "rateOptions": {"counter": rate.counter, "counterMax": rate.counter_max, "resetValue": rate.reset_value, "dropResets": rate.drop_resets},
        "explicitTags": q.explicit_tags,
        "filters": filters,
        "tags": tags,
    })
}

fn type_name(kind: FilterType) -> &'static str {
    FilterType::ALL.iter().find(|(k, _)| *k == kind).map_or("literal_or", |(_, n)| n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(t: u64, v: f64) -> Pt {
        Pt { t, v, int: is_int(v) }
    }

    #[test]
    fn globs() {
        assert!(glob("web*", "web01"));
        assert!(glob("*", ""));
        assert!(glob("*01", "web01"));
        assert!(glob("w*b*1", "web01"));
        assert!(!glob("w*x*", "web01"));
        assert!(!glob("web", "web01"));
        assert!(glob("a*a", "aa") && !glob("a*a", "a"));
    }

    #[test]
    fn rate_and_counter() {
        let pts = [pt(0, 10.0), pt(10_000, 20.0), pt(20_000, 5.0)];
        let plain = rates(&Rate::default(), &pts);
        assert_eq!(plain.iter().map(|p| p.v).collect::<Vec<_>>(), [1.0, -1.5]);
        let counter = rates(&Rate { counter: true, counter_max: 100, ..Rate::default() }, &pts);
        assert_eq!(counter[1].v, (100.0 - 20.0 + 5.0) / 10.0);
        let reset = rates(&Rate { counter: true, reset_value: 1, ..Rate::default() }, &pts);
        assert_eq!(reset[1].v, 0.0);
        let dropped = rates(&Rate { counter: true, drop_resets: true, ..Rate::default() }, &pts);
        assert_eq!(dropped.len(), 1);
    }

    #[test]
    fn buckets() {
        let d = crate::opentsdb::query::parse_downsample("1m-avg").unwrap();
        assert_eq!(bucket_start(&d, 125_000, 0), 120_000);
        let month = crate::opentsdb::query::parse_downsample("1nc-sum").unwrap();
        // 2023-11-14 22:13:20 UTC -> 2023-11-01.
        assert_eq!(bucket_start(&month, 1_700_000_000_000, 0), 1_698_796_800_000);
        assert_eq!(next_bucket(&month, 1_698_796_800_000), 1_701_388_800_000);
        let week = crate::opentsdb::query::parse_downsample("1wc-sum").unwrap();
        // A Sunday: 2023-11-12.
        assert_eq!(bucket_start(&week, 1_700_000_000_000, 0), 1_699_747_200_000);
    }

    #[test]
    fn interpolation() {
        let a = [pt(0, 10.0), pt(20_000, 30.0)];
        let b = [pt(10_000, 1.0)];
        // b exists only at 10 s, so takes part only there; a is interpolated to 20 there.
        let sum = aggregate(aggregator("sum").unwrap(), false, &[&a, &b]);
        assert_eq!(sum, [pt(0, 10.0), pt(10_000, 21.0), pt(20_000, 30.0)]);
        assert!(sum.iter().all(|p| p.int));
        // zimsum: a missing point counts as zero (but b still only between its ends).
        let z = aggregate(aggregator("zimsum").unwrap(), false, &[&a, &b]);
        assert_eq!(z.iter().map(|p| p.v).collect::<Vec<_>>(), [10.0, 1.0, 30.0]);
        // Integer average truncates; a float input makes the answer a double.
        let c = [pt(0, 1.0)];
        let d = [pt(0, 2.0)];
        assert_eq!(aggregate(aggregator("avg").unwrap(), false, &[&c, &d]), [pt(0, 1.0)]);
        let e = [Pt { t: 0, v: 2.5, int: false }];
        assert_eq!(aggregate(aggregator("avg").unwrap(), false, &[&c, &e])[0].v, 1.75);
        // mimmin: a missing value never wins a minimum.
        let f = [pt(0, 5.0), pt(20_000, 5.0)];
        let g = [pt(10_000, 7.0)];
        assert_eq!(aggregate(aggregator("mimmin").unwrap(), false, &[&f, &g])[1].v, 7.0);
        assert_eq!(aggregate(aggregator("min").unwrap(), false, &[&f, &g])[1].v, 5.0);
    }

    #[test]
    fn fills() {
        let d = crate::opentsdb::query::parse_downsample("1m-sum-zero").unwrap();
        let raw = [pt(60_000, 1.0), pt(90_000, 2.0), pt(240_000, 4.0)];
        let out = downsample(&d, &raw, 60_000, 300_000);
        assert_eq!(out.iter().map(|p| (p.t, p.v)).collect::<Vec<_>>(), [(60_000, 3.0), (120_000, 0.0), (180_000, 0.0), (240_000, 4.0), (300_000, 0.0)]);
        assert!(out.iter().all(|p| !p.int));
        let none = crate::opentsdb::query::parse_downsample("1m-max").unwrap();
        assert_eq!(downsample(&none, &raw, 60_000, 300_000).len(), 2);
    }
}
