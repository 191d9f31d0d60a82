//! What Bosun (with tsdbrelay and Redis) did for Opserver, built in:
//! metadata, the last-value table, the search listings, the host
//! inventory, the graph endpoint and the denormalized names
//! (`bosun-api.md`).

pub mod denorm;
pub mod host;
pub mod meta;
