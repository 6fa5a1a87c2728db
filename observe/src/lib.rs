//! What a run observes, in one home below the mocks: every exchange on the wire between Teams
//! and the carrier (with what it was about and any fault the harness injected on purpose), what
//! Teams received for each reported call, and the mock carrier's ground truth (its profile, the
//! drift models it applied, and per call what Teams must conclude). The mocks produce these; the checker and the
//! reports read them without linking either mock. `oc-protocol` stays the wire itself.

pub mod drift;
mod json_line;
pub mod profile;
pub mod truth;

pub use drift::{DriftModel, RoundingMode};
pub use profile::Profile;
pub use truth::{CallTruth, GroundTruth, ReportedDuration};

use oc_protocol::UnixMillis;
use serde::{Deserialize, Serialize};

/// Who sent the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ExchangeDirection {
    /// The carrier called the Teams API.
    CarrierToTeams,
    /// Teams delivered a webhook to the carrier.
    TeamsToCarrier,
}

/// A fault the harness caused on purpose, so that the checker does not blame the carrier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum InjectedFault {
    /// The answer was held back this long.
    Latency {
        /// Added delay, ms.
        ms: u64,
    },
    /// Answered 429 with this `Retry-After`.
    Throttled {
        /// The delay asked for, s.
        retry_after_secs: u64,
    },
    /// Answered 429 with this `Retry-After` because the caller's rate limit was used up
    /// (`TeamsOptions::rate_limit`): the carrier sent too fast. Nothing was done with the
    /// request; its body was not read.
    RateLimited {
        /// The delay asked for, s.
        retry_after_secs: u64,
    },
    /// Answered a 5xx without doing anything.
    ServerError {
        /// The status sent.
        status: u16,
    },
    /// The request was applied, and then answered with this 5xx as if its answer had been
    /// lost: unlike [`InjectedFault::ServerError`], the request took effect.
    AnswerLost {
        /// The status sent.
        status: u16,
    },
    /// The notification was delivered one more time than needed.
    WebhookDuplicated,
    /// The notification was held back so that later ones overtake it.
    WebhookReordered {
        /// How long it was held, ms.
        delay_ms: u64,
    },
}

/// What an exchange was about, beyond its HTTP shape, for the checker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum ExchangeDetail {
    /// A page of a change feed (`cdr` or `quality`).
    FeedPage {
        /// `cdr` or `quality`.
        feed: String,
        /// The request carried no link: the start of a chain.
        chain_start: bool,
        /// Feed position of the first record served.
        from_position: u64,
        /// Feed position after the last record served.
        to_position: u64,
        /// The link issued: a `nextLink` when true, else a `deltaLink`.
        next: bool,
        /// The link issued.
        link: String,
        /// Where in the page's `value` the records are whose `poor` flag Teams flipped on
        /// purpose (`quality_misclassify_share`) [QUA-CLASS].
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        misclassified: Vec<u32>,
    },
    /// A page of another collection, and the link issued, if any.
    CollectionPage {
        /// The link issued, or none on the last page.
        next_link: Option<String>,
    },
    /// A request sent before the `Retry-After` of an earlier 429 had passed [CDR-THROTTLE].
    EarlyAfterThrottle {
        /// How much earlier than allowed, ms.
        early_by_ms: u64,
    },
    /// A duration report: how many records were accepted and rejected, and whether it replayed
    /// an earlier key.
    DurationReport {
        /// The `Idempotency-Key`.
        key: String,
        /// Records accepted.
        accepted: u32,
        /// Records rejected.
        rejected: u32,
        /// The same key and body as before: answered from memory.
        replayed: bool,
    },
    /// The harness posted certification legs to the carrier's call-legs hook (PROTOCOL.md 2.3).
    CallLegs {
        /// The calls whose legs it carried.
        call_ids: Vec<String>,
    },
    /// The harness probed the carrier's view of a number (PROTOCOL.md 2.2).
    StateProbe {
        /// The number probed.
        telephone_number: String,
    },
    /// The harness sent a forged or replayed notification [SEC-SIGNATURE].
    ForgedNotification {
        /// `missing`, `wrong` or `stale`: what is wrong with its signature.
        signature: String,
        /// The number it would assign.
        telephone_number: String,
    },
    /// One delivery attempt of a notification.
    Webhook {
        /// The notification.
        notification_id: String,
        /// 0 for the first delivery, then 1 to 5 for the retries.
        attempt: u32,
        /// The events it carried.
        event_ids: Vec<String>,
        /// Teams sends this notification no more after this attempt: it was acknowledged (and
        /// no duplicate follows), it was the last retry, or it was the duplicate. Lets the
        /// checker fold an event's deliveries once they are complete, instead of keeping every
        /// event to the end of the run. Absent (false) in logs written before it existed:
        /// their events are then judged at the end, as they were.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        last: bool,
    },
}

/// One request and its answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Exchange {
    /// Order in which the Teams side observed exchanges (starts at 1).
    pub seq: u64,
    /// Who sent the request.
    pub direction: ExchangeDirection,
    /// The carrier concerned, when known.
    pub carrier: Option<String>,
    /// HTTP method.
    pub method: String,
    /// Path and query (carrier → Teams) or the full URL (webhooks).
    pub url: String,
    /// The status, or none when there was no answer (timeout, reset).
    pub status: Option<u16>,
    /// Why there was no answer.
    pub error: Option<String>,
    /// Simulated time when the request arrived or was sent.
    pub sim_time: UnixMillis,
    /// Wall-clock time when it started, ms since the Unix epoch.
    pub wall_time_ms: i64,
    /// How long the answer took, µs.
    pub latency_us: u64,
    /// Request headers of interest, with tokens and signatures masked.
    pub request_headers: Vec<(String, String)>,
    /// The request body, cut at the capture limit.
    pub request_body: Option<String>,
    /// The response body, cut at the capture limit.
    pub response_body: Option<String>,
    /// A fault the harness caused.
    pub fault: Option<InjectedFault>,
    /// What it was about.
    pub detail: Option<ExchangeDetail>,
}

