//! Generated hostile requests over real HTTP: whatever the method, path, query, headers, body
//! or paging token, the server never answers `5xx` (but the budgeted `503` with
//! `Retry-After`), and a refused request changes nothing in the store.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use serde_json::Value;

use crate::common::*;

#[derive(Debug, Clone)]
struct Hostile {
    method: &'static str,
    path: String,
    query: String,
    token: Option<String>,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

fn method() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS", "TRACE", "BREW",
    ])
}

fn path() -> impl Strategy<Value = String> {
    let known = prop::sample::select(vec![
        "/oc/v1/numbers",
        "/oc/v1/cdrs/delta",
        "/oc/v1/cdrs",
        "/oc/v1/quality/delta",
        "/oc/v1/call-durations",
        "/oc/v1/reconciliation",
        "/oc/v1/reconciliation/items",
        "/v1.0/communications/callRecords/getPstnCalls(fromDateTime=2026-11-26T00:00:00Z,toDateTime=2026-11-27T00:00:00Z)",
        "/v1.0/communications/callRecords/getPstnCalls(fromDateTime=2026-11-26,toDateTime=2027-11-26)",
        "/v1.0/communications/callRecords/getPstnCalls",
        "/oc/v1/",
        "/",
    ])
    .prop_map(str::to_owned);
    prop_oneof![
        4 => known,
        1 => "(/[a-zA-Z0-9%._~-]{0,12}){1,4}",
    ]
}

/// A query value: plausible, off by a little, or junk (percent-encoded so it stays a URL).
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "1",
            "0001",
            "1000",
            "1001",
            "0",
            "-1",
            "%2B5",
            "+5",
            "00000000001",
            "1e3",
            "%20",
            "2026-11-26T00:00:00.000Z",
            "2026-11-27T00:00:00.000Z",
            "2026-02-30T00:00:00.000Z",
            "c0ffee00-0000-4000-8000-000000000001",
            "assigned",
            "matched",
            "drift",
            "%00",
            "%FF%FE",
            "%C3%28",
        ])
        .prop_map(str::to_owned),
        "[a-zA-Z0-9._~-]{0,40}",
        "[0-9]{0,30}",
        (0usize..4096).prop_map(|n| "9".repeat(n)),
    ]
}

fn query() -> impl Strategy<Value = String> {
    let name = prop::sample::select(vec![
        "pageSize",
        "tenantId",
        "state",
        "from",
        "to",
        "class",
        "token",
        "$skip",
        "$skiptoken",
        "",
    ]);
    prop::collection::vec((name, value()), 0..4).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    let record = (
        "[ -~]{0,20}",
        prop::sample::select(vec!["+14255550101", "+1", "14255550101", ""]),
        any::<i64>(),
        prop::sample::select(vec![
            "2026-11-26T00:00:05.000Z",
            "2026-11-26T00:01:05.000Z",
            "2026-13-01T00:00:00.000Z",
            "",
        ]),
    )
        .prop_map(|(call_id, number, ms, time)| {
            serde_json::json!({
                "callId": call_id, "telephoneNumber": number, "connectDateTime": time,
                "endDateTime": time, "durationMs": ms,
            })
        });
    prop_oneof![
        Just(Vec::new()),
        prop::collection::vec(any::<u8>(), 0..512),
        prop::collection::vec(record, 0..4).prop_map(|records| {
            serde_json::json!({ "records": records })
                .to_string()
                .into_bytes()
        }),
        prop::sample::select(vec![
            &b"{\"records\": ["[..],
            b"[]",
            b"null",
            b"{\"records\": {}}",
            b"{\"records\": [1e999]}",
            b"\xef\xbb\xbf{}",
        ])
        .prop_map(<[u8]>::to_vec),
    ]
}

fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,64}",
        prop::sample::select(vec![
            "application/json",
            "text/plain",
            "application/json; charset=utf-8"
        ])
        .prop_map(str::to_owned),
    ]
}

