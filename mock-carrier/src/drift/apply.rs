//! Applying the configured drift models to one call, with a generator of the call's own.

use oc_protocol::UnixMillis;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use crate::seed;
use oc_observe::{DriftModel, RoundingMode};

/// When a call was answered and ended, in Unix ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CallTimes {
    pub(crate) connect: UnixMillis,
    pub(crate) end: UnixMillis,
}

impl CallTimes {
    pub(crate) fn duration(self) -> i64 {
        self.end - self.connect
    }
}

/// A fabricated call on a number that was not assigned [DUR-UNEXPECTED].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fabricated {
    pub(crate) call_id: String,
    pub(crate) telephone_number: String,
    /// The source call's switch times (its reference times when it was dropped).
    pub(crate) times: CallTimes,
}

/// What the carrier's switch recorded for a call, and what is done to its report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SwitchView {
    /// The times to report; `None` when the record was dropped.
    pub(crate) times: Option<CallTimes>,
    /// The models that changed something, in the order applied.
    pub(crate) tags: Vec<&'static str>,
    /// Report it a second time, identically.
    pub(crate) duplicate: bool,
    /// Report it no earlier than this (simulated time).
    pub(crate) hold_until: Option<UnixMillis>,
    /// A call to fabricate beside it.
    pub(crate) fabricated: Option<Fabricated>,
}

/// The call a switch view is computed for.
pub(crate) struct DriftInput<'a> {
    pub(crate) seed: u64,
    pub(crate) call_id: &'a str,
    pub(crate) telephone_number: &'a str,
    /// The reference times: Teams' record, or the posted leg.
    pub(crate) times: CallTimes,
    /// The reporting deadline after the reference end, ms.
    pub(crate) deadline_ms: i64,
}

/// Runs `input` through `models` in order.
///
/// Each model draws from a generator seeded by (run seed, the model's position and name,
/// callId), and always draws the same number of values whatever it decides, so a call's drift
/// depends only on those and not on which calls came before. `assigned_at` answers whether a
/// number is assigned at a time in the carrier's own view (for `unassigned_number`).
pub(crate) fn switch_view(
    models: &[DriftModel],
    input: &DriftInput<'_>,
    assigned_at: &dyn Fn(&str, UnixMillis) -> bool,
) -> SwitchView {
    let mut view = SwitchView {
        times: Some(input.times),
        tags: Vec::new(),
        duplicate: false,
        hold_until: None,
        fabricated: None,
    };
    let mut fabricate = None;
    for (index, model) in models.iter().enumerate() {
        let position = u32::try_from(index).unwrap_or(u32::MAX).to_le_bytes();
        // Seeded only for the models that draw per call: seeding and the first ChaCha block
        // are most of the cost of a view.
        let mut rng = LazyRng {
            seed: input.seed,
            position,
            name: model.name(),
            call_id: input.call_id,
            rng: None,
        };
        let before = view.times;
        let applied = apply_one(model, input, &mut view, &mut rng, &mut fabricate);
        if applied || view.times != before {
            view.tags.push(model.name());
        }
    }
    if let Some((candidates, pick)) = fabricate {
        // The fabricated call's candidates are judged at the call's connect time.
        let at = input.times.connect;
        let free: Vec<&String> = candidates.iter().filter(|n| !assigned_at(n, at)).collect();
        if !free.is_empty() {
            let index = usize::try_from(pick % free.len() as u64).unwrap_or(0);
            let id = seed::derive(input.seed, &[b"fabricated", input.call_id.as_bytes()]);
            view.fabricated = Some(Fabricated {
                call_id: format!("fab-{id:016x}"),
                telephone_number: free[index].clone(),
                times: view.times.unwrap_or(input.times),
            });
        }
    }
    view
}

/// Candidate numbers and a random pick among the free ones.
type Fabrication = (Vec<String>, u64);

