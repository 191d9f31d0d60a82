//! Arbitrary bytes opened as a database: must give an error or a database
//! that can be updated and fetched, never a panic.
//!
//! The first byte picks how the rest is used: as the raw image; as the raw
//! image with its checksums recomputed (to reach the checks behind them); or
//! as (offset, byte) patches over a valid image, resealed or not.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rrdcore::{Archive, Cf, CreateOptions, DataSource, DsType, FetchRequest, Rrd, Schema, Timestamp};

fn base_image() -> &'static [u8] {
    static IMAGE: OnceLock<Vec<u8>> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let schema = Schema {
            step: 60,
            data_sources: vec![
                DataSource::new("a", DsType::Counter, 120),
                DataSource::new("b", DsType::DDerive, 90),
            ],
            archives: vec![Archive::new(Cf::Average, 0.5, 1, 8), Archive::new(Cf::Max, 0.5, 3, 5)],
        };
        let opts = CreateOptions { start: Some(1_000_000_000), cur_rows: Some(vec![3, 1]), ..Default::default() };
        let mut db = Rrd::create_in_memory(&schema, &opts).expect("create");
        for i in 1..30 {
            let _ = db.update_text(&format!("{}:{}:{}.5", 1_000_000_000 + i * 47, i * 1000, i));
        }
        db.into_bytes().expect("in memory")
    })
}

fn exercise(mut db: Rrd) {
    let last = db.last_update().sec;
    let n = db.schema().data_sources.len();
    for cf in Cf::ALL {
        let _ = db.fetch(&FetchRequest::new(cf, last.saturating_sub(86_400), last));
    }
    for k in 1..4i64 {
        let values = vec![k as f64 * 10.0; n];
        let _ = db.update(Timestamp::from_secs(last.saturating_add(k * 977)), &values);
        let _ = db.update_text(&format!("{}:{}", last.saturating_add(k * 1000 + 3), vec!["7"; n].join(":")));
    }
    let _ = db.fetch(&FetchRequest::new(Cf::Average, last, last.saturating_add(10_000)).resolution(60));
    let image = db.as_bytes().to_vec();
    if let Err(e) = Rrd::from_bytes(image) {
        panic!("an updated image no longer opens: {e}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let image = match mode % 4 {
        0 => rest.to_vec(),
        1 => {
            let mut v = rest.to_vec();
            rrdcore::testing::reseal(&mut v);
            v
        }
        m => {
            let mut v = base_image().to_vec();
            for patch in rest.chunks_exact(3) {
                let at = usize::from(u16::from_le_bytes([patch[0], patch[1]])) % v.len();
                v[at] = patch[2];
            }
            if m == 2 {
                rrdcore::testing::reseal(&mut v);
            }
            v
        }
    };
    if let Ok(db) = Rrd::from_bytes(image) {
        exercise(db);
    }
});
