//! The database as a file: create, open, locking, validation of damaged files,
//! torn live-state writes, atomic rejection, batches, times past 2038.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

use std::path::{Path, PathBuf};

use rrdcore::{
    Archive, Cf, CreateOptions, DataSource, DsType, Error, FetchRequest, Rrd, Schema, Timestamp, UpdateOptions,
};

const START: i64 = 1_000_000_000;

fn opts() -> CreateOptions {
    CreateOptions {
        start: Some(START),
        cur_rows: Some(vec![0; 4]),
        ..CreateOptions::default()
    }
}

fn new_db(dir: &Path) -> (PathBuf, Rrd) {
    let path = dir.join("x.rrd");
    let db = Rrd::create(&path, &Schema::default(), &opts()).unwrap();
    (path, db)
}

#[test]
fn monitoring_default_file_is_smaller_than_rrdtools() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _db) = new_db(dir.path());
    let len = std::fs::metadata(&path).unwrap().len();
    assert_eq!(len, 22_664);
    assert!(len <= 23_176, "RRDtool's file for this schema is 23,176 bytes");
}

#[test]
fn create_refuses_to_overwrite_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let (path, db) = new_db(dir.path());
    drop(db);
    assert!(matches!(Rrd::create(&path, &Schema::default(), &opts()), Err(Error::Exists { .. })));
    let o = CreateOptions { overwrite: true, ..opts() };
    Rrd::create(&path, &Schema::default(), &o).unwrap();
}

#[test]
fn second_writer_and_reader_beside_writer_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (path, db) = new_db(dir.path());
    let err = Rrd::open(&path).unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    assert!(err.to_string().contains("x.rrd"), "{err}");
    assert!(matches!(Rrd::open_read_only(&path), Err(Error::Locked { .. })));
    let o = CreateOptions { overwrite: true, ..opts() };
    assert!(matches!(Rrd::create(&path, &Schema::default(), &o), Err(Error::Locked { .. })));
    drop(db);
    let r1 = Rrd::open_read_only(&path).unwrap();
    let r2 = Rrd::open_read_only(&path).unwrap();
    assert!(matches!(Rrd::open(&path), Err(Error::Locked { .. })));
    let mut r1 = r1;
    assert!(matches!(r1.update_text("1000000300:1"), Err(Error::ReadOnly { .. })));
    drop((r1, r2));
    Rrd::open(&path).unwrap();
}

#[test]
fn state_and_rows_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut db) = new_db(dir.path());
    for i in 1..=40 {
        db.update(Timestamp::from_secs(START + i * 300), &[i as f64]).unwrap();
    }
    let req = FetchRequest::new(Cf::Average, START, START + 40 * 300);
    let before = db.fetch(&req).unwrap();
    let state = db.state().clone();
    drop(db);
    let db = Rrd::open(&path).unwrap();
    assert_eq!(db.state(), &state);
    let after = db.fetch(&req).unwrap();
    assert_eq!(before.values.len(), after.values.len());
    assert!(before.values.iter().zip(&after.values).all(|(a, b)| a.to_bits() == b.to_bits()));
    // Step interpolation of a GAUGE: the PDP (START+500, START+800] holds 100 s
    // of the value 2 (given at START+600) and 200 s of 3 (given at START+900).
    let (_, row) = after.rows().find(|(t, _)| *t == START + 800).unwrap();
    assert_eq!(row[0], (2.0 * 100.0 + 3.0 * 200.0) / 300.0);
}

#[test]
fn rejected_updates_leave_the_file_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.rrd");
    let schema = Schema {
        step: 60,
        data_sources: vec![
            DataSource::new("in", DsType::Counter, 120),
            DataSource::new("g", DsType::Gauge, 120),
        ],
        archives: vec![Archive::new(Cf::Max, 0.5, 2, 10)],
    };
    let o = CreateOptions { start: Some(START), ..CreateOptions::default() };
    let mut db = Rrd::create(&path, &schema, &o).unwrap();
    db.update_text("1000000030:100:1").unwrap();
    db.flush().unwrap();
    let before = std::fs::read(&path).unwrap();
    for bad in ["1000000030:200:2", "1000000020:200:2", "1000000090:1.5:2", "1000000090:+3:2", "1000000090:5:12x", "1000000090:5", "1000000090:5:1:1", "x:1:2"] {
        assert!(db.update_text(bad).is_err(), "{bad} was accepted");
    }
    assert!(db.update(Timestamp::from_secs(START + 90), &[1.5, 2.0]).is_err());
    db.flush().unwrap();
    assert_eq!(before, std::fs::read(&path).unwrap());
}

