//! Where a single-series 2-day query's time goes inside the server (no
//! HTTP): selection, fetch, shaping and rendering 577 five-minute points.
//! `N=queries`; for profilers, as `profile_put`.
#![allow(clippy::unwrap_used, clippy::cast_precision_loss, reason = "a measuring tool")]

use std::time::Instant;

use rrdserver::opentsdb::put::parse_borrowed;
use rrdserver::server::http::Params;
use rrdserver::server::query::{Query, exec};
use rrdserver::server::{App, Config};

fn main() {
    let n: usize = std::env::var("N").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let dir = tempfile::tempdir().unwrap();
    let app = App::open(Config { data_dir: dir.path().into(), ..Config::default() }).unwrap();
    let end = 1_700_000_100u64;
    let start = end - 2 * 86_400;
    let points: Vec<String> = (0..=576u64).map(|i| format!("{{\"metric\":\"q\",\"timestamp\":{},\"value\":{},\"tags\":{{\"host\":\"a\"}}}}", start + i * 300, i % 50)).collect();
    let body = format!("[{}]", points.join(","));
    let pts: Vec<_> = parse_borrowed(body.as_bytes(), 8).unwrap().into_iter().map(Result::unwrap).collect();
    assert!(app.ingest(&pts, false).unwrap().iter().all(Result::is_ok));
    let params = Params::parse(Some(&format!("start={start}&end={end}&m=sum:q%7Bhost=a%7D")));
    let q = Query::from_params(&params, end * 1000).unwrap();
    let out = exec::run(&app.reads(), &q).unwrap();
    assert_eq!(String::from_utf8_lossy(&out).matches(":").count(), 577 + 5, "{}", String::from_utf8_lossy(&out));
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(exec::run(&app.reads(), &q).unwrap());
    }
    println!("query: {:.1} us each ({} bytes)", t.elapsed().as_secs_f64() * 1e6 / n as f64, out.len());
}
