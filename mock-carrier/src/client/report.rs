//! Reporting durations: batches of up to 1000 records, each sent under its own
//! Idempotency-Key and retried with the same key and body until Teams acknowledges it
//! [DUR-IDEMPOTENT].

use actix_web::web::Bytes;
use oc_protocol::{DurationReportResponse, UnixMillis, paths};
use reqwest::Method;

use super::retry::RetryCounts;
use super::transport::Outgoing;
use super::{Client, ClientState};
use crate::errors::ClientError;
use crate::ledger::Due;
use crate::profile::Profile;

/// A batch waiting for Teams' acknowledgement; its key and body never change.
#[derive(Debug, Clone)]
pub(crate) struct Batch {
    pub(crate) key: String,
    pub(crate) body: Bytes,
    pub(crate) records: Vec<Due>,
    /// The `DUR-IDEMPOTENT` profile has already tried it under another batch's key.
    pub(crate) reused: bool,
}

/// What the reports of one cycle did.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Reported {
    pub(crate) batches: u32,
    pub(crate) accepted: u64,
    pub(crate) rejected: u64,
}

/// A batch's body as [`oc_protocol::DurationReportBatch`] serialises it, written from the
/// records due without copying them into one.
struct BatchBody<'a>(&'a [Due]);

impl serde::Serialize for BatchBody<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        struct Records<'a>(&'a [Due]);
        impl serde::Serialize for Records<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_seq(self.0.iter().map(|due| &due.record))
            }
        }
        let mut batch = serializer.serialize_struct("DurationReportBatch", 1)?;
        batch.serialize_field("records", &Records(self.0))?;
        batch.end()
    }
}

impl Client {
    /// Forms batches of `due` (in order) and appends them to the outbox.
    pub(crate) fn enqueue(&self, state: &mut ClientState, due: Vec<Due>) {
        let size = self.config.client.batch_size.max(1);
        let mut due = due.into_iter().peekable();
        while due.peek().is_some() {
            let records: Vec<Due> = due.by_ref().take(size).collect();
            // Serialising plain strings and integers cannot fail.
            let body = Bytes::from(serde_json::to_vec(&BatchBody(&records)).unwrap_or_default());
            state.next_key += 1;
            let key = format!("{}-{}", self.key_prefix, state.next_key);
            state.outbox.push_back(Batch {
                key,
                body,
                records,
                reused: false,
            });
        }
    }

    /// Sends the outbox in order until it is empty or a batch cannot be delivered now (it
    /// stays first in the outbox for the next cycle, with the same key and body).
    pub(crate) async fn send_outbox(
        &self,
        state: &mut ClientState,
        now: UnixMillis,
        counts: &mut RetryCounts,
    ) -> Result<Reported, ClientError> {
        let mut reported = Reported::default();
        // A carrier that cannot keep up (`max_reports_per_second`): what one poll interval
        // allows (at least one batch), the rest left in the outbox for later cycles.
        let per_second = u64::from(self.config.misbehaviour.max_reports_per_second);
        let budget = (per_second > 0)
            .then(|| (per_second * self.config.client.poll_interval_ms / 1000).max(1));
        let mut sent = 0u64;
        let url = self
            .base
            .join(paths::CALL_DURATIONS)
            .map_err(|_| ClientError::ForeignLink {
                link: paths::CALL_DURATIONS.to_owned(),
            })?;
        while let Some(batch) = state.outbox.front_mut() {
            if sent > 0 && budget.is_some_and(|b| sent + batch.records.len() as u64 > b) {
                break;
            }
            sent += batch.records.len() as u64;
            let out = Outgoing {
                method: Method::POST,
                url: url.clone(),
                idempotency_key: Some(batch.key.clone()),
                body: Some(batch.body.clone()),
            };
            if self.profile() == Profile::DurIdempotent
                && !batch.reused
                && let Some(previous) = &state.last_key
            {
                // Breaks DUR-IDEMPOTENT on purpose: the previous batch's key with this body.
                batch.reused = true;
                let reused = Outgoing {
                    idempotency_key: Some(previous.clone()),
                    ..out.clone()
                };
                let answer = self.exchange(&reused, counts).await?;
                if answer.status == 200 {
                    self.settle(batch, &answer.body, now, &url, &mut reported)?;
                    reported.batches += 1;
                    state.last_key = Some(batch.key.clone());
                    state.outbox.pop_front();
                    continue;
                }
            }
            let answer = if self.profile() == Profile::DurDuplicate {
                self.exchange_with_new_key_on_loss(state, &out, counts)
                    .await?
            } else {
                self.exchange(&out, counts).await?
            };
            let Some(batch) = state.outbox.front_mut() else {
                break;
            };
            match answer.status {
                200 => self.settle(batch, &answer.body, now, &url, &mut reported)?,
                400 | 422 => {
                    // The batch itself is wrong; sending it again would fail again.
                    let why = format!(
                        "Teams refused the whole batch {} with {}: {}",
                        batch.key,
                        answer.status,
                        String::from_utf8_lossy(&answer.body)
                    );
                    tracing::error!("{why}");
                    let mut ledger = self.shared.lock_ledger();
                    for due in &batch.records {
                        ledger.refused(due);
                    }
                    reported.rejected += batch.records.len() as u64;
                }
                status => {
                    return Err(ClientError::Status {
                        url: url.to_string(),
                        status,
                        problem: oc_protocol::body::from_slice(&answer.body)
                            .ok()
                            .map(Box::new),
                    });
                }
            }
            reported.batches += 1;
            state.last_key = Some(batch.key.clone());
            state.outbox.pop_front();
        }
        Ok(reported)
    }

