//! The carrier's side: a CDR CSV (gzip or not) read through its [`CarrierFormat`] into
//! [`CarrierRow`]s, every malformed row rejected with its line, column and field.

use std::borrow::Cow;

use super::format::{CarrierFormat, ColumnRef};
use super::mismatches::Described;
use super::rows::{CarrierRow, Filters, NONE, Parsed};
use super::source::{pack_source, trim_cr};
use super::text::{self, Nanos, Span};

/// The columns of one carrier file, by 0-based position: the format's names resolved against
/// the file's header row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CarrierColumns {
    call_id: Option<usize>,
    calling: usize,
    called: usize,
    connect: usize,
    end: Option<usize>,
    duration: Option<usize>,
    charge: Option<usize>,
    /// Every row's field count: the header's, or at least the highest position used.
    width: usize,
    exact_width: bool,
    /// The header's names, for the messages; positions otherwise.
    names: Vec<String>,
}

impl CarrierColumns {
    /// The columns of the call id ([`text::NO_FIELD`] without one), the calling and the called
    /// number: what [`describe`] reads, for `mismatches.csv`'s fast path.
    pub(crate) fn described(&self) -> [usize; 3] {
        [
            self.call_id.unwrap_or(text::NO_FIELD),
            self.calling,
            self.called,
        ]
    }

    /// Resolves the format's columns against a header row (`None` when the format has none).
    pub(crate) fn resolve(format: &CarrierFormat, header: Option<&[u8]>) -> Result<Self, String> {
        let names: Vec<String> = match header {
            Some(header) => {
                let header = header.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(header);
                let mut spans = Vec::new();
                text::split(header, format.delimiter, &mut spans)
                    .map_err(|(_, why)| format!("the header row: {why}"))?;
                spans
                    .iter()
                    .map(|&s| {
                        String::from_utf8_lossy(text::field(header, s).trim_ascii()).into_owned()
                    })
                    .collect()
            }
            None => Vec::new(),
        };
        let find = |column: &ColumnRef| -> Result<usize, String> {
            match column {
                ColumnRef::Position(p) => Ok(p - 1),
                ColumnRef::Name(name) => names.iter().position(|n| n == name).ok_or_else(|| {
                    format!(
                        "the header row has no column `{name}` (it has: {})",
                        names.join(", ")
                    )
                }),
            }
        };
        let optional = |column: &Option<ColumnRef>| column.as_ref().map(find).transpose();
        let mut columns = Self {
            call_id: optional(&format.call_id)?,
            calling: find(&format.calling)?,
            called: find(&format.called)?,
            connect: find(&format.connect)?,
            end: optional(&format.end)?,
            duration: optional(&format.duration)?,
            charge: optional(&format.charge)?,
            width: names.len(),
            exact_width: header.is_some(),
            names,
        };
        if header.is_none() {
            let used = [
                Some(columns.calling),
                Some(columns.called),
                Some(columns.connect),
                columns.call_id,
                columns.end,
                columns.duration,
                columns.charge,
            ];
            columns.width = used.into_iter().flatten().max().unwrap_or(0) + 1;
        }
        Ok(columns)
    }

    /// Whether a row of `fields` fields has the header's number (or, without a header, at
    /// least the positions the columns use).
    #[inline(always)]
    fn width_fits(&self, fields: usize) -> bool {
        if self.exact_width {
            fields == self.width
        } else {
            fields >= self.width
        }
    }

    fn name(&self, i: usize) -> String {
        self.names
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("column {}", i + 1))
    }
}

