//! The number inventory and its assignments: each change gets the number's next sequence and
//! becomes a [`NumberEvent`] for the webhook sender; each number keeps its history, so that a
//! call can be checked against the assignment in force when it was placed.

use oc_protocol::timestamp::format_timestamp;
use oc_protocol::{
    Assignee, AssignmentState, NumberEvent, NumberEventType, NumberUsage, TeamsNumber, UnixMillis,
};

/// What a number is assigned to: its SIP URI, usage and assignee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// `sip:<E.164>@<host>;user=phone`, naming the number.
    pub sip_uri: String,
    /// What the number is used for.
    pub usage: NumberUsage,
    /// Who it is assigned to (its type must go with `usage`).
    pub assignee: Assignee,
}

/// One number of a carrier's inventory.
#[derive(Debug, Clone)]
pub(crate) struct NumberRow {
    pub(crate) telephone_number: String,
    pub(crate) carrier: u16,
    pub(crate) tenant: u32,
    pub(crate) assignment: Option<Assignment>,
    pub(crate) sequence: u64,
    pub(crate) last_changed: UnixMillis,
    /// `(effective time, assigned)` for every change of whether it is assigned, in order.
    pub(crate) history: Vec<(UnixMillis, bool)>,
}

impl NumberRow {
    pub(crate) fn new(telephone_number: String, carrier: u16, tenant: u32, at: UnixMillis) -> Self {
        Self {
            telephone_number,
            carrier,
            tenant,
            assignment: None,
            sequence: 0,
            last_changed: at,
            history: Vec::new(),
        }
    }

    /// Whether the number was assigned at `at` (changes take effect at their effective time).
    pub(crate) fn assigned_at(&self, at: UnixMillis) -> bool {
        let changes_before = self.history.partition_point(|&(t, _)| t <= at);
        changes_before > 0 && self.history[changes_before - 1].1
    }

    /// Checks a change and returns its event (without ids: the caller adds the event id);
    /// nothing changes until [`NumberRow::commit`].
    pub(crate) fn plan(
        &self,
        kind: NumberEventType,
        assignment: Option<Assignment>,
        at: UnixMillis,
    ) -> Result<PendingEvent, String> {
        match (kind, &self.assignment) {
            (NumberEventType::Assigned, Some(_)) => {
                return Err(format!("{} is already assigned", self.telephone_number));
            }
            (NumberEventType::Updated | NumberEventType::Unassigned, None) => {
                return Err(format!("{} is not assigned", self.telephone_number));
            }
            _ => {}
        }
        if at < self.last_changed {
            return Err(format!(
                "changes of {} must come in time order: {} is before its last change at {}",
                self.telephone_number,
                format_timestamp(at),
                format_timestamp(self.last_changed)
            ));
        }
        Ok(PendingEvent {
            sequence: self.sequence + 1,
            kind,
            assignment,
            effective: at,
        })
    }

    /// Applies a planned change: the row takes its assignment (the event has its own copy).
    /// Of the history before `horizon` (no call starting earlier will be checked), only the
    /// last entry is kept: it answers for the horizon and after.
    pub(crate) fn commit(&mut self, change: PendingEvent, horizon: UnixMillis) {
        let before = self.history.partition_point(|&(t, _)| t <= horizon);
        if before > 1 {
            self.history.drain(..before - 1);
        }
        self.sequence = change.sequence;
        self.last_changed = change.effective;
        // An update leaves the number assigned: the entry before it answers for it already, so
        // the history grows with assignments and unassignments only.
        let assigned = change.assignment.is_some();
        if self.history.last().is_none_or(|&(_, was)| was != assigned) {
            self.history.push((change.effective, assigned));
        }
        self.assignment = change.assignment;
    }

    pub(crate) fn to_wire(&self, tenant_id: &str) -> TeamsNumber {
        let a = self.assignment.as_ref();
        TeamsNumber {
            telephone_number: self.telephone_number.clone(),
            tenant_id: tenant_id.to_owned(),
            state: if a.is_some() {
                AssignmentState::Assigned
            } else {
                AssignmentState::Unassigned
            },
            sip_uri: a.map(|a| a.sip_uri.clone()),
            usage: a.map(|a| a.usage),
            assignee: a.map(|a| a.assignee.clone()),
            sequence: self.sequence,
            last_changed_date_time: format_timestamp(self.last_changed),
        }
    }
}

