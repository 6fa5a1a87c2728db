//! The number-assignment rules (PROTOCOL.md 2.1, 2.2): NUM-ACK, NUM-IDEMPOTENT, NUM-ORDER and
//! NUM-STATE, judged from the webhook attempts Teams recorded, the events it generated, its
//! final state and the carrier's state probes.
//!
//! NUM-ACK judges each attempt as it is observed. The other three fold each attempt into its
//! event's number as it is observed (how many distinct events were delivered, how many times
//! again, which were overtaken), and judge at the end from the probes and Teams' final state.
//! An event is kept by id only while its deliveries may change: once Teams marks an attempt as
//! its notification's last, the event is forgotten ([`Deliveries`]), so the rules' memory grows
//! with numbers and events on their way, not with the length of the run. A live run does not
//! order events against the attempts that carry them, so an attempt may be observed before its
//! event: it waits in its event's entry, and counts the same either way.
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
//! back at most one notification per number at a time, so each has one), as it arrives: to
//! the lowest newer sequence not matched yet whose acceptance completed before it was sent.
//! Any such matching is sound; a smaller one only makes the bound laxer. A carrier that
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

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex};

use oc_observe::{Exchange, ExchangeDetail, ExchangeDirection};
use oc_protocol::{AssignmentState, CarrierNumberView, NumberUsage, RuleId, TeamsNumber};

use super::{MAX_SEQS_PER_EVIDENCE, Tally, count};
use crate::checker::history::{CheckSettings, Probe};
use crate::checker::stream::{End, Judged, Observation, Rule};

