//! The duration rules (PROTOCOL.md 2.3, 3.4, 3.5): DUR-SCHEMA and DUR-IDEMPOTENT from the
//! carrier's call-durations requests and Teams' answers; DUR-DUPLICATE, DUR-DEADLINE,
//! DUR-COMPLETE and DUR-UNEXPECTED decided here from what Teams received for each reported
//! call (when, what, whether again) and the calls Teams had, not from Teams' reconciliation;
//! DUR-FIDELITY from the certification legs the harness posted and the reports Teams received.

use std::collections::BTreeMap;

use crate::checker::stream::Judged;
use oc_observe::{Exchange, ExchangeDetail, ExchangeDirection, InjectedFault};
use oc_protocol::durations::parse_duration_report;
use oc_protocol::problem::ProblemKind;
use oc_protocol::{
    DurationReportResponse, IDEMPOTENCY_KEY_HEADER, Problem, RuleId, format_timestamp, paths,
};

use super::{Tally, count, harness_caused, header, not_exercised, path_of};
use crate::checker::History;
use crate::checker::history::{CallFact, LegFact};
use oc_observe::ReportedCall;

/// The carrier's call-durations requests that Teams really answered.
fn reports(history: &History) -> impl Iterator<Item = &Exchange> {
    history.exchanges.iter().filter(|e| {
        e.direction == ExchangeDirection::CarrierToTeams
            && path_of(&e.url) == paths::CALL_DURATIONS
            && !harness_caused(e)
    })
}

