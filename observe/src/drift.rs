//! The drift models mock-carrier applies to a call, as a scenario configures them and the ground
//! truth records them: each one's name, parameters and the checks on them.

use serde::{Deserialize, Serialize};

/// How a billing increment rounds a duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoundingMode {
    /// To the next multiple of the increment (how most carriers bill).
    Up,
    /// To the previous multiple.
    Down,
    /// To the nearest multiple, halves up.
    Nearest,
}

/// One way the carrier's switch view of a call differs from Teams' record, with its parameters.
///
/// Models compose: a call goes through the configured list in order, and each model sees the
/// times the previous ones produced. Every random draw comes from the call's own generator
/// (ChaCha8, seeded from a fixed FNV-1a hash of the run seed, the model's position and name,
/// and the callId), so what a call gets does not depend on the order calls arrive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "snake_case", deny_unknown_fields)]
pub enum DriftModel {
    /// Every duration is longer by `ms` (shorter when negative): the end moves.
    Offset {
        /// The offset, in ms.
        ms: i64,
    },
    /// Durations rounded to a billing increment (e.g. 6000 or 60000 ms): the end moves.
    Round {
        /// The increment, in ms; at least 1.
        increment_ms: i64,
        /// Up, down or nearest.
        mode: RoundingMode,
    },
    /// Gaussian noise on the end time: `N(mean_ms, sigma_ms)`, never before the connect time.
    Jitter {
        /// Standard deviation, ms; at least 0.
        sigma_ms: f64,
        /// Mean, ms.
        #[serde(default)]
        mean_ms: f64,
    },
    /// With `probability`, the switch saw the 200 OK later: the connect moves later by a delay
    /// uniform in `[min_ms, max_ms]`, never past the end.
    LateAnswer {
        /// Share of calls affected, 0 to 1.
        probability: f64,
        /// Shortest delay, ms.
        min_ms: i64,
        /// Longest delay, ms.
        max_ms: i64,
    },
    /// With `probability`, the switch missed the BYE: the end moves later by an extension
    /// uniform in `[min_ms, max_ms]` (typically an hour or more).
    Hung {
        /// Share of calls affected, 0 to 1.
        probability: f64,
        /// Shortest extension, ms.
        min_ms: i64,
        /// Longest extension, ms.
        max_ms: i64,
    },
    /// Each telephone number is homed on one of `switches` switches; each switch's clock is off
    /// by a fixed skew uniform in `[-max_skew_ms, max_skew_ms]` and runs fast or slow by a rate
    /// uniform in `[-max_rate_ppm, max_rate_ppm]`. Skew moves both times (the duration is
    /// unchanged); the rate stretches the duration.
    ClockSkew {
        /// How many switches; at least 1.
        switches: u32,
        /// Largest skew, ms; at least 0.
        max_skew_ms: i64,
        /// Largest rate error, parts per million; at least 0.
        #[serde(default)]
        max_rate_ppm: f64,
    },
    /// With `probability`, the record is lost: never reported (Teams classes it `missing`).
    Drop {
        /// Share of calls affected, 0 to 1.
        probability: f64,
    },
    /// With `probability`, the record is reported twice, identically, in two requests.
    Duplicate {
        /// Share of calls affected, 0 to 1.
        probability: f64,
    },
    /// With `probability`, the report is held back until `extra_ms` after the reporting deadline
    /// (the top-level `deadline_ms` after Teams' end time).
    AfterDeadline {
        /// Share of calls affected, 0 to 1.
        probability: f64,
        /// How long past the deadline, ms; at least 1.
        #[serde(default = "default_extra_ms")]
        extra_ms: i64,
    },
    /// With `probability` per call, the carrier also reports a fabricated call (a fresh callId,
    /// the same times) on one of `numbers` that is not assigned in its own view at that time.
    UnassignedNumber {
        /// Share of calls that spawn a fabricated one, 0 to 1.
        probability: f64,
        /// Candidate numbers, E.164: numbers the carrier holds that are not assigned.
        numbers: Vec<String>,
    },
}

fn default_extra_ms() -> i64 {
    60_000
}

impl DriftModel {
    /// The model's name, as in the `model` key and in ground-truth tags.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Offset { .. } => "offset",
            Self::Round { .. } => "round",
            Self::Jitter { .. } => "jitter",
            Self::LateAnswer { .. } => "late_answer",
            Self::Hung { .. } => "hung",
            Self::ClockSkew { .. } => "clock_skew",
            Self::Drop { .. } => "drop",
            Self::Duplicate { .. } => "duplicate",
            Self::AfterDeadline { .. } => "after_deadline",
            Self::UnassignedNumber { .. } => "unassigned_number",
        }
    }

    /// Every problem with the parameters, each as (key, message).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let mut probability = |p: f64| {
            if !(0.0..=1.0).contains(&p) {
                out.push(("probability", format!("must be from 0 to 1, is {p}")));
            }
        };
        match self {
            Self::Offset { .. } => {}
            Self::Round { increment_ms, .. } => {
                if *increment_ms < 1 {
                    out.push(("increment_ms", format!("must be >= 1, is {increment_ms}")));
                }
            }
            Self::Jitter { sigma_ms, mean_ms } => {
                if !(sigma_ms.is_finite() && *sigma_ms >= 0.0) {
                    out.push(("sigma_ms", format!("must be >= 0, is {sigma_ms}")));
                }
                if !mean_ms.is_finite() {
                    out.push(("mean_ms", "must be a finite number".to_owned()));
                }
            }
            Self::LateAnswer {
                probability: p,
                min_ms,
                max_ms,
            }
            | Self::Hung {
                probability: p,
                min_ms,
                max_ms,
            } => {
                probability(*p);
                if *min_ms < 0 || max_ms < min_ms {
                    out.push((
                        "max_ms",
                        format!("must satisfy 0 <= min_ms <= max_ms, are {min_ms} and {max_ms}"),
                    ));
                }
            }
            Self::ClockSkew {
                switches,
                max_skew_ms,
                max_rate_ppm,
            } => {
                if *switches < 1 {
                    out.push(("switches", "must be >= 1".to_owned()));
                }
                if *max_skew_ms < 0 {
                    out.push(("max_skew_ms", format!("must be >= 0, is {max_skew_ms}")));
                }
                if !(max_rate_ppm.is_finite() && (0.0..1e6).contains(max_rate_ppm)) {
                    out.push((
                        "max_rate_ppm",
                        format!("must be from 0 to below 1000000, is {max_rate_ppm}"),
                    ));
                }
            }
            Self::Drop { probability: p } | Self::Duplicate { probability: p } => probability(*p),
            Self::AfterDeadline {
                probability: p,
                extra_ms,
            } => {
                probability(*p);
                if *extra_ms < 1 {
                    out.push(("extra_ms", format!("must be >= 1, is {extra_ms}")));
                }
            }
            Self::UnassignedNumber {
                probability: p,
                numbers,
            } => {
                probability(*p);
                if numbers.is_empty() {
                    out.push(("numbers", "must list at least one number".to_owned()));
                }
                for n in numbers {
                    if !oc_protocol::validate::is_e164(n) {
                        out.push(("numbers", format!("{n:?} is not an E.164 number")));
                    }
                }
            }
        }
        out
    }
}
