//! The Operator Connect data exchange, as the harness speaks, serves and checks it: wire types,
//! validation, webhook signing, the poor-stream classification and the conformance rule
//! catalogue. No I/O and no async: both mock servers and the harness build on this crate, so
//! that they agree on every name and every rule.
//!
//! The protocol itself is `PROTOCOL.md` in this crate's folder (the project's copy leads); the
//! OpenAPI document of both APIs is `openapi.yaml` beside this crate's `Cargo.toml`.

/// Declares a wire enum: serde names, `as_str`, `Display` and the list of all values.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $wire:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize,
        )]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $wire)] $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The name on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $wire, )+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub mod body;
pub mod cdr;
pub mod durations;
pub mod graph;
pub mod hash;
pub mod ids;
pub mod json_write;
pub mod legs;
pub mod limits;
pub mod log_throttle;
pub mod numbers;
pub mod paging;
pub mod problem;
pub mod quality;
pub mod reconciliation;
pub mod rules;
pub mod seed;
pub mod signing;
pub mod timestamp;
pub mod validate;

#[cfg(feature = "testing")]
pub mod testing;

pub use cdr::{CallDurationSource, CallRecord, Direction};
pub use durations::{DurationReport, DurationReportBatch, DurationReportResponse, RejectedRecord};
pub use graph::{GraphError, GraphPage, PstnCallLogRow};
pub use legs::{CallLeg, CallLegBatch, CallLegsAccepted};
pub use numbers::{
    Assignee, AssigneeType, AssignmentState, CarrierNumberView, NumberAssignmentNotification,
    NumberEvent, NumberEventType, NumberUsage, TeamsNumber,
};
pub use paging::Page;
pub use problem::{FieldError, Problem, ProblemKind};
pub use quality::{AudioCodec, QualityRecord, StreamDirection, is_poor_stream};
pub use reconciliation::{
    DriftStats, MinutesTotals, ReconClass, ReconCounts, ReconFlagCounts, ReconciliationItem,
    ReconciliationSummary,
};
pub use rules::{Party, Rule, RuleId, Severity};
pub use timestamp::{UnixMillis, format_timestamp, parse_timestamp};
pub use validate::{Validate, ValidationErrors};

/// The protocol version this crate implements (the `v1` of every path).
pub const PROTOCOL_VERSION: u32 = 1;

/// The largest request body either API accepts; larger ones get `413`.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The header carrying a call-durations request's idempotency key.
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";

/// The paths of both APIs.
pub mod paths {
    /// Carrier API: the number-assignment webhook (PROTOCOL.md 2.1).
    pub const NUMBER_ASSIGNMENTS: &str = "/oc/v1/notifications/number-assignments";
    /// Carrier API: the state probe, followed by the E.164 number (2.2).
    pub const CARRIER_NUMBER_PREFIX: &str = "/oc/v1/numbers/";
    /// Carrier API: the call-legs certification hook (2.3).
    pub const CALL_LEGS: &str = "/oc/v1/test/call-legs";
    /// Teams API: full number state (3.1).
    pub const NUMBERS: &str = "/oc/v1/numbers";
    /// Teams API: the CDR change feed (3.2).
    pub const CDRS_DELTA: &str = "/oc/v1/cdrs/delta";
    /// Teams API: CDRs by start-time window (3.2).
    pub const CDRS: &str = "/oc/v1/cdrs";
    /// Teams API: the quality change feed (3.3).
    pub const QUALITY_DELTA: &str = "/oc/v1/quality/delta";
    /// Teams API: duration reports (3.4).
    pub const CALL_DURATIONS: &str = "/oc/v1/call-durations";
    /// Teams API: the reconciliation summary (3.5).
    pub const RECONCILIATION: &str = "/oc/v1/reconciliation";
    /// Teams API: the reconciled calls of one class (3.5).
    pub const RECONCILIATION_ITEMS: &str = "/oc/v1/reconciliation/items";
    /// Microsoft Graph's PSTN call log, as the Teams sandbox serves it (3.6): the function's
    /// parameters follow in parentheses.
    pub const GRAPH_PSTN_CALLS: &str = crate::graph::PSTN_CALLS_PATH;
}
