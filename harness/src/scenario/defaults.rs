//! The value of every optional scenario key that a file leaves out, in one place.

use oc_protocol::timestamp::{DAY_MS, HOUR_MS, MINUTE_MS};

/// Simulated time between clock steps.
pub const TICK_MS: i64 = 5 * MINUTE_MS;
/// The longest run a scenario may describe.
pub const MAX_LENGTH_MS: i64 = 366 * DAY_MS;

/// Share of numbers assigned at start.
pub const ASSIGNED_AT_START: f64 = 0.9;
/// The host of generated SIP URIs.
pub const SIP_HOST: &str = "sbc1.carrier.example";

/// Calls per assigned number in the busiest hour.
pub const BUSY_HOUR_PER_NUMBER: f64 = 2.0;

/// An office day in UTC: quiet at night, a ramp from 06:00, peaks in the hours 10:00–11:00 and
/// 14:00–15:00 with a lunch dip between, tailing off in the evening. The weights add up to 100
/// and the peak is 10, so a number gets `10 × busy_hour_per_number` calls a day.
pub const OFFICE_DAY_SHAPE: [f64; 24] = [
    1.0, 1.0, 1.0, 1.0, 1.0, 1.0, // 00–05: night
    2.0, 3.0, 6.0, 9.0, // 06–09: the morning ramp
    10.0, 9.0, 6.0, 8.0, // 10–13: first peak, lunch
    10.0, 9.0, 8.0, 4.0, // 14–17: second peak
    3.0, 2.0, 2.0, 1.0, 1.0, 1.0, // 18–23: evening
];

/// Share of calls answered.
pub const ANSWER_RATE: f64 = 0.8;
/// Share of calls the Teams user placed.
pub const OUTBOUND_SHARE: f64 = 0.6;
/// Median talk time of answered calls.
pub const DURATION_MEDIAN_MS: i64 = 2 * MINUTE_MS;
/// Sigma of the log-normal talk time.
pub const DURATION_SIGMA: f64 = 0.9;
/// Longest talk time.
pub const DURATION_MAX_MS: i64 = 4 * HOUR_MS;
/// Mean delay from a call's end to its records entering the feeds.
pub const AVAILABILITY_MEAN_MS: i64 = 2 * MINUTE_MS;
/// Longest availability delay.
pub const AVAILABILITY_MAX_MS: i64 = HOUR_MS;

/// Share of answered calls on an impaired network.
pub const IMPAIRED_SHARE: f64 = 0.1;

/// The largest difference still `matched`.
pub const TOLERANCE_MS: i64 = oc_protocol::reconciliation::DEFAULT_TOLERANCE_MS;
/// The reporting deadline after a call's end.
pub const DEADLINE_MS: i64 = DAY_MS;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_office_day_adds_up_to_ten_peaks() {
        let sum: f64 = OFFICE_DAY_SHAPE.iter().sum();
        let peak = OFFICE_DAY_SHAPE.iter().copied().fold(0.0, f64::max);
        assert!((sum - 100.0).abs() < 1e-9, "{sum}");
        assert!((peak - 10.0).abs() < 1e-9, "{peak}");
        assert!((OFFICE_DAY_SHAPE[10] - peak).abs() < 1e-9);
        assert!((OFFICE_DAY_SHAPE[14] - peak).abs() < 1e-9);
        let night = OFFICE_DAY_SHAPE[..6].iter().copied().fold(0.0, f64::max);
        assert!(
            night < OFFICE_DAY_SHAPE[12],
            "night {night} is not below lunch"
        );
    }
}
