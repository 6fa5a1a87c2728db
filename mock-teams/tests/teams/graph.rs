//! Graph's PSTN call log as mock-teams serves it (PROTOCOL.md 3.6): Graph's shape, paging by
//! `@odata.nextLink`, whose duration each row carries, the window's bounds, authentication and
//! isolation.

use std::collections::BTreeSet;

use mock_teams::TeamsOptions;
use oc_protocol::graph::{GraphPage, PstnCallLogRow, PstnCallsWindow, pstn_calls_path};
use oc_protocol::{CallDurationSource, format_timestamp};
use serde_json::{Value, json};

use crate::common::*;

const DAY_MS: i64 = 86_400_000;

fn log_path(from: i64, to: i64) -> String {
    pstn_calls_path(PstnCallsWindow { from, to })
}

fn day() -> String {
    log_path(T0, T0 + DAY_MS)
}

/// Follows the call log from `first` to the page without a nextLink; returns every page.
async fn follow(env: &Env, token: &str, first: &str) -> Vec<GraphPage<PstnCallLogRow>> {
    let mut pages = Vec::new();
    let mut url = first.to_owned();
    for _ in 0..100 {
        let (status, _, body) = env.get(token, &url).await;
        assert_eq!(status, 200, "{url}: {body}");
        let page: GraphPage<PstnCallLogRow> = serde_json::from_value(body).unwrap();
        let next = page.next_link.clone();
        pages.push(page);
        match next {
            Some(next) => url = next,
            None => return pages,
        }
    }
    panic!("more than 100 pages");
}

