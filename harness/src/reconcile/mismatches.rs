//! `mismatches.csv`: one line per call not matched (and per matched call whose billed duration
//! differs from the carrier's CDR), in time order, for a billing team's spreadsheet. The call id
//! and numbers are read back from the input files by offset, so that matching keeps none.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::carrier;
use super::figures::{Class, Mismatch};
use super::format::CarrierFormat;
use super::matching::{Index, NO_ROW, row_of};
use super::pipeline::JobKind;
use super::rows::DurationSource;
use super::source::{unpack_source, visit_offsets};
use super::teams::{self, TeamsShape};
use super::text::{Nanos, push_int, push_rfc3339};

/// The header of `mismatches.csv`.
pub(crate) const HEADER: &str = "class,billed_differs,call_id,calling_number,called_number,teams_start,teams_end,teams_duration_ms,teams_billed_s,duration_source,carrier_connect,carrier_end,carrier_duration_ms,difference_ms";

/// Nanoseconds as milliseconds, exactly: `61250`, `61250.5`, `-0.0001`.
#[cfg(test)]
pub(crate) fn format_ms(ns: Nanos) -> String {
    let mut out = Vec::new();
    push_ms(&mut out, ns);
    String::from_utf8(out).unwrap_or_default()
}

/// [`format_ms`] appended to `out`.
fn push_ms(out: &mut Vec<u8>, ns: Nanos) {
    if ns < 0 {
        out.push(b'-');
    }
    let abs = ns.unsigned_abs();
    let whole = abs / 1_000_000;
    push_int(out, whole as i64);
    let fraction = abs % 1_000_000;
    if fraction != 0 {
        out.push(b'.');
        let at = out.len();
        push_int(out, (fraction + 1_000_000) as i64);
        out.remove(at);
        while out.last() == Some(&b'0') {
            out.pop();
        }
    }
}

/// A field appended to `out`, quoted when it needs to be.
fn push_field(out: &mut Vec<u8>, text: &str) {
    if text.contains([',', '"', '\n', '\r']) {
        out.push(b'"');
        out.extend_from_slice(text.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(text.as_bytes());
    }
}

/// A field quoted when it needs to be.
#[cfg(test)]
fn csv_field(text: &str) -> String {
    let mut out = Vec::new();
    push_field(&mut out, text);
    String::from_utf8(out).unwrap_or_default()
}

/// The files of each side, as read, to read rows back from.
pub(crate) struct Sides<'a> {
    pub(crate) teams: &'a [PathBuf],
    pub(crate) teams_kinds: &'a [JobKind],
    pub(crate) carrier: &'a [PathBuf],
    pub(crate) carrier_kinds: &'a [JobKind],
    pub(crate) format: &'a CarrierFormat,
}

/// Reads back (call id, calling, called) of every mismatch from the side that has text for it:
/// Teams' row when there is one, the carrier's otherwise.
fn describe_all(
    mismatches: &[Mismatch],
    index: &[Index],
    sides: &Sides<'_>,
    mut captured: Vec<(u64, Described)>,
) -> io::Result<Vec<Described>> {
    let mut texts: Vec<Described> = vec![Default::default(); mismatches.len()];
    captured.sort_unstable_by_key(|(source, _)| *source);
    // (side, file, offset, mismatch)
    let mut wanted: Vec<(bool, u16, u64, usize)> = mismatches
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let (carrier_side, source) = if m.teams != NO_ROW {
                (false, row_of(index, m.teams).source)
            } else {
                (true, m.source)
            };
            let (file, offset) = unpack_source(source);
            (carrier_side, file, offset, i)
        })
        .filter(|&(carrier_side, _, _, i)| {
            // Carrier rows described as they were read need no reading back.
            let found = carrier_side
                && captured
                    .binary_search_by_key(&mismatches[i].source, |(source, _)| *source)
                    .is_ok_and(|at| {
                        texts[i] = std::mem::take(&mut captured[at].1);
                        true
                    });
            !found
        })
        .collect();
    wanted.sort_unstable();
    let split = wanted.partition_point(|w| !w.0);
    let (teams_side, carrier_side) = wanted.split_at(split);
    // Each side's files are read back on a thread of their own.
    let described = std::thread::scope(|scope| {
        let carrier = scope.spawn(|| read_back(carrier_side, sides));
        let teams = read_back(teams_side, sides);
        (teams, carrier.join())
    });
    let (teams, carrier) = described;
    let carrier =
        carrier.map_err(|_| io::Error::other("reading the carrier's rows back panicked"))?;
    for (i, text) in teams?.into_iter().chain(carrier?) {
        texts[i] = text;
    }
    Ok(texts)
}

/// A row's call id, calling and called number, as its file writes them.
pub(crate) type Described = (String, String, String);

