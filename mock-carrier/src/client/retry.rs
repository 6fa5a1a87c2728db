//! Sending one request with the protocol's retry rules: wait out a 429's `Retry-After`
//! [CDR-THROTTLE], retry a 5xx or a transport error with backoff, always with the same bytes.

use std::time::Duration;

use super::Client;
use super::transport::{Incoming, Outgoing};
use crate::errors::ClientError;
use crate::profile::Profile;

/// The wait when a 429 has no readable `Retry-After` (an HTTP-date is not read): long enough
/// to be safe against any delay a server would reasonably ask for.
const UNREADABLE_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Counts of what the retry loop did, for the cycle's outcome.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct RetryCounts {
    pub(crate) throttled: u32,
    pub(crate) retried: u32,
}

impl Client {
    /// Sends `out` until Teams answers something other than 429 or 5xx, or the limits are hit.
    ///
    /// Every wait is `tokio::time::sleep` on the caller's clock, so that tests can run it
    /// paused. Returns any non-429 answer below 500 as is.
    pub(crate) async fn exchange(
        &self,
        out: &Outgoing,
        counts: &mut RetryCounts,
    ) -> Result<Incoming, ClientError> {
        let url = out.url.to_string();
        let mut failures = 0u32;
        let mut throttled = 0u32;
        loop {
            let failure = match self.transport.send(out).await {
                Ok(answer) if answer.status == 429 => {
                    throttled += 1;
                    counts.throttled += 1;
                    if throttled > self.config.client.max_throttled {
                        return Err(ClientError::Throttled {
                            url,
                            times: throttled,
                        });
                    }
                    let wait = self.throttle_wait(&url, answer.retry_after.as_deref())?;
                    tracing::debug!(%url, wait_ms = wait.as_millis() as u64, "throttled");
                    tokio::time::sleep(wait).await;
                    continue;
                }
                Ok(answer) if answer.status >= 500 => ClientError::Status {
                    url: url.clone(),
                    status: answer.status,
                    problem: oc_protocol::body::from_slice(&answer.body)
                        .ok()
                        .map(Box::new),
                },
                Ok(answer) => return Ok(answer),
                Err(message) => ClientError::Transport {
                    url: url.clone(),
                    attempts: failures + 1,
                    message,
                },
            };
            failures += 1;
            if failures > self.config.client.max_retries {
                return Err(match failure {
                    ClientError::Transport { url, message, .. } => ClientError::Transport {
                        url,
                        attempts: failures,
                        message,
                    },
                    other => other,
                });
            }
            counts.retried += 1;
            tracing::debug!(%url, error = %failure, attempt = failures, "retrying");
            tokio::time::sleep(self.backoff(failures)).await;
        }
    }

    /// How long to wait after a 429: its `Retry-After`, unless the profile ignores it.
    pub(super) fn throttle_wait(
        &self,
        url: &str,
        retry_after: Option<&str>,
    ) -> Result<Duration, ClientError> {
        if self.config.misbehaviour.profile == Profile::CdrThrottle {
            // Breaks CDR-THROTTLE on purpose: its own short backoff, whatever Teams asked.
            return Ok(self.backoff(1));
        }
        let wait = retry_after
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(UNREADABLE_RETRY_AFTER, Duration::from_secs);
        if wait.as_secs() > self.config.client.max_retry_after_s {
            return Err(ClientError::RetryAfterTooLong {
                url: url.to_owned(),
                seconds: wait.as_secs(),
            });
        }
        Ok(wait)
    }

    /// The backoff before retry number `attempt` (1-based): doubling, capped.
    fn backoff(&self, attempt: u32) -> Duration {
        let c = &self.config.client;
        let factor = 1u64 << attempt.saturating_sub(1).min(20);
        Duration::from_millis(c.backoff_ms.saturating_mul(factor).min(c.max_backoff_ms))
    }
}