/// Reads a chunk of carrier CSV lines (`offset`: the chunk's byte offset in its file).
#[expect(
    clippy::too_many_arguments,
    reason = "a job's parts (chunk, place, rows vector) and how to read it; a struct for one caller would only rename them"
)]
pub(crate) fn parse_csv(
    format: &CarrierFormat,
    columns: &CarrierColumns,
    chunk: &[u8],
    offset: u64,
    file: u16,
    first_line: Option<u64>,
    filters: &Filters,
    rows: Vec<Vec<CarrierRow>>,
) -> Parsed<CarrierRow> {
    let mut parsed = Parsed::new(file, first_line);
    // `rows`: vectors used before, one per partition, whose memory is already the process's
    // (fresh memory costs a page fault and a page clear every 4 KiB): each row goes straight
    // to its partition's, not copied there afterwards.
    parsed.keep_in(rows, chunk.len());
    let mut spans: Vec<Span> = Vec::with_capacity(columns.width + 1);
    let mut next_line = 0u64;
    let mut quoted = text::QuotedLines::default();
    let mut lines = text::LineScanner::new(chunk, format.delimiter);
    while let Some(scanned) = lines.next_line() {
        let line_no = next_line;
        next_line += 1;
        parsed.lines += 1;
        let line = scanned.line;
        if quoted.continues(line) || line.is_empty() {
            continue;
        }
        parsed.read += 1;
        let source = pack_source(file, offset + scanned.start as u64);
        // Most lines: no quote, and the fields the columns need, read straight from the
        // delimiters found with the line end.
        if let Some(bounds) = scanned.bounds
            && columns.width_fits(bounds.len() - 1)
        {
            let get = |i: usize| text::bounded_field(line, bounds, i);
            match read_row(format, columns, get, filters, source) {
                Ok(Some(row)) => parsed.push(row.id, row),
                Ok(None) => parsed.filtered += 1,
                Err((i, why)) => {
                    parsed.reject(
                        line_no,
                        Some(u64::from(bounds[i].wrapping_add(1)) + 1),
                        Some(&columns.name(i)),
                        why,
                    );
                }
            }
            continue;
        }
        other_row(
            format,
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

/// A row's outcome from its fields (`get`: the field at a position); an error is the
/// position of the field that is wrong, and why.
#[inline(always)]
fn read_row<'b>(
    format: &CarrierFormat,
    columns: &CarrierColumns,
    get: impl Fn(usize) -> &'b [u8],
    filters: &Filters,
    source: u64,
) -> Result<Option<CarrierRow>, (usize, String)> {
    // (A function, not a closure: the closure was not inlined, a call a row.)
    let connect = timestamp(format, get(columns.connect), columns.connect)?;
    let duration = match (columns.duration, columns.end) {
        (Some(i), _) => {
            let value = get(i);
            text::parse_scaled(text::trim(value), format.duration_unit).ok_or_else(|| {
                (
                    i,
                    format!("not a duration: `{}`", String::from_utf8_lossy(value)),
                )
            })?
        }
        (None, Some(i)) => timestamp(format, get(i), i)? - connect,
        (None, None) => unreachable!("a format has an end time or a duration"),
    };
    if duration < 0 {
        return Err((
            columns.duration.or(columns.end).unwrap_or(columns.connect),
            "a negative duration".to_owned(),
        ));
    }
    let charge = match columns.charge {
        None => 0,
        Some(i) => match text::trim(get(i)) {
            b"" => 0,
            value => text::parse_money(value).ok_or_else(|| {
                (
                    i,
                    format!("not a number: `{}`", String::from_utf8_lossy(value)),
                )
            })?,
        },
    };
    if !filters.in_window(connect) {
        return Ok(None);
    }
    let id = match columns.call_id.map(|i| text::trim(get(i))) {
        Some(id) if !id.is_empty() => text::hash(id),
        _ => 0,
    };
    let calling = text::number_key(get(columns.calling));
    let called = text::number_key(get(columns.called));
    Ok(Some(CarrierRow {
        id,
        calling,
        called,
        connect,
        duration,
        charge,
        source,
        head: NONE,
    }))
}

/// The timestamp in field `i`, `value`, inlined into [`read_row`].
#[inline(always)]
fn timestamp(format: &CarrierFormat, value: &[u8], i: usize) -> Result<Nanos, (usize, String)> {
    match format.timestamp(text::trim(value)) {
        Ok(ns) => Ok(ns),
        Err(why) => Err(timestamp_error(value, i, &why)),
    }
}

/// [`timestamp`]'s error.
#[cold]
#[inline(never)]
fn timestamp_error(value: &[u8], i: usize, why: &str) -> (usize, String) {
    (i, format!("{why}: `{}`", String::from_utf8_lossy(value)))
}

/// A line the fast path of [`parse_csv`] does not read: one with a quote (split field by
/// field, and unescaped when a field has doubled quotes), or with fewer fields than the
/// columns need or another number than the header's (rejected).
#[expect(
    clippy::too_many_arguments,
    reason = "the state of parse_csv's loop, passed apart so that the loop keeps it in registers"
)]
#[inline(never)]
fn other_row(
    format: &CarrierFormat,
    columns: &CarrierColumns,
    line: &[u8],
    delimiters: Option<&[u32]>,
    (line_no, source): (u64, u64),
    filters: &Filters,
    spans: &mut Vec<Span>,
    quoted: &mut text::QuotedLines,
    parsed: &mut Parsed<CarrierRow>,
) {
    let fields = match text::LineFields::of_line(line, delimiters, format.delimiter, spans) {
        Ok(fields) => fields,
        Err((column, why)) => {
            quoted.rejected(why);
            parsed.reject(line_no, Some(column as u64 + 1), None, why);
            return;
        }
    };
    if !columns.width_fits(fields.len()) {
        let expected = if columns.exact_width {
            "the header has"
        } else {
            "the format needs at least"
        };
        parsed.reject(
            line_no,
            None,
            None,
            format!("{} fields where {expected} {}", fields.len(), columns.width),
        );
        return;
    }
    // Fields are slices of the line, or unescaped copies when it has doubled quotes.
    let unescaped: Vec<Cow<'_, [u8]>> = (0..fields.len()).map(|i| fields.get(i)).collect();
    match read_row(format, columns, |i| &unescaped[i], filters, source) {
        Ok(Some(row)) => parsed.push(row.id, row),
        Ok(None) => parsed.filtered += 1,
        Err((i, why)) => parsed.reject(
            line_no,
            Some(u64::from(fields.start(i)) + 1),
            Some(&columns.name(i)),
            why,
        ),
    }
}

