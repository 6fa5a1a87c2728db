//! The Teams API over HTTP (actix-web): rate limiting, authentication, fault injection,
//! problem+json errors, bounded bodies, and an exchange recorded for every request, whatever its
//! fate.

pub(crate) mod graph;
mod handlers;
pub(crate) mod limits;

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use oc_protocol::problem::{PROBLEM_CONTENT_TYPE, ProblemKind};
use oc_protocol::{FieldError, Problem, paths};

use crate::cursor::CursorCodec;
use crate::exchange::{Exchange, ExchangeDetail, ExchangeDirection, InjectedFault, Recorder};
use crate::faults::{Faults, RequestFault};
use crate::ratelimit::RateLimiter;
use crate::store::Store;

/// What every handler shares.
pub(crate) struct AppState {
    pub(crate) store: Arc<Mutex<Store>>,
    pub(crate) cursors: CursorCodec,
    pub(crate) faults: Arc<Faults>,
    pub(crate) recorder: Recorder,
    /// Flood protection; none lets every request through.
    pub(crate) rate_limiter: Option<RateLimiter>,
    /// Where links point.
    pub(crate) links: LinkBase,
    /// Connections per client address, and request bodies in flight.
    pub(crate) guard: limits::Guard,
}

/// The base of the links this server issues, e.g. `http://127.0.0.1:8080`: the configured
/// public URL, else the bound address. A request's own `Host` or `X-Forwarded-Host` is used
/// only when the configuration trusts them; otherwise any client could make the server hand
/// out links to a host of its choosing.
pub(crate) struct LinkBase {
    public_url: Option<String>,
    trust_forwarded_headers: bool,
    bound: OnceLock<String>,
}

impl LinkBase {
    pub(crate) fn new(public_url: Option<String>, trust_forwarded_headers: bool) -> Self {
        Self {
            public_url: public_url.map(|url| url.trim_end_matches('/').to_owned()),
            trust_forwarded_headers,
            bound: OnceLock::new(),
        }
    }

    /// Sets the bound address's base, once the listener is bound.
    pub(crate) fn bound(&self, base: String) {
        let _ = self.bound.set(base);
    }

    /// The base of links issued outside a request (an export): the public URL, else the bound
    /// address.
    pub(crate) fn configured(&self) -> String {
        match (&self.public_url, self.bound.get()) {
            (Some(url), _) => url.clone(),
            (None, Some(base)) => base.clone(),
            (None, None) => String::new(),
        }
    }

    fn base(&self, req: &HttpRequest) -> String {
        if let Some(url) = &self.public_url {
            return url.clone();
        }
        if self.trust_forwarded_headers {
            let info = req.connection_info();
            return format!("{}://{}", info.scheme(), info.host());
        }
        match self.bound.get() {
            Some(base) => base.clone(),
            // Served before the address was known: only in tests without a listener.
            None => format!("http://{}", req.app_config().local_addr()),
        }
    }
}

impl AppState {
    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        // A panic while holding the lock cannot leave a half-applied change: every store
        // operation checks before it changes anything. So a poisoned lock is still usable.
        match self.store.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The base of the links this server issues, e.g. `http://127.0.0.1:8080`.
    pub(crate) fn base_url(&self, req: &HttpRequest) -> String {
        self.links.base(req)
    }
}

/// A successful answer: status, JSON body and what it was about.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) body: Vec<u8>,
    pub(crate) detail: Option<ExchangeDetail>,
}

impl Reply {
    pub(crate) fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> Self {
        Self {
            status,
            body: serde_json::to_vec(value).unwrap_or_default(),
            detail: None,
        }
    }

    /// A reply whose JSON body is already written.
    pub(crate) fn json_body(status: StatusCode, body: Vec<u8>) -> Self {
        Self {
            status,
            body,
            detail: None,
        }
    }

    pub(crate) fn with_detail(mut self, detail: ExchangeDetail) -> Self {
        self.detail = Some(detail);
        self
    }
}

