//! The quality rules (PROTOCOL.md 3.3): QUA-CLASS (Teams classifies every record it serves
//! right, as read on the wire) and QUA-FEED (the carrier reads the quality feed to its end in
//! every poll cycle).

use crate::checker::stream::Judged;
use oc_observe::was_cut;
use oc_observe::{Exchange, ExchangeDetail, ExchangeDirection};
use oc_protocol::{RuleId, paths};
use serde_json::Value;

use super::{Tally, count, harness_caused, path_of};
use crate::checker::History;

fn is_quality_page(e: &Exchange) -> bool {
    matches!(&e.detail, Some(ExchangeDetail::FeedPage { feed, .. }) if feed == "quality")
}

/// QUA-CLASS (Teams): every quality record served is `poor` exactly when the CQD audio
/// classification of PROTOCOL.md 3.3 says so, judged on the records as they crossed the wire
/// (the bodies of the quality pages Teams recorded), against thresholds written here rather
/// than the classification Teams itself uses: comparing Teams with itself could never fail.
/// A page whose body was cut at the capture limit, or does not read as a page of records, is
/// counted as not judged rather than guessed at.
pub(super) fn qua_class(history: &History) -> Judged {
    let mut tally = Tally::new(RuleId::QuaClass);
    let (mut judged, mut pages) = (0u64, 0u64);
    let (mut cut, mut unreadable) = (0u64, 0u64);
    for exchange in &history.exchanges {
        let Some(ExchangeDetail::FeedPage {
            feed,
            from_position,
            to_position,
            misclassified,
            ..
        }) = &exchange.detail
        else {
            continue;
        };
        if feed != "quality" || exchange.status != Some(200) || harness_caused(exchange) {
            continue;
        }
        let served = to_position.saturating_sub(*from_position);
        let body = exchange.response_body.as_deref().unwrap_or("");
        if was_cut(body) {
            cut += served;
            continue;
        }
        let Some(records) = page_records(body) else {
            unreadable += served;
            continue;
        };
        pages += 1;
        for (index, record) in records.iter().enumerate() {
            let Some(stream) = WireStream::read(record) else {
                unreadable += 1;
                continue;
            };
            judged += 1;
            let expected = stream.classify();
            if stream.poor == expected {
                continue;
            }
            let on_purpose = u32::try_from(index).is_ok_and(|i| misclassified.contains(&i));
            tally.fail(|| {
                (
                    format!(
                        "call {} ({}) in the quality page of seq {}: poor is {}, but {} packets, \
                         average round trip {} ms, average packet loss rate {}, average \
                         jitter {} ms classify as {}{}",
                        stream.call_id,
                        stream.direction,
                        exchange.seq,
                        stream.poor,
                        stream.packets,
                        stream.round_trip_ms,
                        stream.loss_rate,
                        stream.jitter_ms,
                        if expected { "poor" } else { "not poor" },
                        if on_purpose {
                            " (flipped on purpose: teams_faults.quality_misclassify_share)"
                        } else {
                            ""
                        },
                    ),
                    vec![exchange.seq],
                )
            });
        }
    }
    let failures = tally.failures();
    let mut summary = format!(
        "{} judged in {}; {} not judged (body cut at the capture limit)",
        count(judged, "served quality record"),
        count(pages, "quality page"),
        count(cut, "record")
    );
    if unreadable > 0 {
        summary.push_str(&format!(
            ", {} not judged (not readable as a quality record)",
            count(unreadable, "record")
        ));
    }
    summary.push_str(&format!(
        "; {failures} with a poor flag that disagrees with the classification"
    ));
    tally.exercised("served quality records judged from the wire", judged, 1);
    tally.finish(summary)
}

/// The records of a feed page's body, when it is one.
fn page_records(body: &str) -> Option<Vec<Value>> {
    match serde_json::from_str::<Value>(body).ok()? {
        Value::Object(mut page) => match page.remove("value")? {
            Value::Array(records) => Some(records),
            _ => None,
        },
        _ => None,
    }
}

/// What QUA-CLASS reads of one quality record on the wire.
struct WireStream {
    call_id: String,
    direction: String,
    packets: f64,
    round_trip_ms: f64,
    loss_rate: f64,
    jitter_ms: f64,
    poor: bool,
}

impl WireStream {
    fn read(record: &Value) -> Option<Self> {
        let number = |name: &str| record.get(name)?.as_f64();
        Some(Self {
            call_id: record.get("callId")?.as_str()?.to_owned(),
            direction: record
                .get("streamDirection")
                .and_then(Value::as_str)
                .unwrap_or("no streamDirection")
                .to_owned(),
            packets: number("packetUtilization")?,
            round_trip_ms: number("averageRoundTripTimeMs")?,
            loss_rate: number("averagePacketLossRate")?,
            jitter_ms: number("averageJitterMs")?,
            poor: record.get("poor")?.as_bool()?,
        })
    }

    /// PROTOCOL.md 3.3, the Call Quality Dashboard's audio classification: a stream of more
    /// than 500 packets is poor when its average round trip is over 500 ms, or its average
    /// packet loss rate over 0.1, or its average jitter over 30 ms; 500 packets or fewer are
    /// never poor.
    fn classify(&self) -> bool {
        self.packets > 500.0
            && (self.round_trip_ms > 500.0 || self.loss_rate > 0.1 || self.jitter_ms > 30.0)
    }
}

/// QUA-FEED: in every poll cycle in which the carrier made a request, its last request to the
/// quality feed got a page with a `deltaLink`. A cycle whose last quality request Teams answered
/// with an injected fault, or with a 429 for a request sent too early, is not judged here (the
/// fault is the harness's; the early request is CDR-THROTTLE's).
pub(super) fn qua_feed(history: &History) -> Judged {
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
