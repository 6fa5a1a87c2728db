//! The history of a run: everything the checker judges, recorded by the run and nothing else.
//! Rules are pure functions of it, so that a history kept as a data file reproduces a verdict.

use oc_observe::GroundTruth;
use oc_observe::{Exchange, ReportedCall};
use oc_protocol::{
    CarrierNumberView, NumberEvent, QualityRecord, ReconciliationItem, TeamsNumber, UnixMillis,
};
use serde::{Deserialize, Serialize};

/// Everything a run recorded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct History {
    /// The settings the rules judge with.
    pub settings: CheckSettings,
    /// Every exchange the Teams side observed (carrier → Teams requests and Teams → carrier
    /// webhook attempts), sorted by `seq`.
    pub exchanges: Vec<Exchange>,
    /// Every number event Teams generated, in the order generated.
    pub events: Vec<NumberEvent>,
    /// Teams' final state of every number of the carrier, by number.
    pub teams_numbers: Vec<TeamsNumber>,
    /// The carrier's state probe of every number, after deliveries settled, by number.
    pub probes: Vec<Probe>,
    /// The carrier's poll cycles, in order: which exchanges each one made.
    pub cycles: Vec<PollCycle>,
    /// Every call Teams generated, in callId order.
    pub calls: Vec<CallFact>,
    /// Teams' reconciliation of the run's window at its end: every item of every class (the
    /// report's classes and the accuracy check read it; the duration rules do not).
    pub reconciliation: Vec<ReconciliationItem>,
    /// What Teams received for every call the carrier reported, in callId order: the facts
    /// the duration rules decide from.
    #[serde(default)]
    pub reported: Vec<ReportedCall>,
    /// Simulated time when the run was judged: calls ending later are not yet due a report.
    /// `None` judges every call.
    #[serde(default)]
    pub judged_at: Option<UnixMillis>,
    /// Every quality record of the carrier's feed as Teams' store renders it at the end, for the
    /// report's figures. QUA-CLASS does not read it: it judges the records on the wire.
    pub quality_served: Vec<QualityRecord>,
    /// Probes of the carrier's signature checking (forged or replayed notifications).
    pub signature_probes: Vec<SignatureProbe>,
    /// Probes of Teams' isolation between carriers.
    pub isolation_probes: Vec<IsolationProbe>,
    /// The mock carrier's ground truth, when the carrier is the mock.
    pub truth: Option<GroundTruth>,
    /// The certification legs the harness posted to the carrier's call-legs hook, in the order
    /// posted (empty in a simulation).
    #[serde(default)]
    pub legs: Vec<LegFact>,
}

/// A certification leg: what the carrier's switch would have recorded (PROTOCOL.md 2.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegFact {
    /// The call.
    pub call_id: String,
    /// The carrier's number.
    pub telephone_number: String,
    /// Answered, simulated.
    pub connect: UnixMillis,
    /// Ended, simulated.
    pub end: UnixMillis,
    /// Whether Teams had the number assigned at `connect` (when not, the carrier must not
    /// report it [DUR-UNEXPECTED]).
    pub assigned: bool,
}

/// The settings the rules judge with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckSettings {
    /// The largest difference still `matched`, ms.
    pub tolerance_ms: i64,
    /// The reporting deadline after a call's end, simulated ms.
    pub deadline_ms: i64,
    /// How long a carrier has to acknowledge a webhook, real ms (5000).
    pub ack_deadline_ms: u64,
    /// The carrier polls on its own clock (certification): its poll cycles are read from the
    /// wire ([`super::stream::WireCycles`]) rather than marked by the run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cycles_on_the_wire: bool,
}

impl Default for CheckSettings {
    fn default() -> Self {
        Self {
            tolerance_ms: 1_000,
            deadline_ms: 86_400_000,
            ack_deadline_ms: 5_000,
            cycles_on_the_wire: false,
        }
    }
}

/// The carrier's answer to `GET /oc/v1/numbers/{telephoneNumber}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    /// The number probed.
    pub telephone_number: String,
    /// The probe's exchange, when it was recorded.
    #[serde(default)]
    pub seq: Option<u64>,
    /// The HTTP status, or none when the carrier did not answer.
    pub status: Option<u16>,
    /// The view, when the answer was a valid `CarrierNumberView`.
    pub view: Option<CarrierNumberView>,
    /// Why there is no view (transport error, invalid body).
    pub error: Option<String>,
}

/// One poll cycle the harness asked the carrier for (the mock), or one span between two ends
/// of the CDR feed (a carrier polling on its own clock): the exchanges it made are those with
/// `seq` in `first_seq..=last_seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollCycle {
    /// Simulated time of the cycle.
    pub sim_time: UnixMillis,
    /// The first exchange seq that belongs to it.
    pub first_seq: u64,
    /// The last exchange seq that belongs to it (inclusive); below `first_seq` when empty.
    pub last_seq: u64,
}

/// A call Teams generated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallFact {
    /// The call.
    pub call_id: String,
    /// The carrier's number.
    pub telephone_number: String,
    /// Whether it was answered.
    pub answered: bool,
    /// Teams' final duration, ms (0 when unanswered).
    pub duration_ms: i64,
    /// When it ended, simulated.
    pub end: UnixMillis,
    /// Whether Teams corrected its record.
    pub corrected: bool,
}

/// A forged or replayed notification sent to the carrier, and what came of it [SEC-SIGNATURE].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignatureProbe {
    /// `missing`, `wrong` or `stale`.
    pub kind: String,
    /// The number the forged event was about (one Teams never gave the carrier).
    pub telephone_number: String,
    /// The carrier's status for the forged notification, or none when it did not answer.
    pub status: Option<u16>,
    /// The carrier's state probe of that number afterwards (404 when not applied).
    pub probe_status: Option<u16>,
    /// The exchanges of the forged notification and of the probe after it.
    #[serde(default)]
    pub seqs: Vec<u64>,
}

/// A request made with one carrier's token on another carrier's data [SEC-ISOLATION].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IsolationProbe {
    /// What was tried.
    pub what: String,
    /// The status Teams answered.
    pub status: u16,
    /// The status the protocol requires (401 or 404).
    pub expected: u16,
}
