//! The OpenTSDB-compatible server over real sockets on port 0: every
//! endpoint, the error envelopes, gzip, limits, and the details clients
//! depend on (`opentsdb-api.md`, `opentsdb-clients.md`).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use common::{Server, gzip};
use serde_json::{Value, json};

/// A multiple of 300 (the default step).
const B: u64 = 1_700_000_100;

fn put(s: &Server, points: &Value) -> common::Response {
    s.post("/api/put", &points.to_string())
}

fn pt(metric: &str, t: u64, v: Value, tags: Value) -> Value {
    json!({"metric": metric, "timestamp": t, "value": v, "tags": tags})
}

fn query(s: &Server, body: &Value) -> Value {
    let r = s.post("/api/query", &body.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

#[test]
fn routing_version_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let v = s.get("/api/version");
    assert_eq!(v.status, 200);
    assert_eq!(v.header("content-type"), Some("application/json; charset=UTF-8"));
    assert!(v.json()["version"].is_string());
    assert_eq!(s.get("/API/Version/").status, 200);
    assert_eq!(s.get("/api/v1/version").status, 200);
    let r = s.get("/api/v2/version");
    assert_eq!((r.status, r.json()["error"]["code"].clone()), (501, json!(501)));
    assert_eq!(s.get("/api/v1x/version").status, 400);
    let r = s.get("/api/nothing");
    assert_eq!(r.status, 404);
    assert_eq!(r.json(), json!({"error": {"code": 404, "message": "Endpoint not found"}}));
    let r = s.req("PATCH", "/api/put", b"");
    assert_eq!(r.status, 405);
    let r = s.get("/api/put");
    assert_eq!(r.status, 405);
    assert_eq!(r.json()["error"]["message"], "Method not allowed");
    assert_eq!(r.json()["error"]["details"], "The HTTP method [GET] is not permitted for this endpoint");
    assert_eq!(s.req("POST", "/api/aggregators", b"").status, 405);
}

#[test]
fn put_answers_as_opentsdb_does() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    // One object, no content type: exactly 204 with an empty body.
    let r = put(&s, &pt("sys.load", B, json!(1), json!({"host": "a"})));
    assert_eq!((r.status, r.body.len()), (204, 0));
    // Trailing slash, values as floats and numeric strings, millisecond stamps.
    let body = json!([pt("sys.load", B + 300, json!("0.75"), json!({"host": "a"})), pt("sys.load", (B + 600) * 1000, json!(3.5e-2), json!({"host": "a"}))]);
    assert_eq!(s.post("/api/put/", &body.to_string()).status, 204);
    // A bad point without summary/details: 400 envelope, the good one stored.
    let body = json!([pt("sys.load", B, json!(1), json!({"host": "b"})), pt("sys.load", B, json!("NaN"), json!({"host": "c"}))]);
    let r = put(&s, &body);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["message"], "One or more data points had errors");
    assert_eq!(r.json()["error"]["details"], "Please see the TSD logs or append \"details\" to the put request");
    // details: counts and the failed point with its value as a string.
    let body = json!([pt("sys.load", B + 300, json!(2), json!({"host": "b"})), {"metric": "sys.load", "timestamp": B, "value": "NaN", "tags": {"host": "web01"}}, null]);
    let r = s.post("/api/put?details", &body.to_string());
    assert_eq!(r.status, 400);
    let j = r.json();
    assert_eq!((j["success"].clone(), j["failed"].clone()), (json!(1), json!(2)));
    assert_eq!(j["errors"][0]["datapoint"], json!({"metric": "sys.load", "timestamp": B, "value": "NaN", "tags": {"host": "web01"}}));
    assert_eq!(j["errors"][0]["error"], "Unable to parse value to a number");
    assert_eq!(j["errors"][1]["error"], "Unexpected null datapoint encountered in set.");
    // summary with no failure: 200 and counts; ?details=false still means details.
    let r = s.post("/api/put?summary", &pt("sys.load", B + 600, json!(3), json!({"host": "b"})).to_string());
    assert_eq!((r.status, r.json()), (200, json!({"success": 1, "failed": 0})));
    let r = s.post("/api/put?details=false", &pt("sys.load", B + 900, json!(3), json!({"host": "b"})).to_string());
    assert_eq!(r.json(), json!({"success": 1, "failed": 0, "errors": []}));
    // sync: answered once the databases are on disk; with a timeout, the timeouts count.
    let r = s.post("/api/put?sync", &pt("sys.load", B + 1200, json!(4), json!({"host": "b"})).to_string());
    assert_eq!(r.status, 204);
    let r = s.post("/api/put?sync&sync_timeout=1000&summary", &pt("sys.load", B + 1500, json!(5), json!({"host": "b"})).to_string());
    assert_eq!(r.json(), json!({"success": 1, "failed": 0, "timeouts": 0}));
    // Whole-request failures.
    for (body, message) in [
        ("", "Missing request content"),
        ("  ", "Missing request content"),
        ("x", "The JSON must start as an object or an array"),
        ("[]", "No datapoints found in content"),
        ("[{\"metric\":", "Unable to parse the given JSON"),
        ("{\"metric\":\"m\",\"timestamp\":1,\"value\":1,\"tags\":[\"a\"]}", "Unable to parse the given JSON"),
    ] {
        let r = s.post("/api/put", body);
        assert_eq!((r.status, r.json()["error"]["message"].as_str().unwrap()), (400, message), "{body}");
    }
    // Per-point validation texts.
    let cases = [
        (json!({"metric": "", "timestamp": B, "value": 1, "tags": {"h": "a"}}), "Metric name was empty"),
        (json!({"metric": "m", "timestamp": 0, "value": 1, "tags": {"h": "a"}}), "Invalid timestamp"),
        (json!({"metric": "m", "timestamp": B, "tags": {"h": "a"}}), "Empty value"),
        (json!({"metric": "m", "timestamp": B, "value": 1, "tags": {}}), "Missing tags"),
        (json!({"metric": "a b", "timestamp": B, "value": 1, "tags": {"h": "a"}}), "Invalid metric name (\"a b\"): illegal character:  "),
        (json!({"metric": "m", "timestamp": B, "value": "1e999", "tags": {"h": "a"}}), "value is NaN or Infinite: 1e999"),
    ];
    for (p, error) in cases {
        let r = s.post("/api/put?details", &p.to_string());
        assert_eq!(r.status, 400);
        assert_eq!(r.json()["errors"][0]["error"], error, "{p}");
    }
    let many: serde_json::Map<String, Value> = (0..9).map(|i| (format!("k{i}"), json!("v"))).collect();
    let r = s.post("/api/put?details", &json!({"metric": "m", "timestamp": B, "value": 1, "tags": many}).to_string());
    assert!(r.json()["errors"][0]["error"].as_str().unwrap().starts_with("Too many tags: 9 maximum allowed: 8"));
    // Nothing invalid was stored: only sys.load exists.
    assert_eq!(s.get("/api/suggest?type=metrics").json(), json!(["sys.load"]));
}

