//! Append-only storage for the ledger and the number book: rows grown in fixed chunks, and
//! strings kept once in an arena and named by a `u32` index.
//!
//! A month is millions of calls. A `Vec` that doubles holds up to twice what it needs and
//! copies everything on each growth; a `String` per call id or number costs a heap block and a
//! 24-byte header each. Here a row costs its size, and a string its bytes, a 8-byte span and
//! a few bytes of index.

use std::ops::{Index, IndexMut};

use hashbrown::HashTable;

/// Rows per chunk of a [`Chunked`].
const CHUNK_ROWS: usize = 1024;
/// Bytes of the first chunk of a [`Strings`] arena: each next one is twice as big, up to
/// [`ARENA_CHUNK`] (a table of a few keys stays small).
const FIRST_ARENA_CHUNK: usize = 1024;
/// Bytes per chunk of a large [`Strings`] arena (a longer string gets a chunk of its own).
const ARENA_CHUNK: usize = 64 * 1024;

/// An index as the ledger stores it: fewer than 2^32 - 1 rows of anything (a month is
/// millions; `u32::MAX` is kept to mean no row).
pub(crate) fn index_u32(index: usize) -> u32 {
    u32::try_from(index)
        .ok()
        .filter(|&i| i != u32::MAX)
        .expect("the ledger holds fewer than 2^32 - 1 rows of each kind")
}

/// A vector of rows grown a chunk at a time: nothing is moved once pushed, and at most one
/// chunk is unused.
#[derive(Debug)]
pub(crate) struct Chunked<T> {
    chunks: Vec<Vec<T>>,
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Self { chunks: Vec::new() }
    }
}

impl<T> Chunked<T> {
    pub(crate) fn len(&self) -> usize {
        self.chunks.len().saturating_sub(1) * CHUNK_ROWS + self.chunks.last().map_or(0, Vec::len)
    }

    /// Appends `row`; returns its index.
    pub(crate) fn push(&mut self, row: T) -> u32 {
        let index = index_u32(self.len());
        match self.chunks.last_mut() {
            Some(chunk) if chunk.len() < CHUNK_ROWS => chunk.push(row),
            _ => {
                let mut chunk = Vec::with_capacity(CHUNK_ROWS);
                chunk.push(row);
                self.chunks.push(chunk);
            }
        }
        index
    }

    pub(crate) fn get(&self, index: u32) -> Option<&T> {
        let i = index as usize;
        self.chunks.get(i / CHUNK_ROWS)?.get(i % CHUNK_ROWS)
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.chunks.capacity() * size_of::<Vec<T>>()
            + self
                .chunks
                .iter()
                .map(|c| c.capacity() * size_of::<T>())
                .sum::<usize>()
    }
}

impl<T> Index<u32> for Chunked<T> {
    type Output = T;

    fn index(&self, index: u32) -> &T {
        let i = index as usize;
        &self.chunks[i / CHUNK_ROWS][i % CHUNK_ROWS]
    }
}

impl<T> IndexMut<u32> for Chunked<T> {
    fn index_mut(&mut self, index: u32) -> &mut T {
        let i = index as usize;
        &mut self.chunks[i / CHUNK_ROWS][i % CHUNK_ROWS]
    }
}

/// Distinct strings, each stored once in an arena and named by its index (0, 1, 2… in the
/// order they were added); found by text through a hash table of indices, compared in full,
/// so a lookup is exact whatever the hashes.
#[derive(Debug, Default)]
pub(crate) struct Strings {
    arena: Vec<String>,
    spans: Chunked<Span>,
    index: HashTable<u32>,
}

/// Where a string starts; it ends where the next one starts in the same chunk, or at the end
/// of its chunk.
#[derive(Debug, Clone, Copy)]
struct Span {
    chunk: u32,
    start: u32,
}

/// A hash of a string (the table's order is never read): a fast one, as call ids are hashed
/// on every lookup and again whenever the table grows.
fn hash(text: &str) -> u64 {
    oc_protocol::hash::of_str(text)
}

