//! The carrier's view of its numbers: applying number events (once each, in sequence order),
//! resynchronising from Teams' full state, and each number's assignment history.

use std::collections::{BTreeMap, HashSet};

use oc_protocol::{
    AssignmentState, CarrierNumberView, NumberEvent, NumberEventType, NumberUsage, TeamsNumber,
    UnixMillis, parse_timestamp,
};

use crate::profile::Profile;

/// What became of one event of a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventOutcome {
    /// Applied to the number.
    Applied,
    /// Its eventId was applied before [NUM-IDEMPOTENT].
    Redelivered,
    /// Its sequence is not above the number's last applied one [NUM-ORDER].
    Stale,
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
    /// Every change the carrier learnt of, by sequence: (effective time, assigned after it).
    /// Kept even for events too stale to change the current state, because they still say
    /// when the number was or was not assigned (PROTOCOL.md 2.3).
    history: BTreeMap<u64, (UnixMillis, bool)>,
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
            history: BTreeMap::new(),
        }
    }
}

/// Every number the carrier has heard of, and the eventIds it applied.
#[derive(Debug, Default)]
pub(crate) struct NumberBook {
    numbers: BTreeMap<String, NumberState>,
    /// Only ever looked up, never listed: hashed, one lookup and one insert per new event
    /// rather than a B-tree walk comparing 36-byte ids.
    applied_event_ids: HashSet<String>,
}

impl NumberBook {
    /// Applies one (validated) event as `profile` does.
    pub(crate) fn apply(&mut self, event: &NumberEvent, profile: Profile) -> EventOutcome {
        let checks_ids = profile != Profile::NumIdempotent;
        if checks_ids && self.applied_event_ids.contains(&event.event_id) {
            return EventOutcome::Redelivered;
        }
        let effective = parse_timestamp(&event.effective_date_time).unwrap_or_default();
        // One walk of the map for a number already heard of (every event but its first); the
        // key is copied only for a number heard of first.
        let ids = checks_ids.then_some(&mut self.applied_event_ids);
        if let Some(entry) = self.numbers.get_mut(&event.telephone_number) {
            return apply_to(entry, ids, event, effective, profile);
        }
        let entry = self
            .numbers
            .entry(event.telephone_number.clone())
            .or_insert_with(|| NumberState::heard_of(&event.tenant_id));
        apply_to(entry, ids, event, effective, profile)
    }

    /// Takes Teams' state of a number (from `GET /oc/v1/numbers`) where it is newer than the
    /// carrier's. A resync applies no event, so `appliedEvents` does not change.
    pub(crate) fn resync(&mut self, number: &TeamsNumber) {
        let changed = parse_timestamp(&number.last_changed_date_time).unwrap_or_default();
        let assigned = number.state == AssignmentState::Assigned;
        let entry = self
            .numbers
            .entry(number.telephone_number.clone())
            .or_insert_with(|| NumberState::heard_of(&number.tenant_id));
        if number.sequence > 0 {
            entry.history.insert(number.sequence, (changed, assigned));
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
        self.numbers
            .get(telephone_number)
            .map(|n| CarrierNumberView {
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
        self.numbers.get(telephone_number).is_some_and(|n| {
            n.history
                .values()
                .rev()
                .find(|(effective, _)| *effective <= at)
                .is_some_and(|(_, assigned)| *assigned)
        })
    }

    /// How many numbers the carrier has heard of.
    pub(crate) fn len(&self) -> usize {
        self.numbers.len()
    }
}

/// Applies `event` to its number's `entry` as `profile` does, recording its id in `ids` when
/// the profile keeps them ([`NumberBook::apply`]).
fn apply_to(
    entry: &mut NumberState,
    ids: Option<&mut HashSet<String>>,
    event: &NumberEvent,
    effective: UnixMillis,
    profile: Profile,
) -> EventOutcome {
    let assigned = event.kind != NumberEventType::Unassigned;
    entry.history.insert(event.sequence, (effective, assigned));
    let stale = match profile {
        Profile::NumOrder => false,
        // Without eventId bookkeeping, the only guard left is the sequence; the equal
        // sequence of a redelivery passes it, and the state does not regress.
        Profile::NumIdempotent => event.sequence < entry.sequence,
        _ => event.sequence <= entry.sequence,
    };
    // Breaks NUM-STATE on purpose: an unassignment is acknowledged and forgotten.
    let ignored = profile == Profile::NumState && !assigned;
    if let Some(ids) = ids {
        ids.insert(event.event_id.clone());
    }
    if stale || ignored {
        return EventOutcome::Stale;
    }
    entry.tenant_id.clone_from(&event.tenant_id);
    entry.sequence = event.sequence;
    entry.applied_events += 1;
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
