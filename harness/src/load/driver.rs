//! The open-model generator: each executor walks its schedule ([`Arrivals`]) on the wall
//! clock and starts iteration `k` at its intended time whether or not earlier ones finished;
//! one that cannot start within the plan's slack, or while `max_in_flight` iterations are under
//! way, is dropped and counted, never started late. What iteration `k` does comes from a
//! generator seeded with `(seed, executor, k)`, never from thread timing: a dropped iteration
//! changes nothing that follows it.
//!
//! Every exchange is stamped with its iteration's intended time as simulated time, so the
//! metrics measure from it (coordinated omission corrected): a notification's from when it was
//! meant to go out (`MockTeams::apply_changes_sent_at`), a leg post's likewise.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mock_teams::traffic::random_streams;
use mock_teams::{Assignment, HarnessCalls, NewCall, NumberChange};
use oc_protocol::legs::{CallLeg, CallLegBatch};
use oc_protocol::{Assignee, NumberUsage, UnixMillis, format_timestamp, paths};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::time::Instant;

use super::metrics::{Executor, MetricsSink, Sample, Turn};
use super::plan::{Calls, LoadPlan, NumberEvents, PhaseKind};
use super::schedule::Arrivals;
use crate::actors::checker::Outbox;
use crate::certify::legs::post_legs;
use crate::run::recorded::Recording;
use crate::run::{CARRIER_ID, Sides};

/// How often Teams' clock follows the wall clock (and publishes what became available).
const CLOCK_STEP: Duration = Duration::from_millis(20);
/// How often Teams closes its settled calls (`Store::close_settled`).
const CLOSE_EVERY: Duration = Duration::from_secs(1);
/// The longest one leg post may take.
const POST_TIMEOUT: Duration = Duration::from_secs(10);

/// The generator of iteration `k` of `executor`.
pub(crate) fn iteration_rng(seed: u64, executor: Executor, k: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(oc_protocol::seed::derive(
        seed,
        &[b"load", executor.as_str().as_bytes(), &k.to_le_bytes()],
    ))
}

/// The numbers of a load: those the number-events executor churns, then those calls use.
pub(crate) struct Numbers {
    pub(crate) events: Vec<String>,
    pub(crate) calls: Vec<String>,
}

/// A new assignment of `number`, drawn from `rng`.
fn assignment(rng: &mut ChaCha8Rng, number: &str) -> Assignment {
    let usage = NumberUsage::ALL[rng.random_range(0..NumberUsage::ALL.len())];
    // Pushed, not `format!`ed: one per event, on the generator's thread.
    let mut sip_uri = String::with_capacity(number.len() + 35);
    sip_uri.push_str("sip:");
    sip_uri.push_str(number);
    sip_uri.push_str("@load.example.com;user=phone");
    Assignment {
        sip_uri,
        usage,
        assignee: Assignee {
            id: oc_protocol::ids::uuid_from_bits(
                u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64()),
            ),
            kind: usage.assignee_type(),
        },
    }
}

/// The assignment of call number `k`, before the load.
pub(crate) fn call_number_assignment(seed: u64, k: u64, number: &str) -> Assignment {
    let mut rng = ChaCha8Rng::seed_from_u64(oc_protocol::seed::derive(
        seed,
        &[b"load/call-numbers", &k.to_le_bytes()],
    ));
    assignment(&mut rng, number)
}

/// The changes of notification `k`: events `k·n … k·n+n−1` of the executor, event `j` on
/// number `j mod N` of the pool, its `j div N`-th change: assign, update, unassign, again.
pub(crate) fn number_changes(
    seed: u64,
    spec: &NumberEvents,
    numbers: &[String],
    k: u64,
) -> Vec<NumberChange> {
    let mut rng = iteration_rng(seed, Executor::NumberEvents, k);
    let per = u64::from(spec.events_per_notification);
    let pool = numbers.len() as u64;
    (k * per..(k + 1) * per)
        .map(|j| {
            let telephone_number = numbers[(j % pool) as usize].clone();
            match (j / pool) % 3 {
                0 => NumberChange::Assign {
                    assignment: assignment(&mut rng, &telephone_number),
                    telephone_number,
                },
                1 => NumberChange::Update {
                    assignment: assignment(&mut rng, &telephone_number),
                    telephone_number,
                },
                _ => NumberChange::Unassign { telephone_number },
            }
        })
        .collect()
}

