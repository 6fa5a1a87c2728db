//! The quality rules (PROTOCOL.md 3.3): QUA-CLASS (Teams classifies every record it serves
//! right, as read on the wire) and QUA-FEED (the carrier reads the quality feed to its end in
//! every poll cycle).

use std::collections::VecDeque;

use oc_observe::was_cut;
use oc_observe::{Exchange, ExchangeDetail, ExchangeDirection};
use oc_protocol::{RuleId, paths};
use serde_json::Value;

use super::{Tally, count, harness_caused, path_of};
use crate::checker::history::PollCycle;
use crate::checker::stream::{End, Judged, Observation, Rule};

/// QUA-CLASS (Teams): every quality record served is `poor` exactly when the CQD audio
/// classification of PROTOCOL.md 3.3 says so, judged on the records as they crossed the wire
/// (the bodies of the quality pages Teams recorded), against thresholds written here rather
/// than the classification Teams itself uses: comparing Teams with itself could never fail.
/// A page whose body was cut at the capture limit, or does not read as a page of records, is
/// counted as not judged rather than guessed at.
pub(super) struct QuaClass {
    tally: Tally,
    judged: u64,
    pages: u64,
    cut: u64,
    unreadable: u64,
}

impl QuaClass {
    pub(super) fn new() -> Self {
        Self {
            tally: Tally::new(RuleId::QuaClass),
            judged: 0,
            pages: 0,
            cut: 0,
            unreadable: 0,
        }
    }
}

impl Rule for QuaClass {
    fn failures_so_far(&self) -> u64 {
        self.tally.failures()
    }

    fn exchange(&mut self, exchange: &Exchange) {
        let Some(ExchangeDetail::FeedPage {
            feed,
            from_position,
            to_position,
            misclassified,
            ..
        }) = &exchange.detail
        else {
            return;
        };
        if feed != "quality" || exchange.status != Some(200) || harness_caused(exchange) {
            return;
        }
        let served = to_position.saturating_sub(*from_position);
        let body = exchange.response_body.as_deref().unwrap_or("");
        if was_cut(body) {
            self.cut += served;
            return;
        }
        let Some(records) = page_records(body) else {
            self.unreadable += served;
            return;
        };
        self.pages += 1;
        for (index, record) in records.iter().enumerate() {
            let Some(stream) = WireStream::read(record) else {
                self.unreadable += 1;
                continue;
            };
            self.judged += 1;
            let expected = stream.classify();
            if stream.poor == expected {
                continue;
            }
            let on_purpose = u32::try_from(index).is_ok_and(|i| misclassified.contains(&i));
            self.tally.fail(|| {
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

    fn finish(self: Box<Self>, _: &End<'_>) -> Judged {
        let Self {
            mut tally,
            judged,
            pages,
            cut,
            unreadable,
        } = *self;
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
pub(super) struct QuaFeed {
    tally: Tally,
    judged: u64,
    /// The carrier's requests not yet placed in a cycle, in `seq` order: at most one cycle's.
    open: VecDeque<Request>,
}

/// What QUA-FEED remembers of one of the carrier's requests until its cycle ends.
#[derive(Debug, Clone, Copy)]
struct Request {
    seq: u64,
    status: Option<u16>,
    /// To the quality feed.
    quality: bool,
    /// Answered with an injected fault, or a 429 for a request sent too early.
    interrupted: bool,
    /// A feed page, and whether it had a `nextLink`.
    page: Option<Page>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Page {
    Quality { next: bool },
    Other { next: bool },
}

impl QuaFeed {
    pub(super) fn new() -> Self {
        Self {
            tally: Tally::new(RuleId::QuaFeed),
            judged: 0,
            open: VecDeque::new(),
        }
    }

    fn exchange(&mut self, e: &Exchange) {
        if e.direction != ExchangeDirection::CarrierToTeams {
            return;
        }
        self.open.push_back(Request {
            seq: e.seq,
            status: e.status,
            quality: path_of(&e.url) == paths::QUALITY_DELTA,
            interrupted: harness_caused(e)
                || matches!(e.detail, Some(ExchangeDetail::EarlyAfterThrottle { .. })),
            page: match &e.detail {
                Some(ExchangeDetail::FeedPage { feed, next, .. }) if feed == "quality" => {
                    Some(Page::Quality { next: *next })
                }
                Some(ExchangeDetail::FeedPage { next, .. }) => Some(Page::Other { next: *next }),
                _ => None,
            },
        });
    }

    fn cycle(&mut self, cycle: &PollCycle) {
        while self.open.front().is_some_and(|r| r.seq < cycle.first_seq) {
            self.open.pop_front();
        }
        let mut requests = Vec::new();
        while self.open.front().is_some_and(|r| r.seq <= cycle.last_seq) {
            requests.extend(self.open.pop_front());
        }
        if cycle.last_seq < cycle.first_seq || requests.is_empty() {
            return;
        }
        let at = oc_protocol::format_timestamp(cycle.sim_time);
        let Some(last) = requests.iter().rev().find(|r| r.quality) else {
            self.judged += 1;
            self.tally.fail(|| {
                (
                    format!(
                        "the poll cycle at {at} (seqs {}..={}) made {} but read no quality page",
                        cycle.first_seq,
                        cycle.last_seq,
                        count(requests.len() as u64, "request")
                    ),
                    requests.iter().map(|r| r.seq).collect(),
                )
            });
            return;
        };
        if last.interrupted {
            return;
        }
        self.judged += 1;
        match last.page {
            Some(Page::Quality { next: false } | Page::Other { next: false }) => {}
            Some(Page::Quality { next: true }) => {
                self.tally.fail(|| {
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
            _ => self.tally.fail(|| {
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
}

impl Rule for QuaFeed {
    fn failures_so_far(&self) -> u64 {
        self.tally.failures()
    }

    fn observe(&mut self, observation: &Observation<'_>) {
        match observation {
            Observation::Exchange(e) => self.exchange(e),
            Observation::Cycle(c) => self.cycle(c),
            _ => {}
        }
    }

    fn finish(self: Box<Self>, _: &End<'_>) -> Judged {
        let Self {
            mut tally, judged, ..
        } = *self;
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
}
