//! Probes of the carrier and of Teams at the end of a run: the carrier's view of every number
//! [NUM-STATE], its signature checking with forged and replayed notifications [SEC-SIGNATURE],
//! and Teams' isolation between carriers [SEC-ISOLATION].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use oc_protocol::ids::uuid_from_bits;
use oc_protocol::signing::{SIGNATURE_HEADER, sign};
use oc_protocol::{
    Assignee, AssigneeType, CarrierNumberView, NumberAssignmentNotification, NumberEvent,
    NumberEventType, NumberUsage, UnixMillis, format_timestamp, paths,
};

use mock_teams::{HarnessCall, HarnessCalls};
use oc_observe::ExchangeDetail;

use crate::checker::history::{IsolationProbe, Probe, SignatureProbe};

/// Where the harness's own calls to the carrier are recorded (beside Teams' exchanges, so that
/// rules can cite them), and as which carrier.
#[derive(Clone, Copy)]
pub(crate) struct Recording<'a> {
    pub(crate) calls: &'a HarnessCalls,
    pub(crate) carrier: &'a str,
    /// Simulated time now.
    pub(crate) sim_time: UnixMillis,
}

/// What became of one recorded call: the status, the body (read up to a limit) or why there
/// is none, and the exchange's `seq`.
pub(crate) struct Answer {
    pub(crate) status: Option<u16>,
    pub(crate) body: Result<Vec<u8>, String>,
    pub(crate) seq: u64,
    /// No answer came, and not for want of time: the connection failed or closed first.
    pub(crate) unanswered: bool,
}

/// One request to the carrier, as [`send`] makes and records it.
#[derive(Clone)]
pub(crate) struct Request<'a> {
    pub(crate) method: reqwest::Method,
    pub(crate) url: &'a str,
    pub(crate) headers: &'a [(&'a str, String)],
    pub(crate) body: Vec<u8>,
    /// The most of the answer's body read.
    pub(crate) limit: usize,
    /// What the exchange is about, for the checker.
    pub(crate) detail: ExchangeDetail,
}

/// One call to the carrier, recorded as an exchange with its `detail`.
pub(crate) async fn send(
    client: &reqwest::Client,
    rec: Recording<'_>,
    request: Request<'_>,
) -> Answer {
    let Request {
        method,
        url,
        headers,
        body,
        limit,
        detail,
    } = request;
    let wall_time_ms = wall_ms();
    let started = std::time::Instant::now();
    let mut request = client.request(method.clone(), url);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    if !body.is_empty() {
        request = request.body(body.clone());
    }
    let (status, answer, unanswered) = match request.send().await {
        Err(err) => (None, Err(transport_error(&err)), !err.is_timeout()),
        Ok(response) => {
            let status = response.status().as_u16();
            (Some(status), read_limited(response, limit).await, false)
        }
    };
    let header_refs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let recorded = match (status, &answer) {
        (Some(status), Ok(b)) => Ok((status, b.as_slice())),
        (Some(status), Err(_)) => Ok((status, &[][..])),
        (None, Err(why)) => Err(why.clone()),
        (None, Ok(_)) => Err("no answer".to_owned()),
    };
    let seq = rec.calls.record(HarnessCall {
        carrier: rec.carrier,
        method: method.as_str(),
        url,
        headers: &header_refs,
        body: &body,
        sim_time: rec.sim_time,
        wall_time_ms,
        latency: started.elapsed(),
        answer: recorded,
        detail,
    });
    Answer {
        status,
        body: answer,
        seq,
        unanswered,
    }
}

/// How long [`send_until_answered`] waits before each new attempt.
pub(crate) const RESEND_AFTER: [Duration; 2] = [Duration::from_millis(250), Duration::from_secs(1)];

