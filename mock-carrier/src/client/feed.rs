//! Following a paged collection or change feed from its first URL or kept deltaLink, through
//! every nextLink, to its end [CDR-PAGING].

use oc_protocol::CallRecord;
use reqwest::Url;
use serde_json::value::RawValue;

use super::retry::RetryCounts;
use super::transport::{Incoming, Outgoing};
use super::{BAD_FROM_TEAMS, Client};
use crate::errors::ClientError;
use crate::profile::Profile;
use crate::server::limits::warn;

/// What one chain of links gave.
#[derive(Debug, Default)]
pub(crate) struct Chain {
    pub(crate) pages: u32,
    pub(crate) records: u64,
    /// The last page's deltaLink (change feeds), or `None` (collections).
    pub(crate) delta_link: Option<String>,
}

/// Which feed a chain reads; only the CDR feed is subject to the `CDR-PAGING` profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FeedKind {
    Cdrs,
    Quality,
    Numbers,
}

impl Client {
    /// Reads the chain starting at `start` and hands each page's items to `on_page` with the
    /// page's index in the chain. `followed_link`: `start` is a link Teams issued.
    ///
    /// A page whose body ends with its `nextLink` (as Teams writes pages: see
    /// [`tail_next_link`]) has its next page asked for at once, before it is read: Teams
    /// renders the next page while the carrier reads this one, so a chain takes the longer of
    /// the two per page rather than their sum. The link read in full must be the one asked
    /// for; a body that says otherwise (a broken or hostile Teams) has its extra page dropped
    /// and the link read in full followed, as without the shortcut.
    pub(crate) async fn read_chain(
        &self,
        kind: FeedKind,
        start: Url,
        mut followed_link: bool,
        counts: &mut RetryCounts,
        on_page: &mut (dyn FnMut(u32, &Items<'_>) + Send),
    ) -> Result<Chain, ClientError> {
        let first = start.to_string();
        let mut url = start;
        let mut chain = Chain::default();
        // The URL in hand came from a nextLink (not from the start or a kept deltaLink).
        let mut followed_next = false;
        let mut answer = self
            .fetch(kind, &url, followed_link, followed_next, counts)
            .await?;
        loop {
            let ahead = (answer.status == 200
                && chain.pages + 1 < self.config.client.max_pages_per_chain)
                .then(|| tail_next_link(&answer.body))
                .flatten()
                .and_then(|link| self.resolve_link(link).ok());
            let index = chain.pages;
            let (links, fetched) = match &ahead {
                Some(next) => {
                    let (fetched, links) = futures_util::join!(
                        self.fetch(kind, next, true, true, counts),
                        self.take_page(kind, &url, &answer, index, on_page)
                    );
                    (links?, Some(fetched))
                }
                None => (
                    self.take_page(kind, &url, &answer, index, on_page).await?,
                    None,
                ),
            };
            chain.records += links.items as u64;
            chain.pages += 1;
            let next = match (nonempty(links.next_link), nonempty(links.delta_link)) {
                (Some(next), _) => self.resolve_link(&next).map(Some),
                (None, Some(delta)) => self.resolve_link(&delta).map(|_| {
                    chain.delta_link = Some(delta);
                    None
                }),
                (None, None) if kind == FeedKind::Numbers => Ok(None),
                (None, None) => Err(ClientError::NoDeltaLink {
                    url: url.to_string(),
                }),
            };
            let next = match next? {
                None => return Ok(chain),
                Some(_) if chain.pages >= self.config.client.max_pages_per_chain => {
                    return Err(ClientError::EndlessFeed {
                        url: first,
                        pages: chain.pages,
                    });
                }
                Some(next) => next,
            };
            followed_link = true;
            followed_next = true;
            answer = match (ahead, fetched) {
                (Some(asked), Some(fetched)) if asked == next => fetched?,
                (ahead, _) => {
                    if ahead.is_some() {
                        warn(&BAD_FROM_TEAMS, |suppressed| {
                            tracing::warn!(%url, suppressed, "a page's body ends with another nextLink than it holds");
                        });
                    }
                    self.fetch(kind, &next, followed_link, followed_next, counts)
                        .await?
                }
            };
            url = next;
        }
    }

    /// Reads a page of a chain and hands its items to `on_page`; returns its links. A quality
    /// page is only counted and checked, on the I/O thread, so that the carrier's own thread
    /// takes in the CDRs and reports meanwhile.
    async fn take_page(
        &self,
        kind: FeedKind,
        url: &Url,
        answer: &Incoming,
        index: u32,
        on_page: &mut (dyn FnMut(u32, &Items<'_>) + Send),
    ) -> Result<PageLinks, ClientError> {
        let page = if kind == FeedKind::Quality && answer.status == 200 {
            let body = answer.body.clone();
            let counted = {
                let body = body.clone();
                self.transport.on_io(move || count_page(&body)).await
            };
            counted
                .unwrap_or_else(|| count_page(&body))
                .map_err(|message| ClientError::Body {
                    url: url.to_string(),
                    message,
                })?
        } else {
            read_page(kind, url, answer)?
        };
        on_page(index, &page.value);
        Ok(PageLinks {
            items: page.value.len(),
            next_link: page.next_link,
            delta_link: page.delta_link,
        })
    }

    /// One page of a chain: as asked, or with the carrier's own `pageSize` when the
    /// `CDR-PAGING` profiles break the rule on purpose.
    async fn fetch(
        &self,
        kind: FeedKind,
        url: &Url,
        followed_link: bool,
        followed_next: bool,
        counts: &mut RetryCounts,
    ) -> Result<Incoming, ClientError> {
        let own_paging = match self.profile() {
            Profile::CdrPaging => followed_link,
            Profile::CdrPagingNextLink => followed_next,
            _ => false,
        };
        if own_paging && kind == FeedKind::Cdrs {
            self.get_with_own_paging(url, counts).await
        } else {
            self.exchange(&Outgoing::get(url.clone()), counts).await
        }
    }

    /// Breaks CDR-PAGING on purpose: asks for the link with a `pageSize` of its own first, and
    /// falls back to the link as given when Teams refuses that, so no record is lost.
    async fn get_with_own_paging(
        &self,
        link: &Url,
        counts: &mut RetryCounts,
    ) -> Result<Incoming, ClientError> {
        let mut own = link.clone();
        let kept: Vec<(String, String)> = link
            .query_pairs()
            .filter(|(k, _)| k != "pageSize")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        own.query_pairs_mut()
            .clear()
            .extend_pairs(kept)
            .append_pair("pageSize", "1000");
        let answer = self.exchange(&Outgoing::get(own), counts).await?;
        if (400..500).contains(&answer.status) {
            return self.exchange(&Outgoing::get(link.clone()), counts).await;
        }
        Ok(answer)
    }

    /// A link as an absolute URL: taken as given when absolute, else resolved against the base
    /// URL; either way it must be on the base URL's origin.
    pub(crate) fn resolve_link(&self, link: &str) -> Result<Url, ClientError> {
        let foreign = || ClientError::ForeignLink {
            link: link.to_owned(),
        };
        let url = match Url::parse(link) {
            Ok(url) => url,
            Err(_) => self.base.join(link).map_err(|_| foreign())?,
        };
        if url.origin() != self.base.origin() {
            return Err(foreign());
        }
        Ok(url)
    }
}

/// A page's items, borrowed from its body.
pub(crate) enum Items<'a> {
    /// Every CDR of the page, read in one pass with its texts borrowed: what a page of sound
    /// records gives.
    Cdrs(Vec<CallRecord<&'a str>>),
    /// Each item on its own, checked for JSON syntax only: read one by one, so one bad
    /// record does not stop the feed (or a text with an escape, which cannot be borrowed, is
    /// read into a `String`).
    Raw(Vec<&'a RawValue>),
    /// How many items there were, each checked for JSON syntax only: a feed the carrier reads
    /// to its end and keeps nothing of (quality).
    Counted(usize),
}

impl<'a> Items<'a> {
    /// The raw items: every page of a chain but a CDR one is read raw (a CDR page read in one
    /// pass has none).
    pub(crate) fn raw(&self) -> &[&'a RawValue] {
        match self {
            Items::Cdrs(_) | Items::Counted(_) => &[],
            Items::Raw(items) => items,
        }
    }

    fn len(&self) -> usize {
        match self {
            Items::Cdrs(records) => records.len(),
            Items::Raw(items) => items.len(),
            Items::Counted(count) => *count,
        }
    }
}

/// What a chain needs of a page once its items were taken in.
struct PageLinks {
    items: usize,
    next_link: Option<String>,
    delta_link: Option<String>,
}

/// The `nextLink` a page's body ends with, `…,"nextLink":"<link>"}` byte for byte, as Teams
/// writes its pages; `None` for any other ending (a `deltaLink`, a `null`, whitespace, a link
/// with an escape). In valid JSON such an ending can only be the top-level object's last
/// member, so it is the page's nextLink; the page read in full says so before it is followed.
pub(crate) fn tail_next_link(body: &[u8]) -> Option<&str> {
    const KEY: &[u8] = b"\"nextLink\":\"";
    let inner = body.strip_suffix(b"\"}")?;
    let open = inner.iter().rposition(|&b| b == b'"' || b == b'\\')?;
    if inner[open] != b'"' || !inner[..=open].ends_with(KEY) {
        return None;
    }
    let link = std::str::from_utf8(&inner[open + 1..]).ok()?;
    (!link.is_empty()).then_some(link)
}

/// A page as read.
struct ReadPage<'a> {
    value: Items<'a>,
    next_link: Option<String>,
    delta_link: Option<String>,
}

/// A page, its items of type `T` borrowed from the body.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct WirePage<T> {
    value: Vec<T>,
    #[serde(default)]
    next_link: Option<String>,
    #[serde(default)]
    delta_link: Option<String>,
}

/// Reads a page: a CDR page in one pass when it can be (every record borrowed, no second
/// pass over the body), else, and for the other feeds, as raw items.
fn read_page<'a>(
    kind: FeedKind,
    url: &Url,
    answer: &'a Incoming,
) -> Result<ReadPage<'a>, ClientError> {
    if answer.status != 200 {
        return Err(ClientError::Status {
            url: url.to_string(),
            status: answer.status,
            problem: oc_protocol::body::from_slice(&answer.body)
                .ok()
                .map(Box::new),
        });
    }
    if kind == FeedKind::Cdrs
        && let Ok(page) = serde_json::from_slice::<WirePage<CallRecord<&str>>>(&answer.body)
    {
        return Ok(ReadPage {
            value: Items::Cdrs(page.value),
            next_link: page.next_link,
            delta_link: page.delta_link,
        });
    }
    oc_protocol::body::from_slice::<WirePage<&RawValue>>(&answer.body)
        .map(|page| ReadPage {
            value: Items::Raw(page.value),
            next_link: page.next_link,
            delta_link: page.delta_link,
        })
        .map_err(|err| ClientError::Body {
            url: url.to_string(),
            message: format!("{} at {:?}", err.message, err.pointer),
        })
}

/// A 200 page of items the carrier keeps nothing of: counted, each checked for JSON syntax,
/// and its links; `Err` says what is wrong with the body.
fn count_page(body: &[u8]) -> Result<ReadPage<'static>, String> {
    oc_protocol::body::from_slice::<WirePage<serde::de::IgnoredAny>>(body)
        .map(|page| ReadPage {
            value: Items::Counted(page.value.len()),
            next_link: page.next_link,
            delta_link: page.delta_link,
        })
        .map_err(|err| format!("{} at {:?}", err.message, err.pointer))
}

