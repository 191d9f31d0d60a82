//! Changing a database's definition keeps its history.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

use rrdcore::{Archive, ArchiveSource, Cf, CreateOptions, DataSource, DsType, FetchRequest, Rrd, Schema, Timestamp};

const T0: i64 = 1_000_000_200; // a multiple of 60 and of 4 x 60

fn schema(archives: Vec<Archive>) -> Schema {
    Schema { step: 60, data_sources: vec![DataSource::new("v", DsType::Gauge, 120)], archives }
}

fn feed(db: &mut Rrd, from: i64, to: i64) {
    for i in from..to {
        // Some unknown stretches, so xff and unknown counts matter.
        let v = if i % 17 < 3 { f64::NAN } else { ((i * 37) % 101) as f64 / 4.0 };
        db.update(Timestamp::from_secs(T0 + i * 60), &[v]).unwrap();
    }
}

fn rows(db: &Rrd, cf: Cf, res: u64) -> Vec<u64> {
    let end = db.last_update().sec;
    let got = db.fetch(&FetchRequest::new(cf, end - 20 * 240, end).resolution(res)).unwrap();
    assert_eq!(got.step, res);
    got.values.iter().map(|v| if v.is_nan() { u64::MAX } else { v.to_bits() }).collect()
}

#[test]
fn an_added_archive_is_what_it_would_have_been_from_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let opts = CreateOptions { start: Some(T0), ..CreateOptions::default() };
    let fine = Archive::new(Cf::Average, 0.5, 1, 200);
    let extra = [Archive::new(Cf::Max, 0.5, 4, 20), Archive::new(Cf::Average, 0.5, 4, 20), Archive::new(Cf::Last, 0.3, 4, 20), Archive::new(Cf::Min, 0.9, 4, 20)];
    let mut full = Rrd::create(dir.path().join("full.rrd"), &schema([vec![fine.clone()], extra.to_vec()].concat()), &opts).unwrap();
    let mut grown = Rrd::create(dir.path().join("grown.rrd"), &schema(vec![fine.clone()]), &opts).unwrap();
    feed(&mut full, 1, 150);
    feed(&mut grown, 1, 150);
    let sources: Vec<ArchiveSource> = std::iter::once(ArchiveSource::Existing(0)).chain(extra.iter().map(|_| ArchiveSource::New)).collect();
    let mut grown = grown.reshape(&schema([vec![fine], extra.to_vec()].concat()), &sources).unwrap();
    // The open rows of the new archives (primary/secondary are display-only scratch).
    let open = |db: &Rrd| db.state().cdp[1..].iter().map(|c| (c.value.to_bits(), c.unknown_pdps)).collect::<Vec<_>>();
    assert_eq!(open(&grown), open(&full), "open rows of the new archives");
    for cf in [Cf::Max, Cf::Average, Cf::Last, Cf::Min] {
        assert_eq!(rows(&grown, cf, 240), rows(&full, cf, 240), "{cf:?} rows");
    }
    // And they continue identically.
    feed(&mut full, 150, 190);
    feed(&mut grown, 150, 190);
    for cf in [Cf::Max, Cf::Average, Cf::Last, Cf::Min] {
        assert_eq!(rows(&grown, cf, 240), rows(&full, cf, 240), "{cf:?} rows after more updates");
    }
}

#[test]
fn growing_shrinking_and_removing_keep_the_newest_rows() {
    let dir = tempfile::tempdir().unwrap();
    let opts = CreateOptions { start: Some(T0), ..CreateOptions::default() };
    let mut db = Rrd::create(dir.path().join("r.rrd"), &schema(vec![Archive::new(Cf::Average, 0.5, 1, 50), Archive::new(Cf::Max, 0.5, 4, 20)]), &opts).unwrap();
    feed(&mut db, 1, 120);
    let end = db.last_update().sec;
    let before = db.fetch(&FetchRequest::new(Cf::Average, end - 30 * 60, end)).unwrap();
    let mut s = db.schema().clone();
    s.archives[0].rows = 80;
    s.archives.remove(1);
    let db = db.reshape(&s, &[ArchiveSource::Existing(0)]).unwrap();
    assert_eq!(db.schema().archives.len(), 1);
    let after = db.fetch(&FetchRequest::new(Cf::Average, end - 30 * 60, end)).unwrap();
    assert_eq!(before.values.len(), after.values.len());
    assert!(before.values.iter().zip(&after.values).all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())));
    // Rows older than the old ring are unknown in the grown one.
    let old = db.fetch(&FetchRequest::new(Cf::Average, end - 79 * 60, end - 51 * 60)).unwrap();
    assert!(old.values.iter().all(|v| v.is_nan()));
    let mut s = db.schema().clone();
    s.archives[0].rows = 10;
    let db = db.reshape(&s, &[ArchiveSource::Existing(0)]).unwrap();
    let tail = db.fetch(&FetchRequest::new(Cf::Average, end - 10 * 60, end)).unwrap();
    let want = before.values.iter().rev().skip(1).take(10).rev().copied().collect::<Vec<_>>();
    let got = tail.values.iter().take(tail.values.len() - 1).copied().collect::<Vec<_>>();
    assert_eq!(got.len(), 10);
    assert!(want.iter().zip(&got).all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())));
}
