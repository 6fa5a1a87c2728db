//! Teams' side: Microsoft Graph `pstnCallLogRow`s in any of the shapes people save them in —
//! Graph JSON pages (`{"@odata.context", "value": [...], "@odata.nextLink"}`: one page per file,
//! concatenated pages, or a JSON array of pages), a JSON array of rows, NDJSON of rows, or the CSV
//! of `m365 teams report pstncalls --output csv` (a header row of property names) — told apart by
//! their content, and read into [`TeamsRow`]s.

use super::mismatches::Described;
use super::rows::{
    ChargeSums, DurationSource, Filters, MAX_BILLED, Parsed, ReadTeamsRow, TeamsRow,
};
use super::source::trim_cr;
use super::text;

mod csv;
mod json;

pub(crate) use csv::{CsvColumns, parse_csv};
pub(crate) use json::{parse_json, parse_ndjson};

/// How a Teams file is laid out, from its first bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TeamsShape {
    /// Graph pages or an array of rows: read whole.
    Json,
    /// One row object per line.
    Ndjson,
    /// The CSV of the CLI for Microsoft 365, with the columns its header names.
    Csv(CsvColumns),
}

/// The detection's verdict on the first bytes of a file (after gzip).
pub(crate) enum Detected {
    Json,
    Ndjson,
    /// A CSV: its header line is the first line.
    Csv,
}

/// Tells the shape from the first bytes: JSON (`[`, or `{` whose first line is not a whole row
/// object), NDJSON (`{` with a whole row object, without `value`, on the first line) or CSV
/// (anything else; its header must then name `startDateTime`).
pub(crate) fn detect(head: &[u8]) -> Detected {
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = head
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(head.len());
    let head = &head[start..];
    match head.first() {
        Some(b'[') => Detected::Json,
        Some(b'{') => {
            #[derive(serde::Deserialize)]
            struct Probe {
                value: Option<serde::de::IgnoredAny>,
            }
            let line = trim_cr(&head[..memchr::memchr(b'\n', head).unwrap_or(head.len())]);
            match serde_json::from_slice::<Probe>(line) {
                Ok(Probe { value: None }) => Detected::Ndjson,
                _ => Detected::Json,
            }
        }
        _ => Detected::Csv,
    }
}

/// The fields of one row that reconciliation reads, borrowed from the input (or, for a CSV
/// field with doubled quotes, from its unescaped copy).
#[derive(Default)]
struct Fields<'a> {
    call_id: Option<&'a [u8]>,
    start: Option<&'a [u8]>,
    end: Option<&'a [u8]>,
    duration: Option<i64>,
    charge: Option<i64>,
    currency: Option<&'a [u8]>,
    call_type: Option<&'a [u8]>,
    caller: Option<&'a [u8]>,
    callee: Option<&'a [u8]>,
    operator: Option<&'a [u8]>,
    duration_source: Option<&'a [u8]>,
}

