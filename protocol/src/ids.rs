//! Making protocol ids from seeded random bits, so that the same seed gives the same ids; and
//! putting millions of call ids in order.

/// A lower-case hyphenated version-4 UUID made from 128 random bits (the version and variant
/// bits are overwritten, as RFC 9562 says for version 4).
pub fn uuid_from_bits(bits: u128) -> String {
    UuidText::from_bits(bits).as_str().to_owned()
}

/// The text of a UUID made by [`uuid_from_bits`], on the stack (a feed page renders one per
/// record).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct UuidText([u8; 36]);

impl UuidText {
    /// The version-4 UUID of `bits` (see [`uuid_from_bits`]).
    pub fn from_bits(bits: u128) -> Self {
        let bits = (bits & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
        let mut out = [b'-'; 36];
        // A byte's two digits by one look-up, stored where the table of places says: a load
        // test makes three ids a webhook, and computing each place and each digit apart took
        // about 300 of an id's 540 instructions (callgrind).
        for (&at, byte) in DIGITS_AT.iter().zip(bits.to_be_bytes()) {
            let [high, low] = HEX_PAIR[usize::from(byte)];
            out[at] = high;
            out[at + 1] = low;
        }
        Self(out)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Hex digits and hyphens only.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// The 128 bits of a UUID in the protocol's canonical form (lower-case, hyphenated 8-4-4-4-12:
/// what [`crate::validate::is_uuid`] accepts), so that writing them in that form gives `text`
/// back: two texts have the same bits only when they are the same text. `None` for any other
/// text. Every webhook's event ids are read so, on both sides: one table look-up a digit.
pub fn uuid_bits(text: &str) -> Option<u128> {
    let bytes: &[u8; 36] = text.as_bytes().try_into().ok()?;
    if [8, 13, 18, 23].iter().any(|&at| bytes[at] != b'-') {
        return None;
    }
    let mut bits = 0u128;
    let mut invalid = 0u8;
    for group in [0..8, 9..13, 14..18, 19..23, 24..36] {
        for &c in &bytes[group] {
            let digit = HEX_VALUE[usize::from(c)];
            invalid |= digit;
            bits = bits << 4 | u128::from(digit & 0xf);
        }
    }
    (invalid & NOT_HEX == 0).then_some(bits)
}

/// Where each byte's two digits start in a UUID's text: at twice its index plus the hyphens
/// before them (after bytes 4, 6, 8 and 10).
const DIGITS_AT: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];

/// Each byte's two lower-case hex digits.
const HEX_PAIR: [[u8; 2]; 256] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut table = [[0; 2]; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = [HEX[i >> 4], HEX[i & 0xf]];
        i += 1;
    }
    table
};

/// Marks a byte that is not a lower-case hex digit in [`HEX_VALUE`].
const NOT_HEX: u8 = 0x80;

/// Each byte's value as a lower-case hex digit, or [`NOT_HEX`].
const HEX_VALUE: [u8; 256] = {
    let mut table = [NOT_HEX; 256];
    let mut i = 0;
    while i < 16 {
        table[b"0123456789abcdef"[i] as usize] = i as u8;
        i += 1;
    }
    table
};

impl std::fmt::Debug for UuidText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Sorts `indices` by the text each one names, in the order `sort_unstable_by(|a, b|
/// text(*a).cmp(text(*b)))` gives, but reading each text once instead of at every comparison:
/// the 12 bytes after the prefix all texts share are the key, and only texts whose keys tie are
/// compared in full. A run's call ids are millions of short texts in an arena, in no order:
/// this is several times faster than comparing them through the arena, for 16 bytes per index
/// while it sorts. Equal texts end up in an unspecified order among themselves.
pub fn sort_by_text<'a>(indices: &mut [u32], text: impl Fn(u32) -> &'a str) {
    let Some(&first) = indices.first() else {
        return;
    };
    let first = text(first).as_bytes();
    let shared = indices.iter().fold(first.len(), |shared, &i| {
        let t = text(i).as_bytes();
        first[..shared]
            .iter()
            .zip(t)
            .take_while(|(a, b)| a == b)
            .count()
    });
    #[derive(Clone, Copy)]
    struct Keyed {
        high: u64,
        low: u32,
        index: u32,
    }
    let mut keyed: Vec<Keyed> = indices
        .iter()
        .map(|&index| {
            // Zero-padded: a text that ends sorts before any longer one it begins, and a tie
            // (a zero byte, or more than 12 bytes) is settled in full below.
            let mut key = [0u8; 12];
            let rest = &text(index).as_bytes()[shared..];
            let n = rest.len().min(12);
            key[..n].copy_from_slice(&rest[..n]);
            let (high, low) = key.split_at(8);
            Keyed {
                high: u64::from_be_bytes(high.try_into().unwrap_or_default()),
                low: u32::from_be_bytes(low.try_into().unwrap_or_default()),
                index,
            }
        })
        .collect();
    keyed.sort_unstable_by_key(|k| (k.high, k.low));
    let mut from = 0;
    while from < keyed.len() {
        let key = (keyed[from].high, keyed[from].low);
        let to = from
            + keyed[from..]
                .iter()
                .take_while(|k| (k.high, k.low) == key)
                .count();
        if to - from > 1 {
            keyed[from..to].sort_unstable_by(|a, b| text(a.index).cmp(text(b.index)));
        }
        from = to;
    }
    for (slot, k) in indices.iter_mut().zip(keyed) {
        *slot = k.index;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::is_uuid;

    /// What [`uuid_bits`] must agree with: the text checked and read one character at a time.
    fn uuid_bits_slowly(text: &str) -> Option<u128> {
        let bytes = text.as_bytes();
        if bytes.len() != 36 {
            return None;
        }
        let mut bits = 0u128;
        for (i, &b) in bytes.iter().enumerate() {
            match (i, b) {
                (8 | 13 | 18 | 23, b'-') => {}
                (8 | 13 | 18 | 23, _) => return None,
                (_, b'0'..=b'9' | b'a'..=b'f') => {
                    bits = bits << 4 | u128::from(char::from(b).to_digit(16)?);
                }
                _ => return None,
            }
        }
        Some(bits)
    }

    #[test]
    fn uuid_bits_read_canonical_uuids_only_and_give_their_text_back() {
        let id = "0b6e8a52-3c1d-4f7e-9a2b-5d4c3b2a1f00";
        assert_eq!(uuid_bits(id), Some(0x0b6e8a52_3c1d_4f7e_9a2b_5d4c3b2a1f00));
        for other in [
            "0B6E8A52-3C1D-4F7E-9A2B-5D4C3B2A1F00",
            "0b6e8a523c1d4f7e9a2b5d4c3b2a1f00",
            "0b6e8a52-3c1d-4f7e-9a2b-5d4c3b2a1f0",
            "0b6e8a52-3c1d-4f7e-9a2b-5d4c3b2a1f0g",
            "0b6e8a52+3c1d-4f7e-9a2b-5d4c3b2a1f00",
            "0b6e8a52-3c1d-4f7e-9a2b-5d4c3b2a1f00 ",
            "0b6e8a52-3c1d-4f7e-9a2b-5d4c3b2a1f\u{e9}",
            "",
        ] {
            assert_eq!(uuid_bits(other), None, "{other}");
        }
        // Texts of 36 characters with up to three changed to characters that matter, in every
        // position: the same answer as one character at a time.
        let alphabet = b"0189afgAF-/:`@ ";
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for round in 0..20_000 {
            let mut text: [u8; 36] = id.as_bytes().try_into().unwrap();
            let changes = round % 4;
            for _ in 0..changes {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let at = (state % 36) as usize;
                text[at] = alphabet[((state >> 8) % alphabet.len() as u64) as usize];
            }
            let text = std::str::from_utf8(&text).unwrap();
            assert_eq!(uuid_bits(text), uuid_bits_slowly(text), "{text}");
        }
        for bits in [
            0,
            u128::MAX,
            1 << 127,
            0x0123_4567_89ab_cdef_fedc_ba98_7654_3210,
        ] {
            let text = UuidText::from_bits(bits);
            let read = uuid_bits(text.as_str()).unwrap();
            assert_eq!(UuidText::from_bits(read), text);
        }
    }

    /// The text is the version-4 UUID of the bits in the usual 8-4-4-4-12 grouping, whatever
    /// the bits (written out by `format!` here, independently of the hand-made hex).
    #[test]
    fn uuid_text_is_the_hex_of_the_bits() {
        let mut bits: u128 = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210;
        for _ in 0..1000 {
            let v4 = (bits & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
            let hex = format!("{v4:032x}");
            let expected = format!(
                "{}-{}-{}-{}-{}",
                &hex[0..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..32]
            );
            assert_eq!(UuidText::from_bits(bits).as_str(), expected);
            assert_eq!(uuid_from_bits(bits), expected);
            assert!(is_uuid(&expected));
            bits = bits.wrapping_mul(0x2545_f491_4f6c_dd1d_9e37_79b9_7f4a_7c15) ^ (bits >> 61);
        }
        assert_eq!(
            uuid_from_bits(u128::MAX),
            "ffffffff-ffff-4fff-bfff-ffffffffffff"
        );
        assert_eq!(uuid_from_bits(0), "00000000-0000-4000-8000-000000000000");
    }

    #[test]
    fn sort_by_text_is_the_order_of_the_texts() {
        // Shared prefixes, texts that begin others, ties past 12 bytes, zero bytes, non-ASCII.
        let texts = [
            "call-6jrezd0-h",
            "call-6jrezd0-10",
            "call-6jrezd0-1",
            "call-6jrezd0-",
            "call-6jrezd0",
            "call-6jrezd0-h\0",
            "call-6jrezd0-h\0\0",
            "call-6jrezd0-hhhhhhhhhhhh-a",
            "call-6jrezd0-hhhhhhhhhhhh-b",
            "call-6jrezd0-hhhhhhhhhhhh",
            "call-6jrf000-0",
            "call-é",
            "call-",
            "",
            "call-6jrezd0-h",
        ];
        let mut indices: Vec<u32> = (0..texts.len() as u32).rev().collect();
        sort_by_text(&mut indices, |i| texts[i as usize]);
        let sorted: Vec<&str> = indices.iter().map(|&i| texts[i as usize]).collect();
        let mut expected = texts.to_vec();
        expected.sort_unstable();
        assert_eq!(sorted, expected);
        let mut one = [3];
        sort_by_text(&mut one, |i| texts[i as usize]);
        assert_eq!(one, [3]);
        sort_by_text(&mut [], |i| texts[i as usize]);
    }

    #[test]
    fn sort_by_text_agrees_with_sorting_the_texts_on_generated_ids() {
        // A fixed linear congruential generator: ids of 0 to 30 bytes from a small alphabet
        // behind a shared prefix, so that keys tie often and texts begin one another.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |bound: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % bound
        };
        let texts: Vec<String> = (0..5_000)
            .map(|_| {
                let len = next(31);
                let tail: String = (0..len)
                    .map(|_| char::from(b"0a-\0z"[next(5) as usize]))
                    .collect();
                format!("call-{tail}")
            })
            .collect();
        let mut indices: Vec<u32> = (0..texts.len() as u32).collect();
        sort_by_text(&mut indices, |i| &texts[i as usize]);
        let sorted: Vec<&str> = indices
            .iter()
            .map(|&i| texts[i as usize].as_str())
            .collect();
        let mut expected: Vec<&str> = texts.iter().map(String::as_str).collect();
        expected.sort_unstable();
        assert_eq!(sorted, expected);
    }

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
