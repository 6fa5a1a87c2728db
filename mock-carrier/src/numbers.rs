//! The carrier's view of its numbers: applying number events (once each, in sequence order),
//! resynchronising from Teams' full state, and each number's assignment history.
//!
//! Every notification Teams sends is a new event to apply, tens of thousands a second under
//! load, so the book is laid out for that: numbers interned once and their states in rows that
//! never move ([`Strings`], [`Chunked`], as the ledger keeps calls), each history a short
//! vector in sequence order.
//!
//! Nothing here grows with the number of events, only with the numbers (the Standards ask it
//! of a long-running `serve`): a redelivered event is told by its sequence, not by a set of
//! every eventId applied, and each number's history forgets the changes that no call still to
//! be judged can ask about ([`NumberBook::forget_history_before`]).

use std::collections::HashSet;

use hashbrown::HashTable;
use oc_protocol::{
    AssignmentState, CarrierNumberView, NumberEvent, NumberEventType, NumberUsage, TeamsNumber,
    UnixMillis, parse_timestamp,
};

use oc_protocol::ids::uuid_bits;

use crate::ledger::{Chunked, Strings, index_u32};
use crate::profile::Profile;

/// What became of one event of a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventOutcome {
    /// Applied to the number.
    Applied,
    /// It is the event last applied to its number, delivered again [NUM-IDEMPOTENT] (the
    /// `NumOrder` profile: any event applied before).
    Redelivered,
    /// Its sequence is not above the number's last applied one [NUM-ORDER].
    Stale,
}

/// One change the carrier learnt of: the number's assignment after it, from its effective
/// time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Change {
    sequence: u64,
    effective: UnixMillis,
    assigned: bool,
}

/// One number as the carrier sees it.
#[derive(Debug, Clone)]
struct NumberState {
    tenant_id: String,
    state: AssignmentState,
    sip_uri: Option<String>,
    usage: Option<NumberUsage>,
    sequence: u64,
    applied_events: u64,
    /// The eventId of the event last applied, as its bits ([`uuid_bits`]; `None` for an
    /// id in another form), to tell a redelivery from another stale event.
    last_event: Option<u128>,
    /// Every change the carrier learnt of, in sequence order, one per sequence (the last one
    /// heard of a sequence wins). Kept even for events too stale to change the current state,
    /// because they still say when the number was or was not assigned (PROTOCOL.md 2.3).
    /// Events mostly come in sequence order, so a change is mostly pushed at the end.
    history: Vec<Change>,
}

impl NumberState {
    /// A number just heard of, of `tenant_id`: unassigned, no change learnt yet.
    fn heard_of(tenant_id: &str) -> Self {
        Self {
            tenant_id: tenant_id.to_owned(),
            state: AssignmentState::Unassigned,
            sip_uri: None,
            usage: None,
            sequence: 0,
            applied_events: 0,
            last_event: None,
            history: Vec::new(),
        }
    }

    /// Records `change`, in place of one of the same sequence.
    fn learn(&mut self, change: Change) {
        match self.history.last() {
            Some(last) if last.sequence >= change.sequence => {
                match self
                    .history
                    .binary_search_by_key(&change.sequence, |c| c.sequence)
                {
                    Ok(at) => self.history[at] = change,
                    Err(at) => self.history.insert(at, change),
                }
            }
            _ => self.history.push(change),
        }
    }

    /// Forgets the changes that cannot answer [`NumberBook::assigned_at`] for any time at or
    /// after `horizon`: those of a lower sequence than the last change effective at or before
    /// it, which outranks them at every such time.
    fn forget_before(&mut self, horizon: UnixMillis) {
        let Some(last_before) = self.history.iter().rposition(|c| c.effective <= horizon) else {
            return;
        };
        if last_before > 0 {
            self.history.drain(..last_before);
            // A burst of changes left room that a quiet number would hold for good.
            if self.history.capacity() > 2 * self.history.len() + 4 {
                self.history.shrink_to_fit();
            }
        }
    }
}

