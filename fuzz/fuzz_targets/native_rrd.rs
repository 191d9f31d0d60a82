//! Arbitrary bytes read as a native RRDtool file: an error or a database that
//! imports, updates and fetches; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rrdcore::{Cf, FetchRequest};

fuzz_target!(|data: &[u8]| {
    let Ok(native) = rrdcore::native::read(data) else { return };
    let Ok(mut db) = native.to_memory() else { return };
    let last = db.last_update().sec;
    let _ = db.fetch(&FetchRequest::new(Cf::Average, last.saturating_sub(3600), last));
    let n = db.schema().data_sources.len();
    let _ = db.update_text(&format!("{}:{}", last.saturating_add(60), vec!["5"; n].join(":")));
});
