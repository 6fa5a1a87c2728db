//! Misbehaviour profiles: `correct`, or exactly one broken rule, named by that rule's id (a
//! second way of breaking the same rule adds a suffix: `CDR-PAGING/next-link`).

use std::fmt;

use oc_protocol::RuleId;
use serde::{Deserialize, Serialize};

/// How the carrier behaves: correctly, or breaking exactly one conformance rule on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Profile {
    /// Follows every rule.
    #[serde(rename = "correct")]
    Correct,
    /// Accepts a notification with no `OC-Signature`, or one whose `t` is outside the 300 s
    /// tolerance (a present signature must still match the body).
    #[serde(rename = "SEC-SIGNATURE")]
    SecSignature,
    /// Applies a redelivered event again: no eventId bookkeeping, and an event whose sequence
    /// equals the last applied one is applied again. State never regresses; only
    /// `appliedEvents` grows past the distinct events sent.
    #[serde(rename = "NUM-IDEMPOTENT")]
    NumIdempotent,
    /// Applies every new eventId whatever its sequence, so an overtaken event overwrites a
    /// newer one. Redeliveries are still recognised by eventId.
    #[serde(rename = "NUM-ORDER")]
    NumOrder,
    /// Acknowledges `unassigned` events but never applies them: the number stays assigned in
    /// the carrier's view. Everything else is applied as a correct carrier does.
    #[serde(rename = "NUM-STATE")]
    NumState,
    /// Answers each notification only after `ack_delay_ms` (default 6 s, past the 5 s deadline).
    /// The events are applied before the wait, and redeliveries are recognised as usual.
    #[serde(rename = "NUM-ACK")]
    NumAck,
    /// On each CDR link it follows (nextLink or deltaLink), first requests a URL of its own:
    /// the link with `pageSize` set to 1000; if Teams refuses it with a 4xx, it follows the link
    /// as given, so that no record is lost.
    #[serde(rename = "CDR-PAGING")]
    CdrPaging,
    /// Follows `deltaLink`s as given, but requests each CDR `nextLink` first with a `pageSize`
    /// of its own (falling back to the link as given when Teams refuses it): only a chain of
    /// several pages shows it.
    #[serde(rename = "CDR-PAGING/next-link")]
    CdrPagingNextLink,
    /// After a 429, retries after its own short backoff instead of the `Retry-After` delay.
    #[serde(rename = "CDR-THROTTLE")]
    CdrThrottle,
    /// Reads every CDR page, but drops the records of the page at `skip_page_index` (default 1,
    /// the second page) of every chain, so their calls are never reported.
    #[serde(rename = "DUR-COMPLETE")]
    DurComplete,
    /// Sends each new duration batch first under the previous batch's Idempotency-Key; after
    /// Teams' 422 it sends the batch again under its own key, so that nothing is lost.
    #[serde(rename = "DUR-IDEMPOTENT")]
    DurIdempotent,
    /// When a duration report gets a 5xx (its answer lost), retries it under a new
    /// Idempotency-Key: if Teams had applied it, every record is now reported twice.
    #[serde(rename = "DUR-DUPLICATE")]
    DurDuplicate,
    /// Reads the quality feed to its end in its first `quality_full_cycles` poll cycles
    /// (default 1), and not at all after that.
    #[serde(rename = "QUA-FEED")]
    QuaFeed,
}

impl Profile {
    /// Every profile, `correct` first, then in rule-catalogue order.
    pub const ALL: [Profile; 13] = [
        Self::Correct,
        Self::SecSignature,
        Self::NumAck,
        Self::NumIdempotent,
        Self::NumOrder,
        Self::NumState,
        Self::CdrPaging,
        Self::CdrPagingNextLink,
        Self::CdrThrottle,
        Self::QuaFeed,
        Self::DurIdempotent,
        Self::DurDuplicate,
        Self::DurComplete,
    ];

    /// The rule this profile breaks; `None` for `correct`.
    pub fn rule(self) -> Option<RuleId> {
        match self {
            Self::Correct => None,
            Self::SecSignature => Some(RuleId::SecSignature),
            Self::NumIdempotent => Some(RuleId::NumIdempotent),
            Self::NumOrder => Some(RuleId::NumOrder),
            Self::NumState => Some(RuleId::NumState),
            Self::NumAck => Some(RuleId::NumAck),
            Self::CdrPaging | Self::CdrPagingNextLink => Some(RuleId::CdrPaging),
            Self::DurDuplicate => Some(RuleId::DurDuplicate),
            Self::CdrThrottle => Some(RuleId::CdrThrottle),
            Self::DurComplete => Some(RuleId::DurComplete),
            Self::DurIdempotent => Some(RuleId::DurIdempotent),
            Self::QuaFeed => Some(RuleId::QuaFeed),
        }
    }

    /// The name in configuration files: `correct`, the rule id, or the rule id and a suffix.
    pub fn name(self) -> &'static str {
        match self {
            Self::CdrPagingNextLink => "CDR-PAGING/next-link",
            other => other.rule().map_or("correct", RuleId::as_str),
        }
    }

    /// The name as a file-name part: `num-order`, `cdr-paging-next-link`.
    pub fn slug(self) -> String {
        self.name().to_lowercase().replace('/', "-")
    }

    /// What the profile does, in one sentence (for `mock-carrier profiles`).
    pub fn behaviour(self) -> &'static str {
        match self {
            Self::Correct => "follows every rule",
            Self::SecSignature => {
                "accepts notifications without an OC-Signature or with a stale or future t"
            }
            Self::NumIdempotent => {
                "applies a redelivered event again, so appliedEvents exceeds the distinct events"
            }
            Self::NumOrder => "applies an overtaken event (lower sequence) over a newer one",
            Self::NumState => "acknowledges unassigned events but never applies them",
            Self::CdrPagingNextLink => {
                "follows deltaLinks as given, but requests CDR nextLinks with its own pageSize first"
            }
            Self::DurDuplicate => {
                "retries a duration report whose answer was lost (5xx) under a new Idempotency-Key"
            }
            Self::NumAck => "answers notifications after ack_delay_ms (default 6 s)",
            Self::CdrPaging => "requests CDR links with its own pageSize before the link as given",
            Self::CdrThrottle => "retries a 429 after its own short backoff, not Retry-After",
            Self::DurComplete => {
                "drops the records of one CDR page per chain (skip_page_index), never reporting them; \
                 with calls_from = \"legs\", loses the first leg of the skip_page_index-th \
                 call-legs batch"
            }
            Self::DurIdempotent => {
                "sends each new duration batch under the previous batch's Idempotency-Key first"
            }
            Self::QuaFeed => "stops reading the quality feed after quality_full_cycles cycles",
        }
    }

    /// Reads a profile name as written in configuration files.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_profile_breaks_one_carrier_rule_under_a_distinct_name() {
        let rules: Vec<RuleId> = Profile::ALL.iter().filter_map(|p| p.rule()).collect();
        assert_eq!(rules.len(), Profile::ALL.len() - 1);
        let mut names: Vec<&str> = Profile::ALL.iter().map(|p| p.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Profile::ALL.len());
        for rule in rules {
            assert_eq!(
                oc_protocol::rules::rule(rule).party,
                oc_protocol::Party::Carrier,
                "{rule}"
            );
        }
    }

    #[test]
    fn names_round_trip_through_serde_and_from_name() {
        for p in Profile::ALL {
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(json, format!("\"{}\"", p.name()));
            assert_eq!(Profile::from_name(p.name()), Some(p));
        }
        assert_eq!(Profile::from_name("CDR-FEED"), None);
    }
}