/// A delivery attempt of the carrier's notifications: its notification id, attempt number, the
/// events it carried and whether it is the notification's last. None for any other exchange.
fn webhook(e: &Exchange) -> Option<(&str, u32, &[String], bool)> {
    match &e.detail {
        Some(ExchangeDetail::Webhook {
            notification_id,
            attempt,
            event_ids,
            last,
        }) if e.direction == ExchangeDirection::TeamsToCarrier => {
            Some((notification_id, *attempt, event_ids, *last))
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

impl std::hash::Hash for EventKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hi);
        state.write_u64(self.lo);
        state.write_u64(u64::from(self.text));
    }
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
        if let Some(bits) = oc_protocol::ids::uuid_bits(id) {
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

/// A webhook attempt, as the number rules fold it.
#[derive(Debug, Clone, Copy)]
struct Seen {
    seq: u64,
    /// When it started, ms since the Unix epoch (truncated).
    wall_time_ms: i64,
    /// How long the answer took.
    latency_us: u64,
    /// Answered 200, 202 or 204, in time or not.
    accepted: bool,
    /// Teams sends its notification no more (`ExchangeDetail::Webhook::last`).
    last: bool,
}

impl Seen {
    /// When it started, µs since the epoch: `wall_time_ms` is truncated to the millisecond,
    /// so it started somewhere in [ms, ms + 1), certainly not before `ms`.
    fn start_us(&self) -> i128 {
        i128::from(self.wall_time_ms) * 1_000
    }

    /// When it had certainly completed: before `ms + 1 + latency`.
    fn done_us(&self) -> i128 {
        self.start_us() + 1_000 + i128::from(self.latency_us)
    }
}

/// The `seq`s kept for each number's evidence: as many as one evidence item cites (the
/// smallest, as it cites them).
const KEPT_SEQS: usize = MAX_SEQS_PER_EVIDENCE;
/// The overtaken events each number's evidence names (each cites two exchanges).
const KEPT_PAIRS: usize = MAX_SEQS_PER_EVIDENCE / 2;

/// Keeps `seq` among the [`KEPT_SEQS`] smallest of `seqs`, which never holds room for more (a
/// `Vec` doubling would give each number room for 32).
fn keep_smallest(seqs: &mut Vec<u64>, seq: u64) {
    if seqs.len() < KEPT_SEQS {
        if seqs.len() == seqs.capacity() {
            let room = (seqs.len() * 2).clamp(4, KEPT_SEQS);
            seqs.reserve_exact(room - seqs.len());
        }
        seqs.push(seq);
    } else if let Some(max) = seqs.iter_mut().max()
        && seq < *max
    {
        *max = seq;
    }
}

/// An accepted event that an event of its number still to arrive may have been overtaken by.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    id: EventKey,
    sequence: u64,
    /// When its first accepting attempt had certainly completed (µs since the epoch).
    done_us: i128,
    /// That attempt's `seq`.
    seq: u64,
}

/// An overtaken event and the newer one matched to it, as NUM-ORDER's evidence names them.
#[derive(Debug, Clone, Copy)]
struct Pair {
    event: EventKey,
    sequence: u64,
    /// The `seq` of the first attempt that carried it.
    first_seq: u64,
    newer: Candidate,
}

/// One number's deliveries, folded as they come: what NUM-IDEMPOTENT, NUM-ORDER and NUM-STATE
/// judge it by at the end, and the few of its events an event still to come may be joined to.
#[derive(Debug, Default)]
struct NumberFold {
    /// Its distinct events that at least one attempt carried.
    delivered: u64,
    /// The attempts beyond the first of each of its events: the most re-applications a carrier
    /// breaking NUM-IDEMPOTENT could have made.
    redeliveries: u64,
    /// The smallest `seq`s of the attempts that carried its events.
    seqs: Vec<u64>,
    /// Its event of the highest sequence observed, with the smallest `seq`s of its attempts:
    /// the event that made Teams' final state, for NUM-STATE's evidence.
    last: Option<(u64, Vec<u64>)>,
    /// Its events delivered after a newer one of it was accepted, each matched to its own
    /// newer one (see the module documentation).
    overtaken: u64,
    /// The first [`KEPT_PAIRS`] of them.
    pairs: Vec<Pair>,
    /// Its accepted events not matched yet, while an older event of it is still to arrive.
    candidates: Vec<Candidate>,
    /// The sequences of its events observed and not yet sent, ascending.
    waiting: Vec<u64>,
}

impl NumberFold {
    /// Forgets the candidates no event still to arrive can be matched to: one is matched only
    /// to an older event (a lower sequence), and every event still to arrive is waiting here,
    /// or not observed yet and so newer than all (a number's events reach the checker in the
    /// order Teams generated them, by sequence; a history that breaks this can only lose a
    /// match, which makes NUM-ORDER's bound laxer, never stricter). The caller makes sure no
    /// arrival is deferred and no attempt is waiting for its event ([`Deliveries::holding`]).
    fn forget_candidates(&mut self) {
        match self.waiting.first() {
            None => self.candidates.clear(),
            Some(&oldest) => self.candidates.retain(|c| c.sequence > oldest),
        }
    }
}

/// An event whose deliveries may still change: observed and not yet settled, or carried by an
/// attempt before it was observed.
#[derive(Debug)]
struct Open {
    /// Its number's index in [`Deliveries::folds`], or [`Open::ORPHAN`] while only attempts
    /// carrying it were observed.
    number: u32,
    sequence: u64,
    /// The first attempt that carried it, once one did.
    first: Option<Seen>,
    /// Whether an attempt accepted it (it became a candidate then).
    accepted: bool,
    /// Whether its arrival waits in [`Deliveries::deferred`].
    deferred: bool,
    /// Whether Teams sends it no more.
    settled: bool,
    /// An orphan's attempts, folded once its event is observed.
    early: Vec<Seen>,
}

impl Open {
    const ORPHAN: u32 = u32::MAX;
}

/// The state NUM-IDEMPOTENT, NUM-ORDER and NUM-STATE fold over a run: one [`NumberFold`] per
/// number, and the events whose deliveries are not complete. It grows with numbers and with
/// events on their way (generated and not yet sent, or between retries), never with the
/// length of the run: an event is folded into its number and forgotten once the attempt that
/// Teams marks as its notification's last was observed (`ExchangeDetail::Webhook::last`; a log
/// without the mark keeps every event to the end, and is judged the same).
///
/// Each attempt is folded as it is observed, in `seq` order. An event arrives with its first
/// attempt, and is matched then to the lowest newer accepted event of its number whose
/// acceptance certainly completed before that attempt started; such an acceptance completed
/// before the attempt did, so it was observed before it. A live run does not order events
/// against the attempts that carry them: an attempt observed before its event waits in its
/// event's entry, and arrivals are deferred, in the order they came, until no attempt waits.
#[derive(Debug, Default)]
struct Deliveries {
    /// telephoneNumber → its index in `folds`, in the order first seen. Hashed: looked up once
    /// per event; its order reaches nothing (the judgement reads numbers by name).
    numbers: FxMap<String, usize>,
    folds: Vec<NumberFold>,
    /// The events whose deliveries may still change.
    open: FxMap<EventKey, Open>,
    /// How many of `open` are orphans with attempts waiting.
    orphans: usize,
    /// Arrivals to match once no orphan is left, in the order they came.
    deferred: std::collections::VecDeque<EventKey>,
    /// The event ids that are not UUIDs.
    texts: Texts,
    /// Whether the end was reached: arrivals are no longer deferred.
    ended: bool,
    /// Off only in tests: keep every candidate, to check that forgetting them changes nothing.
    keep_candidates: bool,
}

impl Deliveries {
    fn observe(&mut self, observation: &Observation<'_>) {
        match observation {
            Observation::Exchange(e) => {
                let Some((_, _, event_ids, last)) = webhook(e) else {
                    return;
                };
                let seen = Seen {
                    seq: e.seq,
                    wall_time_ms: e.wall_time_ms,
                    latency_us: e.latency_us,
                    accepted: matches!(e.status, Some(200 | 202 | 204)),
                    last,
                };
                for id in event_ids {
                    let key = self.texts.key(id);
                    self.carried(key, seen);
                }
            }
            Observation::Event(event) => self.event(event),
            Observation::Cycle(_) | Observation::Leg(_) => {}
        }
    }

    /// Whether arrivals wait in `deferred`, in the order they came: an orphan's number is not
    /// known yet, and an arrival may have been overtaken by it.
    fn deferring(&self) -> bool {
        self.orphans > 0 || !self.deferred.is_empty()
    }

    /// Whether candidates must be kept whatever their number waits for: while arrivals are
    /// deferred, one of them may still be matched to any.
    fn holding(&self) -> bool {
        self.keep_candidates || self.deferring()
    }

    fn event(&mut self, event: &oc_protocol::NumberEvent) {
        let key = self.texts.key(&event.event_id);
        if self
            .open
            .get(&key)
            .is_some_and(|open| open.number != Open::ORPHAN)
        {
            // A repeated id: its first observation is the one that counts.
            return;
        }
        let number = match self.numbers.get(&event.telephone_number) {
            Some(&number) => number,
            None => {
                let number = self.folds.len();
                self.numbers.insert(event.telephone_number.clone(), number);
                self.folds.push(NumberFold::default());
                number
            }
        };
        // Below 2^32: one entry per number, each a string of its own.
        let index = u32::try_from(number).unwrap_or(Open::ORPHAN - 1);
        let fold = &mut self.folds[number];
        let early = match self.open.get_mut(&key) {
            Some(open) => {
                open.number = index;
                open.sequence = event.sequence;
                self.orphans -= 1;
                std::mem::take(&mut open.early)
            }
            None => {
                self.open.insert(
                    key,
                    Open {
                        number: index,
                        sequence: event.sequence,
                        first: None,
                        accepted: false,
                        deferred: false,
                        settled: false,
                        early: Vec::new(),
                    },
                );
                let at = fold.waiting.partition_point(|&s| s <= event.sequence);
                fold.waiting.insert(at, event.sequence);
                Vec::new()
            }
        };
        // The newest event so far: its attempts' list is the last one's, emptied (not one
        // allocated an event).
        match &mut fold.last {
            Some((sequence, seqs)) if event.sequence > *sequence => {
                *sequence = event.sequence;
                seqs.clear();
            }
            Some(_) => {}
            None => fold.last = Some((event.sequence, Vec::new())),
        }
        for seen in early {
            self.fold_attempt(key, seen);
        }
        self.release_deferred();
    }

    /// An attempt carried the event `key`.
    fn carried(&mut self, key: EventKey, seen: Seen) {
        let open = self.open.entry(key).or_insert_with(|| Open {
            number: Open::ORPHAN,
            sequence: 0,
            first: None,
            accepted: false,
            deferred: false,
            settled: false,
            early: Vec::new(),
        });
        if open.number == Open::ORPHAN {
            if open.early.is_empty() {
                // It arrives now: it takes its place among the arrivals to match, which wait
                // until its event (its number) is known.
                self.orphans += 1;
                open.deferred = true;
                self.deferred.push_back(key);
            }
            open.early.push(seen);
            return;
        }
        self.fold_attempt(key, seen);
    }

    /// Folds an attempt of an event whose number is known.
    fn fold_attempt(&mut self, key: EventKey, seen: Seen) {
        let (holding, deferring) = (self.holding(), self.deferring());
        let Some(open) = self.open.get_mut(&key) else {
            return;
        };
        let fold = &mut self.folds[open.number as usize];
        keep_smallest(&mut fold.seqs, seen.seq);
        if let Some((sequence, seqs)) = &mut fold.last
            && *sequence == open.sequence
        {
            keep_smallest(seqs, seen.seq);
        }
        let arrives = open.first.is_none();
        if arrives {
            open.first = Some(seen);
            fold.delivered += 1;
        } else {
            fold.redeliveries += 1;
        }
        open.settled |= seen.last;
        if seen.accepted && !open.accepted {
            open.accepted = true;
            fold.candidates.push(Candidate {
                id: key,
                sequence: open.sequence,
                done_us: seen.done_us(),
                seq: seen.seq,
            });
            if !holding {
                fold.forget_candidates();
            }
        }
        if arrives && !open.deferred {
            if self.ended || !deferring {
                self.arrive(key);
            } else {
                open.deferred = true;
                self.deferred.push_back(key);
            }
        }
        self.forget_if_settled(key);
    }

    /// Matches an event that arrived (see [`Deliveries`]) to a newer accepted one, if one
    /// overtook it.
    fn arrive(&mut self, key: EventKey) {
        let holding = self.holding();
        let Some(open) = self.open.get_mut(&key) else {
            return;
        };
        open.deferred = false;
        let Some(first) = open.first else {
            return;
        };
        let fold = &mut self.folds[open.number as usize];
        if let Ok(at) = fold.waiting.binary_search(&open.sequence) {
            fold.waiting.remove(at);
        }
        let arrived_from = first.start_us();
        let newer = fold
            .candidates
            .iter()
            .enumerate()
            .filter(|(_, c)| c.sequence > open.sequence && c.done_us <= arrived_from)
            .min_by_key(|(_, c)| (c.sequence, c.seq))
            .map(|(i, _)| i);
        if let Some(i) = newer {
            let newer = fold.candidates.swap_remove(i);
            fold.overtaken += 1;
            if fold.pairs.len() < KEPT_PAIRS {
                fold.pairs.push(Pair {
                    event: key,
                    sequence: open.sequence,
                    first_seq: first.seq,
                    newer,
                });
            }
        }
        if !holding {
            fold.forget_candidates();
        }
    }

    /// Forgets an event folded for good: settled, and its arrival matched.
    fn forget_if_settled(&mut self, key: EventKey) {
        if self
            .open
            .get(&key)
            .is_some_and(|o| o.settled && o.first.is_some() && !o.deferred)
        {
            self.open.remove(&key);
        }
    }

    /// Matches the deferred arrivals, in the order they came, once no orphan is left (or at
    /// the end, whatever is left: attempts of events never observed count for nothing).
    fn release_deferred(&mut self) {
        while self.ended || self.orphans == 0 {
            let Some(key) = self.deferred.pop_front() else {
                break;
            };
            self.arrive(key);
            self.forget_if_settled(key);
        }
    }

    /// Each number's fold, for judging at the end.
    fn judge(&mut self) -> Numbers<'_> {
        if !self.ended {
            self.ended = true;
            self.release_deferred();
        }
        Numbers {
            index: &self.numbers,
            folds: &self.folds,
            texts: &self.texts,
        }
    }
}

