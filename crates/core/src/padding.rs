//! Padmé length padding (Nikitin et al., "Reducing Metadata Leakage from Encrypted Files and
//! Communication with PURBs", PETS 2019, §4): a length `L` is rounded up so that only
//! O(log log L) bits of it remain, with at most 12% overhead. FORMAT.md §3.5.

use crate::spec::MIN_PADDED_BYTES;

/// The Padmé bucket of `len`: with `E = ⌊log2 L⌋`, `S = ⌊log2 E⌋ + 1`, the lowest `E - S` bits
/// are rounded up.
pub(crate) fn padme(len: usize) -> usize {
    let l = len as u64;
    if l < 2 {
        return len;
    }
    let e = 63 - u64::from(l.leading_zeros());
    let s = 64 - u64::from(e.leading_zeros());
    let mask = (1u64 << (e - s)) - 1;
    let padded = (l + mask) & !mask;
    usize::try_from(padded).unwrap_or(usize::MAX)
}

/// The padded body length of a plaintext of `len` bytes (FORMAT.md §3.5).
pub(crate) fn padded_len(len: usize) -> usize {
    padme(len.max(MIN_PADDED_BYTES))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padme_matches_the_paper() {
        // Table values worked by hand from the paper's definition.
        assert_eq!(padme(0), 0);
        assert_eq!(padme(1), 1);
        assert_eq!(padme(9), 10); // E=3, S=2: 1 bit rounded
        assert_eq!(padme(16384), 16384);
        assert_eq!(padme(16385), 17408);
        assert_eq!(padme(1000), 1024); // E=9, S=4: 5 bits rounded
        assert_eq!(padded_len(0), MIN_PADDED_BYTES);
    }

    #[test]
    fn padme_is_monotone_idempotent_and_within_12_percent() {
        let mut prev = 0;
        for l in 2..200_000usize {
            let p = padme(l);
            assert!(p >= l && p >= prev);
            assert_eq!(padme(p), p);
            assert!((p - l) * 100 <= l * 12, "{l} -> {p}");
            prev = p;
        }
    }
}