/// A row's field that is wrong: its name and why.
type FieldError = (&'static str, String);

/// A row to keep, or `None` when the filters leave it out (inlined: the CSV row loop then
/// reads its fields from registers, not from a `Fields` in memory).
#[inline(always)]
fn build(
    fields: &Fields<'_>,
    filters: &Filters,
    source: u64,
    charges: &mut ChargeSums,
) -> Result<Option<ReadTeamsRow>, FieldError> {
    let start = time("startDateTime", fields.start)?;
    let end = time("endDateTime", fields.end)?;
    if end < start {
        return Err(("endDateTime", "before startDateTime".to_owned()));
    }
    let billed = match fields.duration {
        None => None,
        Some(d) if (0..=i64::from(MAX_BILLED)).contains(&d) => Some(d as u32),
        Some(d) => {
            return Err((
                "duration",
                format!("{d} is not a whole number of seconds from 0 to {MAX_BILLED} (17 years)"),
            ));
        }
    };
    let duration_source = match fields.duration_source {
        None | Some(b"") => DurationSource::Unknown,
        Some(b"operator") => DurationSource::Operator,
        Some(b"microsoft") => DurationSource::Microsoft,
        Some(other) => {
            return Err((
                "callDurationSource",
                format!(
                    "`{}` is neither operator nor microsoft",
                    String::from_utf8_lossy(other)
                ),
            ));
        }
    };
    if !filters.in_window(start) || !filters.operator_kept(fields.operator) {
        return Ok(None);
    }
    // The Teams user's number alone: the callee of an inbound call, the caller otherwise (the
    // pair of both is read back only for carrier rows without an id: `super::pairs`). (A
    // `match`, not `map_or`, which is not always inlined and then keeps the number's reading
    // out of line too.)
    let user = match fields.call_type.is_some_and(inbound) {
        true => fields.callee,
        false => fields.caller,
    };
    let number = match user {
        Some(number) => text::number_key(number),
        None => 0,
    };
    let id = match fields.call_id.map(text::trim) {
        None | Some(b"") => 0,
        Some(id) => text::hash(id),
    };
    if let Some(charge) = fields.charge {
        charges.add(fields.currency.unwrap_or_default(), charge);
    }
    Ok(Some(ReadTeamsRow {
        row: TeamsRow::new(id, start, end - start, source, billed, duration_source),
        number,
    }))
}

/// A row's timestamp (`name`: its field's), inlined into [`build`].
#[inline(always)]
fn time(name: &'static str, value: Option<&[u8]>) -> Result<text::Nanos, FieldError> {
    match value {
        None | Some(b"") => Err((name, "missing".to_owned())),
        Some(v) => text::parse_rfc3339(v, None).map_err(|why| time_error(name, why, v)),
    }
}

/// [`time`]'s error for a timestamp that cannot be read.
#[cold]
#[inline(never)]
fn time_error(name: &'static str, why: &str, value: &[u8]) -> FieldError {
    (name, format!("{why}: `{}`", String::from_utf8_lossy(value)))
}

/// Whether a `callType` is inbound: one of its `_`-separated parts is `in`. The two that most
/// rows have are compared whole first.
#[inline(always)]
fn inbound(call_type: &[u8]) -> bool {
    match call_type {
        b"user_in" => true,
        b"user_out" => false,
        other => inbound_parts(other),
    }
}

/// [`inbound`] part by part.
#[inline(never)]
fn inbound_parts(call_type: &[u8]) -> bool {
    call_type.split(|&b| b == b'_').any(|part| part == b"in")
}

/// Adds one row's outcome to a chunk's result.
fn keep(
    parsed: &mut Parsed<ReadTeamsRow>,
    line: u64,
    column: Option<u64>,
    outcome: Result<Option<ReadTeamsRow>, FieldError>,
) {
    parsed.read += 1;
    match outcome {
        Ok(Some(row)) => parsed.push(row.row.id, row),
        Ok(None) => parsed.filtered += 1,
        Err((field, why)) => parsed.reject(line, column, Some(field), why),
    }
}

/// The call id and the two numbers of the row at the start of `bytes`, for `mismatches.csv`.
pub(crate) fn describe<'a>(shape: &TeamsShape, bytes: &'a [u8]) -> Described<'a> {
    match shape {
        TeamsShape::Csv(columns) => csv::describe(columns, bytes),
        TeamsShape::Json | TeamsShape::Ndjson => json::describe(bytes),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const ROW: &str = r#"{"id":"9c4984c7-6c3c-427d-a30c-bd0b2eacee90","callId":"1835317186_112562680@61.221.3.176","userId":"db03c14b-06eb-4189-939b-7cbf3a20ba27","userPrincipalName":"richard.malk@contoso.com","userDisplayName":"Richard Malk","startDateTime":"2019-11-01T00:00:08.2589935Z","endDateTime":"2019-11-01T00:03:47.2589935Z","duration":219,"charge":0,"callType":"user_in","currency":"USD","calleeNumber":"+1234567890","usageCountryCode":"US","tenantCountryCode":"US","connectionCharge":0,"callerNumber":"+0987654321","destinationContext":null,"destinationName":"United States","conferenceId":null,"licenseCapability":"MCOPSTNU","inventoryType":"Subscriber","operator":"Contoso Telecom","callDurationSource":"operator"}"#;

    pub(crate) fn all() -> Filters {
        Filters::default()
    }

    #[test]
    fn detection_reads_content_not_names() {
        assert!(matches!(
            detect(format!("{{\"@odata.context\":\"x\",\"value\":[{ROW}]}}").as_bytes()),
            Detected::Json
        ));
        assert!(matches!(
            detect(format!("[{ROW}]").as_bytes()),
            Detected::Json
        ));
        assert!(matches!(
            detect(format!("\u{feff}  {ROW}\n{ROW}\n").as_bytes()),
            Detected::Ndjson
        ));
        assert!(matches!(
            detect(b"{\n  \"@odata.context\": \"x\",\n  \"value\": []\n}"),
            Detected::Json
        ));
        assert!(matches!(
            detect(b"id,callId,startDateTime,endDateTime\n"),
            Detected::Csv
        ));
    }

    #[test]
    fn rows_are_described_again_from_their_offset() {
        let columns = CsvColumns::from_header(csv::tests::CSV_HEADER.as_bytes()).unwrap();
        let line = b"r1,c1,x,2019-11-01T00:00:08Z,2019-11-01T00:00:09Z,1,,user_in,USD,+1,+2,O,operator\nnext";
        assert_eq!(
            describe(&TeamsShape::Csv(columns), line),
            ("c1".into(), "+2".into(), "+1".into())
        );
        let json = format!("{ROW}, {ROW}]}}");
        assert_eq!(
            describe(&TeamsShape::Json, json.as_bytes()).0,
            "1835317186_112562680@61.221.3.176"
        );
    }
}
