//! The conformance rule catalogue: every rule of PROTOCOL.md, as data the checker and the
//! reports use. This catalogue is the source of truth; `oc-harness rules` prints it.

use serde::Serialize;

wire_enum! {
    /// A rule's id, as in PROTOCOL.md's brackets.
    pub enum RuleId {
        /// Webhook signatures are checked (section 1).
        SecSignature = "SEC-SIGNATURE",
        /// No carrier reaches another's data (section 1).
        SecIsolation = "SEC-ISOLATION",
        /// Webhooks are acknowledged in time (2.1).
        NumAck = "NUM-ACK",
        /// Each event is applied at most once (2.1, 2.2).
        NumIdempotent = "NUM-IDEMPOTENT",
        /// Stale sequences are ignored (2.1).
        NumOrder = "NUM-ORDER",
        /// The carrier converges to Teams' state (2.1).
        NumState = "NUM-STATE",
        /// Paging links are followed as given (3).
        CdrPaging = "CDR-PAGING",
        /// The change feed neither skips nor repeats (3.2).
        CdrFeed = "CDR-FEED",
        /// `Retry-After` is honoured (0).
        CdrThrottle = "CDR-THROTTLE",
        /// Served quality records are classified right (3.3).
        QuaClass = "QUA-CLASS",
        /// The quality feed is read to its end every cycle (3.3).
        QuaFeed = "QUA-FEED",
        /// Duration records are well-formed (3.4).
        DurSchema = "DUR-SCHEMA",
        /// Idempotency keys are used as the protocol says (3.4).
        DurIdempotent = "DUR-IDEMPOTENT",
        /// Each call is reported once (3.4).
        DurDuplicate = "DUR-DUPLICATE",
        /// Durations arrive before the deadline (3.4).
        DurDeadline = "DUR-DEADLINE",
        /// Every answered call is reported (3.4).
        DurComplete = "DUR-COMPLETE",
        /// Nothing is reported that should not be (2.3, 3.4).
        DurUnexpected = "DUR-UNEXPECTED",
        /// Reported durations equal the switch's legs (2.3).
        DurFidelity = "DUR-FIDELITY",
    }
}

wire_enum! {
    /// How much a failed rule weighs.
    pub enum Severity {
        /// A failure fails certification.
        Must = "must",
        /// A failure is counted and shown, not a certification failure.
        Should = "should",
    }
}

wire_enum! {
    /// Whose behaviour a rule judges.
    pub enum Party {
        /// The carrier's integration: what certification judges.
        Carrier = "carrier",
        /// The Teams side: the harness checks its own mock with it.
        Teams = "teams",
    }
}

/// One conformance rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    /// The id, as in PROTOCOL.md.
    pub id: RuleId,
    /// What the rule asks, in one sentence.
    pub statement: &'static str,
    /// Whether a failure fails certification.
    pub severity: Severity,
    /// Whose behaviour it judges.
    pub party: Party,
    /// The PROTOCOL.md sections that state it.
    pub sections: &'static [&'static str],
    /// What the checker keeps as evidence of a failure.
    pub evidence: &'static str,
}

/// Every rule, in the order of [`RuleId::ALL`].
pub fn catalogue() -> &'static [Rule] {
    &CATALOGUE
}

/// The rule with this id.
pub fn rule(id: RuleId) -> &'static Rule {
    // CATALOGUE is declared in RuleId order, which a test checks.
    &CATALOGUE[id as usize]
}

const fn must(
    id: RuleId,
    party: Party,
    sections: &'static [&'static str],
    statement: &'static str,
    evidence: &'static str,
) -> Rule {
    Rule {
        id,
        statement,
        severity: Severity::Must,
        party,
        sections,
        evidence,
    }
}