/// Applies one model; true when it acted on the call (for probability models, when drawn).
fn apply_one(
    model: &DriftModel,
    input: &DriftInput<'_>,
    view: &mut SwitchView,
    rng: &mut LazyRng<'_>,
    fabricate: &mut Option<Fabrication>,
) -> bool {
    match model {
        DriftModel::Offset { ms } => {
            if let Some(t) = &mut view.times {
                t.end = (t.end + ms).max(t.connect);
            }
            *ms != 0
        }
        DriftModel::Round { increment_ms, mode } => {
            if let Some(t) = &mut view.times {
                t.end = t.connect + round(t.duration(), *increment_ms, *mode);
            }
            false
        }
        DriftModel::Jitter { sigma_ms, mean_ms } => {
            // Validation keeps sigma finite and >= 0, for which Normal::new cannot fail.
            let noise = Normal::new(*mean_ms, *sigma_ms).map_or(0.0, |n| n.sample(rng.get()));
            if let Some(t) = &mut view.times {
                t.end = (t.end + noise.round() as i64).max(t.connect);
            }
            false
        }
        DriftModel::LateAnswer {
            probability,
            min_ms,
            max_ms,
        } => {
            let (hit, delay) = draw(rng.get(), *probability, *min_ms, *max_ms);
            if hit && let Some(t) = &mut view.times {
                t.connect = (t.connect + delay).min(t.end);
            }
            hit
        }
        DriftModel::Hung {
            probability,
            min_ms,
            max_ms,
        } => {
            let (hit, extension) = draw(rng.get(), *probability, *min_ms, *max_ms);
            if hit && let Some(t) = &mut view.times {
                t.end += extension;
            }
            hit
        }
        DriftModel::ClockSkew {
            switches,
            max_skew_ms,
            max_rate_ppm,
        } => {
            // The switch depends on the number only; its clock on (seed, model, switch).
            let home = seed::derive(input.seed, &[b"home", input.telephone_number.as_bytes()])
                % u64::from((*switches).max(1));
            let mut clock = seed::rng(
                input.seed,
                &[b"switch", &rng.position, b"clock_skew", &home.to_le_bytes()],
            );
            let skew = clock.random_range(-*max_skew_ms..=*max_skew_ms);
            let rate = if *max_rate_ppm > 0.0 {
                clock.random_range(-*max_rate_ppm..=*max_rate_ppm)
            } else {
                0.0
            };
            if let Some(t) = &mut view.times {
                let duration = (t.duration() as f64 * (1.0 + rate / 1e6)).round() as i64;
                t.connect += skew;
                t.end = t.connect + duration.max(0);
            }
            skew != 0 || rate != 0.0
        }
        DriftModel::Drop { probability } => {
            let hit = rng.get().random_bool(*probability);
            if hit {
                view.times = None;
            }
            hit
        }
        DriftModel::Duplicate { probability } => {
            let hit = rng.get().random_bool(*probability);
            view.duplicate |= hit && view.times.is_some();
            hit
        }
        DriftModel::AfterDeadline {
            probability,
            extra_ms,
        } => {
            let hit = rng.get().random_bool(*probability);
            if hit {
                let at = input.times.end + input.deadline_ms + extra_ms;
                view.hold_until = Some(view.hold_until.map_or(at, |h| h.max(at)));
            }
            hit
        }
        DriftModel::UnassignedNumber {
            probability,
            numbers,
        } => {
            let hit = rng.get().random_bool(*probability);
            let pick: u64 = rng.get().random();
            if hit {
                *fabricate = Some((numbers.clone(), pick));
            }
            hit
        }
    }
}

/// The generator of one (model, call), seeded on first use.
struct LazyRng<'a> {
    seed: u64,
    position: [u8; 4],
    name: &'static str,
    call_id: &'a str,
    rng: Option<ChaCha8Rng>,
}

impl LazyRng<'_> {
    fn get(&mut self) -> &mut ChaCha8Rng {
        let (seed, position, name, call_id) = (self.seed, self.position, self.name, self.call_id);
        self.rng.get_or_insert_with(|| {
            seed::rng(
                seed,
                &[b"drift", &position, name.as_bytes(), call_id.as_bytes()],
            )
        })
    }
}

/// A Bernoulli draw and a uniform amount in `[min, max]`, both always drawn.
fn draw(rng: &mut ChaCha8Rng, probability: f64, min: i64, max: i64) -> (bool, i64) {
    let hit = rng.random_bool(probability);
    let amount = rng.random_range(min..=max.max(min));
    (hit, amount)
}

/// Rounds a duration to a multiple of `increment` (at least 1).
pub(crate) fn round(duration: i64, increment: i64, mode: RoundingMode) -> i64 {
    let inc = increment.max(1);
    let d = duration.max(0);
    match mode {
        RoundingMode::Up => (d + inc - 1) / inc * inc,
        RoundingMode::Down => d / inc * inc,
        RoundingMode::Nearest => (2 * d + inc) / (2 * inc) * inc,
    }
}

#[cfg(test)]
#[path = "stats_tests.rs"]
mod stats_tests;
