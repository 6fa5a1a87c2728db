//! The client loop against Teams: resynchronising numbers, following the CDR and quality
//! change feeds, and reporting durations (PROTOCOL.md 3).

mod feed;
mod report;
mod retry;
pub(crate) mod transport;

use std::collections::VecDeque;
use std::sync::Arc;

use oc_protocol::{CallRecord, TeamsNumber, UnixMillis, Validate, paths};
use reqwest::Url;
use serde::Serialize;

use crate::config::CarrierConfig;
use crate::errors::ClientError;
use crate::ledger::Ledger;
use crate::profile::Profile;
use crate::shared::Shared;
use feed::{FeedKind, Items};
use report::Batch;
use retry::RetryCounts;
use transport::Transport;

use crate::server::limits::warn;

/// What Teams sends that cannot be used (a hostile or broken Teams can send a million): logged a
/// few times an interval, with a count of the rest.
pub(crate) static BAD_FROM_TEAMS: oc_protocol::log_throttle::LogThrottle =
    oc_protocol::log_throttle::LogThrottle::per_ten_seconds();

/// Numbers a resync takes per hold of the number book's lock.
const RESYNC_CHUNK: usize = 256;

/// What one poll cycle (or a flush) did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CycleOutcome {
    /// CDR pages read.
    pub cdr_pages: u32,
    /// CDRs read (including repeats and corrections).
    pub cdr_records: u64,
    /// Whether the quality feed was read to its end.
    pub quality_read: bool,
    /// Quality pages read.
    pub quality_pages: u32,
    /// Quality records read.
    pub quality_records: u64,
    /// Duration batches Teams answered.
    pub batches: u32,
    /// Duration records Teams accepted.
    pub accepted: u64,
    /// Duration records Teams rejected.
    pub rejected: u64,
    /// 429 answers waited out.
    pub throttled: u32,
    /// Requests sent again after a 5xx or a transport error.
    pub retried: u32,
    /// Calls that may still have something to report.
    pub pending: usize,
    /// Batches formed but not yet acknowledged.
    pub outbox: usize,
}

/// The client loop's own state: the kept links and the outbox.
#[derive(Debug, Default)]
pub(crate) struct ClientState {
    cdr_delta: Option<String>,
    quality_delta: Option<String>,
    pub(crate) outbox: VecDeque<Batch>,
    pub(crate) next_key: u64,
    /// The key of the last batch Teams answered (for the `DUR-IDEMPOTENT` profile).
    pub(crate) last_key: Option<String>,
    cycles: u64,
}

/// The client of the Teams API.
pub(crate) struct Client {
    pub(crate) config: Arc<CarrierConfig>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) transport: Transport,
    pub(crate) base: Url,
    pub(crate) key_prefix: String,
    state: tokio::sync::Mutex<ClientState>,
}

impl Client {
    pub(crate) fn new(shared: Arc<Shared>, transport: Transport, base: Url) -> Self {
        let config = Arc::new(shared.config.clone());
        let key_prefix = config.key_prefix();
        Self {
            config,
            shared,
            transport,
            base,
            key_prefix,
            state: tokio::sync::Mutex::new(ClientState::default()),
        }
    }

    pub(crate) fn profile(&self) -> Profile {
        self.config.misbehaviour.profile
    }

    fn start_url(&self, path: &str) -> Result<Url, ClientError> {
        self.base.join(path).map_err(|_| ClientError::ForeignLink {
            link: path.to_owned(),
        })
    }

    /// Where a chain of `path` starts without a link: with the configured `pageSize`, if any
    /// (fewer, larger pages: fewer round trips a cycle). Links are followed as given.
    fn chain_start_url(&self, path: &str) -> Result<Url, ClientError> {
        let mut url = self.start_url(path)?;
        if let Some(size) = self.config.client.page_size {
            url.query_pairs_mut()
                .append_pair("pageSize", &size.to_string());
        }
        Ok(url)
    }

