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

/// A feed; a position is how many entries come before it (0 is the start).
#[derive(Debug, Default)]
pub(crate) struct Feed {
    entries: Vec<FeedEntry>,
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
                .last()
                .is_none_or(|l| l.available <= entry.available)
        );
        self.entries.push(entry);
    }

    pub(crate) fn len(&self) -> u64 {
        self.entries.len() as u64
    }

    /// The first position whose record became available at or after `at` (retention start).
    pub(crate) fn position_at(&self, at: UnixMillis) -> u64 {
        self.entries.partition_point(|e| e.available < at) as u64
    }

    /// Up to `limit` entries from `position`; a position past the end yields nothing.
    pub(crate) fn page(&self, position: u64, limit: usize) -> &[FeedEntry] {
        let start = usize::try_from(position)
            .unwrap_or(usize::MAX)
            .min(self.entries.len());
        let end = start.saturating_add(limit).min(self.entries.len());
        &self.entries[start..end]
    }

    pub(crate) fn entries(&self) -> &[FeedEntry] {
        &self.entries
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
        assert_eq!(first.iter().map(|e| e.item).collect::<Vec<_>>(), [0, 1, 2]);
        // Records arriving between pages land after the reader's position.
        feed.push(entry(5, 60));
        let second = feed.page(3, 3);
        assert_eq!(second.iter().map(|e| e.item).collect::<Vec<_>>(), [3, 4, 5]);
        assert!(feed.page(6, 3).is_empty());
        assert!(feed.page(u64::MAX, 3).is_empty());
        assert_eq!(feed.position_at(25), 3);
        assert_eq!(feed.position_at(0), 0);
        assert_eq!(feed.position_at(1_000), 6);
    }
}