/// The one [`Deliveries`] that NUM-IDEMPOTENT, NUM-ORDER and NUM-STATE judge: the same fold,
/// kept once instead of once per rule. NUM-IDEMPOTENT fills it ([`Deliveries::observe`]); the
/// other two only read it at the end.
#[derive(Debug, Clone, Default)]
pub(super) struct SharedDeliveries(Arc<Mutex<Deliveries>>);

impl SharedDeliveries {
    fn lock(&self) -> std::sync::MutexGuard<'_, Deliveries> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The run's deliveries by number, as the rules judge them at the end.
struct Numbers<'a> {
    /// telephoneNumber → its index in `folds`.
    index: &'a FxMap<String, usize>,
    folds: &'a [NumberFold],
    /// The event ids that are not UUIDs.
    texts: &'a Texts,
}

impl<'a> Numbers<'a> {
    /// The number's fold; None when no event of it was observed.
    fn of(&self, number: &str) -> Option<&'a NumberFold> {
        self.index.get(number).map(|&i| &self.folds[i])
    }

    /// An event's id as evidence cites it.
    fn short(&self, id: EventKey) -> String {
        self.texts.short(id)
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
        let Some((notification_id, attempt, event_ids, _)) = webhook(e) else {
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
        let numbers = deliveries.judge();
        let mut tally = Tally::new(RuleId::NumIdempotent);
        let mut probed = 0u64;
        let mut redelivered = 0u64;
        for (probe, view) in viewed(end.probes) {
            probed += 1;
            let fold = numbers.of(&probe.telephone_number);
            let (distinct, redeliveries) = fold.map_or((0, 0), |f| (f.delivered, f.redeliveries));
            redelivered += redeliveries;
            if view.applied_events <= distinct {
                continue;
            }
            tally.fail(|| {
                (
                    format!(
                        "{}: appliedEvents is {}, but Teams delivered only {} for it (in {}): an \
                         event was applied more than once",
                        probe.telephone_number,
                        view.applied_events,
                        count(distinct, "distinct event"),
                        count(distinct + redeliveries, "attempt"),
                    ),
                    fold.map_or_else(Vec::new, |f| f.seqs.clone()),
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
        let numbers = deliveries.judge();
        let mut tally = Tally::new(RuleId::NumOrder);
        let mut exact = 0u64;
        let mut loose = 0u64;
        let mut judged = 0u64;
        for (probe, view) in viewed(end.probes) {
            let number = probe.telephone_number.as_str();
            let Some(fold) = numbers.of(number).filter(|f| f.overtaken > 0) else {
                continue;
            };
            judged += 1;
            let distinct = fold.delivered;
            let bound = distinct - fold.overtaken;
            let slack = fold.redeliveries;
            if slack == 0 {
                exact += fold.overtaken;
            } else {
                loose += fold.overtaken;
            }
            if view.applied_events > distinct || view.applied_events <= bound.saturating_add(slack)
            {
                continue;
            }
            tally.fail(|| {
                let mut seqs = Vec::new();
                let mut pairs: Vec<String> = fold
                    .pairs
                    .iter()
                    .map(|o| {
                        seqs.push(o.newer.seq);
                        seqs.push(o.first_seq);
                        format!(
                            "event {} (sequence {}, first sent at seq {}) arrived after event {} \
                             (sequence {}) was accepted at seq {}",
                            numbers.short(o.event),
                            o.sequence,
                            o.first_seq,
                            numbers.short(o.newer.id),
                            o.newer.sequence,
                            o.newer.seq,
                        )
                    })
                    .collect();
                let unnamed = fold.overtaken - fold.pairs.len() as u64;
                if unnamed > 0 {
                    pairs.push(format!("{} more", count(unnamed, "overtaken event")));
                }
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
        let numbers = deliveries.judge();
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
            let fold = numbers.of(number);
            if want.state == AssignmentState::Unassigned && fold.is_some() {
                unassigned_last += 1;
            }
            let has_events = fold.is_some() || want.sequence > 0;
            // The deliveries of the event that made Teams' final state (its last).
            let last_seqs = || match fold.and_then(|f| f.last.as_ref()) {
                Some((sequence, seqs)) if *sequence == want.sequence => seqs.clone(),
                _ => Vec::new(),
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

    use oc_protocol::NumberEventType;

    fn id(i: u128) -> String {
        oc_protocol::ids::uuid_from_bits(i << 100 | i)
    }

    fn event(i: u128, number: &str, sequence: u64) -> oc_protocol::NumberEvent {
        oc_protocol::NumberEvent {
            event_id: id(i),
            sequence,
            kind: NumberEventType::Unassigned,
            tenant_id: id(99),
            telephone_number: number.into(),
            sip_uri: None,
            usage: None,
            assignee: None,
            effective_date_time: "2026-01-01T00:00:00.000Z".into(),
        }
    }

    /// An attempt numbered `seq` carrying `ids`, started at `start_ms`, answered `status`
    /// after `latency_us`.
    fn attempt(seq: u64, ids: &[u128], start_ms: i64, status: u16, last: bool) -> Exchange {
        Exchange {
            seq,
            direction: ExchangeDirection::TeamsToCarrier,
            carrier: Some("c".into()),
            method: "POST".into(),
            url: "http://127.0.0.1:9/hook".into(),
            status: Some(status),
            error: None,
            sim_time: 0,
            wall_time_ms: start_ms,
            latency_us: 500,
            request_headers: Vec::new(),
            request_body: None,
            response_body: None,
            fault: None,
            detail: Some(ExchangeDetail::Webhook {
                notification_id: id(1000 + u128::from(seq)),
                attempt: 0,
                event_ids: ids.iter().map(|&i| id(i)).collect(),
                last,
            }),
        }
    }

    /// What the rules read of a number: delivered, redeliveries, overtaken, the evidence's
    /// seqs (sorted) and the last event's.
    type Summary = (u64, u64, u64, Vec<u64>, Vec<u64>);

    fn summary(d: &mut Deliveries, number: &str) -> Option<Summary> {
        let numbers = d.judge();
        numbers.of(number).map(|f| {
            let mut seqs = f.seqs.clone();
            seqs.sort_unstable();
            let last = f.last.as_ref().map(|(_, s)| s.clone()).unwrap_or_default();
            (f.delivered, f.redeliveries, f.overtaken, seqs, last)
        })
    }

    #[test]
    fn events_are_folded_with_their_attempts_whatever_came_first() {
        for last in [false, true] {
            let mut d = Deliveries::default();
            // Event 7's attempts come before it and after it; event 3 is observed twice (the
            // first counts), event 5 never travels, event 9 travels but is never observed.
            d.observe(&Observation::Exchange(&attempt(1, &[7, 9], 0, 500, false)));
            d.observe(&Observation::Event(&event(3, "+1", 2)));
            d.observe(&Observation::Event(&event(7, "+1", 1)));
            d.observe(&Observation::Event(&event(5, "+2", 1)));
            d.observe(&Observation::Exchange(&attempt(2, &[3, 7], 10, 500, false)));
            d.observe(&Observation::Event(&event(3, "+3", 9)));
            d.observe(&Observation::Exchange(&attempt(3, &[7, 3], 20, 204, last)));
            // Two events of +1, one carried twice and one three times; the last (sequence 2)
            // is event 3.
            assert_eq!(
                summary(&mut d, "+1"),
                Some((2, 3, 0, vec![1, 2, 2, 3, 3], vec![2, 3]))
            );
            assert_eq!(summary(&mut d, "+2"), Some((0, 0, 0, vec![], vec![])));
            // A repeated id names no number of its own.
            assert_eq!(summary(&mut d, "+3"), None);
            // Settled by a last attempt, both of +1's events are forgotten; event 5 waits to be
            // sent and event 9 for its event.
            assert_eq!(d.open.len(), if last { 2 } else { 4 }, "last: {last}");
        }
    }

    #[test]
    fn settled_events_are_forgotten_so_the_fold_does_not_grow_with_the_run() {
        let mut d = Deliveries::default();
        let mut seq = 0;
        for round in 0..2_000u64 {
            for n in 0..5u64 {
                let i = u128::from(round * 5 + n + 1);
                d.observe(&Observation::Event(&event(i, &format!("+{n}"), round + 1)));
                // Refused once, then accepted: a retry marked the last.
                seq += 1;
                let at = i64::try_from(seq).unwrap() * 10;
                d.observe(&Observation::Exchange(&attempt(seq, &[i], at, 503, false)));
                seq += 1;
                d.observe(&Observation::Exchange(&attempt(
                    seq,
                    &[i],
                    at + 5,
                    204,
                    true,
                )));
            }
            assert!(d.open.is_empty(), "round {round}: {}", d.open.len());
            assert!(d.folds.iter().all(|f| f.candidates.is_empty()));
        }
        assert_eq!(d.folds.len(), 5);
        let (delivered, redeliveries, overtaken, seqs, last) = summary(&mut d, "+0").unwrap();
        assert_eq!((delivered, redeliveries, overtaken), (2_000, 2_000, 0));
        assert_eq!(seqs.len(), KEPT_SEQS);
        assert_eq!(d.folds[0].seqs.capacity(), KEPT_SEQS, "no room for more");
        assert_eq!(seqs[..3], [1, 2, 11]);
        assert_eq!(last, [seq - 9, seq - 8]);
    }

    #[test]
    fn an_event_sent_after_a_newer_one_was_accepted_is_matched_to_it_once() {
        let mut d = Deliveries::default();
        for (i, sequence) in [(1, 1), (2, 2), (3, 3)] {
            d.observe(&Observation::Event(&event(i, "+1", sequence)));
        }
        // Sequence 2 is accepted at 0 ms; 1 is held back and sent at 10 ms, after it; 3 is sent
        // at 5 ms, before 1 arrived, and accepted at 20 ms (too late to have overtaken 1).
        d.observe(&Observation::Exchange(&attempt(1, &[2], 0, 204, true)));
        d.observe(&Observation::Exchange(&attempt(2, &[3], 5, 204, true)));
        // A candidate is kept while an older event of its number is still to arrive.
        assert_eq!(d.folds[0].candidates.len(), 2);
        d.observe(&Observation::Exchange(&attempt(3, &[1], 10, 204, true)));
        let numbers = d.judge();
        let fold = numbers.of("+1").unwrap();
        assert_eq!((fold.delivered, fold.overtaken), (3, 1));
        let pair = fold.pairs[0];
        assert_eq!((pair.sequence, pair.first_seq), (1, 3));
        assert_eq!((pair.newer.sequence, pair.newer.seq), (2, 1));
        assert!(fold.candidates.is_empty(), "nothing is left to arrive");
        assert!(d.open.is_empty());
    }

    /// A small deterministic generator for the randomised histories (xorshift64*).
    struct Dice(u64);

    impl Dice {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
        }
    }

    /// One thing a history observes.
    enum Step {
        Event(oc_protocol::NumberEvent),
        Attempt(Box<Exchange>),
    }

    /// A history of held-back, retried and early deliveries over a few numbers: the events
    /// and attempts in the order a live run may observe them.
    fn history(seed: u64) -> Vec<Step> {
        let mut dice = Dice(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut sequences = [0u64; 4];
        // (start ms, event id, accepted, last) for every attempt, then sorted by completion.
        let mut sends: Vec<(i64, u128, bool, bool)> = Vec::new();
        let mut events = Vec::new();
        for i in 1..=200u128 {
            let n = dice.below(4) as usize;
            sequences[n] += 1;
            let generated = i64::try_from(i).unwrap() * 10;
            events.push((generated, event(i, &format!("+{n}"), sequences[n])));
            // Most go out at once, some are held back up to 60 ms; some attempts are refused.
            let mut at = generated
                + if dice.below(4) == 0 {
                    5 + dice.below(60) as i64
                } else {
                    1
                };
            let attempts = 1 + dice.below(3);
            for k in 0..attempts {
                let last = k + 1 == attempts;
                let accepted = last || dice.below(2) == 0;
                sends.push((at, i, accepted, last && dice.below(5) != 0));
                at += 3 + dice.below(20) as i64;
            }
        }
        sends.sort_by_key(|&(at, i, ..)| (at, i));
        let mut out = Vec::new();
        let mut events = events.into_iter().peekable();
        // Events observed late, in the order generated (Teams' events reach the checker in
        // that order, but may lag behind the attempts), and how many attempts still come first.
        let mut lagging: Vec<oc_protocol::NumberEvent> = Vec::new();
        let mut countdown = 0;
        for (seq, (at, i, accepted, last)) in sends.into_iter().enumerate() {
            while let Some((_, e)) = events.next_if(|(g, _)| *g < at) {
                if lagging.is_empty() && dice.below(8) == 0 {
                    countdown = 1 + dice.below(6);
                }
                if countdown > 0 {
                    lagging.push(e);
                } else {
                    out.push(Step::Event(e));
                }
            }
            let status = if accepted { 204 } else { 503 };
            out.push(Step::Attempt(Box::new(attempt(
                seq as u64 + 1,
                &[i],
                at,
                status,
                last,
            ))));
            if countdown > 0 {
                countdown -= 1;
                if countdown == 0 {
                    out.extend(lagging.drain(..).map(Step::Event));
                }
            }
        }
        out.extend(lagging.into_iter().map(Step::Event));
        out.extend(events.map(|(_, e)| Step::Event(e)));
        out
    }

    #[test]
    fn neither_forgetting_nor_the_order_of_events_and_attempts_changes_a_judgement() {
        let fold = |history: &[Step], keep: bool| {
            let mut d = Deliveries {
                keep_candidates: keep,
                ..Deliveries::default()
            };
            for item in history {
                match item {
                    Step::Event(e) => d.observe(&Observation::Event(e)),
                    Step::Attempt(a) => d.observe(&Observation::Exchange(a)),
                }
            }
            (0..4)
                .map(|n| {
                    let number = format!("+{n}");
                    let numbers = d.judge();
                    let f = numbers.of(&number)?;
                    let pairs: Vec<(u64, u64, u64)> = f
                        .pairs
                        .iter()
                        .map(|p| (p.sequence, p.newer.sequence, p.newer.seq))
                        .collect();
                    Some((f.delivered, f.redeliveries, f.overtaken, pairs))
                })
                .collect::<Vec<_>>()
        };
        let mut overtaken = 0;
        for seed in 0..40 {
            let history = history(seed);
            let forgetting = fold(&history, false);
            // Keeping every candidate to the end matches the same events.
            assert_eq!(forgetting, fold(&history, true), "seed {seed}");
            // So does observing every event before any attempt, as a kept history is replayed:
            // no attempt then waits for its event.
            let (events, attempts): (Vec<Step>, Vec<Step>) = history
                .into_iter()
                .partition(|step| matches!(step, Step::Event(_)));
            let replayed: Vec<Step> = events.into_iter().chain(attempts).collect();
            assert_eq!(forgetting, fold(&replayed, false), "seed {seed}, replayed");
            overtaken += forgetting.iter().flatten().map(|f| f.2).sum::<u64>();
        }
        assert!(overtaken > 40, "the histories overtake: {overtaken}");
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
