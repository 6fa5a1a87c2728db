//! Error answers of the carrier API as `application/problem+json`.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use oc_protocol::problem::PROBLEM_CONTENT_TYPE;
use oc_protocol::{Problem, ProblemKind};

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

/// 405 for a method a path does not have, with the `Allow` header that RFC 9110 requires.
pub(crate) fn method_not_allowed(req: &HttpRequest, allow: &'static str) -> HttpResponse {
    let mut response = respond(&Problem::new(
        ProblemKind::MethodNotAllowed,
        format!(
            "{} is not allowed on {}; use {allow}",
            req.method(),
            req.path()
        ),
    ));
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}
