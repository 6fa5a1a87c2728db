//! The whole evaluation: every rule in catalogue order, exercise on an empty history, the pass
//! fixtures flagging nothing, each fail fixture breaking only its rule, accuracy and
//! conservation.

use oc_harness::checker::{History, evaluate, rules};
use oc_protocol::{ReconClass, RuleId};
use oc_reports::{ConfusionCell, Disagreement, Outcome};

use crate::support::{fixture_names, load};

fn fixture(rule: RuleId, kind: &str) -> String {
    format!("{}-{kind}", rule.as_str().to_lowercase())
}

#[test]
fn every_rule_has_a_pass_and_a_fail_fixture() {
    let names = fixture_names();
    for rule in RuleId::ALL {
        for kind in ["pass", "fail"] {
            let name = fixture(*rule, kind);
            assert!(names.contains(&name), "fixtures/{name}.json is missing");
        }
    }
}

#[test]
fn every_fixture_is_a_history_that_round_trips() {
    for name in fixture_names() {
        let history = load(&name);
        let json = serde_json::to_string(&history).unwrap();
        let back: History = serde_json::from_str(&json).unwrap();
        assert_eq!(back, history, "{name}");
    }
}

#[test]
fn verdicts_come_in_catalogue_order_with_its_severity_and_party() {
    let result = evaluate(&History::default());
    assert_eq!(result.rules.len(), oc_protocol::rules::catalogue().len());
    for (verdict, rule) in result.rules.iter().zip(oc_protocol::rules::catalogue()) {
        assert_eq!(verdict.rule, rule.id);
        assert_eq!(verdict.severity, rule.severity);
        assert_eq!(verdict.party, rule.party);
    }
}

#[test]
fn an_empty_history_exercises_nothing_and_conserves() {
    let result = evaluate(&History::default());
    for verdict in &result.rules {
        assert_eq!(verdict.outcome, Outcome::NotExercised, "{verdict:#?}");
        assert_eq!(verdict.failures, 0);
        assert!(verdict.evidence.is_empty());
        assert!(!verdict.summary.is_empty(), "{}", verdict.rule);
    }
    assert_eq!(result.accuracy, None);
    assert!(result.conservation.holds);
    assert_eq!(result.conservation.answered_calls, 0);
    assert_eq!(result.conservation.classified, 0);
    assert!(result.conservation.violations.is_empty());
}

/// Like the `correct` profile: a history that breaks nothing makes no rule fail.
#[test]
fn pass_fixtures_fail_no_rule() {
    for rule in RuleId::ALL {
        let name = fixture(*rule, "pass");
        let result = evaluate(&load(&name));
        for verdict in &result.rules {
            assert_ne!(verdict.outcome, Outcome::Failed, "{name}: {verdict:#?}");
        }
        let own = &result.rules[*rule as usize];
        assert_eq!(
            own.outcome,
            Outcome::Passed,
            "{name} exercises {rule}: {own:#?}"
        );
    }
}

/// Like each misbehaviour profile: a history that breaks one rule fails that rule only.
#[test]
fn each_fail_fixture_fails_only_its_rule() {
    for rule in RuleId::ALL {
        let name = fixture(*rule, "fail");
        let failed: Vec<RuleId> = evaluate(&load(&name))
            .rules
            .iter()
            .filter(|v| v.outcome == Outcome::Failed)
            .map(|v| v.rule)
            .collect();
        assert_eq!(failed, [*rule], "{name}");
    }
}

#[test]
fn rules_check_matches_evaluate() {
    let history = load("num-order-fail");
    let result = evaluate(&history);
    for rule in RuleId::ALL {
        assert_eq!(rules::check(*rule, &history), result.rules[*rule as usize]);
    }
}

#[test]
fn accuracy_counts_a_deliberate_disagreement() {
    let result = evaluate(&load("accuracy-disagreement"));
    let accuracy = result.accuracy.expect("the fixture has ground truth");
    use ReconClass::*;
    let cell = |teams, truth, count| ConfusionCell {
        teams,
        truth,
        count,
    };
    // call-4 is in no class on either side and is left out.
    assert_eq!(
        accuracy.confusion,
        [
            cell(None, Some(Unexpected), 1),
            cell(Some(Matched), Some(Matched), 1),
            cell(Some(Drift), Some(Matched), 1),
            cell(Some(Missing), Some(Missing), 1),
        ]
    );
    assert_eq!(accuracy.disagreement_count, 2);
    assert_eq!(
        accuracy.disagreements,
        [
            Disagreement {
                call_id: "call-2".into(),
                teams: Some(Drift),
                truth: Some(Matched),
            },
            Disagreement {
                call_id: "call-5".into(),
                teams: None,
                truth: Some(Unexpected),
            },
        ]
    );
}

#[test]
fn accuracy_without_disagreement() {
    let mut history = load("accuracy-disagreement");
    let truth = history.truth.as_mut().unwrap();
    truth.calls[1].expected_class = Some(ReconClass::Drift);
    truth.calls.pop();
    let accuracy = evaluate(&history).accuracy.unwrap();
    assert_eq!(accuracy.disagreement_count, 0);
    assert!(accuracy.disagreements.is_empty());
    assert!(accuracy.confusion.iter().all(|c| c.teams == c.truth));
}

#[test]
fn conservation_pass() {
    let conservation = evaluate(&load("conservation-pass")).conservation;
    assert!(conservation.holds, "{conservation:#?}");
    assert_eq!(conservation.answered_calls, 2);
    assert_eq!(conservation.classified, 2);
    assert!(conservation.violations.is_empty());
}

#[test]
fn conservation_fail() {
    let conservation = evaluate(&load("conservation-fail")).conservation;
    assert!(!conservation.holds);
    assert_eq!(conservation.answered_calls, 3);
    assert_eq!(conservation.classified, 2);
    assert_eq!(
        conservation.violations,
        [
            "call-2: answered, but in no class",
            "call-3: in 2 classes (matched, drift)",
        ]
    );
}