/// The eventIds the `NumOrder` profile applied, which it cannot tell by their sequence: only
/// ever looked up, never listed. Two generations of [`ID_GENERATION`] ids each, the older
/// dropped when the newer fills, so that an id is remembered for at least that many events
/// after it: a minute and a half of this sandbox's fastest number events, beyond Teams' last
/// retry (at most 61 s after the first attempt: five 5-s timeouts and 31 s of back-off).
#[derive(Debug)]
struct RecentIds {
    current: AppliedIds,
    previous: AppliedIds,
    /// How many ids a generation holds: [`ID_GENERATION`] but in tests.
    generation: usize,
}

impl Default for RecentIds {
    fn default() -> Self {
        Self {
            current: AppliedIds::default(),
            previous: AppliedIds::default(),
            generation: ID_GENERATION,
        }
    }
}

/// How many eventIds a generation of [`RecentIds`] holds.
const ID_GENERATION: usize = 1 << 22;

impl RecentIds {
    /// Adds `id`; false when it is remembered already.
    fn insert(&mut self, id: &str) -> bool {
        if self.previous.contains(id) {
            return false;
        }
        if self.current.len() >= self.generation {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(id)
    }
}

/// A set of eventIds.
#[derive(Debug, Default)]
struct AppliedIds {
    /// Canonical UUIDs (lower-case, hyphenated: what the webhook's validation lets through,
    /// and what Teams sends), as their bits: 16 bytes each, no key copied.
    uuids: HashTable<u128>,
    /// Anything else, as its text (only a caller that applies unvalidated events has any).
    other: HashSet<String>,
}

impl AppliedIds {
    /// Adds `id`; false when it was there already.
    fn insert(&mut self, id: &str) -> bool {
        let Some(bits) = uuid_bits(id) else {
            return self.other.insert(id.to_owned());
        };
        match self
            .uuids
            .entry(hash_uuid(bits), |&k| k == bits, |&k| hash_uuid(k))
        {
            hashbrown::hash_table::Entry::Occupied(_) => false,
            hashbrown::hash_table::Entry::Vacant(slot) => {
                slot.insert(bits);
                true
            }
        }
    }

    fn contains(&self, id: &str) -> bool {
        match uuid_bits(id) {
            Some(bits) => self.uuids.find(hash_uuid(bits), |&k| k == bits).is_some(),
            None => self.other.contains(id),
        }
    }

    fn len(&self) -> usize {
        self.uuids.len() + self.other.len()
    }
}

/// A hash of a UUID's bits (the table's order is never read).
fn hash_uuid(bits: u128) -> u64 {
    oc_protocol::hash::fold(
        (bits as u64) ^ 0xa076_1d64_78bd_642f,
        ((bits >> 64) as u64) ^ 0xe703_7ed1_a0b4_28db,
    )
}

/// Every number the carrier has heard of.
#[derive(Debug, Default)]
pub(crate) struct NumberBook {
    /// The numbers heard of, each named by its index in `states`.
    numbers: Strings,
    states: Chunked<NumberState>,
    /// The eventIds applied, kept only by the `NumOrder` profile.
    order_ids: RecentIds,
}

impl NumberBook {
    /// Applies one (validated) event as `profile` does.
    pub(crate) fn apply(&mut self, event: &NumberEvent, profile: Profile) -> EventOutcome {
        // A redelivery carries its event's sequence, which is not above the number's last
        // applied one once the event was applied: the sequence guards every profile but
        // NumOrder, which ignores it (on purpose) and so keeps the ids it applied. NumIdempotent
        // keeps no guard of its own.
        if profile == Profile::NumOrder && !self.order_ids.insert(&event.event_id) {
            return EventOutcome::Redelivered;
        }
        let effective = parse_timestamp(&event.effective_date_time).unwrap_or_default();
        let entry = self.entry(&event.telephone_number, &event.tenant_id);
        apply_to(entry, event, effective, profile)
    }

