//! The traffic: calls on assigned numbers, arriving with the scenario's daily shape, answered
//! or not, with log-normal talk times, records that become available after an exponential
//! delay, media quality, and the corrections Teams will make to some records.
//!
//! Every draw about a number comes from the generator of its block ([`crate::shard`]), and a
//! call's id is its block's first number and the block's own count of calls, so that a shard
//! that plays some of the blocks places exactly the calls the whole run places on them.

use std::collections::BTreeMap;
use std::ops::Range;

use actix::{Actor, Context, Handler};
use mock_teams::NewCall;
use mock_teams::traffic::random_streams;
use oc_protocol::{Direction, UnixMillis};
use rand::Rng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, LogNormal, Poisson};

use super::messages::{AssignmentChanged, CallsDuring, Correction, PlacedCalls, Tick};
use crate::scenario::{CallSpec, QualitySpec};
use crate::shard::Block;

const HOUR_MS: i64 = 3_600_000;
/// The longest an answered call rings, ms (ring times are uniform from 2 s up to this).
pub const MAX_RING_MS: i64 = 15_000;

/// Places the calls of a run.
pub struct TrafficActor {
    calls: CallSpec,
    quality: QualitySpec,
    /// Each number's slot in `numbers` and `history`.
    slots: BTreeMap<String, u32>,
    /// The numbers, by slot, block after block: a tick's candidates are slots, and a number is
    /// copied only into a call placed on it.
    numbers: Vec<String>,
    /// Each slot's assignment history: `(time, assigned)` in time order.
    history: Vec<Vec<(UnixMillis, bool)>>,
    /// Each slot's block.
    block_of: Vec<u32>,
    blocks: Vec<TrafficBlock>,
    /// A tick's assigned slots of one block (kept to spare an allocation per block and tick).
    assigned: Vec<u32>,
    peak: f64,
    call_prefix: String,
    /// A correction comes out between half of this (at most a minute) and this after the
    /// record.
    correction_window_ms: i64,
}

/// One block's part of the traffic: its generator, its slots and its count of calls.
struct TrafficBlock {
    rng: ChaCha8Rng,
    slots: Range<u32>,
    first: u64,
    calls: u64,
}

impl TrafficActor {
    /// Traffic on the numbers of `blocks`, each block with its own generator from the run's
    /// seed.
    pub fn new(calls: CallSpec, quality: QualitySpec, blocks: &[Block], seed: u64) -> Self {
        let peak = calls.daily_shape.iter().copied().fold(0.0, f64::max);
        let mut traffic = Self {
            calls,
            quality,
            slots: BTreeMap::new(),
            numbers: Vec::new(),
            history: Vec::new(),
            block_of: Vec::new(),
            blocks: Vec::with_capacity(blocks.len()),
            assigned: Vec::new(),
            peak,
            call_prefix: "call-".to_owned(),
            correction_window_ms: HOUR_MS,
        };
        for block in blocks {
            let b = u32::try_from(traffic.blocks.len()).unwrap_or(u32::MAX);
            let from = u32::try_from(traffic.numbers.len()).unwrap_or(u32::MAX);
            for number in block.telephone_numbers() {
                let slot = u32::try_from(traffic.numbers.len()).unwrap_or(u32::MAX);
                traffic.slots.insert(number.clone(), slot);
                traffic.numbers.push(number);
                traffic.history.push(Vec::new());
                traffic.block_of.push(b);
            }
            let to = u32::try_from(traffic.numbers.len()).unwrap_or(u32::MAX);
            traffic.blocks.push(TrafficBlock {
                rng: block.rng(seed, "traffic"),
                slots: from..to,
                first: block.first,
                calls: 0,
            });
        }
        traffic
    }

    /// Corrections come out within `window_ms` of their record instead of an hour (at least
    /// 1 s): a certification waits for them in real time.
    pub fn with_correction_window(mut self, window_ms: i64) -> Self {
        self.correction_window_ms = window_ms.max(1_000);
        self
    }

    /// Call ids start with `prefix` instead of `call-`: a certification's ids must differ from
    /// every earlier run's, since the carrier under test may remember them.
    pub fn with_call_prefix(mut self, prefix: &str) -> Self {
        prefix.clone_into(&mut self.call_prefix);
        self
    }

    fn assigned_at(&self, slot: u32, at: UnixMillis) -> bool {
        assigned_at(&self.history, slot, at)
    }