#[test]
fn error_messages_name_the_value() {
    let mut db = Rrd::create_in_memory(&Schema::default(), &opts()).unwrap();
    let e = db.update_text("1000000300:12x").unwrap_err().to_string();
    assert!(e.contains("12x") && e.contains("value"), "{e}");
    db.update_text("1000000300:1").unwrap();
    let e = db.update_text("1000000200:1").unwrap_err().to_string();
    assert!(e.contains("1000000200") && e.contains("1000000300"), "{e}");
}

#[test]
fn batches_keep_what_came_before_a_failure() {
    let mut db = Rrd::create_in_memory(&Schema::default(), &opts()).unwrap();
    let updates: Vec<(Timestamp, Vec<f64>)> = [300, 600, 500, 900]
        .iter()
        .map(|dt| (Timestamp::from_secs(START + dt), vec![1.0]))
        .collect();
    let err = db.update_many(updates.iter().map(|(t, v)| (*t, v.as_slice()))).unwrap_err();
    match err {
        Error::Batch { index, applied, .. } => assert_eq!((index, applied), (2, 2)),
        other => panic!("{other}"),
    }
    assert_eq!(db.last_update().sec, START + 600);
    let n = db
        .update_args(&["1000000900:1", "1000000800:1"], &UpdateOptions { skip_past: true, ..Default::default() })
        .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn templates_fill_unnamed_sources_with_unknown() {
    let schema = Schema {
        step: 60,
        data_sources: vec![DataSource::new("a", DsType::Gauge, 120), DataSource::new("b", DsType::Gauge, 120)],
        archives: vec![Archive::new(Cf::Last, 0.5, 1, 10)],
    };
    let o = CreateOptions { start: Some(START), ..CreateOptions::default() };
    let mut db = Rrd::create_in_memory(&schema, &o).unwrap();
    let t = UpdateOptions { template: Some(vec!["b".into()]), ..Default::default() };
    db.update_args(&["1000000030:7"], &t).unwrap();
    assert_eq!(db.state().ds[0].last_ds.as_str(), "U");
    assert_eq!(db.state().ds[1].last_ds.as_str(), "7");
    let bad = UpdateOptions { template: Some(vec!["zz".into()]), ..Default::default() };
    assert!(db.update_args(&["1000000060:7"], &bad).unwrap_err().to_string().contains("zz"));
}

fn image_after_updates() -> Vec<u8> {
    let mut db = Rrd::create_in_memory(&Schema::default(), &opts()).unwrap();
    for i in 1..=5 {
        db.update(Timestamp::from_secs(START + i * 300), &[i as f64]).unwrap();
    }
    db.into_bytes().unwrap()
}

/// Offsets from docs/format.md for the monitoring default.
const SLOT_A: usize = 216;
const SLOT_B: usize = 216 + 240;

#[test]
fn a_torn_live_state_write_falls_back_to_the_previous_state() {
    let image = image_after_updates();
    let db = Rrd::from_bytes(image.clone()).unwrap();
    assert_eq!(db.last_update().sec, START + 1500);
    // Five updates after create (which wrote sequence 1 to A, 0 to B): the last went to B.
    let mut torn = image.clone();
    for b in &mut torn[SLOT_B + 8..SLOT_B + 40] {
        *b = 0;
    }
    let report = rrdcore::check_bytes(&torn).unwrap();
    assert!(report.torn_slot.as_deref().unwrap_or("").contains("checksum"), "{report:?}");
    let older = Rrd::from_bytes(torn).unwrap();
    assert_eq!(older.last_update().sec, START + 1200);
    // Both slots damaged: refuse, naming what is wrong.
    let mut both = image.clone();
    both[SLOT_A + 10] ^= 0xff;
    both[SLOT_B + 10] ^= 0xff;
    let e = Rrd::from_bytes(both).unwrap_err().to_string();
    assert!(e.contains("both live-state slots"), "{e}");
}

#[test]
fn damaged_files_give_errors_not_panics() {
    let image = image_after_updates();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("garbage", b"this is not a database at all, not even close".to_vec()),
        ("truncated header", image[..100].to_vec()),
        ("truncated rows", image[..image.len() - 8].to_vec()),
        ("extended", [image.clone(), vec![0; 8]].concat()),
        ("header bit flip", {
            let mut v = image.clone();
            v[40] ^= 1;
            v
        }),
        ("bad version", {
            let mut v = image.clone();
            v[8] = 9;
            v
        }),
    ];
    for (what, bytes) in cases {
        let err = Rrd::from_bytes(bytes).expect_err(what);
        assert!(matches!(err, Error::Corrupt { .. } | Error::Version { .. }), "{what}: {err}");
    }
    let mut v = image.clone();
    v[8] = 9;
    assert!(Rrd::from_bytes(v).unwrap_err().to_string().contains("version 9"));
}

