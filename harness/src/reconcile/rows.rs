//! The compact rows both sides are read into (integers only: hashes, number keys, nanoseconds,
//! a packed file offset), what a parsing thread hands back for one chunk, and the filters
//! (`--operator`, `--from`, `--to`) applied while parsing.

use std::collections::BTreeMap;

use super::text::Nanos;

/// Who gave Teams the duration it billed (`callDurationSource`); its value is what
/// [`TeamsRow`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DurationSource {
    /// The row does not say.
    Unknown = 0,
    /// Teams' own measure: the carrier's report was missing or late.
    Microsoft = 1,
    /// The carrier's report.
    Operator = 2,
}

/// One Teams call (a `pstnCallLogRow`), compact, as the index keeps it: 40 bytes. Its numbers'
/// pair, which only carrier rows without an id are matched by, is read back from its file
/// when such rows come ([`super::pairs`]); the earlier row of its id, when there is one, is in
/// the index's table of chains ([`super::matching`]), which only repeated ids use.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TeamsRow {
    /// [`super::text::hash`] of `callId`; 0 without a usable one.
    pub(crate) id: u64,
    /// The place of the Teams user's number ([`ReadTeamsRow::number`]) in the figures' table
    /// of numbers, set when the row is indexed.
    pub(crate) slot: u32,
    /// `startDateTime`.
    pub(crate) start: Nanos,
    /// `endDateTime − startDateTime`: what Teams measured.
    pub(crate) measured: Nanos,
    /// Where the row is ([`super::source::pack_source`]).
    pub(crate) source: u64,
    /// `duration` (whole seconds, what Teams billed), `callDurationSource`, and whether an
    /// earlier row has the same id, in one word: bits 0 and 1 the source, bit 2 the chain,
    /// the rest the billed seconds + 1 (0: absent). 8 bytes a row less than apart: 80 MB of
    /// memory the kernel need not clear for 10 million rows.
    billing: u32,
}

/// The most billed seconds a Teams row can hold (about 17 years): what the rest of
/// [`TeamsRow`]'s word holds, less the 0 that says "absent".
pub(crate) const MAX_BILLED: u32 = (1 << 29) - 2;

/// [`TeamsRow`]'s chain bit.
const CHAINED: u32 = 1 << 2;

impl TeamsRow {
    /// A row, unchained, its number's slot 0; `billed` at most [`MAX_BILLED`].
    pub(crate) fn new(
        id: u64,
        start: Nanos,
        measured: Nanos,
        source: u64,
        billed: Option<u32>,
        duration_source: DurationSource,
    ) -> Self {
        let mut row = Self {
            id,
            slot: 0,
            start,
            measured,
            source,
            billing: duration_source as u32,
        };
        row.set_billed(billed);
        row
    }

    /// What Teams billed, whole seconds; `None` when the row does not say.
    pub(crate) fn billed(&self) -> Option<u32> {
        (self.billing >> 3).checked_sub(1)
    }

    /// Sets what Teams billed (at most [`MAX_BILLED`]: more is a bug of the caller's).
    pub(crate) fn set_billed(&mut self, billed: Option<u32>) {
        let value = match billed {
            Some(seconds) => {
                assert!(seconds <= MAX_BILLED, "{seconds} billed seconds do not fit");
                seconds + 1
            }
            None => 0,
        };
        self.billing = self.billing & 0b111 | value << 3;
    }

    /// Who gave Teams the duration it billed.
    pub(crate) fn duration_source(&self) -> DurationSource {
        match self.billing & 0b11 {
            1 => DurationSource::Microsoft,
            2 => DurationSource::Operator,
            _ => DurationSource::Unknown,
        }
    }

    /// Whether an earlier row of the index has the same id.
    pub(crate) fn chained(&self) -> bool {
        self.billing & CHAINED != 0
    }

    pub(crate) fn set_chained(&mut self) {
        self.billing |= CHAINED;
    }
}

