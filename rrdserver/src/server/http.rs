//! HTTP plumbing shared by the endpoints: routing by OpenTSDB's rules
//! (`opentsdb-api.md` §0.2), query strings, bounded and inflated request
//! bodies (§0.3), JSON answers (gzip when asked) and the error envelope (§0.5).

use std::io::Read;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value as Json, json};

/// The response type of every handler.
pub type Resp = Response<Full<Bytes>>;

/// An `/api` error: the status and the envelope's message and details.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// Short text (Grafana shows it).
    pub message: String,
    /// More text, when there is any.
    pub details: Option<String>,
}

impl ApiError {
    /// An error with no details.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), details: None }
    }

    /// A 400 with no details.
    pub fn bad(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// The same error with details.
    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = Some(details.into());
        self
    }

    /// 405 for a method an endpoint does not take.
    pub fn method(method: &Method) -> Self {
        ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
            .with_details(format!("The HTTP method [{method}] is not permitted for this endpoint"))
    }

    /// The envelope `{"error":{"code","message","details"}}`.
    pub fn body(&self) -> Json {
        let mut e = json!({"code": self.status.as_u16(), "message": self.message});
        if let (Some(d), Some(obj)) = (&self.details, e.as_object_mut())
            && !d.is_empty()
        {
            obj.insert("details".into(), Json::String(d.clone()));
        }
        json!({ "error": e })
    }
}

/// The decoded query string: every `key=value` pair in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// Parses `a=1&b&c=%7B` (percent-decoding, `+` as space).
    pub fn parse(query: Option<&str>) -> Params {
        let Some(q) = query else { return Params::default() };
        Params(
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (decode(k), decode(v))
                })
                .collect(),
        )
    }

    /// The last value of a single-valued key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Every value of a list key, in order.
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Whether a flag is present (its value does not matter, as in OpenTSDB).
    pub fn flag(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }
}

/// Percent-decoding with `+` as a space; bad escapes are kept as they are.
pub fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
                if let Some(v) = hex {
                    out.push(v);
                    i += 3;
                    continue;
                }
                out.push(c);
            }
            _ => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Where a request goes: the endpoint (first segment after `/api` and an
/// optional `v1`), the rest of the path, all lower-cased for matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/api/<endpoint>/<rest...>`.
    Api {
        /// The endpoint segment, lower-cased.
        endpoint: String,
        /// Further segments (case kept).
        rest: Vec<String>,
    },
    /// `/api/v2/...` and above.
    VersionTooHigh,
    /// `/api/v1x/...`.
    BadVersion(String),
    /// A path outside `/api`.
    Other(String),
}

/// Routes a path.
pub fn route(path: &str) -> Route {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let Some((first, rest)) = segs.split_first() else { return Route::Other(String::new()) };
    if !first.eq_ignore_ascii_case("api") {
        return Route::Other(segs.join("/").to_ascii_lowercase());
    }
    let mut rest = rest;
    if let Some((v, after)) = rest.split_first()
        && let Some(num) = v.strip_prefix(['v', 'V'])
        && num.starts_with(|c: char| c.is_ascii_digit())
    {
        match num.parse::<u32>() {
            Ok(1) => rest = after,
            Ok(_) => return Route::VersionTooHigh,
            Err(_) => return Route::BadVersion((*v).to_owned()),
        }
    }
    match rest.split_first() {
        Some((e, more)) => Route::Api { endpoint: e.to_ascii_lowercase(), rest: more.iter().map(|s| (*s).to_owned()).collect() },
        None => Route::Api { endpoint: String::new(), rest: Vec::new() },
    }
}

/// Reads the request body: at most `max` bytes, inflated when gzip or
/// deflate encoded (the inflated size is capped too).
pub async fn read_body(req: Request<Incoming>, max: usize) -> Result<Vec<u8>, ApiError> {
    let too_large = || ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("Request body too large (the limit is {max} bytes)"));
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let encoding = req.headers().get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()).map(|s| s.trim().to_ascii_lowercase());
    let collected = Limited::new(req.into_body(), max).collect().await.map_err(|e| {
        if e.is::<http_body_util::LengthLimitError>() { too_large() } else { ApiError::bad("Unable to read the request body").with_details(e.to_string()) }
    })?;
    let raw = collected.to_bytes();
    match encoding.as_deref() {
        None | Some("" | "identity") => Ok(raw.to_vec()),
        Some("gzip" | "x-gzip") => inflate(flate2::read::MultiGzDecoder::new(&raw[..]), max, "gzip"),
        Some("deflate") => {
            // HTTP's "deflate" is zlib; some senders use raw deflate.
            inflate(flate2::read::ZlibDecoder::new(&raw[..]), max, "deflate").or_else(|_| inflate(flate2::read::DeflateDecoder::new(&raw[..]), max, "deflate"))
        }
        Some(other) => Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("Unsupported Content-Encoding: {other}"))),
    }
}

