//! The store: many series in one directory.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

mod common;
use common::walk;

use std::sync::Arc;

use proptest::prelude::*;
use rrdcore::{
    Cf, CreateOptions, Error, FetchRequest, Point, Rrd, Schema, SeriesKey, Store, StoreConfig, Timestamp,
};

const T0: i64 = 1_700_000_000;

fn key(metric: &str, host: &str) -> SeriesKey {
    SeriesKey::new(metric, [("host", host)]).unwrap()
}

fn small(max_open: usize) -> StoreConfig {
    StoreConfig { max_open, ..StoreConfig::default() }
}

fn value_at(store: &Store, k: &SeriesKey, t: i64) -> f64 {
    let got = store.fetch(k, &FetchRequest::new(Cf::Average, t - 600, t)).unwrap();
    got.rows().find(|(ts, _)| *ts == t).map(|(_, r)| r[0]).unwrap()
}

#[test]
fn series_are_listed_again_from_the_files_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let keys = [key("os.cpu", "a"), key("os.cpu", "b"), SeriesKey::new("odd name/é", [("k=1", "v,2")]).unwrap()];
    {
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        for k in &keys {
            store.write(k, Timestamp::from_secs(T0), 1.0).unwrap();
        }
        assert!(Store::open(dir.path(), StoreConfig::default()).is_err(), "the directory is locked");
    }
    assert!(dir.path().join("os.cpu/host=a.rrd").is_file());
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let mut want = keys.to_vec();
    want.sort();
    assert_eq!(store.series(), want);
    assert!(store.scan_problems().is_empty());
    assert_eq!(store.last_update(&keys[2]).unwrap().sec, T0);
}

#[test]
fn a_second_store_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _a = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let e = Store::open(dir.path(), StoreConfig::default()).unwrap_err();
    assert!(matches!(e, Error::Locked { .. }), "{e}");
}

#[test]
fn the_cache_stays_within_its_cap_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small(3)).unwrap();
    let keys: Vec<SeriesKey> = (0..10).map(|i| key("m", &i.to_string())).collect();
    for step in 1..=4 {
        for (i, k) in keys.iter().enumerate() {
            store.write(k, Timestamp::from_secs(T0 + step * 300), (i * 10 + step as usize) as f64).unwrap();
            assert!(store.stats().open <= 3);
        }
    }
    let s = store.stats();
    assert_eq!((s.series, s.created), (10, 10));
    assert!(s.evictions >= 30, "{s:?}");
    // Every series kept every point: the PDP ending at T0+900 holds the value given at T0+900.
    for (i, k) in keys.iter().enumerate() {
        let pdp_end = (T0 + 900) - (T0 + 900) % 300;
        let v = value_at(&store, k, pdp_end);
        assert!(v.is_finite(), "series {i}: {v}");
    }
}

#[test]
fn batches_store_good_points_and_report_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let (a, b) = (key("m", "a"), key("m", "b"));
    let points = [
        Point { key: &a, time: Timestamp::from_secs(T0 + 300), value: 1.0 },
        Point { key: &b, time: Timestamp::from_secs(T0 + 300), value: 2.0 },
        Point { key: &a, time: Timestamp::from_secs(T0 + 200), value: 9.0 }, // older than a's last: rejected
        Point { key: &a, time: Timestamp::from_secs(T0 + 600), value: 3.0 },
        Point { key: &b, time: Timestamp::from_secs(T0 + 600), value: f64::NAN },
    ];
    let out = store.write_batch(&points);
    assert_eq!(out.applied, 4);
    assert_eq!(out.errors.len(), 1);
    assert_eq!(out.errors[0].0, 2);
    assert!(out.errors[0].1.to_string().contains("illegal attempt"), "{}", out.errors[0].1);
    assert_eq!(store.last_update(&a).unwrap().sec, T0 + 600);
}

