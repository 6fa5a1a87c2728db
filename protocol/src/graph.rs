//! Microsoft Graph's PSTN call log as Graph serves it: `pstnCallLogRow`, the OData page
//! around it, Graph's error body, its seven-digit timestamps and the `getPstnCalls` function
//! call. The Teams sandbox serves it (PROTOCOL.md 3.6) and `oc-harness reconcile` reads it.
//!
//! Names and shapes are Graph's own (`GET /v1.0/communications/callRecords/getPstnCalls(…)`),
//! not this protocol's: these are the files a carrier's billing team actually holds.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::cdr::CallDurationSource;
use crate::timestamp::{
    DAY_MS, MAX_UNIX_MILLIS, MIN_UNIX_MILLIS, UnixMillis, parse_timestamp, write_timestamp,
};

/// The path of the function, without its parameters.
pub const PSTN_CALLS_PATH: &str = "/v1.0/communications/callRecords/getPstnCalls";

/// The longest window one `getPstnCalls` call may ask for (Graph: "cannot be more than a date
/// range of 90 days").
pub const MAX_WINDOW_MS: i64 = 90 * DAY_MS;

/// The most rows Graph puts on one page; more come through `@odata.nextLink`.
pub const MAX_PAGE_ROWS: usize = 1000;

/// The `@odata.context` of a page of rows, after the service root (`…/v1.0`).
pub const PSTN_CALLS_CONTEXT: &str =
    "/$metadata#Collection(microsoft.graph.callRecords.pstnCallLogRow)";

/// `callType` of a call a Teams user placed to the PSTN.
pub const CALL_TYPE_USER_OUT: &str = "user_out";
/// `callType` of a call from the PSTN to a Teams user.
pub const CALL_TYPE_USER_IN: &str = "user_in";

/// One row of the PSTN call log: one call. Graph marks every property nullable; the ones a
/// row cannot do without (its ids, times and duration) are required here, so that a row
/// missing them is refused when read rather than reconciled as zero.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PstnCallLogRow {
    /// Unique row identifier, a GUID.
    pub id: String,
    /// Call identifier; Graph says it is "not guaranteed to be unique".
    pub call_id: String,
    /// The calling user's id in Microsoft Graph, a GUID.
    #[serde(default)]
    pub user_id: Option<String>,
    /// The user's sign-in name.
    #[serde(default)]
    pub user_principal_name: Option<String>,
    /// The user's display name.
    #[serde(default)]
    pub user_display_name: Option<String>,
    /// Call start, seven fractional digits (see [`format_graph_timestamp`]).
    pub start_date_time: String,
    /// Call end.
    pub end_date_time: String,
    /// How long the call was connected, in whole seconds (Graph's `Int32`).
    pub duration: i32,
    /// What the call cost the tenant.
    #[serde(default)]
    pub charge: Option<f64>,
    /// `user_in`, `user_out`, `conf_in`, `ucap_out`…: direction and kind of the call.
    #[serde(default)]
    pub call_type: Option<String>,
    /// ISO 4217 currency of `charge`.
    #[serde(default)]
    pub currency: Option<String>,
    /// The number that received the call, E.164.
    #[serde(default)]
    pub callee_number: Option<String>,
    /// ISO 3166-1 alpha-2 country of the user.
    #[serde(default)]
    pub usage_country_code: Option<String>,
    /// ISO 3166-1 alpha-2 country of the tenant.
    #[serde(default)]
    pub tenant_country_code: Option<String>,
    /// Connection fee.
    #[serde(default)]
    pub connection_charge: Option<f64>,
    /// The number that placed the call, E.164.
    #[serde(default)]
    pub caller_number: Option<String>,
    /// Domestic or international, from the user's location.
    #[serde(default)]
    pub destination_context: Option<String>,
    /// Country or region dialled.
    #[serde(default)]
    pub destination_name: Option<String>,
    /// The audio conference, for conference calls.
    #[serde(default)]
    pub conference_id: Option<String>,
    /// The licence used for the call.
    #[serde(default)]
    pub license_capability: Option<String>,
    /// The user's number type (a subscriber's, a service's, toll-free…).
    #[serde(default)]
    pub inventory_type: Option<String>,
    /// The telecommunications operator that carried the call.
    #[serde(default)]
    pub operator: Option<String>,
    /// `operator` when the Operator Connect carrier provided the duration, else `microsoft`.
    #[serde(default)]
    pub call_duration_source: Option<CallDurationSource>,
    /// ISO 3166-1 alpha-2 country of the other party (Graph beta; absent from v1.0 rows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_party_country_code: Option<String>,
}

