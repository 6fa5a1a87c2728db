//! The duration rules (PROTOCOL.md 2.3, 3.4, 3.5), each a state machine over the run.
//!
//! DUR-SCHEMA and DUR-IDEMPOTENT judge each call-durations request of the carrier, with Teams'
//! answer, as it is observed. DUR-DUPLICATE, DUR-DEADLINE, DUR-COMPLETE and DUR-UNEXPECTED judge
//! each call row at the end, from what Teams received for the call (when, what, whether again:
//! [`ReportedCall`](oc_observe::ReportedCall)) and the call Teams had
//! ([`CallFact`](crate::checker::history::CallFact)), not from Teams' reconciliation (a separate
//! reading of the same facts, for the report). DUR-FIDELITY keeps the certification legs the
//! harness posted and the durations reported for them; a simulation posts none, and then it
//! keeps nothing. Their state grows with report requests at most (DUR-IDEMPOTENT's keys), never
//! with calls.

use std::collections::BTreeMap;

use oc_observe::{Exchange, ExchangeDetail, ExchangeDirection, InjectedFault};
use oc_protocol::durations::parse_duration_report;
use oc_protocol::problem::ProblemKind;
use oc_protocol::{
    DurationReportResponse, IDEMPOTENCY_KEY_HEADER, Problem, RuleId, format_timestamp, paths,
};

use super::{Tally, count, harness_caused, header, not_exercised, path_of};
use crate::checker::history::{CheckSettings, LegFact};
use crate::checker::stream::{CallRow, End, Judged, Observation, Rule};

/// The call-durations request of the carrier an observation is, when Teams really answered it.
fn report<'a>(observation: &Observation<'a>) -> Option<&'a Exchange> {
    match *observation {
        Observation::Exchange(e)
            if e.direction == ExchangeDirection::CarrierToTeams
                && path_of(&e.url) == paths::CALL_DURATIONS
                && !harness_caused(e) =>
        {
            Some(e)
        }
        _ => None,
    }
}

fn is_report(e: &Exchange) -> bool {
    matches!(e.detail, Some(ExchangeDetail::DurationReport { .. }))
}

fn is_replayed(e: &Exchange) -> bool {
    matches!(
        e.detail,
        Some(ExchangeDetail::DurationReport { replayed: true, .. })
    )
}

fn answer_lost(e: &Exchange) -> bool {
    matches!(e.fault, Some(InjectedFault::AnswerLost { .. }))
}

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

/// Teams' problem body, when it was kept whole.
fn problem(e: &Exchange) -> Option<Problem> {
    serde_json::from_str(e.response_body.as_deref()?).ok()
}

/// A 400 that refused the body itself: not JSON of the expected shape, or a record count out
/// of range.
fn malformed_body(e: &Exchange) -> Option<String> {
    if e.status != Some(400) {
        return None;
    }
    match problem(e) {
        Some(p) => {
            let body_errors: Vec<String> = p
                .errors
                .iter()
                .filter(|f| f.pointer.is_some())
                .map(ToString::to_string)
                .collect();
            if p.kind == ProblemKind::MalformedBody.type_uri() || !body_errors.is_empty() {
                Some(if body_errors.is_empty() {
                    p.detail.unwrap_or(p.title)
                } else {
                    body_errors.join("; ")
                })
            } else {
                None
            }
        }
        // Cut at the capture limit: recognise the kind by its URI.
        None => e
            .response_body
            .as_deref()
            .filter(|b| b.contains(ProblemKind::MalformedBody.type_uri()))
            .map(|_| "the body is malformed".to_owned()),
    }
}

