//! Generated hostile requests over real HTTP: whatever the method, path, headers, signature or
//! body, the carrier API never answers `5xx` (but the budgeted `503` with `Retry-After`), and a
//! refused request changes nothing the carrier holds.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};

use mock_carrier::MockCarrier;
use oc_protocol::NumberEventType;
use oc_protocol::signing::{SIGNATURE_HEADER, sign};

use crate::teams::{FakeTeams, SECRET};
use crate::webhooks::{event, notification, unix_now};

#[derive(Debug, Clone)]
struct Hostile {
    method: &'static str,
    path: String,
    signature: Signature,
    content_type: Option<String>,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

#[derive(Debug, Clone)]
enum Signature {
    None,
    Good,
    Stale,
    Junk(String),
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            oc_protocol::paths::NUMBER_ASSIGNMENTS,
            oc_protocol::paths::CALL_LEGS,
            "/oc/v1/numbers/+14255550100",
            "/oc/v1/numbers/+1",
            "/oc/v1/numbers/%00",
            mock_carrier::GROUND_TRUTH_PATH,
            "/",
        ])
        .prop_map(str::to_owned),
        1 => "(/[a-zA-Z0-9%+._~-]{0,12}){1,4}(\\?[a-z=&0-9]{0,20})?",
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    let kind = prop::sample::select(vec![
        NumberEventType::Assigned,
        NumberEventType::Unassigned,
        NumberEventType::Updated,
    ]);
    let events = prop::collection::vec((0u128..6, 0u64..5, kind), 0..4).prop_map(|events| {
        let events = events
            .into_iter()
            .map(|(id, sequence, kind)| event(100 + id, "+14255550100", sequence, kind, 0))
            .collect();
        notification(1, events)
    });
    prop_oneof![
        Just(Vec::new()),
        prop::collection::vec(any::<u8>(), 0..512),
        events,
        prop::sample::select(vec![
            &b"{\"legs\": [{\"callId\": \"\"}]}"[..],
            b"{\"legs\": []}",
            b"{\"events\": [1e999]}",
            b"null",
            b"{\"notificationId\": 5}",
        ])
        .prop_map(<[u8]>::to_vec),
    ]
}

fn hostile() -> impl Strategy<Value = Hostile> {
    let method = prop::sample::select(vec![
        "GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS",
    ]);
    let signature = prop_oneof![
        Just(Signature::None),
        Just(Signature::Good),
        Just(Signature::Stale),
        "[ -~]{0,100}".prop_map(Signature::Junk),
    ];
    let content_type = prop_oneof![
        Just(Some("application/json".to_owned())),
        Just(None),
        "[ -~]{0,30}".prop_map(Some),
    ];
    let header = (
        prop::sample::select(vec![
            "host",
            "content-encoding",
            "transfer-encoding",
            "x-junk",
        ]),
        "[ -~]{0,40}",
    );
    (
        method,
        path(),
        signature,
        content_type,
        prop::collection::vec(header, 0..3),
        body(),
    )
        .prop_map(
            |(method, path, signature, content_type, headers, body)| Hostile {
                method,
                path,
                signature,
                content_type,
                headers,
                body,
            },
        )
}

/// What the carrier holds: its ground truth and its view of the number the cases touch.
async fn snapshot(carrier: &MockCarrier) -> String {
    format!(
        "{:?} {:?}",
        serde_json::to_string(&carrier.ground_truth()).unwrap(),
        carrier.number_view("+14255550100")
    )
}

async fn send(client: &reqwest::Client, url: &str, case: &Hostile) -> Result<(u16, bool), String> {
    let method = reqwest::Method::from_bytes(case.method.as_bytes()).unwrap();
    let mut request = client
        .request(method, format!("{url}{}", case.path))
        .timeout(std::time::Duration::from_secs(15))
        .body(case.body.clone());
    let signature = match &case.signature {
        Signature::None => None,
        Signature::Good => Some(sign(SECRET.as_bytes(), unix_now(), &case.body)),
        Signature::Stale => Some(sign(SECRET.as_bytes(), unix_now() - 900, &case.body)),
        Signature::Junk(junk) => Some(junk.clone()),
    };
    if let Some(signature) = signature {
        request = request.header(SIGNATURE_HEADER, signature);
    }
    if let Some(content_type) = &case.content_type {
        request = request.header("content-type", content_type);
    }
    for (name, value) in &case.headers {
        request = request.header(*name, value);
    }
    let Ok(request) = request.build() else {
        // A header value reqwest refuses to send: no request, nothing to check.
        return Ok((0, false));
    };
    let response = client
        .execute(request)
        .await
        .map_err(|e| format!("no answer: {e}"))?;
    Ok((
        response.status().as_u16(),
        response.headers().contains_key("retry-after"),
    ))
}

#[test]
fn generated_hostile_requests_get_no_5xx_and_leave_the_carrier_intact() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let teams = runtime.block_on(FakeTeams::start(10));
    let carrier = MockCarrier::start(teams.config()).unwrap();
    let url = carrier.base_url();
    // A fresh connection a case: the carrier closes a connection after refusing a request it
    // did not read, and a pooled connection closed just as the next case goes out on it fails
    // in the client ("error sending request"), which is the client's race, not the carrier's
    // answer. A connection that cannot be opened or answered still fails the case.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    // Fixed seed and no persistence file: the same cases on every run.
    let config = Config {
        cases: 160,
        rng_seed: RngSeed::Fixed(12),
        failure_persistence: None,
        ..Config::default()
    };
    let before = std::cell::RefCell::new(runtime.block_on(snapshot(&carrier)));
    let result = TestRunner::new(config).run(&hostile(), |case| {
        let (status, retry_after) = runtime
            .block_on(send(&client, &url, &case))
            .map_err(TestCaseError::fail)?;
        prop_assert!(
            status < 500 || (status == 503 && retry_after),
            "{status} for {case:?}"
        );
        let after = runtime.block_on(snapshot(&carrier));
        if (200..300).contains(&status) && case.method == "POST" {
            // Accepted: it may change what the carrier holds.
            *before.borrow_mut() = after;
        } else {
            prop_assert_eq!(
                &*before.borrow(),
                &after,
                "{} changed the carrier: {:?}",
                status,
                case
            );
        }
        Ok(())
    });
    if let Err(err) = result {
        panic!("{err}");
    }
    runtime.block_on(carrier.stop());
}
