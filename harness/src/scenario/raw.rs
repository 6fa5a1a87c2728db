//! The scenario file exactly as written: one serde struct per table, every key optional unless
//! the format requires it, so that conversion knows what was given and can check it all at once.
//!
//! Every struct denies unknown keys. No `flatten` and no `untagged`: both buffer the input and
//! lose the key path and span of an error.

use mock_carrier::DriftModel;
use mock_teams::FaultSettings;
use serde::Deserialize;

use super::duration::RawDuration;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScenario {
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) seed: u64,
    pub(crate) clock: Option<RawClock>,
    pub(crate) speed: Option<f64>,
    pub(crate) start: String,
    pub(crate) length: RawDuration,
    pub(crate) tick: Option<RawDuration>,
    pub(crate) tenants: Vec<RawTenant>,
    pub(crate) assignments: Option<RawAssignments>,
    pub(crate) calls: Option<RawCalls>,
    pub(crate) quality: Option<RawQuality>,
    pub(crate) carrier: Option<RawCarrier>,
    pub(crate) teams_faults: Option<FaultSettings>,
    pub(crate) reconciliation: Option<RawReconciliation>,
    pub(crate) expect: Option<RawExpect>,
    pub(crate) thresholds: Option<RawThresholds>,
    pub(crate) certification: Option<super::certification::RawCertification>,
}

/// `clock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawClock {
    Virtual,
    Realtime,
}

/// One `[[tenants]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTenant {
    pub(crate) id: Option<String>,
    pub(crate) numbers: u32,
    pub(crate) first_number: String,
}

/// `[assignments]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAssignments {
    pub(crate) assigned_at_start: Option<f64>,
    pub(crate) sip_host: Option<String>,
    pub(crate) assign_per_day: Option<f64>,
    pub(crate) update_per_day: Option<f64>,
    pub(crate) unassign_per_day: Option<f64>,
}

/// `[calls]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCalls {
    pub(crate) busy_hour_per_number: Option<f64>,
    pub(crate) daily_shape: Option<Vec<f64>>,
    pub(crate) answer_rate: Option<f64>,
    pub(crate) outbound_share: Option<f64>,
    pub(crate) duration: Option<RawLogNormal>,
    pub(crate) availability_delay: Option<RawExponential>,
    pub(crate) correction_rate: Option<f64>,
}

/// `calls.duration`: each key falls back to its default alone.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLogNormal {
    pub(crate) median: Option<RawDuration>,
    pub(crate) sigma: Option<f64>,
    pub(crate) max: Option<RawDuration>,
}

/// `calls.availability_delay`: each key falls back to its default alone.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExponential {
    pub(crate) mean: Option<RawDuration>,
    pub(crate) max: Option<RawDuration>,
}

/// `[quality]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawQuality {
    pub(crate) impaired_share: Option<f64>,
}

/// `carrier.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawCarrierKind {
    Mock,
    External,
}

/// `[carrier]`: the keys of both kinds, so that a key of the other kind gets a message that
/// says which kind it belongs to rather than a bare "unknown field".
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCarrier {
    pub(crate) kind: Option<RawCarrierKind>,
    pub(crate) url: Option<String>,
    pub(crate) profile: Option<String>,
    pub(crate) ack_delay: Option<RawDuration>,
    pub(crate) skip_page_index: Option<u32>,
    pub(crate) quality_full_cycles: Option<u32>,
    pub(crate) batch_size: Option<usize>,
    pub(crate) page_size: Option<u32>,
    pub(crate) drift: Option<Vec<DriftModel>>,
}

/// `[reconciliation]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReconciliation {
    pub(crate) tolerance: Option<RawDuration>,
    pub(crate) deadline: Option<RawDuration>,
}

/// `[expect]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExpect {
    pub(crate) failed_rules: Option<Vec<String>>,
}

/// `[thresholds]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawThresholds {
    pub(crate) min_match_rate: Option<f64>,
    pub(crate) max_ack_p99: Option<RawDuration>,
    pub(crate) max_minutes_difference: Option<f64>,
}
