//! Exchanges: every request the Teams side answered and every webhook attempt it made, with
//! timing, status, masked headers, cut bodies and any fault the harness injected, handed to a
//! sink (the harness's checker, or the log).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use oc_protocol::UnixMillis;

pub use oc_observe::{Exchange, ExchangeDetail, ExchangeDirection, InjectedFault, was_cut};

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
        oc_observe::cut_capture(body, self.body_limit)
    }
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
    let mut out: Vec<(String, String)> = Vec::new();
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        if !KEPT.contains(&lower.as_str()) {
            continue;
        }
        let value = match lower.as_str() {
            "authorization" => mask_bearer(value),
            "oc-signature" => mask_signature(value),
            _ => value.to_owned(),
        };
        out.push((lower, value));
    }
    out.sort();
    out
}

/// The headers of a webhook attempt as [`masked_headers`] keeps them, made directly: every
/// attempt records them, and there is nothing to lower-case, filter or sort in two known names.
pub(crate) fn webhook_headers(signature: &str) -> Vec<(String, String)> {
    vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        ("oc-signature".to_owned(), mask_own_signature(signature)),
    ]
}

/// [`mask_signature`] of a signature of the sender's own making, `t=<digits>,v1=<64 hex
/// digits>`: its masked form is all but the last 60 digits, with nothing to search for. Any
/// other value is masked the general way.
fn mask_own_signature(value: &str) -> String {
    let bytes = value.as_bytes();
    let Some(t) = bytes.len().checked_sub(68) else {
        return mask_signature(value);
    };
    let own = t >= 2
        && bytes.starts_with(b"t=")
        && bytes[2..t].iter().all(u8::is_ascii_digit)
        && bytes[t..t + 4] == *b",v1="
        && bytes[t + 4..].iter().all(u8::is_ascii_hexdigit);
    if !own {
        return mask_signature(value);
    }
    let mut out = String::with_capacity(t + 4 + 4 + '…'.len_utf8());
    out.push_str(&value[..t + 8]);
    out.push('…');
    out
}

fn mask_bearer(value: &str) -> String {
    match value.split_once(' ') {
        Some((scheme, token)) => format!("{scheme} {}", mask(token)),
        None => mask(value),
    }
}

fn mask_signature(value: &str) -> String {
    // Written into one string, parts found by byte (`,` and `=` are ASCII, so every cut is a
    // character boundary): this runs on every webhook attempt, and `str::split`'s searchers
    // took about 600 instructions of its 900 (callgrind).
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    loop {
        let (part, next) = match rest.bytes().position(|b| b == b',') {
            Some(at) => (&rest[..at], Some(&rest[at + 1..])),
            None => (rest, None),
        };
        match part.bytes().position(|b| b == b'=') {
            Some(2) if part.starts_with("v1") => {
                out.push_str("v1=");
                push_mask(&mut out, &part[3..]);
            }
            _ => out.push_str(part),
        }
        match next {
            Some(next) => {
                out.push(',');
                rest = next;
            }
            None => return out,
        }
    }
}

/// Keeps the first four characters, so that a person can tell two credentials apart.
fn mask(secret: &str) -> String {
    let mut out = String::with_capacity(8);
    push_mask(&mut out, secret);
    out
}

/// [`mask`], appended to `out`.
fn push_mask(out: &mut String, secret: &str) {
    let end = secret
        .char_indices()
        .nth(4)
        .map_or(secret.len(), |(at, _)| at);
    out.push_str(&secret[..end]);
    out.push('…');
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
    fn a_webhooks_headers_are_those_masked_headers_keeps() {
        let signed = oc_protocol::signing::sign(b"secret", 1_795_684_502, b"{}");
        let hex = "0123456789abcdef".repeat(4);
        for signature in [
            "t=1795684502,v1=abcdef0123".to_owned(),
            signed.clone(),
            format!("t=1,v1={hex}"),
            format!("t=,v1={hex}"),
            format!("t=12,v1={}", hex.to_uppercase()),
            format!("t=1x,v1={hex}"),
            format!("t=1,v0={hex}"),
            format!("t=1,v1={}g", &hex[1..]),
            format!("x=1,v1={hex}"),
            format!("t=1,2,v1={hex}"),
            format!("v1={hex}"),
            format!("t=v1={hex}"),
        ] {
            let signature = signature.as_str();
            assert_eq!(
                webhook_headers(signature),
                masked_headers(
                    [
                        ("Content-Type", "application/json"),
                        ("OC-Signature", signature)
                    ]
                    .into_iter()
                ),
                "{signature}"
            );
        }
        // A real signature keeps its first four digits.
        assert_eq!(webhook_headers(&signed)[1].1, format!("{}…", &signed[..20]));
    }

    /// [`mask_signature`] as it was first written, with `str`'s splitters.
    fn mask_signature_by_split(value: &str) -> String {
        let parts: Vec<String> = value
            .split(',')
            .map(|part| match part.split_once('=') {
                Some(("v1", sig)) => format!("v1={}…", sig.chars().take(4).collect::<String>()),
                _ => part.to_owned(),
            })
            .collect();
        parts.join(",")
    }

    #[test]
    fn signatures_are_masked_as_splitting_them_would() {
        for value in [
            "",
            ",",
            "t=1795684502,v1=abcdef0123",
            "v1=abcdef0123,t=1",
            "t=1,v1=ab,v1=cdefgh,v0=zz",
            "v1=",
            "v1",
            "v10=abcdef",
            "xv1=abcdef",
            "v1=a=b=c=d=e",
            "v1=éèàçù€",
            "t=1,,v1=€€€€€,",
            "=v1=abcdef",
        ] {
            assert_eq!(
                mask_signature(value),
                mask_signature_by_split(value),
                "{value:?}"
            );
        }
    }

    #[test]
    fn the_recorder_captures_up_to_its_limit() {
        let recorder = Recorder::new(log_sink(), 5);
        assert_eq!(recorder.capture(b"abc").as_deref(), Some("abc"));
        assert_eq!(
            recorder.capture("abcdé€".as_bytes()).as_deref(),
            Some("abcd…[9 bytes in all]")
        );
    }
}
