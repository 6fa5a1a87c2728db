//! `report.html` of a reconciliation: one self-contained page (inline CSS and SVG, no script,
//! nothing fetched) in the run report's style: the verdict, rows on each side, SVG charts of the
//! classes, the drift distribution and percentiles and the gap by day, and the tables.

use std::fmt::Write as _;
use std::io::{self, Write};

use super::summary::{headline, ms, rows_line};
use super::{ReconcileReport, ReconcileVerdict};
use crate::html::charts::{Bar, bar_chart, drift_chart, drift_distribution, open_chart};
use crate::html::{STYLE, escape};

/// Writes `report.html`.
pub fn write_html<W: Write>(report: &ReconcileReport, mut w: W) -> io::Result<()> {
    let class = match report.verdict {
        ReconcileVerdict::Reconciled => "passed",
        ReconcileVerdict::Mismatches => "failed",
    };
    let headline = escape(&headline(report));
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>oc-harness reconcile: {headline}</title>\n<style>\n{STYLE}.bar.gap {{ fill: #bf8700; }} .bar.gapneg {{ fill: #0969da; }}\n</style>\n</head>\n<body>\n<main>\n\
         <h1 class=\"{class}\">Reconciliation: {headline}</h1>\n"
    );
    let i = &report.inputs;
    let files = |files: &[super::InputFile]| {
        files
            .iter()
            .map(|f| format!("<code>{}</code> ({})", escape(&f.path), escape(&f.shape)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(
        out,
        "<p>Teams: {}<br>Carrier: {} through {}<br>Tolerance {} ms; operator {}; oc-harness {}.</p>",
        files(&i.teams),
        files(&i.carrier),
        escape(&i.carrier_format),
        i.tolerance_ms,
        escape(i.operator.as_deref().unwrap_or("any")),
        escape(&report.harness_version)
    );
    let _ = writeln!(
        out,
        "<p>Teams rows: {}.<br>Carrier rows: {}.</p>",
        rows_line(&report.teams_rows),
        rows_line(&report.carrier_rows)
    );
    let c = &report.classes;
    out.push_str("<h2>Classes</h2>\n");
    bar_chart(
        &mut out,
        "Calls per class",
        &[
            Bar {
                label: "matched".into(),
                class: "matched",
                value: c.matched,
            },
            Bar {
                label: "drift".into(),
                class: "drift",
                value: c.drift,
            },
            Bar {
                label: "missing".into(),
                class: "missing",
                value: c.missing,
            },
            Bar {
                label: "unexpected".into(),
                class: "unexpected",
                value: c.unexpected,
            },
        ],
    );
    let d = &report.drift;
    out.push_str("<h2>Drift</h2>\n");
    drift_distribution(&mut out, &d.bins);
    if d.calls > 0 {
        drift_chart(
            &mut out,
            &[
                ("p50", d.p50_ms),
                ("p90", d.p90_ms),
                ("p99", d.p99_ms),
                ("max", d.max_ms),
            ],
        );
    }
    let _ = writeln!(
        out,
        "<p>Over {} calls: p50 {} ms, p90 {} ms, p99 {} ms, min {} ms, max {} ms (carrier − Teams' <code>endDateTime − startDateTime</code>).</p>",
        d.calls,
        ms(d.p50_ms),
        ms(d.p90_ms),
        ms(d.p99_ms),
        ms(d.min_ms),
        ms(d.max_ms)
    );
    let m = &report.minutes;
    let s = &report.duration_source;
    out.push_str("<h2>Minutes, charges and callDurationSource</h2>\n");
    let charges: Vec<String> = report
        .charges
        .teams
        .iter()
        .map(|c| format!("{:.4} {}", c.amount, escape(&c.currency)))
        .collect();
    let _ = writeln!(
        out,
        "<p>Teams measured {:.2} min (billed {:.2}), carrier {:.2} min, gap {:+.2} min. Charges: Teams {}, carrier {}.</p>\n\
         <p><code>operator</code>: {} rows, {} checked, {} billed a duration that differs from the carrier's CDR. \
         <code>microsoft</code>: {} rows (the carrier's report missing or late), {} with a carrier CDR. Not given: {}.</p>",
        m.teams_measured,
        m.teams_billed,
        m.carrier,
        m.gap,
        if charges.is_empty() {
            "none".to_owned()
        } else {
            charges.join(", ")
        },
        report
            .charges
            .carrier
            .map_or("no charge column".to_owned(), |a| format!("{a:.4}")),
        s.operator,
        s.operator_checked,
        s.operator_billed_differs,
        s.microsoft,
        s.microsoft_with_carrier_cdr,
        s.unknown
    );
    out.push_str("<h2>Gap by day</h2>\n");
    gap_chart(
        &mut out,
        "Gap by day, carrier − Teams (minutes)",
        &report
            .by_day
            .iter()
            .map(|d| (d.day.clone(), d.gap_minutes))
            .collect::<Vec<_>>(),
    );
    out.push_str("<div class=\"scroll\"><table class=\"stack days\">\n<tr><th>day</th><th>calls</th><th>Teams min</th><th>carrier min</th><th>gap min</th><th>matched</th><th>drift</th><th>missing</th><th>unexpected</th></tr>\n");
    for day in &report.by_day {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{:.2}</td><td class=\"n\">{:.2}</td><td class=\"n\">{:+.2}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            day.day,
            day.calls,
            day.teams_minutes,
            day.carrier_minutes,
            day.gap_minutes,
            day.matched,
            day.drift,
            day.missing,
            day.unexpected
        );
    }
    out.push_str("</table></div>\n");
    let _ = writeln!(
        out,
        "<h2>Numbers with the largest gap ({} of {})</h2>",
        report.top_numbers.len(),
        report.distinct_numbers
    );
    out.push_str("<div class=\"scroll\"><table class=\"stack numbers\">\n<tr><th>number</th><th>calls</th><th>Teams min</th><th>carrier min</th><th>gap min</th><th>not matched</th></tr>\n");
    for n in &report.top_numbers {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{:.2}</td><td class=\"n\">{:.2}</td><td class=\"n\">{:+.2}</td><td class=\"n\">{}</td></tr>",
            escape(if n.number.is_empty() {
                "(none)"
            } else {
                &n.number
            }),
            n.calls,
            n.teams_minutes,
            n.carrier_minutes,
            n.gap_minutes,
            n.not_matched
        );
    }
    out.push_str("</table></div>\n");
    if !report.errors.is_empty() {
        out.push_str("<h2>Rejected rows</h2>\n<ul>\n");
        for error in &report.errors {
            let _ = writeln!(
                out,
                "<li>{}: <code>{}</code></li>",
                escape(&error.side),
                escape(&error.located())
            );
        }
        out.push_str("</ul>\n");
    }
    let _ = writeln!(
        out,
        "<p><code>mismatches.csv</code> beside this page: {} lines.</p>\n</main>\n</body>\n</html>",
        report.mismatch_lines
    );
    w.write_all(out.as_bytes())
}

/// A signed bar per day from a zero axis (gap > 0: the carrier counted more).
fn gap_chart(out: &mut String, title: &str, values: &[(String, f64)]) {
    let largest = values.iter().map(|v| v.1.abs()).fold(0.0, f64::max);
    if largest == 0.0 {
        let _ = writeln!(out, "<p class=\"nodata\">{title}: no gap.</p>");
        return;
    }
    let (row, label, plot) = (24.0, 150.0, 210.0);
    let zero = label + plot / 2.0;
    let height = row * values.len() as f64 + 30.0;
    open_chart(out, title, height);
    let _ = writeln!(
        out,
        "<line class=\"axis\" x1=\"{zero:.1}\" y1=\"22\" x2=\"{zero:.1}\" y2=\"{height}\"/>"
    );
    for (i, (name, value)) in values.iter().enumerate() {
        let y = 26.0 + row * i as f64;
        let length = value.abs() / largest * plot / 2.0;
        let (x, class) = if *value < 0.0 {
            (zero - length, "gapneg")
        } else {
            (zero, "gap")
        };
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"label\">{}</text><rect class=\"bar {class}\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{length:.1}\" height=\"{:.1}\"/><text x=\"{:.1}\" y=\"{:.1}\">{value:+.2}</text>",
            label - 6.0,
            y + 14.0,
            escape(name),
            row - 6.0,
            label + plot + 6.0,
            y + 14.0
        );
    }
    out.push_str("</svg>\n</figure>\n");
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

    #[test]
    fn the_page_is_self_contained_with_a_mark_in_every_chart() {
        let mut out = Vec::new();
        write_html(&sample(), &mut out).unwrap();
        let html = String::from_utf8(out).unwrap();
        assert!(
            !html.contains("http://") && !html.contains("https://") && !html.contains("<script"),
            "{html}"
        );
        assert!(html.contains("Contoso &lt;Telecom&gt;"));
        let charts: Vec<&str> = html.split("<svg").skip(1).collect();
        assert_eq!(
            charts.len(),
            4,
            "classes, drift bins, percentiles, gap by day"
        );
        for chart in charts {
            assert!(chart.contains("<rect"), "{chart}");
        }
    }
}
