use oc_protocol::{CallDurationSource, Direction, ReconClass};

use super::*;
use crate::profile::Profile;
use crate::truth::{TruthSettings, call_truths, ground_truth};

const T0: UnixMillis = 1_793_491_200_000; // 2026-11-01T00:00:00.000Z

fn cdr(call_id: &str, number: &str, version: u32, talk_ms: Option<i64>) -> CallRecord {
    let start = T0 + 60_000;
    let connect = talk_ms.map(|_| start + 5_000);
    let end = connect.map_or(start + 5_000, |c| c + talk_ms.unwrap_or(0));
    CallRecord {
        id: format!("rec-{call_id}"),
        version,
        call_id: call_id.to_owned(),
        tenant_id: "tenant".to_owned(),
        telephone_number: number.to_owned(),
        direction: Direction::Outbound,
        caller_number: number.to_owned(),
        callee_number: "+14255550199".to_owned(),
        start_date_time: format_timestamp(start),
        connect_date_time: connect.map(format_timestamp),
        end_date_time: format_timestamp(end),
        duration_ms: talk_ms.unwrap_or(0),
        final_sip_code: if talk_ms.is_some() { 200 } else { 487 },
        call_duration_source: CallDurationSource::Microsoft,
        available_date_time: format_timestamp(end + 1_000),
    }
}

fn settings(models: &[DriftModel]) -> DriftSettings<'_> {
    DriftSettings {
        models,
        seed: 7,
        deadline_ms: 86_400_000,
        calls_from: CallSource::Cdrs,
    }
}

fn assigned(_: &str, _: UnixMillis) -> bool {
    true
}

/// The ground truth's settings of these tests: a correct carrier, no drift.
fn truth_settings() -> TruthSettings<'static> {
    TruthSettings {
        seed: 7,
        profile: Profile::Correct,
        tolerance_ms: 1_000,
        deadline_ms: 86_400_000,
        drift: &[],
    }
}

fn truths(ledger: &Ledger) -> Vec<crate::truth::CallTruth> {
    call_truths(ledger, &truth_settings()).collect()
}

/// Takes Teams' CDR (version `version`) of an answered call of `talk` ms on +14255550101.
fn ingest_answered(ledger: &mut Ledger, id: &str, version: u32, talk: i64) {
    ledger.ingest_cdr(
        &cdr(id, "+14255550101", version, Some(talk)).borrowed(),
        false,
        &settings(&[]),
        &assigned,
    );
}

fn ids(due: &[Due]) -> Vec<&str> {
    due.iter().map(|d| d.record.call_id.as_str()).collect()
}

