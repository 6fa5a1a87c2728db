//! `mismatches.csv`: one line per call not matched (and per matched call whose billed duration
//! differs from the carrier's CDR), in time order, for a billing team's spreadsheet. A carrier
//! row whose id Teams does not have gets its line as it streams past; the others' call id and
//! numbers are read back from the input files by offset at the end, so that matching keeps no
//! text. The lines are put in order by [`super::spill`], in bounded memory; when the Teams
//! rows' lines come in time order in their files (an export in time order), those are merged
//! into the file as they are read back, never held whole nor written as runs.

use std::borrow::Cow;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::carrier::{self, CarrierColumns};
use super::figures::{Class, Mismatch};
use super::format::CarrierFormat;
use super::matching::{Claims, Index, NO_ROW, RowRef, row_of, row_ref};
use super::pipeline::JobKind;
use super::rows::{CarrierRow, DurationSource, TeamsRow};
use super::source::{self, unpack_source, visit_offsets};
use super::spill::{self, Block, Key, LineSink, Spill};
use super::teams::{self, TeamsShape};
use super::text::{DelimiterTable, LineScanner, Nanos, pair, push_int, push_rfc3339};

/// The header of `mismatches.csv`.
pub(crate) const HEADER: &str = "class,billed_differs,call_id,calling_number,called_number,teams_start,teams_end,teams_duration_ms,teams_billed_s,duration_source,carrier_connect,carrier_end,carrier_duration_ms,difference_ms";

/// Nanoseconds as milliseconds, exactly: `61250`, `61250.5`, `-0.0001`.
#[cfg(test)]
pub(crate) fn format_ms(ns: Nanos) -> String {
    let mut out = Vec::new();
    push_ms(&mut out, ns);
    String::from_utf8(out).unwrap_or_default()
}

/// [`format_ms`] appended to `out`.
fn push_ms(out: &mut Vec<u8>, ns: Nanos) {
    if ns < 0 {
        out.push(b'-');
    }
    let abs = ns.unsigned_abs();
    // At most `u64::MAX / 10^6`: an `i64`.
    push_int(out, (abs / 1_000_000) as i64);
    let fraction = (abs % 1_000_000) as u32;
    if fraction != 0 {
        // Six digits, two at a time, less the trailing zeros (not all six: `fraction` is not 0).
        let [a, b] = pair(fraction / 10_000);
        let [c, d] = pair(fraction / 100);
        let [e, f] = pair(fraction);
        let digits = [b'.', a, b, c, d, e, f];
        let mut end = digits.len();
        while end > 2 && digits[end - 1] == b'0' {
            end -= 1;
        }
        out.extend_from_slice(&digits[..end]);
    }
}

/// A field appended to `out`, quoted when it needs to be.
fn push_field(out: &mut Vec<u8>, text: &str) {
    if text
        .bytes()
        .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
    {
        out.push(b'"');
        out.extend_from_slice(text.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(text.as_bytes());
    }
}

/// A field quoted when it needs to be.
#[cfg(test)]
fn csv_field(text: &str) -> String {
    let mut out = Vec::new();
    push_field(&mut out, text);
    String::from_utf8(out).unwrap_or_default()
}

/// The files of each side, as read, to read rows back from.
pub(crate) struct Sides<'a> {
    pub(crate) teams: &'a [PathBuf],
    pub(crate) teams_kinds: &'a [JobKind],
    pub(crate) carrier: &'a [PathBuf],
    pub(crate) carrier_kinds: &'a [JobKind],
    pub(crate) format: &'a CarrierFormat,
}

/// A row's call id, calling and called number, as its file writes them: borrowed from the
/// bytes read back when they are UTF-8 without doubled quotes (no copy a line).
pub(crate) type Described<'a> = (Cow<'a, str>, Cow<'a, str>, Cow<'a, str>);

