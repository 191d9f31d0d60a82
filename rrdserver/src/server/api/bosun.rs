//! Bosun's endpoints (`bosun-api.md` §2-§3): metadata in and out,
//! `/api/index`, the search listings, `/api/last`, `/api/host` and
//! `/api/graph`. Bad input gets a 4xx with a plain-text reason.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde_json::{Map, Value as Json, json};

use super::Ctx;
use super::query::now_ms;
use crate::opentsdb::put::parse_borrowed;
use crate::server::app::{App, Reads};
use crate::server::bosun::host;
use crate::server::bosun::meta::{MetaDb, MetaWrite, go_text, tagset_text};
use crate::server::http::{ApiError, Resp, bytes_response, empty, json_response, read_body};
use crate::server::index::Series;
use crate::server::query::{Query, exec};

fn text_error(status: StatusCode, msg: impl Into<String>) -> ApiError {
    ApiError::new(status, msg)
}

fn ok(body: &Json, ctx: &Ctx) -> Result<Resp, ApiError> {
    Ok(json_response(StatusCode::OK, body, ctx.gzip))
}

fn get_only(ctx: &Ctx) -> Result<(), ApiError> {
    if ctx.method == Method::GET || ctx.method == Method::POST { Ok(()) } else { Err(ApiError::method(&ctx.method)) }
}

