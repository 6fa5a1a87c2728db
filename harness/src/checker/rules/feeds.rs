//! The paging and feed rules (PROTOCOL.md 0, 3, 3.2): CDR-PAGING (links followed as given),
//! CDR-FEED (Teams' chains neither skip nor repeat) and CDR-THROTTLE (`Retry-After` honoured),
//! judged from the requests the carrier made and the links Teams issued.

use std::collections::BTreeMap;

use oc_observe::{Exchange, ExchangeDetail, ExchangeDirection, InjectedFault};
use oc_protocol::{RuleId, paths};

use super::{Tally, count, harness_caused, path_and_query, path_of, query_pairs};
use crate::checker::stream::{End, Judged, Rule};

/// The paged endpoints of the Teams API, with the parameters a first call may carry.
const PAGED: [(&str, &[&str]); 5] = [
    (paths::NUMBERS, &["tenantId", "state", "pageSize"]),
    (paths::CDRS_DELTA, &["pageSize"]),
    (paths::CDRS, &["from", "to", "pageSize"]),
    (paths::QUALITY_DELTA, &["pageSize"]),
    (
        paths::RECONCILIATION_ITEMS,
        &["class", "from", "to", "pageSize"],
    ),
];

/// What kind of link an exchange issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Issued {
    /// A `nextLink` of the CDR change feed: the links a carrier that builds its own paging
    /// parameters gets wrong, which the suites make sure exist (a small page cap).
    CdrNext,
    /// Any other `nextLink` or `deltaLink`.
    Other,
}

/// The link an exchange issued (a `nextLink` or `deltaLink`), as path and query, and its kind.
fn issued(exchange: &Exchange) -> Option<(&str, Issued)> {
    match &exchange.detail {
        Some(ExchangeDetail::FeedPage {
            link, next, feed, ..
        }) => {
            let kind = if *next && feed == "cdr" {
                Issued::CdrNext
            } else {
                Issued::Other
            };
            Some((path_and_query(link), kind))
        }
        Some(ExchangeDetail::CollectionPage {
            next_link: Some(link),
        }) => Some((path_and_query(link), Issued::Other)),
        _ => None,
    }
}

/// The least CDR-feed `nextLink`s a run must have the carrier follow for CDR-PAGING to be
/// exercised: a carrier can only rebuild a `nextLink` that it was given.
const MIN_CDR_NEXT_LINKS: u64 = 1;

/// Links by carrier, then by path and query: what a feed rule remembers of each page that
/// issued one. Grows with the pages served, never with the records on them.
struct Links<T>(BTreeMap<Option<String>, BTreeMap<String, T>>);

impl<T> Links<T> {
    fn new() -> Self {
        Self(BTreeMap::new())
    }

    fn get(&self, carrier: Option<&str>, link: &str) -> Option<&T> {
        self.0.get(&carrier.map(str::to_owned))?.get(link)
    }

    /// Remembers the first page that issued a link.
    fn insert_first(&mut self, carrier: Option<&str>, link: &str, value: impl FnOnce() -> T) {
        let links = self.0.entry(carrier.map(str::to_owned)).or_default();
        if !links.contains_key(link) {
            links.insert(link.to_owned(), value());
        }
    }
}

/// CDR-PAGING: every request to a paged endpoint that carries a `token` is exactly a link Teams
/// issued earlier to the same carrier, with nothing added.
pub(super) struct CdrPaging {
    tally: Tally,
    /// The seq that issued each link first, and its kind.
    links: Links<(u64, Issued)>,
    followed: u64,
    cdr_next: u64,
}

impl CdrPaging {
    pub(super) fn new() -> Self {
        Self {
            tally: Tally::new(RuleId::CdrPaging),
            links: Links::new(),
            followed: 0,
            cdr_next: 0,
        }
    }
}

impl Rule for CdrPaging {
    fn failures_so_far(&self) -> u64 {
        self.tally.failures()
    }

