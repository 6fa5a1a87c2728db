//! The ground truth: per call, what Teams recorded, what the carrier reported, what was done to
//! it and the reconciliation class and flags Teams must give it (PROTOCOL.md 3.5).

use oc_protocol::{ReconClass, ReconCounts, ReconFlagCounts, UnixMillis, format_timestamp};

use crate::drift::DriftModel;
use crate::ledger::{AcceptedRef, CallRef, Ledger, Origin};
use crate::profile::Profile;

pub use oc_observe::{CallTruth, GroundTruth, ReportedDuration};

/// The settings the ground truth is computed with.
pub(crate) struct TruthSettings<'a> {
    pub(crate) seed: u64,
    pub(crate) profile: Profile,
    pub(crate) tolerance_ms: i64,
    pub(crate) deadline_ms: i64,
    pub(crate) drift: &'a [DriftModel],
}

/// The ground truth of every call in `ledger` that reconciliation covers, one at a time, in
/// call-id order.
pub(crate) fn call_truths<'a>(
    ledger: &'a Ledger,
    settings: &'a TruthSettings<'_>,
) -> impl Iterator<Item = CallTruth> + 'a {
    ledger
        .calls_by_id()
        .filter_map(|call| call_truth(call, settings))
}

/// What the ground truth counts: calls by class and by flag.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    /// Calls counted.
    pub(crate) calls: u64,
    pub(crate) counts: ReconCounts,
    pub(crate) flags: ReconFlagCounts,
}

impl Tally {
    pub(crate) fn add(&mut self, call: &CallTruth) {
        self.calls += 1;
        match call.expected_class {
            Some(ReconClass::Matched) => self.counts.matched += 1,
            Some(ReconClass::Drift) => self.counts.drift += 1,
            Some(ReconClass::Missing) => self.counts.missing += 1,
            Some(ReconClass::Unexpected) => self.counts.unexpected += 1,
            None => {}
        }
        self.flags.late += u64::from(call.late);
        self.flags.duplicate += u64::from(call.duplicate);
        self.flags.corrected += u64::from(call.corrected);
    }
}

/// The ground truth of everything in `ledger`: the calls it holds, listed and counted, and
/// those it retired, counted.
pub(crate) fn ground_truth(ledger: &Ledger, settings: &TruthSettings<'_>) -> GroundTruth {
    let retired = ledger.retired;
    let mut tally = retired;
    let mut calls = Vec::new();
    for call in call_truths(ledger, settings) {
        tally.add(&call);
        calls.push(call);
    }
    GroundTruth {
        seed: settings.seed,
        profile: settings.profile,
        broken_rule: settings.profile.rule(),
        tolerance_ms: settings.tolerance_ms,
        deadline_ms: settings.deadline_ms,
        drift: settings.drift.to_vec(),
        counts: tally.counts,
        flags: tally.flags,
        retired: retired.calls,
        calls,
    }
}

/// The ground truth of one call, or `None` when reconciliation does not cover it.
pub(crate) fn call_truth(call: CallRef<'_>, settings: &TruthSettings<'_>) -> Option<CallTruth> {
    let teams = call.teams();
    let teams_times = teams.and_then(|t| t.times);
    let teams_duration = teams_times.map(|t| t.duration());
    if teams_duration.is_none() && !call.has_reports() && call.origin() == Origin::Cdr {
        // An unanswered call nobody reported: outside reconciliation.
        return None;
    }
    let accepted = call.reports();
    let carrier = accepted.last().map(AcceptedRef::duration_ms);
    let teams_known = teams.is_some() || call.origin() == Origin::Fabricated;
    let expected_class =
        expected_class(teams_duration, teams_known, carrier, settings.tolerance_ms);
    let reference_end = teams_times
        .or(call.leg())
        .or_else(|| call.view_times())
        .map(|t| t.end);
    let late = match (accepted.first(), reference_end) {
        (Some(first), Some(end)) => is_late(first.at, end, settings.deadline_ms),
        _ => false,
    };
    let pairs = || accepted.windows(2);
    let duplicate = pairs().any(|w| w[0].same_record(&w[1]));
    let corrected = pairs().any(|w| !w[0].same_record(&w[1]));
    let mut tags: Vec<String> = call.view_tags().iter().map(|t| (*t).to_owned()).collect();
    if call.skipped() {
        tags.push("skipped_page".to_owned());
    }
    if call.not_assigned() && accepted.is_empty() {
        tags.push("not_assigned_at_connect".to_owned());
    }
    if call.rejected() {
        tags.push("rejected".to_owned());
    }
    Some(CallTruth {
        call_id: call.call_id().to_owned(),
        telephone_number: call.telephone_number().to_owned(),
        origin: match call.origin() {
            Origin::Cdr => "cdr",
            Origin::Leg => "leg",
            Origin::Fabricated => "fabricated",
        }
        .to_owned(),
        teams_version: teams.map(|t| t.version),
        teams_duration_ms: teams_duration,
        leg_duration_ms: call.leg().map(|t| t.duration()),
        switch_duration_ms: call.view_times().map(|t| t.duration()),
        reported: accepted
            .iter()
            .map(|a| ReportedDuration {
                duration_ms: a.duration_ms(),
                reported_at: format_timestamp(a.at),
                idempotency_key: a.key.to_owned(),
            })
            .collect(),
        tags,
        expected_class,
        late,
        duplicate,
        corrected,
    })
}

/// The class of PROTOCOL.md 3.5 for a call with Teams' answered duration `teams` and the
/// carrier's latest reported duration `carrier`. `teams_known`: the carrier read Teams' record
/// of the call (or knows there is none, for a fabricated call).
pub(crate) fn expected_class(
    teams: Option<i64>,
    teams_known: bool,
    carrier: Option<i64>,
    tolerance_ms: i64,
) -> Option<ReconClass> {
    match (teams, carrier) {
        (Some(t), Some(c)) if (c - t).abs() <= tolerance_ms => Some(ReconClass::Matched),
        (Some(_), Some(_)) => Some(ReconClass::Drift),
        (Some(_), None) => Some(ReconClass::Missing),
        (None, Some(_)) if teams_known => Some(ReconClass::Unexpected),
        (None, _) => None,
    }
}

/// Whether a first report at `at` is after the deadline for a call that ended at `end`.
pub(crate) fn is_late(at: UnixMillis, end: UnixMillis, deadline_ms: i64) -> bool {
    at > end + deadline_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_follow_the_tolerance_inclusively() {
        let class = |t, c| expected_class(t, true, c, 1000);
        assert_eq!(class(Some(60_000), Some(61_000)), Some(ReconClass::Matched));
        assert_eq!(class(Some(60_000), Some(58_999)), Some(ReconClass::Drift));
        assert_eq!(class(Some(60_000), Some(59_000)), Some(ReconClass::Matched));
        assert_eq!(class(Some(60_000), None), Some(ReconClass::Missing));
        assert_eq!(class(None, Some(1)), Some(ReconClass::Unexpected));
        assert_eq!(class(None, None), None);
        assert_eq!(expected_class(None, false, Some(1), 1000), None);
    }

    #[test]
    fn lateness_is_strictly_after_the_deadline() {
        assert!(!is_late(1_000 + 86_400_000, 1_000, 86_400_000));
        assert!(is_late(1_001 + 86_400_000, 1_000, 86_400_000));
    }
}
