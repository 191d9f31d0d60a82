//! Benchmark support for rrdcore: the criterion benches live in `benches/`;
//! the librrd binding (feature `librrd`, needs Debian's `librrd-dev`) is here.

#[cfg(feature = "librrd")]
pub mod librrd;

/// Resident memory of this process in bytes (from `/proc/self/statm`).
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4096
}

/// Bytes this process has caused to be written to storage (`/proc/self/io`
/// `write_bytes`, counted when pages are dirtied).
pub fn write_bytes() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Median, min and max of a sample (sorted in place); zeros for an empty one.
pub fn summary(xs: &mut [f64]) -> (f64, f64, f64) {
    xs.sort_by(f64::total_cmp);
    let median = xs.get(xs.len() / 2).copied().unwrap_or(0.0);
    (median, xs.first().copied().unwrap_or(0.0), xs.last().copied().unwrap_or(0.0))
}