    /// The state of `telephone_number`, heard of now (of `tenant_id`) if it is new.
    fn entry(&mut self, telephone_number: &str, tenant_id: &str) -> &mut NumberState {
        let index = self.numbers.intern(telephone_number);
        if index as usize == self.states.len() {
            self.states.push(NumberState::heard_of(tenant_id));
        }
        &mut self.states[index]
    }

    fn get(&self, telephone_number: &str) -> Option<&NumberState> {
        self.numbers
            .find(telephone_number)
            .map(|index| &self.states[index])
    }

    /// Takes Teams' state of a number (from `GET /oc/v1/numbers`) where it is newer than the
    /// carrier's. A resync applies no event, so `appliedEvents` does not change.
    pub(crate) fn resync(&mut self, number: &TeamsNumber) {
        let changed = parse_timestamp(&number.last_changed_date_time).unwrap_or_default();
        let assigned = number.state == AssignmentState::Assigned;
        let entry = self.entry(&number.telephone_number, &number.tenant_id);
        if number.sequence > 0 {
            entry.learn(Change {
                sequence: number.sequence,
                effective: changed,
                assigned,
            });
        }
        if number.sequence < entry.sequence
            || (number.sequence == entry.sequence && number.sequence > 0)
        {
            return;
        }
        entry.tenant_id.clone_from(&number.tenant_id);
        entry.sequence = number.sequence;
        entry.state = number.state;
        entry.sip_uri.clone_from(&number.sip_uri);
        entry.usage = number.usage;
    }

    /// The state probe's answer for `telephone_number`, if the carrier has heard of it.
    pub(crate) fn view(&self, telephone_number: &str) -> Option<CarrierNumberView> {
        self.get(telephone_number).map(|n| CarrierNumberView {
            telephone_number: telephone_number.to_owned(),
            tenant_id: n.tenant_id.clone(),
            state: n.state,
            sip_uri: n.sip_uri.clone(),
            usage: n.usage,
            sequence: n.sequence,
            applied_events: n.applied_events,
        })
    }

    /// Whether the number was assigned at `at`, by the history the carrier knows: the change
    /// with the highest sequence among those effective at or before `at`.
    pub(crate) fn assigned_at(&self, telephone_number: &str, at: UnixMillis) -> bool {
        self.get(telephone_number).is_some_and(|n| {
            n.history
                .iter()
                .rev()
                .find(|c| c.effective <= at)
                .is_some_and(|c| c.assigned)
        })
    }

    /// Forgets, in every number's history, the changes that cannot answer
    /// [`NumberBook::assigned_at`] for a time at or after `horizon`. A long-running `serve` calls
    /// it with the earliest time a call it holds, or may still be sent, can ask about.
    pub(crate) fn forget_history_before(&mut self, horizon: UnixMillis) {
        for index in 0..index_u32(self.states.len()) {
            self.states[index].forget_before(horizon);
        }
    }

    /// How many changes the numbers' histories hold, in all.
    pub(crate) fn changes_held(&self) -> usize {
        (0..index_u32(self.states.len()))
            .map(|index| self.states[index].history.len())
            .sum()
    }