/// A refusal, boxed: it travels through every handler's `Err`.
pub(crate) type Refusal = Box<Rejection>;

/// A refusal: the problem, and what it was about.
pub(crate) struct Rejection {
    pub(crate) problem: Problem,
    pub(crate) retry_after_secs: Option<u64>,
    pub(crate) detail: Option<ExchangeDetail>,
    /// Close the connection after answering: a request refused unread.
    pub(crate) close_connection: bool,
}

impl From<Problem> for Box<Rejection> {
    fn from(problem: Problem) -> Self {
        Box::new(Rejection {
            problem,
            retry_after_secs: None,
            detail: None,
            close_connection: false,
        })
    }
}

pub(crate) fn problem(kind: ProblemKind, detail: impl Into<String>) -> Refusal {
    Problem::new(kind, detail).into()
}

pub(crate) fn bad_parameter(name: &str, message: impl Into<String>) -> Refusal {
    Problem::validation(vec![FieldError::at_parameter(name, message)]).into()
}

/// The request as a handler sees it: who called, and the body.
pub(crate) struct Call<'a> {
    pub(crate) carrier: u16,
    pub(crate) req: &'a HttpRequest,
    pub(crate) body: &'a [u8],
}

/// Which endpoint, for throttling windows and logs.
pub(crate) type Endpoint = &'static str;

