//! The bytes of a journal segment: encoding blocks and reading them back.
//!
//! ```text
//! segment header (16 bytes)
//!   0..8    SEGMENT_MAGIC  b"RRDWAL\0\x01" (the last byte is the format version)
//!   8..16   sequence       u64 LE, the segment's number (also its file name)
//! block (repeated until the end of the file)
//!   0..4    BLOCK_MAGIC    u32 LE 0x4B4C_4257 ("WBLK")
//!   4..8    length         u32 LE, payload bytes (at most MAX_BLOCK)
//!   8..12   crc            u32 LE, CRC-32 of bytes 4..8 then the payload
//!   12..    payload        records, back to back
//! record
//!   0x01 DEFINE  id: varint, length: varint, text: the series' canonical text
//!   0x04 DEFINE_COUNTER  the same, for a series whose database is to be
//!                created with COUNTER data sources (a perfdata `c` value)
//!   0x02 FLOAT   id: varint, dt: zigzag varint, value: f64 LE (8 bytes)
//!   0x03 INT     id: varint, dt: zigzag varint, value: zigzag varint (i64)
//! ```
//!
//! `id`s are defined once per segment (by a DEFINE before their first point).
//! `dt` is the point's time in milliseconds minus the previous point's time
//! in the same block (the first point of a block counts from 0). A value
//! that is an integer (and not -0) is written as INT: 5-8 bytes a point for
//! a typical counter, 12-14 for a float.

/// First bytes of a segment file; the last byte is the format version.
pub const SEGMENT_MAGIC: [u8; 8] = *b"RRDWAL\x00\x01";
/// Bytes of the segment header.
pub const SEGMENT_HEADER: usize = 16;
/// First bytes of every block.
pub const BLOCK_MAGIC: u32 = 0x4B4C_4257;
/// Bytes of a block header.
pub const BLOCK_HEADER: usize = 12;
/// Largest payload a block may have (a bigger length is damage).
pub const MAX_BLOCK: usize = 8 << 20;
/// Payload size after which an encoder starts a new block.
pub const TARGET_BLOCK: usize = 1 << 20;
/// Longest series text the server journals (a longer name is refused
/// before it is acknowledged). With it, no record is over 64 KiB + 21
/// bytes, so no block the encoder makes is over `TARGET_BLOCK` plus one
/// record: far below [`MAX_BLOCK`], the most a reader takes.
pub const MAX_SERIES_TEXT: usize = 64 << 10;

const MAGIC_OFFSET: usize = 0;
const LENGTH_OFFSET: usize = 4;
const CRC_OFFSET: usize = 8;

const DEFINE: u8 = 1;
const FLOAT: u8 = 2;
const INT: u8 = 3;
const DEFINE_COUNTER: u8 = 4;

/// The header of segment `seq`.
pub fn segment_header(seq: u64) -> [u8; SEGMENT_HEADER] {
    let mut h = [0u8; SEGMENT_HEADER];
    let (magic, rest) = h.split_at_mut(8);
    magic.copy_from_slice(&SEGMENT_MAGIC);
    rest.copy_from_slice(&seq.to_le_bytes());
    h
}

/// Builds blocks in a buffer: [`BlockWriter::define`] and
/// [`BlockWriter::point`] add records, [`BlockWriter::seal`] closes the
/// current block (also done when a block passes [`TARGET_BLOCK`]).
#[derive(Debug, Default)]
pub struct BlockWriter {
    buf: Vec<u8>,
    /// Where the open block's header starts, if a block is open.
    open: Option<usize>,
    prev_ms: u64,
}

