//! Pairing carrier rows with Teams rows. Teams' rows are indexed by call id hash (rows sharing
//! an id chained, in file order); each carrier row with an id, in file order, takes the
//! unclaimed Teams row of that id whose start is nearest its connect time (the earlier row on
//! a tie), or none (`unexpected`). Carrier rows without an id are kept aside and matched last,
//! in file order, by calling and called number, to the unclaimed Teams row nearest in time
//! within the tolerance. Teams rows left unclaimed are `missing`.

use hashbrown::HashTable;

use super::rows::{CarrierRow, NONE, ReadTeamsRow, TeamsRow};
use super::text::{self, Nanos};

/// Teams rows live in pages of this many, so that growing never copies them.
const PAGE: usize = 1 << 16;

/// A Teams row among the partitions of the index: its partition in the high 32 bits, its
/// index there in the low 32.
pub(crate) type RowRef = u64;

/// "No Teams row" as a [`RowRef`].
pub(crate) const NO_ROW: RowRef = u64::MAX;

/// The [`RowRef`] of row `i` of partition `part`.
pub(crate) fn row_ref(part: usize, i: u32) -> RowRef {
    (part as u64) << 32 | u64::from(i)
}

/// The row a [`RowRef`] names.
pub(crate) fn row_of(parts: &[Index], r: RowRef) -> &TeamsRow {
    parts[(r >> 32) as usize].row(r as u32)
}

/// The partition of the index a call id hash belongs to, among `parts`. Every row of an id is
/// in one partition, and matching decides an id from its rows alone, so the partitions are
/// matched independently, each on a thread of its own. Bits 32 to 47 of the hash: neither
/// the low bits that place a row in its partition's table nor the top 7 it keeps as a tag.
pub(crate) fn partition(id: u64, parts: usize) -> usize {
    (((id >> 32) & 0xffff) as usize * parts) >> 16
}

/// Which rows of one partition of the index a carrier row has claimed: one bit a row, kept
/// apart from the rows so that the parsing threads can look ids up in the index while the
/// matching thread claims (10 million rows: 1.25 MB, which stays in cache).
#[derive(Debug, Clone, Default)]
pub(crate) struct Claims(Vec<u64>);

impl Claims {
    /// None of `rows` rows claimed.
    pub(crate) fn new(rows: u32) -> Self {
        Self(written_zeros((rows as usize).div_ceil(64)))
    }

    /// The first row from `from` on that is not claimed; `end` when there is none before it.
    pub(crate) fn first_unclaimed(&self, from: u32, end: u32) -> u32 {
        let mut word = from as usize / 64;
        // The rows before `from` in its word count as claimed.
        let mut open = self.0.get(word).map_or(0, |w| !w) & (u64::MAX << (from % 64));
        while open == 0 {
            word += 1;
            if word * 64 >= end as usize {
                return end;
            }
            open = self.0.get(word).map_or(0, |w| !w);
        }
        (word as u32 * 64 + open.trailing_zeros()).min(end)
    }

    pub(crate) fn get(&self, i: u32) -> bool {
        self.0[i as usize / 64] >> (i % 64) & 1 == 1
    }

    fn set(&mut self, i: u32) {
        self.0[i as usize / 64] |= 1 << (i % 64);
    }
}

/// An open-addressing table (linear probing) of row indices by call id hash, one `u64` a slot:
/// the hash's high 32 bits as a tag, and the row's index + 1 (0: an empty slot). The tag tells
/// most other ids apart without reading their row, so a lookup or an insert costs about one
/// cache miss; [`Self::touch`] lets a batch's misses overlap.
#[derive(Default)]
struct IdTable {
    slots: Vec<u64>,
    len: usize,
}

/// `len` zeros, written: not `vec![0; len]`, whose memory the allocator takes fresh from the
/// kernel without touching it. [`IdTable::touch`] reads a slot before its insert writes it, so
/// each of such a table's pages was first mapped to the kernel's shared zero page, then copied
/// on the write, the copy flushing the page from every core's TLB (an interrupt to the other
/// core, a VM exit on a virtual machine): 6 % of `scripts/bench-reconcile.sh`'s samples. Written
/// first, a page costs one fault.
#[expect(
    clippy::slow_vector_initialization,
    reason = "the zeros are written on purpose, for the reason above"
)]
fn written_zeros(len: usize) -> Vec<u64> {
    let mut slots = Vec::with_capacity(len);
    slots.resize(len, 0);
    slots
}

impl IdTable {
    fn home(&self, id: u64) -> usize {
        id as usize & (self.slots.len() - 1)
    }

    fn tag(id: u64) -> u64 {
        id >> 32 << 32
    }

