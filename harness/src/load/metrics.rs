//! A load test's metrics, on a thread of their own: latency samples into one HdrHistogram per
//! metric and interval, iterations counted per executor, errors by kind. At each interval's end
//! the histograms are written to `metrics.hlog` (an HdrHistogram interval log, one tagged
//! histogram per metric) and a line to `metrics.ndjson`, the progress line is shown, the
//! thresholds are judged on the interval (for `abort_on_fail`), and the histograms are reset:
//! memory stays flat, but for the calls whose duration is not reported yet.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use hdrhistogram::serialization::V2Serializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use mock_teams::MockTeams;
use oc_observe::{Exchange, ExchangeDetail, ExchangeDirection};
use oc_protocol::UnixMillis;
use serde::Serialize;

use super::plan::LoadPlan;
use super::schedule::Arrivals;
use super::thresholds::{Metric, Threshold, ThresholdKind};
use crate::run::CARRIER_ID;

/// The highest latency recorded, µs (an hour); longer ones are recorded as this.
const HIGHEST_US: u64 = 3_600_000_000;
/// How often the metrics thread takes what was sent. It sleeps in between instead of waiting
/// on the channel: a receiver blocked on it makes every send wake it (a futex call on the
/// generator's thread per sample: a thirteenth of that thread's time at 4,000 webhooks/s).
const DRAIN_EVERY: Duration = Duration::from_millis(10);

/// An executor of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Executor {
    /// Number-assignment events, as notifications.
    NumberEvents,
    /// Calls, with their records and legs.
    Calls,
}

impl Executor {
    /// As plans and files name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NumberEvents => "number_events",
            Self::Calls => "calls",
        }
    }
}

/// What became of an iteration when it came due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Turn {
    /// Started on time.
    Start,
    /// Dropped: the generator was more than the plan's `start_slack` behind its schedule.
    Late,
    /// Dropped: `max_in_flight` iterations were under way.
    InFlight,
}

/// What the metrics thread is told.
#[derive(Debug)]
pub(crate) enum Sample {
    /// An exchange of the carrier under test, as Teams recorded it: one the carrier made (the
    /// metrics read its detail and body).
    Exchange(Box<Exchange>),
    /// A webhook attempt or a leg post answered (or not): all the metrics read of it, without
    /// a copy of the exchange for each of the generator's requests.
    Answered {
        /// [`Metric::WebhookAck`] or [`Metric::LegsPost`].
        metric: Metric,
        status: Option<u16>,
        /// From its intended send time (the exchange's simulated time) to its answer, µs.
        from_intended_us: i64,
    },
    /// An iteration started on time, or was dropped; counted in the interval in which this
    /// arrives (an iteration due just before an interval's end may count in the next one; the
    /// totals are exact).
    Iteration { executor: Executor, turn: Turn },
    /// An iteration that started on time of which Teams' store refused `work` units (number
    /// changes whose numbers an earlier dropped iteration left in another state than the
    /// schedule has them, or its call): started, and that much of its work not achieved.
    /// `all`: every unit, so it sent nothing.
    Refused {
        executor: Executor,
        work: u32,
        all: bool,
    },
    /// A call that ended at `end` was placed: its duration is awaited.
    CallPlaced { call_id: String, end: UnixMillis },
    /// The load and its catch-up are over: the last interval is written, the thread ends.
    Finish,
}

/// Where the metrics go, cheap to clone: every sender of samples holds one.
#[derive(Clone)]
pub(crate) struct MetricsSink(Sender<Sample>);

impl MetricsSink {
    pub(crate) fn new(sender: Sender<Sample>) -> Self {
        Self(sender)
    }

    pub(crate) fn send(&self, sample: Sample) {
        // The thread is gone only once the load is over: nothing left to count.
        let _ = self.0.send(sample);
    }

    /// Hands over an exchange, if it is one the metrics read (of the carrier under test).
    pub(crate) fn exchange(&self, e: &Exchange) {
        if e.carrier.as_deref() != Some(CARRIER_ID) {
            return;
        }
        let metric = match &e.detail {
            Some(ExchangeDetail::Webhook { .. }) => Metric::WebhookAck,
            Some(ExchangeDetail::CallLegs { .. }) => Metric::LegsPost,
            Some(ExchangeDetail::FeedPage { .. } | ExchangeDetail::DurationReport { .. }) => {
                return self.send(Sample::Exchange(Box::new(e.clone())));
            }
            _ if e.direction == ExchangeDirection::CarrierToTeams => {
                return self.send(Sample::Exchange(Box::new(e.clone())));
            }
            _ => return,
        };
        self.send(Sample::Answered {
            metric,
            status: e.status,
            from_intended_us: answered_us(e) - e.sim_time * 1000,
        });
    }
}

