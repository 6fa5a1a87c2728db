//! Every endpoint of the Teams API through real HTTP.

use std::collections::BTreeSet;

use mock_teams::ExchangeDetail;
use oc_protocol::{CallRecord, QualityRecord, TeamsNumber, Validate, format_timestamp};
use serde_json::{Value, json};

use crate::common::*;

fn window() -> String {
    format!(
        "from={}&to={}",
        format_timestamp(T0),
        format_timestamp(T0 + 24 * 3_600_000)
    )
}

#[tokio::test]
async fn numbers_are_paged_by_next_link_and_filtered() {
    let env = start().await;
    let (numbers, delta) = env.follow(ALPHA_TOKEN, "/oc/v1/numbers?pageSize=3").await;
    assert_eq!(delta, None);
    let numbers: Vec<TeamsNumber> = numbers
        .into_iter()
        .map(|n| serde_json::from_value(n).unwrap())
        .collect();
    let got: Vec<&str> = numbers
        .iter()
        .map(|n| n.telephone_number.as_str())
        .collect();
    let want: Vec<String> = (0..10).map(alpha_number).collect();
    assert_eq!(got, want, "every number once, in order, none of beta's");
    for n in &numbers {
        n.validate().unwrap();
        assert_eq!(n.sequence, 1);
    }
    let results = env
        .teams
        .apply_changes(vec![mock_teams::NumberChange::Unassign {
            telephone_number: alpha_number(4),
        }]);
    assert!(results[0].is_ok());
    let (assigned, _) = env
        .follow(ALPHA_TOKEN, "/oc/v1/numbers?state=assigned")
        .await;
    assert_eq!(assigned.len(), 9);
    let other_tenant = "/oc/v1/numbers?tenantId=c0ffee00-0000-4000-8000-000000000009";
    let (none, _) = env.follow(ALPHA_TOKEN, other_tenant).await;
    assert!(none.is_empty());
}

#[tokio::test]
async fn cdr_feed_never_skips_or_repeats_while_records_arrive() {
    let env = start().await;
    for i in 0..25 {
        let number = alpha_number(i % 10);
        let talk = (i % 4 != 0).then_some(60_000 + i64::from(i));
        env.teams
            .add_call(call(&format!("a-{i}"), &number, i64::from(i) * 60, talk))
            .unwrap();
    }
    // A beta call must never appear in alpha's feed.
    env.teams
        .add_call(call("b-0", &beta_number(0), 10, Some(1_000)))
        .unwrap();
    env.teams.advance_to(T0 + 3_600_000).unwrap();

    let (status, _, first) = env.get(ALPHA_TOKEN, "/oc/v1/cdrs/delta?pageSize=10").await;
    assert_eq!(status, 200);
    assert_eq!(first["value"].as_array().unwrap().len(), 10);
    let next = first["nextLink"].as_str().unwrap().to_owned();
    assert!(first.get("deltaLink").is_none());
    // New records arrive while the chain is being read.
    for i in 25..30 {
        env.teams
            .add_call(call(
                &format!("a-{i}"),
                &alpha_number(0),
                3_700 + i64::from(i),
                Some(5_000),
            ))
            .unwrap();
    }
    env.teams.advance_to(T0 + 2 * 3_600_000).unwrap();
    let (rest, delta) = env.follow(ALPHA_TOKEN, &next).await;
    let mut all: Vec<CallRecord> = first["value"]
        .as_array()
        .unwrap()
        .iter()
        .chain(&rest)
        .map(|r| serde_json::from_value(r.clone()).unwrap())
        .collect();
    let ids: BTreeSet<&str> = all.iter().map(|r| r.call_id.as_str()).collect();
    assert_eq!(all.len(), 30, "nothing repeated");
    assert_eq!(ids.len(), 30, "nothing skipped");
    assert!(!ids.contains("b-0"));
    for r in &all {
        r.validate().unwrap();
        assert_eq!(r.version, 1);
    }
    // The deltaLink gives nothing until something new is available, then only that.
    let delta = delta.expect("the last page carries a deltaLink");
    let (status, _, empty) = env.get(ALPHA_TOKEN, &delta).await;
    assert_eq!(status, 200);
    assert_eq!(empty["value"], json!([]));
    let delta = empty["deltaLink"].as_str().unwrap().to_owned();
    let corrected_end = T0 + 60 * 60 + 5_000 + 61_000 + 2_500;
    env.teams
        .with_store(|s| {
            s.correct_call(
                "a-1",
                Some(T0 + 60_000 + 5_000),
                corrected_end,
                T0 + 3 * 3_600_000,
            )
        })
        .unwrap();
    env.teams.advance_to(T0 + 3 * 3_600_000).unwrap();
    let (later, _) = env.follow(ALPHA_TOKEN, &delta).await;
    assert_eq!(later.len(), 1);
    let corrected: CallRecord = serde_json::from_value(later[0].clone()).unwrap();
    assert_eq!((corrected.call_id.as_str(), corrected.version), ("a-1", 2));
    corrected.validate().unwrap();
    let original = all.iter_mut().find(|r| r.call_id == "a-1").unwrap();
    assert_eq!(
        original.id, corrected.id,
        "a correction keeps the record id"
    );
    // The exchanges show one chain of contiguous positions.
    let pages: Vec<(bool, u64, u64)> = env
        .exchanges
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match &e.detail {
            Some(ExchangeDetail::FeedPage {
                feed,
                chain_start,
                from_position,
                to_position,
                ..
            }) if feed == "cdr" => Some((*chain_start, *from_position, *to_position)),
            _ => None,
        })
        .collect();
    assert!(pages[0].0);
    for pair in pages.windows(2) {
        assert_eq!(
            pair[0].2, pair[1].1,
            "each page starts where the last ended: {pages:?}"
        );
    }
}

