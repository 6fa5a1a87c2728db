//! A carrier flooding the Teams API: the rate limit answers 429 with `Retry-After` and records
//! why, a request that ignores it is caught [CDR-THROTTLE], and clients that stall mid-request
//! hold up nobody else.

use std::time::{Duration, Instant};

use mock_teams::{ExchangeDetail, InjectedFault, RateLimit, TeamsOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

use crate::common::*;

fn limited(requests_per_second: u32, burst: u32) -> TeamsOptions {
    let mut options = TeamsOptions::loopback(T0);
    options.rate_limit = Some(RateLimit {
        requests_per_second,
        burst,
    });
    options
}

/// Statuses of `n` GETs of `path` sent one after another, and how long they took.
async fn burst_of(env: &Env, token: &str, path: &str, n: usize) -> (Vec<u16>, Duration) {
    let started = Instant::now();
    let mut statuses = Vec::with_capacity(n);
    for _ in 0..n {
        let (status, headers, problem) = env.get(token, path).await;
        if status == 429 {
            let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
            assert!(retry_after >= 1, "Retry-After {retry_after}");
            assert_eq!(problem["type"], "urn:oc:problem:too-many-requests");
        }
        statuses.push(status);
    }
    (statuses, started.elapsed())
}

#[tokio::test]
async fn a_flood_gets_429_with_retry_after_beyond_the_burst() {
    let env = start_with(limited(1, 5)).await;
    let (statuses, elapsed) = burst_of(&env, ALPHA_TOKEN, "/oc/v1/numbers", 20).await;
    let ok = statuses.iter().filter(|s| **s == 200).count();
    // The bucket starts full; it gains one token a second while the loop runs.
    let refilled = usize::try_from(elapsed.as_secs()).unwrap() + 1;
    assert!(
        (5..=5 + refilled).contains(&ok),
        "{ok} answered in {elapsed:?}: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "{statuses:?}"
    );
    assert_eq!(&statuses[..5], [200; 5]);

    // Beta has its own bucket.
    assert_eq!(env.get(BETA_TOKEN, "/oc/v1/numbers").await.0, 200);

    let exchanges = env.exchanges.lock().unwrap();
    let refused: Vec<_> = exchanges.iter().filter(|e| e.status == Some(429)).collect();
    assert_eq!(refused.len(), 20 - ok);
    assert!(
        refused
            .iter()
            .all(|e| e.carrier.as_deref() == Some("alpha"))
    );
    let first = refused[0];
    assert_eq!(
        first.fault,
        Some(InjectedFault::RateLimited {
            retry_after_secs: 1
        }),
        "the rate limit is recorded as the harness's doing"
    );
    assert_eq!(first.detail, None, "the first 429 was not early");
    // Sent straight after a 429, the next requests ignored its Retry-After [CDR-THROTTLE].
    assert!(
        refused[1..]
            .iter()
            .any(|e| matches!(e.detail, Some(ExchangeDetail::EarlyAfterThrottle { .. }))),
        "{refused:#?}"
    );
}

#[tokio::test]
async fn requests_without_a_valid_token_share_one_bucket() {
    let env = start_with(limited(1, 2)).await;
    let started = Instant::now();
    let mut statuses = Vec::new();
    for i in 0..10 {
        statuses.push(env.get(&format!("made-up-{i}"), "/oc/v1/numbers").await.0);
    }
    let unauthorized = statuses.iter().filter(|s| **s == 401).count();
    let refilled = usize::try_from(started.elapsed().as_secs()).unwrap() + 1;
    assert!(
        (2..=2 + refilled).contains(&unauthorized),
        "made-up tokens do not get a bucket each: {statuses:?}"
    );
    assert_eq!(
        unauthorized + statuses.iter().filter(|s| **s == 429).count(),
        10
    );
    // A carrier's bucket is its own.
    assert_eq!(env.get(ALPHA_TOKEN, "/oc/v1/numbers").await.0, 200);
    let exchanges = env.exchanges.lock().unwrap();
    let limited = exchanges
        .iter()
        .find(|e| e.status == Some(429))
        .expect("a 429");
    assert_eq!(limited.carrier, None);
    assert_eq!(
        limited.detail, None,
        "no carrier, so no window to be early for"
    );
    assert!(matches!(
        limited.fault,
        Some(InjectedFault::RateLimited { .. })
    ));
}

#[tokio::test]
async fn a_limited_report_is_refused_unread_and_changes_nothing() {
    let env = start_with(limited(1, 1)).await;
    let n = alpha_number(1);
    let one = serde_json::json!({ "records": [report_record("a", &n, T0, 1_000)] });
    assert_eq!(env.report(ALPHA_TOKEN, Some("k1"), &one).await.0, 200);
    // A large body, so that the server answers before it has all of it.
    let records: Vec<_> = (0..5_000)
        .map(|i| report_record(&format!("flood-{i}"), &n, T0, 1_000))
        .collect();
    let big = serde_json::json!({ "records": records });
    assert!(big.to_string().len() > 500_000);
    let (status, problem) = env.report(ALPHA_TOKEN, Some("k2"), &big).await;
    assert_eq!(status, 429, "{problem}");
    let summary = env
        .teams
        .reconciliation("alpha", T0, T0 + 86_400_000)
        .unwrap();
    assert_eq!(
        summary.counts.unexpected, 1,
        "only the first report counted"
    );
    let exchanges = env.exchanges.lock().unwrap();
    let last = exchanges.last().unwrap();
    assert_eq!(last.request_body, None, "the body was not read");
    assert!(matches!(
        last.fault,
        Some(InjectedFault::RateLimited { .. })
    ));
}

#[tokio::test]
async fn without_a_rate_limit_nothing_is_refused() {
    let env = start().await;
    let (statuses, _) = burst_of(&env, ALPHA_TOKEN, "/oc/v1/numbers", 30).await;
    assert_eq!(statuses, [200; 30]);
}

#[tokio::test]
async fn clients_stalled_mid_request_hold_up_nobody_and_are_cut_off() {
    let env = start().await;
    let addr = env.teams.addr();
    let checked = timeout(Duration::from_secs(30), async {
        // More stalled connections than workers: a worker serves many connections at once.
        let mut stalled = Vec::new();
        for _ in 0..16 {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream
                .write_all(b"GET /oc/v1/numbers HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthor")
                .await
                .unwrap();
            stalled.push(stream);
        }
        // And one that sent its head but stalls its body.
        let mut half_body = tokio::net::TcpStream::connect(addr).await.unwrap();
        half_body
            .write_all(
                format!(
                    "POST /oc/v1/call-durations HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                     Authorization: Bearer {ALPHA_TOKEN}\r\nIdempotency-Key: k\r\n\
                     Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"rec"
                )
                .as_bytes(),
            )
            .await
            .unwrap();
        for _ in 0..5 {
            assert_eq!(env.get(ALPHA_TOKEN, "/oc/v1/numbers").await.0, 200);
        }
        // The server gives up on an unfinished request head (client_request_timeout, 5 s):
        // it answers 408 or just closes, rather than waiting for ever.
        let mut buf = Vec::new();
        let read = timeout(Duration::from_secs(15), stalled[0].read_to_end(&mut buf)).await;
        assert!(
            read.is_ok(),
            "a stalled request head still held its connection after 15 s"
        );
        let answer = String::from_utf8_lossy(&buf);
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
            "{answer}"
        );
        drop(half_body);
    })
    .await;
    assert!(checked.is_ok(), "the server did not answer within 30 s");
}
