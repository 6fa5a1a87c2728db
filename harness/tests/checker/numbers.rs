//! NUM-ACK, NUM-IDEMPOTENT, NUM-ORDER and NUM-STATE on fixture histories.

use oc_harness::checker::{CheckResult, Checker, End, History, Observation, evaluate, rules};
use oc_observe::{ExchangeDetail, InjectedFault};
use oc_protocol::RuleId;
use oc_reports::Outcome;

use crate::support::{assert_note, assert_verdict, fixture_names, judge, load};

#[test]
fn num_ack_pass() {
    let v = judge(RuleId::NumAck, "num-ack-pass");
    assert_verdict(&v, Outcome::Passed, 0, &[]);
}

#[test]
fn num_ack_fail() {
    let v = judge(RuleId::NumAck, "num-ack-fail");
    assert_verdict(&v, Outcome::Failed, 3, &[&[2], &[3], &[4]]);
    assert_note(
        &v,
        0,
        "answered 204 after 6010 ms, past the 5000 ms deadline",
    );
    assert_note(&v, 1, "answered 500");
    assert_note(
        &v,
        2,
        "not answered: no acknowledgement within the deadline",
    );
}

#[test]
fn num_ack_follows_the_settings_deadline() {
    let mut history = load("num-ack-fail");
    history.settings.ack_deadline_ms = 7_000;
    let v = rules::check(RuleId::NumAck, &history);
    assert_verdict(&v, Outcome::Failed, 2, &[&[3], &[4]]);
}

#[test]
fn num_idempotent_pass() {
    let v = judge(RuleId::NumIdempotent, "num-idempotent-pass");
    assert_verdict(&v, Outcome::Passed, 0, &[]);
}

#[test]
fn num_idempotent_fail() {
    let v = judge(RuleId::NumIdempotent, "num-idempotent-fail");
    assert_verdict(&v, Outcome::Failed, 1, &[&[1, 2, 3]]);
    assert_note(
        &v,
        0,
        "+14255550100: appliedEvents is 3, but Teams delivered only 2 distinct events",
    );
}

#[test]
fn num_order_pass() {
    let v = judge(RuleId::NumOrder, "num-order-pass");
    assert_verdict(&v, Outcome::Passed, 0, &[]);
}

#[test]
fn num_order_fail() {
    let v = judge(RuleId::NumOrder, "num-order-fail");
    assert_verdict(&v, Outcome::Failed, 1, &[&[2, 3]]);
    assert_note(
        &v,
        0,
        "event ev-b (sequence 2, first sent at seq 3) arrived after event ev-c (sequence 3) was accepted at seq 2",
    );
    assert_note(
        &v,
        0,
        "applies at most 2 of the 3 events delivered, but appliedEvents is 3",
    );
    assert_eq!(
        v.exercised[0].to_string(),
        "1 overtaken events on numbers without redeliveries"
    );
}

/// Accepted is not applied: a carrier that acknowledged the unassignment (ev-c) but never
/// applied it was right to apply ev-b after it. Its state is NUM-STATE's failure, not this
/// rule's, however far back it looks.
#[test]
fn num_order_does_not_blame_a_carrier_that_never_applied_the_newer_event() {
    let mut history = load("num-order-fail");
    let view = history.probes[0].view.as_mut().unwrap();
    view.applied_events = 2;
    view.sequence = 2;
    let v = rules::check(RuleId::NumOrder, &history);
    assert_verdict(&v, Outcome::Passed, 0, &[]);
}

/// Two events overtaken by the same newer one, which the carrier never applied: each is newer
/// than the last it applied, so applying both is right. Only an overtaken event matched to a
/// newer event of its own lowers the bound.
#[test]
fn num_order_matches_each_overtaken_event_to_its_own_newer_event() {
    let mut history = load("num-order-fail");
    // ev-a (1) first, ev-c (3) accepted at 2000 ms, then ev-b (2) and a new ev-b2 (2.5 → 3,
    // with ev-c renumbered 4) both arrive after it.
    let mut b2 = history.events[1].clone();
    b2.event_id = "ev-b2".into();
    b2.sequence = 3;
    history.events.insert(2, b2);
    history.events[3].sequence = 4;
    let mut attempt = history.exchanges[2].clone();
    attempt.seq = 4;
    attempt.wall_time_ms += 100;
    if let Some(ExchangeDetail::Webhook { event_ids, .. }) = &mut attempt.detail {
        *event_ids = vec!["ev-b2".into()];
    }
    history.exchanges.push(attempt);
    let view = history.probes[0].view.as_mut().unwrap();
    // Never applied ev-c; applied ev-a, ev-b and ev-b2.
    view.applied_events = 3;
    view.sequence = 3;
    let v = rules::check(RuleId::NumOrder, &history);
    assert_verdict(&v, Outcome::Passed, 0, &[]);
    // Applying ev-c as well shows a stale application: 4 of 4, above the bound of 3.
    history.probes[0].view.as_mut().unwrap().applied_events = 4;
    let v = rules::check(RuleId::NumOrder, &history);
    assert_eq!(v.outcome, Outcome::Failed, "{v:#?}");
}