#[test]
fn files_on_disk_are_validated_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.rrd");
    std::fs::write(&path, b"RRDCORE\0junk").unwrap();
    let e = Rrd::open(&path).unwrap_err().to_string();
    assert!(e.contains("bad.rrd") && e.contains("corrupt"), "{e}");
    let e = Rrd::open(dir.path().join("missing.rrd")).unwrap_err().to_string();
    assert!(e.contains("missing.rrd"), "{e}");
}

#[test]
fn times_past_2038() {
    let start = 4_102_444_800; // 2100-01-01
    let o = CreateOptions { start: Some(start), cur_rows: Some(vec![0; 4]), ..CreateOptions::default() };
    let mut db = Rrd::create_in_memory(&Schema::default(), &o).unwrap();
    for i in 1..=10 {
        db.update(Timestamp::from_secs(start + i * 300), &[5.0]).unwrap();
    }
    let got = db.fetch(&FetchRequest::new(Cf::Average, start, start + 3000)).unwrap();
    let (t, row) = got.rows().nth(1).unwrap();
    assert_eq!((t, row[0]), (start + 600, 5.0));
    let db = Rrd::from_bytes(db.into_bytes().unwrap()).unwrap();
    assert_eq!(db.last_update().sec, start + 3000);
}

#[test]
fn fetch_errors() {
    let db = Rrd::create_in_memory(
        &Schema {
            step: 300,
            data_sources: vec![DataSource::new("v", DsType::Gauge, 600)],
            archives: vec![Archive::new(Cf::Average, 0.5, 6, 10)],
        },
        &CreateOptions { start: Some(START), ..Default::default() },
    )
    .unwrap();
    let e = db.fetch(&FetchRequest::new(Cf::Max, START, START + 10)).unwrap_err().to_string();
    assert!(e.contains("RRA matching"), "{e}");
    assert!(db.fetch(&FetchRequest::new(Cf::Average, START + 10, START)).is_err());
    assert!(db.fetch(&FetchRequest::new(Cf::Average, 1000, START)).is_err());
    assert!(db.fetch(&FetchRequest::new(Cf::Average, START, START).resolution(0)).is_err());
    assert!(db.fetch(&FetchRequest::new(Cf::Average, START, i64::MAX)).is_err());
}