    /// How many numbers the carrier has heard of.
    pub(crate) fn len(&self) -> usize {
        self.states.len()
    }
}

/// Applies `event` to its number's `entry` as `profile` does ([`NumberBook::apply`]).
fn apply_to(
    entry: &mut NumberState,
    event: &NumberEvent,
    effective: UnixMillis,
    profile: Profile,
) -> EventOutcome {
    let assigned = event.kind != NumberEventType::Unassigned;
    entry.learn(Change {
        sequence: event.sequence,
        effective,
        assigned,
    });
    let stale = match profile {
        Profile::NumOrder => false,
        // Without eventId bookkeeping, the only guard left is the sequence; the equal
        // sequence of a redelivery passes it, and the state does not regress.
        Profile::NumIdempotent => event.sequence < entry.sequence,
        _ => event.sequence <= entry.sequence,
    };
    // Breaks NUM-STATE on purpose: an unassignment is acknowledged and forgotten.
    let ignored = profile == Profile::NumState && !assigned;
    let id = uuid_bits(&event.event_id);
    if stale || ignored {
        let again = profile != Profile::NumOrder && id.is_some() && id == entry.last_event;
        return if again {
            EventOutcome::Redelivered
        } else {
            EventOutcome::Stale
        };
    }
    entry.tenant_id.clone_from(&event.tenant_id);
    entry.sequence = event.sequence;
    entry.applied_events += 1;
    entry.last_event = id;
    if assigned {
        entry.state = AssignmentState::Assigned;
        entry.sip_uri.clone_from(&event.sip_uri);
        entry.usage = event.usage;
    } else {
        entry.state = AssignmentState::Unassigned;
        entry.sip_uri = None;
        entry.usage = None;
    }
    EventOutcome::Applied
}

#[cfg(test)]
mod tests {
    use super::*;
    use oc_protocol::{Assignee, AssigneeType};

    const N: &str = "+14255550100";

    fn event(id: u8, sequence: u64, kind: NumberEventType, effective: &str) -> NumberEvent {
        let assigned = kind != NumberEventType::Unassigned;
        NumberEvent {
            event_id: format!("00000000-0000-4000-8000-0000000000{id:02x}"),
            sequence,
            kind,
            tenant_id: "c0ffee00-0000-4000-8000-000000000000".to_owned(),
            telephone_number: N.to_owned(),
            sip_uri: assigned.then(|| format!("sip:{N}@sbc{sequence}.carrier.example;user=phone")),
            usage: assigned.then_some(NumberUsage::CallingUserAssignment),
            assignee: assigned.then(|| Assignee {
                id: "a1b2c3d4-0000-4000-8000-000000000000".to_owned(),
                kind: AssigneeType::User,
            }),
            effective_date_time: format!("2026-11-26T{effective}.000Z"),
        }
    }

    #[test]
    fn correct_applies_each_event_once_and_in_sequence_order() {
        let mut book = NumberBook::default();
        let e1 = event(1, 1, NumberEventType::Assigned, "09:00:00");
        let e2 = event(2, 2, NumberEventType::Updated, "09:10:00");
        assert_eq!(book.apply(&e2, Profile::Correct), EventOutcome::Applied);
        assert_eq!(book.apply(&e1, Profile::Correct), EventOutcome::Stale);
        assert_eq!(book.apply(&e2, Profile::Correct), EventOutcome::Redelivered);
        let view = book.view(N).unwrap();
        assert_eq!((view.sequence, view.applied_events), (2, 1));
        assert!(view.sip_uri.unwrap().contains("sbc2"));
    }

    #[test]
    fn num_idempotent_counts_redeliveries_but_never_regresses() {
        let mut book = NumberBook::default();
        let e1 = event(1, 1, NumberEventType::Assigned, "09:00:00");
        let e2 = event(2, 2, NumberEventType::Updated, "09:10:00");
        assert_eq!(
            book.apply(&e2, Profile::NumIdempotent),
            EventOutcome::Applied
        );
        assert_eq!(
            book.apply(&e2, Profile::NumIdempotent),
            EventOutcome::Applied
        );
        assert_eq!(book.apply(&e1, Profile::NumIdempotent), EventOutcome::Stale);
        let view = book.view(N).unwrap();
        assert_eq!((view.sequence, view.applied_events), (2, 2));
    }