/// When an exchange was answered (or given up), µs since the Unix epoch.
fn answered_us(e: &Exchange) -> i64 {
    e.wall_time_ms * 1000 + i64::try_from(e.latency_us).unwrap_or(i64::MAX)
}

/// One interval's figures of one metric, ms.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MetricRow {
    /// Samples.
    pub count: u64,
    /// Percentiles and the maximum, ms; absent without samples.
    pub p50_ms: Option<f64>,
    /// 90th percentile.
    pub p90_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
    /// Maximum.
    pub max_ms: Option<f64>,
}

/// One interval's figures of one executor.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ExecutorRow {
    /// The plan's rate, per second, over the interval (iterations scheduled / its length, times
    /// the work per iteration).
    pub target_rate: f64,
    /// The work sent, per second: iterations started times the work per iteration, less the
    /// work Teams refused (`refused`).
    pub achieved_rate: f64,
    /// Iterations scheduled in the interval.
    pub scheduled: u64,
    /// Iterations started.
    pub started: u64,
    /// Of which sent nothing (every number change refused after an earlier drop, or the call
    /// refused): work an earlier drop undid, not achieved.
    pub unsent: u64,
    /// The units of work (number changes, calls) of the iterations started that Teams refused,
    /// those of `unsent` iterations and those of notifications that sent the rest: not
    /// achieved.
    pub refused: u64,
    /// The work per iteration (a notification's events; 1 for a call).
    #[serde(skip)]
    pub per: u32,
    /// Iterations dropped: they could not start on time.
    pub dropped: u64,
    /// Of which the generator was more than the plan's `start_slack` behind its schedule: the
    /// machine running the load is the limit.
    pub dropped_late: u64,
    /// Of which `max_in_flight` iterations were under way: answers came too slowly for the
    /// rate (Little's law), the carrier's doing or the generator's, too busy to read them.
    pub dropped_in_flight: u64,
}

impl ExecutorRow {
    /// The iterations started, less the share of their work Teams refused.
    fn sent(&self) -> f64 {
        let per = f64::from(self.per.max(1));
        (self.started as f64 - self.refused as f64 / per).max(0.0)
    }
}

/// One line of `metrics.ndjson`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntervalRow {
    /// From 0.
    pub interval: u64,
    /// Its start and end, ms from the start of the load.
    pub start_ms: i64,
    /// Its end.
    pub end_ms: i64,
    /// In a phase of trouble or its catch-up allowance: latency thresholds do not judge it.
    pub excused: bool,
    /// Per executor.
    pub executors: BTreeMap<Executor, ExecutorRow>,
    /// Per metric.
    pub metrics: BTreeMap<&'static str, MetricRow>,
    /// Requests of the integration (webhook attempts, leg posts, the carrier's requests).
    pub requests: u64,
    /// Failed requests by kind, e.g. `webhook 500`, `legs timeout`, `teams 400`.
    pub errors: BTreeMap<String, u64>,
    /// Calls whose duration Teams has not received yet.
    pub open_calls: u64,
    /// The rules the checker found failing so far (those it decides as the run goes on; the
    /// others are judged at the end).
    pub rules_failed: Vec<String>,
    /// Calls Teams' store holds at the interval's end: those not closed yet
    /// (`Store::close_settled`). It stays level while calls keep coming.
    pub teams_calls: u64,
    /// The thresholds breached in this interval.
    pub breached: Vec<String>,
}

/// What the metrics thread hands back at the end.
pub struct MetricsTotals {
    /// Each metric over the intervals latency thresholds judge.
    pub judged: BTreeMap<Metric, Histogram<u64>>,
    /// Each metric over the whole load.
    pub all: BTreeMap<Metric, Histogram<u64>>,
    /// Per executor: scheduled, started, dropped.
    pub executors: BTreeMap<Executor, ExecutorRow>,
    /// Requests of the integration.
    pub requests: u64,
    /// Failed requests by kind.
    pub errors: BTreeMap<String, u64>,
    /// Calls never reported by the end, each counted in `report_lag` at its age then.
    pub unreported: u64,
    /// Every interval, in order.
    pub intervals: Vec<IntervalRow>,
    /// Why the load was aborted, when it was.
    pub aborted: Option<String>,
    /// Why a metrics file could not be written, when it could not.
    pub write_error: Option<String>,
}

