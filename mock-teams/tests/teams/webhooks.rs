//! The webhook sender against a carrier played by wiremock: signed, batched, retried on 5xx and
//! on a missed deadline, every attempt recorded.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mock_teams::{
    CarrierSpec, ExchangeDetail, NumberChange, TeamsOptions, WebhookSettings, WebhookTarget,
};
use oc_protocol::signing::verify;
use oc_protocol::{NumberAssignmentNotification, Validate};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::*;

const SECRET: &str = "gamma-secret";

async fn with_gamma(options: TeamsOptions, carrier: &MockServer) -> Env {
    let env = start_with(options).await;
    env.teams
        .add_carrier(CarrierSpec {
            id: "gamma".into(),
            token: "gamma-token".into(),
            webhook: Some(WebhookTarget {
                url: format!("{}/oc/v1/notifications/number-assignments", carrier.uri()),
                secret: SECRET.into(),
            }),
        })
        .unwrap();
    for i in 0..3 {
        let n = format!("+1206555{:04}", i);
        env.teams
            .with_store(|s| s.add_number("gamma", TENANT, &n))
            .unwrap();
    }
    env
}

fn assign_all(env: &Env) {
    let changes = (0..3)
        .map(|i| {
            let n = format!("+1206555{:04}", i);
            NumberChange::Assign {
                assignment: assignment(&n),
                telephone_number: n,
            }
        })
        .collect();
    for r in env.teams.apply_changes(changes) {
        r.unwrap();
    }
}

fn fast() -> TeamsOptions {
    let mut options = TeamsOptions::loopback(T0);
    options.webhooks = WebhookSettings {
        ack_timeout: Duration::from_millis(300),
        retry_delays: vec![Duration::from_millis(20); 5],
        max_in_flight: 4,
    };
    options
}

#[tokio::test]
async fn notifications_are_signed_valid_and_batched() {
    let carrier = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oc/v1/notifications/number-assignments"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&carrier)
        .await;
    let env = with_gamma(fast(), &carrier).await;
    assign_all(&env);
    assert!(env.teams.webhooks().wait_idle(Duration::from_secs(5)).await);
    let requests = carrier.received_requests().await.unwrap();
    let request = &requests[0];
    let signature = request
        .headers
        .get("oc-signature")
        .unwrap()
        .to_str()
        .unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    verify(Some(signature), SECRET.as_bytes(), &request.body, now).expect("the signature verifies");
    let notification: NumberAssignmentNotification = serde_json::from_slice(&request.body).unwrap();
    notification.validate().unwrap();
    assert_eq!(
        notification.events.len(),
        3,
        "one change batch, one notification"
    );
    assert_eq!(
        notification.sent_date_time,
        oc_protocol::format_timestamp(T0)
    );
}

#[tokio::test]
async fn a_5xx_is_retried_with_the_same_notification() {
    let carrier = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(2)
        .mount(&carrier)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(202))
        .mount(&carrier)
        .await;
    let env = with_gamma(fast(), &carrier).await;
    assign_all(&env);
    assert!(env.teams.webhooks().wait_idle(Duration::from_secs(5)).await);
    let requests = carrier.received_requests().await.unwrap();
    assert_eq!(requests.len(), 3);
    assert!(
        requests.iter().all(|r| r.body == requests[0].body),
        "same notification each time"
    );
    // Only the acknowledged attempt is marked as the notification's last.
    let attempts = webhook_attempts(&env);
    assert_eq!(
        attempts,
        [
            (0, Some(500), false),
            (1, Some(500), false),
            (2, Some(202), true)
        ]
    );
}

#[tokio::test]
async fn a_missed_deadline_is_retried_and_recorded() {
    let carrier = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(800)))
        .up_to_n_times(1)
        .mount(&carrier)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&carrier)
        .await;
    let env = with_gamma(fast(), &carrier).await;
    assign_all(&env);
    assert!(env.teams.webhooks().wait_idle(Duration::from_secs(5)).await);
    let exchanges = env.exchanges.lock().unwrap();
    let hooks: Vec<_> = exchanges
        .iter()
        .filter(|e| matches!(e.detail, Some(ExchangeDetail::Webhook { .. })))
        .collect();
    assert_eq!(hooks.len(), 2);
    let last = |e: &mock_teams::Exchange| {
        matches!(e.detail, Some(ExchangeDetail::Webhook { last: true, .. }))
    };
    assert!(
        !last(hooks[0]) && last(hooks[1]),
        "a late answer is retried"
    );
    assert_eq!(hooks[0].status, None);
    assert!(
        hooks[0].error.as_deref().unwrap().contains("deadline"),
        "{:?}",
        hooks[0].error
    );
    assert_eq!(hooks[1].status, Some(200));
    let sig = &hooks[0]
        .request_headers
        .iter()
        .find(|(k, _)| k == "oc-signature")
        .unwrap()
        .1;
    assert!(
        sig.ends_with('…'),
        "the signature is masked in evidence: {sig}"
    );
}

/// Each webhook attempt's number, status and whether it was marked as its notification's last.
fn webhook_attempts(env: &Env) -> Vec<(u32, Option<u16>, bool)> {
    env.exchanges
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match &e.detail {
            Some(ExchangeDetail::Webhook { attempt, last, .. }) => {
                Some((*attempt, e.status, *last))
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn duplicated_notifications_are_delivered_twice_and_marked_as_injected() {
    let carrier = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&carrier)
        .await;
    let mut options = fast();
    options.faults.webhook_duplicate_share = 1.0;
    let env = with_gamma(options, &carrier).await;
    assign_all(&env);
    assert!(env.teams.webhooks().wait_idle(Duration::from_secs(5)).await);
    let requests = carrier.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].body, requests[1].body,
        "the same notification and event ids"
    );
    let faults: Vec<_> = env
        .exchanges
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e.detail, Some(ExchangeDetail::Webhook { .. })))
        .map(|e| e.fault)
        .collect();
    assert_eq!(
        faults,
        [None, Some(mock_teams::InjectedFault::WebhookDuplicated)]
    );
    // The acknowledged first delivery is not the last: the duplicate is.
    assert_eq!(
        webhook_attempts(&env),
        [(0, Some(204), false), (0, Some(204), true)]
    );
}