    /// Loads the home slots of `ids` (a few at a time): independent loads, whose cache misses
    /// overlap, so that the lookups that follow find them in cache.
    fn touch(&self, ids: impl Iterator<Item = u64>) -> u64 {
        if self.slots.is_empty() {
            return 0;
        }
        ids.fold(0, |acc, id| acc ^ self.slots[self.home(id)])
    }

    /// The slot holding `id` (its tag, and a row whose id `is` confirms), or the empty slot
    /// where it would go.
    fn find(&self, id: u64, is: impl Fn(u32) -> bool) -> (usize, Option<u32>) {
        let mask = self.slots.len() - 1;
        let tag = Self::tag(id);
        let mut at = self.home(id);
        loop {
            let slot = self.slots[at];
            if slot == 0 {
                return (at, None);
            }
            if slot >> 32 << 32 == tag {
                let row = (slot as u32) - 1;
                if is(row) {
                    return (at, Some(row));
                }
            }
            at = (at + 1) & mask;
        }
    }

    /// Room for `more` ids without the load passing 7/8.
    fn reserve(&mut self, more: usize, id_of: impl Fn(u32) -> u64) {
        let want = (self.len + more).saturating_mul(8) / 7 + 1;
        if want <= self.slots.len() {
            return;
        }
        let old = std::mem::replace(
            &mut self.slots,
            written_zeros(want.next_power_of_two().max(64)),
        );
        let mask = self.slots.len() - 1;
        for slot in old.into_iter().filter(|&s| s != 0) {
            let mut at = id_of((slot as u32) - 1) as usize & mask;
            while self.slots[at] != 0 {
                at = (at + 1) & mask;
            }
            self.slots[at] = slot;
        }
    }
}

/// Teams' rows and their index by call id.
#[derive(Default)]
pub(crate) struct Index {
    pages: Vec<Vec<TeamsRow>>,
    len: u32,
    /// Row indices by [`TeamsRow::id`]; each is the last row of its id (its chain runs back
    /// through `chains`).
    by_id: IdTable,
    /// The earlier row of the same id, for each [`TeamsRow::chained`] row: Graph does not
    /// promise that a call id is unique, but it nearly always is, so the few repeated ids keep
    /// their chains here rather than 4 bytes in every row.
    chains: std::collections::HashMap<u32, u32>,
}

impl Index {
    pub(crate) fn len(&self) -> u32 {
        self.len
    }

    pub(crate) fn row(&self, i: u32) -> &TeamsRow {
        &self.pages[i as usize / PAGE][i as usize % PAGE]
    }

    /// Makes room for `rows` more rows in the index by id.
    pub(crate) fn reserve(&mut self, rows: usize) {
        let pages = &self.pages;
        self.by_id
            .reserve(rows, |j| pages[j as usize / PAGE][j as usize % PAGE].id);
    }

    /// Adds rows (after those before them in file order), a batch at a time so that the cache
    /// misses of finding their slots overlap.
    pub(crate) fn insert_all(&mut self, rows: &[ReadTeamsRow]) {
        self.reserve(rows.len());
        for batch in rows.chunks(16) {
            std::hint::black_box(self.by_id.touch(batch.iter().map(|r| r.row.id)));
            for read in batch {
                self.insert_reserved(read.row);
            }
        }
    }

    /// Adds a row (after those before it in file order); its index.
    #[cfg(test)]
    pub(crate) fn insert(&mut self, row: TeamsRow) -> u32 {
        if row.id != 0 {
            self.reserve(1);
        }
        self.insert_reserved(row)
    }

