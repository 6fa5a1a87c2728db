//! The mock carrier's ground truth: per call, what Teams recorded, what the carrier reported,
//! what was done to it and the reconciliation class and flags Teams must give it (PROTOCOL.md
//! 3.5). mock-carrier computes it; the checker compares Teams' verdicts with it.

use oc_protocol::{ReconClass, ReconCounts, ReconFlagCounts, RuleId};
use serde::{Deserialize, Serialize};

use crate::drift::DriftModel;
use crate::profile::Profile;

/// What the carrier did, and what Teams must conclude from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroundTruth {
    /// The run seed.
    pub seed: u64,
    /// The misbehaviour profile.
    pub profile: Profile,
    /// The rule the profile breaks, if any.
    pub broken_rule: Option<RuleId>,
    /// The tolerance the classes below were computed with.
    pub tolerance_ms: i64,
    /// The reporting deadline the `late` flags were computed with.
    pub deadline_ms: i64,
    /// The drift models, in the order applied.
    pub drift: Vec<DriftModel>,
    /// How many calls must end in each class.
    pub counts: ReconCounts,
    /// How many calls must carry each flag.
    pub flags: ReconFlagCounts,
    /// Calls a long-running `mock-carrier serve` retired from its ledger once settled
    /// (reported, acknowledged, past its `retire_after_ms`): counted in `counts` and `flags`,
    /// no longer listed in `calls`. Always 0 in a `run`.
    #[serde(default)]
    pub retired: u64,
    /// Every call the carrier still holds, in callId order.
    pub calls: Vec<CallTruth>,
}

/// One call of the ground truth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallTruth {
    /// The call.
    pub call_id: String,
    /// The carrier's number it was on.
    pub telephone_number: String,
    /// `cdr` (from Teams' feed), `leg` (from the certification hook) or `fabricated`.
    pub origin: String,
    /// The latest version of Teams' record the carrier read, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teams_version: Option<u32>,
    /// Teams' duration from that version; absent when unanswered or unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teams_duration_ms: Option<i64>,
    /// The posted leg's duration, for a leg.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leg_duration_ms: Option<i64>,
    /// The duration the carrier's switch view gives; absent when dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switch_duration_ms: Option<i64>,
    /// Every report Teams accepted, in order.
    pub reported: Vec<ReportedDuration>,
    /// What was done to it: drift model names, `skipped_page`, `not_assigned_at_connect`,
    /// `rejected`.
    pub tags: Vec<String>,
    /// The class Teams must give it; absent when it is in no class (not answered and not
    /// reported, or a leg whose Teams record the carrier has not read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_class: Option<ReconClass>,
    /// First reported after the deadline.
    pub late: bool,
    /// Reported again identically.
    pub duplicate: bool,
    /// Reported again differently.
    pub corrected: bool,
}

/// One accepted report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportedDuration {
    /// The reported duration.
    pub duration_ms: i64,
    /// The simulated time of the poll cycle that sent it.
    pub reported_at: String,
    /// The request's Idempotency-Key.
    pub idempotency_key: String,
}
