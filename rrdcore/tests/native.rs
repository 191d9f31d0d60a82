//! Reading RRDtool's own files: what is refused, and with what reason.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]
#![allow(clippy::big_endian_bytes, reason = "a big-endian file is what one test fakes")]

use rrdcore::native;

fn sample() -> Vec<u8> {
    std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/scenario-002.rrd")).unwrap()
}

fn err(bytes: &[u8]) -> String {
    native::read(bytes).unwrap_err().to_string()
}

#[test]
fn a_real_file_reads() {
    let n = native::read(&sample()).unwrap();
    assert_eq!(n.version, "0003");
    assert_eq!(n.rows.len(), n.schema.archives.len());
    let db = n.to_memory().unwrap();
    assert_eq!(db.state(), &n.state);
}

#[test]
fn refusals_name_the_reason() {
    let good = sample();
    assert!(err(b"").contains("not an RRD file"));
    assert!(err(&good[..100]).contains("not an RRD file"));
    let mut v = good.clone();
    v[16..24].copy_from_slice(&8.642135e130f64.to_be_bytes());
    assert!(err(&v).contains("another architecture"));
    let mut v = good.clone();
    v[4..9].copy_from_slice(b"0009\0");
    assert!(err(&v).contains("version"));
    let mut v = good.clone();
    v[128 + 20..128 + 27].copy_from_slice(b"COMPUTE");
    assert!(err(&v).contains("COMPUTE"));
    let ds = u64::from_le_bytes(good[24..32].try_into().unwrap()) as usize;
    let rra0 = 128 + 120 * ds;
    let mut v = good.clone();
    v[rra0..rra0 + 20].copy_from_slice(b"HWPREDICT\0\0\0\0\0\0\0\0\0\0\0");
    assert!(err(&v).contains("Holt-Winters"));
    assert!(err(&good[..good.len() - 8]).contains("too small"));
    // A larger file is accepted, as RRDtool does; the extra bytes are ignored.
    let mut v = good.clone();
    v.extend_from_slice(&[0; 16]);
    assert!(native::read(&v).is_ok());
}

/// Every golden file RRDtool 1.7.2 wrote: read, then written back by
/// [`native::NativeRrd::to_bytes`], gives RRDtool's bytes except where
/// RRDtool leaves memory it never reads (struct padding, unused scratch).
#[test]
fn written_back_is_what_rrdtool_wrote() {
    let dir = std::env::var_os("RRD_VECTORS_DIR").map(std::path::PathBuf::from).unwrap_or_else(|| {
        let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors");
        if shared.is_dir() { shared } else { std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors") }
    });
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "rrd")).collect();
    files.sort();
    assert!(!files.is_empty());
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        let n = native::read(&bytes).unwrap();
        let out = n.to_bytes();
        assert_eq!(out.len(), bytes.len(), "{}", path.display());
        let diffs: Vec<usize> = (0..out.len()).filter(|i| out[*i] != bytes[*i]).collect();
        assert!(diffs.is_empty(), "{}: {} bytes differ, first at {:?}", path.display(), diffs.len(), &diffs[..diffs.len().min(12)]);
        assert!(native::read(&out).unwrap().to_bytes() == out, "{}: reads back", path.display());
    }
}
