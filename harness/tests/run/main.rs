//! Every bundled scenario, run in-process with its expected outcome asserted; determinism;
//! the rounding scenario's minutes checked against an independent computation; and Teams'
//! injected misclassifications caught by QUA-CLASS; a run's export against its ground truth.

mod export;

use std::path::{Path, PathBuf};

use oc_harness::run::{RunOptions, RunOutcome, run};
use oc_harness::scenario::{self, Scenario};
use oc_observe::ExchangeDetail;
use oc_protocol::{ReconClass, RuleId};
use oc_reports::Verdict;

fn scenario_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(format!("{name}.toml"))
}

fn load(name: &str) -> Scenario {
    scenario::load(&scenario_path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn out_dir(name: &str, tag: &str) -> PathBuf {
    std::env::temp_dir()
        .join(format!("oc-harness-tests-{}", std::process::id()))
        .join(format!("{name}-{tag}"))
}

fn run_scenario(scenario: &Scenario, tag: &str, length_ms: Option<i64>) -> RunOutcome {
    // Kept so that the verdicts can be checked against the facts and the pure replay.
    run_keeping(scenario, tag, length_ms, true)
}

/// Runs `scenario`; without `keep_history`, calls close as they become final.
fn run_keeping(
    scenario: &Scenario,
    tag: &str,
    length_ms: Option<i64>,
    keep_history: bool,
) -> RunOutcome {
    let options = RunOptions {
        scenario_file: scenario_path(&scenario.name),
        seed: None,
        out: out_dir(&scenario.name, tag),
        progress: false,
        length_ms,
        keep_history,
        export: None,
        shard: None,
    };
    let system = actix_rt::System::new();
    system
        .block_on(run(scenario, &options))
        .unwrap_or_else(|e| panic!("{}: could not run: {e}", scenario.name))
}

/// Asserts the run showed what its scenario expects, with a replay command on failure.
fn assert_expected(outcome: &RunOutcome) {
    let r = &outcome.report;
    let failed: Vec<String> = r
        .rules
        .iter()
        .filter(|v| v.outcome == oc_reports::Outcome::Failed)
        .map(|v| format!("{} ({}): {}", v.rule, v.failures, v.summary))
        .collect();
    assert_eq!(
        r.verdict,
        Verdict::Passed,
        "{}: expected failures {:?}, got {:?}\nfailed rules: {failed:#?}\naccuracy: {:?}\nconservation: {:?}\nreplay: {}",
        r.scenario.name,
        r.expectation.expected_failures,
        r.expectation.actual_failures,
        r.accuracy.as_ref().map(|a| &a.disagreements),
        r.conservation,
        r.scenario.replay
    );
    let dir = outcome.report_path.parent().unwrap();
    for file in ["report.json", "junit.xml", "summary.md", "evidence.ndjson"] {
        assert!(dir.join(file).exists(), "{}: no {file}", r.scenario.name);
    }
    assert_valid_report(&outcome.report_path);
    assert_junit_reads_back(r, &dir.join("junit.xml"));
    assert_live_is_the_replay(outcome);
}

/// The verdicts the checker folded live, as the run went, are exactly those of the same facts
/// kept and replayed through the pure checker: the streaming form and its fixtures' form judge
/// alike, evidence included (found live in the spilled exchanges).
fn assert_live_is_the_replay(outcome: &RunOutcome) {
    let history = outcome.history.as_ref().expect("the run kept its history");
    let replayed = oc_harness::checker::evaluate(history);
    let r = &outcome.report;
    assert_eq!(replayed.rules, r.rules, "{}", r.scenario.name);
    assert_eq!(replayed.accuracy, r.accuracy, "{}", r.scenario.name);
    assert_eq!(replayed.conservation, r.conservation, "{}", r.scenario.name);
    let dir = outcome.report_path.parent().unwrap();
    assert!(dir.join("exchanges.ndjson.gz").exists());
}

/// A JUnit reader (the junit-parser crate, as CI test views read it) finds one suite with a
/// case per rule and per threshold, and a failure for every failed rule and threshold, except
/// the rules that failed as the scenario expects, which pass.
fn assert_junit_reads_back(report: &oc_reports::Report, path: &Path) {
    use oc_reports::RuleStanding;
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let junit = junit_parser::from_reader(file).expect("junit.xml is JUnit XML");
    assert_eq!(junit.suites.len(), 1);
    let suite = &junit.suites[0];
    assert_eq!(
        suite.cases.len(),
        report.rules.len() + report.thresholds.len()
    );
    let failed = report
        .rules
        .iter()
        .filter(|r| {
            matches!(
                report.standing(r),
                RuleStanding::Failed | RuleStanding::Warned | RuleStanding::DidNotFail
            )
        })
        .count()
        + report.thresholds.iter().filter(|t| !t.passed).count();
    let failures = suite.cases.iter().filter(|c| c.status.is_failure()).count();
    assert_eq!(failures, failed, "{}", path.display());
    let skipped = report
        .rules
        .iter()
        .filter(|r| report.standing(r) == RuleStanding::NotExercised)
        .count();
    assert_eq!(
        suite.cases.iter().filter(|c| c.status.is_skipped()).count(),
        skipped
    );
}

/// Every report the harness writes validates against the committed schema of report.json.
fn assert_valid_report(path: &Path) {
    let schema: serde_json::Value = serde_json::from_str(oc_reports::REPORT_SCHEMA).unwrap();
    let validator = jsonschema::draft202012::new(&schema).expect("the schema compiles");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&report)
        .map(|e| format!("{e} at {}", e.instance_path().as_str()))
        .collect();
    assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
}

#[test]
fn smoke_passes_with_the_checker_agreeing_with_ground_truth() {
    let outcome = run_scenario(&load("smoke"), "a", None);
    assert_expected(&outcome);
    let r = &outcome.report;
    assert!(r.counts.answered_calls > 50, "{:?}", r.counts);
    let accuracy = r
        .accuracy
        .as_ref()
        .expect("the mock carrier gives ground truth");
    assert_eq!(accuracy.disagreement_count, 0);
    assert!(r.conservation.holds);
    let recon = r.reconciliation.as_ref().unwrap();
    assert_eq!(
        recon.counts.matched, r.counts.answered_calls,
        "a correct carrier matches every call"
    );
}

#[test]
fn the_same_seed_gives_the_same_report() {
    let scenario = load("smoke");
    let day = Some(6 * 3_600_000);
    // One output directory for both: it is part of the run's command, in its replay line.
    let first = run_scenario(&scenario, "det", day).report.without_timing();
    let second = run_scenario(&scenario, "det", day).report.without_timing();
    assert_eq!(
        serde_json::to_string_pretty(&first).unwrap(),
        serde_json::to_string_pretty(&second).unwrap()
    );
}

/// A run closes its calls as they become final on both sides (so that its memory holds the
/// open calls): each is judged then, with its ground truth, and everything the report counts
/// stays as when every call is judged at the end; only which calls the evidence cites first
/// follows the order they closed in. Checked on the scenario with every class, duplicates,
/// corrections and lateness; and twice, for the order calls close in is simulated time's.
#[test]
fn closing_calls_as_they_become_final_changes_no_verdict_or_figure() {
    let scenario = load("drift-mixed");
    let kept = run_keeping(&scenario, "whole", None, true);
    assert_eq!(
        kept.closed_calls, 0,
        "a kept history keeps every call to the end"
    );
    let closing = run_keeping(&scenario, "closing", None, false);
    let again = run_keeping(&scenario, "closing", None, false);
    assert!(
        closing.closed_calls > 500,
        "{} calls closed during the run",
        closing.closed_calls
    );
    assert_eq!(closing.closed_calls, again.closed_calls);
    assert_eq!(closing.report.verdict, Verdict::Passed);
    let without_evidence = |outcome: &RunOutcome| {
        let mut report = outcome.report.without_timing();
        let notes: Vec<Vec<String>> = report
            .rules
            .iter_mut()
            .map(|rule| {
                std::mem::take(&mut rule.evidence)
                    .into_iter()
                    .map(|e| e.note)
                    .collect()
            })
            .collect();
        report.scenario.replay = String::new();
        (serde_json::to_value(&report).unwrap(), notes)
    };
    let (kept, kept_notes) = without_evidence(&kept);
    let (closing, notes) = without_evidence(&closing);
    let (again, notes_again) = without_evidence(&again);
    assert_eq!(closing, kept);
    assert_eq!(again, closing);
    assert_eq!(notes, kept_notes, "the same calls cited, in the same order");
    assert_eq!(notes_again, notes);
    assert!(
        notes.iter().any(|n| !n.is_empty()),
        "the scenario's failures have evidence"
    );
}

#[test]
fn rounding_up_to_a_minute_drifts_by_what_rounding_predicts() {
    let outcome = run_scenario(&load("drift-rounding"), "a", None);
    assert_expected(&outcome);
    let history = outcome.history.as_ref().unwrap();
    let recon = outcome.report.reconciliation.as_ref().unwrap();
    // Independently: each answered call's duration rounded up to the next whole minute.
    let answered: Vec<i64> = history
        .calls
        .iter()
        .filter(|c| c.answered)
        .map(|c| c.duration_ms)
        .collect();
    let teams_ms: i64 = answered.iter().sum();
    let carrier_ms: i64 = answered
        .iter()
        .map(|d| (d + 59_999) / 60_000 * 60_000)
        .sum();
    assert!((recon.minutes.teams - teams_ms as f64 / 60_000.0).abs() < 1e-6);
    assert!(
        (recon.minutes.difference - (carrier_ms - teams_ms) as f64 / 60_000.0).abs() < 1e-6,
        "minutes gap {} vs predicted {}",
        recon.minutes.difference,
        (carrier_ms - teams_ms) as f64 / 60_000.0
    );
    let beyond_tolerance = answered
        .iter()
        .filter(|d| (*d + 59_999) / 60_000 * 60_000 - **d > 1_000)
        .count() as u64;
    assert_eq!(recon.counts.drift, beyond_tolerance);
    let drift_items = history
        .reconciliation
        .iter()
        .filter(|i| i.class == ReconClass::Drift)
        .count() as u64;
    assert_eq!(drift_items, beyond_tolerance);
}

#[test]
fn teams_misclassifying_quality_records_fails_qua_class_alone() {
    let outcome = run_scenario(&load("teams-qua-class"), "a", None);
    assert_expected(&outcome);
    // Every record Teams flipped on purpose, as it recorded them with the pages it served, is
    // one QUA-CLASS failure, and no other record is.
    let flipped: usize = outcome
        .history
        .as_ref()
        .unwrap()
        .exchanges
        .iter()
        .filter_map(|e| match &e.detail {
            Some(ExchangeDetail::FeedPage {
                feed,
                misclassified,
                ..
            }) if feed == "quality" => Some(misclassified.len()),
            _ => None,
        })
        .sum();
    let verdict = outcome
        .report
        .rules
        .iter()
        .find(|v| v.rule == RuleId::QuaClass)
        .unwrap();
    assert!(flipped >= 5, "only {flipped} records flipped");
    assert_eq!(verdict.failures, flipped as u64, "{verdict:#?}");
    assert!(
        verdict.summary.contains("0 records not judged (body cut"),
        "{}",
        verdict.summary
    );
    assert!(
        verdict
            .evidence
            .iter()
            .all(|e| e.note.contains("flipped on purpose")),
        "{verdict:#?}"
    );
}

#[test]
fn every_other_bundled_scenario_shows_what_it_expects() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let path = e.ok()?.path();
            (path.extension()? == "toml").then(|| path.file_stem()?.to_str().map(str::to_owned))?
        })
        .filter(|n| !["smoke", "drift-rounding", "teams-qua-class"].contains(&n.as_str()))
        .collect();
    names.sort();
    assert!(names.len() >= 10, "{names:?}");
    for name in names {
        let scenario = load(&name);
        // The month-long scale scenario runs shortened here; its full run is a benchmark.
        let length = (name == "scale").then_some(2 * 3_600_000);
        let outcome = run_scenario(&scenario, "a", length);
        assert_expected(&outcome);
        if name == "profile-dur-duplicate" {
            // A `should` rule: the run passes, and the rule's failure is there as a warning.
            let outcome_of = |rule| {
                let verdict = outcome.report.rules.iter().find(|v| v.rule == rule);
                verdict.map(|v| v.outcome)
            };
            use oc_protocol::RuleId;
            use oc_reports::Outcome;
            assert_eq!(outcome_of(RuleId::DurDuplicate), Some(Outcome::Failed));
            assert_eq!(outcome_of(RuleId::DurIdempotent), Some(Outcome::Passed));
        }
        if name == "profile-dur-idempotent" {
            // The 422s behind the failure are in the evidence a carrier hands over.
            let dir = outcome.report_path.parent().unwrap();
            let evidence = std::fs::read_to_string(dir.join("evidence.ndjson")).unwrap();
            let lines: Vec<serde_json::Value> = evidence
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            assert!(
                lines
                    .iter()
                    .any(|l| l["status"] == 422 && l["rules"][0] == "DUR-IDEMPOTENT"),
                "{evidence}"
            );
        }
    }
}