static CATALOGUE: [Rule; 18] = [
    must(
        RuleId::SecSignature,
        Party::Carrier,
        &["1"],
        "The carrier rejects with 401, and does not apply, a notification whose OC-Signature is \
         missing, wrong, or more than 300 s from its clock.",
        "the forged or replayed notification, the carrier's answer, and the state probe showing \
         whether it was applied",
    ),
    must(
        RuleId::SecIsolation,
        Party::Teams,
        &["1"],
        "A missing or unknown token gets 401, another carrier's data gets 404, and no request \
         reads or changes another carrier's numbers, records or reconciliation.",
        "the request made with one carrier's token on another's data, and the answer",
    ),
    must(
        RuleId::NumAck,
        Party::Carrier,
        &["2.1"],
        "The carrier answers every number-assignment notification with 200, 202 or 204 within 5 s.",
        "each delivery attempt answered late, with another status, or not at all: time, latency, \
         status",
    ),
    must(
        RuleId::NumIdempotent,
        Party::Carrier,
        &["2.1", "2.2"],
        "The carrier applies each eventId at most once: a number's appliedEvents never exceeds the \
         distinct eventIds Teams sent for it.",
        "the redelivered notifications and the state probe showing appliedEvents above the \
         distinct events sent",
    ),
    must(
        RuleId::NumOrder,
        Party::Carrier,
        &["2.1", "2.2"],
        "The carrier ignores an event whose sequence is not greater than the last it applied for \
         that number, and does not count it in appliedEvents.",
        "the overtaken event, the newer one it overtook, and the state probe after both",
    ),
    must(
        RuleId::NumState,
        Party::Carrier,
        &["2.1"],
        "Once deliveries settle, the carrier's view of every number (state, SIP URI, usage, \
         sequence) equals Teams'.",
        "Teams' state and the carrier's state probe of each number that differs",
    ),
    must(
        RuleId::CdrPaging,
        Party::Carrier,
        &["3"],
        "The carrier follows nextLink and deltaLink exactly as given and never builds its own \
         paging parameters.",
        "the request whose URL is no link Teams issued, and the links Teams had issued",
    ),
    must(
        RuleId::CdrFeed,
        Party::Teams,
        &["3.2"],
        "Within one chain of links the CDR feed skips and repeats no record, even while new \
         records arrive; a corrected record comes again with a higher version.",
        "the records skipped or served twice, with the pages that served them",
    ),
    must(
        RuleId::CdrThrottle,
        Party::Carrier,
        &["0"],
        "After a 429, the carrier sends nothing more to that endpoint before the Retry-After \
         delay has passed.",
        "the 429 with its Retry-After, and the early request with its time",
    ),
    must(
        RuleId::QuaClass,
        Party::Teams,
        &["3.3"],
        "Every served quality record's poor flag agrees with the CQD audio classification of the \
         fields beside it.",
        "the quality record whose poor flag disagrees, with the classification's inputs",
    ),
    must(
        RuleId::QuaFeed,
        Party::Carrier,
        &["3.3"],
        "In every poll cycle the carrier reads the quality feed to its end (a page with a \
         deltaLink).",
        "the poll cycle that stopped short, with its last quality page",
    ),
    must(
        RuleId::DurSchema,
        Party::Carrier,
        &["3.4"],
        "Every reported duration record is well-formed (schema, E.164, endDateTime not before \
         connectDateTime, durationMs within 1 ms of the timestamps); Teams rejects malformed \
         records one by one and accepts the rest.",
        "the report, the rejected records and Teams' errors for each",
    ),
    must(
        RuleId::DurIdempotent,
        Party::Carrier,
        &["3.4"],
        "The carrier sends every call-durations request with an Idempotency-Key and never reuses \
         a key with another body.",
        "the two requests that share a key with different bodies, and the 422",
    ),
    Rule {
        severity: Severity::Should,
        ..must(
            RuleId::DurDuplicate,
            Party::Carrier,
            &["3.4"],
            "The carrier reports each call once: a report whose answer was lost is retried with \
             its key and body, not under a new key; a repeated identical report is a duplicate.",
            "the calls reported more than once, with each report",
        )
    },
    must(
        RuleId::DurDeadline,
        Party::Carrier,
        &["3.4"],
        "The carrier reports each call's duration within the reporting deadline after the call's \
         end.",
        "the late calls with their end time, the deadline and the time of the first report",
    ),
    must(
        RuleId::DurComplete,
        Party::Carrier,
        &["3.4"],
        "The carrier reports a duration for every answered call on its assigned numbers.",
        "the answered calls never reported, with their CDRs",
    ),
    must(
        RuleId::DurUnexpected,
        Party::Carrier,
        &["2.3", "3.4"],
        "The carrier reports no call that does not exist, and none on a number that was not \
         assigned to it at the call's connect time.",
        "the unexpected reports, with the number's assignment history",
    ),
    must(
        RuleId::DurFidelity,
        Party::Carrier,
        &["2.3"],
        "Each duration reported for a certification leg equals the leg's endDateTime − \
         connectDateTime to the millisecond.",
        "the leg as posted and the duration reported for it",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_in_rule_id_order() {
        let ids: Vec<RuleId> = catalogue().iter().map(|r| r.id).collect();
        assert_eq!(ids, RuleId::ALL);
        for id in RuleId::ALL {
            assert_eq!(rule(*id).id, *id);
        }
    }

    #[test]
    fn only_dur_duplicate_is_a_should() {
        let shoulds: Vec<&str> = catalogue()
            .iter()
            .filter(|r| r.severity == Severity::Should)
            .map(|r| r.id.as_str())
            .collect();
        assert_eq!(shoulds, ["DUR-DUPLICATE"]);
    }

    #[test]
    fn catalogue_snapshot() {
        insta::assert_json_snapshot!("rule_catalogue", catalogue());
    }
}
