//! What one client can make the Teams API hold, bounded: connections per client address, and
//! the bytes of request bodies in flight over every request together, each body within its
//! deadline. Past a bound the answer is `503` with `Retry-After`, and nothing is read.

use std::any::Any;
use std::cell::RefCell;
use std::time::{Duration, Instant};

use actix_web::HttpRequest;
use actix_web::dev::Extensions;
use actix_web::http::header;
use actix_web::web;
use futures_util::StreamExt;
use oc_protocol::MAX_BODY_BYTES;
use oc_protocol::limits::{BodyGrant, ByteBudget, PeerConnections, PeerSlot, ServerLimits};
use oc_protocol::log_throttle::{LogDecision, LogThrottle};
use oc_protocol::problem::ProblemKind;

use super::{Refusal, Rejection, problem};

/// How long a client refused by a bound is asked to wait.
const RETRY_AFTER_SECS: u64 = 1;

/// The bounds and their counters, shared by every worker.
pub(crate) struct Guard {
    budget: ByteBudget,
    peers: PeerConnections,
    body_deadline: Duration,
}

impl Guard {
    pub(crate) fn new(limits: &ServerLimits) -> Self {
        Self {
            budget: ByteBudget::new(limits.body_budget_bytes),
            peers: PeerConnections::new(limits.connections_per_peer),
            body_deadline: Duration::from_millis(limits.body_deadline_ms),
        }
    }

    /// Counts the request's connection against its client address, once per connection:
    /// `503` when the address holds its cap already (the connection is then closed).
    pub(crate) fn admit(&self, req: &HttpRequest) -> Result<(), Refusal> {
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
}

/// Per connection (in its extensions, dropped with it): whether it counts against its
/// address's cap. Connections are served on one thread, hence the `RefCell`.
pub(crate) struct ConnectionSlot(RefCell<SlotState>);

enum SlotState {
    /// No request yet: not counted.
    New,
    /// Counted; the count goes down when the connection closes.
    Admitted(#[expect(dead_code, reason = "held for its Drop, which frees the slot")] PeerSlot),
    /// Over the cap: every request on it is refused.
    Refused,
}

/// `HttpServer::on_connect`: a fresh slot for every connection, plain or TLS.
pub(crate) fn on_connect(_connection: &dyn Any, extensions: &mut Extensions) {
    extensions.insert(ConnectionSlot(RefCell::new(SlotState::New)));
}

/// `503` with `Retry-After`, closing the connection: nothing of the request was read.
fn unavailable(detail: String) -> Refusal {
    Box::new(Rejection {
        retry_after_secs: Some(RETRY_AFTER_SECS),
        close_connection: true,
        ..*problem(ProblemKind::Unavailable, detail)
    })
}

static CAP_REACHED: LogThrottle = LogThrottle::per_ten_seconds();
static BUDGET_SPENT: LogThrottle = LogThrottle::per_ten_seconds();

/// Runs `write` when `throttle` lets this occurrence through, with the count left out since.
pub(crate) fn warn(throttle: &LogThrottle, write: impl FnOnce(u64)) {
    if let LogDecision::Write { suppressed } = throttle.hit(Instant::now()) {
        write(suppressed);
    }
}

/// A request body, and the share of the budget it holds until dropped.
pub(crate) struct Body {
    pub(crate) bytes: Vec<u8>,
    _grant: BodyGrant,
}

impl Guard {
    /// Reads the body up to 1 MiB [413] within the body deadline, holding its bytes in the
    /// budget [503], and requires JSON when there is one [415].
    pub(crate) async fn read_body(
        &self,
        req: &HttpRequest,
        mut payload: web::Payload,
    ) -> Result<Body, Refusal> {
        let too_large = || {
            problem(
                ProblemKind::PayloadTooLarge,
                format!("the body is over {MAX_BODY_BYTES} bytes; send smaller batches"),
            )
        };
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
            return Err(too_large());
        }
        // A declared length is taken from the budget before a byte is read, so that stalled
        // bodies cannot hold more than the budget between them however slowly they arrive.
        let mut grant = self.budget.grant();
        if !grant.try_cover(declared.unwrap_or(0)) {
            return Err(self.budget_spent());
        }
        let read = async {
            let mut body = Vec::with_capacity(grant.bytes());
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|e| {
                    problem(
                        ProblemKind::MalformedBody,
                        format!("the body could not be read: {e}"),
                    )
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
                problem(
                    ProblemKind::MalformedBody,
                    format!(
                        "the body did not arrive within {} ms of the request head",
                        self.body_deadline.as_millis()
                    ),
                )
            })??;
        if !bytes.is_empty() {
            let content_type = req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let essence = content_type.split(';').next().unwrap_or("").trim();
            if !essence.eq_ignore_ascii_case("application/json") {
                return Err(problem(
                    ProblemKind::UnsupportedMediaType,
                    format!("the body must be application/json, not {content_type:?}"),
                ));
            }
        }
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
            "the server holds {} bytes of request bodies in flight, its most; retry later",
            self.budget.limit()
        ))
    }
}

#[cfg(test)]
mod tests {
    use actix_web::FromRequest;
    use actix_web::test::TestRequest;

    use super::*;

    fn guard(budget: usize) -> Guard {
        Guard::new(&ServerLimits {
            body_budget_bytes: budget,
            ..ServerLimits::default()
        })
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
    async fn a_body_that_never_arrives_is_given_up_on() {
        let req = post(10);
        let never = futures_util::stream::pending();
        let payload = payload_of(&req, never).await;
        let refusal = guard(MAX_BODY_BYTES)
            .read_body(&req, payload)
            .await
            .err()
            .unwrap();
        assert_eq!(refusal.problem.status, 400);
        let detail = refusal.problem.detail.unwrap();
        assert!(
            detail.contains("did not arrive within 30000 ms"),
            "{detail}"
        );
    }

    #[tokio::test]
    async fn bodies_past_the_budget_get_503_and_their_bytes_come_back() {
        let guard = guard(MAX_BODY_BYTES);
        let req = post(MAX_BODY_BYTES);
        let held = payload_of(&req, futures_util::stream::pending()).await;
        // The first body's declared length takes the whole budget while it trickles in.
        let first = guard.read_body(&req, held);
        let first = tokio::time::timeout(Duration::from_millis(50), first).await;
        assert!(first.is_err(), "still reading");
        assert_eq!(
            guard.budget.held(),
            0,
            "given back when the read was dropped"
        );

        let req = post(MAX_BODY_BYTES);
        let _taken = guard.budget.try_grant(MAX_BODY_BYTES).unwrap();
        let payload = payload_of(&req, futures_util::stream::pending()).await;
        let refusal = guard.read_body(&req, payload).await.err().unwrap();
        assert_eq!(refusal.problem.status, 503);
        assert_eq!(refusal.retry_after_secs, Some(RETRY_AFTER_SECS));
        assert!(refusal.close_connection);
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
        assert_eq!(refusal.problem.status, 503, "10 bytes fit, 15 do not");
        assert_eq!(guard.budget.held(), MAX_BODY_BYTES);
    }
}
