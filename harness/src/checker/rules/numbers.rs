//! The number-assignment rules (PROTOCOL.md 2.1, 2.2): NUM-ACK, NUM-IDEMPOTENT, NUM-ORDER and
//! NUM-STATE, judged from the webhook attempts Teams recorded, the events it generated, its
//! final state and the carrier's state probes.
//!
//! NUM-ACK judges each attempt as it is observed. The other three keep, by event id, the
//! attempts that carried it (`seq`, start, latency, whether accepted) and the event's number
//! and sequence, and judge at the end from the probes and Teams' final state. A live run does
//! not order events against the attempts that carry them, so an attempt may be observed before
//! its event: kept by event id, it counts the same either way.
//!
//! # NUM-ORDER from the outside
//!
//! The harness cannot watch the carrier apply events; it sees when each delivery attempt
//! started (`wall_time_ms`, at millisecond resolution), how long the answer took (`latency_us`)
//! and the answer, and at the end the carrier's `appliedEvents` for each number. An exchange is
//! recorded when its attempt *completes*, so `seq` orders completions, not arrivals. So the
//! rule only relies on orders that are certain:
//!
//! - an attempt answered 200, 202 or 204 (in time or not) shows the carrier had received its
//!   events when the answer came; a carrier processing in arrival order has applied them, or
//!   queued them ahead of anything that arrives later;
//! - an event cannot have reached the carrier before the earliest start of any attempt that
//!   carried it (answered or not: a timed-out attempt may still have arrived).
//!
//! An event `e` is *overtaken* when another event `f` of the same number with a higher
//! `sequence` was accepted (its attempt answered 2xx and completed, counting the millisecond
//! rounding of `wall_time_ms`) before the first attempt carrying `e` started. Teams designs
//! this: a held-back notification waits until a newer event of its number was accepted
//! (mock-teams' webhook sender).
//!
//! Each overtaken event is matched to a newer event of its own that overtook it (Teams holds
//! back at most one notification per number at a time, so each has one). A carrier that
//! respects sequences, and skipped some events for reasons of its own, applies an overtaken
//! event only where it skipped the event matched to it, one for one: so it applies at most
//! `delivered − overtaken` events of that number, and one that applies a stale event applies
//! more. A number fails when its
//! `appliedEvents` exceeds `delivered − overtaken` (while not exceeding `delivered`: above that
//! it is NUM-IDEMPOTENT's failure). Only `appliedEvents` is read, never the final state: a
//! carrier that accepted `f` but never applied it (a NUM-STATE fault) was right to apply `e`
//! after it, and its count stays within the bound, since `f` is missing from it.
//!
//! Redeliveries would blur this (a carrier that re-applies a redelivered event reaches the same
//! count without applying anything stale), so Teams never duplicates notifications of a number
//! it reorders (`WebhookClass`). A number whose events were redelivered anyway (a late
//! acknowledgement makes Teams retry) is judged with that many re-applications of slack, and
//! does not count towards the rule's minimum: the rule is exercised by overtaken events on
//! numbers with no redeliveries, where the judgement is exact.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex};

use oc_observe::{Exchange, ExchangeDetail, ExchangeDirection};
use oc_protocol::{AssignmentState, CarrierNumberView, NumberUsage, RuleId, TeamsNumber};

use super::{Tally, count};
use crate::checker::history::{CheckSettings, Probe};
use crate::checker::stream::{End, Judged, Observation, Rule};

/// A delivery attempt of the carrier's notifications: its notification id, attempt number and
/// the events it carried. None for any other exchange.
fn webhook(e: &Exchange) -> Option<(&str, u32, &[String])> {
    match &e.detail {
        Some(ExchangeDetail::Webhook {
            notification_id,
            attempt,
            event_ids,
        }) if e.direction == ExchangeDirection::TeamsToCarrier => {
            Some((notification_id, *attempt, event_ids))
        }
        _ => None,
    }
}

/// An event id as a key: a UUID in its canonical form (lower-case, hyphenated: what Teams
/// generates) as its 128 bits, anything else as its place among the other ids kept
/// ([`Texts`]). Comparing 16 bytes, with no key copied, is what keeps the per-event lists
/// cheap at tens of thousands of events a second; the text comes back whole
/// ([`Texts::short`]). Two words and a tag rather than an enum holding a `String`: the lists
/// keep one key per event and per delivery of it, and the enum made each entry half as large
/// again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct EventKey {
    hi: u64,
    lo: u64,
    /// [`EventKey::UUID`], or the id's index in [`Texts`] (`hi` and `lo` then 0).
    text: u32,
}

impl EventKey {
    /// The tag of a key that is a UUID's bits.
    const UUID: u32 = u32::MAX;

    fn uuid(bits: u128) -> Self {
        Self {
            hi: (bits >> 64) as u64,
            lo: bits as u64,
            text: Self::UUID,
        }
    }
}

