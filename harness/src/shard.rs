//! Sharded runs: which part of a scenario shard `I/N` plays, and the blocks of numbers that
//! every random choice of the admins and the traffic is seeded by.
//!
//! A run's numbers are cut into **blocks**: each tenant's numbers, in order, in runs of
//! [`BLOCK_NUMBERS`] (the last one shorter). The admins and the traffic draw every choice about
//! a block's numbers from the block's own generator, seeded from (scenario seed, actor, tenant,
//! the block's first number), and a call's id is the block's prefix and its own counter. Nothing
//! a block generates depends on another block, nor on how many shards there are, so shard
//! `I/N` plays its blocks exactly as the unsharded run plays them: the union of the N shards
//! is the unsharded run (the same changes, calls, call ids and classes).
//!
//! The partition: with at least as many tenants as shards, whole tenants, dealt to the least
//! loaded shard by numbers (the largest first, ties to the earlier tenant and shard); with fewer,
//! blocks, round robin over every tenant's blocks in order. Either way it depends only on the
//! scenario and N.

use std::fmt;
use std::str::FromStr;

use crate::scenario::{Scenario, TenantSpec};

/// The most numbers in a block: small enough that a tenant of a few numbers still splits over
/// a few shards, large enough that a generator's state (about 320 bytes per actor) is a small
/// share of what a number costs.
pub const BLOCK_NUMBERS: u32 = 4;

/// Shard `index` of `count` (0-based, as Kubernetes' `JOB_COMPLETION_INDEX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Shard {
    /// 0 to `count − 1`.
    pub index: u32,
    /// How many shards the run is cut into (at least 1).
    pub count: u32,
}

/// The most shards a run can be cut into.
pub const MAX_SHARDS: u32 = 10_000;

impl Shard {
    /// Shard `index` of `count`, checked.
    pub fn new(index: u32, count: u32) -> Result<Self, ShardError> {
        if count == 0 || count > MAX_SHARDS {
            return Err(ShardError::Count(count.to_string()));
        }
        if index >= count {
            return Err(ShardError::Index { index, count });
        }
        Ok(Self { index, count })
    }

    /// The shard from the environment of a Kubernetes Indexed Job: the index from
    /// `JOB_COMPLETION_INDEX`, the count from `shards` (`--shards`) or else `OC_SHARDS`. `None`
    /// when neither gives a count (the run is not sharded).
    pub fn from_env(
        shards: Option<u32>,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, ShardError> {
        let count = match (shards, var("OC_SHARDS")) {
            (Some(n), _) => n,
            (None, Some(text)) => text
                .trim()
                .parse()
                .map_err(|_| ShardError::Env("OC_SHARDS", text.clone()))?,
            (None, None) => return Ok(None),
        };
        let Some(text) = var("JOB_COMPLETION_INDEX") else {
            return Err(ShardError::NoIndex);
        };
        let index = text
            .trim()
            .parse()
            .map_err(|_| ShardError::Env("JOB_COMPLETION_INDEX", text.clone()))?;
        Self::new(index, count).map(Some)
    }

    /// Whether this is the whole run (`0/1`).
    pub fn is_whole(self) -> bool {
        self.count == 1
    }

    /// The folder name of this shard's report inside the run's output: `shard-0-of-3`.
    pub fn folder(self) -> String {
        format!("shard-{}-of-{}", self.index, self.count)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = ShardError;

    /// `I/N`, e.g. `0/3`.
    fn from_str(s: &str) -> Result<Self, ShardError> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| ShardError::Syntax(s.to_owned()))?;
        let index = i
            .trim()
            .parse()
            .map_err(|_| ShardError::Syntax(s.to_owned()))?;
        let count = n
            .trim()
            .parse()
            .map_err(|_| ShardError::Count(n.trim().to_owned()))?;
        Self::new(index, count)
    }
}

/// Why a shard cannot be taken from a flag or the environment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    /// Not `I/N`.
    #[error("`{0}` is not a shard: write I/N, e.g. 0/3 (I from 0 to N − 1)")]
    Syntax(String),
    /// N out of range.
    #[error("the shard count `{0}` must be a whole number from 1 to {MAX_SHARDS}")]
    Count(String),
    /// I out of range.
    #[error("shard index {index} is out of range for {count} shards: it must be 0 to {}", .count - 1)]
    Index {
        /// The index given.
        index: u32,
        /// The count given.
        count: u32,
    },
    /// An environment variable that is not a number.
    #[error("the environment variable {0}=`{1}` is not a whole number")]
    Env(&'static str, String),
    /// A count without an index.
    #[error(
        "--shards or OC_SHARDS gives the shard count, but JOB_COMPLETION_INDEX (the shard's index, \
         0-based, as a Kubernetes Indexed Job sets it) is not set; or give --shard I/N"
    )]
    NoIndex,
}