#[test]
fn old_points_fail_alone_and_resends_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    // Points applied at once (the reorder window is tested in durable.rs).
    let s = Server::with_config(rrdserver::server::Config { data_dir: dir.path().to_path_buf(), reorder_window_ms: 0, ..Default::default() });
    let batch = json!([pt("m", B, json!(1), json!({"h": "a"})), pt("m", B + 300, json!(2), json!({"h": "a"}))]);
    assert_eq!(put(&s, &batch).status, 204);
    // scollector resends a whole batch after any failure: a resend is accepted.
    assert_eq!(put(&s, &batch).status, 204);
    // The same time with another value is refused, not silently dropped.
    let r = s.post("/api/put?details", &pt("m", B + 300, json!(7), json!({"h": "a"})).to_string());
    assert_eq!(r.json()["failed"], 1);
    // An older point fails alone; the new point beside it is stored.
    let body = json!([pt("m", B, json!(9), json!({"h": "a"})), pt("m", B + 600, json!(3), json!({"h": "a"}))]);
    let r = s.post("/api/put?details", &body.to_string());
    assert_eq!(r.status, 400);
    let j = r.json();
    assert_eq!((j["success"].clone(), j["failed"].clone()), (json!(1), json!(1)));
    assert!(j["errors"][0]["error"].as_str().unwrap().contains("not after the series' last update"), "{j}");
    // Points of one series may come in any order within a batch.
    let body = json!([pt("m", B + 1200, json!(5), json!({"h": "a"})), pt("m", B + 900, json!(4), json!({"h": "a"}))]);
    let r = put(&s, &body);
    assert_eq!(r.status, 204, "{}", s.post("/api/put?details", &body.to_string()).text());
    let got = query(&s, &json!({"start": B, "end": B + 1200, "queries": [{"aggregator": "sum", "metric": "m"}]}));
    assert_eq!(got[0]["dps"], json!({B.to_string(): 1, (B + 300).to_string(): 2, (B + 600).to_string(): 3, (B + 900).to_string(): 4, (B + 1200).to_string(): 5}));
    let stats = s.get("/api/stats").json();
    let stat = |name: &str| stats.as_array().unwrap().iter().find(|x| x["metric"] == name).unwrap()["value"].clone();
    assert_eq!(stat("tsd.datapoints.too_old"), json!("2"));
    assert_eq!(stat("tsd.datapoints.duplicate"), json!("2"));
    assert_eq!(stat("tsd.datapoints.added"), json!("5"));
}

