//! The report of a run or a certification: one versioned model, built once by the harness and
//! rendered many ways: `report.json` ([`Report::write_json`]), `junit.xml` ([`write_junit`]),
//! `summary.md` ([`write_summary`]), `evidence.ndjson` ([`write_evidence`]) and `report.html`
//! ([`write_html`]), all at once with [`Report::write_all`], and what the command prints at the
//! end ([`write_console`]). `report.schema.json` beside this crate's manifest is the
//! JSON Schema of `report.json` ([`REPORT_SCHEMA`]).

use std::io::Write;
use std::path::{Path, PathBuf};

mod console;
mod evidence;
mod html;
mod junit;
pub mod reconcile;
mod summary;
#[cfg(test)]
mod testing;

pub use console::write_console;
pub use evidence::{
    BODY_LIMIT, EvidenceExchange, ExchangeDirection, cited_exchanges, cut_body, write_evidence,
};
pub use html::write_html;
pub use junit::write_junit;
pub use summary::write_summary;

use oc_protocol::{Party, ReconClass, ReconciliationSummary, RuleId, Severity};
use serde::{Deserialize, Serialize};

/// Rule ids as a reader sees them: `SEC-SIGNATURE, NUM-ORDER`, or `none`.
pub fn rule_list(rules: &[RuleId]) -> String {
    if rules.is_empty() {
        "none".to_owned()
    } else {
        rules
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The version of `report.json`'s shape; bumped on every incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// The JSON Schema (draft 2020-12) of `report.json`, strict: an unknown or renamed field fails.
pub const REPORT_SCHEMA: &str = include_str!("../report.schema.json");

/// Everything a run found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// [`SCHEMA_VERSION`] when written.
    pub schema_version: u32,
    /// The harness version that wrote it.
    pub harness_version: String,
    /// What was run.
    pub scenario: ScenarioInfo,
    /// The verdict.
    pub verdict: Verdict,
    /// Every rule of the catalogue, in catalogue order.
    pub rules: Vec<RuleVerdict>,
    /// Every threshold of the scenario.
    pub thresholds: Vec<ThresholdResult>,
    /// Whether the run showed what the scenario expects.
    pub expectation: ExpectationResult,
    /// Teams' reconciliation of the run's window at its end.
    pub reconciliation: Option<ReconciliationSummary>,
    /// The checker's accuracy against the mock carrier's ground truth.
    pub accuracy: Option<Accuracy>,
    /// Every generated call ends in exactly one class.
    pub conservation: Conservation,
    /// What the run did, in counts.
    pub counts: RunCounts,
    /// Latency of each kind of exchange (real time; differs between runs).
    pub latency: Vec<LatencySummary>,
    /// The signed drift (carrier − Teams) of every `matched` and `drift` call, counted in
    /// [`DriftBin`]s: `0`, then decades on each side (`1…9`, `10…99`, … `1000000…9999999`) and
    /// one outer bin per side up to the extreme; only the bins from the lowest non-empty to the
    /// highest non-empty one (and always `0`), in ascending order. Empty when no call has both
    /// sides.
    pub drift_distribution: Vec<DriftBin>,
    /// Served quality records (streams) and how many of them are poor, per bucket of
    /// `availableDateTime`, in time order, empty buckets included; at most 48 buckets, the
    /// bucket size the smallest of 1 min, 5 min, 15 min, 1 h, 3 h, 6 h, 12 h, 1 day, 7 days (or
    /// a whole number of days) that fits. Empty when no record was served.
    pub quality_over_time: Vec<QualityBucket>,
    /// Wall-clock figures of the run (differ between runs).
    pub timing: Timing,
    /// The certification of a real carrier (`oc-harness certify`); absent for a simulation run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certification: Option<Certification>,
    /// A load test's figures over time (`oc-harness load`); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<LoadSection>,
    /// What `oc-harness merge` needs of one shard of a sharded run (`run --shard I/N`), or of
    /// a merged report the shards it was merged from; absent for a whole run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardSection>,
}

/// One shard's figures in a form that merges without loss, or the shards a merged report came
/// from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardSection {
    /// The shard's index, 0-based (`JOB_COMPLETION_INDEX`); absent in a merged report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// How many shards the run was cut into.
    pub count: u32,
    /// The scenario file as given to `run`.
    pub scenario_file: String,
    /// `sha256:` and the hex SHA-256 of the scenario file's bytes.
    pub scenario_digest: String,
    /// Whether the shard ran to its end and wrote every figure (a merge refuses one that did
    /// not).
    pub finished: bool,
    /// The signed drift (carrier − Teams) of every call with both sides, as Teams' store
    /// folds it for its percentiles: two HdrHistograms (5 significant figures, V2 serialised,
    /// base64) of the negative differences' magnitudes and of the others, and the exact
    /// extremes; and the counts of the report's drift bins by side and decade.
    pub drift: ShardDrift,
    /// Every latency histogram of the report, V2 serialised, base64.
    pub latency: Vec<ShardLatency>,
    /// The quality records Teams served, per minute of `availableDateTime` (Unix minutes), with
    /// how many were poor: `[minute, streams, poor]`, ascending.
    pub quality_minutes: Vec<[i64; 3]>,
    /// The start of the window Teams reconciled and its end, Unix ms.
    pub reconciled: [i64; 2],
}

