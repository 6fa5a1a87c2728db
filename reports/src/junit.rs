//! `junit.xml`: one test case per rule and per threshold, and one per certification case, for
//! CI systems that read JUnit.

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::{
    CaseResult, Certification, CertificationVerdict, Evidence, Exercised, Outcome, Report,
    RuleStanding, RuleVerdict, ThresholdResult,
};

/// Writes `junit.xml`: one `<testsuite name="oc-harness: <scenario>">` inside `<testsuites>`,
/// with one `<testcase>` per rule (a `<failure>` when it failed, whatever its severity, with
/// the first evidence note as the message, unless the scenario expects it to fail: then it
/// passes, its `<system-out>` saying `failed, as the scenario expects`; a `<failure
/// type="expectation">` when the scenario expects it to fail and it did not; `<skipped/>` when
/// not exercised, its message naming the counts that fell short) and one per threshold. Every
/// time is wall-clock time, never simulated: each rule and threshold is judged over the whole
/// run, so each case's `time` is the run's wall time, as is the suite's, and the suite's
/// `timestamp` is when the run started. What a rule exercised is its `<system-out>`:
/// `exercised: 12 overtaken events, 0 nextLinks followed (at least 3 needed)`.
///
/// A certification report has a `<testsuite name="certification">` before it, with one
/// `<testcase>` per certification case: a `<failure>` when it failed, and when it was not
/// exercised too (a case not exercised is not certified, so never `<skipped/>`; the message
/// names the counts that fell short); what it exercised as its `<system-out>`; and a
/// `<system-err>` with a `WARN` line per failed `should` rule of the case, which does not fail
/// it. The `<testsuites>` counts are then the sums of both suites'.
pub fn write_junit<W: Write>(report: &Report, mut w: W) -> io::Result<()> {
    let name = format!("oc-harness: {}", report.scenario.name);
    let standing = |wanted: &[RuleStanding]| {
        report
            .rules
            .iter()
            .filter(|r| wanted.contains(&report.standing(r)))
            .count()
    };
    let failures = standing(&[
        RuleStanding::Failed,
        RuleStanding::Warned,
        RuleStanding::DidNotFail,
    ]) + report.thresholds.iter().filter(|t| !t.passed).count();
    let skipped = standing(&[RuleStanding::NotExercised]);
    let tests = report.rules.len() + report.thresholds.len();
    let time = seconds(report.timing.wall_ms);
    let (all_tests, all_failures) = match &report.certification {
        Some(c) => (tests + c.cases.len(), failures + not_passed(c)),
        None => (tests, failures),
    };

    let mut out = String::new();
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"{}\" tests=\"{all_tests}\" failures=\"{all_failures}\" \
         errors=\"0\" skipped=\"{skipped}\" time=\"{time}\">",
        escape(&name)
    );
    if let Some(certification) = &report.certification {
        certification_suite(&mut out, report, certification);
    }
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" \
         skipped=\"{skipped}\" time=\"{time}\"{}>",
        escape(&name),
        timestamp(report)
    );
    let properties = [
        ("harnessVersion", report.harness_version.clone()),
        ("schemaVersion", report.schema_version.to_string()),
        ("seed", report.scenario.seed.to_string()),
        ("carrier", report.scenario.carrier.clone()),
        ("verdict", verdict_word(report).to_owned()),
        ("replay", report.scenario.replay.clone()),
    ];
    write_properties(&mut out, &properties);
    let classname = format!("oc-harness.{}", report.scenario.name);
    for rule in &report.rules {
        rule_case(&mut out, &classname, &time, rule, report.standing(rule));
    }
    for threshold in &report.thresholds {
        threshold_case(&mut out, &classname, &time, threshold);
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    w.write_all(out.as_bytes())?;
    w.flush()
}

