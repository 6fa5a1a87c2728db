//! Building and sending number-assignment notifications, signed or not.

use std::time::{SystemTime, UNIX_EPOCH};

use oc_protocol::ids::uuid_from_bits;
use oc_protocol::signing::{SIGNATURE_HEADER, sign};
use oc_protocol::{
    Assignee, AssigneeType, NumberAssignmentNotification, NumberEvent, NumberEventType,
    NumberUsage, format_timestamp,
};

use crate::teams::{SECRET, T0};

pub(crate) fn event(
    id: u128,
    number: &str,
    sequence: u64,
    kind: NumberEventType,
    offset_s: i64,
) -> NumberEvent {
    let assigned = kind != NumberEventType::Unassigned;
    NumberEvent {
        event_id: uuid_from_bits(id),
        sequence,
        kind,
        tenant_id: uuid_from_bits(7),
        telephone_number: number.to_owned(),
        sip_uri: assigned.then(|| format!("sip:{number}@sbc{sequence}.carrier.example;user=phone")),
        usage: assigned.then_some(NumberUsage::CallingUserAssignment),
        assignee: assigned.then(|| Assignee {
            id: uuid_from_bits(9),
            kind: AssigneeType::User,
        }),
        effective_date_time: format_timestamp(T0 + offset_s * 1_000),
    }
}

pub(crate) fn notification(id: u128, events: Vec<NumberEvent>) -> Vec<u8> {
    serde_json::to_vec(&NumberAssignmentNotification {
        notification_id: uuid_from_bits(id),
        sent_date_time: format_timestamp(T0),
        events,
    })
    .unwrap()
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// How a notification is signed.
#[derive(Clone, Copy)]
pub(crate) enum Signed {
    Now,
    Stale,
    WrongSecret,
    Unsigned,
}

/// Posts `body` to the carrier's webhook; returns the status, the content type and the body.
pub(crate) async fn post(carrier: &str, body: &[u8], signed: Signed) -> (u16, String, String) {
    let mut request = reqwest::Client::new()
        .post(format!("{carrier}/oc/v1/notifications/number-assignments"))
        .header("Content-Type", "application/json")
        .body(body.to_vec());
    let header = match signed {
        Signed::Now => Some(sign(SECRET.as_bytes(), unix_now(), body)),
        Signed::Stale => Some(sign(SECRET.as_bytes(), unix_now() - 600, body)),
        Signed::WrongSecret => Some(sign(b"whsec_other", unix_now(), body)),
        Signed::Unsigned => None,
    };
    if let Some(header) = header {
        request = request.header(SIGNATURE_HEADER, header);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

/// The carrier's state probe of `number`: the status and the JSON body.
pub(crate) async fn probe(carrier: &str, number: &str) -> (u16, serde_json::Value) {
    let response = reqwest::get(format!("{carrier}/oc/v1/numbers/{number}"))
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}
