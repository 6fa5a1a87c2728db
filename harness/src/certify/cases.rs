//! The certification cases: what the harness makes happen to the carrier, each judged by the
//! carrier's rules of the catalogue (PROTOCOL.md ids), plus the scenario's thresholds. A case
//! passes when every `must` rule it names passed; a failed `should` rule is a warning in its
//! summary. A case whose rules the run could not exercise is not certified either: a carrier
//! is certified on what it showed, not on what it was never asked.

use oc_protocol::{Party, RuleId, Severity};
use oc_reports::{CaseResult, Evidence, Exercised, Outcome, RuleVerdict, ThresholdResult};

/// One case of the suite.
pub(crate) struct Case {
    pub(crate) id: &'static str,
    pub(crate) title: &'static str,
    pub(crate) rules: &'static [RuleId],
}

/// Every case, in the order the report lists them. Each carrier rule of the catalogue is in
/// exactly one case (a test checks it), so that a carrier that breaks one rule fails one case.
pub(crate) const CASES: &[Case] = &[
    Case {
        id: "forged-and-replayed-notifications",
        title: "Notifications with no signature, a wrong one, or one 10 minutes old are refused \
                with 401 and never applied",
        rules: &[RuleId::SecSignature],
    },
    Case {
        id: "notification-acknowledgement",
        title: "Every notification is acknowledged with 200, 202 or 204 within 5 s",
        rules: &[RuleId::NumAck],
    },
    Case {
        id: "redelivered-notifications",
        title: "Redelivered notifications (the same eventIds again) are applied once",
        rules: &[RuleId::NumIdempotent],
    },
    Case {
        id: "reordered-notifications",
        title: "A notification overtaken by a newer one for the same number does not roll it back",
        rules: &[RuleId::NumOrder],
    },
    Case {
        id: "provisioning-convergence",
        title: "After assignments, updates and unassignments, the state probe of every number \
                agrees with Teams",
        rules: &[RuleId::NumState],
    },
    Case {
        id: "feed-paging",
        title: "The CDR and quality feeds, late and corrected records included, are followed \
                through nextLink and deltaLink exactly as given",
        rules: &[RuleId::CdrPaging],
    },
    Case {
        id: "throttling",
        title: "After a 429, nothing is sent to that endpoint before its Retry-After has passed",
        rules: &[RuleId::CdrThrottle],
    },
    Case {
        id: "quality-feed",
        title: "The quality feed is read to its end in every poll cycle",
        rules: &[RuleId::QuaFeed],
    },
    Case {
        id: "duration-records",
        title: "Every reported duration record is well-formed (schema, E.164, times, durationMs)",
        rules: &[RuleId::DurSchema],
    },
    Case {
        id: "duration-idempotency",
        title: "A duration report's Idempotency-Key is reused only for a retry of the same body; \
                each call is reported once",
        rules: &[RuleId::DurIdempotent, RuleId::DurDuplicate],
    },
    Case {
        id: "duration-completeness",
        title: "Every answered call on an assigned number gets its duration reported",
        rules: &[RuleId::DurComplete],
    },
    Case {
        id: "duration-deadline",
        title: "Every duration is reported within the reporting deadline after the call's end",
        rules: &[RuleId::DurDeadline],
    },
    Case {
        id: "unassigned-legs",
        title: "Legs on numbers that were not assigned at their connect time are not reported",
        rules: &[RuleId::DurUnexpected],
    },
    Case {
        id: "duration-fidelity",
        title: "Each reported duration equals its leg's endDateTime − connectDateTime to the \
                millisecond",
        rules: &[RuleId::DurFidelity],
    },
];

/// The id of the thresholds' case.
pub(crate) const RECONCILIATION_CASE: &str = "reconciliation";

/// The ids of the cases `rule` takes part in (empty for Teams' own rules).
pub fn cases_of(rule: RuleId) -> Vec<&'static str> {
    CASES
        .iter()
        .filter(|c| c.rules.contains(&rule))
        .map(|c| c.id)
        .collect()
}

/// Every case's id, in suite order, the reconciliation case last.
pub fn case_ids() -> Vec<&'static str> {
    CASES
        .iter()
        .map(|c| c.id)
        .chain([RECONCILIATION_CASE])
        .collect()
}

/// Failures that cause others: when the first rule fails, the second's failure is probably
/// its consequence (a carrier that applies overtaken events ends in an older state; records
/// refused, lost to broken paging or to a reused key are never reported).
const CONSEQUENCES: &[(RuleId, RuleId)] = &[
    (RuleId::NumOrder, RuleId::NumState),
    (RuleId::NumAck, RuleId::NumState),
    (RuleId::CdrPaging, RuleId::DurComplete),
    (RuleId::CdrThrottle, RuleId::DurComplete),
    (RuleId::DurSchema, RuleId::DurComplete),
    (RuleId::DurIdempotent, RuleId::DurComplete),
    (RuleId::CdrThrottle, RuleId::DurDeadline),
];

