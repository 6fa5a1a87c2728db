//! Files that `reconcile` writes once and in bulk (`mismatches.csv`, the temporary runs of its
//! lines), written and read around the page cache where the file system allows it (Linux's
//! `O_DIRECT`). A buffered write copies every byte into page-cache pages the kernel must first
//! find, and on a virtual machine whose freed memory goes back to the host, pages it must get
//! back too: on the benchmark's machine, 200 MiB took `dd` 0.49 s buffered and 0.09 s with
//! `oflag=direct`, and the 334 MB of `mismatches.csv` and its runs were a fifth of
//! `reconcile`'s CPU samples. Direct transfers are whole aligned blocks: a writer sends those,
//! and keeps a part's unaligned edges (its first and last partial blocks) for
//! [`write_edges`], which writes them through an ordinary handle once every writer of the file
//! is done. Where `O_DIRECT` is refused (tmpfs, other systems), the ordinary handle does it all.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// The alignment of direct transfers' buffers, offsets and lengths: a page, a multiple of the
/// logical block size of the devices such transfers are made to.
pub(crate) const BLOCK: usize = 4096;

/// A buffer whose first byte is [`BLOCK`]-aligned, `len` bytes of `capacity` filled.
pub(crate) struct Aligned {
    raw: Vec<u8>,
    start: usize,
    capacity: usize,
    len: usize,
}

impl Aligned {
    /// A buffer for `capacity` bytes, rounded up to a whole number of blocks.
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(BLOCK).next_multiple_of(BLOCK);
        let raw = vec![0u8; capacity + BLOCK];
        let start = raw.as_ptr().align_offset(BLOCK);
        Self {
            raw,
            start,
            capacity,
            len: 0,
        }
    }

    pub(crate) fn filled(&self) -> &[u8] {
        &self.raw[self.start..self.start + self.len]
    }

    fn whole(&mut self) -> &mut [u8] {
        &mut self.raw[self.start..self.start + self.capacity]
    }
}

/// Opens `path` for direct transfers (`write`: to write, else to read); `None` where the file
/// system or the system does not take them.
fn open_direct(path: &Path, write: bool) -> Option<File> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let flags = rustix::fs::OFlags::DIRECT.bits() as i32;
        OpenOptions::new()
            .read(!write)
            .write(write)
            .custom_flags(flags)
            .open(path)
            .ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (path, write);
        None
    }
}

/// Writes `bytes` at `at` in `file`, without moving a cursor another thread may use; how many
/// were written.
#[cfg(unix)]
fn write_at(file: &File, bytes: &[u8], at: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::write_at(file, bytes, at)
}

#[cfg(windows)]
fn write_at(file: &File, bytes: &[u8], at: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_write(file, bytes, at)
}

/// Reads into `into` from `at` in `file`; how many bytes were read (0 at the end).
#[cfg(unix)]
fn read_at(file: &File, into: &mut [u8], at: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, into, at)
}

#[cfg(windows)]
fn read_at(file: &File, into: &mut [u8], at: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, into, at)
}

/// Whether an error is the file system refusing a direct transfer (rather than failing it).
fn refused(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::InvalidInput
}

/// Bytes at their places, to be written through an ordinary handle after the direct writes.
#[derive(Debug, Default)]
pub(crate) struct Edges(Vec<(u64, Vec<u8>)>);

impl Edges {
    pub(crate) fn extend(&mut self, other: Edges) {
        self.0.extend(other.0);
    }
}

/// Writes the edges that writers of `path` left, once all of them are finished: a block that
/// holds an edge is never written directly, and an edge's block read from the disk (to be
/// completed) then holds what the direct writes put around it.
pub(crate) fn write_edges(path: &Path, edges: Edges) -> io::Result<()> {
    if edges.0.iter().all(|(_, bytes)| bytes.is_empty()) {
        return Ok(());
    }
    let file = OpenOptions::new().write(true).open(path)?;
    for (mut at, bytes) in edges.0 {
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            match write_at(&file, rest, at)? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => (rest, at) = (&rest[n..], at + n as u64),
            }
        }
    }
    Ok(())
}

/// Writes a stream of bytes to a file from a given offset on: whole aligned blocks directly,
/// the edges kept for [`write_edges`].
pub(crate) struct DirectWriter {
    plain: File,
    direct: Option<File>,
    /// The offset of the buffer's first byte: aligned once the head is taken.
    base: u64,
    /// Bytes still to come before `base` is aligned.
    head_left: usize,
    head: (u64, Vec<u8>),
    buffer: Aligned,
}

