//! mock-teams over real HTTP on loopback: every endpoint, hostile input, webhooks against a
//! mocked carrier, injected faults, HTTPS, Graph's call log, and floods and stalled clients.

mod cli;
mod common;
mod endpoints;
mod faults;
mod flood;
mod fuzz;
mod graph;
mod hostile;
mod limits;
mod tls;
mod webhooks;
