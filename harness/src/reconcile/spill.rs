//! The lines of `mismatches.csv` put in time order in bounded memory: lines come in any order,
//! in blocks; a block past its budget is sorted and written to a temporary file in the output
//! folder as a run, and the runs (with what is still in memory) are merged at the end. So
//! memory holds a budget's worth of lines per producer, however many mismatches there are.
//! Lines that come in key order already (a [`Stream`]) are merged with them as they come.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::collections::binary_heap::PeekMut;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::direct::{self, Aligned, DirectReader, DirectWriter, Edges};
use super::figures::Class;
use super::text::Nanos;

/// How many bytes of lines a producer holds before it sorts them and writes them out as a run.
/// Runs go around the page cache ([`super::direct`]), so a run written costs the disk's time
/// more than the CPU's, and on the benchmark's virtual machine fresh memory costs more than
/// the disk: on the 10 M benchmark files, 8 MiB peaked at 740 to 760 MiB against 773 to 800
/// MiB for 32 MiB, with 186,000 to 191,000 page faults against 194,000 to 201,000 (system time
/// 1.18 to 1.26 s against 1.21 to 2.28 s), and was faster in 8 of 10 alternating pairs over
/// two batches; holding every line (no run) was slower than 32 MiB, and 160 to 180 MiB more at
/// the peak.
pub(crate) const SPILL_BYTES: usize = 8 << 20;

/// Where a line goes in `mismatches.csv`: its time (Teams' start, or the carrier's connect
/// time without a Teams row), its class, then its Teams row's and its carrier row's places in
/// their files (`u64::MAX` without one). No two lines have the same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Key {
    pub(crate) at: Nanos,
    pub(crate) class: Class,
    pub(crate) teams: u64,
    pub(crate) carrier: u64,
}

/// Room kept past a producer's budget for the line that crosses it (a longer line grows the
/// block).
const LINE_ROOM: usize = 64 << 10;

/// A record of a run: the key, the line's length, the line.
const RECORD_HEAD: usize = 8 + 1 + 8 + 8 + 4;

impl Key {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.at.to_le_bytes());
        out.push(self.class as u8);
        out.extend_from_slice(&self.teams.to_le_bytes());
        out.extend_from_slice(&self.carrier.to_le_bytes());
    }

    fn decode(bytes: &[u8; RECORD_HEAD]) -> io::Result<(Self, usize)> {
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(b)
        };
        let class = match bytes[8] {
            0 => Class::Matched,
            1 => Class::Drift,
            2 => Class::Missing,
            3 => Class::Unexpected,
            _ => return Err(io::Error::other("a spilled run of mismatches is corrupt")),
        };
        let mut len = [0u8; 4];
        len.copy_from_slice(&bytes[25..29]);
        Ok((
            Self {
                at: u64_at(0) as i64,
                class,
                teams: u64_at(9),
                carrier: u64_at(17),
            },
            u32::from_le_bytes(len) as usize,
        ))
    }
}

/// Lines in the order they were added: their keys and where each is in `text`.
#[derive(Debug, Default)]
pub(crate) struct Block {
    keys: Vec<(Key, u32, u32)>,
    text: Vec<u8>,
}