/// `POST /api/metadata/put`: 204 once stored durably.
pub(super) async fn metadata_put(app: &Arc<App>, req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    if ctx.method != Method::POST && ctx.method != Method::PUT {
        return Err(ApiError::method(&ctx.method));
    }
    let body = read_body(req, app.config.max_body_bytes).await?;
    let json: Json = serde_json::from_slice(&body).map_err(|e| ApiError::bad("Unable to parse the metadata JSON").with_details(e.to_string()))?;
    let items = match json {
        Json::Array(a) => a,
        other @ Json::Object(_) => vec![other],
        _ => return Err(ApiError::bad("Metadata must be a JSON array of {\"Metric\",\"Tags\",\"Name\",\"Value\"} objects")),
    };
    let mut writes = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let bad = |why: &str| ApiError::bad(format!("metadata item {i}: {why}"));
        let obj = item.as_object().ok_or_else(|| bad("not an object"))?;
        let name = obj.get("Name").and_then(Json::as_str).filter(|n| !n.is_empty()).ok_or_else(|| bad("missing Name"))?;
        let metric = obj.get("Metric").and_then(Json::as_str).unwrap_or_default();
        if matches!(name, "desc" | "unit" | "rate") && metric.is_empty() {
            return Err(bad("desc, rate, and unit require metric name"));
        }
        let mut tags: Vec<(String, String)> = match obj.get("Tags") {
            None | Some(Json::Null) => Vec::new(),
            Some(Json::Object(t)) => t.iter().map(|(k, v)| (k.clone(), go_text(v))).collect(),
            Some(_) => return Err(bad("Tags must be an object")),
        };
        tags.sort();
        if !metric.is_empty() {
            crate::opentsdb::point::check_metric(metric).map_err(|e| bad(&e))?;
        }
        writes.push(MetaWrite { metric: metric.to_owned(), tags, name: name.to_owned(), value: obj.get("Value").map(go_text).unwrap_or_default() });
    }
    let app2 = Arc::clone(app);
    let now = i64::try_from(now_ms() / 1000).unwrap_or(0);
    tokio::task::spawn_blocking(move || app2.meta.put(&writes, now))
        .await
        .map_err(|e| text_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| text_error(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `GET /api/metadata/get?metric=m` or `?tagk=..&tagv=..[&tagk=..&tagv=..]`.
pub(super) fn metadata_get(meta: &MetaDb, ctx: &Ctx) -> Result<Resp, ApiError> {
    get_only(ctx)?;
    if let Some(metric) = ctx.params.get("metric") {
        let m = meta.metric(metric).ok_or_else(|| text_error(StatusCode::NOT_FOUND, format!("no metadata for metric {metric}")))?;
        let list: Vec<Json> = [("desc", &m.desc), ("unit", &m.unit), ("rate", &m.rate)]
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(n, v)| json!({"Metric": metric, "Name": n, "Value": v}))
            .collect();
        return ok(&Json::Array(list), ctx);
    }
    let ks: Vec<&str> = ctx.params.all("tagk").collect();
    let vs: Vec<&str> = ctx.params.all("tagv").collect();
    if ks.len() != vs.len() {
        return Err(ApiError::bad("tagk and tagv must come in pairs"));
    }
    let pairs: Vec<(&str, &str)> = ks.into_iter().zip(vs).collect();
    let list: Vec<Json> = meta
        .tags_containing(&pairs)
        .into_iter()
        .map(|m| {
            let tags: Map<String, Json> = m.tags.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            json!({"Tags": tags, "Name": m.name, "Value": m.value, "Time": rfc3339(m.time)})
        })
        .collect();
    ok(&Json::Array(list), ctx)
}

/// `2026-11-22T03:43:09Z`.
fn rfc3339(secs: i64) -> String {
    // "YYYY-MM-DD HH:MM:SS UTC" -> "YYYY-MM-DDTHH:MM:SSZ".
    let t = rrdcore::timespec::utc_datetime(secs);
    format!("{}Z", t.trim_end_matches(" UTC").replacen(' ', "T", 1))
}

/// Every listed name of every series: its metric, and its denormalized
/// alias when a rule applies.
fn names(r: &Reads<'_>) -> Vec<(String, Arc<Series>)> {
    let mut out = Vec::new();
    for s in r.index.all_series() {
        if let Some(alias) = r.denormalize.alias_of(&s) {
            out.push((alias, Arc::clone(&s)));
        }
        out.push((s.key.metric().to_owned(), s));
    }
    out
}

/// The `since` cut-off in ms: epoch seconds, a duration (`3d`) back from
/// now, or `default` (3 days); `None` when not asked and `dflt` is false.
fn since_ms(ctx: &Ctx, dflt: bool) -> Result<Option<u64>, ApiError> {
    let three_days = 3 * 86_400_000;
    match ctx.params.get("since") {
        None if dflt => Ok(Some(now_ms().saturating_sub(three_days))),
        None => Ok(None),
        Some("default") => Ok(Some(now_ms().saturating_sub(three_days))),
        Some(s) if s.bytes().all(|b| b.is_ascii_digit()) && !s.is_empty() => Ok(Some(s.parse::<u64>().map_err(|_| ApiError::bad(format!("Invalid since: {s}")))? * 1000)),
        Some(s) => {
            let d = crate::opentsdb::query::parse_duration(s).map_err(|e| ApiError::bad(format!("Invalid since: {e}")))?;
            Ok(Some(now_ms().saturating_sub(d)))
        }
    }
}

fn seen_since(r: &Reads<'_>, s: &Series, since: Option<u64>) -> bool {
    since.is_none_or(|cut| r.last_point(s).is_some_and(|l| l.time_ms >= cut))
}

/// `/api/metric`, `/api/metric/{tagk}`, `/api/metric/{tagk}/{tagv}`.
pub(super) fn metric(r: &Reads<'_>, ctx: &Ctx, rest: &[String]) -> Result<Resp, ApiError> {
    get_only(ctx)?;
    match rest {
        [] => {
            let since = since_ms(ctx, false)?;
            let unfiltered = ctx.params.flag("unfiltered");
            let set: BTreeSet<String> =
                names(r).into_iter().filter(|(n, s)| (unfiltered || !n.starts_with("__")) && seen_since(r, s, since)).map(|(n, _)| n).collect();
            ok(&json!(set), ctx)
        }
        [tagk] => {
            let since = since_ms(ctx, true)?;
            let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for (name, s) in names(r) {
                if let Some(v) = s.tag(tagk)
                    && seen_since(r, &s, since)
                {
                    map.entry(v.to_owned()).or_default().insert(name);
                }
            }
            ok(&json!(map), ctx)
        }
        [tagk, tagv] => {
            let since = since_ms(ctx, true)?;
            let set: BTreeSet<String> = names(r).into_iter().filter(|(_, s)| s.tag(tagk) == Some(tagv.as_str()) && seen_since(r, s, since)).map(|(n, _)| n).collect();
            ok(&json!(set), ctx)
        }
        _ => Err(ApiError::new(StatusCode::NOT_FOUND, "Endpoint not found")),
    }
}

/// The series a (possibly denormalized) metric name stands for.
fn series_named(r: &Reads<'_>, metric: &str) -> Vec<Arc<Series>> {
    let direct = r.index.series_of(metric);
    if !direct.is_empty() {
        return direct;
    }
    r.denormalize
        .candidates(metric)
        .flat_map(|m| r.index.series_of(m))
        .filter(|s| r.denormalize.alias_of(s).is_some_and(|a| a == metric))
        .collect()
}

/// `/api/tagk/{metric}`: tag keys ever seen with the metric.
pub(super) fn tagk(r: &Reads<'_>, ctx: &Ctx, metric: &str) -> Result<Resp, ApiError> {
    get_only(ctx)?;
    let keys: BTreeSet<String> = series_named(r, metric).iter().flat_map(|s| s.key.tags().iter().map(|(k, _)| k.clone())).collect();
    ok(&json!(keys), ctx)
}

/// `/api/tagv/{tagk}[/{metric}]`.
pub(super) fn tagv(r: &Reads<'_>, ctx: &Ctx, tagk: &str, metric: Option<&str>) -> Result<Resp, ApiError> {
    get_only(ctx)?;
    let since = since_ms(ctx, true)?;
    let series = match metric {
        Some(m) => series_named(r, m),
        None => r.index.all_series(),
    };
    let values: BTreeSet<String> = series.iter().filter(|s| seen_since(r, s, since)).filter_map(|s| s.tag(tagk).map(str::to_owned)).collect();
    ok(&json!(values), ctx)
}

/// `/api/tagsets/{metric}?tags=k=v,...&since=...`.
pub(super) fn tagsets(r: &Reads<'_>, ctx: &Ctx, metric: &str) -> Result<Resp, ApiError> {
    get_only(ctx)?;
    let since = since_ms(ctx, false)?;
    let mut want = Vec::new();
    for pair in ctx.params.get("tags").unwrap_or_default().split(',').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').ok_or_else(|| ApiError::bad(format!("Invalid tags pair '{pair}': expected k=v")))?;
        want.push((k.to_owned(), v.to_owned()));
    }
    let mut sets: Vec<Map<String, Json>> = series_named(r, metric)
        .iter()
        .filter(|s| want.iter().all(|(k, v)| s.tag(k) == Some(v.as_str())) && seen_since(r, s, since))
        .map(|s| s.key.tags().iter().map(|(k, v)| (k.clone(), json!(v))).collect())
        .collect();
    sets.sort_by_key(|m| Json::Object(m.clone()).to_string());
    sets.dedup();
    ok(&Json::Array(sets.into_iter().map(Json::Object).collect()), ctx)
}