/// The call id and the two numbers of the row at the start of `bytes`, for `mismatches.csv`.
pub(crate) fn describe<'a>(
    format: &CarrierFormat,
    columns: &CarrierColumns,
    bytes: &'a [u8],
) -> Described<'a> {
    let line = trim_cr(&bytes[..memchr::memchr(b'\n', bytes).unwrap_or(bytes.len())]);
    let mut spans = Vec::with_capacity(columns.width + 1);
    if text::split(line, format.delimiter, &mut spans).is_err() {
        return Default::default();
    }
    let get = |i: Option<usize>| {
        i.and_then(|i| spans.get(i))
            .map_or(Cow::Borrowed(""), |&s| text::lossy(text::field(line, s)))
    };
    (
        get(columns.call_id),
        get(Some(columns.calling)),
        get(Some(columns.called)),
    )
}

#[cfg(test)]
mod tests {
    use super::super::format::{self, OC_HARNESS_FORMAT};
    use super::*;

    const HEADER: &[u8] = b"call_id,calling_number,called_number,connect_time,end_time,duration_ms";

    /// `body` as the first chunk of file 0, after its header line, unfiltered.
    fn parse_from_line_2(
        format: &CarrierFormat,
        columns: &CarrierColumns,
        body: &[u8],
    ) -> Parsed<CarrierRow> {
        parse_csv(
            format,
            columns,
            body,
            0,
            0,
            Some(2),
            &Filters::default(),
            Vec::new(),
        )
    }

    #[test]
    fn the_export_csv_reads() {
        let format = format::parse(OC_HARNESS_FORMAT, "oc-harness.toml").unwrap();
        let columns = CarrierColumns::resolve(&format, Some(HEADER)).unwrap();
        let body = b"c1,+14255557103,+12065550199,2026-01-05T10:00:00.123Z,2026-01-05T10:01:01.373Z,61250\n,+1,+2,2026-01-05T10:00:00.000Z,2026-01-05T10:00:01.000Z,1000\n";
        let parsed = parse_csv(
            &format,
            &columns,
            body,
            71,
            1,
            Some(2),
            &Filters::default(),
            Vec::new(),
        );
        assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
        let row = parsed.all_rows()[0];
        assert_eq!(row.id, text::hash(b"c1"));
        assert_eq!(row.duration, 61_250_000_000);
        assert_eq!(
            row.connect,
            text::parse_rfc3339(b"2026-01-05T10:00:00.123Z", None).unwrap()
        );
        assert_eq!(row.source, pack_source(1, 71));
        assert_eq!(parsed.all_rows()[1].id, 0);
        assert_eq!(
            describe(&format, &columns, body),
            ("c1".into(), "+14255557103".into(), "+12065550199".into())
        );
    }

