//! Perfdata import throughput: a spool of 1,000,000 values (1,000 hosts x
//! 10 services x 10 labels x 10 checks, PNP4Nagios bulk lines) imported
//! into a fresh store, then another million into the same series.
//!
//! ```sh
//! cargo run --release -p rrd-examples --example perfdata_import -- [--hosts N] [--checks C] [--dir PATH]
//! ```
//!
//! Printed per import: values per second until every spool file is stored
//! (journaled with `sync`, taken by the writers) and deleted, and the time of
//! the checkpoint that follows (every database flushed to disk).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::cast_precision_loss, reason = "a measuring tool")]

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use rrdserver::perfdata::import::import_dir;
use rrdserver::server::{App, Config};

const SERVICES: usize = 10;
const LABELS: usize = 10;

fn write_spool(dir: &Path, hosts: usize, checks: std::ops::Range<u64>) -> u64 {
    std::fs::create_dir_all(dir).unwrap();
    let mut values = 0;
    for c in checks {
        let t = 1_700_000_100 + c * 300;
        let mut text = String::new();
        for h in 0..hosts {
            for s in 0..SERVICES {
                let _ = write!(text, "DATATYPE::SERVICEPERFDATA\tTIMET::{t}\tHOSTNAME::host{h}\tSERVICEDESC::service {s}\tSERVICEPERFDATA::");
                for l in 0..LABELS {
                    let _ = write!(text, "'metric {l}'={}.{}ms;100;200;0; ", (h + s + l) % 90, c % 10);
                    values += 1;
                }
                text.push_str("\tSERVICECHECKCOMMAND::check_x\n");
            }
        }
        std::fs::write(dir.join(format!("perfdata.{t}")), text).unwrap();
    }
    values
}

fn main() {
    let mut hosts = 1000;
    let mut checks = 10u64;
    let mut base = std::env::temp_dir();
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        match (pair[0].as_str(), pair.get(1)) {
            ("--hosts", Some(v)) => hosts = v.parse().unwrap(),
            ("--checks", Some(v)) => checks = v.parse().unwrap(),
            ("--dir", Some(v)) => base = v.into(),
            (a, _) => panic!("unknown option {a}"),
        }
    }
    let dir = tempfile::tempdir_in(&base).unwrap();
    let (spool, data) = (dir.path().join("spool"), dir.path().join("data"));
    println!("{hosts} hosts x {SERVICES} services x {LABELS} labels x {checks} checks, in {}", base.display());
    for (round, name) in [(0, "first import (creates the series)"), (1, "second import (same series)")] {
        let values = write_spool(&spool, hosts, round * checks..(round + 1) * checks);
        let app = App::open(Config { data_dir: data.clone(), ..Config::default() }).unwrap();
        let t = Instant::now();
        let report = import_dir(&app, &spool, false).unwrap();
        let imported = t.elapsed().as_secs_f64();
        assert_eq!(report.values, values, "{:?}", &report.skipped[..report.skipped.len().min(5)]);
        let t = Instant::now();
        app.close().unwrap();
        let checkpoint = t.elapsed().as_secs_f64();
        println!("{name:<36} {values} values  {:>9.0} values/s  (files deleted after {imported:.1} s; checkpoint {checkpoint:.1} s)", values as f64 / imported);
    }
}