    #[test]
    fn num_order_lets_an_overtaken_event_win_but_dedups_ids() {
        let mut book = NumberBook::default();
        let e1 = event(1, 1, NumberEventType::Assigned, "09:00:00");
        let e2 = event(2, 2, NumberEventType::Unassigned, "09:10:00");
        book.apply(&e2, Profile::NumOrder);
        assert_eq!(book.apply(&e1, Profile::NumOrder), EventOutcome::Applied);
        assert_eq!(
            book.apply(&e1, Profile::NumOrder),
            EventOutcome::Redelivered
        );
        let view = book.view(N).unwrap();
        assert_eq!(view.state, AssignmentState::Assigned);
        assert_eq!((view.sequence, view.applied_events), (1, 2));
    }

    #[test]
    fn event_ids_are_told_apart_exactly_canonical_or_not() {
        // (`uuid_bits` itself is tested where it is written, in oc-protocol.)
        let id = "0b6e8a52-3c1d-4f7e-9a2b-5d4c3b2a1f00";
        let mut ids = AppliedIds::default();
        assert!(ids.insert(id));
        assert!(!ids.insert(id));
        // The same UUID in upper case is another id, as it was as a string.
        assert!(ids.insert("0B6E8A52-3C1D-4F7E-9A2B-5D4C3B2A1F00"));
        assert!(!ids.insert("0B6E8A52-3C1D-4F7E-9A2B-5D4C3B2A1F00"));
        assert!(ids.insert("event-1"));
        assert!(!ids.insert("event-1"));
        for i in 0..10_000u32 {
            assert!(ids.insert(&format!("00000000-0000-4000-8000-{i:012x}")));
        }
        assert!(!ids.insert("00000000-0000-4000-8000-000000000007"));
    }

    #[test]
    fn a_redelivery_is_told_by_its_sequence_without_a_set_of_ids() {
        let mut book = NumberBook::default();
        let e1 = event(1, 1, NumberEventType::Assigned, "09:00:00");
        let e2 = event(2, 2, NumberEventType::Updated, "09:10:00");
        let e3 = event(3, 3, NumberEventType::Unassigned, "09:20:00");
        for profile in [Profile::Correct, Profile::NumState] {
            let mut book = NumberBook::default();
            assert_eq!(book.apply(&e1, profile), EventOutcome::Applied);
            assert_eq!(book.apply(&e2, profile), EventOutcome::Applied);
            assert_eq!(book.apply(&e2, profile), EventOutcome::Redelivered);
            // An older event delivered again is stale as any other.
            assert_eq!(book.apply(&e1, profile), EventOutcome::Stale);
            assert_eq!(book.view(N).unwrap().applied_events, 2, "{profile:?}");
        }
        assert_eq!(book.apply(&e3, Profile::Correct), EventOutcome::Applied);
        assert_eq!(book.apply(&e3, Profile::Correct), EventOutcome::Redelivered);
        assert_eq!(book.order_ids.current.len(), 0, "only NumOrder keeps ids");
    }

    #[test]
    fn num_order_remembers_an_id_for_a_whole_generation_at_least() {
        let mut ids = RecentIds {
            generation: 4,
            ..RecentIds::default()
        };
        let id = |i: u32| format!("00000000-0000-4000-8000-{i:012x}");
        for i in 0..4 {
            assert!(ids.insert(&id(i)));
        }
        // The fifth id opens a generation: the first four are still remembered.
        for i in 4..8 {
            assert!(ids.insert(&id(i)));
            assert!(!ids.insert(&id(0)), "id 0 after {i}");
        }
        // The ninth drops the first generation, and nothing newer.
        assert!(ids.insert(&id(8)));
        assert!(!ids.insert(&id(4)));
        assert!(ids.insert(&id(0)));
        assert!(ids.current.len() + ids.previous.len() <= 8);
    }

