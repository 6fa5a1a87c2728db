//! What one client can make a sandbox server (mock-teams, mock-carrier) hold, bounded:
//! connections per client address, and the bytes of request bodies in flight over every request
//! together, each body within its deadline. Past a bound the answer is `503` with `Retry-After`
//! and the connection is closed, and nothing more is read. The counting itself is pure and lives
//! in [`oc_protocol::limits`]; this crate is the actix-web side of it, shared so that the two
//! servers, which never import each other, do not each carry a copy.

use std::any::Any;
use std::cell::RefCell;
use std::time::{Duration, Instant};

use actix_web::HttpRequest;
use actix_web::dev::Extensions;
use actix_web::http::header;
use actix_web::web;
use futures_util::StreamExt as _;
use oc_protocol::limits::{BodyGrant, ByteBudget, PeerConnections, PeerSlot, ServerLimits};
use oc_protocol::log_throttle::{LogDecision, LogThrottle};
use oc_protocol::{MAX_BODY_BYTES, Problem, ProblemKind};

/// How long a client refused by a bound is asked to wait, s.
pub const RETRY_AFTER_SECS: u64 = 1;

/// Why a request was refused before its handler ran.
#[derive(Debug)]
pub enum Refusal {
    /// A bound was reached: answer `503` with `Retry-After: RETRY_AFTER_SECS` and close the
    /// connection (the problem's kind is `Unavailable`).
    Unavailable(Problem),
    /// The body itself is wrong (too large, unreadable, too slow): answer the problem.
    Body(Problem),
}

impl Refusal {
    /// The problem to answer with.
    pub fn problem(&self) -> &Problem {
        match self {
            Self::Unavailable(p) | Self::Body(p) => p,
        }
    }
}

/// The bounds and their counters, shared by every worker of one server.
pub struct Guard {
    budget: ByteBudget,
    peers: PeerConnections,
    body_deadline: Duration,
    /// Who holds the bodies, for messages: `the server`, `the carrier`.
    holder: &'static str,
}

/// A request body, and the share of the budget it holds until dropped.
pub struct Body {
    /// The body's bytes.
    pub bytes: Vec<u8>,
    _grant: BodyGrant,
}

impl Guard {
    /// The bounds of `limits`; `holder` names the server in refusals (`the carrier`).
    pub fn new(limits: &ServerLimits, holder: &'static str) -> Self {
        Self {
            budget: ByteBudget::new(limits.body_budget_bytes),
            peers: PeerConnections::new(limits.connections_per_peer),
            body_deadline: Duration::from_millis(limits.body_deadline_ms),
            holder,
        }
    }

    /// The bytes of bodies in flight now.
    pub fn bytes_held(&self) -> usize {
        self.budget.held()
    }

    /// Counts the request's connection against its client address, once per connection:
    /// [`Refusal::Unavailable`] when the address holds its cap already.
    pub fn admit(&self, req: &HttpRequest) -> Result<(), Refusal> {
        let (Some(slot), Some(peer)) = (req.conn_data::<ConnectionSlot>(), req.peer_addr()) else {
            // Not a connection the server accepted (a test request): nothing to count.
            return Ok(());
        };
        let mut slot = slot.0.borrow_mut();
        match &*slot {
            SlotState::Admitted(_) => return Ok(()),
            SlotState::Refused => {}
            SlotState::New => match self.peers.try_open(peer.ip()) {
                Some(held) => {
                    *slot = SlotState::Admitted(held);
                    return Ok(());
                }
                None => *slot = SlotState::Refused,
            },
        }
        warn(&CAP_REACHED, |suppressed| {
            tracing::warn!(
                peer = %peer.ip(),
                cap = self.peers.limit(),
                suppressed,
                "refused a connection: its address holds the most connections allowed"
            );
        });
        Err(unavailable(format!(
            "this client address holds {} connections already, the most allowed; close one \
             and retry",
            self.peers.limit()
        )))
    }