impl MetricsTotals {
    /// Errors over requests, or none without requests.
    pub fn error_rate(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.errors.values().sum::<u64>() as f64 / self.requests as f64)
    }

    /// Iterations started, less the share of their work Teams refused, over iterations
    /// scheduled, every executor together.
    pub fn achieved_rate(&self) -> Option<f64> {
        let scheduled: u64 = self.executors.values().map(|e| e.scheduled).sum();
        let sent: f64 = self.executors.values().map(ExecutorRow::sent).sum();
        (scheduled > 0).then(|| sent / scheduled as f64)
    }

    /// Work units Teams refused of the iterations started, every executor together.
    pub fn refused(&self) -> u64 {
        self.executors.values().map(|e| e.refused).sum()
    }

    /// Iterations started that sent nothing.
    pub fn unsent(&self) -> u64 {
        self.executors.values().map(|e| e.unsent).sum()
    }

    /// Iterations dropped.
    pub fn dropped(&self) -> u64 {
        self.executors.values().map(|e| e.dropped).sum()
    }

    /// Iterations dropped because the generator was behind its schedule, and because
    /// `max_in_flight` iterations were under way.
    pub fn dropped_by_reason(&self) -> (u64, u64) {
        self.executors.values().fold((0, 0), |(late, full), e| {
            (late + e.dropped_late, full + e.dropped_in_flight)
        })
    }

    /// What `threshold` measured at the end (`rules`: the `must` rules failed, given).
    pub fn measured(&self, threshold: &Threshold, rules_failed: u64) -> Option<f64> {
        match threshold.kind {
            ThresholdKind::Latency { metric, quantile } => {
                quantile_ms(self.judged.get(&metric)?, quantile)
            }
            ThresholdKind::ErrorRate => self.error_rate(),
            ThresholdKind::AchievedRate => self.achieved_rate(),
            ThresholdKind::Dropped => Some(self.dropped() as f64),
            ThresholdKind::Rules => Some(rules_failed as f64),
        }
    }
}

/// A quantile of a histogram of µs, in ms; none when it is empty.
pub fn quantile_ms(h: &Histogram<u64>, quantile: f64) -> Option<f64> {
    if h.is_empty() {
        return None;
    }
    let us = if quantile >= 1.0 {
        h.max()
    } else {
        h.value_at_quantile(quantile)
    };
    Some(us as f64 / 1000.0)
}

fn histogram() -> Histogram<u64> {
    // Three significant digits from 1 µs to an hour: about 50 KB per histogram.
    Histogram::new_with_bounds(1, HIGHEST_US, 3).unwrap_or_else(|_| Histogram::new(3).unwrap())
}

/// How the metrics thread runs.
pub(crate) struct MetricsSetup {
    pub(crate) plan: LoadPlan,
    /// The start of the load, wall clock, ms since the epoch, and as an instant.
    pub(crate) start_ms: UnixMillis,
    pub(crate) start: Instant,
    pub(crate) teams: Arc<MockTeams>,
    pub(crate) out: std::path::PathBuf,
    pub(crate) progress: bool,
    /// Set when a breach lasted `abort_on_fail.after`.
    pub(crate) abort: Arc<AtomicBool>,
    /// The rules the checker found failing so far.
    pub(crate) verdict: crate::actors::messages::VerdictSoFar,
}

/// Starts the metrics thread on the samples of `receive` (an unbounded channel: a sender may be
/// one of Teams' handlers holding the store, which the thread itself locks to read feed times;
/// the thread keeps up with far more than a carrier sends). It ends at [`Sample::Finish`],
/// once the last interval is written.
pub(crate) fn start(
    setup: MetricsSetup,
    receive: Receiver<Sample>,
) -> std::io::Result<std::thread::JoinHandle<MetricsTotals>> {
    std::fs::create_dir_all(&setup.out)?;
    let hlog = BufWriter::new(File::create(setup.out.join("metrics.hlog"))?);
    let ndjson = BufWriter::new(File::create(setup.out.join("metrics.ndjson"))?);
    std::thread::Builder::new()
        .name("load-metrics".into())
        .spawn(move || Collector::new(setup).run(receive, hlog, ndjson))
}

/// The metrics thread's state.
struct Collector {
    setup: MetricsSetup,
    current: BTreeMap<Metric, Histogram<u64>>,
    judged: BTreeMap<Metric, Histogram<u64>>,
    all: BTreeMap<Metric, Histogram<u64>>,
    started: BTreeMap<Executor, (u64, u64, u64)>,
    /// Per executor, in the interval: iterations started that sent nothing, and the work units
    /// Teams refused of those started.
    refused: BTreeMap<Executor, (u64, u64)>,
    totals: BTreeMap<Executor, ExecutorRow>,
    requests: u64,
    errors: BTreeMap<String, u64>,
    total_requests: u64,
    total_errors: BTreeMap<String, u64>,
    /// Calls placed and not yet reported: call id → end.
    open: HashMap<String, UnixMillis>,
    intervals: Vec<IntervalRow>,
    /// Since when (ms from the start) a threshold has been breached without a break.
    breached_since: Option<i64>,
    aborted: Option<String>,
    terminal: bool,
}