/// Judges every case from the rules' verdicts and the thresholds. Failed cases come first,
/// each cause before the cases that probably failed because of it (their summaries say so
/// first); then the rest in suite order, the reconciliation case last.
pub(crate) fn judge(rules: &[RuleVerdict], thresholds: &[ThresholdResult]) -> Vec<CaseResult> {
    let mut cases: Vec<CaseResult> = CASES.iter().map(|case| judge_case(case, rules)).collect();
    let failed_rules: Vec<RuleId> = rules
        .iter()
        .filter(|v| v.outcome == Outcome::Failed && v.severity == Severity::Must)
        .map(|v| v.rule)
        .collect();
    // Each failed case's causes: the failed cases whose rules cause its rules' failures.
    let causes: Vec<Vec<usize>> = cases
        .iter()
        .map(|case| {
            if case.outcome != Outcome::Failed {
                return Vec::new();
            }
            let causing: Vec<RuleId> = CONSEQUENCES
                .iter()
                .filter(|(cause, effect)| {
                    case.rules.contains(effect)
                        && failed_rules.contains(effect)
                        && failed_rules.contains(cause)
                        && !case.rules.contains(cause)
                })
                .map(|(cause, _)| *cause)
                .collect();
            cases
                .iter()
                .enumerate()
                .filter(|(_, c)| c.rules.iter().any(|r| causing.contains(r)))
                .map(|(i, _)| i)
                .collect()
        })
        .collect();
    for (i, of) in causes.iter().enumerate() {
        if of.is_empty() {
            continue;
        }
        let named: Vec<String> = of
            .iter()
            .map(|&c| {
                let rules: Vec<&str> = cases[c].rules.iter().map(|r| r.as_str()).collect();
                format!("{} ({})", cases[c].id, rules.join(", "))
            })
            .collect();
        cases[i].summary = format!(
            "probably a consequence of {}: {}",
            named.join(" and "),
            cases[i].summary
        );
    }
    let rank = |i: usize| match cases[i].outcome {
        Outcome::Failed if causes[i].is_empty() => 0,
        Outcome::Failed => 1,
        _ => 2,
    };
    let mut order: Vec<usize> = (0..cases.len()).collect();
    order.sort_by_key(|&i| (rank(i), i));
    let mut slots: Vec<Option<CaseResult>> = cases.into_iter().map(Some).collect();
    let mut ordered: Vec<CaseResult> = order.into_iter().filter_map(|i| slots[i].take()).collect();
    ordered.push(reconciliation(thresholds));
    ordered
}

fn judge_case(case: &Case, rules: &[RuleVerdict]) -> CaseResult {
    let verdicts: Vec<&RuleVerdict> = case
        .rules
        .iter()
        .filter_map(|id| rules.iter().find(|v| v.rule == *id))
        .collect();
    let must: Vec<&&RuleVerdict> = verdicts
        .iter()
        .filter(|v| v.severity == Severity::Must)
        .collect();
    let outcome = if must.iter().any(|v| v.outcome == Outcome::Failed) {
        Outcome::Failed
    } else if must.is_empty() || must.iter().any(|v| v.outcome == Outcome::NotExercised) {
        Outcome::NotExercised
    } else {
        Outcome::Passed
    };
    let summary = verdicts
        .iter()
        .map(|v| {
            let warning = if v.severity == Severity::Should && v.outcome == Outcome::Failed {
                " (a warning: should, not must)"
            } else {
                ""
            };
            format!("{}: {}{warning}", v.rule, v.summary)
        })
        .collect::<Vec<_>>()
        .join("; ");
    let exercised = verdicts
        .iter()
        .flat_map(|v| v.exercised.iter().cloned())
        .collect();
    let evidence: Vec<Evidence> = verdicts
        .iter()
        .filter(|v| v.outcome == Outcome::Failed)
        .flat_map(|v| {
            v.evidence.iter().map(|e| Evidence {
                note: format!("{}: {}", v.rule, e.note),
                exchanges: e.exchanges.clone(),
            })
        })
        .collect();
    CaseResult {
        id: case.id.to_owned(),
        title: case.title.to_owned(),
        rules: case.rules.to_vec(),
        outcome,
        summary,
        exercised,
        evidence,
    }
}

