//! `report.html`: one self-contained page (inline CSS and SVG, no script, nothing fetched),
//! readable from a phone to a desktop: the verdict, the failing rules with their evidence, SVG
//! charts (reconciliation classes, the signed drift distribution and percentiles, the poor-stream
//! share over simulated time, the latency percentile curves) and the tables.

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::{
    Evidence, Exercised, LatencyMeasure, LatencySummary, Outcome, Report, RuleStanding,
    RuleVerdict, Verdict,
};

mod certification;
pub(crate) mod charts;
mod load;

use charts::{
    Bar, bar_chart, drift_chart, drift_distribution, latency_chart, quality_chart, seconds,
};

/// Writes `report.html`: the verdict, the failing rules with their evidence, the charts (each
/// with at least one mark when it has data, and a "no data" line instead when not), and the
/// rule (with what each exercised), latency and threshold tables (which scroll sideways on a
/// narrow screen). A certification report has the certification's section first (its verdict,
/// the carrier, the deadline it was held to, its cases with what each exercised, the evidence
/// of those not passed and the warnings of those passed), and its verdict in the page's title.
/// A count below its minimum is marked `shortfall` and says how many were needed.
pub fn write_html<W: Write>(report: &Report, mut w: W) -> io::Result<()> {
    let s = &report.scenario;
    let (class, word) = match report.verdict {
        Verdict::Passed => ("passed", "PASSED"),
        Verdict::Failed => ("failed", "FAILED"),
        Verdict::HarnessError => ("error", "HARNESS ERROR"),
    };
    let (title, extra_style) = match &report.certification {
        Some(c) => (
            format!(
                "{} — {} (oc-harness)",
                certification::headline(c),
                escape(&c.carrier_url)
            ),
            certification::STYLE,
        ),
        None => (format!("oc-harness: {} — {word}", escape(&s.name)), ""),
    };
    let extra_style = match &report.load {
        Some(_) => load::STYLE,
        None => extra_style,
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>\n{STYLE}{extra_style}</style>\n</head>\n<body>\n\
         <main>\n"
    );
    if let Some(c) = &report.certification {
        certification::section(&mut out, report, c);
    }
    let reasons = report.verdict_reasons().map_or_else(String::new, |r| {
        // On a line of its own under the verdict (see `h1 .reasons`), so no dash before it.
        format!(" <span class=\"reasons\">{}</span>", escape(&r))
    });
    let _ = write!(
        out,
        "<h1 class=\"{class}\">{name} — {word}{reasons}</h1>\n\
         <p>Seed <b>{seed}</b>, oc-harness <b>{version}</b> (report schema {schema}); carrier \
         {carrier}; {clock} clock from {start} for {length}.</p>\n\
         <p class=\"description\">{description}</p>\n",
        name = escape(&s.name),
        seed = s.seed,
        version = escape(&report.harness_version),
        schema = report.schema_version,
        carrier = escape(&s.carrier),
        clock = escape(&s.clock),
        start = escape(&s.start),
        length = crate::format_duration(s.length_ms),
        description = escape(&s.description),
    );
    let c = &report.counts;
    let _ = writeln!(
        out,
        "<p>{} numbers, {} events, {} calls ({} answered), {} exchanges, {} poll cycles.</p>",
        c.numbers, c.events, c.calls, c.answered_calls, c.exchanges, c.cycles
    );

    failing_rules(&mut out, report);
    not_exercised(&mut out, &report.rules);

    out.push_str("<h2>Reconciliation</h2>\n");
    match &report.reconciliation {
        None => out.push_str("<p class=\"nodata\">No data: the run has no reconciliation.</p>\n"),
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
                ("matched", r.counts.matched),
                ("drift", r.counts.drift),
                ("missing", r.counts.missing),
                ("unexpected", r.counts.unexpected),
            ]
            .map(|(name, count)| Bar {
                label: name.to_owned(),
                class: name,
                value: count,
            });
            bar_chart(&mut out, "Reconciliation classes (calls)", &counts);
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
                out.push_str(
                    "<p class=\"nodata\">No data: no call has both sides, so no drift \
                     percentiles.</p>\n",
                );
            } else {
                drift_chart(&mut out, &percentiles);
            }
        }
    }
    drift_distribution(&mut out, &report.drift_distribution);

    out.push_str("<h2>Call quality</h2>\n");
    quality_chart(&mut out, &report.quality_over_time);

    out.push_str("<h2>Latency</h2>\n");
    if report.latency.is_empty() {
        out.push_str("<p class=\"nodata\">No data: no exchange was timed.</p>\n");
    }
    for measure in LatencyMeasure::ALL {
        let timed: Vec<&LatencySummary> = report
            .latency
            .iter()
            .filter(|l| l.measure == measure)
            .collect();
        if !timed.is_empty() {
            latency_section(&mut out, measure, &timed);
        }
    }

    out.push_str(
        "<h2>Rules</h2>\n<div class=\"scroll\"><table class=\"stack rules\">\n<tr><th>rule</th><th>severity</th>\
         <th>party</th><th>outcome</th><th>failures</th><th>exercised</th><th>summary</th></tr>\n",
    );
    for r in &report.rules {
        let (class, outcome) = match (report.standing(r), r.outcome) {
            (RuleStanding::FailedAsExpected, _) => ("expected", "failed, as the scenario expects"),
            (RuleStanding::DidNotFail, Outcome::Passed) => {
                ("failed", "passed, but the scenario expects it to fail")
            }
            (RuleStanding::DidNotFail, _) => (
                "failed",
                "not exercised, but the scenario expects it to fail",
            ),
            (RuleStanding::Warned, _) => ("warned", "failed (should: a warning)"),
            (_, Outcome::Passed) => ("passed", "passed"),
            (_, Outcome::Failed) => ("failed", "failed"),
            (_, Outcome::NotExercised) => ("not-exercised", "not exercised"),
        };
        let _ = writeln!(
            out,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{outcome}</td>\
             <td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
            class,
            r.rule,
            r.severity,
            r.party,
            r.failures,
            exercised_cell(&r.exercised),
            escape(&r.summary)
        );
    }
    out.push_str("</table></div>\n");

    if let Some(l) = &report.load {
        load::section(&mut out, l);
    }
    out.push_str("<h2>Thresholds</h2>\n");
    if report.thresholds.is_empty() {
        out.push_str("<p>The scenario sets no threshold.</p>\n");
    } else {
        out.push_str(
            "<div class=\"scroll\"><table class=\"stack thresholds\">\n<tr><th>threshold</th><th>limit</th>\
             <th>measured</th><th>result</th></tr>\n",
        );
        for t in &report.thresholds {
            let measured = crate::measured(t.measured);
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
        out.push_str("</table></div>\n");
    }

    let e = &report.expectation;
    let _ = write!(
        out,
        "<h2>Expectation</h2>\n<p>Expected <code>must</code> failures: {}; actual: {}. The run \
         {} what the scenario expects.</p>\n<h2>Replay</h2>\n<pre>{}</pre>\n</main>\n</body>\n\
         </html>\n",
        crate::rule_list(&e.expected_failures),
        crate::rule_list(&e.actual_failures),
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

/// Every failed rule (`must` and `should`) with its summary and evidence notes (folded, so
/// that the charts stay near the top); a failure the scenario expects is marked so, and not
/// in red.
fn failing_rules(out: &mut String, report: &Report) {
    out.push_str("<h2>Failing rules</h2>\n");
    let failed: Vec<&RuleVerdict> = report
        .rules
        .iter()
        .filter(|r| r.outcome == Outcome::Failed)
        .collect();
    if failed.is_empty() {
        out.push_str("<p>No rule failed.</p>\n");
    }
    for r in failed {
        let expected = report.standing(r) == RuleStanding::FailedAsExpected;
        let _ = writeln!(
            out,
            "<section class=\"rule {severity}{class}\">\n<h3>{rule} ({severity}): {failures} \
             failure{s}{note}</h3>\n<p>{summary}</p>\n{exercised}<details>\n<summary>Evidence \
             ({count} listed)</summary>\n<ul>",
            count = r.evidence.len(),
            rule = r.rule,
            severity = r.severity,
            class = if expected { " expected" } else { "" },
            note = if expected {
                " — failed, as the scenario expects"
            } else {
                ""
            },
            failures = r.failures,
            s = if r.failures == 1 { "" } else { "s" },
            summary = escape(&r.summary),
            exercised = exercised_paragraph(&r.exercised),
        );
        for e in &r.evidence {
            evidence_item(out, e);
        }
        if r.evidence.len() < usize::try_from(r.failures).unwrap_or(usize::MAX) {
            let _ = writeln!(
                out,
                "<li class=\"more\">… the first {} of {} are listed.</li>",
                r.evidence.len(),
                r.failures
            );
        }
        out.push_str("</ul>\n</details>\n</section>\n");
    }
}

/// Every rule the run did not exercise, with the counts that fell short and why: a quiet run
/// must not read as a clean one.
fn not_exercised(out: &mut String, rules: &[RuleVerdict]) {
    out.push_str("<h2>Rules not exercised</h2>\n");
    let quiet: Vec<&RuleVerdict> = rules
        .iter()
        .filter(|r| r.outcome == Outcome::NotExercised)
        .collect();
    if quiet.is_empty() {
        out.push_str("<p>Every rule was exercised.</p>\n");
        return;
    }
    out.push_str("<ul class=\"not-exercised\">\n");
    for r in quiet {
        let _ = writeln!(
            out,
            "<li><b>{}</b> not exercised: {}</li>",
            r.rule,
            escape(&crate::not_exercised_why(r))
        );
    }
    out.push_str("</ul>\n");
}

/// Every count, one a line, those below their minimum marked `shortfall`; `–` when none.
fn exercised_cell(exercised: &[Exercised]) -> String {
    if exercised.is_empty() {
        return "–".to_owned();
    }
    exercised.iter().map(count).collect::<Vec<_>>().join("<br>")
}

/// `<p class="exercised">Exercised: …</p>`, when anything was counted.
fn exercised_paragraph(exercised: &[Exercised]) -> String {
    if exercised.is_empty() {
        return String::new();
    }
    let counts: Vec<String> = exercised.iter().map(count).collect();
    format!(
        "<p class=\"exercised\">Exercised: {}.</p>\n",
        counts.join(", ")
    )
}

/// One count, in `<b class="shortfall">` when below its minimum.
fn count(e: &Exercised) -> String {
    if e.reached() {
        escape(&e.to_string())
    } else {
        format!("<b class=\"shortfall\">{}</b>", escape(&e.to_string()))
    }
}

/// One evidence note as a list item, with the `seq`s of the exchanges it cites.
fn evidence_item(out: &mut String, e: &Evidence) {
    let _ = write!(out, "<li>{}", escape(&e.note));
    if !e.exchanges.is_empty() {
        let seqs: Vec<String> = e.exchanges.iter().map(u64::to_string).collect();
        let _ = write!(
            out,
            " <span class=\"seq\">(exchanges {})</span>",
            seqs.join(", ")
        );
    }
    out.push_str("</li>\n");
}

/// The exchanges timed one way: what the figures time, their percentile curves, and their
/// table.
fn latency_section(out: &mut String, measure: LatencyMeasure, timed: &[&LatencySummary]) {
    let _ = writeln!(out, "<p class=\"measure\">{}</p>", measure.explanation());
    let name = measure.name();
    let title = format!("{}{} (µs, log scale)", name[..1].to_uppercase(), &name[1..]);
    latency_chart(out, &title, timed);
    out.push_str(
        "<div class=\"scroll\"><table class=\"stack latency\">\n<tr><th>exchange</th><th>count</th><th>p50 µs</th>\
         <th>p90 µs</th><th>p99 µs</th><th>max µs</th></tr>\n",
    );
    for l in timed {
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
    out.push_str("</table></div>\n");
}

/// `text` fit for HTML text and attribute values.
pub(crate) fn escape(text: &str) -> String {
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

pub(crate) const STYLE: &str = "* { box-sizing: border-box; }
body { font-family: system-ui, sans-serif; margin: 0; color: #222; line-height: 1.4; }
main { max-width: 960px; margin: 0 auto; padding: 1em; }
h1 { font-size: 1.6em; overflow-wrap: anywhere; }
h1.passed { color: #1a7f37; } h1.failed { color: #cf222e; } h1.error { color: #9a6700; }
.scroll { overflow-x: auto; margin: 0.5em 0 1em; }
table { border-collapse: collapse; }
th, td { border: 1px solid #d0d7de; padding: 0.2em 0.6em; text-align: left; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.failed td { background: #ffebe9; } tr.not-exercised td { color: #6e7781; }
.description { font-style: italic; } .seq, .more { color: #6e7781; }
b.shortfall { color: #9a6700; }
section.rule { border-left: 4px solid #cf222e; padding-left: 0.8em; margin: 0.8em 0; }
section.rule.should { border-left-color: #bf8700; } section.rule.expected { border-left-color: #57606a; }
tr.expected td { background: #f6f8fa; } tr.warned td { background: #fff8c5; }
h1 .reasons { font-size: 0.6em; font-weight: normal; color: #222; }
section.rule h3 { margin: 0.2em 0; } summary { cursor: pointer; color: #0969da; } li { overflow-wrap: anywhere; }
pre { overflow-x: auto; white-space: pre-wrap; overflow-wrap: anywhere; }
figure { margin: 1em 0; }
svg { width: 100%; height: auto; max-width: 620px; display: block; }
svg text { font-size: 14px; fill: #222; } svg .title { font-weight: bold; }
svg .label { text-anchor: end; } svg .middle { text-anchor: middle; } svg .end { text-anchor: end; }
.nodata { color: #6e7781; font-style: italic; }
.bar { fill: #0969da; } .bar.matched { fill: #1a7f37; } .bar.drift { fill: #bf8700; }
.bar.missing { fill: #cf222e; } .bar.unexpected { fill: #8250df; }
.bar.zero { fill: #1a7f37; } .bar.short { fill: #0969da; } .bar.long { fill: #bf8700; }
.bar.poor { fill: #cf222e; fill-opacity: 0.7; } .dot { fill: #222; }
.axis { stroke: #6e7781; } .grid { stroke: #d0d7de; }
.curve { fill: none; stroke-width: 2; }
.legend { list-style: none; padding: 0; margin: 0.3em 0; display: flex; flex-wrap: wrap; gap: 0.3em 1.2em; }
.swatch { display: inline-block; width: 0.9em; height: 0.9em; margin-right: 0.4em; vertical-align: -0.1em; }
.s0 { stroke: #0969da; fill: #0969da; background: #0969da; }
.s1 { stroke: #cf222e; fill: #cf222e; background: #cf222e; }
.s2 { stroke: #1a7f37; fill: #1a7f37; background: #1a7f37; }
.s3 { stroke: #8250df; fill: #8250df; background: #8250df; }
.s4 { stroke: #bf8700; fill: #bf8700; background: #bf8700; }
.s5 { stroke: #1b7c83; fill: #1b7c83; background: #1b7c83; }
.s6 { stroke: #bc4c00; fill: #bc4c00; background: #bc4c00; }
.s7 { stroke: #57606a; fill: #57606a; background: #57606a; }
.s0 .curve, .s1 .curve, .s2 .curve, .s3 .curve, .s4 .curve, .s5 .curve, .s6 .curve, .s7 .curve { fill: none; }
h1 .reasons { display: block; margin-top: 0.3em; line-height: 1.3; }
@media (max-width: 640px) {
  table.stack, table.stack tbody, table.stack tr, table.stack td { display: block; width: 100%; }
  table.stack tr:first-child { display: none; }
  table.stack tr { border: 1px solid #d0d7de; border-radius: 4px; margin: 0 0 0.6em; }
  table.stack td { border: 0; padding: 0.15em 0.6em; overflow-wrap: anywhere; }
  table.stack td.n { text-align: left; }
  table.stack td:first-child { font-weight: bold; }
  table.stack td::before { font-weight: bold; color: #57606a; }
  table.rules td:nth-child(2)::before { content: \"severity: \"; }
  table.rules td:nth-child(3)::before { content: \"party: \"; }
  table.rules td:nth-child(4)::before { content: \"outcome: \"; }
  table.rules td:nth-child(5)::before { content: \"failures: \"; }
  table.rules td:nth-child(6)::before { content: \"exercised: \"; }
  table.rules td:nth-child(7)::before { content: \"summary: \"; }
  table.latency td:nth-child(2)::before { content: \"count: \"; }
  table.latency td:nth-child(3)::before { content: \"p50 µs: \"; }
  table.latency td:nth-child(4)::before { content: \"p90 µs: \"; }
  table.latency td:nth-child(5)::before { content: \"p99 µs: \"; }
  table.latency td:nth-child(6)::before { content: \"max µs: \"; }
  table.thresholds td:nth-child(2)::before { content: \"limit: \"; }
  table.thresholds td:nth-child(3)::before { content: \"measured: \"; }
  table.thresholds td:nth-child(4)::before { content: \"result: \"; }
}
";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{certification_report, load_report, small_report};

    #[test]
    fn a_load_report_charts_rates_latency_lags_and_errors_with_the_phases_shaded() {
        let html = render(&load_report());
        assert!(html.contains("<h2>Load</h2>"));
        for title in [
            "Rate against target (per second)",
            "Latency from the intended send time (ms)",
            "Feed and report lag (ms)",
            "Errors and dropped iterations",
        ] {
            assert!(html.contains(&format!("aria-label=\"{title}\"")), "{title}");
        }
        // The outage and its catch-up, shaded in each of the four charts.
        assert_eq!(html.matches("<rect class=\"phase\"").count(), 4);
        assert!(html.contains("calls target"));
        assert!(html.contains("webhook_ack.p99 &lt; 500ms"));
        // No report lag was measured: its lines are left out, not drawn at zero.
        assert!(!html.contains("<title>report_lag p99</title>"));
        insta::assert_snapshot!("report-load.html", html);
        // A report without a load section has none.
        assert!(!render(&small_report()).contains("<h2>Load</h2>"));
    }

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
        assert!(!html.contains("http"));
        assert!(html.contains("<meta name=\"viewport\""));
        // A latency chart for each measure: Teams' handler time and the round trips.
        assert_eq!(html.matches("<svg").count(), 6);
        assert!(html.contains("reported &lt;late&gt; &amp; &quot;after&quot;"));
        assert!(!html.contains("no data"));
    }

    /// Each `<svg>…</svg>` of the page.
    fn charts(html: &str) -> Vec<&str> {
        html.split("<svg")
            .skip(1)
            .map(|c| &c[..c.find("</svg>").unwrap()])
            .collect()
    }

    #[test]
    fn every_chart_has_a_mark() {
        let html = render(&small_report());
        for chart in charts(&html) {
            let marks = chart.matches("<circle").count()
                + chart.matches("<polyline").count()
                + chart
                    .split("<rect")
                    .skip(1)
                    .filter(|r| !r.contains("width=\"0.0\"") && !r.contains("height=\"0.0\""))
                    .count();
            assert!(marks > 0, "{chart}");
        }
        assert_eq!(html.matches("<polyline").count(), 2);
    }

    #[test]
    fn charts_without_data_say_so() {
        let mut report = small_report();
        report.latency.clear();
        report.drift_distribution.clear();
        report.quality_over_time.clear();
        let recon = report.reconciliation.as_mut().unwrap();
        recon.counts = Default::default();
        recon.drift_ms = Default::default();
        let html = render(&report);
        assert_eq!(html.matches("<svg").count(), 0, "{html}");
        assert_eq!(html.matches("no data").count(), 3, "{html}");
        assert_eq!(html.matches("No data").count(), 2, "{html}");
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
    fn expected_failures_are_marked_and_rules_not_exercised_listed() {
        let html = render(&crate::testing::passed_with_expected_failures());
        assert!(html.contains(
            "<h1 class=\"passed\">tiny — PASSED <span class=\"reasons\">2 rules failed, as the \
             scenario expects; DUR-DUPLICATE warned (a should rule does not fail the run); 1 \
             rule not exercised (NUM-ORDER)</span></h1>"
        ));
        assert!(html.contains(
            "<section class=\"rule must expected\">\n<h3>DUR-DEADLINE (must): 2 failures — \
             failed, as the scenario expects</h3>"
        ));
        assert!(html.contains(
            "<tr class=\"expected\"><td>DUR-COMPLETE</td><td>must</td><td>carrier</td>\
             <td>failed, as the scenario expects</td>"
        ));
        assert!(!html.contains("<tr class=\"failed\">"), "{html}");
        assert!(html.contains(
            "<h2>Rules not exercised</h2>\n<ul class=\"not-exercised\">\n<li><b>NUM-ORDER</b> \
             not exercised: 0 stale deliveries made (at least 1 needed) — no event arrived after \
             a newer one</li>\n</ul>\n"
        ));
        assert!(html.contains("virtual clock from 2026-11-02T00:00:00.000Z for 1h.</p>"));
    }

    #[test]
    fn each_latency_chart_says_what_it_times() {
        let html = render(&small_report());
        let handler = html
            .find("<p class=\"measure\">Teams handler time: each request the carrier made")
            .unwrap();
        let handler_chart = html
            .find("class=\"title\">Teams handler time (µs, log scale)</text>")
            .unwrap();
        let round_trip = html
            .find("<p class=\"measure\">Round trip to the carrier: each webhook delivery")
            .unwrap();
        let round_trip_chart = html
            .find("class=\"title\">Round trip to the carrier (µs, log scale)</text>")
            .unwrap();
        assert!([handler, handler_chart, round_trip, round_trip_chart].is_sorted());
        // Each chart holds its own exchanges only.
        let charts = charts(&html);
        let latency: Vec<&&str> = charts
            .iter()
            .filter(|c| c.contains("(µs, log scale)"))
            .collect();
        assert_eq!(latency.len(), 2);
        assert!(latency[0].contains("<title>POST /oc/v1/call-durations</title>"));
        assert!(!latency[0].contains("<title>webhook</title>"));
        assert!(latency[1].contains("<title>webhook</title>"));
    }

    /// At a phone's width a table of seven columns is cut (or hides behind a sideways scroll
    /// nobody sees): every table stacks its rows into labelled cards there instead.
    /// `scripts/check-report-html.sh` measures the result in Chromium at 390 px.
    #[test]
    fn every_table_stacks_into_cards_on_a_phone() {
        let phone = STYLE.split("@media (max-width: 640px)").nth(1).unwrap();
        assert!(phone.contains("table.stack tr:first-child { display: none; }"));
        for (table, columns) in [("rules", 7), ("latency", 6), ("thresholds", 4)] {
            for n in 2..=columns {
                let label = format!("table.{table} td:nth-child({n})::before {{ content: \"");
                assert!(phone.contains(&label), "{label}");
            }
        }
        for report in [small_report(), certification_report()] {
            let html = render(&report);
            let tables = html.matches("<table").count();
            assert!(tables >= 4, "{tables}");
            assert_eq!(html.matches("<table class=\"stack ").count(), tables);
        }
    }

    #[test]
    fn snapshot() {
        insta::assert_snapshot!("report.html", render(&small_report()));
    }

    #[test]
    fn a_certification_comes_first_and_the_page_stays_self_contained() {
        let report = certification_report();
        let html = render(&report);
        for fetching in [
            "<script", "src=", "href=", "<link", "@import", "url(", "<iframe",
        ] {
            assert!(!html.contains(fetching), "{fetching}");
        }
        assert!(html.contains(
            "<title>Certification: NOT CERTIFIED — https://carrier.example.net/oc \
             (oc-harness)</title>"
        ));
        let banner = html
            .find(
                "<div class=\"banner failed\">\n\
                 <h1 class=\"failed\">Certification: NOT CERTIFIED</h1>",
            )
            .unwrap();
        let run = html
            .find("<h1 class=\"failed\">certify — FAILED <span class=\"reasons\">")
            .unwrap();
        assert!(banner < run);
        assert!(html.contains("within <b>5 s</b> of each call's end"));
        assert!(html.contains("Carrier <code>https://carrier.example.net/oc</code>"));
        assert!(html.contains("<tr class=\"not-exercised\"><td>cdr-throttle<br>"));
        assert!(html.contains("<tr class=\"failed\"><td>duration-deadline<br>"));
        assert!(html.contains(
            "<section class=\"case failed\">\n\
             <h3>FAILED duration-deadline (DUR-DEADLINE, DUR-COMPLETE)</h3>"
        ));
        assert!(html.contains("<section class=\"case not-exercised\">"));
        assert!(!html.contains("<section class=\"case passed\">"));
        // Every case says what it exercised; the count that fell short stands out.
        assert!(html.contains(
            "<td>not exercised</td><td><b class=\"shortfall\">0 429s answered (at least 1 \
             needed)</b><br>0 retries seen</td>"
        ));
        assert!(html.contains(
            "<p class=\"exercised\">Exercised: <b class=\"shortfall\">0 429s answered (at least \
             1 needed)</b>, 0 retries seen.</p>"
        ));
        // A case passed with a failed `should` rule passes, with its warning shown.
        assert!(html.contains("<td>passed<br><span class=\"warning\">with a warning</span></td>"));
        assert!(html.contains(
            "<section class=\"case warned\">\n<h3>PASSED WITH A WARNING duration-idempotency"
        ));
        assert!(html.contains(
            "<p class=\"warning\">Warning: DUR-DUPLICATE (<code>should</code>) failed: 12 \
             reported calls reconciled; 1 reported again identically</p>"
        ));
        assert!(html.contains(
            "reported &lt;late&gt; &amp; &quot;after&quot; the &#39;deadline&#39; | 3 h \
             <span class=\"seq\">(exchanges 17)</span>"
        ));
        assert!(!html.contains("stopped short"));
        // After the section, the run's page as it is without a certification.
        let mut alone = report.clone();
        alone.certification = None;
        let alone = render(&alone);
        let from =
            |html: &str| html[html.find("<h1 class=\"failed\">certify").unwrap()..].to_owned();
        assert_eq!(from(&html), from(&alone));
        // A latency chart for each measure: Teams' handler time and the round trips.
        assert_eq!(html.matches("<svg").count(), 6);
    }

    #[test]
    fn a_certified_carrier_has_a_passed_banner_and_an_aborted_one_says_why() {
        let mut report = certification_report();
        let certification = report.certification.as_mut().unwrap();
        certification.verdict = crate::CertificationVerdict::Certified;
        certification.cases.truncate(2);
        let html = render(&report);
        assert!(html.contains(
            "<div class=\"banner passed\">\n<h1 class=\"passed\">Certification: CERTIFIED</h1>"
        ));
        assert!(html.contains("<b>certified</b>: all 2 cases passed."));
        assert!(!html.contains("<section class=\"case"));

        let mut report = certification_report();
        report.certification.as_mut().unwrap().aborted =
            Some("the carrier <never> answered".into());
        let html = render(&report);
        assert!(html.contains(
            "<p class=\"aborted\">The certification stopped short: the carrier \
             &lt;never&gt; answered</p>"
        ));
    }

    #[test]
    fn certification_snapshot() {
        insta::assert_snapshot!("report-certification.html", render(&certification_report()));
    }
}
