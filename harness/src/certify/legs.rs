//! The certification legs (PROTOCOL.md 2.3): what the carrier's switches would have recorded
//! for each answered call, posted to its call-legs hook once the call has ended; and legs on
//! numbers that were not assigned at their connect time, which the carrier must not report
//! [DUR-UNEXPECTED].
//!
//! A leg differs from Teams' record as a real switch's would: every end moves by up to
//! [`LEG_JITTER_MS`] either way (within any sensible tolerance), and a seeded share of them by
//! the scenario's `leg_drift` (beyond it), so that reconciliation has both `matched` and
//! `drift` to show while DUR-FIDELITY holds the carrier to the leg itself.

use std::time::Duration;

use actix::{
    Actor, ActorFutureExt, AtomicResponse, Context, Handler, MessageResult, Recipient,
    ResponseActFuture, WrapFuture,
};
use mock_teams::{HarnessCalls, NewCall};
use oc_observe::ExchangeDetail;
use oc_protocol::legs::{CallLeg, CallLegBatch, MAX_LEGS_PER_REQUEST};
use oc_protocol::signing::{SIGNATURE_HEADER, sign};
use oc_protocol::{AssignmentState, UnixMillis, format_timestamp, parse_timestamp, paths};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::actors::actor_rng;
#[cfg(test)]
use crate::actors::messages::MadeLegs;
use crate::actors::messages::{
    FinishLegs, LegsPosted, PendingLegs, PostDueLegs, TickPlayed, TickStarted,
};
use crate::checker::history::LegFact;
use crate::run::recorded::{Answer, Recording, Request, send_until_answered, wall_secs};
use crate::run::{CARRIER_ID, RunError, Sides};
use crate::scenario::CertificationSpec;

/// How long after its connect a leg on an unassigned number is posted, ms.
pub(crate) const UNASSIGNED_LEG_DELAY_MS: i64 = 15_000;
/// How far every leg's end may be from Teams' record, either way, ms.
pub(crate) const LEG_JITTER_MS: i64 = 250;
/// The longest one post to the hook may take.
const POST_TIMEOUT: Duration = Duration::from_secs(5);
/// The most of the hook's answer read.
const ANSWER_LIMIT: usize = 64 * 1024;
/// Posts that fail in a row before the harness stops posting: a hook that hangs would
/// otherwise cost [`POST_TIMEOUT`] every tick and stretch the certification past its limit.
const FAILURES_BEFORE_GIVING_UP: u32 = 3;
/// The most time posts that fail can cost before the harness gives up on the hook.
pub(crate) const GIVING_UP_LIMIT: Duration =
    Duration::from_secs(5 * FAILURES_BEFORE_GIVING_UP as u64);

/// The legs of a certification: made from Teams' calls, posted when they end.
pub(crate) struct Legs {
    rng: ChaCha8Rng,
    spec: CertificationSpec,
    url: String,
    secret: String,
    client: reqwest::Client,
    /// Where each post is recorded as an exchange, so that rules can cite it.
    calls: HarnessCalls,
    /// The checker, told of each leg before it is posted.
    checker: Recipient<LegsPosted>,
    /// Made and not yet posted, each with when it is posted.
    pending: Vec<(UnixMillis, LegFact)>,
    /// Posted, in order.
    posted: Vec<LegFact>,
    /// Why posts failed, one line each.
    failures: Vec<String>,
    failed_in_a_row: u32,
    unassigned_made: u32,
}

impl Legs {
    pub(crate) fn new(
        seed: u64,
        spec: CertificationSpec,
        carrier_url: &str,
        secret: &str,
        calls: HarnessCalls,
        checker: Recipient<LegsPosted>,
    ) -> Self {
        Self {
            calls,
            checker,
            rng: actor_rng(seed, "legs"),
            spec,
            url: format!("{carrier_url}{}", paths::CALL_LEGS),
            secret: secret.to_owned(),
            client: reqwest::Client::builder()
                .timeout(POST_TIMEOUT)
                .connect_timeout(POST_TIMEOUT)
                .build()
                .unwrap_or_default(),
            pending: Vec::new(),
            posted: Vec::new(),
            failures: Vec::new(),
            failed_in_a_row: 0,
            unassigned_made: 0,
        }
    }

    /// Makes the leg of every answered call, in order.
    pub(crate) fn add_calls(&mut self, calls: &[NewCall]) {
        for call in calls {
            let Some(connect) = call.connect else {
                continue;
            };
            let mut end = call.end + self.rng.random_range(-LEG_JITTER_MS..=LEG_JITTER_MS);
            if self
                .rng
                .random_bool(self.spec.leg_drift_share.clamp(0.0, 1.0))
            {
                end += self.spec.leg_drift_ms;
            }
            let end = end.max(connect);
            self.pending.push((
                end,
                LegFact {
                    call_id: call.call_id.clone(),
                    telephone_number: call.telephone_number.clone(),
                    connect,
                    end,
                    assigned: true,
                },
            ));
        }
    }

