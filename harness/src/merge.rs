//! `oc-harness merge`: the reports of a sharded run's shards (`run --shard I/N`) merged into the
//! whole run's report, exactly where the shards' figures allow it.
//!
//! Added: the counts, classes and flags, the confusion matrix, conservation, each rule's
//! failures and counts of what it exercised, the drift and latency histograms (HdrHistogram
//! addition is exact), the drift bins, the quality records per minute, minutes on each side
//! (integer milliseconds). Judged again on the merged figures: each rule's outcome (a count
//! below its minimum stays "not exercised"), the drift percentiles (Teams' own computation on
//! the merged histograms), the thresholds, the expectation and the verdict. Kept as a run
//! keeps them: at most [`MAX_EVIDENCE`] evidence items per rule (in note order), disagreements
//! and violations (in call-id order). What cannot be merged from the shards' reports differs
//! from the whole run's, and README.md ("Sharded runs") lists it: a rule's `summary` (text;
//! kept when every shard says the same, else each shard's), exchange `seq`s (numbered per
//! shard: `seq × N + I` in the merged report), and the counts of exchanges and poll cycles.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;
use oc_protocol::{ReconClass, format_timestamp, parse_timestamp};
use oc_reports::{
    Accuracy, ConfusionCell, Conservation, EvidenceExchange, LatencyMeasure, MAX_EVIDENCE, Outcome,
    Report, RuleVerdict, RunCounts, ShardDrift, ShardLatency, ShardSection, ThresholdResult,
    Timing,
};

use crate::run::figures::{DriftFold, deserialise, latency_summary, serialise};
use crate::run::shard_section::{MARK_FILE, ShardMark};

/// A shard's report as read from its folder.
pub struct ShardReport {
    /// The folder.
    pub dir: PathBuf,
    /// Its `report.json`.
    pub report: Report,
    /// Its `evidence.ndjson` (empty when the file is absent).
    pub evidence: Vec<EvidenceExchange>,
}

/// Why shards cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// A folder without a usable report.
    #[error("{dir}: {why}")]
    Shard {
        /// The folder.
        dir: String,
        /// Why.
        why: String,
    },
    /// Shards that are not parts of one run.
    #[error("{0}")]
    Mismatch(String),
    /// The merged report could not be written.
    #[error("cannot write the merged report into {}: {}", .0.path, .0.source)]
    Write(#[from] oc_reports::WriteError),
}

impl MergeError {
    /// 2 for shards that do not merge, 3 when the result could not be written.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Write(_) => crate::EXIT_COULD_NOT_RUN,
            _ => crate::EXIT_BAD_INPUT,
        }
    }
}

fn shard_error(dir: &Path, why: impl Into<String>) -> MergeError {
    MergeError::Shard {
        dir: dir.display().to_string(),
        why: why.into(),
    }
}

/// Reads a shard's folder: `report.json` (which must be a finished shard's), the `shard.json`
/// mark (which must say finished: a shard that started again and stopped leaves an earlier
/// run's report behind), `evidence.ndjson`.
pub fn read_shard(dir: &Path) -> Result<ShardReport, MergeError> {
    let mark_path = dir.join(MARK_FILE);
    let mark: Option<ShardMark> = match std::fs::read_to_string(&mark_path) {
        Ok(text) => Some(
            serde_json::from_str(&text)
                .map_err(|e| shard_error(dir, format!("{MARK_FILE} is not a shard's mark: {e}")))?,
        ),
        Err(_) => None,
    };
    let text = match std::fs::read_to_string(dir.join("report.json")) {
        Ok(text) => text,
        Err(e) => {
            return Err(shard_error(
                dir,
                match &mark {
                    Some(mark) => format!(
                        "shard {} started but did not finish: no report.json ({e})",
                        mark.shard
                    ),
                    None => format!("no report.json ({e}): not a shard's report folder"),
                },
            ));
        }
    };
    let report: Report = serde_json::from_str(&text)
        .map_err(|e| shard_error(dir, format!("report.json is not a report: {e}")))?;
    let Some(shard) = &report.shard else {
        return Err(shard_error(
            dir,
            "report.json is a whole run's report, not a shard's (run it with --shard I/N)",
        ));
    };
    let Some(index) = shard.index else {
        return Err(shard_error(
            dir,
            "report.json is a merged report; merge the shards' own reports",
        ));
    };
    if !shard.finished || mark.as_ref().is_some_and(|m| !m.finished) {
        return Err(shard_error(
            dir,
            format!(
                "shard {index}/{} did not finish: {MARK_FILE} says it started again and did not \
                 end, so report.json is an earlier run's",
                shard.count
            ),
        ));
    }
    let evidence = match std::fs::read_to_string(dir.join("evidence.ndjson")) {
        Ok(text) => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, line)| {
                serde_json::from_str(line).map_err(|e| {
                    shard_error(
                        dir,
                        format!("evidence.ndjson:{}: not an exchange: {e}", i + 1),
                    )
                })
            })
            .collect::<Result<_, _>>()?,
        Err(_) => Vec::new(),
    };
    Ok(ShardReport {
        dir: dir.to_path_buf(),
        report,
        evidence,
    })
}

