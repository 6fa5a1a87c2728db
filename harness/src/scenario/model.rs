//! What a scenario file says, as types: the run's seed, clock and length; the tenants and their
//! numbers; assignment churn; calls and quality; the carrier under test; Teams-side faults;
//! reconciliation settings; and what the run is expected to show.

use mock_carrier::DriftModel;
use mock_carrier::config::{ClientConfig, MisbehaviourConfig};
use mock_teams::FaultSettings;
use oc_protocol::{RuleId, UnixMillis};

pub use super::certification::CertificationSpec;

/// A validated scenario. Durations are in ms, times in Unix ms.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// A short name (`smoke`).
    pub name: String,
    /// What it shows, in a sentence or two.
    pub description: String,
    /// Seeds every random choice.
    pub seed: u64,
    /// How simulated time runs.
    pub clock: Clock,
    /// Simulated start.
    pub start: UnixMillis,
    /// Simulated length of the traffic.
    pub length_ms: i64,
    /// Simulated time between clock steps (and carrier poll cycles).
    pub tick_ms: i64,
    /// The tenants, each with its numbers.
    pub tenants: Vec<TenantSpec>,
    /// Assignments at start and their churn.
    pub assignments: AssignmentSpec,
    /// Call arrivals, outcomes and timing.
    pub calls: CallSpec,
    /// Media quality.
    pub quality: QualitySpec,
    /// The carrier under test.
    pub carrier: CarrierSpec,
    /// Faults the Teams side injects.
    pub teams_faults: FaultSettings,
    /// Reconciliation settings.
    pub reconciliation: ReconciliationSpec,
    /// What the run must show.
    pub expect: Expectations,
    /// Limits that fail the run when crossed.
    pub thresholds: Thresholds,
    /// How `oc-harness certify` drives and waits for a real carrier.
    pub certification: CertificationSpec,
}

/// How simulated time runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Clock {
    /// As fast as the machine allows.
    Virtual,
    /// Against the wall clock, `speed` simulated seconds per real second.
    Realtime {
        /// Simulated seconds per wall-clock second (1 = real time).
        speed: f64,
    },
}

/// One tenant and its block of numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantSpec {
    /// The tenant id (lower-case UUID); derived from the seed when the file gives none.
    pub id: String,
    /// The file gave no id: `id` is derived from the seed, and follows a seed given on the
    /// command line ([`Scenario::with_seed`]).
    pub id_from_seed: bool,
    /// How many numbers.
    pub numbers: u32,
    /// The first number (E.164); the others follow it.
    pub first_number: String,
}

/// Assignments at start and their churn over the run.
#[derive(Debug, Clone, PartialEq)]
pub struct AssignmentSpec {
    /// Share of numbers assigned at start, 0 to 1.
    pub assigned_at_start: f64,
    /// The host of generated SIP URIs.
    pub sip_host: String,
    /// Assignments per unassigned number per simulated day.
    pub assign_per_day: f64,
    /// Updates per assigned number per simulated day.
    pub update_per_day: f64,
    /// Unassignments per assigned number per simulated day.
    pub unassign_per_day: f64,
}

/// Calls: arrivals with a daily shape, outcome, duration, direction, availability, corrections.
#[derive(Debug, Clone, PartialEq)]
pub struct CallSpec {
    /// Calls per assigned number in the busiest hour.
    pub busy_hour_per_number: f64,
    /// 24 relative weights, one per UTC hour; the largest is the busy hour.
    pub daily_shape: [f64; 24],
    /// Share of calls answered, 0 to 1.
    pub answer_rate: f64,
    /// Share of calls the Teams user placed (outbound), 0 to 1.
    pub outbound_share: f64,
    /// Talk time of answered calls: log-normal.
    pub duration: LogNormalSpec,
    /// Delay from a call's end to its records entering the feeds: exponential, capped.
    pub availability_delay: ExponentialSpec,
    /// Share of answered calls whose CDR Teams corrects later, 0 to 1.
    pub correction_rate: f64,
}

/// A log-normal distribution of durations, capped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogNormalSpec {
    /// The median, ms.
    pub median_ms: i64,
    /// The sigma of the underlying normal.
    pub sigma: f64,
    /// The largest value drawn, ms.
    pub max_ms: i64,
}

/// An exponential distribution of delays, capped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExponentialSpec {
    /// The mean, ms.
    pub mean_ms: i64,
    /// The largest value drawn, ms.
    pub max_ms: i64,
}

/// Media quality.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QualitySpec {
    /// Share of answered calls on an impaired network (their streams are poor), 0 to 1.
    pub impaired_share: f64,
}

/// The carrier under test.
#[derive(Debug, Clone, PartialEq)]
pub enum CarrierSpec {
    /// mock-carrier, in-process, with its drift models and misbehaviour profile.
    Mock {
        /// The drift models, applied in order.
        drift: Vec<DriftModel>,
        /// The misbehaviour profile and its parameters.
        misbehaviour: MisbehaviourConfig,
        /// Client timing, retries and batching.
        client: ClientConfig,
    },
    /// A carrier in another process, reached over the network.
    External {
        /// The carrier API's base URL.
        url: String,
    },
}

/// Reconciliation settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconciliationSpec {
    /// The largest difference still `matched`, ms.
    pub tolerance_ms: i64,
    /// Reports later than this after a call's end are `late`, simulated ms.
    pub deadline_ms: i64,
}

/// What the run must show; a run that shows otherwise fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectations {
    /// Exactly these `must` rules fail (empty: the run passes).
    pub failed_rules: Vec<RuleId>,
}

/// Limits that fail the run when crossed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// The smallest acceptable match rate, 0 to 1.
    pub min_match_rate: Option<f64>,
    /// The largest acceptable p99 webhook acknowledgement time, ms.
    pub max_ack_p99_ms: Option<u64>,
    /// The largest acceptable |minutes difference| over the run.
    pub max_minutes_difference: Option<f64>,
}