fn is_report(e: &Exchange) -> bool {
    matches!(e.detail, Some(ExchangeDetail::DurationReport { .. }))
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
pub(super) fn dur_schema(history: &History) -> Judged {
    let mut tally = Tally::new(RuleId::DurSchema);
    let mut judged = 0u64;
    for e in reports(history) {
        judged += 1;
        match &e.detail {
            // A replay repeats the first answer; that one was counted already.
            Some(ExchangeDetail::DurationReport {
                key,
                accepted,
                rejected,
                replayed: false,
            }) if *rejected > 0 => tally.fail(|| {
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
                    tally.fail(|| {
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
    tally.exercised("call-durations requests", judged, 1);
    let failures = tally.failures();
    tally.finish(format!(
        "{} checked; {failures} with malformed records",
        count(judged, "call-durations request")
    ))
}

/// The least reports whose answer Teams lost that exercise DUR-IDEMPOTENT: without one, a
/// carrier never has to retry, and how it would is unknown.
const MIN_LOST: u64 = 1;

/// DUR-IDEMPOTENT: no key was reused with another body (422), and no request went without a
/// valid `Idempotency-Key` (400 naming the header).
pub(super) fn dur_idempotent(history: &History) -> Judged {
    let mut tally = Tally::new(RuleId::DurIdempotent);
    let mut judged = 0u64;
    // key → the first request Teams applied under it.
    let mut first_use: BTreeMap<&str, u64> = BTreeMap::new();
    for e in reports(history) {
        judged += 1;
        let key = header(e, IDEMPOTENCY_KEY_HEADER);
        if e.status == Some(422) {
            tally.fail(|| {
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
            tally.fail(|| {
                (
                    format!("the report at seq {} was refused: {why}", e.seq),
                    vec![e.seq],
                )
            });
        }
        if is_report(e)
            && let Some(key) = key
        {
            first_use.entry(key).or_insert(e.seq);
        }
    }
    let lost = reports(history)
        .filter(|e| matches!(e.fault, Some(InjectedFault::AnswerLost { .. })))
        .count() as u64;
    let replayed = reports(history)
        .filter(|e| {
            matches!(
                e.detail,
                Some(ExchangeDetail::DurationReport { replayed: true, .. })
            )
        })
        .count() as u64;
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

/// The calls a duration rule judges, one kind of item each: Teams' answered calls, or what the
/// carrier reported. The decision is the rule's own, from the facts Teams recorded (what
/// arrived when, [`ReportedCall`]) and the calls Teams had ([`CallFact`]); Teams'
/// reconciliation is a separate reading of the same facts, for the report.
struct Items<T> {
    rule: RuleId,
    /// The items that give the rule something to check.
    items: Vec<T>,
    /// Whether an item breaks the rule.
    fails: fn(&History, &T) -> bool,
    /// What is wrong with one, for a person.
    note: fn(&History, &T) -> String,
    /// The call an item is about.
    call_id: fn(&T) -> &str,
    /// The exchanges that show a failure: those of this kind that name the call.
    evidence_from: fn(&Exchange) -> bool,
    /// What the items are, e.g. `answered call`.
    what: &'static str,
    /// What the failing ones did, e.g. `never reported`.
    found: &'static str,
    /// One more thing the run must have exercised, when it has one (a certification's legs on
    /// unassigned numbers for DUR-UNEXPECTED): what, and how many.
    also_exercised: fn(&History) -> Option<(&'static str, u64)>,
    /// Why the failing items probably failed, when the history shows a cause.
    diagnose: fn(&History) -> Option<String>,
}

fn nothing_more(_: &History) -> Option<(&'static str, u64)> {
    None
}

fn no_diagnosis(_: &History) -> Option<String> {
    None
}

/// A carrier that stopped calling Teams after a 429 (its last request was answered 429).
fn stopped_after_429(history: &History) -> Option<String> {
    let last = history
        .exchanges
        .iter()
        .rev()
        .find(|e| e.direction == ExchangeDirection::CarrierToTeams)?;
    (last.status == Some(429)).then(|| {
        format!(
            "the carrier made no request after the 429 at seq {} (see CDR-THROTTLE)",
            last.seq
        )
    })
}

impl<T> Items<T> {
    fn judge(self, history: &History) -> Judged {
        let judged = self.items.len() as u64;
        let mut tally = Tally::new(self.rule);
        for item in self.items.iter().filter(|i| (self.fails)(history, i)) {
            tally.fail_mentioning((self.call_id)(item), self.evidence_from, || {
                ((self.note)(history, item), Vec::new())
            });
        }
        let failures = tally.failures();
        tally.exercised(format!("{}s judged", self.what), judged, 1);
        if let Some((what, n)) = (self.also_exercised)(history) {
            tally.exercised(what, n, 1);
        }
        let diagnosis = (failures > 0)
            .then(|| (self.diagnose)(history))
            .flatten()
            .map_or_else(String::new, |why| {
                format!("{failures} {} — {why}; ", self.found)
            });
        tally.finish(if judged == 0 {
            format!("the run has no {}", self.what)
        } else {
            format!(
                "{diagnosis}{} judged; {failures} {}",
                count(judged, self.what),
                self.found
            )
        })
    }
}

/// The item of `items` (sorted by call id) about `call_id`.
fn by_call_id<'h, T>(items: &'h [T], call_id: &str, id: fn(&T) -> &str) -> Option<&'h T> {
    items
        .binary_search_by(|item| id(item).cmp(call_id))
        .ok()
        .map(|i| &items[i])
}

/// Teams' call of this id, if the history has it.
fn call<'h>(history: &'h History, call_id: &str) -> Option<&'h CallFact> {
    by_call_id(&history.calls, call_id, |c| &c.call_id)
}

/// What the carrier reported for this call id, if anything.
fn report_of<'h>(history: &'h History, call_id: &str) -> Option<&'h ReportedCall> {
    by_call_id(&history.reported, call_id, |r| &r.call_id)
}

/// The answered calls Teams had that had ended when the run was judged.
fn answered_calls(history: &History) -> Vec<&CallFact> {
    history
        .calls
        .iter()
        .filter(|c| c.answered && history.judged_at.is_none_or(|at| c.end <= at))
        .collect()
}

fn reported_calls(history: &History) -> Vec<&ReportedCall> {
    history.reported.iter().collect()
}

/// DUR-DUPLICATE (should): no call was reported again identically.
pub(super) fn dur_duplicate(history: &History) -> Judged {
    Items {
        rule: RuleId::DurDuplicate,
        items: reported_calls(history),
        fails: |_, r| r.repeated,
        note: |_, r| {
            format!(
                "call {} on {} was reported more than once with the same record ({} ms)",
                r.call_id, r.telephone_number, r.duration_ms
            )
        },
        call_id: |r| &r.call_id,
        evidence_from: is_report,
        what: "reported call",
        found: "reported again identically",
        also_exercised: nothing_more,
        diagnose: no_diagnosis,
    }
    .judge(history)
}

/// DUR-DEADLINE: no call Teams had was first reported later than the deadline after its end.
pub(super) fn dur_deadline(history: &History) -> Judged {
    Items {
        rule: RuleId::DurDeadline,
        items: reported_calls(history)
            .into_iter()
            .filter(|r| call(history, &r.call_id).is_some())
            .collect(),
        fails: |h, r| {
            call(h, &r.call_id).is_some_and(|c| r.first_reported > c.end + h.settings.deadline_ms)
        },
        note: |h, r| {
            let end = call(h, &r.call_id).map_or(0, |c| c.end);
            format!(
                "call {} on {}, which ended at {}, was first reported at {}, more than {} ms \
                 after its end",
                r.call_id,
                r.telephone_number,
                format_timestamp(end),
                format_timestamp(r.first_reported),
                h.settings.deadline_ms
            )
        },
        call_id: |r| &r.call_id,
        evidence_from: is_report,
        what: "reported call",
        found: "first reported after the deadline",
        also_exercised: nothing_more,
        diagnose: no_diagnosis,
    }
    .judge(history)
}

/// DUR-COMPLETE: every answered call Teams had, ended by the end of the run, was reported.
pub(super) fn dur_complete(history: &History) -> Judged {
    Items {
        rule: RuleId::DurComplete,
        items: answered_calls(history),
        fails: |h, c| report_of(h, &c.call_id).is_none(),
        note: |_, c| {
            format!(
                "answered call {} on {} (Teams: {} ms, ended at {}) was never reported",
                c.call_id,
                c.telephone_number,
                c.duration_ms,
                format_timestamp(c.end)
            )
        },
        call_id: |c| &c.call_id,
        evidence_from: is_cdr_page_or_legs,
        what: "answered call",
        found: "never reported",
        also_exercised: nothing_more,
        diagnose: stopped_after_429,
    }
    .judge(history)
}

/// DUR-UNEXPECTED: nothing was reported but the answered calls Teams had.
pub(super) fn dur_unexpected(history: &History) -> Judged {
    Items {
        rule: RuleId::DurUnexpected,
        items: reported_calls(history),
        fails: |h, r| !call(h, &r.call_id).is_some_and(|c| c.answered),
        note: |h, r| {
            let why = match call(h, &r.call_id) {
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
        },
        call_id: |r| &r.call_id,
        evidence_from: is_report,
        what: "reported call",
        found: "unexpected",
        // In a certification, the suite posts legs on numbers that were not assigned at their
        // connect time: without them, a carrier that reports every leg would pass.
        also_exercised: |h| {
            (!h.legs.is_empty()).then(|| {
                (
                    "legs posted on numbers not assigned at connect",
                    h.legs.iter().filter(|l| !l.assigned).count() as u64,
                )
            })
        },
        diagnose: no_diagnosis,
    }
    .judge(history)
}

/// The exchanges that posted `call_id`'s leg to the carrier.
fn legs_posts(history: &History, call_id: &str) -> Vec<u64> {
    history
        .exchanges
        .iter()
        .filter(|e| match &e.detail {
            Some(ExchangeDetail::CallLegs { call_ids }) => call_ids.iter().any(|c| c == call_id),
            _ => false,
        })
        .map(|e| e.seq)
        .collect()
}

/// DUR-FIDELITY: every duration reported for a certification leg equals the leg's
/// `endDateTime − connectDateTime`. The reports are read from the bodies Teams received (the
/// certification keeps them whole); a body cut at the capture limit is counted, not judged.
pub(super) fn dur_fidelity(history: &History) -> Judged {
    if history.legs.is_empty() {
        return not_exercised(
            RuleId::DurFidelity,
            "no certification leg was posted (a simulation reports Teams' CDRs)",
        );
    }
    // A report whose answer Teams lost on purpose was applied all the same.
    let applied = |e: &Exchange| {
        e.status == Some(200) || matches!(e.fault, Some(InjectedFault::AnswerLost { .. }))
    };
    let legs: BTreeMap<&str, &LegFact> = history
        .legs
        .iter()
        .map(|leg| (leg.call_id.as_str(), leg))
        .collect();
    // Every accepted duration of a leg, in the order Teams received them, with its exchange.
    let mut reported: BTreeMap<&str, Vec<(i64, u64)>> = BTreeMap::new();
    let mut unreadable = 0u64;
    for e in reports(history) {
        if !applied(e)
            || matches!(
                e.detail,
                Some(ExchangeDetail::DurationReport { replayed: true, .. })
            )
        {
            continue;
        }
        let Some(parsed) = e
            .request_body
            .as_deref()
            .and_then(|b| parse_duration_report(b.as_bytes()).ok())
        else {
            unreadable += 1;
            continue;
        };
        for record in parsed.records.into_iter().flatten() {
            if let Some((call_id, _)) = legs.get_key_value(record.call_id.as_str()) {
                reported
                    .entry(call_id)
                    .or_default()
                    .push((record.duration_ms, e.seq));
            }
        }
    }
    let mut tally = Tally::new(RuleId::DurFidelity);
    let mut judged = 0u64;
    for (call_id, durations) in &reported {
        let leg = legs[call_id];
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
                legs_posts(history, call_id)
                    .into_iter()
                    .chain(wrong.iter().map(|(_, seq)| *seq))
                    .collect(),
            )
        });
    }
    let unreadable = if unreadable == 0 {
        String::new()
    } else {
        format!(
            "; {} too large to keep whole not judged",
            count(unreadable, "report body")
        )
    };
    tally.exercised("reported durations of legs judged", judged, 1);
    if judged == 0 {
        return tally.finish(format!(
            "no duration was reported for any of the {} posted{unreadable}",
            count(history.legs.len() as u64, "certification leg")
        ));
    }
    let failures = tally.failures();
    tally.finish(format!(
        "{} of {} judged; {} reported with another duration{unreadable}",
        count(judged, "reported duration"),
        count(history.legs.len() as u64, "leg"),
        count(failures, "leg")
    ))
}