/// A change of one number, before it gets its event id and tenant. A load test makes one per
/// notification: the number and the assignment are copied once, into the event, and the
/// assignment itself moves into the row.
pub(crate) struct PendingEvent {
    pub(crate) sequence: u64,
    pub(crate) kind: NumberEventType,
    pub(crate) assignment: Option<Assignment>,
    pub(crate) effective: UnixMillis,
}

impl PendingEvent {
    /// The event of this change of `telephone_number`.
    pub(crate) fn to_event(
        &self,
        telephone_number: &str,
        event_id: String,
        tenant_id: String,
    ) -> NumberEvent {
        let a = self.assignment.as_ref();
        NumberEvent {
            event_id,
            sequence: self.sequence,
            kind: self.kind,
            tenant_id,
            telephone_number: telephone_number.to_owned(),
            sip_uri: a.map(|a| a.sip_uri.clone()),
            usage: a.map(|a| a.usage),
            assignee: a.map(|a| a.assignee.clone()),
            effective_date_time: format_timestamp(self.effective),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oc_protocol::AssigneeType;

    fn assignment() -> Assignment {
        Assignment {
            sip_uri: "sip:+14255550100@sbc.example;user=phone".into(),
            usage: NumberUsage::CallingUserAssignment,
            assignee: Assignee {
                id: "a1b2c3d4-0000-4000-8000-000000000001".into(),
                kind: AssigneeType::User,
            },
        }
    }

    fn apply(
        row: &mut NumberRow,
        kind: NumberEventType,
        assignment: Option<Assignment>,
        at: UnixMillis,
    ) -> Result<u64, String> {
        apply_with_horizon(row, kind, assignment, at, UnixMillis::MIN)
    }

    fn apply_with_horizon(
        row: &mut NumberRow,
        kind: NumberEventType,
        assignment: Option<Assignment>,
        at: UnixMillis,
        horizon: UnixMillis,
    ) -> Result<u64, String> {
        let change = row.plan(kind, assignment, at)?;
        let sequence = change.sequence;
        row.commit(change, horizon);
        Ok(sequence)
    }

    #[test]
    fn sequence_and_history_follow_each_change() {
        let mut row = NumberRow::new("+14255550100".into(), 0, 0, 0);
        assert!(!row.assigned_at(0));
        let sequence = apply(&mut row, NumberEventType::Assigned, Some(assignment()), 100).unwrap();
        assert_eq!(sequence, 1);
        apply(&mut row, NumberEventType::Updated, Some(assignment()), 200).unwrap();
        let sequence = apply(&mut row, NumberEventType::Unassigned, None, 300).unwrap();
        assert_eq!(sequence, 3);
        assert!(!row.assigned_at(99));
        assert!(row.assigned_at(100));
        assert!(row.assigned_at(200));
        assert!(row.assigned_at(299));
        assert!(!row.assigned_at(300));
        // The update kept it assigned: no entry of its own.
        assert_eq!(row.history, [(100, true), (300, false)]);
    }

    #[test]
    fn history_before_the_horizon_keeps_only_what_answers_for_it() {
        use NumberEventType::{Assigned, Unassigned};
        let mut row = NumberRow::new("+14255550100".into(), 0, 0, 0);
        for i in 0..100 {
            apply_with_horizon(
                &mut row,
                Assigned,
                Some(assignment()),
                i * 100,
                i * 100 - 280,
            )
            .unwrap();
            apply_with_horizon(&mut row, Unassigned, None, i * 100 + 50, i * 100 - 280).unwrap();
        }
        // Two changes a tenth of a second, a horizon a quarter of a second back: the history
        // stays at the changes since the horizon and the last before it.
        assert!(row.history.len() <= 8, "{:?}", row.history);
        // Every instant from the horizon on is answered as before.
        let horizon = 99 * 100 - 280;
        for at in horizon..10_000 {
            let assigned = at % 100 < 50;
            assert_eq!(row.assigned_at(at), assigned, "{at}");
        }
    }

    #[test]
    fn impossible_changes_are_refused_and_change_nothing() {
        let mut row = NumberRow::new("+14255550100".into(), 0, 0, 0);
        assert!(apply(&mut row, NumberEventType::Unassigned, None, 1).is_err());
        assert!(apply(&mut row, NumberEventType::Updated, Some(assignment()), 1).is_err());
        apply(&mut row, NumberEventType::Assigned, Some(assignment()), 10).unwrap();
        assert!(apply(&mut row, NumberEventType::Assigned, Some(assignment()), 11).is_err());
        assert!(apply(&mut row, NumberEventType::Unassigned, None, 5).is_err());
        assert_eq!(row.sequence, 1);
        assert_eq!(row.history.len(), 1);
    }
}
