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
