//! The carrier format file (TOML): which columns of a carrier's CDR CSV hold the call id, the two
//! numbers, the connect time and the end time or the duration, in which units and timestamp
//! format and zone; read with every error located at its `file:line:column`. The reference is
//! `docs/carrier-formats/README.md`.

use std::fmt;
use std::path::Path;

use serde::Deserialize;
use time::format_description::OwnedFormatItem;

use super::text::{self, Nanos, SECOND};

/// The format of `oc-harness run --export`'s carrier CSV, bundled (the default).
pub(crate) const OC_HARNESS_FORMAT: &str =
    include_str!("../../../docs/carrier-formats/oc-harness.toml");

/// Where a column is: its header name, or its 1-based position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ColumnRef {
    Name(String),
    Position(usize),
}

impl<'de> Deserialize<'de> for ColumnRef {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ColumnRef;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a header name (string) or a 1-based column position (integer)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ColumnRef, E> {
                if v.is_empty() {
                    return Err(E::custom("a column name cannot be empty"));
                }
                Ok(ColumnRef::Name(v.to_owned()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ColumnRef, E> {
                match usize::try_from(v) {
                    Ok(p) if p >= 1 => Ok(ColumnRef::Position(p)),
                    _ => Err(E::custom("a column position counts from 1")),
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFormat {
    #[serde(default)]
    #[expect(dead_code, reason = "documentation for the reader of the file")]
    description: Option<String>,
    #[serde(default)]
    delimiter: Option<toml::Spanned<String>>,
    #[serde(default = "yes")]
    header: bool,
    #[serde(default)]
    timestamp: Option<toml::Spanned<String>>,
    #[serde(default)]
    zone: Option<toml::Spanned<String>>,
    #[serde(default)]
    duration_unit: Option<toml::Spanned<String>>,
    columns: toml::Spanned<RawColumns>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawColumns {
    call_id: Option<ColumnRef>,
    calling_number: ColumnRef,
    called_number: ColumnRef,
    connect_time: ColumnRef,
    end_time: Option<ColumnRef>,
    duration: Option<ColumnRef>,
    charge: Option<ColumnRef>,
}

/// How a timestamp is written.
#[derive(Debug)]
pub(crate) enum Timestamps {
    /// RFC 3339; `zone` applies to timestamps without an offset.
    Rfc3339,
    /// A number of seconds (fraction allowed), milliseconds or microseconds since the epoch.
    Unix(Nanos),
    /// A `time` crate format description, e.g. `[year]-[month]-[day] [hour]:[minute]:[second]`;
    /// `true` when it has an offset of its own.
    Pattern(Box<OwnedFormatItem>, bool),
}

/// A carrier format, ready to read rows with.
#[derive(Debug)]
pub(crate) struct CarrierFormat {
    pub(crate) delimiter: u8,
    pub(crate) header: bool,
    pub(crate) timestamps: Timestamps,
    /// Seconds east of UTC for timestamps without an offset.
    pub(crate) zone: i64,
    /// Nanoseconds in one unit of the duration column.
    pub(crate) duration_unit: Nanos,
    pub(crate) call_id: Option<ColumnRef>,
    pub(crate) calling: ColumnRef,
    pub(crate) called: ColumnRef,
    pub(crate) connect: ColumnRef,
    pub(crate) end: Option<ColumnRef>,
    pub(crate) duration: Option<ColumnRef>,
    pub(crate) charge: Option<ColumnRef>,
}

/// A format file that cannot be used: `file:line:column: message`.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub(crate) struct FormatError {
    pub(crate) file: String,
    pub(crate) line: usize,
    pub(crate) column: usize,
    pub(crate) message: String,
}

/// Reads a format file.
pub(crate) fn load(path: &Path) -> Result<CarrierFormat, FormatError> {
    let text = std::fs::read_to_string(path).map_err(|e| FormatError {
        file: path.display().to_string(),
        line: 1,
        column: 1,
        message: format!("cannot read the format file: {e}"),
    })?;
    parse(&text, &path.display().to_string())
}

/// Reads a format file's text (`name` for the messages).
pub(crate) fn parse(text: &str, name: &str) -> Result<CarrierFormat, FormatError> {
    let at = |span: std::ops::Range<usize>, message: String| {
        let before = &text[..span.start.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        FormatError {
            file: name.to_owned(),
            line,
            column,
            message,
        }
    };
    let raw: RawFormat =
        toml::from_str(text).map_err(|e| at(e.span().unwrap_or(0..0), e.message().to_owned()))?;
    let delimiter = match &raw.delimiter {
        None => b',',
        Some(d) => match d.get_ref().as_str() {
            "\\t" | "\t" | "tab" => b'\t',
            one if one.len() == 1 && one != "\"" && one != "\n" => one.as_bytes()[0],
            _ => {
                return Err(at(
                    d.span(),
                    "the delimiter is one ASCII character (or \"tab\"), not a quote".into(),
                ));
            }
        },
    };
    let zone = match &raw.zone {
        None => 0,
        Some(z) => parse_zone(z.get_ref()).ok_or_else(|| {
            at(
                z.span(),
                format!("`{}` is not UTC or a fixed offset like +02:00", z.get_ref()),
            )
        })?,
    };
    let timestamps = match &raw.timestamp {
        None => Timestamps::Rfc3339,
        Some(t) => match t.get_ref().as_str() {
            "rfc3339" => Timestamps::Rfc3339,
            "unix_s" => Timestamps::Unix(SECOND),
            "unix_ms" => Timestamps::Unix(1_000_000),
            "unix_us" => Timestamps::Unix(1_000),
            pattern => {
                let item = time::format_description::parse_owned::<2>(pattern).map_err(|e| {
                    at(t.span(), format!("neither rfc3339, unix_s, unix_ms, unix_us nor a format description: {e}"))
                })?;
                Timestamps::Pattern(Box::new(item), pattern.contains("[offset_hour"))
            }
        },
    };
    let duration_unit = match &raw.duration_unit {
        None => 1_000_000,
        Some(u) => match u.get_ref().as_str() {
            "ms" => 1_000_000,
            "s" => SECOND,
            "min" => 60 * SECOND,
            "us" => 1_000,
            other => {
                return Err(at(
                    u.span(),
                    format!("`{other}` is not a duration unit (ms, s, min, us)"),
                ));
            }
        },
    };
    let span = raw.columns.span();
    let columns = raw.columns.into_inner();
    if columns.end_time.is_none() && columns.duration.is_none() {
        return Err(at(
            span,
            "[columns] needs end_time or duration (or both: then duration is the carrier's)".into(),
        ));
    }
    let all = [
        Some(&columns.calling_number),
        Some(&columns.called_number),
        Some(&columns.connect_time),
        columns.call_id.as_ref(),
        columns.end_time.as_ref(),
        columns.duration.as_ref(),
        columns.charge.as_ref(),
    ];
    if !raw.header
        && all
            .iter()
            .flatten()
            .any(|c| matches!(c, ColumnRef::Name(_)))
    {
        return Err(at(
            span,
            "without a header row (header = false), columns are 1-based positions".into(),
        ));
    }
    Ok(CarrierFormat {
        delimiter,
        header: raw.header,
        timestamps,
        zone,
        duration_unit,
        call_id: columns.call_id,
        calling: columns.calling_number,
        called: columns.called_number,
        connect: columns.connect_time,
        end: columns.end_time,
        duration: columns.duration,
        charge: columns.charge,
    })
}

/// `UTC`, `Z`, `+02:00`, `-05:30` as seconds east of UTC.
fn parse_zone(zone: &str) -> Option<i64> {
    if zone.eq_ignore_ascii_case("utc") || zone == "Z" {
        return Some(0);
    }
    let (sign, rest) = match zone.as_bytes().first()? {
        b'+' => (1, &zone[1..]),
        b'-' => (-1, &zone[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    (h.to_string().len() <= 2 && h < 24 && (0..60).contains(&m) && m.to_string().len() <= 2)
        .then_some(sign * (h * 3600 + m * 60))
}

impl CarrierFormat {
    /// Reads a timestamp as the format says: RFC 3339 in the fixed layout most exports write
    /// inlined into the row loop (a call, its `Result<_, String>` returned in memory, cost 83
    /// instructions a timestamp), the rest in a call.
    #[inline(always)]
    pub(crate) fn timestamp(&self, value: &[u8]) -> Result<Nanos, String> {
        if let Timestamps::Rfc3339 = self.timestamps
            && let Some(ns) = text::fixed_rfc3339(value, Some(self.zone))
        {
            return Ok(ns);
        }
        self.timestamp_other(value)
    }

    /// [`Self::timestamp`] for every form, with the precise error.
    #[inline(never)]
    fn timestamp_other(&self, value: &[u8]) -> Result<Nanos, String> {
        match &self.timestamps {
            Timestamps::Rfc3339 => {
                text::parse_rfc3339(value, Some(self.zone)).map_err(str::to_owned)
            }
            Timestamps::Unix(unit) => {
                text::parse_scaled(value, *unit).ok_or_else(|| "not a number".to_owned())
            }
            Timestamps::Pattern(item, with_offset) => {
                let value = std::str::from_utf8(value).map_err(|_| "not UTF-8".to_owned())?;
                let nanos = if *with_offset {
                    time::OffsetDateTime::parse(value, item.as_ref())
                        .map_err(|e| e.to_string())?
                        .unix_timestamp_nanos()
                } else {
                    let local = time::PrimitiveDateTime::parse(value, item.as_ref())
                        .map_err(|e| e.to_string())?;
                    local.assume_utc().unix_timestamp_nanos()
                        - i128::from(self.zone) * i128::from(SECOND)
                };
                i64::try_from(nanos).map_err(|_| "out of range".to_owned())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_formats_load() {
        let format = parse(OC_HARNESS_FORMAT, "oc-harness.toml").unwrap();
        assert_eq!(format.call_id, Some(ColumnRef::Name("call_id".into())));
        assert_eq!(format.duration_unit, 1_000_000);
        let example = include_str!("../../../docs/carrier-formats/example-sbc.toml");
        let example = parse(example, "example-sbc.toml").unwrap();
        assert_eq!(example.delimiter, b';');
        assert_eq!(
            example.timestamp(b"05.01.2026 11:00:00.250").unwrap(),
            text::parse_rfc3339(b"2026-01-05T10:00:00.250Z", None).unwrap()
        );
    }

    #[test]
    fn errors_are_located() {
        let err = parse("header = true\n[columns]\ncalling_number = \"a\"\ncalled_number = \"b\"\nconnect_time = \"c\"\nduration = \"d\"\ncolour = 1\n", "f.toml").unwrap_err();
        assert_eq!((err.line, err.column), (7, 1), "{err}");
        assert!(err.message.contains("colour"), "{err}");
        let err = parse("zone = \"Europe/Paris\"\n[columns]\ncalling_number = 1\ncalled_number = 2\nconnect_time = 3\nduration = 4\n", "f.toml").unwrap_err();
        assert_eq!((err.line, err.column), (1, 8), "{err}");
        let err = parse(
            "[columns]\ncalling_number = 1\ncalled_number = 2\nconnect_time = 3\n",
            "f.toml",
        )
        .unwrap_err();
        assert!(err.message.contains("end_time or duration"), "{err}");
        let err = parse("header = false\n[columns]\ncalling_number = \"a\"\ncalled_number = 2\nconnect_time = 3\nduration = 4\n", "f.toml").unwrap_err();
        assert!(err.message.contains("positions"), "{err}");
        let err = parse("timestamp = \"[year\"\n[columns]\ncalling_number = 1\ncalled_number = 2\nconnect_time = 3\nduration = 4\n", "f.toml").unwrap_err();
        assert_eq!(err.line, 1, "{err}");
        let err = parse(
            "[columns]\ncalling_number = 0\ncalled_number = 2\nconnect_time = 3\nduration = 4\n",
            "f.toml",
        )
        .unwrap_err();
        assert_eq!(err.line, 2, "{err}");
    }

    #[test]
    fn rfc3339_timestamps_read_inlined_as_in_their_call() {
        for zone in ["", "zone = \"-05:00\"\n"] {
            let text = format!(
                "{zone}[columns]\ncalling_number = 1\ncalled_number = 2\nconnect_time = 3\nduration = 4\n"
            );
            let format = parse(&text, "f").unwrap();
            for value in text::tests::layouts_and_near_misses() {
                assert_eq!(
                    format.timestamp(&value),
                    format.timestamp_other(&value),
                    "{}",
                    String::from_utf8_lossy(&value)
                );
            }
        }
    }

    #[test]
    fn timestamps_in_every_form() {
        let mut format = parse("zone = \"-05:00\"\n[columns]\ncalling_number = 1\ncalled_number = 2\nconnect_time = 3\nduration = 4\n", "f").unwrap();
        let utc = text::parse_rfc3339(b"2026-01-05T15:00:00Z", None).unwrap();
        assert_eq!(format.timestamp(b"2026-01-05 10:00:00").unwrap(), utc);
        assert_eq!(format.timestamp(b"2026-01-05T15:00:00Z").unwrap(), utc);
        format.timestamps = Timestamps::Unix(1_000_000);
        assert_eq!(format.timestamp(b"1767625200000").unwrap(), utc);
        assert!(format.timestamp(b"x").is_err());
        assert_eq!(parse_zone("+05:30"), Some(19_800));
        assert_eq!(parse_zone("5:30"), None);
    }
}