async fn post_report(env: &Env, token: &str, key: &str, record: Value) {
    let (status, body) = env
        .report(token, Some(key), &json!({ "records": [record] }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accepted"], 1, "{body}");
}

#[tokio::test]
async fn a_page_has_graph_s_shape_and_names_whose_duration_it_carries() {
    let mut options = TeamsOptions::loopback(T0);
    options.store.reporting_deadline_ms = 3_600_000;
    let env = start_with(options).await;
    // Connected 5 s after start; talks 61.4 s, 42.5 s, 7 s.
    env.teams
        .add_call(call("on-time", &alpha_number(0), 0, Some(61_400)))
        .unwrap();
    env.teams
        .add_call(call("late", &alpha_number(1), 60, Some(42_500)))
        .unwrap();
    env.teams
        .add_call(call("missing", &alpha_number(2), 120, Some(7_000)))
        .unwrap();
    env.teams
        .add_call(call("unanswered", &alpha_number(3), 180, None))
        .unwrap();
    env.teams.advance_to(T0 + 600_000).unwrap();
    post_report(
        &env,
        ALPHA_TOKEN,
        "k1",
        report_record("on-time", &alpha_number(0), T0 + 5_000, 62_600),
    )
    .await;
    env.teams.advance_to(T0 + 3 * 3_600_000).unwrap();
    post_report(
        &env,
        ALPHA_TOKEN,
        "k2",
        report_record("late", &alpha_number(1), T0 + 65_000, 40_000),
    )
    .await;

    let response = env
        .client
        .get(env.url(&day()))
        .bearer_auth(ALPHA_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["@odata.context"],
        format!(
            "{}/v1.0/$metadata#Collection(microsoft.graph.callRecords.pstnCallLogRow)",
            env.teams.base_url()
        )
    );
    assert_eq!(body["@odata.count"], 3);
    assert!(body.get("@odata.nextLink").is_none(), "one page: {body}");
    let first = &body["value"][0];
    for key in ["userId", "conferenceId", "destinationContext"] {
        assert!(first[key].is_null(), "{key} is there, as null: {first}");
    }
    assert_eq!(first["startDateTime"], "2026-11-26T00:00:05.0000000Z");
    assert_eq!(first["endDateTime"], "2026-11-26T00:01:06.4000000Z");
    assert_eq!(first["charge"], 0.0);
    assert_eq!(first["currency"], "USD");

    let page: GraphPage<PstnCallLogRow> = serde_json::from_value(body).unwrap();
    let rows: Vec<(&str, i32, Option<CallDurationSource>)> = page
        .value
        .iter()
        .map(|r| (r.call_id.as_str(), r.duration, r.call_duration_source))
        .collect();
    assert_eq!(
        rows,
        [
            // The carrier's 62.6 s, reported in time.
            ("on-time", 63, Some(CallDurationSource::Operator)),
            // Teams' 42.5 s, rounded half up: the carrier's 40 s came after the deadline.
            ("late", 43, Some(CallDurationSource::Microsoft)),
            // Teams' 7 s: never reported.
            ("missing", 7, Some(CallDurationSource::Microsoft)),
        ]
    );
    for row in &page.value {
        assert_eq!(row.operator.as_deref(), Some("alpha"));
        assert_eq!(row.call_type.as_deref(), Some("user_out"));
        assert_eq!(row.caller_number.as_deref(), Some(row_number(row)));
        assert_eq!(row.callee_number.as_deref(), Some("+442079460000"));
    }
    // HEAD answers as GET, without the body.
    let head = env
        .client
        .head(env.url(&day()))
        .bearer_auth(ALPHA_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
}

fn row_number(row: &PstnCallLogRow) -> &str {
    match row.call_id.as_str() {
        "on-time" => "+14255550100",
        "late" => "+14255550101",
        _ => "+14255550102",
    }
}

#[tokio::test]
async fn more_than_a_thousand_rows_are_chained_by_next_link() {
    let env = start().await;
    for i in 0..2_345u32 {
        env.teams
            .add_call(call(
                &format!("a-{i:05}"),
                &alpha_number(i % 10),
                i64::from(i) * 30,
                Some(1_000 + i64::from(i)),
            ))
            .unwrap();
    }
    env.teams
        .add_call(call("b-0", &beta_number(0), 10, Some(1_000)))
        .unwrap();
    env.teams.advance_to(T0 + DAY_MS).unwrap();

    let pages = follow(&env, ALPHA_TOKEN, &day()).await;
    let sizes: Vec<usize> = pages.iter().map(|p| p.value.len()).collect();
    assert_eq!(sizes, [1000, 1000, 345]);
    for page in &pages {
        assert_eq!(page.count, Some(page.value.len() as u64));
    }
    let ids: Vec<&str> = pages
        .iter()
        .flat_map(|p| p.value.iter().map(|r| r.call_id.as_str()))
        .collect();
    let distinct: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), 2_345, "no row skipped or repeated");
    assert!(!distinct.contains("b-0"), "beta's call is not alpha's");
    let sorted = {
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted
    };
    assert_eq!(ids, sorted, "in the order the calls were added");

    // The link is opaque and sealed: a changed token is refused, in Graph's shape.
    let next = pages[0].next_link.clone().unwrap();
    assert!(next.starts_with(&format!("{}{}", env.teams.base_url(), day())));
    let mut forged = next.clone().into_bytes();
    let at = forged.len() - 40;
    forged[at] = if forged[at] == b'0' { b'1' } else { b'0' };
    let (status, _, body) = env
        .get(ALPHA_TOKEN, &String::from_utf8(forged).unwrap())
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "BadRequest");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("altered or forged"),
        "{body}"
    );
    // Another window under the same token is refused too.
    let token = next.split_once("?").unwrap().1;
    let elsewhere = format!("{}?{token}", log_path(T0, T0 + 2 * DAY_MS));
    let (status, _, body) = env.get(ALPHA_TOKEN, &elsewhere).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("another window"),
        "{body}"
    );
    // Paging options of one's own are not taken.
    let (status, _, body) = env.get(ALPHA_TOKEN, &format!("{}?$top=5", day())).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"$top\" is not supported"),
        "{body}"
    );
    // Another carrier cannot follow alpha's link, and is not told it exists.
    let (status, _, body) = env.get(BETA_TOKEN, &next).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "ResourceNotFound");
}