#[test]
fn gzip_bodies_and_limits() {
    let dir = tempfile::tempdir().unwrap();
    let config = rrdserver::server::Config { data_dir: dir.path().to_path_buf(), max_body_bytes: 64 * 1024, ..Default::default() };
    let s = Server::with_config(config);
    let body = json!([pt("gz", B, json!(1), json!({"h": "a"}))]).to_string();
    let r = s.client().send("POST", "/api/put", &[("Content-Encoding", "gzip"), ("Content-Type", "application/json")], &gzip(body.as_bytes()));
    assert_eq!(r.status, 204, "{}", r.text());
    // Corrupt gzip: 400, not a dropped connection.
    let r = s.client().send("POST", "/api/put", &[("Content-Encoding", "gzip")], b"\x1f\x8b\x08garbage");
    assert_eq!(r.status, 400);
    // Too large as sent, and too large once inflated (a gzip bomb).
    let r = s.req("POST", "/api/put", &vec![b' '; 100 * 1024]);
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["error"]["code"], 413);
    let bomb = gzip(&vec![b' '; 10 << 20]);
    assert!(bomb.len() < 64 * 1024);
    let r = s.client().send("POST", "/api/put", &[("Content-Encoding", "gzip")], &bomb);
    assert_eq!(r.status, 413);
    // Gzip answers when asked for.
    let big = json!({"start": B, "end": B, "queries": [{"aggregator": "sum", "metric": "gz"}]}).to_string();
    let r = s.client().send("POST", "/api/query", &[("Accept-Encoding", "gzip")], big.as_bytes());
    assert_eq!(r.status, 200);
    let r = s.client().send("GET", "/api/stats", &[("Accept-Encoding", "gzip, deflate")], b"");
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&r.body[..]), &mut text).unwrap();
    assert!(text.contains("\"tsd.uptime\""));
    // Chunked uploads are accepted.
    let mut c = s.client();
    let chunked = format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len());
    let raw = format!("POST /api/put HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n{chunked}");
    let mut stream = std::net::TcpStream::connect(s.addr).unwrap();
    std::io::Write::write_all(&mut stream, raw.as_bytes()).unwrap();
    let mut buf = [0u8; 12];
    std::io::Read::read_exact(&mut stream, &mut buf).unwrap();
    assert_eq!(&buf, b"HTTP/1.1 204");
    assert_eq!(c.send("GET", "/api/version", &[], b"").status, 200);
}

fn seed(s: &Server) {
    // Two hosts on step boundaries; integers for web01, floats for web02.
    let mut pts = Vec::new();
    for i in 0..6u64 {
        pts.push(pt("sys.cpu", B + i * 300, json!(10 * i), json!({"host": "web01", "dc": "lga"})));
        pts.push(pt("sys.cpu", B + i * 300, json!(0.5 + i as f64), json!({"host": "web02", "dc": "lga"})));
    }
    pts.push(pt("sys.cpu", B + 300, json!(100), json!({"host": "db01", "dc": "sjc"})));
    pts.push(pt("if.octets", B, json!(1000), json!({"host": "web01"})));
    pts.push(pt("if.octets", B + 300, json!(4000), json!({"host": "web01"})));
    pts.push(pt("if.octets", B + 600, json!(1000), json!({"host": "web01"})));
    assert_eq!(put(s, &Value::Array(pts)).status, 204);
}