#[test]
fn damaged_files_are_reported_and_the_rest_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let (good, cut, flipped, zeroed) = (key("m", "good"), key("m", "cut"), key("m", "flipped"), key("m", "zeroed"));
    {
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        for k in [&good, &cut, &flipped, &zeroed] {
            store.write(k, Timestamp::from_secs(T0), 1.0).unwrap();
        }
    }
    let path = |h: &str| dir.path().join(format!("m/host={h}.rrd"));
    let len = std::fs::metadata(path("cut")).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(path("cut")).unwrap().set_len(len / 2).unwrap();
    let mut bytes = std::fs::read(path("flipped")).unwrap();
    bytes[40] ^= 0x10;
    std::fs::write(path("flipped"), &bytes).unwrap();
    let mut bytes = std::fs::read(path("zeroed")).unwrap();
    bytes[..4096].fill(0);
    std::fs::write(path("zeroed"), &bytes).unwrap();
    let good_before = std::fs::read(path("good")).unwrap();
    std::fs::write(dir.path().join("m/not a key.rrd"), b"x").unwrap();
    std::fs::write(dir.path().join("m/notes.txt"), b"ignored").unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    assert_eq!(store.scan_problems().len(), 1, "{:?}", store.scan_problems());
    assert!(store.scan_problems()[0].path.ends_with("not a key.rrd"));
    // Reading a damaged series finds it missing; writing starts it afresh.
    assert!(matches!(store.last_update(&cut), Err(rrdcore::Error::UnknownSeries { .. })));
    for k in [&cut, &flipped, &zeroed] {
        store.write(k, Timestamp::from_secs(T0 + 300), 2.0).unwrap();
        assert!(store.last_update(k).unwrap().sec >= T0 + 300);
    }
    let mut q: Vec<String> = store.take_quarantined().iter().map(|p| format!("{} {}", p.path.display(), p.reason)).collect();
    q.sort();
    assert_eq!(q.len(), 3, "{q:?}");
    for (line, h) in q.iter().zip(["cut", "flipped", "zeroed"]) {
        assert!(line.contains(&format!("host={h}.rrd.corrupt")) && line.contains("corrupt"), "{line}");
    }
    assert!(store.take_quarantined().is_empty());
    // The damaged bytes are kept aside, never overwritten.
    let aside = |h: &str| dir.path().join(format!("m/host={h}.rrd.corrupt"));
    assert_eq!(std::fs::metadata(aside("cut")).unwrap().len(), len / 2);
    assert_eq!(std::fs::read(aside("flipped")).unwrap()[40], bytes_flip_check(&good_before));
    // The good series is untouched and keeps working.
    assert_eq!(std::fs::read(path("good")).unwrap(), good_before);
    store.write(&good, Timestamp::from_secs(T0 + 300), 2.0).unwrap();
    drop(store);
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    assert_eq!(store.series().len(), 4, "the .corrupt files are not listed as series");
}

/// Byte 40 of a freshly written file of the same schema, flipped as the test did.
fn bytes_flip_check(fresh: &[u8]) -> u8 {
    fresh[40] ^ 0x10
}

#[test]
fn long_keys_are_hashed_and_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let long = SeriesKey::new("m".repeat(250), [("t", "v".repeat(300))]).unwrap();
    {
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        store.write(&long, Timestamp::from_secs(T0), 1.0).unwrap();
    }
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    assert_eq!(store.series(), vec![long.clone()]);
    assert_eq!(store.last_update(&long).unwrap().sec, T0);
}

#[test]
fn a_failed_create_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    // A file where the metric's directory should go makes creation fail.
    std::fs::write(dir.path().join("blocked"), b"").unwrap();
    let k = key("blocked", "a");
    assert!(store.write(&k, Timestamp::from_secs(T0), 1.0).is_err());
    assert!(!store.contains(&k));
    assert!(store.series().is_empty());
    // Before 1980: a clear error, no file.
    let old = key("m", "old");
    let e = store.write(&old, Timestamp::from_secs(1000), 1.0).unwrap_err().to_string();
    assert!(e.contains("1980"), "{e}");
    assert!(!dir.path().join("m/host=old.rrd").exists());
    let leftovers: Vec<_> = walk(dir.path()).into_iter().filter(|p| p.to_string_lossy().contains(".tmp-")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Writers move each series forward one PDP at a time with the value equal to
/// the PDP's index; readers check every row they see is either unknown or
/// exactly its own index. A torn read would show another value.
#[test]
fn readers_never_see_half_applied_updates() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path(), small(4)).unwrap());
    let keys: Arc<Vec<SeriesKey>> = Arc::new((0..6).map(|i| key("c", &i.to_string())).collect());
    let base = T0 - T0 % 300;
    for k in keys.iter() {
        store.write(k, Timestamp::from_secs(base), 0.0).unwrap();
    }
    let rounds = 300i64;
    let writer = {
        let (store, keys) = (Arc::clone(&store), Arc::clone(&keys));
        std::thread::spawn(move || {
            for n in 1..=rounds {
                for k in keys.iter() {
                    store.write(k, Timestamp::from_secs(base + n * 300), n as f64).unwrap();
                }
            }
        })
    };
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let (store, keys) = (Arc::clone(&store), Arc::clone(&keys));
            std::thread::spawn(move || {
                let mut checked = 0u64;
                for round in 0..400 {
                    let k = &keys[(round + r) % keys.len()];
                    let req = FetchRequest::new(Cf::Average, base, base + rounds * 300);
                    let got = store.fetch(k, &req).unwrap();
                    for (t, row) in got.rows() {
                        if row[0].is_nan() {
                            continue;
                        }
                        assert_eq!(row[0], ((t - base) / 300) as f64, "series {k} at {t}");
                        checked += 1;
                    }
                }
                checked
            })
        })
        .collect();
    writer.join().unwrap();
    let checked: u64 = readers.into_iter().map(|h| h.join().unwrap()).sum();
    assert!(checked > 0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// A random mix of series and points through the store equals the same
    /// points applied to each database alone.
    #[test]
    fn store_equals_each_database_alone(
        points in prop::collection::vec((0usize..4, 1i64..900, -100i32..100), 1..120),
        max_open in 1usize..4,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store"), small(max_open)).unwrap();
        let keys: Vec<SeriesKey> = (0..4).map(|i| key("p", &i.to_string())).collect();
        let mut clock = [T0; 4];
        let pts: Vec<Point<'_>> = points
            .iter()
            .map(|(s, dt, v)| {
                // Mostly forward in time, sometimes backwards (rejected by both).
                clock[*s] += dt - 100;
                Point { key: &keys[*s], time: Timestamp::from_secs(clock[*s]), value: f64::from(*v) }
            })
            .collect();
        let half = pts.len() / 2;
        let out1 = store.write_batch(&pts[..half]);
        let out2 = store.write_batch(&pts[half..]);
        for (s, k) in keys.iter().enumerate() {
            let mine: Vec<&Point<'_>> = pts.iter().filter(|p| p.key == k).collect();
            if mine.is_empty() {
                prop_assert!(!store.contains(k));
                continue;
            }
            let opts = CreateOptions { start: Some(mine[0].time.sec - 150), ..Default::default() };
            let path = dir.path().join(format!("alone{s}.rrd"));
            let mut alone = Rrd::create(&path, &Schema::default(), &opts).unwrap();
            for p in &mine {
                let _ = alone.update(p.time, &[p.value]);
            }
            let got = store.with_db(k, |db| (db.state().clone(), db.as_bytes()[216..].len())).unwrap();
            prop_assert_eq!(&got.0.last_update, &alone.state().last_update);
            prop_assert_eq!(&got.0.ds, &alone.state().ds);
            prop_assert_eq!(&got.0.cdp, &alone.state().cdp);
            let req = FetchRequest::new(Cf::Average, T0 - 600, alone.last_update().sec);
            let (x, y) = (store.fetch(k, &req).unwrap(), alone.fetch(&req).unwrap());
            prop_assert_eq!(x.values.len(), y.values.len());
            prop_assert!(x.values.iter().zip(&y.values).all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())));
        }
        let rejected = out1.errors.len() + out2.errors.len();
        prop_assert_eq!(out1.applied + out2.applied + rejected, pts.len());
    }
}

