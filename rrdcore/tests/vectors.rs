//! Golden vectors from real RRDtool 1.7.2: every scenario is replayed through
//! the engine and every checkpoint's state and fetch compared bit for bit.
//!
//! Which scenarios run:
//! * `RRD_VECTORS_DIR=DIR`: exactly the `scenario-*.json` files in DIR;
//! * otherwise the full set in `../shared/vectors` when it exists beside the
//!   checkout, else the subset committed in `rrdcore/tests/vectors/`.
//!
//! Prints one line per failing scenario with the first differing value, then
//! `N passed, M failed`; exits non-zero when any failed.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

use std::path::{Path, PathBuf};

use rrdcore::{Cf, CreateOptions, FetchRequest, Rrd, Schema, State, Timestamp, UpdateOptions};
use serde_json::Value;

fn scenarios(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with("scenario-") && name.ends_with(".json")
        })
        .collect();
    files.sort();
    files
}

/// A "num": a number, null for NaN, or "inf" / "-inf".
fn num(v: &Value) -> Result<f64, String> {
    match v {
        Value::Null => Ok(f64::NAN),
        Value::Number(n) => n.as_f64().ok_or_else(|| format!("bad number {n}")),
        Value::String(s) if s == "inf" => Ok(f64::INFINITY),
        Value::String(s) if s == "-inf" => Ok(f64::NEG_INFINITY),
        other => Err(format!("not a num: {other}")),
    }
}

fn int(v: &Value) -> Result<i64, String> {
    v.as_i64().ok_or_else(|| format!("not an integer: {v}"))
}

fn same(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
}

fn check_num(what: &str, expected: &Value, got: f64) -> Result<(), String> {
    let want = num(expected)?;
    if same(want, got) {
        Ok(())
    } else {
        Err(format!("{what}: expected {want:?} ({:#x}), got {got:?} ({:#x})", want.to_bits(), got.to_bits()))
    }
}

fn check_int(what: &str, expected: &Value, got: i64) -> Result<(), String> {
    let want = int(expected)?;
    if want == got {
        Ok(())
    } else {
        Err(format!("{what}: expected {want}, got {got}"))
    }
}

fn field<'a>(v: &'a Value, key: &str) -> Result<&'a Value, String> {
    v.get(key).ok_or_else(|| format!("missing field {key}"))
}

fn array<'a>(v: &'a Value, key: &str) -> Result<&'a Vec<Value>, String> {
    field(v, key)?.as_array().ok_or_else(|| format!("{key} is not an array"))
}

fn check_state(expected: &Value, state: &State) -> Result<(), String> {
    check_int("last_update", field(expected, "last_update")?, state.last_update.sec)?;
    check_int("last_update_usec", field(expected, "last_update_usec")?, i64::from(state.last_update.usec))?;
    for (i, (want, got)) in array(expected, "ds")?.iter().zip(&state.ds).enumerate() {
        let want_last = field(want, "last_ds")?.as_str().unwrap_or_default();
        if want_last != got.last_ds.as_str() {
            return Err(format!("ds[{i}].last_ds: expected {want_last:?}, got {:?}", got.last_ds.as_str()));
        }
        check_num(&format!("ds[{i}].value"), field(want, "value")?, got.pdp_value)?;
        check_int(&format!("ds[{i}].unknown_sec"), field(want, "unknown_sec")?, got.unknown_sec as i64)?;
    }
    let ds_count = state.ds.len();
    for (r, want) in array(expected, "rra")?.iter().enumerate() {
        check_int(&format!("rra[{r}].cur_row"), field(want, "cur_row")?, state.cur_row[r] as i64)?;
        for (d, prep) in array(want, "cdp_prep")?.iter().enumerate() {
            let got = &state.cdp[r * ds_count + d];
            let at = format!("rra[{r}].cdp_prep[{d}]");
            check_num(&format!("{at}.value"), field(prep, "value")?, got.value)?;
            check_int(&format!("{at}.unknown_datapoints"), field(prep, "unknown_datapoints")?, got.unknown_pdps as i64)?;
            check_num(&format!("{at}.primary_value"), field(prep, "primary_value")?, got.primary)?;
            check_num(&format!("{at}.secondary_value"), field(prep, "secondary_value")?, got.secondary)?;
        }
    }
    Ok(())
}

