//! Reading the store for the Teams API: pages of the change feeds, of the CDR window and of the
//! number inventory, rendered to wire types.

use oc_protocol::json_write::PageWriter;
use oc_protocol::timestamp::TimestampText;
use oc_protocol::{CallRecord, QualityRecord, TeamsNumber, UnixMillis};

use super::Store;
use super::calls::{CallRow, CdrTexts, RenderContext, render_call_record, render_quality_record};
use super::feed::{Feed, FeedEntry};

/// One page read from a change feed, as wire types (the tests' view of what is served).
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct FeedPage<T> {
    pub(crate) records: Vec<T>,
    pub(crate) span: PageSpan,
}

/// Where a page of a change feed starts and ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PageSpan {
    /// The position of the first record served.
    pub(crate) first_position: u64,
    /// The position after the last record served.
    pub(crate) next_position: u64,
    /// True when records are available beyond this page now.
    pub(crate) more: bool,
}

/// Up to `limit` entries of `feed` from `position`, each handed to `each` (which renders it,
/// or skips a closed call's), with where to go on from.
fn read_page(feed: &Feed, position: u64, limit: usize, each: impl FnMut(&FeedEntry)) -> PageSpan {
    // Entries before the base were served and closed; a reader there goes on from the base.
    let position = position.max(feed.base());
    let entries = feed.page(position, limit);
    let next_position = position
        .saturating_add(entries.len() as u64)
        .min(feed.len());
    entries.for_each(each);
    PageSpan {
        first_position: position,
        next_position,
        more: next_position < feed.len(),
    }
}

/// Which feed to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FeedKind {
    Cdr,
    Quality,
}

impl Store {
    /// The first position of a feed within retention.
    pub(crate) fn feed_start(&self, carrier: u16, kind: FeedKind) -> u64 {
        let since = self.now.saturating_sub(self.settings.retention_ms);
        let c = &self.carriers[usize::from(carrier)];
        match kind {
            FeedKind::Cdr => c.cdr_feed.position_at(since),
            FeedKind::Quality => c.quality_feed.position_at(since),
        }
    }

    /// How many records a feed holds: a position beyond it was never issued.
    pub(crate) fn feed_len(&self, carrier: u16, kind: FeedKind) -> u64 {
        let c = &self.carriers[usize::from(carrier)];
        match kind {
            FeedKind::Cdr => c.cdr_feed.len(),
            FeedKind::Quality => c.quality_feed.len(),
        }
    }

    fn row_at_version(&self, entry: &FeedEntry) -> CallRow {
        let current = self.rows[entry.item as usize];
        if entry.version == current.version {
            return current;
        }
        self.old_versions
            .get(&entry.item)
            .and_then(|old| old.get(usize::from(entry.version).saturating_sub(1)))
            .copied()
            .unwrap_or(current)
    }

    /// Renders call `call`'s record from `row` and hands it to `use_record`.
    fn with_cdr<R>(
        &self,
        call: u32,
        row: &CallRow,
        available: UnixMillis,
        use_record: impl FnOnce(&CallRecord<&str>) -> R,
    ) -> R {
        let number = &self.numbers[row.number as usize];
        let slot = self.slots[call as usize];
        let reconciled = slot
            .carrier_ms()
            .is_some_and(|c| (c - row.duration_ms()).abs() <= self.settings.tolerance_ms);
        let ctx = RenderContext {
            call_id: self.call_ids.get(call),
            tenant_id: &self.tenants[row.tenant as usize],
            telephone_number: &number.telephone_number,
            record_id_seed: self.settings.seed,
            call_index: call,
            operator_source: reconciled && row.is_answered(),
        };
        let texts = CdrTexts::of(row, &ctx, available);
        use_record(&render_call_record(row, &ctx, &texts))
    }

    /// Hands each CDR of the carrier's feed from `position`, up to `limit`, to `each`.
    fn each_cdr(
        &self,
        carrier: u16,
        position: u64,
        limit: usize,
        mut each: impl FnMut(&CallRecord<&str>),
    ) -> PageSpan {
        let c = &self.carriers[usize::from(carrier)];
        let span = read_page(&c.cdr_feed, position, limit, |e| {
            if e.item >= self.rows.base() {
                self.with_cdr(e.item, &self.row_at_version(e), e.available, &mut each);
            }
        });
        c.served.note_cdr(span.next_position);
        span
    }

    /// Up to `limit` CDRs of the carrier's feed from `position`.
    #[cfg(test)]
    pub(crate) fn cdr_page(
        &self,
        carrier: u16,
        position: u64,
        limit: usize,
    ) -> FeedPage<CallRecord> {
        let mut records = Vec::new();
        let span = self.each_cdr(carrier, position, limit, |r| {
            records.push(r.to_owned_record());
        });
        FeedPage { records, span }
    }

