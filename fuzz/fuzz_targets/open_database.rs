//! Arbitrary bytes opened as a database: must give an error or a database
//! that can be updated and fetched, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rrdcore::{Cf, FetchRequest, Rrd, Timestamp};

fuzz_target!(|data: &[u8]| {
    let Ok(mut db) = Rrd::from_bytes(data.to_vec()) else {
        return;
    };
    let last = db.last_update().sec;
    let n = db.schema().data_sources.len();
    for cf in [Cf::Average, Cf::Min, Cf::Max, Cf::Last] {
        let _ = db.fetch(&FetchRequest::new(cf, last.saturating_sub(86_400), last));
    }
    for k in 1..4i64 {
        let values = vec![k as f64 * 10.0; n];
        let _ = db.update(Timestamp::from_secs(last.saturating_add(k * 977)), &values);
        let _ = db.update_text(&format!("{}:{}", last.saturating_add(k * 1000 + 3), vec!["7"; n].join(":")));
    }
    let _ = db.fetch(&FetchRequest::new(Cf::Average, last, last.saturating_add(10_000)).resolution(60));
    // Whatever was written must still open.
    let image = db.as_bytes().to_vec();
    assert!(Rrd::from_bytes(image).is_ok(), "an updated image no longer opens");
});
