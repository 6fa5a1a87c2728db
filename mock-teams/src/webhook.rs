//! The webhook sender: batches number events into notifications of at most 100, signs each,
//! and delivers it at least once — retrying after 1, 2, 4, 8 and 16 s when the carrier does not
//! acknowledge within 5 s — recording every attempt as an exchange. While Teams is down (an
//! outage, `MockTeams::set_outage`) nothing goes out: notifications queue, each attempt waits
//! for the recovery without using up a retry, and the schedule goes on from there.
//!
//! Injected reordering is designed, not left to chance: a held-back notification goes out as
//! soon as a newer event of one of its numbers has been accepted (answered 2xx), so that it is
//! certainly overtaken [NUM-ORDER], or after the configured delay when no newer event comes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use oc_protocol::ids::uuid_from_bits;
use oc_protocol::json_write::write_notification;
use oc_protocol::numbers::MAX_EVENTS_PER_NOTIFICATION;
use oc_protocol::seed::derive;
use oc_protocol::signing::{SIGNATURE_HEADER, Signer};
use oc_protocol::{NumberEvent, format_timestamp};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::{Notify, Semaphore, mpsc};

use crate::exchange::{Exchange, ExchangeDetail, ExchangeDirection, InjectedFault, Recorder};
use crate::faults::{Faults, WebhookClass};
use crate::store::WebhookTarget;

static GAVE_UP: oc_protocol::log_throttle::LogThrottle =
    oc_protocol::log_throttle::LogThrottle::per_ten_seconds();

/// Delivery timing: the protocol's by default; tests shorten them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    /// How long the carrier has to acknowledge (5 s).
    pub ack_timeout: Duration,
    /// The waits before each retry (1, 2, 4, 8, 16 s).
    pub retry_delays: Vec<Duration>,
    /// Notifications in flight at once, over all carriers.
    pub max_in_flight: usize,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            ack_timeout: Duration::from_secs(5),
            retry_delays: [1, 2, 4, 8, 16].map(Duration::from_secs).to_vec(),
            max_in_flight: 32,
        }
    }
}

/// What one delivery attempt came to: a status and body, or why there was none.
pub type AttemptResult = Result<(u16, Vec<u8>), String>;

/// Sends one signed notification; the real one is HTTP (reqwest), tests may script it.
pub trait Transport: Send + Sync + 'static {
    /// POSTs `body` to `url` with the `OC-Signature` header, giving up after `timeout`. The
    /// body is shared: each attempt of a notification sends the same bytes.
    fn post(
        &self,
        url: &str,
        signature: &str,
        body: Arc<Vec<u8>>,
        timeout: Duration,
    ) -> futures_util::future::BoxFuture<'static, AttemptResult>;

    /// Opens up to `connections` connections to `url` ahead of the first posts, within
    /// `timeout`; how many opened. A transport without kept-alive connections opens none.
    fn preopen(
        &self,
        url: &str,
        connections: usize,
        timeout: Duration,
    ) -> futures_util::future::BoxFuture<'static, usize> {
        let _ = (url, connections, timeout);
        Box::pin(async { 0 })
    }
}

/// The HTTP transport: plain `http` webhook URLs through the small client of [`crate::http1`],
/// `https` (and URLs with credentials) through reqwest.
pub(crate) struct HttpTransport {
    client: reqwest::Client,
    plain: Arc<crate::http1::Client>,
    /// The URL last posted to, parsed: a carrier's webhook URL is the same for every attempt,
    /// and parsing it anew each time (IDNA mapping included) was a twentieth of the sender's
    /// time at 4,000 notifications a second.
    parsed: Mutex<Option<(String, Parsed)>>,
}

/// A webhook URL parsed: for reqwest, and for the plain client when it can serve it.
#[derive(Clone)]
struct Parsed {
    url: reqwest::Url,
    plain: Option<Arc<crate::http1::Target>>,
}

impl HttpTransport {
    /// `client` for `https`; plain `http` connects within `connect_timeout` and keeps a
    /// connection idle at most `idle_timeout`, as `client` does.
    pub(crate) fn new(
        client: reqwest::Client,
        connect_timeout: Duration,
        idle_timeout: Duration,
    ) -> Self {
        Self {
            client,
            plain: Arc::new(crate::http1::Client::new(connect_timeout, idle_timeout)),
            parsed: Mutex::new(None),
        }
    }

