//! # rrdserver
//!
//! RRDtool's command-line verbs over [`rrdcore`] databases (and native
//! RRDtool files, read directly or imported), with RRDtool's text output so
//! existing scripts keep working; and [`server`], an OpenTSDB-compatible
//! server (HTTP API and telnet on one port) over an [`rrdcore::Store`],
//! started by `rrdserver serve` or embedded with [`server::run`].
//!
//! ```
//! use clap::Parser;
//! let dir = tempfile::tempdir().unwrap();
//! let file = dir.path().join("a.rrd");
//! let f = file.to_str().unwrap();
//! let run = |args: &[&str]| {
//!     let mut out = Vec::new();
//!     rrdserver::cli::run(rrdserver::cli::Cli::parse_from(args), &mut out).map(|_| String::from_utf8(out).unwrap())
//! };
//! run(&["rrdserver", "create", f, "--start", "1000000000", "--step", "300", "DS:v:GAUGE:600:U:U", "RRA:AVERAGE:0.5:1:10"]).unwrap();
//! run(&["rrdserver", "update", f, "1000000300:1", "1000000600:2"]).unwrap();
//! assert_eq!(run(&["rrdserver", "last", f]).unwrap(), "1000000600\n");
//! ```

pub mod cli;
pub mod opentsdb;
pub mod perfdata;
pub mod rrdtext;
pub mod xml;
pub mod server;