fn section(s: &ShardReport) -> &ShardSection {
    s.report
        .shard
        .as_ref()
        .unwrap_or_else(|| unreachable!("read_shard keeps only shards"))
}

/// Checks that `shards` are every shard of one run, once each; returns them in index order.
pub fn check(mut shards: Vec<ShardReport>) -> Result<Vec<ShardReport>, MergeError> {
    let Some(first) = shards.first() else {
        return Err(MergeError::Mismatch("no shard to merge".into()));
    };
    let (f, fr) = (section(first), &first.report);
    let first_dir = first.dir.display().to_string();
    for s in &shards[1..] {
        let (g, r) = (section(s), &s.report);
        let dir = s.dir.display().to_string();
        let differ = |what: &str, a: String, b: String| {
            MergeError::Mismatch(format!(
                "{first_dir} and {dir} are not shards of one run: {what} {a} and {b}"
            ))
        };
        if g.count != f.count {
            return Err(differ(
                "they were cut into",
                format!("{} shards", f.count),
                format!("{} shards", g.count),
            ));
        }
        if g.scenario_digest != f.scenario_digest {
            return Err(differ(
                "their scenario files differ:",
                format!("{} ({})", f.scenario_file, f.scenario_digest),
                format!("{} ({})", g.scenario_file, g.scenario_digest),
            ));
        }
        if r.scenario.seed != fr.scenario.seed {
            return Err(differ(
                "their seeds differ:",
                fr.scenario.seed.to_string(),
                r.scenario.seed.to_string(),
            ));
        }
        if r.harness_version != fr.harness_version || r.schema_version != fr.schema_version {
            return Err(differ(
                "their harness versions differ:",
                format!("{} (schema {})", fr.harness_version, fr.schema_version),
                format!("{} (schema {})", r.harness_version, r.schema_version),
            ));
        }
        if r.scenario.length_ms != fr.scenario.length_ms {
            return Err(differ(
                "they ran for different lengths:",
                format!("{} ms", fr.scenario.length_ms),
                format!("{} ms", r.scenario.length_ms),
            ));
        }
    }
    let count = f.count;
    shards.sort_by_key(|s| section(s).index);
    for pair in shards.windows(2) {
        if section(&pair[0]).index == section(&pair[1]).index {
            return Err(MergeError::Mismatch(format!(
                "shard {}/{count} is given twice: {} and {}",
                section(&pair[0]).index.unwrap_or(0),
                pair[0].dir.display(),
                pair[1].dir.display()
            )));
        }
    }
    let have: Vec<u32> = shards.iter().filter_map(|s| section(s).index).collect();
    let missing: Vec<String> = (0..count)
        .filter(|i| !have.contains(i))
        .map(|i| format!("{i}/{count}"))
        .collect();
    if !missing.is_empty() {
        return Err(MergeError::Mismatch(format!(
            "shard{} {} missing: a merge needs all {count} shards of the run",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", ")
        )));
    }
    Ok(shards)
}