/// A 400 that names the `Idempotency-Key` header.
fn missing_key(e: &Exchange) -> Option<String> {
    if e.status != Some(400) {
        return None;
    }
    let named = |h: &Option<String>| {
        h.as_deref()
            .is_some_and(|h| h.eq_ignore_ascii_case(IDEMPOTENCY_KEY_HEADER))
    };
    match problem(e) {
        Some(p) => p
            .errors
            .iter()
            .find(|f| named(&f.header))
            .map(ToString::to_string),
        None => e
            .response_body
            .as_deref()
            .filter(|b| b.contains(&format!("\"header\":\"{IDEMPOTENCY_KEY_HEADER}\"")))
            .map(|_| format!("header {IDEMPOTENCY_KEY_HEADER} is invalid")),
    }
}

/// DUR-SCHEMA: no report had records rejected, and no report body was refused as malformed.
pub(super) struct DurSchema {
    tally: Tally,
    /// The call-durations requests judged.
    judged: u64,
}

impl DurSchema {
    pub(super) fn new() -> Self {
        Self {
            tally: Tally::new(RuleId::DurSchema),
            judged: 0,
        }
    }
}

impl Rule for DurSchema {
    fn observe(&mut self, observation: &Observation<'_>) {
        let Some(e) = report(observation) else {
            return;
        };
        self.judged += 1;
        match &e.detail {
            // A replay repeats the first answer; that one was counted already.
            Some(ExchangeDetail::DurationReport {
                key,
                accepted,
                rejected,
                replayed: false,
            }) if *rejected > 0 => self.tally.fail(|| {
                let errors: Vec<String> = e
                    .response_body
                    .as_deref()
                    .and_then(|b| serde_json::from_str::<DurationReportResponse>(b).ok())
                    .map(|r| {
                        r.rejected
                            .iter()
                            .flat_map(|rec| rec.errors.iter().map(ToString::to_string))
                            .take(3)
                            .collect()
                    })
                    .unwrap_or_default();
                let errors = if errors.is_empty() {
                    String::new()
                } else {
                    format!(": {}", errors.join("; "))
                };
                (
                    format!(
                        "the report at seq {} (key {key}) had {} rejected and {accepted} \
                         accepted{errors}",
                        e.seq,
                        count(*rejected, "record"),
                    ),
                    vec![e.seq],
                )
            }),
            _ => {
                if let Some(why) = malformed_body(e) {
                    self.tally.fail(|| {
                        (
                            format!(
                                "the report at seq {} was refused as malformed: {why}",
                                e.seq
                            ),
                            vec![e.seq],
                        )
                    });
                }
            }
        }
    }

    fn finish(self: Box<Self>, _end: &End<'_>) -> Judged {
        let Self { mut tally, judged } = *self;
        tally.exercised("call-durations requests", judged, 1);
        let failures = tally.failures();
        tally.finish(format!(
            "{} checked; {failures} with malformed records",
            count(judged, "call-durations request")
        ))
    }
}

/// The least reports whose answer Teams lost that exercise DUR-IDEMPOTENT: without one, a
/// carrier never has to retry, and how it would is unknown.
const MIN_LOST: u64 = 1;

/// DUR-IDEMPOTENT: no key was reused with another body (422), and no request went without a
/// valid `Idempotency-Key` (400 naming the header).
pub(super) struct DurIdempotent {
    tally: Tally,
    /// The call-durations requests judged.
    judged: u64,
    /// Key → the first request Teams applied under it: one per report, so it grows with the
    /// pages of calls reported, not with the calls.
    first_use: BTreeMap<String, u64>,
    /// Reports whose answer Teams lost after applying them.
    lost: u64,
    /// Retries Teams answered from memory (same key and body).
    replayed: u64,
}

impl DurIdempotent {
    pub(super) fn new() -> Self {
        Self {
            tally: Tally::new(RuleId::DurIdempotent),
            judged: 0,
            first_use: BTreeMap::new(),
            lost: 0,
            replayed: 0,
        }
    }
}