/// A block of numbers: the unit every random choice of the admins and the traffic is seeded by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Its tenant's id.
    pub tenant_id: String,
    /// Its first number, as an integer (the E.164 digits).
    pub first: u64,
    /// How many numbers (1 to [`BLOCK_NUMBERS`]).
    pub numbers: u32,
}

impl Block {
    /// The numbers of the block, in order, in E.164.
    pub fn telephone_numbers(&self) -> impl Iterator<Item = String> + '_ {
        (0..u64::from(self.numbers)).map(move |i| format!("+{}", self.first + i))
    }

    /// The generator of `actor` for this block in a run seeded with `seed`: ChaCha8 seeded
    /// from (seed, actor, tenant id, first number), through the project's one derivation.
    pub fn rng(&self, seed: u64, actor: &str) -> rand_chacha::ChaCha8Rng {
        use rand::SeedableRng;
        let parts: [&[u8]; 3] = [
            actor.as_bytes(),
            self.tenant_id.as_bytes(),
            &self.first.to_le_bytes(),
        ];
        rand_chacha::ChaCha8Rng::seed_from_u64(oc_protocol::seed::derive(seed, &parts))
    }
}

/// The first number of a tenant as an integer; `None` when it is not E.164 digits (the
/// scenario's validation rejects that before a run).
fn first_number(tenant: &TenantSpec) -> Option<u64> {
    tenant.first_number.trim_start_matches('+').parse().ok()
}

/// Every block of `tenants`, tenant by tenant, in number order.
pub fn blocks(tenants: &[TenantSpec]) -> Vec<Block> {
    let mut out = Vec::new();
    for tenant in tenants {
        let Some(first) = first_number(tenant) else {
            continue;
        };
        let mut offset = 0;
        while offset < tenant.numbers {
            let numbers = (tenant.numbers - offset).min(BLOCK_NUMBERS);
            out.push(Block {
                tenant_id: tenant.id.clone(),
                first: first + u64::from(offset),
                numbers,
            });
            offset += numbers;
        }
    }
    out
}

/// The tenants (or pieces of tenants, each a run of whole blocks) that `shard` plays, in the
/// scenario's order.
pub fn tenants_of(tenants: &[TenantSpec], shard: Shard) -> Vec<TenantSpec> {
    if shard.is_whole() {
        return tenants.to_vec();
    }
    if tenants.len() >= shard.count as usize {
        let owner = deal_tenants(tenants, shard.count);
        return tenants
            .iter()
            .zip(owner)
            .filter(|(_, owner)| *owner == shard.index)
            .map(|(t, _)| t.clone())
            .collect();
    }
    let mut out: Vec<TenantSpec> = Vec::new();
    for (i, block) in blocks(tenants).into_iter().enumerate() {
        if i % shard.count as usize != shard.index as usize {
            continue;
        }
        let tenant = tenants
            .iter()
            .find(|t| t.id == block.tenant_id)
            .cloned()
            .unwrap_or_else(|| unreachable!("a block's tenant is one of the tenants"));
        out.push(TenantSpec {
            numbers: block.numbers,
            first_number: format!("+{}", block.first),
            ..tenant
        });
    }
    out
}

/// Each tenant's shard: the largest tenants first, each to the shard with the fewest numbers
/// so far (ties: the earlier tenant, the lower shard).
fn deal_tenants(tenants: &[TenantSpec], count: u32) -> Vec<u32> {
    let mut order: Vec<usize> = (0..tenants.len()).collect();
    order.sort_by(|&a, &b| tenants[b].numbers.cmp(&tenants[a].numbers).then(a.cmp(&b)));
    let mut load = vec![0u64; count as usize];
    let mut owner = vec![0u32; tenants.len()];
    for t in order {
        let (shard, _) = load
            .iter()
            .enumerate()
            .min_by_key(|&(i, &l)| (l, i))
            .unwrap_or((0, &0));
        load[shard] += u64::from(tenants[t].numbers);
        owner[t] = u32::try_from(shard).unwrap_or(0);
    }
    owner
}

/// The scenario as shard `shard` plays it: only its tenants' numbers (pieces of tenants when
/// blocks are dealt).
pub fn scenario_of(scenario: &Scenario, shard: Shard) -> Scenario {
    let mut part = scenario.clone();
    part.tenants = tenants_of(&scenario.tenants, shard);
    part
}