#[test]
fn queries_read_back_what_was_put() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    seed(&s);
    // One series, exact tags: exactly what was put, first point included; integers stay integers.
    let got = query(&s, &json!({"start": B, "end": B + 1500, "queries": [{"aggregator": "sum", "metric": "sys.cpu", "tags": {"host": "web01"}}]}));
    assert_eq!(got.as_array().unwrap().len(), 1);
    let dps: Value = (0..6u64).map(|i| ((B + i * 300).to_string(), json!(10 * i))).collect::<serde_json::Map<_, _>>().into();
    assert_eq!(got[0]["dps"], dps);
    assert_eq!(got[0]["tags"], json!({"host": "web01", "dc": "lga"}));
    assert_eq!(got[0]["aggregateTags"], json!([]));
    assert_eq!(got[0]["dps"][B.to_string()].as_i64(), Some(0));
    // Floats stay floats.
    let got = query(&s, &json!({"start": B, "end": B + 1500, "queries": [{"aggregator": "sum", "metric": "sys.cpu", "tags": {"host": "web02"}}]}));
    assert_eq!(got[0]["dps"][B.to_string()], json!(0.5));
    // Group by host: three results sorted by tag; no grouping: one result with aggregateTags.
    let got = query(&s, &json!({"start": B, "end": B + 1500, "queries": [{"aggregator": "sum", "metric": "sys.cpu", "tags": {"host": "*"}}]}));
    let hosts: Vec<&str> = got.as_array().unwrap().iter().map(|r| r["tags"]["host"].as_str().unwrap()).collect();
    assert_eq!(hosts, ["db01", "web01", "web02"]);
    let got = query(&s, &json!({"start": B, "end": B + 1500, "queries": [{"aggregator": "sum", "metric": "sys.cpu", "filters": [{"type": "wildcard", "tagk": "host", "filter": "web*", "groupBy": false}]}]}));
    assert_eq!(got[0]["tags"], json!({"dc": "lga"}));
    assert_eq!(got[0]["aggregateTags"], json!(["host"]));
    assert_eq!(got[0]["dps"][(B + 300).to_string()], json!(11.5));
    // All series: db01 only has one point, so it only takes part at B+300 (no interpolation outside).
    let got = query(&s, &json!({"start": B, "end": B + 1500, "queries": [{"aggregator": "sum", "metric": "sys.cpu"}]}));
    assert_eq!(got[0]["dps"][(B + 300).to_string()], json!(111.5));
    assert_eq!(got[0]["dps"][(B + 600).to_string()], json!(22.5));
    assert_eq!(got[0]["tags"], json!({}));
    assert_eq!(got[0]["aggregateTags"], json!(["dc", "host"]));
    // `none`: every series alone.
    let got = query(&s, &json!({"start": B, "end": B + 1500, "queries": [{"aggregator": "none", "metric": "sys.cpu"}]}));
    assert_eq!(got.as_array().unwrap().len(), 3);
    // The range is inclusive at both ends.
    let got = query(&s, &json!({"start": B + 300, "end": B + 600, "queries": [{"aggregator": "sum", "metric": "sys.cpu", "tags": {"host": "web01"}}]}));
    assert_eq!(got[0]["dps"], json!({(B + 300).to_string(): 10, (B + 600).to_string(): 20}));
    // Nothing in range: [].
    let got = query(&s, &json!({"start": B - 100_000, "end": B - 90_000, "queries": [{"aggregator": "sum", "metric": "sys.cpu"}]}));
    assert_eq!(got, json!([]));
}