impl Rule for DurIdempotent {
    fn observe(&mut self, observation: &Observation<'_>) {
        let Some(e) = report(observation) else {
            return;
        };
        self.judged += 1;
        self.lost += u64::from(answer_lost(e));
        self.replayed += u64::from(is_replayed(e));
        let key = header(e, IDEMPOTENCY_KEY_HEADER);
        if e.status == Some(422) {
            let first_use = &self.first_use;
            self.tally.fail(|| {
                let key = key.unwrap_or("?");
                let first = first_use.get(key).copied();
                let earlier = first.map_or_else(String::new, |seq| format!(" at seq {seq}"));
                (
                    format!(
                        "the report at seq {} reused Idempotency-Key {key} with another body \
                         than its first use{earlier}, and got 422",
                        e.seq
                    ),
                    first.into_iter().chain([e.seq]).collect(),
                )
            });
        } else if let Some(why) = missing_key(e) {
            self.tally.fail(|| {
                (
                    format!("the report at seq {} was refused: {why}", e.seq),
                    vec![e.seq],
                )
            });
        }
        if is_report(e)
            && let Some(key) = key
            && !self.first_use.contains_key(key)
        {
            self.first_use.insert(key.to_owned(), e.seq);
        }
    }

    fn finish(self: Box<Self>, _end: &End<'_>) -> Judged {
        let Self {
            mut tally,
            judged,
            lost,
            replayed,
            ..
        } = *self;
        tally.exercised(
            "reports whose answer Teams lost after applying them",
            lost,
            MIN_LOST,
        );
        tally.exercised(
            "retries answered from memory (same key and body)",
            replayed,
            0,
        );
        let failures = tally.failures();
        tally.finish(format!(
            "{} checked, {} of them answered 503 after being applied, {} retried with the same \
             key and body; {failures} misused the Idempotency-Key",
            count(judged, "call-durations request"),
            lost,
            replayed
        ))
    }
}

/// What a duration rule judging call rows counted: the calls it judged, and the failures among
/// them, whose evidence cites the exchanges that name the call (found after the run).
struct Calls {
    tally: Tally,
    /// The calls judged.
    judged: u64,
    /// What the judged calls are, e.g. `answered call`.
    what: &'static str,
    /// What the failing ones did, e.g. `never reported`.
    found: &'static str,
}

impl Calls {
    fn new(rule: RuleId, what: &'static str, found: &'static str) -> Self {
        Self {
            tally: Tally::new(rule),
            judged: 0,
            what,
            found,
        }
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
        if failed {
            self.tally
                .fail_mentioning(call_id, shown_by, || (note(), Vec::new()));
        }
    }

