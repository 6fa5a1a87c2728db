//! Number assignments: the webhook notification Teams sends the carrier (PROTOCOL.md 2.1), the
//! carrier's state probe (2.2) and Teams' full-state collection (3.1).

use serde::{Deserialize, Serialize};

use crate::validate::{Findings, Path, Validate};

/// The most events one notification carries.
pub const MAX_EVENTS_PER_NOTIFICATION: usize = 100;

/// `POST /oc/v1/notifications/number-assignments`: a batch of number events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NumberAssignmentNotification {
    /// Unique per notification; the same on every redelivery.
    pub notification_id: String,
    /// When Teams (first) sent it, in simulated time.
    pub sent_date_time: String,
    /// 1 to 100 events.
    pub events: Vec<NumberEvent>,
}

/// One change of one telephone number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NumberEvent {
    /// Unique per event; the same on every redelivery.
    pub event_id: String,
    /// Per telephone number, strictly increasing with each change.
    pub sequence: u64,
    /// What happened.
    #[serde(rename = "type")]
    pub kind: NumberEventType,
    /// The customer tenant.
    pub tenant_id: String,
    /// The carrier's number, E.164.
    pub telephone_number: String,
    /// Where calls to the number go; absent on `unassigned`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_uri: Option<String>,
    /// What the number is used for; absent on `unassigned`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<NumberUsage>,
    /// Who the number is assigned to; absent on `unassigned`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<Assignee>,
    /// When the change took effect, in simulated time.
    pub effective_date_time: String,
}

wire_enum! {
    /// The kind of a [`NumberEvent`].
    pub enum NumberEventType {
        /// The number was assigned in the Teams admin center.
        Assigned = "assigned",
        /// The assignment was removed.
        Unassigned = "unassigned",
        /// The SIP URI, usage or assignee changed.
        Updated = "updated",
    }
}

wire_enum! {
    /// What an assigned number is used for.
    pub enum NumberUsage {
        /// A user's phone number.
        CallingUserAssignment = "CallingUserAssignment",
        /// A resource account's (auto attendant, call queue).
        FirstPartyAppAssignment = "FirstPartyAppAssignment",
        /// A conference bridge's dial-in number.
        ConferenceAssignment = "ConferenceAssignment",
    }
}

impl NumberUsage {
    /// The assignee type that goes with this usage.
    pub fn assignee_type(self) -> AssigneeType {
        match self {
            Self::CallingUserAssignment => AssigneeType::User,
            Self::FirstPartyAppAssignment => AssigneeType::ResourceAccount,
            Self::ConferenceAssignment => AssigneeType::ConferenceBridge,
        }
    }
}

/// Who a number is assigned to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Assignee {
    /// The assignee's object id.
    pub id: String,
    /// What kind of object it is.
    #[serde(rename = "type")]
    pub kind: AssigneeType,
}

wire_enum! {
    /// The kind of an [`Assignee`].
    pub enum AssigneeType {
        /// A Teams user.
        User = "user",
        /// A resource account.
        ResourceAccount = "resourceAccount",
        /// A conference bridge.
        ConferenceBridge = "conferenceBridge",
    }
}

wire_enum! {
    /// Whether a number is assigned.
    pub enum AssignmentState {
        /// Assigned in the Teams admin center.
        Assigned = "assigned",
        /// Not assigned (never, or no longer).
        Unassigned = "unassigned",
    }
}

/// `GET /oc/v1/numbers/{telephoneNumber}` on the carrier: its current view of one number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CarrierNumberView {
    /// The number, E.164.
    pub telephone_number: String,
    /// The tenant of the last event applied.
    pub tenant_id: String,
    /// Assigned or not, in the carrier's view.
    pub state: AssignmentState,
    /// The SIP URI, while assigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_uri: Option<String>,
    /// The usage, while assigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<NumberUsage>,
    /// The sequence of the last event applied.
    pub sequence: u64,
    /// How many events the carrier applied to this number.
    pub applied_events: u64,
}

/// One number of the carrier in `GET /oc/v1/numbers` on Teams: Teams' state of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TeamsNumber {
    /// The number, E.164.
    pub telephone_number: String,
    /// The tenant the carrier provisioned it to.
    pub tenant_id: String,
    /// Assigned or not.
    pub state: AssignmentState,
    /// The SIP URI, while assigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_uri: Option<String>,
    /// The usage, while assigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<NumberUsage>,
    /// The assignee, while assigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<Assignee>,
    /// The sequence of the last event for this number; 0 before the first.
    pub sequence: u64,
    /// When the state last changed, in simulated time.
    pub last_changed_date_time: String,
}