/// The event ids that are not canonical UUIDs, each kept once (none in a run of this harness's
/// Teams, whose ids are all UUIDs; a history file may have others).
#[derive(Debug, Default)]
struct Texts {
    index: FxMap<String, u32>,
    all: Vec<String>,
}

impl Texts {
    fn key(&mut self, id: &str) -> EventKey {
        if let Some(bits) = canonical_uuid(id) {
            return EventKey::uuid(bits);
        }
        let text = match self.index.get(id) {
            Some(&text) => text,
            None => {
                // Below the tag: 4 billion distinct ids would need far more memory than the
                // lists holding them could have.
                let text = u32::try_from(self.all.len())
                    .unwrap_or(EventKey::UUID - 1)
                    .min(EventKey::UUID - 1);
                self.index.insert(id.to_owned(), text);
                self.all.push(id.to_owned());
                text
            }
        };
        EventKey { hi: 0, lo: 0, text }
    }

    /// The id's first 8 characters, as evidence cites it.
    fn short(&self, key: EventKey) -> String {
        if key.text == EventKey::UUID {
            return format!("{:08x}", key.hi >> 32);
        }
        let id = self.all.get(key.text as usize).map_or("", String::as_str);
        id.get(..8).unwrap_or(id).to_owned()
    }
}

/// The bits of `id` when it is a UUID in canonical form (so that printing them gives `id`
/// back), else None.
fn canonical_uuid(id: &str) -> Option<u128> {
    let bytes = id.as_bytes();
    if bytes.len() != 36 {
        return None;
    }
    let mut bits = 0u128;
    for (i, &b) in bytes.iter().enumerate() {
        let digit = match (i, b) {
            (8 | 13 | 18 | 23, b'-') => continue,
            (8 | 13 | 18 | 23, _) => return None,
            (_, b'0'..=b'9') => b - b'0',
            (_, b'a'..=b'f') => b - b'a' + 10,
            _ => return None,
        };
        bits = bits << 4 | u128::from(digit);
    }
    Some(bits)
}

/// A small multiply-rotate hasher (the `FxHasher` of rustc) for the per-event maps: their keys
/// are Teams' own ids and numbers, not chosen by the carrier, so SipHash's resistance to
/// chosen keys buys nothing, and it was a tenth of the checker's thread at 20,000 webhooks/s.
#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

