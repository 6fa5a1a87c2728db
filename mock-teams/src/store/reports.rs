//! The carriers' duration reports (PROTOCOL.md 3.4): idempotency keys, per-record acceptance,
//! and each call's reconciliation slot (latest duration, late/duplicate/corrected flags).
//!
//! The flags are Teams' reconciliation as the API serves it (PROTOCOL.md 3.5). The conformance
//! rules do not read them: the harness's checker decides DUR-DEADLINE, DUR-DUPLICATE,
//! DUR-COMPLETE and DUR-UNEXPECTED itself from the facts kept here ([`ReportedCall`]).

use std::hash::{Hash, Hasher};

use oc_protocol::durations::{ParsedDurationReport, parse_duration_report};
use oc_protocol::problem::ProblemKind;
use oc_protocol::{DurationReport, DurationReportResponse, Problem, UnixMillis, parse_timestamp};
use sha2::{Digest, Sha256};

use super::Store;

const REPORTED: u8 = 1;
const LATE: u8 = 2;
const DUPLICATE: u8 = 4;
const CORRECTED: u8 = 8;

/// A call's reconciliation state: 24 bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ReconSlot {
    /// A hash of the latest report, to tell a duplicate from a correction.
    content: u64,
    /// When the first report arrived, simulated: a fact the checker judges lateness from.
    first_at: UnixMillis,
    /// The carrier's latest duration, ms.
    carrier_ms: u32,
    flags: u8,
}

impl ReconSlot {
    pub(crate) fn carrier_ms(&self) -> Option<i64> {
        (self.flags & REPORTED != 0).then_some(i64::from(self.carrier_ms))
    }

    pub(crate) fn late(&self) -> bool {
        self.flags & LATE != 0
    }

    pub(crate) fn duplicate(&self) -> bool {
        self.flags & DUPLICATE != 0
    }

    pub(crate) fn corrected(&self) -> bool {
        self.flags & CORRECTED != 0
    }

    /// When the call was first reported, if it was.
    pub(crate) fn first_at(&self) -> Option<UnixMillis> {
        (self.flags & REPORTED != 0).then_some(self.first_at)
    }

    /// Takes a report received at `at`, the call's deadline being `deadline`.
    fn record(&mut self, report: &DurationReport, at: UnixMillis, deadline: UnixMillis) {
        let content = content_hash(report);
        // Durations beyond u32 ms (49 days) are clamped; such a call is drift in any case.
        let ms = u32::try_from(report.duration_ms.max(0)).unwrap_or(u32::MAX);
        if self.flags & REPORTED == 0 {
            self.flags |= REPORTED;
            self.first_at = at;
            if at > deadline {
                self.flags |= LATE;
            }
        } else if self.content == content {
            self.flags |= DUPLICATE;
        } else {
            self.flags |= CORRECTED;
        }
        self.content = content;
        self.carrier_ms = ms;
    }
}

fn content_hash(report: &DurationReport) -> u64 {
    #[expect(
        deprecated,
        reason = "SipHasher with fixed keys gives a run-independent hash"
    )]
    let mut hasher = std::hash::SipHasher::new();
    report.telephone_number.hash(&mut hasher);
    report.connect_date_time.hash(&mut hasher);
    report.end_date_time.hash(&mut hasher);
    report.duration_ms.hash(&mut hasher);
    hasher.finish()
}

pub use oc_observe::ReportedCall;

/// A report whose call id matches no call of the reporting carrier (yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unmatched {
    pub(crate) telephone_number: String,
    pub(crate) connect: UnixMillis,
    pub(crate) slot: ReconSlot,
}

impl Unmatched {
    /// The slot once the call is known: lateness is judged against the call's own deadline.
    pub(crate) fn into_slot(self, deadline: UnixMillis) -> ReconSlot {
        let mut slot = self.slot;
        slot.flags &= !LATE;
        if self.slot.first_at > deadline {
            slot.flags |= LATE;
        }
        slot
    }
}

/// What a carrier's idempotency key stands for: the body's digest and the first answer.
#[derive(Debug, Clone)]
pub(crate) struct IdempotencyEntry {
    digest: [u8; 32],
    response: DurationReportResponse,
}

