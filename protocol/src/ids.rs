//! Making protocol ids from seeded random bits, so that the same seed gives the same ids.

use std::fmt::Write as _;

/// A lower-case hyphenated version-4 UUID made from 128 random bits (the version and variant
/// bits are overwritten, as RFC 9562 says for version 4).
pub fn uuid_from_bits(bits: u128) -> String {
    let bits = (bits & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
    let mut out = String::with_capacity(36);
    for (i, shift) in [96u32, 80, 64, 48, 0].into_iter().enumerate() {
        let width = [8usize, 4, 4, 4, 12][i];
        let mask = (1u128 << (width * 4)) - 1;
        if i > 0 {
            out.push('-');
        }
        // Writing to a String cannot fail.
        let _ = write!(out, "{:0width$x}", (bits >> shift) & mask);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::is_uuid;

    #[test]
    fn version_4_lower_case_hyphenated() {
        assert_eq!(uuid_from_bits(0), "00000000-0000-4000-8000-000000000000");
        assert_eq!(
            uuid_from_bits(u128::MAX),
            "ffffffff-ffff-4fff-bfff-ffffffffffff"
        );
        let id = uuid_from_bits(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        assert_eq!(id, "01234567-89ab-4def-8123-456789abcdef");
        assert!(is_uuid(&id));
    }
}
