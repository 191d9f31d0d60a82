//! # rrdcore
//!
//! A pure-Rust, memory-mapped round-robin database engine whose numbers agree
//! with RRDtool 1.7 bit for bit.
//!
//! One fixed-size file holds one database: a base step, data sources
//! (GAUGE, COUNTER, DERIVE, DCOUNTER, DDERIVE, ABSOLUTE) and archives that
//! consolidate primary data points with AVERAGE, MIN, MAX or LAST. Updates
//! follow RRDtool's rules exactly: heartbeat gap filling, the unknown-seconds
//! rule, counter wraps, min/max, xff and multi-row consolidation, down to
//! RRDtool's own decimal parser. The file format is our own: little-endian,
//! fixed widths, checksummed, with the live state in two slots so a torn write
//! is detected and never used (`docs/format.md`).
//!
//! ```
//! use rrdcore::{Cf, CreateOptions, FetchRequest, Rrd, Schema, Timestamp};
//!
//! let dir = tempfile::tempdir()?;
//! let opts = CreateOptions { start: Some(1_700_000_000), ..Default::default() };
//! // Step 300 s, heartbeat 4200 s, 5-minute rows for 50 h ... daily rows for 2 years.
//! let mut db = Rrd::create(dir.path().join("cpu.rrd"), &Schema::default(), &opts)?;
//! for i in 1..=24 {
//!     db.update(Timestamp::from_secs(1_700_000_000 + i * 300), &[i as f64])?;
//! }
//! db.update_text("1700007500:25")?; // RRDtool's text form
//! let got = db.fetch(&FetchRequest::new(Cf::Average, 1_700_000_000, 1_700_007_200))?;
//! // PDPs end at multiples of the step: (1_700_000_100, 1_700_000_400] holds
//! // 200 s of the value 1 and 100 s of the value 2 (step interpolation).
//! let (t, row) = got.rows().nth(1).unwrap();
//! assert_eq!((t, row[0]), (1_700_000_400, (200.0 * 1.0 + 100.0 * 2.0) / 300.0));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The semantics are documented in the workspace's `docs/` and in RRDtool's
//! manual pages; section numbers such as §3.7 in comments refer to
//! `rrd-semantics.md`.

#![warn(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_precision_loss
)]

mod database;
mod error;
mod fetch;
mod format;
mod mmap;
pub mod native;
pub mod number;
pub mod prefetch;
mod reshape;
mod schema;
mod state;
mod store;
pub mod sync;
#[doc(hidden)]
pub mod testing;
pub mod timespec;
mod update;

pub use database::{CheckReport, CreateOptions, Info, Rrd, UpdateOptions, check_bytes, now};
pub use error::{Error, Result};
pub use reshape::ArchiveSource;
pub use fetch::{FetchRequest, Fetched, MAX_FETCH_VALUES};
pub use schema::{
    Archive, Cf, CreateArgs, DataSource, DsType, MAX_COUNT, MAX_DS_NAME, MIN_START, Schema, parse_duration,
    parse_ds, parse_rra,
};
pub use store::{
    BatchOutcome, LOCK_FILE, Pattern, Point, ScanProblem, SchemaRules, SeriesHandle, SeriesKey, Store, StoreConfig,
    StoreStats,
};
pub use state::{CdpState, DNAN, DsState, LAST_DS_MAX, LastDs, MAX_TIME, State, Timestamp};