/// Runs one request through the connection cap, the rate limit, authentication, the body,
/// faults and the handler, and records it.
pub(crate) async fn serve(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
    endpoint: Endpoint,
    handler: fn(&AppState, &Call<'_>) -> Result<Reply, Refusal>,
) -> HttpResponse {
    let started = Instant::now();
    let wall_time_ms = wall_ms();
    let answer =
        match admit(&state, &req).or_else(|| rate_limit(&state, &req, Some(endpoint), started)) {
            Some(refused) => refused,
            None => answer(&state, &req, payload, endpoint, handler, started).await,
        };
    respond(&state, &req, started, wall_time_ms, answer)
}

/// What became of a request, before it is turned into a response and recorded.
struct Answer {
    outcome: Result<Reply, Refusal>,
    carrier: Option<String>,
    request_body: Option<String>,
    fault: Option<InjectedFault>,
}

/// The connection cap, before any other work: `503` when the client's address holds the most
/// connections allowed. `None` lets the request through.
fn admit(state: &AppState, req: &HttpRequest) -> Option<Answer> {
    let refusal = state.guard.admit(req).err()?;
    Some(Answer {
        outcome: Err(refusal.into()),
        carrier: None,
        request_body: None,
        fault: None,
    })
}

/// Flood protection, before any other work (the body is not even read): `429` when the
/// caller's bucket is empty. `None` lets the request through.
fn rate_limit(
    state: &AppState,
    req: &HttpRequest,
    endpoint: Option<Endpoint>,
    now: Instant,
) -> Option<Answer> {
    let limiter = state.rate_limiter.as_ref()?;
    let caller = bearer_token(req).ok().and_then(|token| {
        let store = state.store();
        let carrier = store.authenticate(token)?;
        Some((
            carrier,
            store.carriers[usize::from(carrier)].spec.id.clone(),
        ))
    });
    let wait = limiter.take(caller.as_ref().map(|(c, _)| *c), now).err()?;
    let retry_after_secs = crate::ratelimit::retry_after_secs(wait);
    // To the client a 429 is a 429, whoever sent it: it MUST NOT call this endpoint again before
    // the delay has passed [CDR-THROTTLE]. Requests without a valid token belong to no carrier,
    // and unrouted paths to no endpoint: no window for those.
    let early_by = match (&caller, endpoint) {
        (Some((carrier, _)), Some(endpoint)) => state.faults.hold_off(
            *carrier,
            endpoint,
            now,
            std::time::Duration::from_secs(retry_after_secs),
        ),
        _ => None,
    };
    Some(Answer {
        outcome: Err(Box::new(Rejection {
            retry_after_secs: Some(retry_after_secs),
            detail: early_by.map(|early_by| ExchangeDetail::EarlyAfterThrottle {
                early_by_ms: u64::try_from(early_by.as_millis()).unwrap_or(u64::MAX),
            }),
            ..*problem(
                ProblemKind::TooManyRequests,
                format!("rate limit exceeded: retry after {retry_after_secs} s"),
            )
        })),
        carrier: caller.map(|(_, name)| name),
        request_body: None,
        fault: Some(InjectedFault::RateLimited { retry_after_secs }),
    })
}

/// Authentication, the body, injected faults and the handler, in that order: a request
/// without a valid token is refused before a byte of its body is read, so anonymous clients
/// hold nothing of the server's memory.
async fn answer(
    state: &AppState,
    req: &HttpRequest,
    payload: web::Payload,
    endpoint: Endpoint,
    handler: fn(&AppState, &Call<'_>) -> Result<Reply, Refusal>,
    started: Instant,
) -> Answer {
    let mut fault = None;
    let mut carrier_name = None;
    let mut request_body = None;
    let outcome = match authenticate(state, req) {
        Err(refusal) => Err(refusal),
        Ok(carrier) => match limits::read_body(&state.guard, req, payload).await {
            Err(refusal) => Err(refusal),
            Ok(body) => {
                request_body = state.recorder.capture(&body.bytes);
                carrier_name = Some(state.store().carriers[usize::from(carrier)].spec.id.clone());
                match state.faults.on_request(carrier, endpoint, started) {
                    RequestFault::None => {
                        let latency = state.faults.settings().latency_ms;
                        if latency > 0 {
                            fault = Some(InjectedFault::Latency { ms: latency });
                            tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
                        }
                        let outcome = handler(
                            state,
                            &Call {
                                carrier,
                                req,
                                body: &body.bytes,
                            },
                        );
                        match outcome {
                            Ok(reply) if applied_report(&reply) && state.faults.lose_answer() => {
                                fault = Some(InjectedFault::AnswerLost { status: 503 });
                                Err(lost_answer(reply))
                            }
                            other => other,
                        }
                    }
                    RequestFault::Throttle { retry_after_secs } => {
                        fault = Some(InjectedFault::Throttled { retry_after_secs });
                        Err(Box::new(Rejection {
                            retry_after_secs: Some(retry_after_secs),
                            ..*problem(
                                ProblemKind::TooManyRequests,
                                format!("throttled: retry after {retry_after_secs} s"),
                            )
                        }))
                    }
                    RequestFault::Outage { retry_after_secs } => {
                        fault = Some(InjectedFault::ServerError { status: 503 });
                        Err(Box::new(Rejection {
                            retry_after_secs: Some(retry_after_secs),
                            ..*problem(
                                ProblemKind::Unavailable,
                                format!("Teams is down: retry after {retry_after_secs} s"),
                            )
                        }))
                    }
                    RequestFault::Error => {
                        fault = Some(InjectedFault::ServerError { status: 503 });
                        Err(problem(
                            ProblemKind::Unavailable,
                            "injected fault: nothing was done; retry later",
                        ))
                    }
                    RequestFault::TooEarly { early_by } => {
                        let left = early_by.as_secs() + u64::from(early_by.subsec_nanos() > 0);
                        Err(Box::new(Rejection {
                            retry_after_secs: Some(left),
                            detail: Some(ExchangeDetail::EarlyAfterThrottle {
                                early_by_ms: u64::try_from(early_by.as_millis())
                                    .unwrap_or(u64::MAX),
                            }),
                            ..*problem(
                                ProblemKind::TooManyRequests,
                                format!(
                                    "sent before the Retry-After delay passed; wait {left} s more"
                                ),
                            )
                        }))
                    }
                }
            }
        },
    };
    Answer {
        outcome,
        carrier: carrier_name,
        request_body,
        fault,
    }
}

/// Whether a reply is a duration report Teams has just applied (not a replay): the one
/// answer Teams loses on purpose (`FaultSettings::answer_loss_every`).
fn applied_report(reply: &Reply) -> bool {
    matches!(
        reply.detail,
        Some(ExchangeDetail::DurationReport {
            replayed: false,
            ..
        })
    )
}

/// A `503` in place of an applied report's answer. The problem says only what a client may
/// know after a lost answer: the outcome is unknown, so retry the same request. The exchange
/// keeps the report's detail, so that the checker knows it was applied.
fn lost_answer(reply: Reply) -> Refusal {
    Box::new(Rejection {
        retry_after_secs: Some(1),
        detail: reply.detail,
        ..*problem(
            ProblemKind::Unavailable,
            "the outcome of this request is unknown: retry it with the same Idempotency-Key \
             and the same body",
        )
    })
}

/// Turns an answer into the HTTP response, and records the exchange.
fn respond(
    state: &AppState,
    req: &HttpRequest,
    started: Instant,
    wall_time_ms: i64,
    answer: Answer,
) -> HttpResponse {
    let (response, status, response_body, detail) = match answer.outcome {
        Ok(reply) => {
            let response = HttpResponse::build(reply.status)
                .content_type("application/json")
                .body(reply.body.clone());
            (response, reply.status, reply.body, reply.detail)
        }
        Err(refusal) => {
            let status = StatusCode::from_u16(refusal.problem.status)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut builder = HttpResponse::build(status);
            // Graph's paths answer as Graph does, so that a Graph client reads every error.
            let body = if graph::is_graph_path(req.path()) {
                builder.content_type("application/json");
                graph::error_body(&refusal.problem)
            } else {
                builder.content_type(PROBLEM_CONTENT_TYPE);
                serde_json::to_vec(&refusal.problem).unwrap_or_default()
            };
            if let Some(secs) = refusal.retry_after_secs {
                builder.insert_header((header::RETRY_AFTER, secs.to_string()));
            }
            if status == StatusCode::UNAUTHORIZED {
                builder.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            if refusal.close_connection {
                builder.force_close();
            }
            (builder.body(body.clone()), status, body, refusal.detail)
        }
    };
    record(
        state,
        req,
        answer.carrier,
        started,
        wall_time_ms,
        Recorded {
            status,
            request_body: answer.request_body,
            response_body: &response_body,
            fault: answer.fault,
            detail,
        },
    );
    response
}

struct Recorded<'a> {
    status: StatusCode,
    request_body: Option<String>,
    response_body: &'a [u8],
    fault: Option<InjectedFault>,
    detail: Option<ExchangeDetail>,
}

fn record(
    state: &AppState,
    req: &HttpRequest,
    carrier: Option<String>,
    started: Instant,
    wall_time_ms: i64,
    r: Recorded<'_>,
) {
    let headers = req
        .headers()
        .iter()
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)));
    let url = match req.uri().query() {
        Some(q) => format!("{}?{q}", req.path()),
        None => req.path().to_owned(),
    };
    let sim_time = state.store().now();
    state.recorder.record(Exchange {
        seq: 0,
        direction: ExchangeDirection::CarrierToTeams,
        carrier,
        method: req.method().to_string(),
        url,
        status: Some(r.status.as_u16()),
        error: None,
        sim_time,
        wall_time_ms,
        latency_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        request_headers: crate::exchange::masked_headers(headers),
        request_body: r.request_body,
        response_body: state.recorder.capture(r.response_body),
        fault: r.fault,
        detail: r.detail,
    });
}

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The carrier of the bearer token [SEC-ISOLATION]: 401 when missing or unknown.
fn authenticate(state: &AppState, req: &HttpRequest) -> Result<u16, Refusal> {
    let token = bearer_token(req)?;
    state
        .store()
        .authenticate(token)
        .ok_or_else(|| problem(ProblemKind::Unauthorized, "the bearer token is not known"))
}

