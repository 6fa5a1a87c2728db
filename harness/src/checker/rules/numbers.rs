//! The number-assignment rules (PROTOCOL.md 2.1, 2.2): NUM-ACK, NUM-IDEMPOTENT, NUM-ORDER and
//! NUM-STATE, judged from the webhook attempts Teams recorded, the events it generated, its
//! final state and the carrier's state probes.
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

use std::collections::{BTreeMap, BTreeSet};

use crate::checker::stream::Judged;
use oc_observe::{Exchange, ExchangeDetail, ExchangeDirection};
use oc_protocol::{NumberEvent, RuleId, TeamsNumber};

use super::{Tally, count};
use crate::checker::History;
use crate::checker::history::Probe;

/// Every webhook attempt, with the events it carried, indexed by event and by number.
struct Deliveries<'a> {
    /// Every attempt of the carrier's notifications, in `seq` order.
    attempts: Vec<(&'a Exchange, &'a [String])>,
    /// eventId → indexes into `attempts`.
    by_event: BTreeMap<&'a str, Vec<usize>>,
    /// telephoneNumber → its distinct events, in the order generated.
    by_number: BTreeMap<&'a str, Vec<&'a NumberEvent>>,
}

impl<'a> Deliveries<'a> {
    fn new(history: &'a History) -> Self {
        let attempts: Vec<(&Exchange, &[String])> = history
            .exchanges
            .iter()
            .filter(|e| e.direction == ExchangeDirection::TeamsToCarrier)
            .filter_map(|e| match &e.detail {
                Some(ExchangeDetail::Webhook { event_ids, .. }) => Some((e, event_ids.as_slice())),
                _ => None,
            })
            .collect();
        let mut by_event: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, (_, event_ids)) in attempts.iter().enumerate() {
            for id in *event_ids {
                by_event.entry(id.as_str()).or_default().push(i);
            }
        }
        let mut by_number: BTreeMap<&str, Vec<&NumberEvent>> = BTreeMap::new();
        let mut seen = BTreeSet::new();
        for event in &history.events {
            if seen.insert(event.event_id.as_str()) {
                by_number
                    .entry(event.telephone_number.as_str())
                    .or_default()
                    .push(event);
            }
        }
        Self {
            attempts,
            by_event,
            by_number,
        }
    }

    /// The number's events that at least one attempt carried.
    fn delivered(&self, number: &str) -> Vec<&'a NumberEvent> {
        self.by_number
            .get(number)
            .into_iter()
            .flatten()
            .copied()
            .filter(|e| self.by_event.contains_key(e.event_id.as_str()))
            .collect()
    }

    /// The attempts that carried an event.
    fn attempts_of(&self, event_id: &str) -> impl Iterator<Item = &'a Exchange> + '_ {
        self.by_event
            .get(event_id)
            .into_iter()
            .flatten()
            .map(|&i| self.attempts[i].0)
    }

    /// The `seq`s of every attempt that carried one of `events`.
    fn seqs(&self, events: &[&NumberEvent]) -> Vec<u64> {
        events
            .iter()
            .flat_map(|e| self.attempts_of(&e.event_id))
            .map(|a| a.seq)
            .collect()
    }
}