#[test]
fn bad_values_behind_valid_checksums_are_refused() {
    let image = image_after_updates();
    // (what, offset, bytes): offsets from docs/format.md for the monitoring default.
    let cases: Vec<(&str, usize, Vec<u8>)> = vec![
        ("step 0", 24, 0u64.to_le_bytes().to_vec()),
        ("DS type 9", 32 + 20, vec![9]),
        ("heartbeat 0", 32 + 24, 0u64.to_le_bytes().to_vec()),
        ("xff 1.5", 80 + 8, 1.5f64.to_le_bytes().to_vec()),
        ("rows 0", 80 + 24, 0u64.to_le_bytes().to_vec()),
        ("DS name not UTF-8", 32, vec![0xff, 0xfe]),
    ];
    for (what, at, patch) in cases {
        let mut v = image.clone();
        v[at..at + patch.len()].copy_from_slice(&patch);
        rrdcore::testing::reseal(&mut v);
        let e = Rrd::from_bytes(v).err();
        assert!(matches!(e, Some(Error::Corrupt { .. })), "{what}: {e:?}");
    }
    // Live state: cur_row beyond the ring, usec out of range, unknown_sec > step, in both slots.
    let slot_cases: Vec<(&str, usize, Vec<u8>)> = vec![
        ("cur_row 600", 24 + 48, 600u64.to_le_bytes().to_vec()),
        ("usec 1e6", 16, 1_000_000u32.to_le_bytes().to_vec()),
        // last update START+1500 is 100 s into its PDP and 2 PDPs into archive 1's row
        ("unknown_sec 101 of 100", 24 + 40, 101u64.to_le_bytes().to_vec()),
        ("last_ds length 30", 24, vec![30]),
        ("unknown PDPs 3 of 2", 24 + 48 + 32 + 32 + 8, 3u64.to_le_bytes().to_vec()),
        ("unknown PDPs 27 of 26", 24 + 48 + 32 + 96 + 8, 27u64.to_le_bytes().to_vec()),
    ];
    for (what, at, patch) in slot_cases {
        let mut v = image.clone();
        for slot in [SLOT_A, SLOT_B] {
            v[slot + at..slot + at + patch.len()].copy_from_slice(&patch);
        }
        rrdcore::testing::reseal(&mut v);
        let e = Rrd::from_bytes(v).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("both live-state slots"), "{what}: {e}");
    }
}

#[test]
#[allow(clippy::approx_constant, reason = "3.14159 is the spec's example of RRDtool's parser rounding, not pi")]
fn typed_gauge_values_are_used_exactly_and_text_uses_rrdtools_parser() {
    let schema = Schema {
        step: 300,
        data_sources: vec![DataSource::new("g", DsType::Gauge, 600)],
        archives: vec![Archive::new(Cf::Last, 0.5, 1, 10)],
    };
    let o = CreateOptions { start: Some(START - START % 300), cur_rows: Some(vec![0]), ..Default::default() };
    let mut typed = Rrd::create_in_memory(&schema, &o).unwrap();
    let mut text = Rrd::create_in_memory(&schema, &o).unwrap();
    let base = START - START % 300;
    typed.update(Timestamp::from_secs(base + 300), &[3.14159]).unwrap();
    text.update_text(&format!("{}:3.14159", base + 300)).unwrap();
    assert_eq!(typed.state().ds[0].last_ds.as_str(), "3.14159");
    assert_eq!(typed.stored_value(0, 1, 0), Some(3.14159));
    // RRDtool's parser reads "3.14159" one ulp high; the text form reproduces that.
    assert_eq!(text.stored_value(0, 1, 0), Some(3.1415900000000003));
}

#[test]
fn batched_points_keep_the_last_accepted_text() {
    let mut db = Rrd::create_in_memory(&Schema::default(), &opts()).unwrap();
    let mut errors = Vec::new();
    let points = [(START + 300, 1.5), (START + 600, 2.25), (START + 500, 9.0), (START + 900, f64::NAN), (START + 1200, 7.0), (START + 1100, 8.0)];
    let applied = db.update_points(points.iter().map(|(t, v)| (Timestamp::from_secs(*t), *v)), |i, _| errors.push(i));
    assert_eq!((applied, errors), (4, vec![2, 5]));
    assert_eq!(db.state().ds[0].last_ds.as_str(), "7");
    // The same points one at a time give the same state.
    let mut one = Rrd::create_in_memory(&Schema::default(), &opts()).unwrap();
    for (t, v) in points {
        let _ = one.update(Timestamp::from_secs(t), &[v]);
    }
    assert_eq!(one.state(), db.state());
}
