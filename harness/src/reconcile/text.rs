//! The byte-level readers every input shares: CSV fields split in place (quotes allowed within a
//! line), RFC 3339 timestamps to integer nanoseconds, telephone numbers to integer keys, money to
//! integer millionths, and the 64-bit hash that keys call ids, all without allocating for the
//! common case.

use std::borrow::{BorrowMut, Cow};

use oc_protocol::hash::fold;

/// Nanoseconds since the Unix epoch (UTC); an `i64` covers the years 1678 to 2261.
pub(crate) type Nanos = i64;

/// Nanoseconds in one second.
pub(crate) const SECOND: Nanos = 1_000_000_000;
/// Nanoseconds in one day.
pub(crate) const DAY: Nanos = 86_400 * SECOND;

/// One field of a CSV line: its bytes' range in the line, and whether it was quoted with
/// doubled quotes inside (then [`field`] unescapes it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) end: u32,
    pub(crate) escaped: bool,
}

/// [`split`]'s error for a quoted field that does not close on its line. RFC 4180 lets a
/// quoted field hold line breaks; reconcile reads one record a line (so that a file can be cut
/// into chunks at any line end), so such a record is rejected, with the lines it spans
/// ([`QuotedLines`]).
pub(crate) const UNCLOSED: &str = "a quoted field does not close on its line (a field spanning \
     lines, which RFC 4180 allows, is not read: one record a line; the record is rejected with \
     the lines it spans)";

/// Follows a quoted field that [`split`] found open at the end of a line over the lines that
/// follow, up to the one where it closes: those lines belong to the rejected record and are not
/// records of their own.
#[derive(Debug, Default)]
pub(crate) struct QuotedLines {
    open: bool,
}

impl QuotedLines {
    /// A line's record was rejected with `why`: whether a quoted field is left open.
    pub(crate) fn rejected(&mut self, why: &str) {
        self.open = why == UNCLOSED;
    }

    /// Whether `line` (the next one) continues an open quoted field, and so is not a record;
    /// the field closes on the line with an odd number of quotes.
    pub(crate) fn continues(&mut self, line: &[u8]) -> bool {
        if !self.open {
            return false;
        }
        if memchr::memchr_iter(b'"', line).count() % 2 == 1 {
            self.open = false;
        }
        true
    }
}

/// Splits one CSV line (without its line ending) at `delimiter` into `out`, RFC 4180 quoting
/// allowed within the line. An error is the 0-based byte offset where the line went wrong and
/// what was wrong: a quote that does not close on this line, or text after a closing quote.
pub(crate) fn split(
    line: &[u8],
    delimiter: u8,
    out: &mut Vec<Span>,
) -> Result<(), (usize, &'static str)> {
    out.clear();
    // Without quotes (most lines), the delimiters are found sixteen bytes at a time
    // ([`flags16`]: one vector compare for the delimiter and one for the quote, their bits
    // walked), in the same pass that looks for quotes: no search call per field, which costs
    // more than a short field's bytes. A quote anywhere sends the line to the field-by-field
    // reader below.
    let mut start = 0;
    let pad = if delimiter == 0 { 1 } else { 0 };
    let mut base = 0;
    let mut scan = |delimiters: u64, quotes: u64, base: usize| {
        if quotes != 0 {
            return false;
        }
        let mut delimiters = delimiters;
        while delimiters != 0 {
            let at = base + delimiters.trailing_zeros() as usize;
            out.push(Span {
                start: start as u32,
                end: at as u32,
                escaped: false,
            });
            start = at + 1;
            delimiters &= delimiters - 1;
        }
        true
    };
    let mut plain = true;
    if let Some(last) = line.last_chunk::<64>() {
        // Sixteen bytes a compare, 64 a step (one test for quotes and one bit walk a step),
        // then the line's last 64 bytes, the flags of those already scanned dropped: no copy
        // of a variable length (a call).
        let (blocks, tail) = line.as_chunks::<64>();
        for block in blocks {
            let (delimiters, quotes) = flags64(block, delimiter);
            if !scan(delimiters, quotes, base) {
                plain = false;
                break;
            }
            base += 64;
        }
        if plain && !tail.is_empty() {
            let seen = 64 - tail.len();
            let (delimiters, quotes) = flags64(last, delimiter);
            plain = scan(
                delimiters >> seen << seen,
                quotes >> seen << seen,
                line.len() - 64,
            );
        }
    } else {
        // A short line: sixteen bytes a step, the last sixteen as above, or a padded copy.
        let (blocks, tail) = line.as_chunks::<16>();
        for block in blocks {
            let (delimiters, quotes) = flags16(block, delimiter);
            if !scan(delimiters.into(), quotes.into(), base) {
                plain = false;
                break;
            }
            base += 16;
        }
        if !plain || tail.is_empty() {
            // Every byte scanned, or a quote found.
        } else if let Some(last) = line.last_chunk::<16>() {
            let seen = 16 - tail.len();
            let (delimiters, quotes) = flags16(last, delimiter);
            plain = scan(
                (delimiters >> seen << seen).into(),
                (quotes >> seen << seen).into(),
                line.len() - 16,
            );
        } else {
            let mut block = [pad; 16];
            block[..tail.len()].copy_from_slice(tail);
            let (delimiters, quotes) = flags16(&block, delimiter);
            plain = scan(delimiters.into(), quotes.into(), base);
        }
    }
    if plain {
        out.push(Span {
            start: start as u32,
            end: line.len() as u32,
            escaped: false,
        });
        return Ok(());
    }
    out.clear();
    let mut at = 0;
    loop {
        if line.get(at) == Some(&b'"') {
            let open = at;
            let mut escaped = false;
            let mut i = at + 1;
            let close = loop {
                match memchr::memchr(b'"', &line[i..]) {
                    None => return Err((open, UNCLOSED)),
                    Some(q) if line.get(i + q + 1) == Some(&b'"') => {
                        escaped = true;
                        i += q + 2;
                    }
                    Some(q) => break i + q,
                }
            };
            out.push(Span {
                start: open as u32 + 1,
                end: close as u32,
                escaped,
            });
            match line.get(close + 1) {
                None => return Ok(()),
                Some(&c) if c == delimiter => at = close + 2,
                Some(_) => return Err((close + 1, "text after a closing quote")),
            }
            if at == line.len() {
                out.push(Span {
                    start: at as u32,
                    end: at as u32,
                    escaped: false,
                });
                return Ok(());
            }
        } else {
            let end = memchr::memchr(delimiter, &line[at..]).map_or(line.len(), |d| at + d);
            out.push(Span {
                start: at as u32,
                end: end as u32,
                escaped: false,
            });
            if end == line.len() {
                return Ok(());
            }
            at = end + 1;
        }
    }
}

/// One line of a chunk, as [`LineScanner`] gives it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScannedLine<'a> {
    /// Its offset in the chunk.
    pub(crate) start: usize,
    /// The line without its `\n` and the `\r` before it.
    pub(crate) line: &'a [u8],
    /// The offsets in `line` of its delimiters when the line has no quote (its fields are then
    /// the bytes between them); `None` when it has one ([`split`] reads it).
    pub(crate) delimiters: Option<&'a [u32]>,
    /// `delimiters` after a `u32::MAX` and before the line's length, so that field `i` is
    /// `line[bounds[i] + 1..bounds[i + 1]]` (wrapping): [`bounded_field`].
    pub(crate) bounds: Option<&'a [u32]>,
}

/// The lines of a chunk and the places of their delimiters, found in one pass: three SSE2
/// compares a sixteen bytes (line end, delimiter, quote), 64 bytes a step, their bits walked in
/// order. No separate line-end search, no line scanned twice, one `u32` a field, in place. The
/// lines are those of [`super::source::lines_inclusive`] (the last one without its `\n` when
/// the chunk does not end with one).
pub(crate) struct LineScanner<'a, F: BorrowMut<DelimiterTable> = DelimiterTable> {
    chunk: &'a [u8],
    delimiter: u8,
    /// The offset of the block whose flags are below.
    base: usize,
    /// The block's line ends, delimiters and quotes not yet walked (bit i: byte `base + i`).
    ends: u64,
    delimiters: u64,
    quotes: u64,
    /// Where the current line starts.
    line_start: usize,
    /// Whether the current line has a quote.
    quoted: bool,
    /// `u32::MAX`, then the current line's delimiters (offsets in the line), the first
    /// [`SCANNED_FIELDS`], then (once the line is taken) its length: [`ScannedLine::bounds`].
    found: F,
    count: usize,
}

/// Where [`LineScanner`] puts a line's delimiters: its own, or one kept by a caller that makes
/// a scanner a line (see [`LineScanner::with_table`]).
pub(crate) type DelimiterTable = [u32; SCANNED_FIELDS + 2];

/// How many delimiters [`LineScanner`] keeps a line; a line with more is [`split`]. One less
/// than 256, so that a delimiter's slot is `1 +` its count's low byte.
const SCANNED_FIELDS: usize = 255;

impl<'a> LineScanner<'a> {
    pub(crate) fn new(chunk: &'a [u8], delimiter: u8) -> Self {
        Self::with_table(chunk, delimiter, [u32::MAX; SCANNED_FIELDS + 2])
    }
}

impl<'a, F: BorrowMut<DelimiterTable>> LineScanner<'a, F> {
    /// A scanner that puts the delimiters in `found`: a table kept by a caller that scans one
    /// line at a time (the lines read back for `mismatches.csv`), where filling a fresh
    /// kilobyte cost more than the line's scan. Only its first slot is set: every other slot
    /// is written for a line before it is read.
    #[inline(always)]
    pub(crate) fn with_table(chunk: &'a [u8], delimiter: u8, mut found: F) -> Self {
        found.borrow_mut()[0] = u32::MAX;
        let mut scanner = Self {
            chunk,
            delimiter,
            base: 0,
            ends: 0,
            delimiters: 0,
            quotes: 0,
            line_start: 0,
            quoted: false,
            found,
            count: 0,
        };
        scanner.load();
        scanner
    }

    /// The flags of the block at `base`, the bytes past the chunk's end left out.
    #[inline(always)]
    fn load(&mut self) {
        let (ends, delimiters, quotes) = match self.chunk.get(self.base..self.base + 64) {
            Some(block) => {
                let block: &[u8; 64] = block.try_into().unwrap_or(&[0; 64]);
                masks64(block, self.delimiter)
            }
            None => {
                let tail = self.chunk.get(self.base..).unwrap_or_default();
                let mut block = [0u8; 64];
                block[..tail.len()].copy_from_slice(tail);
                let (e, d, q) = masks64(&block, self.delimiter);
                let kept = (1u64 << tail.len()) - 1;
                (e & kept, d & kept, q & kept)
            }
        };
        (self.ends, self.delimiters, self.quotes) = (ends, delimiters, quotes);
    }

