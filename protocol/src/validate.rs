//! Validation of wire values: every error at once, each with the JSON pointer of its field.
//!
//! Both servers validate with this module, so that they agree on what is valid. A type is
//! checked by its [`Validate`] impl, which walks its fields with a [`Path`] (built on the stack,
//! rendered to a JSON pointer only when an error is found) and pushes [`FieldError`]s into a
//! [`Findings`].

use std::fmt;

use crate::problem::FieldError;
use crate::timestamp::{UnixMillis, parse_timestamp};

/// A value of the protocol that can check itself.
pub trait Validate {
    /// Pushes every error of `self`, located below `at`, into `out`.
    fn validate_at(&self, at: Path<'_>, out: &mut Findings);

    /// Every error of `self`, or `Ok` when there is none.
    fn validate(&self) -> Result<(), ValidationErrors> {
        let mut out = Findings::default();
        self.validate_at(Path::ROOT, &mut out);
        out.into_result()
    }
}

/// The location of a value inside a JSON document, as a chain of borrowed segments.
///
/// Building a child path costs nothing; [`Path::pointer`] renders the RFC 6901 JSON pointer.
#[derive(Clone, Copy)]
pub struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    segment: Segment<'a>,
}

#[derive(Clone, Copy)]
enum Segment<'a> {
    Root,
    Key(&'a str),
    Index(usize),
}

impl<'a> Path<'a> {
    /// The whole document (pointer `""`).
    pub const ROOT: Path<'static> = Path {
        parent: None,
        segment: Segment::Root,
    };

    /// The member `key` of the object at `self`.
    pub fn key(&'a self, key: &'a str) -> Path<'a> {
        Path {
            parent: Some(self),
            segment: Segment::Key(key),
        }
    }

    /// The element `index` of the array at `self`.
    pub fn index(&'a self, index: usize) -> Path<'a> {
        Path {
            parent: Some(self),
            segment: Segment::Index(index),
        }
    }

    /// The RFC 6901 JSON pointer of this path, e.g. `/records/3/durationMs`.
    pub fn pointer(&self) -> String {
        let mut out = String::new();
        self.write_pointer(&mut out);
        out
    }

    fn write_pointer(&self, out: &mut String) {
        if let Some(parent) = self.parent {
            parent.write_pointer(out);
        }
        match self.segment {
            Segment::Root => {}
            Segment::Key(key) => {
                out.push('/');
                for c in key.chars() {
                    match c {
                        '~' => out.push_str("~0"),
                        '/' => out.push_str("~1"),
                        c => out.push(c),
                    }
                }
            }
            Segment::Index(index) => {
                out.push('/');
                out.push_str(&index.to_string());
            }
        }
    }
}

impl fmt::Debug for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Path({:?})", self.pointer())
    }
}

/// The errors found so far.
#[derive(Debug, Default)]
pub struct Findings {
    errors: Vec<FieldError>,
}

impl Findings {
    /// Records that the value at `at` is wrong, with a message that completes "`<field>` …".
    pub fn push(&mut self, at: Path<'_>, message: impl Into<String>) {
        self.errors
            .push(FieldError::at_pointer(at.pointer(), message));
    }

    /// True when nothing was found.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// The errors found, in the order they were found.
    pub fn into_errors(self) -> Vec<FieldError> {
        self.errors
    }

