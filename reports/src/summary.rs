//! `summary.md`: what a person reads first, fit for a CI job summary (GitHub-flavoured
//! Markdown tables).

use std::fmt::Write as _;
use std::io::{self, Write};

use oc_protocol::{RuleId, Severity};

use crate::{Outcome, Report, Verdict};

/// Writes `summary.md`: the verdict (scenario, seed, harness version), the failed rules with
/// their evidence notes, the reconciliation, latency, thresholds, the expectation and the
/// command that replays the run.
pub fn write_summary<W: Write>(report: &Report, mut w: W) -> io::Result<()> {
    let mut out = String::new();
    verdict(&mut out, report);
    failed_rules(&mut out, report);
    reconciliation(&mut out, report);
    latency(&mut out, report);
    thresholds(&mut out, report);
    expectation(&mut out, report);
    let _ = write!(
        out,
        "## Replay\n\n```sh\n{}\n```\n",
        report.scenario.replay.replace("```", "` ` `")
    );
    w.write_all(out.as_bytes())?;
    w.flush()
}

fn verdict(out: &mut String, report: &Report) {
    let (icon, word) = match report.verdict {
        Verdict::Passed => ("✅", "PASSED"),
        Verdict::Failed => ("❌", "FAILED"),
        Verdict::HarnessError => ("⚠️", "HARNESS ERROR"),
    };
    let s = &report.scenario;
    let c = &report.counts;
    let _ = write!(
        out,
        "# {icon} {} — {word}\n\n\
         Scenario **{}**, seed **{}**, oc-harness **{}** (report schema {}); carrier {}; \
         {} clock from {} for {} ms.\n\n\
         {}\n\n\
         {} numbers, {} events, {} calls ({} answered), {} exchanges, {} poll cycles; \
         {} ms of wall time.\n\n",
        inline(&s.name),
        inline(&s.name),
        s.seed,
        inline(&report.harness_version),
        report.schema_version,
        inline(&s.carrier),
        inline(&s.clock),
        inline(&s.start),
        s.length_ms,
        quote(&s.description),
        c.numbers,
        c.events,
        c.calls,
        c.answered_calls,
        c.exchanges,
        c.cycles,
        report.timing.wall_ms,
    );
    if report.verdict == Verdict::HarnessError {
        let disagreements = report.accuracy.as_ref().map_or(0, |a| a.disagreement_count);
        let _ = write!(
            out,
            "The checker disagrees with the mock carrier's ground truth on {disagreements} \
             calls; conservation {} ({} of {} answered calls classified once). \
             This is a bug in the harness: `report.json` lists the calls.\n\n",
            if report.conservation.holds {
                "holds"
            } else {
                "does not hold"
            },
            report.conservation.classified,
            report.conservation.answered_calls,
        );
    }
}

fn failed_rules(out: &mut String, report: &Report) {
    out.push_str("## Failed rules\n\n");
    let failed: Vec<_> = report
        .rules
        .iter()
        .filter(|r| r.outcome == Outcome::Failed)
        .collect();
    if failed.is_empty() {
        out.push_str("No rule failed.\n\n");
        return;
    }
    for rule in failed {
        let label = match rule.severity {
            Severity::Must => "FAIL",
            Severity::Should => "WARN",
        };
        let expected = if report.expectation.expected_failures.contains(&rule.rule) {
            " — expected by the scenario"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "### {label} {} (`{}`, {}; {}){expected}\n\n{}\n",
            rule.rule,
            rule.severity,
            rule.party,
            plural(rule.failures, "failure"),
            inline(&rule.summary)
        );
        for evidence in &rule.evidence {
            let _ = write!(out, "- {}", inline(&evidence.note));
            if !evidence.exchanges.is_empty() {
                let seqs: Vec<String> = evidence.exchanges.iter().map(u64::to_string).collect();
                let _ = write!(out, " (exchanges {})", seqs.join(", "));
            }
            out.push('\n');
        }
        if (rule.evidence.len() as u64) < rule.failures {
            let _ = writeln!(
                out,
                "- … and {} more (the first {} are kept)",
                rule.failures - rule.evidence.len() as u64,
                rule.evidence.len()
            );
        }
        if !rule.evidence.is_empty() {
            out.push('\n');
        }
    }
}

