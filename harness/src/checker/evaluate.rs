//! Judging a whole history: every rule of the catalogue, the accuracy against ground truth and
//! conservation, composed from independent pure functions.

use oc_reports::{Accuracy, Conservation, RuleVerdict};

use super::{History, accuracy, rules};

/// What the checker found in one history.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    /// One verdict per catalogue rule, in catalogue order.
    pub rules: Vec<RuleVerdict>,
    /// Teams' classes against the mock carrier's ground truth, when there is one.
    pub accuracy: Option<Accuracy>,
    /// Every answered call ends in exactly one class.
    pub conservation: Conservation,
}

/// Judges a history. Pure: the same history always gives the same result.
pub fn evaluate(history: &History) -> CheckResult {
    CheckResult {
        rules: rules::RULES.iter().map(|(_, rule)| rule(history)).collect(),
        accuracy: history
            .truth
            .as_ref()
            .map(|truth| accuracy::accuracy(&history.reconciliation, truth)),
        conservation: accuracy::conservation(history),
    }
}
