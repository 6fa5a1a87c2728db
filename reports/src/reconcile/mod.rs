//! The report of `oc-harness reconcile` (a carrier's CDR export against Teams' call log): its
//! versioned model, written as `report.json` ([`ReconcileReport::write_json`]), `summary.md`
//! ([`write_summary`]), `report.html` ([`write_html`]) and the lines the command prints
//! ([`write_console`]); all of them with [`ReconcileReport::write_all`].

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{DriftBin, WriteError, write_file};

mod html;
mod summary;

pub use html::write_html;
pub use summary::{write_console, write_summary};

/// The version of the reconcile `report.json`'s shape; bumped on every incompatible change.
pub const RECONCILE_SCHEMA_VERSION: u32 = 1;

/// Everything a reconciliation found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileReport {
    /// [`RECONCILE_SCHEMA_VERSION`] when written.
    pub schema_version: u32,
    /// `reconcile`, so that a reader tells it from a run's report.
    pub kind: String,
    /// The harness version that wrote it.
    pub harness_version: String,
    /// `reconciled` when every call matched, no billed duration differs and no row was
    /// rejected; `mismatches` otherwise.
    pub verdict: ReconcileVerdict,
    /// What was read, and how.
    pub inputs: ReconcileInputs,
    /// Teams rows: read = rejected + filtered + reconciled.
    pub teams_rows: RowCounts,
    /// Carrier rows: read = rejected + filtered + reconciled.
    pub carrier_rows: RowCounts,
    /// Every call in exactly one class: Teams' reconciled rows are matched + drift + missing,
    /// the carrier's matched + drift + unexpected.
    pub classes: ClassCounts,
    /// The signed drift (carrier − Teams' `endDateTime − startDateTime`) of every matched and
    /// drift call.
    pub drift: DriftFigures,
    /// What Teams' `callDurationSource` says.
    pub duration_source: DurationSourceCounts,
    /// Minutes on each side.
    pub minutes: Minutes,
    /// Charges on each side.
    pub charges: Charges,
    /// The gap by UTC day (of Teams' start, or of the carrier's connect for unexpected calls),
    /// in day order.
    pub by_day: Vec<DayGap>,
    /// The numbers with the largest absolute gap, largest first (at most `--top`).
    pub top_numbers: Vec<NumberGap>,
    /// How many numbers the calls were on.
    pub distinct_numbers: u64,
    /// The rejected rows, in input order; at most the first 1000 (`rejected` in the row counts
    /// has them all).
    pub errors: Vec<RowErrorEntry>,
    /// Lines of `mismatches.csv` (besides its header).
    pub mismatch_lines: u64,
    /// Wall-clock seconds the reconciliation took (differ between runs).
    pub timing: ReconcileTiming,
}

/// Wall-clock seconds of each phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileTiming {
    /// Reading and indexing Teams' rows.
    pub teams_seconds: f64,
    /// Reading the carrier's rows and matching them (id-less rows and `missing` included).
    pub carrier_seconds: f64,
    /// The figures, `mismatches.csv` (rows read back from the inputs) and the report files.
    pub output_seconds: f64,
    /// Everything.
    pub total_seconds: f64,
}

/// The verdict of a reconciliation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ReconcileVerdict {
    /// Every call matched within the tolerance, no billed duration differs from the carrier's
    /// CDR, and every row could be read.
    Reconciled,
    /// Something did not reconcile.
    Mismatches,
}

/// What a reconciliation read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileInputs {
    /// Teams files, with the shape each was read as (`graph-json`, `ndjson`, `m365-csv`).
    pub teams: Vec<InputFile>,
    /// Carrier files.
    pub carrier: Vec<InputFile>,
    /// The carrier format file, or `oc-harness (bundled)`.
    pub carrier_format: String,
    /// The tolerance, ms.
    pub tolerance_ms: i64,
    /// `--from` (inclusive), RFC 3339.
    pub from: Option<String>,
    /// `--to` (exclusive), RFC 3339.
    pub to: Option<String>,
    /// `--operator`.
    pub operator: Option<String>,
}

/// One input file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InputFile {
    /// As given.
    pub path: String,
    /// How it was read.
    pub shape: String,
    /// Whether it was gzip.
    pub gzip: bool,
}

/// Rows of one side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RowCounts {
    /// Rows read (blank lines and header rows are not rows).
    pub read: u64,
    /// Rows that could not be read (each in `errors`, up to its limit).
    pub rejected: u64,
    /// Rows left out by `--operator`, `--from` or `--to`.
    pub filtered: u64,
    /// Rows reconciled.
    pub reconciled: u64,
}