/// One page of an OData collection, as Graph serves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphPage<T> {
    /// What the collection is, e.g. `https://graph.microsoft.com/v1.0/$metadata#Collection(…)`.
    #[serde(rename = "@odata.context", default)]
    pub context: Option<String>,
    /// How many rows this page holds (Graph's `getPstnCalls` counts the page, not the window).
    #[serde(
        rename = "@odata.count",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub count: Option<u64>,
    /// The rows.
    pub value: Vec<T>,
    /// The next page; absent on the last.
    #[serde(
        rename = "@odata.nextLink",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub next_link: Option<String>,
}

/// Graph's error body: `{"error": {"code": "BadRequest", "message": "…"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphError {
    /// The error.
    pub error: GraphErrorDetail,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphErrorDetail {
    /// A code a program can branch on, e.g. `BadRequest`, `InvalidAuthenticationToken`.
    pub code: String,
    /// What went wrong, for a person.
    pub message: String,
}

impl GraphError {
    /// An error of `code` saying `message`.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error: GraphErrorDetail {
                code: code.into(),
                message: message.into(),
            },
        }
    }

    /// The code Graph answers an HTTP status with.
    pub fn code_for_status(status: u16) -> &'static str {
        match status {
            400 => "BadRequest",
            401 => "InvalidAuthenticationToken",
            403 => "Forbidden",
            404 => "ResourceNotFound",
            405 => "MethodNotAllowed",
            413 => "RequestEntityTooLarge",
            415 => "UnsupportedMediaType",
            422 => "UnprocessableEntity",
            429 => "TooManyRequests",
            503 => "ServiceUnavailable",
            _ => "InternalServerError",
        }
    }
}

/// 100-nanosecond ticks in a millisecond: Graph's timestamps carry seven fractional digits.
const TICKS_PER_MS: i64 = 10_000;

/// Formats Unix milliseconds as Graph does: `2026-01-05T10:00:00.1230000Z`, seven fractional
/// digits of which the last four are zero (the store keeps milliseconds).
pub fn format_graph_timestamp(ms: UnixMillis) -> String {
    let mut out = String::with_capacity(28);
    write_graph_timestamp(&mut out, ms);
    out
}

/// Appends the Graph form of `ms` to `out` (see [`format_graph_timestamp`]).
pub fn write_graph_timestamp(out: &mut String, ms: UnixMillis) {
    write_timestamp(out, ms);
    // `…SS.sssZ` → `…SS.sss0000Z`.
    out.pop();
    out.push_str("0000Z");
}

/// Why a text is not a Graph timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{text:?} is not a UTC date and time like 2026-01-05T10:00:00Z or \
     2026-01-05T10:00:00.1230000Z (up to 7 fractional digits, Z or an offset like +01:00){}",
    date_only_hint(*.date_allowed)
)]
pub struct GraphTimestampError {
    text: String,
    date_allowed: bool,
}

fn date_only_hint(allowed: bool) -> &'static str {
    if allowed {
        ", or a date like 2026-01-05 (midnight UTC)"
    } else {
        ""
    }
}