/// The merged report and its evidence exchanges, from shards that [`check`] accepted.
pub fn merge(shards: &[ShardReport]) -> Result<(Report, Vec<EvidenceExchange>), MergeError> {
    let n = u64::try_from(shards.len()).unwrap_or(u64::MAX);
    let first = &shards[0].report;
    let renumber = |seq: u64, index: usize| seq * n + index as u64;
    // Evidence: each shard's exchanges renumbered.
    let mut evidence: Vec<EvidenceExchange> = Vec::new();
    for (i, s) in shards.iter().enumerate() {
        evidence.extend(s.evidence.iter().cloned().map(|mut e| {
            e.seq = renumber(e.seq, i);
            e
        }));
    }
    evidence.sort_by_key(|e| e.seq);
    let rules = merge_rules(shards, &renumber);
    let counts = RunCounts {
        numbers: shards.iter().map(|s| s.report.counts.numbers).sum(),
        events: shards.iter().map(|s| s.report.counts.events).sum(),
        calls: shards.iter().map(|s| s.report.counts.calls).sum(),
        answered_calls: shards.iter().map(|s| s.report.counts.answered_calls).sum(),
        exchanges: shards.iter().map(|s| s.report.counts.exchanges).sum(),
        cycles: shards.iter().map(|s| s.report.counts.cycles).sum(),
    };
    let (drift, drift_section) = merge_drift(shards)?;
    let reconciliation = merge_reconciliation(shards, &drift);
    let (latency, latency_section) = merge_latency(shards)?;
    let quality_minutes = merge_quality(shards);
    let quality_over_time = crate::run::report::quality_over_time(|| {
        quality_minutes.iter().flat_map(|&[minute, streams, poor]| {
            let at = minute * 60_000;
            let (streams, poor) = (
                usize::try_from(streams).unwrap_or(0),
                usize::try_from(poor).unwrap_or(0),
            );
            std::iter::repeat_n((at, true), poor).chain(std::iter::repeat_n(
                (at, false),
                streams.saturating_sub(poor),
            ))
        })
    });
    let accuracy = merge_accuracy(shards);
    let conservation = merge_conservation(shards);
    let thresholds = first
        .thresholds
        .iter()
        .map(|t| rejudge(t, reconciliation.as_ref(), &latency))
        .collect::<Result<Vec<_>, _>>()?;
    let expectation =
        crate::run::report::expectation(&rules, first.expectation.expected_failures.clone());
    let verdict =
        crate::run::report::verdict(accuracy.as_ref(), &conservation, &expectation, &thresholds);
    // The shards ran side by side: the run took from the first start to the last end.
    let starts: Vec<i64> = shards
        .iter()
        .filter_map(|s| parse_timestamp(&s.report.timing.started_at).ok())
        .collect();
    let started = starts.iter().copied().min().unwrap_or(0);
    let ended = shards
        .iter()
        .filter_map(|s| {
            parse_timestamp(&s.report.timing.started_at)
                .ok()
                .map(|t| t + i64::try_from(s.report.timing.wall_ms).unwrap_or(0))
        })
        .max()
        .unwrap_or(started);
    let wall_ms = u64::try_from(ended - started).unwrap_or(0);
    let f = section(&shards[0]);
    let mut scenario = first.scenario.clone();
    scenario.replay = whole_run_replay(&scenario.replay, f.count);
    let report = Report {
        schema_version: first.schema_version,
        harness_version: first.harness_version.clone(),
        scenario,
        verdict,
        rules,
        thresholds,
        expectation,
        reconciliation,
        accuracy,
        conservation,
        counts,
        latency,
        drift_distribution: drift.clone().finish(),
        quality_over_time,
        timing: Timing {
            started_at: format_timestamp(started),
            wall_ms,
            calls_per_second: counts.calls as f64 / (wall_ms as f64 / 1000.0).max(1e-9),
        },
        certification: None,
        load: None,
        shard: Some(ShardSection {
            index: None,
            count: f.count,
            scenario_file: f.scenario_file.clone(),
            scenario_digest: f.scenario_digest.clone(),
            finished: true,
            drift: drift_section,
            latency: latency_section,
            quality_minutes,
            reconciled: [
                shards
                    .iter()
                    .map(|s| section(s).reconciled[0])
                    .min()
                    .unwrap_or(0),
                shards
                    .iter()
                    .map(|s| section(s).reconciled[1])
                    .max()
                    .unwrap_or(0),
            ],
        }),
    };
    Ok((report, evidence))
}

