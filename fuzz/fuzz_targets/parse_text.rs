//! Every text decoder: RRDtool's number parser, times, DS/RRA strings and
//! create arguments. Errors are fine; panics are not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rrdcore::{Schema, number, parse_ds, parse_rra, timespec};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = number::parse(text);
    let mut halves = text.splitn(2, '|');
    let (a, b) = (halves.next().unwrap_or(""), halves.next().unwrap_or(""));
    let _ = number::counter_diff(a, b);
    let _ = timespec::parse(text, 1_700_000_000, Some(1_600_000_000), Some(1_700_000_000));
    let _ = parse_ds(text);
    let _ = parse_rra(text, 300);
    let args: Vec<&str> = text.split_whitespace().collect();
    let _ = Schema::from_rrdtool_args(&args, 1_700_000_000);
});