/// A Teams row as a parsing thread reads it: the row, and the Teams user's number, which
/// the figures of the row's partition turn into [`TeamsRow::slot`] before the index keeps the
/// row. The number stays out of the index: 8 bytes of 64 a row, which the kernel would have
/// to clear for every row (10 million rows: 80 MB).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadTeamsRow {
    pub(crate) row: TeamsRow,
    /// The Teams user's number ([`super::text::number_key`]): the callee of an inbound call
    /// (`callType` `…_in`), the caller otherwise.
    pub(crate) number: u64,
}

/// "No row" wherever a row index is optional.
pub(crate) const NONE: u32 = u32::MAX;

/// One carrier CDR, compact.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CarrierRow {
    /// [`super::text::hash`] of the call id; 0 without one.
    pub(crate) id: u64,
    /// [`super::text::number_key`]s of the two numbers. Their [`super::text::pair_key`], which
    /// only rows without an id are matched by, is made for those rows alone, when they are
    /// matched: not kept, so that a row is 64 bytes, one cache line.
    pub(crate) calling: u64,
    pub(crate) called: u64,
    /// The connect time.
    pub(crate) connect: Nanos,
    /// The duration the carrier recorded.
    pub(crate) duration: Nanos,
    /// The charge, millionths; 0 without a charge column.
    pub(crate) charge: i64,
    pub(crate) source: u64,
    /// The last Teams row with its id in the id's partition of the index
    /// ([`super::matching::Index::head`]), looked up on the parsing thread; [`NONE`] when
    /// Teams has no row with its id, or it has none.
    pub(crate) head: u32,
}

/// A row that could not be read, as the parsing thread saw it: `line` counts from the chunk's
/// first line (0-based); the file and the absolute line are added in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub(crate) line: u64,
    /// 1-based byte column of the field (or of the JSON error), when known.
    pub(crate) column: Option<u64>,
    /// The field's name as the input names it.
    pub(crate) field: Option<String>,
    pub(crate) message: String,
}

/// What one chunk gave: its rows, its problems, and the counts that must add up.
#[derive(Debug)]
pub(crate) struct Parsed<R> {
    pub(crate) file: u16,
    /// The line number of the chunk's first line when the chunk knows it (the first chunk of a
    /// file, a JSON file read whole); later chunks follow on from the previous one.
    pub(crate) first_line: Option<u64>,
    /// Lines in the chunk.
    pub(crate) lines: u64,
    /// Bytes in the chunk.
    pub(crate) chunk_bytes: u64,
    /// Rows read (kept, filtered out or rejected).
    pub(crate) read: u64,
    /// Rows outside `--operator`, `--from`, `--to`.
    pub(crate) filtered: u64,
    /// The kept rows by the partition of their call id (rows without an id in the first), in
    /// file order: one vector per partition of the index.
    pub(crate) rows: Vec<Vec<R>>,
    pub(crate) problems: Vec<Problem>,
    /// Teams' `charge` by `currency`, millionths, of the kept rows.
    pub(crate) charges: ChargeSums,
    /// The file is not read past this chunk: JSON that cannot be read on.
    pub(crate) stopped: bool,
    /// A JSON file's top-level `[` less its `]` in this chunk: they must cancel out over the
    /// file.
    pub(crate) array_balance: i64,
}

impl<R> Parsed<R> {
    pub(crate) fn new(file: u16, first_line: Option<u64>) -> Self {
        Self {
            file,
            first_line,
            lines: 0,
            chunk_bytes: 0,
            read: 0,
            filtered: 0,
            rows: vec![Vec::new()],
            problems: Vec::new(),
            charges: ChargeSums::default(),
            stopped: false,
            array_balance: 0,
        }
    }

