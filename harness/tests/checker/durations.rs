//! DUR-SCHEMA, DUR-IDEMPOTENT, DUR-DUPLICATE, DUR-DEADLINE, DUR-COMPLETE, DUR-UNEXPECTED and
//! DUR-FIDELITY on fixture histories.

use oc_harness::checker::rules;
use oc_protocol::{RuleId, Severity};
use oc_reports::Outcome;

use crate::support::{assert_note, assert_verdict, judge, load};

#[test]
fn dur_schema_pass() {
    // The injected 503 is the harness's doing, not a malformed report.
    let v = judge(RuleId::DurSchema, "dur-schema-pass");
    assert_verdict(&v, Outcome::Passed, 0, &[]);
}

#[test]
fn dur_schema_fail() {
    let v = judge(RuleId::DurSchema, "dur-schema-fail");
    // The replay of seq 1 repeats its answer and is not counted again.
    assert_verdict(&v, Outcome::Failed, 2, &[&[1], &[3]]);
    assert_note(
        &v,
        0,
        "had 1 record rejected and 1 accepted: /records/1/durationMs must be >= 0",
    );
    assert_note(
        &v,
        1,
        "refused as malformed: the body must be an object with records",
    );
}

#[test]
fn dur_idempotent_pass() {
    // The answer to k1 was lost after Teams applied it; the carrier retried with the same key
    // and body, and Teams answered from memory.
    let v = judge(RuleId::DurIdempotent, "dur-idempotent-pass");
    assert_verdict(&v, Outcome::Passed, 0, &[]);
    assert!(
        v.summary
            .contains("1 of them answered 503 after being applied, 1 retried")
    );
}

/// Without a lost answer a carrier never has to retry: how it would is unknown, and the rule
/// says so rather than passing.
#[test]
fn dur_idempotent_needs_a_lost_answer() {
    let mut history = load("dur-idempotent-pass");
    history.exchanges[0].fault = None;
    history.exchanges[0].status = Some(200);
    let v = rules::check(RuleId::DurIdempotent, &history);
    assert_eq!(v.outcome, Outcome::NotExercised, "{v:#?}");
    assert_eq!(
        v.exercised[0].to_string(),
        "0 reports whose answer Teams lost after applying them (at least 1 needed)"
    );
}

#[test]
fn dur_idempotent_fail() {
    let v = judge(RuleId::DurIdempotent, "dur-idempotent-fail");
    assert_verdict(&v, Outcome::Failed, 2, &[&[1, 2], &[4]]);
    assert_note(
        &v,
        0,
        "reused Idempotency-Key k1 with another body than its first use at seq 1",
    );
    assert_note(
        &v,
        1,
        "header Idempotency-Key is required on every call-durations request",
    );
}

#[test]
fn dur_duplicate_pass() {
    let v = judge(RuleId::DurDuplicate, "dur-duplicate-pass");
    assert_verdict(&v, Outcome::Passed, 0, &[]);
}

#[test]
fn dur_duplicate_fail() {
    let v = judge(RuleId::DurDuplicate, "dur-duplicate-fail");
    assert_eq!(v.severity, Severity::Should);
    assert_verdict(&v, Outcome::Failed, 1, &[&[1, 2]]);
    assert_note(
        &v,
        0,
        "call call-1 on +14255550100 was reported more than once",
    );
}

#[test]
fn dur_deadline_pass() {
    let v = judge(RuleId::DurDeadline, "dur-deadline-pass");
    assert_verdict(&v, Outcome::Passed, 0, &[]);
}

#[test]
fn dur_deadline_fail() {
    let v = judge(RuleId::DurDeadline, "dur-deadline-fail");
    assert_verdict(&v, Outcome::Failed, 1, &[&[1]]);
    assert_note(
        &v,
        0,
        "which ended at 2026-11-26T09:01:00.000Z, was first reported at 2026-11-27T09:01:00.001Z, \
         more than 86400000 ms after its end",
    );
}

/// The decision is the checker's, from when the report arrived: a report 1 ms inside the
/// deadline is on time whatever any flag says.
#[test]
fn dur_deadline_is_decided_from_when_the_report_arrived() {
    let mut history = load("dur-deadline-fail");
    history.reported[0].first_reported -= 1;
    let v = rules::check(RuleId::DurDeadline, &history);
    assert_verdict(&v, Outcome::Passed, 0, &[]);
}

/// A call still going when the run was judged is not yet due a report.
#[test]
fn dur_complete_judges_only_calls_that_had_ended() {
    let mut history = load("dur-complete-fail");
    // call-2 (never reported) now ends after the run was judged; call-1 (reported) before.
    history.calls[1].end = history.calls[0].end + 10_000;
    history.judged_at = Some(history.calls[0].end);
    let v = rules::check(RuleId::DurComplete, &history);
    assert_verdict(&v, Outcome::Passed, 0, &[]);
    assert_eq!(v.exercised[0].count, 1, "only call-1 was judged: {v:#?}");
}

#[test]
fn dur_complete_pass() {
    let v = judge(RuleId::DurComplete, "dur-complete-pass");
    assert_verdict(&v, Outcome::Passed, 0, &[]);
}

#[test]
fn dur_complete_fail() {
    let v = judge(RuleId::DurComplete, "dur-complete-fail");
    assert_verdict(&v, Outcome::Failed, 1, &[&[1]]);
    assert_note(
        &v,
        0,
        "answered call call-2 on +14255550100 (Teams: 30000 ms, ended at 2026-11-26T09:00:30.000Z) was never reported",
    );
}

#[test]
fn dur_unexpected_pass() {
    let v = judge(RuleId::DurUnexpected, "dur-unexpected-pass");
    assert_verdict(&v, Outcome::Passed, 0, &[]);
}

#[test]
fn dur_unexpected_fail() {
    let v = judge(RuleId::DurUnexpected, "dur-unexpected-fail");
    assert_verdict(&v, Outcome::Failed, 1, &[&[1]]);
    assert_note(&v, 0, "call call-9 on +14255550100 was reported (1000 ms)");
}

#[test]
fn dur_fidelity_pass() {
    let v = judge(RuleId::DurFidelity, "dur-fidelity-pass");
    assert_verdict(&v, Outcome::Passed, 0, &[]);
}

#[test]
fn dur_fidelity_fail() {
    let v = judge(RuleId::DurFidelity, "dur-fidelity-fail");
    assert_verdict(&v, Outcome::Failed, 1, &[&[1]]);
    assert_note(
        &v,
        0,
        "leg leg-1 on +14255550100 lasted 61000 ms, but the carrier reported 120000 ms",
    );
}

/// Without certification legs (a simulation reports Teams' CDRs) there is nothing to judge.
#[test]
fn dur_fidelity_needs_legs() {
    let v = judge(RuleId::DurFidelity, "accuracy-disagreement");
    assert_verdict(&v, Outcome::NotExercised, 0, &[]);
    let v = judge(RuleId::DurFidelity, "dur-schema-pass");
    assert_verdict(&v, Outcome::NotExercised, 0, &[]);
}
