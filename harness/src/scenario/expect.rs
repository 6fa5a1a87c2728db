//! What a run must show: the rules expected to fail, and the thresholds.

use oc_protocol::{RuleId, Severity};

use super::convert::Findings;
use super::model::{Expectations, Thresholds};
use super::raw::{RawExpect, RawThresholds};

/// Every `must` rule id, for messages.
fn rule_names() -> String {
    RuleId::ALL
        .iter()
        .filter(|r| oc_protocol::rules::rule(**r).severity == Severity::Must)
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn expectations(raw: RawExpect, f: &mut Findings) -> Expectations {
    let mut failed_rules: Vec<RuleId> = Vec::new();
    for (i, name) in raw.failed_rules.unwrap_or_default().iter().enumerate() {
        let key = format!("expect.failed_rules[{i}]");
        match RuleId::ALL.iter().find(|r| r.as_str() == name) {
            None => f.push(
                key,
                format!("unknown rule {name:?} (expected one of {})", rule_names()),
            ),
            Some(rule) if failed_rules.contains(rule) => {
                f.push(key, format!("lists {rule} a second time"));
            }
            Some(rule) if oc_protocol::rules::rule(*rule).severity != Severity::Must => {
                f.push(
                    key,
                    format!(
                        "{rule} is a `should` rule, which never fails a run (expected a `must` \
                         rule)"
                    ),
                );
            }
            Some(rule) => failed_rules.push(*rule),
        }
    }
    // In catalogue order, so that comparing with a run's verdicts is a plain equality.
    failed_rules.sort();
    Expectations { failed_rules }
}

pub(crate) fn thresholds(raw: RawThresholds, f: &mut Findings) -> Thresholds {
    let min_match_rate = raw
        .min_match_rate
        .map(|rate| f.share("thresholds.min_match_rate", Some(rate), rate));
    let max_ack_p99_ms = raw.max_ack_p99.as_ref().and_then(|raw| {
        let ms = f.positive_duration("thresholds.max_ack_p99", Some(raw), 0)?;
        u64::try_from(ms).ok()
    });
    let max_minutes_difference = raw
        .max_minutes_difference
        .map(|minutes| f.non_negative("thresholds.max_minutes_difference", Some(minutes), minutes));
    Thresholds {
        min_match_rate,
        max_ack_p99_ms,
        max_minutes_difference,
    }
}

#[cfg(test)]
mod tests {
    use super::super::load::parse;
    use super::super::load::tests::{at, problem, problems, with};
    use super::*;

    #[test]
    fn expected_rules_are_must_rules_named_once() {
        let s = parse(
            &with("[expect]\nfailed_rules = [\"NUM-STATE\", \"NUM-ORDER\"]\n"),
            "t",
        )
        .unwrap();
        assert_eq!(s.expect.failed_rules, [RuleId::NumOrder, RuleId::NumState]);
        let text = with(
            "[expect]\nfailed_rules = [\"NUM-ORDER\", \"num-state\", \"NUM-ORDER\", \"DUR-DUPLICATE\"]\n",
        );
        assert_eq!(
            problems(&text),
            [
                at("expect.failed_rules[1]", 11, 30),
                at("expect.failed_rules[2]", 11, 43),
                at("expect.failed_rules[3]", 11, 56),
            ]
        );
        let (_, message) = problem(&with("[expect]\nfailed_rules = [\"CDR-FEEDS\"]\n"));
        assert!(
            message.contains("unknown rule \"CDR-FEEDS\" (expected one of SEC-SIGNATURE"),
            "{message}"
        );
        assert!(
            message.contains("DUR-FIDELITY") && !message.contains("DUR-DUPLICATE"),
            "{message}"
        );
    }

    #[test]
    fn thresholds_are_checked() {
        let s = parse(
            &with("[thresholds]\nmin_match_rate = 0.99\nmax_ack_p99 = \"1500ms\"\nmax_minutes_difference = 2.5\n"),
            "t",
        )
        .unwrap();
        assert_eq!(
            s.thresholds,
            Thresholds {
                min_match_rate: Some(0.99),
                max_ack_p99_ms: Some(1_500),
                max_minutes_difference: Some(2.5),
            }
        );
        let text = with(
            "[thresholds]\nmin_match_rate = 1.01\nmax_ack_p99 = \"0s\"\nmax_minutes_difference = -1.0\n",
        );
        assert_eq!(
            problems(&text),
            [
                at("thresholds.min_match_rate", 11, 18),
                at("thresholds.max_ack_p99", 12, 15),
                at("thresholds.max_minutes_difference", 13, 26),
            ]
        );
    }
}