impl Block {
    /// Adds a line: `write` appends it (with its line end) to the text.
    pub(crate) fn push(&mut self, key: Key, write: impl FnOnce(&mut Vec<u8>)) {
        let start = self.text.len();
        write(&mut self.text);
        self.keys.push((key, start as u32, self.text.len() as u32));
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// Room for `more` bytes of text: when it has not, room for a producer's whole `budget` at
    /// once (and a line past it, which the spill that follows takes out). Grown by doubling, a
    /// block was copied at every step, into fresh memory at every size it passed through: on
    /// the benchmark files, 8,000 to 18,000 more page faults and 30 to 70 MB more at the peak.
    /// Reserved, untouched room costs nothing until it is written.
    fn room(&mut self, budget: usize, more: usize) {
        if self.text.len() + more <= self.text.capacity() {
            return;
        }
        let want = (budget + LINE_ROOM).max(self.text.len() + more);
        self.text.reserve_exact(want - self.text.len());
        // Keys for lines of 128 bytes and more (a key takes 40).
        let keys = want / 128;
        if keys > self.keys.capacity() {
            self.keys.reserve_exact(keys - self.keys.len());
        }
    }

    /// The bytes held, text and keys.
    fn bytes(&self) -> usize {
        self.text.len() + self.keys.len() * std::mem::size_of::<(Key, u32, u32)>()
    }

    /// Puts the lines in key order.
    fn sort(&mut self) {
        self.keys.sort_unstable_by_key(|&(key, _, _)| key);
    }

    /// The lines in their order: (key, line).
    fn lines(&self) -> impl Iterator<Item = (Key, &[u8])> {
        self.keys
            .iter()
            .map(|&(key, start, end)| (key, &self.text[start as usize..end as usize]))
    }

    fn clear(&mut self) {
        self.keys.clear();
        self.text.clear();
    }
}

/// Where lines read back go: a producer's [`Spill`], or a [`Block`] that a [`Stream`] takes.
pub(crate) trait LineSink {
    /// Adds a line (see [`Block::push`]).
    fn push_line(&mut self, key: Key, write: impl FnOnce(&mut Vec<u8>)) -> io::Result<()>;
}

impl LineSink for Block {
    fn push_line(&mut self, key: Key, write: impl FnOnce(&mut Vec<u8>)) -> io::Result<()> {
        self.push(key, write);
        Ok(())
    }
}

impl LineSink for Spill {
    fn push_line(&mut self, key: Key, write: impl FnOnce(&mut Vec<u8>)) -> io::Result<()> {
        self.push(key, write)
    }
}

/// The temporary file of one producer's runs; removed when dropped.
struct RunFile {
    path: PathBuf,
    /// Appending runs; `None` once finished (a later run opens another from the end).
    writer: Option<DirectWriter>,
}

impl Drop for RunFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// One producer's lines: a block in memory, and the runs written out so far.
pub(crate) struct Spill {
    dir: PathBuf,
    name: String,
    budget: usize,
    block: Block,
    file: Option<RunFile>,
    /// (offset, length) of each run in the file.
    runs: Vec<(u64, u64)>,
    /// Each run's every [`STRIDE`]th record, from its first: its key, its offset in the file
    /// and the bytes of the lines before it in the run (to cut the merge by key).
    marks: Vec<Vec<Mark>>,
    written: u64,
    lines: u64,
}

impl Spill {
    /// A producer whose runs go to `dir/.mismatches-NAME.tmp`, sorted and written out once
    /// `budget` bytes of lines are held.
    pub(crate) fn new(dir: &Path, name: &str, budget: usize) -> Self {
        Self {
            dir: dir.to_owned(),
            name: name.to_owned(),
            budget: budget.max(1),
            block: Block::default(),
            file: None,
            runs: Vec::new(),
            marks: Vec::new(),
            written: 0,
            lines: 0,
        }
    }

    /// Adds a line (see [`Block::push`]).
    pub(crate) fn push(&mut self, key: Key, write: impl FnOnce(&mut Vec<u8>)) -> io::Result<()> {
        // Places in the text are 32-bit: a block far past any budget goes out first.
        if self.block.text.len() > (u32::MAX >> 1) as usize {
            self.spill()?;
        }
        self.block.room(self.budget, LINE_ROOM);
        self.block.push(key, write);
        self.lines += 1;
        self.spill_if_full()
    }

