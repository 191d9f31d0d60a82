//! `/api/query`: the request in its GET (`m=`) and POST (JSON) forms
//! (`opentsdb-api.md` §4.1-4.3), and the pipeline in [`exec`].

pub mod agg;
pub mod exec;

use serde_json::{Map, Value as Json};

use super::http::{ApiError, Params};
use crate::opentsdb::query::{Filter, FilterType, Rate, SubQuery, is_aggregator, parse_downsample, parse_m, parse_time};

/// One sub-query with what it needs beyond [`SubQuery`].
#[derive(Debug, Clone, PartialEq)]
pub struct Sub {
    /// The parsed sub-query.
    pub q: SubQuery,
    /// Series IDs, when the sub-query names series directly.
    pub tsuids: Vec<String>,
    /// Position in the request (`query.index` with `showQuery`).
    pub index: usize,
}

/// A whole query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Start, milliseconds.
    pub start_ms: u64,
    /// End, milliseconds.
    pub end_ms: u64,
    /// Millisecond keys in `dps`.
    pub ms_resolution: bool,
    /// `dps` as `[[t, v], ...]`.
    pub arrays: bool,
    /// Echo each sub-query back.
    pub show_query: bool,
    /// List member series IDs.
    pub show_tsuids: bool,
    /// The sub-queries.
    pub subs: Vec<Sub>,
}

fn times(start: Option<String>, end: Option<String>, now_ms: u64, missing: &str) -> Result<(u64, u64), ApiError> {
    let start = start.ok_or_else(|| ApiError::bad(missing))?;
    let start_ms = parse_time(&start, now_ms).map_err(ApiError::bad)?;
    let end_ms = match end.filter(|e| !e.trim().is_empty()) {
        Some(e) => parse_time(&e, now_ms).map_err(ApiError::bad)?,
        None => now_ms,
    };
    if end_ms < start_ms {
        return Err(ApiError::bad(format!("End time [{end_ms}] must be greater than or equal to the start time [{start_ms}]")));
    }
    Ok((start_ms, end_ms))
}

impl Query {
    /// The GET form: `start`, `end`, `m=` and `tsuid=` sub-queries, flags.
    pub fn from_params(p: &Params, now_ms: u64) -> Result<Query, ApiError> {
        let (start_ms, end_ms) = times(p.get("start").map(str::to_owned), p.get("end").map(str::to_owned), now_ms, "Missing parameter <code>start</code>")?;
        let mut subs = Vec::new();
        for m in p.all("m") {
            let q = parse_m(m).map_err(ApiError::bad)?;
            subs.push(Sub { q, tsuids: Vec::new(), index: subs.len() });
        }
        for t in p.all("tsuid") {
            let (head, ids) = t.rsplit_once(':').ok_or_else(|| ApiError::bad(format!("Invalid parameter tsuid={t}")))?;
            // Reuse the m= grammar for the aggregator and modifiers.
            let mut q = parse_m(&format!("{head}:tsuids")).map_err(ApiError::bad)?;
            q.metric = String::new();
            let tsuids = ids.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect();
            subs.push(Sub { q, tsuids, index: subs.len() });
        }
        if subs.is_empty() {
            return Err(ApiError::bad("Missing sub queries"));
        }
        Ok(Query {
            start_ms,
            end_ms,
            ms_resolution: p.flag("ms"),
            arrays: p.flag("arrays"),
            show_query: p.flag("show_query"),
            show_tsuids: p.flag("show_tsuids"),
            subs,
        })
    }

    /// The POST form (a JSON body); `arrays` may come in the query string.
    pub fn from_json(body: &[u8], p: &Params, now_ms: u64) -> Result<Query, ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad("Missing message content").with_details("Supply valid JSON formatted data in the body of your request"));
        }
        let json: Json = serde_json::from_slice(body).map_err(|e| ApiError::bad("Unable to parse the given JSON").with_details(e.to_string()))?;
        let obj = json.as_object().ok_or_else(|| ApiError::bad("Unable to parse the given JSON").with_details("expected an object"))?;
        if let Some(tz) = obj.get("timezone").and_then(Json::as_str) {
            check_timezone(tz)?;
        }
        if flag(obj, "delete") {
            return Err(ApiError::bad("Bad request").with_details("Deleting data is not enabled (tsd.http.query.allow_delete=false)"));
        }
        let (start_ms, end_ms) = times(text(obj.get("start")), text(obj.get("end")), now_ms, "Missing start time")?;
        let queries = obj.get("queries").and_then(Json::as_array).filter(|q| !q.is_empty()).ok_or_else(|| ApiError::bad("Missing queries"))?;
        let mut subs: Vec<Sub> = Vec::new();
        for (index, sq) in queries.iter().enumerate() {
            let sq = sq.as_object().ok_or_else(|| ApiError::bad("Unable to parse the given JSON").with_details("each query must be an object"))?;
            let (q, tsuids) = sub_from_json(sq)?;
            // Identical sub-queries are answered once.
            if !subs.iter().any(|s| s.q == q && s.tsuids == tsuids) {
                subs.push(Sub { q, tsuids, index });
            }
        }
        Ok(Query {
            start_ms,
            end_ms,
            ms_resolution: flag(obj, "msResolution") || p.flag("ms"),
            arrays: p.flag("arrays"),
            show_query: flag(obj, "showQuery") || p.flag("show_query"),
            show_tsuids: flag(obj, "showTSUIDs") || p.flag("show_tsuids"),
            subs,
        })
    }
}

