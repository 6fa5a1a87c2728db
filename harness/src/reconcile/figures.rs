//! The classes (PROTOCOL.md 3.5: `matched`, `drift`, `missing`, `unexpected`) and the figures
//! of a reconciliation, folded call by call as the matcher decides them: the signed drift
//! (carrier − Teams' measured `endDateTime − startDateTime`), minutes and charges on each side,
//! the gap by day and by number, what `callDurationSource` says, and the calls that go to
//! `mismatches.csv`.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use oc_reports::reconcile::{
    ClassCounts, DayGap, DriftFigures, DurationSourceCounts, Minutes, NumberGap,
};

use super::drifts::Drifts;
use super::matching::{NO_ROW, RowRef};
use super::rows::{CarrierRow, DurationSource, ReadTeamsRow, TeamsRow};
use super::text::{self, DAY, Nanos, SECOND};

/// A call's class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Class {
    Matched,
    Drift,
    Missing,
    Unexpected,
}

impl Class {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Matched => "matched",
            Self::Drift => "drift",
            Self::Missing => "missing",
            Self::Unexpected => "unexpected",
        }
    }
}

/// A call for `mismatches.csv`: every call not `matched`, and the `matched` ones whose billed
/// duration differs from the carrier's (the `missing` ones are made when it is written).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mismatch {
    pub(crate) class: Class,
    pub(crate) billed_differs: bool,
    /// The Teams row, or [`NO_ROW`].
    pub(crate) teams: RowRef,
    /// The carrier row's connect time, duration and place; `source` is `u64::MAX` without one.
    pub(crate) connect: Nanos,
    pub(crate) duration: Nanos,
    pub(crate) source: u64,
}

/// How many rows are touched ahead of their updates (see [`Figures::touch`]): enough for the
/// cache misses to overlap, few enough for what they bring in to stay in cache.
pub(crate) const TOUCH_BATCH: usize = 256;

/// A hasher for keys that are already well mixed or small integers (number keys).
#[derive(Default)]
pub(crate) struct IntHasher(u64);

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u64(&mut self, n: u64) {
        let product = u128::from(n ^ 0x2d35_8dcc_aa6c_78a5) * 0x9e37_79b9_7f4a_7c15;
        self.0 = (product as u64) ^ (product >> 64) as u64;
    }
}

/// Calls, minutes (µs: exact for the ms and µs of the inputs, and no overflow below 292,000
/// years of calls) and classes of one day or one number.
#[derive(Default, Clone, Copy)]
struct Sums {
    calls: u64,
    teams: i64,
    carrier: i64,
    classes: [u32; 4],
}

impl Sums {
    fn add(&mut self, other: &Sums) {
        self.calls += other.calls;
        self.teams += other.teams;
        self.carrier += other.carrier;
        for (a, b) in self.classes.iter_mut().zip(other.classes) {
            *a += b;
        }
    }
}

/// The numbers Teams' rows have (the Teams users'), to tell which of an unexpected carrier
/// row's two numbers is the Teams user's.
pub(crate) type KnownNumbers = std::collections::HashSet<u64, BuildHasherDefault<IntHasher>>;

/// Everything folded so far.
pub(crate) struct Figures {
    tolerance: Nanos,
    classes: [u64; 4],
    /// Signed drift of every `matched` and `drift` call, ns.
    drifts: Drifts,
    teams_measured: i128,
    teams_billed: i128,
    carrier: i128,
    carrier_charge: i64,
    /// Sums by day, from `first_day` on.
    days: Vec<Sums>,
    first_day: i64,
    /// Sums by number, in the order the numbers were first seen; `slots` finds a number's.
    numbers: Vec<(u64, Sums)>,
    slots: HashMap<u64, u32, BuildHasherDefault<IntHasher>>,
    /// How many of `numbers` (the first ones) Teams rows have.
    teams_numbers: usize,
    sources: DurationSourceCounts,
    pub(crate) mismatches: Vec<Mismatch>,
}