/// `<properties>` with one `<property>` per pair, in order.
fn write_properties(out: &mut String, properties: &[(&str, String)]) {
    out.push_str("    <properties>\n");
    for (key, value) in properties {
        let _ = writeln!(
            out,
            "      <property name=\"{key}\" value=\"{}\"/>",
            escape(value)
        );
    }
    out.push_str("    </properties>\n");
}

/// How many certification cases did not pass (failed or not exercised: not certified).
fn not_passed(certification: &Certification) -> usize {
    certification
        .cases
        .iter()
        .filter(|c| c.outcome != Outcome::Passed)
        .count()
}

/// `<testsuite name="certification">`: the certification's figures as properties, then one
/// `<testcase>` per case.
fn certification_suite(out: &mut String, report: &Report, c: &Certification) {
    let _ = writeln!(
        out,
        "  <testsuite name=\"certification\" tests=\"{}\" failures=\"{}\" errors=\"0\" \
         skipped=\"0\" time=\"{}\"{}>",
        c.cases.len(),
        not_passed(c),
        seconds(report.timing.wall_ms),
        timestamp(report)
    );
    let verdict = match c.verdict {
        CertificationVerdict::Certified => "certified",
        CertificationVerdict::NotCertified => "notCertified",
    };
    let mut properties = vec![
        ("verdict", verdict.to_owned()),
        ("carrierUrl", c.carrier_url.clone()),
        ("teamsUrl", c.teams_url.clone()),
        ("reportingDeadlineMs", c.reporting_deadline_ms.to_string()),
        ("toleranceMs", c.tolerance_ms.to_string()),
        ("timeLimitMs", c.time_limit_ms.to_string()),
        ("harnessVersion", report.harness_version.clone()),
        ("seed", report.scenario.seed.to_string()),
    ];
    if let Some(aborted) = &c.aborted {
        properties.push(("aborted", aborted.clone()));
    }
    write_properties(out, &properties);
    for case in &c.cases {
        certification_case(out, report, case);
    }
    out.push_str("  </testsuite>\n");
}

/// A certification case: a `<failure>` with its first evidence note (or its summary) when it
/// failed, or `not exercised: <the counts that fell short, or the summary>` when it was not
/// exercised; then its counts as `<system-out>` and its warnings as `<system-err>`; empty when
/// it passed with neither.
fn certification_case(out: &mut String, report: &Report, case: &CaseResult) {
    let _ = write!(
        out,
        "    <testcase name=\"{}\" classname=\"certification\" time=\"{}\"",
        escape(&case.id),
        seconds(report.timing.wall_ms)
    );
    let mut inner = String::new();
    let failure = match case.outcome {
        Outcome::Passed => None,
        Outcome::Failed => Some((
            case.evidence
                .first()
                .map_or(case.summary.clone(), |e| e.note.clone()),
            "failed",
        )),
        Outcome::NotExercised => Some((
            not_exercised(&case.summary, &case.exercised),
            "notExercised",
        )),
    };
    if let Some((message, kind)) = failure {
        let rules: Vec<&str> = case.rules.iter().map(|r| r.as_str()).collect();
        let mut body = format!(
            "{}\nrules: {}\n{}\n",
            case.title,
            rules.join(", "),
            case.summary
        );
        evidence_lines(&mut body, &case.evidence);
        let _ = writeln!(
            inner,
            "      <failure message=\"{}\" type=\"{kind}\">{}</failure>",
            escape(&message),
            escape(&body)
        );
    }
    system_out(&mut inner, &case.exercised);
    let warnings = report.warnings(case);
    if !warnings.is_empty() {
        let mut text = String::new();
        for warning in warnings {
            let _ = writeln!(
                text,
                "WARN {} (should, {} failure{}): {}",
                warning.rule,
                warning.failures,
                if warning.failures == 1 { "" } else { "s" },
                warning.summary
            );
            evidence_lines(&mut text, &warning.evidence);
        }
        let _ = writeln!(inner, "      <system-err>{}</system-err>", escape(&text));
    }
    close_case(out, &inner);
}

