//! DUR-DUPLICATE, DUR-DEADLINE, DUR-COMPLETE and DUR-UNEXPECTED: each call row judged at the
//! end, from what Teams received for the call ([`ReportedCall`](oc_observe::ReportedCall)) and
//! the call Teams had ([`CallFact`](crate::checker::history::CallFact)). A failing call's
//! evidence cites the exchanges that name it, found after the run, so nothing of the calls is
//! kept.

use oc_observe::{Exchange, ExchangeDetail, ExchangeDirection};
use oc_protocol::{RuleId, format_timestamp, paths};

use super::is_report;
use crate::checker::first::FirstById;
use crate::checker::history::CheckSettings;
use crate::checker::rules::{Tally, count, path_of};
use crate::checker::stream::{CallRow, End, Judged, Observation, Rule};

/// A post of certification legs to the carrier: what told it of a call.
fn is_call_legs(e: &Exchange) -> bool {
    matches!(e.detail, Some(ExchangeDetail::CallLegs { .. }))
}

/// Where the carrier learnt of a call: Teams' CDR pages, or (certification) the legs post.
fn is_cdr_page_or_legs(e: &Exchange) -> bool {
    is_cdr_page(e) || is_call_legs(e)
}

fn is_cdr_page(e: &Exchange) -> bool {
    matches!(&e.detail, Some(ExchangeDetail::FeedPage { feed, .. }) if feed == "cdr")
        || (path_of(&e.url) == paths::CDRS && e.status == Some(200))
}

/// What a duration rule judging call rows counted: the calls it judged, and the failures among
/// them, whose evidence cites the exchanges that name the call (found after the run). The
/// evidence is that of the failing calls first in call-id order, whatever order the calls came
/// in (as they close, or at the end), so that a run's evidence is the same however its calls
/// were judged, and shards' merge to it (the merge keeps the first notes, which begin with the
/// call id).
struct Calls {
    tally: Tally,
    /// The calls judged.
    judged: u64,
    /// The failures counted.
    failures: u64,
    /// The failing calls cited: note, and the kind of exchange that names the call.
    first: FirstById<(String, ShownBy)>,
    /// What the judged calls are, e.g. `answered call`.
    what: &'static str,
    /// What the failing ones did, e.g. `never reported`.
    found: &'static str,
}

/// The kind of exchange that names a call.
type ShownBy = fn(&Exchange) -> bool;

impl Calls {
    fn new(rule: RuleId, what: &'static str, found: &'static str) -> Self {
        Self {
            tally: Tally::new(rule),
            judged: 0,
            failures: 0,
            first: FirstById::default(),
            what,
            found,
        }
    }

    fn failures(&self) -> u64 {
        self.failures
    }

    /// Counts `call_id` judged; when it `failed`, a failure saying `note` that also cites the
    /// exchanges of a kind (`shown_by`) whose body names the call.
    fn judge(
        &mut self,
        call_id: &str,
        failed: bool,
        shown_by: fn(&Exchange) -> bool,
        note: impl FnOnce() -> String,
    ) {
        self.judged += 1;
        if !failed {
            return;
        }
        self.failures += 1;
        self.first.offer(call_id, || (note(), shown_by));
    }

    /// The verdict. `also_exercised` is one more thing the run must have exercised, when the
    /// rule has one (what, and how many); `diagnosis` why failing calls probably failed, when
    /// the run shows a cause.
    fn finish(self, also_exercised: Option<(&str, u64)>, diagnosis: Option<String>) -> Judged {
        let Self {
            mut tally,
            judged,
            failures,
            first,
            what,
            found,
        } = self;
        let cited = first.len() as u64;
        for (call_id, (note, shown_by)) in first.into_kept() {
            tally.fail_mentioning(&call_id, shown_by, || (note, Vec::new()));
        }
        tally.fail_uncited(failures - cited);
        tally.exercised(format!("{what}s judged"), judged, 1);
        if let Some((what, n)) = also_exercised {
            tally.exercised(what, n, 1);
        }
        let diagnosis = diagnosis
            .filter(|_| failures > 0)
            .map_or_else(String::new, |why| format!("{failures} {found} — {why}; "));
        tally.finish(if judged == 0 {
            format!("the run has no {what}")
        } else {
            format!(
                "{diagnosis}{} judged; {failures} {found}",
                count(judged, what)
            )
        })
    }
}

/// DUR-DUPLICATE (should): no call was reported again identically.
pub(crate) struct DurDuplicate {
    calls: Calls,
}

impl DurDuplicate {
    pub(crate) fn new() -> Self {
        Self {
            calls: Calls::new(
                RuleId::DurDuplicate,
                "reported call",
                "reported again identically",
            ),
        }
    }
}

impl Rule for DurDuplicate {
    fn failures_so_far(&self) -> u64 {
        self.calls.failures()
    }

    fn call(&mut self, row: &CallRow<'_>, _end: &End<'_>) {
        let Some(r) = row.reported else {
            return;
        };
        self.calls.judge(row.call_id, r.repeated, is_report, || {
            format!(
                "call {} on {} was reported more than once with the same record ({} ms)",
                r.call_id, r.telephone_number, r.duration_ms
            )
        });
    }