    /// `Ok` when nothing was found.
    pub fn into_result(self) -> Result<(), ValidationErrors> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors(self.errors))
        }
    }

    /// Checks an E.164 number; true when valid.
    pub fn e164(&mut self, at: Path<'_>, value: &str) -> bool {
        let ok = is_e164(value);
        if !ok {
            self.push(at, E164_MESSAGE);
        }
        ok
    }

    /// Checks a lower-case hyphenated UUID; true when valid.
    pub fn uuid(&mut self, at: Path<'_>, value: &str) -> bool {
        let ok = is_uuid(value);
        if !ok {
            self.push(
                at,
                "must be a lower-case hyphenated UUID, like 0b6e8a52-3c1d-4f7e-9a2b-5d4c3b2a1f00",
            );
        }
        ok
    }

    /// Checks a protocol timestamp and returns its value when valid.
    pub fn timestamp(&mut self, at: Path<'_>, value: &str) -> Option<UnixMillis> {
        match parse_timestamp(value) {
            Ok(ms) => Some(ms),
            Err(err) => {
                self.push(at, err.to_string());
                None
            }
        }
    }

    /// Checks a `callId`: 1 to 128 characters.
    pub fn call_id(&mut self, at: Path<'_>, value: &str) -> bool {
        let ok = is_call_id(value);
        if !ok {
            self.push(at, "must be 1 to 128 characters");
        }
        ok
    }

    /// Checks a SIP URI of the protocol's form, and that it names `number` when given.
    pub fn sip_uri(&mut self, at: Path<'_>, value: &str, number: Option<&str>) -> bool {
        match parse_sip_uri(value) {
            Ok(parts) => match number {
                Some(number) if parts.number != number => {
                    self.push(at, format!("must name the telephone number {number}"));
                    false
                }
                _ => true,
            },
            Err(why) => {
                self.push(
                    at,
                    format!(
                        "must be sip:<E.164>@<host>;user=phone, like \
                         sip:+14255550100@sbc1.carrier.example;user=phone ({why})"
                    ),
                );
                false
            }
        }
    }

    /// Checks that a collection's length is within `min..=max`.
    pub fn count(&mut self, at: Path<'_>, len: usize, min: usize, max: usize) -> bool {
        let ok = (min..=max).contains(&len);
        if !ok {
            self.push(at, format!("must hold {min} to {max} items, holds {len}"));
        }
        ok
    }

    /// Checks that a number lies within `min..=max`.
    pub fn range<T: PartialOrd + fmt::Display + Copy>(
        &mut self,
        at: Path<'_>,
        value: T,
        min: T,
        max: T,
    ) -> bool {
        let ok = min <= value && value <= max;
        if !ok {
            self.push(at, format!("must be from {min} to {max}, is {value}"));
        }
        ok
    }
}

const E164_MESSAGE: &str =
    "must be an E.164 number: + then 8 to 15 digits, the first not 0, like +14255550100";

/// Every error found in a value, each with the JSON pointer of its field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", display_errors(.0))]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    /// The pointers of the errors, in order; handy in tests and logs.
    pub fn pointers(&self) -> Vec<&str> {
        self.0.iter().filter_map(|e| e.pointer.as_deref()).collect()
    }
}

fn display_errors(errors: &[FieldError]) -> String {
    let parts: Vec<String> = errors.iter().map(FieldError::to_string).collect();
    format!("invalid value: {}", parts.join("; "))
}

/// True for `+` then 8 to 15 digits, the first not 0.
pub fn is_e164(value: &str) -> bool {
    let Some(digits) = value.strip_prefix('+') else {
        return false;
    };
    (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// True for a lower-case hyphenated UUID (`8-4-4-4-12` hex digits).
pub fn is_uuid(value: &str) -> bool {
    crate::ids::uuid_bits(value).is_some()
}

/// True for a `callId`: 1 to 128 characters.
pub fn is_call_id(value: &str) -> bool {
    let n = value.chars().count();
    (1..=128).contains(&n)
}

/// The parts of a SIP URI of the protocol's form `sip:<E.164>@<host>;user=phone`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SipUriParts<'a> {
    /// The E.164 number in the user part.
    pub number: &'a str,
    /// The host, with its port if it has one.
    pub host: &'a str,
}

/// Splits a SIP URI of the form `sip:<E.164>@<host>[:port];user=phone`, or says what is wrong.
///
/// The host is a DNS name, an IPv4 address or a bracketed IPv6 reference (RFC 3261 `hostport`).
pub fn parse_sip_uri(value: &str) -> Result<SipUriParts<'_>, &'static str> {
    let rest = value.strip_prefix("sip:").ok_or("no sip: scheme")?;
    let rest = rest
        .strip_suffix(";user=phone")
        .ok_or("no ;user=phone parameter at the end")?;
    let at = rest
        .bytes()
        .position(|b| b == b'@')
        .ok_or("no @ between number and host")?;
    let (number, host) = (&rest[..at], &rest[at + 1..]);
    if !is_e164(number) {
        return Err("the user part is not an E.164 number");
    }
    if !is_hostport(host) {
        return Err("the host is not a DNS name or IP address with an optional port");
    }
    Ok(SipUriParts { number, host })
}

fn is_hostport(hostport: &str) -> bool {
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if !v6.contains(':')
            || !v6
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => return is_port(port),
                None => return false,
            },
        }
    } else {
        match hostport.bytes().rposition(|b| b == b':') {
            Some(at) => (&hostport[..at], Some(&hostport[at + 1..])),
            None => (hostport, None),
        }
    };
    if let Some(port) = port
        && !is_port(port)
    {
        return false;
    }
    is_dns_name(host)
}

