//! `/api/query` (`opentsdb-api.md` §4) and `/api/query/last` (§5).

use std::sync::Arc;
use std::time::Instant;

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde_json::{Map, Value as Json, json};

use super::Ctx;
use crate::server::app::{App, Reads};
use crate::server::http::{ApiError, Resp, bytes_response, json_response, read_body};
use crate::server::index::Series;
use crate::server::query::{Query, exec};
use crate::server::off_async;

/// Now, in milliseconds since the epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Handles `/api/query`.
pub(super) async fn query(app: &Arc<App>, req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    let started = Instant::now();
    let q = match ctx.method {
        Method::GET => Query::from_params(&ctx.params, now_ms())?,
        Method::POST => Query::from_json(&read_body(req, app.config.max_body_bytes).await?, &ctx.params, now_ms())?,
        Method::DELETE => return Err(ApiError::bad("Bad request").with_details("Deleting data is not enabled (tsd.http.query.allow_delete=false)")),
        _ => return Err(ApiError::method(&ctx.method)),
    };
    let app2 = Arc::clone(app);
    let result = off_async(move || exec::run(&app2.reads(), &q)).await?;
    app.counters.query_done(started);
    Ok(bytes_response(StatusCode::OK, result?, "application/json; charset=UTF-8", ctx.gzip))
}

/// One `/api/query/last` sub-query: exact tags, or series IDs.
enum LastQuery {
    Metric(String, Vec<(String, String)>),
    Tsuids(Vec<String>),
}

/// `metric{k=v,...}` of the `timeseries=` parameter.
fn parse_timeseries(text: &str) -> Result<LastQuery, ApiError> {
    let (metric, tags) = super::meta::metric_and_pairs(text)?;
    if metric.is_empty() {
        return Err(ApiError::bad(format!("Missing metric in {text}")));
    }
    Ok(LastQuery::Metric(metric.to_owned(), tags))
}

/// Handles `/api/query/last`.
pub(super) async fn last(app: &Arc<App>, req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    let (queries, resolve, back_scan_h) = match ctx.method {
        Method::GET => {
            let mut qs = Vec::new();
            for t in ctx.params.all("timeseries") {
                qs.push(parse_timeseries(t)?);
            }
            for t in ctx.params.all("tsuids") {
                qs.push(LastQuery::Tsuids(t.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect()));
            }
            let back = ctx.params.get("back_scan").map(|b| b.parse::<u64>().map_err(|_| ApiError::bad(format!("Invalid back_scan: {b}")))).transpose()?;
            (qs, ctx.params.flag("resolve"), back.unwrap_or(0))
        }
        Method::POST => {
            let body = read_body(req, app.config.max_body_bytes).await?;
            let json: Json = serde_json::from_slice(&body).map_err(|e| ApiError::bad("Unable to parse the given JSON").with_details(e.to_string()))?;
            let mut qs = Vec::new();
            for q in json.get("queries").and_then(Json::as_array).into_iter().flatten() {
                if let Some(ids) = q.get("tsuids").and_then(Json::as_array) {
                    qs.push(LastQuery::Tsuids(ids.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect()));
                } else {
                    let metric = q.get("metric").and_then(Json::as_str).unwrap_or_default().to_owned();
                    if metric.is_empty() {
                        return Err(ApiError::bad("Missing metric or tsuids in a sub query"));
                    }
                    let tags = q.get("tags").and_then(Json::as_object).map(|t| t.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect()).unwrap_or_default();
                    qs.push(LastQuery::Metric(metric, tags));
                }
            }
            let resolve = json.get("resolveNames").and_then(Json::as_bool).unwrap_or(false);
            let back = json.get("backScan").and_then(Json::as_u64).unwrap_or(0);
            (qs, resolve, back)
        }
        _ => return Err(ApiError::method(&ctx.method)),
    };
    if queries.is_empty() {
        return Err(ApiError::bad("Missing sub queries"));
    }
    let app2 = Arc::clone(app);
    let out = off_async(move || last_points(&app2.reads(), &queries, resolve, back_scan_h)).await?;
    Ok(json_response(StatusCode::OK, &out, ctx.gzip))
}

fn last_points(r: &Reads<'_>, queries: &[LastQuery], resolve: bool, back_scan_h: u64) -> Json {
    let cutoff_ms = (back_scan_h > 0).then(|| now_ms().saturating_sub(back_scan_h * 3_600_000));
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for q in queries {
        let series: Vec<Arc<Series>> = match q {
            LastQuery::Tsuids(ids) => ids.iter().filter_map(|i| r.index.by_tsuid(i)).collect(),
            LastQuery::Metric(m, tags) => r.index.series_of(m).into_iter().filter(|s| tags.iter().all(|(k, v)| s.tag(k) == Some(v.as_str()))).collect(),
        };
        for s in series {
            if !seen.insert(s.tsuid.clone()) {
                continue;
            }
            r.settle(&s);
            if !r.store.exists(&s.handle) {
                continue;
            }
            let Ok((t, text)) = r.store.with_handle(&s.handle, None, |db| {
                let text = db.state().ds.first().map(|d| d.last_ds.as_str().to_owned()).unwrap_or_default();
                (db.last_update(), text)
            }) else {
                continue;
            };
            let ms = u64::try_from(t.sec).unwrap_or(0) * 1000 + u64::from(t.usec / 1000);
            if text.is_empty() || text == "U" || cutoff_ms.is_some_and(|c| ms < c) {
                continue;
            }
            let mut obj = Map::new();
            if resolve {
                obj.insert("metric".into(), json!(s.key.metric()));
                let tags: Map<String, Json> = s.key.tags().iter().map(|(k, v)| (k.clone(), json!(v))).collect();
                obj.insert("tags".into(), Json::Object(tags));
            }
            obj.insert("timestamp".into(), json!(ms));
            obj.insert("value".into(), json!(text));
            obj.insert("tsuid".into(), json!(s.tsuid));
            out.push(Json::Object(obj));
        }
    }
    Json::Array(out)
}
