//! Graph's JSON: pages (`{"@odata.context", "value": [...], "@odata.nextLink"}`, one per
//! file, concatenated, or in an array), an array of rows, or NDJSON of rows; each row read, and
//! rejected, on its own, with the line and column where it went wrong.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::super::mismatches::Described;
use super::super::rows::{ChargeSums, Filters, Parsed, ReadTeamsRow};
use super::super::source::{lines_inclusive, pack_source, trim_cr};
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

fn bytes<'a>(value: &'a Option<Cow<'a, str>>) -> Option<&'a [u8]> {
    value.as_deref().map(str::as_bytes)
}

/// Why a JSON row was rejected: where serde stopped in it (line, column), when it did; the
/// field, when one was wrong; the message.
type RowFault = (Option<(usize, usize)>, Option<&'static str>, String);

/// Reads one row object; a JSON error is its line and column within `json` and its message.
fn graph_row(
    json: &str,
    filters: &Filters,
    source: u64,
    charges: &mut ChargeSums,
) -> Result<Option<ReadTeamsRow>, RowFault> {
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
) -> Parsed<ReadTeamsRow> {
    let mut parsed = Parsed::new(file, first_line);
    let mut at = 0;
    for (line_no, raw) in lines_inclusive(chunk).enumerate() {
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
            Ok(Some(row)) => parsed.push(row.row.id, row),
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

/// Reads a part of a JSON file cut between whole top-level items ([`super::super::source::JsonCut`]),
/// `offset` bytes into the file, its first byte at 0-based column `first_column` of its first
/// line: Graph pages — concatenated, or in an array — or rows, in an array or concatenated. A
/// file that is not JSON past some point is reported there, once, and not read further
/// ([`Parsed::stopped`]); [`Parsed::array_balance`] counts the top-level array's brackets, so
/// that one left open at the end of the file is reported.
pub(crate) fn parse_json(
    content: &[u8],
    offset: u64,
    file: u16,
    first_line: Option<u64>,
    first_column: u64,
    filters: &Filters,
) -> Parsed<ReadTeamsRow> {
    let mut parsed = Parsed::new(file, first_line);
    parsed.lines = memchr::memchr_iter(b'\n', content).count() as u64;
    let mut positions = Positions {
        text: content,
        at: 0,
        line: 1,
        line_start: 0,
    };
    // 0-based line and 1-based column in the file's terms of a 1-based (line, column) within
    // `content`.
    let place = |(line, column): (u64, u64)| {
        let column = if line == 1 {
            column + first_column
        } else {
            column
        };
        (line - 1, column)
    };
    let Ok(text) = std::str::from_utf8(content) else {
        parsed.read += 1;
        parsed.reject(0, None, None, "not UTF-8");
        parsed.stopped = true;
        return parsed;
    };
    let offset_of = |raw: &str| raw.as_ptr() as usize - text.as_ptr() as usize;
    let file_offset = offset;
    let mut values: Vec<&RawValue> = Vec::new();
    let mut at = if offset == 0 {
        text.len() - text.trim_start_matches('\u{feff}').len()
    } else {
        0
    };
    let bytes = text.as_bytes();
    // Between items: white space, their commas, and the top-level array's brackets (which
    // opens at the file's first byte that is not white space).
    let mut started = offset > 0;
    loop {
        while let Some(&b) = bytes.get(at) {
            match b {
                b' ' | b'\t' | b'\r' | b'\n' => {}
                b',' => started = true,
                b'[' if !started => {
                    parsed.array_balance += 1;
                    started = true;
                }
                b']' => parsed.array_balance -= 1,
                _ => break,
            }
            at += 1;
        }
        started = true;
        if at == bytes.len() {
            break;
        }
        let mut stream = serde_json::Deserializer::from_str(&text[at..]).into_iter::<&RawValue>();
        match stream.next() {
            Some(Ok(item)) => {
                values.push(item);
                at += stream.byte_offset();
            }
            Some(Err(e)) => {
                let (line, column) = positions.of(at);
                let (line, column) = if e.line() == 1 {
                    (line, column + e.column() as u64 - 1)
                } else {
                    (line + e.line() as u64 - 1, e.column() as u64)
                };
                let (line, column) = place((line, column));
                parsed.read += 1;
                parsed.reject(
                    line,
                    Some(column),
                    None,
                    format!("{e}; the file is not read past it"),
                );
                parsed.stopped = true;
                break;
            }
            None => break,
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
            let offset_in_file = file_offset;
            parsed.read += 1;
            match graph_row(
                json,
                filters,
                pack_source(file, offset_in_file + offset as u64),
                &mut parsed.charges,
            ) {
                Ok(Some(row)) => parsed.push(row.row.id, row),
                Ok(None) => parsed.filtered += 1,
                Err((position, field, why)) => {
                    let (line, column) = positions.of(offset);
                    let (line, column) = match position {
                        Some((1, c)) => (line, column + c as u64 - 1),
                        Some((l, c)) => (line + l as u64 - 1, c as u64),
                        None => (line, column),
                    };
                    let (line, column) = place((line, column));
                    parsed.reject(line, Some(column), field, why);
                }
            }
        }
    }
    parsed
}

/// The call id and the two numbers of the JSON row at the start of `bytes`.
pub(super) fn describe(bytes: &[u8]) -> Described<'_> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Default::default();
    };
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<GraphRow<'_>>();
    match stream.next() {
        Some(Ok(row)) => {
            let s = Option::unwrap_or_default;
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
    use crate::reconcile::source::{JsonCut, Lines, visit_offsets};

    /// A whole file read as one chunk.
    fn whole(content: &[u8]) -> Parsed<ReadTeamsRow> {
        parse_json(content, 0, 0, Some(1), 0, &all())
    }

    fn page(rows: &[String]) -> String {
        format!(
            "{{\"@odata.context\":\"x\",\n\"value\":[{}],\"@odata.nextLink\":\"https://graph\"}}",
            rows.join(",\n")
        )
    }

    /// Rows whose call ids tell them apart.
    fn numbered(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| ROW.replace("1835317186_112562680", &format!("call-{i}")))
            .collect()
    }

    #[test]
    fn a_big_file_is_cut_between_items_and_read_in_chunks_alike() {
        let rows = numbered(12_000);
        let pages: Vec<String> = rows.chunks(1000).map(page).collect();
        let shapes = [
            // Concatenated pages, an array of pages (minified: one line), an array of rows.
            pages.join("\n"),
            format!("[{}]", pages.join(",")).replace('\n', ""),
            format!("[\n{}\n]\n", rows.join(",\n")),
        ];
        for shape in shapes {
            let path = std::env::temp_dir().join(format!(
                "oc-reconcile-json-{}-{}.json",
                std::process::id(),
                shape.len()
            ));
            std::fs::write(&path, &shape).unwrap();
            let mut lines = Lines::new(crate::reconcile::source::open(&path).unwrap());
            let mut cut = JsonCut::default();
            let (mut chunks, mut read, mut balance, mut column) = (0, 0, 0, 0u64);
            let mut ids = Vec::new();
            let mut line = 1;
            while let Some((offset, chunk)) = lines.next_json_chunk(&mut cut, Vec::new()).unwrap() {
                let parsed = parse_json(&chunk, offset, 0, Some(line), column, &all());
                assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
                line += parsed.lines;
                column = match memchr::memrchr(b'\n', &chunk) {
                    Some(end) => (chunk.len() - end - 1) as u64,
                    None => column + chunk.len() as u64,
                };
                read += parsed.read;
                balance += parsed.array_balance;
                ids.extend(parsed.all_rows().iter().map(|r| (r.row.id, r.row.source)));
                chunks += 1;
            }
            assert!(chunks > 1, "one chunk of {} bytes", shape.len());
            assert_eq!((read, ids.len(), balance), (12_000, 12_000, 0));
            // Every row's place reads back to it, a window of the file at a time.
            let offsets: Vec<u64> = ids.iter().map(|&(_, source)| source).collect();
            let mut described = Vec::new();
            visit_offsets(&path, &offsets, true, |_, bytes| {
                described.push(describe(bytes).0.into_owned())
            })
            .unwrap();
            assert_eq!(described.len(), 12_000);
            for (i, (&(id, _), text)) in ids.iter().zip(&described).enumerate() {
                assert_eq!(text, &format!("call-{i}@61.221.3.176"));
                assert_eq!(id, crate::reconcile::text::hash(text.as_bytes()));
            }
            std::fs::remove_file(&path).unwrap();
        }
    }

    #[test]
    fn an_array_cut_short_or_a_stray_bracket_shows_in_the_balance() {
        assert_eq!(whole(format!("[{ROW},{ROW}").as_bytes()).array_balance, 1);
        assert_eq!(whole(format!("{ROW}]").as_bytes()).array_balance, -1);
        assert_eq!(whole(format!(" \n[{ROW}]\n").as_bytes()).array_balance, 0);
        // A chunk later in the file: a `[` there is an item, not the top-level array.
        let later = parse_json(format!("{ROW}]").as_bytes(), 10, 0, None, 3, &all());
        assert_eq!((later.all_rows().len(), later.array_balance), (1, -1));
        let broken = parse_json(b"{\"value\": x}", 10, 0, None, 3, &all());
        assert!(broken.stopped);
        // Line 0 of the chunk, whose first byte is column 4 of its line: 3 + the 11th byte.
        assert_eq!(broken.problems[0].column, Some(14));
    }

    #[test]
    fn a_graph_row_reads_into_a_compact_row() {
        let parsed = whole(format!("{{\"@odata.context\":\"x\",\"value\":[{ROW}],\"@odata.nextLink\":\"https://graph\"}}").as_bytes());
        assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
        let read = parsed.all_rows()[0];
        let row = read.row;
        assert_eq!(row.id, text::hash(b"1835317186_112562680@61.221.3.176"));
        assert_eq!(row.measured, 219 * text::SECOND);
        assert_eq!(row.billed(), Some(219));
        assert_eq!(row.duration_source(), DurationSource::Operator);
        // Inbound: the user's number is the callee.
        assert_eq!(read.number, text::number_key(b"+1234567890"));
        assert_eq!(
            row.start,
            text::parse_rfc3339(b"2019-11-01T00:00:08.2589935Z", None).unwrap()
        );
        assert_eq!(parsed.charges.sum("USD"), Some(0));
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
            let parsed = whole(shape.as_bytes());
            assert_eq!(
                (parsed.read, parsed.all_rows().len(), parsed.problems.len()),
                (3, 3, 0),
                "{shape}"
            );
        }
        let ndjson = format!("{ROW}\n{ROW}\n\n{ROW}");
        let parsed = parse_ndjson(ndjson.as_bytes(), 0, 0, Some(1), &all());
        assert_eq!(
            (parsed.read, parsed.all_rows().len(), parsed.lines),
            (3, 3, 4)
        );
    }

    #[test]
    fn a_broken_row_in_a_page_is_located_and_the_others_kept() {
        let bad = ROW.replace("\"duration\":219", "\"duration\":\"long\"");
        let content = format!("{{\n\"value\": [\n{ROW},\n{bad},\n{ROW}\n]\n}}");
        let parsed = whole(content.as_bytes());
        assert_eq!((parsed.read, parsed.all_rows().len()), (3, 2));
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
        let parsed = whole(format!("[{late}]").as_bytes());
        assert_eq!(parsed.problems[0].field.as_deref(), Some("endDateTime"));
        assert_eq!(parsed.problems[0].column, Some(2));

        let parsed = whole(b"{\"value\": [\n{\"callId\": }]}");
        assert_eq!(parsed.problems.len(), 1);
        assert_eq!(
            (parsed.problems[0].line, parsed.problems[0].column),
            (1, Some(12))
        );
    }
}