/// A row's call id, calling and called number as its line is written: the bytes of its file
/// when they need neither a UTF-8 repair nor quotes (most rows: copied, not checked again), or
/// as [`teams::describe`] and [`carrier::describe`] read them.
pub(crate) enum Text<'a> {
    Plain([&'a [u8]; 3]),
    Described(Described<'a>),
}

impl<'a> Text<'a> {
    /// The text of the Teams row at the start of `bytes` (`table`: the caller's, kept for
    /// every row: see [`LineScanner::with_table`]).
    pub(crate) fn teams(shape: &TeamsShape, bytes: &'a [u8], table: &mut DelimiterTable) -> Self {
        match shape {
            TeamsShape::Csv(columns) => match plain_fields(bytes, b',', columns.described(), table)
            {
                Some(fields) => Self::Plain(fields),
                None => Self::Described(teams::describe(shape, bytes)),
            },
            TeamsShape::Json | TeamsShape::Ndjson => Self::Described(teams::describe(shape, bytes)),
        }
    }

    /// The text of the carrier row at the start of `bytes` (`table` as for [`Self::teams`]).
    pub(crate) fn carrier(
        format: &CarrierFormat,
        columns: &CarrierColumns,
        bytes: &'a [u8],
        table: &mut DelimiterTable,
    ) -> Self {
        match plain_fields(bytes, format.delimiter, columns.described(), table) {
            Some(fields) => Self::Plain(fields),
            None => Self::Described(carrier::describe(format, columns, bytes)),
        }
    }
}

/// The fields at `columns` of the line at the start of `bytes`, as written in the file, when
/// the line has no quote (so no field is escaped) and those fields are ASCII without a byte
/// that [`push_field`] quotes: then they are what the `describe` functions read and
/// `push_field` writes. `None` otherwise.
fn plain_fields<'a>(
    bytes: &'a [u8],
    delimiter: u8,
    columns: [usize; 3],
    table: &mut DelimiterTable,
) -> Option<[&'a [u8]; 3]> {
    let line = &bytes[..memchr::memchr(b'\n', bytes).unwrap_or(bytes.len())];
    let mut scanner = LineScanner::with_table(line, delimiter, table);
    let scanned = scanner.next_line()?;
    // The fields' places, then the fields from `line`, which outlives the scanner they are in.
    let (bounds, len) = (scanned.bounds?, scanned.line.len());
    let places = columns.map(|i| match bounds.get(i..i + 2) {
        Some(&[start, end]) => start.wrapping_add(1) as usize..end as usize,
        _ => 0..0,
    });
    let line = &line[..len];
    let fields = places.map(|place| line.get(place).unwrap_or_default());
    // No field has a quote or a line end; a `\r` or (with another delimiter) a `,` is looked
    // for in the whole line, once: rare, and quicker than looking in each field.
    let quoted = match delimiter {
        b',' => memchr::memchr(b'\r', line).is_some(),
        _ => memchr::memchr2(b'\r', b',', line).is_some(),
    };
    (!quoted && fields.iter().all(|f| f.is_ascii())).then_some(fields)
}

/// Where a mismatch's line goes in the file: in time order; calls at the same time by class,
/// then in the order of the files.
pub(crate) fn key(m: &Mismatch, index: &[Index]) -> Key {
    if m.teams != NO_ROW {
        let row = row_of(index, m.teams);
        Key {
            at: row.start,
            class: m.class,
            teams: row.source,
            carrier: m.source,
        }
    } else {
        Key {
            at: m.connect,
            class: m.class,
            teams: u64::MAX,
            carrier: m.source,
        }
    }
}

/// The line of a carrier row with an id that Teams does not have, from its text while the
/// row's chunk is in hand: it needs nothing from the index.
pub(crate) fn push_unexpected(block: &mut Block, row: &CarrierRow, text: &Text<'_>) {
    let m = Mismatch {
        class: Class::Unexpected,
        billed_differs: false,
        teams: NO_ROW,
        connect: row.connect,
        duration: row.duration,
        source: row.source,
    };
    block.push(key(&m, &[]), |out| format_line(out, &m, None, text));
}

/// A Teams row that goes to `mismatches.csv`: unclaimed (`missing`), or paired with a carrier
/// row (its partition, and its place among that partition's paired mismatches).
#[derive(Clone, Copy)]
enum Pick {
    Missing(RowRef),
    Paired(u32, u32),
}

/// One partition's Teams rows that go to `mismatches.csv`, in its row order (which is file
/// order): its unclaimed rows (`missing`, made here rather than kept: they can be most of a
/// large index) and its paired mismatches (`paired`: sorted by row, the first of them at
/// `first_paired` among the partition's).
struct PartRows<'a> {
    part: usize,
    claims: &'a Claims,
    paired: &'a [Mismatch],
    first_paired: u32,
    next: u32,
    /// The row after the last one to give.
    end: u32,
}