/// A body as captured in an exchange: whole when it fits in `limit` bytes, else cut on a
/// character boundary and marked with its full length (see [`was_cut`]). Bytes that are not
/// UTF-8 are replaced, as a capture is for reading.
pub fn cut_capture(body: &[u8], limit: usize) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    // Only the head can be kept: converting a long body whole (a feed page is hundreds of KB)
    // would cost more than the rest of recording it. Lossy conversion never shortens, and a
    // character is at most 4 bytes, so the first `limit + 4` bytes give the same cut.
    let head = &body[..body.len().min(limit.saturating_add(4))];
    // A body is UTF-8 but for a hostile peer's: checked first by the faster test.
    let text = match std::str::from_utf8(head) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(head),
    };
    if text.len() <= limit {
        return Some(text.into_owned());
    }
    let mut cut = limit;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    Some(format!(
        "{}{CUT_MARK}{} bytes in all]",
        &text[..cut],
        body.len()
    ))
}

/// What a captured body that was cut ends with, before `<n> bytes in all]`: see [`cut_capture`].
pub const CUT_MARK: &str = "…[";

/// Whether a captured body was cut at the capture limit: what is left is not the whole body,
/// and reading it as JSON would be a guess.
pub fn was_cut(captured: &str) -> bool {
    captured
        .strip_suffix(" bytes in all]")
        .and_then(|rest| rest.rsplit_once(CUT_MARK))
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// What Teams received for one reported call: the facts the checker decides the duration
/// rules from, with the calls Teams had (DUR-COMPLETE, DUR-UNEXPECTED, DUR-DEADLINE,
/// DUR-DUPLICATE); Teams' own reconciliation (PROTOCOL.md 3.5) is a separate reading of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportedCall {
    /// The reported call id.
    pub call_id: String,
    /// The number: Teams' for a call it has, the reported one otherwise.
    pub telephone_number: String,
    /// When the first report of it arrived, simulated.
    pub first_reported: UnixMillis,
    /// The latest reported duration, ms.
    pub duration_ms: i64,
    /// Reported again with the very same record at least once.
    pub repeated: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_cut_on_a_character_boundary() {
        assert_eq!(cut_capture(b"", 5), None);
        assert_eq!(cut_capture(b"abc", 5).as_deref(), Some("abc"));
        let cut = cut_capture("abcdé€".as_bytes(), 5).unwrap();
        assert_eq!(cut, "abcd…[9 bytes in all]");
        assert!(was_cut(&cut));
        assert!(!was_cut("abc"));
        assert!(!was_cut(r#"{"note":"…[x bytes in all]"}"#));
    }

    /// Only the head of a long body is converted: the cut must be the one converting the whole
    /// body gives, whatever invalid or multi-byte sequences sit around the limit.
    #[test]
    fn a_long_body_is_cut_as_if_it_were_converted_whole() {
        fn whole(body: &[u8], limit: usize) -> String {
            let text = String::from_utf8_lossy(body);
            if text.len() <= limit {
                return text.into_owned();
            }
            let mut cut = limit;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            format!("{}{CUT_MARK}{} bytes in all]", &text[..cut], body.len())
        }
        let pieces: [&[u8]; 6] = [
            b"a",
            "\u{e9}".as_bytes(),
            "\u{1f600}".as_bytes(),
            b"\xff",
            b"\xf0\x9f",
            b"\xe2\x82",
        ];
        // Every sequence of 12 pieces drawn by a fixed linear congruential walk, at every limit.
        let mut state = 7u64;
        for _ in 0..300 {
            let mut body = Vec::new();
            for _ in 0..12 {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                body.extend_from_slice(pieces[(state >> 33) as usize % pieces.len()]);
            }
            for limit in 1..body.len() + 2 {
                assert_eq!(
                    cut_capture(&body, limit).unwrap(),
                    whole(&body, limit),
                    "{body:?} at {limit}"
                );
            }
        }
    }

    #[test]
    fn an_exchange_reads_back_as_written() {
        let exchange = Exchange {
            seq: 3,
            direction: ExchangeDirection::TeamsToCarrier,
            carrier: Some("c".into()),
            method: "POST".into(),
            url: "https://carrier.example/oc/v1/notifications/number-assignments".into(),
            status: Some(200),
            error: None,
            sim_time: 1_700_000_000_000,
            wall_time_ms: 1_700_000_000_000,
            latency_us: 1200,
            request_headers: vec![("oc-signature".into(), "t=1,v1=ab…".into())],
            request_body: Some("{}".into()),
            response_body: None,
            fault: Some(InjectedFault::WebhookReordered { delay_ms: 40 }),
            detail: Some(ExchangeDetail::Webhook {
                notification_id: "n".into(),
                attempt: 1,
                event_ids: vec!["e".into()],
                last: true,
            }),
        };
        let text = serde_json::to_string(&exchange).unwrap();
        assert!(text.contains(r#""direction":"teamsToCarrier""#), "{text}");
        assert_eq!(serde_json::from_str::<Exchange>(&text).unwrap(), exchange);
        // A log written before `last` existed reads as attempts that may not be the last.
        let old = text.replace(r#","last":true"#, "");
        assert_ne!(old, text);
        let read = serde_json::from_str::<Exchange>(&old).unwrap();
        assert!(matches!(
            read.detail,
            Some(ExchangeDetail::Webhook { last: false, .. })
        ));
    }
}