    /// `url` parsed, from the one kept when it is the last one posted to; `None` when it does
    /// not parse (reqwest then says why).
    fn parse(&self, url: &str) -> Option<Parsed> {
        let mut parsed = self.parsed.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, kept)) = parsed.as_ref().filter(|(text, _)| text == url) {
            return Some(kept.clone());
        }
        let fresh = reqwest::Url::parse(url).ok()?;
        let fresh = Parsed {
            plain: crate::http1::Target::of(&fresh).map(Arc::new),
            url: fresh,
        };
        *parsed = Some((url.to_owned(), fresh.clone()));
        Some(fresh)
    }
}

impl Transport for HttpTransport {
    fn post(
        &self,
        url: &str,
        signature: &str,
        body: Arc<Vec<u8>>,
        timeout: Duration,
    ) -> futures_util::future::BoxFuture<'static, AttemptResult> {
        let parsed = self.parse(url);
        if let Some(target) = parsed.as_ref().and_then(|p| p.plain.clone()) {
            let plain = self.plain.clone();
            let signature = signature.to_owned();
            return Box::pin(async move { plain.post(&target, &signature, &body, timeout).await });
        }
        let request = match parsed {
            Some(parsed) => self.client.post(parsed.url),
            None => self.client.post(url),
        };
        let request = request
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .timeout(timeout)
            .body(body.as_ref().clone());
        Box::pin(async move {
            let started = tokio::time::Instant::now();
            let response = request.send().await.map_err(|e| describe(&e))?;
            let status = response.status().as_u16();
            // The acknowledgement's body is only evidence: read it within what is left of the
            // deadline, and do without it otherwise.
            let left = timeout.saturating_sub(started.elapsed());
            let body = tokio::time::timeout(left, response.bytes())
                .await
                .ok()
                .and_then(Result::ok)
                .map(|b| b.to_vec())
                .unwrap_or_default();
            Ok((status, body))
        })
    }

    fn preopen(
        &self,
        url: &str,
        connections: usize,
        timeout: Duration,
    ) -> futures_util::future::BoxFuture<'static, usize> {
        // reqwest's pool opens its connections as requests need them: only the plain client's
        // are opened ahead.
        let Some(target) = self.parse(url).and_then(|p| p.plain) else {
            return Box::pin(async { 0 });
        };
        let plain = self.plain.clone();
        Box::pin(async move { plain.preopen(&target, connections, timeout).await })
    }
}

/// Events as the sender holds them: shared with whoever else keeps them (a load test's
/// checker), since copying each event's strings for the sender was most of what Teams' store
/// change cost a load generator's thread beyond the change itself.
type Events = Vec<Arc<NumberEvent>>;

/// Events to deliver to one carrier.
struct Batch {
    carrier: String,
    target: WebhookTarget,
    events: Events,
    sim_time: i64,
}

/// Counts what is queued or in flight, so that callers can wait for deliveries to settle.
#[derive(Default)]
struct Outstanding {
    count: AtomicUsize,
    idle: Notify,
    /// Of them, those waiting for Teams to recover from an outage.
    waiting_recovery: AtomicUsize,
}

impl Outstanding {
    fn add(&self, n: usize) {
        self.count.fetch_add(n, Ordering::SeqCst);
    }

    fn done(&self) {
        if self.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }

    /// Waits while Teams is down (bounded by the outage's end), counted as waiting.
    async fn wait_recovery(&self, faults: &Faults) {
        if faults.outage_left().is_none() {
            return;
        }
        self.waiting_recovery.fetch_add(1, Ordering::SeqCst);
        while let Some(left) = faults.outage_left() {
            tokio::time::sleep(left.min(OUTAGE_STEP)).await;
        }
        self.waiting_recovery.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Hands events to the delivery task; cheap to clone.
#[derive(Clone)]
pub struct WebhookSender {
    queue: mpsc::UnboundedSender<Batch>,
    outstanding: Arc<Outstanding>,
    transport: Arc<dyn Transport>,
}

impl WebhookSender {
    /// Starts the delivery task on the current tokio runtime.
    pub(crate) fn spawn(
        transport: Arc<dyn Transport>,
        settings: WebhookSettings,
        recorder: Recorder,
        faults: Arc<Faults>,
        seed: u64,
    ) -> Self {
        let (queue, rx) = mpsc::unbounded_channel();
        let outstanding = Arc::new(Outstanding::default());
        let delivery = Delivery {
            transport: transport.clone(),
            settings: Arc::new(settings),
            recorder,
            faults,
            outstanding: outstanding.clone(),
            ids: ChaCha8Rng::seed_from_u64(derive(seed, &[b"teams/notification-ids"])),
            accepted: Arc::new(Accepted::default()),
            signer: None,
        };
        tokio::spawn(delivery.run(rx));
        Self {
            queue,
            outstanding,
            transport,
        }
    }

    /// Opens up to `connections` connections to the webhook `url` before the first
    /// notifications (a load test's, so that its first ones do not wait for connects), within
    /// `timeout`; how many opened.
    pub async fn preopen(&self, url: &str, connections: usize, timeout: Duration) -> usize {
        self.transport.preopen(url, connections, timeout).await
    }

    /// Queues events for a carrier's webhook; they go out in notifications of at most 100.
    pub(crate) fn send(
        &self,
        carrier: String,
        target: WebhookTarget,
        events: Events,
        sim_time: i64,
    ) {
        if events.is_empty() {
            return;
        }
        self.outstanding.add(1);
        let batch = Batch {
            carrier,
            target,
            events,
            sim_time,
        };
        if self.queue.send(batch).is_err() {
            // The delivery task is gone (the server stopped): nothing will be delivered.
            self.outstanding.done();
        }
    }

    /// Waits until every queued notification was acknowledged or gave up, at most `limit`.
    /// Returns false on time-out.
    pub async fn wait_idle(&self, limit: Duration) -> bool {
        let wait = async {
            loop {
                let idle = self.outstanding.idle.notified();
                if self.outstanding.count.load(Ordering::SeqCst) == 0 {
                    return;
                }
                idle.await;
            }
        };
        tokio::time::timeout(limit, wait).await.is_ok()
    }

    /// How many batches are queued or in flight.
    pub fn outstanding(&self) -> usize {
        self.outstanding.count.load(Ordering::SeqCst)
    }

    /// How many notifications of those are waiting for Teams to recover from an outage.
    pub fn waiting_recovery(&self) -> usize {
        self.outstanding.waiting_recovery.load(Ordering::SeqCst)
    }
}

struct Delivery {
    transport: Arc<dyn Transport>,
    settings: Arc<WebhookSettings>,
    recorder: Recorder,
    faults: Arc<Faults>,
    outstanding: Arc<Outstanding>,
    ids: ChaCha8Rng,
    accepted: Arc<Accepted>,
    /// The last secret signed with and its signer, kept from batch to batch (a carrier's
    /// secret rarely changes; its HMAC key blocks are hashed once, not for every attempt).
    signer: Option<(String, Arc<Signer>)>,
}

/// The highest sequence accepted (answered 2xx) per (carrier, telephone number), so that a
/// held-back notification knows when it has been overtaken. Grows with numbers.
#[derive(Default)]
struct Accepted {
    /// carrier → telephone number → the highest sequence accepted (nested, so that a lookup
    /// allocates no key: this is read and written on every acknowledgement).
    sequences: Mutex<BTreeMap<String, BTreeMap<String, u64>>>,
    changed: Notify,
    /// The numbers that have a notification held back now. A number has at most one, so that
    /// every overtaken event has a newer event of its own that overtook it: a carrier that
    /// skipped that newer one may rightly apply the older, but only one for one, and NUM-ORDER's
    /// count stays exact.
    held: Mutex<BTreeSet<(String, String)>>,
}

/// How long a held-back notification waits after its overtaking one was accepted: the checker
/// reads attempt times at millisecond resolution, and must see the order as certain.
const OVERTAKE_MARGIN: Duration = Duration::from_millis(3);

impl Accepted {
    fn record(&self, carrier: &str, events: &[Arc<NumberEvent>]) {
        let mut sequences = self.sequences.lock().unwrap_or_else(|p| p.into_inner());
        let numbers = match sequences.get_mut(carrier) {
            Some(numbers) => numbers,
            None => sequences.entry(carrier.to_owned()).or_default(),
        };
        for event in events {
            match numbers.get_mut(&event.telephone_number) {
                Some(highest) => *highest = (*highest).max(event.sequence),
                None => {
                    numbers.insert(event.telephone_number.clone(), event.sequence);
                }
            }
        }
        drop(sequences);
        self.changed.notify_waiters();
    }

    /// Whether a newer event of one of `events`' numbers was accepted.
    fn overtakes(&self, carrier: &str, events: &[Arc<NumberEvent>]) -> bool {
        let sequences = self.sequences.lock().unwrap_or_else(|p| p.into_inner());
        let Some(numbers) = sequences.get(carrier) else {
            return false;
        };
        events.iter().any(|e| {
            numbers
                .get(&e.telephone_number)
                .is_some_and(|&highest| highest > e.sequence)
        })
    }

    /// Marks `events`' numbers as held back; false (and nothing marked) when one already is.
    fn hold(&self, carrier: &str, events: &[Arc<NumberEvent>]) -> bool {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let keys: BTreeSet<(String, String)> = events
            .iter()
            .map(|e| (carrier.to_owned(), e.telephone_number.clone()))
            .collect();
        if keys.iter().any(|k| held.contains(k)) {
            return false;
        }
        held.extend(keys);
        true
    }

    fn release(&self, carrier: &str, events: &[Arc<NumberEvent>]) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        for e in events {
            held.remove(&(carrier.to_owned(), e.telephone_number.clone()));
        }
    }

    /// Waits until `events` are overtaken, at most `limit`.
    async fn wait_overtaken(&self, carrier: &str, events: &[Arc<NumberEvent>], limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let changed = self.changed.notified();
            if self.overtakes(carrier, events) {
                tokio::time::sleep(OVERTAKE_MARGIN).await;
                return;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return;
            }
        }
    }
}

