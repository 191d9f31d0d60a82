//! A live-state slot: everything an update changes except the rows.
//!
//! There are two slots. An update writes the state to the slot that is not
//! current, with the next sequence number, so a write torn by a crash leaves
//! the other slot intact; open uses the valid slot with the higher sequence.
//!
//! Byte map of one slot (little-endian; `D` data sources, `R` archives):
//!
//! ```text
//! offset          size   field
//! 0               8      sequence number (u64); higher is newer
//! 8               8      last update, seconds (i64)
//! 16              4      last update, microseconds (u32, < 1_000_000)
//! 20              4      reserved, zero
//! 24              D*48   per data source:
//!                          +0  1   last_ds length (u8, <= 29)
//!                          +1  29  last_ds text, UTF-8, zero-padded
//!                          +30 2   reserved, zero
//!                          +32 8   pdp_value (f64)
//!                          +40 8   unknown_sec (u64, <= step)
//! 24+48D          R*8    per archive: cur_row (u64, < rows)
//! 24+48D+8R       R*D*32 per archive and data source (archive-major):
//!                          +0  8   cdp value (f64)
//!                          +8  8   unknown PDPs (u64, <= steps)
//!                          +16 8   primary (f64)
//!                          +24 8   secondary (f64)
//! end-8           4      CRC32 of every byte of the slot before it
//! end-4           4      reserved, zero
//! ```
#![deny(clippy::indexing_slicing)]

use byteorder::{LittleEndian as LE, ReadBytesExt};

use crate::schema::Schema;
use crate::state::{CdpState, DsState, LAST_DS_MAX, LastDs, State, Timestamp};

const FIXED_LEN: u64 = 24;
const DS_LEN: u64 = 48;
const ROW_PTR_LEN: u64 = 8;
const CDP_LEN: u64 = 32;
const TRAILER_LEN: u64 = 8;

/// Slot length for `ds` data sources and `rra` archives.
pub(crate) fn len(ds: u64, rra: u64) -> u64 {
    FIXED_LEN + DS_LEN * ds + ROW_PTR_LEN * rra + CDP_LEN * rra * ds + TRAILER_LEN
}

/// Encodes `state` with sequence number `seq` into `out` (cleared first).
pub(crate) fn encode(state: &State, seq: u64, out: &mut Vec<u8>) {
    let size = len(state.ds.len() as u64, state.cur_row.len() as u64);
    out.clear();
    out.resize(usize::try_from(size).unwrap_or(0), 0);
    encode_into(state, seq, out);
}

/// Encodes `state` with sequence number `seq` over `out` in place (a
/// database's inactive slot). False, with `out` partly written, unless
/// `out` is exactly the slot's length.
pub(crate) fn encode_into(state: &State, seq: u64, out: &mut [u8]) -> bool {
    let mut w = SliceOut { buf: out, pos: 0, fits: true };
    w.put(&seq.to_le_bytes());
    w.put(&state.last_update.sec.to_le_bytes());
    w.put(&state.last_update.usec.to_le_bytes());
    w.put(&[0; 4]);
    for ds in &state.ds {
        let text = ds.last_ds.as_str().as_bytes();
        let mut field = [0u8; 1 + LAST_DS_MAX + 2];
        for (dst, b) in field.iter_mut().skip(1).zip(text) {
            *dst = *b;
        }
        if let Some(n) = field.first_mut() {
            *n = u8::try_from(text.len()).unwrap_or(0);
        }
        w.put(&field);
        w.put(&ds.pdp_value.to_le_bytes());
        w.put(&ds.unknown_sec.to_le_bytes());
    }
    for row in &state.cur_row {
        w.put(&row.to_le_bytes());
    }
    for cdp in &state.cdp {
        w.put(&cdp.value.to_le_bytes());
        w.put(&cdp.unknown_pdps.to_le_bytes());
        w.put(&cdp.primary.to_le_bytes());
        w.put(&cdp.secondary.to_le_bytes());
    }
    let crc = crc32fast::hash(w.buf.get(..w.pos).unwrap_or_default());
    w.put(&crc.to_le_bytes());
    w.put(&[0; 4]);
    w.fits && w.pos == w.buf.len()
}

/// A cursor writing over a byte slice; `fits` turns false on overflow.
struct SliceOut<'a> {
    buf: &'a mut [u8],
    pos: usize,
    fits: bool,
}