/// [`send`], sent again after each wait of [`RESEND_AFTER`] while the connection failed or
/// closed before any answer; each attempt is recorded. HTTP/1.1 has a race no client avoids: a
/// server closes a kept-alive connection as a request goes out on it, and the request is lost
/// unanswered ("connection closed before message completed"; an hour of legs at 200 a second
/// lost 30 so, each a call the carrier then never knew of). Only for posts a carrier may get
/// twice: a leg is identified by its call id (PROTOCOL 2.3). A post that timed out is not sent
/// again: the carrier had it and was slow, which is for the figures to show.
pub(crate) async fn send_until_answered(
    client: &reqwest::Client,
    rec: Recording<'_>,
    request: Request<'_>,
) -> Answer {
    let mut waits = RESEND_AFTER.iter();
    loop {
        let answer = send(client, rec, request.clone()).await;
        match waits.next() {
            Some(wait) if answer.unanswered => tokio::time::sleep(*wait).await,
            _ => return answer,
        }
    }
}

/// The longest one probe may take, connection included: a carrier that hangs costs this much
/// per probe, and the probes of numbers run [`CONCURRENT_PROBES`] at a time within
/// [`NUMBER_PROBES_BUDGET`].
pub(crate) const TIMEOUT: Duration = Duration::from_secs(5);
/// Probes of numbers in flight at once.
pub(crate) const CONCURRENT_PROBES: usize = 8;
/// The longest all probes of numbers may take together; those not answered by then are
/// recorded as unanswered.
pub(crate) const NUMBER_PROBES_BUDGET: Duration = Duration::from_secs(60);

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .build()
        .unwrap_or_default()
}

/// Wall-clock Unix ms: signatures' `t`, and simulated time in a certification.
pub(crate) fn wall_ms() -> UnixMillis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Wall-clock Unix seconds, for an `OC-Signature`'s `t`.
pub(crate) fn wall_secs() -> i64 {
    wall_ms() / 1000
}

/// The carrier's state probe of every number, signed like a webhook over an empty body; in
/// order, at most [`CONCURRENT_PROBES`] at a time and all within [`NUMBER_PROBES_BUDGET`].
pub(crate) async fn numbers(
    rec: Recording<'_>,
    carrier_url: &str,
    secret: &str,
    numbers: &[String],
) -> Vec<Probe> {
    use futures_util::StreamExt as _;

    let client = client();
    let deadline = tokio::time::Instant::now() + NUMBER_PROBES_BUDGET;
    futures_util::stream::iter(numbers)
        .map(|number| {
            let client = &client;
            async move {
                let probe = probe_number(client, rec, carrier_url, secret, number);
                match tokio::time::timeout_at(deadline, probe).await {
                    Ok(probe) => probe,
                    Err(_) => Probe {
                        telephone_number: number.clone(),
                        seq: None,
                        status: None,
                        view: None,
                        error: Some(format!(
                            "not answered: the probes of all numbers had {}s",
                            NUMBER_PROBES_BUDGET.as_secs()
                        )),
                    },
                }
            }
        })
        .buffered(CONCURRENT_PROBES)
        .collect()
        .await
}

async fn probe_number(
    client: &reqwest::Client,
    rec: Recording<'_>,
    carrier_url: &str,
    secret: &str,
    number: &str,
) -> Probe {
    let url = format!("{carrier_url}{}{number}", paths::CARRIER_NUMBER_PREFIX);
    let signature = sign(secret.as_bytes(), wall_secs(), b"");
    let answer = send(
        client,
        rec,
        Request {
            method: reqwest::Method::GET,
            url: &url,
            headers: &[(SIGNATURE_HEADER, signature)],
            body: Vec::new(),
            limit: PROBE_BODY_LIMIT,
            detail: ExchangeDetail::StateProbe {
                telephone_number: number.to_owned(),
            },
        },
    )
    .await;
    let (view, error) = match (answer.status, answer.body) {
        (_, Err(error)) => (None, Some(error)),
        (Some(200), Ok(body)) => match serde_json::from_slice::<CarrierNumberView>(&body) {
            Ok(view) => (Some(view), None),
            Err(err) => (None, Some(not_a_view(&err, &body))),
        },
        (_, Ok(_)) => (None, None),
    };
    Probe {
        telephone_number: number.to_owned(),
        seq: Some(answer.seq),
        status: answer.status,
        view,
        error,
    }
}

