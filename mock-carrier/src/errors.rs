//! The library's errors: starting the carrier, and a poll cycle's requests to Teams.

use oc_protocol::Problem;

/// The carrier could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration has out-of-range values.
    #[error("invalid configuration: {}", problems.iter().map(|(k, m)| format!("{k}: {m}")).collect::<Vec<_>>().join("; "))]
    Config {
        /// Each problem as (key path, message).
        problems: Vec<(String, String)>,
    },
    /// The listen address could not be bound.
    #[error("failed to listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The carrier's runtime, HTTP server or HTTP client could not be set up.
    #[error("failed to set up the {what}: {message}")]
    Setup {
        /// Which part.
        what: &'static str,
        /// Why.
        message: String,
    },
}

/// A request of the client loop failed (after its retries); what was read before is kept.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No answer: connection refused, reset, or the request timed out, on every attempt.
    #[error("failed to reach {url} after {attempts} attempts: {message}")]
    Transport {
        /// The request URL.
        url: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last transport error.
        message: String,
    },
    /// Teams answered with an error status (for a 5xx, on every attempt).
    #[error("{url} answered {status}{}", problem.as_ref().map(|p| format!(": {p}")).unwrap_or_default())]
    Status {
        /// The request URL.
        url: String,
        /// The status code.
        status: u16,
        /// The problem body, when Teams sent one (boxed: it is large and rare).
        problem: Option<Box<Problem>>,
    },
    /// Teams answered 200 with a body that is not what the protocol says.
    #[error("failed to read the answer of {url}: {message}")]
    Body {
        /// The request URL.
        url: String,
        /// What is wrong with it.
        message: String,
    },
    /// A nextLink or deltaLink points to another origin than the Teams base URL; following it
    /// would send the carrier's token elsewhere.
    #[error("refused to follow {link}: not on the Teams base URL's origin")]
    ForeignLink {
        /// The link.
        link: String,
    },
    /// Still throttled after the configured number of 429s.
    #[error("{url} answered 429 {times} times in a row")]
    Throttled {
        /// The request URL.
        url: String,
        /// How many 429s.
        times: u32,
    },
    /// A Retry-After longer than the configured maximum: the request is not sent again in this
    /// cycle (sending it earlier would break CDR-THROTTLE).
    #[error("{url} asked to wait {seconds} s, more than the configured maximum")]
    RetryAfterTooLong {
        /// The request URL.
        url: String,
        /// The delay asked for.
        seconds: u64,
    },
    /// A chain of links longer than the configured maximum.
    #[error("the feed at {url} did not end within {pages} pages")]
    EndlessFeed {
        /// The first URL of the chain.
        url: String,
        /// The maximum.
        pages: u32,
    },
    /// A change-feed page with neither nextLink nor deltaLink.
    #[error("the page at {url} has neither nextLink nor deltaLink")]
    NoDeltaLink {
        /// The page's URL.
        url: String,
    },
}
