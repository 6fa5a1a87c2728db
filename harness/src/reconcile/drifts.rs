//! The signed drifts of the calls with both sides (carrier − Teams, ns) and their figures:
//! exact nearest-rank percentiles and the histogram. Most drifts are within ±2.1 s (`i32`
//! nanoseconds): those are kept in four bytes and the rest in eight, which halves the memory
//! the drifts of ten million calls fill (fresh memory, each page a fault to clear) and the
//! bytes the percentiles' selection goes through.

use oc_reports::DriftBin;
use oc_reports::reconcile::DriftFigures;

/// Drifts, in no order: `near` those that fit in an `i32`, `far` the others.
#[derive(Debug, Default)]
pub(crate) struct Drifts {
    near: Vec<i32>,
    far: Vec<i64>,
}

impl Drifts {
    /// Room for `more` drifts that fit in four bytes, so that they are not copied as they
    /// grow: untouched room costs address space, not memory.
    pub(crate) fn reserve(&mut self, more: usize) {
        self.near.reserve(more);
    }

    #[inline]
    pub(crate) fn push(&mut self, drift: i64) {
        match i32::try_from(drift) {
            Ok(near) => self.near.push(near),
            Err(_) => self.far.push(drift),
        }
    }

    /// Adds another's drifts.
    pub(crate) fn append(&mut self, other: &Drifts) {
        self.near.extend_from_slice(&other.near);
        self.far.extend_from_slice(&other.far);
    }

    pub(crate) fn len(&self) -> usize {
        self.near.len() + self.far.len()
    }

    /// Every drift, `near` ones first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        self.near
            .iter()
            .map(|&d| i64::from(d))
            .chain(self.far.iter().copied())
    }

    /// Percentiles (nearest rank, exact) and the histogram, in ms. Reorders the drifts.
    pub(crate) fn figures(&mut self) -> DriftFigures {
        let ms = |ns: i64| ns as f64 / 1e6;
        let n = self.len();
        if n == 0 {
            return DriftFigures::default();
        }
        // In order, the far drifts below every near one, the near ones, the far ones above
        // them: a rank falls in one of the three, where it is selected.
        let below = partition_negative(&mut self.far);
        let (low, high) = self.far.split_at_mut(below);
        let near = &mut self.near[..];
        // Each percentile is selected among the drifts of its part above the one before, which
        // its selection left there (the ranks grow with q).
        let mut from = [0usize; 3];
        let mut percentile = |q: u64| -> f64 {
            let k = rank(q, n);
            let value = if k < low.len() {
                select(low, &mut from[0], k)
            } else if k < low.len() + near.len() {
                select(near, &mut from[1], k - low.len())
            } else {
                select(high, &mut from[2], k - low.len() - near.len())
            };
            ms(value)
        };
        let (p50, p90, p99) = (percentile(50), percentile(90), percentile(99));
        let min = self.iter().min().unwrap_or(0);
        let max = self.iter().max().unwrap_or(0);
        DriftFigures {
            calls: n as u64,
            p50_ms: p50,
            p90_ms: p90,
            p99_ms: p99,
            min_ms: ms(min),
            max_ms: ms(max),
            bins: bins(self.iter(), min, max),
        }
    }
}

/// Puts the negative values first; how many there are.
fn partition_negative(values: &mut [i64]) -> usize {
    let mut below = 0;
    for i in 0..values.len() {
        if values[i] < 0 {
            values.swap(below, i);
            below += 1;
        }
    }
    below
}

/// The value of 0-based rank `k` of `values`, all of whose values of rank below `from` are
/// at or below it and in place (a previous selection left them so); `from` becomes `k`.
fn select<T: Ord + Copy + Into<i64>>(values: &mut [T], from: &mut usize, k: usize) -> i64 {
    let (_, &mut value, _) = values[*from..].select_nth_unstable(k - *from);
    *from = k;
    value.into()
}

