//! Error answers of the carrier API as `application/problem+json`, and reading a JSON request
//! body within the size limit.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::web::{Bytes, BytesMut, Payload};
use actix_web::{HttpRequest, HttpResponse};
use futures_util::StreamExt as _;
use oc_protocol::problem::PROBLEM_CONTENT_TYPE;
use oc_protocol::{MAX_BODY_BYTES, Problem, ProblemKind};

/// The response for `problem`, with its status and media type.
pub(crate) fn respond(problem: &Problem) -> HttpResponse {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_vec(problem).unwrap_or_default();
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, PROBLEM_CONTENT_TYPE))
        .body(body)
}

/// 404 for a path the carrier API does not have.
pub(crate) async fn not_found(req: HttpRequest) -> HttpResponse {
    respond(&Problem::new(
        ProblemKind::NotFound,
        format!("no resource at {}", req.path()),
    ))
}

/// 405 for a method a path does not have.
pub(crate) async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    respond(&Problem::new(
        ProblemKind::MethodNotAllowed,
        format!("{} is not allowed on {}", req.method(), req.path()),
    ))
}

/// Reads a request body that must be `application/json` and at most [`MAX_BODY_BYTES`].
///
/// The size is checked against `Content-Length` first and again while reading, so a body that
/// lies about its length is cut off at the limit rather than read whole.
pub(crate) async fn read_json_body(
    req: &HttpRequest,
    mut payload: Payload,
) -> Result<Bytes, Problem> {
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
        ));
    }
    let too_large = || {
        Problem::new(
            ProblemKind::PayloadTooLarge,
            format!("the body is over {MAX_BODY_BYTES} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|err| {
            Problem::new(
                ProblemKind::MalformedBody,
                format!("the body could not be read: {err}"),
            )
        })?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}
