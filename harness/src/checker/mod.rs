//! The checker: every conformance rule as a pure function of a run's [`History`], the
//! reconciliation accuracy against the mock carrier's ground truth, and conservation.

pub mod accuracy;
pub mod evaluate;
pub mod history;
pub mod rules;

pub use evaluate::{CheckResult, evaluate};
pub use history::History;
