//! `summary.md`: what a person reads first, fit for a CI job summary (GitHub-flavoured
//! Markdown tables).

use std::fmt::Write as _;
use std::io::{self, Write};

use oc_protocol::Severity;

use crate::{
    CaseResult, Certification, CertificationVerdict, Evidence, Exercised, LatencyMeasure, Outcome,
    Report, RuleStanding, RuleVerdict, Verdict,
};

/// Writes `summary.md`: for a certification report first the certification (its verdict, the
/// carrier, the deadline it was held to, its cases with what each exercised, the evidence of
/// those not passed and the warnings of those passed), then the verdict (scenario, seed,
/// harness version), the failed rules with their evidence notes, what every rule exercised, the
/// reconciliation, latency, thresholds, the expectation and the command that replays the run.
/// A count below its minimum is in bold and says how many were needed.
pub fn write_summary<W: Write>(report: &Report, mut w: W) -> io::Result<()> {
    let mut out = String::new();
    if let Some(certification) = &report.certification {
        certification_part(&mut out, report, certification);
    }
    verdict(&mut out, report);
    if let Some(section) = &report.load {
        load_part(&mut out, report, section);
    }
    failed_rules(&mut out, report);
    not_exercised(&mut out, report);
    rules_exercised(&mut out, report);
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

/// The certification, in the words a carrier hands over: the verdict, who was certified by
/// what, the deadline and tolerance it was held to, the cases with what each exercised, and the
/// evidence of every case not passed (or passed with evidence, as a failed `should` rule
/// leaves), then a rule before the run's own summary.
fn certification_part(out: &mut String, report: &Report, c: &Certification) {
    let count = |o: Outcome| c.cases.iter().filter(|k| k.outcome == o).count();
    let (failed, not_exercised) = (count(Outcome::Failed), count(Outcome::NotExercised));
    let verdict = match c.verdict {
        CertificationVerdict::Certified => format!(
            "# Certification: CERTIFIED\n\n\
             ✅ The carrier's integration is **certified**: {} passed.\n\n",
            if c.cases.len() == 1 {
                "its 1 case".to_owned()
            } else {
                format!("all {} cases", c.cases.len())
            }
        ),
        CertificationVerdict::NotCertified => format!(
            "# Certification: NOT CERTIFIED\n\n\
             ❌ The carrier's integration is **not certified**: of {}, {failed} failed and \
             {not_exercised} could not be exercised (a case not exercised is not certified).\n\n",
            plural(c.cases.len() as u64, "case")
        ),
    };
    out.push_str(&verdict);
    let _ = write!(
        out,
        "Carrier {}, certified by oc-harness **{}** with seed **{}** (report schema {}); the \
         harness served the Teams API at {}.\n\n\
         Durations had to be reported within **{} s** of each call's end (reporting deadline \
         {} ms); a reported duration matches Teams' within a tolerance of {} ms. The \
         certification was bounded to {} s of wall-clock time.\n\n",
        inline(&c.carrier_url),
        inline(&report.harness_version),
        report.scenario.seed,
        report.schema_version,
        inline(&c.teams_url),
        seconds(c.reporting_deadline_ms),
        c.reporting_deadline_ms,
        c.tolerance_ms,
        seconds(i64::try_from(c.time_limit_ms).unwrap_or(i64::MAX)),
    );
    if let Some(aborted) = &c.aborted {
        let _ = write!(
            out,
            "**The certification stopped short:** {}\n\n",
            inline(aborted)
        );
    }
    out.push_str("## Certification cases\n\n");
    if c.cases.is_empty() {
        out.push_str("The certification ran no case.\n\n");
    } else {
        out.push_str(
            "| case | outcome | exercised | rules | summary |\n| --- | --- | --- | --- | --- |\n",
        );
        for case in &c.cases {
            let warned = if report.warnings(case).is_empty() {
                ""
            } else {
                " (⚠️ warning)"
            };
            let _ = writeln!(
                out,
                "| {} | {}{warned} | {} | {} | {} |",
                cell(&case.id),
                case_outcome(case.outcome),
                exercised_cell(&case.exercised),
                crate::rule_list(&case.rules),
                cell(&case.summary)
            );
        }
        out.push('\n');
    }
    for case in c
        .cases
        .iter()
        .filter(|k| k.outcome != Outcome::Passed || !k.evidence.is_empty())
    {
        case_evidence(out, case, &report.warnings(case));
    }
    out.push_str("---\n\n");
}

/// Every count on one line (fit for a table cell), those below their minimum in bold; `–` when
/// none.
fn exercised_cell(exercised: &[Exercised]) -> String {
    if exercised.is_empty() {
        return "–".to_owned();
    }
    exercised
        .iter()
        .map(|e| {
            if e.reached() {
                cell(&e.to_string())
            } else {
                format!("**{}**", cell(&e.to_string()))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `Exercised: …`, the counts that fell short in bold, saying how many were needed; nothing
/// when nothing was counted.
fn exercised_line(out: &mut String, exercised: &[Exercised]) {
    if !exercised.is_empty() {
        let _ = write!(out, "Exercised: {}.\n\n", exercised_cell(exercised));
    }
}

/// A case's heading, title and summary, what it exercised (for one not exercised, which count
/// fell short), a warning per failed `should` rule, its evidence notes, and where the
/// exchanges they cite are.
fn case_evidence(out: &mut String, case: &CaseResult, warnings: &[&RuleVerdict]) {
    let label = match case.outcome {
        Outcome::Passed if !warnings.is_empty() => "PASSED WITH A WARNING",
        Outcome::Passed => "PASSED",
        Outcome::Failed => "FAILED",
        Outcome::NotExercised => "NOT EXERCISED",
    };
    let _ = write!(
        out,
        "### {label} {} ({})\n\n*{}*\n\n{}\n\n",
        inline(&case.id),
        crate::rule_list(&case.rules),
        inline(&case.title),
        inline(&case.summary)
    );
    exercised_line(out, &case.exercised);
    for warning in warnings {
        let _ = write!(
            out,
            "⚠️ **Warning:** {} (`should`) failed: {}\n\n",
            warning.rule,
            inline(&warning.summary)
        );
    }
    if case.evidence.is_empty() {
        out.push_str("No evidence: no exchange is cited.\n\n");
        return;
    }
    for evidence in &case.evidence {
        evidence_item(out, evidence);
    }
    let seqs: std::collections::BTreeSet<u64> = case
        .evidence
        .iter()
        .flat_map(|e| e.exchanges.iter().copied())
        .collect();
    if seqs.is_empty() {
        out.push('\n');
    } else {
        let seqs: Vec<String> = seqs.iter().map(u64::to_string).collect();
        let _ = write!(
            out,
            "\nThe exchanges cited ({}) are in `evidence.ndjson`, one JSON line each, by \
             `seq`.\n\n",
            seqs.join(", ")
        );
    }
}

fn case_outcome(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Passed => "✅ passed",
        Outcome::Failed => "❌ failed",
        Outcome::NotExercised => "⚠️ not exercised",
    }
}

/// One evidence note as a list item, with the `seq`s of the exchanges it cites.
fn evidence_item(out: &mut String, evidence: &Evidence) {
    let _ = write!(out, "- {}", inline(&evidence.note));
    if !evidence.exchanges.is_empty() {
        let seqs: Vec<String> = evidence.exchanges.iter().map(u64::to_string).collect();
        let _ = write!(out, " (exchanges {})", seqs.join(", "));
    }
    out.push('\n');
}

/// `ms` in seconds with no trailing zeros: `5`, `1.5`, `0.25`.
/// A load test in one paragraph: each executor's rate against its target over the load, the
/// worst interval's p99 of each metric, what was dropped or never reported, and how many
/// thresholds held.
fn load_part(out: &mut String, report: &Report, section: &crate::LoadSection) {
    out.push_str(
        "## Load

",
    );
    let mut rates: std::collections::BTreeMap<&str, (f64, f64, f64)> = Default::default();
    let mut worst: std::collections::BTreeMap<&str, f64> = Default::default();
    for interval in &section.intervals {
        let seconds = (interval.end_ms - interval.start_ms).max(0) as f64 / 1000.0;
        for e in &interval.executors {
            let r = rates.entry(e.executor.as_str()).or_default();
            r.0 += e.achieved_rate * seconds;
            r.1 += e.target_rate * seconds;
            r.2 += seconds;
        }
        for m in &interval.metrics {
            if let Some(p99) = m.p99_ms {
                let w = worst.entry(m.metric.as_str()).or_insert(p99);
                *w = w.max(p99);
            }
        }
    }
    let rates: Vec<String> = rates
        .iter()
        .filter(|(_, r)| r.2 > 0.0)
        .map(|(executor, (done, target, seconds))| {
            let share = if *target > 0.0 {
                format!(" ({:.1} %)", 100.0 * done / target)
            } else {
                String::new()
            };
            format!(
                "{} {:.1}/s against a target of {:.1}/s{share}",
                inline(executor),
                done / seconds,
                target / seconds
            )
        })
        .collect();
    let p99s: Vec<String> = worst
        .iter()
        .map(|(metric, ms)| format!("{} {ms:.1} ms", inline(metric)))
        .collect();
    let held = report.thresholds.iter().filter(|t| t.passed).count();
    let broken: Vec<String> = report
        .thresholds
        .iter()
        .filter(|t| !t.passed)
        .map(|t| inline(&t.name))
        .collect();
    let _ = write!(
        out,
        "{} intervals of {} s. Rates: {}. Worst interval's p99: {}. Dropped iterations: {}; \
         calls never reported: {}. Thresholds: {held} held",
        section.intervals.len(),
        seconds(section.interval_ms),
        if rates.is_empty() {
            "none".to_owned()
        } else {
            rates.join("; ")
        },
        if p99s.is_empty() {
            "none".to_owned()
        } else {
            p99s.join(", ")
        },
        section.dropped_text(),
        section.unreported,
    );
    if broken.is_empty() {
        out.push_str(", none broken.");
    } else {
        let _ = write!(out, ", {} broken ({}).", broken.len(), broken.join(", "));
    }
    if let Some(why) = &section.aborted {
        let _ = write!(out, " Aborted: {}.", inline(why));
    }
    out.push_str("\n\n");
}

fn seconds(ms: i64) -> String {
    let text = format!("{:.3}", ms as f64 / 1000.0);
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn verdict(out: &mut String, report: &Report) {
    let (icon, word) = match report.verdict {
        Verdict::Passed => ("✅", "PASSED"),
        Verdict::Failed => ("❌", "FAILED"),
        Verdict::HarnessError => ("⚠️", "HARNESS ERROR"),
    };
    let s = &report.scenario;
    let c = &report.counts;
    let reasons = report
        .verdict_reasons()
        .map_or_else(String::new, |r| format!(" — {}", inline(&r)));
    let _ = write!(
        out,
        "# {icon} {} — {word}{reasons}\n\n\
         Scenario **{}**, seed **{}**, oc-harness **{}** (report schema {}); carrier {}; \
         {} clock from {} for {}.\n\n\
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
        crate::format_duration(s.length_ms),
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
        let (label, expected) = match (report.standing(rule), rule.severity) {
            (RuleStanding::FailedAsExpected, _) => {
                ("expected FAIL", " — failed, as the scenario expects")
            }
            (_, Severity::Must) => ("FAIL", ""),
            (_, Severity::Should) => ("WARN", ""),
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
        exercised_line(out, &rule.exercised);
        for evidence in &rule.evidence {
            evidence_item(out, evidence);
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

/// Every rule the run did not exercise, each with the counts that fell short and why: a quiet
/// run must not read as a clean one.
fn not_exercised(out: &mut String, report: &Report) {
    out.push_str("## Rules not exercised\n\n");
    let quiet: Vec<_> = report
        .rules
        .iter()
        .filter(|r| r.outcome == Outcome::NotExercised)
        .collect();
    if quiet.is_empty() {
        out.push_str("Every rule was exercised.\n\n");
        return;
    }
    let _ = write!(
        out,
        "{} not exercised: the run gave {} too little to judge, so {} neither passed nor \
         failed.\n\n",
        if quiet.len() == 1 {
            "1 rule was".to_owned()
        } else {
            format!("{} rules were", quiet.len())
        },
        if quiet.len() == 1 { "it" } else { "them" },
        if quiet.len() == 1 { "it" } else { "they" },
    );
    for rule in quiet {
        let _ = writeln!(
            out,
            "- **{}** not exercised: {}",
            rule.rule,
            inline(&crate::not_exercised_why(rule))
        );
    }
    out.push('\n');
}

/// Every rule's outcome and what it exercised, so that a rule not exercised never reads as
/// passed.
fn rules_exercised(out: &mut String, report: &Report) {
    out.push_str("## Rules exercised\n\n");
    if report.rules.is_empty() {
        out.push_str("The run judged no rule.\n\n");
        return;
    }
    out.push_str("| rule | outcome | exercised |\n| --- | --- | --- |\n");
    for rule in &report.rules {
        let outcome = match report.standing(rule) {
            RuleStanding::Warned => "⚠️ failed (`should`)",
            RuleStanding::FailedAsExpected => "☑️ failed, as the scenario expects",
            RuleStanding::DidNotFail if rule.outcome == Outcome::Passed => {
                "❌ passed, but the scenario expects it to fail"
            }
            RuleStanding::DidNotFail => "❌ not exercised, but the scenario expects it to fail",
            _ => case_outcome(rule.outcome),
        };
        let _ = writeln!(
            out,
            "| {} | {outcome} | {} |",
            rule.rule,
            exercised_cell(&rule.exercised)
        );
    }
    out.push('\n');
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

/// A table per [`LatencyMeasure`], each after a sentence saying what it times.
fn latency(out: &mut String, report: &Report) {
    out.push_str("## Latency\n\n");
    if report.latency.is_empty() {
        out.push_str("No exchange was timed.\n\n");
        return;
    }
    for measure in LatencyMeasure::ALL {
        let timed: Vec<_> = report
            .latency
            .iter()
            .filter(|l| l.measure == measure)
            .collect();
        if timed.is_empty() {
            continue;
        }
        let _ = write!(
            out,
            "{}\n\n\
             | exchange | count | p50 µs | p90 µs | p99 µs | max µs |\n\
             | --- | ---: | ---: | ---: | ---: | ---: |\n",
            measure.explanation()
        );
        for l in timed {
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
}

fn thresholds(out: &mut String, report: &Report) {
    out.push_str("## Thresholds\n\n");
    if report.thresholds.is_empty() {
        out.push_str("The scenario sets no threshold.\n\n");
        return;
    }
    out.push_str("| threshold | limit | measured | result |\n| --- | ---: | ---: | --- |\n");
    for t in &report.thresholds {
        let measured = crate::measured(t.measured);
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
    let _ = write!(
        out,
        "## Expectation\n\n\
         | | `must` rules failed |\n| --- | --- |\n\
         | expected | {} |\n| actual | {} |\n\n\
         The run {} what the scenario expects.\n\n",
        crate::rule_list(&e.expected_failures),
        crate::rule_list(&e.actual_failures),
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
    use crate::testing::{certification_report, passed_with_expected_failures, small_report};
    use oc_protocol::RuleId;

    fn render(report: &Report) -> String {
        let mut out = Vec::new();
        write_summary(report, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_load_test_says_its_rates_p99s_drops_and_thresholds_in_one_paragraph() {
        let text = render(&crate::testing::load_report());
        let load = text
            .split("## Load\n\n")
            .nth(1)
            .and_then(|rest| rest.split("\n\n").next())
            .expect("a load paragraph");
        assert_eq!(
            load,
            "6 intervals of 10 s. Rates: calls 49.0/s against a target of 50.0/s (98.0 %); \
             number\\_events 5.0/s against a target of 5.0/s (100.0 %). Worst interval's p99: \
             feed\\_lag 21600.0 ms, legs\\_post 48.0 ms, webhook\\_ack 72.0 ms. Dropped \
             iterations: 1 (0 with the generator behind its schedule, 1 at the in-flight cap); \
             calls never reported: 3. Thresholds: 1 held, 1 broken \
             (webhook\\_ack.p99 \\< 500ms)."
        );
        assert!(!render(&small_report()).contains("## Load"));
    }

    #[test]
    fn the_verdict_comes_first_with_scenario_seed_and_version() {
        let text = render(&small_report());
        let first = text.lines().next().unwrap();
        assert!(first.starts_with("# ❌ tiny — FAILED — DUR-COMPLETE failed, "));
        assert!(text.contains("seed **7**, oc-harness **0.1.0**"));
        let order = [
            "## Failed rules",
            "## Rules not exercised",
            "## Rules exercised",
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
        assert_tables_intact(&text);
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
    fn a_pass_with_expected_failures_says_so_and_marks_them_expected() {
        let text = render(&passed_with_expected_failures());
        assert_eq!(
            text.lines().next().unwrap(),
            "# ✅ tiny — PASSED — 2 rules failed, as the scenario expects; DUR-DUPLICATE warned \
             (a should rule does not fail the run); 1 rule not exercised (NUM-ORDER)"
        );
        assert!(text.contains(
            "### expected FAIL DUR-DEADLINE (`must`, carrier; 2 failures) — failed, as the \
             scenario expects\n"
        ));
        assert!(text.contains(
            "| DUR-COMPLETE | ☑️ failed, as the scenario expects | 11 answered calls on assigned \
             numbers |"
        ));
        assert!(!text.contains("❌"), "{text}");
        // A rule the scenario expects to fail, which passed, is the run's failure.
        let mut report = small_report();
        report
            .expectation
            .expected_failures
            .push(RuleId::SecSignature);
        assert!(render(&report).contains(
            "| SEC-SIGNATURE | ❌ passed, but the scenario expects it to fail | 3 forged \
             signatures sent |"
        ));
    }

    #[test]
    fn a_quiet_pass_lists_every_rule_not_exercised_with_why() {
        let mut report = small_report();
        report.rules.retain(|r| r.outcome != Outcome::Failed);
        report.thresholds.retain(|t| t.passed);
        report.expectation.expected_failures.clear();
        report.expectation.actual_failures.clear();
        report.expectation.met = true;
        report.verdict = Verdict::Passed;
        let text = render(&report);
        assert!(text.starts_with(
            "# ✅ tiny — PASSED — no rule failed; 1 rule not exercised (NUM-ORDER)\n"
        ));
        assert!(text.contains(
            "## Failed rules\n\nNo rule failed.\n\n## Rules not exercised\n\n1 rule was not \
             exercised: the run gave it too little to judge, so it neither passed nor failed.\n\n\
             - **NUM-ORDER** not exercised: 0 stale deliveries made (at least 1 needed) — no \
             event arrived after a newer one\n\n"
        ));
        report.rules.retain(|r| r.outcome != Outcome::NotExercised);
        assert!(render(&report).contains("## Rules not exercised\n\nEvery rule was exercised.\n"));
    }

    #[test]
    fn the_length_is_in_the_scenario_s_own_units() {
        let mut report = small_report();
        assert!(render(&report).contains("from 2026-11-02T00:00:00.000Z for 1h."));
        report.scenario.length_ms = 5_400_000;
        assert!(render(&report).contains("for 90m."));
        report.scenario.length_ms = 86_400_000;
        assert!(render(&report).contains("for 1d."));
    }

    #[test]
    fn each_latency_table_says_what_it_times() {
        let text = render(&small_report());
        assert!(text.contains(
            "## Latency\n\nTeams handler time: each request the carrier made to the Teams API, \
             timed by Teams from its handler taking the request to the answer being ready"
        ));
        let handler = text.find("Teams handler time: each").unwrap();
        let durations = text.find("| POST /oc/v1/call-durations | 12 |").unwrap();
        let round_trip = text
            .find("Round trip to the carrier: each webhook")
            .unwrap();
        let webhook = text.find("| webhook | 4 |").unwrap();
        assert!([handler, durations, round_trip, webhook].is_sorted());
    }

    #[test]
    fn snapshot() {
        insta::assert_snapshot!("summary.md", render(&small_report()));
    }

    #[test]
    fn a_certification_comes_first_and_the_run_follows_unchanged() {
        let report = certification_report();
        let text = render(&report);
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("# Certification: NOT CERTIFIED"));
        assert!(text.contains("**not certified**: of 5 cases, 1 failed and 1 could not"));
        assert!(text.contains(
            "Carrier https://carrier.example.net/oc, certified by oc-harness **0.1.0** with seed \
             **7**"
        ));
        assert!(text.contains("Durations had to be reported within **5 s** of each call's end"));
        assert!(text.contains("tolerance of 1000 ms"));
        assert!(!text.contains("stopped short"));
        assert!(text.contains(
            "| duration-deadline | ❌ failed | 12 reported calls, 12 answered calls on assigned \
             numbers | DUR-DEADLINE, DUR-COMPLETE | 12 answered calls;"
        ));
        assert!(text.contains(
            "| cdr-throttle | ⚠️ not exercised | **0 429s answered (at least 1 needed)**, 0 \
             retries seen | CDR-THROTTLE |"
        ));
        assert!(text.contains(
            "- call call-000000003 was reported \\<late\\> \\& \"after\" the 'deadline' \\| 3 h \
             (exchanges 17)\n- call call-000000011 was never reported\n\n\
             The exchanges cited (17) are in `evidence.ndjson`"
        ));
        assert!(!text.contains("### PASSED provisioning"));
        let order = [
            "# Certification: NOT CERTIFIED",
            "## Certification cases",
            "### FAILED duration-deadline",
            "### NOT EXERCISED cdr-throttle",
            "### PASSED WITH A WARNING duration-idempotency",
            "\n---\n",
            "# ❌ certify — FAILED — ",
            "## Failed rules",
        ];
        let positions: Vec<usize> = order.iter().map(|h| text.find(h).unwrap()).collect();
        assert!(positions.is_sorted(), "{positions:?}");
        let mut run = report.clone();
        run.certification = None;
        assert!(text.ends_with(&render(&run)));
        assert!(text.contains("\n\n---\n\n# ❌ certify — FAILED — DUR-COMPLETE failed, "));
    }

    #[test]
    fn a_case_not_exercised_names_the_count_that_fell_short() {
        let text = render(&certification_report());
        assert!(text.contains(
            "### NOT EXERCISED cdr-throttle (CDR-THROTTLE)\n\n*Retry-After is honoured when the \
             CDR feed throttles*\n\nthe carrier never read the CDR feed, so it was never \
             throttled\n\nExercised: **0 429s answered (at least 1 needed)**, 0 retries seen.\n\n"
        ));
        // The same for a rule of the run.
        assert!(text.contains(
            "| NUM-ORDER | ⚠️ not exercised | **0 stale deliveries made (at least 1 needed)**, 5 \
             redeliveries made |"
        ));
        assert!(text.contains("| SEC-SIGNATURE | ✅ passed | 3 forged signatures sent |"));
    }

    #[test]
    fn a_case_passed_with_a_failed_should_rule_warns() {
        let text = render(&certification_report());
        assert!(text.contains("| duration-idempotency | ✅ passed (⚠️ warning) | 2 answers lost,"));
        assert!(text.contains(
            "### PASSED WITH A WARNING duration-idempotency (DUR-IDEMPOTENT, DUR-DUPLICATE)"
        ));
        assert!(text.contains(
            "⚠️ **Warning:** DUR-DUPLICATE (`should`) failed: 12 reported calls reconciled; 1 \
             reported again identically\n\n- DUR-DUPLICATE: call call-000000007"
        ));
        assert!(text.contains("| DUR-DUPLICATE | ⚠️ failed (`should`) | 12 reported calls |"));
    }

    #[test]
    fn a_certified_carrier_reads_so_and_an_aborted_certification_says_why() {
        let mut report = certification_report();
        let certification = report.certification.as_mut().unwrap();
        certification.verdict = CertificationVerdict::Certified;
        certification.cases.truncate(2);
        let text = render(&report);
        assert!(text.starts_with(
            "# Certification: CERTIFIED\n\n✅ The carrier's integration is **certified**: all 2 \
             cases passed.\n"
        ));
        let (certification, _) = text.split_once("\n---\n").unwrap();
        assert!(!certification.contains("###"), "{certification}");

        let mut report = certification_report();
        let certification = report.certification.as_mut().unwrap();
        certification.aborted = Some("the carrier never answered `GET /oc/v1/numbers`".into());
        let text = render(&report);
        assert!(text.contains(
            "**The certification stopped short:** the carrier never answered \\`GET \
             /oc/v1/numbers\\`"
        ));
    }

    /// Every table row has as many unescaped pipes as its header.
    fn assert_tables_intact(text: &str) {
        for table in text.split("\n\n").filter(|b| b.starts_with('|')) {
            let pipes = |line: &str| line.replace("\\|", "").matches('|').count();
            let mut lines = table.lines();
            let header = pipes(lines.next().unwrap());
            assert!(lines.all(|l| pipes(l) == header), "{table}");
        }
    }

    #[test]
    fn certification_notes_cannot_break_tables() {
        let mut report = certification_report();
        report.certification.as_mut().unwrap().cases[0].summary = "a | b\nc".into();
        let text = render(&report);
        assert_tables_intact(&text);
    }

    #[test]
    fn certification_snapshot() {
        insta::assert_snapshot!("summary-certification.md", render(&certification_report()));
    }
}
