//! The CSV of `m365 teams report pstncalls --output csv`: a header row of `pstnCallLogRow`
//! property names, then one row per call, fields quoted when they need to be.

use std::borrow::Cow;

use super::super::mismatches::Described;
use super::super::rows::{ChargeSums, Filters, Parsed, ReadTeamsRow};
use super::super::source::{pack_source, trim_cr};
use super::super::text::{self, Span};
use super::{FieldError, Fields, build, keep};

/// The columns of a Teams CSV, by position (0-based); only `startDateTime` and `endDateTime`
/// are required, the others [`text::NO_FIELD`] when the file does not have them: the row loop
/// reads them as empty fields, which [`build`] reads as it reads absent ones (all but
/// `operator`'s), without a test a column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CsvColumns {
    call_id: usize,
    start: usize,
    end: usize,
    duration: usize,
    charge: usize,
    currency: usize,
    call_type: usize,
    caller: usize,
    callee: usize,
    operator: usize,
    duration_source: usize,
    /// How many columns the header has.
    width: usize,
}

impl CsvColumns {
    /// Reads the header (the property names, ASCII case ignored); an error names what is missing.
    pub(crate) fn from_header(header: &[u8]) -> Result<Self, String> {
        let header = header.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(header);
        let mut spans = Vec::new();
        text::split(header, b',', &mut spans)
            .map_err(|(_, why)| format!("the header row: {why}"))?;
        let names: Vec<Vec<u8>> = spans
            .iter()
            .map(|&s| text::field(header, s).trim_ascii().to_vec())
            .collect();
        let find = |name: &str| {
            names
                .iter()
                .position(|n| n.eq_ignore_ascii_case(name.as_bytes()))
        };
        let required = |name: &str| {
            find(name).ok_or_else(|| {
                format!(
                    "not a Teams call log: the header row has no `{name}` column (expected Graph \
                     JSON pages, NDJSON rows, or the CSV of `m365 teams report pstncalls`)"
                )
            })
        };
        let optional = |name: &str| find(name).unwrap_or(text::NO_FIELD);
        Ok(Self {
            start: required("startDateTime")?,
            end: required("endDateTime")?,
            call_id: optional("callId"),
            duration: optional("duration"),
            charge: optional("charge"),
            currency: optional("currency"),
            call_type: optional("callType"),
            caller: optional("callerNumber"),
            callee: optional("calleeNumber"),
            operator: optional("operator"),
            duration_source: optional("callDurationSource"),
            width: names.len(),
        })
    }
}

/// A column's position, `None` for [`text::NO_FIELD`].
fn column(i: usize) -> Option<usize> {
    (i != text::NO_FIELD).then_some(i)
}

impl CsvColumns {
    /// The columns of the call id, the calling and the called number: what [`describe`] reads,
    /// for `mismatches.csv`'s fast path.
    pub(crate) fn described(&self) -> [usize; 3] {
        [self.call_id, self.caller, self.callee]
    }

    /// The position of a field that [`build`] names in an error.
    fn position(&self, name: &str) -> Option<usize> {
        match name {
            "startDateTime" => Some(self.start),
            "endDateTime" => Some(self.end),
            "duration" => column(self.duration),
            "charge" => column(self.charge),
            "callDurationSource" => column(self.duration_source),
            _ => None,
        }
    }
}

