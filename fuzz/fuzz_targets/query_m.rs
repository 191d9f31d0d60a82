//! Arbitrary text as an `m=` sub-query, a downsample specifier and a query
//! time: a value or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rrdserver::opentsdb::query;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(q) = query::parse_m(&text) {
        assert!(query::is_aggregator(&q.aggregator) && !q.metric.is_empty());
    }
    let _ = query::parse_downsample(&text);
    let _ = query::parse_time(&text, 1_700_000_000_000);
});
