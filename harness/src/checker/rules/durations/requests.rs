//! DUR-SCHEMA and DUR-IDEMPOTENT: each call-durations request of the carrier judged as it is
//! observed, from the request and Teams' answer.

use std::collections::BTreeMap;

use oc_observe::{Exchange, ExchangeDetail};
use oc_protocol::problem::ProblemKind;
use oc_protocol::{DurationReportResponse, IDEMPOTENCY_KEY_HEADER, Problem, RuleId};

use super::{answer_lost, is_replayed, is_report, report};
use crate::checker::rules::{Tally, count, header};
use crate::checker::stream::{End, Judged, Observation, Rule};

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
pub(crate) struct DurSchema {
    tally: Tally,
    /// The call-durations requests judged.
    judged: u64,
}

impl DurSchema {
    pub(crate) fn new() -> Self {
        Self {
            tally: Tally::new(RuleId::DurSchema),
            judged: 0,
        }
    }
}

impl Rule for DurSchema {
    fn failures_so_far(&self) -> u64 {
        self.tally.failures()
    }

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
pub(crate) struct DurIdempotent {
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
    pub(crate) fn new() -> Self {
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
    fn failures_so_far(&self) -> u64 {
        self.tally.failures()
    }

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