/// Reads a chunk of CSV lines (`offset`: the chunk's byte offset in its file).
pub(crate) fn parse_csv(
    columns: &CsvColumns,
    chunk: &[u8],
    offset: u64,
    file: u16,
    first_line: Option<u64>,
    filters: &Filters,
    rows: Vec<Vec<ReadTeamsRow>>,
) -> Parsed<ReadTeamsRow> {
    let mut parsed = Parsed::new(file, first_line);
    // `rows`: vectors used before, one per partition (see the carrier's `parse_csv`).
    parsed.keep_in(rows, chunk.len());
    let mut spans = Vec::with_capacity(columns.width + 1);
    let mut next_line = 0u64;
    let mut quoted = text::QuotedLines::default();
    let mut lines = text::LineScanner::new(chunk, b',');
    while let Some(scanned) = lines.next_line() {
        let line_no = next_line;
        next_line += 1;
        parsed.lines += 1;
        let line = scanned.line;
        if quoted.continues(line) || line.is_empty() {
            continue;
        }
        let source = pack_source(file, offset + scanned.start as u64);
        // Most lines: no quote, and the header's number of fields, read straight from the
        // delimiters found with the line end.
        if let Some(bounds) = scanned.bounds
            && bounds.len() == columns.width + 1
        {
            let field = |i: usize| text::bounded_field(line, bounds, i);
            let outcome = (|| {
                let fields = Fields {
                    call_id: Some(field(columns.call_id)),
                    start: Some(field(columns.start)),
                    end: Some(field(columns.end)),
                    duration: number("duration", Some(field(columns.duration)), false)?,
                    charge: number("charge", Some(field(columns.charge)), true)?,
                    currency: Some(field(columns.currency)),
                    call_type: Some(field(columns.call_type)),
                    caller: Some(field(columns.caller)),
                    callee: Some(field(columns.callee)),
                    operator: column(columns.operator).map(field),
                    duration_source: Some(field(columns.duration_source)),
                };
                build(&fields, filters, source, &mut parsed.charges)
            })();
            // A kept row is pushed here, inlined; the others go through `keep`'s call (a call
            // for every row, the row passed in memory, cost 40 instructions a row, and
            // `keep` forced inline made the loop longer still).
            match outcome {
                Ok(Some(row)) => {
                    parsed.read += 1;
                    parsed.push(row.row.id, row);
                }
                outcome => {
                    let column = outcome.as_ref().err().and_then(|(field, _)| {
                        let i = columns.position(field)?;
                        Some(u64::from(bounds[i].wrapping_add(1)) + 1)
                    });
                    keep(&mut parsed, line_no, column, outcome);
                }
            }
            continue;
        }
        quoted_row(
            columns,
            line,
            scanned.delimiters,
            (line_no, source),
            filters,
            &mut spans,
            &mut quoted,
            &mut parsed,
        );
    }
    parsed
}

/// A row's outcome from its fields (`get`: the field at a position, `None` past the last).
#[inline(always)]
fn read_row<'b>(
    columns: &CsvColumns,
    get: impl Fn(usize) -> Option<&'b [u8]>,
    filters: &Filters,
    source: u64,
    charges: &mut ChargeSums,
) -> Result<Option<ReadTeamsRow>, FieldError> {
    let fields = Fields {
        call_id: get(columns.call_id),
        start: get(columns.start),
        end: get(columns.end),
        duration: number("duration", get(columns.duration), false)?,
        charge: number("charge", get(columns.charge), true)?,
        currency: get(columns.currency),
        call_type: get(columns.call_type),
        caller: get(columns.caller),
        callee: get(columns.callee),
        operator: get(columns.operator),
        duration_source: get(columns.duration_source),
    };
    build(&fields, filters, source, charges)
}

/// A line the fast path of [`parse_csv`] does not read: one with a quote (split field by
/// field, and unescaped when a field has doubled quotes), or with another number of fields
/// than the header (rejected).
#[expect(
    clippy::too_many_arguments,
    reason = "the state of parse_csv's loop, passed apart so that the loop keeps it in registers"
)]
#[inline(never)]
fn quoted_row(
    columns: &CsvColumns,
    line: &[u8],
    delimiters: Option<&[u32]>,
    (line_no, source): (u64, u64),
    filters: &Filters,
    spans: &mut Vec<Span>,
    quoted: &mut text::QuotedLines,
    parsed: &mut Parsed<ReadTeamsRow>,
) {
    let fields = match text::LineFields::of_line(line, delimiters, b',', spans) {
        Ok(fields) => fields,
        Err((column, why)) => {
            parsed.read += 1;
            quoted.rejected(why);
            parsed.reject(line_no, Some(column as u64 + 1), None, why);
            return;
        }
    };
    if fields.len() != columns.width {
        parsed.read += 1;
        parsed.reject(
            line_no,
            None,
            None,
            format!(
                "{} fields where the header has {}",
                fields.len(),
                columns.width
            ),
        );
        return;
    }
    // Fields are slices of the line; a line with doubled quotes in a quoted field has its
    // fields unescaped first (an empty list costs nothing).
    let unescaped: Vec<Cow<'_, [u8]>> = if fields.escaped() {
        (0..fields.len()).map(|i| fields.get(i)).collect()
    } else {
        Vec::new()
    };
    let get = |i: usize| pick(&fields, &unescaped, i);
    let outcome = read_row(columns, get, filters, source, &mut parsed.charges);
    let column = outcome
        .as_ref()
        .err()
        .and_then(|(field, _)| columns.position(field))
        .map(|i| u64::from(fields.start(i)) + 1);
    keep(parsed, line_no, column, outcome);
}

