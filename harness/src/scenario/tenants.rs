//! The tenants: ids given or derived from the seed, and blocks of numbers that stay E.164 and
//! never overlap.

use oc_protocol::validate::{is_e164, is_uuid};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::convert::Findings;
use super::model::TenantSpec;
use super::raw::RawTenant;

/// The tenant id derived from the seed for the tenant at `index`: a version-4 UUID from 128 bits
/// of ChaCha8, seeded through the project's one seed derivation ([`oc_protocol::seed::derive`])
/// of (`tenant`, the index's 8 little-endian bytes).
pub fn derived_tenant_id(seed: u64, index: usize) -> String {
    let index = u64::try_from(index).unwrap_or(u64::MAX).to_le_bytes();
    let mut rng = ChaCha8Rng::seed_from_u64(oc_protocol::seed::derive(seed, &[b"tenant", &index]));
    oc_protocol::ids::uuid_from_bits(rng.random::<u128>())
}

impl super::model::Scenario {
    /// The scenario run with `seed` instead of its own: every random choice follows the seed,
    /// the tenant ids the file left out included (ids the file gives stay as given).
    pub fn with_seed(&self, seed: u64) -> Self {
        let mut scenario = self.clone();
        scenario.seed = seed;
        for (i, tenant) in scenario.tenants.iter_mut().enumerate() {
            if tenant.id_from_seed {
                tenant.id = derived_tenant_id(seed, i);
            }
        }
        scenario
    }
}

/// A tenant's block of numbers, as integers (E.164 has no leading zero, so integer order is
/// number order and blocks compare as ranges).
struct Block {
    index: usize,
    first: u64,
    last: u64,
}

