//! The open model's schedule: each iteration's intended start, computed from an executor's
//! stages alone (k6's `ramping-arrival-rate`), never from when earlier work finished. The
//! iterations started by time `t` are the whole part of the rate's integral up to `t`, so
//! iteration `k` (from 0) is due when that integral reaches `k + 1`.

use super::plan::Stages;

/// The intended starts of an executor's iterations, µs from the start of the load, in order.
pub struct Arrivals<'a> {
    stages: &'a Stages,
    /// Work per iteration (events per notification; 1 for calls): the rate is divided by it.
    per_iteration: f64,
    stage: usize,
    /// Where the current stage begins, s, and the iterations due before it.
    stage_begin_s: f64,
    before_stage: f64,
    next: u64,
}

impl<'a> Arrivals<'a> {
    /// The arrivals of `stages`, each iteration carrying `per_iteration` units of the rate.
    pub fn new(stages: &'a Stages, per_iteration: u32) -> Self {
        Self {
            stages,
            per_iteration: f64::from(per_iteration.max(1)),
            stage: 0,
            stage_begin_s: 0.0,
            before_stage: 0.0,
            next: 0,
        }
    }

    /// The rate of iterations at the start of stage `i`, and at its end, per second.
    fn rates(&self, i: usize) -> (f64, f64) {
        let from = match i {
            0 => self.stages.start_rate,
            _ => self.stages.stages[i - 1].target,
        };
        (
            from / self.per_iteration,
            self.stages.stages[i].target / self.per_iteration,
        )
    }

    /// Iterations due by `at_ms` from the start (the integral of the rate, not rounded).
    pub fn due_by(&self, at_ms: i64) -> f64 {
        let mut total = 0.0;
        let mut begin = 0;
        for (i, stage) in self.stages.stages.iter().enumerate() {
            let (r0, r1) = self.rates(i);
            let d = stage.duration_ms as f64 / 1000.0;
            let t = ((at_ms - begin) as f64 / 1000.0).clamp(0.0, d);
            total += r0 * t + (r1 - r0) * t * t / (2.0 * d);
            begin += stage.duration_ms;
        }
        total
    }

    /// Iterations scheduled in `[from_ms, to_ms)`.
    pub fn scheduled_between(&self, from_ms: i64, to_ms: i64) -> u64 {
        let count = |at: i64| {
            // A hair below whole numbers, so that the integral's rounding cannot move an
            // iteration due exactly at a boundary into the interval before it.
            (self.due_by(at) + 1e-9).floor() as u64
        };
        count(to_ms).saturating_sub(count(from_ms))
    }
}

impl Iterator for Arrivals<'_> {
    /// The intended start, µs from the start of the load.
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        let wanted = (self.next + 1) as f64;
        while self.stage < self.stages.stages.len() {
            let (r0, r1) = self.rates(self.stage);
            let d = self.stages.stages[self.stage].duration_ms as f64 / 1000.0;
            let in_stage = (r0 + r1) / 2.0 * d;
            let k = wanted - self.before_stage;
            // The same small tolerance as `scheduled_between`: an iteration due at a stage's
            // very end belongs to it.
            if k <= in_stage + 1e-9 {
                let a = (r1 - r0) / (2.0 * d);
                // The root of a·τ² + r0·τ = k in its stable form.
                let root = (r0 * r0 + 4.0 * a * k).max(0.0).sqrt();
                let tau = if r0 + root > 0.0 {
                    (2.0 * k / (r0 + root)).clamp(0.0, d)
                } else {
                    d
                };
                self.next += 1;
                return Some(((self.stage_begin_s + tau) * 1e6).round() as u64);
            }
            self.before_stage += in_stage;
            self.stage_begin_s += d;
            self.stage += 1;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::plan::Stage;
    use super::*;

    fn stages(start_rate: f64, list: &[(i64, f64)]) -> Stages {
        Stages {
            start_rate,
            stages: list
                .iter()
                .map(|&(duration_ms, target)| Stage {
                    duration_ms,
                    target,
                })
                .collect(),
        }
    }

    #[test]
    fn a_constant_rate_is_evenly_spaced_and_ends_on_the_stage_end() {
        let s = stages(10.0, &[(2_000, 10.0)]);
        let starts: Vec<u64> = Arrivals::new(&s, 1).collect();
        assert_eq!(starts.len(), 20);
        assert_eq!(starts[0], 100_000);
        assert_eq!(starts[1], 200_000);
        assert_eq!(starts[19], 2_000_000);
    }

    #[test]
    fn a_ramp_from_zero_starts_slowly_and_speeds_up() {
        // From 0 to 20/s over 10 s: 100 iterations, the k-th at sqrt(k/1) s (N(t) = t²).
        let s = stages(0.0, &[(10_000, 20.0)]);
        let starts: Vec<u64> = Arrivals::new(&s, 1).collect();
        assert_eq!(starts.len(), 100);
        for (k, at) in starts.iter().enumerate() {
            let want = (((k + 1) as f64).sqrt() * 1e6).round() as u64;
            assert!(
                at.abs_diff(want) <= 1,
                "iteration {k}: {at} µs, want {want}"
            );
        }
        let gaps: Vec<u64> = starts.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(
            gaps.windows(2).all(|g| g[1] <= g[0]),
            "gaps shrink: {gaps:?}"
        );
    }

    #[test]
    fn ramp_hold_and_ramp_down_count_what_the_integral_says() {
        let s = stages(0.0, &[(5_000, 10.0), (10_000, 10.0), (5_000, 0.0)]);
        let arrivals = Arrivals::new(&s, 1);
        assert_eq!(arrivals.scheduled_between(0, 20_000), 25 + 100 + 25);
        assert_eq!(arrivals.scheduled_between(5_000, 15_000), 100);
        let starts: Vec<u64> = Arrivals::new(&s, 1).collect();
        assert_eq!(starts.len(), 150);
        assert!(starts.windows(2).all(|w| w[0] <= w[1]), "in order");
        assert!(*starts.last().unwrap() <= 20_000_000);
        // Every interval's count agrees with the iterations whose start falls in it.
        for second in 0..20 {
            let (from, to) = (second * 1000, (second + 1) * 1000);
            let counted = starts
                .iter()
                .filter(|&&us| us > (from as u64) * 1000 && us <= (to as u64) * 1000)
                .count() as u64;
            assert_eq!(
                arrivals.scheduled_between(from, to),
                counted,
                "second {second}"
            );
        }
    }

    #[test]
    fn events_per_notification_divide_the_rate() {
        let s = stages(100.0, &[(1_000, 100.0)]);
        assert_eq!(Arrivals::new(&s, 10).count(), 10);
        assert_eq!(Arrivals::new(&s, 1).count(), 100);
    }

    #[test]
    fn a_stage_at_rate_zero_schedules_nothing() {
        let s = stages(0.0, &[(5_000, 0.0), (1_000, 4.0)]);
        let starts: Vec<u64> = Arrivals::new(&s, 1).collect();
        assert_eq!(starts.len(), 2);
        assert!(starts.iter().all(|&us| us > 5_000_000), "{starts:?}");
    }
}
