//! Arbitrary bytes as an `/api/put` body: a request error or per-point
//! results; every accepted point is valid. Never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rrdserver::opentsdb::{point, put};

fuzz_target!(|data: &[u8]| {
    if let Ok(points) = put::parse(data, point::DEFAULT_MAX_TAGS) {
        for p in points.into_iter().flatten() {
            assert!(point::check_metric(&p.metric).is_ok());
            assert!(point::check_tags(&p.tags, point::DEFAULT_MAX_TAGS).is_ok());
            assert!(p.timestamp_ms > 0 && p.value.as_f64().is_finite());
        }
    }
});
