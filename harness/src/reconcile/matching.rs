//! Pairing carrier rows with Teams rows. Teams' rows are indexed by call id hash (rows sharing
//! an id chained, in file order); each carrier row with an id, in file order, takes the
//! unclaimed Teams row of that id whose start is nearest its connect time (the earlier row on
//! a tie), or none (`unexpected`). Carrier rows without an id are kept aside and matched last,
//! in file order, by calling and called number, to the unclaimed Teams row nearest in time
//! within the tolerance. Teams rows left unclaimed are `missing`.

use hashbrown::HashTable;

use super::rows::{CarrierRow, NONE, TeamsRow};
use super::text::Nanos;

/// Teams rows live in pages of this many, so that growing never copies them.
const PAGE: usize = 1 << 16;

/// Teams' rows and their index by call id.
#[derive(Default)]
pub(crate) struct Index {
    pages: Vec<Vec<TeamsRow>>,
    len: u32,
    /// Row indices, hashed by [`TeamsRow::id`]; each is the last row of its id (its chain
    /// runs back through [`TeamsRow::next`]).
    by_id: HashTable<u32>,
}

impl Index {
    pub(crate) fn len(&self) -> u32 {
        self.len
    }

    pub(crate) fn row(&self, i: u32) -> &TeamsRow {
        &self.pages[i as usize / PAGE][i as usize % PAGE]
    }

    fn row_mut(&mut self, i: u32) -> &mut TeamsRow {
        &mut self.pages[i as usize / PAGE][i as usize % PAGE]
    }

