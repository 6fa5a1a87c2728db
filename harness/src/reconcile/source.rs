//! Input files as bytes: gzip recognised by its magic bytes (on any file, whatever its name),
//! line-based files cut into chunks of whole lines for the parsing threads, each chunk tagged
//! with its file and byte offset so that a row can be found again, and the rows of a mismatch
//! read back by offset at the end.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use flate2::read::MultiGzDecoder;

/// How much a chunk holds before it is cut at its last line end, bytes. A chunk is copied
/// from the page cache, then parsed, on one core: at 1 MiB it is still in that core's cache
/// when it is parsed. Against 4 MiB, on the 10 M benchmark files (five runs each): 176,000 to
/// 181,000 page faults against 178,000 to 190,000, peak 704 to 721 MiB against 711 to 758.
pub(crate) const CHUNK_BYTES: usize = 1 << 20;

/// Where a row starts: its file's index among the side's files (16 bits) and its byte offset
/// in the file's decompressed content (48 bits).
pub(crate) fn pack_source(file: u16, offset: u64) -> u64 {
    u64::from(file) << 48 | (offset & ((1 << 48) - 1))
}

/// Lists of places ([`pack_source`]s), each ascending, merged into one ascending list: the
/// places, and for each the index of the list it came from (no two lists share a place).
pub(crate) fn merge_places(lists: &[&[u64]]) -> (Vec<u64>, Vec<u32>) {
    let total = lists.iter().map(|list| list.len()).sum();
    let (mut places, mut order) = (Vec::with_capacity(total), Vec::with_capacity(total));
    let mut heads = vec![0; lists.len()];
    loop {
        let next = lists
            .iter()
            .zip(&heads)
            .enumerate()
            .filter_map(|(k, (list, &head))| list.get(head).map(|&place| (place, k)))
            .min();
        let Some((place, k)) = next else { break };
        heads[k] += 1;
        places.push(place);
        // Below 2^32: a partition is named by 32 bits of a `RowRef`.
        order.push(k as u32);
    }
    (places, order)
}

/// The file and offset of a [`pack_source`].
pub(crate) fn unpack_source(source: u64) -> (u16, u64) {
    ((source >> 48) as u16, source & ((1 << 48) - 1))
}

/// Whether a file starts with gzip's magic bytes.
pub(crate) fn is_gzip(path: &Path) -> io::Result<bool> {
    let mut magic = [0u8; 2];
    let mut file = File::open(path)?;
    let mut read = 0;
    while read < 2 {
        match file.read(&mut magic[read..])? {
            0 => break,
            n => read += n,
        }
    }
    Ok(read == 2 && magic == [0x1f, 0x8b])
}

/// A file's content, decompressed when it is gzip: on a thread of its own, a few blocks
/// ahead, so that decompressing (one stream: one core) overlaps the parsing of what it gave.
pub(crate) fn open(path: &Path) -> io::Result<Box<dyn Read + Send>> {
    let gzip = is_gzip(path)?;
    let file = File::open(path)?;
    Ok(if gzip {
        Box::new(ReadAhead::new(MultiGzDecoder::new(
            BufReader::with_capacity(1 << 20, file),
        )))
    } else {
        Box::new(file)
    })
}

/// How much [`ReadAhead`] reads at a time, and how many such blocks it keeps ready.
const AHEAD_BLOCK: usize = 1 << 20;
const AHEAD_BLOCKS: usize = 8;

/// A reader read on a thread of its own, up to [`AHEAD_BLOCKS`] blocks ahead of its consumer.
/// The thread ends at the end of the input, at its first error (handed on in turn), or when
/// the consumer is dropped.
pub(crate) struct ReadAhead {
    blocks: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    /// Used blocks, handed back to be read into again.
    spare: std::sync::mpsc::SyncSender<Vec<u8>>,
    current: Vec<u8>,
    at: usize,
    done: bool,
}

