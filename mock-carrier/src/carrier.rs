//! `MockCarrier`: the carrier API server and the client loop, started together and driven by
//! the caller (the harness, a test, or `serve`'s timer) with simulated time.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use oc_protocol::{CarrierNumberView, UnixMillis};
use reqwest::Url;

use crate::client::transport::{IoRuntime, Transport};
use crate::client::{Client, CycleOutcome};
use crate::config::CarrierConfig;
use crate::errors::{ClientError, StartError};
use crate::ledger::SwitchRecord;
use crate::shared::Shared;
use crate::truth::{CallTruth, GroundTruth};

/// A running mock carrier.
///
/// Its HTTP server and its requests to Teams run on threads of its own, so it can be driven
/// from any Tokio runtime, including an actix `System` and a test's paused clock. Simulated
/// time is only ever the `now` passed in; the only clock read inside is the wall clock that
/// webhook signatures are checked against (PROTOCOL.md 1).
pub struct MockCarrier {
    shared: Arc<Shared>,
    client: Client,
    addr: SocketAddr,
    server: ServerHandle,
    /// Dropped last: it stops the server and ends the I/O thread.
    _io: IoRuntime,
}

impl MockCarrier {
    /// Checks `config`, binds its `listen` address and starts serving the carrier API.
    pub fn start(config: CarrierConfig) -> Result<Self, StartError> {
        let problems = config.problems();
        if !problems.is_empty() {
            return Err(StartError::Config { problems });
        }
        let base = Url::parse(&config.teams.base_url).map_err(|err| StartError::Setup {
            what: "Teams base URL",
            message: err.to_string(),
        })?;
        let listener = TcpListener::bind(&config.listen).map_err(|source| StartError::Bind {
            addr: config.listen.clone(),
            source,
        })?;
        let setup = |what: &'static str| {
            move |err: std::io::Error| StartError::Setup {
                what,
                message: err.to_string(),
            }
        };
        listener.set_nonblocking(true).map_err(setup("listener"))?;
        let addr = listener.local_addr().map_err(setup("listener"))?;
        let io = IoRuntime::start().map_err(setup("I/O runtime"))?;
        let timeout = Duration::from_millis(config.client.request_timeout_ms);
        let transport =
            Transport::new(io.handle().clone(), &config.teams.token, timeout).map_err(|err| {
                StartError::Setup {
                    what: "HTTP client",
                    message: err.to_string(),
                }
            })?;
        let workers = config.workers;
        let shared = Arc::new(Shared::new(config));
        let (tx, rx) = std::sync::mpsc::channel();
        let server_shared = Arc::clone(&shared);
        // Built on the I/O thread: that thread has a Tokio runtime and no actix System, so the
        // workers get threads of their own whatever runtime the caller is on.
        io.handle().spawn(async move {
            match crate::server::build(listener, workers, server_shared) {
                Ok((server, handle)) => {
                    let _ = tx.send(Ok(handle));
                    if let Err(err) = server.await {
                        tracing::error!(error = %err, "the carrier API server failed");
                    }
                }
                Err(err) => {
                    let _ = tx.send(Err(err));
                }
            }
        });
        let server = rx
            .recv_timeout(Duration::from_secs(30))
            .map_err(|err| StartError::Setup {
                what: "HTTP server",
                message: err.to_string(),
            })?
            .map_err(setup("HTTP server"))?;
        io.set_server(server.clone());
        let client = Client::new(Arc::clone(&shared), transport, base);
        tracing::info!(%addr, profile = %shared.config.misbehaviour.profile, "mock carrier listening");
        Ok(Self {
            shared,
            client,
            addr,
            server,
            _io: io,
        })
    }

    /// The address the carrier API listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The carrier API's base URL, `http://<addr>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &CarrierConfig {
        &self.shared.config
    }

    /// One poll cycle at simulated time `now`: follows the CDR feed from the kept deltaLink
    /// to its end, computes each new or corrected call's switch view through the drift models,
    /// reports the durations due at `now` in batches of up to 1000, then follows the quality
    /// feed to its end. Cycles never overlap: a second call waits for the first.
    pub async fn poll_cycle(&self, now: UnixMillis) -> Result<CycleOutcome, ClientError> {
        self.client.poll_cycle(now, false).await
    }

    /// `GET /oc/v1/numbers`, all pages, into the carrier's number view; returns how many
    /// numbers Teams listed.
    pub async fn resync(&self) -> Result<u64, ClientError> {
        self.client.resync().await
    }

    /// For the end of a run: reads the CDR feed once more, then reports everything still held
    /// back (held reports, duplicates, corrections) as of simulated time `now`.
    pub async fn flush(&self, now: UnixMillis) -> Result<CycleOutcome, ClientError> {
        self.client.poll_cycle(now, true).await
    }

    /// The ground truth as it stands.
    pub fn ground_truth(&self) -> GroundTruth {
        self.shared.ground_truth()
    }

    /// Hands `f` the ground truth of every call as it stands, one at a time in call-id order,
    /// without collecting it: for a checker that folds a long run. The carrier's ledger stays
    /// locked while `f` runs.
    pub fn with_ground_truth_calls<R>(
        &self,
        f: impl FnOnce(&mut dyn Iterator<Item = CallTruth>) -> R,
    ) -> R {
        self.shared.with_call_truths(f)
    }

    /// Hands `f` every call the carrier's switch recorded, one at a time in the order the
    /// calls reached the carrier, without collecting them: its CDR export. A call the switch
    /// dropped is absent; a fabricated call, and one on a number that was not assigned, is
    /// there (the switch recorded it). The ledger stays locked while `f` runs.
    pub fn with_switch_records<R>(
        &self,
        f: impl FnOnce(&mut dyn Iterator<Item = SwitchRecord<'_>>) -> R,
    ) -> R {
        let ledger = self.shared.lock_ledger();
        f(&mut ledger.switch_records())
    }

    /// Heap bytes held by the carrier's call ledger: the memory that grows with calls (its
    /// calls are kept for the ground truth, until retired).
    pub fn ledger_heap_bytes(&self) -> usize {
        self.shared.lock_ledger().heap_bytes()
    }

    /// How many calls the carrier's ledger holds (retired ones are not held).
    pub fn ledger_calls(&self) -> usize {
        self.shared.ledger_len()
    }

    /// How many changes of its numbers the carrier's view holds, over all numbers (what
    /// [`MockCarrier::retire_settled`] forgets once no call can ask about them).
    pub fn number_changes_held(&self) -> usize {
        self.shared.lock_numbers().changes_held()
    }

    /// Retires from the ledger the calls settled (their last report accepted, nothing of them
    /// pending) at least `retire_after_ms` before simulated time `now`: their truth stays in
    /// the ground truth's counts (`retired`), no longer in its list, and forgets the number
    /// changes superseded before both that time and every leg held. For a long-running
    /// `serve`, whose memory would otherwise grow with every call; returns how many.
    pub fn retire_settled(&self, now: UnixMillis) -> usize {
        self.shared.retire_settled(now)
    }

    /// Hands `f` a test of whether nothing more can happen to a call on the carrier's side
    /// (nothing of it due, held back or unanswered; a call the carrier does not have counts
    /// as final), with the ledger locked while `f` runs: what a run asks before Teams closes
    /// a call, so that a call closes on both sides at once.
    pub fn with_finality<R>(&self, f: impl FnOnce(&dyn Fn(&str) -> bool) -> R) -> R {
        self.shared.with_finality(f)
    }

    /// Closes the calls `call_ids`, which Teams closed once they were final here: returns the
    /// ground truth of each (`None` when the ledger does not have it, or reconciliation does
    /// not cover it), in order. A closed call is no longer in [`MockCarrier::ground_truth`],
    /// [`MockCarrier::with_ground_truth_calls`] or the switch records; its memory is given
    /// back once closed calls are half the ledger.
    pub fn close_calls<'a>(
        &self,
        call_ids: impl IntoIterator<Item = &'a str>,
    ) -> Vec<Option<CallTruth>> {
        self.shared.close_calls(call_ids)
    }

    /// The carrier's view of one number, as its state probe serves it.
    pub fn number_view(&self, telephone_number: &str) -> Option<CarrierNumberView> {
        self.shared.lock_numbers().view(telephone_number)
    }

    /// Stops the server gracefully: requests in flight are answered (for up to 5 s), new
    /// connections are refused.
    pub async fn stop(&self) {
        self.server.stop(true).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn its_futures_are_send_so_they_can_be_spawned_on_any_runtime() {
        fn is_send<T: Send>(_: &T) {}
        fn check(carrier: &MockCarrier) {
            is_send(&carrier.poll_cycle(0));
            is_send(&carrier.flush(0));
            is_send(&carrier.resync());
        }
        is_send(&check);
    }
}