/// The token of `Authorization: Bearer <token>`: 401 when missing or of another form.
fn bearer_token(req: &HttpRequest) -> Result<&str, Refusal> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Err(problem(
            ProblemKind::Unauthorized,
            "the Authorization header is missing; send Authorization: Bearer <token>",
        ));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    token.ok_or_else(|| {
        problem(
            ProblemKind::Unauthorized,
            "the Authorization header must be Bearer <token>",
        )
    })
}

/// 404 for any path the API does not have.
async fn not_found(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let problem = Problem::new(
        ProblemKind::NotFound,
        format!(
            "no such path: {}; the Teams API lives under /oc/v1, and Graph's call log at \
             {}(fromDateTime=…,toDateTime=…)",
            req.path(),
            paths::GRAPH_PSTN_CALLS
        ),
    );
    refuse_unrouted(&state, &req, problem, None)
}

/// 405 for a path the API has, with a method it does not take there.
async fn method_not_allowed(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let allowed = if req.path() == paths::CALL_DURATIONS {
        "POST"
    } else {
        "GET, HEAD"
    };
    let problem = Problem::new(
        ProblemKind::MethodNotAllowed,
        format!(
            "{} is not allowed on {}; use {allowed}",
            req.method(),
            req.path()
        ),
    );
    refuse_unrouted(&state, &req, problem, Some(allowed))
}