impl Iterator for PartRows<'_> {
    /// What the next row is.
    type Item = Pick;

    fn next(&mut self) -> Option<Pick> {
        // Two ascending lists merged: the unclaimed rows, found a word of claims at a time
        // (most rows are claimed), and the paired ones (claimed, so never the same row).
        let missing = self.claims.first_unclaimed(self.next, self.end);
        let paired = self
            .paired
            .first()
            .map_or(self.end, |m| (m.teams as u32).min(self.end));
        let i = missing.min(paired);
        if i >= self.end {
            self.next = self.end;
            return None;
        }
        self.next = i + 1;
        if i == missing {
            return Some(Pick::Missing(row_ref(self.part, i)));
        }
        self.paired = &self.paired[1..];
        self.first_paired += 1;
        Some(Pick::Paired(self.part as u32, self.first_paired - 1))
    }
}

/// The Teams rows of every partition that go to `mismatches.csv` whose places are in
/// `places`, merged into file order: their places in the files, and what each is. Rows are in
/// file order in a partition, so theirs are a range of it, found by bisection; a partition's
/// rows are picked first and their places read after, in a loop of their own, whose loads
/// (most of them cache misses: the index is large) do not wait for each other. The merge
/// keeps only which partition each row came from (4 bytes a row beside its place), so that
/// the rows' picks are not copied into a list of their own.
fn teams_side(
    index: &[Index],
    claims: &[Claims],
    paired: &[&[Mismatch]],
    places: std::ops::Range<u64>,
) -> (Vec<u64>, TeamsPicks) {
    let mut parts: Vec<(Vec<u64>, Vec<Pick>)> = Vec::with_capacity(index.len());
    for (part, ((index_part, claims), mine)) in index.iter().zip(claims).zip(paired).enumerate() {
        let first_at = |place: u64| {
            let (mut low, mut high) = (0, index_part.len());
            while low < high {
                let mid = low + (high - low) / 2;
                if index_part.row(mid).source < place {
                    low = mid + 1;
                } else {
                    high = mid;
                }
            }
            low
        };
        let (start, end) = (first_at(places.start), first_at(places.end));
        let skip = mine.partition_point(|m| (m.teams as u32) < start);
        let picks: Vec<Pick> = PartRows {
            part,
            claims,
            paired: &mine[skip..],
            first_paired: skip as u32,
            next: start,
            end,
        }
        .collect();
        // Each row's place, after its pick.
        let places = picks
            .iter()
            .map(|&pick| {
                let r = match pick {
                    Pick::Missing(r) => r,
                    Pick::Paired(part, k) => paired[part as usize][k as usize].teams,
                };
                index_part.row(r as u32).source
            })
            .collect();
        parts.push((places, picks));
    }
    // The partitions' rows merged by place (no two rows have the same place).
    let lists: Vec<&[u64]> = parts.iter().map(|(places, _)| places.as_slice()).collect();
    let (places, order) = source::merge_places(&lists);
    let picks = TeamsPicks {
        parts: parts
            .into_iter()
            .map(|(_, picks)| picks.into_iter())
            .collect(),
        order: order.into_iter(),
    };
    (places, picks)
}

/// The picks of [`teams_side`]'s rows, in file order: each taken from the partition the merge
/// named for it.
struct TeamsPicks {
    parts: Vec<std::vec::IntoIter<Pick>>,
    order: std::vec::IntoIter<u32>,
}

impl Iterator for TeamsPicks {
    type Item = Pick;

    fn next(&mut self) -> Option<Pick> {
        let k = self.order.next()?;
        self.parts.get_mut(k as usize)?.next()
    }
}

/// The Teams rows of one run of consecutive places that go to `mismatches.csv`: their places
/// and picks, in file order, and the keys of their lines when those come in the same order
/// (as they do when the file is in time order).
struct TeamsRun {
    places: Vec<u64>,
    picks: Vec<Pick>,
    order: LineOrder,
}

