//! Nagios perfdata spools imported by the real `import-perfdata` command and
//! by the server's spool watcher, read back through the OpenTSDB API.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use common::{BIN, Server, copy_dir};
use rrdserver::server::Config;
use serde_json::{Value, json};

const T: u64 = 1_700_000_100;

/// Four spool files covering the formats and the grammar's corners.
fn write_spool(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    // PNP4Nagios bulk, keys in any order, CRLF, the last line without an end.
    let bulk = format!(
        "DATATYPE::SERVICEPERFDATA\tTIMET::{T}\tHOSTNAME::web1\tSERVICEDESC::Load avg\tSERVICEPERFDATA::load1=0.5;5;10;0 load5=0.25;;;;\tSERVICECHECKCOMMAND::check_load\r\n\
         HOSTNAME::web1\tDATATYPE::HOSTPERFDATA\tTIMET::{T}\tHOSTPERFDATA::rta=0.1ms;3000.000;5000.000;0; pl=0%;80;100;0\tHOSTSTATE::UP"
    );
    std::fs::write(dir.join("01-bulk"), bulk).unwrap();
    // Nagios' templates: a duplicate label, a bad value, a decimal comma, a quoted label.
    let templates = format!(
        "[SERVICEPERFDATA]\t{T}\tdb1\tDisk /\t0.012\t0.001\tDISK OK\t/=2643MB;5948;5958;0;5968 /=1MB bad=abc 'disk free'=0,75\n\
         [HOSTPERFDATA]\t{T}\tdb1\t0.01\tPING OK\trta=1.5ms;3000;5000;0\n"
    );
    std::fs::write(dir.join("02-templates"), templates).unwrap();
    // Double pipes: a counter over three checks, U, thresholds with ranges.
    let pipes = format!(
        "{T}||db1||Traffic||OK||bytes=1000c;@10:20;~:5 size=U\n{}||db1||Traffic||OK||bytes=31000c\n{}||db1||Traffic||OK||bytes=61000c\n",
        T + 300,
        T + 600
    );
    std::fs::write(dir.join("03-pipes"), pipes).unwrap();
    // Junk: binary bytes, a very long line, a line without perfdata format, an empty label.
    let mut junk = vec![0u8, 159, 146, 150, b'\n'];
    junk.extend(std::iter::repeat_n(b'x', 200_000));
    junk.extend_from_slice(format!("\nhello world\n{T}||web1||Junk||OK||=5 ok_one=7\n").as_bytes());
    std::fs::write(dir.join("04-junk"), junk).unwrap();
}

fn dps(s: &Server, metric: &str, host: &str, service: &str, end: u64) -> serde_json::Map<String, Value> {
    let q = json!({"start": T, "end": end, "queries": [{"aggregator": "sum", "metric": metric, "tags": {"host": host, "service": service}}]});
    let got = s.post("/api/query", &q.to_string()).json();
    got.get(0).and_then(|g| g["dps"].as_object().cloned()).unwrap_or_default()
}

/// Every valid value of [`write_spool`] is stored as given.
fn check_stored(s: &Server) {
    let one = |metric: &str, host: &str, service: &str| dps(s, metric, host, service, T + 600).get(&T.to_string()).and_then(Value::as_f64);
    assert_eq!(one("load1", "web1", "Load_avg"), Some(0.5));
    assert_eq!(one("load5", "web1", "Load_avg"), Some(0.25));
    assert_eq!(one("rta", "web1", "_HOST_"), Some(0.1));
    assert_eq!(one("pl", "web1", "_HOST_"), Some(0.0));
    assert_eq!(one("/", "db1", "Disk_/"), Some(2643.0), "the first of a duplicate label is kept");
    assert_eq!(one("disk_free", "db1", "Disk_/"), Some(0.75));
    assert_eq!(one("rta", "db1", "_HOST_"), Some(1.5));
    assert_eq!(one("ok_one", "web1", "Junk"), Some(7.0));
    assert_eq!(one("bad", "db1", "Disk_/"), None);
    // U is unknown: the series exists, with no point.
    assert!(dps(s, "size", "db1", "Traffic", T + 600).is_empty());
    // A counter: stored as a COUNTER, read back as its rate (30000 per 300 s).
    let rate = dps(s, "bytes", "db1", "Traffic", T + 600);
    assert_eq!(rate, json!({(T + 300).to_string(): 100, (T + 600).to_string(): 100}).as_object().unwrap().clone());
    // Units as metric metadata.
    let unit = |m: &str| s.get(&format!("/api/metadata/metrics?metric={m}")).json()["Unit"].clone();
    assert_eq!((unit("rta"), unit("pl"), unit("bytes")), (json!("ms"), json!("%"), json!("c")));
}

