//! `summary.md` of a reconciliation (what a billing team reads first) and the lines
//! `oc-harness reconcile` prints.

use std::io::{self, Write};
use std::path::Path;

use super::{ReconcileReport, ReconcileVerdict, RowCounts};

/// The verdict as a word.
fn verdict(report: &ReconcileReport) -> &'static str {
    match report.verdict {
        ReconcileVerdict::Reconciled => "RECONCILED",
        ReconcileVerdict::Mismatches => "MISMATCHES",
    }
}

/// The verdict's line: `MISMATCHES — 2 drift, 1 missing, 2 unexpected; 1 billed duration
/// differs; 1 row rejected`.
pub(crate) fn headline(report: &ReconcileReport) -> String {
    let c = &report.classes;
    let mut parts = Vec::new();
    if report.not_matched() > 0 {
        parts.push(format!(
            "{} drift, {} missing, {} unexpected",
            c.drift, c.missing, c.unexpected
        ));
    }
    let differs = report.duration_source.operator_billed_differs;
    if differs > 0 {
        parts.push(format!(
            "{differs} billed duration{} differ{} from the carrier's CDR",
            plural(differs),
            if differs == 1 { "s" } else { "" }
        ));
    }
    let rejected = report.teams_rows.rejected + report.carrier_rows.rejected;
    if rejected > 0 {
        parts.push(format!("{rejected} row{} rejected", plural(rejected)));
    }
    if parts.is_empty() {
        parts.push(format!(
            "all {} calls matched within {} ms",
            c.matched, report.inputs.tolerance_ms
        ));
    }
    format!("{} — {}", verdict(report), parts.join("; "))
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `read 10 = rejected 1 + filtered 1 + reconciled 8`.
pub(crate) fn rows_line(rows: &RowCounts) -> String {
    format!(
        "read {} = rejected {} + filtered {} + reconciled {}",
        rows.read, rows.rejected, rows.filtered, rows.reconciled
    )
}

/// A drift in ms with at most three decimals.
pub(crate) fn ms(value: f64) -> String {
    let text = format!("{value:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

/// What the command prints: the verdict, rows on each side, classes, drift, minutes, flags and
/// where the files are (`dir` when they were written).
pub fn write_console<W: Write>(
    report: &ReconcileReport,
    dir: Option<&Path>,
    mut w: W,
) -> io::Result<()> {
    let c = &report.classes;
    let d = &report.drift;
    let s = &report.duration_source;
    writeln!(w, "reconcile — {}", headline(report))?;
    writeln!(w, "  Teams rows:   {}", rows_line(&report.teams_rows))?;
    writeln!(w, "  carrier rows: {}", rows_line(&report.carrier_rows))?;
    writeln!(
        w,
        "  classes: {} matched, {} drift, {} missing, {} unexpected (tolerance {} ms)",
        c.matched, c.drift, c.missing, c.unexpected, report.inputs.tolerance_ms
    )?;
    writeln!(
        w,
        "  drift (carrier − Teams): p50 {} ms, p90 {} ms, p99 {} ms, max {} ms, over {} calls",
        ms(d.p50_ms),
        ms(d.p90_ms),
        ms(d.p99_ms),
        ms(d.max_ms),
        d.calls
    )?;
    writeln!(
        w,
        "  minutes: Teams {:.1} measured ({:.1} billed), carrier {:.1}, gap {:+.1}",
        report.minutes.teams_measured,
        report.minutes.teams_billed,
        report.minutes.carrier,
        report.minutes.gap
    )?;
    writeln!(
        w,
        "  callDurationSource: {} operator ({} billed differ from the CDR), {} microsoft ({} with a carrier CDR), {} unknown",
        s.operator, s.operator_billed_differs, s.microsoft, s.microsoft_with_carrier_cdr, s.unknown
    )?;
    for error in report.errors.iter().take(5) {
        writeln!(w, "  rejected: {} ({})", error.located(), error.side)?;
    }
    let rejected = report.teams_rows.rejected + report.carrier_rows.rejected;
    if rejected > 5 {
        writeln!(
            w,
            "  … {} more rejected rows (report.json lists up to 1000)",
            rejected - 5
        )?;
    }
    if let Some(dir) = dir {
        writeln!(
            w,
            "  mismatches: {} ({} lines)",
            dir.join("mismatches.csv").display(),
            report.mismatch_lines
        )?;
        writeln!(w, "  report: {}", dir.join("report.json").display())?;
    }
    Ok(())
}

/// Writes `summary.md`: the verdict, the row counts that add up, the classes, drift
/// percentiles, minutes and charges, `callDurationSource`, the gap by day and by number, and
/// the rejected rows.
pub fn write_summary<W: Write>(report: &ReconcileReport, mut w: W) -> io::Result<()> {
    let c = &report.classes;
    let d = &report.drift;
    let s = &report.duration_source;
    let i = &report.inputs;
    writeln!(w, "# Reconciliation — {}\n", headline(report))?;
    let files = |files: &[super::InputFile]| {
        files
            .iter()
            .map(|f| {
                format!(
                    "`{}` ({}{})",
                    f.path,
                    f.shape,
                    if f.gzip { ", gzip" } else { "" }
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    writeln!(w, "- Teams: {}", files(&i.teams))?;
    writeln!(
        w,
        "- carrier: {} through {}",
        files(&i.carrier),
        i.carrier_format
    )?;
    let window = match (&i.from, &i.to) {
        (None, None) => "all".to_owned(),
        (from, to) => format!(
            "[{}, {})",
            from.as_deref().unwrap_or("…"),
            to.as_deref().unwrap_or("…")
        ),
    };
    writeln!(
        w,
        "- tolerance {} ms; window {window}; operator {}",
        i.tolerance_ms,
        i.operator.as_deref().unwrap_or("any")
    )?;
    writeln!(
        w,
        "- oc-harness {}, {:.2} s\n",
        report.harness_version, report.timing.total_seconds
    )?;

    writeln!(
        w,
        "## Rows\n\n| side | read | rejected | filtered | reconciled |\n| --- | ---: | ---: | ---: | ---: |"
    )?;
    for (side, rows) in [
        ("Teams", &report.teams_rows),
        ("carrier", &report.carrier_rows),
    ] {
        writeln!(
            w,
            "| {side} | {} | {} | {} | {} |",
            rows.read, rows.rejected, rows.filtered, rows.reconciled
        )?;
    }
    writeln!(
        w,
        "\nTeams' reconciled rows are matched + drift + missing; the carrier's, matched + drift + unexpected.\n"
    )?;

    writeln!(w, "## Classes\n\n| class | calls |\n| --- | ---: |")?;
    for (name, n) in [
        ("matched", c.matched),
        ("drift", c.drift),
        ("missing", c.missing),
        ("unexpected", c.unexpected),
    ] {
        writeln!(w, "| {name} | {n} |")?;
    }
    writeln!(
        w,
        "\nDrift, carrier − Teams (`endDateTime − startDateTime`), over {} calls: p50 {} ms, p90 {} ms, p99 {} ms, min {} ms, max {} ms.\n",
        d.calls,
        ms(d.p50_ms),
        ms(d.p90_ms),
        ms(d.p99_ms),
        ms(d.min_ms),
        ms(d.max_ms)
    )?;

    writeln!(w, "## Minutes and charges\n")?;
    let m = &report.minutes;
    writeln!(
        w,
        "- Teams measured {:.2} min, Teams billed (`duration`) {:.2} min, carrier {:.2} min; gap (carrier − Teams measured) {:+.2} min",
        m.teams_measured, m.teams_billed, m.carrier, m.gap
    )?;
    let teams_charges: Vec<String> = report
        .charges
        .teams
        .iter()
        .map(|c| format!("{:.4} {}", c.amount, c.currency))
        .collect();
    writeln!(
        w,
        "- charges: Teams {}; carrier {}\n",
        if teams_charges.is_empty() {
            "none".to_owned()
        } else {
            teams_charges.join(", ")
        },
        report
            .charges
            .carrier
            .map_or("no charge column".to_owned(), |a| format!("{a:.4}"))
    )?;

    writeln!(w, "## callDurationSource\n")?;
    writeln!(
        w,
        "- `operator`: {} rows; {} checked against the carrier's CDR, {} billed a `duration` that is neither the CDR's rounded down nor up to a whole second",
        s.operator, s.operator_checked, s.operator_billed_differs
    )?;
    writeln!(
        w,
        "- `microsoft` (Teams fell back to its own measure: the carrier's report was missing or late): {} rows, {} of them with a carrier CDR",
        s.microsoft, s.microsoft_with_carrier_cdr
    )?;
    writeln!(w, "- not given: {}\n", s.unknown)?;

    writeln!(
        w,
        "## Gap by day (UTC)\n\n| day | calls | Teams min | carrier min | gap min | matched | drift | missing | unexpected |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    )?;
    for day in &report.by_day {
        writeln!(
            w,
            "| {} | {} | {:.2} | {:.2} | {:+.2} | {} | {} | {} | {} |",
            day.day,
            day.calls,
            day.teams_minutes,
            day.carrier_minutes,
            day.gap_minutes,
            day.matched,
            day.drift,
            day.missing,
            day.unexpected
        )?;
    }
    writeln!(
        w,
        "\n## Numbers with the largest gap ({} of {})\n\n| number | calls | Teams min | carrier min | gap min | not matched |\n| --- | ---: | ---: | ---: | ---: | ---: |",
        report.top_numbers.len(),
        report.distinct_numbers
    )?;
    for n in &report.top_numbers {
        let number = if n.number.is_empty() {
            "(none)"
        } else {
            &n.number
        };
        writeln!(
            w,
            "| {number} | {} | {:.2} | {:.2} | {:+.2} | {} |",
            n.calls, n.teams_minutes, n.carrier_minutes, n.gap_minutes, n.not_matched
        )?;
    }
    writeln!(
        w,
        "\n`mismatches.csv`: {} lines, one per call not matched (and per matched call whose billed duration differs).",
        report.mismatch_lines
    )?;
    if !report.errors.is_empty() {
        writeln!(w, "\n## Rejected rows\n")?;
        for error in &report.errors {
            writeln!(
                w,
                "- {}: `{}`",
                error.side,
                error.located().replace('`', "'")
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

    #[test]
    fn the_summary_states_everything_that_adds_up() {
        let mut out = Vec::new();
        write_summary(&sample(), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("# Reconciliation — MISMATCHES — 2 drift, 1 missing, 2 unexpected; 1 billed duration differs from the carrier's CDR; 1 row rejected"), "{text}");
        assert!(text.contains("| Teams | 10 | 1 | 1 | 8 |"), "{text}");
        assert!(
            text.contains("p50 0 ms, p90 3000 ms, p99 3000 ms, min -250.5 ms"),
            "{text}"
        );
        assert!(
            text.contains("| 2026-01-05 | 10 | 20.50 | 22.00 | +1.50 | 5 | 2 | 1 | 2 |"),
            "{text}"
        );
        assert!(text.contains("teams.json:7:12: field 'duration'"), "{text}");
    }

    #[test]
    fn the_console_says_where_the_files_are() {
        let mut out = Vec::new();
        write_console(&sample(), Some(Path::new("out")), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("Teams rows:   read 10 = rejected 1 + filtered 1 + reconciled 8"),
            "{text}"
        );
        assert!(
            text.contains("mismatches: out/mismatches.csv (6 lines)"),
            "{text}"
        );
    }
}