    /// Up to `limit` CDRs of the carrier's feed from `position`, written into `page` (the
    /// same records as [`Store::cdr_page`], with no `String` per field).
    pub(crate) fn write_cdr_page(
        &self,
        carrier: u16,
        position: u64,
        limit: usize,
        page: &mut PageWriter,
    ) -> PageSpan {
        self.each_cdr(carrier, position, limit, |r| page.item(r))
    }

    /// Hands each quality record of the carrier's feed from `position`, up to `limit`, to
    /// `each`, and notes what was served.
    fn each_quality(
        &self,
        carrier: u16,
        position: u64,
        limit: usize,
        each: impl FnMut(QualityRecord<&str>),
    ) -> PageSpan {
        let span = self.render_quality(carrier, position, limit, each);
        self.carriers[usize::from(carrier)]
            .served
            .note_quality(span.next_position);
        span
    }

    /// [`Store::each_quality`] without noting anything as served.
    fn render_quality(
        &self,
        carrier: u16,
        position: u64,
        limit: usize,
        mut each: impl FnMut(QualityRecord<&str>),
    ) -> PageSpan {
        let c = &self.carriers[usize::from(carrier)];
        read_page(&c.quality_feed, position, limit, |e| {
            if let Some((call, quality)) = self.quality.get(e.item as usize) {
                let at = TimestampText::new(e.available);
                each(render_quality_record(
                    quality,
                    self.call_ids.get(*call),
                    &at,
                ));
            }
        })
    }

    /// Up to `limit` quality records of the carrier's feed from `position`.
    #[cfg(test)]
    pub(crate) fn quality_page(
        &self,
        carrier: u16,
        position: u64,
        limit: usize,
    ) -> FeedPage<QualityRecord> {
        let mut records = Vec::new();
        let span = self.each_quality(carrier, position, limit, |r| {
            records.push(r.to_owned_record());
        });
        FeedPage { records, span }
    }

    /// Every quality record of the carrier's feed, as wire types, marking none as served
    /// (see [`MockTeams::quality_records`](crate::MockTeams::quality_records)).
    pub(crate) fn quality_records(&self, carrier: u16) -> Vec<QualityRecord> {
        let mut records = Vec::new();
        self.render_quality(carrier, 0, usize::MAX, |r| {
            records.push(r.to_owned_record());
        });
        records
    }

    /// Up to `limit` quality records of the carrier's feed from `position`, written into
    /// `page` (the records of [`Store::quality_page`]), each passed through `edit` first (an
    /// injected fault may change it).
    pub(crate) fn write_quality_page(
        &self,
        carrier: u16,
        position: u64,
        limit: usize,
        page: &mut PageWriter,
        mut edit: impl FnMut(usize, &mut QualityRecord<&str>),
    ) -> PageSpan {
        self.each_quality(carrier, position, limit, |mut r| {
            edit(page.len(), &mut r);
            page.item(&r);
        })
    }

    /// CDRs whose start is in `[from, to)`, each once at its latest version, scanning the feed
    /// from `position`; returns the records and where to go on from, if anywhere.
    pub(crate) fn cdr_window_page(
        &self,
        carrier: u16,
        window: (UnixMillis, UnixMillis),
        position: u64,
        limit: usize,
    ) -> (Vec<CallRecord>, Option<u64>) {
        let (from, to) = window;
        let feed = &self.carriers[usize::from(carrier)].cdr_feed;
        // A record becomes available after its call started, so nothing before `from` matters.
        let start = position.max(feed.position_at(from)).max(feed.base());
        let mut records = Vec::new();
        for (at, entry) in (start..).zip(feed.page(start, usize::MAX)) {
            let Some(row) = self.rows.get(entry.item as usize) else {
                // A closed call's.
                continue;
            };
            // Serve each call once, at its latest published version.
            let latest = entry.version == row.version;
            if latest && row.start >= from && row.start < to {
                if records.len() == limit {
                    return (records, Some(at));
                }
                records
                    .push(self.with_cdr(entry.item, row, entry.available, |r| r.to_owned_record()));
            }
        }
        (records, None)
    }

    /// Up to `limit` of the carrier's numbers after `after` (in number order), filtered.
    pub(crate) fn numbers_page(
        &self,
        carrier: u16,
        tenant: Option<&str>,
        assigned_only: bool,
        after: Option<&str>,
        limit: usize,
    ) -> (Vec<TeamsNumber>, Option<String>) {
        use std::ops::Bound;
        let numbers = &self.carriers[usize::from(carrier)].numbers;
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut page = Vec::new();
        for &index in numbers
            .range::<str, _>((lower, Bound::Unbounded))
            .map(|(_, i)| i)
        {
            let row = &self.numbers[index as usize];
            let tenant_id = &self.tenants[row.tenant as usize];
            if tenant.is_some_and(|t| t != tenant_id) || (assigned_only && row.assignment.is_none())
            {
                continue;
            }
            if page.len() == limit {
                let last = page
                    .last()
                    .map(|n: &TeamsNumber| n.telephone_number.clone());
                return (page, last);
            }
            page.push(row.to_wire(tenant_id));
        }
        (page, None)
    }
}