#[test]
fn the_command_imports_a_spool_and_reports_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, data) = (dir.path().join("spool"), dir.path().join("data"));
    write_spool(&spool);
    let out = Command::new(BIN).arg("import-perfdata").arg(&spool).arg("--data-dir").arg(&data).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("imported 12 values from 4 files"), "{stdout}");
    for expected in ["02-templates:1: duplicate label \"/\"", "02-templates:1: bad perfdata item \"bad=abc\"", "04-junk:1: not a perfdata spool line", "04-junk:2:", "04-junk:3:", "04-junk:4: bad perfdata item \"=5\""] {
        assert!(stderr.contains(expected), "{expected} in:\n{stderr}");
    }
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 0, "imported files are deleted");
    let s = Server::start(&data);
    check_stored(&s);
    drop(s);
    // The counter's database has a COUNTER data source.
    let info = Command::new(BIN).arg("info").arg(data.join("bytes/host=db1,service=Traffic.rrd")).output().unwrap();
    assert!(String::from_utf8_lossy(&info.stdout).contains("ds[value].type = \"COUNTER\""), "{}", String::from_utf8_lossy(&info.stdout));
}

#[test]
fn the_server_watches_a_spool_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, data) = (dir.path().join("spool"), dir.path().join("data"));
    std::fs::create_dir_all(&spool).unwrap();
    let s = Server::with_config(Config { data_dir: data, perfdata_spool: Some(spool.clone()), perfdata_poll_ms: 20, ..Config::default() });
    // Written elsewhere, then moved in (as monitors do), and dated in the past.
    let staging = dir.path().join("staging");
    write_spool(&staging);
    for e in std::fs::read_dir(&staging).unwrap() {
        let e = e.unwrap();
        let f = std::fs::File::options().write(true).open(e.path()).unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(5)).unwrap();
        std::fs::rename(e.path(), spool.join(e.file_name())).unwrap();
    }
    let start = Instant::now();
    while std::fs::read_dir(&spool).unwrap().count() > 0 {
        assert!(start.elapsed() < Duration::from_secs(20), "the spool was not emptied");
        std::thread::sleep(Duration::from_millis(10));
    }
    check_stored(&s);
}

#[test]
fn a_counter_replayed_after_a_crash_is_still_a_counter() {
    let dir = tempfile::tempdir().unwrap();
    let (data, crash, spool) = (dir.path().join("data"), dir.path().join("crash"), dir.path().join("spool"));
    std::fs::create_dir_all(&spool).unwrap();
    let c = Config { data_dir: data.clone(), reorder_window_ms: 3_600_000, checkpoint_interval_ms: 3_600_000, ..Config::default() };
    let s = Server::with_config(c);
    std::fs::write(spool.join("f"), format!("{T}||db1||Traffic||OK||bytes=1000c\n{}||db1||Traffic||OK||bytes=31000c\n", T + 300)).unwrap();
    let report = rrdserver::perfdata::import::import_file(&s.app, &spool.join("f"));
    assert_eq!((report.values, report.files), (2, 1), "{report:?}");
    // The points are journaled and held: no database yet. Copy what a crash would leave.
    assert!(!data.join("bytes").exists());
    copy_dir(&data, &crash);
    drop(s);
    let s = Server::start(&crash);
    assert_eq!(dps(&s, "bytes", "db1", "Traffic", T + 300), json!({(T + 300).to_string(): 100}).as_object().unwrap().clone());
    drop(s);
    let info = Command::new(BIN).arg("info").arg(crash.join("bytes/host=db1,service=Traffic.rrd")).output().unwrap();
    assert!(String::from_utf8_lossy(&info.stdout).contains("ds[value].type = \"COUNTER\""));
}


#[test]
fn a_fractional_counter_reading_is_refused_and_reported_not_dropped_later() {
    let dir = tempfile::tempdir().unwrap();
    let (data, crash, spool) = (dir.path().join("data"), dir.path().join("crash"), dir.path().join("spool"));
    std::fs::create_dir_all(&spool).unwrap();
    let c = Config { data_dir: data.clone(), reorder_window_ms: 3_600_000, checkpoint_interval_ms: 3_600_000, ..Config::default() };
    let s = Server::with_config(c);
    let lines = format!("{T}||db1||Traffic||OK||bytes=1000c\n{}||db1||Traffic||OK||bytes=1500.5c\n{}||db1||Traffic||OK||bytes=61000c\n", T + 300, T + 600);
    std::fs::write(spool.join("f"), lines).unwrap();
    let report = rrdserver::perfdata::import::import_file(&s.app, &spool.join("f"));
    assert_eq!((report.values, report.files), (2, 1), "{report:?}");
    assert_eq!(report.refused.len(), 1, "{report:?}");
    assert!(report.refused[0].contains("f:2:") && report.refused[0].contains("1500.5"), "the line and the value: {report:?}");
    copy_dir(&data, &crash);
    drop(s);
    let s = Server::start(&crash);
    // The two accepted readings: (61000 - 1000) / 600 s over both rows.
    let got = dps(&s, "bytes", "db1", "Traffic", T + 600);
    assert_eq!(got.get(&(T + 300).to_string()).and_then(Value::as_f64), Some(100.0), "{got:?}");
    assert_eq!(got.get(&(T + 600).to_string()).and_then(Value::as_f64), Some(100.0), "{got:?}");
}