/// Ends a `<testcase` opened without its `>`: empty when `inner` is, else with `inner` inside.
fn close_case(out: &mut String, inner: &str) {
    if inner.is_empty() {
        out.push_str("/>\n");
    } else {
        let _ = write!(out, ">\n{inner}    </testcase>\n");
    }
}

/// `<system-out>exercised: …</system-out>`, when anything was counted.
fn system_out(out: &mut String, exercised: &[Exercised]) {
    if !exercised.is_empty() {
        let _ = writeln!(
            out,
            "      <system-out>{}</system-out>",
            escape(&format!(
                "exercised: {}\n",
                crate::exercised_list(exercised)
            ))
        );
    }
}

/// `not exercised: 0 nextLinks followed (at least 3 needed); <summary>`: the counts that fell
/// short first, then the summary.
fn not_exercised(summary: &str, exercised: &[Exercised]) -> String {
    let short = crate::shortfalls(exercised);
    if short.is_empty() {
        format!("not exercised: {summary}")
    } else {
        let short: Vec<String> = short.iter().map(ToString::to_string).collect();
        format!("not exercised: {}; {summary}", short.join(", "))
    }
}

/// One `- note (exchanges …)` line per evidence item.
fn evidence_lines(body: &mut String, evidence: &[Evidence]) {
    for evidence in evidence {
        let _ = write!(body, "- {}", evidence.note);
        if !evidence.exchanges.is_empty() {
            let seqs: Vec<String> = evidence.exchanges.iter().map(u64::to_string).collect();
            let _ = write!(body, " (exchanges {})", seqs.join(", "));
        }
        body.push('\n');
    }
}

/// A rule: a `<failure>` when it failed and the scenario does not expect it to, or when the
/// scenario expects it to fail and it did not; `<skipped>` when not exercised (the message
/// naming the counts that fell short); and its counts as `<system-out>`.
///
/// A failure the scenario expects (a misbehaving carrier caught by its rule) is what the run is
/// for, so it is a passing test case: JUnit has no "expected failure" status, `<skipped>` would
/// read as "not judged", and a `<failure>` would paint CI's test view red for a run that
/// passed. Its `<system-out>` starts `failed, as the scenario expects:` with the summary and
/// the evidence, so that a reader of the case still sees what was caught.
fn rule_case(
    out: &mut String,
    classname: &str,
    time: &str,
    rule: &RuleVerdict,
    standing: RuleStanding,
) {
    let _ = write!(
        out,
        "    <testcase name=\"{}\" classname=\"{}.rules\" time=\"{time}\"",
        rule.rule,
        escape(classname)
    );
    let mut inner = String::new();
    let mut system_out_text = String::new();
    match standing {
        RuleStanding::Passed => {}
        RuleStanding::NotExercised => {
            let _ = writeln!(
                inner,
                "      <skipped message=\"{}\"/>",
                escape(&not_exercised(&rule.summary, &rule.exercised))
            );
        }
        RuleStanding::FailedAsExpected => {
            let _ = writeln!(
                system_out_text,
                "failed, as the scenario expects: {} (failures: {})",
                rule.summary, rule.failures
            );
            evidence_lines(&mut system_out_text, &rule.evidence);
        }
        RuleStanding::DidNotFail => {
            let outcome = match rule.outcome {
                Outcome::NotExercised => "it was not exercised",
                _ => "it passed",
            };
            let _ = writeln!(
                inner,
                "      <failure message=\"{}\" type=\"expectation\">{}</failure>",
                escape(&format!(
                    "the scenario expects {} to fail; {outcome}",
                    rule.rule
                )),
                escape(&format!("{}\n", rule.summary))
            );
        }
        RuleStanding::Failed | RuleStanding::Warned => {
            let message = rule
                .evidence
                .first()
                .map_or(rule.summary.as_str(), |e| e.note.as_str());
            let mut body = format!("{} (failures: {})\n", rule.summary, rule.failures);
            evidence_lines(&mut body, &rule.evidence);
            let _ = writeln!(
                inner,
                "      <failure message=\"{}\" type=\"{}\">{}</failure>",
                escape(message),
                rule.severity,
                escape(&body)
            );
        }
    }
    if !rule.exercised.is_empty() {
        let _ = writeln!(
            system_out_text,
            "exercised: {}",
            crate::exercised_list(&rule.exercised)
        );
    }
    if !system_out_text.is_empty() {
        let _ = writeln!(
            inner,
            "      <system-out>{}</system-out>",
            escape(&system_out_text)
        );
    }
    close_case(out, &inner);
}

