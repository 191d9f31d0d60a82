//! Reading RRDtool's own files (the x86-64 Linux layout, versions 0001 to
//! 0005) without librrd, keeping every bit of state: last update, PDP and CDP
//! preparation, ring positions and rows. Importing one gives a database that
//! continues exactly as RRDtool would (`rrd-binary-format.md`).
//!
//! Files from other architectures (a different float cookie), COMPUTE data
//! sources and Holt-Winters archives are refused with a clear reason.
#![deny(clippy::indexing_slicing)]

use crate::state::DNAN;
use std::path::Path;

use byteorder::{LittleEndian as LE, ReadBytesExt};

use crate::database::{CreateOptions, Rrd};
use crate::error::{Error, Result};
use crate::schema::{Archive, Cf, DataSource, DsType, Schema};
use crate::state::{CdpState, DsState, LastDs, State, Timestamp};

/// RRDtool's float cookie, which also identifies the byte order and layout.
const FLOAT_COOKIE: f64 = 8.642135e130;
const STAT_HEAD_LEN: usize = 128;
const DEF_LEN: usize = 120;
const PDP_PREP_LEN: usize = 112;
const CDP_PREP_LEN: usize = 80;
const NAME_LEN: usize = 20;

/// An RRDtool database read into memory.
#[derive(Debug, Clone, PartialEq)]
pub struct NativeRrd {
    /// The file's version text (`"0003"`, ...).
    pub version: String,
    /// Step, data sources and archives.
    pub schema: Schema,
    /// Last update and consolidation state.
    pub state: State,
    /// Per archive, its rows in ring order (slot 0 first), `rows x data sources` values.
    pub rows: Vec<Vec<f64>>,
}

fn bad(what: impl Into<String>) -> Error {
    Error::Corrupt {
        path: Default::default(),
        what: what.into(),
    }
}

fn short(_: std::io::Error) -> Error {
    bad("file too small for its header")
}

/// A NUL-terminated text field.
fn text(field: &[u8]) -> Result<String> {
    let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
    std::str::from_utf8(field.get(..end).unwrap_or_default())
        .map(str::to_owned)
        .map_err(|_| bad("a text field is not ASCII"))
}

fn section<'a>(bytes: &'a [u8], at: usize, len: usize, what: &str) -> Result<&'a [u8]> {
    at.checked_add(len)
        .and_then(|end| bytes.get(at..end))
        .ok_or_else(|| bad(format!("file too small: {what} at offset {at}")))
}

