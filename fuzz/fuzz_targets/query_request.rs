//! Arbitrary bytes as an `/api/query` request: the path and query string
//! (routing, percent-decoding, the GET form) and the POST body, each
//! query that parses run against a small store. An answer or an error,
//! never a panic, and every answer is JSON.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use rrdserver::opentsdb::put::parse;
use rrdserver::server::http::{Params, route};
use rrdserver::server::query::{Query, exec};
use rrdserver::server::{App, Config};

const NOW_MS: u64 = 1_700_003_000_000;

fn app() -> &'static Arc<App> {
    static APP: OnceLock<Arc<App>> = OnceLock::new();
    APP.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("rrd-fuzz-query-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let app = App::open(Config { data_dir: dir, ..Config::default() }).expect("store");
        let mut body = String::from("[");
        for i in 0..12u64 {
            for (h, dc) in [("web01", "lga"), ("web02", "lga"), ("db01", "sjc")] {
                body.push_str(&format!(
                    "{{\"metric\":\"sys.cpu\",\"timestamp\":{},\"value\":{},\"tags\":{{\"host\":\"{h}\",\"dc\":\"{dc}\"}}}},",
                    1_700_000_100 + i * 300,
                    i * 7 % 11
                ));
            }
        }
        body.push_str("{\"metric\":\"if.octets\",\"timestamp\":1700000100,\"value\":1.5,\"tags\":{\"host\":\"web01\"}}]");
        let points: Vec<_> = parse(body.as_bytes(), 8).expect("seed body").into_iter().flatten().collect();
        let _ = app.ingest(&points, false);
        app
    })
}

fn answer(q: &Query) {
    if let Ok(out) = exec::run(&app().reads(), q) {
        assert!(serde_json::from_slice::<serde_json::Value>(&out).is_ok(), "{}", String::from_utf8_lossy(&out));
    }
}

fuzz_target!(|data: &[u8]| {
    // First line: a path with a query string; the rest: a POST body.
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let (line, body) = data.split_at(split);
    let line = String::from_utf8_lossy(line);
    let (path, query) = line.split_once('?').map_or((line.as_ref(), None), |(p, q)| (p, Some(q)));
    let _ = route(path);
    let params = Params::parse(query);
    if let Ok(q) = Query::from_params(&params, NOW_MS) {
        answer(&q);
    }
    if let Ok(q) = Query::from_json(body.get(1..).unwrap_or_default(), &params, NOW_MS) {
        answer(&q);
    }
});