    /// Adds the lines of a block, which is left empty.
    pub(crate) fn add(&mut self, block: &mut Block) -> io::Result<()> {
        self.lines += block.len() as u64;
        // Taken whole only when it is the larger: the caller drops the block it is left
        // with, and a grown block dropped is fresh memory to clear when it grows again.
        if self.block.keys.is_empty() && self.block.text.capacity() < block.text.capacity() {
            std::mem::swap(&mut self.block, block);
        } else {
            // Places in the text are 32-bit: a block far past any budget goes out first.
            if self.block.text.len() + block.text.len() > u32::MAX as usize {
                self.spill()?;
            }
            self.block.room(self.budget, block.text.len());
            let base = self.block.text.len() as u32;
            self.block.keys.extend(
                block
                    .keys
                    .iter()
                    .map(|&(key, start, end)| (key, base + start, base + end)),
            );
            self.block.text.extend_from_slice(&block.text);
        }
        block.clear();
        self.spill_if_full()
    }

    fn spill_if_full(&mut self) -> io::Result<()> {
        if self.block.bytes() >= self.budget {
            self.spill()?;
        }
        Ok(())
    }

    /// Sorts the block and writes it out as a run.
    fn spill(&mut self) -> io::Result<()> {
        if self.block.keys.is_empty() {
            return Ok(());
        }
        if self.file.is_none() {
            let path = self.dir.join(format!(".mismatches-{}.tmp", self.name));
            File::create(&path)?;
            self.file = Some(RunFile { path, writer: None });
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        if file.writer.is_none() {
            file.writer = Some(DirectWriter::new(&file.path, self.written, 1 << 20, true)?);
        }
        let Some(writer) = file.writer.as_mut() else {
            return Ok(());
        };
        let start = self.written;
        let mut head = Vec::with_capacity(RECORD_HEAD);
        self.block.sort();
        let mut marks = Vec::with_capacity(self.block.len().div_ceil(STRIDE));
        let mut before = 0;
        for (k, (key, line)) in self.block.lines().enumerate() {
            if k % STRIDE == 0 {
                marks.push(Mark {
                    key,
                    at: self.written,
                    before,
                });
            }
            before += line.len() as u64;
            head.clear();
            key.encode(&mut head);
            head.extend_from_slice(&(line.len() as u32).to_le_bytes());
            writer.write_all(&head)?;
            writer.write_all(line)?;
            self.written += (head.len() + line.len()) as u64;
        }
        self.runs.push((start, self.written - start));
        self.marks.push(marks);
        self.block.clear();
        Ok(())
    }

    /// Makes the lines ready to merge, on the producer's thread: sorted, and when runs were
    /// written, the rest written too (so that every source but an in-memory block is a run)
    /// and the file flushed.
    pub(crate) fn finish(&mut self) -> io::Result<()> {
        if !self.runs.is_empty() {
            self.spill()?;
        }
        if let Some(file) = self.file.as_mut()
            && let Some(writer) = file.writer.take()
        {
            direct::write_edges(&file.path, writer.finish()?)?;
        }
        self.block.sort();
        Ok(())
    }
}

/// How many records of a run (or lines of a block) apart the places are that the merge may be
/// cut at.
const STRIDE: usize = 1024;

/// A record of a run where the merge may be cut.
#[derive(Debug, Clone, Copy)]
struct Mark {
    key: Key,
    /// Its offset in the file.
    at: u64,
    /// The bytes of the lines before it in its run.
    before: u64,
}

/// One run of a file, read through a buffer of its own at its own offsets: every run of a file
/// (in every merging thread) shares one handle, so the number of runs is not limited by the
/// open files allowed.
struct RunReader<'a> {
    file: &'a DirectReader,
    /// The next byte of the file to buffer, and the end of the run.
    pos: u64,
    end: u64,
    buffer: Aligned,
    /// The buffered bytes of the run still to read: `buffer.filled()[at..stop]`.
    at: usize,
    stop: usize,
}

impl<'a> RunReader<'a> {
    fn new(file: &'a DirectReader, (pos, end): (u64, u64), buffer: usize) -> Self {
        Self {
            file,
            pos,
            end,
            buffer: Aligned::new(buffer),
            at: 0,
            stop: 0,
        }
    }
}

impl Read for RunReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.at == self.stop {
            let want = self.end.saturating_sub(self.pos);
            if want == 0 {
                return Ok(0);
            }
            let skip = self.file.read_at(&mut self.buffer, self.pos)?;
            let got = ((self.buffer.filled().len() - skip) as u64).min(want) as usize;
            if got == 0 {
                return Err(io::Error::other("a spilled run of mismatches ends early"));
            }
            self.pos += got as u64;
            (self.at, self.stop) = (skip, skip + got);
        }
        let n = out.len().min(self.stop - self.at);
        out[..n].copy_from_slice(&self.buffer.filled()[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Where the merge takes its next line from.
enum Source<'a> {
    /// A sorted block, its next line and the end of its lines to merge.
    Memory(&'a Block, usize, usize),
    Run {
        reader: RunReader<'a>,
        next: Option<(Key, Vec<u8>)>,
    },
    Stream(Stream<'a>),
}

/// Lines that come in key order, a block at a time, while they are merged: made on other
/// threads as the file is written, never held whole nor written out as runs.
pub(crate) struct Stream<'a> {
    block: Block,
    next: usize,
    /// Gives the next block, handed the one used (emptied); `None` after the last.
    pull: Box<dyn FnMut(Block) -> Option<Block> + Send + 'a>,
    /// The key of the line written last, to refuse a line that would break the order.
    last: Option<Key>,
    /// How many lines were written.
    written: u64,
}

impl<'a> Stream<'a> {
    pub(crate) fn new(pull: impl FnMut(Block) -> Option<Block> + Send + 'a) -> Self {
        Self {
            block: Block::default(),
            next: 0,
            pull: Box::new(pull),
            last: None,
            written: 0,
        }
    }

    /// The next line's key, the next block pulled when this one is used up.
    fn key(&mut self) -> Option<Key> {
        while self.next == self.block.len() {
            let mut used = std::mem::take(&mut self.block);
            used.clear();
            self.block = (self.pull)(used)?;
            self.next = 0;
        }
        Some(self.block.keys[self.next].0)
    }

    fn write_next(&mut self, out: &mut impl Write) -> io::Result<()> {
        let Some(key) = self.key() else {
            return Ok(());
        };
        if self.last.is_some_and(|last| last >= key) {
            return Err(io::Error::other(
                "the lines of mismatches.csv came out of order (a bug: please report it)",
            ));
        }
        self.last = Some(key);
        let (_, start, end) = self.block.keys[self.next];
        out.write_all(&self.block.text[start as usize..end as usize])?;
        self.next += 1;
        self.written += 1;
        Ok(())
    }
}

impl Source<'_> {
    fn key(&mut self) -> Option<Key> {
        match self {
            Self::Memory(block, next, end) => block
                .keys
                .get(*next)
                .filter(|_| *next < *end)
                .map(|&(key, _, _)| key),
            Self::Run { next, .. } => next.as_ref().map(|(key, _)| *key),
            Self::Stream(stream) => stream.key(),
        }
    }

    /// Writes the current line and moves to the next.
    fn write_next(&mut self, out: &mut impl Write) -> io::Result<()> {
        match self {
            Self::Memory(block, next, end) => {
                if let Some(&(_, start, end)) = block.keys.get(*next).filter(|_| *next < *end) {
                    out.write_all(&block.text[start as usize..end as usize])?;
                    *next += 1;
                }
            }
            Self::Run { reader, next } => {
                if let Some((_, line)) = next.take() {
                    out.write_all(&line)?;
                    *next = read_record(reader, line)?;
                }
            }
            Self::Stream(stream) => stream.write_next(out)?,
        }
        Ok(())
    }
}

/// The next record of a run, read into `line`'s memory; `None` at its end.
fn read_record(reader: &mut impl Read, mut line: Vec<u8>) -> io::Result<Option<(Key, Vec<u8>)>> {
    let mut head = [0u8; RECORD_HEAD];
    match reader.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let (key, len) = Key::decode(&head)?;
    line.clear();
    line.resize(len, 0);
    reader.read_exact(&mut line)?;
    Ok(Some((key, line)))
}

/// Where the merge of one source is cut: the place of its first line at or past a key (an
/// index in a block, an offset in a run's file), and the bytes of its lines before it.
#[derive(Debug, Clone, Copy, Default)]
struct Cut {
    at: u64,
    before: u64,
}

/// The first line at or past `key` of a sorted block.
fn cut_block(block: &Block, key: Key) -> Cut {
    let at = block.keys.partition_point(|&(k, _, _)| k < key);
    let before = block.keys[..at]
        .iter()
        .map(|&(_, start, end)| u64::from(end - start))
        .sum();
    Cut {
        at: at as u64,
        before,
    }
}

/// The first record at or past `key` of a run (`start..end` of `file`, marked by `marks`):
/// from the last mark before it, read along.
fn cut_run(
    file: &DirectReader,
    (start, end): (u64, u64),
    marks: &[Mark],
    key: Key,
) -> io::Result<Cut> {
    let from = marks.partition_point(|m| m.key < key);
    let mut cut = match from.checked_sub(1).map(|i| marks[i]) {
        Some(mark) => Cut {
            at: mark.at,
            before: mark.before,
        },
        None => {
            return Ok(Cut {
                at: start,
                before: 0,
            });
        }
    };
    let mut reader = RunReader::new(file, (cut.at, end), 64 << 10);
    let mut line = Vec::new();
    while let Some((k, read)) = read_record(&mut reader, line)? {
        if k >= key {
            break;
        }
        cut.at += (RECORD_HEAD + read.len()) as u64;
        cut.before += read.len() as u64;
        line = read;
    }
    Ok(cut)
}

/// Writes the lines of every producer (each [`Spill::finish`]ed) to `path` from byte `offset`
/// on, in key order, on `parts` threads: the keys cut into ranges of about as many lines
/// each, a range's place in the file known beforehand from the lengths of the lines before
/// it (so that each thread writes its own part at once). The file is what one merge would
/// write, whatever `parts`: no two lines have the same key. How many lines.
pub(crate) fn merge(
    mut spills: Vec<Spill>,
    path: &Path,
    offset: u64,
    parts: usize,
) -> io::Result<u64> {
    let lines = spills.iter().map(|s| s.lines).sum();
    for spill in &mut spills {
        // (Sorted already when the producer finished it: then a pass that finds it so.)
        spill.finish()?;
    }
    let handles = open_runs(&spills)?;
    // The keys to cut at: of every STRIDEth line of each source, as many apart.
    let mut samples: Vec<Key> = Vec::new();
    for spill in &spills {
        samples.extend(spill.marks.iter().flatten().map(|m| m.key));
        samples.extend(spill.block.keys.iter().step_by(STRIDE).map(|&(k, _, _)| k));
    }
    samples.sort_unstable();
    let parts = parts.clamp(1, samples.len().max(1));
    let mut bounds: Vec<Key> = (1..parts)
        .map(|p| samples[p * samples.len() / parts])
        .collect();
    bounds.dedup();
    // Each source's cut at each bound, after its start: (block cuts, run cuts) by bound.
    let mut cuts: Vec<Vec<Cut>> = Vec::with_capacity(bounds.len());
    for &key in &bounds {
        let mut at_key = Vec::new();
        for (spill, handle) in spills.iter().zip(&handles) {
            if let Some(file) = handle {
                for (&run, marks) in spill.runs.iter().zip(&spill.marks) {
                    at_key.push(cut_run(file, (run.0, run.0 + run.1), marks, key)?);
                }
            }
            at_key.push(cut_block(&spill.block, key));
        }
        cuts.push(at_key);
    }
    let (firsts, lasts) = ends(&spills, &handles);
    let buffer = run_buffer(&spills, bounds.len() + 1);
    let ranges: Vec<(&[Cut], &[Cut])> = std::iter::once(&firsts)
        .chain(&cuts)
        .zip(cuts.iter().chain(std::iter::once(&lasts)))
        .map(|(from, to)| (from.as_slice(), to.as_slice()))
        .collect();
    let edges = std::thread::scope(|scope| {
        let threads: Vec<_> = ranges
            .iter()
            .map(|&(from, to)| {
                let at = offset + from.iter().map(|c| c.before).sum::<u64>();
                let (spills, handles) = (&spills, &handles);
                scope.spawn(move || {
                    merge_part((spills, handles), (from, to), None, (path, at), buffer)
                        .map(|(edges, _)| edges)
                })
            })
            .collect();
        let mut edges = Edges::default();
        for thread in threads {
            edges.extend(
                thread
                    .join()
                    .map_err(|_| io::Error::other("merging mismatches.csv panicked"))??,
            );
        }
        Ok::<_, io::Error>(edges)
    })?;
    direct::write_edges(path, edges)?;
    Ok(lines)
}

/// [`merge`] on this thread, in one part, with the lines of `stream` besides the producers':
/// the file is written from its start as the stream's lines come, so that they need neither
/// memory nor runs.
pub(crate) fn merge_stream(
    mut spills: Vec<Spill>,
    stream: Stream<'_>,
    path: &Path,
    offset: u64,
) -> io::Result<u64> {
    let lines = spills.iter().map(|s| s.lines).sum::<u64>();
    for spill in &mut spills {
        spill.finish()?;
    }
    let handles = open_runs(&spills)?;
    let (firsts, lasts) = ends(&spills, &handles);
    let buffer = run_buffer(&spills, 1);
    let (edges, streamed) = merge_part(
        (&spills, &handles),
        (&firsts, &lasts),
        Some(stream),
        (path, offset),
        buffer,
    )?;
    direct::write_edges(path, edges)?;
    Ok(lines + streamed)
}

/// The sources' starts and ends, in the order that [`merge_part`] takes its sources.
fn ends(spills: &[Spill], handles: &[Option<DirectReader>]) -> (Vec<Cut>, Vec<Cut>) {
    let mut firsts = Vec::new();
    let mut lasts = Vec::new();
    for (spill, handle) in spills.iter().zip(handles) {
        if handle.is_some() {
            for &(start, len) in &spill.runs {
                firsts.push(Cut {
                    at: start,
                    before: 0,
                });
                lasts.push(Cut {
                    at: start + len,
                    before: 0,
                });
            }
        }
        firsts.push(Cut::default());
        lasts.push(Cut {
            at: spill.block.len() as u64,
            before: 0,
        });
    }
    (firsts, lasts)
}

/// The read buffer of each run in a merge cut into `parts`: about one budget shared between
/// the runs of all parts.
fn run_buffer(spills: &[Spill], parts: usize) -> usize {
    let runs: usize = spills.iter().map(|s| s.runs.len()).sum();
    (SPILL_BYTES / (runs * parts).max(1)).clamp(64 << 10, 1 << 20)
}

/// A handle on each producer's file of runs (`None` for one without).
fn open_runs(spills: &[Spill]) -> io::Result<Vec<Option<DirectReader>>> {
    spills
        .iter()
        .map(|spill| {
            spill
                .file
                .as_ref()
                .map(|f| DirectReader::open(&f.path, true))
                .transpose()
        })
        .collect()
}

/// Merges the lines of each source from its cut in `from` to its cut in `to`, and those of
/// `stream`, into `path` at byte `at`; the edges left to write, and how many lines came from
/// the stream.
fn merge_part<'a>(
    (spills, handles): (&'a [Spill], &'a [Option<DirectReader>]),
    (from, to): (&[Cut], &[Cut]),
    stream: Option<Stream<'a>>,
    (path, at): (&Path, u64),
    buffer: usize,
) -> io::Result<(Edges, u64)> {
    let mut sources: Vec<Source<'_>> = Vec::new();
    let mut k = 0;
    for (spill, handle) in spills.iter().zip(handles) {
        if let Some(file) = handle {
            for _ in &spill.runs {
                let mut reader = RunReader::new(file, (from[k].at, to[k].at), buffer);
                let next = read_record(&mut reader, Vec::new())?;
                sources.push(Source::Run { reader, next });
                k += 1;
            }
        }
        sources.push(Source::Memory(
            &spill.block,
            from[k].at as usize,
            to[k].at as usize,
        ));
        k += 1;
    }
    sources.extend(stream.map(Source::Stream));
    let mut out = DirectWriter::new(path, at, 1 << 20, true)?;
    let mut heap: BinaryHeap<Reverse<(Key, usize)>> = BinaryHeap::with_capacity(sources.len());
    for (i, source) in sources.iter_mut().enumerate() {
        if let Some(key) = source.key() {
            heap.push(Reverse((key, i)));
        }
    }
    // The first source's next key replaces its last in place: one sift, not a pop and a push.
    while let Some(mut first) = heap.peek_mut() {
        let i = first.0.1;
        let source = &mut sources[i];
        source.write_next(&mut out)?;
        match source.key() {
            Some(key) => first.0 = (key, i),
            None => {
                PeekMut::pop(first);
            }
        }
    }
    let streamed = sources
        .iter()
        .map(|source| match source {
            Source::Stream(stream) => stream.written,
            _ => 0,
        })
        .sum();
    Ok((out.finish()?, streamed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(at: i64, carrier: u64) -> Key {
        Key {
            at,
            class: if at % 2 == 0 {
                Class::Drift
            } else {
                Class::Unexpected
            },
            teams: u64::MAX,
            carrier,
        }
    }

    /// Lines from three producers, in a scrambled order, merged whatever the budget and however
    /// many parts the merge is cut into: the same bytes as sorting them all in memory, after
    /// what the file held, and no temporary file left behind.
    #[test]
    fn runs_merge_into_key_order_whatever_the_budget() {
        let dir = std::env::temp_dir().join(format!("oc-reconcile-spill-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let lines: Vec<(Key, String)> = (0..3000u64)
            .map(|i| {
                let at = (i * 7919 % 1009) as i64 - 300;
                (
                    key(at, i),
                    format!("line {at} {i} {}\n", "x".repeat((i % 37) as usize)),
                )
            })
            .collect();
        let mut want: Vec<&(Key, String)> = lines.iter().collect();
        want.sort_by_key(|(k, _)| *k);
        let want: String = want.iter().map(|(_, l)| l.as_str()).collect();
        let out = dir.join("out.csv");
        for (budget, parts) in [1, 500, 4096, 1 << 30]
            .into_iter()
            .flat_map(|budget| [1, 2, 3, 8].map(|parts| (budget, parts)))
        {
            let mut spills: Vec<Spill> = ["a", "b", "c"]
                .iter()
                .map(|name| Spill::new(&dir, name, budget))
                .collect();
            for (i, (k, line)) in lines.iter().enumerate() {
                if i % 3 == 2 {
                    // A block of one line, as a parsing thread hands them over.
                    let mut block = Block::default();
                    block.push(*k, |out| out.extend_from_slice(line.as_bytes()));
                    spills[2].add(&mut block).unwrap();
                    assert_eq!(block.len(), 0);
                } else {
                    spills[i % 3]
                        .push(*k, |out| out.extend_from_slice(line.as_bytes()))
                        .unwrap();
                }
            }
            let spilled = spills.iter().any(|s| !s.runs.is_empty());
            assert_eq!(spilled, budget < 1 << 30, "budget {budget}");
            // Some producers finished on their threads, some not.
            spills[0].finish().unwrap();
            std::fs::write(&out, "head\n").unwrap();
            assert_eq!(merge(spills, &out, 5, parts).unwrap(), 3000);
            let got = std::fs::read_to_string(&out).unwrap();
            assert!(
                got == format!("head\n{want}"),
                "budget {budget}, {parts} parts"
            );
            std::fs::remove_file(&out).unwrap();
            let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
            assert!(left.is_empty(), "budget {budget}: {left:?}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Lines in key order, handed over a few at a time in blocks while they are merged with
    /// producers that spilled runs: the same bytes as sorting them all, and the blocks handed
    /// back emptied; a stream whose lines go back in time is refused, not written out of order.
    #[test]
    fn a_stream_in_key_order_merges_with_the_producers() {
        let dir = std::env::temp_dir().join(format!("oc-reconcile-stream-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let line = |k: &Key| format!("line {} {}\n", k.at, k.carrier);
        let produced: Vec<Key> = (0..2000u64)
            .map(|i| key((i * 7919 % 1009) as i64 - 300, i))
            .collect();
        let streamed: Vec<Key> = (0..1500u64)
            .map(|i| key(i as i64 - 200, 5000 + i))
            .collect();
        let mut want: Vec<&Key> = produced.iter().chain(&streamed).collect();
        want.sort();
        let want: String = want.into_iter().map(line).collect();
        let out = dir.join("out.csv");
        for (budget, per_block) in [(1, 1), (500, 7), (1 << 30, 1000)] {
            let mut spills: Vec<Spill> = ["a", "b"]
                .iter()
                .map(|name| Spill::new(&dir, name, budget))
                .collect();
            for (i, k) in produced.iter().enumerate() {
                spills[i % 2]
                    .push(*k, |out| out.extend_from_slice(line(k).as_bytes()))
                    .unwrap();
            }
            let mut blocks = streamed.chunks(per_block);
            let mut handed_back = 0;
            let stream = Stream::new(|used: Block| {
                assert_eq!(used.len(), 0);
                handed_back += 1;
                let mut block = Block::default();
                for k in blocks.next()? {
                    block.push(*k, |out| out.extend_from_slice(line(k).as_bytes()));
                }
                Some(block)
            });
            std::fs::write(&out, "head\n").unwrap();
            assert_eq!(merge_stream(spills, stream, &out, 5).unwrap(), 3500);
            assert_eq!(handed_back, 1500usize.div_ceil(per_block) + 1);
            let got = std::fs::read_to_string(&out).unwrap();
            assert!(got == format!("head\n{want}"), "budget {budget}");
            std::fs::remove_file(&out).unwrap();
            let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
            assert!(left.is_empty(), "budget {budget}: {left:?}");
        }
        let mut blocks = [[key(5, 1)], [key(4, 2)]].into_iter();
        let stream = Stream::new(|_| {
            let mut block = Block::default();
            let [k] = blocks.next()?;
            block.push(k, |out| out.extend_from_slice(line(&k).as_bytes()));
            Some(block)
        });
        std::fs::write(&out, "head\n").unwrap();
        let error = merge_stream(Vec::new(), stream, &out, 5).unwrap_err();
        assert!(error.to_string().contains("out of order"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn keys_read_back_as_written() {
        for k in [key(-5, 0), key(i64::MIN, u64::MAX), key(i64::MAX, 1 << 50)] {
            let mut bytes = Vec::new();
            k.encode(&mut bytes);
            bytes.extend_from_slice(&7u32.to_le_bytes());
            let head: [u8; RECORD_HEAD] = bytes.try_into().unwrap();
            assert_eq!(Key::decode(&head).unwrap(), (k, 7));
        }
        let mut bad = [0u8; RECORD_HEAD];
        bad[8] = 9;
        assert!(Key::decode(&bad).is_err());
    }
}
