//! OpenTSDB's wire formats: the data they carry and how they are validated,
//! with OpenTSDB's own error texts (`opentsdb-api.md`), for the server.
//!
//! * [`point`]: names, tags, timestamps and values shared by every write path.
//! * [`put`]: the `/api/put` JSON body.
//! * [`telnet`]: the line protocol (`put`, `version`, ...).
//! * [`query`]: what a query asks for: times, `m=`, downsampling, filters, rates.

pub mod point;
pub mod put;
pub mod query;
pub mod telnet;
