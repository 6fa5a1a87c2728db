//! The quality rules (PROTOCOL.md 3.3): QUA-CLASS (Teams classifies every served record right)
//! and QUA-FEED (the carrier reads the quality feed to its end in every poll cycle).

use mock_teams::{Exchange, ExchangeDetail, ExchangeDirection};
use oc_protocol::{RuleId, paths};
use oc_reports::RuleVerdict;

use super::{Tally, count, harness_caused, mentioning, not_exercised, path_of};
use crate::checker::History;

fn is_quality_page(e: &Exchange) -> bool {
    matches!(&e.detail, Some(ExchangeDetail::FeedPage { feed, .. }) if feed == "quality")
}

/// QUA-CLASS (Teams): every served quality record's `poor` is the CQD classification of the
/// fields beside it.
pub(super) fn qua_class(history: &History) -> RuleVerdict {
    if history.quality_served.is_empty() {
        return not_exercised(RuleId::QuaClass, "Teams served no quality record");
    }
    let mut tally = Tally::new(RuleId::QuaClass);
    for record in &history.quality_served {
        let expected = record.classify();
        if record.poor == expected {
            continue;
        }
        tally.fail(|| {
            (
                format!(
                    "call {} ({}): poor is {}, but {} packets, average round trip {} ms, \
                     average packet loss rate {}, average jitter {} ms classify as {}",
                    record.call_id,
                    record.stream_direction,
                    record.poor,
                    record.packet_utilization,
                    record.average_round_trip_time_ms,
                    record.average_packet_loss_rate,
                    record.average_jitter_ms,
                    if expected { "poor" } else { "not poor" },
                ),
                mentioning(history, &record.call_id, is_quality_page),
            )
        });
    }
    let failures = tally.failures();
    tally.finish(format!(
        "{} checked; {failures} with a poor flag that disagrees with the classification",
        count(history.quality_served.len() as u64, "served quality record")
    ))
}

/// QUA-FEED: in every poll cycle in which the carrier made a request, its last request to the
/// quality feed got a page with a `deltaLink`. A cycle whose last quality request Teams answered
/// with an injected fault, or with a 429 for a request sent too early, is not judged here (the
/// fault is the harness's; the early request is CDR-THROTTLE's).
pub(super) fn qua_feed(history: &History) -> RuleVerdict {
    let mut tally = Tally::new(RuleId::QuaFeed);
    let mut judged = 0u64;
    for cycle in &history.cycles {
        if cycle.last_seq < cycle.first_seq {
            continue;
        }
        // Exchanges are sorted by seq: the cycle's are one contiguous run of them.
        let start = history
            .exchanges
            .partition_point(|e| e.seq < cycle.first_seq);
        let end = history
            .exchanges
            .partition_point(|e| e.seq <= cycle.last_seq);
        let requests: Vec<&Exchange> = history.exchanges[start..end]
            .iter()
            .filter(|e| e.direction == ExchangeDirection::CarrierToTeams)
            .collect();
        if requests.is_empty() {
            continue;
        }
        let at = oc_protocol::format_timestamp(cycle.sim_time);
        let Some(last) = requests
            .iter()
            .rev()
            .find(|e| path_of(&e.url) == paths::QUALITY_DELTA)
        else {
            judged += 1;
            tally.fail(|| {
                (
                    format!(
                        "the poll cycle at {at} (seqs {}..={}) made {} but read no quality page",
                        cycle.first_seq,
                        cycle.last_seq,
                        count(requests.len() as u64, "request")
                    ),
                    requests.iter().map(|e| e.seq).collect(),
                )
            });
            continue;
        };
        let interrupted = harness_caused(last)
            || matches!(last.detail, Some(ExchangeDetail::EarlyAfterThrottle { .. }));
        if interrupted {
            continue;
        }
        judged += 1;
        match &last.detail {
            Some(ExchangeDetail::FeedPage { next: false, .. }) => {}
            Some(ExchangeDetail::FeedPage { next: true, .. }) if is_quality_page(last) => {
                tally.fail(|| {
                    (
                        format!(
                            "the poll cycle at {at} stopped at the quality page of seq {}, which \
                             has a nextLink: the feed was not read to its end",
                            last.seq
                        ),
                        vec![last.seq],
                    )
                });
            }
            _ => tally.fail(|| {
                let status = last
                    .status
                    .map_or("no answer".to_owned(), |s| s.to_string());
                (
                    format!(
                        "the poll cycle at {at} ended its quality reading with a request Teams \
                         did not serve (seq {}, {status})",
                        last.seq
                    ),
                    vec![last.seq],
                )
            }),
        }
    }
    let failures = tally.failures();
    tally.exercised("poll cycles judged", judged, 1);
    tally.finish(if judged == 0 {
        "no poll cycle in which the carrier made a request".to_owned()
    } else {
        format!(
            "{} judged; {failures} did not read the quality feed to its end",
            count(judged, "poll cycle")
        )
    })
}