/// An empty link is no link (the protocol forbids it; following it would re-read the base URL).
fn nonempty(link: Option<String>) -> Option<String> {
    link.filter(|l| !l.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_link_is_read_from_a_page_written_as_teams_writes_it() {
        let link = "http://127.0.0.1:1/oc/v1/cdrs/delta?cursor=abc";
        let body = format!(r#"{{"value":[{{"callId":"c1"}}],"nextLink":"{link}"}}"#);
        assert_eq!(tail_next_link(body.as_bytes()), Some(link));
    }

    #[test]
    fn any_other_ending_gives_no_link() {
        for body in [
            // The last page: no nextLink, a deltaLink.
            r#"{"value":[],"nextLink":null,"deltaLink":"http://t/oc/v1/cdrs/delta?d=1"}"#,
            // Keys in another order, or space around them.
            r#"{"nextLink":"http://t/x","value":[]}"#,
            r#"{"value":[],"nextLink":"http://t/x"} "#,
            r#"{"value":[],"nextLink": "http://t/x"}"#,
            // A link with an escape in it is read in full, never from the tail.
            r#"{"value":[],"nextLink":"http:\/\/t\/x"}"#,
            // The key inside a string, escaped.
            r#"{"value":[],"note":"\"nextLink\":\"http://t/x"}"#,
            // A nested object's key.
            r#"{"value":[{"nextLink":"http://t/x"}]}"#,
            r#"{"value":[],"nextLink":""}"#,
            "",
            "\"}",
        ] {
            assert_eq!(tail_next_link(body.as_bytes()), None, "{body}");
        }
    }
}