/// One shard's drift, exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardDrift {
    /// Magnitudes of the negative differences.
    pub negative: String,
    /// The differences from 0 up.
    pub positive: String,
    /// The most negative difference; absent without data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    /// The most positive difference; absent without data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
    /// Counts of the drift bins of negative differences by decade index (0 is `0`, k is
    /// `10^(k−1)…10^k − 1`, the last everything beyond).
    pub negative_bins: Vec<u64>,
    /// The same for differences from 0 up.
    pub positive_bins: Vec<u64>,
}

/// One latency histogram, mergeable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardLatency {
    /// As [`LatencySummary::exchange`].
    pub exchange: String,
    /// As [`LatencySummary::measure`].
    pub measure: LatencyMeasure,
    /// The HdrHistogram (3 significant figures), V2 serialised, base64.
    pub histogram: String,
}

/// A load test's figures over time: one entry per metrics interval, and the phases of trouble.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadSection {
    /// The metrics interval, ms.
    pub interval_ms: i64,
    /// The phases of trouble, in time order.
    pub phases: Vec<LoadPhase>,
    /// Every interval, in time order.
    pub intervals: Vec<LoadInterval>,
    /// Iterations that could not start on time, over the whole load.
    pub dropped: u64,
    /// Of which the generator was more than the plan's `start_slack` behind its schedule (the
    /// machine running the load is the limit).
    #[serde(default)]
    pub dropped_late: u64,
    /// Of which `max_in_flight` iterations were under way (answers too slow for the rate).
    #[serde(default)]
    pub dropped_in_flight: u64,
    /// Iterations that started on time but sent nothing, not counted achieved: Teams refused
    /// every number change of them (an earlier dropped iteration left their numbers in another
    /// state than the schedule has them) or their call.
    #[serde(default)]
    pub unsent: u64,
    /// The number changes and calls Teams refused of the iterations started, those of `unsent`
    /// iterations and those of notifications that carried the iteration's other changes: not
    /// counted in `achievedRate`.
    #[serde(default)]
    pub refused: u64,
    /// Calls whose duration Teams never received (counted in `report_lag` at their age at the
    /// end).
    pub unreported: u64,
    /// Why the load stopped early (`abort_on_fail`), when it did.
    pub aborted: Option<String>,
}

impl LoadSection {
    /// The dropped iterations and, when there are some, why: `12 (9 with the generator behind
    /// its schedule, 3 at the in-flight cap)`.
    pub fn dropped_text(&self) -> String {
        if self.dropped == 0 {
            return "0".to_owned();
        }
        let mut text = format!(
            "{} ({} with the generator behind its schedule, {} at the in-flight cap)",
            self.dropped, self.dropped_late, self.dropped_in_flight
        );
        if self.refused > 0 {
            text.push_str(&format!(
                "; of those started, {} changes or calls refused after the drops ({} sent \
                 nothing)",
                self.refused, self.unsent
            ));
        } else if self.unsent > 0 {
            // A report written before refused work was counted.
            text.push_str(&format!(
                "; {} more started but sent nothing, refused after the drops",
                self.unsent
            ));
        }
        text
    }
}

/// A phase of trouble of a load test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadPhase {
    /// What went wrong, e.g. `teams_outage`.
    pub kind: String,
    /// When it started and ended, ms from the start of the load.
    pub start_ms: i64,
    /// When it ended.
    pub end_ms: i64,
    /// Until when latency thresholds excused it (its catch-up allowance).
    pub excused_until_ms: i64,
}

/// One metrics interval of a load test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadInterval {
    /// Its start and end, ms from the start of the load.
    pub start_ms: i64,
    /// Its end.
    pub end_ms: i64,
    /// In a phase or its catch-up allowance: latency thresholds did not judge it.
    pub excused: bool,
    /// Each executor's rates.
    pub executors: Vec<LoadExecutorInterval>,
    /// Each latency metric's figures.
    pub metrics: Vec<LoadMetricInterval>,
    /// Requests of the integration.
    pub requests: u64,
    /// Of which failed.
    pub errors: u64,
}

/// One executor in one interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadExecutorInterval {
    /// `number_events` or `calls`.
    pub executor: String,
    /// The plan's rate, per second.
    pub target_rate: f64,
    /// The rate started, per second.
    pub achieved_rate: f64,
    /// Iterations dropped.
    pub dropped: u64,
}

/// One latency metric in one interval, ms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadMetricInterval {
    /// `webhook_ack`, `legs_post`, `feed_lag` or `report_lag`.
    pub metric: String,
    /// Samples.
    pub count: u64,
    /// Median, ms; none without samples.
    pub p50_ms: Option<f64>,
    /// 99th percentile, ms.
    pub p99_ms: Option<f64>,
    /// Maximum, ms.
    pub max_ms: Option<f64>,
}

