//! Arbitrary bytes as a journal segment (with a valid header, so the block
//! reader is reached): never a panic, damage covers no intact block, and a
//! segment re-encoded from what was read reads back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rrdserver::server::journal::format::{BlockWriter, Record, SEGMENT_HEADER, read_segment, segment_header};

fuzz_target!(|data: &[u8]| {
    let mut bytes = segment_header(1).to_vec();
    bytes.extend_from_slice(data);
    let mut records = Vec::new();
    let scan = read_segment(&bytes, |r| records.push(r.clone_owned())).expect("a valid header");
    let mut end = SEGMENT_HEADER as u64;
    for d in &scan.damage {
        assert!(d.offset >= end && d.skipped > 0);
        end = d.offset + d.skipped;
    }
    assert!(end <= bytes.len() as u64);
    // What was read, written again, reads back the same.
    let mut w = BlockWriter::default();
    for r in &records {
        match r {
            Owned::Define(id, text, counter) => w.define(*id, text, *counter),
            Owned::Point(id, ms, v) => w.point(*id, *ms, *v),
        }
    }
    w.seal();
    let mut again = segment_header(2).to_vec();
    again.extend_from_slice(w.bytes());
    let mut back = Vec::new();
    let scan = read_segment(&again, |r| back.push(r.clone_owned())).expect("a valid header");
    assert!(scan.damage.is_empty());
    assert_eq!(back.len(), records.len());
    for (a, b) in back.iter().zip(&records) {
        assert!(a.same(b), "{a:?} != {b:?}");
    }
});

#[derive(Debug)]
enum Owned {
    Define(u64, String, bool),
    Point(u64, u64, f64),
}

impl Owned {
    fn same(&self, other: &Owned) -> bool {
        match (self, other) {
            (Owned::Define(a, t, c), Owned::Define(b, u, d)) => a == b && t == u && c == d,
            (Owned::Point(a, m, v), Owned::Point(b, n, w)) => a == b && m == n && v.to_bits() == w.to_bits(),
            _ => false,
        }
    }
}

trait CloneOwned {
    fn clone_owned(&self) -> Owned;
}

impl CloneOwned for Record<'_> {
    fn clone_owned(&self) -> Owned {
        match self {
            Record::Define { id, text, counter } => Owned::Define(*id, (*text).to_owned(), *counter),
            Record::Point { id, ms, value } => Owned::Point(*id, *ms, *value),
        }
    }
}
