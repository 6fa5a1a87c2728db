//! Injected faults: 429 with Retry-After (and a request sent too early), 503, added latency;
//! quality records served misclassified; each recorded with its exchange.

use mock_teams::{ExchangeDetail, FaultSettings, InjectedFault, TeamsOptions};

use crate::common::*;

#[tokio::test]
async fn throttling_answers_429_with_retry_after_and_catches_early_requests() {
    let mut options = TeamsOptions::loopback(T0);
    options.faults = FaultSettings {
        throttle_share: 1.0,
        retry_after_secs: 30,
        ..FaultSettings::default()
    };
    let env = start_with(options).await;
    let (status, headers, problem) = env.get(ALPHA_TOKEN, "/oc/v1/cdrs/delta").await;
    assert_eq!(status, 429);
    assert_eq!(headers["retry-after"], "30");
    assert_eq!(problem["type"], "urn:oc:problem:too-many-requests");
    let (status, headers, _) = env.get(ALPHA_TOKEN, "/oc/v1/cdrs/delta").await;
    assert_eq!(status, 429);
    let left: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&left));
    let exchanges = env.exchanges.lock().unwrap();
    let feed: Vec<_> = exchanges
        .iter()
        .filter(|e| e.url.starts_with("/oc/v1/cdrs/delta"))
        .collect();
    assert_eq!(
        feed[0].fault,
        Some(InjectedFault::Throttled {
            retry_after_secs: 30
        })
    );
    assert!(matches!(
        feed[1].detail,
        Some(ExchangeDetail::EarlyAfterThrottle { .. })
    ));
    assert_eq!(
        feed[1].fault, None,
        "the early request is the carrier's doing"
    );
}

#[tokio::test]
async fn server_errors_and_latency_are_injected_and_recorded() {
    let mut options = TeamsOptions::loopback(T0);
    options.faults = FaultSettings {
        error_share: 1.0,
        ..FaultSettings::default()
    };
    let env = start_with(options).await;
    let body = serde_json::json!({ "records": [report_record("x", &alpha_number(1), T0, 1_000)] });
    let (status, problem) = env.report(ALPHA_TOKEN, Some("k"), &body).await;
    assert_eq!(status, 503, "{problem}");
    let summary = env
        .teams
        .reconciliation("alpha", T0, T0 + 86_400_000)
        .unwrap();
    assert_eq!(summary.counts.unexpected, 0, "a 503 did nothing");
    let recorded = env.exchanges.lock().unwrap().last().unwrap().fault;
    assert_eq!(recorded, Some(InjectedFault::ServerError { status: 503 }));

    let mut options = TeamsOptions::loopback(T0);
    options.faults.latency_ms = 50;
    let slow = start_with(options).await;
    let started = std::time::Instant::now();
    assert_eq!(slow.get(ALPHA_TOKEN, "/oc/v1/numbers").await.0, 200);
    assert!(started.elapsed() >= std::time::Duration::from_millis(50));
    let recorded = slow.exchanges.lock().unwrap().last().unwrap().fault;
    assert_eq!(recorded, Some(InjectedFault::Latency { ms: 50 }));
}

#[tokio::test]
async fn misclassified_quality_records_are_served_flipped_and_recorded() {
    let mut options = TeamsOptions::loopback(T0);
    options.faults = FaultSettings {
        quality_misclassify_share: 1.0,
        ..FaultSettings::default()
    };
    let env = start_with(options).await;
    let mut impaired = call("m-1", &alpha_number(1), 0, Some(60_000));
    impaired.quality = Some(quality(3_000, 150_000)); // 15 % loss: poor
    env.teams.add_call(impaired).unwrap();
    env.teams
        .add_call(call("m-2", &alpha_number(2), 0, Some(60_000)))
        .unwrap(); // 0.1 % loss: not poor
    env.teams.advance_to(T0 + 3_600_000).unwrap();
    let (records, _) = env.follow(ALPHA_TOKEN, "/oc/v1/quality/delta").await;
    let served: Vec<(String, bool)> = records
        .iter()
        .map(|r| (r["callId"].as_str().unwrap().to_owned(), r["poor"] == true))
        .collect();
    assert_eq!(
        served,
        [
            ("m-1".to_owned(), false),
            ("m-1".to_owned(), false),
            ("m-2".to_owned(), true),
            ("m-2".to_owned(), true),
        ]
    );
    let exchanges = env.exchanges.lock().unwrap();
    let flipped: Vec<&[u32]> = exchanges
        .iter()
        .filter_map(|e| match &e.detail {
            Some(ExchangeDetail::FeedPage {
                feed,
                misclassified,
                ..
            }) if feed == "quality" => Some(misclassified.as_slice()),
            _ => None,
        })
        .collect();
    assert_eq!(flipped, [[0, 1, 2, 3].as_slice()]);
}