    /// Reads the body: at most [`MAX_BODY_BYTES`] (else `413`), within the body deadline (else
    /// `400`), holding its bytes in the budget (else `503`) from before the first byte is read
    /// (a declared `Content-Length` is taken at once) until the returned [`Body`] is dropped. The
    /// size is checked against `Content-Length` first and again while reading, so a body that
    /// lies about its length is cut off at the limit rather than read whole.
    pub async fn read_body(
        &self,
        req: &HttpRequest,
        mut payload: web::Payload,
    ) -> Result<Body, Refusal> {
        let too_large = || {
            Refusal::Body(Problem::new(
                ProblemKind::PayloadTooLarge,
                format!("the body is over {MAX_BODY_BYTES} bytes; send smaller batches"),
            ))
        };
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
            return Err(too_large());
        }
        // Taken before a byte is read, so that stalled bodies cannot hold more than the budget
        // between them however slowly they arrive.
        let mut grant = self.budget.grant();
        let declared = declared.map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX));
        if !grant.try_cover(declared) {
            return Err(self.budget_spent());
        }
        let read = async {
            let mut body = Vec::with_capacity(grant.bytes());
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|e| {
                    Refusal::Body(Problem::new(
                        ProblemKind::MalformedBody,
                        format!("the body could not be read: {e}"),
                    ))
                })?;
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(too_large());
                }
                if !grant.try_cover(body.len() + chunk.len()) {
                    return Err(self.budget_spent());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body)
        };
        let bytes = tokio::time::timeout(self.body_deadline, read)
            .await
            .map_err(|_| {
                Refusal::Body(Problem::new(
                    ProblemKind::MalformedBody,
                    format!(
                        "the body did not arrive within {} ms of the request head",
                        self.body_deadline.as_millis()
                    ),
                ))
            })??;
        Ok(Body {
            bytes,
            _grant: grant,
        })
    }

    fn budget_spent(&self) -> Refusal {
        warn(&BUDGET_SPENT, |suppressed| {
            tracing::warn!(
                budget = self.budget.limit(),
                suppressed,
                "refused a request body: the bodies in flight hold the whole budget"
            );
        });
        unavailable(format!(
            "{} holds {} bytes of request bodies in flight, its most; retry later",
            self.holder,
            self.budget.limit()
        ))
    }
}

