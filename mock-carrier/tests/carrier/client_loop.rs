//! The client loop against the fake Teams: paging, kept deltaLinks, throttling, retries,
//! batching, corrections, and the ground truth of drifted calls.

use std::time::Duration;

use mock_carrier::{DriftModel, MockCarrier};
use oc_protocol::ReconClass;
use serde_json::json;
use wiremock::ResponseTemplate;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate as Template};

use crate::teams::{FakeTeams, T0, cdr, quality, unanswered_cdr};

const N1: &str = "+14255550100";
const HOUR: i64 = 3_600_000;

fn cdr_requests(teams: &FakeTeams) -> Vec<String> {
    teams
        .cdrs
        .lock()
        .unwrap()
        .seen
        .iter()
        .map(|s| s.path_and_query.clone())
        .collect()
}

#[tokio::test]
async fn a_configured_page_size_is_asked_for_at_a_chain_start_only() {
    let teams = FakeTeams::start(2).await;
    teams.add_cdrs((1..=5).map(|i| cdr(&format!("c{i}"), N1, i, 1_000, 1)));
    teams.add_quality([quality("c1"), quality("c2"), quality("c3")]);
    let mut config = teams.config();
    config.client.page_size = Some(3);
    let carrier = MockCarrier::start(config).unwrap();

    let first = carrier.poll_cycle(T0 + HOUR).await.unwrap();
    // Pages of three, not the fake's two: the chain started with the carrier's pageSize.
    assert_eq!((first.cdr_pages, first.cdr_records), (2, 5));
    assert_eq!((first.quality_pages, first.quality_records), (1, 3));
    let base = "/oc/v1/cdrs/delta";
    assert_eq!(
        cdr_requests(&teams),
        [
            format!("{base}?pageSize=3"),
            format!("{base}?cursor=3&pageSize=3"),
        ]
    );
    let quality_requests: Vec<String> = teams
        .quality
        .lock()
        .unwrap()
        .seen
        .iter()
        .map(|s| s.path_and_query.clone())
        .collect();
    assert_eq!(quality_requests, ["/oc/v1/quality/delta?pageSize=3"]);
    // The next cycle follows the kept deltaLink as given, adding nothing.
    teams.add_cdrs([cdr("c6", N1, 6, 1_000, 1)]);
    carrier.poll_cycle(T0 + 2 * HOUR).await.unwrap();
    assert_eq!(cdr_requests(&teams)[2], format!("{base}?cursor=5&delta=1"));
}

#[tokio::test]
async fn follows_next_links_keeps_the_delta_link_and_reports_each_call_once() {
    let teams = FakeTeams::start(2).await;
    teams.add_cdrs([
        cdr("c1", N1, 0, 61_000, 1),
        cdr("c2", N1, 10, 5_000, 1),
        unanswered_cdr("c3", N1, 20),
        cdr("c4", N1, 30, 120_000, 1),
        cdr("c5", N1, 40, 1, 1),
    ]);
    teams.add_quality([quality("c1"), quality("c2"), quality("c4")]);
    let carrier = MockCarrier::start(teams.config()).unwrap();

    let first = carrier.poll_cycle(T0 + HOUR).await.unwrap();
    assert_eq!((first.cdr_pages, first.cdr_records), (3, 5));
    assert!(first.quality_read);
    assert_eq!((first.quality_pages, first.quality_records), (2, 3));
    assert_eq!((first.batches, first.accepted, first.rejected), (1, 4, 0));
    let base = "/oc/v1/cdrs/delta";
    assert_eq!(
        cdr_requests(&teams),
        [
            base.to_owned(),
            format!("{base}?cursor=2&pageSize=2"),
            format!("{base}?cursor=4&pageSize=2"),
        ]
    );

    teams.add_cdrs([cdr("c6", N1, 50, 30_000, 1)]);
    let second = carrier.poll_cycle(T0 + 2 * HOUR).await.unwrap();
    assert_eq!(
        (second.cdr_pages, second.cdr_records, second.accepted),
        (1, 1, 1)
    );
    // The second cycle starts exactly at the kept deltaLink.
    assert_eq!(cdr_requests(&teams)[3], format!("{base}?cursor=5&delta=1"));

    let accepted = teams.accepted();
    assert_eq!(
        accepted.keys().collect::<Vec<_>>(),
        ["c1", "c2", "c4", "c5", "c6"]
    );
    assert!(accepted.values().all(|reports| reports.len() == 1));
    assert_eq!(accepted["c1"][0].duration_ms, 61_000);
    let truth = carrier.ground_truth();
    assert_eq!(truth.counts.matched, 5);
    assert_eq!(
        truth.counts.drift + truth.counts.missing + truth.counts.unexpected,
        0
    );
    assert!(
        truth
            .calls
            .iter()
            .all(|c| c.tags.is_empty() && !c.late && !c.duplicate)
    );
    carrier.stop().await;
}