    #[test]
    fn forgetting_history_keeps_every_answer_at_or_after_the_horizon() {
        // A number changing 2,000 times, in an order that lets some events overtake others
        // and with effective times not always rising with the sequence.
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |n: u64| {
            rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (rng >> 33) % n
        };
        let changes: Vec<Change> = (1..=2_000u64)
            .map(|sequence| Change {
                sequence,
                effective: i64::try_from(sequence * 10 + next(25)).unwrap(),
                assigned: next(2) == 0,
            })
            .collect();
        let mut whole = NumberState::heard_of("t");
        let mut pruned = NumberState::heard_of("t");
        let answer = |s: &NumberState, at: i64| {
            s.history
                .iter()
                .rev()
                .find(|c| c.effective <= at)
                .map(|c| c.assigned)
        };
        for (i, chunk) in changes.chunks(50).enumerate() {
            let mut chunk = chunk.to_vec();
            let last = chunk.len() - 1;
            chunk.swap(0, last);
            for &c in &chunk {
                whole.learn(c);
                pruned.learn(c);
            }
            let horizon = i64::try_from(i * 500).unwrap();
            pruned.forget_before(horizon);
            assert!(pruned.history.len() <= 80, "{} kept", pruned.history.len());
            for at in horizon..horizon + 700 {
                assert_eq!(answer(&pruned, at), answer(&whole, at), "at {at}");
            }
        }
        assert_eq!(whole.history.len(), 2_000);
    }

    #[test]
    fn the_book_forgets_for_every_number_and_still_answers_after_the_horizon() {
        let mut book = NumberBook::default();
        for (id, (sequence, kind, at)) in [
            (1, NumberEventType::Assigned, "09:00:00"),
            (2, NumberEventType::Unassigned, "10:00:00"),
            (3, NumberEventType::Assigned, "11:00:00"),
            (4, NumberEventType::Updated, "12:00:00"),
        ]
        .into_iter()
        .enumerate()
        {
            let id = u8::try_from(id).unwrap();
            book.apply(&event(id, sequence, kind, at), Profile::Correct);
        }
        let at = |t: &str| parse_timestamp(&format!("2026-11-26T{t}.000Z")).unwrap();
        book.forget_history_before(at("11:30:00"));
        let kept = &book.get(N).unwrap().history;
        assert_eq!(kept.iter().map(|c| c.sequence).collect::<Vec<_>>(), [3, 4]);
        assert!(book.assigned_at(N, at("11:30:00")));
        assert!(book.assigned_at(N, at("12:30:00")));
    }

    #[test]
    fn history_keeps_one_change_per_sequence_in_sequence_order() {
        let mut state = NumberState::heard_of("t");
        let change = |sequence, effective, assigned| Change {
            sequence,
            effective,
            assigned,
        };
        for c in [
            change(2, 20, true),
            change(5, 50, false),
            change(1, 10, true),
            change(3, 30, false),
            change(5, 55, true),
            change(6, 60, true),
        ] {
            state.learn(c);
        }
        assert_eq!(
            state.history,
            [
                change(1, 10, true),
                change(2, 20, true),
                change(3, 30, false),
                change(5, 55, true),
                change(6, 60, true),
            ]
        );
    }

    #[test]
    fn history_keeps_stale_events_for_assignment_at_a_time() {
        let mut book = NumberBook::default();
        book.apply(
            &event(1, 1, NumberEventType::Assigned, "09:00:00"),
            Profile::Correct,
        );
        book.apply(
            &event(3, 3, NumberEventType::Assigned, "11:00:00"),
            Profile::Correct,
        );
        // Arrives last, too stale for the state, but it says the number was free 10:00-11:00.
        book.apply(
            &event(2, 2, NumberEventType::Unassigned, "10:00:00"),
            Profile::Correct,
        );
        let at = |t: &str| parse_timestamp(&format!("2026-11-26T{t}.000Z")).unwrap();
        assert!(!book.assigned_at(N, at("08:59:59")));
        assert!(book.assigned_at(N, at("09:30:00")));
        assert!(!book.assigned_at(N, at("10:30:00")));
        assert!(book.assigned_at(N, at("11:00:00")));
        assert!(!book.assigned_at("+14255550199", at("11:00:00")));
    }
}