impl SliceOut<'_> {
    fn put(&mut self, bytes: &[u8]) {
        match self.buf.get_mut(self.pos..self.pos + bytes.len()) {
            Some(dst) => dst.copy_from_slice(bytes),
            None => self.fits = false,
        }
        self.pos += bytes.len();
    }
}

use crate::state::MAX_TIME;

fn short(_: std::io::Error) -> String {
    "slot shorter than expected".to_owned()
}

/// Decodes and checks one slot of a file with this `schema`.
/// Returns the sequence number and the state, or why the slot is not usable.
pub(crate) fn decode(bytes: &[u8], schema: &Schema) -> Result<(u64, State), String> {
    let (body, trailer) = bytes.split_at(bytes.len().saturating_sub(8));
    let mut t = trailer;
    let stored = t.read_u32::<LE>().map_err(short)?;
    let actual = crc32fast::hash(body);
    if stored != actual {
        return Err(format!("checksum mismatch (stored {stored:#010x}, computed {actual:#010x})"));
    }
    let mut r = body;
    let seq = r.read_u64::<LE>().map_err(short)?;
    let sec = r.read_i64::<LE>().map_err(short)?;
    let usec = r.read_u32::<LE>().map_err(short)?;
    let _reserved = r.read_u32::<LE>().map_err(short)?;
    if usec >= 1_000_000 || !(0..=MAX_TIME).contains(&sec) {
        return Err(format!("last update {sec}.{usec:06} out of range"));
    }
    // Seconds and PDPs already in the open PDP and in each open CDP: the
    // unknown counts can never exceed them (they are equal right after create).
    let step = i64::try_from(schema.step).unwrap_or(i64::MAX);
    let secs_in_pdp = sec.rem_euclid(step).unsigned_abs();
    let pdp_index = sec.div_euclid(step).unsigned_abs();
    let mut ds = Vec::with_capacity(schema.data_sources.len());
    for def in &schema.data_sources {
        let len = usize::from(r.read_u8().map_err(short)?);
        let mut text = [0u8; LAST_DS_MAX];
        std::io::Read::read_exact(&mut r, &mut text).map_err(short)?;
        let mut reserved = [0u8; 2];
        std::io::Read::read_exact(&mut r, &mut reserved).map_err(short)?;
        let last_ds = text
            .get(..len)
            .and_then(LastDs::from_stored)
            .ok_or_else(|| format!("data source {:?}: bad last_ds", def.name))?;
        let pdp_value = r.read_f64::<LE>().map_err(short)?;
        let unknown_sec = r.read_u64::<LE>().map_err(short)?;
        if unknown_sec > secs_in_pdp {
            return Err(format!(
                "data source {:?}: unknown_sec {unknown_sec} exceeds the {secs_in_pdp} s of the open PDP",
                def.name
            ));
        }
        ds.push(DsState {
            last_ds,
            pdp_value,
            unknown_sec,
        });
    }
    let mut cur_row = Vec::with_capacity(schema.archives.len());
    for (i, rra) in schema.archives.iter().enumerate() {
        let row = r.read_u64::<LE>().map_err(short)?;
        if row >= rra.rows {
            return Err(format!("archive {i}: cur_row {row} is not below its {} rows", rra.rows));
        }
        cur_row.push(row);
    }
    let mut cdp = Vec::with_capacity(schema.archives.len() * schema.data_sources.len());
    for (i, rra) in schema.archives.iter().enumerate() {
        let pdps_in_cdp = pdp_index % rra.steps;
        for _ in &schema.data_sources {
            let value = r.read_f64::<LE>().map_err(short)?;
            let unknown_pdps = r.read_u64::<LE>().map_err(short)?;
            if unknown_pdps > pdps_in_cdp {
                return Err(format!(
                    "archive {i}: {unknown_pdps} unknown PDPs exceed the {pdps_in_cdp} PDPs of the open row"
                ));
            }
            let primary = r.read_f64::<LE>().map_err(short)?;
            let secondary = r.read_f64::<LE>().map_err(short)?;
            cdp.push(CdpState {
                value,
                unknown_pdps,
                primary,
                secondary,
            });
        }
    }
    let state = State {
        last_update: Timestamp { sec, usec },
        ds,
        cur_row,
        cdp,
    };
    Ok((seq, state))
}