/// A chain longer than `max_pages_per_chain` fails the cycle at the limit, and the page after
/// the limit is never asked for, although each page's body names it at its end.
#[tokio::test]
async fn a_chain_past_the_page_limit_fails_without_asking_for_more() {
    let teams = FakeTeams::start(1).await;
    teams.add_cdrs((1..=5).map(|i| cdr(&format!("c{i}"), N1, i, 1_000, 1)));
    let mut config = teams.config();
    config.client.max_pages_per_chain = 2;
    let carrier = MockCarrier::start(config).unwrap();

    let err = carrier.poll_cycle(T0 + HOUR).await.unwrap_err();
    assert!(
        err.to_string().contains("did not end within 2 pages"),
        "{err}"
    );
    let base = "/oc/v1/cdrs/delta";
    assert_eq!(
        cdr_requests(&teams),
        [base.to_owned(), format!("{base}?cursor=1&pageSize=1")]
    );
    carrier.stop().await;
}

/// Records are read borrowing their texts from the page; a text a JSON escape is written in
/// cannot be borrowed and must be read all the same.
#[tokio::test]
async fn a_record_whose_texts_carry_json_escapes_is_read_and_reported() {
    let teams = FakeTeams::start(10).await;
    let escaped = r#"c"7\x"#;
    teams.add_cdrs([cdr("c1", N1, 0, 61_000, 1), cdr(escaped, N1, 10, 5_000, 1)]);
    let carrier = MockCarrier::start(teams.config()).unwrap();

    let outcome = carrier.poll_cycle(T0 + HOUR).await.unwrap();
    assert_eq!((outcome.cdr_records, outcome.accepted), (2, 2));
    let accepted = teams.accepted();
    assert_eq!(accepted.keys().collect::<Vec<_>>(), [escaped, "c1"]);
    assert_eq!(accepted[escaped][0].duration_ms, 5_000);
    carrier.stop().await;
}

/// A page is read in one pass when every record on it reads; one that does not (a record of
/// the wrong shape, or an invalid one) is read record by record, and only the bad ones are
/// skipped.
#[tokio::test]
async fn a_bad_record_on_a_page_spoils_only_itself() {
    let teams = FakeTeams::start(10).await;
    let mut unreadable = cdr("c2", N1, 5, 7_000, 1);
    unreadable["durationMs"] = json!("seven seconds");
    let mut invalid = cdr("c3", N1, 6, 8_000, 1);
    invalid["telephoneNumber"] = json!("not a number");
    teams.add_cdrs([
        cdr("c1", N1, 0, 61_000, 1),
        unreadable,
        invalid,
        cdr("c4", N1, 10, 5_000, 1),
    ]);
    let carrier = MockCarrier::start(teams.config()).unwrap();

    let outcome = carrier.poll_cycle(T0 + HOUR).await.unwrap();
    assert_eq!((outcome.cdr_records, outcome.accepted), (4, 2));
    let accepted = teams.accepted();
    assert_eq!(accepted.keys().collect::<Vec<_>>(), ["c1", "c4"]);
    carrier.stop().await;
}

