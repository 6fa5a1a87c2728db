//! Turning a judged run into its report, the verdict and the exit code; and the progress shown
//! while it runs.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Duration;

use hdrhistogram::Histogram;
use oc_protocol::{
    QualityRecord, ReconciliationItem, ReconciliationSummary, RuleId, Severity, format_timestamp,
    parse_timestamp,
};
use oc_reports::{
    DriftBin, ExpectationResult, LATENCY_QUANTILES, LatencyMeasure, LatencyPoint, LatencySummary,
    Outcome, QualityBucket, Report, RunCounts, ScenarioInfo, ThresholdResult, Timing, Verdict,
};

use crate::checker::{CheckResult, History};
use crate::scenario::{CarrierSpec, Clock, Scenario};

/// What the report is built from.
pub(crate) struct Inputs<'a> {
    pub(crate) scenario: &'a Scenario,
    pub(crate) seed: u64,
    pub(crate) length_ms: i64,
    pub(crate) history: &'a History,
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
        history,
        result,
        summary,
        wall,
        replay,
    } = inputs;
    let actual_failures: Vec<RuleId> = result
        .rules
        .iter()
        .filter(|r| r.outcome == Outcome::Failed && r.severity == Severity::Must)
        .map(|r| r.rule)
        .collect();
    let mut expected_failures = scenario.expect.failed_rules.clone();
    expected_failures.sort();
    expected_failures.dedup();
    let mut sorted_actual = actual_failures.clone();
    sorted_actual.sort();
    let expectation = ExpectationResult {
        met: sorted_actual == expected_failures,
        expected_failures,
        actual_failures,
    };
    let latency = latency(history);
    let thresholds = thresholds(scenario, &summary, &latency);
    let harness_error = result
        .accuracy
        .as_ref()
        .is_some_and(|a| a.disagreement_count > 0)
        || !result.conservation.holds;
    let verdict = if harness_error {
        Verdict::HarnessError
    } else if expectation.met && thresholds.iter().all(|t| t.passed) {
        Verdict::Passed
    } else {
        Verdict::Failed
    };
    let answered = history.calls.iter().filter(|c| c.answered).count() as u64;
    let counts = RunCounts {
        numbers: history.teams_numbers.len() as u64,
        events: history.events.len() as u64,
        calls: history.calls.len() as u64,
        answered_calls: answered,
        exchanges: history.exchanges.len() as u64,
        cycles: history.cycles.len() as u64,
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
        drift_distribution: drift_distribution(&history.reconciliation),
        quality_over_time: quality_over_time(&history.quality_served),
        timing: Timing {
            started_at: format_timestamp(
                crate::run::probes::wall_ms() - i64::try_from(wall.as_millis()).unwrap_or(0),
            ),
            wall_ms,
            calls_per_second: history.calls.len() as f64 / wall.as_secs_f64().max(1e-9),
        },
        certification: None,
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

/// Latency of each kind of exchange, with what its figures time: the carrier's calls to the
/// Teams API by method and path (Teams' handler time), and the requests to the carrier by what
/// they were: `webhook` (one delivery attempt), the harness's call-legs posts, state probes and
/// forged notifications (round trips). Only webhooks count as `webhook`, the figure
/// `max_ack_p99_ms` holds to.
fn latency(history: &History) -> Vec<LatencySummary> {
    use oc_observe::ExchangeDetail;
    let mut by_kind: BTreeMap<(LatencyMeasure, String), Histogram<u64>> = BTreeMap::new();
    for e in &history.exchanges {
        let path = || e.url.split('?').next().unwrap_or(&e.url).to_owned();
        let kind = match (e.direction, &e.detail) {
            (oc_observe::ExchangeDirection::CarrierToTeams, _) => (
                LatencyMeasure::TeamsHandler,
                format!("{} {}", e.method, path()),
            ),
            (_, Some(ExchangeDetail::Webhook { .. })) => {
                (LatencyMeasure::RoundTrip, "webhook".to_owned())
            }
            (_, Some(ExchangeDetail::CallLegs { .. })) => (
                LatencyMeasure::RoundTrip,
                format!("{} {}", e.method, oc_protocol::paths::CALL_LEGS),
            ),
            (_, Some(ExchangeDetail::StateProbe { .. })) => (
                LatencyMeasure::RoundTrip,
                format!(
                    "{} {}{{telephoneNumber}} (state probe)",
                    e.method,
                    oc_protocol::paths::CARRIER_NUMBER_PREFIX
                ),
            ),
            (_, Some(ExchangeDetail::ForgedNotification { .. })) => (
                LatencyMeasure::RoundTrip,
                "forged notification (signature probe)".to_owned(),
            ),
            _ => (
                LatencyMeasure::RoundTrip,
                format!("{} {} (harness)", e.method, path()),
            ),
        };
        let histogram = by_kind
            .entry(kind)
            .or_insert_with(|| Histogram::new(3).unwrap_or_else(|_| unreachable!("3 figures")));
        let _ = histogram.record(e.latency_us.max(1));
    }
    by_kind
        .into_iter()
        .map(|((measure, exchange), h)| LatencySummary {
            exchange,
            measure,
            count: h.len(),
            p50_us: h.value_at_quantile(0.5),
            p90_us: h.value_at_quantile(0.9),
            p99_us: h.value_at_quantile(0.99),
            max_us: h.max(),
            curve: LATENCY_QUANTILES
                .iter()
                .map(|&quantile| LatencyPoint {
                    quantile,
                    us: h.value_at_quantile(quantile),
                })
                .collect(),
        })
        .collect()
}

/// The largest decade edge of the drift distribution: beyond it, one outer bin per side.
const DRIFT_DECADES: u32 = 7;

/// The signed drift of every `matched` and `drift` item in bins `0`, `±(1…9)`, `±(10…99)`, …
/// `±(10⁶…10⁷−1)` and one outer bin per side up to the extreme (at most 17 bins): the bins from
/// the lowest non-empty to the highest non-empty one, `0` always included; empty without data.
fn drift_distribution(items: &[ReconciliationItem]) -> Vec<DriftBin> {
    let differences: Vec<i64> = items.iter().filter_map(|i| i.difference_ms).collect();
    let (Some(&low), Some(&high)) = (differences.iter().min(), differences.iter().max()) else {
        return Vec::new();
    };
    // Positive bins by index: 0 is `0…0`, k in 1..=DRIFT_DECADES is `10^(k-1)…10^k − 1`, and
    // DRIFT_DECADES + 1 is `10^DRIFT_DECADES…` the extreme.
    let index = |magnitude: u64| -> usize {
        if magnitude == 0 {
            0
        } else {
            (magnitude.ilog10() + 1).min(DRIFT_DECADES + 1) as usize
        }
    };
    let range = |k: usize, extreme: u64| -> (u64, u64) {
        match k {
            0 => (0, 0),
            k if k as u32 > DRIFT_DECADES => (10u64.pow(DRIFT_DECADES), extreme),
            k => (10u64.pow(k as u32 - 1), 10u64.pow(k as u32) - 1),
        }
    };
    let sides = DRIFT_DECADES as usize + 2;
    let (mut negative, mut positive) = (vec![0u64; sides], vec![0u64; sides]);
    for &d in &differences {
        if d < 0 {
            negative[index(d.unsigned_abs())] += 1;
        } else {
            positive[index(d.unsigned_abs())] += 1;
        }
    }
    let signed = |v: u64, negate: bool| -> i64 {
        let v = i64::try_from(v).unwrap_or(i64::MAX);
        if negate { -v } else { v }
    };
    let mut bins = Vec::new();
    if low < 0 {
        for k in (1..=index(low.unsigned_abs())).rev() {
            let (from, to) = range(k, low.unsigned_abs());
            bins.push(DriftBin {
                from_ms: signed(to, true),
                to_ms: signed(from, true),
                count: negative[k],
            });
        }
    }
    let top = if high > 0 {
        index(high.unsigned_abs())
    } else {
        0
    };
    for (k, &count) in positive.iter().enumerate().take(top + 1) {
        let (from, to) = range(k, high.unsigned_abs());
        bins.push(DriftBin {
            from_ms: signed(from, false),
            to_ms: signed(to, false),
            count,
        });
    }
    bins
}

/// The most buckets of [`quality_over_time`].
const MAX_QUALITY_BUCKETS: i64 = 48;

/// Served quality records and the poor ones per bucket of `availableDateTime` (buckets aligned
/// on multiples of their size since the Unix epoch, empty ones included), the bucket the
/// smallest of 1 min, 5 min, 15 min, 1 h, 3 h, 6 h, 12 h, 1 day, 7 days, or a whole number of
/// days, that gives at most [`MAX_QUALITY_BUCKETS`]. Records with an unreadable timestamp are
/// left out.
fn quality_over_time(records: &[QualityRecord]) -> Vec<QualityBucket> {
    const MINUTE: i64 = 60_000;
    const HOUR: i64 = 60 * MINUTE;
    const DAY: i64 = 24 * HOUR;
    let times: Vec<(i64, bool)> = records
        .iter()
        .filter_map(|r| {
            parse_timestamp(&r.available_date_time)
                .ok()
                .map(|t| (t, r.poor))
        })
        .collect();
    let (Some(first), Some(last)) = (
        times.iter().map(|t| t.0).min(),
        times.iter().map(|t| t.0).max(),
    ) else {
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
    for (t, poor) in times {
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

#[cfg(test)]
mod tests {
    use oc_protocol::{AudioCodec, ReconClass, StreamDirection};

    use super::*;

    fn item(difference_ms: Option<i64>) -> ReconciliationItem {
        ReconciliationItem {
            call_id: "call-1".into(),
            class: if difference_ms.is_some() {
                ReconClass::Drift
            } else {
                ReconClass::Missing
            },
            telephone_number: "+15550100".into(),
            teams_duration_ms: Some(60_000),
            carrier_duration_ms: difference_ms.map(|d| 60_000 + d),
            difference_ms,
            late: false,
            duplicate: false,
            corrected: false,
        }
    }

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

    fn bins(bins: &[DriftBin]) -> Vec<(i64, i64, u64)> {
        bins.iter().map(|b| (b.from_ms, b.to_ms, b.count)).collect()
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

    fn exchange(
        direction: oc_observe::ExchangeDirection,
        method: &str,
        url: &str,
        detail: Option<oc_observe::ExchangeDetail>,
        latency_us: u64,
    ) -> oc_observe::Exchange {
        oc_observe::Exchange {
            seq: 0,
            direction,
            carrier: None,
            method: method.into(),
            url: url.into(),
            status: Some(200),
            error: None,
            sim_time: 0,
            wall_time_ms: 0,
            latency_us,
            request_headers: Vec::new(),
            request_body: None,
            response_body: None,
            fault: None,
            detail,
        }
    }

    #[test]
    fn latency_says_what_each_figure_times_and_webhooks_are_only_webhooks() {
        use oc_observe::ExchangeDetail;
        use oc_observe::ExchangeDirection::{CarrierToTeams, TeamsToCarrier};
        let history = History {
            exchanges: vec![
                exchange(
                    CarrierToTeams,
                    "GET",
                    "/oc/v1/cdrs/delta?token=x",
                    None,
                    300,
                ),
                exchange(
                    TeamsToCarrier,
                    "POST",
                    "http://127.0.0.1:9/oc/v1/notifications/number-assignments",
                    Some(ExchangeDetail::Webhook {
                        notification_id: "n".into(),
                        attempt: 0,
                        event_ids: Vec::new(),
                    }),
                    2_000,
                ),
                exchange(
                    TeamsToCarrier,
                    "GET",
                    "http://127.0.0.1:9/oc/v1/numbers/+14255550100",
                    Some(ExchangeDetail::StateProbe {
                        telephone_number: "+14255550100".into(),
                    }),
                    9_000_000,
                ),
                exchange(
                    TeamsToCarrier,
                    "POST",
                    "http://127.0.0.1:9/oc/v1/test/call-legs",
                    Some(ExchangeDetail::CallLegs {
                        call_ids: Vec::new(),
                    }),
                    50_000,
                ),
            ],
            ..History::default()
        };
        let latency = latency(&history);
        let kinds: Vec<(LatencyMeasure, &str, u64)> = latency
            .iter()
            .map(|l| (l.measure, l.exchange.as_str(), l.max_us))
            .collect();
        assert_eq!(kinds.len(), 4, "{kinds:?}");
        assert!(kinds.contains(&(LatencyMeasure::TeamsHandler, "GET /oc/v1/cdrs/delta", 300)));
        // The slow probe is no webhook: max_ack_p99_ms holds webhooks only.
        assert!(
            kinds.contains(&(LatencyMeasure::RoundTrip, "webhook", 2_000)),
            "{kinds:?}"
        );
        assert!(kinds.iter().any(|k| k.1 == "POST /oc/v1/test/call-legs"));
        assert!(
            kinds
                .iter()
                .any(|k| k.1 == "GET /oc/v1/numbers/{telephoneNumber} (state probe)")
        );
    }

    #[test]
    fn drift_bins_are_signed_decades_from_the_lowest_to_the_highest() {
        assert!(drift_distribution(&[item(None)]).is_empty());
        let items: Vec<_> = [
            Some(-150),
            Some(0),
            Some(0),
            Some(7),
            Some(12_345_678),
            None,
        ]
        .into_iter()
        .map(item)
        .collect();
        assert_eq!(
            bins(&drift_distribution(&items)),
            [
                (-999, -100, 1),
                (-99, -10, 0),
                (-9, -1, 0),
                (0, 0, 2),
                (1, 9, 1),
                (10, 99, 0),
                (100, 999, 0),
                (1000, 9999, 0),
                (10_000, 99_999, 0),
                (100_000, 999_999, 0),
                (1_000_000, 9_999_999, 0),
                (10_000_000, 12_345_678, 1),
            ]
        );
        assert_eq!(bins(&drift_distribution(&[item(Some(0))])), [(0, 0, 1)]);
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