    /// The next line; `None` after the last.
    #[inline(always)]
    pub(crate) fn next_line(&mut self) -> Option<ScannedLine<'_>> {
        loop {
            // The flags before the block's next line end (all of them without one).
            let before = match self.ends {
                0 => u64::MAX,
                ends => (ends & ends.wrapping_neg()) - 1,
            };
            let mut delimiters = self.delimiters & before;
            // (A branch, not a flag or'ed in: most blocks have no quote.)
            if self.quotes & before != 0 {
                self.quoted = true;
            }
            while delimiters != 0 {
                let at = self.base + delimiters.trailing_zeros() as usize;
                // The count's low byte, below the array's length: no bounds check.
                self.found.borrow_mut()[1 + usize::from(self.count as u8)] =
                    (at - self.line_start) as u32;
                self.count += 1;
                delimiters &= delimiters - 1;
            }
            if self.ends != 0 {
                let end = self.base + self.ends.trailing_zeros() as usize;
                self.ends &= self.ends - 1;
                self.delimiters &= !before;
                self.quotes &= !before;
                return Some(self.take(end));
            }
            self.base += 64;
            if self.base >= self.chunk.len() {
                // The block's flags were walked: a call after the last line must not walk them
                // again at the next base (a line start past them, an overflow).
                (self.delimiters, self.quotes) = (0, 0);
                return (self.line_start < self.chunk.len()).then(|| self.take(self.chunk.len()));
            }
            self.load();
        }
    }

    /// The line from `line_start` to `end` (its `\n`, or the chunk's end); the next starts
    /// after it.
    #[inline(always)]
    fn take(&mut self, end: usize) -> ScannedLine<'_> {
        let start = std::mem::replace(&mut self.line_start, end + 1);
        let count = std::mem::take(&mut self.count);
        let quoted = std::mem::take(&mut self.quoted);
        let line = &self.chunk[start..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        // A `\r` delimiter at the line's end is its line ending, as `split` of the trimmed line
        // sees it.
        let count = match count.checked_sub(1) {
            Some(last)
                if self.delimiter == b'\r'
                    && count <= SCANNED_FIELDS
                    && self.found.borrow()[1 + last] as usize >= line.len() =>
            {
                last
            }
            _ => count,
        };
        let plain = !quoted && count <= SCANNED_FIELDS;
        if plain {
            self.found.borrow_mut()[count + 1] = line.len() as u32;
        }
        let found: &DelimiterTable = self.found.borrow();
        ScannedLine {
            start,
            line,
            delimiters: plain.then(|| &found[1..count + 1]),
            bounds: plain.then(|| &found[..count + 2]),
        }
    }
}

/// A line's fields: between the delimiters [`LineScanner`] found, or as [`split`] read a line
/// with quotes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LineFields<'a> {
    Plain {
        line: &'a [u8],
        delimiters: &'a [u32],
    },
    Split {
        line: &'a [u8],
        spans: &'a [Span],
    },
}

impl<'a> LineFields<'a> {
    /// The fields of a line a row loop's fast path does not read: between `delimiters` (found
    /// with the line end) when the line has no quote, else split field by field into `spans`;
    /// or where and why the split failed (the column's offset, the reason).
    pub(crate) fn of_line(
        line: &'a [u8],
        delimiters: Option<&'a [u32]>,
        delimiter: u8,
        spans: &'a mut Vec<Span>,
    ) -> Result<Self, (usize, &'static str)> {
        match delimiters {
            Some(delimiters) => Ok(Self::Plain { line, delimiters }),
            None => {
                split(line, delimiter, spans)?;
                Ok(Self::Split { line, spans })
            }
        }
    }

    /// How many fields.
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Plain { delimiters, .. } => delimiters.len() + 1,
            Self::Split { spans, .. } => spans.len(),
        }
    }

    /// Where field `i` (below [`Self::len`]) starts in the line, 0-based.
    #[inline(always)]
    pub(crate) fn start(&self, i: usize) -> u32 {
        match self {
            Self::Plain { delimiters, .. } => match i {
                0 => 0,
                _ => delimiters[i - 1] + 1,
            },
            Self::Split { spans, .. } => spans[i].start,
        }
    }

    /// Field `i`'s bytes as the line has them (doubled quotes kept: see [`Self::escaped`]).
    #[inline(always)]
    pub(crate) fn raw(&self, i: usize) -> &'a [u8] {
        match *self {
            Self::Plain { line, delimiters } => {
                let end = delimiters.get(i).map_or(line.len(), |&d| d as usize);
                &line[self.start(i) as usize..end]
            }
            Self::Split { line, spans } => &line[spans[i].start as usize..spans[i].end as usize],
        }
    }

    /// Field `i`'s text, unescaped.
    #[inline(always)]
    pub(crate) fn get(&self, i: usize) -> Cow<'a, [u8]> {
        match *self {
            Self::Plain { .. } => Cow::Borrowed(self.raw(i)),
            Self::Split { line, spans } => field(line, spans[i]),
        }
    }

    /// Whether a field has doubled quotes (then [`Self::get`] copies it).
    #[inline(always)]
    pub(crate) fn escaped(&self) -> bool {
        match self {
            Self::Plain { .. } => false,
            Self::Split { spans, .. } => spans.iter().any(|s| s.escaped),
        }
    }
}

/// Field `i` of a line without quotes from its [`ScannedLine::bounds`]: [`LineFields::raw`]
/// without its other shape or a test for the first and last fields, for the row loops; empty
/// for an `i` past the last field (a column the file does not have: [`NO_FIELD`]).
#[inline(always)]
pub(crate) fn bounded_field<'a>(line: &'a [u8], bounds: &[u32], i: usize) -> &'a [u8] {
    // (The two bounds as one slice: one length check, not two.)
    match bounds.get(i..i + 2) {
        Some(&[start, end]) => line
            .get(start.wrapping_add(1) as usize..end as usize)
            .unwrap_or_default(),
        _ => &[],
    }
}

/// A field number past any line's last field (a column that a file does not have), which
/// [`bounded_field`] reads as empty.
pub(crate) const NO_FIELD: usize = usize::MAX >> 1;

/// `field` without ASCII whitespace at either end ([`<[u8]>::trim_ascii`]), inlined: most
/// fields have none, which two compares tell (every ASCII whitespace byte is at most `b' '`).
#[inline(always)]
pub(crate) fn trim(field: &[u8]) -> &[u8] {
    match (field.first(), field.last()) {
        (Some(&first), Some(&last)) if first > b' ' && last > b' ' => field,
        _ => field.trim_ascii(),
    }
}

/// The line ends, delimiters and quotes of 64 bytes, as bit masks (bit i: byte i). Quotes are
/// rare: the four quarters' quote compares are joined into one mask move, and only a block
/// with a quote has their places found ([`masks64_quarters`]).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn masks64(block: &[u8; 64], delimiter: u8) -> (u64, u64, u64) {
    use safe_arch::{
        bitor_m128i, cmp_eq_mask_i8_m128i, load_unaligned_m128i, move_mask_i8_m128i,
        set_splat_i8_m128i, zeroed_m128i,
    };
    let (quarters, _) = block.as_chunks::<16>();
    let (end, delimiter, quote) = (
        set_splat_i8_m128i(b'\n' as i8),
        set_splat_i8_m128i(delimiter as i8),
        set_splat_i8_m128i(b'"' as i8),
    );
    let (mut ends, mut delimiters, mut quotes) = (0, 0, zeroed_m128i());
    for (i, quarter) in quarters.iter().enumerate() {
        let bytes = load_unaligned_m128i(quarter);
        let mask = |byte| u64::from(move_mask_i8_m128i(cmp_eq_mask_i8_m128i(bytes, byte)) as u32);
        ends |= mask(end) << (16 * i);
        delimiters |= mask(delimiter) << (16 * i);
        quotes = bitor_m128i(quotes, cmp_eq_mask_i8_m128i(bytes, quote));
    }
    let quotes = match move_mask_i8_m128i(quotes) {
        0 => 0,
        _ => quotes64(block),
    };
    (ends, delimiters, quotes)
}

/// The quotes of a block that has one.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[cold]
#[inline(never)]
fn quotes64(block: &[u8; 64]) -> u64 {
    masks64_quarters(block, b'"').2
}

/// [`masks64`] elsewhere.
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline(always)]
fn masks64(block: &[u8; 64], delimiter: u8) -> (u64, u64, u64) {
    masks64_quarters(block, delimiter)
}

/// [`masks64`] a quarter at a time, every mask from [`masks16`].
#[inline(always)]
fn masks64_quarters(block: &[u8; 64], delimiter: u8) -> (u64, u64, u64) {
    let (quarters, _) = block.as_chunks::<16>();
    let mut masks = (0, 0, 0);
    for (i, quarter) in quarters.iter().enumerate() {
        let (e, d, q) = masks16(quarter, delimiter);
        masks.0 |= u64::from(e) << (16 * i);
        masks.1 |= u64::from(d) << (16 * i);
        masks.2 |= u64::from(q) << (16 * i);
    }
    masks
}

/// [`flags16`] with the line ends as well: `(line ends, delimiters, quotes)`.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn masks16(block: &[u8; 16], delimiter: u8) -> (u32, u32, u32) {
    use safe_arch::{
        cmp_eq_mask_i8_m128i, load_unaligned_m128i, move_mask_i8_m128i, set_splat_i8_m128i,
    };
    let bytes = load_unaligned_m128i(block);
    let mask = |byte: u8| {
        move_mask_i8_m128i(cmp_eq_mask_i8_m128i(bytes, set_splat_i8_m128i(byte as i8))) as u32
    };
    (mask(b'\n'), mask(delimiter), mask(b'"'))
}

/// [`masks16`] elsewhere.
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline(always)]
fn masks16(block: &[u8; 16], delimiter: u8) -> (u32, u32, u32) {
    masks16_words(block, delimiter)
}

/// [`masks16`] without vector instructions (the tests hold the two equal).
#[cfg_attr(
    all(target_arch = "x86_64", target_feature = "sse2", not(test)),
    expect(dead_code, reason = "the vector version is used on this target")
)]
#[inline]
fn masks16_words(block: &[u8; 16], delimiter: u8) -> (u32, u32, u32) {
    let (ends, _) = flags16_words(block, b'\n');
    let (delimiters, quotes) = flags16_words(block, delimiter);
    (ends, delimiters, quotes)
}

/// [`flags16`] of 64 bytes.
#[inline]
fn flags64(block: &[u8; 64], delimiter: u8) -> (u64, u64) {
    let (quarters, _) = block.as_chunks::<16>();
    quarters
        .iter()
        .enumerate()
        .fold((0, 0), |(delimiters, quotes), (i, quarter)| {
            let (d, q) = flags16(quarter, delimiter);
            (
                delimiters | u64::from(d) << (16 * i),
                quotes | u64::from(q) << (16 * i),
            )
        })
}

