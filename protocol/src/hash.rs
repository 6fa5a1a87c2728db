//! A fast 64-bit hash of bytes for the in-memory tables of ids (call ids interned by Teams'
//! store and the carrier's ledger, the call ids `oc-harness reconcile` joins on): wyhash-style folded multiplies, eight bytes a
//! step, then an avalanche. Not keyed and not for anything persisted or shown: a table built
//! with it must never let its iteration order reach an output. Fixed, so the same input hashes
//! the same in every run (no random state to seed).

/// The 128-bit product of two words, folded to 64 bits: the mixing step of [`of_bytes`], for a
/// caller that hashes words of its own the same way.
#[inline]
pub fn fold(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ (product >> 64) as u64
}

/// The hash of `bytes`; never 0 (a caller may keep 0 for "no hash"). Two different inputs share
/// a hash with a probability of about n²/2⁶⁵ among n inputs (3·10⁻⁶ for 10 million), so a table
/// still compares the bytes.
#[inline]
pub fn of_bytes(bytes: &[u8]) -> u64 {
    let mut h = (bytes.len() as u64) ^ 0x2d35_8dcc_aa6c_78a5;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        h = fold(
            u64::from_le_bytes(word) ^ 0xa076_1d64_78bd_642f,
            h ^ 0xe703_7ed1_a0b4_28db,
        );
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        // The tail in the low bytes of a zeroed word: shifted down from the last eight bytes
        // when there are eight (no copy of a variable length, which is a call).
        let word = match bytes.last_chunk::<8>() {
            Some(last) => u64::from_le_bytes(*last) >> (8 * (8 - tail.len())),
            None => {
                let mut word = [0u8; 8];
                word[..tail.len()].copy_from_slice(tail);
                u64::from_le_bytes(word)
            }
        };
        h = fold(word ^ 0x8ebc_6af0_9c88_c6e3, h ^ 0x5899_65cc_7537_4cc3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h.max(1)
}

/// The hash of a text: [`of_bytes`] of its UTF-8.
#[inline]
pub fn of_str(text: &str) -> u64 {
    of_bytes(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn hashes_differ_and_are_never_zero() {
        let ids: BTreeSet<u64> = (0..10_000).map(|i| of_str(&format!("call-{i}"))).collect();
        assert_eq!(ids.len(), 10_000);
        assert_ne!(of_bytes(b""), 0);
        assert_ne!(of_bytes(b"abcdefgh"), of_bytes(b"abcdefgi"));
        // UUIDs differing in one block, or with their 16-byte blocks swapped; a tail of zero
        // bytes is not the same input as none.
        let mut uuids = BTreeSet::new();
        for i in 0..5_000u64 {
            let uuid = format!("{:08x}-0000-4000-8000-{:012x}", i % 7, i);
            let swapped = format!("{}{}{}", &uuid[16..32], &uuid[..16], &uuid[32..]);
            uuids.insert(of_str(&uuid));
            uuids.insert(of_str(&swapped));
        }
        assert_eq!(uuids.len(), 10_000);
        assert_ne!(of_bytes(b"ab"), of_bytes(b"ab\0"));
        assert_ne!(
            of_bytes(b"0123456789abcdef"),
            of_bytes(b"0123456789abcdef\0")
        );
    }

    #[test]
    fn the_tail_reads_as_a_zero_padded_word_whatever_the_length() {
        // The tail copied into a zeroed word, as written first: the shifted read must agree.
        let reference = |bytes: &[u8]| {
            let mut h = (bytes.len() as u64) ^ 0x2d35_8dcc_aa6c_78a5;
            for chunk in bytes.chunks(8) {
                let mut word = [0u8; 8];
                word[..chunk.len()].copy_from_slice(chunk);
                h = if chunk.len() == 8 {
                    fold(
                        u64::from_le_bytes(word) ^ 0xa076_1d64_78bd_642f,
                        h ^ 0xe703_7ed1_a0b4_28db,
                    )
                } else {
                    fold(
                        u64::from_le_bytes(word) ^ 0x8ebc_6af0_9c88_c6e3,
                        h ^ 0x5899_65cc_7537_4cc3,
                    )
                };
            }
            h ^= h >> 33;
            h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
            h ^= h >> 33;
            h.max(1)
        };
        let text = b"dff1a71b-0ab1-6013-2714-3f42b5c5488e1835317186_112562680@61.221.3.176";
        for len in 0..=text.len() {
            assert_eq!(of_bytes(&text[..len]), reference(&text[..len]), "{len}");
        }
    }
}
