//! What `oc-harness run` and `oc-harness certify` print when they are done: the verdict, every
//! rule (a run) or case (a certification) with what it exercised, in counts, a `WARN` line for
//! every failed `should` rule, and where the report is.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;

use crate::{
    Certification, CertificationVerdict, Exercised, Outcome, Report, RuleStanding, Verdict,
};

/// Indent of the lines under a rule's or case's own: past its mark column.
const DETAIL: &str = "                ";

/// Writes the end-of-command summary: for a certification report its verdict and cases,
/// otherwise the run's verdict, counts and rules, then the reconciliation and whatever went
/// wrong. Each rule or case has a line `  MARK  id`, and under it why it failed or was not
/// exercised, and `exercised: <counts>` (a count below its minimum says how many were needed).
/// A case that passed with a failed `should` rule gets a `  WARN  case: RULE: summary` line.
/// `report_path` is where the report was written; `None` says it could not be.
pub fn write_console<W: Write>(
    report: &Report,
    report_path: Option<&Path>,
    mut w: W,
) -> io::Result<()> {
    let mut out = String::new();
    match &report.certification {
        Some(c) => certification(&mut out, report, c, report_path),
        None => run(&mut out, report, report_path),
    }
    w.write_all(out.as_bytes())?;
    w.flush()
}

fn certification(out: &mut String, report: &Report, c: &Certification, path: Option<&Path>) {
    let verdict = match (c.verdict, report.verdict) {
        (_, Verdict::HarnessError) => {
            "NOT CERTIFIED (the harness broke the protocol itself: a harness bug)"
        }
        (CertificationVerdict::Certified, _) => "CERTIFIED",
        (CertificationVerdict::NotCertified, _) => "NOT CERTIFIED",
    };
    let _ = writeln!(out, "{} — {verdict}", c.carrier_url);
    if let Some(why) = &c.aborted {
        let _ = writeln!(out, "  stopped short: {why}");
    }
    for case in &c.cases {
        let mark = match case.outcome {
            Outcome::Passed => "pass",
            Outcome::Failed => "FAIL",
            Outcome::NotExercised => "NOT EXERCISED",
        };
        let _ = writeln!(out, "  {mark:<13} {}", case.id);
        if case.outcome != Outcome::Passed
            && let Some(first) = case.evidence.first()
        {
            let _ = writeln!(out, "{DETAIL}{}", first.note);
        } else {
            not_exercised_why(out, case.outcome, &case.summary);
        }
        exercised(out, &case.exercised);
        for warning in report.warnings(case) {
            let _ = writeln!(
                out,
                "  {:<13} {}: {}: {}",
                "WARN", case.id, warning.rule, warning.summary
            );
            if let Some(first) = warning.evidence.first() {
                let _ = writeln!(out, "{DETAIL}{}", first.note);
            }
        }
    }
    report_line(out, path);
    let _ = writeln!(out, "  replay: {}", report.scenario.replay);
}

/// Where the report is, or that it could not be written (the caller says why).
fn report_line(out: &mut String, path: Option<&Path>) {
    match path {
        Some(path) => {
            let _ = writeln!(out, "  report: {}", path.display());
        }
        None => {
            let _ = writeln!(out, "  report: not written (the error follows)");
        }
    }
}

