//! Drift and fault models: how the carrier's switch view of a call is derived from the call's
//! reference times, and what is done to its report (dropped, duplicated, held, fabricated).

mod apply;

pub(crate) use apply::{CallTimes, DriftInput, SwitchView, switch_view};
pub use oc_observe::{DriftModel, RoundingMode};
