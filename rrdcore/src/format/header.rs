//! The static header: magic, version and schema, checksummed.
//!
//! Byte map (all little-endian; `D` data sources, `R` archives):
//!
//! ```text
//! offset        size  field
//! 0             8     MAGIC "RRDCORE\0"
//! 8             4     format version (u32) = 1
//! 12            4     header length in bytes, CRC included (u32)
//! 16            4     D: data source count (u32)
//! 20            4     R: archive count (u32)
//! 24            8     base step in seconds (u64)
//! 32            D*48  data sources:
//!                       +0  20  name, UTF-8, NUL-padded
//!                       +20 1   type: 0 GAUGE 1 COUNTER 2 DERIVE 3 DCOUNTER 4 DDERIVE 5 ABSOLUTE
//!                       +21 3   reserved, zero
//!                       +24 8   heartbeat in seconds (u64)
//!                       +32 8   min (f64; NaN = no limit)
//!                       +40 8   max (f64; NaN = no limit)
//! 32+48D        R*32  archives:
//!                       +0  1   CF: 0 AVERAGE 1 MIN 2 MAX 3 LAST
//!                       +1  7   reserved, zero
//!                       +8  8   xff (f64)
//!                       +16 8   PDPs per row (u64)
//!                       +24 8   rows (u64)
//! 32+48D+32R    4     CRC32 of every byte before it
//! 36+48D+32R    4     reserved, zero (keeps what follows 8-aligned)
//! ```
#![deny(clippy::indexing_slicing)]

use crate::state::DNAN;
use byteorder::{LittleEndian as LE, ReadBytesExt};

use super::{put_f64, put_u32, put_u64};

use crate::schema::{Archive, Cf, DataSource, DsType, MAX_DS_NAME, Schema};

/// File magic.
pub(crate) const MAGIC: [u8; 8] = *b"RRDCORE\0";
/// The format version this build writes and reads.
pub(crate) const VERSION: u32 = 1;

const MAGIC_OFFSET: usize = 0;
const VERSION_OFFSET: usize = 8;
const FIXED_LEN: u64 = 32;
const DS_LEN: u64 = 48;
const RRA_LEN: u64 = 32;
const NAME_LEN: usize = MAX_DS_NAME + 1;
const TRAILER_LEN: u64 = 8;

/// Header length for `ds` data sources and `rra` archives.
pub(crate) fn len(ds: u64, rra: u64) -> u64 {
    FIXED_LEN + DS_LEN * ds + RRA_LEN * rra + TRAILER_LEN
}

/// Encodes the header of a validated schema.
pub(crate) fn encode(schema: &Schema) -> Vec<u8> {
    let ds_count = schema.data_sources.len();
    let rra_count = schema.archives.len();
    let total = len(ds_count as u64, rra_count as u64);
    let mut out = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    out.extend_from_slice(&MAGIC);
    put_u32(&mut out, VERSION);
    put_u32(&mut out, u32::try_from(total).unwrap_or(u32::MAX));
    put_u32(&mut out, u32::try_from(ds_count).unwrap_or(u32::MAX));
    put_u32(&mut out, u32::try_from(rra_count).unwrap_or(u32::MAX));
    put_u64(&mut out, schema.step);
    for ds in &schema.data_sources {
        let mut name = [0u8; NAME_LEN];
        for (dst, b) in name.iter_mut().zip(ds.name.bytes()) {
            *dst = b;
        }
        out.extend_from_slice(&name);
        let code = DsType::ALL.iter().position(|k| *k == ds.kind).unwrap_or(0);
        out.push(u8::try_from(code).unwrap_or(0));
        out.extend_from_slice(&[0; 3]);
        put_u64(&mut out, ds.heartbeat);
        put_f64(&mut out, ds.min.unwrap_or(DNAN));
        put_f64(&mut out, ds.max.unwrap_or(DNAN));
    }
    for rra in &schema.archives {
        let code = Cf::ALL.iter().position(|c| *c == rra.cf).unwrap_or(0);
        out.push(u8::try_from(code).unwrap_or(0));
        out.extend_from_slice(&[0; 7]);
        put_f64(&mut out, rra.xff);
        put_u64(&mut out, rra.steps);
        put_u64(&mut out, rra.rows);
    }
    let crc = crc32fast::hash(&out);
    put_u32(&mut out, crc);
    put_u32(&mut out, 0);
    out
}


/// Why a header could not be decoded.
#[derive(Debug)]
pub(crate) enum HeaderError {
    /// Not one of our files, or damaged beyond recognition.
    Corrupt(String),
    /// A version this build does not read.
    Version(u32),
}

fn corrupt(what: impl Into<String>) -> HeaderError {
    HeaderError::Corrupt(what.into())
}

