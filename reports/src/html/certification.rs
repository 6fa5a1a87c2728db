//! The certification section of `report.html`: the verdict banner a carrier hands over, the
//! carrier and the deadline it was held to, the cases with what each exercised, the evidence of
//! those not passed and the warnings of those passed.

use std::fmt::Write as _;

use super::{escape, exercised_cell, exercised_paragraph, seconds};
use crate::{CaseResult, Certification, CertificationVerdict, Outcome, Report, RuleVerdict};

/// The styles of the section, added to the page's only when it has one (so that a page
/// without a certification is unchanged).
pub(super) const STYLE: &str = ".banner { border: 2px solid; border-radius: 6px; padding: 0.2em 1em; margin: 1em 0; }
.banner.passed { border-color: #1a7f37; background: #dafbe1; }
.banner.failed { border-color: #cf222e; background: #ffebe9; }
.banner h1 { margin: 0.3em 0; } .aborted { color: #cf222e; font-weight: bold; }
table.cases tr.passed td:nth-child(2) { color: #1a7f37; }
table.cases tr.not-exercised td { color: inherit; background: #fff8c5; }
table.cases .title { color: #6e7781; }
section.case { border-left: 4px solid #cf222e; padding-left: 0.8em; margin: 0.8em 0; }
section.case.not-exercised, section.case.warned { border-left-color: #bf8700; } section.case.passed { border-left-color: #1a7f37; }
.warning { color: #9a6700; }
section.case h3 { margin: 0.2em 0; }
hr { margin: 2em 0; border: 0; border-top: 1px solid #d0d7de; }
@media (max-width: 640px) {
  table.cases td:nth-child(2)::before { content: \"outcome: \"; }
  table.cases td:nth-child(3)::before { content: \"exercised: \"; }
  table.cases td:nth-child(4)::before { content: \"rules: \"; }
  table.cases td:nth-child(5)::before { content: \"summary: \"; }
}
";

/// `Certification: CERTIFIED` or `Certification: NOT CERTIFIED`.
pub(super) fn headline(c: &Certification) -> &'static str {
    match c.verdict {
        CertificationVerdict::Certified => "Certification: CERTIFIED",
        CertificationVerdict::NotCertified => "Certification: NOT CERTIFIED",
    }
}

/// The section, then a rule before the run's own page.
pub(super) fn section(out: &mut String, report: &Report, c: &Certification) {
    let count = |o: Outcome| c.cases.iter().filter(|k| k.outcome == o).count();
    let (class, verdict) = match c.verdict {
        CertificationVerdict::Certified => (
            "passed",
            format!(
                "The carrier's integration is <b>certified</b>: {} passed.",
                if c.cases.len() == 1 {
                    "its 1 case".to_owned()
                } else {
                    format!("all {} cases", c.cases.len())
                }
            ),
        ),
        CertificationVerdict::NotCertified => (
            "failed",
            format!(
                "The carrier's integration is <b>not certified</b>: of {} case{}, {} failed and \
                 {} could not be exercised (a case not exercised is not certified).",
                c.cases.len(),
                if c.cases.len() == 1 { "" } else { "s" },
                count(Outcome::Failed),
                count(Outcome::NotExercised)
            ),
        ),
    };
    let _ = writeln!(
        out,
        "<section class=\"certification\">\n<div class=\"banner {class}\">\n\
         <h1 class=\"{class}\">{}</h1>\n<p>{verdict}</p>\n</div>\n\
         <p>Carrier <code>{}</code>, certified by oc-harness <b>{}</b> with seed <b>{}</b> \
         (report schema {}); the harness served the Teams API at <code>{}</code>.</p>\n\
         <p>Durations had to be reported within <b>{} s</b> of each call's end (reporting \
         deadline {} ms); a reported duration matches Teams' within a tolerance of {} ms. The \
         certification was bounded to {} s of wall-clock time.</p>",
        headline(c),
        escape(&c.carrier_url),
        escape(&report.harness_version),
        report.scenario.seed,
        report.schema_version,
        escape(&c.teams_url),
        seconds(c.reporting_deadline_ms),
        c.reporting_deadline_ms,
        c.tolerance_ms,
        seconds(i64::try_from(c.time_limit_ms).unwrap_or(i64::MAX)),
    );
    if let Some(aborted) = &c.aborted {
        let _ = writeln!(
            out,
            "<p class=\"aborted\">The certification stopped short: {}</p>",
            escape(aborted)
        );
    }
    out.push_str("<h2>Certification cases</h2>\n");
    if c.cases.is_empty() {
        out.push_str("<p>The certification ran no case.</p>\n");
    } else {
        out.push_str(
            "<div class=\"scroll\"><table class=\"stack cases\">\n<tr><th>case</th><th>outcome</th>\
             <th>exercised</th><th>rules</th><th>summary</th></tr>\n",
        );
        for case in &c.cases {
            let (class, outcome) = outcome(case.outcome);
            let warned = if report.warnings(case).is_empty() {
                ""
            } else {
                "<br><span class=\"warning\">with a warning</span>"
            };
            let _ = writeln!(
                out,
                "<tr class=\"{class}\"><td>{}<br><span class=\"title\">{}</span></td>\
                 <td>{outcome}{warned}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&case.id),
                escape(&case.title),
                exercised_cell(&case.exercised),
                crate::rule_list(&case.rules),
                escape(&case.summary)
            );
        }
        out.push_str("</table></div>\n");
    }
    for case in c
        .cases
        .iter()
        .filter(|k| k.outcome != Outcome::Passed || !k.evidence.is_empty())
    {
        case_evidence(out, case, &report.warnings(case));
    }
    out.push_str("</section>\n<hr>\n");
}

/// A case not passed (or passed with evidence, as a failed `should` rule leaves): its title,
/// summary, what it exercised, a warning per failed `should` rule, its evidence notes, and
/// where the exchanges they cite are.
fn case_evidence(out: &mut String, case: &CaseResult, warnings: &[&RuleVerdict]) {
    let (class, outcome) = match outcome(case.outcome) {
        ("passed", _) if !warnings.is_empty() => ("warned", "passed with a warning"),
        other => other,
    };
    let _ = write!(
        out,
        "<section class=\"case {class}\">\n<h3>{} {} ({})</h3>\n<p><i>{}</i></p>\n<p>{}</p>\n{}",
        outcome.to_uppercase(),
        escape(&case.id),
        crate::rule_list(&case.rules),
        escape(&case.title),
        escape(&case.summary),
        exercised_paragraph(&case.exercised)
    );
    for warning in warnings {
        let _ = writeln!(
            out,
            "<p class=\"warning\">Warning: {} (<code>should</code>) failed: {}</p>",
            warning.rule,
            escape(&warning.summary)
        );
    }
    if case.evidence.is_empty() {
        out.push_str("<p class=\"nodata\">No evidence: no exchange is cited.</p>\n</section>\n");
        return;
    }
    out.push_str("<ul>\n");
    for e in &case.evidence {
        super::evidence_item(out, e);
    }
    out.push_str("</ul>\n");
    let seqs: std::collections::BTreeSet<u64> = case
        .evidence
        .iter()
        .flat_map(|e| e.exchanges.iter().copied())
        .collect();
    if !seqs.is_empty() {
        let seqs: Vec<String> = seqs.iter().map(u64::to_string).collect();
        let _ = writeln!(
            out,
            "<p class=\"seq\">The exchanges cited ({}) are in <code>evidence.ndjson</code>, one \
             JSON line each, by <code>seq</code>.</p>",
            seqs.join(", ")
        );
    }
    out.push_str("</section>\n");
}

/// A case's row class (the page's `passed`, `failed`, `not-exercised`) and outcome in words.
fn outcome(outcome: Outcome) -> (&'static str, &'static str) {
    match outcome {
        Outcome::Passed => ("passed", "passed"),
        Outcome::Failed => ("failed", "failed"),
        Outcome::NotExercised => ("not-exercised", "not exercised"),
    }
}
