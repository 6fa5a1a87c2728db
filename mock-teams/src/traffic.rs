//! Seeded background traffic for a carrier developer's sandbox (`mock-teams serve`): a number
//! inventory, assignment churn, and calls with their CDR and quality records, so that there is
//! always something to read.

use std::sync::Arc;
use std::time::Duration;

use oc_protocol::ids::uuid_from_bits;
use oc_protocol::seed::derive;
use oc_protocol::{
    Assignee, AudioCodec, Direction, NumberUsage, StreamDirection, UnixMillis, format_timestamp,
};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, Poisson};
use serde::Deserialize;

use crate::store::{Assignment, NewCall, StoreError, StreamQuality};
use crate::{MockTeams, NumberChange};

/// `[traffic]`: what the sandbox generates.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrafficSettings {
    /// The carrier that gets the numbers and calls (default: the first configured).
    pub carrier: Option<String>,
    /// How many tenants.
    pub tenants: u32,
    /// Numbers per tenant.
    pub numbers_per_tenant: u32,
    /// The first number; the others follow it.
    pub first_number: u64,
    /// The host of the SIP URIs.
    pub sip_host: String,
    /// Share of numbers assigned at start.
    pub assigned_share: f64,
    /// Assignment changes per hour of simulated time, over all numbers.
    pub changes_per_hour: f64,
    /// Calls per assigned number per hour of simulated time.
    pub calls_per_number_per_hour: f64,
    /// Share of calls answered.
    pub answer_share: f64,
    /// Mean talk time of an answered call, s (exponential).
    pub mean_duration_secs: f64,
    /// Mean delay before a record enters the feeds, s (exponential).
    pub mean_availability_delay_secs: f64,
    /// Share of answered calls on an impaired network (poor streams).
    pub impaired_share: f64,
    /// Simulated seconds per wall-clock second.
    pub speed: f64,
}

impl Default for TrafficSettings {
    fn default() -> Self {
        Self {
            carrier: None,
            tenants: 2,
            numbers_per_tenant: 10,
            first_number: 14_255_550_100,
            sip_host: "sbc1.carrier.example".into(),
            assigned_share: 0.8,
            changes_per_hour: 6.0,
            calls_per_number_per_hour: 4.0,
            answer_share: 0.8,
            mean_duration_secs: 180.0,
            mean_availability_delay_secs: 60.0,
            impaired_share: 0.1,
            speed: 1.0,
        }
    }
}

impl TrafficSettings {
    /// Checks ranges; returns what is wrong.
    pub fn check(&self) -> Result<(), String> {
        for (name, share) in [
            ("traffic.assigned_share", self.assigned_share),
            ("traffic.answer_share", self.answer_share),
            ("traffic.impaired_share", self.impaired_share),
        ] {
            if !(0.0..=1.0).contains(&share) {
                return Err(format!("{name} must be from 0 to 1, is {share}"));
            }
        }
        for (name, value) in [
            ("traffic.changes_per_hour", self.changes_per_hour),
            (
                "traffic.calls_per_number_per_hour",
                self.calls_per_number_per_hour,
            ),
            ("traffic.mean_duration_secs", self.mean_duration_secs),
            (
                "traffic.mean_availability_delay_secs",
                self.mean_availability_delay_secs,
            ),
            ("traffic.speed", self.speed),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return Err(format!("{name} must be a number above 0, is {value}"));
            }
        }
        if self.tenants == 0 || self.numbers_per_tenant == 0 {
            return Err("traffic.tenants and traffic.numbers_per_tenant must be at least 1".into());
        }
        Ok(())
    }
}

/// Generates the sandbox's numbers, changes and calls from a seed.
pub struct TrafficGenerator {
    settings: TrafficSettings,
    carrier: String,
    numbers: Vec<String>,
    rng: ChaCha8Rng,
    next_call: u64,
}