/// The quality feed is read beside the CDRs and reports (its pages on the carrier's I/O
/// thread): a broken quality page is an error of the cycle that names its URL, and the CDRs
/// and reports of the cycle still happen; a quality 429 is waited out and counted.
#[tokio::test]
async fn a_broken_quality_page_fails_the_cycle_but_not_its_reports() {
    let teams = FakeTeams::start(10).await;
    teams.add_cdrs([cdr("c1", N1, 0, 61_000, 1)]);
    teams.add_quality([quality("c1")]);
    teams
        .quality
        .lock()
        .unwrap()
        .script
        .push_back(ResponseTemplate::new(200).set_body_string(r#"{"value":[{"callId":"c1"},"#));
    let carrier = MockCarrier::start(teams.config()).unwrap();
    let err = carrier.poll_cycle(T0 + HOUR).await.unwrap_err().to_string();
    assert!(err.contains("failed to read the answer of"), "{err}");
    assert!(err.contains("quality"), "{err}");
    assert_eq!(
        teams.accepted().len(),
        1,
        "the report went out all the same"
    );

    teams
        .quality
        .lock()
        .unwrap()
        .script
        .push_back(ResponseTemplate::new(429).insert_header("Retry-After", "0"));
    let outcome = carrier.poll_cycle(T0 + 2 * HOUR).await.unwrap();
    assert!(outcome.quality_read);
    assert_eq!((outcome.quality_records, outcome.throttled), (1, 1));
    carrier.stop().await;
}

/// The quality feed is read beside the reports, never beside the CDR feed: a certifying
/// checker sees only the wire and takes the span between two ends of the CDR feed for one poll
/// cycle, so every quality request of a cycle must come after its CDR feed's last page.
#[tokio::test]
async fn the_quality_feed_is_read_after_the_cdr_feed_ends() {
    let teams = FakeTeams::start(2).await;
    teams.add_cdrs((0..7).map(|i| cdr(&format!("c{i}"), N1, i, 5_000, 1)));
    teams.add_quality((0..7).map(|i| quality(&format!("c{i}"))));
    let carrier = MockCarrier::start(teams.config()).unwrap();
    for cycle in 1..=3 {
        let outcome = carrier.poll_cycle(T0 + cycle * HOUR).await.unwrap();
        assert!(outcome.quality_read);
    }
    let paths: Vec<String> = teams
        .server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.url.path().to_owned())
        .filter(|p| p.contains("cdrs") || p.contains("quality"))
        .collect();
    // Per cycle: CDR pages up to the feed's end, then quality pages; the next cycle's CDRs
    // come only after.
    let mut cycles = 0;
    let mut in_quality = false;
    for path in &paths {
        match (path.contains("quality"), in_quality) {
            (true, false) => {
                in_quality = true;
                cycles += 1;
            }
            (false, true) => in_quality = false,
            _ => {}
        }
    }
    assert_eq!(cycles, 3, "CDR and quality requests interleaved: {paths:?}");
    carrier.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_429_is_waited_out_for_its_retry_after_on_the_paused_clock() {
    let teams = FakeTeams::start(10).await;
    teams.add_cdrs([cdr("c1", N1, 0, 61_000, 1)]);
    teams
        .cdrs
        .lock()
        .unwrap()
        .script
        .push_back(ResponseTemplate::new(429).insert_header("Retry-After", "30"));
    let carrier = MockCarrier::start(teams.config()).unwrap();
    let real = std::time::Instant::now();
    let paused = tokio::time::Instant::now();
    let outcome = carrier.poll_cycle(T0 + HOUR).await.unwrap();
    let waited = paused.elapsed();
    assert_eq!(outcome.throttled, 1);
    assert_eq!(outcome.accepted, 1);
    assert!(waited >= Duration::from_secs(30), "waited only {waited:?}");
    assert!(waited < Duration::from_secs(31), "waited {waited:?}");
    assert!(
        real.elapsed() < Duration::from_secs(10),
        "the wait was not on the paused clock"
    );
    // The request after the 429 is the same request.
    let seen = cdr_requests(&teams);
    assert_eq!(seen[0], seen[1]);
    carrier.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_5xx_is_retried_with_the_same_key_and_the_same_body() {
    let teams = FakeTeams::start(10).await;
    teams.add_cdrs([cdr("c1", N1, 0, 61_000, 1), cdr("c2", N1, 5, 1_000, 1)]);
    {
        let mut durations = teams.durations.lock().unwrap();
        durations.script.push_back(Template::new(503));
        durations.script.push_back(Template::new(500));
    }
    let carrier = MockCarrier::start(teams.config()).unwrap();
    let outcome = carrier.poll_cycle(T0 + HOUR).await.unwrap();
    assert_eq!((outcome.retried, outcome.accepted), (2, 2));
    let log = teams.durations.lock().unwrap().log.clone();
    assert_eq!(log.len(), 3);
    assert!(log[0].0.is_some());
    assert!(
        log.iter()
            .all(|(key, body, _)| *key == log[0].0 && *body == log[0].1)
    );
    carrier.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_batch_that_cannot_be_delivered_now_is_sent_next_cycle_with_the_same_key_and_body() {
    let teams = FakeTeams::start(10).await;
    teams.add_cdrs([cdr("c1", N1, 0, 61_000, 1)]);
    let mut config = teams.config();
    config.client.max_retries = 1;
    {
        let mut durations = teams.durations.lock().unwrap();
        durations
            .script
            .extend([Template::new(500), Template::new(500)]);
    }
    let carrier = MockCarrier::start(config).unwrap();
    let err = carrier.poll_cycle(T0 + HOUR).await.unwrap_err();
    assert!(err.to_string().contains("500"), "{err}");
    let outcome = carrier.poll_cycle(T0 + 2 * HOUR).await.unwrap();
    assert_eq!(outcome.accepted, 1);
    let log = teams.durations.lock().unwrap().log.clone();
    assert_eq!(log.len(), 3);
    assert!(
        log.iter()
            .all(|(key, body, _)| *key == log[0].0 && *body == log[0].1)
    );
    carrier.stop().await;
}

#[tokio::test]
async fn more_than_1000_due_records_go_in_batches_of_1000_under_distinct_keys() {
    let teams = FakeTeams::start(1000).await;
    teams.add_cdrs((0..1500).map(|i| cdr(&format!("c{i:04}"), N1, i, 60_000, 1)));
    let carrier = MockCarrier::start(teams.config()).unwrap();
    let outcome = carrier.poll_cycle(T0 + HOUR).await.unwrap();
    assert_eq!(
        (outcome.cdr_pages, outcome.batches, outcome.accepted),
        (2, 2, 1500)
    );
    let log = teams.durations.lock().unwrap().log.clone();
    let sizes: Vec<usize> = log
        .iter()
        .map(|(_, body, _)| {
            serde_json::from_slice::<serde_json::Value>(body).unwrap()["records"]
                .as_array()
                .unwrap()
                .len()
        })
        .collect();
    assert_eq!(sizes, [1000, 500]);
    assert_ne!(log[0].0, log[1].0);
    carrier.stop().await;
}

#[tokio::test]
async fn a_corrected_cdr_is_recomputed_and_reported_again() {
    let teams = FakeTeams::start(10).await;
    teams.add_cdrs([cdr("c1", N1, 0, 60_000, 1)]);
    let carrier = MockCarrier::start(teams.config()).unwrap();
    carrier.poll_cycle(T0 + HOUR).await.unwrap();
    teams.add_cdrs([cdr("c1", N1, 0, 65_000, 2)]);
    let outcome = carrier.poll_cycle(T0 + 2 * HOUR).await.unwrap();
    assert_eq!(outcome.accepted, 1);
    let reports = &teams.accepted()["c1"];
    assert_eq!(
        reports.iter().map(|r| r.duration_ms).collect::<Vec<_>>(),
        [60_000, 65_000]
    );
    let truth = carrier.ground_truth();
    let call = &truth.calls[0];
    assert_eq!(
        (call.teams_version, call.teams_duration_ms),
        (Some(2), Some(65_000))
    );
    assert_eq!(call.expected_class, Some(ReconClass::Matched));
    assert!(call.corrected && !call.duplicate);
    carrier.stop().await;
}

#[tokio::test]
async fn resync_reads_every_page_of_numbers() {
    let teams = FakeTeams::start(10).await;
    let number = |n: &str, seq: u64| {
        serde_json::json!({
            "telephoneNumber": n, "tenantId": oc_protocol::ids::uuid_from_bits(7),
            "state": "assigned", "sipUri": format!("sip:{n}@sbc.carrier.example;user=phone"),
            "usage": "CallingUserAssignment",
            "assignee": {"id": oc_protocol::ids::uuid_from_bits(9), "type": "user"},
            "sequence": seq, "lastChangedDateTime": "2026-11-26T08:00:00.000Z"
        })
    };
    let uri = teams.server.uri();
    Mock::given(method("GET"))
        .and(path("/oc/v1/numbers"))
        .and(wiremock::matchers::query_param("page", "2"))
        .respond_with(Template::new(200).set_body_json(
            serde_json::json!({"value": [number("+14255550102", 1)], "nextLink": null}),
        ))
        .mount(&teams.server)
        .await;
    Mock::given(method("GET"))
        .and(path("/oc/v1/numbers"))
        .respond_with(Template::new(200).set_body_json(serde_json::json!({
            "value": [number("+14255550100", 3), number("+14255550101", 1)],
            "nextLink": format!("{uri}/oc/v1/numbers?page=2")
        })))
        .mount(&teams.server)
        .await;
    let carrier = MockCarrier::start(teams.config()).unwrap();
    assert_eq!(carrier.resync().await.unwrap(), 3);
    let view = carrier.number_view("+14255550100").unwrap();
    assert_eq!((view.sequence, view.applied_events), (3, 0));
    assert!(carrier.number_view("+14255550102").is_some());
    carrier.stop().await;
}

#[tokio::test]
async fn drifted_dropped_duplicated_and_held_calls_get_their_ground_truth() {
    let teams = FakeTeams::start(100).await;
    teams.add_cdrs((0..40).map(|i| cdr(&format!("c{i:02}"), N1, i * 60, 30_000 + i * 1_000, 1)));
    let mut config = teams.config();
    config.seed = 7;
    config.drift = vec![
        DriftModel::Offset { ms: 1_500 },
        DriftModel::Drop { probability: 0.2 },
        DriftModel::Duplicate { probability: 0.2 },
        DriftModel::AfterDeadline {
            probability: 0.2,
            extra_ms: 1,
        },
        DriftModel::UnassignedNumber {
            probability: 0.2,
            numbers: vec!["+14255550999".to_owned()],
        },
    ];
    let carrier = MockCarrier::start(config).unwrap();
    carrier.poll_cycle(T0 + HOUR).await.unwrap();
    carrier.poll_cycle(T0 + 2 * HOUR).await.unwrap();
    carrier.flush(T0 + 26 * HOUR).await.unwrap();
    let truth = carrier.ground_truth();
    let accepted = teams.accepted();
    let mut seen = (0, 0, 0, 0);
    for call in &truth.calls {
        let reports = accepted.get(&call.call_id).map_or(0, Vec::len);
        assert_eq!(reports, call.reported.len(), "{}", call.call_id);
        let tagged = |t: &str| call.tags.iter().any(|x| x == t);
        match call.origin.as_str() {
            "fabricated" => {
                seen.3 += 1;
                assert_eq!(call.expected_class, Some(ReconClass::Unexpected));
                assert_eq!(call.telephone_number, "+14255550999");
            }
            _ if tagged("drop") => {
                seen.0 += 1;
                assert_eq!(call.expected_class, Some(ReconClass::Missing));
                assert!(call.reported.is_empty());
            }
            _ => {
                // 1.5 s over the 1 s tolerance.
                assert_eq!(call.expected_class, Some(ReconClass::Drift), "{call:?}");
                assert_eq!(
                    call.reported[0].duration_ms,
                    call.teams_duration_ms.unwrap() + 1_500
                );
                assert_eq!(call.duplicate, tagged("duplicate"));
                assert_eq!(reports, if call.duplicate { 2 } else { 1 });
                // Held past the 24 h deadline, then flushed at 26 h: late.
                assert_eq!(call.late, tagged("after_deadline"));
                seen.2 += usize::from(call.late);
            }
        }
        seen.1 += usize::from(call.duplicate);
    }
    assert!(
        seen.0 > 0 && seen.1 > 0 && seen.2 > 0 && seen.3 > 0,
        "{seen:?}"
    );
    let c = truth.counts;
    assert_eq!(c.matched + c.drift + c.missing, 40);
    carrier.stop().await;
}

/// What a long-running `serve` does after each cycle: the calls settled `retire_after_ms`
/// before leave the ledger (counted, not timed), and their truth stays in the counts.
#[tokio::test]
async fn settled_calls_are_retired_and_still_counted() {
    let teams = FakeTeams::start(10).await;
    teams.add_cdrs([
        cdr("c1", N1, 0, 61_000, 1),
        cdr("c2", N1, 10, 5_000, 1),
        unanswered_cdr("c3", N1, 20),
    ]);
    let mut config = teams.config();
    config.retire_after_ms = HOUR;
    let carrier = MockCarrier::start(config).unwrap();
    carrier.poll_cycle(T0 + HOUR).await.unwrap();
    teams.add_cdrs([cdr("c4", N1, 30, 120_000, 1)]);
    // Settles c1 and c2 (accepted last cycle); reports c4.
    carrier.poll_cycle(T0 + 2 * HOUR).await.unwrap();
    assert_eq!(carrier.ledger_calls(), 4);
    let before = carrier.ground_truth();
    assert_eq!(before.counts.matched, 3);
    // Not yet an hour since c1's and c2's reports were accepted.
    assert_eq!(carrier.retire_settled(T0 + 2 * HOUR - 1), 0);
    // An hour on: c1 and c2 go; c4 was reported this cycle, c3 never will be.
    assert_eq!(carrier.retire_settled(T0 + 2 * HOUR), 2);
    assert_eq!(carrier.ledger_calls(), 2, "live entries: c3 and c4");
    let after = carrier.ground_truth();
    assert_eq!(
        (after.counts, after.flags, after.retired),
        (before.counts, before.flags, 2)
    );
    let listed: Vec<&str> = after.calls.iter().map(|c| c.call_id.as_str()).collect();
    assert_eq!(listed, ["c4"]);
    // The carrier goes on: a new call is reported, and c4 retires once settled.
    teams.add_cdrs([cdr("c5", N1, 40, 30_000, 1)]);
    carrier.poll_cycle(T0 + 3 * HOUR).await.unwrap();
    assert!(teams.accepted().contains_key("c5"));
    assert_eq!(carrier.retire_settled(T0 + 4 * HOUR), 1, "c4");
    assert_eq!(carrier.ground_truth().retired, 3);
    carrier.stop().await;
}