fn check_fetch(db: &Rrd, spec: &Value) -> Result<(), String> {
    let cf_name = field(spec, "cf")?.as_str().unwrap_or_default();
    let cf = Cf::from_name(cf_name).ok_or_else(|| format!("bad cf {cf_name}"))?;
    let req = FetchRequest::new(cf, int(field(spec, "start")?)?, int(field(spec, "end")?)?)
        .resolution(int(field(spec, "resolution")?)? as u64);
    let what = format!("fetch {cf_name} r={} {}..{}", req.resolution, req.start, req.end);
    let got = db.fetch(&req).map_err(|e| format!("{what}: {e}"))?;
    let want = field(spec, "result")?;
    check_int(&format!("{what} start"), field(want, "start")?, got.start)?;
    check_int(&format!("{what} end"), field(want, "end")?, got.end)?;
    check_int(&format!("{what} step"), field(want, "step")?, got.step as i64)?;
    let names: Vec<&str> = array(want, "ds")?.iter().filter_map(Value::as_str).collect();
    if names != got.ds_names {
        return Err(format!("{what}: ds names {names:?} vs {:?}", got.ds_names));
    }
    let rows = array(want, "rows")?;
    if rows.len() != got.row_count() {
        return Err(format!("{what}: expected {} rows, got {}", rows.len(), got.row_count()));
    }
    for (want_row, (t, values)) in rows.iter().zip(got.rows()) {
        let cells = want_row.as_array().ok_or("row is not an array")?;
        check_int(&format!("{what} row time"), &cells[0], t)?;
        for (d, (w, g)) in cells[1..].iter().zip(values).enumerate() {
            check_num(&format!("{what} row {t} ds {d}"), w, *g)?;
        }
    }
    Ok(())
}

fn run(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let create = field(&v, "create")?;
    let argv: Vec<String> = array(create, "argv")?
        .iter()
        .map(|a| a.as_str().unwrap_or_default().to_owned())
        .collect();
    let args = Schema::from_rrdtool_args(&argv, 0).map_err(|e| format!("create: {e}"))?;
    let start = args.start.unwrap_or(int(field(create, "start")?)?);
    let cur_rows = array(create, "initial_cur_row")?
        .iter()
        .map(|r| r.as_u64().ok_or("bad initial_cur_row"))
        .collect::<Result<Vec<_>, _>>()?;
    let opts = CreateOptions {
        start: Some(start),
        cur_rows: Some(cur_rows),
        ..CreateOptions::default()
    };
    let mut db = Rrd::create_in_memory(&args.schema, &opts).map_err(|e| format!("create: {e}"))?;
    let updates = array(&v, "updates")?;
    let checkpoints = array(&v, "checkpoints")?;
    let update_opts = UpdateOptions {
        now: Some(Timestamp::from_secs(2_000_000_000)),
        ..UpdateOptions::default()
    };
    let mut applied = 0usize;
    let mut last_checked = None;
    for cp in checkpoints {
        let after = int(field(cp, "after")?)? as usize;
        while applied < after {
            let u = &updates[applied];
            let arg = field(u, "arg")?.as_str().unwrap_or_default();
            let want_ok = field(u, "ok")?.as_bool().unwrap_or(false);
            let before = db.as_bytes().to_vec();
            let result = db.update_args(&[arg], &update_opts);
            match (want_ok, result) {
                (true, Err(e)) => return Err(format!("update {applied} {arg:?}: rejected ({e}), RRDtool accepted it")),
                (false, Ok(_)) => return Err(format!("update {applied} {arg:?}: accepted, RRDtool rejected it")),
                (false, Err(_)) if db.as_bytes() != before.as_slice() => {
                    return Err(format!("update {applied} {arg:?}: rejected but the database changed"));
                }
                _ => {}
            }
            applied += 1;
        }
        let at = format!("checkpoint after {after}");
        check_state(field(cp, "state")?, db.state()).map_err(|e| format!("{at}: {e}"))?;
        for f in array(cp, "fetches")? {
            check_fetch(&db, f).map_err(|e| format!("{at}: {e}"))?;
        }
        // The image must survive a round trip through the decoder unchanged.
        last_checked = Some(cp);
        let reopened = Rrd::from_bytes(db.as_bytes().to_vec()).map_err(|e| format!("{at}: reopen: {e}"))?;
        if reopened.state() != db.state() {
            return Err(format!("{at}: state differs after reopening"));
        }
    }
    // RRDtool's own file after the last update: importing it must give the
    // last checkpoint's state and fetches.
    let native = path.with_extension("rrd");
    if let (Some(cp), true) = (last_checked, native.is_file()) {
        let bytes = std::fs::read(&native).map_err(|e| e.to_string())?;
        let imported = rrdcore::native::read(&bytes)
            .and_then(|n| n.to_memory())
            .map_err(|e| format!("import {}: {e}", native.display()))?;
        let at = "imported .rrd";
        check_state(field(cp, "state")?, imported.state()).map_err(|e| format!("{at}: {e}"))?;
        for f in array(cp, "fetches")? {
            check_fetch(&imported, f).map_err(|e| format!("{at}: {e}"))?;
        }
    }
    Ok(())
}

fn main() {
    let dir = rrdcore::testing::vectors_dir();
    let files = scenarios(&dir);
    println!("running {} golden scenarios from {}", files.len(), dir.display());
    let (mut passed, mut failed) = (0, 0);
    for path in &files {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        match run(path) {
            Ok(()) => passed += 1,
            Err(e) => {
                failed += 1;
                println!("FAIL {name}: {e}");
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 || files.is_empty() {
        std::process::exit(1);
    }
}