/// The longest a load's call rings before it is answered.
const MAX_RING_MS: i64 = 5_000;

/// How many number-event iterations go by between two promises to Teams' store of how far
/// back a call may still start ([`Driver::history_reach_ms`]).
const FORGET_EVERY: u64 = 1_024;

/// Call `k`, ending at `end`, on one of `numbers` (assigned since `assigned_at`, at least 2 ms
/// before `end`: the call starts after the assignment).
pub(crate) fn call(
    seed: u64,
    spec: &Calls,
    numbers: &[String],
    k: u64,
    end: UnixMillis,
    assigned_at: UnixMillis,
) -> NewCall {
    let mut rng = iteration_rng(seed, Executor::Calls, k);
    let number = numbers[rng.random_range(0..numbers.len())].clone();
    let talk = rng.random_range(spec.min_duration_ms..=spec.max_duration_ms);
    let ring = rng.random_range(1_000..=MAX_RING_MS);
    // The first calls of a load may not have started before their numbers were assigned.
    let start = (end - talk - ring).max(assigned_at + 1);
    let connect = (start + ring).min(end);
    let direction = if rng.random_bool(0.5) {
        oc_protocol::Direction::Outbound
    } else {
        oc_protocol::Direction::Inbound
    };
    let other_number = format!("+44{}", rng.random_range(1_000_000_000u64..9_999_999_999));
    let packets = u32::try_from((end - connect) / 20).unwrap_or(u32::MAX);
    let impaired = rng.random_bool(0.05);
    NewCall {
        call_id: format!("load-{seed:016x}-{k:010}"),
        telephone_number: number,
        direction,
        other_number,
        start,
        connect: Some(connect),
        end,
        final_sip_code: 200,
        availability_delay_ms: u32::try_from(spec.availability_delay_ms).unwrap_or(u32::MAX),
        quality: Some(random_streams(&mut rng, packets, impaired)),
    }
}

/// What the executors share.
#[derive(Clone)]
pub(crate) struct Driver {
    pub(crate) sides: Sides,
    pub(crate) plan: Arc<LoadPlan>,
    pub(crate) seed: u64,
    pub(crate) numbers: Arc<Numbers>,
    /// The load's start, as an instant and on the wall clock.
    pub(crate) start: Instant,
    pub(crate) start_ms: UnixMillis,
    /// When the call numbers were assigned.
    pub(crate) assigned_at: UnixMillis,
    pub(crate) metrics: MetricsSink,
    pub(crate) abort: Arc<AtomicBool>,
    pub(crate) legs: Arc<LegPoster>,
    /// Where exchanges and number events are gathered for the checker.
    pub(crate) outbox: Arc<Outbox>,
}

/// Posts legs to the carrier's hook, each recorded as an exchange.
pub(crate) struct LegPoster {
    pub(crate) client: reqwest::Client,
    pub(crate) url: String,
    pub(crate) secret: String,
    pub(crate) calls: HarnessCalls,
}

impl LegPoster {
    pub(crate) fn new(carrier_url: &str, secret: &str, calls: HarnessCalls) -> Self {
        Self {
            client: reqwest::Client::builder()
                .timeout(POST_TIMEOUT)
                .connect_timeout(POST_TIMEOUT)
                .build()
                .unwrap_or_default(),
            url: format!("{carrier_url}{}", paths::CALL_LEGS),
            secret: secret.to_owned(),
            calls,
        }
    }

    /// Posts the leg of `call`, recorded as sent at `intended`.
    async fn post(&self, call: &NewCall, intended: UnixMillis) {
        let batch = CallLegBatch {
            legs: vec![CallLeg {
                call_id: call.call_id.clone(),
                telephone_number: call.telephone_number.clone(),
                connect_date_time: format_timestamp(call.connect.unwrap_or(call.start)),
                end_date_time: format_timestamp(call.end),
            }],
        };
        let body = serde_json::to_vec(&batch).unwrap_or_default();
        post_legs(
            (&self.client, POST_TIMEOUT),
            Recording {
                calls: &self.calls,
                carrier: CARRIER_ID,
                sim_time: intended,
            },
            &self.url,
            &self.secret,
            &batch,
            body,
        )
        .await;
    }
}

