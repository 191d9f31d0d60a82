//! A run of updates applied in one call (`update_many`, `update_args` with
//! several arguments, `update_points`) consolidates archive by archive once
//! at its end; applied one call per update it consolidates after each. Both
//! must leave the same state and the same rows, bit for bit, whatever the
//! schema and the gaps, unknowns and fractional times of the updates.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

use proptest::prelude::*;
use rrdcore::{Archive, Cf, CreateOptions, DataSource, DsType, Rrd, Schema, Timestamp, UpdateOptions};

const START: i64 = 1_600_000_000;

#[derive(Debug, Clone)]
struct Case {
    schema: Schema,
    /// (time, one value per data source; NaN is unknown)
    updates: Vec<(Timestamp, Vec<f64>)>,
}

fn data_source(step: u64) -> impl Strategy<Value = DataSource> {
    (0usize..6, 1u64..4, prop::option::weighted(0.2, -5.0f64..0.0), prop::option::weighted(0.2, 1.0f64..500.0)).prop_map(
        move |(kind, beats, min, max)| {
            let mut ds = DataSource::new("x", DsType::ALL[kind], step * beats);
            ds.min = min;
            ds.max = max;
            ds
        },
    )
}

fn archive() -> impl Strategy<Value = Archive> {
    (0usize..4, 0u32..100, prop_oneof![Just(1u64), 2u64..30], 1u64..20)
        .prop_map(|(cf, xff, steps, rows)| Archive::new(Cf::ALL[cf], f64::from(xff) / 100.0, steps, rows))
}

/// One update's distance from the previous: mostly within a step or two,
/// sometimes a long gap (many PDPs and rows at once); fractional times too.
fn gap(step: u64) -> impl Strategy<Value = (u64, u32)> {
    let step_i = step;
    (prop_oneof![8 => 1..=2 * step_i, 1 => 2 * step_i..=60 * step_i], prop_oneof![3 => Just(0u32), 1 => 0u32..1_000_000])
}

fn case() -> impl Strategy<Value = Case> {
    (1u64..400, 1usize..4).prop_flat_map(|(step, nds)| {
        let sources = prop::collection::vec(data_source(step), nds);
        let archives = prop::collection::vec(archive(), 1..5);
        let values = prop::collection::vec(prop_oneof![6 => (0u32..100_000).prop_map(f64::from), 1 => Just(f64::NAN)], nds);
        let updates = prop::collection::vec((gap(step), values), 1..60);
        (Just(step), sources, archives, updates).prop_map(|(step, mut sources, archives, gaps)| {
            for (i, ds) in sources.iter_mut().enumerate() {
                ds.name = format!("ds{i}");
            }
            let schema = Schema { step, data_sources: sources, archives };
            let mut t = Timestamp::from_secs(START);
            let updates = gaps
                .into_iter()
                .map(|((secs, usec), values)| {
                    t = Timestamp { sec: t.sec + i64::try_from(secs).unwrap(), usec };
                    (t, values)
                })
                .collect();
            Case { schema, updates }
        })
    })
}

fn new_db(c: &Case) -> Rrd {
    // Fixed starting rows (RRDtool's are random), some at the ring's end.
    let rows = c.schema.archives.iter().enumerate().map(|(i, a)| (i as u64 * 7 + a.rows - 1) % a.rows).collect();
    let opts = CreateOptions { start: Some(START - 7), cur_rows: Some(rows), ..CreateOptions::default() };
    Rrd::create_in_memory(&c.schema, &opts).unwrap()
}

/// Every stored value and the whole live state of `a` and `b` agree.
fn assert_same(a: &Rrd, b: &Rrd, how: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(a.state(), b.state(), "{}: state", how);
    for (r, rra) in a.schema().archives.iter().enumerate() {
        for row in 0..rra.rows {
            for ds in 0..a.schema().data_sources.len() {
                let (x, y) = (a.stored_value(r, row, ds).unwrap(), b.stored_value(r, row, ds).unwrap());
                prop_assert!(x.to_bits() == y.to_bits(), "{}: archive {} row {} ds {}: {} vs {}", how, r, row, ds, x, y);
            }
        }
    }
    Ok(())
}

fn text(time: Timestamp, values: &[f64]) -> String {
    let mut arg = time.to_string();
    for v in values {
        if v.is_nan() {
            arg.push_str(":U");
        } else {
            arg.push_str(&format!(":{v}"));
        }
    }
    arg
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn a_run_equals_its_updates_one_by_one(c in case()) {
        let mut one_by_one = new_db(&c);
        let mut outcomes = Vec::new();
        for (t, values) in &c.updates {
            outcomes.push(one_by_one.update(*t, values).is_ok());
        }
        // Typed values: COUNTER and DERIVE take whole numbers, so every update here is accepted.
        prop_assert!(outcomes.iter().all(|ok| *ok));

        let mut many = new_db(&c);
        let n = many.update_many(c.updates.iter().map(|(t, v)| (*t, v.as_slice()))).unwrap();
        prop_assert_eq!(n, c.updates.len());
        assert_same(&one_by_one, &many, "update_many")?;

        let args: Vec<String> = c.updates.iter().map(|(t, v)| text(*t, v)).collect();
        let mut texts = new_db(&c);
        prop_assert_eq!(texts.update_args(&args, &UpdateOptions::default()).unwrap(), args.len());
        let mut texts_one_by_one = new_db(&c);
        for arg in &args {
            texts_one_by_one.update_text(arg).unwrap();
        }
        assert_same(&texts_one_by_one, &texts, "update_args")?;

        if c.schema.data_sources.len() == 1 {
            let mut points = new_db(&c);
            let applied = points.update_points(c.updates.iter().map(|(t, v)| (*t, v[0])), |i, e| panic!("point {i}: {e}"));
            prop_assert_eq!(applied, c.updates.len());
            assert_same(&one_by_one, &points, "update_points")?;
        }
    }

    /// A run that stops at a rejected update keeps what came before it,
    /// exactly as if only those updates had been given.
    #[test]
    fn a_failed_run_keeps_its_prefix(c in case(), cut in 0usize..60) {
        let cut = cut % c.updates.len();
        let mut args: Vec<String> = c.updates.iter().map(|(t, v)| text(*t, v)).collect();
        args.insert(cut, format!("{}:1", START - 100_000));
        let mut run = new_db(&c);
        let err = run.update_args(&args, &UpdateOptions::default()).unwrap_err();
        prop_assert!(matches!(err, rrdcore::Error::Batch { index, applied, .. } if index == cut && applied == cut), "{err}");
        let mut prefix = new_db(&c);
        for arg in &args[..cut] {
            prefix.update_text(arg).unwrap();
        }
        assert_same(&prefix, &run, "prefix")?;
    }
}
