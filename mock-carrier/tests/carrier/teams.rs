//! A fake Teams on wiremock: change feeds paged by opaque links, a numbers collection, and a
//! call-durations endpoint with idempotency, each recording what it was sent.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use mock_carrier::CarrierConfig;
use oc_protocol::durations::parse_duration_report;
use oc_protocol::ids::uuid_from_bits;
use oc_protocol::{
    AudioCodec, CallDurationSource, CallRecord, Direction, DurationReport, Problem, ProblemKind,
    QualityRecord, StreamDirection, format_timestamp,
};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub(crate) const TOKEN: &str = "carrier-token";
pub(crate) const SECRET: &str = "whsec_test";
/// 2026-11-26T09:00:00.000Z
pub(crate) const T0: i64 = 1_795_683_600_000;

/// One feed request as the fake saw it, with the real time it arrived.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) path_and_query: String,
    pub(crate) at: Instant,
}

/// A change feed: records served from a position, links that carry the next position.
pub(crate) struct Feed {
    path: &'static str,
    base: String,
    pub(crate) records: Vec<Value>,
    pub(crate) page_size: usize,
    pub(crate) issued: BTreeSet<String>,
    /// Answers given before the feed's own, in order (e.g. a 429 or a 500).
    pub(crate) script: VecDeque<ResponseTemplate>,
    pub(crate) seen: Vec<Seen>,
    /// How many chains were read to a page with a deltaLink.
    pub(crate) completed_chains: u32,
}

impl Feed {
    fn answer(&mut self, request: &Request) -> ResponseTemplate {
        let query = request.url.query().map(str::to_owned);
        // A chain may start with a `pageSize` of the carrier's choosing; the links carry it on.
        if let Some(size) = query
            .as_deref()
            .and_then(|q| q.strip_prefix("pageSize="))
            .and_then(|n| n.parse::<usize>().ok())
        {
            self.page_size = size;
        }
        let start = match &query {
            None => 0,
            Some(q) if q.starts_with("pageSize=") => 0,
            Some(q) if self.issued.contains(q) => q
                .split('&')
                .find_map(|p| p.strip_prefix("cursor="))
                .and_then(|c| c.parse::<usize>().ok())
                .unwrap_or(0),
            Some(_) => return problem(ProblemKind::InvalidCursor, "not a link this feed issued"),
        };
        let start = start.min(self.records.len());
        let end = (start + self.page_size).min(self.records.len());
        let value = &self.records[start..end];
        let body = if end < self.records.len() {
            let q = format!("cursor={end}&pageSize={}", self.page_size);
            self.issued.insert(q.clone());
            // Written as Teams writes a page, its nextLink last: the carrier asks for the next
            // page from the body's end while it reads this one.
            let link = format!("{}{}?{q}", self.base, self.path);
            let body = format!(r#"{{"value":{},"nextLink":"{link}"}}"#, Value::from(value));
            return ResponseTemplate::new(200).set_body_raw(body, "application/json");
        } else {
            let q = format!("cursor={end}&delta=1");
            self.issued.insert(q.clone());
            self.completed_chains += 1;
            json!({"value": value, "nextLink": null, "deltaLink": format!("{}{}?{q}", self.base, self.path)})
        };
        ResponseTemplate::new(200).set_body_json(body)
    }
}

/// The call-durations endpoint.
#[derive(Default)]
pub(crate) struct Durations {
    keys: BTreeMap<String, (Vec<u8>, Value)>,
    pub(crate) script: VecDeque<ResponseTemplate>,
    /// Every request: key, body, status.
    pub(crate) log: Vec<(Option<String>, Vec<u8>, u16)>,
    /// Every accepted record, by callId, in order.
    pub(crate) accepted: BTreeMap<String, Vec<DurationReport>>,
}

impl Durations {
    fn answer(&mut self, request: &Request) -> ResponseTemplate {
        let key = request
            .headers
            .get("Idempotency-Key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = request.body.clone();
        let (status, template) = self.respond(key.as_deref(), &body);
        self.log.push((key, body, status));
        template
    }

    fn respond(&mut self, key: Option<&str>, body: &[u8]) -> (u16, ResponseTemplate) {
        if let Some(forced) = self.script.pop_front() {
            return (0, forced);
        }
        let Some(key) = key else {
            return (
                400,
                problem(ProblemKind::Validation, "Idempotency-Key is required"),
            );
        };
        if let Some((first_body, first_answer)) = self.keys.get(key) {
            if first_body == body {
                return (
                    200,
                    ResponseTemplate::new(200).set_body_json(first_answer.clone()),
                );
            }
            return (
                422,
                problem(ProblemKind::IdempotencyKeyReused, "another body"),
            );
        }
        let parsed = match parse_duration_report(body) {
            Ok(parsed) => parsed,
            Err(p) => return (p.status, ResponseTemplate::new(p.status).set_body_json(p)),
        };
        let mut accepted = 0;
        let mut rejected = Vec::new();
        for record in parsed.records {
            match record {
                Ok(r) => {
                    accepted += 1;
                    self.accepted.entry(r.call_id.clone()).or_default().push(r);
                }
                Err(r) => rejected.push(r),
            }
        }
        let answer = json!({"accepted": accepted, "rejected": rejected});
        self.keys
            .insert(key.to_owned(), (body.to_vec(), answer.clone()));
        (200, ResponseTemplate::new(200).set_body_json(answer))
    }
}

pub(crate) fn problem(kind: ProblemKind, detail: &str) -> ResponseTemplate {
    ResponseTemplate::new(kind.status()).set_body_raw(
        serde_json::to_vec(&Problem::new(kind, detail)).unwrap(),
        "application/problem+json",
    )
}

#[derive(Clone)]
struct FeedResponder(Arc<Mutex<Feed>>);

impl Respond for FeedResponder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut feed = self.0.lock().unwrap();
        let template = match feed.script.pop_front() {
            Some(forced) => forced,
            None => feed.answer(request),
        };
        let path_and_query = match request.url.query() {
            Some(q) => format!("{}?{q}", request.url.path()),
            None => request.url.path().to_owned(),
        };
        feed.seen.push(Seen {
            path_and_query,
            at: Instant::now(),
        });
        template
    }
}

