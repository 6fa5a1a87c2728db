//! The conformance rules, one state machine each (`Rule`), and what they share: the tally of
//! failures and evidence, and how an exchange's URL, fault and body are read.
//!
//! A rule answers `Passed`, `Failed` or `NotExercised` (the run gave it too little to check),
//! counts every failure, and keeps the first [`MAX_EVIDENCE`] as evidence citing exchange
//! `seq`s. It also says what the run exercised, as counts with minimums ([`Exercised`]): below a
//! minimum it is `NotExercised`, never `Passed`. An exchange whose answer the harness replaced
//! on purpose (an injected 429 or 5xx, see `harness_caused`) never counts against the carrier.

mod durations;
mod feeds;
mod numbers;
mod quality;
mod security;

use oc_observe::{Exchange, InjectedFault};
use oc_protocol::RuleId;
use oc_reports::{Evidence, Exercised, MAX_EVIDENCE, Outcome, RuleVerdict};

use super::History;
use super::history::CheckSettings;
use super::stream::{Judged, Lookup, Rule};

/// A new rule's state, judging with the run's settings, and the state it shares with others.
type NewRule = fn(&CheckSettings, &Shared) -> Box<dyn Rule>;

/// Every rule, in catalogue order (`oc_protocol::rules::catalogue()`).
const RULES: [(RuleId, NewRule); 18] = [
    (RuleId::SecSignature, |_, _| {
        Box::new(security::SecSignature)
    }),
    (RuleId::SecIsolation, |_, _| {
        Box::new(security::SecIsolation)
    }),
    (RuleId::NumAck, |s, _| Box::new(numbers::NumAck::new(s))),
    (RuleId::NumIdempotent, |_, shared| {
        Box::new(numbers::NumIdempotent::new(shared.deliveries.clone()))
    }),
    (RuleId::NumOrder, |_, shared| {
        Box::new(numbers::NumOrder::new(shared.deliveries.clone()))
    }),
    (RuleId::NumState, |_, shared| {
        Box::new(numbers::NumState::new(shared.deliveries.clone()))
    }),
    (RuleId::CdrPaging, |_, _| Box::new(feeds::CdrPaging::new())),
    (RuleId::CdrFeed, |_, _| Box::new(feeds::CdrFeed::new())),
    (RuleId::CdrThrottle, |_, _| {
        Box::new(feeds::CdrThrottle::new())
    }),
    (RuleId::QuaClass, |_, _| Box::new(quality::QuaClass::new())),
    (RuleId::QuaFeed, |_, _| Box::new(quality::QuaFeed::new())),
    (RuleId::DurSchema, |_, _| {
        Box::new(durations::DurSchema::new())
    }),
    (RuleId::DurIdempotent, |_, _| {
        Box::new(durations::DurIdempotent::new())
    }),
    (RuleId::DurDuplicate, |_, _| {
        Box::new(durations::DurDuplicate::new())
    }),
    (RuleId::DurDeadline, |s, _| {
        Box::new(durations::DurDeadline::new(s))
    }),
    (RuleId::DurComplete, |_, _| {
        Box::new(durations::DurComplete::new())
    }),
    (RuleId::DurUnexpected, |_, _| {
        Box::new(durations::DurUnexpected::new())
    }),
    (RuleId::DurFidelity, |_, _| {
        Box::new(durations::DurFidelity::new())
    }),
];

/// Every rule's initial state, in catalogue order.
pub(crate) fn all(settings: &CheckSettings) -> Vec<Box<dyn Rule>> {
    let shared = Shared::default();
    RULES
        .iter()
        .map(|(_, new)| new(settings, &shared))
        .collect()
}

/// What several rules fold once for all of them.
#[derive(Default)]
struct Shared {
    /// The webhook attempts and number events of NUM-IDEMPOTENT, NUM-ORDER and NUM-STATE.
    deliveries: numbers::SharedDeliveries,
}

/// Judges one rule on a kept history (replayed through the whole checker).
pub fn check(rule: RuleId, history: &History) -> RuleVerdict {
    // RULES is in RuleId order, which a test checks.
    super::evaluate(history).rules.swap_remove(rule as usize)
}

/// The most exchange `seq`s one evidence item cites.
pub(crate) const MAX_SEQS_PER_EVIDENCE: usize = 20;

/// The failures a rule found: all counted, the first [`MAX_EVIDENCE`] kept.
pub(crate) struct Tally {
    rule: RuleId,
    failures: u64,
    evidence: Vec<Evidence>,
    exercised: Vec<Exercised>,
    lookups: Vec<Lookup>,
}

impl Tally {
    pub(crate) fn new(rule: RuleId) -> Self {
        Self {
            rule,
            failures: 0,
            evidence: Vec::new(),
            exercised: Vec::new(),
            lookups: Vec::new(),
        }
    }

    /// States what the run exercised: `count` of `what`, of which the rule needs `minimum`.
    pub(crate) fn exercised(&mut self, what: impl Into<String>, count: u64, minimum: u64) {
        self.exercised.push(Exercised::new(what, count, minimum));
    }

    /// Counts a failure; `evidence` (the note and the exchanges that show it) is only built
    /// while evidence is still kept, so that finding it may take a search.
    pub(crate) fn fail(&mut self, evidence: impl FnOnce() -> (String, Vec<u64>)) {
        self.failures += 1;
        if self.evidence.len() < MAX_EVIDENCE {
            let (note, mut exchanges) = evidence();
            exchanges.sort_unstable();
            exchanges.dedup();
            exchanges.truncate(MAX_SEQS_PER_EVIDENCE);
            self.evidence.push(Evidence { note, exchanges });
        }
    }