#[test]
fn handles_write_without_lookups_and_survive_eviction() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small(2)).unwrap();
    let keys: Vec<SeriesKey> = (0..5).map(|i| key("h", &i.to_string())).collect();
    let handles: Vec<_> = keys.iter().map(|k| store.handle(k).unwrap()).collect();
    assert!(store.series().is_empty(), "a handle alone creates nothing");
    for round in 1..=3 {
        for h in &handles {
            store.write_to(h, Timestamp::from_secs(T0 + round * 300), round as f64).unwrap();
        }
    }
    assert_eq!(store.series().len(), 5);
    assert!(store.stats().evictions > 0);
    for k in &keys {
        assert_eq!(store.last_update(k).unwrap().sec, T0 + 900);
    }
    // A handle and a key-based write reach the same database.
    store.write(&keys[0], Timestamp::from_secs(T0 + 1200), 4.0).unwrap();
    assert!(store.write_to(&handles[0], Timestamp::from_secs(T0 + 1200), 5.0).is_err());
    assert_eq!(handles[0].key(), &keys[0]);
}

/// A series' first point is stored when it falls on a step boundary, and
/// leaves the row before it unknown when it falls inside a step.
#[test]
fn first_point_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let on = SeriesKey::new("m", [("k", "on")]).unwrap();
    let inside = SeriesKey::new("m", [("k", "inside")]).unwrap();
    let b = 1_700_000_100; // a multiple of 300
    store.write(&on, Timestamp::from_secs(b), 5.0).unwrap();
    store.write(&inside, Timestamp::from_secs(b + 100), 5.0).unwrap();
    store.write(&inside, Timestamp::from_secs(b + 300), 7.0).unwrap();
    let req = FetchRequest::new(Cf::Average, b - 301, b + 300);
    let got = store.fetch(&on, &req).unwrap();
    let rows: Vec<(i64, f64)> = got.rows().map(|(t, r)| (t, r[0])).collect();
    assert_eq!(rows[1], (b, 5.0));
    assert!(rows[0].1.is_nan());
    let got = store.fetch(&inside, &req).unwrap();
    let rows: Vec<(i64, f64)> = got.rows().map(|(t, r)| (t, r[0])).collect();
    assert!(rows[1].1.is_nan(), "row {b} must stay unknown: {rows:?}");
    assert_eq!(rows[2].0, b + 300);
    assert!((rows[2].1 - (5.0 * 100.0 + 7.0 * 200.0) / 300.0).abs() < 1e-12, "{rows:?}");
}