    #[test]
    fn the_example_sbc_sample_reads() {
        let format = format::parse(
            include_str!("../../../docs/carrier-formats/example-sbc.toml"),
            "example-sbc.toml",
        )
        .unwrap();
        let sample = include_bytes!("../../../docs/carrier-formats/example-sbc.csv");
        let (header, body) = sample.split_at(memchr::memchr(b'\n', sample).unwrap() + 1);
        let columns = CarrierColumns::resolve(&format, Some(&header[..header.len() - 1])).unwrap();
        let parsed = parse_from_line_2(&format, &columns, body);
        assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
        assert_eq!(parsed.all_rows().len(), 3);
        assert_eq!(parsed.all_rows()[0].duration, 61_500_000_000);
        assert_eq!(parsed.all_rows()[0].charge, 41_000);
        assert_eq!(parsed.all_rows()[2].id, 0);
    }

    #[test]
    fn broken_rows_name_line_column_and_field() {
        let format = format::parse(OC_HARNESS_FORMAT, "oc-harness.toml").unwrap();
        let columns = CarrierColumns::resolve(&format, Some(HEADER)).unwrap();
        let body = b"c1,+1,+2,2026-01-05T10:00:00.000Z,2026-01-05T10:00:01.000Z,1000\nc2,+1,+2,2026-01-05T10:00:00.000Z,2026-01-05T10:00:01.000Z,1s\nc3,+1,+2,yesterday,2026-01-05T10:00:01.000Z,1000\nc4,\"+1,+2\n";
        let parsed = parse_from_line_2(&format, &columns, body);
        assert_eq!((parsed.read, parsed.all_rows().len()), (4, 1));
        let p = &parsed.problems;
        assert_eq!(
            (p[0].line, p[0].column, p[0].field.as_deref()),
            (1, Some(60), Some("duration_ms"))
        );
        assert_eq!(
            (p[1].line, p[1].column, p[1].field.as_deref()),
            (2, Some(10), Some("connect_time"))
        );
        assert_eq!((p[2].line, p[2].column), (3, Some(4)));
        let err = CarrierColumns::resolve(&format, Some(b"a,b")).unwrap_err();
        assert!(err.contains("no column `call_id` (it has: a, b)"), "{err}");
    }

    #[test]
    fn a_quoted_field_spanning_lines_rejects_its_record_once() {
        let format = format::parse(OC_HARNESS_FORMAT, "oc-harness.toml").unwrap();
        let columns = CarrierColumns::resolve(&format, Some(HEADER)).unwrap();
        // Line 2's record holds a line break in a quoted field (RFC 4180 allows it), over
        // three lines; the rows before and after it read.
        let body = b"c1,+1,+2,2026-01-05T10:00:00.000Z,2026-01-05T10:00:01.000Z,1000\nc2,\"+1\nsecond line, with a comma\n\",+2,2026-01-05T10:00:00.000Z,2026-01-05T10:00:01.000Z,1000\nc3,+1,+2,2026-01-05T10:00:00.000Z,2026-01-05T10:00:01.000Z,1000\n";
        let parsed = parse_from_line_2(&format, &columns, body);
        assert_eq!(
            (parsed.read, parsed.all_rows().len(), parsed.lines),
            (3, 2, 5)
        );
        assert_eq!(parsed.problems.len(), 1, "{:?}", parsed.problems);
        let p = &parsed.problems[0];
        assert_eq!((p.line, p.column), (1, Some(4)));
        assert_eq!(p.message, text::UNCLOSED);
        assert_eq!(parsed.all_rows()[1].id, text::hash(b"c3"));
    }
}
