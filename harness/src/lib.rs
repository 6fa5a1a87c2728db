//! The Operator Connect conformance harness: scenario files, the actors that play Teams admins,
//! traffic and the clock, the checker that judges a carrier's integration, and the commands
//! of `oc-harness`.

pub mod actors;
pub mod certify;
pub mod checker;
pub mod graph_pull;
pub mod load;
pub mod merge;
pub mod reconcile;
mod replay;
pub mod run;
pub mod scenario;
pub mod shard;

/// Exit code: everything passed (or the run showed exactly what its scenario expects).
pub const EXIT_PASSED: u8 = 0;
/// Exit code: a rule or threshold failed, or the run did not show what its scenario expects.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: bad input (scenario file, flags).
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit code: could not run (port, runtime), or the checker disagreed with ground truth.
pub const EXIT_COULD_NOT_RUN: u8 = 3;