    /// How many legs on unassigned numbers are due by tick `index` of `ticks`: spread evenly.
    pub(crate) fn unassigned_due(&self, index: u64, ticks: u64) -> u32 {
        let total = u64::from(self.spec.unassigned_legs);
        let due = (index + 1) * total / ticks.max(1);
        u32::try_from(due)
            .unwrap_or(u32::MAX)
            .saturating_sub(self.unassigned_made)
    }

    /// Makes a leg on one of `candidates` (numbers Teams has unassigned, with when they became
    /// so), connected in the tick `from..to` after that, a short call ending by `to`. Connecting
    /// inside the unassigned span, however short, means such a leg can always be made, so the
    /// case is exercised on every run. It is posted [`UNASSIGNED_LEG_DELAY_MS`] after its
    /// connect, so that the carrier has certainly been told of the unassignment (a
    /// notification may be held back or retried for seconds), and its view at the connect time
    /// is Teams'.
    pub(crate) fn add_unassigned(
        &mut self,
        candidates: &[(String, UnixMillis)],
        call_prefix: &str,
        from: UnixMillis,
        to: UnixMillis,
    ) {
        if candidates.is_empty() {
            return;
        }
        let (number, since) = &candidates[self.rng.random_range(0..candidates.len())];
        let connect = from.max(since.saturating_add(1));
        if to <= connect {
            return;
        }
        let length = self.rng.random_range(1..=(to - connect));
        self.unassigned_made += 1;
        let end = connect + length;
        self.pending.push((
            end.max(connect + UNASSIGNED_LEG_DELAY_MS),
            LegFact {
                call_id: format!("{call_prefix}unassigned-{:04}", self.unassigned_made),
                telephone_number: number.clone(),
                connect,
                end,
                assigned: false,
            },
        ));
    }

    /// Legs made and not yet posted.
    pub(crate) fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Posts every leg that ended by `now`, in batches of at most 1000, signed like a webhook.
    /// A post that fails is recorded and not retried: the carrier was given its chance, and
    /// the calls it never got show as missing. After [`FAILURES_BEFORE_GIVING_UP`] failures in
    /// a row, legs are no longer posted.
    pub(crate) async fn post_due(&mut self, now: UnixMillis) {
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|(post_at, _)| *post_at <= now);
        self.pending = later;
        let due: Vec<LegFact> = due.into_iter().map(|(_, leg)| leg).collect();
        for batch in due.chunks(MAX_LEGS_PER_REQUEST) {
            if self.failed_in_a_row >= FAILURES_BEFORE_GIVING_UP {
                self.failures.push(format!(
                    "{} legs not posted: the hook failed {FAILURES_BEFORE_GIVING_UP} times in a \
                     row",
                    batch.len()
                ));
                continue;
            }
            // Before the post: the carrier may report a leg as soon as it has it.
            self.checker.do_send(LegsPosted(batch.to_vec()));
            let body = CallLegBatch {
                legs: batch
                    .iter()
                    .map(|leg| CallLeg {
                        call_id: leg.call_id.clone(),
                        telephone_number: leg.telephone_number.clone(),
                        connect_date_time: format_timestamp(leg.connect),
                        end_date_time: format_timestamp(leg.end),
                    })
                    .collect(),
            };
            match self.post(&body, now).await {
                Ok(()) => self.failed_in_a_row = 0,
                Err(why) => {
                    tracing::warn!("{why}");
                    self.failures.push(why);
                    self.failed_in_a_row += 1;
                }
            }
            self.posted.extend_from_slice(batch);
        }
    }

    async fn post(&self, batch: &CallLegBatch, now: UnixMillis) -> Result<(), String> {
        let body = serde_json::to_vec(batch).map_err(|e| e.to_string())?;
        let what = format!("POST {} with {} legs", paths::CALL_LEGS, batch.legs.len());
        let answer = post_legs(
            (&self.client, POST_TIMEOUT),
            Recording {
                calls: &self.calls,
                carrier: CARRIER_ID,
                sim_time: now,
            },
            &self.url,
            &self.secret,
            batch,
            body,
        )
        .await;
        match (answer.status, answer.body) {
            (Some(status), _) if (200..300).contains(&status) => Ok(()),
            (None, Err(why)) => Err(format!("{what}: {why}")),
            (Some(status), body) => {
                let answer = body.map_or_else(|e| e, |b| String::from_utf8_lossy(&b).into_owned());
                let answer: String = answer.chars().take(300).collect();
                Err(format!("{what}: answered {status}: {answer}"))
            }
            (None, Ok(_)) => Err(format!("{what}: no answer")),
        }
    }

    /// Every leg made: those posted, in order, then those still to post.
    #[cfg(test)]
    pub(crate) fn made(&self) -> Vec<LegFact> {
        let pending = self.pending.iter().map(|(_, leg)| leg);
        self.posted.iter().chain(pending).cloned().collect()
    }

    /// Why posts failed, one line each.
    pub(crate) fn finish(self) -> Vec<String> {
        self.failures
    }
}

