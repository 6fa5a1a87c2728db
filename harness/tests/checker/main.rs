//! The checker's integration tests: every rule judged on hand-made histories kept as JSON files
//! under `fixtures/` (`<rule>-pass.json`, `<rule>-fail.json`), then the whole evaluation,
//! accuracy and conservation.

mod durations;
mod evaluate;
mod feeds;
mod numbers;
mod quality;
mod security;
mod support;