/// Reads back the rows of `wanted` (side, file, offset, mismatch; sorted), one file at a time.
fn read_back(
    wanted: &[(bool, u16, u64, usize)],
    sides: &Sides<'_>,
) -> io::Result<Vec<(usize, Described)>> {
    let mut texts = Vec::with_capacity(wanted.len());
    for group in wanted.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
        let (carrier_side, file) = (group[0].0, usize::from(group[0].1));
        let offsets: Vec<u64> = group.iter().map(|w| w.2).collect();
        let (path, kind) = if carrier_side {
            (&sides.carrier[file], &sides.carrier_kinds[file])
        } else {
            (&sides.teams[file], &sides.teams_kinds[file])
        };
        let json = matches!(kind, JobKind::Teams(TeamsShape::Json));
        let mut k = 0;
        visit_offsets(path, &offsets, json, |offset, bytes| {
            while k < group.len() && group[k].2 == offset {
                let text = match kind {
                    JobKind::Teams(shape) => teams::describe(shape, bytes),
                    JobKind::Carrier(columns) => carrier::describe(sides.format, columns, bytes),
                };
                texts.push((group[k].3, text));
                k += 1;
            }
        })?;
    }
    Ok(texts)
}

/// Writes `dir/mismatches.csv`; the number of lines besides the header.
pub(crate) fn write(
    dir: &Path,
    mismatches: &mut [Mismatch],
    index: &[Index],
    sides: &Sides<'_>,
    captured: Vec<(u64, Described)>,
    threads: usize,
) -> io::Result<u64> {
    // In time order; calls at the same time by class, then in the order of the files.
    let key = |m: &Mismatch| {
        if m.teams != NO_ROW {
            let row = row_of(index, m.teams);
            (row.start, m.class, row.source, m.source)
        } else {
            (m.connect, m.class, u64::MAX, m.source)
        }
    };
    mismatches.sort_by_cached_key(key);
    let texts = describe_all(mismatches, index, sides, captured)?;
    let mut w =
        io::BufWriter::with_capacity(1 << 20, std::fs::File::create(dir.join("mismatches.csv"))?);
    writeln!(w, "{HEADER}")?;
    // Lines are formatted in blocks, each in parts on as many threads, and written in order:
    // memory holds one block's text.
    let lines: Vec<(&Mismatch, &Described)> = mismatches.iter().zip(&texts).collect();
    let threads = threads.max(1);
    for block in lines.chunks(threads * 16_384) {
        let part = block.len().div_ceil(threads);
        let parts: Vec<Vec<u8>> = std::thread::scope(|scope| {
            let handles: Vec<_> = block
                .chunks(part)
                .map(|lines| scope.spawn(|| format_lines(lines, index)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect()
        });
        for bytes in parts {
            w.write_all(&bytes)?;
        }
    }
    w.flush()?;
    Ok(mismatches.len() as u64)
}

/// The lines of `mismatches.csv` for `lines`.
fn format_lines(lines: &[(&Mismatch, &Described)], index: &[Index]) -> Vec<u8> {
    let mut out = Vec::with_capacity(lines.len() * 200);
    for &(m, (id, calling, called)) in lines {
        let teams = (m.teams != NO_ROW).then(|| row_of(index, m.teams));
        let carrier = m.class != Class::Missing;
        out.extend_from_slice(m.class.as_str().as_bytes());
        out.push(b',');
        if m.billed_differs {
            out.extend_from_slice(b"yes");
        }
        for text in [id, calling, called] {
            out.push(b',');
            push_field(&mut out, text);
        }
        out.push(b',');
        if let Some(t) = teams {
            push_rfc3339(&mut out, t.start);
            out.push(b',');
            push_rfc3339(&mut out, t.start + t.measured);
            out.push(b',');
            push_ms(&mut out, t.measured);
            out.push(b',');
            if t.billed >= 0 {
                push_int(&mut out, i64::from(t.billed));
            }
            out.push(b',');
            out.extend_from_slice(match t.duration_source {
                DurationSource::Operator => b"operator",
                DurationSource::Microsoft => b"microsoft",
                DurationSource::Unknown => b"",
            });
        } else {
            out.extend_from_slice(b",,,,");
        }
        out.push(b',');
        if carrier {
            push_rfc3339(&mut out, m.connect);
            out.push(b',');
            push_rfc3339(&mut out, m.connect + m.duration);
            out.push(b',');
            push_ms(&mut out, m.duration);
        } else {
            out.extend_from_slice(b",,");
        }
        out.push(b',');
        if let Some(t) = teams
            && carrier
        {
            push_ms(&mut out, m.duration - t.measured);
        }
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_are_exact() {
        assert_eq!(format_ms(61_250_000_000), "61250");
        assert_eq!(format_ms(61_250_500_000), "61250.5");
        assert_eq!(format_ms(-100), "-0.0001");
        assert_eq!(format_ms(0), "0");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"x\""), "\"say \"\"x\"\"\"");
    }
}