/// The certification of a carrier system over the wire: its cases, each tied to rules, and
/// the verdict a carrier hands over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Certification {
    /// `certified` when every case passed.
    pub verdict: CertificationVerdict,
    /// The carrier API under test.
    pub carrier_url: String,
    /// The Teams API the harness served.
    pub teams_url: String,
    /// The reporting deadline after a call's end the carrier was held to, ms (short in
    /// certification, where simulated time is wall-clock time).
    pub reporting_deadline_ms: i64,
    /// The reconciliation tolerance, ms.
    pub tolerance_ms: i64,
    /// The longest the certification could take, wall-clock ms: every wait is bounded.
    pub time_limit_ms: u64,
    /// Why the certification stopped short (the carrier never answered), when it did.
    pub aborted: Option<String>,
    /// Every case, in suite order.
    pub cases: Vec<CaseResult>,
}

/// The verdict of a certification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CertificationVerdict {
    /// Every case passed.
    Certified,
    /// At least one case failed or could not be exercised.
    NotCertified,
}

/// One certification case: what the harness made happen, the rules that judge it, and how the
/// carrier did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaseResult {
    /// A stable id, e.g. `provisioning-convergence`.
    pub id: String,
    /// What the case checks, in a sentence.
    pub title: String,
    /// The rules (PROTOCOL.md ids) that judge it.
    pub rules: Vec<RuleId>,
    /// `passed`, `failed`, or `notExercised` (the run gave it nothing to judge: not certified).
    pub outcome: Outcome,
    /// What was checked and found.
    pub summary: String,
    /// What the run exercised for it, its rules' counts together: below a minimum the case is
    /// `notExercised`, never `passed`.
    #[serde(default)]
    pub exercised: Vec<Exercised>,
    /// The evidence of its failed rules (notes citing exchange `seq`s).
    pub evidence: Vec<Evidence>,
}

/// What was run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScenarioInfo {
    /// The scenario's name.
    pub name: String,
    /// What it shows.
    pub description: String,
    /// The seed used (the file's, or the one given on the command line).
    pub seed: u64,
    /// `virtual` or `realtime`.
    pub clock: String,
    /// Simulated start.
    pub start: String,
    /// Simulated length, ms.
    pub length_ms: i64,
    /// The carrier: `mock (<profile>)` or the external URL.
    pub carrier: String,
    /// The command that replays this run.
    pub replay: String,
}

/// The run's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Verdict {
    /// Every `must` rule and every threshold held, or the run showed exactly what it expects.
    Passed,
    /// A rule or threshold failed, or the run did not show what it expects.
    Failed,
    /// The checker disagreed with the mock carrier's ground truth: a harness bug.
    HarnessError,
}

/// One rule's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleVerdict {
    /// The rule.
    pub rule: RuleId,
    /// `must` or `should`.
    pub severity: Severity,
    /// Whose behaviour it judges.
    pub party: Party,
    /// Passed, failed or not exercised.
    pub outcome: Outcome,
    /// One line: what was checked and what was found.
    pub summary: String,
    /// How many failures were found.
    pub failures: u64,
    /// What the run exercised for this rule, with counts: below any minimum the rule is
    /// `notExercised` (unless it failed anyway), never `passed`.
    #[serde(default)]
    pub exercised: Vec<Exercised>,
    /// The evidence of the first failures (at most [`MAX_EVIDENCE`]).
    pub evidence: Vec<Evidence>,
}

/// One thing a rule needs the run to have exercised, and how much the run did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Exercised {
    /// What was counted, in words that fit "N …", e.g. `overtaken events on numbers without
    /// redeliveries`.
    pub what: String,
    /// How many the run had.
    pub count: u64,
    /// The least that makes a verdict worth having.
    pub minimum: u64,
}

impl Exercised {
    /// A count with its minimum.
    pub fn new(what: impl Into<String>, count: u64, minimum: u64) -> Self {
        Self {
            what: what.into(),
            count,
            minimum,
        }
    }

    /// Whether the run reached the minimum.
    pub fn reached(&self) -> bool {
        self.count >= self.minimum
    }
}

impl std::fmt::Display for Exercised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.count, self.what)?;
        if !self.reached() {
            write!(f, " (at least {} needed)", self.minimum)?;
        }
        Ok(())
    }
}

