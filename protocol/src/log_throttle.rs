//! When to write a log line that every request of a flood would repeat: the first few of each
//! interval, then a count of the rest. A million refused requests then write a handful of lines
//! and the number, not a million lines. The server logs; this only decides.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// What to do with one occurrence of a repeated log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogDecision {
    /// Write it, saying how many were suppressed since the last one written (0: none).
    Write {
        /// Occurrences not written since the last one that was.
        suppressed: u64,
    },
    /// Count it, do not write it.
    Suppress,
}

/// Lets `per_interval` occurrences of one log line through each `interval`, and counts the
/// others, so that the next line written can say how many were left out.
#[derive(Debug)]
pub struct LogThrottle {
    interval: Duration,
    per_interval: u32,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    window_start: Option<Instant>,
    written: u32,
    suppressed: u64,
}

impl LogThrottle {
    /// At most `per_interval` lines each `interval` (at least one).
    pub const fn new(interval: Duration, per_interval: u32) -> Self {
        Self {
            interval,
            per_interval,
            state: Mutex::new(State {
                window_start: None,
                written: 0,
                suppressed: 0,
            }),
        }
    }

    /// Ten lines every ten seconds: a flood leaves about one line a second.
    pub const fn per_ten_seconds() -> Self {
        Self::new(Duration::from_secs(10), 10)
    }

    /// One occurrence at `now`.
    pub fn hit(&self, now: Instant) -> LogDecision {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let expired = state
            .window_start
            .is_none_or(|start| now.saturating_duration_since(start) >= self.interval);
        if expired {
            state.window_start = Some(now);
            state.written = 0;
        }
        if state.written < self.per_interval.max(1) {
            state.written += 1;
            LogDecision::Write {
                suppressed: std::mem::take(&mut state.suppressed),
            }
        } else {
            state.suppressed += 1;
            LogDecision::Suppress
        }
    }

    /// The occurrences counted and not written yet, and forgets them: for a last summary line
    /// (e.g. when the server stops).
    pub fn take_suppressed(&self) -> u64 {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut state.suppressed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_writes_a_few_lines_per_interval_and_counts_the_rest() {
        let throttle = LogThrottle::new(Duration::from_secs(10), 3);
        let t0 = Instant::now();
        let decisions: Vec<_> = (0..1_000).map(|_| throttle.hit(t0)).collect();
        assert_eq!(decisions[..3], [LogDecision::Write { suppressed: 0 }; 3]);
        assert!(decisions[3..].iter().all(|d| *d == LogDecision::Suppress));
        // Still within the interval: counted.
        assert_eq!(
            throttle.hit(t0 + Duration::from_secs(9)),
            LogDecision::Suppress
        );
        // The next interval's first line says how many were left out.
        assert_eq!(
            throttle.hit(t0 + Duration::from_secs(10)),
            LogDecision::Write { suppressed: 998 }
        );
        assert_eq!(throttle.take_suppressed(), 0);
        for _ in 0..5 {
            throttle.hit(t0 + Duration::from_secs(11));
        }
        assert_eq!(throttle.take_suppressed(), 3);
        assert_eq!(throttle.take_suppressed(), 0);
    }

    #[test]
    fn zero_per_interval_still_writes_one() {
        let throttle = LogThrottle::new(Duration::from_secs(1), 0);
        let t0 = Instant::now();
        assert_eq!(throttle.hit(t0), LogDecision::Write { suppressed: 0 });
        assert_eq!(throttle.hit(t0), LogDecision::Suppress);
    }
}
