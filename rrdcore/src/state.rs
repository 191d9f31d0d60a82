//! The live state of a database: everything an update changes except the rows.

use crate::schema::{Cf, Schema};

/// Longest `last_ds` text RRDtool keeps (its `LAST_DS_LEN` less the NUL).
pub const LAST_DS_MAX: usize = 29;

/// RRDtool's "unknown": the NaN with the sign bit set (`0xFFF8000000000000`),
/// as RRDtool writes it, so files and printed output (`-nan`) match RRDtool's.
/// Any NaN is read as unknown.
pub const DNAN: f64 = f64::from_bits(0xFFF8_0000_0000_0000);

/// Latest time a database accepts, about 142 million years from now (2^52 s),
/// so that time arithmetic can never overflow.
pub const MAX_TIME: i64 = 1 << 52;

/// A point in time: seconds since the epoch and microseconds (0..=999_999).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Whole seconds since 1970-01-01 UTC.
    pub sec: i64,
    /// Microseconds, 0 to 999,999.
    pub usec: u32,
}

impl Timestamp {
    /// A whole-second time.
    pub fn from_secs(sec: i64) -> Self {
        Timestamp { sec, usec: 0 }
    }

    /// Splits a fractional time as RRDtool does: `sec = floor(t)`,
    /// `usec = trunc((t - sec) * 1e6)` in f64. `None` if `t` is not finite or out of range.
    pub fn from_f64(t: f64) -> Option<Self> {
        #[expect(clippy::cast_precision_loss, reason = "2^52 is exact in f64")]
        if !t.is_finite() || t.abs() > MAX_TIME as f64 {
            return None;
        }
        let sec = t.floor();
        let usec = ((t - sec) * 1e6).trunc();
        #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "both are range-checked above")]
        Some(Timestamp {
            sec: sec as i64,
            usec: (usec as u32).min(999_999),
        })
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.usec == 0 {
            write!(f, "{}", self.sec)
        } else {
            write!(f, "{}.{:06}", self.sec, self.usec)
        }
    }
}

/// The last raw input text of a data source (at most 29 bytes), as RRDtool keeps it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct LastDs {
    len: u8,
    bytes: [u8; LAST_DS_MAX],
}

impl LastDs {
    /// The text `U`, which every data source starts with.
    pub const UNKNOWN: LastDs = {
        let mut bytes = [0u8; LAST_DS_MAX];
        bytes[0] = b'U';
        LastDs { len: 1, bytes }
    };

    /// Keeps the first 29 bytes of `text`, cut back to a character boundary.
    pub fn new(text: &str) -> Self {
        let mut end = text.len().min(LAST_DS_MAX);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        Self::from_bytes(text.as_bytes().get(..end).unwrap_or_default())
    }

    /// From stored bytes; `None` unless they are at most 29 bytes of UTF-8.
    pub fn from_stored(bytes: &[u8]) -> Option<Self> {
        if bytes.len() > LAST_DS_MAX || std::str::from_utf8(bytes).is_err() {
            return None;
        }
        Some(Self::from_bytes(bytes))
    }