#[test]
fn query_options() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    seed(&s);
    let web01 = json!({"host": "web01"});
    // Counter rate with a wrap: reset value makes it 0 (Bosun's counter options).
    let q = json!({"start": B, "end": B + 600, "queries": [{"aggregator": "sum", "metric": "if.octets", "rate": true, "rateOptions": {"counter": true, "resetValue": 1}, "tags": web01}]});
    let got = query(&s, &q);
    assert_eq!(got[0]["dps"], json!({(B + 300).to_string(): 10.0, (B + 600).to_string(): 0.0}));
    let q = json!({"start": B, "end": B + 600, "queries": [{"aggregator": "sum", "metric": "if.octets", "rate": true, "rateOptions": {"counter": true, "dropResets": true}}]});
    assert_eq!(query(&s, &q)[0]["dps"], json!({(B + 300).to_string(): 10.0}));
    // Downsampling: buckets stamped at their start, always doubles; fill policies.
    let q = json!({"start": B, "end": B + 1500, "queries": [{"aggregator": "sum", "metric": "sys.cpu", "downsample": "10m-max", "tags": web01}]});
    let got = query(&s, &q);
    let first = B - B % 600;
    // Buckets [B-300, B+300) and [B+300, B+900): the first holds only B and is stamped before start.
    assert_eq!(got[0]["dps"][(first + 600).to_string()], json!(20.0));
    assert!(got[0]["dps"].get(first.to_string()).is_none(), "a bucket stamped before start is trimmed: {}", got[0]["dps"]);
    let q = json!({"start": B + 1800, "end": B + 2400, "queries": [{"aggregator": "sum", "metric": "sys.cpu", "downsample": "5m-avg-null", "tags": web01}]});
    assert_eq!(query(&s, &q), json!([]), "a series needs a real point in the window even with a fill");
    let q = json!({"start": B, "end": B + 2400, "queries": [{"aggregator": "sum", "metric": "sys.cpu", "downsample": "5m-avg-null", "tags": web01}]});
    assert_eq!(query(&s, &q)[0]["dps"][(B + 2400).to_string()], Value::Null);
    let q = json!({"start": B, "end": B + 2400, "queries": [{"aggregator": "sum", "metric": "sys.cpu", "downsample": "5m-avg-nan", "tags": web01}]});
    assert_eq!(query(&s, &q)[0]["dps"][(B + 2400).to_string()], json!("NaN"));
    let q = json!({"start": B, "end": B + 2400, "queries": [{"aggregator": "sum", "metric": "sys.cpu", "downsample": "5m-avg-zero", "tags": web01}]});
    assert_eq!(query(&s, &q)[0]["dps"][(B + 2400).to_string()], json!(0.0));
    // A fill that would emit millions of buckets is refused, not attempted.
    let q = json!({"start": B - 86_400 * 365, "end": B, "queries": [{"aggregator": "sum", "metric": "sys.cpu", "downsample": "1s-sum-zero"}]});
    let r = s.post("/api/query", &q.to_string());
    assert_eq!(r.status, 413, "{}", r.text());
    // msResolution and ?arrays.
    let q = json!({"start": B, "end": B + 300, "msResolution": true, "queries": [{"aggregator": "sum", "metric": "sys.cpu", "tags": web01}]});
    assert_eq!(query(&s, &q)[0]["dps"], json!({(B * 1000).to_string(): 0, ((B + 300) * 1000).to_string(): 10}));
    let r = s.post("/api/query?arrays=true", &json!({"start": B, "end": B + 300, "queries": [{"aggregator": "sum", "metric": "sys.cpu", "tags": web01}]}).to_string());
    assert_eq!(r.json()[0]["dps"], json!([[B, 0], [B + 300, 10]]));
    // showQuery echoes each sub-query with its index.
    let q = json!({"start": B, "end": B + 300, "showQuery": true, "queries": [
        {"aggregator": "sum", "metric": "if.octets"},
        {"aggregator": "avg", "metric": "sys.cpu", "filters": [{"type": "literal_or", "tagk": "host", "filter": "web01|web02", "groupBy": true}]}]});
    let got = query(&s, &q);
    assert_eq!(got[0]["query"]["index"], 0);
    assert_eq!(got[1]["query"]["index"], 1);
    assert_eq!(got[1]["query"]["filters"][0], json!({"tagk": "host", "filter": "web01|web02", "group_by": true, "type": "literal_or"}));
    assert_eq!(got[1]["query"]["tags"], json!({"host": "literal_or(web01|web02)"}));
    // Filter types.
    let count = |filters: Value| query(&s, &json!({"start": B, "end": B + 300, "queries": [{"aggregator": "none", "metric": "sys.cpu", "filters": filters}]})).as_array().unwrap().len();
    assert_eq!(count(json!([{"type": "iliteral_or", "tagk": "host", "filter": "WEB01"}])), 1);
    assert_eq!(count(json!([{"type": "not_literal_or", "tagk": "host", "filter": "web01"}])), 2);
    assert_eq!(count(json!([{"type": "not_iliteral_or", "tagk": "host", "filter": "WEB01|DB01"}])), 1);
    assert_eq!(count(json!([{"type": "iwildcard", "tagk": "host", "filter": "WEB*"}])), 2);
    assert_eq!(count(json!([{"type": "regexp", "tagk": "host", "filter": "b0"}])), 3);
    assert_eq!(count(json!([{"type": "regexp", "tagk": "host", "filter": "^web"}])), 2);
    assert_eq!(count(json!([{"type": "not_key", "tagk": "dc", "filter": ""}])), 0);
    assert_eq!(count(json!([{"type": "wildcard", "tagk": "host", "filter": "*"}, {"type": "literal_or", "tagk": "dc", "filter": "sjc"}])), 1);
    // explicitTags: sys.cpu series all have host and dc, so host alone matches none.
    let q = json!({"start": B, "end": B + 300, "queries": [{"aggregator": "none", "metric": "sys.cpu", "explicitTags": true, "tags": {"host": "*"}}]});
    assert_eq!(query(&s, &q), json!([]));
    let q = json!({"start": B, "end": B + 300, "queries": [{"aggregator": "none", "metric": "sys.cpu", "explicitTags": true, "tags": {"host": "*", "dc": "*"}}]});
    assert_eq!(query(&s, &q).as_array().unwrap().len(), 3);
}