/// Only UTC (and fixed zero offsets) are supported for absolute dates and
/// calendar downsampling; another zone is refused rather than misread.
fn check_timezone(tz: &str) -> Result<(), ApiError> {
    let utc = ["UTC", "GMT", "Z", "Etc/UTC", "Etc/GMT", "UCT", "Universal", "Zulu", "+00:00", "-00:00", "GMT+0", "GMT-0", "Etc/GMT+0", "Etc/GMT-0"];
    if tz.is_empty() || utc.iter().any(|u| u.eq_ignore_ascii_case(tz)) {
        Ok(())
    } else {
        Err(ApiError::bad(format!("Unsupported timezone: {tz}")).with_details("this server reads absolute dates and calendar buckets in UTC only"))
    }
}

/// A JSON scalar as text (numbers are read as their decimal text).
fn text(v: Option<&Json>) -> Option<String> {
    match v? {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A boolean field, also given as `"true"`.
fn flag(obj: &Map<String, Json>, key: &str) -> bool {
    match obj.get(key) {
        Some(Json::Bool(b)) => *b,
        Some(Json::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn int(obj: &Map<String, Json>, key: &str, default: i64) -> Result<i64, ApiError> {
    match obj.get(key) {
        None | Some(Json::Null) => Ok(default),
        Some(Json::Number(n)) => {
            #[expect(clippy::cast_possible_truncation, reason = "OpenTSDB truncates floats given for integers")]
            let v = n.as_i64().or_else(|| n.as_f64().map(|f| f as i64));
            v.ok_or_else(|| ApiError::bad(format!("Invalid {key}: {n}")))
        }
        Some(Json::String(s)) => s.trim().parse().map_err(|_| ApiError::bad(format!("Invalid {key}: {s}"))),
        Some(other) => Err(ApiError::bad(format!("Invalid {key}: {other}"))),
    }
}

fn sub_from_json(sq: &Map<String, Json>) -> Result<(SubQuery, Vec<String>), ApiError> {
    let aggregator = text(sq.get("aggregator")).filter(|a| !a.is_empty()).ok_or_else(|| ApiError::bad("Missing the aggregation function"))?;
    if !is_aggregator(&aggregator) {
        return Err(ApiError::bad(format!("No such aggregation function: {aggregator}")));
    }
    let tsuids: Vec<String> = sq.get("tsuids").and_then(Json::as_array).map(|a| a.iter().filter_map(|t| text(Some(t))).collect()).unwrap_or_default();
    let metric = text(sq.get("metric")).unwrap_or_default();
    if metric.is_empty() && tsuids.is_empty() {
        return Err(ApiError::bad("Missing the metric or tsuids, provide at least one"));
    }
    let rate = if flag(sq, "rate") {
        let empty = Map::new();
        let o = sq.get("rateOptions").and_then(Json::as_object).unwrap_or(&empty);
        Some(Rate {
            counter: flag(o, "counter"),
            drop_resets: flag(o, "dropResets"),
            counter_max: int(o, "counterMax", i64::MAX)?,
            reset_value: int(o, "resetValue", 0)?,
        })
    } else {
        None
    };
    let downsample = match text(sq.get("downsample")).filter(|d| !d.trim().is_empty()) {
        Some(d) => Some(parse_downsample(d.trim()).map_err(ApiError::bad)?),
        None => None,
    };
    let mut filters = Vec::new();
    if let Some(tags) = sq.get("tags").and_then(Json::as_object) {
        for (k, v) in tags {
            let v = text(Some(v)).unwrap_or_default();
            filters.push(typed_or_shortcut(k, &v, true)?);
        }
    }
    if let Some(list) = sq.get("filters").and_then(Json::as_array) {
        for f in list {
            let f = f.as_object().ok_or_else(|| ApiError::bad("Unable to parse the given JSON").with_details("each filter must be an object"))?;
            let kind = text(f.get("type")).ok_or_else(|| ApiError::bad("Missing filter type"))?;
            let tagk = text(f.get("tagk")).filter(|t| !t.is_empty()).ok_or_else(|| ApiError::bad("Missing tagk in filter"))?;
            let filter = text(f.get("filter")).unwrap_or_default();
            let kind = FilterType::from_name(&kind).map_err(ApiError::bad)?;
            if kind != FilterType::NotKey && filter.is_empty() {
                return Err(ApiError::bad(format!("Missing filter expression for tagk {tagk}")));
            }
            filters.push(Filter { kind, tagk, filter, group_by: flag(f, "groupBy") });
        }
    }
    for f in &filters {
        if f.kind == FilterType::Regexp {
            regex::Regex::new(&f.filter).map_err(|e| ApiError::bad(format!("Invalid regular expression: {}", f.filter)).with_details(e.to_string()))?;
        }
    }
    let q = SubQuery { aggregator, metric, rate, downsample, filters, explicit_tags: flag(sq, "explicitTags") };
    Ok((q, tsuids))
}

/// A `tags` map value: `type(expr)` or a shortcut (`*`, glob, `a|b`).
fn typed_or_shortcut(k: &str, v: &str, group_by: bool) -> Result<Filter, ApiError> {
    if let Some(i) = v.find('(')
        && v.ends_with(')')
        && let Some((name, expr)) = v.split_at_checked(i)
        && FilterType::ALL.iter().any(|(_, n)| *n == name)
    {
        let kind = FilterType::from_name(name).map_err(ApiError::bad)?;
        let inner = expr.get(1..expr.len() - 1).unwrap_or("");
        return Ok(Filter { kind, tagk: k.to_owned(), filter: inner.to_owned(), group_by });
    }
    Ok(Filter::shortcut(k, v, group_by))
}