/// The nearest-rank percentile `q` (in hundredths) of `n` sorted values: the 0-based index
/// `ceil(q·n/100) − 1`.
pub(crate) fn rank(q: u64, n: usize) -> usize {
    ((q as usize * n).div_ceil(100)).max(1) - 1
}

/// The largest decade edge of the histogram (ms): beyond it, one outer bin per side.
const DECADES: u32 = 7;

/// Bin of a magnitude in ms: 0 for 0, k for `10^(k-1) … 10^k − 1`, `DECADES + 1` beyond.
fn bin_index(magnitude: u64) -> usize {
    if magnitude == 0 {
        0
    } else {
        (magnitude.ilog10() + 1).min(DECADES + 1) as usize
    }
}

/// The drift histogram as the run report draws it: each drift rounded to the nearest ms (half
/// away from zero), bins `0`, `±(1…9)`, `±(10…99)`, … and one outer bin per side, from the
/// lowest non-empty to the highest non-empty, `0` always included.
fn bins(drifts: impl Iterator<Item = i64>, min: i64, max: i64) -> Vec<DriftBin> {
    let round = |ns: i64| (ns + ns.signum() * 500_000) / 1_000_000;
    let (low, high) = (round(min), round(max));
    // A drift's bin from its magnitude's bit length, not its decimal logarithm (a third of
    // the loop): the digits of the least magnitude of each length (the outer bin's lower edge
    // at most: 24 bits), and the power of ten past which its magnitudes have one more.
    let outer = 10u64.pow(DECADES);
    let by_length: [(usize, u64); 25] = std::array::from_fn(|bits| match bits {
        0 => (0, u64::MAX),
        _ => {
            let digits = bin_index(1 << (bits - 1));
            (digits, 10u64.pow(digits as u32))
        }
    });
    let mut sides = [[0u64; DECADES as usize + 2]; 2];
    for d in drifts {
        // `round(d)`'s magnitude (half away from zero), and its side: below 0 when `d` rounds
        // to -1 ms or less.
        let magnitude = ((d.unsigned_abs() + 500_000) / 1_000_000).min(outer);
        let (digits, next) = by_length[(u64::BITS - magnitude.leading_zeros()) as usize];
        sides[usize::from(d <= -500_000)][digits + usize::from(magnitude >= next)] += 1;
    }
    let [positive, negative] = sides;
    let edges = |k: usize, extreme: i64| -> (i64, i64) {
        match k {
            0 => (0, 0),
            k if k as u32 > DECADES => (10i64.pow(DECADES), extreme),
            k => (10i64.pow(k as u32 - 1), 10i64.pow(k as u32) - 1),
        }
    };
    let mut out = Vec::new();
    for k in (1..=bin_index(low.min(0).unsigned_abs())).rev() {
        let (from, to) = edges(k, low.abs());
        out.push(DriftBin {
            from_ms: -to,
            to_ms: -from,
            count: negative[k],
        });
    }
    for (k, &count) in positive
        .iter()
        .enumerate()
        .take(bin_index(high.max(0).unsigned_abs()) + 1)
    {
        let (from, to) = edges(k, high);
        out.push(DriftBin {
            from_ms: from,
            to_ms: to,
            count,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drifts(values: &[i64]) -> Drifts {
        let mut drifts = Drifts::default();
        for &d in values {
            drifts.push(d);
        }
        drifts
    }

    #[test]
    fn a_drift_is_binned_by_its_rounded_milliseconds_decimal_digits() {
        // Around every power of ten of ms and the rounding's half, both signs: the bins of
        // each drift alone are those of its rounded value's digits.
        let mut drifts = vec![0, 1, -1, 499_999, -499_999, 500_000, -500_000];
        for k in 0..=DECADES + 1 {
            let edge = 10i64.pow(k) * 1_000_000;
            for delta in [-500_001, -500_000, -499_999, 0, 499_999, 500_000] {
                drifts.extend([edge + delta, -(edge + delta)]);
            }
        }
        for d in drifts {
            let rounded = (d + d.signum() * 500_000) / 1_000_000;
            let bins = bins([d].into_iter(), d, d);
            let holding: Vec<u64> = bins
                .iter()
                .filter(|b| (b.from_ms..=b.to_ms).contains(&rounded))
                .map(|b| b.count)
                .collect();
            assert_eq!(holding, [1], "{d}: {bins:?}");
            assert_eq!(
                bins.iter().map(|b| b.count).sum::<u64>(),
                1,
                "{d}: {bins:?}"
            );
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        assert_eq!(rank(50, 1), 0);
        assert_eq!(rank(50, 10), 4);
        assert_eq!(rank(90, 10), 8);
        assert_eq!(rank(99, 10), 9);
        assert_eq!(rank(99, 1000), 989);
        let values: Vec<i64> = (1..=100).rev().map(|ms| ms * 1_000_000).collect();
        let figures = drifts(&values).figures();
        assert_eq!(
            (
                figures.p50_ms,
                figures.p90_ms,
                figures.p99_ms,
                figures.max_ms,
                figures.min_ms
            ),
            (50.0, 90.0, 99.0, 100.0, 1.0)
        );
        let total: u64 = figures.bins.iter().map(|b| b.count).sum();
        assert_eq!(total, 100);
        assert_eq!(
            figures
                .bins
                .iter()
                .map(|b| (b.from_ms, b.to_ms))
                .collect::<Vec<_>>(),
            [(0, 0), (1, 9), (10, 99), (100, 999)]
        );
        let figures = drifts(&[-20_000_000_000, 400_000, -600_000]).figures();
        assert_eq!(
            figures
                .bins
                .iter()
                .map(|b| (b.from_ms, b.count))
                .collect::<Vec<_>>(),
            [
                (-99_999, 1),
                (-9_999, 0),
                (-999, 0),
                (-99, 0),
                (-9, 1),
                (0, 1)
            ]
        );
    }

    /// Drifts near and far, of both signs, repeated, and at the extremes durations allow: the
    /// percentiles are those of the sorted values, whatever the mix and the split between
    /// parts appended to one another.
    #[test]
    fn percentiles_across_near_and_far_drifts_are_those_of_the_sorted_values() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for case in 0..200u64 {
            let n = 1 + (next() % 300) as usize;
            let far_share = next() % 101;
            let mut values: Vec<i64> = (0..n)
                .map(|_| {
                    let r = next();
                    let sign = if r >> 63 == 1 { -1 } else { 1 };
                    let magnitude = (r >> 8) as i64;
                    sign * match r % 100 {
                        k if k < far_share => i64::from(i32::MAX) + 1 + magnitude % 40_000_000_000,
                        _ => magnitude % 3_000_000_000,
                    }
                })
                .collect();
            if case % 7 == 0 {
                // The longest durations either side can state: 2^32 − 1 ms.
                let longest = i64::from(u32::MAX) * 1_000_000;
                values.extend([-longest, longest, i64::from(i32::MIN), i64::from(i32::MAX)]);
                values.extend([i64::from(i32::MIN) - 1, i64::from(i32::MAX) + 1]);
            }
            let split = (next() as usize) % (values.len() + 1);
            let mut all = drifts(&values[..split]);
            all.append(&drifts(&values[split..]));
            let figures = all.figures();
            let mut sorted = values.clone();
            sorted.sort_unstable();
            let at = |q| sorted[rank(q, sorted.len())] as f64 / 1e6;
            assert_eq!(
                (figures.p50_ms, figures.p90_ms, figures.p99_ms),
                (at(50), at(90), at(99)),
                "case {case}"
            );
            assert_eq!(figures.min_ms, sorted[0] as f64 / 1e6, "case {case}");
            assert_eq!(
                figures.max_ms,
                sorted[sorted.len() - 1] as f64 / 1e6,
                "case {case}"
            );
            assert_eq!(figures.calls, values.len() as u64, "case {case}");
            let binned: u64 = figures.bins.iter().map(|b| b.count).sum();
            assert_eq!(binned, values.len() as u64, "case {case}");
        }
    }
}
