//! How the carrier's durations compare with Teams' records (PROTOCOL.md 3.5).

use serde::{Deserialize, Serialize};

use crate::validate::{Findings, Path, Validate};

/// The default tolerance between the two durations of a `matched` call.
pub const DEFAULT_TOLERANCE_MS: i64 = 1_000;

wire_enum! {
    /// The class every answered Teams call and every reported `callId` ends in.
    pub enum ReconClass {
        /// Both sides have it, within the tolerance.
        Matched = "matched",
        /// Both sides have it, beyond the tolerance.
        Drift = "drift",
        /// Teams has it; the carrier reported none.
        Missing = "missing",
        /// The carrier reported it; Teams has no such answered call of that carrier.
        Unexpected = "unexpected",
    }
}

/// `GET /oc/v1/reconciliation?from=&to=`: the classes as they stand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconciliationSummary {
    /// Start of the window of call start times (`startDateTime`), inclusive.
    pub from: String,
    /// End of the window, exclusive.
    pub to: String,
    /// The largest difference that still counts as `matched`.
    pub tolerance_ms: i64,
    /// How many calls are in each class.
    pub counts: ReconCounts,
    /// How many calls carry each flag.
    pub flags: ReconFlagCounts,
    /// `matched / (matched + drift + missing)`; null when Teams has no answered call.
    pub match_rate: Option<f64>,
    /// The signed difference (carrier − Teams) over the calls both sides have.
    pub drift_ms: DriftStats,
    /// Total minutes on each side.
    pub minutes: MinutesTotals,
}

/// How many calls are in each [`ReconClass`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconCounts {
    /// Within the tolerance.
    pub matched: u64,
    /// Beyond the tolerance.
    pub drift: u64,
    /// Not reported.
    pub missing: u64,
    /// Reported, but no such answered call of the carrier.
    pub unexpected: u64,
}

/// How many calls carry each flag.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconFlagCounts {
    /// First reported after the deadline.
    pub late: u64,
    /// Reported again, identically.
    pub duplicate: u64,
    /// Reported again, differently (the later report counts).
    pub corrected: u64,
}

/// Percentiles of the signed drift, in ms; all null when no call has both sides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DriftStats {
    /// Calls with both sides (`matched` + `drift`).
    pub count: u64,
    /// The most negative difference.
    pub min: Option<i64>,
    /// Median.
    pub p50: Option<i64>,
    /// 90th percentile.
    pub p90: Option<i64>,
    /// 99th percentile.
    pub p99: Option<i64>,
    /// The most positive difference.
    pub max: Option<i64>,
}

/// Total minutes on each side, over the window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MinutesTotals {
    /// Teams' durations of its answered calls.
    pub teams: f64,
    /// The carrier's reported durations (the latest report of each call).
    pub carrier: f64,
    /// `carrier − teams`.
    pub difference: f64,
}

/// One call in `GET /oc/v1/reconciliation/items?class=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconciliationItem {
    /// The call.
    pub call_id: String,
    /// Its class.
    pub class: ReconClass,
    /// The carrier's number (Teams', or the reported one for `unexpected`).
    pub telephone_number: String,
    /// Teams' duration; absent for `unexpected`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teams_duration_ms: Option<i64>,
    /// The carrier's latest duration; absent for `missing`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier_duration_ms: Option<i64>,
    /// `carrier − teams`; present for `matched` and `drift`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub difference_ms: Option<i64>,
    /// First reported after the deadline.
    pub late: bool,
    /// Reported again, identically.
    pub duplicate: bool,
    /// Reported again, differently.
    pub corrected: bool,
}

impl Validate for ReconciliationSummary {
    fn validate_at(&self, at: Path<'_>, out: &mut Findings) {
        let from = out.timestamp(at.key("from"), &self.from);
        let to = out.timestamp(at.key("to"), &self.to);
        if let (Some(f), Some(t)) = (from, to)
            && t <= f
        {
            out.push(at.key("to"), "must be later than from");
        }
        if self.tolerance_ms < 0 {
            out.push(at.key("toleranceMs"), "must be >= 0");
        }
        let c = self.counts;
        let answered = c.matched + c.drift + c.missing;
        match self.match_rate {
            None if answered > 0 => out.push(
                at.key("matchRate"),
                "must be a number while Teams has answered calls",
            ),
            Some(rate) if answered == 0 || !(0.0..=1.0).contains(&rate) => out.push(
                at.key("matchRate"),
                "must be matched / (matched + drift + missing), or null when that is 0 / 0",
            ),
            _ => {}
        }
        let drift = at.key("driftMs");
        if self.drift_ms.count != c.matched + c.drift {
            out.push(drift.key("count"), "must equal matched + drift");
        }
        let d = self.drift_ms;
        let all = [d.min, d.p50, d.p90, d.p99, d.max];
        if d.count == 0 {
            if all.iter().any(Option::is_some) {
                out.push(drift, "must hold only nulls when count is 0");
            }
        } else if let [Some(min), Some(p50), Some(p90), Some(p99), Some(max)] = all {
            if !(min <= p50 && p50 <= p90 && p90 <= p99 && p99 <= max) {
                out.push(drift, "must have min <= p50 <= p90 <= p99 <= max");
            }
        } else {
            out.push(drift, "must hold numbers when count is over 0");
        }
    }
}

impl Validate for ReconciliationItem {
    fn validate_at(&self, at: Path<'_>, out: &mut Findings) {
        out.call_id(at.key("callId"), &self.call_id);
        out.e164(at.key("telephoneNumber"), &self.telephone_number);
        let (teams, carrier, difference) = match self.class {
            ReconClass::Matched | ReconClass::Drift => (true, true, true),
            ReconClass::Missing => (true, false, false),
            ReconClass::Unexpected => (false, true, false),
        };
        for (key, value, wanted) in [
            ("teamsDurationMs", self.teams_duration_ms, teams),
            ("carrierDurationMs", self.carrier_duration_ms, carrier),
            ("differenceMs", self.difference_ms, difference),
        ] {
            match (value, wanted) {
                (Some(_), false) => {
                    out.push(
                        at.key(key),
                        format!("must be absent on a {} call", self.class),
                    );
                }
                (None, true) => {
                    out.push(at.key(key), format!("is required on a {} call", self.class));
                }
                (Some(v), true) if key != "differenceMs" && v < 0 => {
                    out.push(at.key(key), "must be >= 0");
                }
                _ => {}
            }
        }
        if let (Some(t), Some(c), Some(d)) = (
            self.teams_duration_ms,
            self.carrier_duration_ms,
            self.difference_ms,
        ) && d != c - t
        {
            out.push(
                at.key("differenceMs"),
                "must equal carrierDurationMs - teamsDurationMs",
            );
        }
        if self.class == ReconClass::Missing && (self.late || self.duplicate || self.corrected) {
            out.push(
                at,
                "a missing call has no report, so no late, duplicate or corrected flag",
            );
        }
    }
}