/// The legs of a certification as an actor: it makes legs from what Teams played each tick (and,
/// spread over the ticks, legs on numbers Teams has unassigned), and posts those due at each
/// tick's end, after Teams' player and before the next tick.
pub(crate) struct LegsActor {
    /// Taken while a post is in flight (the actor handles nothing else meanwhile).
    legs: Option<Legs>,
    sides: Sides,
    numbers: Vec<String>,
    call_prefix: String,
    /// Ticks played, of how many.
    played: u64,
    ticks: u64,
}

impl LegsActor {
    /// The legs of a certification of `ticks` ticks over `numbers`, with `call_prefix` for the
    /// ids of legs on unassigned numbers.
    pub(crate) fn new(
        legs: Legs,
        sides: Sides,
        numbers: Vec<String>,
        call_prefix: String,
        ticks: u64,
    ) -> Self {
        Self {
            legs: Some(legs),
            sides,
            numbers,
            call_prefix,
            played: 0,
            ticks,
        }
    }

    /// Posts what is due at `now` (run atomically: the actor handles nothing else meanwhile).
    fn post_due(&mut self, now: UnixMillis) -> ResponseActFuture<Self, ()> {
        let legs = self.legs.take();
        Box::pin(
            async move {
                let mut legs = legs;
                if let Some(legs) = &mut legs {
                    legs.post_due(now).await;
                }
                legs
            }
            .into_actor(self)
            .map(|legs, act, _| act.legs = legs),
        )
    }
}

impl Actor for LegsActor {
    type Context = Context<Self>;
}

impl Handler<TickPlayed> for LegsActor {
    type Result = ();

    fn handle(&mut self, msg: TickPlayed, _: &mut Context<Self>) {
        let Some(legs) = &mut self.legs else {
            return;
        };
        legs.add_calls(&msg.placed.calls);
        let tick = msg.tick;
        for _ in 0..legs.unassigned_due(self.played, self.ticks) {
            let candidates = unassigned_now(&self.sides, &self.numbers, tick.to);
            legs.add_unassigned(&candidates, &self.call_prefix, tick.from, tick.to);
        }
        self.played += 1;
    }
}

impl Handler<TickStarted> for LegsActor {
    type Result = AtomicResponse<Self, Result<(), RunError>>;

    /// Teams' player has played the tick (the clock told it first): its legs that ended are
    /// posted.
    fn handle(&mut self, msg: TickStarted, _: &mut Context<Self>) -> Self::Result {
        AtomicResponse::new(Box::pin(self.post_due(msg.0.to).map(|(), _, _| Ok(()))))
    }
}

impl Handler<PostDueLegs> for LegsActor {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, msg: PostDueLegs, _: &mut Context<Self>) -> Self::Result {
        AtomicResponse::new(self.post_due(msg.0))
    }
}

impl Handler<PendingLegs> for LegsActor {
    type Result = usize;

    fn handle(&mut self, _: PendingLegs, _: &mut Context<Self>) -> usize {
        self.legs.as_ref().map_or(0, Legs::pending)
    }
}

impl Handler<FinishLegs> for LegsActor {
    type Result = MessageResult<FinishLegs>;

    /// Why posts failed; the legs are done with.
    fn handle(&mut self, _: FinishLegs, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.legs.take().map(Legs::finish).unwrap_or_default())
    }
}

#[cfg(test)]
impl Handler<MadeLegs> for LegsActor {
    type Result = MessageResult<MadeLegs>;

    fn handle(&mut self, _: MadeLegs, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.legs.as_ref().map(Legs::made).unwrap_or_default())
    }
}

/// The numbers Teams has unassigned at `now`, each with when it became so, in inventory order.
fn unassigned_now(sides: &Sides, numbers: &[String], now: UnixMillis) -> Vec<(String, UnixMillis)> {
    sides.teams.with_store(|s| {
        numbers
            .iter()
            .filter_map(|n| s.number(n))
            .filter(|n| n.state == AssignmentState::Unassigned)
            .filter_map(|n| {
                let since = parse_timestamp(&n.last_changed_date_time).unwrap_or(i64::MIN);
                (since < now).then_some((n.telephone_number, since))
            })
            .collect()
    })
}

/// Posts `batch` (serialised as `body`) to the carrier's call-legs hook at `url`, signed with
/// `secret` like a webhook, and sends it again while unanswered (PROTOCOL 2.3): how both a
/// certification and a load test tell the carrier of its calls; each attempt may take up to
/// `timeout`.
pub(crate) async fn post_legs(
    (client, timeout): (&reqwest::Client, Duration),
    rec: Recording<'_>,
    url: &str,
    secret: &str,
    batch: &CallLegBatch,
    body: Vec<u8>,
) -> Answer {
    let signature = sign(secret.as_bytes(), wall_secs(), &body);
    send_until_answered(
        client,
        rec,
        Request {
            method: reqwest::Method::POST,
            url,
            headers: &[
                (
                    reqwest::header::CONTENT_TYPE.as_str(),
                    "application/json".to_owned(),
                ),
                (SIGNATURE_HEADER, signature),
            ],
            body,
            limit: ANSWER_LIMIT,
            timeout,
            detail: ExchangeDetail::CallLegs {
                call_ids: batch.legs.iter().map(|l| l.call_id.clone()).collect(),
            },
        },
    )
    .await
}