/// One notification on its way, with everything its attempts need.
struct Flight {
    transport: Arc<dyn Transport>,
    settings: Arc<WebhookSettings>,
    recorder: Recorder,
    carrier: String,
    target: WebhookTarget,
    /// Signs with `target`'s secret.
    signer: Arc<Signer>,
    /// The notification's id, the same on every attempt.
    notification_id: String,
    /// Its events, as written in `body`.
    events: Events,
    body: Arc<Vec<u8>>,
    sim_time: i64,
    hold_back: Option<InjectedFault>,
    duplicate: bool,
    accepted: Arc<Accepted>,
    faults: Arc<Faults>,
    outstanding: Arc<Outstanding>,
}

/// How often a notification waiting out an outage looks whether Teams is back (an outage can
/// end early).
const OUTAGE_STEP: Duration = Duration::from_millis(100);

impl Delivery {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Batch>) {
        let permits = Arc::new(Semaphore::new(self.settings.max_in_flight.max(1)));
        while let Some(batch) = rx.recv().await {
            // Each fault class goes out in notifications of its own (see `WebhookClass`).
            let by_class: Vec<(WebhookClass, Events)> = if self.faults.splits_webhooks() {
                let mut by_class: BTreeMap<WebhookClass, Events> = BTreeMap::new();
                for event in batch.events {
                    let class = self.faults.webhook_class(&event.telephone_number);
                    by_class.entry(class).or_default().push(event);
                }
                by_class.into_iter().collect()
            } else {
                // One class: the batch as it came (a load test's is one event, a notification
                // a thousandth of a second), without a map and a vector made for it.
                vec![(WebhookClass::Any, batch.events)]
            };
            // The events are moved into their notifications, not copied (each is a handful of
            // strings: copying them was a tenth of a load generator's thread).
            let mut chunks: Vec<(WebhookClass, Events)> = Vec::new();
            for (class, events) in by_class {
                if events.len() <= MAX_EVENTS_PER_NOTIFICATION {
                    chunks.push((class, events));
                    continue;
                }
                // Each event moved once (`split_off` would move the rest again per chunk).
                let mut events = events.into_iter().peekable();
                while events.peek().is_some() {
                    let chunk = events.by_ref().take(MAX_EVENTS_PER_NOTIFICATION).collect();
                    chunks.push((class, chunk));
                }
            }
            let signer = self.signer(&batch.target.secret);
            // One batch may become several notifications; each is outstanding on its own.
            self.outstanding.add(chunks.len());
            self.outstanding.done();
            for (class, events) in chunks {
                let notification_id = uuid_from_bits(self.ids.random());
                let mut body = Vec::with_capacity(512 * events.len() + 128);
                write_notification(
                    &mut body,
                    &notification_id,
                    &format_timestamp(batch.sim_time),
                    &events,
                );
                let body = Arc::new(body);
                let (duplicate, hold_back) = self.faults.on_notification(class);
                let flight = Flight {
                    transport: self.transport.clone(),
                    settings: self.settings.clone(),
                    recorder: self.recorder.clone(),
                    carrier: batch.carrier.clone(),
                    target: batch.target.clone(),
                    signer: signer.clone(),
                    notification_id,
                    events,
                    body,
                    sim_time: batch.sim_time,
                    hold_back,
                    duplicate,
                    accepted: self.accepted.clone(),
                    faults: self.faults.clone(),
                    outstanding: self.outstanding.clone(),
                };
                let permits = permits.clone();
                let outstanding = self.outstanding.clone();
                tokio::spawn(async move {
                    // Queued through an outage without holding a place in flight.
                    outstanding.wait_recovery(&flight.faults).await;
                    // The semaphore is never closed, so acquiring only waits.
                    let _permit = permits.acquire_owned().await;
                    flight.deliver().await;
                    outstanding.done();
                });
            }
        }
    }
}