impl ReadAhead {
    pub(crate) fn new(mut inner: impl Read + Send + 'static) -> Self {
        let (tx, blocks) = std::sync::mpsc::sync_channel(AHEAD_BLOCKS);
        let (spare, spares) = std::sync::mpsc::sync_channel::<Vec<u8>>(AHEAD_BLOCKS + 2);
        std::thread::spawn(move || {
            loop {
                let mut block = spares.try_recv().unwrap_or_default();
                block.clear();
                block.reserve(AHEAD_BLOCK);
                let read = (&mut inner)
                    .take(AHEAD_BLOCK as u64)
                    .read_to_end(&mut block);
                match read {
                    Ok(n) => {
                        // An empty block is the end.
                        if tx.send(Ok(block)).is_err() || n == 0 {
                            return;
                        }
                    }
                    Err(e) => {
                        // What was read before the error, then the error.
                        if !block.is_empty() && tx.send(Ok(block)).is_err() {
                            return;
                        }
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
            }
        });
        Self {
            blocks,
            spare,
            current: Vec::new(),
            at: 0,
            done: false,
        }
    }
}

impl Read for ReadAhead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.at == self.current.len() {
            if self.done {
                return Ok(0);
            }
            match self.blocks.recv() {
                Ok(Ok(block)) if block.is_empty() => self.done = true,
                Ok(Ok(block)) => {
                    let used = std::mem::replace(&mut self.current, block);
                    let _ = self.spare.try_send(used);
                    self.at = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(_) => {
                    self.done = true;
                    return Err(io::Error::other("the reading thread stopped"));
                }
            }
        }
        let n = out.len().min(self.current.len() - self.at);
        out[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// A file read as chunks of whole lines.
pub(crate) struct Lines {
    reader: Box<dyn Read + Send>,
    /// Read and not yet handed out, starting at `offset`.
    buffer: Vec<u8>,
    offset: u64,
    eof: bool,
}

impl Lines {
    pub(crate) fn new(reader: Box<dyn Read + Send>) -> Self {
        Self {
            reader,
            buffer: Vec::with_capacity(CHUNK_BYTES),
            offset: 0,
            eof: false,
        }
    }

    /// Reads until the buffer holds `want` bytes or the file ends.
    fn fill(&mut self, want: usize) -> io::Result<()> {
        while !self.eof && self.buffer.len() < want {
            let missing = (want - self.buffer.len()) as u64;
            if (&mut self.reader)
                .take(missing)
                .read_to_end(&mut self.buffer)?
                == 0
            {
                self.eof = true;
            }
        }
        Ok(())
    }

    /// The first bytes (up to `want`), without consuming them: what detection looks at.
    pub(crate) fn peek(&mut self, want: usize) -> io::Result<&[u8]> {
        self.fill(want)?;
        Ok(&self.buffer[..want.min(self.buffer.len())])
    }

    /// Takes the first line (without its line ending), e.g. a CSV header; `None` at the end.
    pub(crate) fn take_line(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut want = 64 << 10;
        loop {
            self.fill(want)?;
            if let Some(end) = memchr::memchr(b'\n', &self.buffer) {
                let line = trim_cr(&self.buffer[..end]).to_vec();
                self.buffer.drain(..=end);
                self.offset += end as u64 + 1;
                return Ok(Some(line));
            }
            if self.eof {
                if self.buffer.is_empty() {
                    return Ok(None);
                }
                let line = trim_cr(&self.buffer).to_vec();
                self.offset += self.buffer.len() as u64;
                self.buffer.clear();
                return Ok(Some(line));
            }
            want = self.buffer.len() * 2;
        }
    }

    /// `next_chunk_reusing` with a new buffer.
    #[cfg(test)]
    pub(crate) fn next_chunk(&mut self) -> io::Result<Option<(u64, Vec<u8>)>> {
        self.next_chunk_reusing(Vec::new())
    }

    /// The next chunk of whole lines and the offset of its first byte; `None` at the end. A
    /// line longer than a chunk makes its chunk longer. What is left over is carried in `spare`
    /// (a chunk handed back once parsed) rather than in a new buffer: a fresh chunk buffer
    /// costs a page fault and a page clear every 4 KiB.
    pub(crate) fn next_chunk_reusing(
        &mut self,
        mut spare: Vec<u8>,
    ) -> io::Result<Option<(u64, Vec<u8>)>> {
        let mut want = CHUNK_BYTES;
        loop {
            self.fill(want)?;
            if self.buffer.is_empty() {
                return Ok(None);
            }
            let cut = if self.eof {
                Some(self.buffer.len())
            } else {
                memchr::memrchr(b'\n', &self.buffer).map(|end| end + 1)
            };
            if let Some(cut) = cut {
                spare.clear();
                spare.reserve(CHUNK_BYTES.max(self.buffer.len() - cut));
                spare.extend_from_slice(&self.buffer[cut..]);
                let mut chunk = std::mem::replace(&mut self.buffer, spare);
                chunk.truncate(cut);
                let offset = self.offset;
                self.offset += cut as u64;
                return Ok(Some((offset, chunk)));
            }
            want = self.buffer.len() * 2;
        }
    }

    /// The next chunk of a JSON file cut between whole top-level items (the pages or rows of a
    /// file of concatenated values, the elements of a top-level array), so that memory holds a
    /// few pages rather than the file; `None` at the end. An item longer than a chunk makes its
    /// chunk longer; a file whose items do not close is one chunk from where they stop closing.
    pub(crate) fn next_json_chunk(
        &mut self,
        cut: &mut JsonCut,
        mut spare: Vec<u8>,
    ) -> io::Result<Option<(u64, Vec<u8>)>> {
        let mut want = CHUNK_BYTES;
        loop {
            self.fill(want)?;
            if self.buffer.is_empty() {
                return Ok(None);
            }
            cut.scan(&self.buffer);
            let at = if self.eof {
                Some(self.buffer.len())
            } else {
                cut.boundary.filter(|&b| b > 0)
            };
            if let Some(at) = at {
                spare.clear();
                spare.reserve(CHUNK_BYTES.max(self.buffer.len() - at));
                spare.extend_from_slice(&self.buffer[at..]);
                let mut chunk = std::mem::replace(&mut self.buffer, spare);
                chunk.truncate(at);
                cut.consumed(at);
                let offset = self.offset;
                self.offset += at as u64;
                return Ok(Some((offset, chunk)));
            }
            want = self.buffer.len() * 2;
        }
    }
}

/// Where a JSON file can be cut: after a top-level item (a value of a file of concatenated
/// values, or an element of a top-level array) and its comma, strings and escapes followed.
#[derive(Debug, Default)]
pub(crate) struct JsonCut {
    /// The nesting depth at which items are: 0, or 1 in a top-level array; `None` before the
    /// first byte that is not white space.
    base: Option<u32>,
    depth: u32,
    in_string: bool,
    escaped: bool,
    /// How far the buffer has been scanned.
    scanned: usize,
    /// The last place to cut in the buffer, just after an item or the comma after it.
    boundary: Option<usize>,
}

impl JsonCut {
    fn scan(&mut self, buffer: &[u8]) {
        for (i, &b) in buffer.iter().enumerate().skip(self.scanned) {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            let base = match self.base {
                Some(base) => base,
                None if b.is_ascii_whitespace() || b == 0xEF || b == 0xBB || b == 0xBF => continue,
                None => {
                    let base = u32::from(b == b'[');
                    self.base = Some(base);
                    if base == 1 {
                        self.depth = 1;
                        continue;
                    }
                    base
                }
            };
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == base {
                        self.boundary = Some(i + 1);
                    }
                }
                b',' if self.depth == base => self.boundary = Some(i + 1),
                _ => {}
            }
        }
        self.scanned = buffer.len();
    }

    /// The first `at` bytes of the buffer were handed out.
    fn consumed(&mut self, at: usize) {
        self.scanned -= at;
        self.boundary = None;
    }
}

/// The lines of a chunk, each with its `\n` (the last one without, when the chunk does not end
/// with one), as `split_inclusive` gives them; line ends found at SIMD speed.
pub(crate) fn lines_inclusive(chunk: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut at = 0;
    let mut ends = memchr::memchr_iter(b'\n', chunk);
    std::iter::from_fn(move || {
        if at >= chunk.len() {
            return None;
        }
        let end = ends.next().map_or(chunk.len(), |e| e + 1);
        let line = &chunk[at..end];
        at = end;
        Some(line)
    })
}

/// A line without its `\r`.
pub(crate) fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// How much of a JSON file [`visit_offsets`] shows past a row's offset: more than a row takes.
const JSON_ROW_BYTES: usize = 1 << 20;

/// Calls `visit(offset, bytes from offset)` for every offset in `offsets` (ascending) of a
/// file: `bytes` holds at least the whole line that starts there when `json` is false, and the
/// next [`JSON_ROW_BYTES`] (or the rest of the file) when it is true. A plain file is read at
/// each offset when they are few, and streamed otherwise (always when it is gzip); a JSON file
/// is streamed, a few chunks in memory at a time.
pub(crate) fn visit_offsets(
    path: &Path,
    offsets: &[u64],
    json: bool,
    mut visit: impl FnMut(u64, &[u8]),
) -> io::Result<()> {
    if offsets.is_empty() {
        return Ok(());
    }
    if json {
        let mut reader = open(path)?;
        // The bytes from `start` on, read and not yet past every offset in them.
        let mut window: Vec<u8> = Vec::new();
        let mut start = 0u64;
        let mut next = 0;
        while next < offsets.len() {
            let eof = (&mut reader)
                .take(CHUNK_BYTES as u64)
                .read_to_end(&mut window)?
                == 0;
            let end = start + window.len() as u64;
            while next < offsets.len()
                && offsets[next] < end
                && (eof || offsets[next] + JSON_ROW_BYTES as u64 <= end)
            {
                visit(offsets[next], &window[(offsets[next] - start) as usize..]);
                next += 1;
            }
            if eof {
                break;
            }
            let keep = offsets.get(next).map_or(end, |&o| o.clamp(start, end));
            window.drain(..(keep - start) as usize);
            start = keep;
        }
        return Ok(());
    }
    if !is_gzip(path)? {
        return visit_lines_at(path, offsets, visit);
    }
    let mut lines = Lines::new(open(path)?);
    let mut next = 0;
    let mut spare = Vec::new();
    while next < offsets.len() {
        let Some((start, chunk)) = lines.next_chunk_reusing(spare)? else {
            break;
        };
        let end = start + chunk.len() as u64;
        while next < offsets.len() && offsets[next] < end {
            visit(offsets[next], &chunk[(offsets[next] - start) as usize..]);
            next += 1;
        }
        spare = chunk;
    }
    Ok(())
}

/// How much [`visit_lines_at`] reads at a time when the offsets are dense.
const WINDOW_BYTES: usize = 1 << 20;

/// [`visit_offsets`] for a plain (not gzip) line-based file: read at the offsets, in windows
/// that cover as many of the next offsets as fit in [`WINDOW_BYTES`] (so a few offsets read a
/// line or so each, and dense ones read the file once), a window read again, larger, when a
/// line does not end in it.
fn visit_lines_at(
    path: &Path,
    offsets: &[u64],
    mut visit: impl FnMut(u64, &[u8]),
) -> io::Result<()> {
    let mut file = File::open(path)?;
    // The bytes from `start` on; `eof`: the window reaches the end of the file.
    let mut window: Vec<u8> = Vec::new();
    let mut start = 0u64;
    let mut eof = false;
    for (k, &offset) in offsets.iter().enumerate() {
        let mut want = 0;
        loop {
            let end = start + window.len() as u64;
            if offset >= start && offset <= end {
                let from = (offset - start) as usize;
                if eof || memchr::memchr(b'\n', &window[from..]).is_some() {
                    visit(offset, &window[from..]);
                    break;
                }
                // The line goes on past the window: read it again from here, larger.
                want = (2 * (end - offset) as usize).max(2 * want).max(1024);
            } else {
                // Up to the last of the next offsets that fit in a window, and a line past it.
                let last = offsets[k..]
                    .iter()
                    .take_while(|&&o| o - offset < (WINDOW_BYTES - 1024) as u64)
                    .last()
                    .copied()
                    .unwrap_or(offset);
                want = (last - offset) as usize + 1024;
            }
            window.clear();
            file.seek(SeekFrom::Start(offset))?;
            (&mut file).take(want as u64).read_to_end(&mut window)?;
            start = offset;
            eof = window.len() < want;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn temp(name: &str, content: &[u8], gzip: bool) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("oc-reconcile-source-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        if gzip {
            let mut encoder = flate2::write::GzEncoder::new(
                File::create(&path).unwrap(),
                flate2::Compression::fast(),
            );
            encoder.write_all(content).unwrap();
            encoder.finish().unwrap();
        } else {
            std::fs::write(&path, content).unwrap();
        }
        path
    }

    #[test]
    fn chunks_hold_whole_lines_with_their_offsets_plain_or_gzip() {
        let mut content = Vec::new();
        for i in 0..300_000 {
            writeln!(content, "line {i},{}", "x".repeat(i % 40)).unwrap();
        }
        content.extend_from_slice(b"last line without end");
        for gzip in [false, true] {
            let path = temp(
                if gzip { "lines.txt" } else { "lines.gz.txt" },
                &content,
                gzip,
            );
            assert_eq!(is_gzip(&path).unwrap(), gzip);
            let mut lines = Lines::new(open(&path).unwrap());
            assert_eq!(lines.take_line().unwrap().unwrap(), b"line 0,");
            let mut rebuilt = b"line 0,\n".to_vec();
            let mut chunks = 0;
            // Every other chunk is read into the one before it, as the pipeline does.
            let mut spare = Vec::new();
            loop {
                let next = if chunks % 2 == 0 {
                    lines.next_chunk()
                } else {
                    lines.next_chunk_reusing(std::mem::take(&mut spare))
                };
                let Some((offset, chunk)) = next.unwrap() else {
                    break;
                };
                assert_eq!(offset as usize, rebuilt.len());
                assert!(chunk.ends_with(b"\n") || chunk.ends_with(b"end"));
                rebuilt.extend_from_slice(&chunk);
                spare = chunk;
                chunks += 1;
            }
            assert!(chunks > 1);
            assert_eq!(rebuilt, content);
        }
    }

    /// A reader that gives `data` in pieces of 7 bytes, then fails once, if asked to.
    struct Pieces {
        data: Vec<u8>,
        at: usize,
        fail_at_end: bool,
    }

    impl Read for Pieces {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.at == self.data.len() {
                if std::mem::take(&mut self.fail_at_end) {
                    return Err(io::Error::other("disk on fire"));
                }
                return Ok(0);
            }
            let n = out.len().min(7).min(self.data.len() - self.at);
            out[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    #[test]
    fn lines_are_cut_as_split_inclusive_cuts_them() {
        for chunk in [
            &b""[..],
            b"\n",
            b"a",
            b"a\n",
            b"a\nb",
            b"a\n\nb\n",
            b"\n\nx",
        ] {
            let ours: Vec<&[u8]> = lines_inclusive(chunk).collect();
            let std: Vec<&[u8]> = chunk.split_inclusive(|&b| b == b'\n').collect();
            assert_eq!(ours, std, "{chunk:?}");
        }
    }

    #[test]
    fn read_ahead_gives_everything_in_order_then_its_error() {
        let data: Vec<u8> = (0..3 * AHEAD_BLOCK + 12_345)
            .map(|i| (i % 251) as u8)
            .collect();
        for fail_at_end in [false, true] {
            let mut reader = ReadAhead::new(Pieces {
                data: data.clone(),
                at: 0,
                fail_at_end,
            });
            let mut got = Vec::new();
            let mut buffer = [0u8; 4096];
            let error = loop {
                match reader.read(&mut buffer) {
                    Ok(0) => break None,
                    Ok(n) => got.extend_from_slice(&buffer[..n]),
                    Err(e) => break Some(e.to_string()),
                }
            };
            assert_eq!(got.len(), data.len());
            assert!(got == data);
            assert_eq!(error.as_deref(), fail_at_end.then_some("disk on fire"));
            // After the end or the error, the end.
            assert_eq!(reader.read(&mut buffer).unwrap(), 0);
        }
    }

    #[test]
    fn offsets_are_visited_across_windows_and_through_lines_longer_than_one() {
        // Lines of every length up to 3 windows, the longest ones past a window, the last one
        // without a line end; every line visited, and a sparse selection, plain and gzip.
        let mut content = Vec::new();
        let mut lines = Vec::new();
        let mut n = 0u64;
        while content.len() < 5 * WINDOW_BYTES {
            let len = match n % 97 {
                0 => 3 * WINDOW_BYTES + 17,
                1 => WINDOW_BYTES - 1,
                k => (k as usize * 37) % 700,
            };
            let line: Vec<u8> = (0..len)
                .map(|i| b'a' + ((i as u64 + n) % 26) as u8)
                .collect();
            lines.push((content.len() as u64, line.clone()));
            content.extend_from_slice(&line);
            content.push(b'\n');
            n += 1;
        }
        let (last_offset, _) = *lines.last().unwrap();
        content.pop();
        for gzip in [false, true] {
            let path = temp(
                if gzip { "windows.gz" } else { "windows.csv" },
                &content,
                gzip,
            );
            for step in [1, 13, 200] {
                let chosen: Vec<&(u64, Vec<u8>)> = lines.iter().step_by(step).collect();
                let offsets: Vec<u64> = chosen.iter().map(|(o, _)| *o).collect();
                let mut seen = 0;
                visit_offsets(&path, &offsets, false, |offset, bytes| {
                    let (want_offset, want) = chosen[seen];
                    assert_eq!(offset, *want_offset);
                    let end = memchr::memchr(b'\n', bytes);
                    assert_eq!(end.is_none(), offset == last_offset, "at {offset}");
                    assert_eq!(
                        &bytes[..end.unwrap_or(bytes.len())],
                        &want[..],
                        "at {offset}"
                    );
                    seen += 1;
                })
                .unwrap();
                assert_eq!(seen, chosen.len());
            }
        }
    }

    #[test]
    fn offsets_are_visited_in_plain_and_gzip_files() {
        let content = b"a,1\nbb,2\nccc,3\n";
        for gzip in [false, true] {
            let path = temp(if gzip { "visit.gz" } else { "visit.csv" }, content, gzip);
            let mut seen = Vec::new();
            visit_offsets(&path, &[4, 9], false, |offset, bytes| {
                let line = &bytes[..memchr::memchr(b'\n', bytes).unwrap()];
                seen.push((offset, String::from_utf8(line.to_vec()).unwrap()));
            })
            .unwrap();
            assert_eq!(seen, [(4, "bb,2".to_owned()), (9, "ccc,3".to_owned())]);
        }
        assert_eq!(
            unpack_source(pack_source(7, 123_456_789_012)),
            (7, 123_456_789_012)
        );
    }
}