/// Parses an RRDtool file image.
///
/// ```
/// let err = rrdcore::native::read(b"not an rrd").unwrap_err();
/// assert!(err.to_string().contains("not an RRD file"));
/// ```
pub fn read(bytes: &[u8]) -> Result<NativeRrd> {
    let head = section(bytes, 0, STAT_HEAD_LEN, "header").map_err(|_| bad("not an RRD file (too short)"))?;
    if head.get(..4) != Some(b"RRD\0".as_slice()) {
        return Err(bad("not an RRD file (no RRD cookie)"));
    }
    let version = text(head.get(4..9).unwrap_or_default())?;
    let version_num: u32 = version.trim().parse().map_err(|_| bad(format!("bad version {version:?}")))?;
    if !(1..=5).contains(&version_num) {
        return Err(bad(format!("unsupported RRD version {version}")));
    }
    let mut r = head.get(16..).unwrap_or_default();
    let cookie = r.read_f64::<LE>().map_err(short)?;
    if cookie.to_bits() != FLOAT_COOKIE.to_bits() {
        return Err(bad("this RRD was created on another architecture (float cookie mismatch)"));
    }
    let ds_cnt = r.read_u64::<LE>().map_err(short)?;
    let rra_cnt = r.read_u64::<LE>().map_err(short)?;
    let step = r.read_u64::<LE>().map_err(short)?;
    let (d, ra) = (count(ds_cnt, "data source")?, count(rra_cnt, "archive")?);
    let mut at = STAT_HEAD_LEN;
    let mut data_sources = Vec::with_capacity(d);
    for i in 0..d {
        data_sources.push(ds_def(section(bytes, at, DEF_LEN, "ds_def")?, i)?);
        at += DEF_LEN;
    }
    let mut archives = Vec::with_capacity(ra);
    for i in 0..ra {
        archives.push(rra_def(section(bytes, at, DEF_LEN, "rra_def")?, i)?);
        at += DEF_LEN;
    }
    let schema = Schema { step, data_sources, archives };
    schema.validate().map_err(|e| bad(format!("unsupported or invalid definition: {e}")))?;
    let mut r = section(bytes, at, if version_num >= 3 { 16 } else { 8 }, "live_head")?;
    let sec = r.read_i64::<LE>().map_err(short)?;
    let usec = if version_num >= 3 { r.read_i64::<LE>().map_err(short)? } else { 0 };
    at += if version_num >= 3 { 16 } else { 8 };
    let usec = u32::try_from(usec).ok().filter(|u| *u < 1_000_000).ok_or_else(|| bad(format!("last_up_usec {usec} out of range")))?;
    let mut ds = Vec::with_capacity(d);
    for _ in 0..d {
        let p = section(bytes, at, PDP_PREP_LEN, "pdp_prep")?;
        let last = text(p.get(..30).unwrap_or_default())?;
        let mut r = p.get(32..).unwrap_or_default();
        let unknown_sec = r.read_u64::<LE>().map_err(short)?;
        let pdp_value = r.read_f64::<LE>().map_err(short)?;
        let last_ds = LastDs::from_stored(last.as_bytes()).ok_or_else(|| bad("last_ds longer than 29 bytes"))?;
        ds.push(DsState { last_ds, pdp_value, unknown_sec });
        at += PDP_PREP_LEN;
    }
    let mut cdp = Vec::with_capacity(d * ra);
    for _ in 0..d * ra {
        let p = section(bytes, at, CDP_PREP_LEN, "cdp_prep")?;
        let mut r = p;
        let value = r.read_f64::<LE>().map_err(short)?;
        let unknown_pdps = r.read_u64::<LE>().map_err(short)?;
        let mut r = p.get(64..).unwrap_or_default();
        let primary = r.read_f64::<LE>().map_err(short)?;
        let secondary = r.read_f64::<LE>().map_err(short)?;
        cdp.push(CdpState { value, unknown_pdps, primary, secondary });
        at += CDP_PREP_LEN;
    }
    let mut cur_row = Vec::with_capacity(ra);
    for (i, rra) in schema.archives.iter().enumerate() {
        let row = section(bytes, at, 8, "rra_ptr")?.read_u64::<LE>().map_err(short)?;
        if row >= rra.rows {
            return Err(bad(format!("archive {i}: cur_row {row} is not below its {} rows", rra.rows)));
        }
        cur_row.push(row);
        at += 8;
    }
    let mut rows = Vec::with_capacity(ra);
    for rra in &schema.archives {
        let n = usize::try_from(rra.rows).map_err(|_| bad("too many rows"))? * d;
        let raw = section(bytes, at, n * 8, "data")?;
        rows.push(raw.chunks_exact(8).map(|c| c.try_into().map_or(DNAN, f64::from_le_bytes)).collect());
        at += n * 8;
    }
    let state = State { last_update: Timestamp { sec, usec }, ds, cur_row, cdp };
    Ok(NativeRrd { version, schema, state, rows })
}

/// Copies `bytes` into `buf` at `at` (text fields stay NUL-terminated:
/// callers pass names shorter than their fields).
fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(dest) = buf.get_mut(at..at + bytes.len()) {
        dest.copy_from_slice(bytes);
    }
}

fn count(n: u64, what: &str) -> Result<usize> {
    usize::try_from(n)
        .ok()
        .filter(|n| (1..=crate::schema::MAX_COUNT).contains(n))
        .ok_or_else(|| bad(format!("{what} count {n} out of range")))
}

fn ds_def(b: &[u8], i: usize) -> Result<DataSource> {
    let name = text(b.get(..NAME_LEN).unwrap_or_default())?;
    let kind_name = text(b.get(NAME_LEN..2 * NAME_LEN).unwrap_or_default())?;
    let kind = DsType::from_name(&kind_name).ok_or_else(|| {
        bad(format!("data source {i} ({name}): type {kind_name} is not supported (COMPUTE is not imported)"))
    })?;
    let mut r = b.get(40..).unwrap_or_default();
    let heartbeat = r.read_u64::<LE>().map_err(short)?;
    let min = r.read_f64::<LE>().map_err(short)?;
    let max = r.read_f64::<LE>().map_err(short)?;
    let limit = |v: f64| if v.is_nan() { None } else { Some(v) };
    Ok(DataSource { name, kind, heartbeat, min: limit(min), max: limit(max) })
}

fn rra_def(b: &[u8], i: usize) -> Result<Archive> {
    let cf_name = text(b.get(..NAME_LEN).unwrap_or_default())?;
    let cf = Cf::from_name(&cf_name)
        .ok_or_else(|| bad(format!("archive {i}: CF {cf_name} is not supported (Holt-Winters archives are not imported)")))?;
    let mut r = b.get(24..).unwrap_or_default();
    let rows = r.read_u64::<LE>().map_err(short)?;
    let steps = r.read_u64::<LE>().map_err(short)?;
    let xff = r.read_f64::<LE>().map_err(short)?;
    Ok(Archive { cf, xff, steps, rows })
}

