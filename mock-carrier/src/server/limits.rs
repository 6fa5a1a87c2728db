//! What one client can make the carrier API hold, bounded: connections per client address, and
//! the bytes of request bodies in flight over every request together, each body within its
//! deadline. Past a bound the answer is `503` with `Retry-After`, and nothing more is read.

use std::any::Any;
use std::cell::RefCell;
use std::time::{Duration, Instant};

use actix_web::dev::Extensions;
use actix_web::http::header::{self, HeaderValue};
use actix_web::web::{Bytes, BytesMut, Payload};
use actix_web::{HttpRequest, HttpResponse};
use futures_util::StreamExt as _;
use oc_protocol::limits::{ByteBudget, PeerConnections, PeerSlot, ServerLimits};
use oc_protocol::log_throttle::{LogDecision, LogThrottle};
use oc_protocol::{MAX_BODY_BYTES, Problem, ProblemKind};

use super::problem::respond;

/// How long a client refused by a bound is asked to wait.
const RETRY_AFTER_SECS: u64 = 1;

/// The bounds and their counters, shared by every worker.
pub(crate) struct Guard {
    budget: ByteBudget,
    peers: PeerConnections,
    body_deadline: Duration,
}

/// A refused request: the problem, and whether it was refused by a bound (then `503` with
/// `Retry-After`, closing the connection).
pub(crate) struct Refused {
    problem: Problem,
    unavailable: bool,
}

impl From<Problem> for Refused {
    fn from(problem: Problem) -> Self {
        Self {
            problem,
            unavailable: false,
        }
    }
}

impl Refused {
    /// The response.
    pub(crate) fn respond(&self) -> HttpResponse {
        let mut response = respond(&self.problem);
        if self.unavailable {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
            response
                .head_mut()
                .set_connection_type(actix_web::http::ConnectionType::Close);
        }
        response
    }

    fn unavailable(detail: String) -> Self {
        Self {
            problem: Problem::new(ProblemKind::Unavailable, detail),
            unavailable: true,
        }
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

/// `HttpServer::on_connect`: a fresh slot for every connection.
pub(crate) fn on_connect(_connection: &dyn Any, extensions: &mut Extensions) {
    extensions.insert(ConnectionSlot(RefCell::new(SlotState::New)));
}

static CAP_REACHED: LogThrottle = LogThrottle::per_ten_seconds();
static BUDGET_SPENT: LogThrottle = LogThrottle::per_ten_seconds();

/// Runs `write` when `throttle` lets this occurrence through, with the count left out since.
pub(crate) fn warn(throttle: &LogThrottle, write: impl FnOnce(u64)) {
    if let LogDecision::Write { suppressed } = throttle.hit(Instant::now()) {
        write(suppressed);
    }
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
    pub(crate) fn admit(&self, req: &HttpRequest) -> Result<(), Refused> {
        let (Some(slot), Some(peer)) = (req.conn_data::<ConnectionSlot>(), req.peer_addr()) else {
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
        Err(Refused::unavailable(format!(
            "this client address holds {} connections already, the most allowed; close one \
             and retry",
            self.peers.limit()
        )))
    }

    /// Reads a request body that must be `application/json` and at most [`MAX_BODY_BYTES`],
    /// within the body deadline, holding its bytes in the budget while it is read. The bytes
    /// are handed over once complete: a body is parsed straight away, so the budget bounds
    /// what slow and stalled bodies hold, which is what a flood of them costs.
    ///
    /// The size is checked against `Content-Length` first and again while reading, so a body
    /// that lies about its length is cut off at the limit rather than read whole.
    pub(crate) async fn read_json_body(
        &self,
        req: &HttpRequest,
        mut payload: Payload,
    ) -> Result<Bytes, Refused> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return Err(Problem::new(
                ProblemKind::UnsupportedMediaType,
                "send the body as Content-Type: application/json",
            )
            .into());
        }
        let too_large = || {
            Refused::from(Problem::new(
                ProblemKind::PayloadTooLarge,
                format!("the body is over {MAX_BODY_BYTES} bytes"),
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
        // A declared length is taken from the budget before a byte is read.
        let mut grant = self.budget.grant();
        let declared = declared.map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX));
        if !grant.try_cover(declared) {
            return Err(self.budget_spent());
        }
        let read = async {
            let mut body = BytesMut::with_capacity(grant.bytes());
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|err| {
                    Refused::from(Problem::new(
                        ProblemKind::MalformedBody,
                        format!("the body could not be read: {err}"),
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
            Ok(body.freeze())
        };
        tokio::time::timeout(self.body_deadline, read)
            .await
            .map_err(|_| {
                Refused::from(Problem::new(
                    ProblemKind::MalformedBody,
                    format!(
                        "the body did not arrive within {} ms of the request head",
                        self.body_deadline.as_millis()
                    ),
                ))
            })?
    }

    fn budget_spent(&self) -> Refused {
        warn(&BUDGET_SPENT, |suppressed| {
            tracing::warn!(
                budget = self.budget.limit(),
                suppressed,
                "refused a request body: the bodies in flight hold the whole budget"
            );
        });
        Refused::unavailable(format!(
            "the carrier holds {} bytes of request bodies in flight, its most; retry later",
            self.budget.limit()
        ))
    }
}

#[cfg(test)]
mod tests {
    use actix_web::FromRequest;
    use actix_web::test::TestRequest;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_body_that_never_arrives_is_given_up_on_at_the_deadline() {
        let guard = Guard::new(&ServerLimits::default());
        let req = TestRequest::post()
            .insert_header((header::CONTENT_LENGTH, "10"))
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .to_http_request();
        let never = futures_util::stream::pending::<
            Result<actix_web::web::Bytes, actix_web::error::PayloadError>,
        >();
        let mut stalled = actix_web::dev::Payload::from(
            Box::pin(never) as std::pin::Pin<Box<dyn futures_util::Stream<Item = _>>>
        );
        let payload = Payload::from_request(&req, &mut stalled).await.unwrap();
        let refused = guard.read_json_body(&req, payload).await.err().unwrap();
        assert_eq!(refused.problem.status, 400);
        let detail = refused.problem.detail.unwrap();
        assert!(detail.contains("did not arrive within"), "{detail}");
        assert_eq!(guard.budget.held(), 0);
    }
}