/// The bytes of `block` equal to `delimiter` and those equal to a quote, as bit masks (bit i:
/// byte i): two SSE2 compares and two mask moves, through `safe_arch`'s safe wrappers of the
/// intrinsics (this crate forbids `unsafe`).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline]
fn flags16(block: &[u8; 16], delimiter: u8) -> (u32, u32) {
    use safe_arch::{
        cmp_eq_mask_i8_m128i, load_unaligned_m128i, move_mask_i8_m128i, set_splat_i8_m128i,
    };
    let bytes = load_unaligned_m128i(block);
    let delimiters = cmp_eq_mask_i8_m128i(bytes, set_splat_i8_m128i(delimiter as i8));
    let quotes = cmp_eq_mask_i8_m128i(bytes, set_splat_i8_m128i(b'"' as i8));
    (
        move_mask_i8_m128i(delimiters) as u32,
        move_mask_i8_m128i(quotes) as u32,
    )
}

/// [`flags16`] elsewhere: eight bytes at a time in a word, the flagged bytes' high bits gathered
/// into the mask's bits.
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline]
fn flags16(block: &[u8; 16], delimiter: u8) -> (u32, u32) {
    flags16_words(block, delimiter)
}

/// [`flags16`] without vector instructions (what other targets use; the tests hold the two
/// equal), and a part of [`masks16_words`].
#[inline]
fn flags16_words(block: &[u8; 16], delimiter: u8) -> (u32, u32) {
    let [low, high] = [&block[..8], &block[8..]].map(|half| {
        let mut word = [0u8; 8];
        word.copy_from_slice(half);
        u64::from_le_bytes(word)
    });
    let mask = |byte: u8| {
        let gather =
            |word: u64| (((flag_bytes(word, byte) >> 7).wrapping_mul(GATHER)) >> 56) as u32;
        gather(low) | gather(high) << 8
    };
    (mask(delimiter), mask(b'"'))
}

/// Gathers bits 0, 8, …, 56 of a word into bits 56 to 63 (the products do not overlap).
const GATHER: u64 = 0x0102_0408_1020_4080;

/// The high bit of each byte of `word` that equals `byte`, exactly (no false flags: the sum
/// of a byte's low seven bits and 0x7f never carries into the next byte).
#[inline]
fn flag_bytes(word: u64, byte: u8) -> u64 {
    const LOW: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let x = word ^ (0x0101_0101_0101_0101 * u64::from(byte));
    !(((x & LOW).wrapping_add(LOW)) | x) & !LOW
}

/// The text of a field, unescaped when it had doubled quotes.
#[inline]
pub(crate) fn field<'a>(line: &'a [u8], span: Span) -> Cow<'a, [u8]> {
    let raw = &line[span.start as usize..span.end as usize];
    if span.escaped {
        Cow::Owned(unescape(raw))
    } else {
        Cow::Borrowed(raw)
    }
}

/// A field's text as UTF-8, invalid bytes replaced: borrowed when the field is (most are).
pub(crate) fn lossy(field: Cow<'_, [u8]>) -> Cow<'_, str> {
    match field {
        // `from_utf8` first: it checks ASCII a word at a time, where the lossy reading goes a
        // chunk of valid text at a time.
        Cow::Borrowed(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(bytes),
        },
        Cow::Owned(bytes) => Cow::Owned(
            String::from_utf8(bytes)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        ),
    }
}

/// A quoted field's text without its doubled quotes.
#[cold]
fn unescape(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        out.push(raw[i]);
        i += if raw[i] == b'"' { 2 } else { 1 };
    }
    out
}

/// Days from 1970-01-01 to a proleptic Gregorian date (the protocol's own calendar).
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    oc_protocol::timestamp::days_from_civil(year, i64::from(month), i64::from(day))
}

/// The date of a day since 1970-01-01: (year, month, day).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let (year, month, day) = oc_protocol::timestamp::civil_from_days(days);
    // Months are 1 to 12 and days 1 to 31 by construction.
    (year, month as u32, day as u32)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Two ASCII digits as their value.
#[inline]
fn two_digits(tens: u8, ones: u8) -> Option<u32> {
    let (t, o) = (tens.wrapping_sub(b'0'), ones.wrapping_sub(b'0'));
    (t < 10 && o < 10).then(|| u32::from(t) * 10 + u32::from(o))
}

fn digits(bytes: &[u8]) -> Option<u32> {
    let mut value = 0u32;
    for &b in bytes {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u32::from(b - b'0');
    }
    Some(value)
}

thread_local! {
    /// The date [`fixed_rfc3339`] read last on this thread (checked; as its first eight bytes
    /// and the two of the day), and its day number.
    static LAST_DAY: std::cell::Cell<((u64, u16), i64)> = const { std::cell::Cell::new(((0, 0), 0)) };
    /// The date [`parse_rfc3339`] read last on this thread (checked), and its day number.
    static LAST_DATE: std::cell::Cell<([u8; 10], i64)> =
        const { std::cell::Cell::new(([0; 10], 0)) };
}

/// Parses an RFC 3339 timestamp to nanoseconds since the epoch: `2026-01-05T10:00:00Z`, with
/// up to nine fractional digits, `T`, `t` or a space between date and time, and `Z`, `z` or
/// `±hh:mm` as its offset. Without an offset, `default_offset` (seconds east of UTC) applies,
/// and a timestamp without one and without a default is an error.
#[inline(always)]
pub(crate) fn parse_rfc3339(
    text: &[u8],
    default_offset: Option<i64>,
) -> Result<Nanos, &'static str> {
    // Exports write one layout all along (`2026-11-03T10:15:42.1234567Z`, `2026-11-03
    // 10:15:42`): read a word at a time; anything else, or anything wrong, goes to the general
    // parser, which gives the same value or the precise error.
    match fixed_rfc3339(text, default_offset) {
        Some(ns) => Ok(ns),
        None => parse_rfc3339_general(text, default_offset),
    }
}

/// A flag (the byte's high bit) on each byte of `word` that is not an ASCII digit: exact up to
/// the first such byte, which is all that callers read (a carry may flag bytes after it); 0
/// exactly when every byte is a digit.
#[inline(always)]
fn non_digits(word: u64) -> u64 {
    let x = word ^ 0x3030_3030_3030_3030;
    // A digit is now 0 to 9, anything else 10 or more; adding 0x76 sets the high bit of a
    // byte ≥ 10, and cannot carry out of a byte below 0x80 (whose own high bit flags it).
    (x | x.wrapping_add(0x7676_7676_7676_7676)) & 0x8080_8080_8080_8080
}

/// [`parse_rfc3339`]'s fast path: `YYYY-MM-DD`, `T` or a space, `HH:MM:SS` (seconds 0 to 59),
/// an optional `.` with 1 to 9 digits, then `Z` or nothing (`default_offset`, when there is
/// one); `None` for anything else, valid or not.
#[inline(always)]
pub(crate) fn fixed_rfc3339(text: &[u8], default_offset: Option<i64>) -> Option<Nanos> {
    let (head, rest) = text.split_first_chunk::<19>()?;
    // `YYYY-MM-` and `HH:MM:SS` as words, separators compared exactly, the others as digits.
    const DATE: u64 = u64::from_le_bytes(*b"0000-00-");
    const DATE_SEPARATORS: u64 = 0xff00_00ff_0000_0000;
    const CLOCK: u64 = u64::from_le_bytes(*b"00:00:00");
    const CLOCK_SEPARATORS: u64 = 0x0000_ff00_00ff_0000;
    let date = u64::from_le_bytes(*head.first_chunk::<8>()?);
    let clock = u64::from_le_bytes(*head.last_chunk::<8>()?);
    if !matches!(head[10], b'T' | b' ')
        || (clock ^ CLOCK) & CLOCK_SEPARATORS != 0
        || non_digits(clock & !CLOCK_SEPARATORS | ZEROS & CLOCK_SEPARATORS) != 0
    {
        return None;
    }
    let digit = |word: u64, i: u32| ((word >> (8 * i)) & 0xf) as u32;
    // The three pairs' values in one step: the digits' low halves, separators zeroed, times
    // ten plus the byte after: byte 0 is the hour, byte 3 the minute, byte 6 the second (no
    // byte passes 165, so none carries into the next).
    let low = clock & 0x0f0f_000f_0f00_0f0f;
    let pairs = low * 10 + (low >> 8);
    let hour = u32::from(pairs as u8);
    let minute = u32::from((pairs >> 24) as u8);
    let second = u32::from((pairs >> 48) as u8);
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    // Rows mostly come in time order, and a row's end mostly has its start's date: the date
    // checked and counted last on this thread is mostly this one.
    let date_key = (date, u16::from_le_bytes([head[8], head[9]]));
    let days = match LAST_DAY.get() {
        (key, days) if key == date_key => days,
        _ => {
            if (date ^ DATE) & DATE_SEPARATORS != 0
                || non_digits(date & !DATE_SEPARATORS | ZEROS & DATE_SEPARATORS) != 0
            {
                return None;
            }
            let year =
                digit(date, 0) * 1000 + digit(date, 1) * 100 + digit(date, 2) * 10 + digit(date, 3);
            let month = digit(date, 5) * 10 + digit(date, 6);
            let day = two_digits(head[8], head[9])?;
            if year == 0
                || !(1..=12).contains(&month)
                || day == 0
                || day > 28 && day > days_in_month(i64::from(year), month)
            {
                return None;
            }
            let days = days_from_civil_ad(year, month, day);
            LAST_DAY.set((date_key, days));
            days
        }
    };
    let (rest, offset) = match rest.split_last() {
        Some((b'Z', rest)) => (rest, 0),
        _ => (rest, default_offset?),
    };
    let fraction = match rest {
        [] => 0,
        [b'.', digits @ ..] => fraction_digits(text, digits)?,
        _ => return None,
    };
    let seconds = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset;
    seconds.checked_mul(SECOND)?.checked_add(fraction)
}

/// Eight `0` digits, as a word.
const ZEROS: u64 = 0x3030_3030_3030_3030;

/// Nanoseconds per unit of a fraction of a second written with `n` digits (index `n`).
const NANOS_PER_DIGITS: [i64; 10] = [
    1_000_000_000,
    100_000_000,
    10_000_000,
    1_000_000,
    100_000,
    10_000,
    1_000,
    100,
    10,
    1,
];

