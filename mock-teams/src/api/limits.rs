//! The Teams API's side of the bounds both servers share ([`oc_server_limits`]): a refusal as this
//! API's [`Rejection`], and the JSON check of a body once read.

use actix_web::HttpRequest;
use actix_web::web;
use oc_protocol::problem::ProblemKind;
pub(crate) use oc_server_limits::{Body, Guard, on_connect, warn};

use super::{Refusal, Rejection, problem};

impl From<oc_server_limits::Refusal> for Box<Rejection> {
    fn from(refusal: oc_server_limits::Refusal) -> Self {
        match refusal {
            // A bound: nothing of the request was read, so the connection is closed.
            oc_server_limits::Refusal::Unavailable(problem) => Box::new(Rejection {
                problem,
                retry_after_secs: Some(oc_server_limits::RETRY_AFTER_SECS),
                detail: None,
                close_connection: true,
            }),
            oc_server_limits::Refusal::Body(problem) => problem.into(),
        }
    }
}

/// Reads the body within the shared bounds, and requires JSON when there is one [415].
pub(crate) async fn read_body(
    guard: &Guard,
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<Body, Refusal> {
    let body = guard.read_body(req, payload).await?;
    if !body.bytes.is_empty() && !oc_server_limits::is_json(req) {
        return Err(problem(
            ProblemKind::UnsupportedMediaType,
            format!(
                "the body must be application/json, not {:?}",
                oc_server_limits::content_type(req)
            ),
        ));
    }
    Ok(body)
}
