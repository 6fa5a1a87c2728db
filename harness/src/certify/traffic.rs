//! The certification's traffic: the run's ticks played on the wall clock, each followed by the
//! legs of its calls and, spread over the ticks, legs on numbers Teams has unassigned. What is
//! generated depends on the seed and the time since the start alone, never on the moment the
//! certification began or on how the threads were scheduled: a `--seed` replays it.

use std::time::Duration;

use actix::{Actor, Addr};
use mock_teams::NumberChange;
use oc_protocol::{AssignmentState, UnixMillis, parse_timestamp};

use super::legs::Legs;
use crate::actors::admin::AdminActor;
use crate::actors::clock::ClockActor;
use crate::actors::messages::{NextTick, Tick};
use crate::actors::traffic::TrafficActor;
use crate::run::generate::{Generated, play_closing, play_start, play_tick};
use crate::run::probes::wall_ms;
use crate::run::{RunError, Sides, report};
use crate::scenario::Scenario;

/// The generators of a certification's traffic, and how far it has got.
pub(super) struct Traffic {
    admin: Addr<AdminActor>,
    traffic: Addr<TrafficActor>,
    clock: Addr<ClockActor>,
    numbers: Vec<String>,
    call_prefix: String,
    ticks: u64,
    played: u64,
}

impl Traffic {
    /// Starts the generators of `scenario`'s traffic over `numbers` and applies the initial
    /// assignments at the start; `observe` sees them.
    pub(super) async fn start(
        sides: &Sides,
        scenario: &Scenario,
        seed: u64,
        numbers: &[String],
        observe: impl FnOnce(&[(UnixMillis, NumberChange)]),
    ) -> Result<Self, RunError> {
        // The carrier under test may remember the ids of earlier certifications.
        let call_prefix = format!("cert-{seed:016x}-");
        let admin = AdminActor::new(scenario.assignments.clone(), numbers.to_vec(), seed).start();
        let traffic = TrafficActor::new(scenario.calls.clone(), scenario.quality, seed)
            .with_call_prefix(&call_prefix)
            .with_correction_window(scenario.calls.availability_delay.max_ms)
            .start();
        let clock = ClockActor::new(scenario.start, scenario.length_ms, scenario.tick_ms).start();
        play_start(sides, &admin, &traffic, scenario.start, observe).await?;
        let tick_ms = scenario.tick_ms.max(1);
        Ok(Self {
            admin,
            traffic,
            clock,
            numbers: numbers.to_vec(),
            call_prefix,
            ticks: u64::try_from((scenario.length_ms + tick_ms - 1) / tick_ms).unwrap_or(1),
            played: 0,
        })
    }

    /// The closing changes at `end`, after the last tick: `count` assigned numbers unassigned.
    pub(super) async fn close(
        &self,
        sides: &Sides,
        end: UnixMillis,
        count: u32,
    ) -> Result<(), RunError> {
        play_closing(sides, &self.admin, &self.traffic, end, count).await
    }

    /// The next tick, or none when the traffic is over.
    pub(super) async fn next_tick(&self) -> Result<Option<Tick>, RunError> {
        Ok(self.clock.send(NextTick).await?)
    }

