//! The `/api` endpoints, one module per family, and the dispatcher that
//! picks one by OpenTSDB's routing rules.

mod bosun;
mod meta;
mod put;
mod query;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};

use super::app::App;
use super::recall::Recall;
use super::http::{ApiError, Params, Resp, Route, accepts_gzip, bytes_response, empty, error_response, route};

pub use meta::{stats_lines, version_line};

/// Answers one HTTP request.
pub async fn handle(app: Arc<App>, req: Request<Incoming>, recall: Arc<std::sync::Mutex<Recall>>) -> Result<Resp, Infallible> {
    let resp = match dispatch(&app, req, recall).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    };
    app.counters.http_requests.fetch_add(1, Ordering::Relaxed);
    if resp.status().is_client_error() || resp.status().is_server_error() {
        app.counters.http_errors.fetch_add(1, Ordering::Relaxed);
    }
    Ok(resp)
}

/// Everything a handler needs from the request besides the body.
pub(crate) struct Ctx {
    pub method: Method,
    pub params: Params,
    pub gzip: bool,
    /// The connection's memory of the series it puts (requests on one
    /// connection come one after another, so the lock is never contended).
    pub recall: Arc<std::sync::Mutex<Recall>>,
}

async fn dispatch(app: &Arc<App>, req: Request<Incoming>, recall: Arc<std::sync::Mutex<Recall>>) -> Result<Resp, ApiError> {
    let ctx = Ctx { method: req.method().clone(), params: Params::parse(req.uri().query()), gzip: accepts_gzip(&req), recall };
    if !matches!(ctx.method, Method::GET | Method::POST | Method::PUT | Method::DELETE | Method::OPTIONS) {
        return Ok(empty(StatusCode::METHOD_NOT_ALLOWED));
    }
    let (endpoint, rest) = match route(req.uri().path()) {
        Route::Api { endpoint, rest } => (endpoint, rest),
        Route::VersionTooHigh => return Err(ApiError::new(StatusCode::NOT_IMPLEMENTED, "Requested API version not implemented")),
        Route::BadVersion(v) => return Err(ApiError::bad(format!("Invalid API version: {v}"))),
        Route::Other(path) => return Ok(other(&path)),
    };
    if ctx.method == Method::OPTIONS {
        return Err(ApiError::method(&ctx.method));
    }
    let sub = rest.first().map(|s| s.to_ascii_lowercase());
    match (endpoint.as_str(), sub.as_deref()) {
        ("put", None) => put::put(app, req, &ctx).await,
        ("query", None) => query::query(app, req, &ctx).await,
        ("query", Some("last")) => query::last(app, req, &ctx).await,
        ("suggest", None) => meta::suggest(app, req, &ctx).await,
        ("search", Some("lookup")) => meta::lookup(app, req, &ctx).await,
        ("search", Some(_)) => Err(ApiError::bad("Searching is not enabled")),
        ("aggregators", None) => meta::aggregators(&ctx),
        ("config", Some("filters")) => meta::filters(&ctx),
        ("config", None) => meta::config(app, &ctx),
        ("version", None) => meta::version(&ctx),
        ("stats", None) => meta::stats(app, &ctx),
        ("stats", Some("jvm" | "threads" | "region_clients")) => meta::empty_stats(&ctx),
        ("stats", Some("query")) => meta::query_stats(app, &ctx),
        ("dropcaches", None) => meta::dropcaches(app, &ctx),
        ("serializers", None) => meta::serializers(&ctx),
        ("status", None) => meta::status(&ctx),
        // Bosun's surface.
        ("metadata", Some("put")) => bosun::metadata_put(app, req, &ctx).await,
        ("metadata", Some("get")) => bosun::metadata_get(&app.meta, &ctx),
        ("metadata", Some("metrics")) => bosun::metadata_metrics(&app.reads(), &app.meta, &ctx),
        ("index", None) => bosun::index(app, req, &ctx).await,
        ("host", None) => bosun::hosts(app, &ctx).await,
        ("metric", _) => bosun::metric(&app.reads(), &ctx, &segments(&rest)),
        ("tagk", Some(_)) => bosun::tagk(&app.reads(), &ctx, &segments(&rest).join("/")),
        ("tagv", Some(_)) => {
            let segs = segments(&rest);
            let (tagk, metric) = segs.split_first().map_or((String::new(), None), |(k, m)| (k.clone(), (!m.is_empty()).then(|| m.join("/"))));
            bosun::tagv(&app.reads(), &ctx, &tagk, metric.as_deref())
        }
        ("tagsets", Some(_)) => bosun::tagsets(&app.reads(), &ctx, &segments(&rest).join("/")),
        ("last", None) => bosun::last(&app.reads(), &ctx),
        ("graph", None) => bosun::graph(app, &ctx).await,
        _ => Err(ApiError::new(StatusCode::NOT_FOUND, "Endpoint not found")),
    }
}

/// Path segments after the endpoint, percent-decoded (tag values such as
/// `disk=/` arrive as `%2F`).
fn segments(rest: &[String]) -> Vec<String> {
    rest.iter().map(|s| crate::server::http::decode(&s.replace('+', "%2B"))).collect()
}

/// Paths outside `/api`: a short page at `/`, the version at `/version`.
fn other(path: &str) -> Resp {
    match path {
        "" => bytes_response(
            StatusCode::OK,
            b"rrdserver: an OpenTSDB-compatible round-robin time-series store.\nHTTP API under /api (put, query, suggest, search/lookup, ...); telnet put on this same port.\n".to_vec(),
            "text/plain; charset=UTF-8",
            false,
        ),
        "version" => bytes_response(StatusCode::OK, format!("{}\n", meta::version_line()).into_bytes(), "text/plain; charset=UTF-8", false),
        _ => error_response(&ApiError::new(StatusCode::NOT_FOUND, "Page not found").with_details(format!("No such page: /{path}"))),
    }
}