    fn finish(self: Box<Self>, _end: &End<'_>) -> Judged {
        self.calls.finish(None, None)
    }
}

/// DUR-DEADLINE: no call Teams had was first reported later than the deadline after its end.
pub(crate) struct DurDeadline {
    calls: Calls,
    /// The reporting deadline after a call's end, simulated ms.
    deadline_ms: i64,
}

impl DurDeadline {
    pub(crate) fn new(settings: &CheckSettings) -> Self {
        Self {
            calls: Calls::new(
                RuleId::DurDeadline,
                "reported call",
                "first reported after the deadline",
            ),
            deadline_ms: settings.deadline_ms,
        }
    }
}

impl Rule for DurDeadline {
    fn failures_so_far(&self) -> u64 {
        self.calls.failures()
    }

    fn call(&mut self, row: &CallRow<'_>, _end: &End<'_>) {
        let (Some(c), Some(r)) = (row.call, row.reported) else {
            return;
        };
        let deadline_ms = self.deadline_ms;
        let late = r.first_reported > c.end + deadline_ms;
        self.calls.judge(row.call_id, late, is_report, || {
            format!(
                "call {} on {}, which ended at {}, was first reported at {}, more than {} ms \
                 after its end",
                r.call_id,
                r.telephone_number,
                format_timestamp(c.end),
                format_timestamp(r.first_reported),
                deadline_ms
            )
        });
    }

    fn finish(self: Box<Self>, _end: &End<'_>) -> Judged {
        self.calls.finish(None, None)
    }
}

/// DUR-COMPLETE: every answered call Teams had, ended by the end of the run, was reported.
pub(crate) struct DurComplete {
    calls: Calls,
    /// The carrier's last request to Teams so far: its seq and Teams' status. Answered 429, it
    /// explains the calls never reported: the carrier stopped calling after a 429.
    last_request: Option<(u64, Option<u16>)>,
}

impl DurComplete {
    pub(crate) fn new() -> Self {
        Self {
            calls: Calls::new(RuleId::DurComplete, "answered call", "never reported"),
            last_request: None,
        }
    }
}

impl Rule for DurComplete {
    fn failures_so_far(&self) -> u64 {
        self.calls.failures()
    }

    fn observe(&mut self, observation: &Observation<'_>) {
        if let Observation::Exchange(e) = observation
            && e.direction == ExchangeDirection::CarrierToTeams
        {
            self.last_request = Some((e.seq, e.status));
        }
    }

    fn call(&mut self, row: &CallRow<'_>, end: &End<'_>) {
        // A call still going when the run was judged is not yet due a report.
        let Some(c) = row
            .call
            .filter(|c| c.answered && end.judged_at.is_none_or(|at| c.end <= at))
        else {
            return;
        };
        let never_reported = row.reported.is_none();
        self.calls
            .judge(row.call_id, never_reported, is_cdr_page_or_legs, || {
                format!(
                    "answered call {} on {} (Teams: {} ms, ended at {}) was never reported",
                    c.call_id,
                    c.telephone_number,
                    c.duration_ms,
                    format_timestamp(c.end)
                )
            });
    }

    fn finish(self: Box<Self>, _end: &End<'_>) -> Judged {
        let stopped_after_429 = self
            .last_request
            .filter(|(_, status)| *status == Some(429))
            .map(|(seq, _)| {
                format!("the carrier made no request after the 429 at seq {seq} (see CDR-THROTTLE)")
            });
        self.calls.finish(None, stopped_after_429)
    }
}

/// DUR-UNEXPECTED: nothing was reported but the answered calls Teams had.
pub(crate) struct DurUnexpected {
    calls: Calls,
    /// The certification legs posted (none in a simulation).
    legs: u64,
    /// Those on numbers not assigned at their connect time.
    unassigned_legs: u64,
}

impl DurUnexpected {
    pub(crate) fn new() -> Self {
        Self {
            calls: Calls::new(RuleId::DurUnexpected, "reported call", "unexpected"),
            legs: 0,
            unassigned_legs: 0,
        }
    }
}

impl Rule for DurUnexpected {
    fn failures_so_far(&self) -> u64 {
        self.calls.failures()
    }

    fn observe(&mut self, observation: &Observation<'_>) {
        if let Observation::Leg(leg) = observation {
            self.legs += 1;
            self.unassigned_legs += u64::from(!leg.assigned);
        }
    }

    fn call(&mut self, row: &CallRow<'_>, _end: &End<'_>) {
        let Some(r) = row.reported else {
            return;
        };
        let unexpected = !row.call.is_some_and(|c| c.answered);
        self.calls.judge(row.call_id, unexpected, is_report, || {
            let why = match row.call {
                Some(_) => "Teams has that call, but it was not answered",
                None => {
                    "Teams has no such call of this carrier, or the number was not the \
                     carrier's then"
                }
            };
            format!(
                "call {} on {} was reported ({} ms): {why}",
                r.call_id, r.telephone_number, r.duration_ms
            )
        });
    }