/// Whether a run's lines come in key order.
#[derive(Clone, Copy)]
enum LineOrder {
    /// Not in order, or not looked at.
    Unknown,
    /// No line.
    Empty,
    /// Every line's key past the one before: the first and the last.
    Keys(Key, Key),
}

impl TeamsRun {
    /// The rows of `places` (see [`teams_side`]); their lines' order looked at when `check`.
    fn new(
        index: &[Index],
        claims: &[Claims],
        paired: &[&[Mismatch]],
        places: std::ops::Range<u64>,
        check: bool,
    ) -> Self {
        // Each row's place found once (a cache miss for most rows), kept small.
        let (places, picks) = teams_side(index, claims, paired, places);
        let picks: Vec<Pick> = picks.collect();
        let mut keys = picks
            .iter()
            .map(|&pick| key(&mismatch(pick, paired), index));
        let order = match (check, keys.next()) {
            (false, _) => LineOrder::Unknown,
            (true, None) => LineOrder::Empty,
            (true, Some(first)) => keys
                .try_fold(first, |last, key| (last < key).then_some(key))
                .map_or(LineOrder::Unknown, |last| LineOrder::Keys(first, last)),
        };
        Self {
            places,
            picks,
            order,
        }
    }

    /// The mismatches of `picks`.
    fn mismatches<'a>(
        picks: &'a [Pick],
        paired: &'a [&'a [Mismatch]],
    ) -> impl Iterator<Item = Mismatch> + 'a {
        picks.iter().map(|&pick| mismatch(pick, paired))
    }
}

/// What a pick is.
fn mismatch(pick: Pick, paired: &[&[Mismatch]]) -> Mismatch {
    match pick {
        Pick::Missing(r) => Mismatch {
            class: Class::Missing,
            billed_differs: false,
            teams: r,
            connect: 0,
            duration: 0,
            source: u64::MAX,
        },
        Pick::Paired(part, k) => paired[part as usize][k as usize],
    }
}

/// Whether the lines of the runs, one after the other, come in key order.
fn in_key_order(runs: &[TeamsRun]) -> bool {
    let mut last: Option<Key> = None;
    for run in runs {
        match run.order {
            LineOrder::Unknown => return false,
            LineOrder::Empty => {}
            LineOrder::Keys(first, end) => {
                if last.is_some_and(|last| last >= first) {
                    return false;
                }
                last = Some(end);
            }
        }
    }
    true
}

/// How many lines of Teams rows a block of [`stream_teams`] holds: about 0.7 MB of lines.
pub(crate) const WINDOW_LINES: usize = 4096;