/// `12 overtaken events, 0 nextLinks followed (at least 3 needed)`: every count, those below
/// their minimum saying so; empty when nothing was counted.
pub(crate) fn exercised_list(exercised: &[Exercised]) -> String {
    exercised
        .iter()
        .map(Exercised::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why a rule was not exercised, in words: the counts that fell short, then its summary, e.g.
/// `0 overtaken events (at least 1 needed) — no event arrived after a newer one`.
pub(crate) fn not_exercised_why(rule: &RuleVerdict) -> String {
    let short: Vec<String> = shortfalls(&rule.exercised)
        .iter()
        .map(ToString::to_string)
        .collect();
    if short.is_empty() {
        rule.summary.clone()
    } else {
        format!("{} — {}", short.join(", "), rule.summary)
    }
}

/// The counts below their minimum: why a rule or case was not exercised.
pub(crate) fn shortfalls(exercised: &[Exercised]) -> Vec<&Exercised> {
    exercised.iter().filter(|e| !e.reached()).collect()
}

/// The most evidence items kept per rule.
pub const MAX_EVIDENCE: usize = 20;

/// How a rule's outcome stands against what the scenario expects: a rule a scenario expects to
/// fail (a misbehaving carrier's) is right to fail, and wrong to pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleStanding {
    /// Checked and held, as expected.
    Passed,
    /// The run gave it nothing (or too little) to check.
    NotExercised,
    /// Failed, and the scenario expects it to (`[expect] failed_rules`): not a fault of the run.
    FailedAsExpected,
    /// A `must` rule failed that the scenario does not expect to fail.
    Failed,
    /// A `should` rule failed: a warning, which does not fail the run.
    Warned,
    /// The scenario expects it to fail, and it did not (it passed or was not exercised).
    DidNotFail,
}

/// `1 rule` or `3 rules`.
pub(crate) fn rules_count(n: usize) -> String {
    if n == 1 {
        "1 rule".to_owned()
    } else {
        format!("{n} rules")
    }
}

/// `drift p50 120 ms, p99 2500 ms`, or, when no call has a duration on both sides, that drift
/// could not be measured (never `n/a`, which reads as if there were none).
pub(crate) fn drift_percentiles(d: &oc_protocol::DriftStats) -> String {
    match (d.p50, d.p99) {
        (Some(p50), Some(p99)) => format!("drift p50 {p50} ms, p99 {p99} ms"),
        _ => "drift not measured (no call has a duration on both sides)".to_owned(),
    }
}

/// A threshold's measurement, or `no measurement` when the run gave it nothing to measure.
pub(crate) fn measured(measured: Option<f64>) -> String {
    measured.map_or_else(|| "no measurement".to_owned(), |m| m.to_string())
}

pub use oc_protocol::timestamp::format_duration;

/// A rule's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// Checked and held.
    Passed,
    /// Checked and broken.
    Failed,
    /// The run gave it nothing to check.
    NotExercised,
}

/// One failure and the exchanges that show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    /// What is wrong, for a person.
    pub note: String,
    /// The `seq` of each exchange that shows it (see `evidence.ndjson`).
    pub exchanges: Vec<u64>,
}

/// One threshold of the scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThresholdResult {
    /// Its name, e.g. `min_match_rate`.
    pub name: String,
    /// The limit.
    pub limit: f64,
    /// What the run measured.
    pub measured: Option<f64>,
    /// Whether it held.
    pub passed: bool,
}

/// Whether the run showed what the scenario expects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpectationResult {
    /// The `must` rules the scenario expects to fail.
    pub expected_failures: Vec<RuleId>,
    /// The `must` rules that failed.
    pub actual_failures: Vec<RuleId>,
    /// Whether they are the same.
    pub met: bool,
}

/// The checker's classes against the mock carrier's ground truth, call by call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Accuracy {
    /// Every (Teams' class, ground truth's class) pair that occurred, with its count; `None`
    /// is "no class" (absent on that side).
    pub confusion: Vec<ConfusionCell>,
    /// Calls off the diagonal (at most [`MAX_EVIDENCE`] listed).
    pub disagreements: Vec<Disagreement>,
    /// How many calls are off the diagonal in all.
    pub disagreement_count: u64,
}

/// One cell of the confusion matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfusionCell {
    /// The class Teams (the checker's side) gave.
    pub teams: Option<ReconClass>,
    /// The class the ground truth says.
    pub truth: Option<ReconClass>,
    /// How many calls.
    pub count: u64,
}

/// One call on which Teams and the ground truth disagree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Disagreement {
    /// The call.
    pub call_id: String,
    /// Teams' class.
    pub teams: Option<ReconClass>,
    /// The ground truth's class.
    pub truth: Option<ReconClass>,
}

/// Every generated call ends in exactly one class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conservation {
    /// Answered calls Teams generated.
    pub answered_calls: u64,
    /// Answered calls in matched, drift or missing.
    pub classified: u64,
    /// Calls classified more than once, or never (at most [`MAX_EVIDENCE`] listed).
    pub violations: Vec<String>,
    /// Whether every answered call is in exactly one class.
    pub holds: bool,
}

/// What the run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunCounts {
    /// Numbers in the inventory.
    pub numbers: u64,
    /// Number events Teams generated.
    pub events: u64,
    /// Calls Teams generated.
    pub calls: u64,
    /// Answered calls.
    pub answered_calls: u64,
    /// Exchanges observed.
    pub exchanges: u64,
    /// Carrier poll cycles.
    pub cycles: u64,
}