#[test]
fn query_get_form_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    seed(&s);
    let r = s.get(&format!("/api/query?start={B}&end={}&m=sum:sys.cpu%7Bhost=web01%7D", B + 300));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()[0]["dps"], json!({B.to_string(): 0, (B + 300).to_string(): 10}));
    let r = s.get(&format!("/api/query?start={}&end={}&m=sum:rate%7Bcounter,,1%7D:if.octets&ms", B * 1000, (B + 300) * 1000));
    assert_eq!(r.json()[0]["dps"], json!({((B + 300) * 1000).to_string(): 10.0}));
    let r = s.get(&format!("/api/query?start={B}&m=sum:sys.cpu%7B%7D%7Bhost=web*%7D&m=avg:if.octets"));
    let j = r.json();
    assert_eq!(j.as_array().unwrap().len(), 2);
    // Absolute dates (UTC) and relative ones.
    let r = s.get("/api/query?start=2023/11/14-22:10:00&end=2023/11/14-22:20:00&m=sum:sys.cpu%7Bhost=web01%7D");
    assert_eq!(r.json()[0]["dps"], json!({"1700000100": 0, "1700000400": 10}));
    assert_eq!(s.get("/api/query?start=1h-ago&m=sum:sys.cpu").json(), json!([]));
    let err = |path: &str| {
        let r = s.get(path);
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        r.json()["error"]["message"].as_str().unwrap().to_owned()
    };
    assert_eq!(err("/api/query?m=sum:sys.cpu"), "Missing parameter <code>start</code>");
    assert_eq!(err("/api/query?start=1h-ago"), "Missing sub queries");
    assert_eq!(err("/api/query?start=1h-ago&m=sum:nope"), "No such name for 'metrics': 'nope'");
    assert_eq!(err("/api/query?start=1h-ago&m=sum:sys.cpu%7Bnope=a%7D"), "No such name for 'tagk': 'nope'");
    assert_eq!(err("/api/query?start=1h-ago&m=sum:sys.cpu%7Bhost=nope%7D"), "No such name for 'tagv': 'nope'");
    assert_eq!(err("/api/query?start=1h-ago&m=bogus:sys.cpu"), "No such aggregation function: bogus");
    assert_eq!(err("/api/query?start=1h-ago&m=sum:1m-none:sys.cpu"), "cannot use the NONE aggregator for downsampling");
    assert!(err("/api/query?start=2h-ago&end=3h-ago&m=sum:sys.cpu").starts_with("End time ["));
    assert!(err("/api/query?start=yesterday&m=sum:sys.cpu").starts_with("Invalid"));
    let post_err = |body: &str| {
        let r = s.post("/api/query", body);
        assert_eq!(r.status, 400, "{body}");
        r.json()["error"]["message"].as_str().unwrap().to_owned()
    };
    assert_eq!(post_err(""), "Missing message content");
    assert_eq!(post_err("{"), "Unable to parse the given JSON");
    assert_eq!(post_err("{\"queries\":[{\"aggregator\":\"sum\",\"metric\":\"sys.cpu\"}]}"), "Missing start time");
    assert_eq!(post_err(&format!("{{\"start\":{B}}}")), "Missing queries");
    assert_eq!(post_err(&format!("{{\"start\":{B},\"queries\":[{{\"metric\":\"sys.cpu\"}}]}}")), "Missing the aggregation function");
    assert_eq!(post_err(&format!("{{\"start\":{B},\"queries\":[{{\"aggregator\":\"sum\"}}]}}")), "Missing the metric or tsuids, provide at least one");
    assert_eq!(
        post_err(&format!("{{\"start\":{B},\"queries\":[{{\"aggregator\":\"sum\",\"metric\":\"sys.cpu\",\"filters\":[{{\"type\":\"bogus\",\"tagk\":\"host\",\"filter\":\"a\"}}]}}]}}")),
        "Could not find a tag value filter of the type: bogus"
    );
    assert_eq!(post_err(&format!("{{\"start\":{B},\"delete\":true,\"queries\":[{{\"aggregator\":\"sum\",\"metric\":\"sys.cpu\"}}]}}")), "Bad request");
    assert_eq!(s.req("DELETE", "/api/query", b"").status, 400);
}

/// Grafana's and Bosun's exact request bodies (`opentsdb-clients.md` §2, §5).
#[test]
fn grafana_and_bosun_requests() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    seed(&s);
    // Grafana browser path, version 2.3: ms times, showQuery, globalAnnotations.
    let body = json!({"start": B * 1000, "end": (B + 1500) * 1000, "queries": [{"metric": "sys.cpu", "aggregator": "avg", "downsample": "5m-avg",
        "filters": [{"type": "wildcard", "tagk": "host", "filter": "*", "groupBy": true}]}], "msResolution": false, "globalAnnotations": true, "showQuery": true});
    let got = query(&s, &body);
    for r in got.as_array().unwrap() {
        assert!(r["tags"].is_object() && r["aggregateTags"].is_array() && r["dps"].is_object());
        assert_eq!(r["query"]["index"], 0);
        for (k, v) in r["dps"].as_object().unwrap() {
            assert!(k.len() == 10 && v.is_f64(), "{k}: {v}");
        }
    }
    // Grafana's Go back end, version 4: seconds and arrays.
    let r = s.post("/api/query?arrays=true", &json!({"start": B, "end": B + 1500, "queries": [{"metric": "sys.cpu", "aggregator": "sum", "downsample": "1m-avg", "tags": {"host": "web01|web02"}}]}).to_string());
    assert_eq!(r.status, 200);
    assert!(r.json()[0]["dps"][0].is_array());
    // The health check and editor calls.
    assert_eq!(s.get("/api/suggest?q=cpu&type=metrics").status, 200);
    assert_eq!(s.get("/api/suggest?type=metrics&q=sys&max=1000").json(), json!(["sys.cpu"]));
    let keys: Vec<String> = s.get("/api/config/filters").json().as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys.len(), 8);
    let lookup = s.get("/api/search/lookup?m=sys.cpu%7Bhost=*,dc=lga%7D&limit=1000").json();
    let hosts: Vec<&str> = lookup["results"].as_array().unwrap().iter().map(|r| r["tags"]["host"].as_str().unwrap()).collect();
    assert_eq!(hosts, ["web01", "web02"]);
    // Bosun: seconds, rateOptions always present, downsample, filters from its m-syntax.
    let body = json!({"start": B, "end": B + 600, "queries": [{"aggregator": "sum", "metric": "if.octets", "rate": true, "rateOptions": {"counter": true, "resetValue": 1}, "downsample": "300s-avg",
        "filters": [{"type": "wildcard", "tagk": "host", "filter": "*", "groupBy": true}]}]});
    let got = query(&s, &body);
    assert_eq!(got[0]["dps"][(B + 300).to_string()], json!(10.0));
    let body = json!({"start": B, "end": B + 600, "queries": [{"aggregator": "sum", "metric": "sys.cpu", "rateOptions": {}, "tags": {"host": "web01"}}]});
    assert_eq!(query(&s, &body)[0]["dps"][B.to_string()], json!(0));
}

