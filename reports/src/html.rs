//! `report.html`: one self-contained page (inline CSS and SVG, no script, nothing fetched) with
//! the verdict, charts of the reconciliation classes and the drift percentiles, and the tables.

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::{Outcome, Report, Verdict};

/// Width of a chart's plotting area, px.
const PLOT_WIDTH: f64 = 480.0;
/// Width of a chart's label column, px.
const LABEL_WIDTH: f64 = 110.0;
/// Height of one bar's row, px.
const ROW: f64 = 26.0;

/// Writes `report.html`: the verdict, failed rules with their evidence, an SVG bar chart of the
/// reconciliation classes, an SVG chart of the drift percentiles (on a signed log scale, since
/// the maximum is often orders of magnitude beyond the median), and the rule, latency and
/// threshold tables.
pub fn write_html<W: Write>(report: &Report, mut w: W) -> io::Result<()> {
    let s = &report.scenario;
    let (class, word) = match report.verdict {
        Verdict::Passed => ("passed", "PASSED"),
        Verdict::Failed => ("failed", "FAILED"),
        Verdict::HarnessError => ("error", "HARNESS ERROR"),
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>oc-harness: {name} — {word}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n\
         <h1 class=\"{class}\">{name} — {word}</h1>\n\
         <p>Seed <b>{seed}</b>, oc-harness <b>{version}</b> (report schema {schema}); carrier \
         {carrier}; {clock} clock from {start} for {length} ms.</p>\n\
         <p class=\"description\">{description}</p>\n",
        name = escape(&s.name),
        seed = s.seed,
        version = escape(&report.harness_version),
        schema = report.schema_version,
        carrier = escape(&s.carrier),
        clock = escape(&s.clock),
        start = escape(&s.start),
        length = s.length_ms,
        description = escape(&s.description),
    );
    let c = &report.counts;
    let _ = writeln!(
        out,
        "<p>{} numbers, {} events, {} calls ({} answered), {} exchanges, {} poll cycles.</p>",
        c.numbers, c.events, c.calls, c.answered_calls, c.exchanges, c.cycles
    );

    out.push_str(
        "<h2>Rules</h2>\n<table>\n<tr><th>rule</th><th>severity</th><th>party</th>\
                  <th>outcome</th><th>failures</th><th>summary</th></tr>\n",
    );
    for r in &report.rules {
        let outcome = match r.outcome {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::NotExercised => "not exercised",
        };
        let _ = writeln!(
            out,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{outcome}</td>\
             <td class=\"n\">{}</td><td>{}</td></tr>",
            outcome.replace(' ', "-"),
            r.rule,
            r.severity,
            r.party,
            r.failures,
            escape(&r.summary)
        );
    }
    out.push_str("</table>\n");
    for r in report.rules.iter().filter(|r| r.outcome == Outcome::Failed) {
        let _ = writeln!(out, "<h3>{} ({})</h3>\n<ul>", r.rule, r.severity);
        for e in &r.evidence {
            let seqs: Vec<String> = e.exchanges.iter().map(u64::to_string).collect();
            let _ = write!(out, "<li>{}", escape(&e.note));
            if !seqs.is_empty() {
                let _ = write!(
                    out,
                    " <span class=\"seq\">(exchanges {})</span>",
                    seqs.join(", ")
                );
            }
            out.push_str("</li>\n");
        }
        out.push_str("</ul>\n");
    }

    out.push_str("<h2>Reconciliation</h2>\n");
    match &report.reconciliation {
        None => out.push_str("<p>The run has no reconciliation.</p>\n"),
        Some(r) => {
            let rate = r
                .match_rate
                .map_or_else(|| "–".to_owned(), |m| format!("{m:.4}"));
            let _ = writeln!(
                out,
                "<p>Calls started from {} to {}; tolerance {} ms; match rate <b>{rate}</b>; \
                 minutes Teams {:.1}, carrier {:.1}, difference {:+.1}.</p>",
                escape(&r.from),
                escape(&r.to),
                r.tolerance_ms,
                r.minutes.teams,
                r.minutes.carrier,
                r.minutes.difference
            );
            let counts = [
                ("matched", r.counts.matched as f64),
                ("drift", r.counts.drift as f64),
                ("missing", r.counts.missing as f64),
                ("unexpected", r.counts.unexpected as f64),
            ];
            bar_chart(&mut out, "Reconciliation classes (calls)", &counts, |v| {
                format!("{v}")
            });
            let d = &r.drift_ms;
            let percentiles: Vec<(&str, f64)> = [
                ("min", d.min),
                ("p50", d.p50),
                ("p90", d.p90),
                ("p99", d.p99),
                ("max", d.max),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v as f64)))
            .collect();
            if percentiles.is_empty() {
                out.push_str("<p>No call has both sides: no drift to chart.</p>\n");
            } else {
                drift_chart(&mut out, &percentiles);
            }
        }
    }

    out.push_str("<h2>Latency</h2>\n");
    if report.latency.is_empty() {
        out.push_str("<p>No exchange was timed.</p>\n");
    } else {
        out.push_str(
            "<table>\n<tr><th>exchange</th><th>count</th><th>p50 µs</th>\
                      <th>p90 µs</th><th>p99 µs</th><th>max µs</th></tr>\n",
        );
        for l in &report.latency {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                escape(&l.exchange),
                l.count,
                l.p50_us,
                l.p90_us,
                l.p99_us,
                l.max_us
            );
        }
        out.push_str("</table>\n");
    }

    out.push_str("<h2>Thresholds</h2>\n");
    if report.thresholds.is_empty() {
        out.push_str("<p>The scenario sets no threshold.</p>\n");
    } else {
        out.push_str(
            "<table>\n<tr><th>threshold</th><th>limit</th><th>measured</th><th>result</th></tr>\n",
        );
        for t in &report.thresholds {
            let measured = t.measured.map_or_else(|| "–".to_owned(), |m| m.to_string());
            let (class, result) = if t.passed {
                ("passed", "held")
            } else {
                ("failed", "missed")
            };
            let _ = writeln!(
                out,
                "<tr class=\"{class}\"><td>{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{measured}</td><td>{result}</td></tr>",
                escape(&t.name),
                t.limit
            );
        }
        out.push_str("</table>\n");
    }

    let e = &report.expectation;
    let list = |rules: &[oc_protocol::RuleId]| {
        if rules.is_empty() {
            "none".to_owned()
        } else {
            rules
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let _ = write!(
        out,
        "<h2>Expectation</h2>\n<p>Expected <code>must</code> failures: {}; actual: {}. The run \
         {} what the scenario expects.</p>\n<h2>Replay</h2>\n<pre>{}</pre>\n</body>\n</html>\n",
        list(&e.expected_failures),
        list(&e.actual_failures),
        if e.met {
            "showed"
        } else {
            "did <b>not</b> show"
        },
        escape(&s.replay)
    );
    w.write_all(out.as_bytes())?;
    w.flush()
}

/// A horizontal bar per `(label, value)`, scaled to the largest value.
fn bar_chart(out: &mut String, title: &str, bars: &[(&str, f64)], label: impl Fn(f64) -> String) {
    let largest = bars.iter().map(|b| b.1).fold(0.0, f64::max);
    let height = ROW * bars.len() as f64 + 30.0;
    let width = LABEL_WIDTH + PLOT_WIDTH + 80.0;
    let _ = writeln!(
        out,
        "<figure>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         role=\"img\" aria-label=\"{title}\">\n<text x=\"0\" y=\"16\" class=\"title\">{title}</text>"
    );
    for (i, (name, value)) in bars.iter().enumerate() {
        let y = 26.0 + ROW * i as f64;
        let length = if largest > 0.0 {
            value / largest * PLOT_WIDTH
        } else {
            0.0
        };
        let _ = writeln!(
            out,
            "<text x=\"0\" y=\"{:.1}\">{name}</text><rect class=\"bar {name}\" x=\"{LABEL_WIDTH}\" \
             y=\"{y:.1}\" width=\"{length:.1}\" height=\"{:.1}\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            y + 15.0,
            ROW - 6.0,
            LABEL_WIDTH + length + 6.0,
            y + 15.0,
            label(*value)
        );
    }
    out.push_str("</svg>\n</figure>\n");
}

/// The drift percentiles as bars from a zero axis, on a signed log scale
/// (`sign(v)·log10(1 + |v|)`), labelled with their values in ms.
fn drift_chart(out: &mut String, percentiles: &[(&str, f64)]) {
    let scale = |v: f64| v.signum() * (1.0 + v.abs()).log10();
    let low = percentiles.iter().map(|p| scale(p.1)).fold(0.0, f64::min);
    let high = percentiles.iter().map(|p| scale(p.1)).fold(0.0, f64::max);
    let span = if high > low { high - low } else { 1.0 };
    let x = |v: f64| LABEL_WIDTH + (scale(v) - low) / span * PLOT_WIDTH;
    let zero = x(0.0);
    let height = ROW * percentiles.len() as f64 + 30.0;
    let width = LABEL_WIDTH + PLOT_WIDTH + 110.0;
    let title = "Drift, carrier − Teams (ms, signed log scale)";
    let _ = writeln!(
        out,
        "<figure>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         role=\"img\" aria-label=\"{title}\">\n<text x=\"0\" y=\"16\" class=\"title\">{title}</text>\n\
         <line class=\"axis\" x1=\"{zero:.1}\" y1=\"22\" x2=\"{zero:.1}\" y2=\"{height}\"/>"
    );
    for (i, (name, value)) in percentiles.iter().enumerate() {
        let y = 26.0 + ROW * i as f64;
        let end = x(*value);
        let (left, right) = if end < zero { (end, zero) } else { (zero, end) };
        let _ = writeln!(
            out,
            "<text x=\"0\" y=\"{:.1}\">{name}</text><rect class=\"bar drift\" x=\"{left:.1}\" \
             y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\"/><text x=\"{:.1}\" y=\"{:.1}\">{value} ms</text>",
            y + 15.0,
            right - left,
            ROW - 6.0,
            right + 6.0,
            y + 15.0
        );
    }
    out.push_str("</svg>\n</figure>\n");
}

/// `text` fit for HTML text and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
h1.passed { color: #1a7f37; } h1.failed { color: #cf222e; } h1.error { color: #9a6700; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border: 1px solid #d0d7de; padding: 0.2em 0.6em; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.failed td { background: #ffebe9; } tr.not-exercised td { color: #6e7781; }
.description { font-style: italic; } .seq { color: #6e7781; }
svg text { font-size: 13px; } svg .title { font-weight: bold; }
.bar { fill: #0969da; } .bar.matched { fill: #1a7f37; } .bar.drift { fill: #bf8700; }
.bar.missing { fill: #cf222e; } .bar.unexpected { fill: #8250df; }
.axis { stroke: #6e7781; }
";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::small_report;

    fn render(report: &Report) -> String {
        let mut out = Vec::new();
        write_html(report, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_page_is_self_contained_and_escapes_notes() {
        let html = render(&small_report());
        assert!(!html.contains("<script"));
        assert!(!html.contains("src="));
        assert!(!html.contains("href="));
        assert_eq!(html.matches("<svg").count(), 2);
        assert!(html.contains("reported &lt;late&gt; &amp; &quot;after&quot;"));
    }

    #[test]
    fn the_drift_chart_spans_every_percentile_on_a_log_scale() {
        let mut report = small_report();
        let drift = &mut report.reconciliation.as_mut().unwrap().drift_ms;
        drift.max = Some(9_549_350);
        let html = render(&report);
        assert!(html.contains("9549350 ms"));
        assert!(html.contains(">-20 ms"));
    }

    #[test]
    fn snapshot() {
        insta::assert_snapshot!("report.html", render(&small_report()));
    }
}