/// Two attempts in flight at once may reach the carrier in either order: no certain
/// overtaking, nothing to judge.
#[test]
fn num_order_needs_a_certain_overtaking() {
    let mut history = load("num-order-fail");
    // ev-b's attempt now starts while ev-c's (2000 ms, 5 ms long) is still in flight.
    history.exchanges[2].wall_time_ms = 2_003;
    let v = rules::check(RuleId::NumOrder, &history);
    assert_eq!(v.outcome, Outcome::NotExercised, "{v:#?}");
}

/// A carrier that re-applies a redelivered event reaches the same count without applying the
/// overtaken one: the count alone does not blame it.
#[test]
fn num_order_gives_redeliveries_the_benefit_of_the_doubt() {
    let mut history = load("num-order-fail");
    let mut again = history.exchanges[1].clone();
    again.seq = 4;
    again.wall_time_ms = 2_600;
    again.fault = Some(InjectedFault::WebhookDuplicated);
    assert!(matches!(again.detail, Some(ExchangeDetail::Webhook { .. })));
    history.exchanges.push(again);
    let probe = history.probes[0].view.as_mut().unwrap();
    probe.sequence = 3;
    let v = rules::check(RuleId::NumOrder, &history);
    // Judged with slack, and not enough to exercise the rule: the judgement is not exact.
    assert_verdict(&v, Outcome::NotExercised, 0, &[]);
    assert!(
        v.summary
            .contains("1 overtaken event more on numbers with redeliveries"),
        "{}",
        v.summary
    );
}

#[test]
fn num_state_pass() {
    let v = judge(RuleId::NumState, "num-state-pass");
    assert_verdict(&v, Outcome::Passed, 0, &[]);
}

#[test]
fn num_state_fail() {
    let v = judge(RuleId::NumState, "num-state-fail");
    assert_verdict(&v, Outcome::Failed, 2, &[&[2], &[1]]);
    assert_note(
        &v,
        0,
        "+14255550100: the carrier has sipUri sip:+14255550100@sbc1.carrier.example;user=phone (Teams: sip:+14255550100@sbc2.carrier.example;user=phone), usage CallingUserAssignment (Teams: ConferenceAssignment), sequence 1 (Teams: 2)",
    );
    assert_note(
        &v,
        1,
        "+14255550102: Teams has it assigned at sequence 1, but the carrier has never heard of it (404)",
    );
}

/// A probe answer that is not a carrier view is reported as that, with what was received, not
/// as a state that failed to converge.
#[test]
fn num_state_reports_an_answer_that_is_not_a_view_as_such() {
    let mut history = load("num-state-pass");
    let probe = &mut history.probes[0];
    probe.view = None;
    probe.status = Some(200);
    probe.error = Some(
        "the answer is not a valid carrier view (missing field `appliedEvents` at line 1 column \
         40); it was: {\"state\":\"assigned\",\"sequence\":2}"
            .into(),
    );
    let v = rules::check(RuleId::NumState, &history);
    assert_eq!(v.outcome, Outcome::Failed);
    assert_note(
        &v,
        0,
        "the state probe answered 200, but the answer is not a valid carrier view (missing field \
         `appliedEvents`",
    );
    assert_note(&v, 0, "it was: {\"state\":\"assigned\",\"sequence\":2}");
}

/// Judges a history of number events and webhook attempts through the checker as a live run
/// feeds it, its events observed all before or all after the exchanges (a live run does not
/// order them against the attempts that carry them).
fn judge_streamed(history: &History, events_first: bool) -> CheckResult {
    assert!(
        history.calls.is_empty()
            && history.reported.is_empty()
            && history.reconciliation.is_empty()
            && history.cycles.is_empty()
            && history.legs.is_empty(),
        "only events and exchanges are fed"
    );
    let mut checker = Checker::new(history.settings);
    let mut exchanges: Vec<_> = history.exchanges.iter().collect();
    exchanges.sort_by_key(|e| e.seq);
    let feed_events = |checker: &mut Checker| {
        for event in &history.events {
            checker.observe(Observation::Event(event));
        }
    };
    if events_first {
        feed_events(&mut checker);
    }
    for e in &exchanges {
        checker.observe(Observation::Exchange(e));
    }
    if !events_first {
        feed_events(&mut checker);
    }
    let end = End::of(history);
    let mut finished = checker.finish(&end);
    for e in exchanges {
        finished.scan(e);
    }
    finished.result()
}

/// NUM-ACK, NUM-IDEMPOTENT, NUM-ORDER and NUM-STATE give the same verdicts whether a number
/// event is observed before the attempts that carry it or after them.
#[test]
fn number_rules_do_not_depend_on_when_events_are_observed() {
    let names: Vec<String> = fixture_names()
        .into_iter()
        .filter(|name| name.starts_with("num-"))
        .collect();
    assert_eq!(names.len(), 8, "{names:?}");
    for name in names {
        let history = load(&name);
        let first = judge_streamed(&history, true);
        let last = judge_streamed(&history, false);
        assert_eq!(first, last, "{name}");
        assert_eq!(first, evaluate(&history), "{name}");
    }
    let order = &judge_streamed(&load("num-order-fail"), false).rules[RuleId::NumOrder as usize];
    assert_verdict(order, Outcome::Failed, 1, &[&[2, 3]]);
}