/// Latency of one kind of exchange, from an HdrHistogram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LatencySummary {
    /// e.g. `webhook`, `GET /oc/v1/cdrs/delta`, `POST /oc/v1/call-durations`.
    pub exchange: String,
    /// What was timed: Teams' handling of the carrier's request, or a round trip to the
    /// carrier.
    pub measure: LatencyMeasure,
    /// How many.
    pub count: u64,
    /// Median, µs.
    pub p50_us: u64,
    /// 90th percentile, µs.
    pub p90_us: u64,
    /// 99th percentile, µs.
    pub p99_us: u64,
    /// Maximum, µs.
    pub max_us: u64,
    /// The percentile curve at [`LATENCY_QUANTILES`], in that order.
    pub curve: Vec<LatencyPoint>,
}

/// What a latency figure times: the two sides time different spans, and a reader comparing a
/// webhook's figure with a feed page's must know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LatencyMeasure {
    /// A carrier's request to the Teams API, timed by Teams from the moment its handler took
    /// the request to the moment the answer was ready: Teams' own work (the body read
    /// included), without the network or the carrier's side.
    TeamsHandler,
    /// A request to the carrier (a webhook delivery attempt, or the harness's call-legs post
    /// and probes), timed by its sender from sending it to the carrier's complete answer: the
    /// network and the carrier's handling.
    RoundTrip,
}

impl LatencyMeasure {
    /// Every measure, in the order the renderings show them.
    pub const ALL: [Self; 2] = [Self::TeamsHandler, Self::RoundTrip];

    /// A short name, for a chart's title or a table cell.
    pub fn name(self) -> &'static str {
        match self {
            Self::TeamsHandler => "Teams handler time",
            Self::RoundTrip => "round trip to the carrier",
        }
    }

    /// What it times, in a sentence.
    pub fn explanation(self) -> &'static str {
        match self {
            Self::TeamsHandler => {
                "Teams handler time: each request the carrier made to the Teams API, timed by \
                 Teams from its handler taking the request to the answer being ready (Teams' own \
                 work; the network and the carrier's side are not in it)."
            }
            Self::RoundTrip => {
                "Round trip to the carrier: each webhook delivery attempt, and the harness's \
                 call-legs posts and probes, timed by the sender from sending the request to the \
                 carrier's complete answer (the network and the carrier's handling)."
            }
        }
    }
}

/// The quantiles of [`LatencySummary::curve`].
pub const LATENCY_QUANTILES: [f64; 7] = [0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0];

/// One point of a latency percentile curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LatencyPoint {
    /// The quantile, 0 to 1 (1 is the maximum).
    pub quantile: f64,
    /// The latency at that quantile, µs.
    pub us: u64,
}

/// One bin of the drift distribution: calls whose signed drift is in `from_ms..=to_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DriftBin {
    /// The lowest drift in the bin, ms (inclusive).
    pub from_ms: i64,
    /// The highest drift in the bin, ms (inclusive).
    pub to_ms: i64,
    /// How many calls.
    pub count: u64,
}

/// Served quality records in one bucket of simulated time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QualityBucket {
    /// The bucket's start (`availableDateTime` at or after it, before the next bucket's).
    pub start: String,
    /// Records (one per stream) that became available in it.
    pub streams: u64,
    /// How many of them are poor.
    pub poor: u64,
}

/// Wall-clock figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timing {
    /// When the run started, wall-clock (a PROTOCOL.md timestamp): not the simulated start.
    pub started_at: String,
    /// How long the run took, ms.
    pub wall_ms: u64,
    /// Calls generated per wall-clock second.
    pub calls_per_second: f64,
}

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
#[error("failed to write {path}")]
pub struct WriteError {
    /// The file.
    pub path: String,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

impl Report {
    /// How `rule`'s outcome stands against the scenario's expected failures.
    pub fn standing(&self, rule: &RuleVerdict) -> RuleStanding {
        let expected = self.expectation.expected_failures.contains(&rule.rule);
        match (rule.outcome, expected, rule.severity) {
            (Outcome::Failed, true, _) => RuleStanding::FailedAsExpected,
            (_, true, _) => RuleStanding::DidNotFail,
            (Outcome::Passed, false, _) => RuleStanding::Passed,
            (Outcome::NotExercised, false, _) => RuleStanding::NotExercised,
            (Outcome::Failed, false, Severity::Must) => RuleStanding::Failed,
            (Outcome::Failed, false, Severity::Should) => RuleStanding::Warned,
        }
    }

