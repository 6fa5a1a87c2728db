//! The carrier API on the wire: the webhook, the state probe, the call-legs hook, the admin
//! endpoint, and hostile input.

use mock_carrier::{CallSource, MockCarrier};
use oc_protocol::NumberEventType::{Assigned, Unassigned, Updated};
use oc_protocol::ReconClass;
use serde_json::{Value, json};

use crate::teams::{FakeTeams, T0, cdr};
use crate::webhooks::{Signed, event, notification, post, probe};

const N1: &str = "+14255550100";
const PROBLEM: &str = "application/problem+json";

#[tokio::test]
async fn signed_events_are_applied_once_and_in_sequence_order() {
    let teams = FakeTeams::start(10).await;
    let carrier = MockCarrier::start(teams.config()).unwrap();
    let url = carrier.base_url();
    let first = notification(1, vec![event(11, N1, 1, Assigned, 0)]);
    let (status, _, body) = post(&url, &first, Signed::Now).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"applied": 1, "redelivered": 0, "stale": 0})
    );
    // Redelivered: same notification, same eventIds.
    let (status, _, body) = post(&url, &first, Signed::Now).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["redelivered"],
        1
    );
    // seq 3 overtakes seq 2.
    post(
        &url,
        &notification(3, vec![event(13, N1, 3, Updated, 20)]),
        Signed::Now,
    )
    .await;
    let (_, _, body) = post(
        &url,
        &notification(2, vec![event(12, N1, 2, Unassigned, 10)]),
        Signed::Now,
    )
    .await;
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["stale"], 1);
    let (status, view) = probe(&url, N1).await;
    assert_eq!(status, 200);
    assert_eq!(view["state"], "assigned");
    assert_eq!(view["sequence"], 3);
    assert_eq!(view["appliedEvents"], 2);
    assert!(view["sipUri"].as_str().unwrap().contains("sbc3"));
    carrier.stop().await;
}

#[tokio::test]
async fn bad_signatures_get_401_problems_and_change_nothing() {
    let teams = FakeTeams::start(10).await;
    let carrier = MockCarrier::start(teams.config()).unwrap();
    let url = carrier.base_url();
    let body = notification(1, vec![event(11, N1, 1, Assigned, 0)]);
    for signed in [Signed::Unsigned, Signed::Stale, Signed::WrongSecret] {
        let (status, content_type, text) = post(&url, &body, signed).await;
        assert_eq!((status, content_type.as_str()), (401, PROBLEM), "{text}");
        let problem: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(problem["type"], "urn:oc:problem:unauthorized");
        assert_eq!(problem["status"], 401);
    }
    let (status, problem) = probe(&url, N1).await;
    assert_eq!(status, 404);
    assert_eq!(problem["type"], "urn:oc:problem:not-found");
    carrier.stop().await;
}