    fn exchange(&mut self, e: &Exchange) {
        if e.direction == ExchangeDirection::CarrierToTeams
            && !harness_caused(e)
            && PAGED.iter().any(|(p, _)| *p == path_of(&e.url))
        {
            let carrier = e.carrier.as_deref();
            let pairs = query_pairs(&e.url);
            let tokens: Vec<&str> = pairs
                .iter()
                .filter(|(name, _)| *name == "token")
                .map(|(_, value)| *value)
                .collect();
            if !tokens.is_empty() {
                self.followed += 1;
                let url = path_and_query(&e.url);
                let extra: Vec<String> = pairs
                    .iter()
                    .filter(|(name, _)| *name != "token")
                    .map(|(name, value)| format!("{name}={value}"))
                    .collect();
                let links = &self.links;
                if !extra.is_empty() || tokens.len() > 1 {
                    self.tally.fail(|| {
                        // The link it started from, when only parameters were added to it.
                        let original = tokens
                            .iter()
                            .map(|t| format!("{}?token={t}", path_of(&e.url)))
                            .find_map(|link| links.get(carrier, &link).map(|l| l.0));
                        let added = if extra.is_empty() {
                            "a second token".to_owned()
                        } else {
                            extra.join("&")
                        };
                        let from = original.map_or_else(
                            || "a link".to_owned(),
                            |seq| format!("the link issued at seq {seq}"),
                        );
                        (
                            format!(
                                "{} {url} (seq {}) adds {added} to {from}: links must be \
                                 followed exactly as given",
                                e.method, e.seq
                            ),
                            original.into_iter().chain([e.seq]).collect(),
                        )
                    });
                } else if let Some((_, kind)) = links.get(carrier, url) {
                    self.cdr_next += u64::from(*kind == Issued::CdrNext);
                } else {
                    self.tally.fail(|| {
                        (
                            format!(
                                "{} {url} (seq {}) carries a token Teams never issued to this \
                                 carrier: links must be followed exactly as given",
                                e.method, e.seq
                            ),
                            vec![e.seq],
                        )
                    });
                }
            }
        }
        if let Some((link, kind)) = issued(e) {
            self.links
                .insert_first(e.carrier.as_deref(), link, || (e.seq, kind));
        }
    }

    fn finish(self: Box<Self>, _: &End<'_>) -> Judged {
        let Self {
            mut tally,
            followed,
            cdr_next,
            ..
        } = *self;
        tally.exercised("CDR nextLinks followed", cdr_next, MIN_CDR_NEXT_LINKS);
        let failures = tally.failures();
        tally.finish(format!(
            "{} followed, {} of them CDR nextLinks; {failures} not exactly as Teams issued them",
            count(followed, "link"),
            cdr_next
        ))
    }
}

/// A feed page that issued a link: where it ended.
struct Issuer {
    seq: u64,
    feed: String,
    to_position: u64,
}

/// CDR-FEED (Teams): within a chain, every page starts exactly where the page whose link it
/// followed ended, and no page ends before it starts. Positions served twice within a chain
/// are exactly pages that start before their issuer's end; skipped ones, after it.
pub(super) struct CdrFeed {
    tally: Tally,
    issuers: Links<Issuer>,
    linked: u64,
}

impl CdrFeed {
    pub(super) fn new() -> Self {
        Self {
            tally: Tally::new(RuleId::CdrFeed),
            issuers: Links::new(),
            linked: 0,
        }
    }
}

impl Rule for CdrFeed {
    fn failures_so_far(&self) -> u64 {
        self.tally.failures()
    }

