//! The scenario files in `scenarios/`: every one loads, the suite's own scenarios are there,
//! and each says what its name promises.

use std::collections::BTreeMap;
use std::path::Path;

use mock_carrier::config::ClientConfig;
use mock_carrier::{DriftModel, Profile, RoundingMode};
use oc_protocol::RuleId;
use oc_protocol::timestamp::DAY_MS;

use super::load::load;
use super::model::{CarrierSpec, Scenario};

/// Every scenario file, by name; each name must be its file's stem.
fn scenarios() -> BTreeMap<String, Scenario> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let scenario = load(&path).unwrap_or_else(|e| panic!("{e}"));
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            assert_eq!(scenario.name, stem, "{}", path.display());
            out.insert(stem, scenario);
        }
    }
    out
}

fn mock(s: &Scenario) -> (&[DriftModel], Profile, &ClientConfig) {
    match &s.carrier {
        CarrierSpec::Mock {
            drift,
            misbehaviour,
            client,
        } => (drift, misbehaviour.profile, client),
        CarrierSpec::External { .. } => panic!("{}: not the mock carrier", s.name),
    }
}

#[test]
fn every_file_in_the_scenarios_folder_loads_and_the_suite_is_there() {
    let all = scenarios();
    let mut wanted: Vec<String> = [
        "smoke",
        "drift-rounding",
        "drift-mixed",
        "late-and-corrected",
        "scale",
        "teams-qua-class",
    ]
    .map(str::to_owned)
    .to_vec();
    wanted.extend(
        Profile::ALL
            .iter()
            .filter(|p| p.rule().is_some())
            .map(|p| format!("profile-{}", p.slug())),
    );
    for name in wanted {
        assert!(all.contains_key(&name), "scenarios/{name}.toml is missing");
    }
}

#[test]
fn every_scenario_but_scale_is_small() {
    for (name, s) in scenarios() {
        if name != "scale" {
            assert!(
                s.total_numbers() <= 50,
                "{name}: {} numbers",
                s.total_numbers()
            );
            assert!(s.length_ms <= 2 * DAY_MS, "{name}: {} ms", s.length_ms);
        }
    }
}

#[test]
fn each_profile_scenario_runs_its_profile_and_expects_its_rule() {
    let all = scenarios();
    for profile in Profile::ALL {
        let Some(rule) = profile.rule() else { continue };
        let name = format!("profile-{}", profile.slug());
        let s = &all[&name];
        let (drift, got, _) = mock(s);
        assert_eq!(got, profile, "{name}");
        assert!(drift.is_empty(), "{name}: drift would blur the verdict");
        let want = if rule == RuleId::NumOrder {
            vec![RuleId::NumOrder, RuleId::NumState]
        } else if oc_protocol::rules::rule(rule).severity == oc_protocol::Severity::Should {
            // A `should` rule warns; a run that breaks it still shows what it expects.
            Vec::new()
        } else {
            vec![rule]
        };
        assert_eq!(s.expect.failed_rules, want, "{name}");
    }
    let faults = |name: &str| all[name].teams_faults.clone();
    assert!(faults("profile-num-idempotent").webhook_duplicate_share > 0.0);
    assert!(faults("profile-num-order").webhook_reorder_share > 0.0);
    assert!(faults("profile-cdr-throttle").throttle_share > 0.0);
    for name in ["profile-num-idempotent", "profile-num-order"] {
        assert!(
            all[name].assignments.update_per_day > 0.0,
            "{name}: no churn"
        );
    }
    // Each late acknowledgement costs real seconds: few numbers, no churn.
    let ack = &all["profile-num-ack"];
    assert!(ack.total_numbers() <= 5);
    assert_eq!(
        (
            ack.assignments.assign_per_day,
            ack.assignments.update_per_day,
            ack.assignments.unassign_per_day
        ),
        (0.0, 0.0, 0.0)
    );
}

#[test]
fn the_named_scenarios_say_what_their_names_promise() {
    let all = scenarios();

    let smoke = &all["smoke"];
    assert_eq!(
        (smoke.length_ms, smoke.tenants.len(), smoke.total_numbers()),
        (DAY_MS, 2, 20)
    );
    assert_eq!(mock(smoke).1, Profile::Correct);
    assert!(mock(smoke).0.is_empty());
    assert!(smoke.expect.failed_rules.is_empty());

    let rounding = &all["drift-rounding"];
    assert_eq!(
        mock(rounding).0,
        [DriftModel::Round {
            increment_ms: 60_000,
            mode: RoundingMode::Up
        }]
    );
    assert_eq!(rounding.reconciliation.tolerance_ms, 1_000);
    assert!(rounding.expect.failed_rules.is_empty());

    let mixed = &all["drift-mixed"];
    let names: Vec<&str> = mock(mixed).0.iter().map(DriftModel::name).collect();
    assert_eq!(
        names,
        [
            "offset",
            "round",
            "jitter",
            "late_answer",
            "hung",
            "clock_skew",
            "drop",
            "duplicate",
            "after_deadline",
            "unassigned_number"
        ]
    );
    assert_eq!(
        mixed.expect.failed_rules,
        [
            RuleId::DurDeadline,
            RuleId::DurComplete,
            RuleId::DurUnexpected
        ]
    );

    let late = &all["late-and-corrected"];
    assert_eq!(late.calls.correction_rate, 0.05);
    assert!(matches!(mock(late).0, [DriftModel::AfterDeadline { .. }]));
    assert_eq!(late.expect.failed_rules, [RuleId::DurDeadline]);

    let scale = &all["scale"];
    assert_eq!((scale.length_ms, scale.tick_ms), (30 * DAY_MS, 3_600_000));
    assert_eq!(scale.total_numbers(), 20_000);
    let per_number = scale.expected_calls_per_day() / 20_000.0;
    assert!(
        (8.0..=12.0).contains(&per_number),
        "{per_number} calls per number a day"
    );

    let misclassifying = &all["teams-qua-class"];
    assert_eq!(mock(misclassifying).1, Profile::Correct);
    assert!(misclassifying.teams_faults.quality_misclassify_share > 0.0);
    assert_eq!(misclassifying.expect.failed_rules, [RuleId::QuaClass]);
}