impl Delivery {
    /// The signer of `secret`: the last one made, when its secret is the same.
    fn signer(&mut self, secret: &str) -> Arc<Signer> {
        match &self.signer {
            Some((last, signer)) if last == secret => signer.clone(),
            _ => {
                let signer = Arc::new(Signer::new(secret.as_bytes()));
                self.signer = Some((secret.to_owned(), signer.clone()));
                signer
            }
        }
    }
}

impl Flight {
    async fn deliver(self) {
        let mut hold_back = self.hold_back;
        if let Some(InjectedFault::WebhookReordered { delay_ms }) = hold_back {
            let events = &self.events;
            if self.accepted.hold(&self.carrier, events) {
                let held = tokio::time::Instant::now();
                self.accepted
                    .wait_overtaken(&self.carrier, events, Duration::from_millis(delay_ms))
                    .await;
                self.accepted.release(&self.carrier, events);
                hold_back = Some(InjectedFault::WebhookReordered {
                    delay_ms: u64::try_from(held.elapsed().as_millis()).unwrap_or(u64::MAX),
                });
            } else {
                hold_back = None;
            }
        }
        let first = self.deliver_with_retries(hold_back).await;
        if self.duplicate && first {
            self.attempt(0, Some(InjectedFault::WebhookDuplicated))
                .await;
        }
    }

    /// Attempts until acknowledged or out of retries; true when acknowledged.
    async fn deliver_with_retries(&self, fault: Option<InjectedFault>) -> bool {
        let retries = self.settings.retry_delays.len();
        for attempt in 0..=retries {
            if attempt > 0 {
                tokio::time::sleep(self.settings.retry_delays[attempt - 1]).await;
            }
            // Teams is down: the attempt waits for its recovery, using up no retry.
            self.outstanding.wait_recovery(&self.faults).await;
            let fault = if attempt == 0 { fault } else { None };
            if self.attempt(attempt as u32, fault).await {
                return true;
            }
        }
        // A carrier that is down makes every notification give up: one line per interval.
        crate::api::limits::warn(&GAVE_UP, |suppressed| {
            tracing::warn!(
                carrier = %self.carrier,
                notification = %self.notification_id,
                suppressed,
                "notification not acknowledged after {retries} retries; giving up"
            );
        });
        false
    }

    /// One POST; true when acknowledged with 200, 202 or 204 in time.
    async fn attempt(&self, attempt: u32, fault: Option<InjectedFault>) -> bool {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let signature = self.signer.sign(
            i64::try_from(wall.as_secs()).unwrap_or(i64::MAX),
            &self.body,
        );
        let started = tokio::time::Instant::now();
        let result = self
            .transport
            .post(
                &self.target.url,
                &signature,
                self.body.clone(),
                self.settings.ack_timeout,
            )
            .await;
        let (status, error, response_body) = match result {
            Ok((status, body)) => (Some(status), None, Some(body)),
            Err(error) => (None, Some(error), None),
        };
        let latency = started.elapsed();
        let acknowledged =
            matches!(status, Some(200 | 202 | 204)) && latency <= self.settings.ack_timeout;
        // Whether this notification goes out again: a duplicate follows an acknowledged first
        // delivery (`Flight::deliver`), a retry an unacknowledged attempt with retries left.
        let duplicated = fault == Some(InjectedFault::WebhookDuplicated);
        let last = duplicated
            || if acknowledged {
                !self.duplicate
            } else {
                attempt as usize >= self.settings.retry_delays.len()
            };
        // Kept only for a held-back notification to wait on: without reordering, a lock and a
        // lookup per acknowledgement (a fortieth of a load generator's thread) for nothing.
        if matches!(status, Some(200 | 202 | 204)) && self.faults.may_hold_back() {
            self.accepted.record(&self.carrier, &self.events);
        }
        self.recorder.record(Exchange {
            seq: 0,
            direction: ExchangeDirection::TeamsToCarrier,
            carrier: Some(self.carrier.clone()),
            method: "POST".into(),
            url: self.target.url.clone(),
            status,
            error,
            sim_time: self.sim_time,
            wall_time_ms: i64::try_from(wall.as_millis()).unwrap_or(i64::MAX),
            latency_us: u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
            request_headers: crate::exchange::webhook_headers(&signature),
            request_body: self.recorder.capture(&self.body),
            response_body: response_body.and_then(|b| self.recorder.capture(&b)),
            fault,
            detail: Some(ExchangeDetail::Webhook {
                notification_id: self.notification_id.clone(),
                attempt,
                event_ids: self.events.iter().map(|e| e.event_id.clone()).collect(),
                last,
            }),
        });
        acknowledged
    }
}