impl DirectWriter {
    /// A writer of `path` (which exists) from byte `at` on, through a buffer of `capacity`
    /// bytes; `direct`: whether to try direct transfers at all.
    pub(crate) fn new(path: &Path, at: u64, capacity: usize, direct: bool) -> io::Result<Self> {
        let plain = OpenOptions::new().write(true).open(path)?;
        let head_left = (at.next_multiple_of(BLOCK as u64) - at) as usize;
        Ok(Self {
            plain,
            direct: if direct {
                open_direct(path, true)
            } else {
                None
            },
            base: at + head_left as u64,
            head_left,
            head: (at, Vec::with_capacity(head_left)),
            buffer: Aligned::new(capacity),
        })
    }

    /// Whether blocks go directly.
    #[cfg(test)]
    pub(crate) fn is_direct(&self) -> bool {
        self.direct.is_some()
    }

    /// Writes the buffer's first `len` bytes (whole blocks, unless through the ordinary
    /// handle) at `base`.
    fn send(&mut self, len: usize) -> io::Result<()> {
        let mut done = 0;
        while done < len {
            let bytes = &self.buffer.raw[self.buffer.start + done..self.buffer.start + len];
            let at = self.base + done as u64;
            let written = match &self.direct {
                Some(file) if (len - done).is_multiple_of(BLOCK) => {
                    match write_at(file, bytes, at) {
                        Err(e) if refused(&e) => {
                            tracing::debug!(
                                "direct writes refused ({e}): writing through the page cache"
                            );
                            self.direct = None;
                            continue;
                        }
                        result => result?,
                    }
                }
                _ => write_at(&self.plain, bytes, at)?,
            };
            if written == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            done += written;
        }
        self.base += len as u64;
        Ok(())
    }

    /// Writes what is left but the last partial block, and gives that block's bytes and the
    /// head as edges.
    pub(crate) fn finish(mut self) -> io::Result<Edges> {
        let whole = self.buffer.len / BLOCK * BLOCK;
        let rest = self.buffer.len - whole;
        self.send(whole)?;
        let tail = self.buffer.raw[self.buffer.start + whole..][..rest].to_vec();
        self.buffer.len = 0;
        Ok(Edges(vec![
            std::mem::take(&mut self.head),
            (self.base, tail),
        ]))
    }
}

impl Write for DirectWriter {
    fn write(&mut self, mut bytes: &[u8]) -> io::Result<usize> {
        let given = bytes.len();
        if self.head_left > 0 {
            let n = self.head_left.min(bytes.len());
            self.head.1.extend_from_slice(&bytes[..n]);
            self.head_left -= n;
            bytes = &bytes[n..];
        }
        while !bytes.is_empty() {
            let room = self.buffer.capacity - self.buffer.len;
            let n = room.min(bytes.len());
            let len = self.buffer.len;
            self.buffer.whole()[len..len + n].copy_from_slice(&bytes[..n]);
            self.buffer.len += n;
            bytes = &bytes[n..];
            if self.buffer.len == self.buffer.capacity {
                self.send(self.buffer.capacity)?;
                self.buffer.len = 0;
            }
        }
        Ok(given)
    }

    /// Nothing: a block goes out whole, when full or at [`DirectWriter::finish`].
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads a file written by [`DirectWriter`]s (and [`write_edges`]) at any offsets: directly
/// in whole aligned blocks where it can, through an ordinary handle otherwise.
pub(crate) struct DirectReader {
    plain: File,
    direct: Option<File>,
    /// Cleared when the file system refuses a direct read: the ordinary handle from then on.
    direct_ok: AtomicBool,
}

impl DirectReader {
    pub(crate) fn open(path: &Path, direct: bool) -> io::Result<Self> {
        let direct = if direct {
            open_direct(path, false)
        } else {
            None
        };
        Ok(Self {
            plain: File::open(path)?,
            direct_ok: AtomicBool::new(direct.is_some()),
            direct,
        })
    }