    /// Takes the vectors to keep rows in (one per partition of the index, at least one), each
    /// emptied and with room for a row every 64 bytes of a `chunk_bytes` chunk, however the
    /// rows fall: the vectors are used before (see the carrier's `parse_csv`), so room that
    /// no row fills costs nothing, and rows seldom grow one (growing copies them).
    pub(crate) fn keep_in(&mut self, mut rows: Vec<Vec<R>>, chunk_bytes: usize) {
        if rows.is_empty() {
            rows.push(Vec::new());
        }
        for part in &mut rows {
            part.clear();
            part.reserve(chunk_bytes / 64 + 1);
        }
        self.rows = rows;
    }

    /// Keeps a row whose call id is `id` (0: none), after the rows kept before it.
    #[inline(always)]
    pub(crate) fn push(&mut self, id: u64, row: R) {
        let k = super::matching::partition(id, self.rows.len());
        self.rows[k].push(row);
    }

    /// The rows kept in one vector (by a parser that does not take vectors) moved into
    /// `rows`, one per partition, in order.
    pub(crate) fn repartition(&mut self, rows: Vec<Vec<R>>, id: impl Fn(&R) -> u64) {
        let kept: Vec<R> = std::mem::take(&mut self.rows)
            .into_iter()
            .flatten()
            .collect();
        self.keep_in(rows, kept.len() * 64);
        for row in kept {
            self.push(id(&row), row);
        }
    }

    /// Every kept row, partition after partition.
    #[cfg(test)]
    pub(crate) fn all_rows(&self) -> Vec<R>
    where
        R: Copy,
    {
        self.rows.concat()
    }

    /// Records a rejected row.
    pub(crate) fn reject(
        &mut self,
        line: u64,
        column: Option<u64>,
        field: Option<&str>,
        message: impl Into<String>,
    ) {
        self.problems.push(Problem {
            line,
            column,
            field: field.map(str::to_owned),
            message: message.into(),
        });
    }
}

/// Sums of Teams' `charge` by `currency` (millionths): the sum of the currency of the last
/// charge added runs apart, found without a search, until a charge of another currency comes
/// (mostly one currency a chunk). Integer sums: the same whatever the order they are added in.
#[derive(Debug, Default, Clone)]
pub(crate) struct ChargeSums {
    sums: BTreeMap<String, i64>,
    /// The currency of the last charge added, as the row has it, and its sum not yet in `sums`
    /// (`running`: whether there is one).
    last: Vec<u8>,
    sum: i64,
    running: bool,
}

impl ChargeSums {
    /// Adds a kept row's `charge` to its `currency`'s sum.
    #[inline(always)]
    pub(crate) fn add(&mut self, currency: &[u8], charge: i64) {
        if self.running && same_bytes(&self.last, currency) {
            self.sum += charge;
        } else {
            self.switch(currency, charge);
        }
    }

    /// [`Self::add`] for a currency other than the last one.
    #[inline(never)]
    fn switch(&mut self, currency: &[u8], charge: i64) {
        self.settle();
        self.last.clear();
        self.last.extend_from_slice(currency);
        self.sum = charge;
        self.running = true;
    }

    /// The running sum added to `sums`, under the currency's text (its lossy text when it is
    /// not UTF-8, apart from the others).
    fn settle(&mut self) {
        if !std::mem::take(&mut self.running) {
            return;
        }
        let currency = String::from_utf8_lossy(&self.last);
        match self.sums.get_mut(currency.as_ref()) {
            Some(sum) => *sum += self.sum,
            None => {
                self.sums.insert(currency.into_owned(), self.sum);
            }
        }
    }

    /// Every currency's sum.
    pub(crate) fn into_sums(mut self) -> BTreeMap<String, i64> {
        self.settle();
        self.sums
    }

    /// One currency's sum, if a row had it.
    #[cfg(test)]
    pub(crate) fn sum(&self, currency: &str) -> Option<i64> {
        self.clone().into_sums().get(currency).copied()
    }
}