/// A transport error in a few words: time-out, refused, reset.
fn describe(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "no acknowledgement within the deadline".into()
    } else if err.is_connect() {
        format!("could not connect: {err}")
    } else {
        format!("transport error: {err}")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use oc_protocol::NumberAssignmentNotification;

    use super::*;
    use crate::exchange::log_sink;
    use crate::faults::FaultSettings;

    /// Fails the first `failures` attempts, recording when each came (on tokio's clock) and
    /// what it posted (its signature and body).
    struct Scripted {
        failures: usize,
        attempts: Mutex<Vec<tokio::time::Instant>>,
        posted: Mutex<Vec<(String, Arc<Vec<u8>>)>>,
    }

    /// Wall-clock Unix seconds, as a signature's `t` is checked against.
    fn unix_now() -> i64 {
        i64::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        )
        .unwrap()
    }

    impl Scripted {
        fn new(failures: usize) -> Arc<Self> {
            Arc::new(Self {
                failures,
                attempts: Mutex::new(Vec::new()),
                posted: Mutex::new(Vec::new()),
            })
        }
    }

    impl Transport for Arc<Scripted> {
        fn post(
            &self,
            _url: &str,
            signature: &str,
            body: Arc<Vec<u8>>,
            _timeout: Duration,
        ) -> futures_util::future::BoxFuture<'static, AttemptResult> {
            self.posted
                .lock()
                .unwrap()
                .push((signature.to_owned(), body));
            let mut attempts = self.attempts.lock().unwrap();
            attempts.push(tokio::time::Instant::now());
            let fail = attempts.len() <= self.failures;
            Box::pin(async move {
                if fail {
                    Ok((500, Vec::new()))
                } else {
                    Ok((204, Vec::new()))
                }
            })
        }
    }

    fn event(i: u32) -> NumberEvent {
        NumberEvent {
            event_id: uuid_from_bits(u128::from(i)),
            sequence: 1,
            kind: oc_protocol::NumberEventType::Unassigned,
            tenant_id: uuid_from_bits(7),
            telephone_number: format!("+1425555{i:04}"),
            sip_uri: None,
            usage: None,
            assignee: None,
            effective_date_time: format_timestamp(0),
        }
    }

    fn sender(transport: Arc<Scripted>) -> WebhookSender {
        sender_to(transport, log_sink())
    }

    fn sender_to(transport: Arc<Scripted>, sink: crate::exchange::ExchangeSink) -> WebhookSender {
        let recorder = Recorder::new(sink, 1024);
        let faults = Arc::new(Faults::new(FaultSettings::default(), 1));
        WebhookSender::spawn(
            Arc::new(transport),
            WebhookSettings::default(),
            recorder,
            faults,
            1,
        )
    }

    fn target() -> WebhookTarget {
        WebhookTarget {
            url: "http://127.0.0.1:9/hook".into(),
            secret: "s".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_follow_1_2_4_8_16_seconds_then_give_up() {
        let transport = Scripted::new(usize::MAX);
        // Whether each recorded attempt was marked as its notification's last.
        let marks = Arc::new(Mutex::new(Vec::new()));
        let sink: crate::exchange::ExchangeSink = {
            let marks = marks.clone();
            Arc::new(move |e: Exchange| {
                if let Some(ExchangeDetail::Webhook { last, .. }) = e.detail {
                    marks.lock().unwrap().push(last);
                }
            })
        };
        let sender = sender_to(transport.clone(), sink);
        let t0 = tokio::time::Instant::now();
        sender.send("c".into(), target(), vec![Arc::new(event(1))], 0);
        assert!(sender.wait_idle(Duration::from_secs(120)).await);
        let offsets: Vec<u64> = transport
            .attempts
            .lock()
            .unwrap()
            .iter()
            .map(|t| (*t - t0).as_secs())
            .collect();
        assert_eq!(offsets, [0, 1, 3, 7, 15, 31], "first try, then 5 retries");
        let marks = marks.lock().unwrap().clone();
        assert_eq!(
            marks,
            [false, false, false, false, false, true],
            "the last retry"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_notification_goes_out_once_a_newer_event_of_its_number_is_accepted() {
        let accepted = Arc::new(Accepted::default());
        let mut old = event(1);
        old.sequence = 4;
        let held = {
            let accepted = accepted.clone();
            let events = vec![Arc::new(old.clone())];
            tokio::spawn(async move {
                let t0 = tokio::time::Instant::now();
                accepted
                    .wait_overtaken("c", &events, Duration::from_secs(10))
                    .await;
                t0.elapsed()
            })
        };
        tokio::time::sleep(Duration::from_secs(2)).await;
        // The same sequence, another carrier's number: not newer, not this carrier's.
        accepted.record("c", &[Arc::new(old.clone())]);
        let mut newer = old.clone();
        newer.sequence = 5;
        accepted.record("other", &[Arc::new(newer.clone())]);
        tokio::time::sleep(Duration::from_secs(1)).await;
        accepted.record("c", &[Arc::new(newer)]);
        let waited = held.await.unwrap();
        assert_eq!(waited, Duration::from_secs(3) + OVERTAKE_MARGIN);
        // Never overtaken: it goes out after the limit.
        let lonely = vec![Arc::new(event(2))];
        let t0 = tokio::time::Instant::now();
        accepted
            .wait_overtaken("c", &lonely, Duration::from_secs(10))
            .await;
        assert_eq!(t0.elapsed(), Duration::from_secs(10));
    }

    /// Through the sender, with every notification held back: the older event goes out right
    /// after the newer one of its number is acknowledged, not at the end of its delay (the
    /// sender keeps what was acknowledged only when reordering is on, and then it must).
    #[tokio::test(start_paused = true)]
    async fn the_sender_releases_a_held_notification_once_it_is_overtaken() {
        let transport = Scripted::new(0);
        let settings = FaultSettings {
            webhook_reorder_share: 1.0,
            webhook_reorder_delay_ms: 10_000,
            ..FaultSettings::default()
        };
        let sender = WebhookSender::spawn(
            Arc::new(transport.clone()),
            WebhookSettings::default(),
            Recorder::new(log_sink(), 1024),
            Arc::new(Faults::new(settings, 1)),
            1,
        );
        let t0 = tokio::time::Instant::now();
        let old = event(1);
        let mut newer = event(1);
        newer.event_id = uuid_from_bits(99);
        newer.sequence = 2;
        sender.send("c".into(), target(), vec![Arc::new(old.clone())], 0);
        tokio::time::sleep(Duration::from_millis(100)).await;
        // The number already has a notification held: this one goes out at once.
        sender.send("c".into(), target(), vec![Arc::new(newer.clone())], 0);
        assert!(sender.wait_idle(Duration::from_secs(60)).await);
        let sent: Vec<String> = (transport.posted.lock().unwrap().iter())
            .map(|(_, body)| {
                let n: NumberAssignmentNotification = serde_json::from_slice(body).unwrap();
                n.events[0].event_id.clone()
            })
            .collect();
        assert_eq!(sent, [newer.event_id, old.event_id], "overtaken");
        let last = *transport.attempts.lock().unwrap().last().unwrap();
        assert!(
            last - t0 < Duration::from_secs(1),
            "released {:?} after the start, not at the end of its 10-s delay",
            last - t0
        );
    }

    /// Real time (the outage is on the wall clock), short delays; ordering asserted, not speed.
    #[tokio::test]
    async fn notifications_queue_through_an_outage_then_retry_on_schedule() {
        let transport = Scripted::new(1);
        let faults = Arc::new(Faults::new(FaultSettings::default(), 1));
        let sender = WebhookSender::spawn(
            Arc::new(transport.clone()),
            WebhookSettings {
                retry_delays: [50, 100].map(Duration::from_millis).to_vec(),
                ..WebhookSettings::default()
            },
            Recorder::new(log_sink(), 1024),
            faults.clone(),
            1,
        );
        let outage = Duration::from_millis(400);
        let back = tokio::time::Instant::now() + outage;
        faults.set_outage(Some(std::time::Instant::now() + outage));
        sender.send("c".into(), target(), vec![Arc::new(event(1))], 0);
        sender.send("c".into(), target(), vec![Arc::new(event(2))], 0);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            transport.attempts.lock().unwrap().is_empty(),
            "Teams is down"
        );
        assert_eq!(sender.outstanding(), 2, "both queued");
        assert_eq!(sender.waiting_recovery(), 2);
        assert!(sender.wait_idle(Duration::from_secs(10)).await);
        let attempts = transport.attempts.lock().unwrap().clone();
        // Both went out after the recovery; the one that failed was retried 50 ms later, and
        // the outage used up none of its retries.
        assert_eq!(attempts.len(), 3, "{attempts:?}");
        assert!(attempts.iter().all(|t| *t >= back), "{attempts:?}");
        assert!(attempts[2] - attempts[0] >= Duration::from_millis(50));
    }

    #[tokio::test(start_paused = true)]
    async fn an_acknowledged_retry_ends_delivery() {
        let transport = Scripted::new(2);
        let sender = sender(transport.clone());
        sender.send("c".into(), target(), vec![Arc::new(event(1))], 0);
        assert!(sender.wait_idle(Duration::from_secs(120)).await);
        assert_eq!(transport.attempts.lock().unwrap().len(), 3);
    }

    /// Plain `http` goes through the small client, `https` through reqwest and TLS: the same
    /// plain server acknowledges the first and cannot complete the second's handshake.
    #[tokio::test]
    async fn https_webhooks_go_through_tls_and_plain_ones_through_the_small_client() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    if socket.read(&mut buf).await.unwrap_or(0) > 0 {
                        let answer =
                            b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok";
                        let _ = socket.write_all(answer).await;
                    }
                });
            }
        });
        let timeout = Duration::from_secs(5);
        let transport = HttpTransport::new(reqwest::Client::new(), timeout, Duration::from_secs(2));
        let plain = transport
            .post(
                &format!("http://{addr}/hook"),
                "t=1,v1=ab",
                Arc::new(b"{}".to_vec()),
                timeout,
            )
            .await;
        assert_eq!(plain, Ok((200, b"ok".to_vec())));
        let tls = transport
            .post(
                &format!("https://{addr}/hook"),
                "t=1,v1=ab",
                Arc::new(b"{}".to_vec()),
                timeout,
            )
            .await;
        assert!(tls.is_err(), "a TLS handshake with a plain server: {tls:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn events_go_out_in_notifications_of_at_most_100() {
        let transport = Scripted::new(0);
        let sender = sender(transport.clone());
        let events: Vec<NumberEvent> = (0..250).map(event).collect();
        sender.send(
            "c".into(),
            target(),
            events.iter().cloned().map(Arc::new).collect(),
            0,
        );
        assert!(sender.wait_idle(Duration::from_secs(10)).await);
        assert_eq!(sender.outstanding(), 0);
        let posted = transport.posted.lock().unwrap().clone();
        let now = unix_now();
        let mut sent = Vec::new();
        let mut sizes = Vec::new();
        for (signature, body) in &posted {
            // Each notification signed with the carrier's secret over its own body.
            oc_protocol::signing::verify(Some(signature), target().secret.as_bytes(), body, now)
                .unwrap();
            let notification: NumberAssignmentNotification = serde_json::from_slice(body).unwrap();
            sizes.push(notification.events.len());
            sent.extend(notification.events);
        }
        assert_eq!(sizes, [100, 100, 50]);
        assert_eq!(sent, events, "every event once, in order");
    }

    /// The sender keeps its last secret's signer: a batch for a carrier with another secret
    /// is signed with that one, and the first secret's batches again with the first.
    #[tokio::test(start_paused = true)]
    async fn each_batch_is_signed_with_its_own_carriers_secret() {
        let transport = Scripted::new(0);
        let sender = sender(transport.clone());
        let other = WebhookTarget {
            secret: "another secret".into(),
            ..target()
        };
        let secrets = [target(), other.clone(), other, target()].map(|t| t.secret);
        for (i, secret) in (0u32..).zip(&secrets) {
            let to = WebhookTarget {
                secret: secret.clone(),
                ..target()
            };
            sender.send("c".into(), to, vec![Arc::new(event(i))], 0);
            // One at a time, so that the posts come in the order sent.
            assert!(sender.wait_idle(Duration::from_secs(10)).await);
        }
        let posted = transport.posted.lock().unwrap().clone();
        assert_eq!(posted.len(), secrets.len());
        let now = unix_now();
        for ((signature, body), secret) in posted.iter().zip(&secrets) {
            assert_eq!(
                oc_protocol::signing::verify(Some(signature), secret.as_bytes(), body, now),
                Ok(()),
                "signed with {secret:?}"
            );
        }
    }
}