#[test]
fn ground_truth_is_in_call_id_order_with_its_flags() {
    let mut ledger = Ledger::default();
    let plain = settings(&[]);
    let duplicate = [DriftModel::Duplicate { probability: 1.0 }];
    let duplicating = settings(&duplicate);
    // Arrival order is not call-id order.
    ledger.ingest_cdr(
        &cdr("c-3", "+14255550103", 1, Some(30_000)).borrowed(),
        false,
        &plain,
        &assigned,
    );
    ledger.ingest_cdr(
        &cdr("c-1", "+14255550101", 1, Some(10_000)).borrowed(),
        false,
        &plain,
        &assigned,
    );
    ledger.ingest_cdr(
        &cdr("c-2", "+14255550102", 1, None).borrowed(),
        false,
        &plain,
        &assigned,
    );
    ledger.ingest_cdr(
        &cdr("c-0", "+14255550100", 1, Some(5_000)).borrowed(),
        false,
        &duplicating,
        &assigned,
    );
    ledger.ingest_cdr(
        &cdr("c-10", "+14255550101", 1, Some(7_000)).borrowed(),
        true,
        &plain,
        &assigned,
    );
    assert_eq!(
        ledger.pending_len(),
        4,
        "every answered or unanswered CDR with a view"
    );

    let due = ledger.take_due(T0, &assigned);
    assert_eq!(ids(&due), ["c-0", "c-1", "c-3"]);
    assert_eq!(due[1].record.telephone_number, "+14255550101");
    assert_eq!(due[1].record.duration_ms, 10_000);
    assert_eq!(
        ledger.take_due(T0, &assigned).len(),
        0,
        "queued until answered"
    );
    ledger.accepted(&due[0], T0 + 1, "k-1");
    ledger.accepted(&due[1], T0 + 1, "k-1");
    ledger.refused(&due[2]);

    // Teams corrects c-1; c-0 is sent again for its duplicate.
    ledger.ingest_cdr(
        &cdr("c-1", "+14255550101", 2, Some(12_000)).borrowed(),
        false,
        &plain,
        &assigned,
    );
    let due = ledger.take_due(T0 + 2, &assigned);
    assert_eq!(ids(&due), ["c-0", "c-1"]);
    for d in &due {
        ledger.accepted(d, T0 + 3, "k-2");
    }
    assert!(ledger.take_due(T0 + 4, &assigned).is_empty());
    assert_eq!(ledger.pending_len(), 0);

    let truths = truths(&ledger);
    let order: Vec<&str> = truths.iter().map(|t| t.call_id.as_str()).collect();
    // c-2 was not answered and nobody reported it: outside reconciliation.
    assert_eq!(order, ["c-0", "c-1", "c-10", "c-3"]);
    let [c0, c1, c10, c3] = &truths[..] else {
        unreachable!()
    };
    assert!(c0.duplicate && !c0.corrected && !c0.late);
    assert_eq!(c0.tags, ["duplicate"]);
    let keys: Vec<&str> = c0
        .reported
        .iter()
        .map(|r| r.idempotency_key.as_str())
        .collect();
    assert_eq!(keys, ["k-1", "k-2"]);
    assert_eq!(c0.reported[1].reported_at, format_timestamp(T0 + 3));
    assert!(c1.corrected && !c1.duplicate);
    let durations: Vec<i64> = c1.reported.iter().map(|r| r.duration_ms).collect();
    assert_eq!(durations, [10_000, 12_000]);
    assert_eq!(c1.teams_version, Some(2));
    assert_eq!(c1.expected_class, Some(ReconClass::Matched));
    assert_eq!(c10.tags, ["skipped_page"]);
    assert_eq!(c10.expected_class, Some(ReconClass::Missing));
    assert_eq!(c3.tags, ["rejected"]);
    assert_eq!(c3.telephone_number, "+14255550103");
    assert!(c3.reported.is_empty());
    assert_eq!(c3.expected_class, Some(ReconClass::Missing));
}

/// The ledger's heap per call, for calls as the scale scenario makes them (a 41-byte call id,
/// one of 2,000 numbers, answered, reported once in batches of 1000): about 140 bytes; the
/// bound leaves room for a chunk's slack.
const MAX_HEAP_BYTES_PER_CALL: usize = 160;

#[test]
fn a_call_costs_a_row_and_its_call_id() {
    let mut ledger = Ledger::default();
    let plain = settings(&[]);
    let calls = 10_000;
    for i in 0..calls {
        let call_id = format!("carrier-a-{}-{i:06}", format_timestamp(T0 + i * 1_000));
        let number = format!("+1425560{:04}", i % 2_000);
        ledger.ingest_cdr(
            &cdr(&call_id, &number, 1, Some(60_000)).borrowed(),
            false,
            &plain,
            &assigned,
        );
    }
    let due = ledger.take_due(UnixMillis::MAX, &assigned);
    assert_eq!(due.len(), calls as usize);
    for (i, batch) in due.chunks(1000).enumerate() {
        for d in batch {
            ledger.accepted(d, T0 + i as i64, &format!("carrier-a-{i}"));
        }
    }
    assert!(ledger.take_due(UnixMillis::MAX, &assigned).is_empty());
    // Open work, not calls: nothing is pending any more.
    ledger.pending.shrink_to_fit();
    let per_call = ledger.heap_bytes() / calls as usize;
    assert!(
        per_call <= MAX_HEAP_BYTES_PER_CALL,
        "{per_call} heap bytes per call, more than {MAX_HEAP_BYTES_PER_CALL}"
    );
    assert_eq!(truths(&ledger).len(), calls as usize);
}

