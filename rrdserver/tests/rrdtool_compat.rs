//! `rrdserver` against real RRDtool: every golden scenario's `.rrd` file is
//! imported, then `fetch`, `info`, `last`, `first` and `lastupdate` must print
//! exactly what `rrdtool` prints for the original file. Runs when the
//! `rrdtool` command is installed (CI installs Debian's package).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// (success, stdout, stderr)
type Output = (bool, String, String);

fn run(program: &str, args: &[&str]) -> Output {
    let out = Command::new(program).args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn ours(args: &[&str]) -> Output {
    run(env!("CARGO_BIN_EXE_rrdserver"), args)
}

fn without(text: &str, keys: &[&str]) -> String {
    text.lines().filter(|l| !keys.iter().any(|k| l.starts_with(k))).collect::<Vec<_>>().join("\n")
}

/// Two dumps are the same but for numbers that differ by one in their last
/// (11th significant) digit.
fn dumps_match(theirs: &str, ours: &str) -> bool {
    let split = |s: &str| -> Vec<String> {
        s.split(['<', '>']).map(str::to_owned).collect()
    };
    let (a, b) = (split(theirs), split(ours));
    a.len() == b.len()
        && a.iter().zip(&b).all(|(x, y)| {
            x == y || {
                let (p, q) = (x.trim().parse::<f64>(), y.trim().parse::<f64>());
                matches!((p, q), (Ok(p), Ok(q)) if x.contains('e') && (p - q).abs() <= 1.01e-10 * p.abs().max(q.abs()))
            }
        })
}

fn check(errors: &mut Vec<String>, name: &str, what: &str, theirs: &Output, mine: &Output) {
    if theirs.0 != mine.0 || (theirs.0 && theirs.1 != mine.1) {
        let first = theirs.1.lines().zip(mine.1.lines()).find(|(a, b)| a != b);
        errors.push(format!(
            "{name} {what}: rrdtool ok={} vs ours ok={}; first difference {first:?}; stderr {:?} / {:?}",
            theirs.0, mine.0, theirs.2.trim(), mine.2.trim()
        ));
    }
}

fn compare(name: &str, native: &Path, imported: &Path, json: &serde_json::Value) -> Vec<String> {
    let (n, i) = (native.to_str().unwrap(), imported.to_str().unwrap());
    let mut errors = Vec::new();
    let last_cp = json["checkpoints"].as_array().unwrap().last().unwrap();
    for f in last_cp["fetches"].as_array().unwrap() {
        let (cf, r, s, e) = (f["cf"].as_str().unwrap(), f["resolution"].to_string(), f["start"].to_string(), f["end"].to_string());
        let args = |file| vec!["fetch", file, cf, "-r", r.as_str(), "-s", s.as_str(), "-e", e.as_str()];
        check(&mut errors, name, &format!("fetch {cf} -r {r} -s {s} -e {e}"), &run("rrdtool", &args(n)), &ours(&args(i)));
        // Reading the native file directly prints the same.
        check(&mut errors, name, &format!("fetch of the native file {cf} -r {r}"), &run("rrdtool", &args(n)), &ours(&args(n)));
    }
    // dump: the same XML as rrdtool's dump of the original, except that
    // rrdtool's dump formats with its own snprintf (x87 long double), which in
    // rare cases rounds the 11th significant digit differently from correct
    // rounding; such a value may differ by one in that digit and nothing else.
    let (td, od) = (run("rrdtool", &["dump", n]), ours(&["dump", i]));
    if !dumps_match(&td.1, &od.1) {
        let first = td.1.lines().zip(od.1.lines()).find(|(a, b)| a != b);
        errors.push(format!("{name} dump: first difference {first:?}"));
    }
    // Restoring a dump gives the same fetches in both tools, whichever wrote it.
    let dir = imported.parent().unwrap();
    for (who, xml) in [("rrdtool's dump", &td.1), ("our dump", &od.1)] {
        let path = dir.join(format!("{name}.{}.xml", who.len()));
        std::fs::write(&path, xml).unwrap();
        let (a, b) = (dir.join(format!("{name}.{}.ours.rrd", who.len())), dir.join(format!("{name}.{}.theirs.rrd", who.len())));
        let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
        let r1 = ours(&["restore", path.to_str().unwrap(), a]);
        let r2 = run("rrdtool", &["restore", path.to_str().unwrap(), b]);
        if !(r1.0 && r2.0) {
            check(&mut errors, name, &format!("restore of {who}"), &r2, &r1);
            continue;
        }
        for f in last_cp["fetches"].as_array().unwrap() {
            let (cf, r, s, e) = (f["cf"].as_str().unwrap(), f["resolution"].to_string(), f["start"].to_string(), f["end"].to_string());
            let args = |file| vec!["fetch", file, cf, "-r", r.as_str(), "-s", s.as_str(), "-e", e.as_str()];
            check(&mut errors, name, &format!("{who} restored: fetch {cf} -r {r}"), &run("rrdtool", &args(b)), &ours(&args(a)));
        }
    }
    let info_skip = ["filename", "header_size"];
    let (t, m) = (run("rrdtool", &["info", n]), ours(&["info", i]));
    check(&mut errors, name, "info", &(t.0, without(&t.1, &info_skip), t.2), &(m.0, without(&m.1, &info_skip), m.2));
    for verb in ["last", "first", "lastupdate"] {
        check(&mut errors, name, verb, &run("rrdtool", &[verb, n]), &ours(&[verb, i]));
    }
    errors
}

#[test]
fn imported_files_print_what_rrdtool_prints() {
    if !common::have_rrdtool() {
        assert!(std::env::var_os("RRD_REQUIRE_RRDTOOL").is_none(), "RRD_REQUIRE_RRDTOOL is set but rrdtool is not installed");
        eprintln!("rrdtool is not installed: skipping the comparison with real RRDtool");
        return;
    }
    let dir = rrdcore::testing::vectors_dir();
    let tmp = tempfile::tempdir().unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rrd"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .rrd files in {}", dir.display());
    // Two workers: the comparison spawns a few thousand short processes.
    let results: Vec<(String, Vec<String>)> = std::thread::scope(|scope| {
        let chunks: Vec<_> = files.chunks(files.len().div_ceil(2)).collect();
        let workers: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let tmp = tmp.path();
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|native| {
                            let name = native.file_stem().unwrap().to_str().unwrap().to_owned();
                            let json: serde_json::Value =
                                serde_json::from_str(&std::fs::read_to_string(native.with_extension("json")).unwrap()).unwrap();
                            let imported = tmp.join(format!("{name}.rrd"));
                            let (ok, _, err) = ours(&["import", native.to_str().unwrap(), imported.to_str().unwrap()]);
                            let errors =
                                if ok { compare(&name, native, &imported, &json) } else { vec![format!("{name}: import failed: {err}")] };
                            (name, errors)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    let failed = results.iter().filter(|(_, e)| !e.is_empty()).count();
    let passed = results.len() - failed;
    let report: Vec<String> = results.into_iter().flat_map(|(_, e)| e).collect();
    println!("rrdtool comparison: {passed} passed, {failed} failed");
    assert!(report.is_empty(), "{}", report.join("\n"));
}
