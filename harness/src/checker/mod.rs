//! The checker: every conformance rule as a state machine folded over a run (live, or replayed
//! from a kept [`History`]), the reconciliation accuracy against the mock carrier's ground
//! truth, and conservation.

pub mod accuracy;
pub(crate) mod first;
pub mod history;
pub mod rules;
pub mod stream;

pub use history::History;
pub use stream::{CallRow, CheckResult, Checker, End, Finished, Observation, evaluate};