/// Field `i` of a row, when the file has that column: from the unescaped copies when the line
/// has doubled quotes (a function, not a closure, so that it is always inlined).
#[inline(always)]
fn pick<'b>(
    fields: &text::LineFields<'b>,
    unescaped: &'b [Cow<'_, [u8]>],
    i: usize,
) -> Option<&'b [u8]> {
    if i >= fields.len() {
        return None;
    }
    Some(match unescaped.get(i) {
        Some(copy) => copy,
        None => fields.raw(i),
    })
}

/// A whole number (`money`: a decimal amount, as millionths) from a field, `None` when it is
/// absent or empty.
#[inline(always)]
fn number(
    name: &'static str,
    value: Option<&[u8]>,
    money: bool,
) -> Result<Option<i64>, FieldError> {
    match value.map(text::trim) {
        None | Some(b"") => Ok(None),
        Some(v) if money => text::parse_money(v).map(Some).ok_or_else(|| {
            (
                name,
                format!("not a number: `{}`", String::from_utf8_lossy(v)),
            )
        }),
        Some(v) => text::parse_int(v).map(Some).ok_or_else(|| {
            (
                name,
                format!("not a whole number: `{}`", String::from_utf8_lossy(v)),
            )
        }),
    }
}

/// The call id and the two numbers of the CSV row at the start of `bytes`.
pub(super) fn describe<'a>(columns: &CsvColumns, bytes: &'a [u8]) -> Described<'a> {
    let line = trim_cr(&bytes[..memchr::memchr(b'\n', bytes).unwrap_or(bytes.len())]);
    let mut spans: Vec<Span> = Vec::with_capacity(columns.width + 1);
    if text::split(line, b',', &mut spans).is_err() {
        return Default::default();
    }
    let get = |i: usize| {
        spans
            .get(i)
            .map_or(Cow::Borrowed(""), |&s| text::lossy(text::field(line, s)))
    };
    (
        get(columns.call_id),
        get(columns.caller),
        get(columns.callee),
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::DurationSource;
    use super::super::tests::all;
    use super::*;

    pub(crate) const CSV_HEADER: &str = "id,callId,userPrincipalName,startDateTime,endDateTime,duration,charge,callType,currency,calleeNumber,callerNumber,operator,callDurationSource";

    #[test]
    fn the_m365_csv_reads_like_the_json() {
        let columns = CsvColumns::from_header(CSV_HEADER.as_bytes()).unwrap();
        let body = "r1,c1,\"malk, richard\",2019-11-01T00:00:08.2589935Z,2019-11-01T00:03:47.2589935Z,219,0.5,user_out,USD,+1234567890,+0987654321,Contoso Telecom,microsoft\r\n\
                    r2,c2,x,2019-11-01T00:00:08Z,2019-11-01T00:00:09Z,1,,user_in,USD,+1,+2,Other,operator\n";
        let parsed = parse_csv(
            &columns,
            body.as_bytes(),
            100,
            2,
            Some(2),
            &all(),
            Vec::new(),
        );
        assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
        assert_eq!(parsed.all_rows().len(), 2);
        assert_eq!(
            parsed.all_rows()[0].number,
            text::number_key(b"+0987654321")
        );
        assert_eq!(
            parsed.all_rows()[0].row.duration_source(),
            DurationSource::Microsoft
        );
        assert_eq!(
            parsed.all_rows()[1].row.source,
            pack_source(2, 100 + body.find("r2").unwrap() as u64)
        );
        assert_eq!(parsed.charges.sum("USD"), Some(500_000));
        let filtered = parse_csv(
            &columns,
            body.as_bytes(),
            0,
            0,
            None,
            &Filters {
                operator: Some("contoso telecom".into()),
                ..Filters::default()
            },
            Vec::new(),
        );
        assert_eq!(
            (filtered.all_rows().len(), filtered.filtered, filtered.read),
            (1, 1, 2)
        );
    }

    #[test]
    fn fields_with_doubled_quotes_are_read_unescaped() {
        let columns = CsvColumns::from_header(CSV_HEADER.as_bytes()).unwrap();
        let body = "r1,c1,x,2019-11-01T00:00:08Z,2019-11-01T00:00:09Z,1,0.5,user_in,\"U\"\"SD\",+1,+2,\"Say \"\"Hi\"\"\",operator\n";
        let filters = Filters {
            operator: Some("say \"hi\"".into()),
            ..Filters::default()
        };
        let parsed = parse_csv(
            &columns,
            body.as_bytes(),
            0,
            0,
            Some(2),
            &filters,
            Vec::new(),
        );
        assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
        assert_eq!((parsed.all_rows().len(), parsed.filtered), (1, 0));
        assert_eq!(parsed.charges.sum("U\"SD"), Some(500_000));
        assert_eq!(parsed.all_rows()[0].row.id, text::hash(b"c1"));
    }

    #[test]
    fn a_broken_csv_row_names_its_line_column_and_field() {
        let columns = CsvColumns::from_header(CSV_HEADER.as_bytes()).unwrap();
        let body = "r1,c1,x,2019-11-01T00:00:08Z,2019-11-01T00:00:09Z,1,,user_in,USD,+1,+2,O,operator\n\
                    r2,c2,x,2019-11-01T00:00:08Z,2019-13-01T00:00:09Z,1,,user_in,USD,+1,+2,O,operator\n\
                    r3,c3,x,2019-11-01T00:00:08Z,2019-11-01T00:00:09Z,ten,,user_in,USD,+1,+2,O,operator\n\
                    r4,c4\n";
        let parsed = parse_csv(&columns, body.as_bytes(), 0, 0, Some(2), &all(), Vec::new());
        assert_eq!((parsed.read, parsed.all_rows().len()), (4, 1));
        let p = &parsed.problems;
        assert_eq!(
            (p[0].line, p[0].column, p[0].field.as_deref()),
            (1, Some(30), Some("endDateTime"))
        );
        assert_eq!(
            (p[1].line, p[1].column, p[1].field.as_deref()),
            (2, Some(51), Some("duration"))
        );
        assert_eq!(p[2].message, "2 fields where the header has 13");
        // The most billed seconds a row holds, and one more.
        let body = "r1,c1,x,2019-11-01T00:00:08Z,2019-11-01T00:00:09Z,536870910,,user_in,USD,+1,+2,O,operator\n\
                    r2,c2,x,2019-11-01T00:00:08Z,2019-11-01T00:00:09Z,536870911,,user_in,USD,+1,+2,O,operator\n";
        let parsed = parse_csv(&columns, body.as_bytes(), 0, 0, Some(2), &all(), Vec::new());
        assert_eq!(parsed.all_rows()[0].row.billed(), Some(536_870_910));
        assert_eq!(
            (parsed.all_rows().len(), parsed.problems[0].field.as_deref()),
            (1, Some("duration"))
        );
        assert_eq!(
            parsed.problems[0].message,
            "536870911 is not a whole number of seconds from 0 to 536870910 (17 years)"
        );
        assert!(
            CsvColumns::from_header(b"a,b,c")
                .unwrap_err()
                .contains("startDateTime")
        );
    }
}
