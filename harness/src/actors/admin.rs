//! The Teams admins: which numbers are assigned at the start, and the assignments, updates and
//! unassignments during the run, at the scenario's rates.

use std::collections::BTreeMap;

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

const DAY_MS: f64 = 86_400_000.0;

/// Plays the admins of every tenant.
pub struct AdminActor {
    spec: AssignmentSpec,
    /// Every number, with whether the admins have it assigned now.
    assigned: BTreeMap<String, bool>,
    /// The latest connect time of an answered call on each number.
    ringing_until: BTreeMap<String, UnixMillis>,
    rng: ChaCha8Rng,
}

impl AdminActor {
    /// Admins for `numbers` (the whole inventory).
    pub fn new(spec: AssignmentSpec, numbers: Vec<String>, seed: u64) -> Self {
        Self {
            spec,
            assigned: numbers.into_iter().map(|n| (n, false)).collect(),
            ringing_until: BTreeMap::new(),
            rng: actor_rng(seed, "admin"),
        }
    }

    fn assignment(&mut self, number: &str) -> Assignment {
        let usage = *NumberUsage::ALL
            .choose(&mut self.rng)
            .unwrap_or(&NumberUsage::CallingUserAssignment);
        Assignment {
            sip_uri: format!("sip:{number}@{};user=phone", self.spec.sip_host),
            usage,
            assignee: Assignee {
                id: uuid_from_bits(
                    u128::from(self.rng.next_u64()) << 64 | u128::from(self.rng.next_u64()),
                ),
                kind: usage.assignee_type(),
            },
        }
    }
}

impl Actor for AdminActor {
    type Context = Context<Self>;
}

impl Handler<InitialAssignments> for AdminActor {
    type Result = Vec<NumberChange>;

    fn handle(&mut self, _: InitialAssignments, _: &mut Context<Self>) -> Vec<NumberChange> {
        let numbers: Vec<String> = self.assigned.keys().cloned().collect();
        let mut changes = Vec::new();
        for number in numbers {
            if self
                .rng
                .random_bool(self.spec.assigned_at_start.clamp(0.0, 1.0))
            {
                let assignment = self.assignment(&number);
                self.assigned.insert(number.clone(), true);
                changes.push(NumberChange::Assign {
                    telephone_number: number,
                    assignment,
                });
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
        let candidates: Vec<String> = self
            .assigned
            .iter()
            .filter(|(number, assigned)| {
                **assigned && self.ringing_until.get(*number).is_none_or(|&c| c < msg.at)
            })
            .map(|(number, _)| number.clone())
            .collect();
        let count = usize::try_from(msg.count).unwrap_or(usize::MAX);
        let chosen: Vec<String> = candidates
            .choose_multiple(&mut self.rng, count)
            .cloned()
            .collect();
        let mut chosen = chosen;
        chosen.sort();
        chosen
            .into_iter()
            .map(|number| {
                self.assigned.insert(number.clone(), false);
                (
                    msg.at,
                    NumberChange::Unassign {
                        telephone_number: number,
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
        let numbers: Vec<(String, bool)> =
            self.assigned.iter().map(|(n, a)| (n.clone(), *a)).collect();
        let mut changes = Vec::new();
        for (number, assigned) in numbers {
            let draw: f64 = self.rng.random();
            let change = if !assigned {
                (draw < assign.min(1.0)).then(|| {
                    let assignment = self.assignment(&number);
                    NumberChange::Assign {
                        telephone_number: number.clone(),
                        assignment,
                    }
                })
            } else if draw < unassign.min(1.0) {
                Some(NumberChange::Unassign {
                    telephone_number: number.clone(),
                })
            } else if draw < (unassign + update).min(1.0) {
                let assignment = self.assignment(&number);
                Some(NumberChange::Update {
                    telephone_number: number.clone(),
                    assignment,
                })
            } else {
                None
            };
            if let Some(change) = change {
                // Strictly inside the tick, so that a call at the tick's start sees the state
                // the previous tick left.
                let at = self
                    .rng
                    .random_range(tick.from + 1..=tick.to.max(tick.from + 1));
                let ringing = self.ringing_until.get(&number).is_some_and(|&c| c >= at);
                if ringing && matches!(change, NumberChange::Unassign { .. }) {
                    continue;
                }
                if !matches!(change, NumberChange::Update { .. }) {
                    self.assigned.insert(number, !assigned);
                }
                changes.push((at, change));
            }
        }
        changes.sort_by_key(|(at, _)| *at);
        changes
    }
}