/// The answer to `POST /call-durations`.
#[derive(Debug, Clone, PartialEq)]
pub enum ReportOutcome {
    /// `200` with the response: the first time this key was used.
    Applied(DurationReportResponse),
    /// `200` with the first response again: the same key and the same body; nothing changed.
    Replayed(DurationReportResponse),
    /// `400`/`422`: the body was refused whole, or the key was reused with another body.
    Refused(Problem),
}

impl Store {
    /// Takes a duration report from a carrier at the current simulated time [DUR-SCHEMA]
    /// [DUR-IDEMPOTENT]: valid records are accepted one by one, invalid ones rejected with their
    /// pointers.
    pub(crate) fn report_durations(
        &mut self,
        carrier: u16,
        key: &str,
        body: &[u8],
    ) -> ReportOutcome {
        let digest: [u8; 32] = Sha256::digest(body).into();
        let c = usize::from(carrier);
        if let Some(entry) = self.carriers[c].idempotency.get(key) {
            return if entry.digest == digest {
                ReportOutcome::Replayed(entry.response.clone())
            } else {
                ReportOutcome::Refused(Problem::new(
                    ProblemKind::IdempotencyKeyReused,
                    format!(
                        "Idempotency-Key {key:?} was first used with another body; \
                         use a new key for a new batch"
                    ),
                ))
            };
        }
        let parsed: ParsedDurationReport = match parse_duration_report(body) {
            Ok(parsed) => parsed,
            // A refused body is not remembered under its key: the carrier may fix and resend.
            Err(problem) => return ReportOutcome::Refused(problem),
        };
        let mut response = DurationReportResponse {
            accepted: 0,
            rejected: Vec::new(),
        };
        for record in parsed.records {
            match record {
                Ok(report) => {
                    self.accept_report(carrier, &report);
                    response.accepted += 1;
                }
                Err(rejected) => response.rejected.push(rejected),
            }
        }
        self.carriers[c].idempotency.insert(
            key.to_owned(),
            IdempotencyEntry {
                digest,
                response: response.clone(),
            },
        );
        ReportOutcome::Applied(response)
    }

    fn accept_report(&mut self, carrier: u16, report: &DurationReport) {
        let now = self.now;
        let deadline_ms = self.settings.reporting_deadline_ms;
        match self.call_ids.find(&report.call_id) {
            Some(index) if self.rows[index as usize].carrier == carrier => {
                let deadline = self.rows[index as usize].end() + deadline_ms;
                self.slots[index as usize].record(report, now, deadline);
            }
            // Unknown, or another carrier's call (which must not be revealed [SEC-ISOLATION]):
            // kept under this carrier, where it is `unexpected` unless its call arrives.
            _ => {
                // The record was validated, so its timestamps parse.
                let connect = parse_timestamp(&report.connect_date_time).unwrap_or(now);
                let end = parse_timestamp(&report.end_date_time).unwrap_or(now);
                let entry = self.carriers[usize::from(carrier)]
                    .unmatched
                    .entry(report.call_id.clone())
                    .or_insert_with(|| Unmatched {
                        telephone_number: report.telephone_number.clone(),
                        connect,
                        slot: ReconSlot::default(),
                    });
                entry.telephone_number.clone_from(&report.telephone_number);
                entry.connect = connect;
                entry.slot.record(report, now, end + deadline_ms);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(duration_ms: i64) -> DurationReport {
        DurationReport {
            call_id: "c".into(),
            telephone_number: "+14255550100".into(),
            connect_date_time: "2026-11-26T09:15:01.000Z".into(),
            end_date_time: "2026-11-26T09:16:02.000Z".into(),
            duration_ms,
        }
    }

    #[test]
    fn slot_flags_follow_the_reports() {
        let mut slot = ReconSlot::default();
        assert_eq!(slot.carrier_ms(), None);
        slot.record(&report(61_000), 10, 100);
        assert_eq!(slot.carrier_ms(), Some(61_000));
        assert!(!slot.late() && !slot.duplicate() && !slot.corrected());
        slot.record(&report(61_000), 20, 100);
        assert!(slot.duplicate() && !slot.corrected());
        slot.record(&report(61_001), 200, 100);
        assert!(slot.corrected());
        assert_eq!(slot.carrier_ms(), Some(61_001));
        assert!(!slot.late(), "lateness is decided by the first report");
        let mut late = ReconSlot::default();
        late.record(&report(61_000), 101, 100);
        assert!(late.late());
        assert_eq!(late.first_at(), Some(101));
        assert_eq!(std::mem::size_of::<ReconSlot>(), 24);
    }
}