/// A query reads the finest archive that covers its whole range.
#[test]
fn queries_pick_the_archive_by_range() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    // Three days of 5-minute points (the finest archive keeps 50 hours).
    let n = 3 * 288u64;
    let pts: Vec<Value> = (0..n).map(|i| pt("long", B + i * 300, json!(i % 7), json!({"h": "a"}))).collect();
    assert_eq!(put(&s, &Value::Array(pts)).status, 204);
    let end = B + (n - 1) * 300;
    let stamps = |start: u64| -> Vec<u64> {
        let got = query(&s, &json!({"start": start, "end": end, "queries": [{"aggregator": "sum", "metric": "long"}]}));
        got[0]["dps"].as_object().unwrap().keys().map(|k| k.parse().unwrap()).collect()
    };
    let two_days = stamps(end - 2 * 86_400);
    assert_eq!(two_days.len(), 2 * 288 + 1);
    assert!(two_days.windows(2).all(|w| w[1] - w[0] == 300));
    let three_days = stamps(end - 3 * 86_400);
    assert!(three_days.windows(2).all(|w| w[1] - w[0] == 1800), "30-minute rows for a range beyond 50 hours");
    let two_years = stamps(end - 700 * 86_400);
    assert!(two_years.iter().all(|t| t % 86_400 == 0) && !two_years.is_empty(), "daily rows for two years: {two_years:?}");
}

#[test]
fn names_lookup_last_and_operations() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    seed(&s);
    assert_eq!(s.get("/api/suggest?type=tagk").json(), json!(["dc", "host"]));
    assert_eq!(s.get("/api/suggest?type=tagv&q=web").json(), json!(["web01", "web02"]));
    assert_eq!(s.get("/api/suggest?type=tagv&max=1").json(), json!(["db01"]));
    assert_eq!(s.post("/api/suggest/", "{\"type\":\"metrics\",\"q\":\"i\",\"max\":\"10\"}").json(), json!(["if.octets"]));
    let msg = |r: common::Response| (r.status, r.json()["error"]["message"].as_str().unwrap().to_owned());
    assert_eq!(msg(s.get("/api/suggest?q=a")), (400, "Missing parameter <code>type</code>".into()));
    assert_eq!(msg(s.post("/api/suggest", "{\"q\":\"a\"}")), (400, "Missing 'type' parameter".into()));
    assert_eq!(msg(s.get("/api/suggest?type=bogus")), (400, "Invalid 'type' parameter:bogus".into()));
    assert_eq!(msg(s.get("/api/suggest?type=tagk&max=x")), (400, "Unable to parse 'max' as a number".into()));
    // Lookup: across metrics, OR within one key, 404 for unknown names.
    let l = s.get("/api/search/lookup?m=%7Bhost=web01%7D").json();
    assert_eq!(l["totalResults"], 2);
    assert!(l.get("metric").is_none());
    let l = s.get("/api/search/lookup?m=sys.cpu%7Bhost=web01,host=db01%7D").json();
    assert_eq!(l["totalResults"], 2);
    let l = s.post("/api/search/lookup", "{\"metric\":\"sys.cpu\",\"tags\":[{\"key\":\"dc\",\"value\":\"*\"}],\"limit\":1}").json();
    assert_eq!((l["totalResults"].clone(), l["results"].as_array().unwrap().len(), l["limit"].clone()), (json!(3), 1, json!(1)));
    let r = s.get("/api/search/lookup?m=sys.cpu%7Bnope=*%7D");
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["details"], "No such name for 'tagk': 'nope'");
    assert_eq!(msg(s.get("/api/search/lookup")), (400, "Missing metric and tags. Please supply at least one value.".into()));
    assert_eq!(msg(s.get("/api/search/tsmeta?query=x")), (400, "Searching is not enabled".into()));
    // Last points: ms timestamps, string values, names only when resolving.
    let last = s.get("/api/query/last?timeseries=sys.cpu%7Bhost=web01%7D&resolve").json();
    assert_eq!(last, json!([{"metric": "sys.cpu", "tags": {"host": "web01", "dc": "lga"}, "timestamp": (B + 1500) * 1000, "value": "50", "tsuid": last[0]["tsuid"]}]));
    let tsuid = last[0]["tsuid"].as_str().unwrap().to_owned();
    let by_id = s.get(&format!("/api/query/last?tsuids={tsuid}")).json();
    assert_eq!(by_id[0]["value"], "50");
    assert!(by_id[0].get("metric").is_none());
    let post = s.post("/api/query/last", "{\"queries\":[{\"metric\":\"sys.cpu\",\"tags\":{\"host\":\"web02\"}}],\"resolveNames\":true}").json();
    assert_eq!(post[0]["value"], "5.5");
    assert_eq!(msg(s.get("/api/query/last")), (400, "Missing sub queries".into()));
    // A tsuid sub-query reads the same series as its name.
    let r = s.get(&format!("/api/query?start={B}&end={}&tsuid=sum:{tsuid}", B + 300)).json();
    assert_eq!(r[0]["dps"], json!({B.to_string(): 0, (B + 300).to_string(): 10}));
    // Aggregators, filters, config, stats, dropcaches, serializers.
    let aggs = s.get("/api/aggregators").json();
    assert_eq!(aggs.as_array().unwrap().len(), 35);
    for name in ["sum", "zimsum", "p99", "ep50r7", "none", "squareSum"] {
        assert!(aggs.as_array().unwrap().contains(&json!(name)));
    }
    let f = s.get("/api/config/filters").json();
    assert!(f["regexp"]["description"].is_string() && f["not_key"]["examples"].is_string());
    assert_eq!(s.get("/api/config").json()["tsd.storage.max_tags"], "8");
    let stats = s.get("/api/stats").json();
    let series = stats.as_array().unwrap().iter().find(|x| x["metric"] == "tsd.series.count").unwrap();
    assert_eq!(series["value"], "4");
    assert!(series["tags"]["host"].is_string() && series["timestamp"].is_u64());
    assert_eq!(s.get("/api/dropcaches").json(), json!({"message": "Caches dropped", "status": "200"}));
    assert_eq!(s.get("/api/serializers").json()[0]["serializer"], "json");
    assert_eq!(s.get("/api/status").json(), json!({"status": "ok"}));
}