/// `/api/last?metric=m&tagset={k=v,...}[&counter]`.
pub(super) fn last(r: &Reads<'_>, ctx: &Ctx) -> Result<Resp, ApiError> {
    get_only(ctx)?;
    let metric = ctx.params.get("metric").ok_or_else(|| ApiError::bad("Missing parameter metric"))?;
    let tagset = ctx.params.get("tagset").unwrap_or("{}");
    let mut want: Vec<(String, String)> = tagset
        .trim_start_matches('{')
        .trim_end_matches('}')
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).ok_or_else(|| ApiError::bad(format!("Invalid tagset: {tagset}"))))
        .collect::<Result<_, _>>()?;
    want.sort();
    let s = series_named(r, metric).into_iter().find(|s| s.key.tags() == want.as_slice());
    let l = s.and_then(|s| r.last_point(&s)).ok_or_else(|| text_error(StatusCode::NOT_FOUND, "no match"))?;
    let value = if ctx.params.flag("counter") { l.rate } else { l.value };
    ok(&json!({"Value": host::num(value), "Timestamp": l.time_ms / 1000}), ctx)
}

/// `/api/metadata/metrics[?metric=m]`.
pub(super) fn metadata_metrics(r: &Reads<'_>, meta: &MetaDb, ctx: &Ctx) -> Result<Resp, ApiError> {
    get_only(ctx)?;
    let entry = |metric: &str, series: &[Arc<Series>]| -> Json {
        let mut o = Map::new();
        if let Some(m) = meta.metric(metric) {
            for (k, v) in [("Desc", &m.desc), ("Unit", &m.unit), ("Rate", &m.rate)] {
                if !v.is_empty() {
                    o.insert(k.into(), json!(v));
                }
            }
            o.insert("LastTouched".into(), json!(m.touched));
        }
        let keys: BTreeSet<&str> = series.iter().flat_map(|s| s.key.tags().iter().map(|(k, _)| k.as_str())).collect();
        o.insert("TagKeys".into(), if keys.is_empty() { Json::Null } else { json!(keys) });
        Json::Object(o)
    };
    if let Some(metric) = ctx.params.get("metric") {
        // `__vm.os.cpu` answers with the metadata of `os.cpu`.
        let meta_name = if metric.starts_with("__") { metric.split_once('.').map_or(metric, |(_, rest)| rest) } else { metric };
        return ok(&entry(meta_name, &series_named(r, metric)), ctx);
    }
    let mut all: BTreeMap<String, Vec<Arc<Series>>> = BTreeMap::new();
    for s in r.index.all_series() {
        all.entry(s.key.metric().to_owned()).or_default().push(s);
    }
    for (m, _) in meta.metrics() {
        all.entry(m).or_default();
    }
    let out: Map<String, Json> = all.iter().filter(|(m, _)| !m.starts_with("__")).map(|(m, s)| (m.clone(), entry(m, s))).collect();
    ok(&Json::Object(out), ctx)
}