/// Reads every field of a number's entry (48 bytes, so on two cache lines for half of them),
/// for [`Figures::touch`] where there is no prefetch: which fields lie at the entry's ends is
/// the compiler's choice of layout, so reading two chosen fields may leave a line of it out.
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse")))]
#[inline(always)]
fn read_whole((key, sums): &(u64, Sums)) -> u64 {
    let classes = sums.classes.iter().fold(0, |acc, &c| acc ^ u64::from(c));
    key ^ sums.calls ^ sums.teams as u64 ^ sums.carrier as u64 ^ classes
}

/// Nanoseconds to the microseconds of [`Sums`].
fn us(ns: Nanos) -> i64 {
    ns / 1000
}

impl Figures {
    pub(crate) fn new(tolerance: Nanos) -> Self {
        Self {
            tolerance,
            classes: [0; 4],
            drifts: Drifts::default(),
            teams_measured: 0,
            teams_billed: 0,
            carrier: 0,
            carrier_charge: 0,
            days: Vec::new(),
            first_day: 0,
            numbers: Vec::new(),
            slots: HashMap::default(),
            teams_numbers: 0,
            sources: DurationSourceCounts::default(),
            mismatches: Vec::new(),
        }
    }

    /// The sums of the day of `at` (inlined: a call costs more than its common case).
    #[inline(always)]
    fn day(&mut self, at: Nanos) -> &mut Sums {
        let day = at.div_euclid(DAY);
        if self.days.is_empty() {
            self.first_day = day;
        }
        if day < self.first_day {
            let grow = (self.first_day - day) as usize;
            self.days
                .splice(0..0, std::iter::repeat_n(Sums::default(), grow));
            self.first_day = day;
        }
        let i = (day - self.first_day) as usize;
        if i >= self.days.len() {
            self.days.resize(i + 1, Sums::default());
        }
        &mut self.days[i]
    }

    /// The slot of a number, made when new.
    fn slot(&mut self, number: u64) -> u32 {
        let next = self.numbers.len() as u32;
        let slot = *self.slots.entry(number).or_insert(next);
        if slot == next {
            self.numbers.push((number, Sums::default()));
        }
        slot
    }

    /// A call of `class` on the day of `at` and the number of `slot`, with the carrier's
    /// minutes (µs) and calls it adds to both: the day found once. Inlined: a call a carrier
    /// row, whose arguments and saved registers cost two fifths of its work.
    #[inline(always)]
    fn count(&mut self, class: Class, at: Nanos, slot: u32, carrier: i64, calls: u64) {
        self.classes[class as usize] += 1;
        let day = self.day(at);
        day.classes[class as usize] += 1;
        day.carrier += carrier;
        day.calls += calls;
        let number = &mut self.numbers[slot as usize].1;
        number.classes[class as usize] += 1;
        number.carrier += carrier;
        number.calls += calls;
    }

    /// A Teams row kept for reconciliation, its number unknown (0): gives it that number's
    /// slot.
    #[cfg(test)]
    pub(crate) fn teams(&mut self, row: &mut TeamsRow) {
        let mut read = [ReadTeamsRow {
            row: *row,
            number: 0,
        }];
        self.teams_rows(&mut read);
        *row = read[0].row;
    }

    /// Teams rows kept for reconciliation, in order: gives each its number's slot. The slots
    /// are found first, all of them, so that the lookups' cache misses overlap.
    pub(crate) fn teams_rows(&mut self, rows: &mut [ReadTeamsRow]) {
        for read in rows.iter_mut() {
            read.row.slot = self.slot(read.number);
        }
        self.teams_numbers = self.numbers.len();
        for batch in rows.chunks(TOUCH_BATCH) {
            self.touch(batch.iter().map(|read| &read.row));
            for read in batch {
                self.teams_slotted(&read.row);
            }
        }
    }