fn run(out: &mut String, report: &Report, path: Option<&Path>) {
    let verdict = match report.verdict {
        Verdict::Passed => "PASSED",
        Verdict::Failed => "FAILED",
        Verdict::HarnessError => "HARNESS ERROR (the checker disagreed with ground truth)",
    };
    let _ = write!(out, "{} — {verdict}", report.scenario.name);
    if let Some(reasons) = report.verdict_reasons() {
        let _ = write!(out, " — {reasons}");
    }
    out.push('\n');
    let c = &report.counts;
    let _ = writeln!(
        out,
        "  {} numbers, {} events, {} calls ({} answered), {} exchanges, {} poll cycles",
        c.numbers, c.events, c.calls, c.answered_calls, c.exchanges, c.cycles
    );
    for rule in &report.rules {
        let standing = report.standing(rule);
        // "expected FAIL" keeps the mark column's width, and a failure the scenario asked for
        // never reads as one that went wrong.
        let mark = match (standing, rule.outcome) {
            (RuleStanding::FailedAsExpected, _) => "expected FAIL",
            (RuleStanding::Failed, _) => "FAIL",
            (RuleStanding::Warned, _) => "WARN",
            (_, Outcome::Passed) => "pass",
            (_, Outcome::NotExercised) => "NOT EXERCISED",
            (_, Outcome::Failed) => "FAIL",
        };
        if rule.outcome == Outcome::Failed {
            let _ = writeln!(
                out,
                "  {mark:<13} {} ({}): {}",
                rule.rule, rule.failures, rule.summary
            );
        } else {
            let _ = writeln!(out, "  {mark:<13} {}", rule.rule);
        }
        if standing == RuleStanding::DidNotFail {
            let _ = writeln!(
                out,
                "{DETAIL}the scenario expects this rule to fail; it did not"
            );
        }
        not_exercised_why(out, rule.outcome, &rule.summary);
        exercised(out, &rule.exercised);
    }
    let e = &report.expectation;
    if !e.met {
        let _ = writeln!(
            out,
            "  expected failures: {}; actual: {}",
            crate::rule_list(&e.expected_failures),
            crate::rule_list(&e.actual_failures)
        );
    }
    if let Some(r) = &report.reconciliation {
        let _ = writeln!(
            out,
            "  reconciliation: {} matched, {} drift, {} missing, {} unexpected; {}; {}; \
             minutes Teams {:.1}, carrier {:.1}",
            r.counts.matched,
            r.counts.drift,
            r.counts.missing,
            r.counts.unexpected,
            r.match_rate.map_or_else(
                || "no match rate (no answered call)".to_owned(),
                |m| format!("match rate {m:.4}")
            ),
            crate::drift_percentiles(&r.drift_ms),
            r.minutes.teams,
            r.minutes.carrier
        );
    }
    for t in &report.thresholds {
        if !t.passed {
            let _ = writeln!(
                out,
                "  threshold {} missed: limit {}, measured {}",
                t.name,
                t.limit,
                crate::measured(t.measured)
            );
        }
    }
    if let Some(a) = &report.accuracy
        && a.disagreement_count > 0
    {
        let _ = writeln!(
            out,
            "  the checker disagreed with ground truth on {} calls:",
            a.disagreement_count
        );
        let class = |c: Option<oc_protocol::ReconClass>| c.map_or("none", |c| c.as_str());
        for d in &a.disagreements {
            let _ = writeln!(
                out,
                "    {}: Teams says {}, ground truth says {}",
                d.call_id,
                class(d.teams),
                class(d.truth)
            );
        }
    }
    if !report.conservation.holds {
        let _ = writeln!(
            out,
            "  conservation broken: {}",
            report.conservation.violations.join("; ")
        );
    }
    report_line(out, path);
    if report.verdict != Verdict::Passed {
        let _ = writeln!(out, "  replay: {}", report.scenario.replay);
    }
}

/// Under a rule or case not exercised, its summary: why, in words (the counts line under it
/// names the count that fell short).
fn not_exercised_why(out: &mut String, outcome: Outcome, summary: &str) {
    if outcome == Outcome::NotExercised {
        let _ = writeln!(out, "{DETAIL}{summary}");
    }
}