fn text<'a>(arena: &'a [String], spans: &Chunked<Span>, index: u32) -> &'a str {
    let span = spans[index];
    let chunk = &arena[span.chunk as usize];
    let end = match index.checked_add(1).and_then(|next| spans.get(next)) {
        Some(next) if next.chunk == span.chunk => next.start as usize,
        _ => chunk.len(),
    };
    &chunk[span.start as usize..end]
}

impl Strings {
    /// The string at `index` (as returned by [`Strings::intern`]).
    pub(crate) fn get(&self, index: u32) -> &str {
        text(&self.arena, &self.spans, index)
    }

    /// The index of `value`, if it was added.
    pub(crate) fn find(&self, value: &str) -> Option<u32> {
        self.index
            .find(hash(value), |&i| self.get(i) == value)
            .copied()
    }

    /// The index of `value`, added first if it is new.
    pub(crate) fn intern(&mut self, value: &str) -> u32 {
        let hashed = hash(value);
        let (arena, spans) = (&self.arena, &self.spans);
        if let Some(&index) = self.index.find(hashed, |&i| text(arena, spans, i) == value) {
            return index;
        }
        let index = self.push_text(value);
        let (arena, spans) = (&self.arena, &self.spans);
        self.index
            .insert_unique(hashed, index, |&i| hash(text(arena, spans, i)));
        index
    }

    fn push_text(&mut self, value: &str) -> u32 {
        let fits = self
            .arena
            .last()
            .is_some_and(|chunk| chunk.capacity() - chunk.len() >= value.len());
        if !fits {
            // Never grown once made, so no chunk is ever copied.
            let size = (FIRST_ARENA_CHUNK << self.arena.len().min(6)).min(ARENA_CHUNK);
            self.arena
                .push(String::with_capacity(size.max(value.len())));
        }
        let chunk_index = index_u32(self.arena.len() - 1);
        let chunk = &mut self.arena[chunk_index as usize];
        let span = Span {
            chunk: chunk_index,
            start: index_u32(chunk.len()),
        };
        chunk.push_str(value);
        self.spans.push(span)
    }

    /// Makes room in the index for `more` strings, so that filling it does not rehash it
    /// over and over (a compaction re-interns every call id kept).
    pub(crate) fn reserve(&mut self, more: usize) {
        let (arena, spans) = (&self.arena, &self.spans);
        self.index.reserve(more, |&i| hash(text(arena, spans, i)));
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.arena.capacity() * size_of::<String>()
            + self.arena.iter().map(String::capacity).sum::<usize>()
            + self.spans.heap_bytes()
            + self.index.allocation_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_come_back_exactly_and_once() {
        let mut strings = Strings::default();
        let long = "x".repeat(ARENA_CHUNK + 3);
        let values: Vec<String> = (0..20_000)
            .map(|i| format!("call-{i}"))
            .chain([
                "".to_owned(),
                long.clone(),
                "é".to_owned(),
                "after".to_owned(),
            ])
            .collect();
        for (i, v) in values.iter().enumerate() {
            assert_eq!(strings.find(v), None);
            assert_eq!(strings.intern(v), index_u32(i));
        }
        for (i, v) in values.iter().enumerate() {
            assert_eq!(strings.get(index_u32(i)), v);
            assert_eq!(strings.intern(v), index_u32(i), "interned again: {v}");
            assert_eq!(strings.find(v), Some(index_u32(i)));
        }
        assert_eq!(strings.find("call-20000"), None);
    }

    #[test]
    fn chunked_rows_keep_their_index() {
        let mut rows = Chunked::default();
        for i in 0..(3 * CHUNK_ROWS as u32 + 5) {
            assert_eq!(rows.push(i * 2), i);
        }
        assert_eq!(rows.len(), 3 * CHUNK_ROWS + 5);
        rows[7] = 1;
        assert_eq!(rows[7], 1);
        assert_eq!(
            rows[CHUNK_ROWS as u32 * 2 + 1],
            (CHUNK_ROWS as u32 * 2 + 1) * 2
        );
        assert_eq!(rows.get(rows.len() as u32), None);
    }
}