    /// Plays `tick` into Teams and makes its legs (posted later, when due); `observe` sees the
    /// tick's changes and calls. Returns when the tick's last record becomes available.
    pub(super) async fn play(
        &mut self,
        sides: &Sides,
        legs: &mut Legs,
        tick: Tick,
        observe: impl FnOnce(Generated<'_>),
    ) -> Result<UnixMillis, RunError> {
        let last_record = play_tick(sides, &self.admin, &self.traffic, tick, |generated| {
            legs.add_calls(&generated.placed.calls);
            observe(generated);
        })
        .await?;
        for _ in 0..legs.unassigned_due(self.played, self.ticks) {
            let candidates = unassigned_now(sides, &self.numbers, tick.to);
            legs.add_unassigned(&candidates, &self.call_prefix, tick.from, tick.to);
        }
        self.played += 1;
        Ok(last_record)
    }
}

/// Runs the traffic in real time; returns when the last record becomes available.
pub(super) async fn drive(
    sides: &Sides,
    scenario: &Scenario,
    seed: u64,
    numbers: &[String],
    legs: &mut Legs,
    progress: bool,
) -> Result<UnixMillis, RunError> {
    let mut traffic = Traffic::start(sides, scenario, seed, numbers, |_| {}).await?;
    let bar = report::Progress::new(progress, scenario.length_ms);
    let mut last_record = scenario.start;
    let mut end = scenario.start;
    while let Some(tick) = traffic.next_tick().await? {
        // The tick's changes and calls happen in the past, never ahead of the carrier's clock.
        sleep_until(tick.to).await;
        last_record = last_record.max(traffic.play(sides, legs, tick, |_| {}).await?);
        legs.post_due(tick.to).await;
        bar.tick(tick.to - scenario.start);
        end = tick.to;
    }
    traffic
        .close(sides, end, scenario.certification.closing_unassignments)
        .await?;
    bar.finish();
    Ok(last_record)
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

async fn sleep_until(at: UnixMillis) {
    let wait = at - wall_ms();
    if wait > 0 {
        tokio::time::sleep(Duration::from_millis(u64::try_from(wait).unwrap_or(0))).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use mock_teams::{NewCall, TeamsOptions};
    use oc_protocol::parse_timestamp;
    use oc_protocol::timestamp::DAY_MS;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    use super::*;
    use crate::actors::messages::Correction;
    use crate::certify::QUICK_SUITE;
    use crate::checker::history::LegFact;
    use crate::run::{inventory, start_teams};

    const SEED: u64 = 21;
    const HOUR_MS: i64 = 3_600_000;

    /// Everything a certification generates, its times relative to its start.
    #[derive(Debug, Default, PartialEq)]
    struct Generation {
        changes: Vec<(i64, NumberChange)>,
        calls: Vec<NewCall>,
        corrections: Vec<Correction>,
        legs: Vec<LegFact>,
    }

    fn at(text: &str) -> UnixMillis {
        parse_timestamp(text).unwrap()
    }

    /// The quick suite's traffic and legs from `start`, played as `certify` plays them but
    /// without waiting for the wall clock or posting the legs.
    fn generate(start: UnixMillis) -> Generation {
        let mut scenario = crate::scenario::parse(QUICK_SUITE, "certification-quick.toml").unwrap();
        scenario.start = start;
        actix_rt::System::new().block_on(async move {
            let out = std::env::temp_dir().join(format!("oc-legs-{}", std::process::id()));
            let teams = start_teams(
                &scenario,
                SEED,
                TeamsOptions::loopback(start),
                crate::run::check_settings(&scenario, true),
                (&out, false),
            )
            .await
            .unwrap();
            let sides = teams.without_webhook().unwrap();
            let numbers = inventory(&scenario, &sides.teams).unwrap();
            let mut legs = Legs::new(
                SEED,
                scenario.certification,
                "http://127.0.0.1:9",
                "s",
                sides.teams.harness_calls(),
                sides.checker.clone().recipient(),
            );
            let mut out = Generation::default();
            let relative = |changes: &[(UnixMillis, NumberChange)]| {
                changes
                    .iter()
                    .map(|(t, change)| (t - start, change.clone()))
                    .collect::<Vec<_>>()
            };
            let mut traffic = Traffic::start(&sides, &scenario, SEED, &numbers, |changes| {
                out.changes.extend(relative(changes));
            })
            .await
            .unwrap();
            while let Some(tick) = traffic.next_tick().await.unwrap() {
                traffic
                    .play(&sides, &mut legs, tick, |g| {
                        out.changes.extend(relative(g.changes));
                        out.calls.extend(g.placed.calls.iter().map(|call| NewCall {
                            start: call.start - start,
                            connect: call.connect.map(|t| t - start),
                            end: call.end - start,
                            ..call.clone()
                        }));
                        out.corrections.extend(g.placed.corrections.iter().map(
                            |(id, connect, end, available)| {
                                (
                                    id.clone(),
                                    connect.map(|t| t - start),
                                    end - start,
                                    available - start,
                                )
                            },
                        ));
                    })
                    .await
                    .unwrap();
            }
            out.legs = legs
                .made()
                .into_iter()
                .map(|leg| LegFact {
                    connect: leg.connect - start,
                    end: leg.end - start,
                    ..leg
                })
                .collect();
            sides.teams.stop().await;
            out
        })
    }

    /// Any instant of ten years, to the millisecond, or one up to 90 s before an hour begins
    /// (so that a 2 s tick straddles it).
    fn starts() -> impl Strategy<Value = UnixMillis> {
        let base = at("2026-01-01T00:00:00.000Z");
        prop_oneof![
            (0..3_650i64, 0..DAY_MS).prop_map(move |(day, ms)| base + day * DAY_MS + ms),
            (0..3_650i64, 0..24i64, 1..=90_000i64)
                .prop_map(move |(day, hour, before)| base + day * DAY_MS + hour * HOUR_MS - before),
        ]
    }

    #[test]
    fn changes_calls_and_legs_are_the_same_relative_to_any_start() {
        let reference = generate(at("2026-11-02T00:00:00.000Z"));
        assert!(reference.changes.len() > 20, "{}", reference.changes.len());
        assert!(reference.calls.len() > 20, "{}", reference.calls.len());
        assert!(
            reference.legs.iter().any(|l| !l.assigned),
            "no unassigned leg"
        );
        // The starts that once gave other traffic: a 2 s tick across 05:00.
        for start in ["2026-11-02T04:59:46.512Z", "2026-11-02T04:59:59.000Z"] {
            assert!(generate(at(start)) == reference, "start {start}");
        }
        let mut runner = TestRunner::new(Config {
            cases: 24,
            failure_persistence: None,
            ..Config::default()
        });
        let outcome = runner.run(&starts(), |start| {
            prop_assert!(
                generate(start) == reference,
                "the traffic from {} differs from the traffic from 2026-11-02T00:00:00.000Z",
                oc_protocol::format_timestamp(start)
            );
            Ok(())
        });
        if let Err(failure) = outcome {
            panic!("{failure}");
        }
    }

    #[test]
    fn what_is_generated_does_not_depend_on_thread_timing() {
        let start = at("2026-11-02T04:59:46.512Z");
        let quiet = generate(start);
        // Threads that keep both cores busy, so that the actors and Teams' workers are
        // scheduled late and in another order.
        let stop = Arc::new(AtomicBool::new(false));
        let burners: Vec<_> = (0..4)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005) + 1);
                    }
                })
            })
            .collect();
        let busy = generate(start);
        stop.store(true, Ordering::Relaxed);
        for burner in burners {
            burner.join().unwrap();
        }
        assert!(
            busy == quiet,
            "the same start generated other traffic under load"
        );
    }
}