/// A fraction of a second of 1 to 9 `digits` (all of them digits), as nanoseconds; `digits`
/// is the end of `text`'s first 19 bytes and its `.`, so that the eight bytes up to the last
/// digit are one word of `text`; `None` for no digit, more than nine or another byte.
#[inline(always)]
fn fraction_digits(text: &[u8], digits: &[u8]) -> Option<Nanos> {
    let n = digits.len();
    match n {
        1..=8 => {
            // The eight bytes ending at the last digit (`.1234567`'s last eight, or `42.250`),
            // those before the first digit read as zeros: the fraction in units of its last
            // digit.
            let end = 20 + n;
            let word = u64::from_le_bytes(*text.get(..end)?.last_chunk::<8>()?);
            let kept = u64::MAX << (8 * (8 - n));
            let value = eight_digits(word & kept | ZEROS & !kept)? as i64;
            Some(value * NANOS_PER_DIGITS[n])
        }
        9 => {
            let (first, last) = digits.split_first_chunk::<8>()?;
            let last = last.first()?.wrapping_sub(b'0');
            (last < 10).then_some(())?;
            Some(eight_digits(u64::from_le_bytes(*first))? as i64 * 10 + i64::from(last))
        }
        _ => None,
    }
}

/// [`days_from_civil`] for the years 1 to 9999 of the fixed layouts, in unsigned arithmetic
/// (divisions by constants become multiplications).
#[inline(always)]
fn days_from_civil_ad(year: u32, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let (era, yoe) = (y / 400, y % 400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    i64::from(era * 146_097 + doe) - 719_468
}

/// [`parse_rfc3339`] for every layout it reads, with the precise error for the others.
#[cold]
#[inline(never)]
fn parse_rfc3339_general(text: &[u8], default_offset: Option<i64>) -> Result<Nanos, &'static str> {
    const SHAPE: &str = "not an RFC 3339 timestamp (2026-01-05T10:00:00.123Z)";
    if text.len() < 19
        || text[4] != b'-'
        || text[7] != b'-'
        || !matches!(text[10], b'T' | b't' | b' ')
        || text[13] != b':'
        || text[16] != b':'
    {
        return Err(SHAPE);
    }
    let (Some(hour), Some(minute), Some(second)) = (
        two_digits(text[11], text[12]),
        two_digits(text[14], text[15]),
        two_digits(text[17], text[18]),
    ) else {
        return Err(SHAPE);
    };
    // Rows mostly come in time order, so a timestamp's date is mostly the one before's.
    let date: [u8; 10] = [
        text[0], text[1], text[2], text[3], text[4], text[5], text[6], text[7], text[8], text[9],
    ];
    let days = match LAST_DATE.get() {
        (last, days) if last == date => days,
        _ => {
            let (Some(year), Some(month), Some(day)) = (
                digits(&text[0..4]),
                digits(&text[5..7]),
                digits(&text[8..10]),
            ) else {
                return Err(SHAPE);
            };
            let year = i64::from(year);
            if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
                return Err("no such date");
            }
            let days = days_from_civil(year, month, day);
            LAST_DATE.set((date, days));
            days
        }
    };
    if hour > 23 || minute > 59 || second > 60 {
        return Err("no such time of day");
    }
    let mut rest = &text[19..];
    let mut fraction: i64 = 0;
    if let Some((b'.', tail)) = rest.split_first() {
        let mut n = 0;
        let mut value = 0i64;
        while let Some(&b) = tail.get(n)
            && b.is_ascii_digit()
        {
            if n == 9 {
                return Err("a fraction of a second needs 1 to 9 digits");
            }
            value = value * 10 + i64::from(b - b'0');
            n += 1;
        }
        if n == 0 {
            return Err("a fraction of a second needs 1 to 9 digits");
        }
        fraction = value * NANOS_PER_DIGITS[n];
        rest = &tail[n..];
    }
    let offset = match rest {
        [] => default_offset.ok_or("the timestamp has no UTC offset (Z or ±hh:mm)")?,
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (Some(h), Some(m)) = (digits(&[*h1, *h2]), digits(&[*m1, *m2])) else {
                return Err(SHAPE);
            };
            if h > 23 || m > 59 {
                return Err("no such UTC offset");
            }
            let offset = i64::from(h * 3600 + m * 60);
            if *sign == b'-' { -offset } else { offset }
        }
        _ => return Err(SHAPE),
    };
    let seconds = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset;
    seconds
        .checked_mul(SECOND)
        .and_then(|ns| ns.checked_add(fraction))
        .ok_or(OUT_OF_RANGE)
}

/// [`parse_rfc3339`]'s error for a time that nanoseconds in an `i64` cannot hold.
const OUT_OF_RANGE: &str = "out of range (the years 1678 to 2261)";

/// Formats nanoseconds since the epoch as RFC 3339 UTC: milliseconds always, more digits only
/// when the time has them (`…T10:00:00.123Z`, `…T10:00:00.1234567Z`).
pub(crate) fn format_rfc3339(ns: Nanos) -> String {
    let mut out = Vec::with_capacity(32);
    push_rfc3339(&mut out, ns);
    String::from_utf8(out).unwrap_or_default()
}

/// A whole number in decimal, as `Display` writes it.
pub(crate) fn push_int(out: &mut Vec<u8>, value: i64) {
    if value < 0 {
        out.push(b'-');
    }
    // Two digits at a time from the right into the 20 that a `u64` has at most.
    let mut abs = value.unsigned_abs();
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    while abs >= 100 {
        at -= 2;
        buf[at..at + 2].copy_from_slice(&pair((abs % 100) as u32));
        abs /= 100;
    }
    if abs >= 10 {
        at -= 2;
        buf[at..at + 2].copy_from_slice(&pair(abs as u32));
    } else {
        at -= 1;
        buf[at] = b'0' + abs as u8;
    }
    out.extend_from_slice(&buf[at..]);
}

/// "00" to "99": two digits at a time.
const PAIRS: &[u8; 200] = b"00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899";

/// `value % 100`'s two digits.
#[inline(always)]
pub(crate) fn pair(value: u32) -> [u8; 2] {
    let i = 2 * (value % 100) as usize;
    [PAIRS[i], PAIRS[i + 1]]
}

/// `value % 100`'s two digits at `buf[at..at + 2]`.
#[inline(always)]
fn put_pair(buf: &mut [u8; 30], at: usize, value: u32) {
    buf[at..at + 2].copy_from_slice(&pair(value));
}

thread_local! {
    /// The day [`push_rfc3339`] wrote last on this thread, and its `YYYY-MM-DD` (`i64::MIN`,
    /// no day: a day since the epoch of nanoseconds in an `i64` is within ±106,752).
    static LAST_WRITTEN_DAY: std::cell::Cell<(i64, [u8; 10])> =
        const { std::cell::Cell::new((i64::MIN, [0; 10])) };
}

/// [`format_rfc3339`] appended to `out`, without allocating (`mismatches.csv` writes four
/// timestamps a line): laid out in a fixed buffer, copied once. The lines come mostly in time
/// order, so a time's date is mostly the one before's: kept a thread, the calendar worked out
/// once a day (the time of day and fraction are multiplications and a table).
pub(crate) fn push_rfc3339(out: &mut Vec<u8>, ns: Nanos) {
    let (days, rem) = (ns.div_euclid(DAY), ns.rem_euclid(DAY));
    let date = match LAST_WRITTEN_DAY.get() {
        (last, date) if last == days => date,
        _ => {
            let (year, month, day) = civil_from_days(days);
            // Always, for the years 1677 to 2262 of an `i64`'s nanoseconds.
            let Ok(year @ 0..=9999) = u32::try_from(year) else {
                return push_rfc3339_general(out, ns);
            };
            let mut buf = *b"0000-00-00T00:00:00.000000000Z";
            put_pair(&mut buf, 0, year / 100);
            put_pair(&mut buf, 2, year);
            put_pair(&mut buf, 5, month);
            put_pair(&mut buf, 8, day);
            let date: [u8; 10] = buf[..10].try_into().unwrap_or_default();
            LAST_WRITTEN_DAY.set((days, date));
            date
        }
    };
    // `rem` is 0 to a day less a nanosecond: unsigned, its divisions by constants are
    // multiplications.
    let rem = rem as u64;
    let secs = (rem / SECOND as u64) as u32;
    let fraction = (rem % SECOND as u64) as u32;
    let mut buf = *b"0000-00-00T00:00:00.000000000Z";
    buf[..10].copy_from_slice(&date);
    put_pair(&mut buf, 11, secs / 3600);
    put_pair(&mut buf, 14, secs / 60 % 60);
    put_pair(&mut buf, 17, secs % 60);
    // The fraction's nine digits, then its trailing zeros dropped down to three.
    buf[20] = b'0' + (fraction / 100_000_000) as u8;
    let low = fraction % 100_000_000;
    put_pair(&mut buf, 21, low / 1_000_000);
    put_pair(&mut buf, 23, low / 10_000);
    put_pair(&mut buf, 25, low / 100);
    put_pair(&mut buf, 27, low);
    let mut end = 29;
    while end > 23 && buf[end - 1] == b'0' {
        end -= 1;
    }
    buf[end] = b'Z';
    out.extend_from_slice(&buf[..=end]);
}

/// [`push_rfc3339`] for every time, the date worked out each time: its fallback for a year
/// past four digits, and the reference its tests hold it to.
#[cold]
#[inline(never)]
fn push_rfc3339_general(out: &mut Vec<u8>, ns: Nanos) {
    let (days, rem) = (ns.div_euclid(DAY), ns.rem_euclid(DAY));
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) {
        out.extend_from_slice(format!("{year:04}").as_bytes());
    }
    let secs = (rem / SECOND) as u32;
    let mut fraction = (rem % SECOND) as u32;
    // `YYYY-MM-DDTHH:MM:SS.fffffffffZ`, the fraction's trailing zeros dropped down to three.
    let mut buf = *b"0000-00-00T00:00:00.000000000Z";
    let year = year.rem_euclid(10_000) as u32;
    put_pair(&mut buf, 0, year / 100);
    put_pair(&mut buf, 2, year);
    put_pair(&mut buf, 5, month);
    put_pair(&mut buf, 8, day);
    put_pair(&mut buf, 11, secs / 3600);
    put_pair(&mut buf, 14, secs / 60 % 60);
    put_pair(&mut buf, 17, secs % 60);
    let mut digits = 9;
    while digits > 3 && fraction.is_multiple_of(10) {
        fraction /= 10;
        digits -= 1;
    }
    for slot in buf[20..20 + digits].iter_mut().rev() {
        *slot = b'0' + (fraction % 10) as u8;
        fraction /= 10;
    }
    buf[20 + digits] = b'Z';
    let from = if (0..=9999).contains(&year) { 0 } else { 4 };
    out.extend_from_slice(&buf[from..21 + digits]);
}

/// `2026-01-05`: the UTC date of a day since the epoch.
pub(crate) fn format_day(days: i64) -> String {
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}")
}

