//! `oc-harness scenario check`: what a loaded scenario amounts to, or every problem with it.

use std::fmt::Write as _;

use oc_protocol::format_timestamp;
use oc_protocol::timestamp::{DAY_MS, HOUR_MS};

use super::carrier::describe_carrier;
use super::duration::format_duration;
use super::load::ScenarioError;
use super::model::{CallSpec, Clock, Scenario};

impl CallSpec {
    /// Calls a day on one number that stays assigned: the busy hour's rate scaled by each hour's
    /// weight relative to the peak, summed over the 24 hours.
    pub fn calls_per_number_per_day(&self) -> f64 {
        let peak = self.daily_shape.iter().copied().fold(0.0, f64::max);
        if peak <= 0.0 {
            return 0.0;
        }
        self.busy_hour_per_number * self.daily_shape.iter().sum::<f64>() / peak
    }
}

impl Scenario {
    /// Every number of every tenant.
    pub fn total_numbers(&self) -> u64 {
        self.tenants.iter().map(|t| u64::from(t.numbers)).sum()
    }

    /// Calls a day expected at the start: the numbers assigned at start times each one's daily
    /// calls (churn moves the assigned share over the run).
    pub fn expected_calls_per_day(&self) -> f64 {
        // Numbers count in the millions at most, far inside f64's exact integers.
        #[expect(clippy::cast_precision_loss, reason = "at most millions of numbers")]
        let numbers = self.total_numbers() as f64;
        numbers * self.assignments.assigned_at_start * self.calls.calls_per_number_per_day()
    }

    /// Calls expected over the whole run at the start's assigned share: each UTC hour of the
    /// run at its weight of the daily shape, so that a two-hour night run expects few.
    pub fn expected_calls(&self) -> f64 {
        self.expected_calls_within(self.length_ms)
    }

    /// [`Scenario::expected_calls`] over the first `length_ms` of the run (`--length`).
    pub fn expected_calls_within(&self, length_ms: i64) -> f64 {
        let c = &self.calls;
        let peak = c.daily_shape.iter().copied().fold(0.0, f64::max);
        if peak <= 0.0 {
            return 0.0;
        }
        let end = self.start + length_ms;
        let mut at = self.start;
        let mut number_hours = 0.0;
        while at < end {
            let hour_start = at - at.rem_euclid(HOUR_MS);
            let until = (hour_start + HOUR_MS).min(end);
            let hour = usize::try_from(at.rem_euclid(DAY_MS) / HOUR_MS).unwrap_or(0);
            #[expect(clippy::cast_precision_loss, reason = "at most an hour of ms")]
            let share_of_hour = (until - at) as f64 / HOUR_MS as f64;
            number_hours += share_of_hour * c.daily_shape[hour] / peak;
            at = until;
        }
        #[expect(clippy::cast_precision_loss, reason = "at most millions of numbers")]
        let numbers = self.total_numbers() as f64;
        numbers * self.assignments.assigned_at_start * c.busy_hour_per_number * number_hours
    }
}

/// What `oc-harness scenario check` prints: a short summary of a valid scenario, or every
/// problem, one per line, as `FILE:LINE:COLUMN: key.path: message`.
pub fn check_report(result: &Result<Scenario, ScenarioError>) -> String {
    match result {
        Ok(scenario) => summary(scenario),
        Err(err) => format!("{err}\n"),
    }
}

