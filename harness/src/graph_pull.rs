//! Pulling Teams' PSTN call log live from Microsoft Graph (`getPstnCalls`), for `oc-harness
//! reconcile --graph-url`: windows of at most 90 days (Graph's limit), each followed through
//! its `@odata.nextLink`s, `429` and `503` honoured with their `Retry-After`, every page saved
//! to a file as it arrives so that memory holds one page and the pages stay as evidence.

use std::path::{Path, PathBuf};
use std::time::Duration;

use oc_protocol::UnixMillis;
use oc_protocol::graph::{MAX_WINDOW_MS, PstnCallsWindow, pstn_calls_path};
use reqwest::Url;

/// Where and how to pull.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Graph's origin, e.g. `https://graph.microsoft.com` (the path is Graph's own).
    pub graph_url: Url,
    /// The bearer token (an Entra ID access token with `CallRecords.Read.All`).
    pub token: String,
    /// The call log's window, both ends inclusive, on the calls' start times.
    pub window: (UnixMillis, UnixMillis),
    /// How many times one page is asked for again after a `429`, a `5xx` or no answer.
    pub max_retries: u32,
    /// The longest single wait a `Retry-After` may ask for before the pull gives up.
    pub max_wait: Duration,
    /// How long one request may take.
    pub request_timeout: Duration,
}

impl PullOptions {
    /// Pulling `window` from `graph_url` with `token`, with the default retry bounds (8
    /// retries a page, waits of at most 5 minutes, 60 s a request).
    pub fn new(graph_url: Url, token: String, window: (UnixMillis, UnixMillis)) -> Self {
        Self {
            graph_url,
            token,
            window,
            max_retries: 8,
            max_wait: Duration::from_secs(300),
            request_timeout: Duration::from_secs(60),
        }
    }
}

/// What a pull did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pulled {
    /// The page files written, in order.
    pub files: Vec<PathBuf>,
    /// The 90-day windows asked for.
    pub windows: u32,
    /// Answers `429` or `503` that were waited out.
    pub throttled: u32,
    /// Requests sent again after a `5xx` or no answer.
    pub retried: u32,
}

/// Why a pull stopped.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The window is empty or backwards.
    #[error("the window is empty: --from must be before --to")]
    EmptyWindow,
    /// Graph answered with an error that retrying does not mend.
    #[error("Graph answered {status} to {url}: {message}")]
    Status {
        /// The request.
        url: String,
        /// The answer's status.
        status: u16,
        /// Graph's error message, or the body's start.
        message: String,
    },
    /// No usable answer after the retries.
    #[error("gave up on {url} after {attempts} attempts: {last}")]
    GaveUp {
        /// The request.
        url: String,
        /// How many times it was sent.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// A `Retry-After` longer than the pull waits.
    #[error("Graph asked to wait {asked_s} s before {url}, longer than the {max_s} s allowed")]
    WaitTooLong {
        /// The request.
        url: String,
        /// The wait asked for.
        asked_s: u64,
        /// The longest wait allowed.
        max_s: u64,
    },
    /// A page that is not a Graph page.
    #[error("the page from {url} is not a Graph collection page: {message}")]
    NotAPage {
        /// The request.
        url: String,
        /// What is wrong with it.
        message: String,
    },
    /// A nextLink to another origin: following it would hand the token to another server.
    #[error("the nextLink {link} leaves {origin}; not followed, so the token is not sent there")]
    ForeignLink {
        /// The link.
        link: String,
        /// Graph's origin.
        origin: String,
    },
    /// A nextLink seen before in the same window: the server is going round in circles.
    #[error("the nextLink {link} was already followed in this window")]
    RepeatedLink {
        /// The link.
        link: String,
    },
    /// A page could not be saved.
    #[error("failed to write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP client or runtime could not be built.
    #[error("failed to start the HTTP client: {0}")]
    Client(String),
}

