//! Turning a judged run into its report, the verdict and the exit code; and the progress shown
//! while it runs.

use std::io::IsTerminal;
use std::time::Duration;

use oc_protocol::{ReconciliationSummary, RuleId, Severity, format_timestamp};
use oc_reports::{
    Accuracy, Conservation, ExpectationResult, LatencySummary, Outcome, QualityBucket, Report,
    RunCounts, ScenarioInfo, ThresholdResult, Timing, Verdict,
};

use super::figures::RunFigures;
use crate::checker::CheckResult;
use crate::scenario::{CarrierSpec, Clock, Scenario};

/// What the report is built from.
pub(crate) struct Inputs<'a> {
    pub(crate) scenario: &'a Scenario,
    pub(crate) seed: u64,
    pub(crate) length_ms: i64,
    pub(crate) figures: RunFigures,
    /// Numbers of the carrier, and poll cycles judged.
    pub(crate) numbers: u64,
    pub(crate) cycles: u64,
    /// Every quality record Teams served the carrier, as its store renders them at the end.
    pub(crate) quality_over_time: Vec<QualityBucket>,
    pub(crate) result: CheckResult,
    pub(crate) summary: ReconciliationSummary,
    pub(crate) wall: Duration,
    /// The command that replays the run, as `crate::replay` writes it.
    pub(crate) replay: String,
}

/// The exit code of a report: 0 passed, 1 failed, 3 the checker disagreed with ground truth.
pub fn exit_code(report: &Report) -> u8 {
    match report.verdict {
        Verdict::Passed => 0,
        Verdict::Failed => 1,
        Verdict::HarnessError => 3,
    }
}

pub(crate) fn build(inputs: Inputs<'_>) -> Report {
    let Inputs {
        scenario,
        seed,
        length_ms,
        figures,
        numbers,
        cycles,
        quality_over_time,
        result,
        summary,
        wall,
        replay,
    } = inputs;
    let expectation = expectation(&result.rules, scenario.expect.failed_rules.clone());
    let latency = figures.latency;
    let thresholds = thresholds(scenario, &summary, &latency);
    let verdict = verdict(
        result.accuracy.as_ref(),
        &result.conservation,
        &expectation,
        &thresholds,
    );
    let counts = RunCounts {
        numbers,
        events: figures.events,
        calls: figures.calls,
        answered_calls: figures.answered_calls,
        exchanges: figures.exchanges,
        cycles,
    };
    let wall_ms = u64::try_from(wall.as_millis()).unwrap_or(u64::MAX);
    Report {
        schema_version: oc_reports::SCHEMA_VERSION,
        harness_version: env!("CARGO_PKG_VERSION").to_owned(),
        scenario: ScenarioInfo {
            name: scenario.name.clone(),
            description: scenario.description.clone(),
            seed,
            clock: match scenario.clock {
                Clock::Virtual => "virtual".into(),
                Clock::Realtime { speed } => format!("realtime ×{speed}"),
            },
            start: format_timestamp(scenario.start),
            length_ms,
            carrier: carrier_label(&scenario.carrier),
            replay,
        },
        verdict,
        rules: result.rules,
        thresholds,
        expectation,
        reconciliation: Some(summary),
        accuracy: result.accuracy,
        conservation: result.conservation,
        counts,
        latency,
        drift_distribution: figures.drift_distribution,
        quality_over_time,
        timing: Timing {
            started_at: format_timestamp(
                crate::run::recorded::wall_ms() - i64::try_from(wall.as_millis()).unwrap_or(0),
            ),
            wall_ms,
            calls_per_second: figures.calls as f64 / wall.as_secs_f64().max(1e-9),
        },
        certification: None,
        load: None,
        shard: None,
    }
}

/// The carrier as the report names it: `mock-carrier (correct)` only for the mock that reports
/// what Teams recorded; with drift models, how many and which, since its durations are then
/// wrong on purpose even when its protocol behaviour is right.
fn carrier_label(carrier: &CarrierSpec) -> String {
    match carrier {
        CarrierSpec::Mock {
            misbehaviour,
            drift,
            ..
        } => {
            let profile = misbehaviour.profile.name();
            if drift.is_empty() {
                format!("mock-carrier ({profile})")
            } else {
                let names: Vec<&str> = drift.iter().map(|d| d.name()).collect();
                format!(
                    "mock-carrier ({profile} protocol behaviour; {} drift model{}: {})",
                    drift.len(),
                    if drift.len() == 1 { "" } else { "s" },
                    names.join(", ")
                )
            }
        }
        CarrierSpec::External { url } => url.clone(),
    }
}