/// `/api/index`: the points are indexed (last value, rate, names), not stored.
pub(super) async fn index(app: &Arc<App>, req: Request<Incoming>, _ctx: &Ctx) -> Result<Resp, ApiError> {
    let raw = read_body(req, app.config.max_body_bytes).await?;
    // tsdbrelay sends gzip without saying so: try it, fall back to the bytes as they are.
    let body = {
        let mut out = Vec::new();
        let limit = u64::try_from(app.config.max_body_bytes).unwrap_or(u64::MAX) + 1;
        let inflated = std::io::Read::read_to_end(&mut std::io::Read::take(flate2::read::MultiGzDecoder::new(&raw[..]), limit), &mut out);
        if inflated.is_ok() && !out.is_empty() {
            if out.len() > app.config.max_body_bytes {
                return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "Decompressed request body too large"));
            }
            out
        } else {
            raw
        }
    };
    let app2 = Arc::clone(app);
    tokio::task::spawn_blocking(move || index_points(&app2, &body))
        .await
        .map_err(|e| text_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(empty(StatusCode::OK))
}

fn index_points(app: &App, body: &[u8]) -> Result<(), ApiError> {
    let parsed = parse_borrowed(body, app.config.max_tags).map_err(|e| ApiError::bad(e.message()).with_details(e.details().unwrap_or_default()))?;
    let mut key = String::new();
    let mut unstored = Vec::new();
    for p in parsed.into_iter().flatten() {
        if app.is_denormalized_copy(&p) {
            continue;
        }
        let Ok(series) = app.resolve(&p, &mut key) else { continue };
        let v = p.value.as_f64();
        series.observe(p.timestamp_ms, v);
        if !app.store.exists(&series.handle) {
            unstored.push((key.clone(), v, p.timestamp_ms));
        }
    }
    app.meta.put_indexed(&unstored).map_err(|e| text_error(StatusCode::INTERNAL_SERVER_ERROR, e))
}