/// A telephone number as an integer key: its digits (every other character dropped, so
/// `+1 (425) 555-0100` and `+14255550100` are the same number), their count, and whether it
/// began with `+`. `0` is "no number": no digits, or more than 17.
#[inline(always)]
pub(crate) fn number_key(text: &[u8]) -> u64 {
    // Most numbers are `+` and 9 to 16 digits: read as two words, inlined; the others in a
    // call.
    let (plus, digits) = match text.split_first() {
        Some((b'+', rest)) => (1, rest),
        _ => (0, text),
    };
    match nine_to_sixteen_digits(digits) {
        Some(value) => value << 6 | (digits.len() as u64) << 1 | plus,
        None => number_key_other(text, plus, digits),
    }
}

/// [`number_key`] of a text that is not `+` and 9 to 16 digits (`digits`: the text after its
/// `+`, `plus`: 1 when it has one).
#[inline(never)]
fn number_key_other(text: &[u8], plus: u64, digits: &[u8]) -> u64 {
    // Digits only: read eight at a time, then one at a time (a copy of fewer than eight bytes
    // into a word would cost a call).
    if (1..=17).contains(&digits.len()) {
        let mut value = 0u64;
        let mut rest = digits;
        let mut plain = true;
        while let Some((head, tail)) = rest.split_first_chunk::<8>() {
            match eight_digits(u64::from_le_bytes(*head)) {
                Some(v) => value = value * 100_000_000 + v,
                None => plain = false,
            }
            rest = tail;
        }
        for &b in rest {
            plain &= b.is_ascii_digit();
            value = value * 10 + u64::from(b.wrapping_sub(b'0'));
        }
        if plain {
            return value << 6 | (digits.len() as u64) << 1 | plus;
        }
    }
    number_key_slow(text)
}

/// 9 to 16 ASCII digits (most telephone numbers) as their value, read as two words: the first
/// eight, and the last eight with those they share with the first read as zeros; `None` for
/// another length or a byte that is not a digit.
#[inline(always)]
fn nine_to_sixteen_digits(digits: &[u8]) -> Option<u64> {
    const POWERS: [u64; 9] = [
        1,
        10,
        100,
        1_000,
        10_000,
        100_000,
        1_000_000,
        10_000_000,
        100_000_000,
    ];
    let len = digits.len();
    if !(9..=16).contains(&len) {
        return None;
    }
    let first = u64::from_le_bytes(*digits.first_chunk::<8>()?);
    let last = u64::from_le_bytes(*digits.last_chunk::<8>()?);
    // The last word's low 16 − len bytes are the first word's too.
    let shared = (1u64 << (8 * (16 - len))) - 1;
    let last = last & !shared | ZEROS & shared;
    // Both words checked at once, one branch.
    if non_digits(first) | non_digits(last) != 0 {
        return None;
    }
    Some(digits_value(first) * POWERS[len - 8] + digits_value(last))
}

/// Eight ASCII digits (the first in the lowest byte) as their value, all at once; `None` when
/// one is not a digit.
#[inline(always)]
fn eight_digits(word: u64) -> Option<u64> {
    // Every byte 0x30 to 0x39: its high nibble 3, and adding 6 does not carry out of it.
    let high = 0xf0f0_f0f0_f0f0_f0f0;
    if word & high != 0x3030_3030_3030_3030
        || (word.wrapping_add(0x0606_0606_0606_0606)) & high != 0x3030_3030_3030_3030
    {
        return None;
    }
    Some(digits_value(word))
}

/// The value of eight ASCII digits (the first in the lowest byte), all checked before.
#[inline(always)]
fn digits_value(word: u64) -> u64 {
    let mut v = word - ZEROS;
    // Pairs of digits, then fours, then the eight.
    v = (v * 10 + (v >> 8)) & 0x00ff_00ff_00ff_00ff;
    v = (v * 100 + (v >> 16)) & 0x0000_ffff_0000_ffff;
    (v * 10_000 + (v >> 32)) & 0xffff_ffff
}

/// [`number_key`] a character at a time, whatever the characters.
fn number_key_slow(text: &[u8]) -> u64 {
    let mut value = 0u64;
    let mut count = 0u64;
    for &b in text {
        if b.is_ascii_digit() {
            count += 1;
            if count > 17 {
                return 0;
            }
            value = value * 10 + u64::from(b - b'0');
        }
    }
    if count == 0 {
        return 0;
    }
    let plus = u64::from(text.first() == Some(&b'+'));
    value << 6 | count << 1 | plus
}

/// The number a [`number_key`] stands for: `+14255550100`, or `""` for `0`.
pub(crate) fn format_number(key: u64) -> String {
    if key == 0 {
        return String::new();
    }
    let count = (key >> 1 & 31) as usize;
    let plus = if key & 1 == 1 { "+" } else { "" };
    format!("{plus}{:0count$}", key >> 6)
}

/// The key two numbers are matched by when a row has no call id: both numbers' digits, in
/// order, whatever their `+`.
pub(crate) fn pair_key(calling: u64, called: u64) -> u64 {
    let strip = |k: u64| k & !1;
    fold(
        strip(calling) ^ 0xa076_1d64_78bd_642f,
        strip(called) ^ 0xe703_7ed1_a0b4_28db,
    )
}

/// A 64-bit hash of a call id's bytes: [`oc_protocol::hash::of_bytes`]'s folded multiplies and
/// avalanche, but sixteen bytes a multiply rather than eight (a UUID, 36 bytes: three multiplies,
/// not five, each waiting for the one before). Never 0, which marks "no usable id". Two
/// different ids share a hash with a probability of about n²/2⁶⁵ among n ids (3·10⁻⁶ for 10
/// million): they would be taken for one repeated id and told apart by start time. Only the
/// index's tables and partitions use it, whose order reaches no output.
#[inline]
pub(crate) fn hash(bytes: &[u8]) -> u64 {
    let mut h = (bytes.len() as u64) ^ 0x2d35_8dcc_aa6c_78a5;
    let mut rest = bytes;
    while let Some((block, tail)) = rest.split_first_chunk::<16>() {
        h = fold16(block, h);
        rest = tail;
    }
    if !rest.is_empty() {
        // The last sixteen bytes, some of them hashed already, when there are sixteen (no copy
        // of a variable length, which is a call); the length in `h` tells the overlaps apart.
        h = match bytes.last_chunk::<16>() {
            Some(last) => fold16(last, h ^ 0x8ebc_6af0_9c88_c6e3),
            None => {
                let (a, b) = short_words(rest);
                fold(a ^ 0x8ebc_6af0_9c88_c6e3, b ^ h ^ 0x5899_65cc_7537_4cc3)
            }
        };
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h.max(1)
}

/// Sixteen bytes folded into a hash `h` in one multiply.
#[inline(always)]
fn fold16(block: &[u8; 16], h: u64) -> u64 {
    let (a, b) = block.split_at(8);
    let word = |w: &[u8]| u64::from_le_bytes(w.try_into().unwrap_or_default());
    fold(
        word(a) ^ 0xa076_1d64_78bd_642f,
        word(b) ^ h ^ 0xe703_7ed1_a0b4_28db,
    )
}

/// 1 to 15 bytes as two words: the first and the last eight (or four) bytes, which overlap,
/// or the first, middle and last byte of fewer than four.
#[inline(always)]
fn short_words(bytes: &[u8]) -> (u64, u64) {
    if let (Some(a), Some(b)) = (bytes.first_chunk::<8>(), bytes.last_chunk::<8>()) {
        return (u64::from_le_bytes(*a), u64::from_le_bytes(*b));
    }
    if let (Some(a), Some(b)) = (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
        return (
            u64::from(u32::from_le_bytes(*a)),
            u64::from(u32::from_le_bytes(*b)),
        );
    }
    match bytes {
        [] => (0, 0),
        [first, ..] => (
            u64::from(*first) << 16
                | u64::from(bytes[bytes.len() / 2]) << 8
                | u64::from(bytes[bytes.len() - 1]),
            0,
        ),
    }
}

/// A decimal amount (`0.31`, `-2`, `1.5e-3`) as integer millionths, rounded to the nearest.
#[inline]
pub(crate) fn parse_money(text: &[u8]) -> Option<i64> {
    // The common shape, `12.34`: read exactly, without going through a float (which agrees
    // up to 15 significant digits, and is slower).
    match parse_plain_money(text) {
        Some(value) => Some(value),
        None => parse_float_money(text),
    }
}

/// [`parse_money`] for the other shapes, through a float.
#[cold]
#[inline(never)]
fn parse_float_money(text: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(text).ok()?;
    let value: f64 = text.trim().parse().ok()?;
    value.is_finite().then(|| (value * 1e6).round() as i64)
}

/// `[-]digits[.digits]` with at most 12 whole and 6 fraction digits, as millionths.
#[inline]
fn parse_plain_money(text: &[u8]) -> Option<i64> {
    let (negative, body) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    // One pass: digits, at most one `.` (a short field costs more to search than to read).
    let mut value = 0i64;
    let mut whole = 0usize;
    let mut fraction: Option<usize> = None;
    for &b in body {
        if b.is_ascii_digit() {
            match &mut fraction {
                None => whole += 1,
                Some(n) => *n += 1,
            }
            // Up to 12 whole and 6 fraction digits: the millionths fit an i64 with room to
            // spare (more is rejected below, before the value is used).
            value = value.wrapping_mul(10).wrapping_add(i64::from(b - b'0'));
        } else if b == b'.' && fraction.is_none() {
            fraction = Some(0);
        } else {
            return None;
        }
    }
    let fraction = fraction.unwrap_or(0);
    if whole == 0 || whole > 12 || fraction > 6 {
        return None;
    }
    value *= 10i64.pow(6 - fraction as u32);
    Some(if negative { -value } else { value })
}

/// A whole number, optionally signed, without spaces.
#[inline]
pub(crate) fn parse_int(text: &[u8]) -> Option<i64> {
    let (negative, body) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    };
    if body.is_empty() || body.len() > 18 {
        return None;
    }
    // One pass: each byte checked as it is added.
    let mut value = 0i64;
    for &b in body {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        value = value * 10 + i64::from(digit);
    }
    Some(if negative { -value } else { value })
}

/// A decimal number of units (`12`, `12.5`, `-0.25`) scaled to nanoseconds by `unit` (the
/// nanoseconds in one unit), rounded to the nanosecond; none for anything else.
#[inline]
pub(crate) fn parse_scaled(text: &[u8], unit: i64) -> Option<i64> {
    // Most durations are whole units (`511340` milliseconds): digits only, the general reading
    // below gives the same.
    if (1..=18).contains(&text.len()) {
        // One pass: digits only, checked as they are added.
        let mut value = 0i64;
        let mut plain = true;
        for &b in text {
            let digit = b.wrapping_sub(b'0');
            plain &= digit <= 9;
            value = value.wrapping_mul(10).wrapping_add(i64::from(digit));
        }
        if plain {
            return value.checked_mul(unit);
        }
    }
    parse_scaled_general(text, unit)
}

