//! Helpers for tests and fuzzing, not for applications.
#![deny(clippy::indexing_slicing)]

use crate::format::{Layout, header};

/// Recomputes the header and live-slot checksums of a database image in
/// place, as far as the header's counts allow, so that tests and fuzzers can
/// reach the validation behind the checksums with altered values.
pub fn reseal(bytes: &mut [u8]) {
    let (ds, rra) = (read_u32(bytes, 16), read_u32(bytes, 20));
    let (Some(ds), Some(rra)) = (ds, rra) else { return };
    let header_len = header::len(u64::from(ds), u64::from(rra));
    let slot_len = crate::format::live::len(u64::from(ds), u64::from(rra));
    fix(bytes, 0, header_len);
    fix(bytes, header_len, slot_len);
    fix(bytes, header_len + slot_len, slot_len);
}

/// Where the rows start in an image with this header (`None` if it does not decode).
pub fn data_offset(bytes: &[u8]) -> Option<u64> {
    header::decode(bytes).ok().map(|(schema, _)| Layout::of(&schema).data_offset)
}

/// The golden-vector directory the tests run: `RRD_VECTORS_DIR` when set
/// (a relative path is also tried from the workspace root, since cargo runs
/// tests from the package directory), else `../shared/vectors` beside the
/// checkout when it exists, else the subset committed in `rrdcore/tests/vectors`.
pub fn vectors_dir() -> std::path::PathBuf {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    if let Some(dir) = std::env::var_os("RRD_VECTORS_DIR") {
        let dir = std::path::PathBuf::from(dir);
        let from_root = manifest.join("..").join(&dir);
        return if dir.is_relative() && !dir.is_dir() && from_root.is_dir() { from_root } else { dir };
    }
    let shared = manifest.join("../../shared/vectors");
    if shared.is_dir() { shared } else { manifest.join("tests/vectors") }
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 4)?;
    Some(u32::from_le_bytes(b.try_into().ok()?))
}

/// Writes the CRC32 of `start .. start+len-8` at `start+len-8`.
fn fix(bytes: &mut [u8], start: u64, len: u64) {
    let (Ok(start), Ok(len)) = (usize::try_from(start), usize::try_from(len)) else { return };
    let Some(region) = bytes.get_mut(start..start.saturating_add(len)) else { return };
    let body_len = region.len().saturating_sub(8);
    let crc = crc32fast::hash(region.get(..body_len).unwrap_or_default());
    if let Some(dst) = region.get_mut(body_len..body_len + 4) {
        dst.copy_from_slice(&crc.to_le_bytes());
    }
}