impl NativeRrd {
    /// A database's definition, state and rows, as RRDtool holds them:
    /// version `0003`, or `0005` when a data source is DCOUNTER or DDERIVE
    /// (which RRDtool 1.x reads only from that version on).
    pub fn from_rrd(db: &Rrd) -> NativeRrd {
        let schema = db.schema().clone();
        let d = schema.data_sources.len();
        let rows = schema
            .archives
            .iter()
            .enumerate()
            .map(|(a, rra)| (0..rra.rows).flat_map(|row| (0..d).map(move |ds| (row, ds))).map(|(row, ds)| db.stored_value(a, row, ds).unwrap_or(DNAN)).collect())
            .collect();
        let newer = schema.data_sources.iter().any(|s| matches!(s.kind, DsType::DCounter | DsType::DDerive));
        NativeRrd { version: if newer { "0005" } else { "0003" }.into(), schema, state: db.state().clone(), rows }
    }

    /// RRDtool's file image of this database (the x86-64 Linux layout that
    /// [`read`] takes), for `rrdtool` and tools that read RRD files directly.
    pub fn to_bytes(&self) -> Vec<u8> {
        let d = self.schema.data_sources.len();
        let mut out = Vec::new();
        let mut head = [0u8; STAT_HEAD_LEN];
        put(&mut head, 0, b"RRD\0");
        put(&mut head, 4, self.version.as_bytes());
        put(&mut head, 16, &FLOAT_COOKIE.to_le_bytes());
        put(&mut head, 24, &(d as u64).to_le_bytes());
        put(&mut head, 32, &(self.schema.archives.len() as u64).to_le_bytes());
        put(&mut head, 40, &self.schema.step.to_le_bytes());
        out.extend_from_slice(&head);
        for ds in &self.schema.data_sources {
            let mut def = [0u8; DEF_LEN];
            put(&mut def, 0, ds.name.as_bytes());
            put(&mut def, NAME_LEN, ds.kind.name().as_bytes());
            put(&mut def, 40, &ds.heartbeat.to_le_bytes());
            put(&mut def, 48, &ds.min.unwrap_or(DNAN).to_le_bytes());
            put(&mut def, 56, &ds.max.unwrap_or(DNAN).to_le_bytes());
            out.extend_from_slice(&def);
        }
        for rra in &self.schema.archives {
            let mut def = [0u8; DEF_LEN];
            put(&mut def, 0, rra.cf.name().as_bytes());
            put(&mut def, 24, &rra.rows.to_le_bytes());
            put(&mut def, 32, &rra.steps.to_le_bytes());
            put(&mut def, 40, &rra.xff.to_le_bytes());
            out.extend_from_slice(&def);
        }
        out.extend_from_slice(&self.state.last_update.sec.to_le_bytes());
        if self.version.trim().parse::<u32>().is_ok_and(|v| v >= 3) {
            out.extend_from_slice(&i64::from(self.state.last_update.usec).to_le_bytes());
        }
        for ds in &self.state.ds {
            let mut prep = [0u8; PDP_PREP_LEN];
            put(&mut prep, 0, ds.last_ds.as_str().as_bytes());
            put(&mut prep, 32, &ds.unknown_sec.to_le_bytes());
            put(&mut prep, 40, &ds.pdp_value.to_le_bytes());
            out.extend_from_slice(&prep);
        }
        for cdp in &self.state.cdp {
            let mut prep = [0u8; CDP_PREP_LEN];
            put(&mut prep, 0, &cdp.value.to_le_bytes());
            put(&mut prep, 8, &cdp.unknown_pdps.to_le_bytes());
            put(&mut prep, 64, &cdp.primary.to_le_bytes());
            put(&mut prep, 72, &cdp.secondary.to_le_bytes());
            out.extend_from_slice(&prep);
        }
        for row in &self.state.cur_row {
            out.extend_from_slice(&row.to_le_bytes());
        }
        for rows in &self.rows {
            for v in rows {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        out
    }

    /// Writes this database as a new rrdcore file at `dest`, with the same
    /// state, ring positions and rows.
    pub fn import(&self, dest: impl AsRef<Path>, overwrite: bool) -> Result<Rrd> {
        Rrd::create_restored(dest, &self.schema, &self.state, &self.rows, overwrite)
    }

    /// The same, as an in-memory database.
    pub fn to_memory(&self) -> Result<Rrd> {
        let opts = CreateOptions {
            start: Some(crate::schema::MIN_START),
            cur_rows: Some(self.state.cur_row.clone()),
            ..CreateOptions::default()
        };
        let mut db = Rrd::create_in_memory(&self.schema, &opts)?;
        db.restore_state(&self.state, &self.rows)?;
        Ok(db)
    }
}
