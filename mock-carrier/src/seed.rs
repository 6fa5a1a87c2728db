//! Deriving seeded generators: one per (run seed, purpose, key), through the project's one
//! seed derivation (`oc_protocol::seed::derive`, FNV-1a), seeding ChaCha8 with
//! `SeedableRng::seed_from_u64`.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub(crate) use oc_protocol::seed::derive;

/// The generator for one purpose and key, e.g. (`"drift/2/jitter"`, callId).
pub(crate) fn rng(seed: u64, parts: &[&[u8]]) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(derive(seed, parts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn the_same_key_gives_the_same_generator() {
        let a: u64 = rng(7, &[b"k"]).random();
        let b: u64 = rng(7, &[b"k"]).random();
        assert_eq!(a, b);
    }
}