/// Pulls the call log into `dir` (created if missing) as `getPstnCalls-0001.json`, … and
/// returns what was written; `progress` hears of each page saved (its number and rows so
/// far is not known without reading it, so the page number and its size in bytes).
pub fn pull(
    options: &PullOptions,
    dir: &Path,
    progress: &mut dyn FnMut(u64, usize),
) -> Result<Pulled, PullError> {
    let (from, to) = options.window;
    if to < from {
        return Err(PullError::EmptyWindow);
    }
    std::fs::create_dir_all(dir).map_err(|source| PullError::Write {
        path: dir.display().to_string(),
        source,
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| PullError::Client(e.to_string()))?;
    let client = reqwest::Client::builder()
        .timeout(options.request_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| PullError::Client(e.to_string()))?;
    runtime.block_on(async {
        let mut pulled = Pulled::default();
        let mut start = from;
        loop {
            let end = to.min(start.saturating_add(MAX_WINDOW_MS));
            pulled.windows += 1;
            pull_window(
                options,
                &client,
                PstnCallsWindow {
                    from: start,
                    to: end,
                },
                dir,
                &mut pulled,
                progress,
            )
            .await?;
            if end >= to {
                return Ok(pulled);
            }
            // Both ends are inclusive: the next window starts a millisecond later.
            start = end + 1;
        }
    })
}

/// One window, through its nextLinks.
async fn pull_window(
    options: &PullOptions,
    client: &reqwest::Client,
    window: PstnCallsWindow,
    dir: &Path,
    pulled: &mut Pulled,
    progress: &mut dyn FnMut(u64, usize),
) -> Result<(), PullError> {
    let origin = options.graph_url.origin();
    let first = options
        .graph_url
        .join(&pstn_calls_path(window))
        .map_err(|e| PullError::Client(format!("{}: {e}", options.graph_url)))?;
    let mut seen = std::collections::HashSet::new();
    let mut url = first;
    loop {
        let body = fetch(options, client, &url, pulled).await?;
        let next = next_link(&url, &body)?;
        let n = pulled.files.len() as u64 + 1;
        let path = dir.join(format!("getPstnCalls-{n:04}.json"));
        std::fs::write(&path, &body).map_err(|source| PullError::Write {
            path: path.display().to_string(),
            source,
        })?;
        pulled.files.push(path);
        progress(n, body.len());
        let Some(link) = next else {
            return Ok(());
        };
        let next_url = url
            .join(&link)
            .ok()
            .filter(|next| next.origin() == origin)
            .ok_or_else(|| PullError::ForeignLink {
                link: link.clone(),
                origin: origin.ascii_serialization(),
            })?;
        if !seen.insert(next_url.to_string()) {
            return Err(PullError::RepeatedLink { link });
        }
        url = next_url;
    }
}

/// One page, with its retries: `429` and `503` wait out `Retry-After` (or a backoff when it
/// is missing), other `5xx`, transport failures and bodies that break off back off and try
/// again; anything else but `200` stops the pull with Graph's message.
async fn fetch(
    options: &PullOptions,
    client: &reqwest::Client,
    url: &Url,
    pulled: &mut Pulled,
) -> Result<Vec<u8>, PullError> {
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let backoff = Duration::from_millis(250 << attempts.min(6));
        // What went wrong, how long to wait, and whether Graph asked for the wait.
        let (failure, wait, throttled) = match attempt(options, client, url).await {
            Attempt::Page(body) => return Ok(body),
            Attempt::Refused { status, message } => {
                return Err(PullError::Status {
                    url: url.to_string(),
                    status,
                    message,
                });
            }
            Attempt::Throttled { what, retry_after } => {
                let wait = retry_after.map_or(backoff, Duration::from_secs);
                if wait > options.max_wait {
                    return Err(PullError::WaitTooLong {
                        url: url.to_string(),
                        asked_s: wait.as_secs(),
                        max_s: options.max_wait.as_secs(),
                    });
                }
                (what, wait, true)
            }
            Attempt::Failed(what) => (what, backoff, false),
        };
        if attempts > options.max_retries {
            return Err(PullError::GaveUp {
                url: url.to_string(),
                attempts,
                last: failure,
            });
        }
        if throttled {
            pulled.throttled += 1;
        } else {
            pulled.retried += 1;
        }
        tokio::time::sleep(wait).await;
    }
}

