//! Exchanges: every request the Teams side answered and every webhook attempt it made, with
//! timing, status, masked headers, cut bodies and any fault the harness injected, handed to a
//! sink (the harness's checker, or the log).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

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

/// Receives every exchange. Closures are sinks: `Arc::new(|e: Exchange| ...)`.
pub type ExchangeSink = Arc<dyn Fn(Exchange) + Send + Sync>;

/// A sink that logs each exchange at debug level.
pub fn log_sink() -> ExchangeSink {
    Arc::new(|e: Exchange| {
        tracing::debug!(
            seq = e.seq,
            direction = ?e.direction,
            carrier = e.carrier.as_deref().unwrap_or("-"),
            method = %e.method,
            url = %e.url,
            status = e.status,
            latency_us = e.latency_us,
            fault = ?e.fault,
            "exchange"
        );
    })
}

/// A request the harness made to the carrier on Teams' behalf (a call-legs post, a state or
/// signature probe), to be recorded beside Teams' own exchanges.
#[derive(Debug)]
pub struct HarnessCall<'a> {
    /// The carrier.
    pub carrier: &'a str,
    /// HTTP method.
    pub method: &'a str,
    /// The full URL.
    pub url: &'a str,
    /// The headers sent (credentials are masked when recorded).
    pub headers: &'a [(&'a str, &'a str)],
    /// The body sent.
    pub body: &'a [u8],
    /// Simulated time when it was sent.
    pub sim_time: UnixMillis,
    /// Wall-clock time when it was sent, ms since the Unix epoch.
    pub wall_time_ms: i64,
    /// How long the answer took.
    pub latency: std::time::Duration,
    /// The status and body, or why there was none.
    pub answer: Result<(u16, &'a [u8]), String>,
    /// What it was about.
    pub detail: ExchangeDetail,
}

/// Records the harness's own calls to the carrier as exchanges, numbered in the same sequence
/// as Teams' exchanges, so that rules can cite them as evidence. Cheap to clone.
#[derive(Clone)]
pub struct HarnessCalls(pub(crate) Recorder);

impl HarnessCalls {
    /// Records one call; returns its `seq`.
    pub fn record(&self, call: HarnessCall<'_>) -> u64 {
        let (status, error, response_body) = match call.answer {
            Ok((status, body)) => (Some(status), None, self.0.capture(body)),
            Err(error) => (None, Some(error), None),
        };
        let seq = self.0.next.fetch_add(1, Ordering::SeqCst);
        (self.0.sink)(Exchange {
            seq,
            direction: ExchangeDirection::TeamsToCarrier,
            carrier: Some(call.carrier.to_owned()),
            method: call.method.to_owned(),
            url: call.url.to_owned(),
            status,
            error,
            sim_time: call.sim_time,
            wall_time_ms: call.wall_time_ms,
            latency_us: u64::try_from(call.latency.as_micros()).unwrap_or(u64::MAX),
            request_headers: masked_headers(call.headers.iter().copied()),
            request_body: self.0.capture(call.body),
            response_body,
            fault: None,
            detail: Some(call.detail),
        });
        seq
    }
}

/// Numbers exchanges and hands them to the sink.
#[derive(Clone)]
pub(crate) struct Recorder {
    sink: ExchangeSink,
    next: Arc<AtomicU64>,
    pub(crate) body_limit: usize,
}

impl Recorder {
    pub(crate) fn new(sink: ExchangeSink, body_limit: usize) -> Self {
        Self {
            sink,
            next: Arc::new(AtomicU64::new(1)),
            body_limit,
        }
    }

    /// The `seq` the next exchange will get.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next.load(Ordering::SeqCst)
    }

    pub(crate) fn record(&self, mut exchange: Exchange) {
        exchange.seq = self.next.fetch_add(1, Ordering::SeqCst);
        (self.sink)(exchange);
    }

    /// A body as text, cut at the capture limit on a character boundary (see [`was_cut`]).
    pub(crate) fn capture(&self, body: &[u8]) -> Option<String> {
        if body.is_empty() {
            return None;
        }
        let text = String::from_utf8_lossy(body);
        if text.len() <= self.body_limit {
            return Some(text.into_owned());
        }
        let mut cut = self.body_limit;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        Some(format!(
            "{}{CUT_MARK}{} bytes in all]",
            &text[..cut],
            body.len()
        ))
    }
}

/// What a captured body that was cut ends with, before `<n> bytes in all]`.
const CUT_MARK: &str = "…[";

/// Whether a captured body was cut at the capture limit: what is left is not the whole body,
/// and reading it as JSON would be a guess.
pub fn was_cut(captured: &str) -> bool {
    captured
        .strip_suffix(" bytes in all]")
        .and_then(|rest| rest.rsplit_once(CUT_MARK))
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Headers kept in an exchange, with credentials masked.
pub(crate) fn masked_headers<'a>(
    headers: impl Iterator<Item = (&'a str, &'a str)>,
) -> Vec<(String, String)> {
    const KEPT: [&str; 6] = [
        "authorization",
        "content-type",
        "content-length",
        "idempotency-key",
        "oc-signature",
        "retry-after",
    ];
    let mut out: Vec<(String, String)> = headers
        .filter(|(name, _)| KEPT.contains(&name.to_ascii_lowercase().as_str()))
        .map(|(name, value)| {
            let lower = name.to_ascii_lowercase();
            let value = match lower.as_str() {
                "authorization" => mask_bearer(value),
                "oc-signature" => mask_signature(value),
                _ => value.to_owned(),
            };
            (lower, value)
        })
        .collect();
    out.sort();
    out
}

fn mask_bearer(value: &str) -> String {
    match value.split_once(' ') {
        Some((scheme, token)) => format!("{scheme} {}", mask(token)),
        None => mask(value),
    }
}

fn mask_signature(value: &str) -> String {
    value
        .split(',')
        .map(|part| match part.split_once('=') {
            Some(("v1", sig)) => format!("v1={}", mask(sig)),
            _ => part.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Keeps the first four characters, so that a person can tell two credentials apart.
fn mask(secret: &str) -> String {
    let shown: String = secret.chars().take(4).collect();
    format!("{shown}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_masked() {
        let headers = masked_headers(
            [
                ("Authorization", "Bearer secret-token-123"),
                ("OC-Signature", "t=1795684502,v1=abcdef0123"),
                ("X-Other", "dropped"),
                ("Idempotency-Key", "k1"),
            ]
            .into_iter(),
        );
        assert_eq!(
            headers,
            [
                ("authorization".into(), "Bearer secr…".into()),
                ("idempotency-key".into(), "k1".into()),
                ("oc-signature".into(), "t=1795684502,v1=abcd…".into()),
            ]
        );
    }

    #[test]
    fn bodies_are_cut_on_a_character_boundary() {
        let recorder = Recorder::new(log_sink(), 5);
        assert_eq!(recorder.capture(b""), None);
        assert_eq!(recorder.capture(b"abc").as_deref(), Some("abc"));
        let cut = recorder.capture("abcdé€".as_bytes()).unwrap();
        assert_eq!(cut, "abcd…[9 bytes in all]");
        assert!(was_cut(&cut));
        assert!(!was_cut("abc"));
        assert!(!was_cut(r#"{"note":"…[x bytes in all]"}"#));
    }
}