impl Driver {
    /// Runs the executors and the phases to the end of the plan (or an abort), keeping Teams'
    /// clock on the wall clock meanwhile.
    pub(crate) async fn run(&self) {
        let done = Rc::new(Cell::new(false));
        let clock = actix_rt::spawn(keep_time(
            self.sides.clone(),
            self.outbox.clone(),
            self.plan.close_hold_ms,
            done.clone(),
        ));
        let phases = actix_rt::spawn(phases(self.clone()));
        let mut executors = Vec::new();
        if self.plan.number_events.is_some() {
            executors.push(actix_rt::spawn(self.clone().number_events()));
        }
        if self.plan.calls.is_some() {
            executors.push(actix_rt::spawn(self.clone().calls()));
        }
        for executor in executors {
            let _ = executor.await;
        }
        phases.abort();
        self.sides.teams.set_outage(None);
        done.set(true);
        let _ = clock.await;
    }

    /// Waits for iteration time `intended_us`; whether it may start (on time, room in flight,
    /// as `count` counts what is in flight), or why not.
    async fn wait_turn(&self, intended_us: u64, count: impl Fn() -> usize) -> Option<Turn> {
        let due = self.start + Duration::from_micros(intended_us);
        if due > Instant::now() {
            // The generator is about to sleep: what it and the webhooks gathered goes to the
            // checker now, one message for the whole turn.
            self.outbox.flush();
            tokio::time::sleep_until(due).await;
        }
        if self.abort.load(Ordering::SeqCst) {
            return None;
        }
        let cap = self.plan.max_in_flight as usize;
        let mut in_flight = count();
        if in_flight >= cap {
            // The generator shares its thread with the requests it starts: while it starts a
            // run of iterations that came due together (a timer tick holds a millisecond of
            // them; a moment off the core holds more), no answer is read and no finished
            // request leaves the count. Answers already in are read first (the runtime polls
            // its sockets before it resumes a task that yielded), so that only requests still
            // under way hold places: without this, 64 in flight dropped iterations at a
            // sixteenth of the rate they carry, after any pause of 4 ms at 16,000 a second.
            tokio::task::yield_now().await;
            in_flight = count();
        }
        let late = Instant::now()
            .saturating_duration_since(self.start)
            .saturating_sub(Duration::from_micros(intended_us));
        let slack = Duration::from_millis(self.plan.start_slack_ms.unsigned_abs());
        // Late first: a generator behind its schedule is the limit whatever is in flight.
        let turn = if late > slack {
            Turn::Late
        } else if in_flight >= cap {
            Turn::InFlight
        } else {
            Turn::Start
        };
        if turn != Turn::Start {
            // Why each iteration was dropped, and when: `RUST_LOG=oc_harness::load=debug`.
            tracing::debug!(
                intended_ms = intended_us / 1000,
                late_us = late.as_micros() as u64,
                in_flight,
                "iteration dropped"
            );
        }
        Some(turn)
    }

    fn intended_ms(&self, intended_us: u64) -> UnixMillis {
        self.start_ms + i64::try_from(intended_us / 1000).unwrap_or(i64::MAX)
    }

    /// How long before a number change's intended time a call of this load may still start:
    /// a call is added at its intended end (no later than the start slack, or it is dropped)
    /// and starts at most its longest duration and ring before that; a minute more to spare.
    /// Teams' store forgets the assignments older than that (`forget_assignments_before`), so
    /// a long load's churn does not pile up in it.
    fn history_reach_ms(&self) -> i64 {
        let longest = self
            .plan
            .calls
            .as_ref()
            .map_or(0, |c| c.max_duration_ms + MAX_RING_MS);
        longest + self.plan.start_slack_ms + 60_000
    }

