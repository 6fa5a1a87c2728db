//! `oc-harness run --export DIR`: the run as a carrier's billing team holds it at month end,
//! both streamed. Teams' side is its Graph call log, the JSON pages mock-teams' `getPstnCalls`
//! serves the carrier under test over the run's window (`DIR/teams/getPstnCalls-0001.json`…);
//! the carrier's side is its switch's CDR export (`DIR/carrier/cdrs.csv`).
//!
//! The pages are rendered by the very code that answers `getPstnCalls` (the same bytes, links
//! to the run's Teams server), read from the store a page at a time, not fetched over HTTP: a
//! fetch would be an exchange of the carrier under test, judged by the checker and open to
//! the scenario's injected 429s and 503s, none of which is the run's.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use mock_carrier::{MockCarrier, SwitchRecord};
use mock_teams::{CallLogError, MockTeams};
use oc_protocol::graph::{MAX_WINDOW_MS, PstnCallsWindow};
use oc_protocol::timestamp::write_timestamp;
use oc_protocol::{Direction, UnixMillis};
use oc_reports::WriteError;

use super::CARRIER_ID;

/// Where Teams' pages go, under the export folder.
pub const TEAMS_DIR: &str = "teams";
/// Where the carrier's CDRs go, under the export folder.
pub const CARRIER_DIR: &str = "carrier";
/// The carrier's CDR file, in [`CARRIER_DIR`].
pub const CDR_FILE: &str = "cdrs.csv";
/// The first line of [`CDR_FILE`]: the layout is fixed (`docs/carrier-formats/` reads it).
pub const CDR_HEADER: &str =
    "call_id,calling_number,called_number,connect_time,end_time,duration_ms";

/// What an export wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Exported {
    /// Teams' pages.
    pub pages: u64,
    /// The carrier's CDR lines, the header aside.
    pub cdrs: u64,
}

/// The name of Teams' `n`-th page (from 1): `getPstnCalls-0001.json`.
pub fn page_name(n: u64) -> String {
    format!("getPstnCalls-{n:04}.json")
}

fn write_error(path: &Path) -> impl Fn(std::io::Error) -> WriteError + '_ {
    move |source| WriteError {
        path: path.display().to_string(),
        source,
    }
}

/// Makes sure the export's folders can be written, before the run starts.
pub(crate) fn check(dir: &Path) -> Result<(), WriteError> {
    oc_reports::check_writable(&dir.join(TEAMS_DIR))?;
    oc_reports::check_writable(&dir.join(CARRIER_DIR))
}

/// Writes both sides of the run into `dir`: Teams' call log over the connect times in
/// `window` (both ends inclusive), in windows of at most 90 days as Graph allows, each a chain
/// of pages of its own, numbered on from the last; and every call the carrier's switch
/// recorded. Pages a previous export left in `dir/teams` are removed first, so that the folder
/// holds this run's chain and nothing else.
pub(crate) fn write(
    dir: &Path,
    teams: &MockTeams,
    carrier: &MockCarrier,
    window: (UnixMillis, UnixMillis),
) -> Result<Exported, WriteError> {
    let teams_dir = dir.join(TEAMS_DIR);
    remove_old_pages(&teams_dir)?;
    let mut pages = 0u64;
    let (mut from, to) = window;
    loop {
        let end = to.min(from.saturating_add(MAX_WINDOW_MS));
        let part = PstnCallsWindow { from, to: end };
        let written = teams.pstn_call_log_pages(CARRIER_ID, part, |body| {
            pages += 1;
            std::fs::write(teams_dir.join(page_name(pages)), body)
        });
        match written {
            Ok(_) => {}
            Err(CallLogError::Write(source)) => {
                return Err(WriteError {
                    path: teams_dir.join(page_name(pages)).display().to_string(),
                    source,
                });
            }
            Err(CallLogError::Store(err)) => {
                return Err(WriteError {
                    path: teams_dir.display().to_string(),
                    source: std::io::Error::other(err.to_string()),
                });
            }
        }
        if end >= to {
            break;
        }
        from = end + 1;
    }
    let cdrs = write_cdrs(&dir.join(CARRIER_DIR).join(CDR_FILE), carrier)?;
    Ok(Exported { pages, cdrs })
}