    /// Counts a failure whose evidence also cites the exchanges of a kind (`want`) whose body
    /// names `call_id`: found after the run, in one pass over the exchanges' bodies.
    pub(crate) fn fail_mentioning(
        &mut self,
        call_id: &str,
        want: fn(&Exchange) -> bool,
        evidence: impl FnOnce() -> (String, Vec<u64>),
    ) {
        let kept = self.evidence.len();
        self.fail(evidence);
        if self.evidence.len() > kept {
            self.lookups.push(Lookup::new(kept, call_id, want));
        }
    }

    /// Counts `n` failures beyond those with evidence (which must be full).
    pub(crate) fn fail_uncited(&mut self, n: u64) {
        debug_assert!(n == 0 || self.evidence.len() == MAX_EVIDENCE);
        self.failures += n;
    }

    pub(crate) fn failures(&self) -> u64 {
        self.failures
    }

    /// The verdict: `Failed` when anything failed; else `NotExercised` when a count stated with
    /// [`Tally::exercised`] is below its minimum; else `Passed`. `summary` says what was
    /// checked and what was found.
    pub(crate) fn finish(self, summary: String) -> Judged {
        let outcome = if self.failures > 0 {
            Outcome::Failed
        } else if self.exercised.iter().any(|e| !e.reached()) {
            Outcome::NotExercised
        } else {
            Outcome::Passed
        };
        Judged {
            verdict: RuleVerdict {
                exercised: self.exercised,
                ..verdict(self.rule, outcome, summary, self.failures, self.evidence)
            },
            lookups: self.lookups,
        }
    }
}

/// The verdict of a rule the history gave nothing to check; `why` says what was missing.
pub(crate) fn not_exercised(rule: RuleId, why: impl Into<String>) -> Judged {
    verdict(rule, Outcome::NotExercised, why.into(), 0, Vec::new()).into()
}

fn verdict(
    rule: RuleId,
    outcome: Outcome,
    summary: String,
    failures: u64,
    evidence: Vec<Evidence>,
) -> RuleVerdict {
    let catalogued = oc_protocol::rules::rule(rule);
    RuleVerdict {
        rule,
        severity: catalogued.severity,
        party: catalogued.party,
        outcome,
        summary,
        failures,
        exercised: Vec::new(),
        evidence,
    }
}

/// Whether Teams answered this exchange without doing anything with the request: an injected
/// 429 or 5xx, or a 429 of the rate limit (the carrier sent too much, and CDR-THROTTLE judges
/// what it did next). Added latency and webhook duplication or reordering do not count: the
/// answer, or the carrier's, was still real.
pub(crate) fn harness_caused(exchange: &Exchange) -> bool {
    matches!(
        exchange.fault,
        Some(
            InjectedFault::Throttled { .. }
                | InjectedFault::ServerError { .. }
                | InjectedFault::RateLimited { .. }
        )
    )
}

/// A URL without its scheme and host: path and query, as the Teams side records requests.
pub(crate) fn path_and_query(url: &str) -> &str {
    match url.find("://") {
        Some(i) => {
            let rest = &url[i + 3..];
            rest.find('/').map_or("/", |j| &rest[j..])
        }
        None => url,
    }
}

/// A URL's path alone.
pub(crate) fn path_of(url: &str) -> &str {
    let pq = path_and_query(url);
    pq.split_once('?').map_or(pq, |(path, _)| path)
}

/// A URL's query parameters as (name, value), undecoded, in order.
pub(crate) fn query_pairs(url: &str) -> Vec<(&str, &str)> {
    path_and_query(url)
        .split_once('?')
        .map(|(_, query)| {
            query
                .split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
                .collect()
        })
        .unwrap_or_default()
}

/// The value of a recorded request header (names are recorded in lower case).
pub(crate) fn header<'a>(exchange: &'a Exchange, name: &str) -> Option<&'a str> {
    exchange
        .request_headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// `n thing` or `n things`.
pub(crate) fn count(n: impl Into<u64>, thing: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_in_catalogue_order() {
        let ids: Vec<RuleId> = RULES.iter().map(|(id, _)| *id).collect();
        let catalogue: Vec<RuleId> = oc_protocol::rules::catalogue()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, catalogue);
        assert_eq!(ids, RuleId::ALL);
    }

    #[test]
    fn urls_are_read_without_scheme_and_host() {
        let link = "http://127.0.0.1:8080/oc/v1/cdrs/delta?token=abc";
        assert_eq!(path_and_query(link), "/oc/v1/cdrs/delta?token=abc");
        assert_eq!(path_of(link), "/oc/v1/cdrs/delta");
        assert_eq!(path_of("/oc/v1/cdrs/delta"), "/oc/v1/cdrs/delta");
        assert_eq!(path_and_query("https://teams.example"), "/");
        assert_eq!(
            query_pairs("/oc/v1/cdrs/delta?token=a=&pageSize=1000&flag"),
            [("token", "a="), ("pageSize", "1000"), ("flag", "")]
        );
        assert!(query_pairs("/oc/v1/cdrs/delta").is_empty());
    }

    #[test]
    fn evidence_is_capped_but_every_failure_counted() {
        let mut tally = Tally::new(RuleId::NumAck);
        for i in 0..(MAX_EVIDENCE as u64 + 5) {
            tally.fail(|| (format!("failure {i}"), vec![i + 1, i, i]));
        }
        let verdict = tally.finish("checked".into()).verdict;
        assert_eq!(verdict.outcome, Outcome::Failed);
        assert_eq!(verdict.failures, MAX_EVIDENCE as u64 + 5);
        assert_eq!(verdict.evidence.len(), MAX_EVIDENCE);
        assert_eq!(verdict.evidence[0].exchanges, [0, 1]);
    }
}