/// The summary of a valid scenario.
pub fn summary(s: &Scenario) -> String {
    let mut out = String::new();
    let mut line = |label: &str, text: String| {
        // Writing to a String cannot fail.
        let _ = writeln!(out, "{label:<13}{text}");
    };
    line("scenario", format!("{}: {}", s.name, s.description.trim()));
    line("seed", s.seed.to_string());
    line(
        "clock",
        match s.clock {
            Clock::Virtual => "virtual".to_owned(),
            Clock::Realtime { speed } => format!("realtime, speed {speed}"),
        },
    );
    line(
        "time",
        format!(
            "from {} for {}, tick {} ({} ticks)",
            format_timestamp(s.start),
            format_duration(s.length_ms),
            format_duration(s.tick_ms),
            (s.length_ms + s.tick_ms - 1) / s.tick_ms.max(1),
        ),
    );
    line(
        "tenants",
        format!(
            "{} with {} numbers ({})",
            s.tenants.len(),
            s.total_numbers(),
            s.tenants
                .iter()
                .map(|t| format!("{} from {}", t.numbers, t.first_number))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    let a = &s.assignments;
    line(
        "assignments",
        format!(
            "{}% at start on {}; per number per day: {} assign, {} update, {} unassign",
            a.assigned_at_start * 100.0,
            a.sip_host,
            a.assign_per_day,
            a.update_per_day,
            a.unassign_per_day
        ),
    );
    let c = &s.calls;
    line(
        "calls",
        format!(
            "~{:.0} a day, ~{:.0} in the run ({:.1} per assigned number a day, busy hour {}); \
             answered {}%, outbound {}%, corrected {}%",
            s.expected_calls_per_day(),
            s.expected_calls(),
            c.calls_per_number_per_day(),
            c.busy_hour_per_number,
            c.answer_rate * 100.0,
            c.outbound_share * 100.0,
            c.correction_rate * 100.0
        ),
    );
    line(
        "durations",
        format!(
            "median {}, sigma {}, max {}; available after ~{} (max {})",
            format_duration(c.duration.median_ms),
            c.duration.sigma,
            format_duration(c.duration.max_ms),
            format_duration(c.availability_delay.mean_ms),
            format_duration(c.availability_delay.max_ms)
        ),
    );
    line("carrier", describe_carrier(&s.carrier));
    line(
        "reconcile",
        format!(
            "tolerance {}, deadline {}",
            format_duration(s.reconciliation.tolerance_ms),
            format_duration(s.reconciliation.deadline_ms)
        ),
    );
    line(
        "expect",
        if s.expect.failed_rules.is_empty() {
            "every rule passes".to_owned()
        } else {
            let rules: Vec<&str> = s.expect.failed_rules.iter().map(|r| r.as_str()).collect();
            format!("exactly these rules fail: {}", rules.join(", "))
        },
    );
    let t = &s.thresholds;
    let mut limits = Vec::new();
    if let Some(rate) = t.min_match_rate {
        limits.push(format!("match rate >= {rate}"));
    }
    if let Some(ms) = t.max_ack_p99_ms {
        limits.push(format!(
            "ack p99 <= {}",
            format_duration(i64::try_from(ms).unwrap_or(i64::MAX))
        ));
    }
    if let Some(minutes) = t.max_minutes_difference {
        limits.push(format!("|minutes difference| <= {minutes}"));
    }
    if !limits.is_empty() {
        line("thresholds", limits.join(", "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::load::parse;
    use super::super::load::tests::MINIMAL;
    use super::*;

    #[test]
    fn the_summary_states_the_expected_call_rate() {
        // 10 numbers, 90% assigned at start, 2 calls in the busy hour, 10 busy hours a day.
        let s = parse(MINIMAL, "t.toml").unwrap();
        assert!((s.calls.calls_per_number_per_day() - 20.0).abs() < 1e-9);
        assert!((s.expected_calls_per_day() - 180.0).abs() < 1e-9);
        let report = check_report(&Ok(s));
        assert!(report.contains("~180 a day"), "{report}");
        assert!(report.contains("tick 5m (288 ticks)"), "{report}");
        assert!(
            report.contains("mock, profile correct, no drift"),
            "{report}"
        );
        assert!(report.contains("every rule passes"), "{report}");
    }

    #[test]
    fn the_expected_calls_follow_the_hours_the_run_covers() {
        // 10 numbers × 0.9 × 2 per busy hour: night hours weigh 1/10, 10:00 weighs 10/10.
        let night = MINIMAL.replace("length = \"1d\"", "length = \"2h\"");
        let s = parse(&night, "t.toml").unwrap();
        assert!(
            (s.expected_calls() - 3.6).abs() < 1e-9,
            "{}",
            s.expected_calls()
        );
        let late = night.replace("T00:00:00.000Z", "T10:30:00.000Z");
        let s = parse(&late, "t.toml").unwrap();
        // 10:30–11:00 at 10, 11:00–12:00 at 9, 12:00–12:30 at 6.
        let want = 18.0 * (0.5 * 1.0 + 0.9 + 0.5 * 0.6);
        assert!(
            (s.expected_calls() - want).abs() < 1e-9,
            "{}",
            s.expected_calls()
        );
        let s = parse(MINIMAL, "t.toml").unwrap();
        assert!((s.expected_calls() - s.expected_calls_per_day()).abs() < 1e-9);
    }

    #[test]
    fn a_flat_shape_makes_every_hour_a_busy_hour() {
        let text = format!("{MINIMAL}[calls]\ndaily_shape = {:?}\n", [3.0; 24]);
        let s = parse(&text, "t.toml").unwrap();
        assert!((s.calls.calls_per_number_per_day() - 48.0).abs() < 1e-9);
    }

    #[test]
    fn a_failed_check_lists_every_problem_a_line() {
        let text = MINIMAL
            .replace("seed = 7", "seed = 7\nspeed = 2.0")
            .replace("length = \"1d\"", "length = \"0s\"");
        let report = check_report(&parse(&text, "x.toml"));
        let lines: Vec<&str> = report.lines().collect();
        assert_eq!(lines.len(), 2, "{report}");
        assert!(lines[0].starts_with("x.toml:4:9: speed: "), "{report}");
        assert!(lines[1].starts_with("x.toml:6:10: length: "), "{report}");
    }
}
