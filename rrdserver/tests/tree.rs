//! A monitoring engine's tree (`HOST/SERVICE/METRIC/value.rrd`) made with
//! real rrdtool: `import-tree` keeps all of it (the store's series answer
//! the same fetches), and `export-tree` writes files real rrdtool reads the
//! same and goes on updating as the originals.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::path::Path;
use std::process::Command;

use common::{BIN, have_rrdtool};

const T0: u64 = 1_700_000_000;

fn run(prog: &str, args: &[&str]) -> String {
    let out = Command::new(prog).args(args).output().unwrap();
    assert!(out.status.success(), "{prog} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// (host, service, metric, create arguments, counter?)
const SERIES: &[(&str, &str, &str, &str, bool)] = &[
    ("web1", "Load", "load1", "--step 300 DS:value:GAUGE:600:U:U RRA:AVERAGE:0.5:1:600 RRA:AVERAGE:0.5:6:700 RRA:MAX:0.5:6:700 RRA:LAST:0.5:1:600", false),
    ("web1", "Traffic", "bytes", "--step 300 DS:value:COUNTER:600:0:U RRA:AVERAGE:0.5:1:600 RRA:AVERAGE:0.5:12:400", false),
    ("db1", "_HOST_", "rta", "--step 300 DS:value:GAUGE:4200:0:U RRA:AVERAGE:0.5:1:600 RRA:AVERAGE:0.5:6:672 RRA:AVERAGE:0.5:24:744 RRA:AVERAGE:0.5:288:730", false),
    ("db1", "Disk", "used", "--step 60 DS:value:GAUGE:120:U:U RRA:AVERAGE:0.5:1:1440 RRA:MIN:0.5:60:72 RRA:MAX:0.5:60:72", false),
];

/// Makes the tree: three days of irregular updates, gaps, unknowns.
fn make_tree(root: &Path) {
    for (k, (host, service, metric, create, _)) in SERIES.iter().enumerate() {
        let dir = root.join(host).join(service).join(metric);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("value.rrd");
        let f = file.to_str().unwrap();
        let start = T0.to_string();
        run("rrdtool", &[&["create", f, "--start", &start], create.split(' ').collect::<Vec<_>>().as_slice()].concat());
        let mut updates = Vec::new();
        let (mut t, mut counter) = (T0, 0u64);
        while t < T0 + 3 * 86_400 {
            t += 37 + (t * 7 + k as u64) % 260;
            if (t / 3600) % 17 == 3 {
                continue; // a gap longer than some heartbeats
            }
            counter += (t % 1000) * 13;
            let v = if metric == &"bytes" { counter.to_string() } else if t % 53 == 0 { "U".into() } else { format!("{}.{}", t % 97, t % 10) };
            updates.push(format!("{t}:{v}"));
        }
        for chunk in updates.chunks(200) {
            let args: Vec<&str> = std::iter::once("update").chain(std::iter::once(f)).chain(chunk.iter().map(String::as_str)).collect();
            run("rrdtool", &args);
        }
    }
}

/// What rrdtool prints for a file at several resolutions, and lastupdate.
fn fetches(prog: &str, file: &Path) -> Vec<String> {
    let f = file.to_str().unwrap();
    let (s, e) = ((T0 + 86_400).to_string(), (T0 + 3 * 86_400).to_string());
    let mut out = Vec::new();
    for cf in ["AVERAGE", "MAX", "MIN", "LAST"] {
        for r in ["60", "300", "1800", "3600", "86400"] {
            let o = Command::new(prog).args(["fetch", f, cf, "-r", r, "-s", &s, "-e", &e]).output().unwrap();
            out.push(format!("{cf} {r}: {} {}", o.status.success(), String::from_utf8_lossy(&o.stdout)));
        }
    }
    out.push(run(prog, &["lastupdate", f]));
    out
}

#[test]
fn a_tree_imports_and_exports_as_rrdtool_reads_it() {
    if !have_rrdtool() {
        assert!(std::env::var_os("RRD_REQUIRE_RRDTOOL").is_none(), "RRD_REQUIRE_RRDTOOL is set but rrdtool is not installed");
        eprintln!("rrdtool is not installed: skipping");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (src, data, dest) = (dir.path().join("src"), dir.path().join("data"), dir.path().join("export"));
    make_tree(&src);
    std::fs::write(src.join("stray.rrd"), b"not in the layout").unwrap();

    let out = Command::new(BIN).arg("import-tree").arg(&src).arg("--data-dir").arg(&data).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "the stray file fails the command");
    assert!(stdout.contains("imported 4 of 5 files, 1 failed"), "{stdout}");
    assert!(stderr.contains("stray.rrd: not laid out as HOST/SERVICE/METRIC/value.rrd"), "{stderr}");
    std::fs::remove_file(src.join("stray.rrd")).unwrap();

    for (host, service, metric, _, _) in SERIES {
        let original = src.join(host).join(service).join(metric).join("value.rrd");
        let stored = data.join(metric).join(format!("host={host},service={service}.rrd"));
        let want = fetches("rrdtool", &original);
        assert!(want.iter().filter(|f| f.starts_with("AVERAGE") && f.contains("true") && f.contains("e+")).count() >= 4, "{want:?}");
        assert_eq!(fetches(BIN, &stored), fetches("rrdtool", &original), "{host}/{service}/{metric} after import");
    }
    // A second import over existing series is refused unless forced.
    let again = Command::new(BIN).arg("import-tree").arg(&src).arg("--data-dir").arg(&data).output().unwrap();
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("exists"), "{}", String::from_utf8_lossy(&again.stderr));
    let forced = Command::new(BIN).arg("import-tree").arg(&src).arg("--data-dir").arg(&data).arg("-f").output().unwrap();
    assert!(forced.status.success(), "{}", String::from_utf8_lossy(&forced.stderr));

    let out = Command::new(BIN).arg("export-tree").arg(&dest).arg("--data-dir").arg(&data).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("exported 4 series"));
    for (host, service, metric, _, _) in SERIES {
        let original = src.join(host).join(service).join(metric).join("value.rrd");
        let exported = dest.join(host).join(service).join(metric).join("value.rrd");
        assert_eq!(fetches("rrdtool", &exported), fetches("rrdtool", &original), "{host}/{service}/{metric} after export");
        // rrdtool goes on with the exported file exactly as with its own.
        for f in [&original, &exported] {
            run("rrdtool", &["update", f.to_str().unwrap(), &format!("{}:42", T0 + 3 * 86_400 + 1000)]);
        }
        assert_eq!(fetches("rrdtool", &exported), fetches("rrdtool", &original), "{host}/{service}/{metric} after an update");
    }
}