/// The replay of shard 0 without its `--shard`: the command that runs the whole run.
fn whole_run_replay(replay: &str, count: u32) -> String {
    replay.replace(&format!(" --shard 0/{count}"), "")
}

/// Every rule, shard by shard added: failures, the counts of what it exercised (by what they
/// count), evidence (renumbered, in note order, at most [`MAX_EVIDENCE`]), and its outcome
/// judged again: failed when any shard failed it; else not exercised when a summed count is
/// below its minimum (or no shard exercised it); else passed.
fn merge_rules(shards: &[ShardReport], renumber: &impl Fn(u64, usize) -> u64) -> Vec<RuleVerdict> {
    let mut merged: Vec<RuleVerdict> = Vec::new();
    for (position, rule) in shards[0].report.rules.iter().enumerate() {
        let parts: Vec<(usize, &RuleVerdict)> = shards
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                s.report
                    .rules
                    .get(position)
                    .filter(|r| r.rule == rule.rule)
                    .or_else(|| s.report.rules.iter().find(|r| r.rule == rule.rule))
                    .map(|r| (i, r))
            })
            .collect();
        let failures: u64 = parts.iter().map(|(_, r)| r.failures).sum();
        let mut exercised: Vec<oc_reports::Exercised> = Vec::new();
        for (_, r) in &parts {
            for e in &r.exercised {
                match exercised.iter_mut().find(|x| x.what == e.what) {
                    Some(x) => x.count += e.count,
                    None => exercised.push(e.clone()),
                }
            }
        }
        let mut evidence: Vec<oc_reports::Evidence> = parts
            .iter()
            .flat_map(|(i, r)| {
                r.evidence.iter().map(move |e| oc_reports::Evidence {
                    note: e.note.clone(),
                    exchanges: e.exchanges.iter().map(|&s| renumber(s, *i)).collect(),
                })
            })
            .collect();
        evidence.sort_by(|a, b| a.note.cmp(&b.note).then(a.exchanges.cmp(&b.exchanges)));
        evidence.truncate(MAX_EVIDENCE);
        let outcome = if failures > 0 || parts.iter().any(|(_, r)| r.outcome == Outcome::Failed) {
            Outcome::Failed
        } else if !exercised.is_empty() {
            if exercised.iter().all(oc_reports::Exercised::reached) {
                Outcome::Passed
            } else {
                Outcome::NotExercised
            }
        } else if parts.iter().any(|(_, r)| r.outcome == Outcome::Passed) {
            Outcome::Passed
        } else {
            Outcome::NotExercised
        };
        // A summary is text: one without a figure that every shard says holds for the whole
        // run; one with figures is each shard's (a figure may be a count to add, a limit to
        // keep, or an exchange's seq in that shard: text does not say which).
        let figureless = !rule.summary.bytes().any(|b| b.is_ascii_digit());
        let summary = if parts.len() == 1
            || (figureless && parts.iter().all(|(_, r)| r.summary == rule.summary))
        {
            rule.summary.clone()
        } else {
            let count = parts.len();
            parts
                .iter()
                .map(|(i, r)| format!("shard {i}/{count}: {}", r.summary))
                .collect::<Vec<_>>()
                .join("; ")
        };
        merged.push(RuleVerdict {
            rule: rule.rule,
            severity: rule.severity,
            party: rule.party,
            outcome,
            summary,
            failures,
            exercised,
            evidence,
        });
    }
    merged
}

fn decode(dir: &Path, what: &str, text: &str) -> Result<Histogram<u64>, MergeError> {
    deserialise(text).map_err(|e| shard_error(dir, format!("report.json: {what}: {e}")))
}