fn threshold_case(out: &mut String, classname: &str, time: &str, threshold: &ThresholdResult) {
    let _ = write!(
        out,
        "    <testcase name=\"{}\" classname=\"{}.thresholds\" time=\"{time}\"",
        escape(&threshold.name),
        escape(classname)
    );
    if threshold.passed {
        out.push_str("/>\n");
        return;
    }
    let measured = crate::measured(threshold.measured);
    let message = format!(
        "{}: limit {}, measured {measured}",
        threshold.name, threshold.limit
    );
    let _ = writeln!(
        out,
        ">\n      <failure message=\"{}\" type=\"threshold\"/>\n    </testcase>",
        escape(&message)
    );
}

fn verdict_word(report: &Report) -> &'static str {
    match report.verdict {
        crate::Verdict::Passed => "passed",
        crate::Verdict::Failed => "failed",
        crate::Verdict::HarnessError => "harnessError",
    }
}

/// ` timestamp="…"`: when the run started, wall-clock; nothing when the report does not say
/// (the simulated start is no time a CI could show).
fn timestamp(report: &Report) -> String {
    if report.timing.started_at.is_empty() {
        String::new()
    } else {
        format!(" timestamp=\"{}\"", escape(&report.timing.started_at))
    }
}

fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// `text` fit for an attribute value or character data: markup characters as entities, line
/// breaks and tabs as character references (kept inside attributes), and the characters XML
/// 1.0 cannot hold at all replaced by U+FFFD.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if is_xml_char(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
    out
}

