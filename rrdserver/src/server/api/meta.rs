//! Names and the server itself: `/api/suggest`, `/api/search/lookup`
//! (`opentsdb-api.md` §6), `/api/aggregators`, `/api/config[/filters]`,
//! `/api/version`, `/api/stats`, `/api/dropcaches`, `/api/serializers`,
//! `/api/status` (§7).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde_json::{Map, Value as Json, json};

use super::Ctx;
use crate::opentsdb::query::{AGGREGATORS, FilterType};
use crate::server::app::App;
use crate::server::http::{ApiError, Resp, json_response, read_body};
use crate::server::index::{Kind, Series};

fn ok(body: &Json, ctx: &Ctx) -> Result<Resp, ApiError> {
    Ok(json_response(StatusCode::OK, body, ctx.gzip))
}

fn only(ctx: &Ctx, methods: &[Method]) -> Result<(), ApiError> {
    if methods.contains(&ctx.method) { Ok(()) } else { Err(ApiError::method(&ctx.method)) }
}

async fn json_body(app: &App, req: Request<Incoming>) -> Result<Json, ApiError> {
    let body = read_body(req, app.config.max_body_bytes).await?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad("Missing message content").with_details("Supply valid JSON formatted data in the body of your request"));
    }
    serde_json::from_slice(&body).map_err(|e| ApiError::bad("Unable to parse the given JSON").with_details(e.to_string()))
}

