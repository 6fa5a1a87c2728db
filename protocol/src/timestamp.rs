//! Protocol timestamps: RFC 3339 in UTC with a `Z` suffix and millisecond precision, held in
//! code as Unix milliseconds.
//!
//! Parsing and formatting are hand-written rather than delegated to a date library: the servers
//! format several timestamps per served record, and the fixed 24-byte form makes a direct
//! implementation both simple and fast. The tests compare it with the `time` crate as an oracle.

/// Milliseconds since 1970-01-01T00:00:00.000Z.
pub type UnixMillis = i64;

/// The earliest timestamp the wire form can carry: `0000-01-01T00:00:00.000Z`.
pub const MIN_UNIX_MILLIS: UnixMillis = -62_167_219_200_000;
/// The latest timestamp the wire form can carry: `9999-12-31T23:59:59.999Z`.
pub const MAX_UNIX_MILLIS: UnixMillis = 253_402_300_799_999;

/// One second, one minute, one hour and one day in milliseconds.
pub const SECOND_MS: i64 = 1_000;
/// One minute in milliseconds.
pub const MINUTE_MS: i64 = 60 * SECOND_MS;
/// One hour in milliseconds.
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
/// One day in milliseconds.
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// Why a string is not a protocol timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    /// The text does not have the shape `YYYY-MM-DDTHH:MM:SS.sssZ`.
    #[error(
        "must be an RFC 3339 UTC timestamp with millisecond precision and a `Z` suffix, \
         like 2026-11-26T09:15:02.125Z"
    )]
    Form,
    /// The shape is right but a field is out of its range (month 13, February 30, hour 24…).
    #[error("has the right form but is not a real date and time: {0} out of range")]
    Range(&'static str),
}

