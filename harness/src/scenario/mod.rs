//! Scenario files: the model, loading with precise errors, and checking.

mod carrier;
mod certification;
pub mod check;
pub(crate) mod convert;
pub mod defaults;
pub mod duration;
mod expect;
#[cfg(test)]
mod files_tests;
pub mod load;
pub mod model;
mod raw;
mod reference;
mod spans;
mod structure;
mod tenants;
mod traffic;

pub use check::{check_report, summary};
pub use duration::{format_duration, parse_duration};
pub use load::{Problem, ScenarioError, load, parse};
pub use model::*;
pub use tenants::derived_tenant_id;
