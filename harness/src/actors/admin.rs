//! The Teams admins: which numbers are assigned at the start, and the assignments, updates and
//! unassignments during the run, at the scenario's rates.

use std::collections::BTreeMap;
use std::ops::Range;

use actix::{Actor, Context, Handler};
use mock_teams::{Assignment, NumberChange};
use oc_protocol::ids::uuid_from_bits;
use oc_protocol::{Assignee, NumberUsage, UnixMillis};
use rand::seq::IndexedRandom;
use rand::{Rng, RngCore};
use rand_chacha::ChaCha8Rng;

use super::actor_rng;
use super::messages::{CallsRinging, ChangesDuring, ClosingUnassignments, InitialAssignments};
use crate::scenario::AssignmentSpec;
use crate::shard::Block;

const DAY_MS: f64 = 86_400_000.0;

/// Plays the admins of every tenant. Every draw about a number comes from the generator of its
/// block ([`crate::shard`]), so that a shard playing some blocks makes exactly the changes the
/// whole run makes on them.
pub struct AdminActor {
    spec: AssignmentSpec,
    /// Every number, block after block.
    numbers: Vec<String>,
    /// Whether the admins have each number assigned now.
    assigned: Vec<bool>,
    /// Each block's numbers (a range of `numbers`) and generator.
    blocks: Vec<(Range<usize>, ChaCha8Rng)>,
    /// The latest connect time of an answered call on each number.
    ringing_until: BTreeMap<String, UnixMillis>,
    /// The closing unassignments' choice, over every number (certifications only).
    closing: ChaCha8Rng,
}

impl AdminActor {
    /// Admins for the numbers of `blocks` (the whole inventory, or a shard's).
    pub fn new(spec: AssignmentSpec, blocks: &[Block], seed: u64) -> Self {
        let mut numbers = Vec::new();
        let mut ranges = Vec::with_capacity(blocks.len());
        for block in blocks {
            let from = numbers.len();
            numbers.extend(block.telephone_numbers());
            ranges.push((from..numbers.len(), block.rng(seed, "admin")));
        }
        Self {
            spec,
            assigned: vec![false; numbers.len()],
            numbers,
            blocks: ranges,
            ringing_until: BTreeMap::new(),
            closing: actor_rng(seed, "admin"),
        }
    }
}

/// A new assignment of `number`, drawn from `rng`.
fn assignment(spec: &AssignmentSpec, rng: &mut ChaCha8Rng, number: &str) -> Assignment {
    let usage = *NumberUsage::ALL
        .choose(rng)
        .unwrap_or(&NumberUsage::CallingUserAssignment);
    Assignment {
        sip_uri: format!("sip:{number}@{};user=phone", spec.sip_host),
        usage,
        assignee: Assignee {
            id: uuid_from_bits(u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64())),
            kind: usage.assignee_type(),
        },
    }
}

impl Actor for AdminActor {
    type Context = Context<Self>;
}

impl Handler<InitialAssignments> for AdminActor {
    type Result = Vec<NumberChange>;

    fn handle(&mut self, _: InitialAssignments, _: &mut Context<Self>) -> Vec<NumberChange> {
        let mut changes = Vec::new();
        let share = self.spec.assigned_at_start.clamp(0.0, 1.0);
        for (range, rng) in &mut self.blocks {
            for i in range.clone() {
                if rng.random_bool(share) {
                    let number = &self.numbers[i];
                    let assignment = assignment(&self.spec, rng, number);
                    self.assigned[i] = true;
                    changes.push(NumberChange::Assign {
                        telephone_number: number.clone(),
                        assignment,
                    });
                }
            }
        }
        changes
    }
}

impl Handler<CallsRinging> for AdminActor {
    type Result = ();

    fn handle(&mut self, msg: CallsRinging, _: &mut Context<Self>) {
        for (number, connect) in msg.0 {
            let until = self.ringing_until.entry(number).or_insert(connect);
            *until = (*until).max(connect);
        }
    }
}

impl Handler<ClosingUnassignments> for AdminActor {
    type Result = Vec<(UnixMillis, NumberChange)>;

    /// Unassigns up to `count` assigned numbers with no call ringing at `at`, chosen from the
    /// seed.
    fn handle(&mut self, msg: ClosingUnassignments, _: &mut Context<Self>) -> Self::Result {
        let mut candidates: Vec<usize> = (0..self.numbers.len())
            .filter(|&i| {
                self.assigned[i]
                    && self
                        .ringing_until
                        .get(&self.numbers[i])
                        .is_none_or(|&c| c < msg.at)
            })
            .collect();
        // In number order, whatever the blocks' order.
        candidates.sort_by(|&a, &b| self.numbers[a].cmp(&self.numbers[b]));
        let count = usize::try_from(msg.count).unwrap_or(usize::MAX);
        let mut chosen: Vec<usize> = candidates
            .choose_multiple(&mut self.closing, count)
            .copied()
            .collect();
        chosen.sort_by(|&a, &b| self.numbers[a].cmp(&self.numbers[b]));
        chosen
            .into_iter()
            .map(|i| {
                self.assigned[i] = false;
                (
                    msg.at,
                    NumberChange::Unassign {
                        telephone_number: self.numbers[i].clone(),
                    },
                )
            })
            .collect()
    }
}

impl Handler<ChangesDuring> for AdminActor {
    type Result = Vec<(UnixMillis, NumberChange)>;

    /// Each number changes at most once per tick, at a uniform time within it: the chance of
    /// a change is its daily rate times the tick's share of a day.
    fn handle(&mut self, msg: ChangesDuring, _: &mut Context<Self>) -> Self::Result {
        let tick = msg.0;
        let days = (tick.to - tick.from) as f64 / DAY_MS;
        let s = &self.spec;
        let (assign, update, unassign) = (
            s.assign_per_day * days,
            s.update_per_day * days,
            s.unassign_per_day * days,
        );
        if assign == 0.0 && update == 0.0 && unassign == 0.0 {
            return Vec::new();
        }
        let mut changes = Vec::new();
        for (range, rng) in &mut self.blocks {
            for i in range.clone() {
                let (number, assigned) = (&self.numbers[i], self.assigned[i]);
                let draw: f64 = rng.random();
                let change = if !assigned {
                    (draw < assign.min(1.0)).then(|| NumberChange::Assign {
                        telephone_number: number.clone(),
                        assignment: assignment(s, rng, number),
                    })
                } else if draw < unassign.min(1.0) {
                    Some(NumberChange::Unassign {
                        telephone_number: number.clone(),
                    })
                } else if draw < (unassign + update).min(1.0) {
                    Some(NumberChange::Update {
                        telephone_number: number.clone(),
                        assignment: assignment(s, rng, number),
                    })
                } else {
                    None
                };
                if let Some(change) = change {
                    // Strictly inside the tick, so that a call at the tick's start sees the
                    // state the previous tick left.
                    let at = rng.random_range(tick.from + 1..=tick.to.max(tick.from + 1));
                    let ringing = self.ringing_until.get(number).is_some_and(|&c| c >= at);
                    if ringing && matches!(change, NumberChange::Unassign { .. }) {
                        continue;
                    }
                    if !matches!(change, NumberChange::Update { .. }) {
                        self.assigned[i] = !assigned;
                    }
                    changes.push((at, change));
                }
            }
        }
        // Stable: changes at the same time keep block order, then number order.
        changes.sort_by_key(|(at, _)| *at);
        changes
    }
}