/// Writes `dir/mismatches.csv`: the lines of `streamed` (formatted while the carrier's rows
/// streamed), those of `found` and the `missing` rows (unclaimed in `claims`), read back here,
/// in time order; the number of lines besides the header, and whether the Teams rows' lines
/// were streamed (below). For the mismatches that have no line yet, their call id and numbers
/// are read back from the side that has text for them (Teams' row when there is one, the
/// carrier's otherwise): the carrier's files on a thread, Teams' on `threads` threads (one
/// when a Teams file is JSON or gzip, which is read from its start). `found`: the mismatches
/// kept while matching (every one but the `missing` rows), by partition (each paired one in
/// its Teams row's).
///
/// When the Teams rows' lines come in time order in their files (an export in time order),
/// they are read back in blocks of `window` lines that the threads take in turn, and merged
/// into the file as they come, on this thread: neither held nor written twice. Otherwise
/// (or with `window` 0), each thread reads a run of consecutive places, and every producer
/// holds `budget` bytes of lines at most (Teams' threads sharing one), past it writing sorted
/// runs to temporary files in `dir`, merged at the end on `threads` threads (each writing
/// its own part of the file) and removed.
pub(crate) fn write(
    dir: &Path,
    found: &mut [Vec<Mismatch>],
    index: &[Index],
    claims: &[Claims],
    sides: &Sides<'_>,
    mut streamed: Spill,
    (budget, threads, window): (usize, usize, usize),
) -> io::Result<(u64, bool)> {
    let path = dir.join("mismatches.csv");
    let mut file = std::fs::File::create(&path)?;
    writeln!(file, "{HEADER}")?;
    drop(file);
    let offset = HEADER.len() as u64 + 1;
    // Each partition's Teams rows in row order, on a thread each; then the carrier's, of
    // every partition, by place.
    std::thread::scope(|scope| {
        for list in found.iter_mut() {
            scope.spawn(|| {
                list.sort_unstable_by_key(|m| {
                    if m.teams != NO_ROW {
                        (false, m.teams)
                    } else {
                        (true, m.source)
                    }
                })
            });
        }
    });
    let mut paired = Vec::with_capacity(found.len());
    let mut carrier_side = Vec::new();
    for list in found.iter() {
        let split = list.partition_point(|m| m.teams != NO_ROW);
        paired.push(&list[..split]);
        carrier_side.extend_from_slice(&list[split..]);
    }
    carrier_side.sort_unstable_by_key(|m| m.source);
    if paired
        .iter()
        .enumerate()
        .any(|(k, list)| list.iter().any(|m| (m.teams >> 32) as usize != k))
    {
        return Err(io::Error::other(
            "a paired mismatch kept in another partition than its Teams row's (a bug: please \
             report it)",
        ));
    }
    let (paired, carrier_side) = (paired.as_slice(), carrier_side.as_slice());
    let mut sequential = false;
    for (path, kind) in sides.teams.iter().zip(sides.teams_kinds) {
        sequential |= matches!(kind, JobKind::Teams(TeamsShape::Json)) || source::is_gzip(path)?;
    }
    let runs = if sequential { 1 } else { threads.max(1) };
    // The places where runs start: the first partition's rows cut into `runs` equal parts.
    let mut bounds = vec![0u64];
    if let Some(first) = index.first() {
        for k in 1..runs {
            let i = (u64::from(first.len()) * k as u64 / runs as u64) as u32;
            if i < first.len() {
                bounds.push(first.row(i).source);
            }
        }
    }
    bounds.push(u64::MAX);
    bounds.dedup();
    let stream = window > 0 && !sequential;
    let panicked = || io::Error::other("reading rows back for mismatches.csv panicked");
    std::thread::scope(|scope| {
        let carrier = scope.spawn(|| {
            let mut spill = Spill::new(dir, "carrier", budget);
            read_side(
                carrier_side.iter().map(|m| m.source).collect(),
                carrier_side.iter().copied(),
                (sides.carrier, sides.carrier_kinds),
                sides.format,
                index,
                &mut spill,
            )?;
            // Sorted here, beside the other producers, rather than when merged.
            spill.finish()?;
            streamed.finish()?;
            Ok::<_, io::Error>([streamed, spill])
        });
        let teams_runs: Vec<_> = bounds
            .windows(2)
            .map(|range| {
                let places = range[0]..range[1];
                scope.spawn(move || TeamsRun::new(index, claims, paired, places, stream))
            })
            .collect();
        let teams_runs = teams_runs
            .into_iter()
            .map(|run| run.join().map_err(|_| panicked()))
            .collect::<io::Result<Vec<TeamsRun>>>()?;
        if stream && in_key_order(&teams_runs) {
            let spills = Vec::from(carrier.join().map_err(|_| panicked())??);
            let lines = Lines {
                paired,
                index,
                sides,
            };
            let lines = stream_teams(
                spills,
                &teams_runs,
                lines,
                (threads, window),
                (&path, offset),
            )?;
            return Ok((lines, true));
        }
        let teams_runs: Vec<_> = teams_runs
            .into_iter()
            .enumerate()
            .map(|(k, run)| {
                scope.spawn(move || {
                    // The runs share one producer's budget: memory as with one thread.
                    let mut spill = Spill::new(dir, &format!("teams-{k}"), budget / runs);
                    read_side(
                        run.places,
                        TeamsRun::mismatches(&run.picks, paired),
                        (sides.teams, sides.teams_kinds),
                        sides.format,
                        index,
                        &mut spill,
                    )?;
                    spill.finish()?;
                    Ok::<_, io::Error>(spill)
                })
            })
            .collect();
        let mut spills = Vec::from(carrier.join().map_err(|_| panicked())??);
        for run in teams_runs {
            spills.push(run.join().map_err(|_| panicked())??);
        }
        Ok((spill::merge(spills, &path, offset, threads)?, false))
    })
}