fn scalar(v: Option<&Json>) -> Option<String> {
    match v? {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `/api/suggest`: names of one kind by prefix.
pub(super) async fn suggest(app: &Arc<App>, req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    only(ctx, &[Method::GET, Method::POST])?;
    let (kind, q, max) = if ctx.method == Method::POST {
        let body = json_body(app, req).await?;
        let kind = scalar(body.get("type")).ok_or_else(|| ApiError::bad("Missing 'type' parameter"))?;
        (kind, scalar(body.get("q")).unwrap_or_default(), scalar(body.get("max")))
    } else {
        let kind = ctx.params.get("type").ok_or_else(|| ApiError::bad("Missing parameter <code>type</code>"))?.to_owned();
        (kind, ctx.params.get("q").unwrap_or_default().to_owned(), ctx.params.get("max").map(str::to_owned))
    };
    let kind = match kind.as_str() {
        "metrics" => Kind::Metric,
        "tagk" => Kind::TagK,
        "tagv" => Kind::TagV,
        other => return Err(ApiError::bad(format!("Invalid 'type' parameter:{other}"))),
    };
    let max = match max {
        Some(m) => m.trim().parse::<usize>().map_err(|_| ApiError::bad("Unable to parse 'max' as a number"))?,
        None => 25,
    };
    ok(&json!(app.index.suggest(kind, &q, max)), ctx)
}

/// A lookup: an optional metric and `key=value` pairs (`*` on either side).
struct Lookup {
    metric: Option<String>,
    tags: Vec<(String, String)>,
    limit: usize,
}

/// Tag pairs of a lookup.
pub(super) type Pairs = Vec<(String, String)>;

/// `metric{k=v,...}` (both parts optional): the metric and the pairs.
pub(super) fn metric_and_pairs(text: &str) -> Result<(&str, Pairs), ApiError> {
    let (metric, rest) = match text.find('{') {
        Some(i) => text.split_at(i),
        None => (text, ""),
    };
    let mut tags = Vec::new();
    if !rest.is_empty() {
        let inner = rest.strip_prefix('{').and_then(|r| r.strip_suffix('}')).ok_or_else(|| ApiError::bad(format!("Invalid series: {text} (expected metric{{key=value,...}})")))?;
        for pair in inner.split(',').filter(|p| !p.trim().is_empty()) {
            let (k, v) = pair.split_once('=').ok_or_else(|| ApiError::bad(format!("Invalid tag pair '{pair}': expected key=value")))?;
            tags.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    Ok((metric.trim(), tags))
}

fn parse_lookup_m(m: &str) -> Result<(Option<String>, Pairs), ApiError> {
    let (metric, tags) = metric_and_pairs(m)?;
    let metric = Some(metric).filter(|m| !m.is_empty() && *m != "*").map(str::to_owned);
    Ok((metric, tags))
}

/// `/api/search/lookup`: series by metric and tag pairs.
pub(super) async fn lookup(app: &Arc<App>, req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    only(ctx, &[Method::GET, Method::POST])?;
    let started = Instant::now();
    let l = if ctx.method == Method::POST {
        let body = json_body(app, req).await?;
        let metric = scalar(body.get("metric")).filter(|m| !m.is_empty() && m != "*");
        let tags = body
            .get("tags")
            .and_then(Json::as_array)
            .map(|a| a.iter().map(|t| (scalar(t.get("key")).unwrap_or_else(|| "*".into()), scalar(t.get("value")).unwrap_or_else(|| "*".into()))).collect())
            .unwrap_or_default();
        let limit = scalar(body.get("limit")).map(|l| l.parse::<usize>().map_err(|_| ApiError::bad(format!("Invalid limit: {l}")))).transpose()?;
        Lookup { metric, tags, limit: limit.unwrap_or(25) }
    } else {
        let (metric, tags) = parse_lookup_m(ctx.params.get("m").unwrap_or_default())?;
        let limit = ctx.params.get("limit").map(|l| l.parse::<usize>().map_err(|_| ApiError::bad(format!("Invalid limit: {l}")))).transpose()?;
        Lookup { metric, tags, limit: limit.unwrap_or(25) }
    };
    if l.metric.is_none() && l.tags.is_empty() {
        return Err(ApiError::bad("Missing metric and tags. Please supply at least one value."));
    }
    let unresolved = |kind: Kind, name: &str| {
        ApiError::new(StatusCode::NOT_FOUND, "Unable to resolve one or more UIDs").with_details(format!("No such name for '{}': '{name}'", kind.name()))
    };
    if let Some(m) = &l.metric
        && !app.index.has(Kind::Metric, m)
    {
        return Err(unresolved(Kind::Metric, m));
    }
    for (k, v) in &l.tags {
        if k != "*" && !app.index.has(Kind::TagK, k) {
            return Err(unresolved(Kind::TagK, k));
        }
        if v != "*" && !app.index.has(Kind::TagV, v) {
            return Err(unresolved(Kind::TagV, v));
        }
    }
    let candidates = match &l.metric {
        Some(m) => app.index.series_of(m),
        None => app.index.all_series(),
    };
    let mut matched: Vec<Arc<Series>> = candidates.into_iter().filter(|s| lookup_matches(s, &l.tags)).collect();
    matched.sort_by(|a, b| a.key.cmp(&b.key));
    let total = matched.len();
    let results: Vec<Json> = matched
        .iter()
        .take(l.limit)
        .map(|s| {
            let tags: Map<String, Json> = s.key.tags().iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            json!({"tsuid": s.tsuid, "metric": s.key.metric(), "tags": tags})
        })
        .collect();
    let mut obj = Map::new();
    obj.insert("type".into(), json!("LOOKUP"));
    if let Some(m) = &l.metric {
        obj.insert("metric".into(), json!(m));
    }
    obj.insert("tags".into(), Json::Array(l.tags.iter().map(|(k, v)| json!({"key": k, "value": v})).collect()));
    obj.insert("limit".into(), json!(l.limit));
    obj.insert("startIndex".into(), json!(0));
    obj.insert("time".into(), json!(started.elapsed().as_secs_f64() * 1000.0));
    obj.insert("totalResults".into(), json!(total));
    obj.insert("results".into(), Json::Array(results));
    ok(&Json::Object(obj), ctx)
}

/// Pairs with the same key are ORed, different keys ANDed; `*` matches any.
fn lookup_matches(s: &Series, pairs: &[(String, String)]) -> bool {
    let mut keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    keys.into_iter().all(|key| {
        pairs.iter().filter(|(k, _)| k == key).any(|(k, v)| {
            if k == "*" {
                v == "*" || s.key.tags().iter().any(|(_, tv)| tv == v)
            } else {
                s.tag(k).is_some_and(|tv| v == "*" || tv == v)
            }
        })
    })
}

/// `/api/aggregators`.
pub(super) fn aggregators(ctx: &Ctx) -> Result<Resp, ApiError> {
    only(ctx, &[Method::GET])?;
    ok(&json!(AGGREGATORS), ctx)
}

/// `/api/config/filters`.
pub(super) fn filters(ctx: &Ctx) -> Result<Resp, ApiError> {
    only(ctx, &[Method::GET, Method::POST])?;
    let text = |k: FilterType| -> (&str, &str) {
        match k {
            FilterType::LiteralOr => ("The value equals one of the literals separated by |. Case sensitive.", "host=literal_or(web01|web02)"),
            FilterType::ILiteralOr => ("The value equals one of the literals separated by |, ignoring case.", "host=iliteral_or(WEB01|web02)"),
            FilterType::NotLiteralOr => ("The key is present and its value equals none of the literals. Case sensitive.", "host=not_literal_or(web01|web02)"),
            FilterType::NotILiteralOr => ("The key is present and its value equals none of the literals, ignoring case.", "host=not_iliteral_or(WEB01)"),
            FilterType::Wildcard => ("The value matches a glob where * is any run of characters. Case sensitive.", "host=wildcard(web*), host=wildcard(*)"),
            FilterType::IWildcard => ("The value matches a glob where * is any run of characters, ignoring case.", "host=iwildcard(WEB*)"),
            FilterType::Regexp => ("A regular expression found anywhere in the value.", "host=regexp(web[0-9]+)"),
            FilterType::NotKey => ("The series has no such tag key; the expression is empty.", "host=not_key()"),
        }
    };
    let obj: Map<String, Json> = FilterType::ALL
        .iter()
        .map(|(k, name)| {
            let (description, examples) = text(*k);
            ((*name).to_owned(), json!({"description": description, "examples": examples}))
        })
        .collect();
    ok(&Json::Object(obj), ctx)
}

/// `/api/config`: the settings as strings under OpenTSDB-style names.
pub(super) fn config(app: &App, ctx: &Ctx) -> Result<Resp, ApiError> {
    only(ctx, &[Method::GET, Method::POST])?;
    let c = &app.config;
    let obj = json!({
        "tsd.network.bind": c.listen.ip().to_string(),
        "tsd.network.port": c.listen.port().to_string(),
        "tsd.storage.directory": c.data_dir.display().to_string(),
        "tsd.storage.max_tags": c.max_tags.to_string(),
        "tsd.storage.max_open_databases": c.max_open_databases.to_string(),
        "tsd.http.request.max_chunk": c.max_body_bytes.to_string(),
        "tsd.http.request.enable_chunked": "true",
        "tsd.core.auto_create_metrics": "true",
        "tsd.http.query.allow_delete": "false",
        "tsd.rpc.telnet.return_errors": "true",
        "tsd.telnet.max_line_bytes": c.max_line_bytes.to_string(),
        "tsd.query.nan_as_null": c.nan_as_null.to_string(),
        "tsd.core.timezone": "UTC",
    });
    ok(&obj, ctx)
}

/// The first line of the telnet `version` answer.
pub fn version_line() -> String {
    format!("net.opentsdb.tools rrdserver {} built at revision 0000000 (MINT)", env!("CARGO_PKG_VERSION"))
}

/// `/api/version`.
pub(super) fn version(ctx: &Ctx) -> Result<Resp, ApiError> {
    only(ctx, &[Method::GET, Method::POST])?;
    ok(
        &json!({
            "version": env!("CARGO_PKG_VERSION"),
            "short_revision": "0000000",
            "full_revision": "0000000000000000000000000000000000000000",
            "timestamp": "0",
            "repo_status": "MINT",
            "user": "rrd",
            "host": "localhost",
            "repo": "rrdserver",
            "branch": "main",
        }),
        ctx,
    )
}

/// One counter: its metric name, value, and an extra tag when it has one.
pub type Stat = (&'static str, u64, Option<(&'static str, &'static str)>);

/// The server's counters.
pub fn stats_lines(app: &App) -> Vec<Stat> {
    let c = &app.counters;
    let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let store = app.store.stats();
    let (metrics, tagks, tagvs, series) = app.index.counts();
    let queries = get(&c.queries);
    vec![
        ("tsd.uptime", app.started.elapsed().as_secs(), None),
        ("tsd.rpc.received", get(&c.points_received), Some(("type", "put"))),
        ("tsd.datapoints.added", get(&c.points_stored), None),
        ("tsd.datapoints.rejected", get(&c.points_rejected), None),
        ("tsd.datapoints.too_old", get(&c.points_too_old), None),
        ("tsd.datapoints.duplicate", get(&c.points_duplicate), None),
        ("tsd.http.requests", get(&c.http_requests), None),
        ("tsd.http.errors", get(&c.http_errors), None),
        ("tsd.connectionmgr.connections", get(&c.telnet_connections), Some(("type", "telnet"))),
        ("tsd.telnet.lines", get(&c.telnet_lines), None),
        ("tsd.http.query.requests", queries, None),
        ("tsd.http.query.latency_avg_us", get(&c.query_micros_total).checked_div(queries).unwrap_or(0), None),
        ("tsd.http.query.latency_max_us", get(&c.query_micros_max), None),
        ("tsd.uid.ids-used", metrics as u64, Some(("kind", "metrics"))),
        ("tsd.uid.ids-used", tagks as u64, Some(("kind", "tagk"))),
        ("tsd.uid.ids-used", tagvs as u64, Some(("kind", "tagv"))),
        ("tsd.series.count", series as u64, None),
        ("tsd.store.open", store.open as u64, None),
        ("tsd.store.cache", store.hits, Some(("type", "hit"))),
        ("tsd.store.cache", store.misses, Some(("type", "miss"))),
        ("tsd.store.evictions", store.evictions, None),
        ("tsd.store.created", store.created, None),
        ("tsd.store.quarantined", get(&c.quarantined), None),
        ("tsd.write_queue.points", app.write.writers.queued(), None),
        ("tsd.write_queue.refused", get(&c.queue_refused), None),
        ("tsd.journal.replayed", get(&c.points_replayed), None),
        ("tsd.journal.checkpoints", get(&c.checkpoints), None),
        ("tsd.journal.set_aside", get(&c.points_set_aside), None),
        ("tsd.write.failed", u64::from(app.write.failure().is_some()), None),
    ]
}

/// `/api/stats`.
pub(super) fn stats(app: &App, ctx: &Ctx) -> Result<Resp, ApiError> {
    only(ctx, &[Method::GET, Method::POST])?;
    let now = super::query::now_ms() / 1000;
    let list: Vec<Json> = stats_lines(app)
        .into_iter()
        .map(|(metric, value, tag)| {
            let mut tags = Map::new();
            tags.insert("host".into(), json!(app.hostname));
            if let Some((k, v)) = tag {
                tags.insert(k.into(), json!(v));
            }
            json!({"metric": metric, "timestamp": now, "value": value.to_string(), "tags": tags})
        })
        .collect();
    ok(&Json::Array(list), ctx)
}

/// `/api/stats/jvm` and friends: JVM and HBase internals this server has not.
pub(super) fn empty_stats(ctx: &Ctx) -> Result<Resp, ApiError> {
    only(ctx, &[Method::GET, Method::POST])?;
    ok(&json!({}), ctx)
}

/// `/api/stats/query`: a summary of the queries answered.
pub(super) fn query_stats(app: &App, ctx: &Ctx) -> Result<Resp, ApiError> {
    only(ctx, &[Method::GET, Method::POST])?;
    let c = &app.counters;
    let n = c.queries.load(Ordering::Relaxed);
    ok(
        &json!({"completed": n, "latencyAvgMicros": c.query_micros_total.load(Ordering::Relaxed).checked_div(n).unwrap_or(0), "latencyMaxMicros": c.query_micros_max.load(Ordering::Relaxed), "running": []}),
        ctx,
    )
}

/// `/api/dropcaches`: writes open databases out (the store keeps no other cache).
pub(super) fn dropcaches(app: &App, ctx: &Ctx) -> Result<Resp, ApiError> {
    only(ctx, &[Method::GET, Method::DELETE])?;
    app.store.flush().map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    ok(&json!({"message": "Caches dropped", "status": "200"}), ctx)
}

/// `/api/serializers` (OpenTSDB 2.2-2.3).
pub(super) fn serializers(ctx: &Ctx) -> Result<Resp, ApiError> {
    only(ctx, &[Method::GET, Method::POST])?;
    ok(
        &json!([{
            "serializer": "json",
            "class": "net.opentsdb.tsd.HttpJsonSerializer",
            "request_content_type": "application/json",
            "response_content_type": "application/json; charset=UTF-8",
            "parsers": ["parsePutV1", "parseSuggestV1", "parseQueryV1", "parseLastPointQueryV1", "parseSearchQueryV1"],
            "formatters": ["formatSuggestV1", "formatQueryV1", "formatLastPointQueryV1", "formatAggregatorsV1", "formatVersionV1", "formatStatsV1", "formatConfigV1", "formatFilterConfigV1", "formatSearchResultsV1", "formatErrorV1"],
        }]),
        ctx,
    )
}

/// `/api/status` (OpenTSDB 2.5).
pub(super) fn status(ctx: &Ctx) -> Result<Resp, ApiError> {
    only(ctx, &[Method::GET])?;
    ok(&json!({"status": "ok"}), ctx)
}