/// Reads a Graph `DateTimeOffset` into 100 ns ticks since the Unix epoch: `YYYY-MM-DDTHH:MM:SS`,
/// an optional fraction of 1 to 7 digits, then `Z` or `±HH:MM`.
pub fn parse_graph_ticks(text: &str) -> Result<i64, GraphTimestampError> {
    read_ticks(text, false)
}

/// Reads a Graph timestamp into Unix milliseconds, the digits below the millisecond dropped
/// (`…00.2589935Z` is `…00.258Z`): a whole millisecond never moves.
pub fn parse_graph_timestamp(text: &str) -> Result<UnixMillis, GraphTimestampError> {
    parse_graph_ticks(text).map(|ticks| ticks.div_euclid(TICKS_PER_MS))
}

fn read_ticks(text: &str, date_allowed: bool) -> Result<i64, GraphTimestampError> {
    let error = || GraphTimestampError {
        text: text.to_owned(),
        date_allowed,
    };
    if date_allowed && text.len() == 10 {
        let ms = parse_timestamp(&format!("{text}T00:00:00.000Z")).map_err(|_| error())?;
        return Ok(ms * TICKS_PER_MS);
    }
    let b = text.as_bytes();
    if b.len() < 20 || !text.is_char_boundary(19) {
        return Err(error());
    }
    let seconds = parse_timestamp(&format!("{}.000Z", &text[..19])).map_err(|_| error())?;
    let mut rest = &b[19..];
    let mut fraction = 0i64;
    if let Some(digits) = rest.strip_prefix(b".") {
        let len = digits.iter().take_while(|c| c.is_ascii_digit()).count();
        if !(1..=7).contains(&len) {
            return Err(error());
        }
        for (i, &c) in digits[..len].iter().enumerate() {
            fraction += i64::from(c - b'0') * 10i64.pow(6 - i as u32);
        }
        rest = &digits[len..];
    }
    let offset_minutes = match rest {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digit = |c: &u8| c.is_ascii_digit().then(|| i64::from(c - b'0'));
            let (Some(h1), Some(h2), Some(m1), Some(m2)) =
                (digit(h1), digit(h2), digit(m1), digit(m2))
            else {
                return Err(error());
            };
            let (hours, minutes) = (h1 * 10 + h2, m1 * 10 + m2);
            if hours > 23 || minutes > 59 {
                return Err(error());
            }
            let total = hours * 60 + minutes;
            if *sign == b'+' { total } else { -total }
        }
        _ => return Err(error()),
    };
    let ticks = seconds * TICKS_PER_MS + fraction - offset_minutes * 60_000 * TICKS_PER_MS;
    let min = MIN_UNIX_MILLIS * TICKS_PER_MS;
    let max = (MAX_UNIX_MILLIS + 1) * TICKS_PER_MS - 1;
    if !(min..=max).contains(&ticks) {
        return Err(error());
    }
    Ok(ticks)
}

/// A call's duration in Graph's whole seconds: milliseconds rounded to the nearest second,
/// halves up (1499 ms is 1 s, 1500 ms is 2 s), negatives as 0 and beyond `i32` as its maximum.
pub fn duration_seconds(ms: i64) -> i32 {
    let seconds = ms.max(0).saturating_add(500) / 1000;
    i32::try_from(seconds).unwrap_or(i32::MAX)
}

/// The window of one `getPstnCalls` call, in Unix milliseconds, both ends inclusive, as Graph
/// defines it ("UTC, inclusive", on the call's start time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PstnCallsWindow {
    /// The first millisecond in the window.
    pub from: UnixMillis,
    /// The last millisecond in the window.
    pub to: UnixMillis,
}

/// The path of the function call `getPstnCalls(fromDateTime=…,toDateTime=…)` for `window`,
/// starting with [`PSTN_CALLS_PATH`]: append it to a host such as
/// `https://graph.microsoft.com`.
pub fn pstn_calls_path(window: PstnCallsWindow) -> String {
    let mut out = String::with_capacity(PSTN_CALLS_PATH.len() + 80);
    out.push_str(PSTN_CALLS_PATH);
    out.push_str("(fromDateTime=");
    write_graph_timestamp(&mut out, window.from);
    out.push_str(",toDateTime=");
    write_graph_timestamp(&mut out, window.to);
    out.push(')');
    out
}