/// [`parse_scaled`] for any shape.
#[inline(never)]
fn parse_scaled_general(text: &[u8], unit: i64) -> Option<i64> {
    let (whole, fraction) = match memchr::memchr(b'.', text) {
        Some(dot) => (&text[..dot], &text[dot + 1..]),
        None => (text, &b""[..]),
    };
    let negative = whole.first() == Some(&b'-');
    let whole_value = if whole == b"-" || whole.is_empty() {
        if fraction.is_empty() {
            return None;
        }
        0
    } else {
        parse_int(whole)?
    };
    if fraction.len() > 9 || !fraction.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut scaled = whole_value.checked_mul(unit)?;
    if !fraction.is_empty() {
        let digits = fraction
            .iter()
            .fold(0i128, |v, &b| v * 10 + i128::from(b - b'0'));
        let part = (digits * i128::from(unit) + 5 * 10i128.pow(fraction.len() as u32 - 1))
            / 10i128.pow(fraction.len() as u32);
        let part = i64::try_from(part).ok()?;
        scaled = if negative {
            scaled.checked_sub(part)?
        } else {
            scaled.checked_add(part)?
        };
    }
    Some(scaled)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn ids_of_every_length_and_every_byte_changed_hash_apart() {
        // Every prefix of a UUID-like id (each length reads its bytes another way), and every
        // one-byte change of each: all different, none 0.
        let id = b"dff1a71b-0ab1-6013-2714-3f42b5c5488e-2026-01-01";
        let mut seen = std::collections::HashSet::new();
        for len in 0..=id.len() {
            let prefix = &id[..len];
            assert!(seen.insert(hash(prefix)), "{len}");
            for i in 0..len {
                let mut changed = prefix.to_vec();
                changed[i] ^= 1;
                assert!(seen.insert(hash(&changed)), "{len} {i}");
            }
        }
        assert!(!seen.contains(&0));
        // Zero bytes count: a shorter id is not a longer one with zeros.
        assert_ne!(hash(b"ab"), hash(b"ab\0"));
    }

    fn fields(line: &str) -> Result<Vec<String>, (usize, &'static str)> {
        let mut spans = Vec::new();
        split(line.as_bytes(), b',', &mut spans)?;
        Ok(spans
            .iter()
            .map(|&s| String::from_utf8(field(line.as_bytes(), s).into_owned()).unwrap())
            .collect())
    }

    /// A line's start, its bytes, and its fields when the scan found them.
    type Scanned = (usize, Vec<u8>, Option<Vec<Vec<u8>>>);

    /// What [`LineScanner`] should give: the lines of `lines_inclusive`, without line ends,
    /// and `split`'s fields for those without a quote. The same from a scanner given a table
    /// that another scan left (here: arbitrary offsets, small and large), as a line read back
    /// is scanned: the table's slots are written for each line before they are read.
    fn scanned_lines(chunk: &[u8], delimiter: u8) -> Vec<Scanned> {
        let fresh = lines_of(LineScanner::new(chunk, delimiter));
        let mut table: DelimiterTable =
            std::array::from_fn(|i| (i as u32).wrapping_mul(7919) % 300);
        let kept = lines_of(LineScanner::with_table(chunk, delimiter, &mut table));
        assert_eq!(fresh, kept);
        fresh
    }

    fn lines_of<F: BorrowMut<DelimiterTable>>(mut scanner: LineScanner<'_, F>) -> Vec<Scanned> {
        let mut got = Vec::new();
        while let Some(scanned) = scanner.next_line() {
            let fields = scanned.delimiters.map(|delimiters| {
                let fields = LineFields::Plain {
                    line: scanned.line,
                    delimiters,
                };
                let raw: Vec<Vec<u8>> = (0..fields.len()).map(|i| fields.raw(i).to_vec()).collect();
                // The same fields from the bounds, and none past them.
                let bounds = scanned.bounds.unwrap();
                let bounded: Vec<Vec<u8>> = (0..fields.len())
                    .map(|i| bounded_field(scanned.line, bounds, i).to_vec())
                    .collect();
                assert_eq!(raw, bounded);
                assert!(bounded_field(scanned.line, bounds, fields.len()).is_empty());
                assert!(bounded_field(scanned.line, bounds, NO_FIELD).is_empty());
                raw
            });
            got.push((scanned.start, scanned.line.to_vec(), fields));
        }
        got
    }

    /// `len` letters with a `;` every seventh byte and on both sides of the first block edge.
    fn letters_and_delimiters(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| {
                if i % 7 == 3 || i == 63 || i == 64 {
                    b';'
                } else {
                    b'a' + (i % 26) as u8
                }
            })
            .collect()
    }

    #[test]
    fn lines_and_fields_found_in_one_pass_are_those_of_a_line_search_and_split() {
        // Lines of every length around the 64-byte blocks, delimiters on and around block edges,
        // quotes, `\r\n` endings, empty lines, with and without a last line end.
        let mut lines: Vec<Vec<u8>> = Vec::new();
        for len in [0, 1, 2, 15, 16, 17, 63, 64, 65, 127, 128, 129, 200] {
            let line = letters_and_delimiters(len);
            lines.push(line.clone());
            if len > 2 {
                let mut quoted = line.clone();
                quoted[len / 2] = b'"';
                lines.push(quoted);
                let mut cr = line.clone();
                cr.push(b'\r');
                lines.push(cr);
            }
        }
        for delimiter in [b';', b'\r'] {
            for skip in 0..lines.len() {
                for last_end in [true, false] {
                    let mut chunk = Vec::new();
                    let mut starts = Vec::new();
                    for line in lines.iter().cycle().skip(skip).take(lines.len() + 3) {
                        starts.push(chunk.len());
                        chunk.extend_from_slice(line);
                        chunk.push(b'\n');
                    }
                    if !last_end {
                        chunk.pop();
                    }
                    let mut want = Vec::new();
                    let mut at = 0;
                    for raw in super::super::source::lines_inclusive(&chunk) {
                        let line =
                            super::super::source::trim_cr(raw.strip_suffix(b"\n").unwrap_or(raw));
                        let fields = (!line.contains(&b'"')).then(|| {
                            let mut spans = Vec::new();
                            split(line, delimiter, &mut spans).unwrap();
                            spans.iter().map(|&s| field(line, s).into_owned()).collect()
                        });
                        want.push((at, line.to_vec(), fields));
                        at += raw.len();
                    }
                    assert_eq!(scanned_lines(&chunk, delimiter), want, "skip {skip}");
                }
            }
        }
        assert!(scanned_lines(b"", b',').is_empty());
        assert_eq!(
            scanned_lines(b"\n\na", b','),
            [
                (0, vec![], Some(vec![vec![]])),
                (1, vec![], Some(vec![vec![]])),
                (2, b"a".to_vec(), Some(vec![b"a".to_vec()]))
            ]
        );
    }

    #[test]
    fn a_call_after_the_last_line_gives_none_whatever_the_last_block_held() {
        // A last line without `\n` that ends a block, starting with a delimiter: its block's
        // flags, walked again at the next base, put that delimiter before the line's start.
        for len in [1, 63, 64, 65, 128] {
            let line: Vec<u8> = (0..len)
                .map(|i| if i % 5 == 0 { b',' } else { b'a' })
                .collect();
            for chunk in [line.clone(), [b"x\n".as_slice(), &line].concat()] {
                let mut scanner = LineScanner::new(&chunk, b',');
                while scanner.next_line().is_some() {}
                assert!(scanner.next_line().is_none(), "{len}");
            }
        }
    }

    #[test]
    fn a_line_with_more_delimiters_than_the_scanner_keeps_is_left_to_split() {
        let wide = [b';'; SCANNED_FIELDS + 1];
        let narrow = [b';'; SCANNED_FIELDS];
        let chunk = [&wide[..], b"\n", &narrow[..], b"\nx"].concat();
        let lines = scanned_lines(&chunk, b';');
        assert_eq!(lines.len(), 3);
        assert_eq!((lines[0].0, lines[0].2.as_ref()), (0, None));
        assert_eq!(lines[1].2.as_ref().map(Vec::len), Some(SCANNED_FIELDS + 1));
        assert_eq!(lines[2].2, Some(vec![b"x".to_vec()]));
    }

    #[test]
    fn lossy_text_is_borrowed_unless_unescaped_or_invalid() {
        assert!(matches!(
            lossy(Cow::Borrowed(b"+1425")),
            Cow::Borrowed("+1425")
        ));
        assert_eq!(lossy(Cow::Borrowed(b"a\xffb")), "a\u{FFFD}b");
        assert_eq!(lossy(Cow::Owned(b"say \"hi\"".to_vec())), "say \"hi\"");
        assert_eq!(lossy(Cow::Owned(b"\xff".to_vec())), "\u{FFFD}");
    }

    #[test]
    fn quoted_line_fields_read_through_split() {
        let line = b"x,\"say \"\"hi\"\"\",\"a,b\"";
        let mut spans = Vec::new();
        split(line, b',', &mut spans).unwrap();
        let fields = LineFields::Split {
            line,
            spans: &spans,
        };
        assert_eq!(fields.len(), 3);
        assert!(fields.escaped());
        assert_eq!(&*fields.get(1), b"say \"hi\"");
        assert_eq!(fields.raw(2), b"a,b");
        assert_eq!((fields.start(1), fields.start(2)), (3, 16));
        let plain = LineFields::Plain {
            line: b"ab,,c",
            delimiters: &[2, 3],
        };
        assert!(!plain.escaped());
        assert_eq!(
            (0..3)
                .map(|i| plain.get(i).into_owned())
                .collect::<Vec<_>>(),
            [b"ab".to_vec(), vec![], b"c".to_vec()]
        );
        assert_eq!((plain.start(0), plain.start(1), plain.start(2)), (0, 3, 4));
    }

    #[test]
    fn line_end_masks_without_vectors_are_the_vector_ones() {
        for seed in 0..64u64 {
            let mut block = [0u8; 16];
            for (i, b) in block.iter_mut().enumerate() {
                *b = [b'\n', b';', b'"', b'a', b'\r', 0x80, 0xff, b'0']
                    [((seed * 7 + i as u64 * (seed | 1)) % 8) as usize];
            }
            assert_eq!(
                masks16(&block, b';'),
                masks16_words(&block, b';'),
                "{block:?}"
            );
        }
    }

    #[test]
    fn block_masks_with_quotes_found_once_a_block_are_those_of_each_quarter() {
        for seed in 0..256u64 {
            let mut block = [0u8; 64];
            for (i, b) in block.iter_mut().enumerate() {
                // Quotes in a quarter of the blocks only, at any place.
                let choices: &[u8] = if seed % 4 == 0 {
                    &[b'\n', b',', b'"', b'a', b'\r', 0x80, 0xff, b'0']
                } else {
                    &[b'\n', b',', b'a', b'a', b'\r', 0x80, 0xff, b'0']
                };
                *b = choices[((seed * 7 + i as u64 * (seed | 1) + (i as u64 >> 3)) % 8) as usize];
            }
            assert_eq!(
                masks64(&block, b','),
                masks64_quarters(&block, b','),
                "{block:?}"
            );
        }
    }

    #[test]
    fn csv_fields_split_with_and_without_quotes() {
        assert_eq!(fields("a,b,,c").unwrap(), ["a", "b", "", "c"]);
        assert_eq!(fields("").unwrap(), [""]);
        assert_eq!(fields("a,").unwrap(), ["a", ""]);
        assert_eq!(fields("\"a,b\",c").unwrap(), ["a,b", "c"]);
        assert_eq!(
            fields("x,\"say \"\"hi\"\"\",y").unwrap(),
            ["x", "say \"hi\"", "y"]
        );
        assert_eq!(fields("x,\"\"").unwrap(), ["x", ""]);
        assert_eq!(fields("\"a\",").unwrap(), ["a", ""]);
        assert_eq!(fields("a,\"open"), Err((2, UNCLOSED)));
        assert_eq!(fields("\"a\"b,c"), Err((3, "text after a closing quote")));
        // Lines longer than one 64-byte block, with delimiters on and around the block edges,
        // and a quote only in a later block, split as a plain field-by-field scan would.
        for len in [63, 64, 65, 127, 128, 129, 200] {
            for quote_at in [None, Some(len - 1), Some(70.min(len - 1))] {
                let mut line = letters_and_delimiters(len);
                if let Some(q) = quote_at {
                    line[q] = b'"';
                }
                let mut spans = Vec::new();
                let got = split(&line, b';', &mut spans).map(|()| {
                    spans
                        .iter()
                        .map(|&s| field(&line, s).into_owned())
                        .collect::<Vec<_>>()
                });
                // A quote opening a field that does not close is an error; one inside a field
                // is text: whatever block either is in.
                let want = match quote_at {
                    Some(q) if q == 0 || line[q - 1] == b';' => Err((q, UNCLOSED)),
                    _ => Ok(line.split(|&b| b == b';').map(<[u8]>::to_vec).collect()),
                };
                assert_eq!(got, want, "{len} {quote_at:?}");
            }
        }
    }

    #[test]
    fn delimiter_flags_agree_with_a_byte_by_byte_look_on_every_byte_value() {
        // Every byte value at every place of a block, against a delimiter of every kind
        // (the comma, the semicolon, a tab, the quote itself, byte 0 and a high byte): the
        // vector flags (on this target) and the word flags (other targets) as a plain loop.
        for delimiter in [b',', b';', b'\t', b'"', 0, 0xff] {
            for value in 0..=255u8 {
                for place in 0..16 {
                    let mut block: [u8; 16] = std::array::from_fn(|i| b'a' + i as u8);
                    block[place] = value;
                    block[(place + 5) % 16] = delimiter;
                    let want = block.iter().enumerate().fold((0, 0), |(d, q), (i, &b)| {
                        (
                            d | u32::from(b == delimiter) << i,
                            q | u32::from(b == b'"') << i,
                        )
                    });
                    assert_eq!(
                        flags16(&block, delimiter),
                        want,
                        "{delimiter} {value} {place}"
                    );
                    assert_eq!(
                        flags16_words(&block, delimiter),
                        want,
                        "{delimiter} {value} {place}"
                    );
                }
            }
        }
    }

    #[test]
    fn lines_of_every_length_split_as_a_plain_scan_would() {
        // Lengths around the 16- and 64-byte blocks (the tail read as the line's last block,
        // or copied when the line is shorter than sixteen bytes), delimiters everywhere
        // including the first and last byte, and a quote in each place: a quote sends the line
        // to the field-by-field reader whichever block it is in.
        for len in 0..200 {
            for step in [1, 2, 3, 5, 16, 17, 63, 64, 65] {
                let line: Vec<u8> = (0..len)
                    .map(|i| {
                        if i % step == 0 {
                            b','
                        } else {
                            b'0' + (i % 10) as u8
                        }
                    })
                    .collect();
                let mut spans = Vec::new();
                split(&line, b',', &mut spans).unwrap();
                let got: Vec<&[u8]> = spans
                    .iter()
                    .map(|s| &line[s.start as usize..s.end as usize])
                    .collect();
                let want: Vec<&[u8]> = line.split(|&b| b == b',').collect();
                assert_eq!(got, want, "{len} {step}");
                for q in 0..len {
                    let mut quoted = line.clone();
                    quoted[q] = b'"';
                    let got = split(&quoted, b',', &mut spans).map(|()| {
                        spans
                            .iter()
                            .map(|&s| field(&quoted, s).into_owned())
                            .collect::<Vec<_>>()
                    });
                    // The line's one quote: opening a field, it never closes; inside one, it
                    // is text.
                    let want = if q == 0 || quoted[q - 1] == b',' {
                        Err((q, UNCLOSED))
                    } else {
                        Ok(quoted.split(|&b| b == b',').map(<[u8]>::to_vec).collect())
                    };
                    assert_eq!(got, want, "{len} {step} {q}");
                }
            }
        }
    }

    #[test]
    fn fractions_of_a_second_have_one_to_nine_digits() {
        let at = |text: &str| parse_rfc3339(text.as_bytes(), None);
        let whole = at("2026-01-05T10:00:00Z").unwrap();
        assert_eq!(at("2026-01-05T10:00:00.5Z"), Ok(whole + 500_000_000));
        assert_eq!(at("2026-01-05T10:00:00.1234567Z"), Ok(whole + 123_456_700));
        assert_eq!(
            at("2026-01-05T10:00:00.123456789Z"),
            Ok(whole + 123_456_789)
        );
        for bad in ["2026-01-05T10:00:00.Z", "2026-01-05T10:00:00.1234567890Z"] {
            assert_eq!(
                at(bad),
                Err("a fraction of a second needs 1 to 9 digits"),
                "{bad}"
            );
        }
        assert!(at("2026-01-05T1a:00:00Z").is_err());
        assert!(at("2026-01-05T10:00:6/Z").is_err());
    }

    /// [`push_rfc3339`]'s date kept from the call before is the one worked out for each time,
    /// at the awkward instants (day, month, leap-day and century edges, the epoch, before it,
    /// the ends of an `i64`) taken in order, out of order and repeated, and at random ones.
    #[test]
    fn timestamps_written_with_the_day_kept_are_those_written_without() {
        let day = |y: i64, m: u32, d: u32| days_from_civil(y, m, d) * DAY;
        let mut instants = vec![0, -1, 1, i64::MIN, i64::MAX, i64::MIN + 1, i64::MAX - 1];
        for (y, m, d) in [
            (1970, 1, 1),
            (1969, 12, 31),
            (2000, 2, 28),
            (2000, 2, 29),
            (2000, 3, 1),
            (2100, 2, 28),
            (2100, 3, 1),
            (2024, 2, 29),
            (2026, 12, 31),
            (1678, 1, 1),
            (2261, 12, 31),
            (1900, 3, 1),
        ] {
            let at = day(y, m, d);
            for delta in [
                0,
                -1,
                1,
                999_999,
                1_000_000,
                SECOND - 1,
                SECOND,
                DAY - 1,
                DAY,
            ] {
                instants.extend(at.checked_add(delta));
                instants.extend(at.checked_sub(delta));
            }
            instants.push(at + 12 * 3600 * SECOND + 123_456_700);
        }
        let mut x: i64 = 0x0bad_cafe_f00d_d00d;
        for i in 0..20_000i64 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            // Runs of times in the same day, and jumps between days and years.
            let base = instants[instants.len() - 1];
            instants.push(match i % 5 {
                0 => x,
                1 | 2 => base.saturating_add(x % (2 * 3600 * SECOND)),
                3 => (x % (200 * 365 * DAY)) / 1000 * 1000,
                _ => base.saturating_add((x % 100) * DAY),
            });
        }
        let general = |ns: Nanos| {
            let mut out = Vec::new();
            push_rfc3339_general(&mut out, ns);
            out
        };
        let mut order = instants.clone();
        order.extend(instants.iter().rev());
        order.extend(instants.iter().flat_map(|&ns| [ns, ns]));
        for ns in order {
            let mut out = b"x".to_vec();
            push_rfc3339(&mut out, ns);
            assert_eq!(out[1..], general(ns), "{ns}");
        }
    }

    #[test]
    fn timestamps_and_integers_are_written_as_format_writes_them() {
        let reference = |ns: Nanos| {
            let (days, rem) = (ns.div_euclid(DAY), ns.rem_euclid(DAY));
            let (year, month, day) = civil_from_days(days);
            let secs = rem / SECOND;
            let mut fraction = format!("{:09}", rem % SECOND);
            while fraction.len() > 3 && fraction.ends_with('0') {
                fraction.pop();
            }
            format!(
                "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{fraction}Z",
                secs / 3600,
                secs / 60 % 60,
                secs % 60
            )
        };
        let mut x: i64 = 0x1234_5678_9abc_def1;
        for i in 0..20_000i64 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let ns = match i % 4 {
                0 => x,
                1 => x % (100 * 365 * DAY),
                2 => (x % (1 << 40)) * 1_000_000,
                _ => (x % (1 << 30)) * SECOND,
            };
            assert_eq!(format_rfc3339(ns), reference(ns), "{ns}");
            let mut out = Vec::new();
            push_int(&mut out, x >> (i % 64));
            assert_eq!(out, (x >> (i % 64)).to_string().as_bytes());
        }
        for n in [0, 9, 10, -1, i64::MIN, i64::MAX] {
            let mut out = Vec::new();
            push_int(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }

    /// Strings around the fixed layouts: each template, and each with one byte replaced by
    /// each of a set of bytes (digits out of range, separators, letters, the end).
    pub(crate) fn layouts_and_near_misses() -> Vec<Vec<u8>> {
        let templates = [
            "2026-11-03T10:15:42.1234567Z",
            "2026-11-03 10:15:42",
            "2026-11-03T10:15:42Z",
            "2026-11-03T10:15:42.1Z",
            "2026-11-03T10:15:42.12345678Z",
            "2026-11-03T10:15:42.123456789Z",
            "2026-11-03T10:15:42.1234567890Z",
            "2024-02-29T23:59:59.999Z",
            "2023-02-29T00:00:00Z",
            "2026-12-31T23:59:60Z",
            "2026-01-05t10:00:00z",
            "2026-01-05T10:00:00.250+01:00",
            "2026-01-05 10:00:00.5",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999999Z",
        ];
        let replacements = b"0123456789:-.TtZz +/ \x00\xff";
        let mut out = Vec::new();
        for template in templates {
            let template = template.as_bytes();
            out.push(template.to_vec());
            for at in 0..template.len() {
                for &b in replacements {
                    let mut text = template.to_vec();
                    text[at] = b;
                    out.push(text);
                }
                out.push(template[..at].to_vec());
            }
        }
        out
    }

    #[test]
    fn the_fixed_timestamp_layouts_read_as_the_general_parser_reads_them() {
        let mut fast = 0;
        for text in layouts_and_near_misses() {
            for default in [None, Some(0), Some(-18_000)] {
                let general = parse_rfc3339_general(&text, default);
                if let Some(ns) = fixed_rfc3339(&text, default) {
                    fast += 1;
                    assert_eq!(Ok(ns), general, "{}", String::from_utf8_lossy(&text));
                }
                // Whichever path reads it, the answer (or the error) is the general parser's.
                assert_eq!(
                    parse_rfc3339(&text, default),
                    general,
                    "{}",
                    String::from_utf8_lossy(&text)
                );
            }
        }
        // The exports' layouts take the fast path; others (an offset, a leap second, `t`)
        // fall back.
        for (text, default) in [
            ("2026-11-03T10:15:42.1234567Z", None),
            ("2026-11-03 10:15:42", Some(3600)),
            ("2026-11-03T10:15:42.123456789Z", None),
            ("2026-11-03T10:15:42Z", None),
        ] {
            assert!(fixed_rfc3339(text.as_bytes(), default).is_some(), "{text}");
        }
        for (text, default) in [
            ("2026-11-03T10:15:42+01:00", None),
            ("2026-12-31T23:59:60Z", None),
            ("2026-11-03t10:15:42Z", None),
            ("2026-11-03 10:15:42", None),
            ("2026-02-29T10:15:42Z", None),
        ] {
            assert!(fixed_rfc3339(text.as_bytes(), default).is_none(), "{text}");
        }
        assert!(fast > 100, "{fast}");
        // Past what nanoseconds in an i64 hold: an error, on either path.
        for text in [
            "2262-04-12T00:00:00Z",
            "1677-09-21 00:00:00",
            "0001-01-01T00:00:00+01:00",
        ] {
            assert_eq!(
                parse_rfc3339(text.as_bytes(), Some(0)),
                Err(OUT_OF_RANGE),
                "{text}"
            );
        }
    }

    #[test]
    fn days_from_civil_in_unsigned_arithmetic_agree_with_the_protocol() {
        for year in (1..=2600).chain([9_998, 9_999]) {
            for month in 1..=12 {
                for day in [1, 15, 28, days_in_month(i64::from(year), month)] {
                    assert_eq!(
                        days_from_civil_ad(year, month, day),
                        days_from_civil(i64::from(year), month, day),
                        "{year}-{month}-{day}"
                    );
                }
            }
        }
    }

    #[test]
    fn numbers_of_nine_to_sixteen_digits_read_as_one_digit_at_a_time() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for i in 0..5_000u64 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let len = 1 + (i % 19) as usize;
            let mut text: Vec<u8> = (0..len)
                .map(|k| b'0' + ((x >> (k * 3)) % 10) as u8)
                .collect();
            // Every third number has one byte that is not a digit somewhere: the digits'
            // neighbours, and bytes that differ from a digit in their high bits only.
            if i % 3 == 0 {
                let at = (x >> 60) as usize % len;
                let other = [
                    b' ', b'-', b'(', b'/', b':', b'a', 0x00, 0xb9, 0xff, 0x70, 0x10,
                ];
                text[at] = other[(x >> 40) as usize % other.len()];
            }
            let plus = if i % 2 == 0 { "+" } else { "" };
            let full = [plus.as_bytes(), &text].concat();
            assert_eq!(
                number_key(&full),
                number_key_slow(&full),
                "{}",
                String::from_utf8_lossy(&full)
            );
            let fast = nine_to_sixteen_digits(&text);
            assert_eq!(fast.is_some(), (9..=16).contains(&len) && i % 3 != 0);
            if let Some(value) = fast {
                assert_eq!(
                    Ok(value),
                    std::str::from_utf8(&text).unwrap().parse::<u64>()
                );
            }
        }
    }

    #[test]
    fn whole_durations_and_plain_money_read_as_the_general_rules() {
        // A duration of digits only takes the fast path: the same as its reading with a `.0`.
        for text in ["0", "7", "511340", "000123", "999999999999999999"] {
            for unit in [1, 1_000_000, SECOND] {
                let with_fraction = format!("{text}.0");
                assert_eq!(
                    parse_scaled(text.as_bytes(), unit),
                    parse_scaled(with_fraction.as_bytes(), unit),
                    "{text} {unit}"
                );
            }
        }
        assert_eq!(parse_scaled(b"511340", 1_000_000), Some(511_340_000_000));
        assert_eq!(parse_scaled(b"9999999999999999999", 1), None);
        assert_eq!(parse_scaled(b"999999999999999999", SECOND), None);
        // Money in one pass: the same millionths as a float's reading, for the plain shapes.
        for text in [
            "0.01",
            "0",
            "12.5",
            "-2",
            "-0.000001",
            "5.",
            "1.2345678",
            ".5",
            "1.2.3",
            "1e-3",
            "-",
            "",
            "1,5",
            "1234567890123",
        ] {
            let float = text.parse::<f64>().ok().map(|v| (v * 1e6).round() as i64);
            assert_eq!(parse_money(text.as_bytes()), float, "{text}");
        }
        assert_eq!(parse_plain_money(b"1.2345678"), None);
        assert_eq!(parse_plain_money(b"1234567890123"), None);
        assert_eq!(
            parse_plain_money(b"123456789012.123456"),
            Some(123_456_789_012_123_456)
        );
    }

    #[test]
    fn timestamps_agree_with_the_time_crate() {
        use time::format_description::well_known::Rfc3339;
        for text in [
            "2026-01-05T10:00:00.123Z",
            "2019-11-01T00:00:08.2589935Z",
            "1999-12-31T23:59:59Z",
            "2024-02-29T12:30:00.000000001+02:00",
            "2026-03-01T00:00:00-05:30",
            "1969-07-20T20:17:40Z",
        ] {
            let expected = time::OffsetDateTime::parse(text, &Rfc3339)
                .unwrap()
                .unix_timestamp_nanos();
            assert_eq!(
                i128::from(parse_rfc3339(text.as_bytes(), None).unwrap()),
                expected,
                "{text}"
            );
        }
        assert_eq!(
            parse_rfc3339(b"2026-01-05 10:00:00", Some(3600)).unwrap(),
            parse_rfc3339(b"2026-01-05T09:00:00Z", None).unwrap()
        );
        for bad in [
            "2026-02-30T00:00:00Z",
            "2026-01-05T10:00:00",
            "2026-01-05T24:00:00Z",
            "2026-01-05",
            "2026-01-05T10:00:00.Z",
            "2026-01-05T10:00:00.1234567891Z",
            "2026-01-05T10:00:00+1:00",
        ] {
            assert!(parse_rfc3339(bad.as_bytes(), None).is_err(), "{bad}");
        }
    }

    #[test]
    fn formatted_timestamps_read_back() {
        for text in [
            "2026-01-05T10:00:00.123Z",
            "2019-11-01T00:00:08.2589935Z",
            "1960-02-29T23:59:59.000Z",
        ] {
            assert_eq!(
                format_rfc3339(parse_rfc3339(text.as_bytes(), None).unwrap()),
                text
            );
        }
        assert_eq!(format_day(days_from_civil(2026, 1, 5)), "2026-01-05");
    }

    #[test]
    fn numbers_are_keyed_by_their_digits() {
        let key = number_key(b"+1 (425) 555-0100");
        assert_eq!(key, number_key(b"+14255550100"));
        assert_eq!(format_number(key), "+14255550100");
        assert_eq!(format_number(number_key(b"04255550100")), "04255550100");
        assert_ne!(number_key(b"0425"), number_key(b"425"));
        assert_eq!(number_key(b"anonymous"), 0);
        assert_eq!(number_key(b"123456789012345678"), 0);
        // Digits read eight at a time give what a character at a time gives, at every length
        // and with a non-digit at every place.
        let digits = b"98765432109876543210";
        for len in 0..=19 {
            for plus in [false, true] {
                let mut text = Vec::new();
                if plus {
                    text.push(b'+');
                }
                text.extend_from_slice(&digits[..len]);
                assert_eq!(number_key(&text), number_key_slow(&text), "{text:?}");
                for at in 0..text.len() {
                    for odd in [b'/', b':', b' ', b'-', 0x80 | b'5', b'+'] {
                        let mut bad = text.clone();
                        bad[at] = odd;
                        assert_eq!(number_key(&bad), number_key_slow(&bad), "{bad:?}");
                    }
                }
            }
        }
        assert_eq!(number_key(b"+14255008038") >> 6, 14_255_008_038);
        assert_eq!(
            pair_key(number_key(b"+1425"), number_key(b"+1426")),
            pair_key(number_key(b"1425"), number_key(b"1426"))
        );
        assert_ne!(
            pair_key(number_key(b"+1425"), number_key(b"+1426")),
            pair_key(number_key(b"+1426"), number_key(b"+1425"))
        );
    }

    #[test]
    fn scaled_numbers_and_money() {
        assert_eq!(parse_scaled(b"1500", 1_000_000), Some(1_500_000_000));
        assert_eq!(parse_scaled(b"1.5", SECOND), Some(1_500_000_000));
        assert_eq!(parse_scaled(b"-0.25", SECOND), Some(-250_000_000));
        assert_eq!(parse_scaled(b"2.5", 60 * SECOND), Some(150 * SECOND));
        assert_eq!(parse_scaled(b"", SECOND), None);
        assert_eq!(parse_scaled(b"1x", SECOND), None);
        assert_eq!(parse_money(b"0.31"), Some(310_000));
        assert_eq!(parse_money(b"1e-3"), Some(1000));
        assert_eq!(parse_money(b"abc"), None);
        // The exact reading of plain amounts agrees with the float one it skips.
        for text in [
            "0",
            "0.01",
            "-0.5",
            "1.",
            "12.345678",
            "123456789.123456",
            "-0.000001",
            "7.25",
            "999999999999999",
            ".5",
            "+1.5",
            " 2 ",
            "1.2345678",
        ] {
            let float: f64 = text.trim().parse().unwrap();
            assert_eq!(
                parse_money(text.as_bytes()),
                Some((float * 1e6).round() as i64),
                "{text}"
            );
        }
        assert_eq!(parse_money(b"1.2.3"), None);
        assert_eq!(parse_money(b"-"), None);
        assert_eq!(parse_int(b"-12"), Some(-12));
        assert_eq!(parse_int(b"1 2"), None);
    }
}