    /// A call on `slot` starting at `start`, drawn from the slot's block's generator; its id is
    /// `<prefix><block's first number>-<the block's count of calls>`, both numbers in base 36
    /// (`call-6jq0zw4-1a`): unique in the run and the same in every shard, and short, since
    /// both sides keep every id of a run.
    fn call(&mut self, slot: u32, start: UnixMillis) -> (NewCall, Option<Correction>) {
        let number = self.numbers[slot as usize].clone();
        let block = &mut self.blocks[self.block_of[slot as usize] as usize];
        block.calls += 1;
        let mut call_id = String::with_capacity(self.call_prefix.len() + 16);
        call_id.push_str(&self.call_prefix);
        push_base36(&mut call_id, block.first);
        call_id.push('-');
        push_base36(&mut call_id, block.calls);
        let rng = &mut block.rng;
        let c = &self.calls;
        let answered = rng.random_bool(c.answer_rate.clamp(0.0, 1.0));
        let ring = rng.random_range(2_000..MAX_RING_MS);
        let talk = LogNormal::new(
            (c.duration.median_ms.max(1) as f64).ln(),
            c.duration.sigma.max(0.0),
        )
        .map_or(c.duration.median_ms, |d| d.sample(rng) as i64)
        .clamp(0, c.duration.max_ms);
        let connect = answered.then_some(start + ring);
        let end = connect.map_or(start + ring, |t| t + talk);
        let delay = if c.availability_delay.mean_ms > 0 {
            Exp::new(1.0 / c.availability_delay.mean_ms as f64)
                .map_or(0, |d| d.sample(rng) as i64)
                .min(c.availability_delay.max_ms)
        } else {
            0
        };
        let impaired = rng.random_bool(self.quality.impaired_share.clamp(0.0, 1.0));
        let packets = u32::try_from(talk / 20).unwrap_or(u32::MAX);
        let quality = answered.then(|| random_streams(rng, packets, impaired));
        let direction = if rng.random_bool(c.outbound_share.clamp(0.0, 1.0)) {
            Direction::Outbound
        } else {
            Direction::Inbound
        };
        let other = format!("+44{}", rng.random_range(1_000_000_000u64..9_999_999_999));
        let final_sip_code = if answered {
            200
        } else {
            *[486u16, 487, 480, 603].choose(rng).unwrap_or(&487)
        };
        // A correction moves the end by up to ±3 s and comes out up to an hour (the correction
        // window) after the record.
        let correction =
            (answered && rng.random_bool(c.correction_rate.clamp(0.0, 1.0))).then(|| {
                let shift = rng.random_range(-3_000i64..=3_000);
                let new_end = (end + shift).max(connect.unwrap_or(start));
                let window = self.correction_window_ms;
                let available = end + delay + rng.random_range((window / 2).min(60_000)..=window);
                (call_id.clone(), connect, new_end, available)
            });
        let call = NewCall {
            call_id,
            telephone_number: number,
            direction,
            other_number: other,
            start,
            connect,
            end,
            final_sip_code,
            availability_delay_ms: u32::try_from(delay).unwrap_or(u32::MAX),
            quality,
        };
        (call, correction)
    }
}

/// Appends `n` in base 36, lower case, most significant digit first.
fn push_base36(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 13];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b"0123456789abcdefghijklmnopqrstuvwxyz"[(n % 36) as usize];
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.extend(digits[at..].iter().map(|&d| char::from(d)));
}

fn assigned_at(history: &[Vec<(UnixMillis, bool)>], slot: u32, at: UnixMillis) -> bool {
    let h = &history[slot as usize];
    let before = h.partition_point(|&(t, _)| t <= at);
    before > 0 && h[before - 1].1
}

/// The daily shape's weight at `at` over its peak: the share of the busy hour's calls that
/// happen then. The hour of day is the only absolute time the traffic reads.
fn share_of_peak(calls: &CallSpec, peak: f64, at: UnixMillis) -> f64 {
    if peak <= 0.0 {
        return 0.0;
    }
    let hour = usize::try_from(at.rem_euclid(24 * HOUR_MS) / HOUR_MS).unwrap_or(0);
    calls.daily_shape[hour] / peak
}

impl Actor for TrafficActor {
    type Context = Context<Self>;
}

impl Handler<AssignmentChanged> for TrafficActor {
    type Result = ();

    fn handle(&mut self, msg: AssignmentChanged, _: &mut Context<Self>) {
        match self.slots.get(&msg.telephone_number) {
            Some(&slot) => self.history[slot as usize].push((msg.at, msg.assigned)),
            None => tracing::error!(
                number = %msg.telephone_number,
                "the traffic was told of a number outside its blocks"
            ),
        }
    }
}

impl Handler<CallsDuring> for TrafficActor {
    type Result = actix::MessageResult<CallsDuring>;

