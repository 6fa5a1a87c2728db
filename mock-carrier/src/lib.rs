//! The carrier side of the Operator Connect data exchange, for the harness: a carrier that is
//! right by default, drifts or misbehaves on request, and reports exactly what it did.
//!
//! - [`MockCarrier`] serves the carrier API (PROTOCOL.md 2) and runs the client loop against
//!   Teams (PROTOCOL.md 3), driven with simulated time by the caller.
//! - [`DriftModel`]s turn Teams' record of a call (or a posted leg) into the carrier's switch
//!   view of it; [`Profile`]s break exactly one conformance rule each.
//! - [`GroundTruth`] says, per call, what was done to it and the class Teams must give it.

mod carrier;
mod client;
pub mod config;
pub mod drift;
mod errors;
mod ledger;
mod numbers;
pub use oc_observe::profile;
mod seed;
mod server;
mod shared;
pub mod truth;

pub use carrier::MockCarrier;
pub use client::CycleOutcome;
pub use config::{CallSource, CarrierConfig, ConfigError};
pub use drift::{DriftModel, RoundingMode};
pub use errors::{ClientError, StartError};
pub use ledger::SwitchRecord;
pub use profile::Profile;
pub use server::GROUND_TRUTH_PATH;
pub use truth::{CallTruth, GroundTruth, ReportedDuration};
