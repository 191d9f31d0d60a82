//! The command line as a user types it: the real binary, its output and exit codes.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

use std::path::Path;
use std::process::Command;

fn rrdserver(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rrdserver")).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(args: &[&str]) -> String {
    let (code, out, err) = rrdserver(args);
    assert_eq!(code, 0, "{args:?}: {err}");
    out
}

fn create(dir: &Path) -> String {
    let f = dir.join("t.rrd").to_str().unwrap().to_owned();
    ok(&["create", &f, "--start", "1000000000", "--step", "300", "DS:a:GAUGE:600:U:U", "DS:b:COUNTER:600:0:U", "RRA:AVERAGE:0.5:1:10", "RRA:MAX:0.5:2:10"]);
    f
}

const CREATE: [&str; 8] = ["--start", "1000000000", "--step", "300", "DS:a:GAUGE:600:U:U", "DS:b:COUNTER:600:0:U", "RRA:AVERAGE:0.5:1:10", "RRA:MAX:0.5:2:10"];

/// The same database made by us and, when installed, by real rrdtool; every
/// command runs on both and must print the same.
struct Twins {
    ours: String,
    theirs: Option<String>,
}

impl Twins {
    fn new(dir: &Path) -> Twins {
        let ours = dir.join("ours.rrd").to_str().unwrap().to_owned();
        ok(&[&["create", ours.as_str()], &CREATE[..]].concat());
        let have = Command::new("rrdtool").arg("--version").output().is_ok_and(|o| o.status.success());
        let theirs = have.then(|| {
            let t = dir.join("theirs.rrd").to_str().unwrap().to_owned();
            let st = Command::new("rrdtool").args([&["create", t.as_str()], &CREATE[..]].concat()).status().unwrap();
            assert!(st.success());
            t
        });
        Twins { ours, theirs }
    }

    /// Runs `verb FILE args...` on both; returns our output.
    fn run(&self, verb: &str, args: &[&str]) -> String {
        let mine = ok(&[&[verb, self.ours.as_str()], args].concat());
        if let Some(t) = &self.theirs {
            let out = Command::new("rrdtool").args([&[verb, t.as_str()], args].concat()).output().unwrap();
            assert!(out.status.success(), "rrdtool {verb} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            if verb != "update" {
                assert_eq!(mine, String::from_utf8_lossy(&out.stdout), "{verb} {args:?}");
            }
        }
        mine
    }
}

#[test]
fn create_update_fetch_in_rrdtools_layout() {
    let dir = tempfile::tempdir().unwrap();
    let db = Twins::new(dir.path());
    db.run("update", &["1000000300:1:100", "1000000600:2:400", "1000000900:3:700"]);
    let out = db.run("fetch", &["AVERAGE", "-s", "1000000200", "-e", "1000000800"]);
    // PDP (200, 500]: a is 100 s of 1 and 200 s of 2; b's first sample only primed
    // the counter, but just 100 s of that PDP were unknown (not more than half),
    // so it is known: 300 counts in 300 s.
    let want = "                              a                   b\n\n\
                1000000500: 1.6666666667e+00 1.0000000000e+00\n\
                1000000800: 2.6666666667e+00 1.0000000000e+00\n\
                1000001100: -nan -nan\n";
    assert_eq!(out, want);
    assert_eq!(db.run("last", &[]), "1000000900\n");
    assert_eq!(db.run("lastupdate", &[]), " a b\n\n1000000900: 3 700\n");
    assert_eq!(db.run("first", &["--rraindex", "1"]), format!("{}\n", 1000000800 - 9 * 600));
    let info = ok(&["info", &db.ours]);
    assert!(info.contains("ds[b].type = \"COUNTER\"\n") && info.contains("rra[1].cf = \"MAX\"\n"), "{info}");
}

#[test]
fn times_templates_and_skipping() {
    let dir = tempfile::tempdir().unwrap();
    let db = Twins::new(dir.path());
    db.run("update", &["-t", "b", "1000000300:5"]);
    assert_eq!(db.run("lastupdate", &[]), " a b\n\n1000000300: U 5\n");
    db.run("update", &["--skip-past-updates", "1000000200:1:1", "1000000600:1:9"]);
    assert_eq!(db.run("last", &[]), "1000000600\n");
    // Start relative to end, end relative to start, a duration as the resolution:
    // MAX 2x10 (600 s rows) is the only full match for an hour back.
    let a = db.run("fetch", &["MAX", "-s", "end-1h", "-e", "1000000600", "-r", "10m"]);
    let b = db.run("fetch", &["MAX", "-s", "999997000", "-e", "start+1h", "-r", "600"]);
    assert_eq!(a, b);
    assert_eq!(a.lines().count(), 2 + 7, "{a}");
    assert!(a.lines().nth(2).unwrap().starts_with(" 999997200:"), "{a}");
}

#[test]
fn errors_are_reported_like_rrdtool_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let f = create(dir.path());
    ok(&["update", &f, "1000000300:1:1"]);
    let (code, _, err) = rrdserver(&["update", &f, "1000000200:1:1"]);
    assert_eq!(code, 1);
    assert!(err.starts_with("ERROR: illegal attempt to update using time 1000000200"), "{err}");
    let (code, _, err) = rrdserver(&["update", &f, "1000000900:1.5:1.5"]);
    assert_eq!(code, 1);
    assert!(err.contains("not a simple unsigned integer") && err.contains("1.5"), "{err}");
    let (code, _, err) = rrdserver(&["fetch", &f, "MAXIMUM"]);
    assert_eq!(code, 1);
    assert!(err.contains("MAXIMUM"), "{err}");
    let (code, _, err) = rrdserver(&["create", &f, "--no-overwrite", "DS:a:GAUGE:600:U:U", "RRA:AVERAGE:0.5:1:10"]);
    assert_eq!(code, 1);
    assert!(err.contains("exists"), "{err}");
    let (code, _, err) = rrdserver(&["info", dir.path().join("missing.rrd").to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("missing.rrd"), "{err}");
}