#[test]
fn switch_records_hold_both_parties_and_leave_out_what_the_switch_dropped() {
    let mut ledger = Ledger::default();
    let fabricate = [DriftModel::UnassignedNumber {
        probability: 1.0,
        numbers: vec!["+14255550177".to_owned()],
    }];
    let unassigned = |n: &str, _: UnixMillis| n != "+14255550177";
    let mut inbound = cdr("in", "+14255550101", 1, Some(10_000));
    inbound.direction = Direction::Inbound;
    inbound.caller_number = "+442079460001".to_owned();
    inbound.callee_number = "+14255550101".to_owned();
    ledger.ingest_cdr(&inbound.borrowed(), false, &settings(&[]), &assigned);
    ledger.ingest_cdr(
        &cdr("out", "+14255550102", 1, Some(20_000)).borrowed(),
        false,
        &settings(&fabricate),
        &unassigned,
    );
    ledger.ingest_cdr(
        &cdr("unanswered", "+14255550103", 1, None).borrowed(),
        false,
        &settings(&[]),
        &assigned,
    );
    let records: Vec<SwitchRecord<'_>> = ledger.switch_records().collect();
    // (call id, the carrier's number, the other party, direction, switch duration)
    type Seen<'a> = (&'a str, &'a str, Option<&'a str>, Option<Direction>, i64);
    let seen: Vec<Seen<'_>> = records
        .iter()
        .map(|r| {
            (
                r.call_id,
                r.telephone_number,
                r.other_number.as_deref(),
                r.direction,
                r.end - r.connect,
            )
        })
        .collect();
    let fabricated = records[2].call_id;
    assert!(fabricated.starts_with("fab-"), "{fabricated}");
    assert_eq!(
        seen,
        [
            (
                "in",
                "+14255550101",
                Some("+442079460001"),
                Some(Direction::Inbound),
                10_000
            ),
            (
                "out",
                "+14255550102",
                Some("+14255550199"),
                Some(Direction::Outbound),
                20_000
            ),
            // The source call recorded again on the unassigned number; the unanswered call has
            // no switch record.
            (
                fabricated,
                "+14255550177",
                Some("+14255550199"),
                Some(Direction::Outbound),
                20_000
            ),
        ]
    );
}

/// A long-running `serve` retires settled calls: the ledger holds only the calls still in play,
/// and the ground truth's counts stay those of every call.
#[test]
fn retiring_keeps_the_calls_in_play_and_the_counts_of_all() {
    let truth_settings = truth_settings();
    let truth = |call: CallRef<'_>| crate::truth::call_truth(call, &truth_settings);
    let mut ledger = Ledger::default();
    // Eight answered calls reported in two cycles (four each), one never reported yet, one
    // reported and corrected later.
    let ingest = ingest_answered;
    for i in 0..4 {
        ingest(&mut ledger, &format!("a-{i}"), 1, 10_000 + i);
    }
    ingest(&mut ledger, "fix", 1, 20_000);
    let due = ledger.take_due(T0, &assigned);
    assert_eq!(due.len(), 5);
    for d in &due {
        ledger.accepted(d, T0 + 1_000, "k-1");
    }
    for i in 0..4 {
        ingest(&mut ledger, &format!("b-{i}"), 1, 30_000 + i);
    }
    // A correction of "fix": Teams' newer version; reported again in the second cycle.
    ingest(&mut ledger, "fix", 2, 25_000);
    let due = ledger.take_due(T0 + 60_000, &assigned);
    assert_eq!(ids(&due), ["b-0", "b-1", "b-2", "b-3", "fix"]);
    for d in &due {
        ledger.accepted(d, T0 + 61_000, "k-2");
    }
    ingest(&mut ledger, "waiting", 1, 40_000);
    // The second cycle's acceptances mark their calls pending again (a duplicate may be
    // wanted): the next cycle settles them.
    assert!(
        ledger.take_due(T0 + 62_000, &assigned).len() == 1,
        "waiting is due"
    );
    let every: Vec<_> = truths(&ledger);
    let all = ground_truth(&ledger, &truth_settings);
    assert_eq!(all.calls.len(), 10);
    assert_eq!(all.retired, 0);

    // Nothing settled before the first cycle's acceptance.
    assert_eq!(ledger.retire(T0 + 999, truth), 0);
    assert_eq!(ledger.len(), 10);
    // Settled by T0 + 1 s: the first cycle's calls but "fix", corrected since.
    assert_eq!(ledger.retire(T0 + 1_000, truth), 4);
    assert_eq!(ledger.len(), 6, "live entries");
    let kept = truths(&ledger);
    let ids_kept: Vec<&str> = kept.iter().map(|t| t.call_id.as_str()).collect();
    assert_eq!(ids_kept, ["b-0", "b-1", "b-2", "b-3", "fix", "waiting"]);
    // The calls kept read back exactly as before, reports and all.
    let before: Vec<_> = every
        .iter()
        .filter(|t| ids_kept.contains(&t.call_id.as_str()))
        .cloned()
        .collect();
    assert_eq!(kept, before);
    let now = ground_truth(&ledger, &truth_settings);
    assert_eq!((now.counts, now.flags), (all.counts, all.flags));
    assert_eq!(now.retired, 4);
    assert!(
        now.flags.corrected == 1,
        "fix stays corrected: {:?}",
        now.flags
    );

    // "waiting" is queued (in flight): never retired; the others all settled by T0 + 61 s.
    assert_eq!(ledger.retire(T0 + 10_000_000, truth), 5);
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger.pending_len(), 1);
    let now = ground_truth(&ledger, &truth_settings);
    assert_eq!(
        (now.counts, now.flags, now.retired),
        (all.counts, all.flags, 9)
    );
    // The ledger goes on working after a retirement: "waiting" is accepted, a new call comes.
    let due = ledger.take_due(T0 + 70_000, &assigned);
    assert!(due.is_empty(), "waiting is still in flight");
    ingest(&mut ledger, "late", 1, 50_000);
    let due = ledger.take_due(T0 + 71_000, &assigned);
    assert_eq!(ids(&due), ["late"]);
}