/// The shards' drift, folded as one run folds it.
fn merge_drift(shards: &[ShardReport]) -> Result<(DriftFold, ShardDrift), MergeError> {
    let mut fold = DriftFold::default();
    for s in shards {
        let d = &section(s).drift;
        let negative = decode(&s.dir, "drift.negative", &d.negative)?;
        let positive = decode(&s.dir, "drift.positive", &d.positive)?;
        let bad = |what: &str| shard_error(&s.dir, format!("report.json: drift: {what}"));
        fold.negative_hdr
            .add(&negative)
            .map_err(|e| bad(&format!("{e:?}")))?;
        fold.positive_hdr
            .add(&positive)
            .map_err(|e| bad(&format!("{e:?}")))?;
        if d.negative_bins.len() != fold.negative.len()
            || d.positive_bins.len() != fold.positive.len()
        {
            return Err(bad("the bins are not the decades this harness counts"));
        }
        for (k, c) in d.negative_bins.iter().enumerate() {
            fold.negative[k] += c;
        }
        for (k, c) in d.positive_bins.iter().enumerate() {
            fold.positive[k] += c;
        }
        if let (Some(lo), Some(hi)) = (d.min, d.max) {
            fold.range = Some(fold.range.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
        }
    }
    let section = ShardDrift {
        negative: serialise(&fold.negative_hdr),
        positive: serialise(&fold.positive_hdr),
        min: fold.range.map(|r| r.0),
        max: fold.range.map(|r| r.1),
        negative_bins: fold.negative.to_vec(),
        positive_bins: fold.positive.to_vec(),
    };
    Ok((fold, section))
}

/// Teams' reconciliation of the whole run: the window from the earliest start to the latest
/// end, counts and flags added, minutes added in whole milliseconds, the drift's percentiles
/// from the merged histograms.
fn merge_reconciliation(
    shards: &[ShardReport],
    drift: &DriftFold,
) -> Option<oc_protocol::ReconciliationSummary> {
    let parts: Vec<&oc_protocol::ReconciliationSummary> = shards
        .iter()
        .filter_map(|s| s.report.reconciliation.as_ref())
        .collect();
    let first = (*parts.first()?).clone();
    let mut counts = oc_protocol::ReconCounts::default();
    let mut flags = oc_protocol::ReconFlagCounts::default();
    let (mut teams_ms, mut carrier_ms) = (0i64, 0i64);
    let ms = |minutes: f64| (minutes * 60_000.0).round() as i64;
    for p in &parts {
        counts.matched += p.counts.matched;
        counts.drift += p.counts.drift;
        counts.missing += p.counts.missing;
        counts.unexpected += p.counts.unexpected;
        flags.late += p.flags.late;
        flags.duplicate += p.flags.duplicate;
        flags.corrected += p.flags.corrected;
        teams_ms += ms(p.minutes.teams);
        carrier_ms += ms(p.minutes.carrier);
    }
    let answered = counts.matched + counts.drift + counts.missing;
    let minutes = |ms: i64| ms as f64 / 60_000.0;
    let from = parts.iter().map(|p| p.from.as_str()).min()?.to_owned();
    let to = parts.iter().map(|p| p.to.as_str()).max()?.to_owned();
    Some(oc_protocol::ReconciliationSummary {
        from,
        to,
        counts,
        flags,
        match_rate: (answered > 0).then(|| counts.matched as f64 / answered as f64),
        drift_ms: oc_protocol::DriftStats {
            count: drift.negative_hdr.len() + drift.positive_hdr.len(),
            min: drift.range.map(|r| r.0),
            p50: drift.quantile(0.50),
            p90: drift.quantile(0.90),
            p99: drift.quantile(0.99),
            max: drift.range.map(|r| r.1),
        },
        minutes: oc_protocol::MinutesTotals {
            teams: minutes(teams_ms),
            carrier: minutes(carrier_ms),
            difference: minutes(carrier_ms - teams_ms),
        },
        ..first
    })
}

/// The latency histograms of every kind of exchange, added.
fn merge_latency(
    shards: &[ShardReport],
) -> Result<(Vec<oc_reports::LatencySummary>, Vec<ShardLatency>), MergeError> {
    let mut by_kind: BTreeMap<(LatencyMeasure, String), Histogram<u64>> = BTreeMap::new();
    for s in shards {
        for l in &section(s).latency {
            let h = decode(&s.dir, &format!("latency `{}`", l.exchange), &l.histogram)?;
            let bad = |e: String| shard_error(&s.dir, format!("latency `{}`: {e}", l.exchange));
            // A histogram read back does not resize itself; the sum starts as one that does.
            let sum = match by_kind.entry((l.measure, l.exchange.clone())) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(Histogram::new(h.sigfig()).map_err(|e| bad(format!("{e:?}")))?)
                }
            };
            sum.add(&h).map_err(|e| bad(format!("{e:?}")))?;
        }
    }
    let sections = by_kind
        .iter()
        .map(|((measure, exchange), h)| ShardLatency {
            exchange: exchange.clone(),
            measure: *measure,
            histogram: serialise(h),
        })
        .collect();
    let summaries = by_kind
        .into_iter()
        .map(|((measure, exchange), h)| latency_summary(measure, exchange, &h))
        .collect();
    Ok((summaries, sections))
}

