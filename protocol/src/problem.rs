//! RFC 9457 problem details (`application/problem+json`), the error body of both APIs.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The media type of a problem body.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// An error response body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// A URI naming the kind of problem, one of [`ProblemKind`]'s.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind, the same for every occurrence.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong this time and how to fix it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Each wrong field, when the problem is about fields.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// One wrong field of a request: in the body (`pointer`), the query (`parameter`) or a header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldError {
    /// RFC 6901 JSON pointer into the request body, e.g. `/records/3/durationMs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// The name of a query parameter, e.g. `pageSize`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
    /// The name of a request header, e.g. `Idempotency-Key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// What is wrong, as a fragment that follows the field's name ("must be >= 0").
    pub message: String,
}

impl FieldError {
    /// An error at a JSON pointer of the body.
    pub fn at_pointer(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            pointer: Some(pointer.into()),
            parameter: None,
            header: None,
            message: message.into(),
        }
    }

    /// An error in a query parameter.
    pub fn at_parameter(name: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            pointer: None,
            parameter: Some(name.into()),
            header: None,
            message: message.into(),
        }
    }

    /// An error in a request header.
    pub fn at_header(name: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            pointer: None,
            parameter: None,
            header: Some(name.into()),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.pointer, &self.parameter, &self.header) {
            (Some(p), _, _) if p.is_empty() => write!(f, "the body {}", self.message),
            (Some(p), _, _) => write!(f, "{p} {}", self.message),
            (None, Some(q), _) => write!(f, "query parameter {q} {}", self.message),
            (None, None, Some(h)) => write!(f, "header {h} {}", self.message),
            (None, None, None) => f.write_str(&self.message),
        }
    }
}

/// The kinds of problem both APIs answer with; each has a stable `type` URI, title and status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// 400: the body is not JSON, or not of the expected shape.
    MalformedBody,
    /// 400: the request is well-formed but fields are invalid (see `errors`).
    Validation,
    /// 400: a `nextLink` or `deltaLink` cursor that this server did not issue, or that expired.
    InvalidCursor,
    /// 401: missing or unknown bearer token, or a bad webhook signature.
    Unauthorized,
    /// 404: no such resource for this caller.
    NotFound,
    /// 405: the path exists, the method does not.
    MethodNotAllowed,
    /// 413: the body is over 1 MiB.
    PayloadTooLarge,
    /// 415: the body is not `application/json`.
    UnsupportedMediaType,
    /// 422: an `Idempotency-Key` reused with another body.
    IdempotencyKeyReused,
    /// 429: throttled; retry after the `Retry-After` delay.
    TooManyRequests,
    /// 500: a fault on the server's side.
    Internal,
    /// 503: the server cannot answer now.
    Unavailable,
}

impl ProblemKind {
    /// Every kind, for documentation and tests.
    pub const ALL: [ProblemKind; 12] = [
        Self::MalformedBody,
        Self::Validation,
        Self::InvalidCursor,
        Self::Unauthorized,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::IdempotencyKeyReused,
        Self::TooManyRequests,
        Self::Internal,
        Self::Unavailable,
    ];

    /// The `type` URI.
    pub fn type_uri(self) -> &'static str {
        match self {
            Self::MalformedBody => "urn:oc:problem:malformed-body",
            Self::Validation => "urn:oc:problem:validation",
            Self::InvalidCursor => "urn:oc:problem:invalid-cursor",
            Self::Unauthorized => "urn:oc:problem:unauthorized",
            Self::NotFound => "urn:oc:problem:not-found",
            Self::MethodNotAllowed => "urn:oc:problem:method-not-allowed",
            Self::PayloadTooLarge => "urn:oc:problem:payload-too-large",
            Self::UnsupportedMediaType => "urn:oc:problem:unsupported-media-type",
            Self::IdempotencyKeyReused => "urn:oc:problem:idempotency-key-reused",
            Self::TooManyRequests => "urn:oc:problem:too-many-requests",
            Self::Internal => "urn:oc:problem:internal",
            Self::Unavailable => "urn:oc:problem:unavailable",
        }
    }

    /// The title, the same for every problem of this kind.
    pub fn title(self) -> &'static str {
        match self {
            Self::MalformedBody => "The request body is not valid JSON of the expected shape",
            Self::Validation => "The request has invalid fields",
            Self::InvalidCursor => "The paging link is not one this server issued",
            Self::Unauthorized => "Authentication failed",
            Self::NotFound => "Not found",
            Self::MethodNotAllowed => "Method not allowed on this path",
            Self::PayloadTooLarge => "The request body is over 1 MiB",
            Self::UnsupportedMediaType => "The request body must be application/json",
            Self::IdempotencyKeyReused => "The Idempotency-Key was used with another body",
            Self::TooManyRequests => "Too many requests",
            Self::Internal => "Internal error",
            Self::Unavailable => "Service unavailable",
        }
    }

    /// The HTTP status code.
    pub fn status(self) -> u16 {
        match self {
            Self::MalformedBody | Self::Validation | Self::InvalidCursor => 400,
            Self::Unauthorized => 401,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::IdempotencyKeyReused => 422,
            Self::TooManyRequests => 429,
            Self::Internal => 500,
            Self::Unavailable => 503,
        }
    }
}

impl Problem {
    /// A problem of `kind` with what went wrong this time.
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Self {
            kind: kind.type_uri().to_owned(),
            title: kind.title().to_owned(),
            status: kind.status(),
            detail: Some(detail.into()),
            errors: Vec::new(),
        }
    }

    /// Adds the wrong fields.
    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    /// A 400 for a body that failed [`crate::Validate`], listing every error.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.len() {
            1 => "1 field is invalid; see errors".to_owned(),
            n => format!("{n} fields are invalid; see errors"),
        };
        Self::new(ProblemKind::Validation, detail).with_errors(errors)
    }

    /// A 400 for a body that could not be read as the expected JSON, from serde's error at a
    /// path (see [`crate::body::from_slice`]).
    pub fn malformed(error: crate::body::BodyError) -> Self {
        let field = error.field_error();
        Self::new(ProblemKind::MalformedBody, error.to_string()).with_errors(vec![field])
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.title)?;
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        for error in &self.errors {
            write!(f, "; {error}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_distinct_types_and_client_or_server_statuses() {
        let mut uris: Vec<_> = ProblemKind::ALL.iter().map(|k| k.type_uri()).collect();
        uris.sort_unstable();
        uris.dedup();
        assert_eq!(uris.len(), ProblemKind::ALL.len());
        for kind in ProblemKind::ALL {
            assert!((400..600).contains(&kind.status()), "{kind:?}");
        }
    }

    #[test]
    fn display_names_the_field() {
        let p = Problem::validation(vec![
            FieldError::at_pointer("/records/3/durationMs", "must be >= 0"),
            FieldError::at_parameter("pageSize", "must be from 1 to 1000"),
        ]);
        assert_eq!(
            p.to_string(),
            "400 The request has invalid fields: 2 fields are invalid; see errors; \
             /records/3/durationMs must be >= 0; query parameter pageSize must be from 1 to 1000"
        );
    }
}