    /// What the verdict of a run rests on, in words to put after it, e.g. `3 rules failed, as
    /// the scenario expects; DUR-DUPLICATE warned (…); 2 rules not exercised (NUM-ORDER,
    /// CDR-THROTTLE)`, so that `PASSED` never stands silently beside failed or unexercised
    /// rules. `None` for a harness error, whose own words say more.
    pub fn verdict_reasons(&self) -> Option<String> {
        if self.verdict == Verdict::HarnessError {
            return None;
        }
        let with = |standing: RuleStanding| -> Vec<RuleId> {
            self.rules
                .iter()
                .filter(|r| self.standing(r) == standing)
                .map(|r| r.rule)
                .collect()
        };
        let mut reasons = Vec::new();
        let unexpected = with(RuleStanding::Failed);
        if !unexpected.is_empty() {
            reasons.push(format!(
                "{} failed, which the scenario does not expect",
                rule_list(&unexpected)
            ));
        }
        let missing = with(RuleStanding::DidNotFail);
        if !missing.is_empty() {
            reasons.push(format!(
                "{} did not fail, which the scenario expects",
                rule_list(&missing)
            ));
        }
        for t in self.thresholds.iter().filter(|t| !t.passed) {
            reasons.push(format!("threshold {} missed", t.name));
        }
        let expected = with(RuleStanding::FailedAsExpected);
        if !expected.is_empty() {
            reasons.push(format!(
                "{} failed, as the scenario expects",
                rules_count(expected.len())
            ));
        }
        let warned = with(RuleStanding::Warned);
        if unexpected.is_empty() && expected.is_empty() && warned.is_empty() {
            reasons.push("no rule failed".to_owned());
        }
        if !warned.is_empty() {
            reasons.push(format!(
                "{} warned (a should rule does not fail the run)",
                rule_list(&warned)
            ));
        }
        let quiet = with(RuleStanding::NotExercised);
        if !quiet.is_empty() {
            reasons.push(format!(
                "{} not exercised ({})",
                rules_count(quiet.len()),
                rule_list(&quiet)
            ));
        }
        Some(reasons.join("; "))
    }

    /// The failed `should` rules among `case`'s: warnings, which do not fail the case but must
    /// show wherever it does.
    pub fn warnings(&self, case: &CaseResult) -> Vec<&RuleVerdict> {
        self.rules
            .iter()
            .filter(|r| {
                case.rules.contains(&r.rule)
                    && r.severity == Severity::Should
                    && r.outcome == Outcome::Failed
            })
            .collect()
    }

    /// The report without the figures that differ between runs of the same scenario and seed
    /// (latency, its curves included, and wall-clock timing), for determinism checks.
    pub fn without_timing(&self) -> Self {
        Self {
            latency: Vec::new(),
            timing: Timing::default(),
            ..self.clone()
        }
    }

    /// Writes `report.json` into `dir` (pretty-printed, with a final newline).
    pub fn write_json(&self, dir: &Path) -> Result<std::path::PathBuf, WriteError> {
        let path = dir.join("report.json");
        let error = |source| WriteError {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(error)?;
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).map_err(error)?);
        serde_json::to_writer_pretty(&mut file, self).map_err(|e| error(e.into()))?;
        file.write_all(b"\n").map_err(error)?;
        file.flush().map_err(error)?;
        Ok(path)
    }

    /// Writes every rendering into `dir`: `report.json`, `junit.xml`, `summary.md`,
    /// `evidence.ndjson` (from `evidence`, the exchanges that [`cited_exchanges`] lists, as
    /// the caller converted them) and `report.html`. Returns the paths written, in that order.
    pub fn write_all(
        &self,
        dir: &Path,
        evidence: &[EvidenceExchange],
    ) -> Result<Vec<PathBuf>, WriteError> {
        Ok(vec![
            self.write_json(dir)?,
            write_file(dir, "junit.xml", |w| write_junit(self, w))?,
            write_file(dir, "summary.md", |w| write_summary(self, w))?,
            write_file(dir, "evidence.ndjson", |w| write_evidence(evidence, w))?,
            write_file(dir, "report.html", |w| write_html(self, w))?,
        ])
    }
}