    /// Reads each row and its number's sums, to bring them into the cache: the loads are
    /// independent of each other, so their misses overlap, where the updates that follow
    /// would wait for each in turn.
    #[inline(always)]
    pub(crate) fn touch<'a>(&self, rows: impl Iterator<Item = &'a TeamsRow>) {
        // The sums are prefetched, not read field by field (fewer instructions): the
        // entry's first byte and the byte after it, whose line holds its last byte unless the
        // entry ends its line, when the first byte's line holds it all.
        #[cfg(all(target_arch = "x86_64", target_feature = "sse"))]
        for row in rows {
            let slot = row.slot as usize;
            if let Some(entry) = self.numbers.get(slot) {
                safe_arch::prefetch_t0(entry);
            }
            if let Some(next) = self.numbers.get(slot + 1) {
                safe_arch::prefetch_t0(next);
            }
        }
        #[cfg(not(all(target_arch = "x86_64", target_feature = "sse")))]
        {
            let mut sum = 0u64;
            for row in rows {
                sum = sum.wrapping_add(self.numbers.get(row.slot as usize).map_or(0, read_whole));
            }
            std::hint::black_box(sum);
        }
    }

    fn teams_slotted(&mut self, row: &TeamsRow) {
        self.teams_measured += i128::from(row.measured);
        self.teams_billed += i128::from(row.billed().unwrap_or(0)) * i128::from(SECOND);
        let day = self.day(row.start);
        day.calls += 1;
        day.teams += us(row.measured);
        let number = &mut self.numbers[row.slot as usize].1;
        number.calls += 1;
        number.teams += us(row.measured);
        match row.duration_source() {
            DurationSource::Operator => self.sources.operator += 1,
            DurationSource::Microsoft => self.sources.microsoft += 1,
            DurationSource::Unknown => self.sources.unknown += 1,
        }
    }

    /// Makes room for the drifts of up to `pairs` calls with both sides (at most one per Teams
    /// row), so that they are not copied as they grow: untouched room costs address space, not
    /// memory.
    pub(crate) fn reserve_pairs(&mut self, pairs: usize) {
        self.drifts.reserve(pairs.saturating_sub(self.drifts.len()));
    }

    /// A carrier row kept for reconciliation, before it is matched.
    pub(crate) fn carrier(&mut self, row: &CarrierRow) {
        self.carrier += i128::from(row.duration);
        self.carrier_charge += row.charge;
    }

    /// A Teams row and the carrier row matched to it.
    pub(crate) fn pair(&mut self, i: RowRef, teams: &TeamsRow, carrier: &CarrierRow) {
        let drift = carrier.duration - teams.measured;
        let class = if drift.abs() <= self.tolerance {
            Class::Matched
        } else {
            Class::Drift
        };
        self.drifts.push(drift);
        self.count(class, teams.start, teams.slot, us(carrier.duration), 0);
        let billed = teams.billed();
        let billed_differs = teams.duration_source() == DurationSource::Operator
            && billed.is_some_and(|billed| {
                let floor = carrier.duration.div_euclid(SECOND);
                let ceil = floor + i64::from(carrier.duration.rem_euclid(SECOND) > 0);
                i64::from(billed) != floor && i64::from(billed) != ceil
            });
        match teams.duration_source() {
            DurationSource::Operator if billed.is_some() => {
                self.sources.operator_checked += 1;
                self.sources.operator_billed_differs += u64::from(billed_differs);
            }
            DurationSource::Microsoft => self.sources.microsoft_with_carrier_cdr += 1,
            _ => {}
        }
        if class != Class::Matched || billed_differs {
            self.mismatches.push(Mismatch {
                class,
                billed_differs,
                teams: i,
                connect: carrier.connect,
                duration: carrier.duration,
                source: carrier.source,
            });
        }
    }

    /// The numbers of the Teams rows folded so far.
    pub(crate) fn numbers_known(&self, known: &mut KnownNumbers) {
        // The slots of unexpected carrier rows come after those of Teams rows, which all come
        // first.
        known.extend(
            self.numbers[..self.teams_numbers]
                .iter()
                .map(|&(key, _)| key),
        );
    }

    /// A carrier row that no Teams row matched; `known`: the numbers of every Teams row;
    /// `listed`: whether it goes to [`Self::mismatches`] (not when its line is already made).
    pub(crate) fn unexpected(&mut self, carrier: &CarrierRow, known: &KnownNumbers, listed: bool) {
        // The Teams user's number is one of the two; the calling one when Teams knows neither.
        let number = if known.contains(&carrier.called) && !known.contains(&carrier.calling) {
            carrier.called
        } else {
            carrier.calling
        };
        let slot = self.slot(number);
        self.count(
            Class::Unexpected,
            carrier.connect,
            slot,
            us(carrier.duration),
            1,
        );
        if !listed {
            return;
        }
        self.mismatches.push(Mismatch {
            class: Class::Unexpected,
            billed_differs: false,
            teams: NO_ROW,
            connect: carrier.connect,
            duration: carrier.duration,
            source: carrier.source,
        });
    }

    /// A Teams row that no carrier row matched. It is not kept in [`Self::mismatches`]:
    /// `mismatches.csv` finds the missing rows again by their claims.
    pub(crate) fn missing(&mut self, teams: &TeamsRow) {
        self.count(Class::Missing, teams.start, teams.slot, 0, 0);
    }

    /// Adds the figures of another part of the same reconciliation (another partition of the
    /// index): every sum is a sum, so the order of the parts does not matter.
    pub(crate) fn merge(&mut self, other: Figures) {
        for (a, b) in self.classes.iter_mut().zip(other.classes) {
            *a += b;
        }
        self.drifts.append(&other.drifts);
        self.teams_measured += other.teams_measured;
        self.teams_billed += other.teams_billed;
        self.carrier += other.carrier;
        self.carrier_charge += other.carrier_charge;
        for (i, sums) in other.days.iter().enumerate() {
            if sums.calls > 0 || sums.classes != [0; 4] || sums.carrier != 0 {
                self.day((other.first_day + i as i64) * DAY).add(sums);
            }
        }
        for (key, sums) in &other.numbers {
            let slot = self.slot(*key);
            self.numbers[slot as usize].1.add(sums);
        }
        let s = &other.sources;
        self.sources.operator += s.operator;
        self.sources.microsoft += s.microsoft;
        self.sources.unknown += s.unknown;
        self.sources.microsoft_with_carrier_cdr += s.microsoft_with_carrier_cdr;
        self.sources.operator_checked += s.operator_checked;
        self.sources.operator_billed_differs += s.operator_billed_differs;
        self.mismatches.extend_from_slice(&other.mismatches);
    }

    pub(crate) fn classes(&self) -> ClassCounts {
        let [matched, drift, missing, unexpected] = self.classes;
        ClassCounts {
            matched,
            drift,
            missing,
            unexpected,
        }
    }

    /// The figures for the report; `top` numbers by absolute gap.
    pub(crate) fn finish(mut self, top: usize) -> Finished {
        let minutes = |ns: i128| ns as f64 / 60e9;
        let us_minutes = |us: i64| us as f64 / 60e6;
        let first_day = self.first_day;
        let by_day = self
            .days
            .iter()
            .enumerate()
            .filter(|(_, s)| s.calls > 0)
            .map(|(i, s)| DayGap {
                day: text::format_day(first_day + i as i64),
                calls: s.calls,
                teams_minutes: us_minutes(s.teams),
                carrier_minutes: us_minutes(s.carrier),
                gap_minutes: us_minutes(s.carrier - s.teams),
                matched: u64::from(s.classes[0]),
                drift: u64::from(s.classes[1]),
                missing: u64::from(s.classes[2]),
                unexpected: u64::from(s.classes[3]),
            })
            .collect();
        let mut numbers = std::mem::take(&mut self.numbers);
        let distinct_numbers = numbers.len() as u64;
        // By absolute gap, then number (each number once: a total order); only the first `top`
        // are put in order.
        let by_gap = |(ka, a): &(u64, Sums), (kb, b): &(u64, Sums)| {
            (b.carrier - b.teams)
                .abs()
                .cmp(&(a.carrier - a.teams).abs())
                .then(ka.cmp(kb))
        };
        if top < numbers.len() {
            numbers.select_nth_unstable_by(top, by_gap);
            numbers.truncate(top);
        }
        numbers.sort_unstable_by(by_gap);
        let top_numbers = numbers
            .iter()
            .take(top)
            .map(|(key, s)| NumberGap {
                number: text::format_number(*key),
                calls: s.calls,
                teams_minutes: us_minutes(s.teams),
                carrier_minutes: us_minutes(s.carrier),
                gap_minutes: us_minutes(s.carrier - s.teams),
                not_matched: u64::from(s.classes[1] + s.classes[2] + s.classes[3]),
            })
            .collect();
        Finished {
            classes: self.classes(),
            drift: self.drifts.figures(),
            minutes: Minutes {
                teams_measured: minutes(self.teams_measured),
                teams_billed: minutes(self.teams_billed),
                carrier: minutes(self.carrier),
                gap: minutes(self.carrier - self.teams_measured),
            },
            carrier_charge: self.carrier_charge,
            by_day,
            top_numbers,
            distinct_numbers,
            sources: self.sources,
        }
    }
}