fn is_port(port: &str) -> bool {
    !port.is_empty()
        && port.len() <= 5
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u32>().is_ok_and(|p| (1..=65_535).contains(&p))
}

/// A DNS name or an IPv4 address: dot-separated labels of letters, digits and inner hyphens.
/// One pass over the bytes: every webhook's SIP URI comes through here, on both sides.
fn is_dns_name(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host).as_bytes();
    if host.is_empty() || host.len() > 253 {
        return false;
    }
    let (mut label, mut previous) = (0usize, b'.');
    for &b in host {
        match b {
            b'.' if label == 0 || previous == b'-' => return false,
            b'.' => label = 0,
            b'-' if label == 0 => return false,
            b'-' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z' if label < 63 => label += 1,
            _ => return false,
        }
        previous = b;
    }
    label > 0 && previous != b'-'
}

/// The default and the limits of the `pageSize` query parameter.
pub mod page_size {
    /// When the client sends none.
    pub const DEFAULT: u32 = 500;
    /// The smallest allowed.
    pub const MIN: u32 = 1;
    /// The largest allowed.
    pub const MAX: u32 = 1000;
    /// The most digits it may be written with: `0001` is 1, `00001` is refused.
    pub const MAX_DIGITS: usize = 4;
}

/// Reads the `pageSize` query parameter: [`page_size::DEFAULT`] when absent, else 1 to
/// [`page_size::MAX_DIGITS`] ASCII digits (leading zeros allowed) of a value from 1 to 1000.
///
/// Digits only: a sign, spaces, an exponent or a longer string of zeros is refused rather than
/// read the way `str::parse` happens to read it (`+5` would be 5).
pub fn parse_page_size(raw: Option<&str>) -> Result<u32, FieldError> {
    let Some(raw) = raw else {
        return Ok(page_size::DEFAULT);
    };
    let digits_only =
        (1..=page_size::MAX_DIGITS).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_digit());
    match raw.parse::<u32>() {
        Ok(n) if digits_only && (page_size::MIN..=page_size::MAX).contains(&n) => Ok(n),
        _ => Err(FieldError::at_parameter(
            "pageSize",
            format!(
                "must be 1 to {} digits (0-9) of a whole number from {} to {}, is {:?}",
                page_size::MAX_DIGITS,
                page_size::MIN,
                page_size::MAX,
                shown(raw)
            ),
        )),
    }
}

/// A client's value as an error message repeats it: cut, so that a megabyte of query string
/// does not come back in the answer.
fn shown(raw: &str) -> String {
    const SHOWN: usize = 32;
    match raw.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{}…", &raw[..cut]),
        None => raw.to_owned(),
    }
}

/// Checks a `tenantId` query parameter: a lower-case hyphenated UUID (PROTOCOL.md 0).
pub fn check_tenant_id(raw: &str) -> Result<&str, FieldError> {
    if is_uuid(raw) {
        Ok(raw)
    } else {
        Err(FieldError::at_parameter(
            "tenantId",
            format!("must be a lower-case hyphenated UUID, is {:?}", shown(raw)),
        ))
    }
}

/// Checks an `Idempotency-Key` header: present, 1 to 128 characters.
pub fn check_idempotency_key(raw: Option<&str>) -> Result<&str, FieldError> {
    match raw {
        Some(key) if (1..=128).contains(&key.chars().count()) => Ok(key),
        Some(_) => Err(FieldError::at_header(
            crate::IDEMPOTENCY_KEY_HEADER,
            "must be 1 to 128 characters",
        )),
        None => Err(FieldError::at_header(
            crate::IDEMPOTENCY_KEY_HEADER,
            "is required on every call-durations request",
        )),
    }
}