impl BlockWriter {
    /// The sealed bytes (call [`BlockWriter::seal`] first).
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Empties the buffer, keeping its allocation.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.open = None;
    }

    fn begin(&mut self) {
        if self.open.is_none() {
            self.open = Some(self.buf.len());
            self.buf.extend_from_slice(&[0u8; BLOCK_HEADER]);
            self.prev_ms = 0;
        }
    }

    /// Adds a DEFINE record: `id` names `text` from here to the segment's
    /// end (a DEFINE_COUNTER for a `counter` series).
    pub fn define(&mut self, id: u64, text: &str, counter: bool) {
        self.begin();
        self.buf.push(if counter { DEFINE_COUNTER } else { DEFINE });
        put_varint(&mut self.buf, id);
        put_varint(&mut self.buf, text.len() as u64);
        self.buf.extend_from_slice(text.as_bytes());
    }

    /// Adds a point of series `id`.
    pub fn point(&mut self, id: u64, ms: u64, value: f64) {
        self.begin();
        let dt = zigzag(ms.wrapping_sub(self.prev_ms).cast_signed());
        self.prev_ms = ms;
        match exact_int(value) {
            Some(i) => {
                self.buf.push(INT);
                put_varint(&mut self.buf, id);
                put_varint(&mut self.buf, dt);
                put_varint(&mut self.buf, zigzag(i));
            }
            None => {
                self.buf.push(FLOAT);
                put_varint(&mut self.buf, id);
                put_varint(&mut self.buf, dt);
                self.buf.extend_from_slice(&value.to_le_bytes());
            }
        }
        if self.open.is_some_and(|start| self.buf.len() - start >= TARGET_BLOCK) {
            self.seal();
        }
    }

    /// Closes the open block: writes its length and checksum.
    pub fn seal(&mut self) {
        let Some(start) = self.open.take() else { return };
        let payload_len = self.buf.len() - start - BLOCK_HEADER;
        let len = u32::try_from(payload_len).unwrap_or(u32::MAX).to_le_bytes();
        let mut crc = crc32fast::Hasher::new();
        crc.update(&len);
        crc.update(self.buf.get(start + BLOCK_HEADER..).unwrap_or_default());
        if let Some(h) = self.buf.get_mut(start..start + BLOCK_HEADER) {
            h[MAGIC_OFFSET..LENGTH_OFFSET].copy_from_slice(&BLOCK_MAGIC.to_le_bytes());
            h[LENGTH_OFFSET..CRC_OFFSET].copy_from_slice(&len);
            h[CRC_OFFSET..BLOCK_HEADER].copy_from_slice(&crc.finalize().to_le_bytes());
        }
    }
}

/// A value written as INT when it is an integer that reads back the same.
fn exact_int(v: f64) -> Option<i64> {
    if v.fract() != 0.0 || !v.is_finite() || (v == 0.0 && v.is_sign_negative()) || v.abs() >= 9.0e15 {
        return None;
    }
    #[expect(clippy::cast_possible_truncation, reason = "an integral value below 2^53")]
    Some(v as i64)
}

fn zigzag(i: i64) -> u64 {
    ((i << 1) ^ (i >> 63)).cast_unsigned()
}

fn unzigzag(u: u64) -> i64 {
    (u >> 1).cast_signed() ^ -((u & 1).cast_signed())
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        #[expect(clippy::cast_possible_truncation, reason = "the low 7 bits")]
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    #[expect(clippy::cast_possible_truncation, reason = "below 0x80")]
    out.push(v as u8);
}

/// Reads a varint at `*at`, moving past it.
fn get_varint(b: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*at)?;
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// One record as read back.
#[derive(Debug, Clone, PartialEq)]
pub enum Record<'a> {
    /// `id` names the series `text`.
    Define {
        /// The segment-local id.
        id: u64,
        /// The series' canonical text.
        text: &'a str,
        /// A counter series (DEFINE_COUNTER).
        counter: bool,
    },
    /// A point.
    Point {
        /// The segment-local id of its series.
        id: u64,
        /// Milliseconds since the epoch.
        ms: u64,
        /// The value.
        value: f64,
    },
}

/// Bytes of a segment that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Offset of the first bad byte.
    pub offset: u64,
    /// Bytes skipped.
    pub skipped: u64,
    /// What was wrong.
    pub reason: String,
    /// Whether the bad bytes run to the end of the file with no intact block
    /// after them: a write cut short by a crash, not damage in the middle.
    pub torn_tail: bool,
}

/// What a segment held.
#[derive(Debug, Default)]
pub struct Scan {
    /// The sequence number in its header.
    pub seq: u64,
    /// Unreadable stretches, in file order.
    pub damage: Vec<Damage>,
}

/// Reads a whole segment: each intact block's records go to `on_record`,
/// damaged stretches are skipped (reading resumes at the next intact block)
/// and listed. A bad segment header is an error.
pub fn read_segment<'a>(bytes: &'a [u8], mut on_record: impl FnMut(Record<'a>)) -> Result<Scan, String> {
    let header = bytes.get(..SEGMENT_HEADER).ok_or_else(|| format!("segment header cut short ({} bytes)", bytes.len()))?;
    if header.get(..8) != Some(&SEGMENT_MAGIC[..]) {
        return Err("not a journal segment (bad magic or format version)".into());
    }
    let mut seq = [0u8; 8];
    seq.copy_from_slice(header.get(8..16).unwrap_or(&[0; 8]));
    let mut scan = Scan { seq: u64::from_le_bytes(seq), damage: Vec::new() };
    let mut at = SEGMENT_HEADER;
    let mut records = Vec::new();
    while at < bytes.len() {
        records.clear();
        match read_block(bytes, at, &mut records) {
            Ok(next) => {
                records.drain(..).for_each(&mut on_record);
                at = next;
            }
            Err(reason) => {
                let resume = next_intact(bytes, at + 1);
                let end = resume.unwrap_or(bytes.len());
                scan.damage.push(Damage { offset: at as u64, skipped: (end - at) as u64, reason, torn_tail: resume.is_none() });
                at = end;
            }
        }
    }
    Ok(scan)
}