#[test]
fn closing_hands_out_each_truth_once_and_compacts_when_three_quarters_are_closed() {
    let truth_settings = truth_settings();
    let truth = |call: CallRef<'_>| crate::truth::call_truth(call, &truth_settings);
    let mut ledger = Ledger::default();
    let ingest = |ledger: &mut Ledger, id: &str, talk: i64| ingest_answered(ledger, id, 1, talk);
    // Enough calls for a compaction (closed calls are dropped once they are 4,096 and three
    // rows in four).
    let calls = 10_000;
    for i in 0..calls {
        ingest(&mut ledger, &format!("c-{i:05}"), 10_000 + i);
    }
    // Due, then in flight: neither is final.
    assert!(!ledger.is_final("c-00000"), "pending");
    let due = ledger.take_due(T0, &assigned);
    assert_eq!(due.len(), calls as usize);
    assert!(!ledger.is_final("c-00000"), "queued, unanswered");
    for d in &due {
        ledger.accepted(d, T0 + 1_000, "k-1");
    }
    // Accepted: pending until the next cycle finds nothing more (a duplicate may be due).
    assert!(ledger.take_due(T0 + 2_000, &assigned).is_empty());
    assert!(ledger.is_final("c-00000"));
    assert!(
        ledger.is_final("never-seen"),
        "nothing to report of a call it does not have"
    );
    let before = truths(&ledger);

    // Closing hands each truth out once, as the ground truth had it.
    assert_eq!(ledger.close("c-00000", truth).as_ref(), Some(&before[0]));
    assert_eq!(ledger.close("c-00000", truth), None, "closed once");
    assert_eq!(ledger.close("never-seen", truth), None);
    assert_eq!(ledger.len(), calls as usize - 1);
    for (i, t) in before.iter().enumerate().skip(1).take(7_498) {
        assert_eq!(
            ledger.close(&t.call_id, truth).as_ref(),
            Some(t),
            "call {i}"
        );
    }
    // 7,499 closed of 10,000: not yet compacted.
    assert_eq!(ledger.calls.len(), calls as usize, "the rows are all kept");
    let t = &before[7_499];
    assert_eq!(ledger.close(&t.call_id, truth).as_ref(), Some(t));
    // 7,500: compacted; the calls left read back as before.
    assert_eq!(ledger.len(), 2_500);
    assert!(
        ledger.calls.len() < calls as usize,
        "the closed rows are gone"
    );
    assert_eq!(truths(&ledger), before[7_500..]);
    assert_eq!(ledger.switch_records().count(), 2_500);
    // And the ledger goes on: a new call comes and is reported.
    ingest(&mut ledger, "late-comer", 5_000);
    assert_eq!(ids(&ledger.take_due(T0 + 3_000, &assigned)), ["late-comer"]);
}