impl FxHasher {
    const K: u64 = 0xf135_7aea_2e62_a9c5;

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::K);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let mut rest = [0u8; 8];
        rest[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        self.add(u64::from_le_bytes(rest));
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_u128(&mut self, i: u128) {
        self.add(i as u64);
        self.add((i >> 64) as u64);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// A webhook attempt, as the number rules read it.
#[derive(Debug, Clone, Copy)]
struct Attempt {
    seq: u64,
    /// When it started, ms since the Unix epoch (truncated).
    wall_time_ms: i64,
    /// How long the answer took.
    latency_us: u64,
    /// Answered 200, 202 or 204, in time or not.
    accepted: bool,
}

/// One event as observed: its id, when it came among the events, its number and sequence.
/// The key's parts lie flat, so that the number fills what would be the key's padding (40
/// bytes, not 48).
#[derive(Debug)]
struct Generated {
    hi: u64,
    lo: u64,
    text: u32,
    /// Its number, as an index into the values of [`Deliveries::numbers`].
    number: u32,
    /// Its place among the events observed (a repeated id's first observation is the one that
    /// counts).
    rank: u64,
    sequence: u64,
}

impl Generated {
    fn key(&self) -> EventKey {
        EventKey {
            hi: self.hi,
            lo: self.lo,
            text: self.text,
        }
    }
}

/// An event id that an attempt carried, with the attempt's index in [`Deliveries::attempts`]
/// (24 bytes: the key's parts lie flat, as in [`Generated`]).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Carried {
    hi: u64,
    lo: u64,
    text: u32,
    attempt: u32,
}

impl Carried {
    fn key(&self) -> EventKey {
        EventKey {
            hi: self.hi,
            lo: self.lo,
            text: self.text,
        }
    }
}

/// The state NUM-IDEMPOTENT, NUM-ORDER and NUM-STATE fold over a run: every webhook attempt and
/// every number event, joined by event id at the end. It grows with events and their attempts,
/// never with calls or other exchanges.
///
/// The join is made once, at the end ([`Deliveries::by_number`]): as the run goes, an attempt's
/// event ids and an event are appended to lists, in the order observed. Joining as they came,
/// in a table keyed by event id, cost a random probe of a table growing by one entry per event
/// for each event and each attempt, in each of the three rules: half the checker's thread at
/// 20,000 webhooks a second (a load test's), where sorting the lists once costs milliseconds.
#[derive(Debug, Default)]
struct Deliveries {
    /// Every attempt of the carrier's notifications, in `seq` order.
    attempts: Vec<Attempt>,
    /// Each event id an attempt carried, with the attempt's index in `attempts`, in the order
    /// observed (sorted by id at the end).
    carried: Pile<Carried>,
    /// Every event observed, in the order observed (sorted by id at the end).
    events: Pile<Generated>,
    /// The attempt indexes of `carried` once sorted, so that each event's are one slice.
    carried_indexes: Vec<usize>,
    /// How many events were observed.
    observed: u64,
    /// telephoneNumber → its index, in the order first seen. Hashed: looked up once per event;
    /// its order reaches nothing (the judgement reads numbers by name).
    numbers: FxMap<String, usize>,
    /// The event ids that are not UUIDs.
    texts: Texts,
}

impl Deliveries {
    fn observe(&mut self, observation: &Observation<'_>) {
        match observation {
            Observation::Exchange(e) => {
                let Some((_, _, event_ids)) = webhook(e) else {
                    return;
                };
                // Below 2^32: 4 billion attempts would need far more memory than their list
                // could have.
                let attempt = u32::try_from(self.attempts.len()).unwrap_or(u32::MAX);
                self.attempts.push(Attempt {
                    seq: e.seq,
                    wall_time_ms: e.wall_time_ms,
                    latency_us: e.latency_us,
                    accepted: matches!(e.status, Some(200 | 202 | 204)),
                });
                for id in event_ids {
                    let EventKey { hi, lo, text } = self.texts.key(id);
                    self.carried.push(Carried {
                        hi,
                        lo,
                        text,
                        attempt,
                    });
                }
            }
            Observation::Event(event) => {
                let number = match self.numbers.get(&event.telephone_number) {
                    Some(&number) => number,
                    None => {
                        let number = self.numbers.len();
                        self.numbers.insert(event.telephone_number.clone(), number);
                        number
                    }
                };
                let EventKey { hi, lo, text } = self.texts.key(&event.event_id);
                self.events.push(Generated {
                    hi,
                    lo,
                    text,
                    // Below 2^32: one entry per number, each a string of its own.
                    number: u32::try_from(number).unwrap_or(u32::MAX),
                    rank: self.observed,
                    sequence: event.sequence,
                });
                self.observed += 1;
            }
            Observation::Cycle(_) | Observation::Leg(_) => {}
        }
    }

    /// Each number's distinct events (the first observation of each id) with the attempts that
    /// carried them (in the order observed), for judging at the end.
    fn by_number(&mut self) -> Numbers<'_> {
        // By id, and in the order observed within an id: the first event of an id leads its
        // run, an id's attempts come in `seq` order.
        let events = self
            .events
            .sorted_by(|a, b| (a.key(), a.rank).cmp(&(b.key(), b.rank)));
        let carried = self.carried.sorted_by(Ord::cmp);
        self.carried_indexes = carried.iter().map(|c| c.attempt as usize).collect();
        // By the number's index, not its name: a map keyed by text cost a string comparison at
        // each level of the tree for every event (a twentieth of a 10-s load's CPU at 36,000
        // events a second, once for each of the three rules).
        let mut by_number: Vec<Vec<(u64, Event<'_>)>> = Vec::new();
        by_number.resize_with(self.numbers.len(), Vec::new);
        let mut from = 0;
        let mut previous: Option<EventKey> = None;
        for g in events {
            let key = g.key();
            if previous == Some(key) {
                continue;
            }
            previous = Some(key);
            // The attempts of this id: the run of `carried` with its key (ids come in the same
            // order in both lists, so the search goes on from the last run).
            from += carried[from..].partition_point(|c| c.key() < key);
            let to = from + carried[from..].partition_point(|c| c.key() == key);
            by_number[g.number as usize].push((
                g.rank,
                Event {
                    id: key,
                    sequence: g.sequence,
                    attempts: &self.carried_indexes[from..to],
                },
            ));
            from = to;
        }
        Numbers {
            attempts: &self.attempts,
            index: &self.numbers,
            texts: &self.texts,
            by_number: by_number
                .into_iter()
                .map(|mut events| {
                    events.sort_by_key(|(rank, _)| *rank);
                    events.into_iter().map(|(_, e)| e).collect()
                })
                .collect(),
        }
    }
}

/// A list that grows by one item per event, appended to as the run goes and read once, sorted,
/// at the end: kept in blocks that are never moved, each as large as everything before it (at
/// most [`Pile::BLOCK`] items), so that growing never copies what is there (a `Vec` doubling
/// copied it all, and cleared twice the pages it ends with) and a small run keeps small blocks.
#[derive(Debug)]
struct Pile<T> {
    blocks: Vec<Vec<T>>,
    /// How many items the blocks hold.
    len: usize,
    /// All of it in one list, sorted ([`Pile::sorted_by`]).
    sorted: Vec<T>,
}

impl<T> Default for Pile<T> {
    fn default() -> Self {
        Self {
            blocks: Vec::new(),
            len: 0,
            sorted: Vec::new(),
        }
    }
}

impl<T> Pile<T> {
    /// The most items in one block.
    const BLOCK: usize = 1 << 14;
    /// The items in the first block.
    const FIRST: usize = 16;

    fn push(&mut self, item: T) {
        match self.blocks.last_mut() {
            Some(block) if block.len() < block.capacity() => block.push(item),
            _ => {
                let mut block = Vec::with_capacity(self.len.clamp(Self::FIRST, Self::BLOCK));
                block.push(item);
                self.blocks.push(block);
            }
        }
        self.len += 1;
    }

    /// Every item, sorted by `order` (items equal by it in no set order).
    /// Sorted again only when items came since the last sort: the three rules sharing
    /// [`Deliveries`] each ask for it with the same order.
    fn sorted_by(&mut self, order: impl FnMut(&T, &T) -> std::cmp::Ordering) -> &[T] {
        if self.blocks.is_empty() {
            return &self.sorted;
        }
        self.sorted.reserve(self.len);
        self.len = 0;
        for block in self.blocks.drain(..) {
            self.sorted.extend(block);
        }
        self.sorted.sort_unstable_by(order);
        &self.sorted
    }
}

/// The one [`Deliveries`] that NUM-IDEMPOTENT, NUM-ORDER and NUM-STATE judge: the same lists,
/// kept once instead of once per rule (each copy cost the checker's thread a third of the
/// number rules' time, mostly the kernel clearing the lists' fresh pages). NUM-IDEMPOTENT
/// fills it ([`Deliveries::observe`]); the other two only read it at the end.
#[derive(Debug, Clone, Default)]
pub(super) struct SharedDeliveries(Arc<Mutex<Deliveries>>);

impl SharedDeliveries {
    fn lock(&self) -> std::sync::MutexGuard<'_, Deliveries> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One number's event, with the attempts that carried it.
struct Event<'a> {
    id: EventKey,
    sequence: u64,
    /// Indexes into [`Numbers::attempts`].
    attempts: &'a [usize],
}

/// The run's deliveries by number, as the rules judge them at the end.
struct Numbers<'a> {
    /// Every attempt, in `seq` order.
    attempts: &'a [Attempt],
    /// telephoneNumber → its index in `by_number`.
    index: &'a FxMap<String, usize>,
    /// The event ids that are not UUIDs.
    texts: &'a Texts,
    /// Each number's distinct events, in the order generated.
    by_number: Vec<Vec<Event<'a>>>,
}