/// Calls per class (PROTOCOL.md 3.5).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClassCounts {
    /// Both sides, durations within the tolerance.
    pub matched: u64,
    /// Both sides, beyond the tolerance.
    pub drift: u64,
    /// Teams only.
    pub missing: u64,
    /// Carrier only.
    pub unexpected: u64,
}

/// The signed drift's distribution.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DriftFigures {
    /// Matched and drift calls.
    pub calls: u64,
    /// Nearest-rank percentiles (the value at 0-based rank `ceil(q·n) − 1` of the sorted
    /// drifts), exact, ms (fractions kept); 0 without calls.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// The lowest drift, ms.
    pub min_ms: f64,
    /// The highest drift, ms.
    pub max_ms: f64,
    /// The histogram (drifts rounded to the ms): `0`, then decades on each side and one outer
    /// bin per side, from the lowest non-empty bin to the highest.
    pub bins: Vec<DriftBin>,
}

/// `callDurationSource` of the reconciled Teams rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DurationSourceCounts {
    /// Teams billed the carrier's reported duration.
    pub operator: u64,
    /// Teams fell back to its own measure: the carrier's report was missing or late.
    pub microsoft: u64,
    /// The row does not say.
    pub unknown: u64,
    /// `microsoft` rows for which the carrier's export has a CDR (it had the call, but its
    /// report did not reach Teams in time).
    pub microsoft_with_carrier_cdr: u64,
    /// `operator` rows with a `duration` matched to a carrier CDR: the ones checked below.
    pub operator_checked: u64,
    /// `operator` rows whose billed `duration` (whole seconds) is neither the carrier CDR's
    /// duration rounded down nor rounded up to a whole second: the carrier reported something
    /// other than its switch recorded.
    pub operator_billed_differs: u64,
}

/// Minutes on each side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Minutes {
    /// Teams' `endDateTime − startDateTime`, summed.
    pub teams_measured: f64,
    /// Teams' `duration` (whole seconds, what it billed), summed.
    pub teams_billed: f64,
    /// The carrier's durations, summed.
    pub carrier: f64,
    /// carrier − teams_measured.
    pub gap: f64,
}

/// Charges on each side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Charges {
    /// Teams' `charge` by `currency`, in currency order.
    pub teams: Vec<Charge>,
    /// The carrier's charge column, summed (absent without one).
    pub carrier: Option<f64>,
}

/// An amount in one currency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Charge {
    /// ISO 4217, as the rows give it (empty when they do not).
    pub currency: String,
    /// The sum.
    pub amount: f64,
}

/// One UTC day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DayGap {
    /// `2026-01-05`.
    pub day: String,
    /// Calls (Teams rows, and carrier rows without a Teams row).
    pub calls: u64,
    /// Teams' measured minutes.
    pub teams_minutes: f64,
    /// The carrier's minutes.
    pub carrier_minutes: f64,
    /// carrier − Teams.
    pub gap_minutes: f64,
    /// Calls per class.
    pub matched: u64,
    /// Drift calls.
    pub drift: u64,
    /// Missing calls.
    pub missing: u64,
    /// Unexpected calls.
    pub unexpected: u64,
}

/// One number (the Teams user's: the callee of an inbound call, the caller otherwise).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NumberGap {
    /// As digits with its `+`; empty for calls without a number.
    pub number: String,
    /// Calls.
    pub calls: u64,
    /// Teams' measured minutes.
    pub teams_minutes: f64,
    /// The carrier's minutes.
    pub carrier_minutes: f64,
    /// carrier − Teams.
    pub gap_minutes: f64,
    /// Calls not matched (drift, missing, unexpected).
    pub not_matched: u64,
}

/// A rejected row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RowErrorEntry {
    /// `teams` or `carrier`.
    pub side: String,
    /// The file.
    pub file: String,
    /// 1-based line.
    pub line: u64,
    /// 1-based byte column, when known.
    pub column: Option<u64>,
    /// The field, when one field is wrong.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl RowErrorEntry {
    /// `file:line:column: field `x`: message`.
    pub fn located(&self) -> String {
        let mut text = format!("{}:{}", self.file, self.line);
        if let Some(column) = self.column {
            text.push_str(&format!(":{column}"));
        }
        text.push_str(": ");
        if let Some(field) = &self.field {
            text.push_str(&format!("field `{field}`: "));
        }
        text.push_str(&self.message);
        text
    }
}

impl ReconcileReport {
    /// Writes `dir/report.json`.
    pub fn write_json(&self, dir: &Path) -> Result<PathBuf, WriteError> {
        write_file(dir, "report.json", |mut w| {
            serde_json::to_writer_pretty(&mut w, self)?;
            w.write_all(b"\n")
        })
    }