    /// [`Self::insert`] with room made for the row before: not checked again a row of a batch
    /// that [`Self::insert_all`] made room for (15 instructions a row).
    fn insert_reserved(&mut self, mut row: TeamsRow) -> u32 {
        let i = self.len;
        assert!(i < NONE, "more than 4 billion Teams rows");
        if row.id != 0 {
            let pages = &self.pages;
            let (at, found) = self.by_id.find(row.id, |j| {
                pages[j as usize / PAGE][j as usize % PAGE].id == row.id
            });
            if let Some(last) = found {
                row.set_chained();
                self.chains.insert(i, last);
            } else {
                self.by_id.len += 1;
            }
            self.by_id.slots[at] = IdTable::tag(row.id) | (u64::from(i) + 1);
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
        if self.by_id.slots.is_empty() || id == 0 {
            return NONE;
        }
        let pages = &self.pages;
        self.by_id
            .find(id, |j| pages[j as usize / PAGE][j as usize % PAGE].id == id)
            .1
            .unwrap_or(NONE)
    }

    /// The heads of the chains of `ids` (in order), into `out`: a batch at a time, so that the
    /// cache misses of finding their slots, then of reading their rows, overlap.
    pub(crate) fn heads(&self, ids: &[u64], out: &mut Vec<u32>) {
        out.clear();
        // Room for them all at once: grown a batch at a time, `out` was copied as it doubled.
        out.reserve(ids.len());
        for batch in ids.chunks(16) {
            std::hint::black_box(self.by_id.touch(batch.iter().copied()));
            let at = out.len();
            out.extend(batch.iter().map(|&id| self.head_slot(id)));
            let rows = out[at..]
                .iter()
                .filter(|&&j| j != NONE)
                .fold(0, |acc, &j| acc ^ self.row(j).id);
            std::hint::black_box(rows);
            for (slot, &id) in out[at..].iter_mut().zip(batch) {
                *slot = if *slot == NONE || self.row(*slot).id != id {
                    self.head(id)
                } else {
                    *slot
                };
            }
        }
    }

    /// The row in the home slot of `id` if its tag is `id`'s (the row is then most likely the
    /// head of `id`, to be confirmed by its id), else [`NONE`].
    fn head_slot(&self, id: u64) -> u32 {
        if self.by_id.slots.is_empty() || id == 0 {
            return NONE;
        }
        let slot = self.by_id.slots[self.by_id.home(id)];
        if slot != 0 && slot >> 32 << 32 == IdTable::tag(id) {
            (slot as u32) - 1
        } else {
            NONE
        }
    }

    /// The unclaimed row with `id` whose start is nearest `connect` (ties: the earlier row),
    /// claimed; `None` when there is none.
    #[cfg(test)]
    pub(crate) fn claim_by_id(&self, claims: &mut Claims, id: u64, connect: Nanos) -> Option<u32> {
        self.claim_from(claims, self.head(id), connect)
    }

    /// [`Self::claim_by_id`] from the head of the id's chain ([`Self::head`]).
    pub(crate) fn claim_from(&self, claims: &mut Claims, head: u32, connect: Nanos) -> Option<u32> {
        let mut j = head;
        let mut best: Option<(u64, u32)> = None;
        while j != NONE {
            let row = self.row(j);
            if !claims.get(j) {
                let distance = row.start.abs_diff(connect);
                if best.is_none_or(|(d, _)| distance <= d) {
                    best = Some((distance, j));
                }
            }
            j = match row.chained() {
                true => self.chains.get(&j).copied().unwrap_or(NONE),
                false => NONE,
            };
        }
        let (_, j) = best?;
        claims.set(j);
        Some(j)
    }
}

/// Matches carrier rows that have no id, in order: each to the unclaimed Teams row (of any
/// partition) with the same calling and called numbers whose start is within `tolerance` of its
/// connect time, the nearest (ties: the earlier row in the files). One answer per carrier row.
/// `pairs`: every partition's unclaimed rows, in row order, with their number pairs
/// ([`super::pairs::unclaimed_pairs`]).
pub(crate) fn claim_by_numbers(
    parts: &[Index],
    claims: &mut [Claims],
    pairs: &[Vec<(u32, u64)>],
    carrier: &[CarrierRow],
    tolerance: Nanos,
) -> Vec<Option<RowRef>> {
    if carrier.is_empty() {
        return Vec::new();
    }
    // Chains by number pair over the unclaimed rows.
    let mut by_pair: HashTable<(u64, RowRef)> = HashTable::new();
    let mut next: Vec<Vec<RowRef>> = parts
        .iter()
        .map(|index| vec![NO_ROW; index.len as usize])
        .collect();
    for (k, rows) in pairs.iter().enumerate() {
        for &(i, pair) in rows {
            let r = row_ref(k, i);
            match by_pair.find_mut(pair, |&(p, _)| p == pair) {
                Some((_, last)) => {
                    next[k][i as usize] = *last;
                    *last = r;
                }
                None => {
                    by_pair.insert_unique(pair, (pair, r), |&(p, _)| p);
                }
            }
        }
    }
    let tolerance = tolerance.unsigned_abs();
    carrier
        .iter()
        .map(|c| {
            let pair = text::pair_key(c.calling, c.called);
            let &(_, mut r) = by_pair.find(pair, |&(p, _)| p == pair)?;
            // (distance, place in the files, row)
            let mut best: Option<(u64, u64, RowRef)> = None;
            while r != NO_ROW {
                let row = row_of(parts, r);
                let distance = row.start.abs_diff(c.connect);
                if !claims[(r >> 32) as usize].get(r as u32)
                    && distance <= tolerance
                    && best.is_none_or(|b| (distance, row.source, r) < b)
                {
                    best = Some((distance, row.source, r));
                }
                r = next[(r >> 32) as usize][r as u32 as usize];
            }
            let (_, _, r) = best?;
            claims[(r >> 32) as usize].set(r as u32);
            Some(r)
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::rows::DurationSource;
    use super::super::text::SECOND;
    use super::*;

    /// A Teams row (its numbers are given to [`claim_by_numbers`] apart: [`teams_pair`]).
    pub(crate) fn teams(id: u64, start: Nanos) -> TeamsRow {
        TeamsRow::new(
            id,
            start,
            60 * SECOND,
            0,
            Some(60),
            DurationSource::Operator,
        )
    }

    /// The numbers' key of a Teams row that is [`carrier`]'s of the same `pair`.
    pub(crate) fn teams_pair(pair: u64) -> u64 {
        text::pair_key(pair << 1, 0)
    }

    /// A carrier row whose numbers' [`text::pair_key`] is [`teams_pair`]'s of the same `pair`.
    pub(crate) fn carrier(id: u64, pair: u64, connect: Nanos) -> CarrierRow {
        CarrierRow {
            id,
            calling: pair << 1,
            called: 0,
            connect,
            duration: 60 * SECOND,
            charge: 0,
            source: 0,
            head: NONE,
        }
    }

    #[test]
    fn a_repeated_id_goes_to_the_nearest_start_then_the_next() {
        let mut index = Index::default();
        for start in [100, 0, 50] {
            index.insert(teams(7, start * SECOND));
        }
        index.insert(teams(8, 0));
        let mut claims = Claims::new(index.len());
        assert_eq!(index.claim_by_id(&mut claims, 7, 45 * SECOND), Some(2));
        assert_eq!(index.claim_by_id(&mut claims, 7, 45 * SECOND), Some(1));
        assert_eq!(index.claim_by_id(&mut claims, 7, 45 * SECOND), Some(0));
        assert_eq!(index.claim_by_id(&mut claims, 7, 45 * SECOND), None);
        assert_eq!(index.claim_by_id(&mut claims, 9, 0), None);
        assert_eq!(index.claim_by_id(&mut claims, 8, 1_000 * SECOND), Some(3));
    }

    #[test]
    fn a_teams_row_is_as_compact_as_the_readme_says() {
        assert_eq!(std::mem::size_of::<TeamsRow>(), 40);
        // A carrier row in one cache line.
        assert_eq!(std::mem::size_of::<CarrierRow>(), 64);
    }

    #[test]
    fn ties_go_to_the_earlier_row() {
        let mut index = Index::default();
        index.insert(teams(7, 0));
        index.insert(teams(7, 20 * SECOND));
        let mut claims = Claims::new(index.len());
        assert_eq!(index.claim_by_id(&mut claims, 7, 10 * SECOND), Some(0));
    }

    #[test]
    fn rows_without_id_match_by_numbers_within_the_tolerance_edges_included() {
        let mut index = Index::default();
        let numbers = [5, 5, 6, 5];
        index.insert(teams(0, 0));
        index.insert(teams(0, 10 * SECOND));
        index.insert(teams(3, 0));
        index.insert(teams(0, 100 * SECOND));
        let mut claims = Claims::new(index.len());
        // One already claimed by its id is not offered again.
        assert_eq!(index.claim_by_id(&mut claims, 3, 0), Some(2));
        let pairs: Vec<(u32, u64)> = (0..index.len())
            .filter(|&i| !claims.get(i))
            .map(|i| (i, teams_pair(numbers[i as usize])))
            .collect();
        let carrier_rows = [
            carrier(0, 5, 11 * SECOND),
            carrier(0, 5, SECOND),
            carrier(0, 5, 101 * SECOND + 1),
            carrier(0, 6, 0),
            carrier(0, 5, -SECOND),
        ];
        assert_eq!(
            claim_by_numbers(
                std::slice::from_ref(&index),
                std::slice::from_mut(&mut claims),
                &[pairs],
                &carrier_rows,
                SECOND
            ),
            [Some(1), Some(0), None, None, None]
        );
    }

    /// The word-at-a-time search gives the first unclaimed row a row-by-row scan gives, from
    /// any row to any end, whatever the claims around word boundaries.
    #[test]
    fn the_first_unclaimed_row_is_the_one_a_scan_finds() {
        let rows = 300u32;
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..40 {
            let mut claims = Claims::new(rows);
            // From all claimed to none, in runs that cross the 64-row words.
            for i in 0..rows {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                if (x >> 33) % 40 < round {
                    claims.set(i);
                }
            }
            if round == 39 {
                (0..rows).for_each(|i| claims.set(i));
            }
            for from in 0..=rows {
                for end in [from, (from + 1).min(rows), (from + 70).min(rows), rows] {
                    let scan = (from..end).find(|&i| !claims.get(i)).unwrap_or(end);
                    assert_eq!(
                        claims.first_unclaimed(from, end),
                        scan,
                        "from {from} to {end}"
                    );
                }
            }
        }
    }
}