fn reconciliation(thresholds: &[ThresholdResult]) -> CaseResult {
    let outcome = if thresholds.is_empty() {
        Outcome::NotExercised
    } else if thresholds.iter().all(|t| t.passed) {
        Outcome::Passed
    } else {
        Outcome::Failed
    };
    let summary = if thresholds.is_empty() {
        "the scenario sets no threshold".to_owned()
    } else {
        thresholds
            .iter()
            .map(|t| {
                let measured = t.measured.map_or("nothing to measure".to_owned(), |m| {
                    format!("{}", (m * 10_000.0).round() / 10_000.0)
                });
                let verdict = if t.passed { "held" } else { "crossed" };
                format!("{} {}: {measured} ({verdict})", t.name, t.limit)
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    CaseResult {
        id: RECONCILIATION_CASE.to_owned(),
        title: "Reported durations reconcile with Teams' records within the scenario's tolerance \
                and thresholds"
            .to_owned(),
        rules: Vec::new(),
        outcome,
        summary,
        exercised: vec![Exercised::new(
            "thresholds judged",
            thresholds.len() as u64,
            1,
        )],
        evidence: Vec::new(),
    }
}

/// Whether a rule is the harness's own (Teams' side): its failure is a harness bug, not the
/// carrier's.
pub(crate) fn is_teams_rule(rule: RuleId) -> bool {
    oc_protocol::rules::rule(rule).party == Party::Teams
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_carrier_rule_is_in_exactly_one_case() {
        for rule in RuleId::ALL.iter().copied() {
            let cases = cases_of(rule);
            if is_teams_rule(rule) {
                assert!(cases.is_empty(), "{rule} is Teams' and in {cases:?}");
            } else {
                assert_eq!(cases.len(), 1, "{rule} is in {cases:?}");
            }
        }
        let mut ids = case_ids();
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n, "case ids are unique");
    }

    fn verdict(rule: RuleId, outcome: Outcome) -> RuleVerdict {
        let r = oc_protocol::rules::rule(rule);
        RuleVerdict {
            rule,
            severity: r.severity,
            party: r.party,
            outcome,
            summary: "checked".into(),
            failures: u64::from(outcome == Outcome::Failed),
            exercised: Vec::new(),
            evidence: if outcome == Outcome::Failed {
                vec![Evidence {
                    note: "it broke".into(),
                    exchanges: vec![7],
                }]
            } else {
                Vec::new()
            },
        }
    }

    #[test]
    fn a_case_fails_on_a_must_rule_and_warns_on_a_should_rule() {
        let idempotency = CASES
            .iter()
            .find(|c| c.id == "duration-idempotency")
            .expect("the case exists");
        let warned = judge_case(
            idempotency,
            &[
                verdict(RuleId::DurIdempotent, Outcome::Passed),
                verdict(RuleId::DurDuplicate, Outcome::Failed),
            ],
        );
        assert_eq!(warned.outcome, Outcome::Passed);
        assert!(warned.summary.contains("a warning"), "{}", warned.summary);
        let failed = judge_case(
            idempotency,
            &[
                verdict(RuleId::DurIdempotent, Outcome::Failed),
                verdict(RuleId::DurDuplicate, Outcome::Passed),
            ],
        );
        assert_eq!(failed.outcome, Outcome::Failed);
        assert_eq!(failed.evidence[0].note, "DUR-IDEMPOTENT: it broke");
        assert_eq!(failed.evidence[0].exchanges, [7]);
        let unexercised = judge_case(
            idempotency,
            &[
                verdict(RuleId::DurIdempotent, Outcome::NotExercised),
                verdict(RuleId::DurDuplicate, Outcome::Passed),
            ],
        );
        assert_eq!(unexercised.outcome, Outcome::NotExercised);
    }

    #[test]
    fn failed_cases_come_first_causes_before_their_consequences() {
        let mut rules: Vec<RuleVerdict> = RuleId::ALL
            .iter()
            .map(|r| verdict(*r, Outcome::Passed))
            .collect();
        for rule in [RuleId::DurComplete, RuleId::CdrThrottle] {
            rules[rule as usize] = verdict(rule, Outcome::Failed);
        }
        let cases = judge(&rules, &[]);
        let ids: Vec<&str> = cases.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids[..2], ["throttling", "duration-completeness"]);
        assert!(
            cases[1]
                .summary
                .starts_with("probably a consequence of throttling (CDR-THROTTLE): "),
            "{}",
            cases[1].summary
        );
        assert!(!cases[0].summary.starts_with("probably"));
        assert_eq!(ids.last(), Some(&RECONCILIATION_CASE));
        assert_eq!(ids.len(), CASES.len() + 1);
    }

    #[test]
    fn reconciliation_follows_the_thresholds() {
        let threshold = |passed| ThresholdResult {
            name: "min_match_rate".into(),
            limit: 0.9,
            measured: Some(0.95),
            passed,
        };
        assert_eq!(reconciliation(&[]).outcome, Outcome::NotExercised);
        assert_eq!(reconciliation(&[threshold(true)]).outcome, Outcome::Passed);
        let failed = reconciliation(&[threshold(true), threshold(false)]);
        assert_eq!(failed.outcome, Outcome::Failed);
        assert!(failed.summary.contains("crossed"), "{}", failed.summary);
    }
}
