//! mock-teams over real HTTP on loopback: every endpoint, hostile input, webhooks against a
//! mocked carrier, injected faults, HTTPS, and floods and stalled clients.

mod cli;
mod common;
mod endpoints;
mod faults;
mod flood;
mod fuzz;
mod hostile;
mod limits;
mod tls;
mod webhooks;