/// Answers a request no endpoint takes (after the rate limit, which floods of these are subject
/// to as well), with `Allow` when given.
fn refuse_unrouted(
    state: &AppState,
    req: &HttpRequest,
    problem: Problem,
    allow: Option<&'static str>,
) -> HttpResponse {
    let started = Instant::now();
    let wall_time_ms = wall_ms();
    let answer = admit(state, req)
        .or_else(|| rate_limit(state, req, None, started))
        .unwrap_or(Answer {
            outcome: Err(problem.into()),
            carrier: None,
            request_body: None,
            fault: None,
        });
    let refused_as_asked = answer.fault.is_none();
    let mut response = respond(state, req, started, wall_time_ms, answer);
    if let Some(allow) = allow.filter(|_| refused_as_asked) {
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allow));
    }
    response
}

/// The routes of the Teams API. `HEAD` is served wherever `GET` is, as `GET` without the
/// body (actix-web leaves the body out of a `HEAD` answer and keeps its length).
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    use handlers::*;
    let get = |path: &'static str,
               endpoint: Endpoint,
               h: fn(&AppState, &Call<'_>) -> Result<Reply, Refusal>| {
        web::resource(path)
            .route(
                web::route()
                    .guard(
                        actix_web::guard::Any(actix_web::guard::Get()).or(actix_web::guard::Head()),
                    )
                    .to(move |s, r, p| serve(s, r, p, endpoint, h)),
            )
            .default_service(web::to(method_not_allowed))
    };
    cfg.service(get(paths::NUMBERS, "numbers", numbers))
        .service(get(paths::CDRS_DELTA, "cdrs/delta", cdrs_delta))
        .service(get(paths::CDRS, "cdrs", cdrs_window))
        .service(get(paths::QUALITY_DELTA, "quality/delta", quality_delta))
        .service(get(paths::RECONCILIATION, "reconciliation", reconciliation))
        .service(get(
            paths::RECONCILIATION_ITEMS,
            "reconciliation/items",
            reconciliation_items,
        ))
        .service(get(
            "/v1.0/communications/callRecords/{function}",
            "graph/getPstnCalls",
            graph::pstn_calls,
        ))
        .service(
            web::resource(paths::CALL_DURATIONS)
                .route(web::post().to(|s, r, p| serve(s, r, p, "call-durations", call_durations)))
                .default_service(web::to(method_not_allowed)),
        )
        .default_service(web::to(not_found));
}
