//! Durations as scenario files write them: `"<integer><unit>"`, unit `ms`, `s`, `m`, `h` or `d`.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Visitor};

pub use oc_protocol::timestamp::{format_duration, parse_duration};

/// What a duration looks like, for error messages.
pub(crate) const EXPECTED: &str = oc_protocol::timestamp::DURATION_EXPECTED;

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
