//! The one error type of the engine.

use std::path::PathBuf;

/// Everything that can go wrong in `rrdcore`.
///
/// Each variant names what failed: the path, the field, the offending value.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O call on a database file failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What we were doing (`open`, `create`, `sync`, ...).
        op: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Another process or handle holds the database's write lock.
    #[error("{path} is locked by another writer")]
    Locked {
        /// The file concerned.
        path: PathBuf,
    },
    /// The file is in the data directory of a store that is open (a running
    /// server): writing it on its own would change what the store has mapped.
    #[error("{path} is inside the data directory {store}, which a running server (or another program's store) has open; write through that server (its HTTP API, telnet or rrdcached protocol), or stop it first")]
    InStore {
        /// The file.
        path: PathBuf,
        /// The store's data directory.
        store: PathBuf,
    },
    /// The database was opened read-only and cannot be updated.
    #[error("{path} is open read-only")]
    ReadOnly {
        /// The file concerned.
        path: PathBuf,
    },
    /// The store holds no series of that key.
    #[error("no such series: {key}")]
    UnknownSeries {
        /// The series key.
        key: String,
    },
    /// A series could not be opened or created, so its points were not stored.
    #[error("series {key} unavailable: {reason}")]
    Unavailable {
        /// The series key.
        key: String,
        /// Why (the open or create error).
        reason: String,
    },
    /// The file exists and creation was asked not to overwrite it.
    #[error("{path} already exists")]
    Exists {
        /// The file concerned.
        path: PathBuf,
    },
    /// A schema field has a bad value (`DS:`/`RRA:` strings, or a schema built in code).
    #[error("invalid {field} {value:?}: {reason}")]
    Schema {
        /// The field, e.g. `DS heartbeat` or `RRA xff`.
        field: &'static str,
        /// The offending text or value.
        value: String,
        /// Why it is not accepted.
        reason: &'static str,
    },
    /// The file is not a valid database: bad magic, checksum, sizes or values.
    #[error("{path}: corrupt database: {what}")]
    Corrupt {
        /// The file concerned (empty for in-memory bytes).
        path: PathBuf,
        /// What check failed, with the bad value.
        what: String,
    },
    /// The file has a format version this build does not read.
    #[error("{path}: format version {version} is not one this build reads (it reads version 1): use a newer rrdcore; the file is left as it is")]
    Version {
        /// The file concerned.
        path: PathBuf,
        /// The version found in the file.
        version: u32,
    },
    /// An update's time is not after the last update.
    #[error(
        "illegal attempt to update using time {time} when last update time is {last} (minimum one second step)"
    )]
    TimeNotAfter {
        /// The rejected time (seconds, with fraction when there is one).
        time: String,
        /// The database's last update time.
        last: String,
    },
    /// An update gave the wrong number of values.
    #[error("expected {expected} data source values, got {got}")]
    ValueCount {
        /// Number of data sources in the schema.
        expected: usize,
        /// Number of values given.
        got: usize,
    },
    /// An update value could not be read for its data source.
    #[error("data source {ds:?} ({kind}): {reason}: {value:?}")]
    Value {
        /// Name of the data source.
        ds: String,
        /// Its type, e.g. `COUNTER`.
        kind: &'static str,
        /// The offending text.
        value: String,
        /// Why it is not accepted.
        reason: &'static str,
    },
    /// A time stamp argument could not be read.
    #[error("invalid time {value:?}: {reason}")]
    Time {
        /// The offending text.
        value: String,
        /// Why it is not accepted.
        reason: &'static str,
    },
    /// A fetch request is not valid.
    #[error("fetch: {0}")]
    Fetch(String),
    /// A sync failed earlier, so nothing written since can be trusted to be
    /// on disk; the store refuses to report success again (fail-stop).
    #[error("{path}: an earlier sync failed ({reason}); nothing more can be made durable; restart to recover from the journal")]
    SyncFailed {
        /// The data directory or file concerned.
        path: PathBuf,
        /// The failure.
        reason: String,
    },
    /// The batch update stopped at an update that failed; earlier ones stay applied.
    #[error("update {index} of the batch failed ({applied} applied): {source}")]
    Batch {
        /// Index of the failed update in the batch.
        index: usize,
        /// How many updates before it were applied.
        applied: usize,
        /// Why it failed.
        source: Box<Error>,
    },
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