fn inflate(reader: impl Read, max: usize, what: &str) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    reader
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| ApiError::bad(format!("Unable to decompress the {what} request body")).with_details(e.to_string()))?;
    if out.len() > max {
        return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("Decompressed request body too large (the limit is {max} bytes)")));
    }
    Ok(out)
}

/// Whether the client accepts gzip answers.
pub fn accepts_gzip(req: &Request<Incoming>) -> bool {
    req.headers()
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|e| e.split(';').next().is_some_and(|n| n.trim().eq_ignore_ascii_case("gzip")))
}

/// A JSON answer; gzip-compressed when `gzip` and the body is worth it.
pub fn json_response(status: StatusCode, body: &Json, gzip: bool) -> Resp {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    bytes_response(status, bytes, "application/json; charset=UTF-8", gzip)
}

/// An answer with this body and content type.
pub fn bytes_response(status: StatusCode, bytes: Vec<u8>, content_type: &'static str, gzip: bool) -> Resp {
    let (bytes, gzipped) = if gzip && bytes.len() > 1024 { compress(&bytes).map_or((bytes, false), |c| (c, true)) } else { (bytes, false) };
    let mut resp = Response::new(Full::new(Bytes::from(bytes)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if gzipped {
        resp.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    resp
}

fn compress(bytes: &[u8]) -> Option<Vec<u8>> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::with_capacity(bytes.len() / 4), flate2::Compression::fast());
    enc.write_all(bytes).ok()?;
    enc.finish().ok()
}

/// An empty answer with this status (a JSON content type, as OpenTSDB sends).
pub fn empty(status: StatusCode) -> Resp {
    bytes_response(status, Vec::new(), "application/json; charset=UTF-8", false)
}

/// The envelope answer for `e`. A 503 carries `Retry-After: 1`: collectors retry the same batch.
pub fn error_response(e: &ApiError) -> Resp {
    let mut resp = json_response(e.status, &e.body(), false);
    if e.status == StatusCode::SERVICE_UNAVAILABLE {
        resp.headers_mut().insert(hyper::header::RETRY_AFTER, hyper::header::HeaderValue::from_static("1"));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let api = |e: &str, rest: &[&str]| Route::Api { endpoint: e.into(), rest: rest.iter().map(|s| (*s).to_owned()).collect() };
        assert_eq!(route("/api/put"), api("put", &[]));
        assert_eq!(route("/API/Put/"), api("put", &[]));
        assert_eq!(route("/api/v1/query/last"), api("query", &["last"]));
        assert_eq!(route("/api/v2/query"), Route::VersionTooHigh);
        assert_eq!(route("/api/v1x/query"), Route::BadVersion("v1x".into()));
        assert_eq!(route("/api/vx/query"), api("vx", &["query"]));
        assert_eq!(route("/"), Route::Other(String::new()));
    }

    #[test]
    fn params() {
        let p = Params::parse(Some("m=sum:a%7Bhost%3D*%7D&start=1h-ago&details&m=avg:b&x=a+b&bad=%zz"));
        assert_eq!(p.all("m").collect::<Vec<_>>(), ["sum:a{host=*}", "avg:b"]);
        assert_eq!(p.get("start"), Some("1h-ago"));
        assert!(p.flag("details") && !p.flag("summary"));
        assert_eq!(p.get("x"), Some("a b"));
        assert_eq!(p.get("bad"), Some("%zz"));
    }

    #[test]
    fn envelope() {
        let e = ApiError::bad("Unable to parse the given JSON").with_details("EOF");
        assert_eq!(e.body(), json!({"error":{"code":400,"message":"Unable to parse the given JSON","details":"EOF"}}));
        assert_eq!(ApiError::new(StatusCode::NOT_FOUND, "Endpoint not found").body(), json!({"error":{"code":404,"message":"Endpoint not found"}}));
    }
}