impl Collector {
    fn new(setup: MetricsSetup) -> Self {
        let each = || Metric::ALL.into_iter().map(|m| (m, histogram())).collect();
        Self {
            current: each(),
            judged: each(),
            all: each(),
            started: BTreeMap::new(),
            refused: BTreeMap::new(),
            totals: BTreeMap::new(),
            requests: 0,
            errors: BTreeMap::new(),
            total_requests: 0,
            total_errors: BTreeMap::new(),
            open: HashMap::new(),
            intervals: Vec::new(),
            breached_since: None,
            aborted: None,
            terminal: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            setup,
        }
    }

    fn run(
        mut self,
        receive: Receiver<Sample>,
        mut hlog: BufWriter<File>,
        mut ndjson: BufWriter<File>,
    ) -> MetricsTotals {
        let interval = Duration::from_millis(self.setup.plan.interval_ms.unsigned_abs());
        let mut write_error = header(&mut hlog, self.setup.start_ms).err();
        let mut serializer = V2Serializer::new();
        let mut index = 0u64;
        let mut connected = true;
        while connected {
            let boundary =
                self.setup.start + interval * u32::try_from(index + 1).unwrap_or(u32::MAX);
            'interval: loop {
                loop {
                    match receive.try_recv() {
                        Ok(Sample::Finish) | Err(TryRecvError::Disconnected) => {
                            connected = false;
                            break 'interval;
                        }
                        Ok(sample) => self.take(sample),
                        Err(TryRecvError::Empty) => break,
                    }
                }
                let left = boundary.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                std::thread::sleep(left.min(DRAIN_EVERY));
            }
            let mut end = None;
            if !connected {
                self.censor_open();
                // The last interval ends when the load did.
                let elapsed = self.setup.start.elapsed().as_millis();
                end = Some(i64::try_from(elapsed).unwrap_or(i64::MAX));
            }
            let row = self.close(index, end);
            if write_error.is_none()
                && let Err(e) = self.write(&row, &mut hlog, &mut ndjson, &mut serializer)
            {
                write_error = Some(e);
            }
            self.show(&row);
            for h in self.current.values_mut() {
                h.reset();
            }
            self.intervals.push(row);
            index += 1;
        }
        if self.terminal && self.setup.progress {
            eprintln!();
        }
        for file in [&mut hlog, &mut ndjson] {
            if let Err(e) = file.flush()
                && write_error.is_none()
            {
                write_error = Some(format!("failed to write the metrics: {e}"));
            }
        }
        MetricsTotals {
            judged: self.judged,
            all: self.all,
            executors: self.totals,
            requests: self.total_requests,
            errors: self.total_errors,
            unreported: self.open.len() as u64,
            intervals: self.intervals,
            aborted: self.aborted,
            write_error,
        }
    }

    fn record(&mut self, metric: Metric, us: i64) {
        let us = u64::try_from(us).unwrap_or(0).clamp(1, HIGHEST_US);
        if let Some(h) = self.current.get_mut(&metric) {
            h.saturating_record(us);
        }
    }

    fn error(&mut self, kind: String) {
        *self.errors.entry(kind).or_default() += 1;
    }

    fn take(&mut self, sample: Sample) {
        match sample {
            Sample::Iteration { executor, turn } => {
                let counts = self.started.entry(executor).or_default();
                match turn {
                    Turn::Start => counts.0 += 1,
                    Turn::Late => counts.1 += 1,
                    Turn::InFlight => counts.2 += 1,
                }
            }
            Sample::Refused {
                executor,
                work,
                all,
            } => {
                let counts = self.refused.entry(executor).or_default();
                counts.0 += u64::from(all);
                counts.1 += u64::from(work);
            }
            Sample::CallPlaced { call_id, end } => {
                self.open.insert(call_id, end);
            }
            Sample::Exchange(e) => self.exchange(&e),
            Sample::Answered {
                metric,
                status,
                from_intended_us,
            } => self.answered(metric, status, from_intended_us),
            Sample::Finish => {}
        }
    }

    /// A webhook attempt or a leg post: its latency from its intended send time when
    /// answered `2xx`, an error otherwise.
    fn answered(&mut self, metric: Metric, status: Option<u16>, from_intended_us: i64) {
        self.requests += 1;
        if status.is_some_and(|s| (200..300).contains(&s)) {
            self.record(metric, from_intended_us);
            return;
        }
        let side = if metric == Metric::WebhookAck {
            "webhook"
        } else {
            "legs"
        };
        self.error(match status {
            Some(status) => format!("{side} {status}"),
            None => format!("{side} no answer"),
        });
    }

    fn exchange(&mut self, e: &Exchange) {
        let answered = answered_us(e);
        let ok = e.status.is_some_and(|s| (200..300).contains(&s));
        let failure = |side: &str| match e.status {
            Some(status) => format!("{side} {status}"),
            None => format!("{side} no answer"),
        };
        // Webhook attempts and leg posts come as `Sample::Answered` (`MetricsSink::exchange`).
        match &e.detail {
            _ if e.direction == ExchangeDirection::CarrierToTeams => {
                self.requests += 1;
                // Teams' own faults (injected, an outage, its rate limit) are not the carrier's.
                if !ok && e.fault.is_none() && e.status != Some(429) {
                    self.error(failure("teams"));
                }
                match &e.detail {
                    Some(ExchangeDetail::FeedPage {
                        feed,
                        from_position,
                        to_position,
                        ..
                    }) if ok && to_position > from_position => {
                        let available =
                            self.setup
                                .teams
                                .feed_available(CARRIER_ID, feed, *from_position);
                        if let Some(available) = available {
                            self.record(Metric::FeedLag, answered - available * 1000);
                        }
                    }
                    Some(ExchangeDetail::DurationReport { .. }) if ok => {
                        self.reported(e.request_body.as_deref(), answered);
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    /// The calls of an accepted duration report: each one's lag since its end.
    fn reported(&mut self, body: Option<&str>, answered_us: i64) {
        #[derive(serde::Deserialize)]
        struct Batch {
            records: Vec<Record>,
        }
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Record {
            call_id: String,
        }
        let Some(batch) = body.and_then(|b| serde_json::from_str::<Batch>(b).ok()) else {
            return;
        };
        for record in batch.records {
            if let Some(end) = self.open.remove(&record.call_id) {
                self.record(Metric::ReportLag, answered_us - end * 1000);
            }
        }
    }

    /// At the end: every call still unreported counts in `report_lag` at its age, so that a
    /// carrier that never reports cannot show no lag at all.
    fn censor_open(&mut self) {
        let now_us = crate::run::recorded::wall_ms() * 1000;
        let ends: Vec<UnixMillis> = self.open.values().copied().collect();
        for end in ends {
            self.record(Metric::ReportLag, now_us - end * 1000);
        }
    }

    /// Closes interval `index`: its row, the totals added to, the thresholds judged on it.
    fn close(&mut self, index: u64, end: Option<i64>) -> IntervalRow {
        let plan = &self.setup.plan;
        let start_ms = plan.interval_ms * i64::try_from(index).unwrap_or(i64::MAX);
        let end_ms = end.unwrap_or(start_ms + plan.interval_ms).max(start_ms + 1);
        let excused = plan.excused(start_ms) || plan.excused(end_ms - 1);
        let seconds = (end_ms - start_ms) as f64 / 1000.0;
        let mut executors = BTreeMap::new();
        let mut each = Vec::new();
        if let Some(e) = &plan.number_events {
            each.push((Executor::NumberEvents, &e.stages, e.events_per_notification));
        }
        if let Some(c) = &plan.calls {
            each.push((Executor::Calls, &c.stages, 1));
        }
        for (executor, stages, per) in each {
            let scheduled = Arrivals::new(stages, per).scheduled_between(start_ms, end_ms);
            let (started, late, in_flight) = self.started.remove(&executor).unwrap_or_default();
            // (An iteration counted started in an earlier interval may be counted unsent in
            // this one: the totals are exact.)
            let (unsent, refused) = self.refused.remove(&executor).unwrap_or_default();
            let work = (started * u64::from(per)).saturating_sub(refused);
            let row = ExecutorRow {
                target_rate: scheduled as f64 * f64::from(per) / seconds,
                achieved_rate: work as f64 / seconds,
                scheduled,
                started,
                unsent,
                refused,
                per,
                dropped: late + in_flight,
                dropped_late: late,
                dropped_in_flight: in_flight,
            };
            let total = self.totals.entry(executor).or_default();
            total.scheduled += row.scheduled;
            total.started += row.started;
            total.unsent += row.unsent;
            total.refused += row.refused;
            total.per = row.per;
            total.dropped += row.dropped;
            total.dropped_late += row.dropped_late;
            total.dropped_in_flight += row.dropped_in_flight;
            executors.insert(executor, row);
        }
        let mut metrics = BTreeMap::new();
        for (metric, h) in &self.current {
            metrics.insert(
                metric.as_str(),
                MetricRow {
                    count: h.len(),
                    p50_ms: quantile_ms(h, 0.5),
                    p90_ms: quantile_ms(h, 0.9),
                    p99_ms: quantile_ms(h, 0.99),
                    max_ms: quantile_ms(h, 1.0),
                },
            );
            if let Some(all) = self.all.get_mut(metric) {
                let _ = all.add(h);
            }
            if !excused && let Some(judged) = self.judged.get_mut(metric) {
                let _ = judged.add(h);
            }
        }
        self.total_requests += self.requests;
        for (kind, n) in &self.errors {
            *self.total_errors.entry(kind.clone()).or_default() += n;
        }
        let mut row = IntervalRow {
            interval: index,
            start_ms,
            end_ms,
            excused,
            executors,
            metrics,
            requests: self.requests,
            errors: std::mem::take(&mut self.errors),
            open_calls: self.open.len() as u64,
            teams_calls: self.setup.teams.with_store(|s| s.live_calls()) as u64,
            rules_failed: self
                .setup
                .verdict
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|r| r.as_str().to_owned())
                .collect(),
            breached: Vec::new(),
        };
        row.breached = self.breaches(&row);
        self.requests = 0;
        self.judge_abort(&row);
        row
    }

    /// The thresholds this interval breaches, judged on its own figures (`rules` is judged at
    /// the end only; latency not in an excused interval).
    fn breaches(&self, row: &IntervalRow) -> Vec<String> {
        let scheduled: u64 = row.executors.values().map(|e| e.scheduled).sum();
        let started: u64 = row.executors.values().map(|e| e.started).sum();
        let dropped: u64 = row.executors.values().map(|e| e.dropped).sum();
        let errors: u64 = row.errors.values().sum();
        self.setup
            .plan
            .thresholds
            .iter()
            .filter(|t| {
                let measured = match t.kind {
                    ThresholdKind::Latency { metric, quantile } if !row.excused => {
                        match quantile_ms(&self.current[&metric], quantile) {
                            Some(ms) => Some(ms),
                            None => return false,
                        }
                    }
                    ThresholdKind::ErrorRate if row.requests > 0 => {
                        Some(errors as f64 / row.requests as f64)
                    }
                    // Iterations are counted when they start, which may fall just past the
                    // interval they were scheduled in: judged on the whole load only.
                    ThresholdKind::AchievedRate if scheduled > 0 && started == 0 => Some(0.0),
                    ThresholdKind::Dropped => Some(dropped as f64),
                    _ => return false,
                };
                !t.holds(measured)
            })
            .map(|t| t.text.clone())
            .collect()
    }

    /// Aborts once a breach lasted `abort_on_fail.after`.
    fn judge_abort(&mut self, row: &IntervalRow) {
        let Some(after) = self.setup.plan.abort_after_ms else {
            return;
        };
        if row.breached.is_empty() {
            self.breached_since = None;
            return;
        }
        let since = *self.breached_since.get_or_insert(row.start_ms);
        if row.end_ms - since >= after && self.aborted.is_none() {
            self.aborted = Some(format!(
                "{} breached for {} s (abort_on_fail after {} s)",
                row.breached.join(", "),
                (row.end_ms - since) / 1000,
                after / 1000
            ));
            self.setup.abort.store(true, Ordering::SeqCst);
        }
    }

    fn write(
        &self,
        row: &IntervalRow,
        hlog: &mut BufWriter<File>,
        ndjson: &mut BufWriter<File>,
        serializer: &mut V2Serializer,
    ) -> Result<(), String> {
        write_histograms(hlog, serializer, row, &self.current)?;
        serde_json::to_writer(&mut *ndjson, row)
            .map_err(|e| format!("failed to write metrics.ndjson: {e}"))?;
        ndjson
            .write_all(b"\n")
            .and_then(|()| ndjson.flush())
            .and_then(|()| hlog.flush())
            .map_err(|e| format!("failed to write the metrics: {e}"))
    }

    /// The progress line: elapsed, each executor's rate against its target, the p99s, errors.
    fn show(&self, row: &IntervalRow) {
        if !self.setup.progress {
            return;
        }
        let mut line = format!("[{:>5} s]", row.end_ms / 1000);
        for (executor, e) in &row.executors {
            line.push_str(&format!(
                " {} {:.1}/{:.1}/s",
                executor.as_str(),
                e.achieved_rate,
                e.target_rate
            ));
            if e.dropped > 0 {
                line.push_str(&format!(
                    " ({} dropped: {} late, {} at the in-flight cap)",
                    e.dropped, e.dropped_late, e.dropped_in_flight
                ));
            }
            if e.refused > 0 {
                line.push_str(&format!(" ({} refused after drops)", e.refused));
            }
        }
        line.push_str(" | p99");
        for (name, m) in &row.metrics {
            if let Some(p99) = m.p99_ms {
                line.push_str(&format!(" {name} {}", show_ms(p99)));
            }
        }
        let errors: u64 = row.errors.values().sum();
        line.push_str(&format!(
            " | errors {errors}/{} | open calls {}",
            row.requests, row.open_calls
        ));
        if row.rules_failed.is_empty() {
            line.push_str(" | no rule failed so far");
        } else {
            line.push_str(&format!(
                " | rules failed so far: {}",
                row.rules_failed.join(", ")
            ));
        }
        if row.excused {
            line.push_str(" | in a phase");
        }
        if !row.breached.is_empty() {
            line.push_str(&format!(" | BREACHED {}", row.breached.join(", ")));
        }
        if self.terminal {
            eprint!("\r\x1b[2K{line}");
        } else {
            eprintln!("{line}");
        }
    }
}

fn show_ms(ms: f64) -> String {
    if ms >= 10_000.0 {
        format!("{:.0}s", ms / 1000.0)
    } else if ms >= 1000.0 {
        format!("{:.1}s", ms / 1000.0)
    } else {
        format!("{ms:.1}ms")
    }
}

/// One interval's histograms in the interval log, each tagged with its metric; timestamps are
/// seconds since the load started (the log's `BaseTime`).
fn write_histograms(
    hlog: &mut impl Write,
    serializer: &mut V2Serializer,
    row: &IntervalRow,
    histograms: &BTreeMap<Metric, Histogram<u64>>,
) -> Result<(), String> {
    let start = Duration::from_millis(row.start_ms.unsigned_abs());
    let length = Duration::from_millis((row.end_ms - row.start_ms).unsigned_abs());
    // The header was written once (`header`): an empty builder adds histograms only.
    let mut log = IntervalLogWriterBuilder::new()
        .begin_log_with(hlog, serializer)
        .map_err(|e| format!("failed to write metrics.hlog: {e}"))?;
    for (metric, h) in histograms {
        log.write_histogram(h, start, length, Tag::new(metric.as_str()))
            .map_err(|e| format!("failed to write metrics.hlog: {e}"))?;
    }
    Ok(())
}

/// The interval log's header, as Java's `HistogramLogWriter` writes it: the format version, the
/// start and base time (interval timestamps are seconds since the load started) and the legend.
fn header(hlog: &mut impl Write, start_ms: UnixMillis) -> Result<(), String> {
    let start = start_ms as f64 / 1000.0;
    write!(
        hlog,
        "#[Histogram log format version 1.3]\n#[Values in microseconds]\n\
         #[Tags: webhook_ack, legs_post, feed_lag, report_lag]\n\
         #[StartTime: {start:.3} (seconds since epoch)]\n#[BaseTime: {start:.3} (seconds since epoch)]\n\
         \"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n"
    )
    .map_err(|e| format!("failed to write metrics.hlog: {e}"))
}

#[cfg(test)]
mod tests {
    use hdrhistogram::serialization::Deserializer;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};

    use super::*;

    fn row(interval: u64, ms: i64) -> IntervalRow {
        IntervalRow {
            interval,
            start_ms: interval as i64 * ms,
            end_ms: (interval as i64 + 1) * ms,
            excused: false,
            executors: BTreeMap::new(),
            metrics: BTreeMap::new(),
            requests: 0,
            errors: BTreeMap::new(),
            open_calls: 0,
            teams_calls: 0,
            rules_failed: Vec::new(),
            breached: Vec::new(),
        }
    }

    #[test]
    fn the_interval_log_reads_back_with_hdrhistograms_reader() {
        let mut log = Vec::new();
        header(&mut log, 1_796_000_000_000).unwrap();
        let mut serializer = V2Serializer::new();
        let mut written = Vec::new();
        for interval in 0..3u64 {
            let mut histograms: BTreeMap<Metric, Histogram<u64>> =
                Metric::ALL.into_iter().map(|m| (m, histogram())).collect();
            for (i, h) in histograms.values_mut().enumerate() {
                for v in 1..=100u64 {
                    h.record(v * 1000 * (interval + 1) + i as u64).unwrap();
                }
            }
            write_histograms(
                &mut log,
                &mut serializer,
                &row(interval, 2_000),
                &histograms,
            )
            .unwrap();
            written.push(histograms);
        }
        let mut read = Vec::new();
        for entry in IntervalLogIterator::new(&log) {
            match entry.expect("every line parses") {
                LogEntry::Interval(h) => {
                    let decoded: Histogram<u64> = Deserializer::new()
                        .deserialize(&mut base64_decode(h.encoded_histogram()).as_slice())
                        .unwrap();
                    read.push((
                        h.tag().map(|t| t.as_str().to_owned()),
                        h.start_timestamp(),
                        h.duration(),
                        decoded,
                    ));
                }
                LogEntry::StartTime(t) | LogEntry::BaseTime(t) => {
                    assert_eq!(t, Duration::from_millis(1_796_000_000_000));
                }
            }
        }
        assert_eq!(read.len(), 3 * Metric::ALL.len());
        for (i, (tag, start, length, decoded)) in read.iter().enumerate() {
            let interval = i / Metric::ALL.len();
            let metric = Metric::ALL[i % Metric::ALL.len()];
            assert_eq!(tag.as_deref(), Some(metric.as_str()));
            assert_eq!(*start, Duration::from_secs(2 * interval as u64));
            assert_eq!(*length, Duration::from_secs(2));
            assert_eq!(decoded, &written[interval][&metric]);
        }
    }

    /// Standard base64, as the interval log encodes histograms.
    fn base64_decode(text: &str) -> Vec<u8> {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = Vec::new();
        let mut buffer = 0u32;
        let mut bits = 0;
        for byte in text.bytes().filter(|b| *b != b'=') {
            let value = ALPHABET.iter().position(|a| *a == byte).unwrap() as u32;
            buffer = buffer << 6 | value;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((buffer >> bits) as u8);
            }
        }
        out
    }

    fn exchange(direction: ExchangeDirection, detail: ExchangeDetail) -> Exchange {
        Exchange {
            seq: 1,
            direction,
            carrier: Some(CARRIER_ID.to_owned()),
            method: "POST".into(),
            url: "http://127.0.0.1:9/x".into(),
            status: Some(204),
            error: None,
            sim_time: 1_796_000_000_000,
            wall_time_ms: 1_796_000_000_250,
            latency_us: 1_500,
            request_headers: Vec::new(),
            request_body: Some("{}".into()),
            response_body: None,
            fault: None,
            detail: Some(detail),
        }
    }

    #[test]
    fn the_generators_requests_reach_the_metrics_as_their_latency_alone() {
        let (sender, receive) = std::sync::mpsc::channel();
        let sink = MetricsSink::new(sender);
        let webhook = exchange(
            ExchangeDirection::TeamsToCarrier,
            ExchangeDetail::Webhook {
                notification_id: "n".into(),
                attempt: 0,
                event_ids: vec!["e".into()],
                last: true,
            },
        );
        sink.exchange(&webhook);
        let legs = ExchangeDetail::CallLegs {
            call_ids: vec!["c".into()],
        };
        let mut unanswered = exchange(ExchangeDirection::TeamsToCarrier, legs.clone());
        unanswered.status = None;
        sink.exchange(&unanswered);
        // Another carrier's request is not the carrier's under test.
        let mut other = exchange(ExchangeDirection::TeamsToCarrier, legs);
        other.carrier = Some("other".into());
        sink.exchange(&other);
        // The carrier's own requests go whole: their detail and body are read.
        let report = exchange(
            ExchangeDirection::CarrierToTeams,
            ExchangeDetail::DurationReport {
                key: "k".into(),
                accepted: 1,
                rejected: 0,
                replayed: false,
            },
        );
        sink.exchange(&report);
        drop(sink);
        let samples: Vec<Sample> = receive.iter().collect();
        assert_eq!(samples.len(), 3, "{samples:?}");
        // Sent 250 ms after its intended time, answered 1.5 ms later.
        assert!(matches!(
            samples[0],
            Sample::Answered {
                metric: Metric::WebhookAck,
                status: Some(204),
                from_intended_us: 251_500,
            }
        ));
        assert!(matches!(
            samples[1],
            Sample::Answered {
                metric: Metric::LegsPost,
                status: None,
                ..
            }
        ));
        assert!(
            matches!(&samples[2], Sample::Exchange(e) if e.seq == 1 && e.direction == ExchangeDirection::CarrierToTeams)
        );
    }

    #[test]
    fn quantiles_are_in_ms_and_none_without_samples() {
        let mut h = histogram();
        assert_eq!(quantile_ms(&h, 0.99), None);
        for us in [1_000u64, 2_000, 3_000, 500_000] {
            h.record(us).unwrap();
        }
        let max = quantile_ms(&h, 1.0).unwrap();
        assert!((max - 500.0).abs() < 1.0, "{max}");
        let p50 = quantile_ms(&h, 0.5).unwrap();
        assert!((p50 - 2.0).abs() < 0.01, "{p50}");
    }
}
