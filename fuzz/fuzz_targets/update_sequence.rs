//! An arbitrary schema and sequence of text updates: updates are accepted or
//! rejected, a rejected one changes no byte, and the image always reopens
//! with the same state. The same updates given in one call (one run,
//! consolidated once) leave the same state and rows as one call each, up to
//! the first rejected one, where the run stops.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rrdcore::{Archive, Cf, CreateOptions, DataSource, DsType, FetchRequest, Rrd, Schema, UpdateOptions};

const WORDS: [&str; 16] = [
    "U", "0", "1", "-1", "4294967290", "5", "18446744073709551610", "1.5", "1e3", "nan", "inf", "-inf", "12x",
    "", "3.14159", "-0",
];

fuzz_target!(|data: &[u8]| {
    let mut bytes = data.iter().copied();
    let mut next = move || bytes.next().unwrap_or(0);
    let step = 1 + u64::from(next() % 120);
    let ds_count = 1 + usize::from(next() % 3);
    let data_sources = (0..ds_count)
        .map(|i| {
            let kind = DsType::ALL[usize::from(next()) % DsType::ALL.len()];
            let mut ds = DataSource::new(&format!("ds{i}"), kind, 1 + u64::from(next()) * 3);
            if next() % 4 == 0 {
                ds.max = Some(f64::from(next()) * 10.0);
            }
            if next() % 4 == 0 {
                ds.min = Some(-f64::from(next()));
            }
            ds
        })
        .collect();
    let rra_count = 1 + usize::from(next() % 3);
    let archives = (0..rra_count)
        .map(|_| {
            let cf = Cf::ALL[usize::from(next()) % Cf::ALL.len()];
            Archive::new(cf, f64::from(next() % 100) / 100.0, 1 + u64::from(next() % 7), 1 + u64::from(next() % 20))
        })
        .collect();
    let schema = Schema { step, data_sources, archives };
    let start = 1_000_000_000 + i64::from(next());
    let opts = CreateOptions { start: Some(start), cur_rows: Some(vec![0; rra_count]), ..Default::default() };
    let Ok(mut db) = Rrd::create_in_memory(&schema, &opts) else {
        return;
    };
    let mut t = start as f64;
    let upd = UpdateOptions::default();
    let mut args = Vec::new();
    // The database as it stood before the first rejected update.
    let mut at_first_failure: Option<Rrd> = None;
    for _ in 0..64 {
        let gap = next();
        if gap == 0 && next() == 0 {
            break;
        }
        t += f64::from(gap) * (1.0 + f64::from(next() % 40)) / 4.0 - 8.0;
        let values: Vec<&str> = (0..ds_count).map(|_| WORDS[usize::from(next() % 16)]).collect();
        let arg = format!("{t}:{}", values.join(":"));
        let before = db.as_bytes().to_vec();
        if db.update_args(&[&arg], &upd).is_err() {
            assert_eq!(before, db.as_bytes(), "a rejected update changed the file: {arg}");
            if at_first_failure.is_none() {
                at_first_failure = Some(Rrd::from_bytes(before).expect("the image reopens"));
            }
        }
        args.push(arg);
    }
    if let Ok(mut run) = Rrd::create_in_memory(&schema, &opts) {
        let _ = run.update_args(&args, &upd);
        let one_by_one = at_first_failure.as_ref().unwrap_or(&db);
        assert_eq!(run.state(), one_by_one.state(), "a run and its updates one by one differ in state");
        for (r, rra) in schema.archives.iter().enumerate() {
            for row in 0..rra.rows {
                for ds in 0..ds_count {
                    let (x, y) = (run.stored_value(r, row, ds), one_by_one.stored_value(r, row, ds));
                    assert_eq!(x.map(f64::to_bits), y.map(f64::to_bits), "archive {r} row {row} ds {ds}");
                }
            }
        }
    }
    let last = db.last_update().sec;
    for cf in Cf::ALL {
        let _ = db.fetch(&FetchRequest::new(cf, last - 5000, last + 100).resolution(u64::from(next()) + 1));
    }
    let reopened = Rrd::from_bytes(db.as_bytes().to_vec()).expect("the image reopens");
    assert_eq!(reopened.last_update(), db.last_update());
});