/// The first offset from `from` where an intact block starts.
fn next_intact(bytes: &[u8], from: usize) -> Option<usize> {
    let magic = BLOCK_MAGIC.to_le_bytes();
    let mut scratch = Vec::new();
    (from..bytes.len()).find(|i| {
        bytes.get(*i..i + 4) == Some(&magic[..]) && {
            scratch.clear();
            read_block(bytes, *i, &mut scratch).is_ok()
        }
    })
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let mut w = [0u8; 4];
    w.copy_from_slice(b.get(at..at + 4)?);
    Some(u32::from_le_bytes(w))
}

/// Reads the block at `at` into `out`; the offset after it.
fn read_block<'a>(b: &'a [u8], at: usize, out: &mut Vec<Record<'a>>) -> Result<usize, String> {
    let magic = u32_at(b, at + MAGIC_OFFSET).ok_or("block header cut short")?;
    if magic != BLOCK_MAGIC {
        return Err(format!("bad block magic {magic:#010x}"));
    }
    let len = u32_at(b, at + LENGTH_OFFSET).ok_or("block header cut short")?;
    let crc = u32_at(b, at + CRC_OFFSET).ok_or("block header cut short")?;
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len > MAX_BLOCK {
        return Err(format!("block length {len} over the limit {MAX_BLOCK}"));
    }
    let start = at + BLOCK_HEADER;
    let payload = b.get(start..start + len).ok_or_else(|| format!("block of {len} bytes cut short at {} bytes", b.len() - start))?;
    let mut h = crc32fast::Hasher::new();
    h.update(b.get(at + LENGTH_OFFSET..at + CRC_OFFSET).unwrap_or_default());
    h.update(payload);
    let actual = h.finalize();
    if actual != crc {
        return Err(format!("block checksum {actual:#010x} does not match {crc:#010x}"));
    }
    read_records(payload, out)?;
    Ok(start + len)
}