/// Why a 200 answer is not a carrier view (PROTOCOL.md 2.2), with the body as received (cut),
/// so that a malformed answer is not mistaken for a state that did not converge.
fn not_a_view(err: &serde_json::Error, body: &[u8]) -> String {
    const SHOWN: usize = 300;
    let text = String::from_utf8_lossy(body);
    let shown: String = text.chars().take(SHOWN).collect();
    let cut = if text.chars().count() > SHOWN {
        "…"
    } else {
        ""
    };
    format!("the answer is not a valid carrier view ({err}); it was: {shown}{cut}")
}

/// The most of a probe's answer read: a view is a few hundred bytes.
const PROBE_BODY_LIMIT: usize = 64 * 1024;

/// Reads at most `limit` bytes of a body: a carrier that streams without end is cut off.
pub(crate) async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    return Err(format!("the answer is longer than {limit} bytes"));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(err) => return Err(format!("the answer broke off: {}", transport_error(&err))),
        }
    }
}

/// A transport error with its causes, e.g. "error sending request: connection reset by peer".
pub(crate) fn transport_error(err: &reqwest::Error) -> String {
    let mut text = if err.is_timeout() {
        format!("no answer within {}s", TIMEOUT.as_secs())
    } else {
        err.to_string()
    };
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
        source = cause_source(source);
    }
    text
}

fn cause_source<'a>(
    error: Option<&'a (dyn std::error::Error + 'static)>,
) -> Option<&'a (dyn std::error::Error + 'static)> {
    error.and_then(std::error::Error::source)
}

/// The longest the probes of `numbers` numbers and the signature probes can take together.
pub(crate) fn probes_limit(numbers: usize) -> Duration {
    let rounds = u32::try_from(numbers.div_ceil(CONCURRENT_PROBES)).unwrap_or(u32::MAX);
    let numbers = (TIMEOUT * rounds).min(NUMBER_PROBES_BUDGET);
    // Each signature probe: the forged notification, then the state probe.
    numbers + TIMEOUT * (2 * FORGED_NUMBERS.len() as u32)
}

/// Numbers no Teams inventory holds (the 555-01xx range reserved for fiction), one per probe.
const FORGED_NUMBERS: [&str; 3] = ["+12025550181", "+12025550182", "+12025550183"];

/// Sends a notification with no signature, one signed with the wrong secret, and one signed
/// 10 minutes ago, each assigning a number Teams never gave the carrier; then probes each
/// number. A carrier that checks signatures answers 401 and has never heard of them (404).
pub(crate) async fn signatures(
    rec: Recording<'_>,
    carrier_url: &str,
    secret: &str,
    sim_now: UnixMillis,
) -> Vec<SignatureProbe> {
    let client = client();
    let url = format!("{carrier_url}{}", paths::NUMBER_ASSIGNMENTS);
    let mut probes = Vec::new();
    for (i, kind) in ["missing", "wrong", "stale"].into_iter().enumerate() {
        let number = FORGED_NUMBERS[i];
        let notification = NumberAssignmentNotification {
            notification_id: uuid_from_bits(0xf0f0_0000 + i as u128),
            sent_date_time: format_timestamp(sim_now),
            events: vec![NumberEvent {
                event_id: uuid_from_bits(0xe0e0_0000 + i as u128),
                sequence: 1,
                kind: NumberEventType::Assigned,
                tenant_id: uuid_from_bits(0xd0d0_0000),
                telephone_number: number.to_owned(),
                sip_uri: Some(format!("sip:{number}@forged.example;user=phone")),
                usage: Some(NumberUsage::CallingUserAssignment),
                assignee: Some(Assignee {
                    id: uuid_from_bits(0xc0c0_0000 + i as u128),
                    kind: AssigneeType::User,
                }),
                effective_date_time: format_timestamp(sim_now),
            }],
        };
        let body = serde_json::to_vec(&notification).unwrap_or_default();
        let mut headers = vec![(
            reqwest::header::CONTENT_TYPE.as_str(),
            "application/json".to_owned(),
        )];
        match kind {
            "wrong" => headers.push((
                SIGNATURE_HEADER,
                sign(b"not-the-secret", wall_secs(), &body),
            )),
            "stale" => headers.push((
                SIGNATURE_HEADER,
                sign(secret.as_bytes(), wall_secs() - 600, &body),
            )),
            _ => {}
        }
        let forged = send(
            &client,
            rec,
            Request {
                method: reqwest::Method::POST,
                url: &url,
                headers: &headers,
                body,
                limit: PROBE_BODY_LIMIT,
                detail: ExchangeDetail::ForgedNotification {
                    signature: kind.to_owned(),
                    telephone_number: number.to_owned(),
                },
            },
        )
        .await;
        let probe_url = format!("{carrier_url}{}{number}", paths::CARRIER_NUMBER_PREFIX);
        let probe = send(
            &client,
            rec,
            Request {
                method: reqwest::Method::GET,
                url: &probe_url,
                headers: &[(SIGNATURE_HEADER, sign(secret.as_bytes(), wall_secs(), b""))],
                body: Vec::new(),
                limit: PROBE_BODY_LIMIT,
                detail: ExchangeDetail::StateProbe {
                    telephone_number: number.to_owned(),
                },
            },
        )
        .await;
        let (status, probe_status) = (forged.status, probe.status);
        probes.push(SignatureProbe {
            kind: kind.to_owned(),
            telephone_number: number.to_owned(),
            status,
            probe_status,
            seqs: vec![forged.seq, probe.seq],
        });
    }
    probes
}