#[derive(Clone)]
struct DurationsResponder(Arc<Mutex<Durations>>);

impl Respond for DurationsResponder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        self.0.lock().unwrap().answer(request)
    }
}

/// The fake Teams.
pub(crate) struct FakeTeams {
    pub(crate) server: MockServer,
    pub(crate) cdrs: Arc<Mutex<Feed>>,
    pub(crate) quality: Arc<Mutex<Feed>>,
    pub(crate) durations: Arc<Mutex<Durations>>,
}

impl FakeTeams {
    pub(crate) async fn start(page_size: usize) -> Self {
        let server = MockServer::start().await;
        let base = server.uri();
        let feed = |path| {
            Arc::new(Mutex::new(Feed {
                path,
                base: base.clone(),
                records: Vec::new(),
                page_size,
                issued: BTreeSet::new(),
                script: VecDeque::new(),
                seen: Vec::new(),
                completed_chains: 0,
            }))
        };
        let cdrs = feed("/oc/v1/cdrs/delta");
        let quality = feed("/oc/v1/quality/delta");
        let durations = Arc::new(Mutex::new(Durations::default()));
        Mock::given(method("GET"))
            .and(path("/oc/v1/cdrs/delta"))
            .respond_with(FeedResponder(Arc::clone(&cdrs)))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/oc/v1/quality/delta"))
            .respond_with(FeedResponder(Arc::clone(&quality)))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/oc/v1/call-durations"))
            .respond_with(DurationsResponder(Arc::clone(&durations)))
            .mount(&server)
            .await;
        Self {
            server,
            cdrs,
            quality,
            durations,
        }
    }

    /// A carrier configuration pointed at this fake, listening on 127.0.0.1:0.
    pub(crate) fn config(&self) -> CarrierConfig {
        let mut config = CarrierConfig::new(&self.server.uri(), TOKEN, SECRET);
        config.workers = 1;
        config.client.request_timeout_ms = 5_000;
        config.client.backoff_ms = 50;
        config
    }

    pub(crate) fn add_cdrs(&self, records: impl IntoIterator<Item = Value>) {
        self.cdrs.lock().unwrap().records.extend(records);
    }

    pub(crate) fn add_quality(&self, records: impl IntoIterator<Item = Value>) {
        self.quality.lock().unwrap().records.extend(records);
    }

    pub(crate) fn accepted(&self) -> BTreeMap<String, Vec<DurationReport>> {
        self.durations.lock().unwrap().accepted.clone()
    }
}

/// An answered call's CDR: connect at `T0 + offset_s`, lasting `duration_ms`.
pub(crate) fn cdr(
    call_id: &str,
    number: &str,
    offset_s: i64,
    duration_ms: i64,
    version: u32,
) -> Value {
    let connect = T0 + offset_s * 1_000;
    let end = connect + duration_ms;
    let bits = u128::from(oc_protocol_hash(call_id));
    serde_json::to_value(CallRecord {
        id: uuid_from_bits(bits),
        version,
        call_id: call_id.to_owned(),
        tenant_id: uuid_from_bits(7),
        telephone_number: number.to_owned(),
        direction: Direction::Outbound,
        caller_number: number.to_owned(),
        callee_number: "+442071234567".to_owned(),
        start_date_time: format_timestamp(connect - 3_000),
        connect_date_time: Some(format_timestamp(connect)),
        end_date_time: format_timestamp(end),
        duration_ms,
        final_sip_code: 200,
        call_duration_source: CallDurationSource::Microsoft,
        available_date_time: format_timestamp(end + 60_000),
    })
    .unwrap()
}

/// An unanswered call's CDR.
pub(crate) fn unanswered_cdr(call_id: &str, number: &str, offset_s: i64) -> Value {
    let mut value = cdr(call_id, number, offset_s, 0, 1);
    value["connectDateTime"] = Value::Null;
    value["finalSipCode"] = json!(486);
    value
}

pub(crate) fn quality(call_id: &str) -> Value {
    serde_json::to_value(QualityRecord {
        call_id: call_id.to_owned(),
        stream_direction: StreamDirection::CallerToCallee,
        audio_codec: AudioCodec::Opus,
        packet_utilization: 400,
        average_jitter_ms: 5,
        max_jitter_ms: 9,
        average_packet_loss_rate: 0.0,
        max_packet_loss_rate: 0.01,
        average_round_trip_time_ms: 40,
        max_round_trip_time_ms: 80,
        average_audio_degradation: 0.1,
        average_ratio_of_concealed_samples: 0.0,
        poor: false,
        available_date_time: format_timestamp(T0),
    })
    .unwrap()
}

fn oc_protocol_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}