    async fn number_events(self) {
        let Some(spec) = &self.plan.number_events else {
            return;
        };
        let arrivals = Arrivals::new(&spec.stages, spec.events_per_notification);
        // Notifications under way are the webhook sender's: its queue is the one to bound;
        // those queued through a Teams outage are Teams' doing, not the generator's.
        let webhooks = self.sides.teams.webhooks();
        let in_flight = || {
            webhooks
                .outstanding()
                .saturating_sub(webhooks.waiting_recovery())
        };
        for (k, intended_us) in (0u64..).zip(arrivals) {
            let Some(turn) = self.wait_turn(intended_us, in_flight).await else {
                return;
            };
            self.metrics.send(Sample::Iteration {
                executor: Executor::NumberEvents,
                turn,
            });
            if turn != Turn::Start {
                continue;
            }
            if k % FORGET_EVERY == 0 {
                let horizon = self.intended_ms(intended_us) - self.history_reach_ms();
                self.sides.teams.forget_assignments_before(horizon);
            }
            let changes = number_changes(self.seed, spec, &self.numbers.events, k);
            let results = self
                .sides
                .teams
                .apply_changes_sent_at(changes, Some(self.intended_ms(intended_us)));
            // A change the store refuses follows a dropped iteration (its number is not in the
            // state the schedule expects): nothing is sent for it, and work not sent is not
            // achieved, whether the notification carries the iteration's other changes or none.
            let asked = results.len();
            let events: Vec<_> = results.into_iter().filter_map(Result::ok).collect();
            if events.len() < asked {
                tracing::debug!("number changes refused after a dropped iteration");
                self.metrics.send(Sample::Refused {
                    executor: Executor::NumberEvents,
                    work: u32::try_from(asked - events.len()).unwrap_or(u32::MAX),
                    all: events.is_empty(),
                });
            }
            self.outbox.push_events(events);
        }
    }

    async fn calls(self) {
        let Some(spec) = &self.plan.calls else {
            return;
        };
        let in_flight = Rc::new(Cell::new(0usize));
        let arrivals = Arrivals::new(&spec.stages, 1);
        for (k, intended_us) in (0u64..).zip(arrivals) {
            let Some(turn) = self.wait_turn(intended_us, || in_flight.get()).await else {
                return;
            };
            self.metrics.send(Sample::Iteration {
                executor: Executor::Calls,
                turn,
            });
            if turn != Turn::Start {
                continue;
            }
            let end = self.intended_ms(intended_us);
            let call = call(
                self.seed,
                spec,
                &self.numbers.calls,
                k,
                end,
                self.assigned_at,
            );
            if let Err(err) = self.sides.teams.add_call(call.clone()) {
                tracing::warn!("Teams refused load call {}: {err}", call.call_id);
                self.metrics.send(Sample::Refused {
                    executor: Executor::Calls,
                    work: 1,
                    all: true,
                });
                continue;
            }
            self.metrics.send(Sample::CallPlaced {
                call_id: call.call_id.clone(),
                end,
            });
            in_flight.set(in_flight.get() + 1);
            let legs = self.legs.clone();
            let counter = in_flight.clone();
            actix_rt::spawn(async move {
                legs.post(&call, end).await;
                counter.set(counter.get() - 1);
            });
        }
    }
}

/// Keeps Teams' clock on the wall clock until `done`, and closes Teams' settled calls every
/// [`CLOSE_EVERY`], handing them to the checker: a load's memory holds the calls still open,
/// not every call it placed.
async fn keep_time(sides: Sides, outbox: Arc<Outbox>, close_hold_ms: i64, done: Rc<Cell<bool>>) {
    let mut next_close = Instant::now() + CLOSE_EVERY;
    while !done.get() {
        let now = crate::run::recorded::wall_ms();
        sides.teams.with_store(|s| {
            if now > s.now() {
                let _ = s.advance_to(now);
            }
        });
        if Instant::now() >= next_close {
            next_close += CLOSE_EVERY;
            close_settled(&sides, &outbox, close_hold_ms);
        }
        // Exchanges gathered while the generator is busy (or has nothing to send) reach the
        // checker at least this often.
        outbox.flush();
        tokio::time::sleep(CLOCK_STEP).await;
    }
}

/// Closes Teams' settled calls, their books open `close_hold_ms` after their report or
/// deadline (the plan's `close_hold`: a report later than that for a closed call finds none
/// and is unexpected), and hands them to the checker after what `outbox` gathered (the checker
/// judges a closed call with the exchanges observed so far).
pub(crate) fn close_settled(sides: &Sides, outbox: &Outbox, close_hold_ms: i64) {
    let closed = sides.teams.with_store(|s| {
        s.close_settled(close_hold_ms);
        s.take_closed()
    });
    if !closed.is_empty() {
        outbox.flush();
        sides
            .checker
            .do_send(crate::actors::messages::CallsClosed(closed, None));
    }
}