/// Makes sure a report can be written into `dir` before the work that produces it starts:
/// creates the folder and writes (then removes) a probe file, so that an unwritable `--out` is
/// found in a second rather than after the run, with its verdict.
pub fn check_writable(dir: &Path) -> Result<(), WriteError> {
    let probe = dir.join(".oc-harness-write-check");
    let error = |source| WriteError {
        path: dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(error)?;
    std::fs::write(&probe, b"").map_err(error)?;
    std::fs::remove_file(&probe).map_err(error)
}

/// Creates `dir/name` and lets `render` write it through a buffer.
pub(crate) fn write_file(
    dir: &Path,
    name: &str,
    render: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<PathBuf, WriteError> {
    let path = dir.join(name);
    let error = |source| WriteError {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(error)?;
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).map_err(error)?);
    render(&mut file).map_err(error)?;
    file.flush().map_err(error)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_json_snapshot() {
        // The small report's figures are constants, never read from a clock.
        let mut json = Vec::new();
        serde_json::to_writer_pretty(&mut json, &crate::testing::small_report()).unwrap();
        insta::assert_snapshot!("report.json", String::from_utf8(json).unwrap());
    }

    #[test]
    fn certification_report_json_snapshot() {
        let mut json = Vec::new();
        serde_json::to_writer_pretty(&mut json, &testing::certification_report()).unwrap();
        insta::assert_snapshot!(
            "report-certification.json",
            String::from_utf8(json).unwrap()
        );
    }

    #[test]
    fn dropped_text_says_why_and_what_was_refused() {
        let mut load = testing::load_report().load.expect("a load section");
        assert_eq!(
            load.dropped_text(),
            "1 (0 with the generator behind its schedule, 1 at the in-flight cap)"
        );
        (load.unsent, load.refused) = (2, 7);
        assert_eq!(
            load.dropped_text(),
            "1 (0 with the generator behind its schedule, 1 at the in-flight cap); of those \
             started, 7 changes or calls refused after the drops (2 sent nothing)"
        );
        // A report written before refused work was counted.
        load.refused = 0;
        assert_eq!(
            load.dropped_text(),
            "1 (0 with the generator behind its schedule, 1 at the in-flight cap); 2 more \
             started but sent nothing, refused after the drops"
        );
        load.dropped = 0;
        assert_eq!(load.dropped_text(), "0");
    }

    fn schema() -> jsonschema::Validator {
        let schema: serde_json::Value = serde_json::from_str(REPORT_SCHEMA).unwrap();
        jsonschema::meta::validate(&schema).expect("report.schema.json is a valid schema");
        jsonschema::draft202012::new(&schema).unwrap()
    }

    fn errors(validator: &jsonschema::Validator, report: &serde_json::Value) -> Vec<String> {
        validator
            .iter_errors(report)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect()
    }

    #[test]
    fn the_small_report_satisfies_the_schema() {
        let report = serde_json::to_value(testing::small_report()).unwrap();
        assert_eq!(errors(&schema(), &report), Vec::<String>::new());
    }

    #[test]
    fn the_certification_report_satisfies_the_schema_and_reads_back() {
        let report = testing::certification_report();
        let value = serde_json::to_value(&report).unwrap();
        assert_eq!(errors(&schema(), &value), Vec::<String>::new());
        assert_eq!(serde_json::from_value::<Report>(value).unwrap(), report);
        // Without a certification the field is left out, not written as null.
        let value = serde_json::to_value(testing::small_report()).unwrap();
        assert!(value.get("certification").is_none());
    }

    #[test]
    fn the_load_report_satisfies_the_schema_and_reads_back() {
        let report = testing::load_report();
        let value = serde_json::to_value(&report).unwrap();
        assert_eq!(errors(&schema(), &value), Vec::<String>::new());
        assert_eq!(
            serde_json::from_value::<Report>(value.clone()).unwrap(),
            report
        );
        assert!(
            serde_json::to_value(testing::small_report())
                .unwrap()
                .get("load")
                .is_none(),
            "without a load test the field is left out"
        );
        let validator = schema();
        let mut unknown = value.clone();
        unknown["load"]["intervals"][0]["p95Ms"] = 3.into();
        assert!(!validator.is_valid(&unknown));
        let mut bad_metric = value.clone();
        bad_metric["load"]["intervals"][0]["metrics"][0]["metric"] = "latency".into();
        assert!(!validator.is_valid(&bad_metric));
        let mut missing = value;
        missing["load"].as_object_mut().unwrap().remove("dropped");
        assert!(!validator.is_valid(&missing));
    }

    #[test]
    fn a_renamed_or_unknown_field_of_a_certification_fails_the_schema() {
        let validator = schema();
        let good = serde_json::to_value(testing::certification_report()).unwrap();
        assert!(validator.is_valid(&good));
        let mut renamed = good.clone();
        let case = renamed["certification"]["cases"][2]
            .as_object_mut()
            .unwrap();
        let outcome = case.remove("outcome").unwrap();
        case.insert("result".into(), outcome);
        assert!(!validator.is_valid(&renamed));
        let mut missing = good.clone();
        missing["certification"]
            .as_object_mut()
            .unwrap()
            .remove("reportingDeadlineMs");
        assert!(!validator.is_valid(&missing));
        let mut unknown = good.clone();
        unknown["certification"]["cases"][0]["durationMs"] = 12.into();
        assert!(!validator.is_valid(&unknown));
        let mut bad_outcome = good.clone();
        bad_outcome["certification"]["cases"][3]["outcome"] = "skipped".into();
        assert!(!validator.is_valid(&bad_outcome));
        let mut bad_rule = good.clone();
        bad_rule["certification"]["cases"][0]["rules"][0] = "NUM-NOPE".into();
        assert!(!validator.is_valid(&bad_rule));
        let mut bad_verdict = good.clone();
        bad_verdict["certification"]["verdict"] = "passed".into();
        assert!(!validator.is_valid(&bad_verdict));
        let mut aborted = good;
        aborted["certification"]["aborted"] = "the carrier never answered".into();
        assert!(validator.is_valid(&aborted));
        aborted["certification"]["aborted"] = 3.into();
        assert!(!validator.is_valid(&aborted));
    }

    /// Every report listed in `tests/fixtures/reports.txt` (one path a line, relative to it).
    #[test]
    fn every_fixture_report_satisfies_the_schema_and_reads_back() {
        let validator = schema();
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let list = std::fs::read_to_string(fixtures.join("reports.txt")).unwrap();
        let files: Vec<&str> = list
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        assert!(!files.is_empty());
        for file in files {
            let text = std::fs::read_to_string(fixtures.join(file)).unwrap();
            let value: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(errors(&validator, &value), Vec::<String>::new(), "{file}");
            let report: Report =
                serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(serde_json::to_value(&report).unwrap(), value, "{file}");
        }
    }

    #[test]
    fn a_renamed_or_missing_field_fails_the_schema() {
        let validator = schema();
        let good = serde_json::to_value(testing::small_report()).unwrap();
        let mut renamed = good.clone();
        let seed = renamed["scenario"]
            .as_object_mut()
            .unwrap()
            .remove("seed")
            .unwrap();
        renamed["scenario"]["randomSeed"] = seed;
        assert!(!validator.is_valid(&renamed));
        let mut nested = good.clone();
        let count = nested["reconciliation"]["driftMs"]
            .as_object_mut()
            .unwrap()
            .remove("count")
            .unwrap();
        nested["reconciliation"]["driftMs"]["n"] = count;
        assert!(!validator.is_valid(&nested));
        let mut unknown_rule = good;
        unknown_rule["rules"][0]["rule"] = "NUM-NOPE".into();
        assert!(!validator.is_valid(&unknown_rule));
    }

    #[test]
    fn the_schema_lists_every_rule_id() {
        let schema: serde_json::Value = serde_json::from_str(REPORT_SCHEMA).unwrap();
        let listed: Vec<&str> = schema["$defs"]["ruleId"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let all: Vec<&str> = oc_protocol::RuleId::ALL
            .iter()
            .map(|r| r.as_str())
            .collect();
        assert_eq!(listed, all);
    }

    /// What a person reads holds no Rust syntax: no `Some(…)`, `None`, or Debug-formatted
    /// lists, whatever figures are absent.
    #[test]
    fn no_rendering_shows_rust_syntax() {
        let reports = [
            testing::small_report(),
            testing::certification_report(),
            testing::passed_with_expected_failures(),
            testing::report_without_measurements(),
        ];
        for (i, report) in reports.iter().enumerate() {
            let mut text = Vec::new();
            write_console(report, Some(Path::new("out/report.json")), &mut text).unwrap();
            write_summary(report, &mut text).unwrap();
            write_html(report, &mut text).unwrap();
            write_junit(report, &mut text).unwrap();
            let text = String::from_utf8(text).unwrap();
            for rust in ["Some(", "None", "n/a", "[\"", "\"]"] {
                assert!(!text.contains(rust), "report {i} shows {rust:?}:\n{text}");
            }
        }
    }

    #[test]
    fn write_all_writes_every_rendering() {
        let dir = std::env::temp_dir().join(format!("oc-reports-write-all-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let report = testing::small_report();
        let paths = report.write_all(&dir, &testing::exchanges()).unwrap();
        let names: Vec<_> = paths
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            names,
            [
                "report.json",
                "junit.xml",
                "summary.md",
                "evidence.ndjson",
                "report.html"
            ]
        );
        let json = std::fs::read_to_string(&paths[0]).unwrap();
        assert_eq!(serde_json::from_str::<Report>(&json).unwrap(), report);
        let evidence = std::fs::read_to_string(&paths[3]).unwrap();
        assert_eq!(evidence.lines().count(), 2);
        for path in &paths {
            assert!(
                std::fs::metadata(path).unwrap().len() > 0,
                "{}",
                path.display()
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn write_all_names_the_file_it_could_not_write() {
        let file =
            std::env::temp_dir().join(format!("oc-reports-not-a-dir-{}", std::process::id()));
        std::fs::write(&file, b"").unwrap();
        let error = testing::small_report()
            .write_all(&file.join("sub"), &[])
            .unwrap_err();
        assert!(error.path.ends_with("report.json"), "{}", error.path);
        std::fs::remove_file(&file).unwrap();
    }

    #[test]
    fn check_writable_refuses_a_folder_under_a_file_and_leaves_no_probe() {
        let base = std::env::temp_dir().join(format!("oc-reports-writable-{}", std::process::id()));
        std::fs::create_dir_all(&base).unwrap();
        let file = base.join("a-file");
        std::fs::write(&file, b"").unwrap();
        let error = check_writable(&file.join("out")).unwrap_err();
        assert!(error.path.ends_with("a-file/out"), "{}", error.path);

        let fine = base.join("fresh/out");
        check_writable(&fine).unwrap();
        assert_eq!(
            std::fs::read_dir(&fine).unwrap().count(),
            0,
            "the probe is removed"
        );
        std::fs::remove_dir_all(&base).unwrap();
    }
}
