//! The Teams side of the Operator Connect data exchange (PROTOCOL.md section 3 and the webhook
//! of 2.1), as a real HTTP server on actix-web with an in-memory store that the harness drives.
//!
//! [`MockTeams::start`] binds the Teams API and starts the webhook sender; the harness then
//! registers carriers, numbers and calls, advances the simulated clock, and reads the
//! reconciliation and every exchange (through the [`ExchangeSink`] it passed in).

mod api;
pub mod config;
mod cursor;
pub mod exchange;
pub mod faults;
mod http1;
mod ratelimit;
pub mod store;
mod tls;
pub mod traffic;
pub mod webhook;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpServer, web};
use oc_protocol::{NumberEvent, ReconClass, ReconciliationItem, ReconciliationSummary, UnixMillis};

pub use exchange::{
    Exchange, ExchangeDetail, ExchangeDirection, ExchangeSink, HarnessCall, HarnessCalls,
    InjectedFault,
};
pub use faults::FaultSettings;
pub use ratelimit::RateLimit;
pub use store::{
    Assignment, CallView, CarrierSpec, ClosedCall, ClosedCalls, NewCall, ReportedCall, Store,
    StoreError, StoreSettings, StreamQuality, TeamsCall, WebhookTarget,
};
pub use tls::TlsFiles;
pub use webhook::{WebhookSender, WebhookSettings};

/// How to start the Teams side.
#[derive(Clone)]
pub struct TeamsOptions {
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// The base URL of issued links, when the server is reached through another name
    /// (a proxy, TLS termination); by default the bound address.
    pub public_url: Option<String>,
    /// Without `public_url`, build links from each request's `Forwarded`, `X-Forwarded-Host`
    /// and `Host` headers instead of the bound address. Only behind a proxy that sets them:
    /// otherwise any client can make the server hand out links to a host of its choosing.
    pub trust_forwarded_headers: bool,
    /// Bounds on request bodies in flight and on connections per client address.
    pub limits: oc_protocol::limits::ServerLimits,
    /// HTTP worker threads.
    pub workers: usize,
    /// The store's settings.
    pub store: StoreSettings,
    /// The simulated time the clock starts at.
    pub start_time: UnixMillis,
    /// Injected faults.
    pub faults: FaultSettings,
    /// Webhook delivery timing.
    pub webhooks: WebhookSettings,
    /// Where exchanges go.
    pub sink: ExchangeSink,
    /// Bodies kept in exchanges are cut at this many bytes.
    pub body_capture_limit: usize,
    /// Serve HTTPS with these files; plain HTTP when none (loopback only, PROTOCOL.md 0).
    pub tls: Option<TlsFiles>,
    /// Answer `429` with `Retry-After` to a caller that sends faster than this; no limit when
    /// none.
    pub rate_limit: Option<RateLimit>,
}

impl TeamsOptions {
    /// Options for a server on a free loopback port, starting at `start_time`, with no faults.
    pub fn loopback(start_time: UnixMillis) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_url: None,
            trust_forwarded_headers: false,
            limits: oc_protocol::limits::ServerLimits::default(),
            workers: 2,
            store: StoreSettings::default(),
            start_time,
            faults: FaultSettings::default(),
            webhooks: WebhookSettings::default(),
            sink: exchange::log_sink(),
            body_capture_limit: 8 * 1024,
            tls: None,
            rate_limit: None,
        }
    }
}

/// Why the Teams side could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The address could not be bound.
    #[error("failed to listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A setting is out of range.
    #[error("invalid settings: {0}")]
    Settings(String),
    /// The HTTP client for webhooks could not be built.
    #[error("failed to build the webhook client")]
    Client(#[source] reqwest::Error),
    /// A TLS file could not be read or used; the message names the file and what is wrong.
    #[error("{message}")]
    Tls {
        /// The file.
        path: PathBuf,
        /// What is wrong, e.g. "no private key found in /etc/oc/key.pem (…)".
        message: String,
    },
}

/// Why [`MockTeams::pstn_call_log_pages`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum CallLogError {
    /// The carrier is not known.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A page could not be written.
    #[error("failed to write a page of the call log")]
    Write(#[source] std::io::Error),
}