#[tokio::test]
async fn quality_feed_has_both_streams_and_agrees_with_the_classification() {
    let env = start().await;
    let mut answered = call("q-1", &alpha_number(1), 0, Some(60_000));
    answered.quality = Some(quality(3_000, 150_000)); // 15 % loss: poor
    env.teams.add_call(answered).unwrap();
    env.teams
        .add_call(call("q-2", &alpha_number(2), 0, Some(5_000)))
        .unwrap(); // 250 packets
    env.teams
        .add_call(call("q-3", &alpha_number(3), 0, None))
        .unwrap(); // no media
    env.teams.advance_to(T0 + 3_600_000).unwrap();
    let (records, delta) = env.follow(ALPHA_TOKEN, "/oc/v1/quality/delta").await;
    assert!(delta.is_some());
    let records: Vec<QualityRecord> = records
        .into_iter()
        .map(|r| serde_json::from_value(r).unwrap())
        .collect();
    assert_eq!(records.len(), 4, "two directions of each answered call");
    for r in &records {
        r.validate().unwrap();
        assert_eq!(r.poor, r.call_id == "q-1", "{r:?}");
    }
}

#[tokio::test]
async fn cdrs_by_window_serve_each_call_once_at_its_latest_version() {
    let env = start().await;
    env.teams
        .add_call(call("w-1", &alpha_number(1), 10, Some(1_000)))
        .unwrap();
    env.teams
        .add_call(call("w-2", &alpha_number(1), 2 * 86_400, Some(1_000)))
        .unwrap();
    env.teams.advance_to(T0 + 3 * 86_400_000).unwrap();
    env.teams
        .with_store(|s| {
            s.correct_call(
                "w-1",
                Some(T0 + 15_000),
                T0 + 17_000,
                T0 + 3 * 86_400_000 + 1,
            )
        })
        .unwrap();
    env.teams.advance_to(T0 + 3 * 86_400_000 + 1).unwrap();
    let first = format!("/oc/v1/cdrs?{}&pageSize=1", window());
    let (records, _) = env.follow(ALPHA_TOKEN, &first).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["callId"], "w-1");
    assert_eq!(records[0]["version"], 2);
    let eight_days = format!(
        "/oc/v1/cdrs?from={}&to={}",
        format_timestamp(T0),
        format_timestamp(T0 + 8 * 86_400_000)
    );
    let (status, _, problem) = env.get(ALPHA_TOKEN, &eight_days).await;
    assert_eq!(status, 400);
    assert_eq!(problem["errors"][0]["parameter"], "to");
}

