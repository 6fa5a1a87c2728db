//! Turning a judged run into its report, the verdict and the exit code; and the progress shown
//! while it runs.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Duration;

use hdrhistogram::Histogram;
use oc_protocol::{ReconciliationSummary, RuleId, Severity, format_timestamp};
use oc_reports::{
    ExpectationResult, LatencySummary, Outcome, Report, RunCounts, ScenarioInfo, ThresholdResult,
    Timing, Verdict,
};

use crate::checker::{CheckResult, History};
use crate::scenario::{CarrierSpec, Clock, Scenario};

/// What the report is built from.
pub(super) struct Inputs<'a> {
    pub(super) scenario: &'a Scenario,
    pub(super) seed: u64,
    pub(super) length_ms: i64,
    pub(super) history: &'a History,
    pub(super) result: CheckResult,
    pub(super) summary: ReconciliationSummary,
    pub(super) wall: Duration,
}

/// The exit code of a report: 0 passed, 1 failed, 3 the checker disagreed with ground truth.
pub fn exit_code(report: &Report) -> u8 {
    match report.verdict {
        Verdict::Passed => 0,
        Verdict::Failed => 1,
        Verdict::HarnessError => 3,
    }
}

pub(super) fn build(inputs: Inputs<'_>) -> Report {
    let Inputs {
        scenario,
        seed,
        length_ms,
        history,
        result,
        summary,
        wall,
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
            carrier: match &scenario.carrier {
                CarrierSpec::Mock { misbehaviour, .. } => {
                    format!("mock-carrier ({})", misbehaviour.profile.name())
                }
                CarrierSpec::External { url } => url.clone(),
            },
            replay: format!(
                "oc-harness run scenarios/{}.toml --seed {seed}{}",
                scenario.name,
                if length_ms == scenario.length_ms {
                    String::new()
                } else {
                    format!(" --length {}ms", length_ms)
                }
            ),
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
        timing: Timing {
            wall_ms,
            calls_per_second: history.calls.len() as f64 / wall.as_secs_f64().max(1e-9),
        },
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

/// Latency of each kind of exchange: `webhook`, or the method and path of a Teams API call.
fn latency(history: &History) -> Vec<LatencySummary> {
    let mut by_kind: BTreeMap<String, Histogram<u64>> = BTreeMap::new();
    for e in &history.exchanges {
        let kind = match e.direction {
            mock_teams::ExchangeDirection::TeamsToCarrier => "webhook".to_owned(),
            mock_teams::ExchangeDirection::CarrierToTeams => {
                format!("{} {}", e.method, e.url.split('?').next().unwrap_or(&e.url))
            }
        };
        let histogram = by_kind
            .entry(kind)
            .or_insert_with(|| Histogram::new(3).unwrap_or_else(|_| unreachable!("3 figures")));
        let _ = histogram.record(e.latency_us.max(1));
    }
    by_kind
        .into_iter()
        .map(|(exchange, h)| LatencySummary {
            exchange,
            count: h.len(),
            p50_us: h.value_at_quantile(0.5),
            p90_us: h.value_at_quantile(0.9),
            p99_us: h.value_at_quantile(0.99),
            max_us: h.max(),
        })
        .collect()
}

/// A progress bar on a terminal; a line per tenth of the run elsewhere; nothing when off.
pub(super) struct Progress {
    bar: Option<indicatif::ProgressBar>,
    lines: bool,
    length_ms: i64,
    last_tenth: std::cell::Cell<i64>,
}

impl Progress {
    pub(super) fn new(enabled: bool, length_ms: i64, _tick_ms: i64) -> Self {
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

    pub(super) fn tick(&self, done_ms: i64) {
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

    pub(super) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