/// What the lines of Teams rows are made from.
#[derive(Clone, Copy)]
struct Lines<'a> {
    paired: &'a [&'a [Mismatch]],
    index: &'a [Index],
    sides: &'a Sides<'a>,
}

/// The lines of `runs` (in key order, run after run) read back in blocks of `window` lines
/// on `threads` threads, which take the blocks in turn, and merged with those of `spills`
/// into `path` from byte `at` on, on this thread, the blocks taken in order as they come;
/// how many lines.
fn stream_teams(
    spills: Vec<Spill>,
    runs: &[TeamsRun],
    lines: Lines<'_>,
    (threads, window): (usize, usize),
    (path, at): (&Path, u64),
) -> io::Result<u64> {
    let windows: Vec<(&TeamsRun, std::ops::Range<usize>)> = runs
        .iter()
        .flat_map(|run| {
            (0..run.picks.len())
                .step_by(window)
                .map(move |a| (run, a..(a + window).min(run.picks.len())))
        })
        .collect();
    let producers = threads.clamp(1, windows.len().max(1));
    let windows = &windows;
    std::thread::scope(|scope| {
        let mut blocks = Vec::with_capacity(producers);
        let mut spares = Vec::with_capacity(producers);
        let mut threads = Vec::with_capacity(producers);
        for t in 0..producers {
            // Two blocks ahead of the merge at most; the used ones come back to be filled again.
            let (send, receive) = std::sync::mpsc::sync_channel::<Block>(2);
            let (give_back, spare) = std::sync::mpsc::sync_channel::<Block>(4);
            blocks.push(receive);
            spares.push(give_back);
            threads.push(scope.spawn(move || {
                for (run, range) in windows.iter().skip(t).step_by(producers) {
                    let mut block = spare.try_recv().unwrap_or_default();
                    read_side(
                        run.places[range.clone()].to_vec(),
                        TeamsRun::mismatches(&run.picks[range.clone()], lines.paired),
                        (lines.sides.teams, lines.sides.teams_kinds),
                        lines.sides.format,
                        lines.index,
                        &mut block,
                    )?;
                    if send.send(block).is_err() {
                        // The merge stopped; it says why.
                        break;
                    }
                }
                Ok::<_, io::Error>(())
            }));
        }
        let mut next = 0usize;
        let stream = spill::Stream::new(move |used: Block| {
            if let Some(give_back) = next.checked_sub(1).map(|w| &spares[w % producers]) {
                let _ = give_back.try_send(used);
            }
            if next == windows.len() {
                return None;
            }
            let block = blocks[next % producers].recv().ok()?;
            next += 1;
            Some(block)
        });
        let merged = spill::merge_stream(spills, stream, path, at);
        // A thread's error first: the merge ends early without its blocks.
        for thread in threads {
            thread
                .join()
                .map_err(|_| io::Error::other("reading rows back for mismatches.csv panicked"))??;
        }
        merged
    })
}

/// Reads back the rows of `mismatches` (in file order, at `places`; each row once) from one
/// side's files, and gives `sink` their lines.
fn read_side(
    places: Vec<u64>,
    mismatches: impl Iterator<Item = Mismatch>,
    (paths, kinds): (&[PathBuf], &[JobKind]),
    format: &CarrierFormat,
    index: &[Index],
    sink: &mut impl LineSink,
) -> io::Result<()> {
    let mut along = mismatches;
    let mut failed = Ok(());
    visit_texts(places, (paths, kinds), format, |text| {
        let Some(m) = along.next() else { return };
        let teams = (m.teams != NO_ROW).then(|| row_of(index, m.teams));
        if failed.is_ok() {
            failed = sink.push_line(key(&m, index), |out| format_line(out, &m, teams, &text));
        }
    })?;
    failed
}

