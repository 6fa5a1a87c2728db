//! DUR-FIDELITY: the durations reported for the certification legs the harness posted,
//! against the legs themselves.

use std::collections::BTreeMap;

use oc_observe::{Exchange, ExchangeDetail};
use oc_protocol::RuleId;
use oc_protocol::durations::parse_duration_report;

use super::{answer_lost, is_replayed, report};
use crate::checker::history::LegFact;
use crate::checker::rules::{Tally, count, not_exercised};
use crate::checker::stream::{End, Judged, Observation, Rule};

/// DUR-FIDELITY: every duration reported for a certification leg equals the leg's
/// `endDateTime − connectDateTime`. The reports are read from the bodies Teams received (the
/// certification keeps them whole); a body cut at the capture limit is counted, not judged.
///
/// Its state is the legs (a certification's: one per call it played on the wall clock, few)
/// and what was posted and reported of them; a simulation posts none, and then it reads no
/// report and keeps nothing.
#[derive(Default)]
pub(crate) struct DurFidelity {
    /// The legs posted, by call id.
    legs: BTreeMap<String, LegFact>,
    /// How many legs were posted.
    posted: u64,
    /// The exchanges that posted each leg to the carrier, by call id.
    posts: BTreeMap<String, Vec<u64>>,
    /// Every applied duration reported for a leg, in the order Teams received them, with its
    /// exchange, by call id.
    reported: BTreeMap<String, Vec<(i64, u64)>>,
    /// Report bodies too large to keep whole.
    unreadable: u64,
}

impl DurFidelity {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    fn report(&mut self, e: &Exchange) {
        // A report whose answer Teams lost on purpose was applied all the same.
        let applied = e.status == Some(200) || answer_lost(e);
        if !applied || is_replayed(e) {
            return;
        }
        let Some(parsed) = e
            .request_body
            .as_deref()
            .and_then(|b| parse_duration_report(b.as_bytes()).ok())
        else {
            self.unreadable += 1;
            return;
        };
        for record in parsed.records.into_iter().flatten() {
            if self.legs.contains_key(&record.call_id) {
                self.reported
                    .entry(record.call_id)
                    .or_default()
                    .push((record.duration_ms, e.seq));
            }
        }
    }
}

impl Rule for DurFidelity {
    fn observe(&mut self, observation: &Observation<'_>) {
        match *observation {
            Observation::Leg(leg) => {
                self.posted += 1;
                self.legs.insert(leg.call_id.clone(), leg.clone());
            }
            Observation::Exchange(e) => {
                // Only the posts of legs told of: a load test posts legs it does not tell the
                // checker of (it judges no fidelity), and keeping their posts would grow with
                // its calls. A certification tells of each leg before posting it.
                if let Some(ExchangeDetail::CallLegs { call_ids }) = &e.detail {
                    for call_id in call_ids.iter().filter(|id| self.legs.contains_key(*id)) {
                        self.posts.entry(call_id.clone()).or_default().push(e.seq);
                    }
                }
                // A leg is observed before any report of it: before the first, no report can
                // be of one.
                if !self.legs.is_empty()
                    && let Some(e) = report(observation)
                {
                    self.report(e);
                }
            }
            Observation::Event(_) | Observation::Cycle(_) => {}
        }
    }

    fn finish(self: Box<Self>, _end: &End<'_>) -> Judged {
        if self.posted == 0 {
            return not_exercised(
                RuleId::DurFidelity,
                "no certification leg was posted (a simulation reports Teams' CDRs)",
            );
        }
        let mut tally = Tally::new(RuleId::DurFidelity);
        let mut judged = 0u64;
        for (call_id, durations) in &self.reported {
            let leg = &self.legs[call_id];
            let want = leg.end - leg.connect;
            judged += durations.len() as u64;
            let wrong: Vec<&(i64, u64)> = durations.iter().filter(|(d, _)| *d != want).collect();
            if wrong.is_empty() {
                continue;
            }
            tally.fail(|| {
                let values: Vec<String> = wrong.iter().map(|(d, _)| format!("{d} ms")).collect();
                (
                    format!(
                        "leg {call_id} on {} lasted {want} ms, but the carrier reported {}",
                        leg.telephone_number,
                        values.join(", ")
                    ),
                    // The post that carried the leg, then the reports.
                    self.posts
                        .get(call_id)
                        .into_iter()
                        .flatten()
                        .copied()
                        .chain(wrong.iter().map(|(_, seq)| *seq))
                        .collect(),
                )
            });
        }
        let unreadable = if self.unreadable == 0 {
            String::new()
        } else {
            format!(
                "; {} too large to keep whole not judged",
                count(self.unreadable, "report body")
            )
        };
        tally.exercised("reported durations of legs judged", judged, 1);
        if judged == 0 {
            return tally.finish(format!(
                "no duration was reported for any of the {} posted{unreadable}",
                count(self.posted, "certification leg")
            ));
        }
        let failures = tally.failures();
        tally.finish(format!(
            "{} of {} judged; {} reported with another duration{unreadable}",
            count(judged, "reported duration"),
            count(self.posted, "leg"),
            count(failures, "leg")
        ))
    }
}

#[cfg(test)]
mod tests {
    use oc_protocol::paths;
    use oc_reports::Outcome;

    use super::*;
    use crate::checker::rules::durations::request;

    /// A simulation posts no legs: DUR-FIDELITY then reads no report and keeps nothing of them.
    /// The same reports after a leg is posted are read.
    #[test]
    fn dur_fidelity_keeps_nothing_without_legs() {
        let body = r#"{"records": [{"callId": "call-1", "telephoneNumber": "+14255550100",
            "connectDateTime": "2026-11-26T09:00:00.000Z",
            "endDateTime": "2026-11-26T09:00:01.000Z", "durationMs": 1000}]}"#;
        let reports = [
            request(2, paths::CALL_DURATIONS, 200, body),
            request(3, paths::CALL_DURATIONS, 200, body),
            request(
                4,
                paths::CALL_DURATIONS,
                200,
                "{\"records\":[…[9000 bytes in all]",
            ),
        ];
        let observe = |rule: &mut DurFidelity| {
            for e in &reports {
                rule.observe(&Observation::Exchange(e));
            }
        };
        let mut simulation = Box::new(DurFidelity::new());
        observe(&mut simulation);
        assert!(simulation.reported.is_empty() && simulation.legs.is_empty());
        assert_eq!(simulation.unreadable, 0);
        let verdict = simulation.finish(&End::default()).verdict;
        assert_eq!(verdict.outcome, Outcome::NotExercised);

        let mut certification = Box::new(DurFidelity::new());
        certification.observe(&Observation::Leg(&LegFact {
            call_id: "call-1".into(),
            telephone_number: "+14255550100".into(),
            connect: 0,
            end: 1_000,
            assigned: true,
        }));
        observe(&mut certification);
        assert_eq!(certification.reported["call-1"], [(1_000, 2), (1_000, 3)]);
        assert_eq!(certification.unreadable, 1);
        let verdict = certification.finish(&End::default()).verdict;
        assert_eq!(verdict.outcome, Outcome::Passed, "{verdict:#?}");
    }
}