pub(crate) fn tenants(raw: &[RawTenant], seed: u64, f: &mut Findings) -> Vec<TenantSpec> {
    if raw.is_empty() {
        f.push(
            "tenants",
            "must list at least one tenant (a [[tenants]] table with numbers and first_number)",
        );
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut blocks = Vec::new();
    for (i, t) in raw.iter().enumerate() {
        let id = match &t.id {
            Some(id) => {
                if !is_uuid(id) {
                    f.push(
                        format!("tenants[{i}].id"),
                        format!("must be a lower-case hyphenated UUID, got {id:?}"),
                    );
                }
                id.clone()
            }
            None => derived_tenant_id(seed, i),
        };
        if let Some(j) = out.iter().position(|o: &TenantSpec| o.id == id) {
            f.push(
                format!("tenants[{i}].id"),
                format!("{id} is already the id of tenants[{j}]"),
            );
        }
        if t.numbers == 0 {
            f.push(format!("tenants[{i}].numbers"), "must be at least 1, got 0");
        }
        if !is_e164(&t.first_number) {
            f.push(
                format!("tenants[{i}].first_number"),
                format!(
                    "must be an E.164 number (+ then 8 to 15 digits, the first not 0), got {:?}",
                    t.first_number
                ),
            );
        } else if t.numbers > 0 {
            let first: u64 = t.first_number[1..].parse().unwrap_or(0);
            let last = first + u64::from(t.numbers) - 1;
            if last > 999_999_999_999_999 {
                f.push(
                    format!("tenants[{i}].numbers"),
                    format!(
                        "the block from {} would end at +{last}, past E.164's 15 digits",
                        t.first_number
                    ),
                );
            } else {
                blocks.push(Block {
                    index: i,
                    first,
                    last,
                });
            }
        }
        out.push(TenantSpec {
            id,
            id_from_seed: t.id.is_none(),
            numbers: t.numbers,
            first_number: t.first_number.clone(),
        });
    }
    blocks.sort_by_key(|b| (b.first, b.index));
    for (n, a) in blocks.iter().enumerate() {
        for b in blocks[n + 1..].iter().take_while(|b| b.first <= a.last) {
            let (earlier, later) = if a.index < b.index { (a, b) } else { (b, a) };
            f.push(
                format!("tenants[{}].first_number", later.index),
                format!(
                    "the block +{}..+{} of tenants[{}] ({}) overlaps the block +{}..+{} of \
                     tenants[{}] ({})",
                    later.first,
                    later.last,
                    later.index,
                    out[later.index].id,
                    earlier.first,
                    earlier.last,
                    earlier.index,
                    out[earlier.index].id,
                ),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::load::parse;
    use super::super::load::tests::{MINIMAL, at, located, problem, problems, with};
    use super::*;

    #[test]
    fn tenant_ids_are_derived_from_the_seed_and_index_alone() {
        let id = derived_tenant_id(42, 0);
        assert!(is_uuid(&id), "{id}");
        assert_eq!(id, derived_tenant_id(42, 0));
        assert_ne!(id, derived_tenant_id(42, 1));
        assert_ne!(id, derived_tenant_id(43, 0));
        let two = with("[[tenants]]\nnumbers = 5\nfirst_number = \"+14255560000\"\n");
        let (a, b) = (parse(&two, "a").unwrap(), parse(&two, "b").unwrap());
        assert_eq!(a.tenants, b.tenants);
        assert_eq!(a.tenants[1].id, derived_tenant_id(7, 1));
        let given = MINIMAL.replace(
            "[[tenants]]\n",
            "[[tenants]]\nid = \"c0ffee00-0000-4000-8000-000000000001\"\n",
        );
        let s = parse(&given, "t.toml").unwrap();
        assert_eq!(s.tenants[0].id, "c0ffee00-0000-4000-8000-000000000001");
    }

    #[test]
    fn another_seed_derives_the_ids_the_file_left_out_and_keeps_the_others() {
        let text = MINIMAL.replace(
            "[[tenants]]\n",
            "[[tenants]]\nid = \"c0ffee00-0000-4000-8000-000000000001\"\n",
        ) + "[[tenants]]\nnumbers = 5\nfirst_number = \"+14255560000\"\n";
        let s = parse(&text, "t.toml").unwrap();
        let reseeded = s.with_seed(8);
        assert_eq!(reseeded.seed, 8);
        assert_eq!(
            reseeded.tenants[0].id,
            "c0ffee00-0000-4000-8000-000000000001"
        );
        assert_eq!(reseeded.tenants[1].id, derived_tenant_id(8, 1));
        assert_ne!(reseeded.tenants[1].id, s.tenants[1].id);
        assert_eq!(s.with_seed(7), s, "the file's own seed changes nothing");
    }

    #[test]
    fn tenants_are_checked_one_by_one() {
        let text = MINIMAL.replace(
            "[[tenants]]\nnumbers = 10\nfirst_number = \"+14255550100\"\n",
            "tenants = []\n",
        );
        assert_eq!(located(&text, "at least one tenant"), at("tenants", 7, 11));
        let text = MINIMAL.replace(
            "[[tenants]]\n",
            "[[tenants]]\nid = \"C0FFEE00-0000-4000-8000-000000000001\"\n",
        );
        assert_eq!(
            located(&text, "lower-case hyphenated UUID"),
            at("tenants[0].id", 8, 6)
        );
        let text = MINIMAL.replace("numbers = 10", "numbers = 0");
        assert_eq!(
            located(&text, "at least 1"),
            at("tenants[0].numbers", 8, 11)
        );
        let text = MINIMAL.replace("+14255550100", "14255550100");
        assert_eq!(
            located(&text, "E.164"),
            at("tenants[0].first_number", 9, 16)
        );
        let text = MINIMAL.replace("+14255550100", "+999999999999995");
        assert_eq!(
            located(&text, "past E.164's 15 digits"),
            at("tenants[0].numbers", 8, 11)
        );
        let id = "c0ffee00-0000-4000-8000-000000000001";
        let text = format!(
            "{}[[tenants]]\nid = \"{id}\"\nnumbers = 1\nfirst_number = \"+14255560000\"\n",
            MINIMAL.replace("[[tenants]]\n", &format!("[[tenants]]\nid = \"{id}\"\n"))
        );
        assert_eq!(
            located(&text, "already the id of tenants[0]"),
            at("tenants[1].id", 12, 6)
        );
    }

    #[test]
    fn overlapping_number_blocks_name_both_tenants() {
        // +14255550100..+14255550109 and +14255550109..+14255550113 share one number.
        let text = with("[[tenants]]\nnumbers = 5\nfirst_number = \"+14255550109\"\n");
        let (where_, message) = problem(&text);
        assert_eq!(where_, at("tenants[1].first_number", 12, 16));
        assert!(
            message.contains("tenants[1]") && message.contains("tenants[0]"),
            "{message}"
        );
        assert!(message.contains("+14255550100..+14255550109"), "{message}");
        // Adjacent blocks are fine; a block inside another is not, whichever comes first.
        assert!(parse(&text.replace("+14255550109", "+14255550110"), "t").is_ok());
        let inner = MINIMAL
            .replace("+14255550100", "+14255550103")
            .replace("numbers = 10", "numbers = 2");
        let text = format!("{inner}[[tenants]]\nnumbers = 10\nfirst_number = \"+14255550100\"\n");
        assert_eq!(problems(&text), [at("tenants[1].first_number", 12, 16)]);
    }
}