/// `GET /api/host`.
pub(super) async fn hosts(app: &Arc<App>, ctx: &Ctx) -> Result<Resp, ApiError> {
    get_only(ctx)?;
    let app2 = Arc::clone(app);
    let body = tokio::task::spawn_blocking(move || host::hosts(&app2.reads(), &app2.meta, now_ms()))
        .await
        .map_err(|e| text_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    ok(&body, ctx)
}

/// `GET /api/graph?json=<query>[&autods=N]` (or `b64=`): Bosun's graph answer.
pub(super) async fn graph(app: &Arc<App>, ctx: &Ctx) -> Result<Resp, ApiError> {
    get_only(ctx)?;
    let text = match (ctx.params.get("json"), ctx.params.get("b64")) {
        (Some(j), _) => j.to_owned(),
        (None, Some(b)) => String::from_utf8(base64(b).ok_or_else(|| ApiError::bad("b64 is not valid base64"))?).map_err(|_| ApiError::bad("b64 is not UTF-8"))?,
        (None, None) => return Err(ApiError::bad("Missing parameter json (an OpenTSDB query)")),
    };
    let mut req: Json = serde_json::from_str(&text).map_err(|e| ApiError::bad("Unable to parse the json parameter").with_details(e.to_string()))?;
    let now = now_ms();
    let start_ms = graph_time(req.get("start"), now)?.ok_or_else(|| ApiError::bad("Missing start time"))?;
    let end_ms = graph_time(req.get("end"), now)?;
    let autods = ctx.params.get("autods").map(|a| a.parse::<u64>().map_err(|_| ApiError::bad(format!("Invalid autods: {a}")))).transpose()?;
    if let Some(obj) = req.as_object_mut() {
        obj.insert("start".into(), json!(start_ms / 1000));
        match end_ms {
            Some(e) => obj.insert("end".into(), json!(e / 1000)),
            None => obj.remove("end"),
        };
        // autods: one point per duration/N seconds when that exceeds 15 s.
        if let Some(n) = autods.filter(|n| *n > 0) {
            let span_s = end_ms.unwrap_or(now).saturating_sub(start_ms) / 1000;
            let interval = span_s / n;
            if interval > 15
                && let Some(Json::Array(qs)) = obj.get_mut("queries")
            {
                for q in qs.iter_mut().filter_map(Json::as_object_mut) {
                    q.insert("downsample".into(), json!(format!("{interval}s-avg")));
                }
            }
        }
    }
    let body = req.to_string();
    let q = Query::from_json(body.as_bytes(), &crate::server::http::Params::default(), now)?;
    let app2 = Arc::clone(app);
    let q2 = q.clone();
    let out = tokio::task::spawn_blocking(move || exec::run(&app2.reads(), &q2)).await.map_err(|e| text_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    let results: Vec<Json> = serde_json::from_slice(&out).unwrap_or_default();
    let mut series = Vec::new();
    for r in &results {
        let Some(dps) = r.get("dps").and_then(Json::as_object).filter(|d| !d.is_empty()) else { continue };
        let metric = r.get("metric").and_then(Json::as_str).unwrap_or_default();
        let tags = r.get("tags").and_then(Json::as_object).cloned().unwrap_or_default();
        let tag_pairs: Vec<(String, String)> = tags.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect();
        let name = if tag_pairs.is_empty() { metric.to_owned() } else { format!("{metric}{}", tagset_text(&tag_pairs)) };
        let mut data: Vec<(u64, Json)> = dps.iter().filter_map(|(t, v)| Some((t.parse().ok()?, v.clone()))).collect();
        data.sort_by_key(|(t, _)| *t);
        let data: Vec<Json> = data.into_iter().map(|(t, v)| json!([t, v])).collect();
        series.push(json!({"Name": name, "Metric": metric, "Tags": tags, "Data": data, "Unit": ""}));
    }
    let queries: Vec<Json> = if series.is_empty() { Vec::new() } else { q.subs.iter().map(|s| json!(query_text(s, start_ms, end_ms))).collect() };
    let answer = json!({
        "Queries": queries,
        "Series": if series.is_empty() { Json::Null } else { Json::Array(series) },
        "Annotations": Json::Null,
        "Warnings": [],
    });
    Ok(bytes_response(StatusCode::OK, answer.to_string().into_bytes(), "application/json", ctx.gzip))
}

/// Bosun's display form of a sub-query: `q("sum:172s-avg:rate{counter,,1}:m{k=v}", "", "")`.
fn query_text(s: &crate::server::query::Sub, start_ms: u64, end_ms: Option<u64>) -> String {
    let q = &s.q;
    let mut t = q.aggregator.clone();
    if let Some(d) = &q.downsample {
        t.push(':');
        t.push_str(&d.spec);
    }
    if let Some(r) = &q.rate {
        t.push_str(":rate");
        if r.counter {
            let max = if r.counter_max == i64::MAX { String::new() } else { r.counter_max.to_string() };
            let reset = if r.reset_value == 0 { String::new() } else { r.reset_value.to_string() };
            t.push_str(&format!("{{counter,{max},{reset}}}"));
        }
    }
    let mut filters: Vec<String> = q.filters.iter().filter(|f| f.group_by).map(|f| format!("{}={}", f.tagk, f.filter)).collect();
    filters.sort();
    t.push_str(&format!(":{}{{{}}}", q.metric, filters.join(",")));
    let span = end_ms.map(|e| format!("{}s", e.saturating_sub(start_ms) / 1000)).unwrap_or_default();
    format!("q(\"{t}\", \"{span}\", \"\")")
}

/// A graph time: `yyyy/MM/dd[-HH[:mm[:ss]]]` in UTC, epoch seconds (number
/// or string), or OpenTSDB's relative forms; in ms.
fn graph_time(v: Option<&Json>, now: u64) -> Result<Option<u64>, ApiError> {
    let text = match v {
        None | Some(Json::Null) => return Ok(None),
        Some(Json::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(Json::String(s)) => s.clone(),
        Some(Json::Number(n)) => n.to_string(),
        Some(other) => return Err(ApiError::bad(format!("Invalid time: {other}"))),
    };
    crate::opentsdb::query::parse_time(&text, now).map(Some).map_err(ApiError::bad)
}

/// Standard base64 (padding optional; URL-safe letters accepted).
fn base64(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' | b' ' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        }))
    };
    let bytes: Vec<u8> = s.bytes().filter(|b| *b != b'=' && !b.is_ascii_whitespace() || *b == b' ').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            acc |= val(*c)? << (18 - 6 * i);
        }
        let n = match chunk.len() {
            4 => 3,
            3 => 2,
            2 => 1,
            _ => return None,
        };
        for shift in [16u32, 8, 0].into_iter().take(n) {
            out.push(u8::try_from((acc >> shift) & 0xff).ok()?);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes() {
        assert_eq!(base64("eyJhIjoxfQ==").unwrap(), b"{\"a\":1}");
        assert_eq!(base64("eyJhIjoxfQ").unwrap(), b"{\"a\":1}");
        assert!(base64("!!").is_none());
    }

    #[test]
    fn dates() {
        assert_eq!(rfc3339(1_795_318_989), "2026-11-22T03:43:09Z");
    }
}
