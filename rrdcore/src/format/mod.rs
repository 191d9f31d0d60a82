//! The on-disk format: a static header, two live-state slots, then the rows.
//!
//! Every integer and float is little-endian with a fixed width; there is no
//! implicit padding, so a file is the same bytes on every machine. The full
//! byte map and version history are in `docs/format.md`.
//!
//! ```text
//! 0               static header (schema), CRC32 at its end
//! header_len      live slot A  } the newer valid slot (by sequence number)
//! + slot_len      live slot B  } holds the state; each has its own CRC32
//! data_offset     rows: archive by archive, row by row, one f64 per data source
//! ```

pub(crate) mod header;
pub(crate) mod live;

use byteorder::{LittleEndian as LE, WriteBytesExt};

use crate::schema::Schema;

// Little-endian writers for the encoders; writing to a Vec cannot fail.
pub(crate) fn put_u32(out: &mut Vec<u8>, v: u32) {
    let _ = out.write_u32::<LE>(v);
}
pub(crate) fn put_u64(out: &mut Vec<u8>, v: u64) {
    let _ = out.write_u64::<LE>(v);
}
pub(crate) fn put_f64(out: &mut Vec<u8>, v: f64) {
    let _ = out.write_f64::<LE>(v);
}

/// Bytes per stored value.
pub(crate) const VALUE_LEN: u64 = 8;

/// Where everything is in a file of a given schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Length of the static header, CRC included.
    pub header_len: u64,
    /// Length of one live slot, CRC included.
    pub slot_len: u64,
    /// Offset of the first row.
    pub data_offset: u64,
    /// Offset of each archive's first row.
    pub rra_offsets: Vec<u64>,
    /// Values per row (the number of data sources).
    pub ds_count: u64,
    /// Total file length.
    pub file_len: u64,
}

impl Layout {
    /// The layout of a (validated) schema.
    pub(crate) fn of(schema: &Schema) -> Self {
        let ds_count = schema.data_sources.len() as u64;
        let rra_count = schema.archives.len() as u64;
        let header_len = header::len(ds_count, rra_count);
        let slot_len = live::len(ds_count, rra_count);
        let data_offset = header_len + 2 * slot_len;
        let mut rra_offsets = Vec::with_capacity(schema.archives.len());
        let mut offset = data_offset;
        for rra in &schema.archives {
            rra_offsets.push(offset);
            offset += rra.rows * ds_count * VALUE_LEN;
        }
        Layout {
            header_len,
            slot_len,
            data_offset,
            rra_offsets,
            ds_count,
            file_len: offset,
        }
    }

    /// Offset of the slot with index 0 or 1.
    pub(crate) fn slot_offset(&self, slot: usize) -> u64 {
        self.header_len + self.slot_len * slot as u64
    }

    /// Offset of one stored value. The caller keeps the indices in range.
    pub(crate) fn value_offset(&self, rra: usize, row: u64, ds: usize) -> u64 {
        let base = self.rra_offsets.get(rra).copied().unwrap_or(self.file_len);
        base + (row * self.ds_count + ds as u64) * VALUE_LEN
    }
}
