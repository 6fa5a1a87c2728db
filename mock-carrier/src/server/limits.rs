//! The carrier API's side of the bounds both servers share ([`oc_server_limits`]): the JSON
//! check before a body is read, and a refusal as a response.

use actix_web::http::header::{self, HeaderValue};
use actix_web::web::Payload;
use actix_web::{HttpRequest, HttpResponse};
use oc_protocol::{Problem, ProblemKind};
pub(crate) use oc_server_limits::{Body, Guard, Refusal, on_connect, warn};

use super::problem::respond as problem_response;

/// Reads a request body that must be `application/json` [415, checked before a byte is read]
/// within the shared bounds. The body is parsed straight away, so the budget bounds what slow
/// and stalled bodies hold, which is what a flood of them costs.
pub(crate) async fn read_json_body(
    guard: &Guard,
    req: &HttpRequest,
    payload: Payload,
) -> Result<Body, Refusal> {
    if !oc_server_limits::is_json(req) {
        return Err(Refusal::Body(Problem::new(
            ProblemKind::UnsupportedMediaType,
            "send the body as Content-Type: application/json",
        )));
    }
    guard.read_body(req, payload).await
}

/// The response to a refusal: its problem, and for a bound `Retry-After` and a closed connection
/// (nothing more of the request is read).
pub(crate) fn respond(refusal: &Refusal) -> HttpResponse {
    let mut response = problem_response(refusal.problem());
    if let Refusal::Unavailable(_) = refusal {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(oc_server_limits::RETRY_AFTER_SECS),
        );
        response
            .head_mut()
            .set_connection_type(actix_web::http::ConnectionType::Close);
    }
    response
}
