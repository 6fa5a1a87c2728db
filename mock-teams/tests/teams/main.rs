//! mock-teams over real HTTP on loopback: every endpoint, hostile input, webhooks against a
//! mocked carrier, and injected faults.

mod cli;
mod common;
mod endpoints;
mod faults;
mod hostile;
mod webhooks;