fn hostile() -> impl Strategy<Value = Hostile> {
    let token = prop_oneof![
        Just(None),
        Just(Some(ALPHA_TOKEN.to_owned())),
        Just(Some(BETA_TOKEN.to_owned())),
        "[ -~]{0,40}".prop_map(Some),
    ];
    let name = prop::sample::select(vec![
        "content-type",
        "idempotency-key",
        "host",
        "x-forwarded-host",
        "forwarded",
        "content-encoding",
        "accept",
        "x-junk",
    ]);
    (
        method(),
        path(),
        query(),
        token,
        prop::collection::vec((name, header_value()), 0..4),
        body(),
    )
        .prop_map(|(method, path, query, token, headers, body)| Hostile {
            method,
            path,
            query,
            token,
            headers,
            body,
        })
}

/// What the server holds for both carriers, as their own requests and the harness see it.
async fn snapshot(env: &Env) -> Vec<String> {
    let mut out = Vec::new();
    for (carrier, token) in [("alpha", ALPHA_TOKEN), ("beta", BETA_TOKEN)] {
        out.push(format!(
            "{:?}",
            env.teams
                .reconciliation(carrier, T0, T0 + 86_400_000)
                .unwrap()
        ));
        out.push(format!("{:?}", env.teams.reported_calls(carrier).unwrap()));
        let (numbers, _) = env.follow(token, "/oc/v1/numbers").await;
        out.push(Value::Array(numbers).to_string());
    }
    out
}

async fn send(env: &Env, case: &Hostile) -> Result<(u16, bool), String> {
    let url = match case.query.as_str() {
        "" => env.url(&case.path),
        q => env.url(&format!("{}?{q}", case.path)),
    };
    let method = reqwest::Method::from_bytes(case.method.as_bytes()).unwrap();
    let mut request = env
        .client
        .request(method, &url)
        .timeout(std::time::Duration::from_secs(10))
        .body(case.body.clone());
    if let Some(token) = &case.token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    for (name, value) in &case.headers {
        request = request.header(*name, value);
    }
    let request = match request.build() {
        Ok(request) => request,
        // A header value reqwest refuses to send: no request, nothing to check.
        Err(_) => return Ok((0, false)),
    };
    let response = env
        .client
        .execute(request)
        .await
        .map_err(|e| format!("no answer: {e}"))?;
    let status = response.status().as_u16();
    let retry_after = response.headers().contains_key("retry-after");
    Ok((status, retry_after))
}

#[test]
fn generated_hostile_requests_get_no_5xx_and_leave_the_store_intact() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let env = runtime.block_on(start());
    runtime.block_on(async {
        env.teams
            .add_call(call("kept", &alpha_number(1), 0, Some(60_000)))
            .unwrap();
        env.teams.advance_to(T0 + 3_600_000).unwrap();
        let accepted = serde_json::json!({
            "records": [report_record("kept", &alpha_number(1), T0 + 5_000, 60_000)]
        });
        assert_eq!(
            env.report(ALPHA_TOKEN, Some("kept"), &accepted).await.0,
            200
        );
    });
    // Fixed seed and no persistence file: the same cases on every run; the failing case is
    // printed, shrunk, and replays with this test.
    let config = Config {
        cases: 160,
        rng_seed: RngSeed::Fixed(12),
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let before = std::cell::RefCell::new(runtime.block_on(snapshot(&env)));
    let result = runner.run(&hostile(), |case| {
        let (status, retry_after) = runtime
            .block_on(send(&env, &case))
            .map_err(TestCaseError::fail)?;
        prop_assert!(
            status < 500 || (status == 503 && retry_after),
            "{status} for {case:?}"
        );
        let after = runtime.block_on(snapshot(&env));
        if (200..300).contains(&status) && case.method == "POST" {
            // An accepted report may change the store; that is not a refusal.
            *before.borrow_mut() = after;
        } else {
            prop_assert_eq!(
                &*before.borrow(),
                &after,
                "{} changed the store: {:?}",
                status,
                case
            );
        }
        Ok(())
    });
    if let Err(err) = result {
        panic!("{err}");
    }
    runtime.block_on(env.teams.stop());
}