impl TrafficGenerator {
    /// Creates the tenants and numbers in the store and assigns the initial share.
    pub fn setup(
        teams: &MockTeams,
        carrier: &str,
        settings: TrafficSettings,
        seed: u64,
    ) -> Result<Self, StoreError> {
        let mut rng = ChaCha8Rng::seed_from_u64(derive(seed, &[b"teams/traffic"]));
        let mut numbers = Vec::new();
        for t in 0..settings.tenants {
            let tenant = uuid_from_bits(rng.random());
            for n in 0..settings.numbers_per_tenant {
                let number = format!(
                    "+{}",
                    settings.first_number + u64::from(t * settings.numbers_per_tenant + n)
                );
                teams.with_store(|s| s.add_number(carrier, &tenant, &number))?;
                numbers.push(number);
            }
        }
        let mut generator = Self {
            settings,
            carrier: carrier.to_owned(),
            numbers,
            rng,
            next_call: 0,
        };
        let mut changes = Vec::new();
        for number in generator.numbers.clone() {
            if generator.rng.random_bool(generator.settings.assigned_share) {
                changes.push(NumberChange::Assign {
                    assignment: generator.assignment(&number),
                    telephone_number: number,
                });
            }
        }
        for result in teams.apply_changes(changes) {
            result?;
        }
        Ok(generator)
    }

    fn assignment(&mut self, number: &str) -> Assignment {
        let usage = *NumberUsage::ALL
            .choose(&mut self.rng)
            .unwrap_or(&NumberUsage::CallingUserAssignment);
        Assignment {
            sip_uri: format!("sip:{number}@{};user=phone", self.settings.sip_host),
            usage,
            assignee: Assignee {
                id: uuid_from_bits(self.rng.random()),
                kind: usage.assignee_type(),
            },
        }
    }

    /// Generates what happens in `[from, to)` of simulated time, then moves the clock to `to`.
    pub fn step(
        &mut self,
        teams: &MockTeams,
        from: UnixMillis,
        to: UnixMillis,
    ) -> Result<(), StoreError> {
        let hours = (to - from) as f64 / 3_600_000.0;
        self.churn(teams, hours);
        let assigned: Vec<String> = teams.with_store(|s| {
            self.numbers
                .iter()
                .filter(|n| s.number(n).is_some_and(|w| w.sip_uri.is_some()))
                .cloned()
                .collect()
        });
        let expected = self.settings.calls_per_number_per_hour * hours * assigned.len() as f64;
        let count = poisson(&mut self.rng, expected);
        for _ in 0..count {
            let Some(number) = assigned.choose(&mut self.rng).cloned() else {
                break;
            };
            let start = self.rng.random_range(from..to.max(from + 1));
            let call = self.call(number, start);
            teams.add_call(call)?;
        }
        teams.advance_to(to)
    }

    fn churn(&mut self, teams: &MockTeams, hours: f64) {
        let count = poisson(&mut self.rng, self.settings.changes_per_hour * hours);
        let mut changes = Vec::new();
        for _ in 0..count {
            let Some(number) = self.numbers.choose(&mut self.rng).cloned() else {
                return;
            };
            let assigned =
                teams.with_store(|s| s.number(&number).is_some_and(|n| n.sip_uri.is_some()));
            changes.push(match (assigned, self.rng.random_bool(0.5)) {
                (false, _) => NumberChange::Assign {
                    assignment: self.assignment(&number),
                    telephone_number: number,
                },
                (true, true) => NumberChange::Update {
                    assignment: self.assignment(&number),
                    telephone_number: number,
                },
                (true, false) => NumberChange::Unassign {
                    telephone_number: number,
                },
            });
        }
        // A change that collides with another in the same step (two on one number) is refused
        // by the store; the sandbox just skips it.
        let _ = teams.apply_changes(changes);
    }

