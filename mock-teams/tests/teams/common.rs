//! A running mock-teams with two carriers, their numbers assigned, and helpers to call it.

use std::sync::{Arc, Mutex};

use mock_teams::{
    Assignment, CarrierSpec, Exchange, MockTeams, NewCall, NumberChange, StreamQuality,
    TeamsOptions,
};
use oc_protocol::{
    Assignee, AssigneeType, AudioCodec, Direction, NumberUsage, StreamDirection, UnixMillis,
};
use serde_json::Value;

/// 2026-11-26T00:00:00.000Z.
pub(crate) const T0: UnixMillis = 1_795_651_200_000;
pub(crate) const TENANT: &str = "c0ffee00-0000-4000-8000-000000000001";
pub(crate) const ALPHA_TOKEN: &str = "alpha-token";
pub(crate) const BETA_TOKEN: &str = "beta-token";

pub(crate) struct Env {
    pub(crate) teams: MockTeams,
    pub(crate) client: reqwest::Client,
    pub(crate) exchanges: Arc<Mutex<Vec<Exchange>>>,
}

pub(crate) fn alpha_number(i: u32) -> String {
    format!("+1425555{:04}", 100 + i)
}

pub(crate) fn beta_number(i: u32) -> String {
    format!("+1425555{:04}", 200 + i)
}

pub(crate) fn assignment(number: &str) -> Assignment {
    Assignment {
        sip_uri: format!("sip:{number}@sbc1.carrier.example;user=phone"),
        usage: NumberUsage::CallingUserAssignment,
        assignee: Assignee {
            id: "a1b2c3d4-0000-4000-8000-000000000001".into(),
            kind: AssigneeType::User,
        },
    }
}

/// Starts mock-teams with carriers alpha and beta, ten numbers each, all assigned at T0.
pub(crate) async fn start_with(mut options: TeamsOptions) -> Env {
    let exchanges = Arc::new(Mutex::new(Vec::new()));
    let sink = exchanges.clone();
    options.sink = Arc::new(move |e: Exchange| sink.lock().unwrap().push(e));
    let teams = MockTeams::start(options).await.expect("mock-teams starts");
    for (id, token, number) in [
        ("alpha", ALPHA_TOKEN, alpha_number as fn(u32) -> String),
        ("beta", BETA_TOKEN, beta_number),
    ] {
        teams
            .add_carrier(CarrierSpec {
                id: id.into(),
                token: token.into(),
                webhook: None,
            })
            .unwrap();
        let changes = (0..10)
            .map(|i| {
                let n = number(i);
                teams.with_store(|s| s.add_number(id, TENANT, &n)).unwrap();
                NumberChange::Assign {
                    assignment: assignment(&n),
                    telephone_number: n,
                }
            })
            .collect();
        for result in teams.apply_changes(changes) {
            result.unwrap();
        }
    }
    Env {
        teams,
        client: reqwest::Client::new(),
        exchanges,
    }
}

pub(crate) async fn start() -> Env {
    start_with(TeamsOptions::loopback(T0)).await
}

pub(crate) fn quality(packets: u32, avg_loss_ppm: u32) -> [StreamQuality; 2] {
    let q = StreamQuality {
        direction: StreamDirection::CallerToCallee,
        codec: AudioCodec::Opus,
        packets,
        avg_jitter_ms: 10,
        max_jitter_ms: 30,
        avg_rtt_ms: 80,
        max_rtt_ms: 120,
        avg_loss_ppm,
        max_loss_ppm: avg_loss_ppm + 1_000,
        degradation_milli: 200,
        concealed_ppm: 5_000,
    };
    [
        q,
        StreamQuality {
            direction: StreamDirection::CalleeToCaller,
            ..q
        },
    ]
}

/// An outbound call starting `start_s` seconds after T0, answered after 5 s and talking
/// `talk_ms`, or unanswered; its records are available 30 s after its end.
pub(crate) fn call(call_id: &str, number: &str, start_s: i64, talk_ms: Option<i64>) -> NewCall {
    let start = T0 + start_s * 1000;
    let connect = talk_ms.map(|_| start + 5_000);
    NewCall {
        call_id: call_id.into(),
        telephone_number: number.into(),
        direction: Direction::Outbound,
        other_number: "+442079460000".into(),
        start,
        connect,
        end: connect.map_or(start + 20_000, |c| c + talk_ms.unwrap_or(0)),
        final_sip_code: if talk_ms.is_some() { 200 } else { 487 },
        availability_delay_ms: 30_000,
        quality: talk_ms.map(|t| quality(u32::try_from(t / 20).unwrap(), 1_000)),
    }
}

impl Env {
    pub(crate) fn url(&self, path_and_query: &str) -> String {
        if path_and_query.starts_with("http") {
            path_and_query.to_owned()
        } else {
            format!("{}{path_and_query}", self.teams.base_url())
        }
    }

    /// GET with a bearer token (none when `token` is empty): status, headers, JSON body.
    pub(crate) async fn get(
        &self,
        token: &str,
        path: &str,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut request = self.client.get(self.url(path));
        if !token.is_empty() {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, headers, body)
    }

    /// POSTs a duration report.
    pub(crate) async fn report(
        &self,
        token: &str,
        key: Option<&str>,
        body: &Value,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .post(self.url(oc_protocol::paths::CALL_DURATIONS))
            .bearer_auth(token)
            .json(body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Follows a feed or collection from `first` until a page has no nextLink; returns every
    /// item and the last page's deltaLink.
    pub(crate) async fn follow(&self, token: &str, first: &str) -> (Vec<Value>, Option<String>) {
        let mut items = Vec::new();
        let mut url = first.to_owned();
        for _ in 0..10_000 {
            let (status, _, page) = self.get(token, &url).await;
            assert_eq!(status, 200, "{url}: {page}");
            items.extend(page["value"].as_array().unwrap().iter().cloned());
            match page["nextLink"].as_str() {
                Some(next) => url = next.to_owned(),
                None => return (items, page["deltaLink"].as_str().map(str::to_owned)),
            }
        }
        panic!("more than 10000 pages");
    }
}

pub(crate) fn report_record(
    call_id: &str,
    number: &str,
    connect: UnixMillis,
    duration_ms: i64,
) -> Value {
    serde_json::json!({
        "callId": call_id,
        "telephoneNumber": number,
        "connectDateTime": oc_protocol::format_timestamp(connect),
        "endDateTime": oc_protocol::format_timestamp(connect + duration_ms),
        "durationMs": duration_ms,
    })
}