fn remove_old_pages(teams_dir: &Path) -> Result<(), WriteError> {
    let entries = std::fs::read_dir(teams_dir).map_err(write_error(teams_dir))?;
    for entry in entries {
        let path: PathBuf = entry.map_err(write_error(teams_dir))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("getPstnCalls-") && name.ends_with(".json") {
            std::fs::remove_file(&path).map_err(write_error(&path))?;
        }
    }
    Ok(())
}

/// Writes the carrier's CDR CSV through a buffer, one switch record at a time.
fn write_cdrs(path: &Path, carrier: &MockCarrier) -> Result<u64, WriteError> {
    let error = write_error(path);
    let file = File::create(path).map_err(&error)?;
    let mut out = BufWriter::new(file);
    let lines = carrier.with_switch_records(|records| -> std::io::Result<u64> {
        writeln!(out, "{CDR_HEADER}")?;
        let mut line = String::with_capacity(160);
        let mut lines = 0;
        for record in records {
            line.clear();
            cdr_line(&mut line, &record);
            out.write_all(line.as_bytes())?;
            lines += 1;
        }
        Ok(lines)
    });
    let lines = lines.map_err(&error)?;
    out.flush().map_err(&error)?;
    Ok(lines)
}

/// One CSV line: the calling and called numbers as the switch saw the call. A call the Teams
/// user placed is called by the carrier's number; one it took is called to it. A record whose
/// other party the carrier was never told (a certification leg) leaves the calling number
/// empty and puts the carrier's number as called.
fn cdr_line(out: &mut String, record: &SwitchRecord<'_>) {
    let other = record.other_number.as_deref().unwrap_or("");
    let (calling, called) = match record.direction {
        Some(Direction::Outbound) => (record.telephone_number, other),
        Some(Direction::Inbound) | None => (other, record.telephone_number),
    };
    csv_field(out, record.call_id);
    out.push(',');
    out.push_str(calling);
    out.push(',');
    out.push_str(called);
    out.push(',');
    write_timestamp(out, record.connect);
    out.push(',');
    write_timestamp(out, record.end);
    out.push(',');
    out.push_str(&(record.end - record.connect).to_string());
    out.push('\n');
}

/// A field as RFC 4180 writes it: quoted, with quotes doubled, when it holds a comma, a quote
/// or a line break (a call id is opaque and may).
fn csv_field(out: &mut String, field: &str) {
    if field.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&field.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(field);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record<'a>(call_id: &'a str, direction: Option<Direction>) -> SwitchRecord<'a> {
        SwitchRecord {
            call_id,
            telephone_number: "+14255550100",
            other_number: direction.map(|_| "+442079460000".to_owned()),
            direction,
            connect: 1_795_651_205_123,
            end: 1_795_651_266_000,
        }
    }

    #[test]
    fn lines_follow_the_fixed_layout() {
        let mut out = String::new();
        cdr_line(&mut out, &record("c-1", Some(Direction::Outbound)));
        cdr_line(&mut out, &record("c,\"2\"", Some(Direction::Inbound)));
        cdr_line(&mut out, &record("leg", None));
        assert_eq!(
            out,
            "c-1,+14255550100,+442079460000,2026-11-26T00:00:05.123Z,2026-11-26T00:01:06.000Z,60877\n\
             \"c,\"\"2\"\"\",+442079460000,+14255550100,2026-11-26T00:00:05.123Z,2026-11-26T00:01:06.000Z,60877\n\
             leg,,+14255550100,2026-11-26T00:00:05.123Z,2026-11-26T00:01:06.000Z,60877\n"
        );
    }

    #[test]
    fn pages_are_numbered_from_one_in_four_digits() {
        assert_eq!(page_name(1), "getPstnCalls-0001.json");
        assert_eq!(page_name(12_345), "getPstnCalls-12345.json");
    }
}