    /// Breaks DUR-DUPLICATE on purpose: sends the first batch of the outbox once, and when its
    /// answer is a 5xx (lost), gives the batch a new key and sends it under that, with the
    /// usual retries. The body is unchanged, so an applied batch is reported twice.
    async fn exchange_with_new_key_on_loss(
        &self,
        state: &mut ClientState,
        out: &Outgoing,
        counts: &mut RetryCounts,
    ) -> Result<super::transport::Incoming, ClientError> {
        match self.transport.send(out).await {
            Ok(answer) if answer.status == 429 => {
                // Throttled: nothing was applied; wait as asked, then the usual retries.
                counts.throttled += 1;
                let wait = self.throttle_wait(out.url.as_str(), answer.retry_after.as_deref())?;
                tokio::time::sleep(wait).await;
                return self.exchange(out, counts).await;
            }
            Ok(answer) if answer.status < 500 => return Ok(answer),
            Ok(_) => {}
            // Not answered: the usual retries under the same key.
            Err(_) => return self.exchange(out, counts).await,
        }
        state.next_key += 1;
        let key = format!("{}-{}", self.key_prefix, state.next_key);
        if let Some(batch) = state.outbox.front_mut() {
            batch.key.clone_from(&key);
        }
        let renamed = Outgoing {
            idempotency_key: Some(key),
            ..out.clone()
        };
        self.exchange(&renamed, counts).await
    }

    /// Records Teams' 200 answer to `batch` in the ledger.
    fn settle(
        &self,
        batch: &Batch,
        body: &[u8],
        now: UnixMillis,
        url: &reqwest::Url,
        reported: &mut Reported,
    ) -> Result<(), ClientError> {
        let response: DurationReportResponse =
            oc_protocol::body::from_slice(body).map_err(|err| ClientError::Body {
                url: url.to_string(),
                message: format!("{} at {:?}", err.message, err.pointer),
            })?;
        let mut rejected = std::collections::BTreeMap::new();
        for r in &response.rejected {
            let why: Vec<String> = r.errors.iter().map(ToString::to_string).collect();
            rejected.insert(r.index as usize, why.join("; "));
        }
        let mut ledger = self.shared.lock_ledger();
        for (index, due) in batch.records.iter().enumerate() {
            match rejected.remove(&index) {
                Some(why) => {
                    let call_id = &due.record.call_id;
                    crate::server::limits::warn(&super::BAD_FROM_TEAMS, |suppressed| {
                        tracing::warn!(%call_id, %why, suppressed, "Teams rejected a duration record");
                    });
                    ledger.refused(due);
                    reported.rejected += 1;
                }
                None => {
                    ledger.accepted(due, now, &batch.key);
                    reported.accepted += 1;
                }
            }
        }
        Ok(())
    }
}