    /// Writes `report.json`, `summary.md` and `report.html` into `dir`; the paths, in that order.
    pub fn write_all(&self, dir: &Path) -> Result<Vec<PathBuf>, WriteError> {
        Ok(vec![
            self.write_json(dir)?,
            write_file(dir, "summary.md", |w| write_summary(self, w))?,
            write_file(dir, "report.html", |w| write_html(self, w))?,
        ])
    }

    /// Calls not matched.
    pub fn not_matched(&self) -> u64 {
        self.classes.drift + self.classes.missing + self.classes.unexpected
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> ReconcileReport {
        ReconcileReport {
            schema_version: RECONCILE_SCHEMA_VERSION,
            kind: "reconcile".into(),
            harness_version: "0.1.0".into(),
            verdict: ReconcileVerdict::Mismatches,
            inputs: ReconcileInputs {
                teams: vec![InputFile {
                    path: "teams.json".into(),
                    shape: "graph-json".into(),
                    gzip: false,
                }],
                carrier: vec![InputFile {
                    path: "carrier.csv.gz".into(),
                    shape: "csv".into(),
                    gzip: true,
                }],
                carrier_format: "oc-harness (bundled)".into(),
                tolerance_ms: 1000,
                from: None,
                to: None,
                operator: Some("Contoso <Telecom>".into()),
            },
            teams_rows: RowCounts {
                read: 10,
                rejected: 1,
                filtered: 1,
                reconciled: 8,
            },
            carrier_rows: RowCounts {
                read: 9,
                rejected: 0,
                filtered: 0,
                reconciled: 9,
            },
            classes: ClassCounts {
                matched: 5,
                drift: 2,
                missing: 1,
                unexpected: 2,
            },
            drift: DriftFigures {
                calls: 7,
                p50_ms: 0.0,
                p90_ms: 3000.0,
                p99_ms: 3000.0,
                min_ms: -250.5,
                max_ms: 3000.0,
                bins: vec![
                    DriftBin {
                        from_ms: -999,
                        to_ms: -100,
                        count: 1,
                    },
                    DriftBin {
                        from_ms: 0,
                        to_ms: 0,
                        count: 4,
                    },
                    DriftBin {
                        from_ms: 1,
                        to_ms: 9,
                        count: 0,
                    },
                    DriftBin {
                        from_ms: 10,
                        to_ms: 99,
                        count: 0,
                    },
                    DriftBin {
                        from_ms: 100,
                        to_ms: 999,
                        count: 0,
                    },
                    DriftBin {
                        from_ms: 1000,
                        to_ms: 9999,
                        count: 2,
                    },
                ],
            },
            duration_source: DurationSourceCounts {
                operator: 6,
                microsoft: 2,
                unknown: 0,
                microsoft_with_carrier_cdr: 1,
                operator_checked: 6,
                operator_billed_differs: 1,
            },
            minutes: Minutes {
                teams_measured: 20.5,
                teams_billed: 21.0,
                carrier: 22.0,
                gap: 1.5,
            },
            charges: Charges {
                teams: vec![Charge {
                    currency: "USD".into(),
                    amount: 1.25,
                }],
                carrier: None,
            },
            by_day: vec![DayGap {
                day: "2026-01-05".into(),
                calls: 10,
                teams_minutes: 20.5,
                carrier_minutes: 22.0,
                gap_minutes: 1.5,
                matched: 5,
                drift: 2,
                missing: 1,
                unexpected: 2,
            }],
            top_numbers: vec![NumberGap {
                number: "+14255550100".into(),
                calls: 3,
                teams_minutes: 2.0,
                carrier_minutes: 3.0,
                gap_minutes: 1.0,
                not_matched: 2,
            }],
            distinct_numbers: 4,
            errors: vec![RowErrorEntry {
                side: "teams".into(),
                file: "teams.json".into(),
                line: 7,
                column: Some(12),
                field: Some("duration".into()),
                message: "invalid type: string \"long\", expected i64".into(),
            }],
            mismatch_lines: 6,
            timing: ReconcileTiming {
                teams_seconds: 0.004,
                carrier_seconds: 0.003,
                output_seconds: 0.003,
                total_seconds: 0.01,
            },
        }
    }

    #[test]
    fn report_json_reads_back() {
        let report = sample();
        let text = serde_json::to_string(&report).unwrap();
        let back: ReconcileReport = serde_json::from_str(&text).unwrap();
        assert_eq!(back, report);
        assert_eq!(
            report.errors[0].located(),
            "teams.json:7:12: field `duration`: invalid type: string \"long\", expected i64"
        );
    }
}