fn sample_native() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../rrdcore/tests/vectors/scenario-002.rrd"))
}

#[test]
fn native_files_are_read_directly_but_not_written() {
    let native = sample_native().to_str().unwrap();
    assert_eq!(ok(&["last", native]), "1598384910\n");
    let (code, _, err) = rrdserver(&["update", native, "1598385000:1:1"]);
    assert_eq!(code, 1);
    assert!(err.contains("import it first"), "{err}");
}

#[test]
fn tree_import_reports_bad_files_and_goes_on() {
    let src = tempfile::tempdir().unwrap();
    let dest = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(src.path().join("host1/cpu")).unwrap();
    std::fs::copy(sample_native(), src.path().join("host1/cpu/value.rrd")).unwrap();
    std::fs::copy(sample_native(), src.path().join("host2.rrd")).unwrap();
    std::fs::write(src.path().join("broken.rrd"), b"RRD\0garbage").unwrap();
    let mut bytes = std::fs::read(sample_native()).unwrap();
    bytes[16..24].copy_from_slice(&[0; 8]);
    std::fs::write(src.path().join("other-arch.rrd"), bytes).unwrap();
    let (code, out, err) = rrdserver(&["import", "--tree", src.path().to_str().unwrap(), dest.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(out.contains("imported 2 of 4 files, 2 failed"), "{out}");
    assert!(err.contains("broken.rrd") && err.contains("other-arch.rrd") && err.contains("another architecture"), "{err}");
    let imported = dest.path().join("host1/cpu/value.rrd");
    assert_eq!(ok(&["last", imported.to_str().unwrap()]), "1598384910\n");
    // check: the imported tree is healthy
    let out = ok(&["check", dest.path().to_str().unwrap()]);
    assert!(out.ends_with("2 files checked, 0 faults\n"), "{out}");
}

#[test]
fn check_finds_damage() {
    let dir = tempfile::tempdir().unwrap();
    let f = create(dir.path());
    ok(&["update", &f, "1000000300:1:1"]);
    let mut bytes = std::fs::read(&f).unwrap();
    let len = bytes.len();
    bytes.truncate(len - 100);
    let bad = dir.path().join("bad.rrd");
    std::fs::write(&bad, &bytes).unwrap();
    let (code, out, _) = rrdserver(&["check", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(out.contains("FAULT") && out.contains("bad.rrd") && out.contains("2 files checked, 1 faults"), "{out}");
}

#[test]
fn tune_matches_rrdtool_and_resize_keeps_history() {
    let dir = tempfile::tempdir().unwrap();
    let db = Twins::new(dir.path());
    db.run("update", &["1000000300:1:100", "1000000600:2:400"]);
    db.run("tune", &["-h", "b:900", "-i", "a:-5", "-a", "a:100", "-d", "b:DERIVE", "-r", "a:alpha"]);
    let skip = |s: &str| s.lines().filter(|l| !l.starts_with("filename") && !l.starts_with("header_size") && !l.contains("cur_row")).collect::<Vec<_>>().join("\n");
    let mine = ok(&["info", &db.ours]);
    assert!(mine.contains("ds[alpha].min = -5.0000000000e+00") && mine.contains("ds[b].type = \"DERIVE\"") && mine.contains("ds[b].last_ds = \"UNKN\""), "{mine}");
    if let Some(t) = &db.theirs {
        let theirs = String::from_utf8(Command::new("rrdtool").args(["info", t]).output().unwrap().stdout).unwrap();
        assert_eq!(skip(&mine), skip(&theirs));
    }
    // Both continue the same after the change.
    db.run("update", &["1000000900:500:700", "1000001200:3:900", "1000001500:4:1000"]);
    db.run("fetch", &["AVERAGE", "-s", "1000000200", "-e", "1000001500"]);
    let before = ok(&["fetch", &db.ours, "MAX", "-s", "1000000000", "-e", "1000001500", "-r", "600"]);
    ok(&["resize", &db.ours, "RRA#1:+10", "RRA:LAST:0.5:1:20"]);
    assert_eq!(ok(&["fetch", &db.ours, "MAX", "-s", "1000000000", "-e", "1000001500", "-r", "600"]), before);
    let info = ok(&["info", &db.ours]);
    assert!(info.contains("rra[1].rows = 20") && info.contains("rra[2].cf = \"LAST\""), "{info}");
    ok(&["resize", &db.ours, "1", "SHRINK", "15"]);
    assert!(ok(&["info", &db.ours]).contains("rra[1].rows = 5"));
    let (code, _, err) = rrdserver(&["resize", &db.ours, "RRA#9:+1"]);
    assert_eq!(code, 1);
    assert!(err.contains("archive index"), "{err}");
    let (code, _, err) = rrdserver(&["tune", &db.ours, "-h", "nosuch:60"]);
    assert_eq!(code, 1);
    assert!(err.contains("nosuch"), "{err}");
}
