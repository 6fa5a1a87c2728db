//! The number pairs of Teams' unclaimed rows, read back from their files when carrier rows
//! without a call id are matched by numbers (PROTOCOL.md 3.5): the index keeps no pair, 8 bytes
//! of every row (80 MB of 10 million) that only such rows need, and most carrier exports give
//! every call its id.

use std::io;

use super::matching::{Claims, Index};
use super::mismatches::{Sides, Text, visit_texts};
use super::pipeline::JobKind;
use super::source::merge_places;
use super::text;

/// A row's number pair as [`super::teams::build`] made it from the row's fields: the
/// [`text::pair_key`] of the calling and the called number's [`text::number_key`]s.
fn pair_of(text: &Text<'_>) -> u64 {
    let (caller, callee) = match text {
        Text::Plain([_, caller, callee]) => (*caller, *callee),
        Text::Described((_, caller, callee)) => (caller.as_bytes(), callee.as_bytes()),
    };
    text::pair_key(text::number_key(caller), text::number_key(callee))
}

/// Every partition's unclaimed rows (by `claims`), in row order, each with its number pair,
/// read back from the Teams files in `sides`: each file once, in order.
pub(crate) fn unclaimed_pairs(
    index: &[Index],
    claims: &[Claims],
    sides: &Sides<'_>,
) -> io::Result<Vec<Vec<(u32, u64)>>> {
    let mut pairs: Vec<Vec<(u32, u64)>> = index
        .iter()
        .zip(claims)
        .map(|(part, claims)| {
            let mut rows = Vec::new();
            let mut i = claims.first_unclaimed(0, part.len());
            while i < part.len() {
                rows.push((i, 0));
                i = claims.first_unclaimed(i + 1, part.len());
            }
            rows
        })
        .collect();
    // The partitions' rows merged into file order (each partition's are in it already): their
    // places, and the partition of each.
    let sources: Vec<Vec<u64>> = pairs
        .iter()
        .zip(index)
        .map(|(rows, part)| rows.iter().map(|&(i, _)| part.row(i).source).collect())
        .collect();
    let (places, order) = merge_places(&sources.iter().map(Vec::as_slice).collect::<Vec<_>>());
    drop(sources);
    if !sides
        .teams_kinds
        .iter()
        .all(|kind| matches!(kind, JobKind::Teams(_)))
    {
        return Err(io::Error::other("a Teams file was read as a carrier file"));
    }
    let mut heads = vec![0; pairs.len()];
    let mut along = order.into_iter();
    visit_texts(
        places,
        (sides.teams, sides.teams_kinds),
        sides.format,
        |text| {
            let Some(part) = along.next() else { return };
            let part = part as usize;
            pairs[part][heads[part]].1 = pair_of(&text);
            heads[part] += 1;
        },
    )?;
    Ok(pairs)
}
