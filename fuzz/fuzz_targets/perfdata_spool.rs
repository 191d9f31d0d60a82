//! Arbitrary bytes as a perfdata spool line and as a perfdata string:
//! never a panic; every item read has a label and a finite value or U.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rrdserver::perfdata::{parse, spool};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for line in text.split('\n') {
        if let Ok(Some(check)) = spool::parse_line(line) {
            assert!(check.time > 0 && !check.host.is_empty() && !check.service.is_empty());
            for item in parse(check.perfdata).into_iter().flatten() {
                assert!(!item.label.is_empty());
                assert!(item.value.is_none_or(f64::is_finite));
            }
        }
    }
    for item in parse(&text).into_iter().flatten() {
        assert!(!item.label.is_empty() && item.value.is_none_or(f64::is_finite));
        assert!(!rrdserver::perfdata::opentsdb_name(&item.label).is_empty());
    }
});