/// Whether the request says its body is JSON (`application/json`, parameters allowed).
pub fn is_json(req: &HttpRequest) -> bool {
    content_type(req)
        .split(';')
        .next()
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

/// The request's `Content-Type`, or `""`.
pub fn content_type(req: &HttpRequest) -> &str {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Per connection (in its extensions, dropped with it): whether it counts against its
/// address's cap. Connections are served on one thread, hence the `RefCell`.
struct ConnectionSlot(RefCell<SlotState>);

enum SlotState {
    /// No request yet: not counted.
    New,
    /// Counted; the count goes down when the connection closes.
    Admitted(#[expect(dead_code, reason = "held for its Drop, which frees the slot")] PeerSlot),
    /// Over the cap: every request on it is refused.
    Refused,
}

/// For `HttpServer::on_connect`: a fresh slot for every connection, plain or TLS.
pub fn on_connect(_connection: &dyn Any, extensions: &mut Extensions) {
    extensions.insert(ConnectionSlot(RefCell::new(SlotState::New)));
}

fn unavailable(detail: String) -> Refusal {
    Refusal::Unavailable(Problem::new(ProblemKind::Unavailable, detail))
}

static CAP_REACHED: LogThrottle = LogThrottle::per_ten_seconds();
static BUDGET_SPENT: LogThrottle = LogThrottle::per_ten_seconds();

/// Runs `write` when `throttle` lets this occurrence through, with the count of occurrences left
/// out since the last one written: how a warning that a flood can repeat is logged.
pub fn warn(throttle: &LogThrottle, write: impl FnOnce(u64)) {
    if let LogDecision::Write { suppressed } = throttle.hit(Instant::now()) {
        write(suppressed);
    }
}

#[cfg(test)]
mod tests {
    use actix_web::FromRequest;
    use actix_web::test::TestRequest;

    use super::*;

    fn guard(budget: usize) -> Guard {
        Guard::new(
            &ServerLimits {
                body_budget_bytes: budget,
                ..ServerLimits::default()
            },
            "the server",
        )
    }

    async fn payload_of(
        req: &HttpRequest,
        stream: impl futures_util::Stream<Item = Result<web::Bytes, actix_web::error::PayloadError>>
        + 'static,
    ) -> web::Payload {
        let mut payload = actix_web::dev::Payload::from(
            Box::pin(stream) as std::pin::Pin<Box<dyn futures_util::Stream<Item = _>>>
        );
        web::Payload::from_request(req, &mut payload).await.unwrap()
    }

    fn post(length: usize) -> HttpRequest {
        TestRequest::post()
            .insert_header((header::CONTENT_LENGTH, length.to_string()))
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .to_http_request()
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_never_arrives_is_given_up_on_at_the_deadline() {
        let guard = guard(MAX_BODY_BYTES);
        let req = post(10);
        let payload = payload_of(&req, futures_util::stream::pending()).await;
        let Err(Refusal::Body(problem)) = guard.read_body(&req, payload).await else {
            panic!("not refused for its body");
        };
        assert_eq!(problem.status, 400);
        let detail = problem.detail.unwrap();
        assert!(detail.contains("did not arrive within"), "{detail}");
        assert_eq!(guard.bytes_held(), 0, "its bytes are given back");
    }

    #[tokio::test]
    async fn bodies_past_the_budget_are_unavailable_and_their_bytes_come_back() {
        let guard = guard(MAX_BODY_BYTES);
        let req = post(MAX_BODY_BYTES);
        let held = payload_of(&req, futures_util::stream::pending()).await;
        // The first body's declared length takes the whole budget while it trickles in.
        let first = guard.read_body(&req, held);
        let first = tokio::time::timeout(Duration::from_millis(50), first).await;
        assert!(first.is_err(), "still reading");
        assert_eq!(
            guard.bytes_held(),
            0,
            "given back when the read was dropped"
        );

        let _taken = guard.budget.try_grant(MAX_BODY_BYTES).unwrap();
        let payload = payload_of(&req, futures_util::stream::pending()).await;
        let Err(Refusal::Unavailable(problem)) = guard.read_body(&req, payload).await else {
            panic!("not refused by the budget");
        };
        assert_eq!(problem.status, 503);
        assert!(problem.detail.unwrap().starts_with("the server holds"));
    }

    #[tokio::test]
    async fn a_chunked_body_is_held_in_the_budget_as_it_grows() {
        let guard = guard(MAX_BODY_BYTES + 10);
        let _taken = guard.budget.try_grant(MAX_BODY_BYTES).unwrap();
        let req = TestRequest::post()
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .to_http_request();
        let chunks = futures_util::stream::iter(
            [&b"{\"records\""[..], &b": []}"[..]].map(|c| Ok(web::Bytes::from_static(c))),
        );
        let payload = payload_of(&req, chunks).await;
        let refusal = guard.read_body(&req, payload).await.err().unwrap();
        assert!(
            matches!(refusal, Refusal::Unavailable(_)),
            "10 bytes fit, 15 do not"
        );
        assert_eq!(guard.bytes_held(), MAX_BODY_BYTES);
    }

    #[test]
    fn json_is_recognised_with_parameters_and_in_any_case() {
        let req = |ct: &str| {
            TestRequest::post()
                .insert_header((header::CONTENT_TYPE, ct))
                .to_http_request()
        };
        assert!(is_json(&req("application/json")));
        assert!(is_json(&req("Application/JSON; charset=utf-8")));
        assert!(!is_json(&req("text/plain")));
        assert!(!is_json(&TestRequest::post().to_http_request()));
    }
}
