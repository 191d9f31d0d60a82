//! Cache prefetch hints: where rrdcore asks the CPU to start loading memory
//! it is about to use, so that a loop over many series overlaps their cache
//! and TLB misses instead of waiting for each in turn.
//!
//! A hint changes nothing a program can observe: it reads no value, never
//! faults, and accepts any address (an unmapped or freed one is ignored).
//! That is why a hint may be given for memory another thread might free
//! meanwhile, such as a database the store's cache is closing.

/// Bytes in one cache line on the machines rrdcore is tuned for.
pub(crate) const LINE: usize = 64;

/// Hints that the cache line holding `addr` will be read or written soon.
#[inline]
pub(crate) fn line(addr: usize) {
    #[cfg(target_arch = "x86_64")]
    #[expect(unsafe_code, reason = "the prefetch intrinsic is `unsafe` only for its target feature")]
    // SAFETY: `_mm_prefetch` requires SSE, which every x86-64 CPU has (it is
    // in the x86_64 baseline). PREFETCHT0 is a pure hint: it never faults,
    // returns nothing, and any address is allowed, so no pointer validity is needed.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(std::ptr::without_provenance(addr));
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}

/// Hints that `value`'s memory (up to 64 cache lines of it) will be used
/// soon: for loops over many heap objects, such as a server's series
/// records, to overlap their cache misses.
#[inline]
pub fn value<T: ?Sized>(value: &T) {
    lines(span(std::ptr::from_ref(value).cast::<u8>().addr(), size_of_val(value)));
}

/// Hints that the `len` bytes at `addr` will be used soon (up to 64 cache
/// lines); for an address kept as a hint, which need not be valid any more.
#[inline]
pub fn bytes_at(addr: usize, len: usize) {
    lines(span(addr, len));
}

/// A memory span packed into one word (a store keeps a list of them per
/// series, see `Rrd::hot_spans`): the address of its
/// first cache line, with the number of further lines in the low bits
/// (line addresses have them clear). Spans longer than 64 lines are cut.
pub(crate) fn span(addr: usize, len: usize) -> usize {
    if len == 0 {
        return 0;
    }
    let first = addr & !(LINE - 1);
    let last = (addr + len - 1) & !(LINE - 1);
    first | ((last - first) / LINE).min(LINE - 1)
}

/// Hints every line of a span made by [`span`]; `0` is no span.
#[inline]
pub(crate) fn lines(packed: usize) {
    if packed == 0 {
        return;
    }
    let first = packed & !(LINE - 1);
    for k in 0..=(packed & (LINE - 1)) {
        line(first + k * LINE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_pack_their_lines() {
        assert_eq!(span(0x1000, 0), 0);
        assert_eq!(span(0x1000, 1), 0x1000);
        assert_eq!(span(0x1000, 64), 0x1000);
        assert_eq!(span(0x1000, 65), 0x1001);
        assert_eq!(span(0x103f, 2), 0x1001, "two bytes across a line boundary are two lines");
        assert_eq!(span(0x1000, 64 * 100), 0x1000 | 63, "cut at 64 lines");
        // Hinting is harmless for any address, including unmapped ones.
        lines(span(8, 4096));
        lines(usize::MAX & !63);
    }
}