/// `exercised: 12 overtaken events, 0 nextLinks followed (at least 3 needed)`, when anything
/// was counted.
fn exercised(out: &mut String, exercised: &[Exercised]) {
    if !exercised.is_empty() {
        let _ = writeln!(
            out,
            "{DETAIL}exercised: {}",
            crate::exercised_list(exercised)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{certification_report, passed_with_expected_failures, small_report};
    use oc_protocol::RuleId;

    fn render(report: &Report) -> String {
        let mut out = Vec::new();
        write_console(
            report,
            Some(Path::new("oc-harness-out/tiny/report.json")),
            &mut out,
        )
        .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_run_lists_every_rule_with_what_it_exercised() {
        let text = render(&small_report());
        assert!(text.starts_with("tiny — FAILED — DUR-COMPLETE failed, "));
        assert!(text.contains(
            "  pass          SEC-SIGNATURE\n                exercised: 3 forged signatures sent\n"
        ));
        // Why, then the count that fell short, with its minimum.
        assert!(text.contains(
            "  NOT EXERCISED NUM-ORDER\n                no event arrived after a newer one\n\
             \x20               exercised: 0 stale deliveries made (at least 1 needed), 5 \
             redeliveries made\n  WARN          DUR-DUPLICATE (1): "
        ));
        assert!(text.contains("  expected FAIL DUR-DEADLINE (2): 12 reported calls reconciled"));
        assert!(text.contains("  replay: oc-harness run scenarios/tiny.toml --seed 7\n"));
    }

    #[test]
    fn a_pass_with_expected_failures_says_so_and_marks_them_expected() {
        let text = render(&passed_with_expected_failures());
        assert!(
            text.starts_with(
                "tiny — PASSED — 2 rules failed, as the scenario expects; DUR-DUPLICATE warned (a \
                 should rule does not fail the run); 1 rule not exercised (NUM-ORDER)\n"
            ),
            "{text}"
        );
        assert!(text.contains("  expected FAIL DUR-DEADLINE (2): 12 reported calls reconciled"));
        assert!(text.contains("  expected FAIL DUR-COMPLETE (1): "));
        assert!(text.contains("  WARN          DUR-DUPLICATE (1): "));
        assert!(!text.contains("  FAIL "), "{text}");
    }

    #[test]
    fn a_failed_run_says_what_went_against_the_expectation() {
        let text = render(&small_report());
        assert!(
            text.starts_with(
                "tiny — FAILED — DUR-COMPLETE failed, which the scenario does not expect; \
                 threshold min_match_rate missed; 1 rule failed, as the scenario expects; \
                 DUR-DUPLICATE warned (a should rule does not fail the run); 1 rule not \
                 exercised (NUM-ORDER)\n"
            ),
            "{text}"
        );
        assert!(text.contains("  expected FAIL DUR-DEADLINE (2): "));
        assert!(text.contains("  FAIL          DUR-COMPLETE (1): "));
        // A rule the scenario expects to fail, which passed, says so under its line.
        let mut report = small_report();
        report
            .expectation
            .expected_failures
            .push(RuleId::SecSignature);
        let text = render(&report);
        assert!(text.contains(
            "  pass          SEC-SIGNATURE\n                the scenario expects this rule to \
             fail; it did not\n"
        ));
        assert!(text.contains("SEC-SIGNATURE did not fail, which the scenario expects"));
    }

    #[test]
    fn a_quiet_pass_names_the_rules_it_did_not_exercise() {
        let mut report = small_report();
        report.rules.retain(|r| r.outcome != Outcome::Failed);
        report.thresholds.retain(|t| t.passed);
        report.expectation.expected_failures.clear();
        report.expectation.actual_failures.clear();
        report.expectation.met = true;
        report.verdict = Verdict::Passed;
        let text = render(&report);
        assert!(
            text.starts_with("tiny — PASSED — no rule failed; 1 rule not exercised (NUM-ORDER)\n"),
            "{text}"
        );
    }

    #[test]
    fn absent_figures_are_said_in_words() {
        let text = render(&crate::testing::report_without_measurements());
        assert!(text.contains(
            "no match rate (no answered call); drift not measured (no call has a duration on \
             both sides);"
        ));
        assert!(
            text.contains(
                "  threshold min_match_rate missed: limit 0.9, measured no measurement\n"
            )
        );
        assert!(text.contains("  conservation broken: call-000000004 classified twice\n"));
        assert!(text.contains("    call-000000005: Teams says none, ground truth says matched\n"));
    }

    #[test]
    fn nothing_counted_prints_no_counts_line() {
        let mut report = small_report();
        report.rules[1].exercised.clear();
        let text = render(&report);
        assert!(text.contains(
            "  NOT EXERCISED NUM-ORDER\n                no event arrived after a newer one\n  \
             WARN"
        ));
    }

    #[test]
    fn a_certification_shows_each_case_its_counts_and_its_warnings() {
        let text = render(&certification_report());
        assert!(text.starts_with("https://carrier.example.net/oc — NOT CERTIFIED\n"));
        assert!(text.contains(
            "  NOT EXERCISED cdr-throttle\n                the carrier never read the CDR feed, \
             so it was never throttled\n                exercised: 0 429s answered (at least 1 \
             needed), 0 retries seen\n"
        ));
        // A case passed with a failed `should` rule passes, and warns.
        assert!(text.contains(
            "  pass          duration-idempotency\n                exercised: 2 answers lost, 2 \
             retries seen, 12 reported calls\n  WARN          duration-idempotency: \
             DUR-DUPLICATE: 12 reported calls reconciled; 1 reported again identically\n\
             \x20               call call-000000007 was reported more than once with the same \
             record\n"
        ));
        assert_eq!(text.matches("WARN").count(), 1, "{text}");
    }

    #[test]
    fn a_certified_run_with_a_should_rule_failed_still_warns() {
        let mut report = certification_report();
        let certification = report.certification.as_mut().unwrap();
        certification.verdict = CertificationVerdict::Certified;
        certification.cases.retain(|c| c.outcome == Outcome::Passed);
        report.verdict = Verdict::Passed;
        let text = render(&report);
        assert!(text.starts_with("https://carrier.example.net/oc — CERTIFIED\n"));
        assert!(text.contains("  WARN          duration-idempotency: DUR-DUPLICATE: "));
    }

    #[test]
    fn snapshot() {
        insta::assert_snapshot!("console.txt", render(&small_report()));
    }

    #[test]
    fn certification_snapshot() {
        insta::assert_snapshot!("console-certification.txt", render(&certification_report()));
    }

    #[test]
    fn a_report_that_could_not_be_written_is_not_pointed_at() {
        let mut out = Vec::new();
        write_console(&small_report(), None, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("  report: not written (the error follows)\n"),
            "{text}"
        );
        assert!(!text.contains("report.json"), "{text}");
    }
}