fn reconciliation(out: &mut String, report: &Report) {
    out.push_str("## Reconciliation\n\n");
    let Some(r) = &report.reconciliation else {
        out.push_str("The run has no reconciliation.\n\n");
        return;
    };
    let d = &r.drift_ms;
    let ms = |v: Option<i64>| v.map_or_else(|| "–".to_owned(), |v| v.to_string());
    let rate = r
        .match_rate
        .map_or_else(|| "–".to_owned(), |m| format!("{m:.4}"));
    let _ = write!(
        out,
        "Calls started from {} to {}; tolerance {} ms.\n\n\
         | matched | drift | missing | unexpected | match rate |\n\
         | ---: | ---: | ---: | ---: | ---: |\n\
         | {} | {} | {} | {} | {rate} |\n\n\
         Flags: {} late, {} duplicate, {} corrected.\n\n\
         | drift (carrier − Teams), ms | calls | min | p50 | p90 | p99 | max |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n\
         | | {} | {} | {} | {} | {} | {} |\n\n\
         | minutes | Teams | carrier | difference |\n\
         | --- | ---: | ---: | ---: |\n\
         | | {:.1} | {:.1} | {:+.1} |\n\n",
        inline(&r.from),
        inline(&r.to),
        r.tolerance_ms,
        r.counts.matched,
        r.counts.drift,
        r.counts.missing,
        r.counts.unexpected,
        r.flags.late,
        r.flags.duplicate,
        r.flags.corrected,
        d.count,
        ms(d.min),
        ms(d.p50),
        ms(d.p90),
        ms(d.p99),
        ms(d.max),
        r.minutes.teams,
        r.minutes.carrier,
        r.minutes.difference,
    );
}

fn latency(out: &mut String, report: &Report) {
    out.push_str("## Latency\n\n");
    if report.latency.is_empty() {
        out.push_str("No exchange was timed.\n\n");
        return;
    }
    out.push_str(
        "| exchange | count | p50 µs | p90 µs | p99 µs | max µs |\n\
         | --- | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for l in &report.latency {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            cell(&l.exchange),
            l.count,
            l.p50_us,
            l.p90_us,
            l.p99_us,
            l.max_us
        );
    }
    out.push('\n');
}

fn thresholds(out: &mut String, report: &Report) {
    out.push_str("## Thresholds\n\n");
    if report.thresholds.is_empty() {
        out.push_str("The scenario sets no threshold.\n\n");
        return;
    }
    out.push_str("| threshold | limit | measured | result |\n| --- | ---: | ---: | --- |\n");
    for t in &report.thresholds {
        let measured = t.measured.map_or_else(|| "–".to_owned(), |m| m.to_string());
        let _ = writeln!(
            out,
            "| {} | {} | {measured} | {} |",
            cell(&t.name),
            t.limit,
            if t.passed { "held" } else { "**missed**" }
        );
    }
    out.push('\n');
}

fn expectation(out: &mut String, report: &Report) {
    let e = &report.expectation;
    let list = |rules: &[RuleId]| {
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
        "## Expectation\n\n\
         | | `must` rules failed |\n| --- | --- |\n\
         | expected | {} |\n| actual | {} |\n\n\
         The run {} what the scenario expects.\n\n",
        list(&e.expected_failures),
        list(&e.actual_failures),
        if e.met { "showed" } else { "did **not** show" }
    );
}

/// `n thing` or `n things`.
fn plural(n: u64, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

/// `text` on one line, with the characters Markdown (and the HTML inside it) would read as
/// markup backslash-escaped.
fn inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\r' => out.push(' '),
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '&' | '|' | '#' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// `text` for a table cell: as [`inline`] (which escapes `|` too).
fn cell(text: &str) -> String {
    inline(text)
}

/// `text` as a block quote, one `>` per line.
fn quote(text: &str) -> String {
    text.lines()
        .map(|l| format!("> {}", inline(l)))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::small_report;

    fn render(report: &Report) -> String {
        let mut out = Vec::new();
        write_summary(report, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_verdict_comes_first_with_scenario_seed_and_version() {
        let text = render(&small_report());
        let first = text.lines().next().unwrap();
        assert_eq!(first, "# ❌ tiny — FAILED");
        assert!(text.contains("seed **7**, oc-harness **0.1.0**"));
        let order = [
            "## Failed rules",
            "## Reconciliation",
            "## Latency",
            "## Thresholds",
            "## Expectation",
            "## Replay",
        ];
        let positions: Vec<usize> = order.iter().map(|h| text.find(h).unwrap()).collect();
        assert!(positions.is_sorted(), "{positions:?}");
    }

    #[test]
    fn notes_cannot_break_tables_or_inject_markup() {
        let text = render(&small_report());
        assert!(text.contains(
            "- call call-000000003 was reported \\<late\\> \\& \"after\" the 'deadline' \\| 3 h"
        ));
        // Every table row has as many unescaped pipes as its header.
        for table in text.split("\n\n").filter(|b| b.starts_with('|')) {
            let pipes = |line: &str| line.replace("\\|", "").matches('|').count();
            let mut lines = table.lines();
            let header = pipes(lines.next().unwrap());
            assert!(lines.all(|l| pipes(l) == header), "{table}");
        }
    }

    #[test]
    fn a_run_without_reconciliation_or_failures_says_so() {
        let mut report = small_report();
        report.rules.retain(|r| r.outcome != Outcome::Failed);
        report.reconciliation = None;
        report.thresholds.clear();
        let text = render(&report);
        assert!(text.contains("No rule failed."));
        assert!(text.contains("The run has no reconciliation."));
        assert!(text.contains("The scenario sets no threshold."));
    }

    #[test]
    fn snapshot() {
        insta::assert_snapshot!("summary.md", render(&small_report()));
    }
}
