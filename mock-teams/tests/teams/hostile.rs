//! Hostile input: each bad request gets a precise problem+json with the right status, nothing
//! panics, and nothing already accepted is lost.

use serde_json::{Value, json};

use crate::common::*;

struct Bad {
    what: &'static str,
    method: &'static str,
    path: String,
    token: Option<&'static str>,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    status: u16,
    problem_type: &'static str,
}

fn bad(
    what: &'static str,
    method: &'static str,
    path: impl Into<String>,
    status: u16,
    problem_type: &'static str,
) -> Bad {
    Bad {
        what,
        method,
        path: path.into(),
        token: Some(ALPHA_TOKEN),
        headers: vec![
            ("content-type", "application/json".into()),
            ("idempotency-key", "hostile".into()),
        ],
        body: Vec::new(),
        status,
        problem_type,
    }
}

#[tokio::test]
async fn every_hostile_request_gets_a_precise_problem_and_the_store_is_intact() {
    let env = start().await;
    let n = alpha_number(1);
    env.teams
        .add_call(call("keep", &n, 0, Some(60_000)))
        .unwrap();
    env.teams.advance_to(T0 + 3_600_000).unwrap();
    let accepted = json!({ "records": [report_record("keep", &n, T0 + 5_000, 60_000)] });
    assert_eq!(
        env.report(ALPHA_TOKEN, Some("good"), &accepted).await.0,
        200
    );
    let before = env
        .teams
        .reconciliation("alpha", T0, T0 + 86_400_000)
        .unwrap();
    let (_, _, page) = env.get(ALPHA_TOKEN, "/oc/v1/cdrs/delta?pageSize=1").await;
    let link = page["deltaLink"].as_str().unwrap().to_owned();
    let token = link.split_once("token=").unwrap().1.to_owned();
    let mut forged = token.clone().into_bytes();
    forged[4] = if forged[4] == b'a' { b'b' } else { b'a' };
    let forged = String::from_utf8(forged).unwrap();

    let durations = oc_protocol::paths::CALL_DURATIONS;
    let mut cases = vec![
        Bad {
            body: b"{\"records\": [".to_vec(),
            ..bad("truncated JSON", "POST", durations, 400, "malformed-body")
        },
        Bad {
            body: b"[1, 2]".to_vec(),
            ..bad("an array body", "POST", durations, 400, "malformed-body")
        },
        Bad {
            body: br#"{"records": "all"}"#.to_vec(),
            ..bad(
                "records of the wrong type",
                "POST",
                durations,
                400,
                "malformed-body",
            )
        },
        Bad {
            body: br#"{"records": []}"#.to_vec(),
            ..bad("no records", "POST", durations, 400, "validation")
        },
        Bad {
            body: Vec::new(),
            ..bad("an empty body", "POST", durations, 400, "malformed-body")
        },
        Bad {
            body: vec![b' '; 1024 * 1024 + 1],
            ..bad(
                "a body over 1 MiB",
                "POST",
                durations,
                413,
                "payload-too-large",
            )
        },
        Bad {
            body: br#"{"records": []}"#.to_vec(),
            headers: vec![
                ("content-type", "text/plain".into()),
                ("idempotency-key", "x".into()),
            ],
            ..bad(
                "a text body",
                "POST",
                durations,
                415,
                "unsupported-media-type",
            )
        },
        Bad {
            body: accepted.to_string().into_bytes(),
            headers: vec![
                ("content-type", "application/json".into()),
                ("idempotency-key", "k".repeat(129)),
            ],
            ..bad(
                "an over-long idempotency key",
                "POST",
                durations,
                400,
                "validation",
            )
        },
        bad(
            "pageSize 0",
            "GET",
            "/oc/v1/cdrs/delta?pageSize=0",
            400,
            "validation",
        ),
        bad(
            "pageSize 1001",
            "GET",
            "/oc/v1/cdrs/delta?pageSize=1001",
            400,
            "validation",
        ),
        bad(
            "pageSize not a number",
            "GET",
            "/oc/v1/numbers?pageSize=lots",
            400,
            "validation",
        ),
        bad(
            "an unknown parameter",
            "GET",
            "/oc/v1/cdrs/delta?$skip=500",
            400,
            "validation",
        ),
        bad(
            "a repeated parameter",
            "GET",
            "/oc/v1/numbers?pageSize=1&pageSize=2",
            400,
            "validation",
        ),
        bad(
            "paging parameters added to a link",
            "GET",
            format!("{link}&pageSize=5"),
            400,
            "validation",
        ),
        bad(
            "a forged link",
            "GET",
            format!("/oc/v1/cdrs/delta?token={forged}"),
            400,
            "invalid-cursor",
        ),
        bad(
            "a junk link",
            "GET",
            "/oc/v1/cdrs/delta?token=not-a-token",
            400,
            "invalid-cursor",
        ),
        bad(
            "a CDR link on the quality feed",
            "GET",
            format!("/oc/v1/quality/delta?token={token}"),
            400,
            "invalid-cursor",
        ),
        bad(
            "a window backwards",
            "GET",
            format!(
                "/oc/v1/reconciliation?from={}&to={}",
                oc_protocol::format_timestamp(T0 + 1),
                oc_protocol::format_timestamp(T0)
            ),
            400,
            "validation",
        ),
        bad(
            "a window without Z",
            "GET",
            "/oc/v1/reconciliation?from=2026-11-26T00:00:00&to=2026-11-27T00:00:00.000Z",
            400,
            "validation",
        ),
        bad(
            "an unknown class",
            "GET",
            "/oc/v1/reconciliation/items?class=great&from=2026-11-26T00:00:00.000Z&to=2026-11-27T00:00:00.000Z",
            400,
            "validation",
        ),
        bad(
            "an unknown path",
            "GET",
            "/oc/v1/nothing-here",
            404,
            "not-found",
        ),
        bad("outside the API", "GET", "/", 404, "not-found"),
        bad(
            "the wrong method",
            "DELETE",
            "/oc/v1/cdrs/delta",
            405,
            "method-not-allowed",
        ),
        bad(
            "GET on call-durations",
            "GET",
            durations,
            405,
            "method-not-allowed",
        ),
        Bad {
            token: None,
            ..bad("no token", "GET", "/oc/v1/numbers", 401, "unauthorized")
        },
        Bad {
            token: Some("forged-token"),
            ..bad(
                "an unknown token",
                "GET",
                "/oc/v1/numbers",
                401,
                "unauthorized",
            )
        },
    ];
    cases.push(Bad {
        headers: vec![
            ("content-type", "application/json".into()),
            ("authorization", "Basic YWxhZGRpbjpvcGVu".into()),
        ],
        token: None,
        ..bad("basic auth", "GET", "/oc/v1/numbers", 401, "unauthorized")
    });
    for case in cases {
        let method = reqwest::Method::from_bytes(case.method.as_bytes()).unwrap();
        let mut request = env
            .client
            .request(method, env.url(&case.path))
            .body(case.body.clone());
        for (name, value) in &case.headers {
            request = request.header(*name, value);
        }
        if let Some(token) = case.token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", case.what));
        let status = response.status().as_u16();
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        let problem: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(status, case.status, "{}: {problem}", case.what);
        assert_eq!(content_type, "application/problem+json", "{}", case.what);
        assert_eq!(
            problem["type"],
            format!("urn:oc:problem:{}", case.problem_type),
            "{}: {problem}",
            case.what
        );
        assert_eq!(problem["status"], case.status, "{}", case.what);
        assert!(
            problem["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{}: {problem}",
            case.what
        );
    }
    // Nothing accepted was lost, and the server still serves.
    assert_eq!(
        env.teams
            .reconciliation("alpha", T0, T0 + 86_400_000)
            .unwrap(),
        before
    );
    let (status, _, page) = env.get(ALPHA_TOKEN, &link).await;
    assert_eq!(status, 200);
    assert_eq!(page["value"], json!([]));
}

#[tokio::test]
async fn a_wrong_type_names_its_field() {
    let env = start().await;
    let body = json!({ "records": [{"callId": 5, "telephoneNumber": "+14255550101",
        "connectDateTime": "2026-11-26T00:00:05.000Z", "endDateTime": "2026-11-26T00:01:05.000Z", "durationMs": 60000}] });
    let (status, response) = env.report(ALPHA_TOKEN, Some("typed"), &body).await;
    assert_eq!(status, 200, "a bad record is rejected alone, not the batch");
    assert_eq!(response["accepted"], 0);
    assert_eq!(
        response["rejected"][0]["errors"][0]["pointer"],
        "/records/0/callId"
    );
}

/// Issue 12: `pageSize=+5` and `pageSize=00000000001` were read as 5 and 1, and `tenantId` was
/// not checked at all. Each is now a `400` naming its parameter.
#[tokio::test]
async fn page_size_is_digits_only_and_tenant_id_a_uuid() {
    let env = start().await;
    for query in [
        "pageSize=%2B5",
        "pageSize=+5",
        "pageSize=00000000001",
        "pageSize=%205",
        "pageSize=5%20",
        "pageSize=-0",
        "tenantId=not-a-tenant",
        "tenantId=C0FFEE00-0000-4000-8000-000000000001",
        "tenantId=",
    ] {
        let (status, _, problem) = env
            .get(ALPHA_TOKEN, &format!("/oc/v1/numbers?{query}"))
            .await;
        assert_eq!(status, 400, "{query}: {problem}");
        assert_eq!(problem["type"], "urn:oc:problem:validation", "{query}");
        let name = query.split('=').next().unwrap();
        assert_eq!(
            problem["errors"][0]["parameter"], name,
            "{query}: {problem}"
        );
    }
    for query in [
        "pageSize=0001",
        "pageSize=1000",
        &format!("tenantId={TENANT}"),
    ] {
        let (status, _, page) = env
            .get(ALPHA_TOKEN, &format!("/oc/v1/numbers?{query}"))
            .await;
        assert_eq!(status, 200, "{query}: {page}");
    }
    let (_, _, page) = env.get(ALPHA_TOKEN, "/oc/v1/numbers?pageSize=0001").await;
    assert_eq!(page["value"].as_array().unwrap().len(), 1);
}

/// Issue 12: a `durationMs` over 2^32 − 1 was accepted and stored as 4294967295. It is now
/// rejected with its pointer, and nothing of it is stored.
#[tokio::test]
async fn a_duration_over_u32_ms_is_rejected_not_cut_down() {
    let env = start().await;
    let n = alpha_number(1);
    let too_long = 4_294_967_296;
    let body = json!({ "records": [
        report_record("long", &n, T0, too_long),
        report_record("fine", &n, T0, 4_294_967_295),
    ] });
    let (status, response) = env.report(ALPHA_TOKEN, Some("long"), &body).await;
    assert_eq!(status, 200, "{response}");
    assert_eq!(response["accepted"], 1, "{response}");
    assert_eq!(
        response["rejected"][0]["errors"][0]["pointer"], "/records/0/durationMs",
        "{response}"
    );
    let reported = env.teams.reported_calls("alpha").unwrap();
    assert_eq!(reported.len(), 1);
    assert_eq!(reported[0].call_id, "fine");
}

/// `HEAD` is `GET` without the body; a method a path does not take gets `405` with `Allow`.
#[tokio::test]
async fn head_is_answered_as_get_and_405_names_the_allowed_methods() {
    let env = start().await;
    let get = env
        .client
        .get(env.url("/oc/v1/numbers"))
        .bearer_auth(ALPHA_TOKEN)
        .send()
        .await
        .unwrap();
    let get_length = get.bytes().await.unwrap().len();
    let head = env
        .client
        .head(env.url("/oc/v1/numbers"))
        .bearer_auth(ALPHA_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status().as_u16(), 200);
    assert_eq!(
        head.headers()["content-length"],
        get_length.to_string().as_str()
    );
    assert!(head.bytes().await.unwrap().is_empty());
    for (method, path, allow) in [
        (reqwest::Method::POST, "/oc/v1/numbers", "GET, HEAD"),
        (reqwest::Method::DELETE, "/oc/v1/cdrs/delta", "GET, HEAD"),
        (
            reqwest::Method::HEAD,
            oc_protocol::paths::CALL_DURATIONS,
            "POST",
        ),
        (
            reqwest::Method::PUT,
            oc_protocol::paths::CALL_DURATIONS,
            "POST",
        ),
    ] {
        let response = env
            .client
            .request(method.clone(), env.url(path))
            .bearer_auth(ALPHA_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 405, "{method} {path}");
        assert_eq!(response.headers()["allow"], allow, "{method} {path}");
    }
}

/// Issue 12: without `public_url`, `Host` and `X-Forwarded-Host` were copied into `nextLink`,
/// so any client could make the server hand out links to another host. Links now name the
/// bound address unless the configuration trusts forwarded headers.
#[tokio::test]
async fn links_name_the_bound_address_not_the_request_host() {
    async fn first_link(env: &Env) -> String {
        let response = env
            .client
            .get(env.url("/oc/v1/numbers?pageSize=1"))
            .bearer_auth(ALPHA_TOKEN)
            .header("host", "evil.example")
            .header("x-forwarded-host", "evil.example:8443")
            .header("x-forwarded-proto", "https")
            .send()
            .await
            .unwrap();
        let page: Value = response.json().await.unwrap();
        page["nextLink"].as_str().unwrap().to_owned()
    }
    let env = start().await;
    let link = first_link(&env).await;
    assert!(
        link.starts_with(&format!("{}/oc/v1/numbers?token=", env.teams.base_url())),
        "{link}"
    );
    let (status, _, _) = env.get(ALPHA_TOKEN, &link).await;
    assert_eq!(status, 200);

    let mut options = mock_teams::TeamsOptions::loopback(T0);
    options.trust_forwarded_headers = true;
    let trusting = start_with(options).await;
    let link = first_link(&trusting).await;
    assert!(
        link.starts_with("https://evil.example:8443/oc/v1/numbers?token="),
        "{link}"
    );
}