/// Parses `YYYY-MM-DDTHH:MM:SS.sssZ` into Unix milliseconds.
pub fn parse_timestamp(text: &str) -> Result<UnixMillis, TimestampError> {
    let b = text.as_bytes();
    if b.len() != 24
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
        || b[23] != b'Z'
    {
        return Err(TimestampError::Form);
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let minute = digits(&b[14..16])?;
    let second = digits(&b[17..19])?;
    let millis = digits(&b[20..23])?;
    if !(1..=12).contains(&month) {
        return Err(TimestampError::Range("month"));
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err(TimestampError::Range("day"));
    }
    if hour > 23 {
        return Err(TimestampError::Range("hour"));
    }
    if minute > 59 {
        return Err(TimestampError::Range("minute"));
    }
    // Leap seconds (`:60`) are valid RFC 3339 but have no Unix-time representation.
    if second > 59 {
        return Err(TimestampError::Range("second"));
    }
    let days = days_from_civil(year, month, day);
    Ok(days * DAY_MS + hour * HOUR_MS + minute * MINUTE_MS + second * SECOND_MS + millis)
}

/// Formats Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.sssZ`.
///
/// Values outside [`MIN_UNIX_MILLIS`]..=[`MAX_UNIX_MILLIS`] are clamped to that range, since the
/// wire form has four year digits.
pub fn format_timestamp(ms: UnixMillis) -> String {
    let mut out = String::with_capacity(24);
    write_timestamp(&mut out, ms);
    out
}

/// Appends the wire form of `ms` to `out` (see [`format_timestamp`]).
pub fn write_timestamp(out: &mut String, ms: UnixMillis) {
    out.push_str(TimestampText::new(ms).as_str());
}

/// The wire form of a timestamp (see [`format_timestamp`]), on the stack: a record carries
/// several, and rendering a feed page formats each straight into the page, with no `String`.
/// Digits are written by hand: `core::fmt` was a visible share of rendering a feed page.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TimestampText([u8; 24]);

impl TimestampText {
    /// The wire form of `ms`, clamped as [`format_timestamp`] says.
    pub fn new(ms: UnixMillis) -> Self {
        let ms = ms.clamp(MIN_UNIX_MILLIS, MAX_UNIX_MILLIS);
        let in_day = ms.rem_euclid(DAY_MS);
        let mut buf = *b"0000-00-00T00:00:00.000Z";
        buf[..10].copy_from_slice(&date_text(ms.div_euclid(DAY_MS)));
        let (seconds, milli) = (in_day / SECOND_MS, in_day % SECOND_MS);
        put_two(&mut buf[11..13], seconds / 3600);
        put_two(&mut buf[14..16], seconds % 3600 / 60);
        put_two(&mut buf[17..19], seconds % 60);
        put_two(&mut buf[20..22], milli / 10);
        buf[22] = b'0' + (milli % 10) as u8;
        Self(buf)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Every byte is an ASCII digit or one of the template's ASCII characters.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::fmt::Debug for TimestampText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `YYYY-MM-DD` of `days` since the epoch. The records of a page, and the times of one record,
/// mostly fall on one day: each thread keeps the last day's text, and works out the calendar
/// only when the day changes.
fn date_text(days: i64) -> [u8; 10] {
    thread_local! {
        static LAST: std::cell::Cell<(i64, [u8; 10])> =
            const { std::cell::Cell::new((i64::MIN, [0; 10])) };
    }
    LAST.with(|last| {
        let (day, text) = last.get();
        if day == days {
            return text;
        }
        let (year, month, day) = civil_from_days(days);
        let mut text = *b"0000-00-00";
        put_digits(&mut text[0..4], year);
        put_two(&mut text[5..7], month);
        put_two(&mut text[8..10], day);
        last.set((days, text));
        text
    })
}

/// Writes `value` (0 ≤ value < 100) as two decimal digits, from a table: one division where a
/// digit at a time takes two.
fn put_two(slot: &mut [u8], value: i64) {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let at = 2 * value as usize;
    slot.copy_from_slice(&PAIRS[at..at + 2]);
}

/// Writes `value` (0 ≤ value < 10^len, which the clamp above guarantees) as `len` decimal
/// digits, zero-padded.
fn put_digits(slot: &mut [u8], mut value: i64) {
    for b in slot.iter_mut().rev() {
        *b = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

fn digits(b: &[u8]) -> Result<i64, TimestampError> {
    b.iter().try_fold(0i64, |acc, &c| {
        if c.is_ascii_digit() {
            Ok(acc * 10 + i64::from(c - b'0'))
        } else {
            Err(TimestampError::Form)
        }
    })
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`]: `(year, month, day)` of a day since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The units of a duration as scenario files, flags and reports write it (`"90s"`), longest
/// first so that `format_duration` picks the largest exact one.
const DURATION_UNITS: [(&str, i64); 5] = [
    ("d", DAY_MS),
    ("h", HOUR_MS),
    ("m", MINUTE_MS),
    ("s", SECOND_MS),
    ("ms", 1),
];

/// What a duration looks like, for error messages.
pub const DURATION_EXPECTED: &str = "a whole number and a unit (ms, s, m, h or d), like \"90s\"";

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
            "{text:?} is not a duration: it must start with a whole number (expected {DURATION_EXPECTED})"
        ));
    }
    if unit.is_empty() {
        return Err(format!(
            "{text:?} has no unit (expected {DURATION_EXPECTED}, e.g. \"{digits}s\")"
        ));
    }
    let Some(&(_, unit_ms)) = DURATION_UNITS.iter().find(|(name, _)| *name == unit) else {
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
    let (unit, unit_ms) = DURATION_UNITS
        .iter()
        .find(|(_, unit_ms)| ms % unit_ms == 0)
        .copied()
        .unwrap_or(("ms", 1));
    format!("{}{unit}", ms / unit_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_protocol_example() {
        let ms = parse_timestamp("2026-11-26T09:15:02.125Z").unwrap();
        assert_eq!(ms, 1_795_684_502_125);
        assert_eq!(format_timestamp(ms), "2026-11-26T09:15:02.125Z");
    }

    #[test]
    fn epoch_and_the_ends_of_the_range() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:00.000Z"), Ok(0));
        assert_eq!(format_timestamp(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(
            parse_timestamp("0000-01-01T00:00:00.000Z"),
            Ok(MIN_UNIX_MILLIS)
        );
        assert_eq!(
            parse_timestamp("9999-12-31T23:59:59.999Z"),
            Ok(MAX_UNIX_MILLIS)
        );
        assert_eq!(format_timestamp(i64::MAX), "9999-12-31T23:59:59.999Z");
        assert_eq!(format_timestamp(i64::MIN), "0000-01-01T00:00:00.000Z");
    }

    #[test]
    fn rejects_other_rfc3339_forms() {
        for text in [
            "2026-11-26T09:15:02Z",          // no milliseconds
            "2026-11-26T09:15:02.12Z",       // two fraction digits
            "2026-11-26T09:15:02.1250Z",     // four fraction digits
            "2026-11-26T09:15:02.125+00:00", // offset instead of Z
            "2026-11-26t09:15:02.125Z",      // lower-case t
            "2026-11-26T09:15:02.125z",      // lower-case z
            "2026-11-26 09:15:02.125Z",      // space separator
            "+2026-11-26T09:15:02.125",      // sign
            "2026-11-2aT09:15:02.125Z",      // letter in a digit
            "",
        ] {
            assert_eq!(parse_timestamp(text), Err(TimestampError::Form), "{text}");
        }
    }

    #[test]
    fn rejects_impossible_dates_and_times() {
        for (text, field) in [
            ("2026-13-01T00:00:00.000Z", "month"),
            ("2026-00-01T00:00:00.000Z", "month"),
            ("2026-02-29T00:00:00.000Z", "day"),
            ("2100-02-29T00:00:00.000Z", "day"),
            ("2026-04-31T00:00:00.000Z", "day"),
            ("2026-04-00T00:00:00.000Z", "day"),
            ("2026-04-01T24:00:00.000Z", "hour"),
            ("2026-04-01T23:60:00.000Z", "minute"),
            ("2026-06-30T23:59:60.000Z", "second"),
        ] {
            assert_eq!(
                parse_timestamp(text),
                Err(TimestampError::Range(field)),
                "{text}"
            );
        }
        assert!(parse_timestamp("2024-02-29T00:00:00.000Z").is_ok());
        assert!(parse_timestamp("2000-02-29T00:00:00.000Z").is_ok());
    }

    fn oracle(ms: i64) -> String {
        let format = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .unwrap()
            .format(format)
            .unwrap()
    }

    /// The day's text is kept from one call to the next on a thread: times on both sides of
    /// midnight, and back and forth between days far apart, must each get their own.
    #[test]
    fn consecutive_times_across_days_agree_with_the_time_crate() {
        let midnight = parse_timestamp("2026-02-28T00:00:00.000Z").unwrap();
        let far = parse_timestamp("1999-12-31T23:59:59.999Z").unwrap();
        for day in -2..=2 {
            for offset in [-1_001, -1, 0, 1, 59_999, 3_600_000] {
                let ms = midnight + day * DAY_MS + offset;
                assert_eq!(format_timestamp(ms), oracle(ms), "{ms}");
                assert_eq!(format_timestamp(far), oracle(far));
            }
        }
    }

    proptest! {
        #[test]
        fn agrees_with_the_time_crate(ms in MIN_UNIX_MILLIS..=MAX_UNIX_MILLIS) {
            let text = format_timestamp(ms);
            prop_assert_eq!(&text, &oracle(ms));
            prop_assert_eq!(parse_timestamp(&text), Ok(ms));
        }
    }
}

#[cfg(test)]
mod duration_tests {
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
        assert_eq!(format_duration(5_400_000), "90m");
        assert_eq!(format_duration(90_000), "90s");
        assert_eq!(format_duration(1_500), "1500ms");
        assert_eq!(format_duration(0), "0s");
        for text in ["250ms", "90s", "5m", "25h", "30d"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }
}
