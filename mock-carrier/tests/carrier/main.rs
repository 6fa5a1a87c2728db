//! Integration tests of mock-carrier: its API on the wire, its client loop against a fake
//! Teams on wiremock, and each misbehaviour profile breaking its one rule.

mod api;
mod binary;
mod client_loop;
mod fuzz;
mod hostile;
mod profiles;
mod teams;
mod webhooks;
