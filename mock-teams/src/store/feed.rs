//! A change feed: records in the order they became available, each with its position. Links
//! carry positions, never offsets into a query result, so that no record is skipped or repeated
//! while new ones arrive [CDR-FEED].

use oc_protocol::UnixMillis;

/// One record of a feed: which item, at which version, available since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FeedEntry {
    /// The call index (CDR feed) or quality index (quality feed).
    pub(crate) item: u32,
    /// The CDR version this entry published (1 for quality).
    pub(crate) version: u16,
    pub(crate) available: UnixMillis,
}

/// A feed; a position is how many entries come before it (0 is the start). The entries before
/// `base` were served and closed (`Store::close_settled`): a position before it reads from it.
/// An entry of a closed call behind one of a call still open stays until the entries before it
/// go, but its item is gone: reading it again (the carrier read every entry of a call before it
/// closed) serves nothing for it.
#[derive(Debug, Default)]
pub(crate) struct Feed {
    base: u64,
    entries: std::collections::VecDeque<FeedEntry>,
}

impl Feed {
    /// Makes room for `entries` more entries, as far as the allocator grants it.
    pub(crate) fn reserve(&mut self, entries: usize) {
        let _ = self.entries.try_reserve_exact(entries);
    }

    /// Appends an entry; availability times must not go backwards.
    pub(crate) fn push(&mut self, entry: FeedEntry) {
        debug_assert!(
            self.entries
                .back()
                .is_none_or(|l| l.available <= entry.available)
        );
        self.entries.push_back(entry);
    }

    /// The position after the last entry.
    pub(crate) fn len(&self) -> u64 {
        self.base + self.entries.len() as u64
    }

    /// The first position still kept.
    pub(crate) fn base(&self) -> u64 {
        self.base
    }

    /// The first position whose record became available at or after `at` (retention start).
    pub(crate) fn position_at(&self, at: UnixMillis) -> u64 {
        self.base + self.entries.partition_point(|e| e.available < at) as u64
    }

    /// Up to `limit` entries from `position` (from the first kept one when `position` is before
    /// it); a position past the end yields nothing.
    pub(crate) fn page(
        &self,
        position: u64,
        limit: usize,
    ) -> impl ExactSizeIterator<Item = &FeedEntry> {
        let start = usize::try_from(position.saturating_sub(self.base))
            .unwrap_or(usize::MAX)
            .min(self.entries.len());
        let end = start.saturating_add(limit).min(self.entries.len());
        self.entries.range(start..end)
    }

    /// The entries kept, each with its position.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (u64, &FeedEntry)> + Clone {
        (self.base..).zip(self.entries.iter())
    }

    /// The entries kept from `position` on, each with its position.
    pub(crate) fn entries_from(&self, position: u64) -> impl Iterator<Item = (u64, &FeedEntry)> {
        let skip = usize::try_from(position.saturating_sub(self.base)).unwrap_or(usize::MAX);
        (self.base..).zip(self.entries.iter()).skip(skip)
    }

    /// The position after the longest leading run of entries for which `pred` holds.
    pub(crate) fn leading(&self, pred: impl Fn(&FeedEntry) -> bool) -> u64 {
        self.base + self.entries.iter().take_while(|e| pred(e)).count() as u64
    }

    /// The last entry.
    pub(crate) fn last(&self) -> Option<&FeedEntry> {
        self.entries.back()
    }

    /// The entry at `position`, if kept.
    pub(crate) fn get(&self, position: u64) -> Option<&FeedEntry> {
        self.entries
            .get(usize::try_from(position.checked_sub(self.base)?).ok()?)
    }

    /// Drops the entries before `position`.
    pub(crate) fn drop_before(&mut self, position: u64) {
        let n = usize::try_from(position.saturating_sub(self.base))
            .unwrap_or(usize::MAX)
            .min(self.entries.len());
        // Held before the drop: the most held since the last one (only pushes come between).
        let held = self.entries.len();
        self.entries.drain(..n);
        self.base += n as u64;
        if self.entries.capacity() > 4 * held.max(1024) {
            self.entries.shrink_to(2 * held);
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<FeedEntry>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(item: u32, available: i64) -> FeedEntry {
        FeedEntry {
            item,
            version: 1,
            available,
        }
    }

    #[test]
    fn pages_by_position_without_skips_while_growing() {
        let mut feed = Feed::default();
        for i in 0..5 {
            feed.push(entry(i, i64::from(i) * 10));
        }
        let first = feed.page(0, 3);
        assert_eq!(first.map(|e| e.item).collect::<Vec<_>>(), [0, 1, 2]);
        // Records arriving between pages land after the reader's position.
        feed.push(entry(5, 60));
        let second = feed.page(3, 3);
        assert_eq!(second.map(|e| e.item).collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(feed.page(6, 3).len(), 0);
        assert_eq!(feed.page(u64::MAX, 3).len(), 0);
        assert_eq!(feed.position_at(25), 3);
        assert_eq!(feed.position_at(0), 0);
        assert_eq!(feed.position_at(1_000), 6);
    }

    #[test]
    fn positions_survive_dropping_the_front() {
        let mut feed = Feed::default();
        for i in 0..6 {
            feed.push(entry(i, i64::from(i) * 10));
        }
        feed.drop_before(4);
        assert_eq!((feed.base(), feed.len()), (4, 6));
        // Positions keep their meaning; one before the first kept reads from it.
        assert_eq!(feed.page(4, 9).map(|e| e.item).collect::<Vec<_>>(), [4, 5]);
        assert_eq!(feed.page(1, 1).map(|e| e.item).collect::<Vec<_>>(), [4]);
        assert_eq!(feed.get(5).map(|e| e.item), Some(5));
        assert_eq!(feed.get(3), None);
        assert_eq!(feed.position_at(0), 4);
        assert_eq!(feed.position_at(55), 6);
        assert_eq!(feed.entries().map(|(p, _)| p).collect::<Vec<_>>(), [4, 5]);
        feed.push(entry(6, 60));
        assert_eq!(feed.page(6, 1).map(|e| e.item).collect::<Vec<_>>(), [6]);
    }
}
