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

use crate::checker::history::{IsolationProbe, Probe, SignatureProbe};

const TIMEOUT: Duration = Duration::from_secs(10);

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .unwrap_or_default()
}

fn wall_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

/// The carrier's state probe of every number, signed like a webhook over an empty body.
pub(super) async fn numbers(carrier_url: &str, secret: &str, numbers: &[String]) -> Vec<Probe> {
    let client = client();
    let mut probes = Vec::with_capacity(numbers.len());
    for number in numbers {
        let url = format!("{carrier_url}{}{number}", paths::CARRIER_NUMBER_PREFIX);
        let signature = sign(secret.as_bytes(), wall_secs(), b"");
        let answer = client
            .get(&url)
            .header(SIGNATURE_HEADER, signature)
            .send()
            .await;
        let probe = match answer {
            Err(err) => Probe {
                telephone_number: number.clone(),
                status: None,
                view: None,
                error: Some(err.to_string()),
            },
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.bytes().await.unwrap_or_default();
                let (view, error) = if status == 200 {
                    match serde_json::from_slice::<CarrierNumberView>(&body) {
                        Ok(view) => (Some(view), None),
                        Err(err) => (None, Some(format!("not a CarrierNumberView: {err}"))),
                    }
                } else {
                    (None, None)
                };
                Probe {
                    telephone_number: number.clone(),
                    status: Some(status),
                    view,
                    error,
                }
            }
        };
        probes.push(probe);
    }
    probes
}

/// Numbers no Teams inventory holds (the 555-01xx range reserved for fiction), one per probe.
const FORGED_NUMBERS: [&str; 3] = ["+12025550181", "+12025550182", "+12025550183"];

/// Sends a notification with no signature, one signed with the wrong secret, and one signed
/// 10 minutes ago, each assigning a number Teams never gave the carrier; then probes each
/// number. A carrier that checks signatures answers 401 and has never heard of them (404).
pub(super) async fn signatures(
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
        let mut request = client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone());
        match kind {
            "wrong" => {
                request = request.header(
                    SIGNATURE_HEADER,
                    sign(b"not-the-secret", wall_secs(), &body),
                )
            }
            "stale" => {
                request = request.header(
                    SIGNATURE_HEADER,
                    sign(secret.as_bytes(), wall_secs() - 600, &body),
                )
            }
            _ => {}
        }
        let status = request.send().await.ok().map(|r| r.status().as_u16());
        let probe_url = format!("{carrier_url}{}{number}", paths::CARRIER_NUMBER_PREFIX);
        let probe_status = client
            .get(&probe_url)
            .header(SIGNATURE_HEADER, sign(secret.as_bytes(), wall_secs(), b""))
            .send()
            .await
            .ok()
            .map(|r| r.status().as_u16());
        probes.push(SignatureProbe {
            kind: kind.to_owned(),
            telephone_number: number.to_owned(),
            status,
            probe_status,
        });
    }
    probes
}

/// Another carrier's token on the carrier's last feed link must get 404, and no token 401.
pub(super) async fn isolation(
    teams_url: &str,
    carrier_link: Option<&str>,
    other_token: &str,
) -> Vec<IsolationProbe> {
    let client = client();
    let mut probes = Vec::new();
    if let Some(link) = carrier_link {
        let status = client
            .get(link)
            .bearer_auth(other_token)
            .send()
            .await
            .map_or(0, |r| r.status().as_u16());
        probes.push(IsolationProbe {
            what: "another carrier's token on the carrier's last feed link".into(),
            status,
            expected: 404,
        });
    }
    let status = client
        .get(format!("{teams_url}{}", paths::NUMBERS))
        .send()
        .await
        .map_or(0, |r| r.status().as_u16());
    probes.push(IsolationProbe {
        what: "GET /oc/v1/numbers without a token".into(),
        status,
        expected: 401,
    });
    probes
}