#[test]
fn data_and_index_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    seed(&s);
    let before = query(&s, &json!({"start": B, "end": B + 1500, "queries": [{"aggregator": "sum", "metric": "sys.cpu", "tags": {"host": "*"}}]}));
    s.stop();
    let s = Server::start(dir.path());
    let after = query(&s, &json!({"start": B, "end": B + 1500, "queries": [{"aggregator": "sum", "metric": "sys.cpu", "tags": {"host": "*"}}]}));
    assert_eq!(before, after);
    assert_eq!(s.get("/api/suggest?type=metrics").json(), json!(["if.octets", "sys.cpu"]));
    // And the store still refuses what is older than its last update.
    let r = s.post("/api/put?summary", &pt("sys.cpu", B, json!(1), json!({"host": "web01", "dc": "lga"})).to_string());
    assert_eq!(r.json()["failed"], 1);
}

#[test]
fn nan_as_null_and_tsuids() {
    let dir = tempfile::tempdir().unwrap();
    let config = rrdserver::server::Config { data_dir: dir.path().to_path_buf(), nan_as_null: true, ..Default::default() };
    let s = Server::with_config(config);
    seed(&s);
    let q = json!({"start": B, "end": B + 2400, "showTSUIDs": true, "queries": [{"aggregator": "sum", "metric": "sys.cpu", "downsample": "5m-avg-nan", "tags": {"host": "web01"}}]});
    let got = query(&s, &q);
    assert_eq!(got[0]["dps"][(B + 2400).to_string()], Value::Null, "nan_as_null writes null for the nan fill");
    let ids = got[0]["tsuids"].as_array().unwrap();
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0].as_str().unwrap().len(), 6 + 2 * 12, "metric UID and two tag pairs, 3 bytes each in hex");
}

/// `run` works on a single-threaded runtime too (embedders choose theirs).
#[test]
fn a_single_threaded_runtime_serves_everything() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_current_thread(dir.path());
    seed(&s);
    let got = query(&s, &json!({"start": B, "end": B + 300, "queries": [{"aggregator": "sum", "metric": "sys.cpu", "tags": {"host": "web01"}}]}));
    assert_eq!(got[0]["dps"], json!({B.to_string(): 0, (B + 300).to_string(): 10}));
    assert_eq!(s.get("/api/query/last?timeseries=sys.cpu%7Bhost=web01%7D").json()[0]["value"], "50");
}
