//! `[certification]`: how `oc-harness certify` drives and waits for a real carrier — how long
//! it waits for the carrier to answer and to catch up, and how the legs it posts differ from
//! Teams' records. `oc-harness run` ignores the table.

use serde::Deserialize;

use super::convert::Findings;
use super::duration::RawDuration;

/// `[certification]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCertification {
    pub(crate) ready_timeout: Option<RawDuration>,
    pub(crate) quiet: Option<RawDuration>,
    pub(crate) leg_drift_share: Option<f64>,
    pub(crate) leg_drift: Option<RawDuration>,
    pub(crate) unassigned_legs: Option<u32>,
    pub(crate) closing_unassignments: Option<u32>,
    pub(crate) catch_up: Option<RawDuration>,
}

/// How `oc-harness certify` drives and waits for the carrier. Times are real (wall-clock) ms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CertificationSpec {
    /// How long to wait for the carrier's API to answer at all before giving up.
    pub ready_timeout_ms: i64,
    /// After the traffic, how long the harness still listens once the carrier has caught up
    /// (every leg reported): the poll cycle under way ends, and anything it would still report
    /// is seen.
    pub quiet_ms: i64,
    /// Share of legs whose switch recorded an end `leg_drift_ms` away from Teams' record
    /// (beyond the tolerance, so that reconciliation shows `drift`), 0 to 1.
    pub leg_drift_share: f64,
    /// How far those legs' ends are from Teams' (positive: later).
    pub leg_drift_ms: i64,
    /// Legs posted on numbers not assigned at their connect time, which the carrier must not
    /// report [DUR-UNEXPECTED].
    pub unassigned_legs: u32,
    /// Assigned numbers the admins unassign at the end of the traffic, so that convergence
    /// after an unassignment is always probed [NUM-STATE].
    pub closing_unassignments: u32,
    /// After the traffic, the longest wait for the carrier to report every leg and read the
    /// feeds to their end, beyond the reporting deadline.
    pub catch_up_ms: i64,
}

impl Default for CertificationSpec {
    fn default() -> Self {
        Self {
            ready_timeout_ms: 60_000,
            quiet_ms: 2_000,
            leg_drift_share: 0.05,
            leg_drift_ms: 3_000,
            unassigned_legs: 5,
            closing_unassignments: 2,
            catch_up_ms: 15_000,
        }
    }
}

/// Converts `[certification]`, every problem into `f`.
pub(crate) fn certification(raw: RawCertification, f: &mut Findings) -> CertificationSpec {
    let d = CertificationSpec::default();
    let ready_timeout_ms = f.positive_duration(
        "certification.ready_timeout",
        raw.ready_timeout.as_ref(),
        d.ready_timeout_ms,
    );
    let quiet_ms = f.positive_duration("certification.quiet", raw.quiet.as_ref(), d.quiet_ms);
    let leg_drift_ms = f.duration(
        "certification.leg_drift",
        raw.leg_drift.as_ref(),
        d.leg_drift_ms,
    );
    let catch_up_ms = f.duration(
        "certification.catch_up",
        raw.catch_up.as_ref(),
        d.catch_up_ms,
    );
    CertificationSpec {
        ready_timeout_ms: ready_timeout_ms.unwrap_or(d.ready_timeout_ms),
        quiet_ms: quiet_ms.unwrap_or(d.quiet_ms),
        leg_drift_share: f.share(
            "certification.leg_drift_share",
            raw.leg_drift_share,
            d.leg_drift_share,
        ),
        leg_drift_ms: leg_drift_ms.unwrap_or(d.leg_drift_ms),
        unassigned_legs: raw.unassigned_legs.unwrap_or(d.unassigned_legs),
        closing_unassignments: raw.closing_unassignments.unwrap_or(d.closing_unassignments),
        catch_up_ms: catch_up_ms.unwrap_or(d.catch_up_ms),
    }
}