/// What [`Figures::finish`] gives.
pub(crate) struct Finished {
    pub(crate) classes: ClassCounts,
    pub(crate) drift: DriftFigures,
    pub(crate) minutes: Minutes,
    pub(crate) carrier_charge: i64,
    pub(crate) by_day: Vec<DayGap>,
    pub(crate) top_numbers: Vec<NumberGap>,
    pub(crate) distinct_numbers: u64,
    pub(crate) sources: DurationSourceCounts,
}

#[cfg(test)]
mod tests {
    use super::super::matching::tests::{carrier, teams};
    use super::*;

    #[test]
    fn drift_is_signed_carrier_minus_teams_and_the_tolerance_is_inclusive() {
        let mut figures = Figures::new(SECOND);
        let mut t = teams(1, 0);
        figures.teams(&mut t);
        for (delta, class) in [
            (SECOND, Class::Matched),
            (-SECOND, Class::Matched),
            (SECOND + 1, Class::Drift),
            (-SECOND - 1, Class::Drift),
        ] {
            let before = figures.classes;
            let mut c = carrier(1, 1, 0);
            c.duration = t.measured + delta;
            figures.pair(0, &t, &c);
            assert_eq!(
                figures.classes[class as usize],
                before[class as usize] + 1,
                "{delta}"
            );
        }
        assert_eq!(
            figures.drifts.iter().collect::<Vec<_>>(),
            [SECOND, -SECOND, SECOND + 1, -SECOND - 1]
        );
        // Both drifts, and the two matched ones too: the Teams row billed 60 s of an
        // `operator` duration, and the carrier's CDR says 59 or 61.
        assert_eq!(
            figures
                .mismatches
                .iter()
                .filter(|m| m.class == Class::Drift)
                .count(),
            2
        );
        assert!(figures.mismatches.iter().all(|m| m.billed_differs));
    }

    #[test]
    fn billed_seconds_agree_with_the_carrier_rounded_either_way() {
        let mut figures = Figures::new(SECOND);
        let mut t = teams(1, 0);
        figures.teams(&mut t);
        let mut c = carrier(1, 1, 0);
        c.duration = 61_250_000_000;
        for (billed, differs) in [(61, false), (62, false), (60, true), (63, true)] {
            t.set_billed(Some(billed));
            let before = figures.sources.operator_billed_differs;
            figures.pair(0, &t, &c);
            assert_eq!(
                figures.sources.operator_billed_differs - before,
                u64::from(differs),
                "{billed}"
            );
        }
        // A whole-second CDR allows only its own value.
        c.duration = 61 * SECOND;
        t.set_billed(Some(62));
        figures.pair(0, &t, &c);
        assert_eq!(figures.sources.operator_billed_differs, 3);
        assert_eq!(figures.sources.operator_checked, 5);
    }
}
