//! The checks of the harness itself: Teams' reconciliation against the mock carrier's ground
//! truth, call by call (accuracy), and every answered call ending in exactly one class
//! (conservation). A failure of either is a harness bug, not the carrier's.

use std::collections::{BTreeMap, BTreeSet};

use oc_observe::GroundTruth;
use oc_protocol::{ReconClass, ReconciliationItem};
use oc_reports::{Accuracy, ConfusionCell, Conservation, Disagreement, MAX_EVIDENCE};

use super::History;

/// The confusion matrix of (Teams' class, ground truth's expected class) over every call either
/// side has a class for; a call absent on one side is `None` there. Calls the ground truth puts
/// in no class and Teams has no item for are left out.
pub fn accuracy(reconciliation: &[ReconciliationItem], truth: &GroundTruth) -> Accuracy {
    let mut teams: BTreeMap<&str, ReconClass> = BTreeMap::new();
    for item in reconciliation {
        // Two items for one call is a conservation violation, reported there; here the first
        // one stands.
        teams.entry(item.call_id.as_str()).or_insert(item.class);
    }
    let expected: BTreeMap<&str, Option<ReconClass>> = truth
        .calls
        .iter()
        .map(|c| (c.call_id.as_str(), c.expected_class))
        .collect();
    let call_ids: BTreeSet<&str> = teams.keys().chain(expected.keys()).copied().collect();
    let mut cells: BTreeMap<(Option<ReconClass>, Option<ReconClass>), u64> = BTreeMap::new();
    let mut disagreements = Vec::new();
    let mut disagreement_count = 0u64;
    for call_id in call_ids {
        let t = teams.get(call_id).copied();
        let g = expected.get(call_id).copied().flatten();
        if t.is_none() && g.is_none() {
            continue;
        }
        *cells.entry((t, g)).or_default() += 1;
        if t != g {
            disagreement_count += 1;
            if disagreements.len() < MAX_EVIDENCE {
                disagreements.push(Disagreement {
                    call_id: call_id.to_owned(),
                    teams: t,
                    truth: g,
                });
            }
        }
    }
    Accuracy {
        confusion: cells
            .into_iter()
            .map(|((teams, truth), count)| ConfusionCell {
                teams,
                truth,
                count,
            })
            .collect(),
        disagreements,
        disagreement_count,
    }
}

/// Every answered call Teams generated is in exactly one reconciliation item of class
/// `matched`, `drift` or `missing`.
pub fn conservation(history: &History) -> Conservation {
    let mut classes: BTreeMap<&str, Vec<ReconClass>> = BTreeMap::new();
    for item in &history.reconciliation {
        if item.class != ReconClass::Unexpected {
            classes
                .entry(item.call_id.as_str())
                .or_default()
                .push(item.class);
        }
    }
    let mut answered_calls = 0u64;
    let mut classified = 0u64;
    let mut violations = Vec::new();
    let mut violated = 0u64;
    for call in history.calls.iter().filter(|c| c.answered) {
        answered_calls += 1;
        let found = classes
            .get(call.call_id.as_str())
            .map_or(&[][..], Vec::as_slice);
        if !found.is_empty() {
            classified += 1;
        }
        let violation = match found {
            [_] => continue,
            [] => format!("{}: answered, but in no class", call.call_id),
            many => {
                let names: Vec<&str> = many.iter().map(|c| c.as_str()).collect();
                format!(
                    "{}: in {} classes ({})",
                    call.call_id,
                    many.len(),
                    names.join(", ")
                )
            }
        };
        violated += 1;
        if violations.len() < MAX_EVIDENCE {
            violations.push(violation);
        }
    }
    Conservation {
        answered_calls,
        classified,
        violations,
        holds: violated == 0,
    }
}