#[tokio::test]
async fn duration_reports_are_accepted_one_by_one_and_idempotent() {
    let env = start().await;
    let n = alpha_number(1);
    env.teams
        .add_call(call("d-1", &n, 0, Some(60_000)))
        .unwrap();
    env.teams.advance_to(T0 + 3_600_000).unwrap();
    let good = report_record("d-1", &n, T0 + 5_000, 60_000);
    let mut bad = report_record("d-2", &n, T0 + 5_000, 60_000);
    bad["durationMs"] = json!(-5);
    let body = json!({ "records": [good, bad] });
    let (status, response) = env.report(ALPHA_TOKEN, Some("key-1"), &body).await;
    assert_eq!(status, 200, "{response}");
    assert_eq!(response["accepted"], 1);
    assert_eq!(response["rejected"][0]["index"], 1);
    assert_eq!(response["rejected"][0]["callId"], "d-2");
    assert_eq!(
        response["rejected"][0]["errors"][0]["pointer"],
        "/records/1/durationMs"
    );
    let before = env
        .teams
        .reconciliation("alpha", T0, T0 + 86_400_000)
        .unwrap();
    // The same key and body: the first answer again, nothing changed (no duplicate flag).
    let (status, again) = env.report(ALPHA_TOKEN, Some("key-1"), &body).await;
    assert_eq!((status, &again), (200, &response));
    assert_eq!(
        env.teams
            .reconciliation("alpha", T0, T0 + 86_400_000)
            .unwrap(),
        before
    );
    assert_eq!(before.flags.duplicate, 0);
    // The same key with another body: 422.
    let other = json!({ "records": [report_record("d-1", &n, T0 + 5_000, 61_000)] });
    let (status, problem) = env.report(ALPHA_TOKEN, Some("key-1"), &other).await;
    assert_eq!(status, 422);
    assert_eq!(problem["type"], "urn:oc:problem:idempotency-key-reused");
    // No key: 400 naming the header.
    let (status, problem) = env.report(ALPHA_TOKEN, None, &other).await;
    assert_eq!(status, 400);
    assert_eq!(problem["errors"][0]["header"], "Idempotency-Key");
}