/// A change of a number's assignment, for [`MockTeams::apply_changes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumberChange {
    /// Assign an unassigned number.
    Assign {
        /// The number.
        telephone_number: String,
        /// Its SIP URI, usage and assignee.
        assignment: Assignment,
    },
    /// Change an assigned number's SIP URI, usage or assignee.
    Update {
        /// The number.
        telephone_number: String,
        /// The new assignment.
        assignment: Assignment,
    },
    /// Remove an assignment.
    Unassign {
        /// The number.
        telephone_number: String,
    },
}

/// The running Teams side.
pub struct MockTeams {
    state: web::Data<api::AppState>,
    sender: WebhookSender,
    server: actix_web::dev::ServerHandle,
    addr: SocketAddr,
    scheme: &'static str,
}

impl MockTeams {
    /// Binds the Teams API and starts the webhook sender on the current tokio runtime.
    pub async fn start(options: TeamsOptions) -> Result<Self, StartError> {
        options.faults.check().map_err(StartError::Settings)?;
        if let Some(limit) = &options.rate_limit {
            limit.check().map_err(StartError::Settings)?;
        }
        if let Some((key, message)) = options.limits.problems().into_iter().next() {
            return Err(StartError::Settings(format!("limits.{key} {message}")));
        }
        // Before anything is started, so that a bad file leaves nothing running.
        let tls = options
            .tls
            .as_ref()
            .map(TlsFiles::server_config)
            .transpose()?;
        let seed = options.store.seed;
        let store_settings = StoreSettings {
            publish_every_ms: i64::try_from(options.faults.publish_every_ms).unwrap_or(i64::MAX),
            ..options.store.clone()
        };
        let store = Arc::new(Mutex::new(Store::new(store_settings, options.start_time)));
        let faults = Arc::new(faults::Faults::new(options.faults.clone(), seed));
        let recorder = exchange::Recorder::new(options.sink.clone(), options.body_capture_limit);
        let state = web::Data::new(api::AppState {
            store,
            cursors: cursor::CursorCodec::new(seed),
            faults: faults.clone(),
            recorder: recorder.clone(),
            rate_limiter: options.rate_limit.map(ratelimit::RateLimiter::new),
            links: api::LinkBase::new(options.public_url.clone(), options.trust_forwarded_headers),
            guard: api::limits::Guard::new(&options.limits, "the server"),
        });
        let connect_timeout = Duration::from_secs(5);
        // Drop idle connections well before a carrier's keep-alive (actix-web's is 5 s) can
        // close them: reusing one just as the server closes it fails the attempt, and that
        // would be blamed on the carrier [NUM-ACK].
        let idle_timeout = Duration::from_secs(2);
        let client = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .pool_idle_timeout(idle_timeout)
            .build()
            .map_err(StartError::Client)?;
        let transport = Arc::new(webhook::HttpTransport::new(
            client,
            connect_timeout,
            idle_timeout,
        ));
        let sender =
            WebhookSender::spawn(transport, options.webhooks.clone(), recorder, faults, seed);
        let app_state = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .configure(api::configure)
        })
        // Every connection gets a slot to count it against its client address's cap.
        .on_connect(api::limits::on_connect)
        .workers(options.workers.max(1))
        .disable_signals()
        .shutdown_timeout(2)
        // The client may be a real carrier system on the network, slow or hostile. Connections
        // are served asynchronously, so a stalled one holds no worker, but it does hold a socket
        // and a slot of `max_connections`: these bound how long. A request head must arrive
        // within 5 s (else 408; bodies have their own deadline in `api`), an idle keep-alive
        // connection is closed after 5 s, a TLS handshake must finish within 3 s, and a client
        // that does not close after a connection-closing response is cut off after 1 s.
        .client_request_timeout(Duration::from_secs(5))
        .keep_alive(Duration::from_secs(5))
        .tls_handshake_timeout(Duration::from_secs(3))
        .client_disconnect_timeout(Duration::from_secs(1));
        let server = match tls {
            Some(config) => server.bind_rustls_0_23(options.listen, config),
            None => server.bind(options.listen),
        }
        .map_err(|source| StartError::Bind {
            addr: options.listen,
            source,
        })?;
        let addr = server.addrs().first().copied().unwrap_or(options.listen);
        let scheme = if options.tls.is_some() {
            "https"
        } else {
            "http"
        };
        state.links.bound(format!("{scheme}://{addr}"));
        if addr.ip().is_unspecified() && options.public_url.is_none() {
            tracing::warn!(
                %addr,
                "listening on every interface without public_url: links will name {addr}; \
                 set public_url to the name clients use"
            );
        }
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(Self {
            state,
            sender,
            server: handle,
            addr,
            scheme,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`, or `https://<addr>` with TLS: the Teams base URL a carrier calls.
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Runs `f` with the store locked. Keep it short: requests wait meanwhile.
    pub fn with_store<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        f(&mut self.state.store())
    }

    /// Registers a carrier.
    pub fn add_carrier(&self, spec: CarrierSpec) -> Result<(), StoreError> {
        self.with_store(|s| s.add_carrier(spec))
    }

    /// Applies assignment changes at the current simulated time and queues their events, one
    /// batch per carrier (notifications of at most 100 events). Each change succeeds or fails
    /// on its own; the results are in the order given.
    pub fn apply_changes(
        &self,
        changes: Vec<NumberChange>,
    ) -> Vec<Result<NumberEvent, StoreError>> {
        self.apply_changes_sent_at(changes, None)
            .into_iter()
            .map(|result| result.map(Arc::unwrap_or_clone))
            .collect()
    }

    /// [`MockTeams::apply_changes`], the notifications recorded as meant to be sent at
    /// `sent_at` (their `sentDateTime` and their exchanges' simulated time) rather than at the
    /// current simulated time: a load test measures each acknowledgement from when the
    /// notification was meant to go out. Each event is shared with the webhook sender, not
    /// copied for it: a load test hands it on to its checker as it is.
    pub fn apply_changes_sent_at(
        &self,
        changes: Vec<NumberChange>,
        sent_at: Option<UnixMillis>,
    ) -> Vec<Result<Arc<NumberEvent>, StoreError>> {
        let mut store = self.state.store();
        let now = sent_at.unwrap_or_else(|| store.now());
        let mut outgoing: Vec<(String, Vec<Arc<NumberEvent>>)> = Vec::new();
        let results = changes
            .into_iter()
            .map(|change| {
                let (carrier, event) = match change {
                    NumberChange::Assign {
                        telephone_number,
                        assignment,
                    } => store.assign(&telephone_number, assignment),
                    NumberChange::Update {
                        telephone_number,
                        assignment,
                    } => store.update(&telephone_number, assignment),
                    NumberChange::Unassign { telephone_number } => {
                        store.unassign(&telephone_number)
                    }
                }?;
                let event = Arc::new(event);
                match outgoing.iter_mut().find(|(c, _)| *c == carrier) {
                    Some((_, events)) => events.push(event.clone()),
                    None => outgoing.push((carrier, vec![event.clone()])),
                }
                Ok(event)
            })
            .collect();
        for (carrier, events) in outgoing {
            let target = store
                .carriers()
                .find(|c| c.id == carrier)
                .and_then(|c| c.webhook.clone());
            if let Some(target) = target {
                self.sender.send(carrier, target, events, now);
            }
        }
        results
    }

    /// Adds a call (see [`Store::add_call`]).
    pub fn add_call(&self, call: NewCall) -> Result<(), StoreError> {
        self.with_store(|s| s.add_call(call))
    }

    /// Promises that no call starting before `t` will be added (see
    /// [`Store::forget_assignments_before`]).
    pub fn forget_assignments_before(&self, t: UnixMillis) {
        self.with_store(|s| s.forget_assignments_before(t));
    }

    /// Moves the simulated clock forward, publishing what became available.
    pub fn advance_to(&self, to: UnixMillis) -> Result<(), StoreError> {
        self.with_store(|s| s.advance_to(to))
    }

    /// The simulated time.
    pub fn now(&self) -> UnixMillis {
        self.with_store(|s| s.now())
    }

    /// A carrier's reconciliation over calls started in `[from, to)`.
    pub fn reconciliation(
        &self,
        carrier_id: &str,
        from: UnixMillis,
        to: UnixMillis,
    ) -> Result<ReconciliationSummary, StoreError> {
        self.with_store(|s| s.reconcile(carrier_id, from, to))
    }

    /// Every call the carrier reported, with what Teams received (facts, no verdict).
    pub fn reported_calls(&self, carrier_id: &str) -> Result<Vec<ReportedCall>, StoreError> {
        self.with_store(|s| Ok(s.reported_calls(s.carrier_id_index(carrier_id)?)))
    }

    /// Every reconciled call of a class, in call order.
    pub fn reconciliation_items(
        &self,
        carrier_id: &str,
        class: ReconClass,
        from: UnixMillis,
        to: UnixMillis,
    ) -> Result<Vec<ReconciliationItem>, StoreError> {
        self.with_store(|s| {
            let c = s.carrier_id_index(carrier_id)?;
            let (items, _) = s.reconciliation_items(
                c,
                class,
                (from, to),
                store::recon::ItemsPosition::Calls(0),
                usize::MAX,
            );
            Ok(items)
        })
    }

    /// Where the harness records its own calls to the carrier, beside Teams' exchanges.
    pub fn harness_calls(&self) -> HarnessCalls {
        HarnessCalls(self.state.recorder.clone())
    }

    /// The `seq` the next exchange will get: exchanges recorded from now on have this one or
    /// higher (the harness marks poll cycles with it).
    pub fn next_exchange_seq(&self) -> u64 {
        self.state.recorder.next_seq()
    }

    /// Every quality record of a carrier's feed as the store renders it now, in feed order
    /// (without the misclassifications injected into served pages).
    pub fn quality_records(
        &self,
        carrier_id: &str,
    ) -> Result<Vec<oc_protocol::QualityRecord>, StoreError> {
        self.with_store(|s| {
            let c = s.carrier_id_index(carrier_id)?;
            Ok(s.quality_records(c))
        })
    }

    /// Every page of a carrier's Graph call log over `window`
    /// (`GET …/getPstnCalls(fromDateTime=…,toDateTime=…)`, PROTOCOL.md 3.6) as the endpoint
    /// would serve it to that carrier now: the same rows, the same bytes, nextLinks to this
    /// server. Each page's JSON body goes to `each` in order; the store is locked for one page
    /// at a time, so nothing of the whole window is held. Returns how many pages there were.
    pub fn pstn_call_log_pages(
        &self,
        carrier_id: &str,
        window: oc_protocol::graph::PstnCallsWindow,
        mut each: impl FnMut(&[u8]) -> std::io::Result<()>,
    ) -> Result<u64, CallLogError> {
        let carrier = self.with_store(|s| s.carrier_id_index(carrier_id))?;
        let limit = api::graph::page_limit(self.state.faults.settings().page_cap);
        let base = self.state.links.configured();
        let mut position = 0;
        let mut pages = 0;
        // Every page but the last moves past at least one call, so the calls bound the pages.
        loop {
            let page = api::graph::page_body(
                &self.state.store(),
                &self.state.cursors,
                &base,
                carrier,
                window,
                (position, limit),
            );
            each(&page.body).map_err(CallLogError::Write)?;
            pages += 1;
            match page.next_position {
                Some(next) if next > position => position = next,
                _ => return Ok(pages),
            }
        }
    }

    /// Takes the Teams API down for `length` from now (every request answered `503` with
    /// `Retry-After`, recorded as an injected fault), or brings it back with `None`. Webhooks
    /// queue meanwhile and go out after the recovery, each with its retries still to use
    /// (PROTOCOL 2.1).
    pub fn set_outage(&self, length: Option<Duration>) {
        self.state
            .faults
            .set_outage(length.map(|l| std::time::Instant::now() + l));
    }

    /// When the record at `position` of a carrier's `feed` (`cdr` or `quality`) became
    /// available, if the feed has it.
    pub fn feed_available(
        &self,
        carrier_id: &str,
        feed: &str,
        position: u64,
    ) -> Option<UnixMillis> {
        self.with_store(|s| s.feed_available(carrier_id, feed, position))
    }

    /// The webhook sender, to wait for deliveries to settle.
    pub fn webhooks(&self) -> &WebhookSender {
        &self.sender
    }

    /// Stops accepting requests and finishes the ones in flight.
    pub async fn stop(&self) {
        self.server.stop(true).await;
    }
}