fn is_xml_char(c: char) -> bool {
    matches!(c, '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use quick_xml::Reader;
    use quick_xml::events::{BytesStart, Event};

    use super::*;
    use crate::testing::{certification_report, small_report};

    /// One element as a CI system sees it: its name, attributes (unescaped) and text.
    #[derive(Debug, Default)]
    struct Element {
        name: String,
        attributes: BTreeMap<String, String>,
        text: String,
        children: Vec<Element>,
    }

    impl Element {
        fn attr(&self, key: &str) -> &str {
            self.attributes
                .get(key)
                .unwrap_or_else(|| panic!("<{}> has no {key}", self.name))
        }

        fn children_named(&self, name: &str) -> Vec<&Element> {
            self.children.iter().filter(|c| c.name == name).collect()
        }
    }

    fn start(e: &BytesStart<'_>) -> Element {
        Element {
            name: String::from_utf8(e.name().as_ref().to_vec()).unwrap(),
            attributes: e
                .attributes()
                .map(|a| {
                    let a = a.unwrap();
                    let key = String::from_utf8(a.key.as_ref().to_vec()).unwrap();
                    (key, a.unescape_value().unwrap().into_owned())
                })
                .collect(),
            ..Element::default()
        }
    }

    /// Parses `xml` with quick-xml, failing on anything malformed.
    fn parse(xml: &str) -> Element {
        let mut reader = Reader::from_str(xml);
        reader.config_mut().check_end_names = true;
        let mut stack = vec![Element::default()];
        loop {
            match reader.read_event().unwrap() {
                Event::Start(e) => stack.push(start(&e)),
                Event::Empty(e) => {
                    let element = start(&e);
                    stack.last_mut().unwrap().children.push(element);
                }
                Event::End(_) => {
                    let element = stack.pop().unwrap();
                    stack.last_mut().unwrap().children.push(element);
                }
                Event::Text(t) => {
                    let text = t.decode().unwrap();
                    stack.last_mut().unwrap().text.push_str(&text);
                }
                Event::GeneralRef(r) => {
                    let name = r.decode().unwrap();
                    let text = if let Some(c) = r.resolve_char_ref().unwrap() {
                        c.to_string()
                    } else {
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .unwrap()
                            .to_owned()
                    };
                    stack.last_mut().unwrap().text.push_str(&text);
                }
                Event::Eof => break,
                Event::Decl(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(stack.len(), 1, "unclosed elements");
        let mut root = stack.pop().unwrap();
        assert_eq!(root.children.len(), 1, "one root element");
        root.children.pop().unwrap()
    }

    fn render(report: &Report) -> String {
        let mut out = Vec::new();
        write_junit(report, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn ci_systems_read_one_suite_with_a_case_per_rule_and_threshold() {
        // No failure expected: every failed rule is a `<failure>`.
        let mut report = small_report();
        report.expectation.expected_failures.clear();
        let root = parse(&render(&report));
        assert_eq!(root.name, "testsuites");
        let suites = root.children_named("testsuite");
        assert_eq!(suites.len(), 1);
        let suite = suites[0];
        assert_eq!(suite.attr("name"), "oc-harness: tiny");
        // 5 rules + 2 thresholds; 3 failed rules + 1 missed threshold; 1 not exercised.
        for element in [&root, suite] {
            assert_eq!(element.attr("tests"), "7");
            assert_eq!(element.attr("failures"), "4");
            assert_eq!(element.attr("skipped"), "1");
            assert_eq!(element.attr("errors"), "0");
            assert_eq!(element.attr("time"), "1.250");
        }
        let cases = suite.children_named("testcase");
        assert_eq!(cases.len(), 7);
        let names: Vec<&str> = cases.iter().map(|c| c.attr("name")).collect();
        assert_eq!(
            names,
            [
                "SEC-SIGNATURE",
                "NUM-ORDER",
                "DUR-DUPLICATE",
                "DUR-DEADLINE",
                "DUR-COMPLETE",
                "min_match_rate",
                "max_drift_p99_ms"
            ]
        );
        assert_eq!(suite.attr("timestamp"), "2026-12-01T09:30:00.000Z");
        for case in &cases {
            // Wall-clock time, the run's: every rule is judged over all of it.
            assert_eq!(case.attr("time"), "1.250");
            assert!(case.attr("classname").starts_with("oc-harness.tiny."));
        }
        // A passed rule says what it exercised, and nothing else.
        let names: Vec<&str> = cases[0].children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["system-out"]);
        assert_eq!(
            cases[0].children[0].text,
            "exercised: 3 forged signatures sent\n"
        );
        // A rule not exercised names the count that fell short.
        let skipped = cases[1].children_named("skipped")[0];
        assert_eq!(
            skipped.attr("message"),
            "not exercised: 0 stale deliveries made (at least 1 needed); no event arrived after \
             a newer one"
        );
        assert_eq!(
            cases[1].children_named("system-out")[0].text,
            "exercised: 0 stale deliveries made (at least 1 needed), 5 redeliveries made\n"
        );
        let failure = cases[3].children_named("failure")[0];
        // The first evidence note, with its markup characters back as they were.
        assert_eq!(
            failure.attr("message"),
            "call call-000000003 was reported <late> & \"after\" the 'deadline' | 3 h"
        );
        assert_eq!(failure.attr("type"), "must");
        assert!(
            failure.text.contains("(exchanges 42, 17)"),
            "{}",
            failure.text
        );
        let complete = cases[4].children_named("failure")[0];
        assert_eq!(
            complete.attr("message"),
            "call call-000000011 was never reported"
        );
        let threshold = cases[5].children_named("failure")[0];
        assert_eq!(
            threshold.attr("message"),
            "min_match_rate: limit 0.9, measured 0.75"
        );
        assert!(cases[6].children.is_empty());
        // Nothing was counted: the case is empty.
        let mut report = small_report();
        report.expectation.expected_failures.clear();
        report.rules[0].exercised.clear();
        assert!(render(&report).contains(
            "<testcase name=\"SEC-SIGNATURE\" classname=\"oc-harness.tiny.rules\" time=\"1.250\"/>"
        ));
        let properties = &suite.children_named("properties")[0].children;
        assert!(
            properties
                .iter()
                .any(|p| p.attr("name") == "seed" && p.attr("value") == "7")
        );
    }

    #[test]
    fn line_breaks_and_control_characters_survive_as_well_formed_xml() {
        let mut report = small_report();
        report.expectation.expected_failures.clear();
        report.scenario.name = "a\"b<c>&d".into();
        report.rules[3].evidence[0].note = "two\nlines\tand a \u{1} bell\u{7}".into();
        let root = parse(&render(&report));
        let suite = root.children_named("testsuite")[0];
        assert_eq!(suite.attr("name"), "oc-harness: a\"b<c>&d");
        let failure = suite.children_named("testcase")[3].children_named("failure")[0];
        assert_eq!(
            failure.attr("message"),
            "two\nlines\tand a \u{FFFD} bell\u{FFFD}"
        );
    }

    #[test]
    fn a_failed_rule_without_evidence_has_its_summary_as_the_message() {
        let mut report = small_report();
        report.rules[4].evidence.clear();
        let root = parse(&render(&report));
        let suite = root.children_named("testsuite")[0];
        let failure = suite.children_named("testcase")[4].children_named("failure")[0];
        assert_eq!(
            failure.attr("message"),
            "11 answered calls reconciled; 1 never reported"
        );
    }

    #[test]
    fn a_passed_run_has_no_failures() {
        let mut report = small_report();
        report.rules.retain(|r| r.outcome == Outcome::Passed);
        report.thresholds.retain(|t| t.passed);
        let root = parse(&render(&report));
        let suite = root.children_named("testsuite")[0];
        assert_eq!(suite.attr("tests"), "2");
        assert_eq!(suite.attr("failures"), "0");
        assert_eq!(suite.attr("skipped"), "0");
    }

    #[test]
    fn every_fixture_report_reads_back_with_its_counts() {
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let list = std::fs::read_to_string(fixtures.join("reports.txt")).unwrap();
        for file in list
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let text = std::fs::read_to_string(fixtures.join(file)).unwrap();
            let report: Report = serde_json::from_str(&text).unwrap();
            let root = parse(&render(&report));
            let suite = root.children_named("testsuite")[0];
            let count = |wanted: &[RuleStanding]| {
                report
                    .rules
                    .iter()
                    .filter(|r| wanted.contains(&report.standing(r)))
                    .count()
            };
            let missed = report.thresholds.iter().filter(|t| !t.passed).count();
            let failed = count(&[
                RuleStanding::Failed,
                RuleStanding::Warned,
                RuleStanding::DidNotFail,
            ]) + missed;
            assert_eq!(
                suite.attr("tests"),
                (report.rules.len() + report.thresholds.len()).to_string()
            );
            assert_eq!(suite.attr("failures"), failed.to_string());
            assert_eq!(
                suite.attr("skipped"),
                count(&[RuleStanding::NotExercised]).to_string()
            );
            let failing = suite
                .children_named("testcase")
                .iter()
                .filter(|c| !c.children_named("failure").is_empty())
                .count();
            assert_eq!(failing, failed, "{file}");
        }
    }

    #[test]
    fn an_expected_failure_passes_and_says_so_and_a_missing_one_fails() {
        let report = crate::testing::passed_with_expected_failures();
        let root = parse(&render(&report));
        let suite = root.children_named("testsuite")[0];
        // Only DUR-DUPLICATE's warning is a failure; NUM-ORDER is skipped.
        assert_eq!(suite.attr("failures"), "1");
        assert_eq!(suite.attr("skipped"), "1");
        let cases = suite.children_named("testcase");
        let deadline = cases[3];
        assert_eq!(deadline.attr("name"), "DUR-DEADLINE");
        assert!(deadline.children_named("failure").is_empty());
        assert!(deadline.children_named("skipped").is_empty());
        assert_eq!(
            deadline.children_named("system-out")[0].text,
            "failed, as the scenario expects: 12 reported calls reconciled; 2 first reported \
             after the deadline (failures: 2)\n- call call-000000003 was reported <late> & \
             \"after\" the 'deadline' | 3 h (exchanges 17)\n- call call-000000009 was first \
             reported after the deadline (exchanges 42, 17)\nexercised: 12 reported calls\n"
        );

        let mut report = small_report();
        report
            .expectation
            .expected_failures
            .push(oc_protocol::RuleId::SecSignature);
        let root = parse(&render(&report));
        let signature = root.children_named("testsuite")[0].children_named("testcase")[0];
        let failure = signature.children_named("failure")[0];
        assert_eq!(failure.attr("type"), "expectation");
        assert_eq!(
            failure.attr("message"),
            "the scenario expects SEC-SIGNATURE to fail; it passed"
        );
    }

    #[test]
    fn snapshot() {
        insta::assert_snapshot!("junit.xml", render(&small_report()));
    }

    #[test]
    fn a_certification_is_a_suite_of_its_own_where_not_exercised_fails() {
        let report = certification_report();
        let xml = render(&report);
        let root = parse(&xml);
        // 7 rule and threshold cases + 5 certification cases; 3 + 2 failures (DUR-DEADLINE
        // failed, as the scenario expects).
        assert_eq!(root.attr("tests"), "12");
        assert_eq!(root.attr("failures"), "5");
        assert_eq!(root.attr("skipped"), "1");
        let suites = root.children_named("testsuite");
        assert_eq!(suites.len(), 2);
        let suite = suites[0];
        assert_eq!(suite.attr("name"), "certification");
        assert_eq!(suite.attr("tests"), "5");
        assert_eq!(suite.attr("failures"), "2");
        assert_eq!(suite.attr("skipped"), "0");
        let properties = &suite.children_named("properties")[0].children;
        let property = |name: &str| {
            properties
                .iter()
                .find(|p| p.attr("name") == name)
                .map(|p| p.attr("value"))
        };
        assert_eq!(property("verdict"), Some("notCertified"));
        assert_eq!(property("reportingDeadlineMs"), Some("5000"));
        assert_eq!(
            property("carrierUrl"),
            Some("https://carrier.example.net/oc")
        );
        assert_eq!(property("aborted"), None);
        let cases = suite.children_named("testcase");
        let names: Vec<&str> = cases.iter().map(|c| c.attr("name")).collect();
        assert_eq!(
            names,
            [
                "provisioning-convergence",
                "webhook-signatures",
                "duration-deadline",
                "cdr-throttle",
                "duration-idempotency"
            ]
        );
        assert!(cases.iter().all(|c| c.attr("classname") == "certification"));
        // Every case says what it exercised.
        let system_out = |case: &Element| case.children_named("system-out")[0].text.clone();
        assert_eq!(
            system_out(cases[0]),
            "exercised: 4 events acknowledged, 4 numbers probed\n"
        );
        for passed in &cases[..2] {
            let names: Vec<&str> = passed.children.iter().map(|c| c.name.as_str()).collect();
            assert_eq!(names, ["system-out"]);
        }
        let failed = cases[2].children_named("failure")[0];
        assert_eq!(
            failed.attr("message"),
            "call call-000000003 was reported <late> & \"after\" the 'deadline' | 3 h"
        );
        assert_eq!(failed.attr("type"), "failed");
        assert!(failed.text.contains("(exchanges 17)"), "{}", failed.text);
        assert!(failed.text.contains("rules: DUR-DEADLINE, DUR-COMPLETE"));
        assert!(cases[3].children_named("skipped").is_empty());
        let not_exercised = cases[3].children_named("failure")[0];
        assert_eq!(
            not_exercised.attr("message"),
            "not exercised: 0 429s answered (at least 1 needed); the carrier never read the CDR \
             feed, so it was never throttled"
        );
        assert_eq!(not_exercised.attr("type"), "notExercised");
        assert_eq!(
            system_out(cases[3]),
            "exercised: 0 429s answered (at least 1 needed), 0 retries seen\n"
        );
        // A case passed with a failed `should` rule is no failure, but carries the warning.
        let warned = cases[4];
        assert!(warned.children_named("failure").is_empty());
        assert!(warned.children_named("skipped").is_empty());
        assert_eq!(
            warned.children_named("system-err")[0].text,
            "WARN DUR-DUPLICATE (should, 1 failure): 12 reported calls reconciled; 1 reported \
             again identically\n- call call-000000007 was reported more than once with the same \
             record (exchanges 42)\n"
        );
        assert_eq!(
            system_out(warned),
            "exercised: 2 answers lost, 2 retries seen, 12 reported calls\n"
        );
        assert_eq!(xml.matches("<system-err>").count(), 1);

        // The run's suite follows, as it is without a certification.
        let mut run = report.clone();
        run.certification = None;
        let alone = render(&run);
        let suite_of = |xml: &str| {
            let start = xml.find("  <testsuite name=\"oc-harness: ").unwrap();
            xml[start..].to_owned()
        };
        assert_eq!(suite_of(&xml), suite_of(&alone));
    }

    #[test]
    fn a_case_not_exercised_names_every_count_that_fell_short() {
        let mut report = certification_report();
        let case = &mut report.certification.as_mut().unwrap().cases[3];
        case.exercised
            .push(Exercised::new("nextLinks followed", 1, 3));
        case.summary = "CDR-THROTTLE: nothing throttled".into();
        let root = parse(&render(&report));
        let case = root.children_named("testsuite")[0].children_named("testcase")[3];
        assert_eq!(
            case.children_named("failure")[0].attr("message"),
            "not exercised: 0 429s answered (at least 1 needed), 1 nextLinks followed (at least \
             3 needed); CDR-THROTTLE: nothing throttled"
        );
        // Nothing counted: the summary alone says why.
        report.certification.as_mut().unwrap().cases[3]
            .exercised
            .clear();
        let root = parse(&render(&report));
        let case = root.children_named("testsuite")[0].children_named("testcase")[3];
        assert_eq!(
            case.children_named("failure")[0].attr("message"),
            "not exercised: CDR-THROTTLE: nothing throttled"
        );
        assert!(case.children_named("system-out").is_empty());
    }

    #[test]
    fn an_aborted_certification_without_evidence_says_why() {
        let mut report = certification_report();
        let certification = report.certification.as_mut().unwrap();
        certification.verdict = CertificationVerdict::NotCertified;
        certification.aborted = Some("the carrier never answered".into());
        certification.cases[2].evidence.clear();
        let root = parse(&render(&report));
        let suite = root.children_named("testsuite")[0];
        let properties = &suite.children_named("properties")[0].children;
        assert!(properties.iter().any(
            |p| p.attr("name") == "aborted" && p.attr("value") == "the carrier never answered"
        ));
        let failure = suite.children_named("testcase")[2].children_named("failure")[0];
        assert_eq!(
            failure.attr("message"),
            "12 answered calls; 1 reported after the deadline, 1 never reported"
        );
    }

    #[test]
    fn certification_snapshot() {
        insta::assert_snapshot!("junit-certification.xml", render(&certification_report()));
    }
}