/// Decodes a block's payload (its checksum already matched).
fn read_records<'a>(p: &'a [u8], out: &mut Vec<Record<'a>>) -> Result<(), String> {
    let mut at = 0;
    let mut prev_ms = 0u64;
    let cut = || "record cut short".to_owned();
    while let Some(tag) = p.get(at) {
        at += 1;
        let id = get_varint(p, &mut at).ok_or_else(cut)?;
        match *tag {
            DEFINE | DEFINE_COUNTER => {
                let len = usize::try_from(get_varint(p, &mut at).ok_or_else(cut)?).unwrap_or(usize::MAX);
                let bytes = p.get(at..at.saturating_add(len)).ok_or_else(cut)?;
                let text = std::str::from_utf8(bytes).map_err(|_| "series text is not UTF-8".to_owned())?;
                at += len;
                out.push(Record::Define { id, text, counter: *tag == DEFINE_COUNTER });
            }
            FLOAT | INT => {
                let dt = unzigzag(get_varint(p, &mut at).ok_or_else(cut)?);
                let ms = prev_ms.wrapping_add(dt.cast_unsigned());
                prev_ms = ms;
                let value = if *tag == FLOAT {
                    let mut w = [0u8; 8];
                    w.copy_from_slice(p.get(at..at + 8).ok_or_else(cut)?);
                    at += 8;
                    f64::from_le_bytes(w)
                } else {
                    #[expect(clippy::cast_precision_loss, reason = "written only for values below 2^53")]
                    let v = unzigzag(get_varint(p, &mut at).ok_or_else(cut)?) as f64;
                    v
                };
                out.push(Record::Point { id, ms, value });
            }
            other => return Err(format!("unknown record type {other}")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(points: &[(u64, u64, f64)]) -> Vec<u8> {
        let mut w = BlockWriter::default();
        w.define(0, "a{h=x}", false);
        w.define(1, "b{}", true);
        for (id, ms, v) in points {
            w.point(*id, *ms, *v);
        }
        w.seal();
        let mut out = segment_header(7).to_vec();
        out.extend_from_slice(w.bytes());
        out
    }

    fn read(bytes: &[u8]) -> (Vec<(u64, u64, u64)>, Scan) {
        let mut got = Vec::new();
        let scan = read_segment(bytes, |r| {
            if let Record::Point { id, ms, value } = r {
                got.push((id, ms, value.to_bits()));
            }
        })
        .unwrap();
        (got, scan)
    }

    #[test]
    fn round_trip_and_size() {
        let pts: Vec<(u64, u64, f64)> = (0..1000u64).map(|i| (i % 2, 1_700_000_000_000 + i * 15_000, if i % 3 == 0 { i as f64 } else { i as f64 + 0.25 })).collect();
        let mut odd = pts.clone();
        odd.extend([(0, 5, -0.0), (1, 0, f64::MAX), (0, u64::MAX, -3.0), (1, 3, 1e300), (0, 9, -9.0e15)]);
        let bytes = segment(&odd);
        let (got, scan) = read(&bytes);
        assert_eq!(scan.seq, 7);
        assert!(scan.damage.is_empty());
        let want: Vec<(u64, u64, u64)> = odd.iter().map(|(i, m, v)| (*i, *m, v.to_bits())).collect();
        assert_eq!(got, want);
        // Points of a steady collector cost well under 24 bytes each.
        assert!(segment(&pts).len() < 1000 * 12, "{}", segment(&pts).len());
    }

    #[test]
    fn every_cut_reads_a_prefix() {
        let pts: Vec<(u64, u64, f64)> = (0..50u64).map(|i| (0, 1000 * i, i as f64)).collect();
        let mut w = BlockWriter::default();
        w.define(0, "a{}", false);
        let mut full = segment_header(1).to_vec();
        for p in &pts {
            w.point(p.0, p.1, p.2);
            w.seal(); // one block a point
        }
        full.extend_from_slice(w.bytes());
        for cut in SEGMENT_HEADER..full.len() {
            let (got, scan) = read(&full[..cut]);
            assert!(got.len() <= pts.len());
            assert!(scan.damage.iter().all(|d| d.torn_tail), "cut {cut}: {:?}", scan.damage);
            for (k, g) in got.iter().enumerate() {
                assert_eq!(g.1, pts[k].1);
            }
        }
        assert!(read_segment(&full[..10], |_| {}).is_err());
    }

    #[test]
    fn a_flipped_byte_loses_only_its_block() {
        let mut w = BlockWriter::default();
        w.define(0, "a{}", false);
        let mut ends = Vec::new();
        for i in 0..30u64 {
            w.point(0, i, i as f64);
            if i % 10 == 9 {
                w.seal();
                ends.push(SEGMENT_HEADER + w.bytes().len());
            }
        }
        let mut full = segment_header(1).to_vec();
        full.extend_from_slice(w.bytes());
        for pos in ends[0]..ends[1] {
            let mut bad = full.clone();
            bad[pos] ^= 0x40;
            let (got, scan) = read(&bad);
            assert_eq!(scan.damage.len(), 1, "flip at {pos}");
            assert!(!scan.damage[0].torn_tail);
            let times: Vec<u64> = got.iter().map(|g| g.1).collect();
            assert_eq!(times, (0..10).chain(20..30).collect::<Vec<u64>>(), "flip at {pos}");
        }
    }

    #[test]
    fn zeroed_page_and_garbage() {
        let pts: Vec<(u64, u64, f64)> = (0..2000u64).map(|i| (0, i, 0.5)).collect();
        let mut bytes = segment(&pts);
        let n = bytes.len();
        bytes[100..(100 + 4096).min(n)].fill(0);
        let (got, scan) = read(&bytes);
        assert!(got.is_empty() && scan.damage.len() == 1 && scan.damage[0].torn_tail);
        let mut junk = segment_header(3).to_vec();
        junk.extend((0..5000u32).map(|i| (i * 7919 % 251) as u8));
        let (got, _) = read(&junk);
        assert!(got.is_empty());
    }

    #[test]
    fn varints() {
        for v in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            let mut at = 0;
            assert_eq!(get_varint(&b, &mut at), Some(v));
            assert_eq!(at, b.len());
        }
        for i in [0i64, -1, 1, i64::MIN, i64::MAX] {
            assert_eq!(unzigzag(zigzag(i)), i);
        }
        assert_eq!(get_varint(&[0xff; 11], &mut 0), None);
    }
}
