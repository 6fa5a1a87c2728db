//! The end of a run for the checker: what only the end knows, then every call of the carrier
//! joined in call-id order (Teams' store, streamed) with the mock carrier's ground truth, folded
//! into the rules and the figures; then the evidence still to be found, in the kept exchanges.

use mock_teams::{CallView, MockTeams};
use oc_heap_meter::{self as heap, Part};
use oc_observe::CallTruth;
use oc_protocol::{TeamsNumber, UnixMillis};

use super::figures::RunFigures;
use super::spill::Kept;
use super::{CARRIER_ID, RunError, store_error};
use crate::actors::checker::Observed;
use crate::checker::history::{CallFact, History, IsolationProbe, Probe, SignatureProbe};
use crate::checker::{CallRow, CheckResult, End};

/// What only the end of a run knows, besides the calls.
#[derive(Debug, Default)]
pub(crate) struct EndFacts {
    pub(crate) teams_numbers: Vec<TeamsNumber>,
    pub(crate) probes: Vec<Probe>,
    pub(crate) signature_probes: Vec<SignatureProbe>,
    pub(crate) isolation_probes: Vec<IsolationProbe>,
    pub(crate) judged_at: Option<UnixMillis>,
}

/// Everything the checker found, and what it kept.
pub(crate) struct Judgement {
    pub(crate) result: CheckResult,
    pub(crate) figures: RunFigures,
    /// Poll cycles judged.
    pub(crate) cycles: u64,
    /// The run's exchanges, on disk, when they could be kept.
    pub(crate) exchanges: Option<Kept>,
    /// Everything observed, when the run was asked to keep it.
    pub(crate) history: Option<History>,
    /// Calls closed during the run (judged before the end).
    pub(crate) closed_calls: u64,
}

/// Judges the run: `truth` is the mock carrier's ground truth, in call-id order, when the
/// carrier is the mock; `window` is the reconciliation's window of call starts. A kept history
/// gets everything but the ground truth, which its keeper adds.
pub(crate) fn judge(
    observed: Observed,
    facts: EndFacts,
    teams: &MockTeams,
    truth: Option<&mut dyn Iterator<Item = CallTruth>>,
    window: (UnixMillis, UnixMillis),
) -> Result<Judgement, RunError> {
    let Observed {
        mut checker,
        mut figures,
        spill,
        mut kept,
        closed_calls,
    } = observed;
    let has_truth = truth.is_some();
    let end = End {
        teams_numbers: &facts.teams_numbers,
        probes: &facts.probes,
        signature_probes: &facts.signature_probes,
        isolation_probes: &facts.isolation_probes,
        judged_at: facts.judged_at,
        truth: has_truth,
    };
    let mut none = std::iter::empty();
    let mut truth_calls = truth
        .unwrap_or(&mut none as &mut dyn Iterator<Item = CallTruth>)
        .peekable();
    let mut row = |row: CallRow<'_>| {
        {
            let _checker = heap::enter(Part::Checker);
            checker.call(row, &end);
        }
        figures.row(&row);
        if let Some(kept) = &mut kept {
            kept.calls.extend(row.call.cloned());
            kept.reported.extend(row.reported.cloned());
            kept.reconciliation.extend_from_slice(row.items);
        }
    };
    fn only_truth(t: &CallTruth) -> CallRow<'_> {
        CallRow {
            call_id: &t.call_id,
            call: None,
            reported: None,
            items: &[],
            truth: Some(t),
        }
    }
    teams
        .with_store(|s| -> Result<(), mock_teams::StoreError> {
            for view in s.calls_by_id(CARRIER_ID, window)? {
                while let Some(t) = truth_calls.next_if(|t| t.call_id.as_str() < view.call_id) {
                    row(only_truth(&t));
                }
                let t = truth_calls.next_if(|t| t.call_id == view.call_id);
                let CallView {
                    call_id,
                    telephone_number,
                    teams,
                    reported,
                    item,
                } = view;
                let call = teams.map(|c| CallFact {
                    call_id: call_id.to_owned(),
                    telephone_number: telephone_number.to_owned(),
                    answered: c.answered,
                    duration_ms: c.duration_ms,
                    end: c.end,
                    corrected: c.corrected,
                });
                row(CallRow {
                    call_id,
                    call: call.as_ref(),
                    reported: reported.as_ref(),
                    items: item.as_slice(),
                    truth: t.as_ref(),
                });
            }
            for t in truth_calls.by_ref() {
                row(only_truth(&t));
            }
            Ok(())
        })
        .map_err(store_error("the calls"))?;
    let cycles = checker.cycles();
    let checker_part = heap::enter(Part::Checker);
    let mut finished = checker.finish(&end);
    let exchanges = spill.finish();
    if finished.needs_bodies()
        && let Some(exchanges) = &exchanges
    {
        exchanges.for_each(|e| finished.scan(e));
    }
    drop(checker_part);
    if let Some(kept) = &mut kept {
        kept.teams_numbers = facts.teams_numbers.clone();
        kept.probes = facts.probes.clone();
        kept.signature_probes = facts.signature_probes.clone();
        kept.isolation_probes = facts.isolation_probes.clone();
        kept.judged_at = facts.judged_at;
    }
    Ok(Judgement {
        result: finished.result(),
        figures: figures.finish(),
        cycles,
        exchanges,
        history: kept,
        closed_calls,
    })
}