/// Another carrier's token on the carrier's last feed link must get 404, and no token 401.
/// A 429 (an injected fault, or the rate limit) is waited out, up to three times: it says
/// nothing about isolation.
pub(crate) async fn isolation(
    teams_url: &str,
    carrier_link: Option<&str>,
    other_token: &str,
) -> Vec<IsolationProbe> {
    let client = client();
    let mut probes = Vec::new();
    if let Some(link) = carrier_link {
        let status = status_after_throttling(|| client.get(link).bearer_auth(other_token)).await;
        probes.push(IsolationProbe {
            what: "another carrier's token on the carrier's last feed link".into(),
            status,
            expected: 404,
        });
    }
    let url = format!("{teams_url}{}", paths::NUMBERS);
    let status = status_after_throttling(|| client.get(&url)).await;
    probes.push(IsolationProbe {
        what: "GET /oc/v1/numbers without a token".into(),
        status,
        expected: 401,
    });
    probes
}

/// The status of a request, sent again after each 429's `Retry-After` (at most 3 times, each
/// wait at most 5 s); 0 when there was no answer.
async fn status_after_throttling(request: impl Fn() -> reqwest::RequestBuilder) -> u16 {
    let mut status = 0;
    for _ in 0..4 {
        let Ok(response) = request().send().await else {
            return 0;
        };
        status = response.status().as_u16();
        if status != 429 {
            return status;
        }
        let wait = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(1)
            .clamp(1, 5);
        tokio::time::sleep(Duration::from_secs(wait)).await;
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_that_is_not_a_view_is_named_with_what_was_received() {
        let body = br#"{"telephoneNumber":"+14255550100","tenantId":"c0ffee00-0000-4000-8000-000000000001","state":"assigned","sequence":2}"#;
        let err = serde_json::from_slice::<CarrierNumberView>(body).unwrap_err();
        let why = not_a_view(&err, body);
        assert!(why.contains("missing field `appliedEvents`"), "{why}");
        assert!(
            why.ends_with(&format!("it was: {}", String::from_utf8_lossy(body))),
            "{why}"
        );
        let long = vec![b'x'; 1000];
        let err = serde_json::from_slice::<CarrierNumberView>(&long).unwrap_err();
        assert!(not_a_view(&err, &long).ends_with("x…"));
    }

    /// Where the tests' calls are recorded: one carrier, at a fixed simulated time.
    fn at_start(calls: &mock_teams::HarnessCalls) -> Recording<'_> {
        Recording {
            calls,
            carrier: "carrier",
            sim_time: 1_790_000_000_000,
        }
    }

    /// Reads one HTTP/1.1 request (headers, then a `content-length` body) from `socket`;
    /// returns its body.
    async fn read_request(socket: &mut tokio::net::TcpStream) -> Vec<u8> {
        use tokio::io::AsyncReadExt as _;
        let mut bytes = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            let n = socket.read(&mut buffer).await.expect("read the request");
            assert!(n > 0, "the connection closed mid-request");
            bytes.extend_from_slice(&buffer[..n]);
            let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().expect("a content length"));
            if bytes.len() >= end + 4 + length {
                return bytes[end + 4..end + 4 + length].to_vec();
            }
        }
    }

    /// A carrier whose first connection closes once the request is in, unanswered (a
    /// kept-alive connection closed as the request went out), then answers `202`: the post is
    /// sent again and gets there, each attempt recorded.
    #[actix_rt::test]
    async fn a_post_lost_to_a_closed_connection_is_sent_again_until_answered() {
        use tokio::io::AsyncWriteExt as _;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!(
            "http://{}/oc/v1/test/call-legs",
            listener.local_addr().expect("addr")
        );
        let carrier = tokio::spawn(async move {
            let mut received = Vec::new();
            let (mut first, _) = listener.accept().await.expect("accept");
            received.push(read_request(&mut first).await);
            drop(first);
            let (mut second, _) = listener.accept().await.expect("accept");
            received.push(read_request(&mut second).await);
            let answer = b"HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\n\
                           content-length: 14\r\n\r\n{\"accepted\":1}";
            second.write_all(answer).await.expect("answer");
            received
        });
        let exchanges = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut options = mock_teams::TeamsOptions::loopback(1_790_000_000_000);
        let sink = exchanges.clone();
        options.sink = std::sync::Arc::new(move |e| sink.lock().expect("sink").push(e));
        let teams = mock_teams::MockTeams::start(options).await.expect("Teams");
        let calls = teams.harness_calls();
        let body = br#"{"legs":[]}"#.to_vec();
        let answer = tokio::time::timeout(
            Duration::from_secs(20),
            send_until_answered(
                &client(),
                at_start(&calls),
                Request {
                    method: reqwest::Method::POST,
                    url: &url,
                    headers: &[("content-type", "application/json".to_owned())],
                    body: body.clone(),
                    limit: 1024,
                    detail: ExchangeDetail::CallLegs {
                        call_ids: vec!["call-1".to_owned()],
                    },
                },
            ),
        )
        .await
        .expect("answered within 20 s");
        assert_eq!(answer.status, Some(202));
        assert_eq!(answer.body.as_deref(), Ok(&br#"{"accepted":1}"#[..]));
        let received = tokio::time::timeout(Duration::from_secs(5), carrier)
            .await
            .expect("the carrier finished")
            .expect("the carrier's task");
        assert_eq!(received, vec![body.clone(), body]);
        let statuses: Vec<(Option<u16>, bool)> = exchanges
            .lock()
            .expect("exchanges")
            .iter()
            .map(|e| (e.status, e.error.is_some()))
            .collect();
        assert_eq!(statuses, vec![(None, true), (Some(202), false)]);
    }

    /// A post the carrier keeps without answering is not sent again: it timed out, and the
    /// carrier has it.
    #[actix_rt::test]
    async fn a_post_that_timed_out_is_not_sent_again() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let carrier = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            read_request(&mut socket).await;
            // Held, unanswered, until the client gives up; a second connection would be a
            // second attempt.
            tokio::time::timeout(Duration::from_secs(2), listener.accept())
                .await
                .is_ok()
        });
        let options = mock_teams::TeamsOptions::loopback(1_790_000_000_000);
        let teams = mock_teams::MockTeams::start(options).await.expect("Teams");
        let calls = teams.harness_calls();
        let quick = reqwest::Client::builder()
            .timeout(Duration::from_millis(300))
            .build()
            .expect("a client");
        let answer = send_until_answered(
            &quick,
            at_start(&calls),
            Request {
                method: reqwest::Method::POST,
                url: &url,
                headers: &[],
                body: b"{}".to_vec(),
                limit: 1024,
                detail: ExchangeDetail::CallLegs {
                    call_ids: Vec::new(),
                },
            },
        )
        .await;
        assert_eq!(answer.status, None);
        assert!(!answer.unanswered, "a timeout is not sent again");
        let again = tokio::time::timeout(Duration::from_secs(5), carrier)
            .await
            .expect("the carrier finished")
            .expect("the carrier's task");
        assert!(!again, "the post was sent a second time");
    }
}