    /// The verdict. `also_exercised` is one more thing the run must have exercised, when the
    /// rule has one (what, and how many); `diagnosis` why failing calls probably failed, when
    /// the run shows a cause.
    fn finish(self, also_exercised: Option<(&str, u64)>, diagnosis: Option<String>) -> Judged {
        let Self {
            mut tally,
            judged,
            what,
            found,
        } = self;
        let failures = tally.failures();
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
pub(super) struct DurDuplicate {
    calls: Calls,
}

impl DurDuplicate {
    pub(super) fn new() -> Self {
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
pub(super) struct DurDeadline {
    calls: Calls,
    /// The reporting deadline after a call's end, simulated ms.
    deadline_ms: i64,
}

impl DurDeadline {
    pub(super) fn new(settings: &CheckSettings) -> Self {
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
pub(super) struct DurComplete {
    calls: Calls,
    /// The carrier's last request to Teams so far: its seq and Teams' status. Answered 429, it
    /// explains the calls never reported: the carrier stopped calling after a 429.
    last_request: Option<(u64, Option<u16>)>,
}

impl DurComplete {
    pub(super) fn new() -> Self {
        Self {
            calls: Calls::new(RuleId::DurComplete, "answered call", "never reported"),
            last_request: None,
        }
    }
}

impl Rule for DurComplete {
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
pub(super) struct DurUnexpected {
    calls: Calls,
    /// The certification legs posted (none in a simulation).
    legs: u64,
    /// Those on numbers not assigned at their connect time.
    unassigned_legs: u64,
}

impl DurUnexpected {
    pub(super) fn new() -> Self {
        Self {
            calls: Calls::new(RuleId::DurUnexpected, "reported call", "unexpected"),
            legs: 0,
            unassigned_legs: 0,
        }
    }
}

impl Rule for DurUnexpected {
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

/// DUR-FIDELITY: every duration reported for a certification leg equals the leg's
/// `endDateTime − connectDateTime`. The reports are read from the bodies Teams received (the
/// certification keeps them whole); a body cut at the capture limit is counted, not judged.
///
/// Its state is the legs (a certification's: one per call it played on the wall clock, few)
/// and what was posted and reported of them; a simulation posts none, and then it reads no
/// report and keeps nothing.
#[derive(Default)]
pub(super) struct DurFidelity {
    /// The legs posted, by call id.
    legs: BTreeMap<String, LegFact>,
    /// How many legs were posted.
    posted: u64,
    /// The exchanges that posted each leg to the carrier, by call id.
    posts: BTreeMap<String, Vec<u64>>,
    /// Every applied duration reported for a leg, in the order Teams received them, with its
    /// exchange, by call id.
    reported: BTreeMap<String, Vec<(i64, u64)>>,
    /// Report bodies too large to keep whole.
    unreadable: u64,
}

impl DurFidelity {
    pub(super) fn new() -> Self {
        Self::default()
    }

    fn report(&mut self, e: &Exchange) {
        // A report whose answer Teams lost on purpose was applied all the same.
        let applied = e.status == Some(200) || answer_lost(e);
        if !applied || is_replayed(e) {
            return;
        }
        let Some(parsed) = e
            .request_body
            .as_deref()
            .and_then(|b| parse_duration_report(b.as_bytes()).ok())
        else {
            self.unreadable += 1;
            return;
        };
        for record in parsed.records.into_iter().flatten() {
            if self.legs.contains_key(&record.call_id) {
                self.reported
                    .entry(record.call_id)
                    .or_default()
                    .push((record.duration_ms, e.seq));
            }
        }
    }
}

impl Rule for DurFidelity {
    fn observe(&mut self, observation: &Observation<'_>) {
        match *observation {
            Observation::Leg(leg) => {
                self.posted += 1;
                self.legs.insert(leg.call_id.clone(), leg.clone());
            }
            Observation::Exchange(e) => {
                if let Some(ExchangeDetail::CallLegs { call_ids }) = &e.detail {
                    for call_id in call_ids {
                        self.posts.entry(call_id.clone()).or_default().push(e.seq);
                    }
                }
                // A leg is observed before any report of it: before the first, no report can
                // be of one.
                if !self.legs.is_empty()
                    && let Some(e) = report(observation)
                {
                    self.report(e);
                }
            }
            Observation::Event(_) | Observation::Cycle(_) => {}
        }
    }

    fn finish(self: Box<Self>, _end: &End<'_>) -> Judged {
        if self.posted == 0 {
            return not_exercised(
                RuleId::DurFidelity,
                "no certification leg was posted (a simulation reports Teams' CDRs)",
            );
        }
        let mut tally = Tally::new(RuleId::DurFidelity);
        let mut judged = 0u64;
        for (call_id, durations) in &self.reported {
            let leg = &self.legs[call_id];
            let want = leg.end - leg.connect;
            judged += durations.len() as u64;
            let wrong: Vec<&(i64, u64)> = durations.iter().filter(|(d, _)| *d != want).collect();
            if wrong.is_empty() {
                continue;
            }
            tally.fail(|| {
                let values: Vec<String> = wrong.iter().map(|(d, _)| format!("{d} ms")).collect();
                (
                    format!(
                        "leg {call_id} on {} lasted {want} ms, but the carrier reported {}",
                        leg.telephone_number,
                        values.join(", ")
                    ),
                    // The post that carried the leg, then the reports.
                    self.posts
                        .get(call_id)
                        .into_iter()
                        .flatten()
                        .copied()
                        .chain(wrong.iter().map(|(_, seq)| *seq))
                        .collect(),
                )
            });
        }
        let unreadable = if self.unreadable == 0 {
            String::new()
        } else {
            format!(
                "; {} too large to keep whole not judged",
                count(self.unreadable, "report body")
            )
        };
        tally.exercised("reported durations of legs judged", judged, 1);
        if judged == 0 {
            return tally.finish(format!(
                "no duration was reported for any of the {} posted{unreadable}",
                count(self.posted, "certification leg")
            ));
        }
        let failures = tally.failures();
        tally.finish(format!(
            "{} of {} judged; {} reported with another duration{unreadable}",
            count(judged, "reported duration"),
            count(self.posted, "leg"),
            count(failures, "leg")
        ))
    }
}

#[cfg(test)]
mod tests {
    use oc_reports::{MAX_EVIDENCE, Outcome};

    use super::*;
    use crate::checker::history::CallFact;

    /// A carrier → Teams request at `seq` to `url`, answered `status`.
    fn request(seq: u64, url: &str, status: u16, body: &str) -> Exchange {
        Exchange {
            seq,
            direction: ExchangeDirection::CarrierToTeams,
            carrier: Some("carrier".into()),
            method: "POST".into(),
            url: url.into(),
            status: Some(status),
            error: None,
            sim_time: 0,
            wall_time_ms: 0,
            latency_us: 1_000,
            request_headers: Vec::new(),
            request_body: Some(body.into()),
            response_body: None,
            fault: None,
            detail: None,
        }
    }

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
    #[test]
    fn dur_complete_counts_every_call_and_keeps_only_the_first_evidence() {
        const CALLS: u64 = 100_000;
        let end = End::default();
        let mut rule = Box::new(DurComplete::new());
        for i in 0..CALLS {
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
        let judged = rule.finish(&end);
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

    /// A simulation posts no legs: DUR-FIDELITY then reads no report and keeps nothing of them.
    /// The same reports after a leg is posted are read.
    #[test]
    fn dur_fidelity_keeps_nothing_without_legs() {
        let body = r#"{"records": [{"callId": "call-1", "telephoneNumber": "+14255550100",
            "connectDateTime": "2026-11-26T09:00:00.000Z",
            "endDateTime": "2026-11-26T09:00:01.000Z", "durationMs": 1000}]}"#;
        let reports = [
            request(2, paths::CALL_DURATIONS, 200, body),
            request(3, paths::CALL_DURATIONS, 200, body),
            request(
                4,
                paths::CALL_DURATIONS,
                200,
                "{\"records\":[…[9000 bytes in all]",
            ),
        ];
        let observe = |rule: &mut DurFidelity| {
            for e in &reports {
                rule.observe(&Observation::Exchange(e));
            }
        };
        let mut simulation = Box::new(DurFidelity::new());
        observe(&mut simulation);
        assert!(simulation.reported.is_empty() && simulation.legs.is_empty());
        assert_eq!(simulation.unreadable, 0);
        let verdict = simulation.finish(&End::default()).verdict;
        assert_eq!(verdict.outcome, Outcome::NotExercised);

        let mut certification = Box::new(DurFidelity::new());
        certification.observe(&Observation::Leg(&LegFact {
            call_id: "call-1".into(),
            telephone_number: "+14255550100".into(),
            connect: 0,
            end: 1_000,
            assigned: true,
        }));
        observe(&mut certification);
        assert_eq!(certification.reported["call-1"], [(1_000, 2), (1_000, 3)]);
        assert_eq!(certification.unreadable, 1);
        let verdict = certification.finish(&End::default()).verdict;
        assert_eq!(verdict.outcome, Outcome::Passed, "{verdict:#?}");
    }
}