/// Teams' own page cap holds whatever `pageSize` asks, and only the page without `nextLink`
/// ends the chain [CDR-PAGING]; records published in bursts become available together, at
/// burst times counted from the start.
#[tokio::test]
async fn pages_are_capped_and_records_published_in_bursts() {
    let mut options = TeamsOptions::loopback(T0);
    options.faults = FaultSettings {
        page_cap: 3,
        publish_every_ms: 600_000,
        ..FaultSettings::default()
    };
    let env = start_with(options).await;
    // Ten answered calls a minute apart; each record is due 30 s after its end.
    for i in 0..10u32 {
        env.teams
            .add_call(call(
                &format!("c-{i}"),
                &alpha_number(i),
                i64::from(i) * 60,
                Some(10_000),
            ))
            .unwrap();
    }
    // The first is due at 45 s, so nothing is available before the first burst at 10 min.
    env.teams.advance_to(T0 + 599_999).unwrap();
    let (items, _) = env
        .follow(ALPHA_TOKEN, "/oc/v1/cdrs/delta?pageSize=1000")
        .await;
    assert!(items.is_empty(), "{items:?}");
    env.teams.advance_to(T0 + 600_000).unwrap();
    let (status, _, first) = env
        .get(ALPHA_TOKEN, "/oc/v1/cdrs/delta?pageSize=1000")
        .await;
    assert_eq!(status, 200);
    assert_eq!(first["value"].as_array().unwrap().len(), 3, "capped at 3");
    assert!(first["nextLink"].is_string(), "more pages follow: {first}");
    let (items, delta) = env
        .follow(ALPHA_TOKEN, "/oc/v1/cdrs/delta?pageSize=1000")
        .await;
    assert_eq!(
        items.len(),
        10,
        "every record of the burst, over four pages"
    );
    assert!(delta.is_some());
    let available: std::collections::BTreeSet<&str> = items
        .iter()
        .map(|r| r["availableDateTime"].as_str().unwrap())
        .collect();
    assert_eq!(
        available.into_iter().collect::<Vec<_>>(),
        [oc_protocol::format_timestamp(T0 + 600_000).as_str()]
    );
}

/// Every third new report is applied and then answered 503, recorded as a lost answer with its
/// report detail; a retry with the same key and body is answered from memory and changes
/// nothing, a retry under a new key reports the call again (a duplicate).
#[tokio::test]
async fn an_applied_report_can_lose_its_answer() {
    let mut options = TeamsOptions::loopback(T0);
    options.faults = FaultSettings {
        answer_loss_every: 3,
        ..FaultSettings::default()
    };
    let env = start_with(options).await;
    let number = alpha_number(1);
    let bodies: Vec<serde_json::Value> = (0..3)
        .map(|i| serde_json::json!({ "records": [report_record(&format!("x-{i}"), &number, T0, 1_000)] }))
        .collect();
    assert_eq!(env.report(ALPHA_TOKEN, Some("k0"), &bodies[0]).await.0, 200);
    assert_eq!(env.report(ALPHA_TOKEN, Some("k1"), &bodies[1]).await.0, 200);
    let (status, problem) = env.report(ALPHA_TOKEN, Some("k2"), &bodies[2]).await;
    assert_eq!(status, 503, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("same Idempotency-Key"),
        "{problem}"
    );
    let lost = env.exchanges.lock().unwrap().last().unwrap().clone();
    assert_eq!(lost.fault, Some(InjectedFault::AnswerLost { status: 503 }));
    assert!(matches!(
        lost.detail,
        Some(ExchangeDetail::DurationReport {
            accepted: 1,
            replayed: false,
            ..
        })
    ));
    // It was applied: the retry is answered from memory.
    let (status, answer) = env.report(ALPHA_TOKEN, Some("k2"), &bodies[2]).await;
    assert_eq!((status, answer["accepted"].as_u64()), (200, Some(1)));
    let replay = env.exchanges.lock().unwrap().last().unwrap().clone();
    assert!(matches!(
        replay.detail,
        Some(ExchangeDetail::DurationReport { replayed: true, .. })
    ));
    // Under a new key the same records are reported again: a duplicate.
    assert_eq!(env.report(ALPHA_TOKEN, Some("k3"), &bodies[2]).await.0, 200);
    let items = env
        .teams
        .reconciliation_items(
            "alpha",
            oc_protocol::ReconClass::Unexpected,
            T0 - 86_400_000,
            T0 + 86_400_000,
        )
        .unwrap();
    let x2 = items
        .iter()
        .find(|i| i.call_id == "x-2")
        .expect("x-2 reconciled");
    assert!(x2.duplicate, "{x2:?}");
}