    fn finish(self: Box<Self>, _end: &End<'_>) -> Judged {
        // In a certification, the suite posts legs on numbers that were not assigned at their
        // connect time: without them, a carrier that reports every leg would pass.
        let unassigned = (self.legs > 0).then_some((
            "legs posted on numbers not assigned at connect",
            self.unassigned_legs,
        ));
        self.calls.finish(unassigned, None)
    }
}

#[cfg(test)]
mod tests {
    use oc_reports::{MAX_EVIDENCE, Outcome};

    use super::*;
    use crate::checker::history::CallFact;
    use crate::checker::rules::durations::request;

    fn answered(i: u64) -> CallFact {
        CallFact {
            call_id: format!("call-{i:06}"),
            telephone_number: "+14255550100".into(),
            answered: true,
            duration_ms: 30_000,
            end: 0,
            corrected: false,
        }
    }

    /// DUR-COMPLETE is a fold over the rows: over 100,000 answered calls never reported it counts
    /// every one, keeps the first MAX_EVIDENCE as evidence (each with one lookup of the
    /// exchanges naming it), and nothing else of the rows.
    /// DUR-COMPLETE's verdict on the answered calls numbered `calls`, in that order, none
    /// reported.
    fn never_reported(calls: impl IntoIterator<Item = u64>) -> Judged {
        let end = End::default();
        let mut rule = Box::new(DurComplete::new());
        for i in calls {
            let call = answered(i);
            let row = CallRow {
                call_id: &call.call_id,
                call: Some(&call),
                reported: None,
                items: &[],
                truth: None,
            };
            rule.call(&row, &end);
        }
        rule.finish(&end)
    }

    #[test]
    fn dur_complete_counts_every_call_and_keeps_only_the_first_evidence() {
        const CALLS: u64 = 100_000;
        let judged = never_reported(0..CALLS);
        let verdict = &judged.verdict;
        assert_eq!(verdict.outcome, Outcome::Failed);
        assert_eq!(verdict.failures, CALLS);
        assert_eq!(verdict.exercised[0].count, CALLS);
        assert_eq!(verdict.evidence.len(), MAX_EVIDENCE);
        assert_eq!(judged.lookups.len(), MAX_EVIDENCE);
        assert!(
            verdict.evidence[MAX_EVIDENCE - 1]
                .note
                .contains("call-000019"),
            "{verdict:#?}"
        );
    }

    /// The evidence is that of the failing calls first in call-id order, whatever order the
    /// calls were judged in (a run judges them as they close): judged backwards, or odd ids
    /// first, DUR-COMPLETE cites the same calls, in the same order, as judged in id order.
    #[test]
    fn dur_complete_cites_the_first_calls_by_id_whatever_order_they_come_in() {
        let cite = |order: Vec<u64>| {
            let failures = order.len() as u64;
            let judged = never_reported(order);
            assert_eq!(judged.verdict.failures, failures);
            let lookups: Vec<usize> = judged.lookups.iter().map(|l| l.evidence).collect();
            assert_eq!(lookups, (0..MAX_EVIDENCE).collect::<Vec<_>>());
            judged
                .verdict
                .evidence
                .into_iter()
                .map(|e| e.note)
                .collect::<Vec<_>>()
        };
        let in_order: Vec<u64> = (0..500).collect();
        let backwards: Vec<u64> = (0..500).rev().collect();
        let odd_first: Vec<u64> = (0..500)
            .filter(|i| i % 2 == 1)
            .chain((0..500).step_by(2))
            .collect();
        let want = cite(in_order);
        assert!(want[0].contains("call-000000") && want[MAX_EVIDENCE - 1].contains("call-000019"));
        assert_eq!(cite(backwards), want);
        assert_eq!(cite(odd_first), want);
    }

    /// DUR-COMPLETE's diagnosis folds over the exchanges: only the carrier's last request
    /// answered 429 explains the calls never reported.
    #[test]
    fn dur_complete_diagnoses_a_carrier_that_stopped_after_a_429() {
        let end = End::default();
        let call = answered(1);
        let row = CallRow {
            call_id: &call.call_id,
            call: Some(&call),
            reported: None,
            items: &[],
            truth: None,
        };
        let throttled = request(7, paths::CALL_DURATIONS, 429, "{}");
        let later = request(8, paths::CDRS, 200, "");
        let judge = |exchanges: &[&Exchange]| {
            let mut rule = Box::new(DurComplete::new());
            for e in exchanges {
                rule.observe(&Observation::Exchange(e));
            }
            rule.call(&row, &end);
            rule.finish(&end).verdict.summary
        };
        assert_eq!(
            judge(&[&throttled]),
            "1 never reported — the carrier made no request after the 429 at seq 7 (see \
             CDR-THROTTLE); 1 answered call judged; 1 never reported"
        );
        assert_eq!(
            judge(&[&throttled, &later]),
            "1 answered call judged; 1 never reported"
        );
    }
}
