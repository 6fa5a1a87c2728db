//! `POST /oc/v1/notifications/number-assignments`: the signed webhook (PROTOCOL.md 2.1).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::web::{Data, Payload};
use actix_web::{HttpRequest, HttpResponse};
use oc_protocol::log_throttle::LogThrottle;
use oc_protocol::signing::{self, SIGNATURE_HEADER, SignatureError, Signer};
use oc_protocol::{NumberAssignmentNotification, Problem, ProblemKind, Validate, body};
use serde::Serialize;

use super::limits::{self, Guard, warn};
use super::problem::respond;
use crate::numbers::EventOutcome;
use crate::profile::Profile;
use crate::shared::Shared;

/// What became of the events of one notification (the 200 answer's body).
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Applied {
    applied: u32,
    redelivered: u32,
    stale: u32,
}

static REFUSED: LogThrottle = LogThrottle::per_ten_seconds();

pub(crate) async fn number_assignments(
    req: HttpRequest,
    payload: Payload,
    shared: Data<Shared>,
    guard: Data<Guard>,
) -> HttpResponse {
    // A header that is not visible ASCII cannot be a signature; verify() calls it malformed.
    let header = req
        .headers()
        .get(SIGNATURE_HEADER)
        .map(|v| v.to_str().unwrap_or(""));
    let profile = shared.config.misbehaviour.profile;
    let signer = &shared.signer;
    // Everything but the HMAC can be checked without the body: a missing, malformed or stale
    // signature is refused before a byte of the body is read, so unsigned floods hold nothing.
    // No HMAC is computed for that (one per notification is enough).
    if let Err(err) = check_signature(profile, header, signer, None) {
        return refuse(&err);
    }
    let body = match limits::read_json_body(&guard, &req, payload).await {
        Ok(body) => body,
        Err(refused) => return limits::respond(&refused),
    };
    if let Err(err) = check_signature(profile, header, signer, Some(&body.bytes)) {
        return refuse(&err);
    }
    let notification: NumberAssignmentNotification = match body::from_slice(&body.bytes) {
        Ok(n) => n,
        Err(err) => return respond(&Problem::malformed(err)),
    };
    if let Err(errors) = notification.validate() {
        // Nothing of an invalid notification is applied: a partial apply could not be told
        // apart from a complete one when Teams redelivers it.
        return respond(&Problem::validation(errors.0));
    }
    let mut outcome = Applied::default();
    {
        let mut numbers = shared.lock_numbers();
        for event in &notification.events {
            match numbers.apply(event, profile) {
                EventOutcome::Applied => outcome.applied += 1,
                EventOutcome::Redelivered => outcome.redelivered += 1,
                EventOutcome::Stale => outcome.stale += 1,
            }
        }
    }
    tracing::debug!(
        notification = %notification.notification_id,
        applied = outcome.applied,
        redelivered = outcome.redelivered,
        stale = outcome.stale,
        "notification"
    );
    if let Some(stall) = shared.config.misbehaviour.webhook_stall {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let wait = stall.wait_ms(now_ms);
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
    }
    if profile == Profile::NumAck {
        // Breaks NUM-ACK on purpose: the events are applied, the answer comes too late.
        tokio::time::sleep(Duration::from_millis(
            shared.config.misbehaviour.ack_delay_ms,
        ))
        .await;
    }
    HttpResponse::Ok().json(outcome)
}

/// `401` for a signature refused [SEC-SIGNATURE], logged at most a few times an interval: a
/// flood of unsigned requests must not become a flood of log lines.
fn refuse(err: &SignatureError) -> HttpResponse {
    warn(&REFUSED, |suppressed| {
        tracing::warn!(error = %err, suppressed, "refused a notification [SEC-SIGNATURE]");
    });
    respond(&Problem::new(ProblemKind::Unauthorized, err.to_string()))
}

/// Checks the signature as `profile` does: against `body`, or without it (everything but the
/// HMAC: [`signing::check_header`]). `SEC-SIGNATURE` lets a missing signature through and
/// checks a present one against its own `t`, so stale and future timestamps pass; a present
/// signature that does not match the body is still refused.
fn check_signature(
    profile: Profile,
    header: Option<&str>,
    signer: &Signer,
    body: Option<&[u8]>,
) -> Result<(), SignatureError> {
    let check = |header: Option<&str>, now: i64| match body {
        Some(body) => signer.verify(header, body, now),
        None => signing::check_header(header, now),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    if profile != Profile::SecSignature {
        return check(header, now);
    }
    let Some(header) = header else {
        return Ok(());
    };
    let t = header
        .split(',')
        .find_map(|part| part.trim().strip_prefix("t="))
        .and_then(|t| t.parse::<i64>().ok())
        .unwrap_or(now);
    check(Some(header), t)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_test";

    fn now() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap()
    }

    #[test]
    fn correct_refuses_missing_stale_and_wrong_signatures() {
        let body = b"{}";
        let stale = signing::sign(SECRET, now() - 301, body);
        let wrong = signing::sign(b"other", now(), body);
        let good = signing::sign(SECRET, now(), body);
        let check = |h: Option<&str>| {
            check_signature(Profile::Correct, h, &Signer::new(SECRET), Some(body))
        };
        assert_eq!(check(None), Err(SignatureError::Missing));
        assert!(matches!(
            check(Some(&stale)),
            Err(SignatureError::OutsideTolerance { .. })
        ));
        assert_eq!(check(Some(&wrong)), Err(SignatureError::Mismatch));
        assert_eq!(check(Some(&good)), Ok(()));
        // Without the body: the same refusals, but no HMAC, so a wrong one passes until the
        // body is read.
        let head =
            |h: Option<&str>| check_signature(Profile::Correct, h, &Signer::new(SECRET), None);
        assert_eq!(head(None), Err(SignatureError::Missing));
        assert!(matches!(
            head(Some(&stale)),
            Err(SignatureError::OutsideTolerance { .. })
        ));
        assert_eq!(head(Some(&wrong)), Ok(()));
        assert_eq!(
            head(Some("t=1")),
            Err(SignatureError::Malformed("no v1= signature"))
        );
    }

    #[test]
    fn sec_signature_accepts_missing_and_stale_but_not_wrong() {
        let body = b"{}";
        let stale = signing::sign(SECRET, now() - 3600, body);
        let wrong = signing::sign(b"other", now(), body);
        let check = |h: Option<&str>| {
            check_signature(Profile::SecSignature, h, &Signer::new(SECRET), Some(body))
        };
        assert_eq!(check(None), Ok(()));
        assert_eq!(check(Some(&stale)), Ok(()));
        assert_eq!(check(Some(&wrong)), Err(SignatureError::Mismatch));
    }
}