#[tokio::test]
async fn each_carrier_sees_only_its_own_calls() {
    let env = start().await;
    env.teams
        .add_call(call("a-1", &alpha_number(0), 0, Some(10_000)))
        .unwrap();
    env.teams
        .add_call(call("b-1", &beta_number(0), 0, Some(10_000)))
        .unwrap();
    env.teams.advance_to(T0 + 3_600_000).unwrap();
    for (token, want, operator) in [(ALPHA_TOKEN, "a-1", "alpha"), (BETA_TOKEN, "b-1", "beta")] {
        let pages = follow(&env, token, &day()).await;
        let rows: Vec<(&str, Option<&str>)> = pages[0]
            .value
            .iter()
            .map(|r| (r.call_id.as_str(), r.operator.as_deref()))
            .collect();
        assert_eq!(rows, [(want, Some(operator))]);
    }
}

#[tokio::test]
async fn the_window_is_checked_as_graph_checks_it() {
    let env = start().await;
    env.teams
        .add_call(call("edge", &alpha_number(0), 0, Some(10_000)))
        .unwrap();
    env.teams.advance_to(T0 + 3_600_000).unwrap();
    let connect = T0 + 5_000;
    // Both ends inclusive, on the connect time (the row's startDateTime).
    for (from, to, rows) in [
        (connect, connect, 1),
        (connect + 1, T0 + DAY_MS, 0),
        (T0, connect - 1, 0),
    ] {
        let pages = follow(&env, ALPHA_TOKEN, &log_path(from, to)).await;
        assert_eq!(pages[0].value.len(), rows, "{from}..{to}");
    }
    // Exactly 90 days is allowed; a millisecond more is not.
    let pages = follow(&env, ALPHA_TOKEN, &log_path(T0, T0 + 90 * DAY_MS)).await;
    assert_eq!(pages[0].value.len(), 1);
    let base = "/v1.0/communications/callRecords/";
    let refused = [
        (
            log_path(T0, T0 + 90 * DAY_MS + 1),
            "must not be longer than 90 days",
        ),
        (log_path(T0 + 1, T0), "must not be before fromDateTime"),
        (
            format!("{base}getPstnCalls(fromDateTime=2026-11-26T00:00:00Z)"),
            "toDateTime is required",
        ),
        (
            format!("{base}getPstnCalls(fromDateTime=2026-11-31,toDateTime=2026-12-01)"),
            "fromDateTime: \"2026-11-31\" is not a UTC date",
        ),
        (format!("{base}getPstnCalls"), "must be called as"),
        (
            format!("{base}getDirectRoutingCalls()"),
            "must be called as",
        ),
        (
            format!("{base}getPstnCalls(fromDateTime=%zz)"),
            "percent-escape",
        ),
    ];
    for (path, want) in refused {
        let (status, headers, body) = env.get(ALPHA_TOKEN, &path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(headers["content-type"], "application/json", "{path}");
        assert_eq!(body["error"]["code"], "BadRequest", "{path}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(want), "{path}: {message}");
    }
    // Percent-encoded colons are the same path.
    let encoded = format!(
        "{base}getPstnCalls(fromDateTime={},toDateTime={})",
        format_timestamp(T0).replace(':', "%3A"),
        format_timestamp(T0 + DAY_MS).replace(':', "%3A")
    );
    let pages = follow(&env, ALPHA_TOKEN, &encoded).await;
    assert_eq!(pages[0].value.len(), 1);
}

#[tokio::test]
async fn a_missing_or_unknown_token_is_401_in_graph_s_shape() {
    let env = start().await;
    for token in ["", "not-a-token"] {
        let (status, headers, body) = env.get(token, &day()).await;
        assert_eq!(status, 401, "{token:?}: {body}");
        assert_eq!(headers["www-authenticate"], "Bearer");
        assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    }
    let post = env
        .client
        .post(env.url(&day()))
        .bearer_auth(ALPHA_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(post.headers()["allow"], "GET, HEAD");
    let body: Value = post.json().await.unwrap();
    assert_eq!(body["error"]["code"], "MethodNotAllowed");
}