/// Calls `visit` with the text of the row at each of `places` ([`source::pack_source`]s of
/// one side's files, ascending), in that order, each file read once.
pub(crate) fn visit_texts(
    mut places: Vec<u64>,
    (paths, kinds): (&[PathBuf], &[JobKind]),
    format: &CarrierFormat,
    mut visit: impl FnMut(Text<'_>),
) -> io::Result<()> {
    for group in places.chunk_by_mut(|a, b| unpack_source(*a).0 == unpack_source(*b).0) {
        let file = usize::from(unpack_source(group[0]).0);
        for place in group.iter_mut() {
            *place = unpack_source(*place).1;
        }
        let (path, kind) = (&paths[file], &kinds[file]);
        let json = matches!(kind, JobKind::Teams(TeamsShape::Json));
        let mut k = 0;
        let mut table = [0; _];
        visit_offsets(path, group, json, |offset, bytes| {
            while k < group.len() && group[k] == offset {
                k += 1;
                visit(match kind {
                    JobKind::Teams(shape) => Text::teams(shape, bytes, &mut table),
                    JobKind::Carrier(columns) => Text::carrier(format, columns, bytes, &mut table),
                });
            }
        })?;
    }
    Ok(())
}

/// The line of `mismatches.csv` for a mismatch, its Teams row (when it has one) and its text,
/// appended to `out`.
fn format_line(out: &mut Vec<u8>, m: &Mismatch, teams: Option<&TeamsRow>, text: &Text<'_>) {
    {
        let carrier = m.class != Class::Missing;
        out.extend_from_slice(m.class.as_str().as_bytes());
        out.push(b',');
        if m.billed_differs {
            out.extend_from_slice(b"yes");
        }
        match text {
            Text::Plain(fields) => {
                for field in fields {
                    out.push(b',');
                    out.extend_from_slice(field);
                }
            }
            Text::Described((id, calling, called)) => {
                for text in [id, calling, called] {
                    out.push(b',');
                    push_field(out, text);
                }
            }
        }
        out.push(b',');
        if let Some(t) = teams {
            push_rfc3339(out, t.start);
            out.push(b',');
            push_rfc3339(out, t.start + t.measured);
            out.push(b',');
            push_ms(out, t.measured);
            out.push(b',');
            if let Some(billed) = t.billed() {
                push_int(out, i64::from(billed));
            }
            out.push(b',');
            out.extend_from_slice(match t.duration_source() {
                DurationSource::Operator => b"operator",
                DurationSource::Microsoft => b"microsoft",
                DurationSource::Unknown => b"",
            });
        } else {
            out.extend_from_slice(b",,,,");
        }
        out.push(b',');
        if carrier {
            push_rfc3339(out, m.connect);
            out.push(b',');
            push_rfc3339(out, m.connect + m.duration);
            out.push(b',');
            push_ms(out, m.duration);
        } else {
            out.extend_from_slice(b",,");
        }
        out.push(b',');
        if let Some(t) = teams
            && carrier
        {
            push_ms(out, m.duration - t.measured);
        }
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_are_written_as_decimal_text_writes_them() {
        let reference = |ns: Nanos| {
            let abs = ns.unsigned_abs();
            let sign = if ns < 0 { "-" } else { "" };
            let fraction = format!("{:06}", abs % 1_000_000);
            let fraction = fraction.trim_end_matches('0');
            let dot = if fraction.is_empty() { "" } else { "." };
            format!("{sign}{}{dot}{fraction}", abs / 1_000_000)
        };
        let mut x: i64 = 0x5851_f42d_4c95_7f2d;
        for i in 0..20_000 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let ns = x >> (i % 64);
            assert_eq!(format_ms(ns), reference(ns), "{ns}");
        }
        for ns in [0, 1, -1, 10, 1_000_000, 999_999, i64::MIN, i64::MAX] {
            assert_eq!(format_ms(ns), reference(ns), "{ns}");
        }
    }

    /// A line's `mismatches.csv` line, from its text.
    fn line_of(text: &Text<'_>) -> Vec<u8> {
        let m = Mismatch {
            class: Class::Unexpected,
            billed_differs: false,
            teams: NO_ROW,
            connect: 1_000_000_123,
            duration: 61_250_000_000,
            source: 0,
        };
        let mut out = Vec::new();
        format_line(&mut out, &m, None, text);
        out
    }

    /// Rows of `width` fields separated by `delimiter`, each field one of a set of plain and
    /// awkward texts (quotes, delimiters, `\r`, non-ASCII, invalid UTF-8, empty), some rows
    /// short, with each line end (and none), followed by another line or not.
    fn awkward_rows(width: usize, delimiter: u8) -> Vec<Vec<u8>> {
        let d = delimiter as char;
        let variants: Vec<Vec<u8>> = [
            "c-0f1e".to_owned(),
            "+14255550100".to_owned(),
            String::new(),
            "a b".to_owned(),
            "café".to_owned(),
            "\"q,\"\"x\"\"\"".to_owned(),
            "\"plain\"".to_owned(),
            "a\rb".to_owned(),
            "a,b".to_owned(),
            format!("x{d}y"),
        ]
        .into_iter()
        .map(String::into_bytes)
        .chain([b"\xffz".to_vec()])
        .collect();
        let mut rows = Vec::new();
        for r in 0..600usize {
            let fields = width - (r % 7).min(width) * usize::from(r % 5 == 0);
            let mut row = Vec::new();
            for i in 0..fields {
                if i > 0 {
                    row.push(delimiter);
                }
                // Most fields plain, each awkward one in turn in each column.
                let v = if (r + i) % 4 == 0 {
                    (r / 4 + i) % variants.len()
                } else {
                    r % 2
                };
                row.extend_from_slice(&variants[v]);
            }
            row.extend_from_slice([&b"\n"[..], b"\r\n", b""][r % 3]);
            if r % 2 == 0 {
                row.extend_from_slice(b"next,line\n");
            }
            rows.push(row);
        }
        rows
    }

    /// The fast path of [`Text`] (the file's bytes copied) writes what the `describe`
    /// functions' text writes, for Teams' CSV and the carrier's formats, and is taken for
    /// plain rows.
    #[test]
    fn plain_fields_are_written_as_described() {
        let header = b"id,callId,userPrincipalName,startDateTime,endDateTime,duration,charge,callType,currency,calleeNumber,callerNumber,operator,callDurationSource";
        let shape = TeamsShape::Csv(teams::CsvColumns::from_header(header).unwrap());
        same_lines(
            &awkward_rows(13, b','),
            |row| Text::teams(&shape, row, &mut [0; _]),
            |row| Text::Described(teams::describe(&shape, row)),
        );
        let formats = [
            (
                super::super::format::OC_HARNESS_FORMAT,
                &b"call_id,calling_number,called_number,connect_time,end_time,duration_ms"[..],
            ),
            (
                include_str!("../../../docs/carrier-formats/example-sbc.toml"),
                b"SessionId;Caller;Callee;Connect;Disconnect;Duration;Charge EUR",
            ),
        ];
        for (toml, header) in formats {
            let format = super::super::format::parse(toml, "format.toml").unwrap();
            let columns = CarrierColumns::resolve(&format, Some(header)).unwrap();
            let width = header.iter().filter(|&&b| b == format.delimiter).count() + 1;
            same_lines(
                &awkward_rows(width, format.delimiter),
                |row| Text::carrier(&format, &columns, row, &mut [0; _]),
                |row| Text::Described(carrier::describe(&format, &columns, row)),
            );
        }
    }

    /// Each row's line from `fast` is its line from `general`, and `fast` copied the fields of
    /// some rows but not of all.
    fn same_lines(
        rows: &[Vec<u8>],
        fast: impl for<'a> Fn(&'a [u8]) -> Text<'a>,
        general: impl for<'a> Fn(&'a [u8]) -> Text<'a>,
    ) {
        let mut plain = 0;
        for row in rows {
            let fast = fast(row);
            plain += usize::from(matches!(fast, Text::Plain(_)));
            assert_eq!(
                line_of(&fast),
                line_of(&general(row)),
                "{:?}",
                String::from_utf8_lossy(row)
            );
        }
        assert!(
            plain > 50 && plain < rows.len(),
            "{plain} of {}",
            rows.len()
        );
    }

    #[test]
    fn milliseconds_are_exact() {
        assert_eq!(format_ms(61_250_000_000), "61250");
        assert_eq!(format_ms(61_250_500_000), "61250.5");
        assert_eq!(format_ms(-100), "-0.0001");
        assert_eq!(format_ms(0), "0");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"x\""), "\"say \"\"x\"\"\"");
    }
}