/// Whether two texts are the same, a text of up to eight bytes (a currency code) compared by
/// two reads of fixed size that may overlap: `==` on slices calls `memcmp`, a call a row.
#[inline(always)]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    match a.len() {
        0 => true,
        1 => a[0] == b[0],
        2..=3 => {
            a.first_chunk::<2>() == b.first_chunk::<2>()
                && a.last_chunk::<2>() == b.last_chunk::<2>()
        }
        4..=8 => {
            a.first_chunk::<4>() == b.first_chunk::<4>()
                && a.last_chunk::<4>() == b.last_chunk::<4>()
        }
        _ => a == b,
    }
}

/// The rows kept: `--operator` (Teams rows of that operator, ASCII case ignored) and the window
/// `[from, to)` on Teams' start and the carrier's connect time.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filters {
    pub(crate) operator: Option<String>,
    pub(crate) from: Option<Nanos>,
    pub(crate) to: Option<Nanos>,
}

impl Filters {
    /// Whether a time is in the window.
    pub(crate) fn in_window(&self, at: Nanos) -> bool {
        self.from.is_none_or(|from| at >= from) && self.to.is_none_or(|to| at < to)
    }

    /// Whether a Teams row's operator is kept.
    pub(crate) fn operator_kept(&self, operator: Option<&[u8]>) -> bool {
        match &self.operator {
            None => true,
            Some(name) => operator.is_some_and(|o| o.eq_ignore_ascii_case(name.as_bytes())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ChargeSums, DurationSource, MAX_BILLED, TeamsRow};

    /// The billed seconds, the duration source and the chain bit share a word: each reads
    /// back as written, whatever the others hold, at both ends of the billed range.
    #[test]
    fn a_teams_rows_billing_word_keeps_its_three_fields_apart() {
        let sources = [
            DurationSource::Unknown,
            DurationSource::Microsoft,
            DurationSource::Operator,
        ];
        for billed in [None, Some(0), Some(1), Some(219), Some(MAX_BILLED)] {
            for source in sources {
                let mut row = TeamsRow::new(7, 1, 2, 3, billed, source);
                assert_eq!((row.billed(), row.duration_source()), (billed, source));
                assert!(!row.chained());
                row.set_chained();
                assert!(row.chained());
                assert_eq!((row.billed(), row.duration_source()), (billed, source));
                for again in [Some(MAX_BILLED), None, Some(5)] {
                    row.set_billed(again);
                    assert_eq!((row.billed(), row.duration_source()), (again, source));
                    assert!(row.chained());
                }
                assert_eq!((row.id, row.start, row.measured, row.source), (7, 1, 2, 3));
            }
        }
    }

    #[test]
    fn texts_are_the_same_exactly_when_their_bytes_are() {
        let texts: [&[u8]; 12] = [
            b"",
            b"U",
            b"E",
            b"US",
            b"UD",
            b"USD",
            b"UUD",
            b"USS",
            b"EURO",
            b"EUR0",
            b"12345678",
            b"123456789",
        ];
        for a in texts {
            for b in texts {
                assert_eq!(super::same_bytes(a, b), a == b, "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn charges_are_summed_by_currency_whichever_comes_first() {
        // The last currency's sum runs apart, the others are put by when another comes; a
        // currency that is not UTF-8 summed under its lossy text, apart from the others.
        let mut charges = ChargeSums::default();
        for (currency, charge) in [
            (&b"USD"[..], 1),
            (b"EUR", 10),
            (b"USD", 2),
            (b"AUD", 100),
            (b"USD", 3),
            (b"AUD", 200),
            (b"EUR", 20),
            (b"\xffX", 1000),
            (b"\xffX", 2000),
            (b"", 5),
        ] {
            charges.add(currency, charge);
        }
        // The running sum goes into the map whenever the currency changes, and at the end.
        assert_eq!(charges.sum("USD"), Some(6));
        assert_eq!(charges.sum("EUR"), Some(30));
        let want: std::collections::BTreeMap<String, i64> = [
            ("", 5),
            ("AUD", 300),
            ("EUR", 30),
            ("USD", 6),
            ("\u{fffd}X", 3000),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        assert_eq!(charges.into_sums(), want);
    }
}