impl Validate for NumberAssignmentNotification {
    fn validate_at(&self, at: Path<'_>, out: &mut Findings) {
        out.uuid(at.key("notificationId"), &self.notification_id);
        out.timestamp(at.key("sentDateTime"), &self.sent_date_time);
        let events = at.key("events");
        out.count(events, self.events.len(), 1, MAX_EVENTS_PER_NOTIFICATION);
        let mut seen = std::collections::BTreeSet::new();
        for (i, event) in self.events.iter().enumerate() {
            let here = events.index(i);
            event.validate_at(here, out);
            if !seen.insert(event.event_id.as_str()) {
                out.push(
                    here.key("eventId"),
                    "must be unique within the notification",
                );
            }
        }
    }
}

impl Validate for NumberEvent {
    fn validate_at(&self, at: Path<'_>, out: &mut Findings) {
        out.uuid(at.key("eventId"), &self.event_id);
        if self.sequence == 0 {
            out.push(at.key("sequence"), "must be >= 1");
        }
        out.uuid(at.key("tenantId"), &self.tenant_id);
        let number_ok = out.e164(at.key("telephoneNumber"), &self.telephone_number);
        out.timestamp(at.key("effectiveDateTime"), &self.effective_date_time);
        let number = number_ok.then_some(self.telephone_number.as_str());
        check_assignment(
            at,
            out,
            self.assignment_state(),
            AssignmentFields {
                sip_uri: self.sip_uri.as_deref(),
                usage: self.usage,
                assignee: Some(self.assignee.as_ref()),
                number,
            },
        );
    }
}

impl NumberEvent {
    /// Validates what the maker of an event chooses for it, for one whose ids, tenant, number and
    /// time it made itself, each already valid (Teams' store: a generated event id, a tenant and
    /// a number checked when added, a formatted time): its sequence and its assignment. The
    /// errors are those [`Validate::validate`] gives for such an event; the rest of the check
    /// was a third of the store's cost of a load test's event.
    pub fn validate_change(&self) -> Result<(), crate::validate::ValidationErrors> {
        let mut out = Findings::default();
        let at = Path::ROOT;
        if self.sequence == 0 {
            out.push(at.key("sequence"), "must be >= 1");
        }
        check_assignment(
            at,
            &mut out,
            self.assignment_state(),
            AssignmentFields {
                sip_uri: self.sip_uri.as_deref(),
                usage: self.usage,
                assignee: Some(self.assignee.as_ref()),
                number: Some(self.telephone_number.as_str()),
            },
        );
        out.into_result()
    }

    fn assignment_state(&self) -> AssignmentState {
        match self.kind {
            NumberEventType::Unassigned => AssignmentState::Unassigned,
            NumberEventType::Assigned | NumberEventType::Updated => AssignmentState::Assigned,
        }
    }
}

impl Validate for CarrierNumberView {
    fn validate_at(&self, at: Path<'_>, out: &mut Findings) {
        let number_ok = out.e164(at.key("telephoneNumber"), &self.telephone_number);
        out.uuid(at.key("tenantId"), &self.tenant_id);
        check_assignment(
            at,
            out,
            self.state,
            AssignmentFields {
                sip_uri: self.sip_uri.as_deref(),
                usage: self.usage,
                assignee: None,
                number: number_ok.then_some(self.telephone_number.as_str()),
            },
        );
    }
}

impl Validate for TeamsNumber {
    fn validate_at(&self, at: Path<'_>, out: &mut Findings) {
        let number_ok = out.e164(at.key("telephoneNumber"), &self.telephone_number);
        out.uuid(at.key("tenantId"), &self.tenant_id);
        out.timestamp(at.key("lastChangedDateTime"), &self.last_changed_date_time);
        check_assignment(
            at,
            out,
            self.state,
            AssignmentFields {
                sip_uri: self.sip_uri.as_deref(),
                usage: self.usage,
                assignee: Some(self.assignee.as_ref()),
                number: number_ok.then_some(self.telephone_number.as_str()),
            },
        );
    }
}

