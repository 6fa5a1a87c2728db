//! Durations as scenario files write them: `"<integer><unit>"`, unit `ms`, `s`, `m`, `h` or `d`.

use std::fmt;

use oc_protocol::timestamp::{DAY_MS, HOUR_MS, MINUTE_MS, SECOND_MS};
use serde::Deserialize;
use serde::de::{self, Visitor};

/// The units, longest first so that `format_duration` picks the largest exact one.
const UNITS: [(&str, i64); 5] = [
    ("d", DAY_MS),
    ("h", HOUR_MS),
    ("m", MINUTE_MS),
    ("s", SECOND_MS),
    ("ms", 1),
];

/// What a duration looks like, for error messages.
pub(crate) const EXPECTED: &str = "a whole number and a unit (ms, s, m, h or d), like \"90s\"";

/// Reads `"<integer><unit>"` into milliseconds, or says precisely what is wrong.
///
/// No sign, no fraction, no space and no unit combinations (`"1h30m"`): one whole number and
/// one unit, so that a file says exactly one thing.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let digits_end = text
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(digits_end);
    if digits.is_empty() {
        return Err(format!(
            "{text:?} is not a duration: it must start with a whole number (expected {EXPECTED})"
        ));
    }
    if unit.is_empty() {
        return Err(format!(
            "{text:?} has no unit (expected {EXPECTED}, e.g. \"{digits}s\")"
        ));
    }
    let Some(&(_, unit_ms)) = UNITS.iter().find(|(name, _)| *name == unit) else {
        return Err(format!(
            "{text:?} has an unknown unit {unit:?} (expected one of ms, s, m, h, d, like \"90s\")"
        ));
    };
    digits
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(unit_ms))
        .ok_or_else(|| format!("{text:?} is too long to count in milliseconds"))
}

/// Writes milliseconds in the largest unit that divides them exactly (`86400000` → `"1d"`).
pub fn format_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".to_owned();
    }
    let (unit, unit_ms) = UNITS
        .iter()
        .find(|(_, unit_ms)| ms % unit_ms == 0)
        .copied()
        .unwrap_or(("ms", 1));
    format!("{}{unit}", ms / unit_ms)
}

/// A duration as written in the file, read later with [`parse_duration`] so that every bad one
/// is reported with the others, not only the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawDuration(pub(crate) String);

impl fmt::Display for RawDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RawDuration {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;
        impl Visitor<'_> for DurationVisitor {
            type Value = RawDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a duration string: {EXPECTED}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawDuration, E> {
                Ok(RawDuration(v.to_owned()))
            }
        }
        deserializer.deserialize_str(DurationVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_reads_to_milliseconds() {
        assert_eq!(parse_duration("250ms"), Ok(250));
        assert_eq!(parse_duration("90s"), Ok(90_000));
        assert_eq!(parse_duration("5m"), Ok(300_000));
        assert_eq!(parse_duration("24h"), Ok(86_400_000));
        assert_eq!(parse_duration("30d"), Ok(2_592_000_000));
        assert_eq!(parse_duration("0s"), Ok(0));
        assert_eq!(parse_duration("007s"), Ok(7_000));
    }

    #[test]
    fn a_bad_duration_says_what_is_wrong() {
        let cases = [
            ("", "must start with a whole number"),
            ("s", "must start with a whole number"),
            ("-5m", "must start with a whole number"),
            ("1.5h", "unknown unit \".5h\""),
            ("90", "has no unit"),
            ("5 m", "unknown unit \" m\""),
            ("5min", "unknown unit \"min\""),
            ("5M", "unknown unit \"M\""),
            ("1h30m", "unknown unit \"h30m\""),
            ("99999999999999999999d", "too long"),
            ("9999999999999999d", "too long"),
        ];
        for (text, want) in cases {
            let err = parse_duration(text).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn formatting_picks_the_largest_exact_unit() {
        assert_eq!(format_duration(86_400_000), "1d");
        assert_eq!(format_duration(300_000), "5m");
        assert_eq!(format_duration(90_000), "90s");
        assert_eq!(format_duration(1_500), "1500ms");
        assert_eq!(format_duration(0), "0s");
        for text in ["250ms", "90s", "5m", "25h", "30d"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }
}