/// The scenario file's digest, for `merge` to refuse shards of different files: SHA-256 of its
/// bytes, in hex.
pub fn digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(bytes);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for b in hash {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(id: &str, numbers: u32, first: &str) -> TenantSpec {
        TenantSpec {
            id: id.into(),
            id_from_seed: false,
            numbers,
            first_number: first.into(),
        }
    }

    #[test]
    fn shards_parse_and_refuse_precisely() {
        assert_eq!("2/3".parse(), Ok(Shard { index: 2, count: 3 }));
        assert_eq!("0/1".parse::<Shard>().map(Shard::is_whole), Ok(true));
        assert_eq!(
            "3/3".parse::<Shard>(),
            Err(ShardError::Index { index: 3, count: 3 })
        );
        assert_eq!("0/0".parse::<Shard>(), Err(ShardError::Count("0".into())));
        assert_eq!("1".parse::<Shard>(), Err(ShardError::Syntax("1".into())));
        assert_eq!(
            "x/2".parse::<Shard>(),
            Err(ShardError::Syntax("x/2".into()))
        );
        assert!(
            ShardError::Index { index: 3, count: 3 }
                .to_string()
                .contains("0 to 2")
        );
    }

    #[test]
    fn the_environment_gives_the_index_and_the_count() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(Shard::from_env(None, env(&[])), Ok(None));
        assert_eq!(
            Shard::from_env(None, env(&[("JOB_COMPLETION_INDEX", "1")])),
            Ok(None)
        );
        assert_eq!(
            Shard::from_env(
                None,
                env(&[("JOB_COMPLETION_INDEX", "1"), ("OC_SHARDS", "4")])
            ),
            Ok(Some(Shard { index: 1, count: 4 }))
        );
        assert_eq!(
            Shard::from_env(
                Some(2),
                env(&[("JOB_COMPLETION_INDEX", "1"), ("OC_SHARDS", "4")])
            ),
            Ok(Some(Shard { index: 1, count: 2 }))
        );
        assert_eq!(Shard::from_env(Some(2), env(&[])), Err(ShardError::NoIndex));
        assert_eq!(
            Shard::from_env(Some(2), env(&[("JOB_COMPLETION_INDEX", "2")])),
            Err(ShardError::Index { index: 2, count: 2 })
        );
        assert_eq!(
            Shard::from_env(
                None,
                env(&[("JOB_COMPLETION_INDEX", "0"), ("OC_SHARDS", "two")])
            ),
            Err(ShardError::Env("OC_SHARDS", "two".into()))
        );
    }

    #[test]
    fn blocks_cut_each_tenant_in_runs_of_block_numbers() {
        let tenants = [
            tenant("a", 10, "+14255550100"),
            tenant("b", 3, "+14255560000"),
        ];
        let blocks = blocks(&tenants);
        let cut: Vec<(&str, u64, u32)> = blocks
            .iter()
            .map(|b| (b.tenant_id.as_str(), b.first, b.numbers))
            .collect();
        assert_eq!(
            cut,
            [
                ("a", 14255550100, 4),
                ("a", 14255550104, 4),
                ("a", 14255550108, 2),
                ("b", 14255560000, 3)
            ]
        );
    }

    /// Every number is in exactly one shard, whatever the count, and the pieces are whole blocks.
    #[test]
    fn the_shards_partition_the_numbers_into_whole_blocks() {
        let tenants = [
            tenant("a", 10, "+14255550100"),
            tenant("b", 3, "+14255560000"),
            tenant("c", 7, "+14255570000"),
        ];
        let all: Vec<String> = blocks(&tenants)
            .iter()
            .flat_map(|b| b.telephone_numbers().collect::<Vec<_>>())
            .collect();
        let whole_blocks = blocks(&tenants);
        for count in 1..=8 {
            let mut union = Vec::new();
            for index in 0..count {
                let part = tenants_of(&tenants, Shard::new(index, count).unwrap());
                for block in blocks(&part) {
                    assert!(whole_blocks.contains(&block), "{count}: {block:?}");
                    union.extend(block.telephone_numbers());
                }
            }
            union.sort();
            let mut expected = all.clone();
            expected.sort();
            assert_eq!(union, expected, "{count} shards");
        }
    }

    #[test]
    fn tenants_are_dealt_by_load_when_there_are_enough() {
        let tenants = [
            tenant("a", 10, "+14255550100"),
            tenant("b", 30, "+14255560000"),
            tenant("c", 10, "+14255570000"),
            tenant("d", 10, "+14255580000"),
        ];
        assert_eq!(deal_tenants(&tenants, 2), [1, 0, 1, 1]);
        assert_eq!(deal_tenants(&tenants, 3), [1, 0, 2, 1]);
        let ids: Vec<String> = tenants_of(&tenants, Shard::new(1, 3).unwrap())
            .into_iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(ids, ["a", "d"]);
    }

    #[test]
    fn the_digest_is_sha256() {
        assert_eq!(
            digest(b"abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