fn short(_: std::io::Error) -> HeaderError {
    corrupt("file shorter than its header")
}

/// Decodes and checks the static header at the start of `bytes`.
/// Returns the schema (validated) and the header length.
pub(crate) fn decode(bytes: &[u8]) -> Result<(Schema, u64), HeaderError> {
    let magic = bytes.get(MAGIC_OFFSET..MAGIC_OFFSET + MAGIC.len());
    if magic != Some(&MAGIC[..]) {
        return Err(corrupt("bad magic: not an rrdcore database"));
    }
    let smallest = len(1, 1);
    if (bytes.len() as u64) < smallest {
        return Err(corrupt(format!("file is {} bytes, shorter than the smallest header ({smallest})", bytes.len())));
    }
    let mut r = bytes.get(VERSION_OFFSET..).unwrap_or_default();
    let version = r.read_u32::<LE>().map_err(short)?;
    if version == 0 {
        return Err(corrupt("format version 0 (no such version: a damaged header)"));
    }
    if version != VERSION {
        return Err(HeaderError::Version(version));
    }
    let header_len = u64::from(r.read_u32::<LE>().map_err(short)?);
    let ds_count = u64::from(r.read_u32::<LE>().map_err(short)?);
    let rra_count = u64::from(r.read_u32::<LE>().map_err(short)?);
    if header_len != len(ds_count, rra_count) {
        return Err(corrupt(format!(
            "header length {header_len} does not match {ds_count} data sources and {rra_count} archives"
        )));
    }
    let header_bytes = usize::try_from(header_len)
        .ok()
        .and_then(|n| bytes.get(..n))
        .ok_or_else(|| corrupt(format!("file shorter than its header ({header_len} bytes)")))?;
    let (body, trailer) = header_bytes.split_at(header_bytes.len().saturating_sub(8));
    let mut t = trailer;
    let stored = t.read_u32::<LE>().map_err(short)?;
    let actual = crc32fast::hash(body);
    if stored != actual {
        return Err(corrupt(format!(
            "header checksum mismatch (stored {stored:#010x}, computed {actual:#010x})"
        )));
    }
    let mut r = body.get(24..).unwrap_or_default();
    let step = r.read_u64::<LE>().map_err(short)?;
    let mut data_sources = Vec::new();
    for i in 0..ds_count {
        data_sources.push(decode_ds(&mut r, i)?);
    }
    let mut archives = Vec::new();
    for i in 0..rra_count {
        archives.push(decode_rra(&mut r, i)?);
    }
    let schema = Schema {
        step,
        data_sources,
        archives,
    };
    schema
        .validate()
        .map_err(|e| corrupt(format!("invalid schema: {e}")))?;
    Ok((schema, header_len))
}

fn decode_ds(r: &mut &[u8], index: u64) -> Result<DataSource, HeaderError> {
    let mut name = [0u8; NAME_LEN];
    std::io::Read::read_exact(r, &mut name).map_err(short)?;
    let end = name.iter().position(|b| *b == 0).unwrap_or(NAME_LEN);
    let name = std::str::from_utf8(name.get(..end).unwrap_or_default())
        .map_err(|_| corrupt(format!("data source {index}: name is not UTF-8")))?
        .to_owned();
    let code = r.read_u8().map_err(short)?;
    let kind = DsType::ALL
        .get(usize::from(code))
        .copied()
        .ok_or_else(|| corrupt(format!("data source {index}: unknown type code {code}")))?;
    let mut reserved = [0u8; 3];
    std::io::Read::read_exact(r, &mut reserved).map_err(short)?;
    let heartbeat = r.read_u64::<LE>().map_err(short)?;
    let min = r.read_f64::<LE>().map_err(short)?;
    let max = r.read_f64::<LE>().map_err(short)?;
    let limit = |v: f64| if v.is_nan() { None } else { Some(v) };
    Ok(DataSource {
        name,
        kind,
        heartbeat,
        min: limit(min),
        max: limit(max),
    })
}

fn decode_rra(r: &mut &[u8], index: u64) -> Result<Archive, HeaderError> {
    let code = r.read_u8().map_err(short)?;
    let cf = Cf::ALL
        .get(usize::from(code))
        .copied()
        .ok_or_else(|| corrupt(format!("archive {index}: unknown CF code {code}")))?;
    let mut reserved = [0u8; 7];
    std::io::Read::read_exact(r, &mut reserved).map_err(short)?;
    let xff = r.read_f64::<LE>().map_err(short)?;
    let steps = r.read_u64::<LE>().map_err(short)?;
    let rows = r.read_u64::<LE>().map_err(short)?;
    Ok(Archive { cf, xff, steps, rows })
}
