//! Probes of the carrier and of Teams at the end of a run: the carrier's view of every number
//! [NUM-STATE], its signature checking with forged and replayed notifications [SEC-SIGNATURE],
//! and Teams' isolation between carriers [SEC-ISOLATION].

use std::time::Duration;

use oc_protocol::ids::uuid_from_bits;
use oc_protocol::signing::{SIGNATURE_HEADER, sign};
use oc_protocol::{
    Assignee, AssigneeType, CarrierNumberView, NumberAssignmentNotification, NumberEvent,
    NumberEventType, NumberUsage, UnixMillis, format_timestamp, paths,
};

use oc_observe::ExchangeDetail;

use super::recorded::{Recording, Request, send, wall_secs};
use crate::checker::history::{IsolationProbe, Probe, SignatureProbe};

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
            timeout: TIMEOUT,
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
                timeout: TIMEOUT,
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
                timeout: TIMEOUT,
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
}