impl<'a> Numbers<'a> {
    /// The number's distinct events.
    fn events(&self, number: &str) -> &[Event<'a>] {
        self.index
            .get(number)
            .map_or(&[], |&i| self.by_number[i].as_slice())
    }

    /// An event's id as evidence cites it.
    fn short(&self, id: EventKey) -> String {
        self.texts.short(id)
    }

    /// The number's events that at least one attempt carried.
    fn delivered(&self, number: &str) -> Vec<&Event<'a>> {
        self.events(number)
            .iter()
            .filter(|e| !e.attempts.is_empty())
            .collect()
    }

    /// The attempts that carried an event.
    fn attempts_of(&self, event: &Event<'a>) -> impl Iterator<Item = &'a Attempt> + use<'a> {
        let attempts = self.attempts;
        event.attempts.iter().map(move |&i| &attempts[i])
    }

    /// The `seq`s of every attempt that carried one of `events`.
    fn seqs(&self, events: &[&Event<'a>]) -> Vec<u64> {
        events
            .iter()
            .flat_map(|e| self.attempts_of(e))
            .map(|a| a.seq)
            .collect()
    }
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// NUM-ACK: every webhook attempt answered 200, 202 or 204 within the acknowledgement deadline.
pub(super) struct NumAck {
    deadline_ms: u64,
    attempts: u64,
    tally: Tally,
}

impl NumAck {
    pub(super) fn new(settings: &CheckSettings) -> Self {
        Self {
            deadline_ms: settings.ack_deadline_ms,
            attempts: 0,
            tally: Tally::new(RuleId::NumAck),
        }
    }
}

impl Rule for NumAck {
    fn failures_so_far(&self) -> u64 {
        self.tally.failures()
    }

    fn observe(&mut self, observation: &Observation<'_>) {
        // A webhook fault (duplicated or held-back delivery) changes when a notification goes
        // out, not the carrier's answer to it: those answers are judged like any other.
        let Observation::Exchange(e) = observation else {
            return;
        };
        let Some((notification_id, attempt, event_ids)) = webhook(e) else {
            return;
        };
        self.attempts += 1;
        let deadline_ms = self.deadline_ms;
        let deadline_us = deadline_ms.saturating_mul(1_000);
        let what = || {
            format!(
                "attempt {attempt} of notification {} ({})",
                short(notification_id),
                count(event_ids.len() as u64, "event")
            )
        };
        let took_ms = e.latency_us as f64 / 1_000.0;
        match e.status {
            None => self.tally.fail(|| {
                let why = e.error.as_deref().unwrap_or("no answer");
                (format!("{} was not answered: {why}", what()), vec![e.seq])
            }),
            Some(200 | 202 | 204) if e.latency_us <= deadline_us => {}
            Some(status @ (200 | 202 | 204)) => self.tally.fail(|| {
                (
                    format!(
                        "{} was answered {status} after {took_ms:.0} ms, past the {deadline_ms} \
                         ms deadline",
                        what()
                    ),
                    vec![e.seq],
                )
            }),
            Some(status) => self.tally.fail(|| {
                (
                    format!(
                        "{} was answered {status}, not 200, 202 or 204 (after {took_ms:.0} ms)",
                        what()
                    ),
                    vec![e.seq],
                )
            }),
        }
    }

    fn finish(self: Box<Self>, _end: &End<'_>) -> Judged {
        let Self {
            deadline_ms,
            attempts,
            mut tally,
        } = *self;
        tally.exercised("webhook attempts", attempts, 1);
        let failures = tally.failures();
        let summary = if failures == 0 {
            format!(
                "{} checked; every one acknowledged with 200, 202 or 204 within {deadline_ms} ms",
                count(attempts, "webhook attempt")
            )
        } else {
            format!(
                "{} checked; {failures} not acknowledged with 200, 202 or 204 within \
                 {deadline_ms} ms",
                count(attempts, "webhook attempt")
            )
        };
        tally.finish(summary)
    }
}

/// The probes that carry a view, with the view.
fn viewed(probes: &[Probe]) -> impl Iterator<Item = (&Probe, &CarrierNumberView)> {
    probes
        .iter()
        .filter_map(|p| p.view.as_ref().map(|v| (p, v)))
}

/// NUM-IDEMPOTENT: no probed number's `appliedEvents` exceeds the distinct events delivered
/// for it.
pub(super) struct NumIdempotent {
    /// Filled by this rule, read by NUM-ORDER and NUM-STATE too.
    deliveries: SharedDeliveries,
}

impl NumIdempotent {
    pub(super) fn new(deliveries: SharedDeliveries) -> Self {
        Self { deliveries }
    }
}

impl Rule for NumIdempotent {
    fn observe(&mut self, observation: &Observation<'_>) {
        self.deliveries.lock().observe(observation);
    }

    fn finish(self: Box<Self>, end: &End<'_>) -> Judged {
        let mut deliveries = self.deliveries.lock();
        let numbers = deliveries.by_number();
        let mut tally = Tally::new(RuleId::NumIdempotent);
        let mut probed = 0u64;
        let mut redelivered = 0u64;
        for (probe, view) in viewed(end.probes) {
            probed += 1;
            let delivered = numbers.delivered(&probe.telephone_number);
            redelivered += redeliveries(&delivered);
            let distinct = delivered.len() as u64;
            if view.applied_events <= distinct {
                continue;
            }
            tally.fail(|| {
                let seqs = numbers.seqs(&delivered);
                (
                    format!(
                        "{}: appliedEvents is {}, but Teams delivered only {} for it (in {}): an \
                         event was applied more than once",
                        probe.telephone_number,
                        view.applied_events,
                        count(distinct, "distinct event"),
                        count(seqs.len() as u64, "attempt"),
                    ),
                    seqs,
                )
            });
        }
        tally.exercised(
            "redeliveries of events on probed numbers",
            redelivered,
            MIN_REDELIVERED,
        );
        let failures = tally.failures();
        tally.finish(format!(
            "{} probed, their events redelivered {}; {failures} with appliedEvents above the \
             distinct events delivered",
            count(probed, "number"),
            count(redelivered, "time")
        ))
    }
}

/// An event a correct carrier must ignore, and the newer one it arrived after.
struct Overtaken<'n> {
    event: &'n Event<'n>,
    /// The first attempt that carried it.
    first_attempt: &'n Attempt,
    newer: &'n Event<'n>,
    /// The attempt that accepted the newer one before the overtaken one was sent.
    newer_accepted: &'n Attempt,
}

