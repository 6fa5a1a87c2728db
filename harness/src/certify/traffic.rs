//! The certification's traffic: the run's actors wired as `run` wires them
//! ([`crate::run::wire`]), the clock paced on the wall clock, and the legs
//! ([`LegsActor`]) after Teams' player in each tick: they are made from the tick's calls and,
//! spread over the ticks, on numbers Teams has unassigned, and posted when they end. What is
//! generated depends on the seed and the time since the start alone, never on the moment the
//! certification began or on how the threads were scheduled: a `--seed` replays it.

use actix::{Actor, Addr, Recipient};
use mock_teams::NumberChange;

use super::legs::{Legs, LegsActor};
use crate::actors::clock::Pace;
use crate::actors::messages::{PlayClosing, PlayStart, RecordsUntil, RunTicks, TickPlayed};
use crate::run::{Plan, RunError, Sides, wire};
use crate::scenario::Scenario;
use oc_protocol::UnixMillis;

/// The call-id prefix of a certification: the carrier under test may remember the ids of
/// earlier certifications.
fn call_prefix(seed: u64) -> String {
    format!("cert-{seed:016x}-")
}

/// The number of ticks of the traffic.
fn ticks(scenario: &Scenario) -> u64 {
    let tick_ms = scenario.tick_ms.max(1);
    u64::try_from((scenario.length_ms + tick_ms - 1) / tick_ms).unwrap_or(1)
}

/// What driving the traffic left.
pub(super) struct Driven {
    /// The legs, some perhaps still to post.
    pub(super) legs: Addr<LegsActor>,
    /// When the last record becomes available.
    pub(super) records_until: UnixMillis,
    /// The admins' initial assignments, at the start.
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "read by the tests of the traffic")
    )]
    pub(super) initial: Vec<(UnixMillis, NumberChange)>,
}

/// How the traffic is driven.
pub(super) struct Driving {
    /// The wall clock, but in tests.
    pub(super) pace: Pace,
    /// See what each tick generated.
    pub(super) watchers: Vec<Recipient<TickPlayed>>,
    /// Shows progress.
    pub(super) progress: bool,
}

/// Runs the traffic, then the closing changes.
pub(super) async fn drive(
    sides: &Sides,
    scenario: &Scenario,
    seed: u64,
    numbers: &[String],
    legs: Legs,
    driving: Driving,
) -> Result<Driven, RunError> {
    let Driving {
        pace,
        watchers,
        progress,
    } = driving;
    let prefix = call_prefix(seed);
    let legs = LegsActor::new(
        legs,
        sides.clone(),
        numbers.to_vec(),
        prefix.clone(),
        ticks(scenario),
    )
    .start();
    let wiring = wire(
        sides,
        Plan {
            scenario,
            seed,
            length_ms: scenario.length_ms,
            pace,
            certification: Some(prefix),
            watchers: std::iter::once(legs.clone().recipient())
                .chain(watchers)
                .collect(),
            after_teams: vec![legs.clone().recipient()],
            progress,
        },
    );
    let initial = wiring.teams.send(PlayStart(scenario.start)).await??;
    let end = wiring.clock.send(RunTicks).await??;
    wiring
        .teams
        .send(PlayClosing {
            at: end,
            count: scenario.certification.closing_unassignments,
        })
        .await??;
    let records_until = wiring.teams.send(RecordsUntil).await?;
    Ok(Driven {
        legs,
        records_until,
        initial,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    use actix::{Context, Handler};

    use mock_teams::{NewCall, TeamsOptions};
    use oc_protocol::parse_timestamp;
    use oc_protocol::timestamp::DAY_MS;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    use super::*;
    use crate::actors::messages::Correction;
    use crate::actors::messages::MadeLegs;
    use crate::certify::QUICK_SUITE;
    use crate::checker::history::LegFact;
    use crate::run::{inventory, start_teams};

    /// Keeps what each tick generated.
    struct Collector(Arc<Mutex<Vec<TickPlayed>>>);

    impl Actor for Collector {
        type Context = Context<Self>;
    }

    impl Handler<TickPlayed> for Collector {
        type Result = ();

        fn handle(&mut self, msg: TickPlayed, _: &mut Context<Self>) {
            self.0.lock().unwrap().push(msg);
        }
    }

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
                (Some(&out), false),
            )
            .await
            .unwrap();
            let sides = teams.without_webhook().unwrap();
            let numbers = inventory(&scenario, &sides.teams).unwrap();
            let legs = Legs::new(
                SEED,
                scenario.certification,
                "http://127.0.0.1:9",
                "s",
                sides.teams.harness_calls(),
                sides.checker.clone().recipient(),
            );
            let played = Arc::new(Mutex::new(Vec::new()));
            let collector = Collector(played.clone()).start();
            let driven = drive(
                &sides,
                &scenario,
                SEED,
                &numbers,
                legs,
                Driving {
                    pace: Pace::Virtual,
                    watchers: vec![collector.recipient()],
                    progress: false,
                },
            )
            .await
            .unwrap();
            let mut out = Generation::default();
            let relative = |changes: &[(UnixMillis, NumberChange)]| {
                changes
                    .iter()
                    .map(|(t, change)| (t - start, change.clone()))
                    .collect::<Vec<_>>()
            };
            out.changes.extend(relative(&driven.initial));
            for g in played.lock().unwrap().iter() {
                out.changes.extend(relative(&g.changes));
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
            }
            out.legs = driven
                .legs
                .send(MadeLegs)
                .await
                .unwrap()
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