fn thresholds(
    scenario: &Scenario,
    summary: &ReconciliationSummary,
    latency: &[LatencySummary],
) -> Vec<ThresholdResult> {
    let t = &scenario.thresholds;
    let mut out = Vec::new();
    if let Some(min) = t.min_match_rate {
        let measured = summary.match_rate;
        out.push(ThresholdResult {
            name: "min_match_rate".into(),
            limit: min,
            measured,
            passed: measured.is_none_or(|m| m >= min),
        });
    }
    if let Some(max) = t.max_ack_p99_ms {
        let measured = latency
            .iter()
            .find(|l| l.exchange == "webhook")
            .map(|l| l.p99_us as f64 / 1000.0);
        out.push(ThresholdResult {
            name: "max_ack_p99_ms".into(),
            limit: max as f64,
            measured,
            passed: measured.is_none_or(|m| m <= max as f64),
        });
    }
    if let Some(max) = t.max_minutes_difference {
        let measured = summary.minutes.difference.abs();
        out.push(ThresholdResult {
            name: "max_minutes_difference".into(),
            limit: max,
            measured: Some(measured),
            passed: measured <= max,
        });
    }
    out
}

/// The most buckets of [`quality_over_time`].
const MAX_QUALITY_BUCKETS: i64 = 48;

/// Served quality records and the poor ones per bucket of `availableDateTime` (buckets aligned
/// on multiples of their size since the Unix epoch, empty ones included), the bucket the
/// smallest of 1 min, 5 min, 15 min, 1 h, 3 h, 6 h, 12 h, 1 day, 7 days, or a whole number of
/// days, that gives at most [`MAX_QUALITY_BUCKETS`]. `records` gives each record's
/// availability and whether it is poor; it is read twice (the span, then the counts), so that
/// nothing per record is kept.
pub(crate) fn quality_over_time<I: Iterator<Item = (i64, bool)>>(
    records: impl Fn() -> I,
) -> Vec<QualityBucket> {
    const MINUTE: i64 = 60_000;
    const HOUR: i64 = 60 * MINUTE;
    const DAY: i64 = 24 * HOUR;
    let Some((first, last)) = records().fold(None, |span: Option<(i64, i64)>, (t, _)| {
        Some(span.map_or((t, t), |(lo, hi)| (lo.min(t), hi.max(t))))
    }) else {
        return Vec::new();
    };
    let count = |size: i64| last.div_euclid(size) - first.div_euclid(size) + 1;
    let size = [
        MINUTE,
        5 * MINUTE,
        15 * MINUTE,
        HOUR,
        3 * HOUR,
        6 * HOUR,
        12 * HOUR,
        DAY,
        7 * DAY,
    ]
    .into_iter()
    .find(|&size| count(size) <= MAX_QUALITY_BUCKETS)
    .unwrap_or_else(|| {
        let days = ((last - first) / DAY / MAX_QUALITY_BUCKETS + 1).max(1);
        let mut size = days * DAY;
        while count(size) > MAX_QUALITY_BUCKETS {
            size += DAY;
        }
        size
    });
    let base = first.div_euclid(size);
    let mut buckets: Vec<QualityBucket> = (0..count(size))
        .map(|i| QualityBucket {
            start: format_timestamp((base + i) * size),
            streams: 0,
            poor: 0,
        })
        .collect();
    for (t, poor) in records() {
        let bucket = &mut buckets[usize::try_from(t.div_euclid(size) - base).unwrap_or(0)];
        bucket.streams += 1;
        bucket.poor += u64::from(poor);
    }
    buckets
}

/// A progress bar on a terminal; a line per tenth of the run elsewhere; nothing when off.
pub(crate) struct Progress {
    bar: Option<indicatif::ProgressBar>,
    lines: bool,
    length_ms: i64,
    last_tenth: std::cell::Cell<i64>,
}