/// The overtaken events of one number's delivered events (see the module documentation), each
/// matched to a newer event of its own that was accepted before it arrived: a carrier that
/// never applied that newer event may rightly apply the older one, so only matched pairs
/// lower the bound, one for one. The matching is greedy (overtaken events by arrival, each
/// taking the lowest unused newer sequence); a smaller matching only makes the bound laxer.
fn overtaken<'n>(numbers: &'n Numbers<'n>, delivered: &[&'n Event<'n>]) -> Vec<Overtaken<'n>> {
    // Times in µs since the epoch. `wall_time_ms` is truncated to the millisecond, so an
    // attempt started somewhere in [ms, ms + 1): its completion is certainly before
    // `ms + 1 + latency`, and its start certainly not before `ms`.
    let start_us = |a: &Attempt| i128::from(a.wall_time_ms) * 1_000;
    let done_us = |a: &Attempt| start_us(a) + 1_000 + i128::from(a.latency_us);
    let mut arrivals: Vec<(&Event<'_>, &Attempt)> = delivered
        .iter()
        .filter_map(|&event| {
            numbers
                .attempts_of(event)
                .min_by_key(|a| (start_us(a), a.seq))
                .map(|first| (event, first))
        })
        .collect();
    arrivals.sort_by_key(|(e, first)| (start_us(first), e.sequence));
    let mut used: BTreeSet<EventKey> = BTreeSet::new();
    let mut out = Vec::new();
    for (event, first_attempt) in arrivals {
        let arrived_from = start_us(first_attempt);
        let newer = delivered
            .iter()
            .filter(|f| f.sequence > event.sequence && !used.contains(&f.id))
            .filter_map(|f| {
                numbers
                    .attempts_of(f)
                    .filter(|a| a.accepted && done_us(a) <= arrived_from)
                    .min_by_key(|a| a.seq)
                    .map(|a| (*f, a))
            })
            .min_by_key(|(f, a)| (f.sequence, a.seq));
        if let Some((newer, newer_accepted)) = newer {
            used.insert(newer.id);
            out.push(Overtaken {
                event,
                first_attempt,
                newer,
                newer_accepted,
            });
        }
    }
    out
}

/// How many more attempts than events carried the number's events: the most re-applications
/// a carrier that breaks NUM-IDEMPOTENT could have made.
fn redeliveries(delivered: &[&Event<'_>]) -> u64 {
    delivered
        .iter()
        .map(|e| (e.attempts.len() as u64).saturating_sub(1))
        .sum()
}

/// The least overtaken events (on numbers without redeliveries) that exercise NUM-ORDER.
const MIN_OVERTAKEN: u64 = 1;
/// The least redelivered events on probed numbers that exercise NUM-IDEMPOTENT.
const MIN_REDELIVERED: u64 = 1;

/// NUM-ORDER: no probed number's `appliedEvents` shows that the carrier applied an event that
/// arrived after a newer one of the same number was accepted (see the module documentation).
pub(super) struct NumOrder {
    /// Filled by NUM-IDEMPOTENT.
    deliveries: SharedDeliveries,
}

impl NumOrder {
    pub(super) fn new(deliveries: SharedDeliveries) -> Self {
        Self { deliveries }
    }
}

impl Rule for NumOrder {
    fn finish(self: Box<Self>, end: &End<'_>) -> Judged {
        let mut deliveries = self.deliveries.lock();
        let numbers = deliveries.by_number();
        let mut tally = Tally::new(RuleId::NumOrder);
        let mut exact = 0u64;
        let mut loose = 0u64;
        let mut judged = 0u64;
        for (probe, view) in viewed(end.probes) {
            let number = probe.telephone_number.as_str();
            let delivered = numbers.delivered(number);
            let overtaken = overtaken(&numbers, &delivered);
            if overtaken.is_empty() {
                continue;
            }
            judged += 1;
            let distinct = delivered.len() as u64;
            let bound = distinct - overtaken.len() as u64;
            let slack = redeliveries(&delivered);
            if slack == 0 {
                exact += overtaken.len() as u64;
            } else {
                loose += overtaken.len() as u64;
            }
            if view.applied_events > distinct || view.applied_events <= bound.saturating_add(slack)
            {
                continue;
            }
            tally.fail(|| {
                let mut seqs = Vec::new();
                let pairs: Vec<String> = overtaken
                    .iter()
                    .map(|o| {
                        seqs.push(o.newer_accepted.seq);
                        seqs.push(o.first_attempt.seq);
                        format!(
                            "event {} (sequence {}, first sent at seq {}) arrived after event {} \
                             (sequence {}) was accepted at seq {}",
                            numbers.short(o.event.id),
                            o.event.sequence,
                            o.first_attempt.seq,
                            numbers.short(o.newer.id),
                            o.newer.sequence,
                            o.newer_accepted.seq,
                        )
                    })
                    .collect();
                let slack = if slack == 0 {
                    String::new()
                } else {
                    format!(" (and {} re-applied)", count(slack, "redelivery"))
                };
                (
                    format!(
                        "{number}: {}; a carrier that ignores them applies at most \
                         {bound}{slack} of the {distinct} events delivered, but appliedEvents \
                         is {}: an overtaken event was applied",
                        pairs.join("; "),
                        view.applied_events
                    ),
                    seqs,
                )
            });
        }
        tally.exercised(
            "overtaken events on numbers without redeliveries",
            exact,
            MIN_OVERTAKEN,
        );
        let failures = tally.failures();
        let loose = if loose == 0 {
            String::new()
        } else {
            format!(
                " ({} more on numbers with redeliveries, judged with that slack)",
                count(loose, "overtaken event")
            )
        };
        tally.finish(format!(
            "{} delivered after a newer one of the same number was accepted{loose}, on {}; \
             {failures} applied an overtaken event",
            count(exact, "event"),
            count(judged, "probed number")
        ))
    }
}

/// NUM-STATE: every probed number agrees with Teams' final state.
pub(super) struct NumState {
    /// Filled by NUM-IDEMPOTENT.
    deliveries: SharedDeliveries,
}

impl NumState {
    pub(super) fn new(deliveries: SharedDeliveries) -> Self {
        Self { deliveries }
    }
}

impl Rule for NumState {
    fn finish(self: Box<Self>, end: &End<'_>) -> Judged {
        let mut deliveries = self.deliveries.lock();
        let numbers = deliveries.by_number();
        let teams: BTreeMap<&str, &TeamsNumber> = end
            .teams_numbers
            .iter()
            .map(|n| (n.telephone_number.as_str(), n))
            .collect();
        let mut tally = Tally::new(RuleId::NumState);
        let mut probed = 0u64;
        let mut unassigned_last = 0u64;
        for probe in end.probes {
            let number = probe.telephone_number.as_str();
            let Some(want) = teams.get(number) else {
                continue;
            };
            probed += 1;
            let events = numbers.events(number);
            if want.state == AssignmentState::Unassigned && !events.is_empty() {
                unassigned_last += 1;
            }
            let has_events = !events.is_empty() || want.sequence > 0;
            // The deliveries of the event that made Teams' final state.
            let last_seqs = || {
                events
                    .iter()
                    .filter(|e| e.sequence == want.sequence)
                    .flat_map(|e| numbers.attempts_of(e))
                    .map(|a| a.seq)
                    .collect::<Vec<u64>>()
            };
            let teams_state =
                || format!("Teams has it {} at sequence {}", want.state, want.sequence);
            let Some(view) = &probe.view else {
                if !has_events {
                    // Never changed in Teams: a carrier that never heard of it is right.
                    continue;
                }
                tally.fail(|| {
                    let answer = match (probe.status, &probe.error) {
                        (Some(404), _) => "the carrier has never heard of it (404)".to_owned(),
                        (Some(200), Some(error)) => {
                            format!("the state probe answered 200, but {error}")
                        }
                        (Some(status), Some(error)) => format!("the probe got {status}: {error}"),
                        (Some(status), None) => format!("the probe got {status}"),
                        (None, error) => format!(
                            "the probe got no answer: {}",
                            error.as_deref().unwrap_or("no reason given")
                        ),
                    };
                    (
                        format!("{number}: {}, but {answer}", teams_state()),
                        last_seqs(),
                    )
                });
                continue;
            };
            let mut differences = Vec::new();
            if view.state != want.state {
                differences.push(format!("state {} (Teams: {})", view.state, want.state));
            }
            if view.sip_uri != want.sip_uri {
                differences.push(format!(
                    "sipUri {} (Teams: {})",
                    view.sip_uri.as_deref().unwrap_or("absent"),
                    want.sip_uri.as_deref().unwrap_or("absent")
                ));
            }
            if view.usage != want.usage {
                let usage = |u: Option<NumberUsage>| u.map_or("absent", |u| u.as_str());
                differences.push(format!(
                    "usage {} (Teams: {})",
                    usage(view.usage),
                    usage(want.usage)
                ));
            }
            if view.sequence != want.sequence {
                differences.push(format!(
                    "sequence {} (Teams: {})",
                    view.sequence, want.sequence
                ));
            }
            if !differences.is_empty() {
                tally.fail(|| {
                    (
                        format!("{number}: the carrier has {}", differences.join(", ")),
                        last_seqs(),
                    )
                });
            }
        }
        tally.exercised("numbers probed", probed, 1);
        tally.exercised(
            "probed numbers Teams unassigned after assigning them",
            unassigned_last,
            1,
        );
        let failures = tally.failures();
        tally.finish(format!(
            "{} probed; {failures} differ from Teams' state",
            count(probed, "number")
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::hash::{BuildHasher, BuildHasherDefault};

    use super::*;

    #[test]
    fn events_are_joined_to_their_attempts_by_id_whatever_came_first() {
        use oc_protocol::NumberEventType;
        let id = |i: u128| oc_protocol::ids::uuid_from_bits(i << 100 | i);
        let event = |i: u128, number: &str, sequence: u64| oc_protocol::NumberEvent {
            event_id: id(i),
            sequence,
            kind: NumberEventType::Unassigned,
            tenant_id: id(99),
            telephone_number: number.into(),
            sip_uri: None,
            usage: None,
            assignee: None,
            effective_date_time: "2026-01-01T00:00:00.000Z".into(),
        };
        let attempt = |seq: u64, ids: &[u128]| Exchange {
            seq,
            direction: ExchangeDirection::TeamsToCarrier,
            carrier: Some("c".into()),
            method: "POST".into(),
            url: "http://127.0.0.1:9/hook".into(),
            status: Some(204),
            error: None,
            sim_time: 0,
            wall_time_ms: 0,
            latency_us: 0,
            request_headers: Vec::new(),
            request_body: None,
            response_body: None,
            fault: None,
            detail: Some(ExchangeDetail::Webhook {
                notification_id: id(1000 + u128::from(seq)),
                attempt: 0,
                event_ids: ids.iter().map(|&i| id(i)).collect(),
            }),
        };
        let mut d = Deliveries::default();
        // Event 7's attempts come before it and after it; event 3 is observed twice (the first
        // counts), event 5 never travels, event 9 travels but is never observed.
        d.observe(&Observation::Exchange(&attempt(1, &[7, 9])));
        d.observe(&Observation::Event(&event(3, "+1", 2)));
        d.observe(&Observation::Event(&event(7, "+1", 1)));
        d.observe(&Observation::Event(&event(5, "+2", 1)));
        d.observe(&Observation::Exchange(&attempt(2, &[3, 7])));
        d.observe(&Observation::Event(&event(3, "+2", 9)));
        d.observe(&Observation::Exchange(&attempt(3, &[7])));
        let numbers = d.by_number();
        let summary = |number: &str| -> Vec<(String, u64, Vec<u64>)> {
            numbers
                .events(number)
                .iter()
                .map(|e| {
                    let seqs = numbers.attempts_of(e).map(|a| a.seq).collect();
                    (numbers.short(e.id), e.sequence, seqs)
                })
                .collect()
        };
        // In the order first observed, each with its attempts in `seq` order.
        assert_eq!(
            summary("+1"),
            [
                (id(3)[..8].to_owned(), 2, vec![2]),
                (id(7)[..8].to_owned(), 1, vec![1, 2, 3]),
            ]
        );
        assert_eq!(summary("+2"), [(id(5)[..8].to_owned(), 1, vec![])]);
        assert_eq!(numbers.by_number.len(), 2);
    }

    #[test]
    fn a_pile_gives_back_every_item_sorted_in_blocks_that_grow_to_a_bound() {
        let mut pile = Pile::default();
        let n = 3 * Pile::<u32>::BLOCK as u32;
        for i in (0..n).rev() {
            pile.push(i);
        }
        let sizes: Vec<usize> = pile.blocks.iter().map(Vec::capacity).collect();
        assert_eq!(sizes[..3], [16, 16, 32]);
        assert!(sizes.iter().all(|&c| c <= Pile::<u32>::BLOCK));
        assert!(pile.sorted_by(Ord::cmp).iter().copied().eq(0..n));
        // Items pushed after a sort join the rest at the next one.
        pile.push(7);
        let sorted = pile.sorted_by(Ord::cmp);
        assert_eq!(sorted.len(), n as usize + 1);
        assert_eq!(sorted[7..9], [7, 7]);
    }

    #[test]
    fn the_per_event_entries_stay_small() {
        // One of each per event and per delivery of it, for the whole run.
        assert_eq!(std::mem::size_of::<Generated>(), 40);
        assert_eq!(std::mem::size_of::<Carried>(), 24);
    }

    #[test]
    fn a_canonical_uuid_is_keyed_by_its_bits_and_cited_as_written() {
        let id = "0a1b2c3d-4e5f-4071-8899-aabbccddeeff";
        let mut texts = Texts::default();
        let key = texts.key(id);
        assert_eq!(key, EventKey::uuid(0x0a1b2c3d_4e5f_4071_8899_aabbccddeeff));
        assert_eq!(texts.short(key), "0a1b2c3d");
        // Leading zeros are kept.
        let two = texts.key("00000000-0000-0000-0000-000000000002");
        assert_eq!(texts.short(two), "00000000");
        assert!(texts.all.is_empty(), "no text kept for a UUID");
    }

    #[test]
    fn any_other_id_is_keyed_by_its_text() {
        for id in [
            "0A1B2C3D-4E5F-4071-8899-AABBCCDDEEFF",
            "0a1b2c3d4e5f40718899aabbccddeeff",
            "0a1b2c3d-4e5f-4071-8899-aabbccddeef",
            "0a1b2c3d-4e5f-4071-8899-aabbccddeefg",
            "0a1b2c3d+4e5f-4071-8899-aabbccddeeff",
            "evt-1",
            "",
        ] {
            let mut texts = Texts::default();
            // A UUID's key first: a text must not be taken for it, whatever its place.
            let uuid = texts.key("00000000-0000-0000-0000-000000000000");
            let key = texts.key(id);
            assert_ne!(key, uuid, "{id}");
            assert_eq!(texts.all, [id], "{id}");
            assert_eq!(texts.key(id), key, "the same text, the same key: {id}");
            assert_ne!(texts.key("another"), key, "{id}");
            assert_eq!(texts.short(key), id.get(..8).unwrap_or(id));
        }
    }

    #[test]
    fn the_hasher_tells_apart_keys_that_differ_in_any_part() {
        let build = BuildHasherDefault::<FxHasher>::default();
        let a = build.hash_one(1u128);
        assert_eq!(a, build.hash_one(1u128), "deterministic");
        assert_ne!(a, build.hash_one(1u128 << 100), "high bits count");
        assert_ne!(a, build.hash_one(2u128));
        let n = |s: &str| build.hash_one(s);
        assert_ne!(n("+14258000000"), n("+14258000001"));
        assert_ne!(
            n("+1425800000012345"),
            n("+1425800000012346"),
            "the tail counts"
        );
    }
}
