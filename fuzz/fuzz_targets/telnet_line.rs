//! Arbitrary text as a telnet line: a command or an error line; every
//! accepted point is valid. Never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rrdserver::opentsdb::{point, telnet};

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    if let telnet::Command::Put(Ok(p)) = telnet::parse_line(&line, point::DEFAULT_MAX_TAGS) {
        assert!(point::check_metric(&p.metric).is_ok());
        assert!(point::check_tags(&p.to_owned_point().tags, point::DEFAULT_MAX_TAGS).is_ok());
        assert!(p.timestamp_ms > 0 && p.value.as_f64().is_finite());
    }
});
