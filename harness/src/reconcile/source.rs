//! Input files as bytes: gzip recognised by its magic bytes (on any file, whatever its name),
//! line-based files cut into chunks of whole lines for the parsing threads, each chunk tagged
//! with its file and byte offset so that a row can be found again, and the rows of a mismatch
//! read back by offset at the end.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

/// How much a chunk holds before it is cut at its last line end, bytes.
pub(crate) const CHUNK_BYTES: usize = 4 << 20;

/// Where a row starts: its file's index among the side's files (16 bits) and its byte offset
/// in the file's decompressed content (48 bits).
pub(crate) fn pack_source(file: u16, offset: u64) -> u64 {
    u64::from(file) << 48 | (offset & ((1 << 48) - 1))
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

/// A file's content, decompressed when it is gzip.
pub(crate) fn open(path: &Path) -> io::Result<Box<dyn Read + Send>> {
    let gzip = is_gzip(path)?;
    let file = File::open(path)?;
    Ok(if gzip {
        Box::new(MultiGzDecoder::new(BufReader::with_capacity(1 << 20, file)))
    } else {
        Box::new(file)
    })
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
    /// (a chunk handed back once parsed) rather than in a new buffer: a fresh 4 MiB buffer
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

    /// Everything not yet handed out, and its offset.
    pub(crate) fn read_rest(mut self) -> io::Result<(u64, Vec<u8>)> {
        self.reader.read_to_end(&mut self.buffer)?;
        Ok((self.offset, self.buffer))
    }
}

/// A line without its `\r`.
pub(crate) fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Calls `visit(offset, bytes from offset)` for every offset in `offsets` (ascending) of a
/// file: `bytes` holds at least the whole line that starts there when `whole_file` is false,
/// and the rest of the file when it is true. A plain file is read at each offset when they
/// are few, and streamed otherwise (always when it is gzip).
pub(crate) fn visit_offsets(
    path: &PathBuf,
    offsets: &[u64],
    whole_file: bool,
    mut visit: impl FnMut(u64, &[u8]),
) -> io::Result<()> {
    if offsets.is_empty() {
        return Ok(());
    }
    if whole_file {
        let (_, content) = Lines::new(open(path)?).read_rest()?;
        for &offset in offsets {
            visit(offset, content.get(offset as usize..).unwrap_or_default());
        }
        return Ok(());
    }
    let size = std::fs::metadata(path)?.len();
    if !is_gzip(path)? && (offsets.len() as u64) < size / 16_384 {
        let mut file = File::open(path)?;
        let mut buffer = Vec::new();
        for &offset in offsets {
            let mut want = 1024;
            loop {
                buffer.clear();
                file.seek(SeekFrom::Start(offset))?;
                (&mut file).take(want).read_to_end(&mut buffer)?;
                if memchr::memchr(b'\n', &buffer).is_some() || (buffer.len() as u64) < want {
                    break;
                }
                want *= 4;
            }
            visit(offset, &buffer);
        }
        return Ok(());
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

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn temp(name: &str, content: &[u8], gzip: bool) -> PathBuf {
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