/// Reads a `from`/`to` time window from query parameters: both present, valid, `from < to`,
/// and at most `max_ms` long when a maximum is given. Every error at once.
pub fn parse_window(
    from: Option<&str>,
    to: Option<&str>,
    max_ms: Option<i64>,
) -> Result<(UnixMillis, UnixMillis), Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut read = |name: &str, raw: Option<&str>| match raw.map(parse_timestamp) {
        Some(Ok(ms)) => Some(ms),
        Some(Err(err)) => {
            errors.push(FieldError::at_parameter(name, err.to_string()));
            None
        }
        None => {
            errors.push(FieldError::at_parameter(name, "is required"));
            None
        }
    };
    let (from_ms, to_ms) = (read("from", from), read("to", to));
    if let (Some(f), Some(t)) = (from_ms, to_ms) {
        if t <= f {
            errors.push(FieldError::at_parameter("to", "must be later than from"));
        } else if let Some(max) = max_ms
            && t - f > max
        {
            errors.push(FieldError::at_parameter(
                "to",
                format!(
                    "the window from..to must be at most {} hours long",
                    max / crate::timestamp::HOUR_MS
                ),
            ));
        }
        if errors.is_empty() {
            return Ok((f, t));
        }
    }
    Err(errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_boundaries() {
        assert!(is_e164("+14255550100"));
        assert!(is_e164("+12345678")); // 8 digits
        assert!(is_e164("+123456789012345")); // 15 digits
        assert!(!is_e164("+1234567")); // 7 digits
        assert!(!is_e164("+1234567890123456")); // 16 digits
        assert!(!is_e164("+04255550100")); // leading 0
        assert!(!is_e164("14255550100")); // no +
        assert!(!is_e164("+1425555010a"));
        assert!(!is_e164("+1 425 555 0100"));
        assert!(!is_e164("+"));
    }

    #[test]
    fn uuid_form() {
        assert!(is_uuid("0b6e8a52-3c1d-4f7e-9a2b-5d4c3b2a1f00"));
        assert!(!is_uuid("0B6E8A52-3C1D-4F7E-9A2B-5D4C3B2A1F00")); // upper case
        assert!(!is_uuid("0b6e8a523c1d4f7e9a2b5d4c3b2a1f00")); // no hyphens
        assert!(!is_uuid("0b6e8a52-3c1d-4f7e-9a2b-5d4c3b2a1f0")); // short
        assert!(!is_uuid("0b6e8a52-3c1d-4f7e-9a2b-5d4c3b2a1f0g"));
        assert!(!is_uuid("{b6e8a52-3c1d-4f7e-9a2b-5d4c3b2a1f00}"));
    }

    #[test]
    fn call_id_length_counts_characters() {
        assert!(is_call_id("a"));
        assert!(is_call_id(&"é".repeat(128)));
        assert!(!is_call_id(&"a".repeat(129)));
        assert!(!is_call_id(""));
    }

    /// [`is_dns_name`] as first written, label by label.
    fn is_dns_name_by_labels(host: &str) -> bool {
        let host = host.strip_suffix('.').unwrap_or(host);
        !host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
    }

    #[test]
    fn dns_names_read_in_one_pass_as_label_by_label() {
        let long = |n: usize| "a".repeat(n);
        let mut hosts: Vec<String> = [
            "",
            ".",
            "..",
            "a",
            "a.",
            "a..",
            ".a",
            "-",
            "a-",
            "-a",
            "a-b",
            "a--b",
            "a.-b",
            "a-.b",
            "sbc1.carrier.example",
            "sbc1.carrier.example.",
            "192.0.2.10",
            "sbc_1.example",
            "sbc..example",
            "xn--bcher-kva.example",
            "A.B-C.d9",
            "é.example",
            "a b",
            "a:b",
        ]
        .map(String::from)
        .to_vec();
        for n in [62, 63, 64] {
            hosts.push(long(n));
            hosts.push(format!("{}.example", long(n)));
            hosts.push(format!("x.{}", long(n)));
            hosts.push(format!("x.{}-", long(n - 1)));
        }
        for n in [252, 253, 254] {
            let labels: Vec<String> = (0..n / 2).map(|_| "a".to_owned()).collect();
            let name = labels.join(".");
            hosts.push(format!("{name}{}", "b".repeat(n - name.len())));
            hosts.push(format!("{}.", hosts.last().cloned().unwrap_or_default()));
        }
        for byte in 0..=255u8 {
            hosts.push(format!("a{}b", char::from(byte)));
            hosts.push(format!("{}.b", char::from(byte)));
        }
        for host in &hosts {
            assert_eq!(is_dns_name(host), is_dns_name_by_labels(host), "{host:?}");
        }
    }

    #[test]
    fn sip_uri_forms() {
        let ok = parse_sip_uri("sip:+14255550100@sbc1.carrier.example;user=phone").unwrap();
        assert_eq!(ok.number, "+14255550100");
        assert_eq!(ok.host, "sbc1.carrier.example");
        for good in [
            "sip:+14255550100@sbc1.carrier.example:5061;user=phone",
            "sip:+14255550100@192.0.2.10;user=phone",
            "sip:+14255550100@[2001:db8::1]:5060;user=phone",
            "sip:+14255550100@localhost;user=phone",
        ] {
            assert!(parse_sip_uri(good).is_ok(), "{good}");
        }
        for (bad, why) in [
            ("sips:+14255550100@sbc.example;user=phone", "no sip: scheme"),
            (
                "sip:+14255550100@sbc.example",
                "no ;user=phone parameter at the end",
            ),
            (
                "sip:+14255550100;user=phone",
                "no @ between number and host",
            ),
            (
                "sip:4255550100@sbc.example;user=phone",
                "the user part is not an E.164 number",
            ),
        ] {
            assert_eq!(parse_sip_uri(bad), Err(why), "{bad}");
        }
        for bad_host in [
            "sip:+14255550100@;user=phone",
            "sip:+14255550100@-sbc.example;user=phone",
            "sip:+14255550100@sbc..example;user=phone",
            "sip:+14255550100@sbc.example:0;user=phone",
            "sip:+14255550100@sbc.example:65536;user=phone",
            "sip:+14255550100@sbc_1.example;user=phone",
            "sip:+14255550100@[2001:db8::1;user=phone",
        ] {
            assert!(parse_sip_uri(bad_host).is_err(), "{bad_host}");
        }
    }

    #[test]
    fn pointers_escape_per_rfc6901() {
        let root = Path::ROOT;
        let records = root.key("records");
        let third = records.index(3);
        assert_eq!(third.key("durationMs").pointer(), "/records/3/durationMs");
        assert_eq!(root.key("a/b~c").pointer(), "/a~1b~0c");
        assert_eq!(root.pointer(), "");
    }

    #[test]
    fn page_size_default_and_range() {
        assert_eq!(parse_page_size(None), Ok(500));
        assert_eq!(parse_page_size(Some("1")), Ok(1));
        assert_eq!(parse_page_size(Some("1000")), Ok(1000));
        assert_eq!(parse_page_size(Some("0001")), Ok(1));
        assert_eq!(parse_page_size(Some("0500")), Ok(500));
        for bad in [
            "0",
            "1001",
            "-1",
            "ten",
            "",
            "1e3",
            "+5",
            " 5",
            "5 ",
            "00000000001",
            "00001",
            "٣",
            "0x10",
            "10.0",
        ] {
            let err = parse_page_size(Some(bad)).unwrap_err();
            assert_eq!(err.parameter.as_deref(), Some("pageSize"), "{bad}");
        }
    }

    #[test]
    fn idempotency_key_bounds() {
        assert_eq!(check_idempotency_key(Some("k")), Ok("k"));
        assert!(check_idempotency_key(Some(&"k".repeat(128))).is_ok());
        assert!(check_idempotency_key(Some(&"k".repeat(129))).is_err());
        assert!(check_idempotency_key(Some("")).is_err());
        let missing = check_idempotency_key(None).unwrap_err();
        assert_eq!(missing.header.as_deref(), Some("Idempotency-Key"));
    }

    #[test]
    fn window_reports_every_error() {
        let week = 7 * crate::timestamp::DAY_MS;
        assert_eq!(
            parse_window(
                Some("2026-11-01T00:00:00.000Z"),
                Some("2026-11-08T00:00:00.000Z"),
                Some(week)
            ),
            Ok((1_793_491_200_000, 1_793_491_200_000 + week))
        );
        let errs = parse_window(Some("yesterday"), None, Some(week)).unwrap_err();
        let params: Vec<_> = errs.iter().map(|e| e.parameter.as_deref()).collect();
        assert_eq!(params, [Some("from"), Some("to")]);
        let too_long = parse_window(
            Some("2026-11-01T00:00:00.000Z"),
            Some("2026-11-08T00:00:00.001Z"),
            Some(week),
        )
        .unwrap_err();
        assert_eq!(too_long[0].parameter.as_deref(), Some("to"));
        let backwards = parse_window(
            Some("2026-11-02T00:00:00.000Z"),
            Some("2026-11-01T00:00:00.000Z"),
            None,
        )
        .unwrap_err();
        assert_eq!(backwards[0].message, "must be later than from");
    }
}