fn merge_quality(shards: &[ShardReport]) -> Vec<[i64; 3]> {
    let mut minutes: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for s in shards {
        for &[minute, streams, poor] in &section(s).quality_minutes {
            let m = minutes.entry(minute).or_default();
            m.0 += streams;
            m.1 += poor;
        }
    }
    minutes
        .into_iter()
        .map(|(minute, (streams, poor))| [minute, streams, poor])
        .collect()
}

fn merge_accuracy(shards: &[ShardReport]) -> Option<Accuracy> {
    let parts: Vec<&Accuracy> = shards
        .iter()
        .filter_map(|s| s.report.accuracy.as_ref())
        .collect();
    if parts.is_empty() {
        return None;
    }
    let mut cells: BTreeMap<(Option<ReconClass>, Option<ReconClass>), u64> = BTreeMap::new();
    let mut disagreements = Vec::new();
    let mut disagreement_count = 0;
    for p in parts {
        for c in &p.confusion {
            *cells.entry((c.teams, c.truth)).or_default() += c.count;
        }
        disagreements.extend(p.disagreements.iter().cloned());
        disagreement_count += p.disagreement_count;
    }
    disagreements.sort_by(|a, b| a.call_id.cmp(&b.call_id));
    disagreements.truncate(MAX_EVIDENCE);
    Some(Accuracy {
        confusion: cells
            .into_iter()
            .map(|((teams, truth), count)| ConfusionCell {
                teams,
                truth,
                count,
            })
            .collect(),
        disagreements,
        disagreement_count,
    })
}

fn merge_conservation(shards: &[ShardReport]) -> Conservation {
    let mut violations: Vec<String> = shards
        .iter()
        .flat_map(|s| s.report.conservation.violations.iter().cloned())
        .collect();
    violations.sort();
    violations.truncate(MAX_EVIDENCE);
    Conservation {
        answered_calls: shards
            .iter()
            .map(|s| s.report.conservation.answered_calls)
            .sum(),
        classified: shards
            .iter()
            .map(|s| s.report.conservation.classified)
            .sum(),
        violations,
        holds: shards.iter().all(|s| s.report.conservation.holds),
    }
}

/// A threshold judged again on the merged figures, as `run` judges it.
fn rejudge(
    t: &ThresholdResult,
    reconciliation: Option<&oc_protocol::ReconciliationSummary>,
    latency: &[oc_reports::LatencySummary],
) -> Result<ThresholdResult, MergeError> {
    let (measured, passed) = match t.name.as_str() {
        "min_match_rate" => {
            let m = reconciliation.and_then(|r| r.match_rate);
            (m, m.is_none_or(|m| m >= t.limit))
        }
        "max_ack_p99_ms" => {
            let m = latency
                .iter()
                .find(|l| l.exchange == "webhook")
                .map(|l| l.p99_us as f64 / 1000.0);
            (m, m.is_none_or(|m| m <= t.limit))
        }
        "max_minutes_difference" => {
            let m = reconciliation.map_or(0.0, |r| r.minutes.difference.abs());
            (Some(m), m <= t.limit)
        }
        other => {
            return Err(MergeError::Mismatch(format!(
                "the threshold `{other}` is not one this harness can judge again"
            )));
        }
    };
    Ok(ThresholdResult {
        name: t.name.clone(),
        limit: t.limit,
        measured,
        passed,
    })
}

/// `oc-harness merge`: reads, checks, merges, writes.
pub fn merge_dirs(dirs: &[PathBuf], out: &Path) -> Result<Report, MergeError> {
    let shards = dirs
        .iter()
        .map(|d| read_shard(d))
        .collect::<Result<Vec<_>, _>>()?;
    let shards = check(shards)?;
    let (report, evidence) = merge(&shards)?;
    report.write_all(out, &evidence)?;
    Ok(report)
}