    /// Reads the bytes from `at` on into `buffer` (replacing what it held), up to its capacity
    /// or the end of the file, and gives the index of the byte at `at` in it (its bytes before
    /// that are the aligned block's). Fewer bytes than asked only at the end of the file.
    pub(crate) fn read_at(&self, buffer: &mut Aligned, at: u64) -> io::Result<usize> {
        buffer.len = 0;
        let direct = self
            .direct
            .as_ref()
            .filter(|_| self.direct_ok.load(Ordering::Relaxed));
        let skip = match direct {
            Some(_) => (at % BLOCK as u64) as usize,
            None => 0,
        };
        let from = at - skip as u64;
        while buffer.len < buffer.capacity {
            let len = buffer.len;
            let into = &mut buffer.whole()[len..];
            let read = match direct {
                Some(file) => match read_at(file, into, from + len as u64) {
                    Err(e) if refused(&e) => {
                        tracing::debug!(
                            "direct reads refused ({e}): reading through the page cache"
                        );
                        self.direct_ok.store(false, Ordering::Relaxed);
                        return self.read_at(buffer, at);
                    }
                    result => result?,
                },
                None => read_at(&self.plain, into, from + len as u64)?,
            };
            if read == 0 {
                break;
            }
            buffer.len += read;
            // A direct read short of a block is the end of the file: the next would not be
            // aligned.
            if direct.is_some() && !buffer.len.is_multiple_of(BLOCK) {
                break;
            }
        }
        Ok(skip.min(buffer.len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder beside the test binary, on the file system it was built on (not /tmp, which
    /// may be tmpfs and refuse direct transfers); removed when dropped.
    struct Scratch(std::path::PathBuf);

    impl Scratch {
        fn new(name: &str) -> Self {
            let exe = std::env::current_exe().unwrap();
            let dir = exe
                .parent()
                .unwrap()
                .join(format!("oc-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn bytes(n: usize, seed: u8) -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    /// Parts of one file written by writers of their own, each from its place (unaligned,
    /// some shorter than a block, some longer than the buffer), in pieces of many sizes:
    /// the file holds exactly the parts, direct or not.
    #[test]
    fn parts_written_at_unaligned_places_make_the_file() {
        for direct in [true, false] {
            let dir = Scratch::new("direct-parts");
            let path = dir.path().join("out.csv");
            let header = b"header line\n";
            std::fs::write(&path, header).unwrap();
            let parts: Vec<Vec<u8>> = [5000, 17, 0, 3 * BLOCK, 70_000, 4095, 1, 12_345]
                .iter()
                .enumerate()
                .map(|(k, &n)| bytes(n, k as u8))
                .collect();
            let mut at = header.len() as u64;
            let mut edges = Edges::default();
            let mut used_direct = false;
            for part in &parts {
                let mut writer = DirectWriter::new(&path, at, 2 * BLOCK, direct).unwrap();
                used_direct |= writer.is_direct();
                let mut rest = part.as_slice();
                let mut size = 1;
                while !rest.is_empty() {
                    let n = size.min(rest.len());
                    writer.write_all(&rest[..n]).unwrap();
                    rest = &rest[n..];
                    size = size * 3 + 1;
                }
                edges.extend(writer.finish().unwrap());
                at += part.len() as u64;
            }
            write_edges(&path, edges).unwrap();
            let mut want = header.to_vec();
            for part in &parts {
                want.extend_from_slice(part);
            }
            assert_eq!(std::fs::read(&path).unwrap(), want, "direct: {direct}");
            if !direct {
                assert!(!used_direct);
            }
        }
    }

    /// Read back from any offset, direct or not, a file reads as written.
    #[test]
    fn reads_from_any_offset_give_the_bytes_there() {
        for direct in [true, false] {
            let dir = Scratch::new("direct-read");
            let path = dir.path().join("runs.tmp");
            let data = bytes(5 * BLOCK + 123, 7);
            std::fs::write(&path, &data).unwrap();
            let reader = DirectReader::open(&path, direct).unwrap();
            let mut buffer = Aligned::new(2 * BLOCK);
            for at in [
                0,
                1,
                4095,
                4096,
                9000,
                data.len() as u64 - 1,
                data.len() as u64,
            ] {
                let skip = reader.read_at(&mut buffer, at).unwrap();
                let got = &buffer.filled()[skip..];
                let end = (at as usize + got.len()).min(data.len());
                assert!(!got.is_empty() || at as usize == data.len(), "at {at}");
                assert_eq!(got, &data[at as usize..end], "at {at}, direct: {direct}");
            }
        }
    }
}
