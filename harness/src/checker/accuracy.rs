//! The checks of the harness itself, folded over the end of a run's calls: Teams'
//! reconciliation against the mock carrier's ground truth, call by call (accuracy), and every
//! answered call ending in exactly one class (conservation). A failure of either is a harness
//! bug, not the carrier's.

use std::collections::BTreeMap;

use oc_protocol::ReconClass;
use oc_reports::{Accuracy, ConfusionCell, Conservation, Disagreement};

use super::first::FirstById;
use super::stream::CallRow;

/// The confusion matrix of (Teams' class, ground truth's expected class) over every call either
/// side has a class for; a call absent on one side is `None` there. Calls the ground truth puts
/// in no class and Teams has no item for are left out.
#[derive(Default)]
pub(crate) struct AccuracyFold {
    cells: BTreeMap<(Option<ReconClass>, Option<ReconClass>), u64>,
    disagreements: FirstById<Disagreement>,
    disagreement_count: u64,
}

impl AccuracyFold {
    pub(crate) fn call(&mut self, row: &CallRow<'_>) {
        // Two items for one call is a conservation violation, reported there; here the first
        // one stands.
        let teams = row.items.first().map(|item| item.class);
        let truth = row.truth.and_then(|t| t.expected_class);
        if teams.is_none() && truth.is_none() {
            return;
        }
        *self.cells.entry((teams, truth)).or_default() += 1;
        if teams != truth {
            self.disagreement_count += 1;
            self.disagreements.offer(row.call_id, || Disagreement {
                call_id: row.call_id.to_owned(),
                teams,
                truth,
            });
        }
    }

    pub(crate) fn finish(self) -> Accuracy {
        Accuracy {
            confusion: self
                .cells
                .into_iter()
                .map(|((teams, truth), count)| ConfusionCell {
                    teams,
                    truth,
                    count,
                })
                .collect(),
            disagreements: self.disagreements.into_items(),
            disagreement_count: self.disagreement_count,
        }
    }
}

/// Every answered call Teams generated is in exactly one reconciliation item of class
/// `matched`, `drift` or `missing`.
#[derive(Default)]
pub(crate) struct ConservationFold {
    answered_calls: u64,
    classified: u64,
    violations: FirstById<String>,
    violated: u64,
}

impl ConservationFold {
    pub(crate) fn call(&mut self, row: &CallRow<'_>) {
        if !row.call.is_some_and(|c| c.answered) {
            return;
        }
        self.answered_calls += 1;
        let classes: Vec<ReconClass> = row
            .items
            .iter()
            .map(|item| item.class)
            .filter(|class| *class != ReconClass::Unexpected)
            .collect();
        if !classes.is_empty() {
            self.classified += 1;
        }
        if classes.len() == 1 {
            return;
        }
        self.violated += 1;
        self.violations
            .offer(row.call_id, || match classes.as_slice() {
                [] => format!("{}: answered, but in no class", row.call_id),
                many => {
                    let names: Vec<&str> = many.iter().map(|c| c.as_str()).collect();
                    format!(
                        "{}: in {} classes ({})",
                        row.call_id,
                        many.len(),
                        names.join(", ")
                    )
                }
            });
    }

    pub(crate) fn finish(self) -> Conservation {
        Conservation {
            answered_calls: self.answered_calls,
            classified: self.classified,
            violations: self.violations.into_items(),
            holds: self.violated == 0,
        }
    }
}
