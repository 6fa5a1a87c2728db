//! Graph's JSON: pages (`{"@odata.context", "value": [...], "@odata.nextLink"}`, one per
//! file, concatenated, or in an array), an array of rows, or NDJSON of rows; each row read, and
//! rejected, on its own, with the line and column where it went wrong.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::super::rows::{Filters, Parsed, TeamsRow};
use super::super::source::{pack_source, trim_cr};
use super::{Fields, build};

/// A `pstnCallLogRow` as Graph writes it (other properties are ignored).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GraphRow<'a> {
    #[serde(borrow, default)]
    call_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    start_date_time: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    end_date_time: Option<Cow<'a, str>>,
    #[serde(default)]
    duration: Option<i64>,
    #[serde(default)]
    charge: Option<f64>,
    #[serde(borrow, default)]
    currency: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    call_type: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    caller_number: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    callee_number: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    operator: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    call_duration_source: Option<Cow<'a, str>>,
}

fn bytes<'a>(value: &'a Option<Cow<'a, str>>) -> Option<Cow<'a, [u8]>> {
    value.as_deref().map(|s| Cow::Borrowed(s.as_bytes()))
}

/// Why a JSON row was rejected: where serde stopped in it (line, column), when it did; the
/// field, when one was wrong; the message.
type RowFault = (Option<(usize, usize)>, Option<&'static str>, String);

/// Reads one row object; a JSON error is its line and column within `json` and its message.
fn graph_row(
    json: &str,
    filters: &Filters,
    source: u64,
    charges: &mut BTreeMap<String, i64>,
) -> Result<Option<TeamsRow>, RowFault> {
    let row: GraphRow<'_> = serde_json::from_str(json)
        .map_err(|e| (Some((e.line(), e.column())), None, e.to_string()))?;
    let fields = Fields {
        call_id: bytes(&row.call_id),
        start: bytes(&row.start_date_time),
        end: bytes(&row.end_date_time),
        duration: row.duration,
        charge: match row.charge {
            Some(c) if c.is_finite() => Some((c * 1e6).round() as i64),
            _ => None,
        },
        currency: bytes(&row.currency),
        call_type: bytes(&row.call_type),
        caller: bytes(&row.caller_number),
        callee: bytes(&row.callee_number),
        operator: bytes(&row.operator),
        duration_source: bytes(&row.call_duration_source),
    };
    build(&fields, filters, source, charges).map_err(|(field, why)| (None, Some(field), why))
}

/// Reads a chunk of NDJSON lines.
pub(crate) fn parse_ndjson(
    chunk: &[u8],
    offset: u64,
    file: u16,
    first_line: Option<u64>,
    filters: &Filters,
) -> Parsed<TeamsRow> {
    let mut parsed = Parsed::new(file, first_line);
    let mut at = 0;
    for (line_no, raw) in chunk.split_inclusive(|&b| b == b'\n').enumerate() {
        let line_no = line_no as u64;
        let start = at;
        at += raw.len();
        parsed.lines += 1;
        let line = trim_cr(raw.strip_suffix(b"\n").unwrap_or(raw));
        if line.trim_ascii().is_empty() {
            continue;
        }
        parsed.read += 1;
        let Ok(json) = std::str::from_utf8(line) else {
            parsed.reject(line_no, None, None, "not UTF-8");
            continue;
        };
        match graph_row(
            json,
            filters,
            pack_source(file, offset + start as u64),
            &mut parsed.charges,
        ) {
            Ok(Some(row)) => parsed.rows.push(row),
            Ok(None) => parsed.filtered += 1,
            Err((position, field, why)) => {
                parsed.reject(line_no, position.map(|(_, c)| c as u64), field, why)
            }
        }
    }
    parsed
}

/// A Graph page: its rows, kept as raw JSON so that each is read (and rejected) alone.
#[derive(Deserialize)]
struct Page<'a> {
    #[serde(borrow)]
    value: Option<Vec<&'a RawValue>>,
}

/// Line and column (1-based) of byte offsets in a text, asked in ascending order.
struct Positions<'a> {
    text: &'a [u8],
    at: usize,
    line: u64,
    line_start: usize,
}

impl Positions<'_> {
    fn of(&mut self, offset: usize) -> (u64, u64) {
        if offset < self.at {
            (self.at, self.line, self.line_start) = (0, 1, 0);
        }
        for i in memchr::memchr_iter(b'\n', &self.text[self.at..offset]) {
            self.line += 1;
            self.line_start = self.at + i + 1;
        }
        self.at = offset;
        (self.line, (offset - self.line_start) as u64 + 1)
    }
}