/// How one request went.
enum Attempt {
    Page(Vec<u8>),
    /// `429` or `503`: wait and ask again.
    Throttled {
        what: String,
        retry_after: Option<u64>,
    },
    /// Another `5xx`, no answer, or a body that broke off: back off and ask again.
    Failed(String),
    /// Any other status: asking again would not mend it.
    Refused {
        status: u16,
        message: String,
    },
}

async fn attempt(options: &PullOptions, client: &reqwest::Client, url: &Url) -> Attempt {
    let response = match client
        .get(url.clone())
        .bearer_auth(&options.token)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
    {
        Ok(response) => response,
        Err(err) => return Attempt::Failed(format!("no answer: {err}")),
    };
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let body = match response.bytes().await {
        Ok(body) => body,
        Err(err) => return Attempt::Failed(format!("the answer broke off: {err}")),
    };
    match status {
        200 => Attempt::Page(body.to_vec()),
        429 | 503 => Attempt::Throttled {
            what: format!("{status} {}", graph_message(&body)),
            retry_after,
        },
        500..=599 => Attempt::Failed(format!("{status} {}", graph_message(&body))),
        _ => Attempt::Refused {
            status,
            message: graph_message(&body),
        },
    }
}

/// Graph's error message (`{"error":{"message":…}}`), else the body's start.
fn graph_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Envelope {
        error: oc_protocol::graph::GraphErrorDetail,
    }
    match serde_json::from_slice::<Envelope>(body) {
        Ok(envelope) => format!("{}: {}", envelope.error.code, envelope.error.message),
        Err(_) => {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
            text.trim().to_owned()
        }
    }
}

/// The page's `@odata.nextLink`, checking on the way that it is a collection page.
fn next_link(url: &Url, body: &[u8]) -> Result<Option<String>, PullError> {
    #[derive(serde::Deserialize)]
    struct Links<'a> {
        #[serde(borrow)]
        value: Option<&'a serde_json::value::RawValue>,
        #[serde(rename = "@odata.nextLink")]
        next_link: Option<String>,
    }
    let links: Links<'_> = serde_json::from_slice(body).map_err(|e| PullError::NotAPage {
        url: url.to_string(),
        message: e.to_string(),
    })?;
    match links.value {
        Some(value) if value.get().trim_start().starts_with('[') => {
            Ok(links.next_link.filter(|l| !l.is_empty()))
        }
        _ => Err(PullError::NotAPage {
            url: url.to_string(),
            message: "no `value` array".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_gives_its_next_link_and_a_non_page_is_refused() {
        let url = Url::parse("https://graph.example/v1.0/x").unwrap();
        let page = br#"{"@odata.context":"c","value":[{"id":"1"}],"@odata.nextLink":"https://graph.example/next"}"#;
        assert_eq!(
            next_link(&url, page).unwrap().as_deref(),
            Some("https://graph.example/next")
        );
        assert_eq!(next_link(&url, br#"{"value":[]}"#).unwrap(), None);
        assert!(matches!(
            next_link(&url, br#"{"error":{"code":"x","message":"y"}}"#),
            Err(PullError::NotAPage { .. })
        ));
        assert!(matches!(
            next_link(&url, b"not json"),
            Err(PullError::NotAPage { .. })
        ));
    }

    #[test]
    fn graph_s_error_message_is_quoted() {
        assert_eq!(
            graph_message(br#"{"error":{"code":"BadRequest","message":"window too long"}}"#),
            "BadRequest: window too long"
        );
        assert_eq!(graph_message(b"  oops  "), "oops");
    }
}
