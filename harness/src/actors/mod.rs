//! The actors of a run (actix): each owns one piece of state and talks only by messages.
//!
//! - [`clock::ClockActor`] owns simulated time and hands out ticks;
//! - [`admin::AdminActor`] plays the Teams admins: initial assignments and their churn;
//! - [`traffic::TrafficActor`] places calls on assigned numbers with the daily shape;
//! - [`checker::CheckerActor`] receives every exchange and every ground-truth fact, keeps the
//!   history, and judges it at the end.
//!
//! Every random choice of an actor comes from its own generator, seeded from the scenario's
//! seed and the actor's name ([`actor_rng`]), so that runs repeat.

pub mod admin;
pub mod checker;
pub mod clock;
pub mod messages;
pub mod traffic;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The generator of the actor `name` in a run seeded with `seed`: ChaCha8 seeded through the
/// project's one seed derivation ([`oc_protocol::seed::derive`]), the same on every machine and
/// in every run.
pub fn actor_rng(seed: u64, name: &str) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(oc_protocol::seed::derive(seed, &[name.as_bytes()]))
}
