//! `POST /api/put` (`opentsdb-api.md` §2): decode, validate per point,
//! store the good points, answer as OpenTSDB does.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde_json::{Value as Json, json};

use super::Ctx;
use crate::opentsdb::point::Value;
use crate::opentsdb::put::{PointRef, parse_borrowed};
use crate::server::app::App;
use crate::server::recall::Recall;
use crate::server::http::{ApiError, Resp, empty, json_response, read_body};

/// Handles `/api/put`.
pub(super) async fn put(app: &Arc<App>, req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    if ctx.method != Method::POST {
        return Err(ApiError::method(&ctx.method));
    }
    let body = read_body(req, app.config.max_body_bytes).await?;
    let sync = ctx.params.flag("sync");
    let app2 = Arc::clone(app);
    let recall = Arc::clone(&ctx.recall);
    let outcome = tokio::task::spawn_blocking(move || store(&app2, &body, sync, &recall))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "An unknown exception occurred").with_details(e.to_string()))??;
    let (success, errors) = outcome;
    let failed = errors.len();
    let details = ctx.params.flag("details");
    if !details && !ctx.params.flag("summary") {
        if failed == 0 {
            return Ok(empty(StatusCode::NO_CONTENT));
        }
        return Err(ApiError::bad("One or more data points had errors").with_details("Please see the TSD logs or append \"details\" to the put request"));
    }
    let mut obj = json!({"success": success, "failed": failed});
    if let Some(o) = obj.as_object_mut() {
        if details {
            let list: Vec<Json> = errors.into_iter().map(|(datapoint, error)| json!({"datapoint": datapoint, "error": error})).collect();
            o.insert("errors".into(), Json::Array(list));
        }
        if sync && ctx.params.get("sync_timeout").and_then(|t| t.parse::<u64>().ok()).is_some_and(|t| t > 0) {
            o.insert("timeouts".into(), json!(0));
        }
    }
    let status = if failed == 0 { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    Ok(json_response(status, &obj, ctx.gzip))
}

/// Decodes and stores a body: the number stored and each failure (the
/// point as received and why).
fn store(app: &App, body: &[u8], sync: bool, recall: &std::sync::Mutex<Recall>) -> Result<(usize, Vec<(Json, String)>), ApiError> {
    let parsed = parse_borrowed(body, app.config.max_tags).map_err(|e| {
        let err = ApiError::bad(e.message());
        match e.details() {
            Some(d) => err.with_details(d),
            None => err,
        }
    })?;
    let mut errors = Vec::new();
    let mut good = Vec::with_capacity(parsed.len());
    for p in parsed {
        match p {
            Ok(dp) => good.push(dp),
            Err(r) => errors.push((r.datapoint, r.error)),
        }
    }
    let invalid = errors.len() as u64;
    app.counters.points_received.fetch_add(invalid, std::sync::atomic::Ordering::Relaxed);
    app.counters.points_rejected.fetch_add(invalid, std::sync::atomic::Ordering::Relaxed);
    let mut recall = recall.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let results = app.ingest_recalling(&good, sync, &mut recall).map_err(|e| unavailable(&e))?;
    drop(recall);
    let mut success = 0;
    for (dp, r) in good.iter().zip(results) {
        match r {
            Ok(()) => success += 1,
            Err(e) => errors.push((echo(dp), e.to_string())),
        }
    }
    if !errors.is_empty() {
        tracing::debug!(failed = errors.len(), success, "put with errors");
    }
    Ok((success, errors))
}

/// 503 (with Retry-After) for a batch that was not taken: nothing of it
/// needs to be assumed stored, and collectors send it again.
pub(crate) fn unavailable(e: &crate::server::app::IngestError) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "Unable to store the data points now; retry").with_details(e.to_string())
}

/// A stored point as the `errors[].datapoint` of a details answer.
pub(crate) fn echo(dp: &PointRef<'_>) -> Json {
    let ts = if dp.timestamp_ms.is_multiple_of(1000) { dp.timestamp_ms / 1000 } else { dp.timestamp_ms };
    let value = match dp.value {
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
    };
    let tags: serde_json::Map<String, Json> = dp.tags.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    json!({"metric": dp.metric, "timestamp": ts, "value": value, "tags": tags})
}