/// Plays the plan's phases of trouble on the wall clock.
async fn phases(driver: Driver) {
    for phase in &driver.plan.phases {
        let at = Duration::from_millis(phase.at_ms.unsigned_abs());
        tokio::time::sleep_until(driver.start + at).await;
        let length = Duration::from_millis(phase.duration_ms.unsigned_abs());
        match phase.kind {
            PhaseKind::TeamsOutage => driver.sides.teams.set_outage(Some(length)),
        }
        tokio::time::sleep(length).await;
        driver.sides.teams.set_outage(None);
    }
}

#[cfg(test)]
mod tests {
    use super::super::plan::{Stage, Stages};
    use super::*;

    fn numbers(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("+1425550{i:04}")).collect()
    }

    fn events(per: u32) -> NumberEvents {
        NumberEvents {
            stages: Stages {
                start_rate: 1.0,
                stages: vec![Stage {
                    duration_ms: 1_000,
                    target: 1.0,
                }],
            },
            events_per_notification: per,
        }
    }

    #[test]
    fn each_number_is_assigned_updated_and_unassigned_in_turn() {
        let pool = numbers(3);
        let spec = events(2);
        let kinds: Vec<(String, &str)> = (0..6)
            .flat_map(|k| number_changes(1, &spec, &pool, k))
            .map(|c| match c {
                NumberChange::Assign {
                    telephone_number, ..
                } => (telephone_number, "assign"),
                NumberChange::Update {
                    telephone_number, ..
                } => (telephone_number, "update"),
                NumberChange::Unassign { telephone_number } => (telephone_number, "unassign"),
            })
            .collect();
        assert_eq!(kinds.len(), 12);
        for (i, (number, kind)) in kinds.iter().enumerate() {
            assert_eq!(number, &pool[i % 3]);
            let want = ["assign", "update", "unassign"][(i / 3) % 3];
            assert_eq!(*kind, want, "event {i}");
        }
    }

    /// Teams' store refuses an assignment whose SIP URI names another number.
    #[test]
    fn an_assignment_names_its_own_number() {
        let pool = numbers(2);
        for change in (0..4).flat_map(|k| number_changes(1, &events(1), &pool, k)) {
            if let NumberChange::Assign {
                telephone_number,
                assignment,
            }
            | NumberChange::Update {
                telephone_number,
                assignment,
            } = change
            {
                let uri = format!("sip:{telephone_number}@load.example.com;user=phone");
                assert_eq!(assignment.sip_uri, uri);
            }
        }
    }

    #[test]
    fn what_an_iteration_does_depends_on_the_seed_and_its_index_alone() {
        let pool = numbers(50);
        let spec = events(3);
        // The same iteration, whatever was generated before it.
        let alone = number_changes(9, &spec, &pool, 7);
        let walked: Vec<Vec<NumberChange>> = (0..=7)
            .map(|k| number_changes(9, &spec, &pool, k))
            .collect();
        assert_eq!(walked[7], alone);
        assert_ne!(number_changes(10, &spec, &pool, 7), alone, "another seed");

        let calls = Calls {
            stages: spec.stages.clone(),
            min_duration_ms: 10_000,
            max_duration_ms: 60_000,
            availability_delay_ms: 1_000,
        };
        let a = call(9, &calls, &pool, 3, 1_000_000, 0);
        assert_eq!(call(9, &calls, &pool, 3, 1_000_000, 0), a);
        let shape = |seed| {
            (0..20)
                .map(|k| {
                    let c = call(seed, &calls, &pool, k, 1_000_000, 0);
                    (c.telephone_number, c.connect)
                })
                .collect::<Vec<_>>()
        };
        assert_ne!(shape(9), shape(10), "another seed");
        let talk = a.end - a.connect.unwrap();
        assert!((10_000..=60_000).contains(&talk), "{talk}");
        // A call of the first seconds does not start before its number was assigned.
        let early = call(9, &calls, &pool, 0, 5_000, 1_000);
        assert!(early.start > 1_000 && early.connect.unwrap() <= early.end);
    }
}
