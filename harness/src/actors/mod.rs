//! The actors of a run (actix): each owns one piece of state and talks only by messages.
//!
//! - [`clock::ClockActor`] owns simulated time and pushes each tick to its subscribers, in
//!   order, starting the next only when all answered;
//! - [`teams::TeamsActor`] plays Teams' side of each tick: it asks the admins for their changes
//!   and the traffic for its calls, and puts them into Teams;
//! - [`admin::AdminActor`] plays the Teams admins: initial assignments and their churn;
//! - [`traffic::TrafficActor`] places calls on assigned numbers with the daily shape;
//! - [`carrier::CarrierActor`] runs the mock carrier's poll cycle each tick (`run`);
//! - [`progress::ProgressActor`] shows how far the run got;
//! - [`checker::CheckerActor`], on a thread of its own, folds every exchange, event, cycle and
//!   leg into the rules as it happens.
//!
//! `run` and `certify` wire them the same way (`run::wire`); a certification adds the
//! legs (`certify::legs::LegsActor`) and paces the clock on the wall clock.
//!
//! Every random choice of an actor comes from its own generator, seeded from the scenario's
//! seed and the actor's name ([`actor_rng`]), so that runs repeat.

pub mod admin;
pub mod carrier;
pub mod checker;
pub mod clock;
pub mod messages;
pub mod progress;
pub mod teams;
pub mod traffic;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The generator of the actor `name` in a run seeded with `seed`: ChaCha8 seeded through the
/// project's one seed derivation ([`oc_protocol::seed::derive`]), the same on every machine and
/// in every run.
pub fn actor_rng(seed: u64, name: &str) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(oc_protocol::seed::derive(seed, &[name.as_bytes()]))
}