#[tokio::test]
async fn reconciliation_classifies_every_call_with_its_flags() {
    let mut options = mock_teams::TeamsOptions::loopback(T0);
    options.store.reporting_deadline_ms = 3_600_000;
    let env = start_with(options).await;
    let n = alpha_number(1);
    for (id, talk) in [
        ("m", 60_000),
        ("d", 60_000),
        ("x", 30_000),
        ("late", 10_000),
        ("c", 20_000),
    ] {
        env.teams.add_call(call(id, &n, 0, Some(talk))).unwrap();
    }
    env.teams.add_call(call("unanswered", &n, 0, None)).unwrap();
    env.teams.advance_to(T0 + 600_000).unwrap();
    let c = T0 + 5_000;
    let first = json!({ "records": [
        report_record("m", &n, c, 60_500),          // within 1000 ms: matched
        report_record("d", &n, c, 120_000),         // +60 s: drift
        report_record("c", &n, c, 20_000),          // matched, corrected below
        report_record("ghost", &n, c, 5_000),       // no such call: unexpected
        report_record("unanswered", &n, c, 1_000),  // not answered: unexpected
    ]});
    assert_eq!(env.report(ALPHA_TOKEN, Some("k1"), &first).await.0, 200);
    let second = json!({ "records": [
        report_record("m", &n, c, 60_500),          // identical again: duplicate
        report_record("c", &n, c, 25_000),          // different: corrected, now drift
    ]});
    assert_eq!(env.report(ALPHA_TOKEN, Some("k2"), &second).await.0, 200);
    env.teams.advance_to(T0 + 2 * 3_600_000).unwrap();
    let late = json!({ "records": [report_record("late", &n, c, 10_000)] });
    assert_eq!(env.report(ALPHA_TOKEN, Some("k3"), &late).await.0, 200);
    // "x" is never reported: missing.

    let (status, _, summary) = env
        .get(ALPHA_TOKEN, &format!("/oc/v1/reconciliation?{}", window()))
        .await;
    assert_eq!(status, 200);
    let summary: oc_protocol::ReconciliationSummary = serde_json::from_value(summary).unwrap();
    summary.validate().unwrap();
    assert_eq!(
        (
            summary.counts.matched,
            summary.counts.drift,
            summary.counts.missing,
            summary.counts.unexpected
        ),
        (2, 2, 1, 2)
    );
    assert_eq!(
        (
            summary.flags.late,
            summary.flags.duplicate,
            summary.flags.corrected
        ),
        (1, 1, 1)
    );
    assert_eq!(summary.match_rate, Some(2.0 / 5.0));
    assert_eq!(summary.drift_ms.min, Some(0));
    assert_eq!(summary.drift_ms.max, Some(60_000));
    // Teams: 60 + 60 + 30 + 10 + 20 s; carrier: 60.5 + 120 + 25 + 10 + 5 + 1 s.
    assert_eq!(summary.minutes.teams, 180_000.0 / 60_000.0);
    assert_eq!(summary.minutes.carrier, 221_500.0 / 60_000.0);

    let items = |class: &str| {
        let env = &env;
        let path = format!(
            "/oc/v1/reconciliation/items?class={class}&{}&pageSize=1",
            window()
        );
        async move { env.follow(ALPHA_TOKEN, &path).await.0 }
    };
    let ids = |items: Vec<Value>| -> Vec<String> {
        items
            .iter()
            .map(|i| i["callId"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(items("matched").await), ["m", "late"]);
    assert_eq!(ids(items("drift").await), ["d", "c"]);
    assert_eq!(ids(items("missing").await), ["x"]);
    let unexpected = items("unexpected").await;
    assert_eq!(ids(unexpected.clone()), ["unanswered", "ghost"]);
    let drift = items("drift").await;
    assert_eq!(drift[0]["differenceMs"], 60_000);
    assert_eq!(drift[1]["corrected"], true);
    assert!(unexpected[1].get("teamsDurationMs").is_none());
}

#[tokio::test]
async fn carriers_are_isolated() {
    let env = start().await;
    env.teams
        .add_call(call("a-1", &alpha_number(1), 0, Some(1_000)))
        .unwrap();
    env.teams.advance_to(T0 + 3_600_000).unwrap();
    let (status, headers, problem) = env.get("", "/oc/v1/cdrs/delta").await;
    assert_eq!(status, 401);
    assert_eq!(headers["www-authenticate"], "Bearer");
    assert_eq!(problem["type"], "urn:oc:problem:unauthorized");
    assert_eq!(env.get("nobody", "/oc/v1/cdrs/delta").await.0, 401);
    // Beta sees none of alpha's records, and alpha's links are not beta's.
    let (beta_records, _) = env.follow(BETA_TOKEN, "/oc/v1/cdrs/delta").await;
    assert!(beta_records.is_empty());
    let (_, _, page) = env.get(ALPHA_TOKEN, "/oc/v1/cdrs/delta?pageSize=1").await;
    let alpha_link = page["deltaLink"].as_str().unwrap();
    let (status, _, problem) = env.get(BETA_TOKEN, alpha_link).await;
    assert_eq!(status, 404, "{problem}");
    // Beta reporting alpha's call changes nothing of alpha's and is beta's own unexpected.
    let body = json!({ "records": [report_record("a-1", &alpha_number(1), T0 + 5_000, 1_000)] });
    assert_eq!(env.report(BETA_TOKEN, Some("k"), &body).await.0, 200);
    let alpha = env
        .teams
        .reconciliation("alpha", T0, T0 + 86_400_000)
        .unwrap();
    let beta = env
        .teams
        .reconciliation("beta", T0, T0 + 86_400_000)
        .unwrap();
    assert_eq!((alpha.counts.missing, alpha.counts.matched), (1, 0));
    assert_eq!(beta.counts.unexpected, 1);
}

#[actix_rt::test]
async fn runs_inside_an_actix_system_too() {
    let env = start().await;
    let (status, _, page) = env.get(ALPHA_TOKEN, "/oc/v1/numbers?pageSize=1").await;
    assert_eq!(status, 200);
    assert_eq!(page["value"].as_array().unwrap().len(), 1);
    env.teams.stop().await;
}

/// A run reserves room for the calls it expects, so that Teams' tables do not grow by doubling
/// (holding the old and the new table at once) as it goes.
#[tokio::test]
async fn calls_within_the_reserved_room_do_not_grow_the_tables() {
    let env = start().await;
    let calls = 600;
    env.teams
        .with_store(|s| s.reserve_calls("alpha", calls))
        .unwrap();
    let reserved = env.teams.with_store(|s| s.call_heap_bytes());
    for i in 0..calls {
        let number = alpha_number(u32::try_from(i % 10).unwrap());
        let talk = (i % 5 != 0).then_some(30_000);
        env.teams
            .add_call(call(
                &format!("call-{i:09}"),
                &number,
                i64::try_from(i).unwrap(),
                talk,
            ))
            .unwrap();
    }
    env.teams.advance_to(T0 + 2 * 3_600_000).unwrap();
    assert_eq!(env.teams.with_store(|s| s.call_heap_bytes()), reserved);
    let (status, _, page) = env
        .get(ALPHA_TOKEN, "/oc/v1/cdrs/delta?pageSize=1000")
        .await;
    assert_eq!(status, 200);
    assert_eq!(page["value"].as_array().unwrap().len(), calls);
    assert!(
        env.teams
            .with_store(|s| s.reserve_calls("nobody", 1))
            .is_err(),
        "an unknown carrier is refused"
    );
}