    /// Every row, in file order.
    pub(crate) fn rows(&self) -> impl Iterator<Item = (u32, &TeamsRow)> {
        self.pages
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, row)| (i as u32, row))
    }

    /// Makes room for `rows` more rows in the index by id.
    pub(crate) fn reserve(&mut self, rows: usize) {
        let pages = &self.pages;
        self.by_id
            .reserve(rows, |&j| pages[j as usize / PAGE][j as usize % PAGE].id);
    }

    /// Adds a row (after those before it in file order); its index.
    pub(crate) fn insert(&mut self, mut row: TeamsRow) -> u32 {
        let i = self.len;
        assert!(i < NONE, "more than 4 billion Teams rows");
        if row.id != 0 {
            let pages = &self.pages;
            let at = |j: u32| &pages[j as usize / PAGE][j as usize % PAGE];
            match self.by_id.find_mut(row.id, |&j| at(j).id == row.id) {
                Some(last) => {
                    row.next = *last;
                    *last = i;
                }
                None => {
                    self.by_id.insert_unique(row.id, i, |&j| at(j).id);
                }
            }
        }
        if self.pages.last().is_none_or(|p| p.len() == PAGE) {
            self.pages.push(Vec::with_capacity(PAGE));
        }
        if let Some(page) = self.pages.last_mut() {
            page.push(row);
        }
        self.len += 1;
        i
    }

    /// The last row with `id` (the head of its chain), or [`NONE`].
    pub(crate) fn head(&self, id: u64) -> u32 {
        let pages = &self.pages;
        let at = |j: u32| &pages[j as usize / PAGE][j as usize % PAGE];
        self.by_id
            .find(id, |&j| at(j).id == id)
            .copied()
            .unwrap_or(NONE)
    }

    /// The heads of the chains of `ids`, into `out`. Claiming does not change a chain's head, so
    /// a batch's heads can be looked up before its rows are claimed in order: the lookups are
    /// then independent, and their cache misses overlap.
    pub(crate) fn heads(&self, ids: impl Iterator<Item = u64>, out: &mut Vec<u32>) {
        out.clear();
        out.extend(ids.map(|id| if id == 0 { NONE } else { self.head(id) }));
    }

    /// The unclaimed row with `id` whose start is nearest `connect` (ties: the earlier row),
    /// claimed; `None` when there is none.
    #[cfg(test)]
    pub(crate) fn claim_by_id(&mut self, id: u64, connect: Nanos) -> Option<u32> {
        self.claim_from(self.head(id), connect)
    }

    /// [`Self::claim_by_id`] from the head of the id's chain ([`Self::head`]).
    pub(crate) fn claim_from(&mut self, head: u32, connect: Nanos) -> Option<u32> {
        let pages = &self.pages;
        let at = |j: u32| &pages[j as usize / PAGE][j as usize % PAGE];
        let mut j = head;
        let mut best: Option<(u64, u32)> = None;
        while j != NONE {
            let row = at(j);
            if !row.claimed {
                let distance = row.start.abs_diff(connect);
                if best.is_none_or(|(d, _)| distance <= d) {
                    best = Some((distance, j));
                }
            }
            j = row.next;
        }
        let (_, j) = best?;
        self.row_mut(j).claimed = true;
        Some(j)
    }

    /// Matches carrier rows that have no id, in order: each to the unclaimed Teams row with the
    /// same calling and called numbers whose start is within `tolerance` of its connect time,
    /// the nearest (ties: the earlier row). One answer per carrier row.
    pub(crate) fn claim_by_numbers(
        &mut self,
        carrier: &[CarrierRow],
        tolerance: Nanos,
    ) -> Vec<Option<u32>> {
        if carrier.is_empty() {
            return Vec::new();
        }
        // Chains by number pair over the unclaimed rows, each in file order.
        let mut by_pair: HashTable<(u64, u32)> = HashTable::new();
        let mut next = vec![NONE; self.len as usize];
        for (i, row) in self.rows() {
            if row.claimed {
                continue;
            }
            match by_pair.find_mut(row.pair, |&(pair, _)| pair == row.pair) {
                Some((_, last)) => {
                    next[i as usize] = *last;
                    *last = i;
                }
                None => {
                    by_pair.insert_unique(row.pair, (row.pair, i), |&(pair, _)| pair);
                }
            }
        }
        let tolerance = tolerance.unsigned_abs();
        carrier
            .iter()
            .map(|c| {
                let &(_, mut j) = by_pair.find(c.pair, |&(pair, _)| pair == c.pair)?;
                let mut best: Option<(u64, u32)> = None;
                while j != NONE {
                    let row = self.row(j);
                    let distance = row.start.abs_diff(c.connect);
                    if !row.claimed
                        && distance <= tolerance
                        && best.is_none_or(|(d, _)| distance <= d)
                    {
                        best = Some((distance, j));
                    }
                    j = next[j as usize];
                }
                let (_, j) = best?;
                self.row_mut(j).claimed = true;
                Some(j)
            })
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::rows::DurationSource;
    use super::super::text::SECOND;
    use super::*;

    pub(crate) fn teams(id: u64, pair: u64, start: Nanos) -> TeamsRow {
        TeamsRow {
            id,
            pair,
            number: 0,
            slot: 0,
            start,
            measured: 60 * SECOND,
            source: 0,
            billed: 60,
            next: NONE,
            duration_source: DurationSource::Operator,
            claimed: false,
        }
    }

    pub(crate) fn carrier(id: u64, pair: u64, connect: Nanos) -> CarrierRow {
        CarrierRow {
            id,
            pair,
            calling: 0,
            called: 0,
            connect,
            duration: 60 * SECOND,
            charge: 0,
            source: 0,
        }
    }

    #[test]
    fn a_repeated_id_goes_to_the_nearest_start_then_the_next() {
        let mut index = Index::default();
        for start in [100, 0, 50] {
            index.insert(teams(7, 1, start * SECOND));
        }
        index.insert(teams(8, 1, 0));
        assert_eq!(index.claim_by_id(7, 45 * SECOND), Some(2));
        assert_eq!(index.claim_by_id(7, 45 * SECOND), Some(1));
        assert_eq!(index.claim_by_id(7, 45 * SECOND), Some(0));
        assert_eq!(index.claim_by_id(7, 45 * SECOND), None);
        assert_eq!(index.claim_by_id(9, 0), None);
        assert_eq!(index.claim_by_id(8, 1_000 * SECOND), Some(3));
    }

    #[test]
    fn a_teams_row_is_as_compact_as_the_readme_says() {
        assert_eq!(std::mem::size_of::<TeamsRow>(), 64);
    }

    #[test]
    fn ties_go_to_the_earlier_row() {
        let mut index = Index::default();
        index.insert(teams(7, 1, 0));
        index.insert(teams(7, 1, 20 * SECOND));
        assert_eq!(index.claim_by_id(7, 10 * SECOND), Some(0));
    }

    #[test]
    fn rows_without_id_match_by_numbers_within_the_tolerance_edges_included() {
        let mut index = Index::default();
        index.insert(teams(0, 5, 0));
        index.insert(teams(0, 5, 10 * SECOND));
        index.insert(teams(3, 6, 0));
        index.insert(teams(0, 5, 100 * SECOND));
        // One already claimed by its id is not offered again.
        assert_eq!(index.claim_by_id(3, 0), Some(2));
        let carrier_rows = [
            carrier(0, 5, 11 * SECOND),
            carrier(0, 5, SECOND),
            carrier(0, 5, 101 * SECOND + 1),
            carrier(0, 6, 0),
            carrier(0, 5, -SECOND),
        ];
        assert_eq!(
            index.claim_by_numbers(&carrier_rows, SECOND),
            [Some(1), Some(0), None, None, None]
        );
    }
}