/// Why a `getPstnCalls` call's parameters are refused: the message says which and how.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PstnCallsParamsError(String);

/// Reads the parameters of `getPstnCalls(fromDateTime=…,toDateTime=…)`: `segment` is the last
/// path segment, percent-decoded. Both parameters are required, once each, in either order;
/// each is a timestamp (see [`parse_graph_ticks`]) or a date (midnight UTC). The window is
/// inclusive at both ends, at most [`MAX_WINDOW_MS`] long, and `toDateTime` is not before
/// `fromDateTime`. Ticks below the millisecond narrow the window to the whole milliseconds
/// inside it.
pub fn parse_pstn_calls_params(segment: &str) -> Result<PstnCallsWindow, PstnCallsParamsError> {
    let fail = |message: String| Err(PstnCallsParamsError(message));
    let Some(inner) = segment
        .strip_prefix("getPstnCalls(")
        .and_then(|s| s.strip_suffix(')'))
    else {
        return fail(format!(
            "the function must be called as getPstnCalls(fromDateTime=<time>,toDateTime=<time>), \
             not {segment:?}"
        ));
    };
    let (mut from, mut to) = (None, None);
    for pair in inner.split(',') {
        let Some((name, value)) = pair.split_once('=') else {
            return fail(format!(
                "{pair:?} is not a parameter; write name=value (fromDateTime=…,toDateTime=…)"
            ));
        };
        let slot = match name.trim() {
            "fromDateTime" => &mut from,
            "toDateTime" => &mut to,
            other => {
                return fail(format!(
                    "{other:?} is not a parameter of getPstnCalls; it takes fromDateTime and \
                     toDateTime"
                ));
            }
        };
        if slot.is_some() {
            return fail(format!("{} is given more than once", name.trim()));
        }
        let value = value.trim().trim_matches('\'');
        *slot = Some(
            read_ticks(value, true)
                .map_err(|e| PstnCallsParamsError(format!("{}: {e}", name.trim())))?,
        );
    }
    let (Some(from), Some(to)) = (from, to) else {
        let missing = if from.is_none() {
            "fromDateTime"
        } else {
            "toDateTime"
        };
        return fail(format!("{missing} is required"));
    };
    if to < from {
        return fail("toDateTime must not be before fromDateTime".to_owned());
    }
    let window = PstnCallsWindow {
        // The first whole millisecond at or after `from`, the last at or before `to`.
        from: (from + TICKS_PER_MS - 1).div_euclid(TICKS_PER_MS),
        to: to.div_euclid(TICKS_PER_MS),
    };
    if window.to - window.from > MAX_WINDOW_MS {
        let mut message = String::new();
        let _ = write!(
            message,
            "the window from fromDateTime to toDateTime must not be longer than 90 days; \
             it is {:.1} days: split it into windows of at most 90 days",
            (window.to - window.from) as f64 / DAY_MS as f64
        );
        return fail(message);
    }
    Ok(window)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example row of Graph's `getPstnCalls` page, as published.
    const DOCS_PAGE: &str = r#"{
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(microsoft.graph.callRecords.pstnCallLogRow)",
        "@odata.count": 1000,
        "value": [
            {
                "id": "9c4984c7-6c3c-427d-a30c-bd0b2eacee90",
                "callId": "1835317186_112562680@61.221.3.176",
                "userId": "db03c14b-06eb-4189-939b-7cbf3a20ba27",
                "userPrincipalName": "richard.malk@contoso.com",
                "userDisplayName": "Richard Malk",
                "startDateTime": "2019-11-01T00:00:08.2589935Z",
                "endDateTime": "2019-11-01T00:03:47.2589935Z",
                "duration": 219,
                "charge": 0.00,
                "callType": "user_in",
                "currency": "USD",
                "calleeNumber": "+1234567890",
                "usageCountryCode": "US",
                "tenantCountryCode": "US",
                "connectionCharge": 0.00,
                "callerNumber": "+0123456789",
                "destinationContext": null,
                "destinationName": "United States",
                "conferenceId": null,
                "licenseCapability": "MCOPSTNU",
                "inventoryType": "Subscriber",
                "operator": "Microsoft",
                "callDurationSource": "microsoft"
            }
        ],
        "@odata.nextLink": "https://graph.microsoft.com/v1.0/communications/callRecords/getPstnCalls(from=2019-11-01,to=2019-12-01)?$skip=1000"
    }"#;

    #[test]
    fn the_docs_example_reads_and_writes_back_the_same() {
        let page: GraphPage<PstnCallLogRow> = serde_json::from_str(DOCS_PAGE).unwrap();
        assert_eq!(page.count, Some(1000));
        let row = &page.value[0];
        assert_eq!(row.call_id, "1835317186_112562680@61.221.3.176");
        assert_eq!(row.duration, 219);
        assert_eq!(row.call_type.as_deref(), Some(CALL_TYPE_USER_IN));
        assert_eq!(
            row.call_duration_source,
            Some(CallDurationSource::Microsoft)
        );
        assert_eq!(row.destination_context, None);
        let start = parse_graph_timestamp(&row.start_date_time).unwrap();
        let end = parse_graph_timestamp(&row.end_date_time).unwrap();
        assert_eq!(end - start, 219_000);
        let written = serde_json::to_value(&page).unwrap();
        let original: serde_json::Value = serde_json::from_str(DOCS_PAGE).unwrap();
        assert_eq!(
            written, original,
            "every field, nulls included, as Graph wrote it"
        );
    }

    #[test]
    fn a_row_without_its_duration_or_times_is_refused() {
        let mut row: serde_json::Value = serde_json::from_str(DOCS_PAGE).unwrap();
        let row = row["value"][0].as_object_mut().unwrap();
        for key in ["duration", "startDateTime", "callId"] {
            let mut without = row.clone();
            without.remove(key);
            let err = serde_json::from_value::<PstnCallLogRow>(without.into()).unwrap_err();
            assert!(err.to_string().contains(key), "{err}");
        }
        row.insert("operatorsOwnField".into(), "ignored".into());
        serde_json::from_value::<PstnCallLogRow>(row.clone().into()).expect("unknown fields");
    }

    #[test]
    fn graph_timestamps_have_seven_fractional_digits() {
        let ms = parse_timestamp("2026-01-05T10:00:00.123Z").unwrap();
        assert_eq!(format_graph_timestamp(ms), "2026-01-05T10:00:00.1230000Z");
        assert_eq!(
            parse_graph_timestamp("2026-01-05T10:00:00.1230000Z"),
            Ok(ms)
        );
        assert_eq!(
            parse_graph_timestamp("2026-01-05T10:00:00.1239999Z"),
            Ok(ms)
        );
        assert_eq!(parse_graph_timestamp("2026-01-05T10:00:00.123Z"), Ok(ms));
        assert_eq!(
            parse_graph_timestamp("2026-01-05T11:00:00.123+01:00"),
            Ok(ms)
        );
        assert_eq!(
            parse_graph_timestamp("2026-01-05T09:30:00.123-00:30"),
            Ok(ms)
        );
        assert_eq!(parse_graph_timestamp("2026-01-05T10:00:00Z"), Ok(ms - 123));
        for bad in [
            "2026-01-05",
            "2026-01-05T10:00:00",
            "2026-01-05T10:00:00.Z",
            "2026-01-05T10:00:00.12345678Z",
            "2026-01-05T10:00:00.123+0100",
            "2026-01-05T10:00:00.123+24:00",
            "2026-02-30T10:00:00Z",
            "2026-01-05T10:00:00Zjunk",
            "2026-01-05 10:00:00Z",
            "é026-01-05T10:00:00Z",
        ] {
            assert!(parse_graph_timestamp(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_round_half_up_to_whole_seconds() {
        assert_eq!(duration_seconds(0), 0);
        assert_eq!(duration_seconds(499), 0);
        assert_eq!(duration_seconds(500), 1);
        assert_eq!(duration_seconds(1_499), 1);
        assert_eq!(duration_seconds(1_500), 2);
        assert_eq!(duration_seconds(61_000), 61);
        assert_eq!(duration_seconds(-5), 0);
        assert_eq!(duration_seconds(i64::MAX), i32::MAX);
    }

    #[test]
    fn the_function_call_reads_its_window() {
        let window = parse_pstn_calls_params(
            "getPstnCalls(fromDateTime=2026-01-01T00:00:00Z,toDateTime=2026-01-31T00:00:00Z)",
        )
        .unwrap();
        assert_eq!(
            window.from,
            parse_timestamp("2026-01-01T00:00:00.000Z").unwrap()
        );
        assert_eq!(
            window.to,
            parse_timestamp("2026-01-31T00:00:00.000Z").unwrap()
        );
        // The docs' own example: dates, and the parameters in either order.
        let dates =
            parse_pstn_calls_params("getPstnCalls(toDateTime=2019-12-01,fromDateTime=2019-11-01)")
                .unwrap();
        assert_eq!(dates.to - dates.from, 30 * DAY_MS);
        // What this module writes, it reads.
        let path = pstn_calls_path(window);
        let segment = path.rsplit('/').next().unwrap();
        assert_eq!(parse_pstn_calls_params(segment), Ok(window));
        // Sub-millisecond bounds keep the whole milliseconds inside.
        let narrow = parse_pstn_calls_params(
            "getPstnCalls(fromDateTime=2026-01-01T00:00:00.0000001Z,\
             toDateTime=2026-01-01T00:00:00.0019999Z)",
        )
        .unwrap();
        assert_eq!(narrow.to - narrow.from, 0);
    }

    #[test]
    fn bad_function_calls_say_what_is_wrong() {
        let cases = [
            ("getPstnCalls", "must be called as"),
            ("getPstnCalls()", "is not a parameter"),
            (
                "getPstnCalls(fromDateTime=2026-01-01T00:00:00Z)",
                "toDateTime is required",
            ),
            (
                "getPstnCalls(toDateTime=2026-01-01T00:00:00Z)",
                "fromDateTime is required",
            ),
            (
                "getPstnCalls(fromDateTime=yesterday,toDateTime=2026-01-01T00:00:00Z)",
                "fromDateTime: \"yesterday\" is not a UTC date",
            ),
            (
                "getPstnCalls(fromDateTime=2026-01-01,fromDateTime=2026-01-02)",
                "fromDateTime is given more than once",
            ),
            (
                "getPstnCalls(from=2026-01-01,to=2026-01-02)",
                "\"from\" is not a parameter of getPstnCalls",
            ),
            (
                "getPstnCalls(fromDateTime=2026-01-02,toDateTime=2026-01-01)",
                "must not be before fromDateTime",
            ),
            (
                "getPstnCalls(fromDateTime=2026-01-01,toDateTime=2026-04-01T00:00:00.001Z)",
                "must not be longer than 90 days; it is 90.0 days",
            ),
        ];
        for (segment, want) in cases {
            let err = parse_pstn_calls_params(segment).unwrap_err().to_string();
            assert!(err.contains(want), "{segment}: {err}");
        }
        // Exactly 90 days is allowed.
        parse_pstn_calls_params("getPstnCalls(fromDateTime=2026-01-01,toDateTime=2026-04-01)")
            .unwrap();
    }
}