impl Progress {
    pub(crate) fn new(enabled: bool, length_ms: i64) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let bar = (enabled && terminal).then(|| {
            let bar = indicatif::ProgressBar::new(u64::try_from(length_ms).unwrap_or(0) / 1000);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} simulated {pos}/{len} s [{bar:30}] {elapsed} {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            // A bar only for runs that take more than a moment.
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Self {
            bar,
            lines: enabled && !terminal,
            length_ms,
            last_tenth: std::cell::Cell::new(0),
        }
    }

    pub(crate) fn tick(&self, done_ms: i64) {
        if let Some(bar) = &self.bar {
            bar.set_position(u64::try_from(done_ms).unwrap_or(0) / 1000);
        } else if self.lines && self.length_ms > 0 {
            let tenth = done_ms * 10 / self.length_ms;
            if tenth > self.last_tenth.get() {
                self.last_tenth.set(tenth);
                eprintln!("progress: {}% of simulated time", tenth * 10);
            }
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The verdict of a run (and of a merge, on the merged figures): a harness error when the
/// checker disagreed with the ground truth or the classes do not add up; else passed when the
/// expectation is met and every threshold held.
pub(crate) fn verdict(
    accuracy: Option<&Accuracy>,
    conservation: &Conservation,
    expectation: &ExpectationResult,
    thresholds: &[ThresholdResult],
) -> Verdict {
    if accuracy.is_some_and(|a| a.disagreement_count > 0) || !conservation.holds {
        Verdict::HarnessError
    } else if expectation.met && thresholds.iter().all(|t| t.passed) {
        Verdict::Passed
    } else {
        Verdict::Failed
    }
}

/// The expectation judged: met when the MUST rules that failed are exactly the ones expected to
/// fail (a run's, and a merge's judged again on the merged verdicts).
pub(crate) fn expectation(
    rules: &[oc_reports::RuleVerdict],
    mut expected_failures: Vec<RuleId>,
) -> ExpectationResult {
    let actual_failures: Vec<RuleId> = rules
        .iter()
        .filter(|r| r.outcome == Outcome::Failed && r.severity == Severity::Must)
        .map(|r| r.rule)
        .collect();
    expected_failures.sort();
    expected_failures.dedup();
    let mut sorted_actual = actual_failures.clone();
    sorted_actual.sort();
    ExpectationResult {
        met: sorted_actual == expected_failures,
        expected_failures,
        actual_failures,
    }
}

#[cfg(test)]
mod tests {
    use oc_protocol::{AudioCodec, QualityRecord, StreamDirection, parse_timestamp};

    use super::*;

    fn record(available: &str, poor: bool) -> QualityRecord {
        QualityRecord {
            call_id: "call-1".into(),
            stream_direction: StreamDirection::CallerToCallee,
            audio_codec: AudioCodec::Pcma,
            packet_utilization: 1000,
            average_jitter_ms: 1,
            max_jitter_ms: 2,
            average_packet_loss_rate: 0.0,
            max_packet_loss_rate: 0.0,
            average_round_trip_time_ms: 10,
            max_round_trip_time_ms: 20,
            average_audio_degradation: 0.0,
            average_ratio_of_concealed_samples: 0.0,
            poor,
            available_date_time: available.into(),
        }
    }

    fn scenario(name: &str) -> Scenario {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../scenarios")
            .join(format!("{name}.toml"));
        crate::scenario::load(&path).unwrap()
    }

    #[test]
    fn a_carrier_with_drift_models_is_never_called_correct() {
        assert_eq!(
            carrier_label(&scenario("smoke").carrier),
            "mock-carrier (correct)"
        );
        assert_eq!(
            carrier_label(&scenario("drift-mixed").carrier),
            "mock-carrier (correct protocol behaviour; 10 drift models: offset, round, jitter, \
             late_answer, hung, clock_skew, drop, duplicate, after_deadline, unassigned_number)"
        );
        assert_eq!(
            carrier_label(&scenario("drift-rounding").carrier),
            "mock-carrier (correct protocol behaviour; 1 drift model: round)"
        );
    }

    fn quality_over_time(records: &[QualityRecord]) -> Vec<QualityBucket> {
        super::quality_over_time(|| {
            records.iter().filter_map(|r| {
                parse_timestamp(&r.available_date_time)
                    .ok()
                    .map(|t| (t, r.poor))
            })
        })
    }

    #[test]
    fn quality_buckets_cover_the_span_in_at_most_48_buckets() {
        assert!(quality_over_time(&[]).is_empty());
        let records = [
            record("2026-11-02T00:10:00.000Z", false),
            record("2026-11-02T00:59:59.999Z", true),
            record("2026-11-02T02:30:00.000Z", false),
        ];
        let buckets = quality_over_time(&records);
        // 2 h 20 min fits 48 buckets of 5 minutes.
        assert_eq!(buckets.len(), 29);
        assert_eq!(buckets[0].start, "2026-11-02T00:10:00.000Z");
        assert_eq!((buckets[9].streams, buckets[9].poor), (1, 1));
        assert_eq!(buckets.iter().map(|b| b.streams).sum::<u64>(), 3);
        let month = [
            record("2026-11-01T00:00:00.000Z", true),
            record("2026-11-30T23:00:00.000Z", false),
        ];
        let buckets = quality_over_time(&month);
        assert_eq!(buckets.len(), 30);
        assert_eq!(buckets[29].start, "2026-11-30T00:00:00.000Z");
        let years = [
            record("2026-01-01T00:00:00.000Z", true),
            record("2028-01-01T00:00:00.000Z", false),
        ];
        assert!(quality_over_time(&years).len() <= 48);
    }
}