    fn call(&mut self, number: String, start: UnixMillis) -> NewCall {
        self.next_call += 1;
        let answered = self.rng.random_bool(self.settings.answer_share);
        let ring = self.rng.random_range(2_000..20_000);
        let talk = exp_ms(&mut self.rng, self.settings.mean_duration_secs);
        let connect = answered.then_some(start + ring);
        let end = connect.map_or(start + ring, |c| c + talk);
        let impaired = self.rng.random_bool(self.settings.impaired_share);
        let quality = answered.then(|| {
            let packets = u32::try_from(talk / 20).unwrap_or(u32::MAX);
            random_streams(&mut self.rng, packets, impaired)
        });
        let delay = exp_ms(&mut self.rng, self.settings.mean_availability_delay_secs);
        NewCall {
            call_id: format!(
                "{}-{}-{:06}",
                self.carrier,
                format_timestamp(start),
                self.next_call
            ),
            telephone_number: number,
            direction: if self.rng.random_bool(0.5) {
                Direction::Outbound
            } else {
                Direction::Inbound
            },
            other_number: format!(
                "+1{}",
                self.rng.random_range(2_000_000_000u64..9_999_999_999)
            ),
            start,
            connect,
            end,
            final_sip_code: if answered {
                200
            } else {
                *[486u16, 487, 480, 603]
                    .choose(&mut self.rng)
                    .unwrap_or(&487)
            },
            availability_delay_ms: u32::try_from(delay).unwrap_or(u32::MAX),
            quality,
        }
    }

    /// Runs until `stop` fires: every second of wall time, `speed` seconds of simulated time.
    pub async fn run(
        mut self,
        teams: Arc<MockTeams>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let step_ms = (self.settings.speed * 1000.0).round() as i64;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            let from = teams.now();
            if let Err(err) = self.step(&teams, from, from + step_ms.max(1)) {
                tracing::warn!(%err, "background traffic step failed");
            }
        }
    }
}

fn poisson(rng: &mut ChaCha8Rng, mean: f64) -> u64 {
    if mean <= 0.0 {
        return 0;
    }
    Poisson::new(mean).map_or(0, |p| p.sample(rng) as u64)
}

fn exp_ms(rng: &mut ChaCha8Rng, mean_secs: f64) -> i64 {
    Exp::new(1.0 / mean_secs)
        .map_or(0, |e| (e.sample(rng) * 1000.0) as i64)
        .min(4 * 3_600_000)
}

/// The quality of both media directions of one call, on the same network.
pub fn random_streams(rng: &mut ChaCha8Rng, packets: u32, impaired: bool) -> [StreamQuality; 2] {
    [
        random_stream(rng, StreamDirection::CallerToCallee, packets, impaired),
        random_stream(rng, StreamDirection::CalleeToCaller, packets, impaired),
    ]
}

/// The quality of one media stream: a good network's figures, or an impaired one's, whose
/// averages are each beyond the CQD thresholds (so a stream of over 500 packets is poor).
fn random_stream(
    rng: &mut ChaCha8Rng,
    direction: StreamDirection,
    packets: u32,
    impaired: bool,
) -> StreamQuality {
    let codec = *AudioCodec::ALL.choose(rng).unwrap_or(&AudioCodec::Opus);
    let (jitter, loss_ppm, rtt) = if impaired {
        (
            rng.random_range(31..90),
            rng.random_range(100_001..250_000),
            rng.random_range(501..900),
        )
    } else {
        (
            rng.random_range(1..20),
            rng.random_range(0..20_000),
            rng.random_range(20..200),
        )
    };
    StreamQuality {
        direction,
        codec,
        packets,
        avg_jitter_ms: jitter,
        max_jitter_ms: jitter + rng.random_range(0..40),
        avg_rtt_ms: rtt,
        max_rtt_ms: rtt + rng.random_range(0..200),
        avg_loss_ppm: loss_ppm,
        max_loss_ppm: (loss_ppm + rng.random_range(0..100_000)).min(1_000_000),
        degradation_milli: rng.random_range(0..if impaired { 2_500 } else { 400 }),
        concealed_ppm: rng.random_range(0..if impaired { 100_000 } else { 10_000 }),
    }
}