    fn from_bytes(src: &[u8]) -> Self {
        let mut bytes = [0u8; LAST_DS_MAX];
        for (dst, b) in bytes.iter_mut().zip(src) {
            *dst = *b;
        }
        #[expect(clippy::cast_possible_truncation, reason = "src is at most 29 bytes")]
        LastDs {
            len: src.len().min(LAST_DS_MAX) as u8,
            bytes,
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        let bytes = self.bytes.get(..usize::from(self.len)).unwrap_or_default();
        std::str::from_utf8(bytes).unwrap_or_default()
    }

    /// Whether it starts with `U`, RRDtool's test for "no previous reading".
    pub fn is_unknown(&self) -> bool {
        self.len > 0 && self.bytes[0] == b'U'
    }
}

impl std::fmt::Debug for LastDs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// Whether two stored floats are the same value: equal bits, or both NaN.
pub(crate) fn same_f64(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// The open primary data point of one data source.
///
/// Equality compares floats as stored values: NaN equals NaN, 0.0 differs from -0.0.
#[derive(Debug, Clone, Copy)]
pub struct DsState {
    /// The last raw input text, or `U`.
    pub last_ds: LastDs,
    /// Rate x seconds collected so far in the open PDP (NaN: nothing known yet).
    pub pdp_value: f64,
    /// Whole seconds of the open PDP known to be unknown.
    pub unknown_sec: u64,
}

impl PartialEq for DsState {
    fn eq(&self, other: &Self) -> bool {
        self.last_ds == other.last_ds
            && same_f64(self.pdp_value, other.pdp_value)
            && self.unknown_sec == other.unknown_sec
    }
}

/// The open consolidated data point of one archive and data source.
///
/// Equality compares floats as stored values: NaN equals NaN, 0.0 differs from -0.0.
#[derive(Debug, Clone, Copy)]
pub struct CdpState {
    /// Running aggregate (sum for AVERAGE; min, max or last PDP otherwise).
    pub value: f64,
    /// Unknown PDPs so far in the open CDP.
    pub unknown_pdps: u64,
    /// The first row value written by the last update that wrote rows.
    pub primary: f64,
    /// The value of later rows written by that update.
    pub secondary: f64,
}

impl PartialEq for CdpState {
    fn eq(&self, other: &Self) -> bool {
        same_f64(self.value, other.value)
            && self.unknown_pdps == other.unknown_pdps
            && same_f64(self.primary, other.primary)
            && same_f64(self.secondary, other.secondary)
    }
}

/// Everything an update changes, except the rows themselves.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    /// Time of the last accepted update.
    pub last_update: Timestamp,
    /// One per data source.
    pub ds: Vec<DsState>,
    /// One per archive: index of the most recently written row.
    pub cur_row: Vec<u64>,
    /// One per archive and data source, archive-major (`rra * ds_count + ds`).
    pub cdp: Vec<CdpState>,
}

impl State {
    /// The state of a new database that starts at `start`, with each archive's
    /// ring positioned at `cur_row` (RRDtool picks these at random).
    pub fn new(schema: &Schema, start: i64, cur_row: &[u64]) -> Self {
        let step = i64::try_from(schema.step).unwrap_or(i64::MAX);
        let start_mod = start.rem_euclid(step).unsigned_abs();
        let ds = schema
            .data_sources
            .iter()
            .map(|_| DsState {
                last_ds: LastDs::UNKNOWN,
                pdp_value: DNAN,
                unknown_sec: start_mod,
            })
            .collect();
        #[expect(clippy::cast_sign_loss, reason = "start is after 1980 in valid databases")]
        let pdp_start = start.div_euclid(step) as u64;
        let mut cdp = Vec::with_capacity(schema.archives.len() * schema.data_sources.len());
        for rra in &schema.archives {
            let unknown_pdps = pdp_start % rra.steps;
            for _ in &schema.data_sources {
                cdp.push(CdpState {
                    value: DNAN,
                    unknown_pdps,
                    primary: 0.0,
                    secondary: 0.0,
                });
            }
        }
        let cur_row = schema
            .archives
            .iter()
            .enumerate()
            .map(|(i, a)| cur_row.get(i).copied().unwrap_or(0) % a.rows)
            .collect();
        State {
            last_update: Timestamp::from_secs(start),
            ds,
            cur_row,
            cdp,
        }
    }
}

/// The value an open CDP restarts from (`rrd-semantics.md` §3.8).
pub(crate) fn cdp_initial(cf: Cf) -> f64 {
    match cf {
        Cf::Average => 0.0,
        Cf::Max => f64::NEG_INFINITY,
        Cf::Min => f64::INFINITY,
        Cf::Last => DNAN,
    }
}