    fn exchange(&mut self, e: &Exchange) {
        let Some(ExchangeDetail::FeedPage {
            feed,
            chain_start,
            from_position,
            to_position,
            link,
            ..
        }) = &e.detail
        else {
            return;
        };
        let (from, to) = (*from_position, *to_position);
        if to < from {
            self.tally.fail(|| {
                (
                    format!(
                        "the {feed} page at seq {} ends at position {to}, before it starts \
                         ({from})",
                        e.seq
                    ),
                    vec![e.seq],
                )
            });
        }
        let carrier = e.carrier.as_deref();
        if !chain_start
            && let Some(issuer) = self.issuers.get(carrier, path_and_query(&e.url))
            && issuer.feed == *feed
        {
            self.linked += 1;
            let end = issuer.to_position;
            if from != end {
                let what = if from > end {
                    format!("skipping positions {end}..{from}")
                } else {
                    format!("serving positions {from}..{end} again")
                };
                self.tally.fail(|| {
                    (
                        format!(
                            "the {feed} page at seq {} starts at position {from}, but the page \
                             whose link it followed (seq {}) ended at {end}: {what}",
                            e.seq, issuer.seq
                        ),
                        vec![issuer.seq, e.seq],
                    )
                });
            }
        }
        self.issuers
            .insert_first(carrier, path_and_query(link), || Issuer {
                seq: e.seq,
                feed: feed.clone(),
                to_position: to,
            });
    }

    fn finish(self: Box<Self>, _: &End<'_>) -> Judged {
        let Self {
            mut tally, linked, ..
        } = *self;
        let failures = tally.failures();
        tally.exercised("feed pages that followed a link", linked, 1);
        tally.finish(if linked == 0 {
            "no feed page followed a link Teams had issued".to_owned()
        } else {
            format!(
                "{} that followed a link checked; {failures} not contiguous",
                count(linked, "feed page")
            )
        })
    }
}

/// CDR-THROTTLE: no request reached an endpoint before an earlier 429's `Retry-After` passed.
pub(super) struct CdrThrottle {
    tally: Tally,
    /// Path → the last injected 429 on it: (seq, Retry-After s).
    last_429: BTreeMap<String, (u64, u64)>,
    throttles: u64,
}

impl CdrThrottle {
    pub(super) fn new() -> Self {
        Self {
            tally: Tally::new(RuleId::CdrThrottle),
            last_429: BTreeMap::new(),
            throttles: 0,
        }
    }
}

impl Rule for CdrThrottle {
    fn failures_so_far(&self) -> u64 {
        self.tally.failures()
    }

    fn exchange(&mut self, e: &Exchange) {
        if let Some(
            InjectedFault::Throttled { retry_after_secs }
            | InjectedFault::RateLimited { retry_after_secs },
        ) = e.fault
        {
            self.throttles += 1;
            self.last_429
                .insert(path_of(&e.url).to_owned(), (e.seq, retry_after_secs));
        }
        let Some(ExchangeDetail::EarlyAfterThrottle { early_by_ms }) = &e.detail else {
            return;
        };
        let last_429 = &self.last_429;
        self.tally.fail(|| {
            let path = path_of(&e.url);
            match last_429.get(path) {
                Some(&(seq, secs)) => (
                    format!(
                        "{} {path} at seq {} came {early_by_ms} ms before the Retry-After of \
                         {secs} s of the 429 at seq {seq} had passed",
                        e.method, e.seq
                    ),
                    vec![seq, e.seq],
                ),
                None => (
                    format!(
                        "{} {path} at seq {} came {early_by_ms} ms before an earlier 429's \
                         Retry-After had passed",
                        e.method, e.seq
                    ),
                    vec![e.seq],
                ),
            }
        });
    }

    fn finish(self: Box<Self>, _: &End<'_>) -> Judged {
        let Self {
            mut tally,
            throttles,
            ..
        } = *self;
        let failures = tally.failures();
        tally.exercised("429s answered", throttles, 1);
        tally.finish(if throttles == 0 {
            "Teams throttled no request".to_owned()
        } else {
            format!(
                "{} injected; {} before the Retry-After passed",
                count(throttles, "429"),
                count(failures, "request sent")
            )
        })
    }
}