fn accepted(attempt: &Exchange) -> bool {
    matches!(attempt.status, Some(200 | 202 | 204))
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// NUM-ACK: every webhook attempt answered 200, 202 or 204 within the acknowledgement deadline.
pub(super) fn num_ack(history: &History) -> Judged {
    let deadline_ms = history.settings.ack_deadline_ms;
    let deadline_us = deadline_ms.saturating_mul(1_000);
    let mut tally = Tally::new(RuleId::NumAck);
    let mut attempts = 0u64;
    // A webhook fault (duplicated or held-back delivery) changes when a notification goes
    // out, not the carrier's answer to it: those answers are judged like any other.
    for e in &history.exchanges {
        let Some(ExchangeDetail::Webhook {
            notification_id,
            attempt,
            event_ids,
        }) = &e.detail
        else {
            continue;
        };
        if e.direction != ExchangeDirection::TeamsToCarrier {
            continue;
        }
        attempts += 1;
        let what = || {
            format!(
                "attempt {attempt} of notification {} ({})",
                short(notification_id),
                count(event_ids.len() as u64, "event")
            )
        };
        let took_ms = e.latency_us as f64 / 1_000.0;
        match e.status {
            None => tally.fail(|| {
                let why = e.error.as_deref().unwrap_or("no answer");
                (format!("{} was not answered: {why}", what()), vec![e.seq])
            }),
            Some(200 | 202 | 204) if e.latency_us <= deadline_us => {}
            Some(status @ (200 | 202 | 204)) => tally.fail(|| {
                (
                    format!(
                        "{} was answered {status} after {took_ms:.0} ms, past the {deadline_ms} \
                         ms deadline",
                        what()
                    ),
                    vec![e.seq],
                )
            }),
            Some(status) => tally.fail(|| {
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
    tally.exercised("webhook attempts", attempts, 1);
    let failures = tally.failures();
    let summary = if failures == 0 {
        format!(
            "{} checked; every one acknowledged with 200, 202 or 204 within {deadline_ms} ms",
            count(attempts, "webhook attempt")
        )
    } else {
        format!(
            "{} checked; {failures} not acknowledged with 200, 202 or 204 within {deadline_ms} ms",
            count(attempts, "webhook attempt")
        )
    };
    tally.finish(summary)
}

/// The probes that carry a view, with the view.
fn viewed(history: &History) -> impl Iterator<Item = (&Probe, &oc_protocol::CarrierNumberView)> {
    history
        .probes
        .iter()
        .filter_map(|p| p.view.as_ref().map(|v| (p, v)))
}

/// NUM-IDEMPOTENT: no probed number's `appliedEvents` exceeds the distinct events delivered
/// for it.
pub(super) fn num_idempotent(history: &History) -> Judged {
    let deliveries = Deliveries::new(history);
    let mut tally = Tally::new(RuleId::NumIdempotent);
    let mut probed = 0u64;
    let mut redelivered = 0u64;
    for (probe, view) in viewed(history) {
        probed += 1;
        let delivered = deliveries.delivered(&probe.telephone_number);
        redelivered += redeliveries(&deliveries, &delivered);
        let distinct = delivered.len() as u64;
        if view.applied_events <= distinct {
            continue;
        }
        tally.fail(|| {
            let seqs = deliveries.seqs(&delivered);
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

/// An event a correct carrier must ignore, and the newer one it arrived after.
struct Overtaken<'a> {
    event: &'a NumberEvent,
    /// The first attempt that carried it.
    first_attempt: &'a Exchange,
    newer: &'a NumberEvent,
    /// The attempt that accepted the newer one before the overtaken one was sent.
    newer_accepted: &'a Exchange,
}

/// The overtaken events of one number's delivered events (see the module documentation), each
/// matched to a newer event of its own that was accepted before it arrived: a carrier that
/// never applied that newer event may rightly apply the older one, so only matched pairs
/// lower the bound, one for one. The matching is greedy (overtaken events by arrival, each
/// taking the lowest unused newer sequence); a smaller matching only makes the bound laxer.
fn overtaken<'a>(deliveries: &Deliveries<'a>, delivered: &[&'a NumberEvent]) -> Vec<Overtaken<'a>> {
    // Times in µs since the epoch. `wall_time_ms` is truncated to the millisecond, so an
    // attempt started somewhere in [ms, ms + 1): its completion is certainly before
    // `ms + 1 + latency`, and its start certainly not before `ms`.
    let start_us = |a: &Exchange| i128::from(a.wall_time_ms) * 1_000;
    let done_us = |a: &Exchange| start_us(a) + 1_000 + i128::from(a.latency_us);
    let mut arrivals: Vec<(&NumberEvent, &Exchange)> = delivered
        .iter()
        .filter_map(|&event| {
            deliveries
                .attempts_of(&event.event_id)
                .min_by_key(|a| (start_us(a), a.seq))
                .map(|first| (event, first))
        })
        .collect();
    arrivals.sort_by_key(|(e, first)| (start_us(first), e.sequence));
    let mut used: BTreeSet<&str> = BTreeSet::new();
    let mut out = Vec::new();
    for (event, first_attempt) in arrivals {
        let arrived_from = start_us(first_attempt);
        let newer = delivered
            .iter()
            .filter(|f| f.sequence > event.sequence && !used.contains(f.event_id.as_str()))
            .filter_map(|f| {
                deliveries
                    .attempts_of(&f.event_id)
                    .filter(|a| accepted(a) && done_us(a) <= arrived_from)
                    .min_by_key(|a| a.seq)
                    .map(|a| (*f, a))
            })
            .min_by_key(|(f, a)| (f.sequence, a.seq));
        if let Some((newer, newer_accepted)) = newer {
            used.insert(newer.event_id.as_str());
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
fn redeliveries(deliveries: &Deliveries<'_>, delivered: &[&NumberEvent]) -> u64 {
    delivered
        .iter()
        .map(|e| (deliveries.attempts_of(&e.event_id).count() as u64).saturating_sub(1))
        .sum()
}

/// The least overtaken events (on numbers without redeliveries) that exercise NUM-ORDER.
const MIN_OVERTAKEN: u64 = 1;
/// The least redelivered events on probed numbers that exercise NUM-IDEMPOTENT.
const MIN_REDELIVERED: u64 = 1;

/// NUM-ORDER: no probed number's `appliedEvents` shows that the carrier applied an event that
/// arrived after a newer one of the same number was accepted (see the module documentation).
pub(super) fn num_order(history: &History) -> Judged {
    let deliveries = Deliveries::new(history);
    let mut tally = Tally::new(RuleId::NumOrder);
    let mut exact = 0u64;
    let mut loose = 0u64;
    let mut numbers = 0u64;
    for (probe, view) in viewed(history) {
        let number = probe.telephone_number.as_str();
        let delivered = deliveries.delivered(number);
        let overtaken = overtaken(&deliveries, &delivered);
        if overtaken.is_empty() {
            continue;
        }
        numbers += 1;
        let distinct = delivered.len() as u64;
        let bound = distinct - overtaken.len() as u64;
        let slack = redeliveries(&deliveries, &delivered);
        if slack == 0 {
            exact += overtaken.len() as u64;
        } else {
            loose += overtaken.len() as u64;
        }
        if view.applied_events > distinct || view.applied_events <= bound.saturating_add(slack) {
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
                        short(&o.event.event_id),
                        o.event.sequence,
                        o.first_attempt.seq,
                        short(&o.newer.event_id),
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
                    "{number}: {}; a carrier that ignores them applies at most {bound}{slack} of \
                     the {distinct} events delivered, but appliedEvents is {}: an overtaken \
                     event was applied",
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
        count(numbers, "probed number")
    ))
}

/// NUM-STATE: every probed number agrees with Teams' final state.
pub(super) fn num_state(history: &History) -> Judged {
    let deliveries = Deliveries::new(history);
    let teams: BTreeMap<&str, &TeamsNumber> = history
        .teams_numbers
        .iter()
        .map(|n| (n.telephone_number.as_str(), n))
        .collect();
    let mut tally = Tally::new(RuleId::NumState);
    let mut probed = 0u64;
    let mut unassigned_last = 0u64;
    for probe in &history.probes {
        let number = probe.telephone_number.as_str();
        let Some(want) = teams.get(number) else {
            continue;
        };
        probed += 1;
        let events = deliveries.by_number.get(number).map_or(0, Vec::len);
        if want.state == oc_protocol::AssignmentState::Unassigned && events > 0 {
            unassigned_last += 1;
        }
        let has_events = events > 0 || want.sequence > 0;
        // The deliveries of the event that made Teams' final state.
        let last_seqs = || {
            deliveries
                .by_number
                .get(number)
                .into_iter()
                .flatten()
                .filter(|e| e.sequence == want.sequence)
                .flat_map(|e| deliveries.attempts_of(&e.event_id))
                .map(|a| a.seq)
                .collect::<Vec<u64>>()
        };
        let teams_state = || format!("Teams has it {} at sequence {}", want.state, want.sequence);
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
            let usage = |u: Option<oc_protocol::NumberUsage>| u.map_or("absent", |u| u.as_str());
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