#[tokio::test]
async fn hostile_input_gets_precise_problems_and_loses_nothing() {
    let teams = FakeTeams::start(10).await;
    let carrier = MockCarrier::start(teams.config()).unwrap();
    let url = carrier.base_url();
    let good = notification(1, vec![event(11, N1, 1, Assigned, 0)]);
    assert_eq!(post(&url, &good, Signed::Now).await.0, 200);

    // Not JSON, and JSON of the wrong shape: 400 with the pointer.
    let (status, content_type, text) = post(&url, b"{\"events\": [", Signed::Now).await;
    assert_eq!((status, content_type.as_str()), (400, PROBLEM), "{text}");
    let (status, _, text) = post(&url, br#"{"notificationId": 5}"#, Signed::Now).await;
    assert_eq!(status, 400);
    let problem: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(problem["errors"][0]["pointer"], "/notificationId", "{text}");
    // A field that reads but is invalid: every error, with its pointer.
    let mut bad = event(12, N1, 2, Updated, 5);
    bad.event_id = "not-a-uuid".to_owned();
    bad.sip_uri = Some("sip:nobody".to_owned());
    let (status, _, text) = post(&url, &notification(2, vec![bad]), Signed::Now).await;
    assert_eq!(status, 400);
    let problem: Value = serde_json::from_str(&text).unwrap();
    let pointers: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(
        pointers,
        ["/events/0/eventId", "/events/0/sipUri"],
        "{text}"
    );

    let client = reqwest::Client::new();
    // Over 1 MiB: 413 (on the hook: an unsigned webhook is refused before its body is read).
    let huge = vec![b' '; oc_protocol::MAX_BODY_BYTES + 1];
    let response = client
        .post(format!("{url}/oc/v1/test/call-legs"))
        .header("Content-Type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    assert_eq!(response.headers()["content-type"], PROBLEM);
    // Not JSON's media type: 415.
    let response = client
        .post(format!("{url}/oc/v1/test/call-legs"))
        .header("Content-Type", "text/plain")
        .body("legs")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 415);
    // Unknown path: 404; known path, wrong method: 405; both problems.
    for (method, path, status) in [
        (reqwest::Method::GET, "/oc/v1/nowhere", 404),
        (
            reqwest::Method::GET,
            "/oc/v1/notifications/number-assignments",
            405,
        ),
        (reqwest::Method::DELETE, "/oc/v1/numbers/+14255550100", 405),
        (reqwest::Method::POST, "/admin/ground-truth", 405),
    ] {
        let response = client
            .request(method, format!("{url}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{path}");
        assert_eq!(response.headers()["content-type"], PROBLEM, "{path}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["status"], status);
    }
    // A probe of something that is not a number: 400.
    assert_eq!(probe(&url, "12345").await.0, 400);
    // Nothing of it reached the state, and the server still answers.
    let (status, view) = probe(&url, N1).await;
    assert_eq!(status, 200);
    assert_eq!(
        (view["sequence"].as_u64(), view["appliedEvents"].as_u64()),
        (Some(1), Some(1))
    );
    carrier.stop().await;
}

async fn post_legs(url: &str, legs: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{url}/oc/v1/test/call-legs"))
        .json(&legs)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// What a long-running `serve` does after each cycle: each number keeps the changes a call may
/// still ask about (after `retire_after_ms` ago, and after every leg held), not every change
/// it heard of; a redelivery is still applied at most once.
#[tokio::test]
async fn number_histories_forget_what_no_call_can_ask_about() {
    let teams = FakeTeams::start(10).await;
    let mut config = teams.config();
    config.calls_from = CallSource::Legs;
    config.retire_after_ms = 60_000;
    let carrier = MockCarrier::start(config).unwrap();
    let url = carrier.base_url();
    // 300 changes of N1, one a second: assigned on odd sequences, unassigned on even ones.
    let batch = |b: u64| {
        let events = (b * 100 + 1..=b * 100 + 100)
            .map(|seq| {
                let kind = if seq % 2 == 1 { Assigned } else { Unassigned };
                event(
                    1_000 + u128::from(seq),
                    N1,
                    seq,
                    kind,
                    i64::try_from(seq).unwrap(),
                )
            })
            .collect();
        notification(u128::from(b) + 1, events)
    };
    for b in 0..3 {
        assert_eq!(post(&url, &batch(b), Signed::Now).await.0, 200);
    }
    assert_eq!(post(&url, &batch(1), Signed::Now).await.0, 200);
    assert_eq!(probe(&url, N1).await.1["appliedEvents"], 300);
    assert_eq!(carrier.number_changes_held(), 300);
    // 60 s before T0 + 250 s: the changes from the last one effective by T0 + 190 s.
    carrier.retire_settled(T0 + 250_000);
    assert_eq!(carrier.number_changes_held(), 111);
    // A leg at T0 + 200.5 s, when N1 was not assigned, is held (a late webhook may still
    // say otherwise), and keeps the history from its connect time on.
    let leg = json!({"legs": [{
        "callId": "held", "telephoneNumber": N1,
        "connectDateTime": oc_protocol::format_timestamp(T0 + 200_500),
        "endDateTime": oc_protocol::format_timestamp(T0 + 230_500),
    }]});
    assert_eq!(post_legs(&url, leg).await.0, 202);
    carrier.retire_settled(T0 + 400_000);
    assert_eq!(carrier.number_changes_held(), 101);
    assert_eq!(probe(&url, N1).await.1["sequence"], 300);
    carrier.stop().await;
}

#[tokio::test]
async fn legs_are_reported_exactly_and_only_while_their_number_was_assigned() {
    let teams = FakeTeams::start(10).await;
    teams.add_cdrs([cdr("leg-1", N1, 600, 61_000, 1)]);
    let mut config = teams.config();
    config.calls_from = CallSource::Legs;
    let carrier = MockCarrier::start(config).unwrap();
    let url = carrier.base_url();
    // Assigned from T0 + 0 s to T0 + 3600 s.
    let assigned = notification(
        1,
        vec![
            event(11, N1, 1, Assigned, 0),
            event(12, N1, 2, Unassigned, 3_600),
        ],
    );
    assert_eq!(post(&url, &assigned, Signed::Now).await.0, 200);
    let leg = |id: &str, connect_s: i64, duration_ms: i64| {
        json!({
            "callId": id, "telephoneNumber": N1,
            "connectDateTime": oc_protocol::format_timestamp(T0 + connect_s * 1_000),
            "endDateTime": oc_protocol::format_timestamp(T0 + connect_s * 1_000 + duration_ms),
        })
    };
    let (status, body) = post_legs(
        &url,
        json!({"legs": [leg("leg-1", 600, 61_237), leg("leg-2", 7_200, 5_000)]}),
    )
    .await;
    assert_eq!((status, body), (202, json!({"accepted": 2})));
    let (status, body) = post_legs(
        &url,
        json!({"legs": [leg("leg-3", 600, 1_000), {"callId": ""}]}),
    )
    .await;
    assert_eq!(status, 400);
    // A missing field is reported at the object that lacks it, with the field's name.
    assert_eq!(body["errors"][0]["pointer"], "/legs/1", "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("telephoneNumber"),
        "{body}"
    );

    carrier.poll_cycle(T0 + 3 * 3_600_000).await.unwrap();
    let accepted = teams.accepted();
    // To the millisecond [DUR-FIDELITY]; leg-2 is after the unassignment [DUR-UNEXPECTED].
    assert_eq!(accepted.keys().collect::<Vec<_>>(), ["leg-1"]);
    assert_eq!(accepted["leg-1"][0].duration_ms, 61_237);
    let truth = carrier.ground_truth();
    assert_eq!(truth.calls.len(), 2);
    assert_eq!(truth.calls[0].expected_class, Some(ReconClass::Matched));
    assert_eq!(truth.calls[0].leg_duration_ms, Some(61_237));
    assert_eq!(truth.calls[1].tags, ["not_assigned_at_connect"]);
    assert_eq!(truth.calls[1].expected_class, None);

    // The admin endpoint serves the same ground truth.
    let served: mock_carrier::GroundTruth = reqwest::get(format!("{url}/admin/ground-truth"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(served, truth);
    carrier.stop().await;
}

#[actix_rt::test]
async fn it_runs_inside_an_actix_system() {
    let teams = FakeTeams::start(10).await;
    teams.add_cdrs([cdr("c1", N1, 0, 61_000, 1)]);
    let carrier = MockCarrier::start(teams.config()).unwrap();
    let body = notification(1, vec![event(11, N1, 1, Assigned, 0)]);
    assert_eq!(post(&carrier.base_url(), &body, Signed::Now).await.0, 200);
    let outcome = carrier.poll_cycle(T0 + 3_600_000).await.unwrap();
    assert_eq!(outcome.accepted, 1);
    carrier.stop().await;
}