/// The fields that an assigned number has and an unassigned one has not.
struct AssignmentFields<'a> {
    sip_uri: Option<&'a str>,
    usage: Option<NumberUsage>,
    /// `None` where the type has no assignee field; `Some(None)` where it is absent.
    assignee: Option<Option<&'a Assignee>>,
    /// The telephone number the SIP URI must name, when that number is valid.
    number: Option<&'a str>,
}

fn check_assignment(at: Path<'_>, out: &mut Findings, state: AssignmentState, f: AssignmentFields) {
    let absent = "must be absent when the number is unassigned";
    let required = "is required while the number is assigned";
    match state {
        AssignmentState::Unassigned => {
            if f.sip_uri.is_some() {
                out.push(at.key("sipUri"), absent);
            }
            if f.usage.is_some() {
                out.push(at.key("usage"), absent);
            }
            if let Some(Some(_)) = f.assignee {
                out.push(at.key("assignee"), absent);
            }
        }
        AssignmentState::Assigned => {
            match f.sip_uri {
                Some(uri) => {
                    out.sip_uri(at.key("sipUri"), uri, f.number);
                }
                None => out.push(at.key("sipUri"), required),
            }
            if f.usage.is_none() {
                out.push(at.key("usage"), required);
            }
            match f.assignee {
                Some(Some(assignee)) => {
                    let here = at.key("assignee");
                    out.uuid(here.key("id"), &assignee.id);
                    if let Some(usage) = f.usage
                        && usage.assignee_type() != assignee.kind
                    {
                        out.push(
                            here.key("type"),
                            format!("must be {} for usage {usage}", usage.assignee_type()),
                        );
                    }
                }
                Some(None) => out.push(at.key("assignee"), required),
                None => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> NumberEvent {
        NumberEvent {
            event_id: "0b6e8a52-3c1d-4f7e-9a2b-5d4c3b2a1f00".into(),
            sequence: 3,
            kind: NumberEventType::Assigned,
            tenant_id: "1b6e8a52-3c1d-4f7e-9a2b-5d4c3b2a1f00".into(),
            telephone_number: "+14255550100".into(),
            sip_uri: Some("sip:+14255550100@sbc.example;user=phone".into()),
            usage: Some(NumberUsage::CallingUserAssignment),
            assignee: Some(Assignee {
                id: "2b6e8a52-3c1d-4f7e-9a2b-5d4c3b2a1f00".into(),
                kind: AssigneeType::User,
            }),
            effective_date_time: "2026-01-01T00:00:00.000Z".into(),
        }
    }

    /// For an event whose ids, tenant, number and time are valid, `validate_change` finds
    /// exactly what the whole check finds, for every way its maker can get the rest wrong.
    #[test]
    fn a_change_is_judged_as_the_whole_event_is() {
        let mut cases: Vec<(&str, NumberEvent)> = vec![("valid", event())];
        let mut e = event();
        e.sequence = 0;
        cases.push(("sequence 0", e));
        let mut e = event();
        e.sip_uri = Some("sip:+14255550199@sbc.example;user=phone".into());
        cases.push(("another number's SIP URI", e));
        let mut e = event();
        e.sip_uri = Some("tel:+14255550100".into());
        cases.push(("not a SIP URI", e));
        let mut e = event();
        e.sip_uri = None;
        e.usage = None;
        e.assignee = None;
        cases.push(("assigned without an assignment", e));
        let mut e = event();
        e.kind = NumberEventType::Unassigned;
        cases.push(("unassigned with an assignment", e));
        let mut e = event();
        e.kind = NumberEventType::Unassigned;
        e.sip_uri = None;
        e.usage = None;
        e.assignee = None;
        cases.push(("unassigned", e));
        let mut e = event();
        if let Some(a) = e.assignee.as_mut() {
            a.kind = AssigneeType::ConferenceBridge;
        }
        cases.push(("assignee type against the usage", e));
        let mut e = event();
        if let Some(a) = e.assignee.as_mut() {
            a.id = "not-a-uuid".into();
        }
        cases.push(("assignee id", e));
        for (name, event) in cases {
            let whole = event.validate().map_err(|e| e.to_string());
            assert_eq!(
                event.validate_change().map_err(|e| e.to_string()),
                whole,
                "{name}"
            );
            assert_eq!(
                whole.is_ok(),
                matches!(name, "valid" | "unassigned"),
                "{name}"
            );
        }
    }
}