/// Reads a whole JSON file (`content` from offset 0): Graph pages — concatenated, or in an
/// array — or rows, in an array or concatenated. A file that is not JSON past some point is
/// reported there, once, and not read further.
pub(crate) fn parse_json(content: &[u8], file: u16, filters: &Filters) -> Parsed<TeamsRow> {
    let mut parsed = Parsed::new(file, Some(1));
    parsed.lines = memchr::memchr_iter(b'\n', content).count() as u64 + 1;
    let Ok(text) = std::str::from_utf8(content) else {
        parsed.read += 1;
        parsed.reject(0, None, None, "not UTF-8");
        return parsed;
    };
    let body = text.trim_start_matches('\u{feff}');
    let mut positions = Positions {
        text: content,
        at: 0,
        line: 1,
        line_start: 0,
    };
    let offset_of = |raw: &str| raw.as_ptr() as usize - text.as_ptr() as usize;
    let mut values: Vec<&RawValue> = Vec::new();
    if body.trim_start().starts_with('[') {
        match serde_json::from_str::<Vec<&RawValue>>(body) {
            Ok(items) => values = items,
            Err(e) => {
                parsed.read += 1;
                parsed.reject(
                    e.line() as u64 - 1,
                    Some(e.column() as u64),
                    None,
                    format!("{e}; the file is not read past it"),
                );
                return parsed;
            }
        }
    } else {
        for item in serde_json::Deserializer::from_str(body).into_iter::<&RawValue>() {
            match item {
                Ok(item) => values.push(item),
                Err(e) => {
                    parsed.read += 1;
                    parsed.reject(
                        e.line() as u64 - 1,
                        Some(e.column() as u64),
                        None,
                        format!("{e}; the file is not read past it"),
                    );
                    break;
                }
            }
        }
    }
    for value in values {
        let rows = match serde_json::from_str::<Page<'_>>(value.get()) {
            Ok(Page { value: Some(rows) }) => rows,
            _ => vec![value],
        };
        for row in rows {
            let json = row.get();
            let offset = offset_of(json);
            parsed.read += 1;
            match graph_row(
                json,
                filters,
                pack_source(file, offset as u64),
                &mut parsed.charges,
            ) {
                Ok(Some(row)) => parsed.rows.push(row),
                Ok(None) => parsed.filtered += 1,
                Err((position, field, why)) => {
                    let (line, column) = positions.of(offset);
                    let (line, column) = match position {
                        Some((1, c)) => (line, column + c as u64 - 1),
                        Some((l, c)) => (line + l as u64 - 1, c as u64),
                        None => (line, column),
                    };
                    parsed.reject(line - 1, Some(column), field, why);
                }
            }
        }
    }
    parsed
}

/// The call id and the two numbers of the JSON row at the start of `bytes`.
pub(super) fn describe(bytes: &[u8]) -> (String, String, String) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Default::default();
    };
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<GraphRow<'_>>();
    match stream.next() {
        Some(Ok(row)) => {
            let s = |v: Option<Cow<'_, str>>| v.map(Cow::into_owned).unwrap_or_default();
            (s(row.call_id), s(row.caller_number), s(row.callee_number))
        }
        _ => Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::text;
    use super::super::DurationSource;
    use super::super::tests::{ROW, all};
    use super::*;

    #[test]
    fn a_graph_row_reads_into_a_compact_row() {
        let parsed = parse_json(format!("{{\"@odata.context\":\"x\",\"value\":[{ROW}],\"@odata.nextLink\":\"https://graph\"}}").as_bytes(), 0, &all());
        assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
        let row = parsed.rows[0];
        assert_eq!(row.id, text::hash(b"1835317186_112562680@61.221.3.176"));
        assert_eq!(row.measured, 219 * text::SECOND);
        assert_eq!(row.billed, 219);
        assert_eq!(row.duration_source, DurationSource::Operator);
        // Inbound: the user's number is the callee.
        assert_eq!(row.number, text::number_key(b"+1234567890"));
        assert_eq!(
            row.start,
            text::parse_rfc3339(b"2019-11-01T00:00:08.2589935Z", None).unwrap()
        );
        assert_eq!(parsed.charges.get("USD"), Some(&0));
    }

    #[test]
    fn every_json_shape_gives_the_same_rows() {
        let page = |n: usize| {
            format!(
                "{{\"@odata.context\":\"x\",\"value\":[{}]}}",
                vec![ROW; n].join(",")
            )
        };
        let shapes = [
            page(3),
            format!("{}\n{}", page(1), page(2)),
            format!("[{}, {}]", page(2), page(1)),
            format!("[{ROW},{ROW},{ROW}]"),
        ];
        for shape in shapes {
            let parsed = parse_json(shape.as_bytes(), 0, &all());
            assert_eq!(
                (parsed.read, parsed.rows.len(), parsed.problems.len()),
                (3, 3, 0),
                "{shape}"
            );
        }
        let ndjson = format!("{ROW}\n{ROW}\n\n{ROW}");
        let parsed = parse_ndjson(ndjson.as_bytes(), 0, 0, Some(1), &all());
        assert_eq!((parsed.read, parsed.rows.len(), parsed.lines), (3, 3, 4));
    }

    #[test]
    fn a_broken_row_in_a_page_is_located_and_the_others_kept() {
        let bad = ROW.replace("\"duration\":219", "\"duration\":\"long\"");
        let content = format!("{{\n\"value\": [\n{ROW},\n{bad},\n{ROW}\n]\n}}");
        let parsed = parse_json(content.as_bytes(), 0, &all());
        assert_eq!((parsed.read, parsed.rows.len()), (3, 2));
        let problem = &parsed.problems[0];
        // 0-based line 3 is the fourth line; the column is where serde stopped in it.
        assert_eq!(problem.line, 3);
        let column = bad.find("\"long\"").unwrap() as u64 + "\"long\"".len() as u64;
        assert_eq!(problem.column, Some(column), "{problem:?}");
        assert!(problem.message.contains("invalid type"), "{problem:?}");

        let late = ROW.replace(
            "\"endDateTime\":\"2019-11-01T00:03:47.2589935Z\"",
            "\"endDateTime\":\"2019-11-01T00:00:00Z\"",
        );
        let parsed = parse_json(format!("[{late}]").as_bytes(), 0, &all());
        assert_eq!(parsed.problems[0].field.as_deref(), Some("endDateTime"));
        assert_eq!(parsed.problems[0].column, Some(2));

        let parsed = parse_json(b"{\"value\": [\n{\"callId\": }]}", 0, &all());
        assert_eq!(parsed.problems.len(), 1);
        assert_eq!(
            (parsed.problems[0].line, parsed.problems[0].column),
            (1, Some(12))
        );
    }
}