    /// `GET /oc/v1/numbers`, every page, into the number book; returns how many numbers.
    pub(crate) async fn resync(&self) -> Result<u64, ClientError> {
        let mut counts = RetryCounts::default();
        let mut numbers = Vec::new();
        let chain = self
            .read_chain(
                FeedKind::Numbers,
                self.chain_start_url(paths::NUMBERS)?,
                false,
                &mut counts,
                &mut |_, items| {
                    for item in items.raw() {
                        match oc_protocol::body::from_slice::<TeamsNumber>(item.get().as_bytes()) {
                            Ok(n) if n.validate().is_ok() => numbers.push(n),
                            Ok(n) => warn(&BAD_FROM_TEAMS, |suppressed| {
                                tracing::warn!(number = %n.telephone_number, suppressed, "invalid number in /numbers");
                            }),
                            Err(err) => warn(&BAD_FROM_TEAMS, |suppressed| {
                                tracing::warn!(error = %err, suppressed, "unreadable number in /numbers");
                            }),
                        }
                    }
                },
            )
            .await?;
        // A few hundred numbers a lock: the webhook handlers wait on this lock, and holding it
        // for the whole inventory (45 ms for 50,000 numbers) stalled every notification in
        // flight meanwhile. Each number is taken on its own terms (its sequence against the
        // carrier's), so an event applied between two chunks is never undone.
        for chunk in numbers.chunks(RESYNC_CHUNK) {
            let mut book = self.shared.lock_numbers();
            for n in chunk {
                book.resync(n);
            }
        }
        tracing::info!(
            numbers = numbers.len(),
            pages = chain.pages,
            known = self.shared.lock_numbers().len(),
            "resynchronised"
        );
        Ok(numbers.len() as u64)
    }

    /// One poll cycle at simulated time `now`: the CDR feed, then the reports due and, beside
    /// them, the quality feed (it shares nothing with the reports, and Teams renders its pages
    /// on another connection meanwhile). The quality feed is read after the CDR feed's end, not
    /// beside it: a checker that sees only the wire takes the span between two ends of the CDR
    /// feed for one poll cycle, and a quality chain straddling an end would be cut in two. Each
    /// step runs even when another failed; the first error (in that order) is returned.
    pub(crate) async fn poll_cycle(
        &self,
        now: UnixMillis,
        flush: bool,
    ) -> Result<CycleOutcome, ClientError> {
        let mut state = self.state.lock().await;
        let mut counts = RetryCounts::default();
        let mut quality_counts = RetryCounts::default();
        let mut outcome = CycleOutcome::default();
        let cdrs = self.read_cdrs(&mut state, &mut counts, &mut outcome).await;
        let (quality_delta, cycles) = (state.quality_delta.clone(), state.cycles);
        let (reports, quality) = futures_util::join!(
            self.report(&mut state, now, flush, &mut counts, &mut outcome),
            async {
                if flush {
                    Ok(None)
                } else {
                    self.read_quality(quality_delta.as_deref(), cycles, &mut quality_counts)
                        .await
                }
            }
        );
        let quality = quality.map(|chain| {
            if let Some(chain) = chain {
                outcome.quality_read = true;
                outcome.quality_pages = chain.pages;
                outcome.quality_records = chain.records;
                state.quality_delta = chain.delta_link;
            }
        });
        state.cycles += 1;
        outcome.throttled = counts.throttled + quality_counts.throttled;
        outcome.retried = counts.retried + quality_counts.retried;
        outcome.pending = self.shared.lock_ledger().pending_len();
        outcome.outbox = state.outbox.len();
        tracing::debug!(?outcome, "poll cycle");
        cdrs.and(reports).and(quality).map(|()| outcome)
    }