    /// Calls at the busy hour's rate over the whole tick, for the numbers assigned at its
    /// start, block by block: a Poisson number of attempts, each at a uniform time and kept with the daily
    /// shape's share of the peak at that time (thinning, which makes the rate follow the shape
    /// hour by hour), then only when its number is assigned at that time. The tick is one draw
    /// wherever hour boundaries fall in it, and every attempt draws its share, so a run replays
    /// from its seed and the time since its start alone: splitting a tick at an hour, as this
    /// once did, drew once more when a tick straddled one, and every later draw moved.
    fn handle(&mut self, msg: CallsDuring, _: &mut Context<Self>) -> Self::Result {
        let Tick { from, to } = msg.0;
        let mut placed = PlacedCalls::default();
        let mut starts: Vec<(UnixMillis, u32)> = Vec::new();
        let (calls, peak, history) = (&self.calls, self.peak, &self.history);
        // Block by block, each from its own generator: a shard playing some blocks draws for
        // them exactly what the whole run draws.
        for block in &mut self.blocks {
            self.assigned.clear();
            self.assigned.extend(
                block
                    .slots
                    .clone()
                    .filter(|&slot| assigned_at(history, slot, from)),
            );
            let mean = calls.busy_hour_per_number * self.assigned.len() as f64 * (to - from) as f64
                / HOUR_MS as f64;
            let count = if mean > 0.0 && peak > 0.0 {
                Poisson::new(mean).map_or(0, |p| p.sample(&mut block.rng) as u64)
            } else {
                0
            };
            for _ in 0..count {
                let Some(&slot) = self.assigned.choose(&mut block.rng) else {
                    break;
                };
                let start = block.rng.random_range(from..to.max(from + 1));
                let kept = block.rng.random::<f64>() < share_of_peak(calls, peak, start);
                if kept {
                    starts.push((start, slot));
                }
            }
        }
        // In time order, and by number at the same time.
        let numbers = &self.numbers;
        starts.sort_by(|a, b| {
            (a.0.cmp(&b.0)).then_with(|| numbers[a.1 as usize].cmp(&numbers[b.1 as usize]))
        });
        for (start, slot) in starts {
            if !self.assigned_at(slot, start) {
                continue;
            }
            let (call, correction) = self.call(slot, start);
            // An unassignment already known may fall while it rings: the number would not be
            // the carrier's when answered.
            if call.connect.is_some_and(|c| !self.assigned_at(slot, c)) {
                continue;
            }
            placed.calls.push(call);
            placed.corrections.extend(correction);
        }
        actix::MessageResult(placed)
    }
}

#[cfg(test)]
mod tests {
    use actix::Actor;

    use super::*;

    #[test]
    fn base36_digits() {
        for (n, text) in [
            (0, "0"),
            (35, "z"),
            (36, "10"),
            (14_255_600_004, "6jrezd0"),
            (u64::MAX, "3w5e11264sgsf"),
        ] {
            let mut out = String::from("call-");
            push_base36(&mut out, n);
            assert_eq!(out, format!("call-{text}"), "{n}");
        }
    }
    use crate::scenario::{ExponentialSpec, LogNormalSpec};

    fn spec(daily_shape: [f64; 24]) -> CallSpec {
        CallSpec {
            busy_hour_per_number: 10.0,
            daily_shape,
            answer_rate: 0.8,
            outbound_share: 0.5,
            duration: LogNormalSpec {
                median_ms: 60_000,
                sigma: 0.5,
                max_ms: 600_000,
            },
            availability_delay: ExponentialSpec {
                mean_ms: 1_000,
                max_ms: 10_000,
            },
            correction_rate: 0.0,
        }
    }

    /// The calls of one tick of `hours` from midnight, on 50 numbers assigned all along,
    /// counted by the hour they start in.
    async fn calls_per_hour(daily_shape: [f64; 24], hours: i64) -> Vec<usize> {
        let quality = QualitySpec {
            impaired_share: 0.0,
        };
        let blocks = crate::shard::blocks(&[crate::scenario::TenantSpec {
            id: "t".into(),
            id_from_seed: false,
            numbers: 50,
            first_number: "+14255550000".into(),
        }]);
        let traffic = TrafficActor::new(spec(daily_shape), quality, &blocks, 5).start();
        for n in 0..50 {
            traffic.do_send(AssignmentChanged {
                telephone_number: format!("+1425555{n:04}"),
                at: 0,
                assigned: true,
            });
        }
        let tick = Tick {
            from: 0,
            to: hours * HOUR_MS,
        };
        let placed = traffic.send(CallsDuring(tick)).await.unwrap();
        let mut per_hour = vec![0; usize::try_from(hours).unwrap()];
        for call in &placed.calls {
            per_hour[usize::try_from(call.start / HOUR_MS).unwrap()] += 1;
        }
        per_hour
    }

    #[actix_rt::test]
    async fn one_tick_across_hours_follows_the_daily_shape_hour_by_hour() {
        let mut shape = [0.0; 24];
        shape[1] = 2.0;
        shape[2] = 1.0;
        let per_hour = calls_per_hour(shape, 4).await;
        // 50 numbers at 10 calls an hour in the busy hour, half that in the next.
        assert_eq!((per_hour[0], per_hour[3]), (0, 0), "{per_hour:?}");
        assert!((425..575).contains(&per_hour[1]), "{per_hour:?}");
        assert!((200..300).contains(&per_hour[2]), "{per_hour:?}");
    }
}