    async fn read_cdrs(
        &self,
        state: &mut ClientState,
        counts: &mut RetryCounts,
        outcome: &mut CycleOutcome,
    ) -> Result<(), ClientError> {
        let (start, is_link) = match &state.cdr_delta {
            Some(link) => (self.resolve_link(link)?, true),
            None => (self.chain_start_url(paths::CDRS_DELTA)?, false),
        };
        let skip = (self.profile() == Profile::DurComplete)
            .then_some(self.config.misbehaviour.skip_page_index);
        let shared = &self.shared;
        let drift = shared.drift_settings();
        let chain = self
            .read_chain(
                FeedKind::Cdrs,
                start,
                is_link,
                counts,
                &mut |index, items| {
                    // Breaks DUR-COMPLETE on purpose when this is the page to drop.
                    let skipped = skip == Some(index);
                    let mut ledger = shared.lock_ledger();
                    let assigned = |n: &str, at: UnixMillis| shared.assigned_at(n, at);
                    let take = |ledger: &mut Ledger, record: &CallRecord<&str>| {
                        if record.validate().is_ok() {
                            ledger.ingest_cdr(record, skipped, &drift, &assigned);
                        } else {
                            warn(&BAD_FROM_TEAMS, |suppressed| {
                                tracing::warn!(call_id = %record.call_id, suppressed, "invalid CDR skipped");
                            });
                            ledger.malformed_cdrs += 1;
                        }
                    };
                    let raw = match items {
                        Items::Cdrs(records) => {
                            for record in records {
                                take(&mut ledger, record);
                            }
                            return;
                        }
                        other => other.raw(),
                    };
                    for item in raw {
                        let bytes = item.get().as_bytes();
                        // Borrowed from the page; a text with a JSON escape cannot be, and is
                        // read into `String`s instead.
                        let read = match serde_json::from_slice::<CallRecord<&str>>(bytes) {
                            Ok(record) => {
                                take(&mut ledger, &record);
                                Ok(())
                            }
                            Err(_) => oc_protocol::body::from_slice::<CallRecord>(bytes)
                                .map(|record| take(&mut ledger, &record.borrowed())),
                        };
                        if let Err(err) = read {
                            warn(&BAD_FROM_TEAMS, |suppressed| {
                                tracing::warn!(error = %err, suppressed, "unreadable CDR skipped");
                            });
                            ledger.malformed_cdrs += 1;
                        }
                    }
                },
            )
            .await?;
        outcome.cdr_pages = chain.pages;
        outcome.cdr_records = chain.records;
        state.cdr_delta = chain.delta_link;
        Ok(())
    }

    /// Reads the quality feed from `delta` (its kept deltaLink), in the carrier's cycle
    /// `cycles`; `None` when the `QUA-FEED` profile no longer reads it.
    async fn read_quality(
        &self,
        delta: Option<&str>,
        cycles: u64,
        counts: &mut RetryCounts,
    ) -> Result<Option<feed::Chain>, ClientError> {
        if self.profile() == Profile::QuaFeed
            && cycles >= u64::from(self.config.misbehaviour.quality_full_cycles)
        {
            // Breaks QUA-FEED on purpose: the feed is no longer read at all.
            return Ok(None);
        }
        let (start, is_link) = match delta {
            Some(link) => (self.resolve_link(link)?, true),
            None => (self.chain_start_url(paths::QUALITY_DELTA)?, false),
        };
        // The carrier keeps no quality data: reading the feed to its end is what the protocol
        // asks; the records themselves are for troubleshooting.
        self.read_chain(FeedKind::Quality, start, is_link, counts, &mut |_, _| {})
            .await
            .map(Some)
    }

    async fn report(
        &self,
        state: &mut ClientState,
        now: UnixMillis,
        flush: bool,
        counts: &mut RetryCounts,
        outcome: &mut CycleOutcome,
    ) -> Result<(), ClientError> {
        // A flush takes up to three rounds: a duplicate is only due once its first report is
        // acknowledged, and a correction once the record before it is.
        let rounds = if flush { 3 } else { 1 };
        for _ in 0..rounds {
            let due = {
                let shared = &self.shared;
                let assigned = |n: &str, at: UnixMillis| shared.assigned_at(n, at);
                let horizon = if flush { UnixMillis::MAX } else { now };
                shared.lock_ledger().take_due(horizon, &assigned)
            };
            let nothing_due = due.is_empty();
            self.enqueue(state, due);
            let reported = self.send_outbox(state, now, counts).await?;
            outcome.batches += reported.batches;
            outcome.accepted += reported.accepted;
            outcome.rejected += reported.rejected;
            if nothing_due {
                break;
            }
        }
        Ok(())
    }
}
