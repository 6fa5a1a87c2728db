//! `oc-harness load`: a CI load test of a real carrier integration. The harness is Teams, in
//! real time, as in `certify` (the same set-up, printout, bounded waits and limits on a hostile
//! carrier), driven by a load plan: open-model executors of number events and calls with
//! k6-style stages ([`plan`]), each iteration started at its intended time or counted as
//! dropped; latency measured from that intended time (coordinated omission corrected); metrics
//! per interval as an HdrHistogram interval log and NDJSON; thresholds judged at the end (and
//! during the load with `abort_on_fail`); the checker judging every exchange all along; and the
//! report of `run` and `certify`, its thresholds the plan's.

mod driver;
pub mod metrics;
pub mod plan;
pub mod schedule;
pub mod thresholds;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use mock_teams::{NumberChange, TeamsOptions};
use oc_protocol::timestamp::DAY_MS;
use oc_protocol::{Severity, UnixMillis, paths};
use oc_reports::{Outcome, Report, ThresholdResult, Verdict};

use crate::actors::checker::Outbox;
use crate::certify::{Setup, wait_ready};
use crate::run::recorded::wall_ms;
use crate::run::{
    CARRIER_ID, Credentials, RunError, check_settings, inventory, judge, quality_over_time, report,
    settle_within, start_teams_tapped, take_observed, write_report,
};
use crate::scenario::{Clock, Scenario};
use driver::{Driver, LegPoster, Numbers};
use metrics::{MetricsSetup, MetricsTotals, Sample};
pub use plan::{LoadPlan, load as load_plan, parse as parse_plan};

/// Bodies kept whole up to this size: the metrics read every duration report's call ids.
const BODY_CAPTURE_LIMIT: usize = 256 * 1024;
/// The longest the first assignments may take to reach the carrier before the load starts.
const ASSIGNMENTS_LIMIT: Duration = Duration::from_secs(35);
/// The longest the last webhook deliveries may take to settle (their whole retry schedule).
const SETTLE_LIMIT: Duration = Duration::from_secs(65);
/// How often the catch-up looks at the carrier's progress.
const CATCH_UP_STEP: Duration = Duration::from_millis(500);
/// How long nothing may be missing before the catch-up ends early.
const QUIET: Duration = Duration::from_secs(2);
/// The most webhook connections opened before the load starts.
const PREOPENED: usize = 64;
/// How long opening them may take.
const PREOPEN_LIMIT: Duration = Duration::from_secs(5);

/// How to run a load test.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The carrier API's base URL.
    pub carrier_url: String,
    /// The plan file, as given (for the replay command).
    pub plan_file: PathBuf,
    /// Where the Teams API listens.
    pub listen: SocketAddr,
    /// The Teams base URL as the carrier reaches it, when not the listen address.
    pub public_url: Option<String>,
    /// TLS for the Teams API.
    pub tls: Option<mock_teams::TlsFiles>,
    /// The carrier's bearer token; generated when absent.
    pub token: Option<String>,
    /// The webhook signing secret; generated when absent.
    pub webhook_secret: Option<String>,
    /// The seed, instead of the plan's.
    pub seed: Option<u64>,
    /// How long to wait for the carrier's API, ms.
    pub ready_timeout_ms: i64,
    /// Where the report and the metrics go.
    pub out: PathBuf,
    /// Shows progress on stderr.
    pub progress: bool,
    /// Keeps every exchange in `exchanges.ndjson.gz`, for the evidence to show. Without it, the
    /// checker still judges every exchange, and a failure's evidence still cites (by `seq`)
    /// the exchanges its rule named as it judged, but no body is kept, and the exchanges that
    /// name a failed call's id (found at the end by searching the bodies) are not cited.
    pub exchange_log: bool,
}

/// A finished load test.
pub struct LoadOutcome {
    /// The report, as written.
    pub report: Report,
    /// Where `report.json` was written, or would have been.
    pub report_path: PathBuf,
    /// Why the report or the metrics could not be written, when they could not.
    pub write_error: Option<String>,
}

/// The scenario a load stands on: the plan's name, seed and numbers, Teams' deadline, the wall
/// clock.
fn scenario_of(plan: &LoadPlan, seed: u64, start: UnixMillis) -> Result<Scenario, RunError> {
    let text = format!(
        "name = {name:?}\ndescription = \"load test\"\nseed = {seed}\n\
         start = \"2026-01-01T00:00:00.000Z\"\nlength = \"1d\"\n\
         [[tenants]]\nnumbers = {numbers}\nfirst_number = \"+{first}\"\n",
        name = plan.name,
        numbers = u64::from(plan.numbers) + u64::from(plan.call_numbers),
        first = plan.first_number,
    );
    let mut scenario = crate::scenario::parse(&text, "the load plan")
        .map_err(|e| RunError::Unsupported(e.to_string()))?;
    scenario.description = plan.description.clone();
    scenario.start = start;
    scenario.length_ms = plan.length_ms();
    scenario.clock = Clock::Realtime { speed: 1.0 };
    scenario.reconciliation.deadline_ms = plan.reporting_deadline_ms;
    Ok(scenario)
}

/// The longest a load test can take, ms: the wait for the carrier, the first assignments, the
/// load, the catch-up, the last webhooks settling.
fn time_limit_ms(plan: &LoadPlan, ready_timeout_ms: i64) -> u64 {
    let ms = ready_timeout_ms + plan.length_ms() + plan.catch_up_ms;
    let fixed = ASSIGNMENTS_LIMIT + SETTLE_LIMIT;
    u64::try_from(ms).unwrap_or(0) + u64::try_from(fixed.as_millis()).unwrap_or(u64::MAX)
}

/// Runs `plan` against the carrier at `options.carrier_url`. `announce` is called once, when the
/// Teams API listens, with what the carrier must configure. Must be called inside an actix
/// `System`.
pub async fn load(
    plan: &LoadPlan,
    options: &LoadOptions,
    announce: impl FnOnce(&Setup),
) -> Result<LoadOutcome, RunError> {
    let started = Instant::now();
    oc_reports::check_writable(&options.out)?;
    let seed = options.seed.unwrap_or(plan.seed);
    let scenario = scenario_of(plan, seed, wall_ms())?;
    let credentials =
        Credentials::given_or_generated(options.token.as_ref(), options.webhook_secret.as_ref());
    let mut teams_options = TeamsOptions::loopback(scenario.start);
    teams_options.listen = options.listen;
    teams_options.public_url = options.public_url.clone();
    teams_options.tls = options.tls.clone();
    teams_options.body_capture_limit = BODY_CAPTURE_LIMIT;
    teams_options.webhooks.max_in_flight = (plan.max_in_flight as usize).max(64);
    // A carrier that floods the Teams API is answered 429, as in a certification, but a load
    // test's carrier reads and reports far more.
    teams_options.rate_limit = Some(mock_teams::RateLimit {
        requests_per_second: 500,
        burst: 2000,
    });
    teams_options.store.sequence_base = u64::try_from(scenario.start).unwrap_or(0);
    let (sink, samples) = std::sync::mpsc::channel();
    let sink = metrics::MetricsSink::new(sink);
    let tap_sink = sink.clone();
    let (teams, outbox) = start_teams_tapped(
        &scenario,
        seed,
        teams_options,
        check_settings(&scenario, true),
        (options.exchange_log.then_some(options.out.as_path()), false),
        Arc::new(move |e: &oc_observe::Exchange| tap_sink.exchange(e)),
    )
    .await?;
    let carrier_url = options.carrier_url.trim_end_matches('/').to_owned();
    let sides = teams.with_carrier(carrier_url.clone(), &credentials)?;
    let inventory = inventory(&scenario, &sides.teams)?;
    let (events, calls) = inventory.split_at(plan.numbers as usize);
    let numbers = Arc::new(Numbers {
        events: events.to_vec(),
        calls: calls.to_vec(),
    });
    let time_limit_ms = time_limit_ms(plan, options.ready_timeout_ms);
    announce(&Setup {
        activity: "load test",
        teams_url: options
            .public_url
            .clone()
            .unwrap_or_else(|| sides.teams.base_url()),
        token: credentials.token.clone(),
        webhook_secret: credentials.webhook_secret.clone(),
        webhook_url: format!("{carrier_url}{}", paths::NUMBER_ASSIGNMENTS),
        call_legs_url: format!("{carrier_url}{}", paths::CALL_LEGS),
        seed,
        reporting_deadline_ms: plan.reporting_deadline_ms,
        time_limit_ms,
        ready_timeout_ms: options.ready_timeout_ms,
    });
    let say = |line: &str| {
        if options.progress {
            eprintln!("{line}");
        }
    };
    if !options.exchange_log {
        say(
            "no exchange log (--no-exchange-log): every exchange is judged, but none is kept; \
             evidence.ndjson stays empty, and a failure's evidence cites only the exchanges \
             its rule named as it judged (not those found by a call id at the end)",
        );
    }
    say(&format!(
        "waiting up to {} s for the carrier API at {carrier_url} to answer",
        options.ready_timeout_ms / 1000
    ));
    if let Err(why) = wait_ready(
        &carrier_url,
        &credentials.webhook_secret,
        options.ready_timeout_ms,
    )
    .await
    {
        sides.teams.stop().await;
        return Err(RunError::Start {
            what: "the load test",
            message: why,
        });
    }
    // The numbers calls are placed on, assigned before the load and never changed.
    let assigned_at = wall_ms();
    sides
        .teams
        .with_store(|s| s.advance_to(assigned_at.max(s.now())))
        .map_err(crate::run::store_error("Teams' clock"))?;
    let assignments: Vec<NumberChange> = numbers
        .calls
        .iter()
        .enumerate()
        .map(|(k, number)| NumberChange::Assign {
            assignment: driver::call_number_assignment(seed, k as u64, number),
            telephone_number: number.clone(),
        })
        .collect();
    let events = sides.teams.apply_changes_sent_at(assignments, None);
    outbox.push_events(events.into_iter().filter_map(Result::ok).collect());
    settle_within(&sides.teams, ASSIGNMENTS_LIMIT).await;
    say(&format!(
        "the carrier answered; running {} for {} s",
        plan.name,
        plan.length_ms() / 1000
    ));
    if plan.number_events.is_some() {
        // The webhook sender's connections are opened before the schedule starts, as wrk and
        // k6 open theirs: the first notifications do not wait for connects (and are not
        // dropped for them). As many as may be in flight, at most the sender's usual 64.
        let connections = (plan.max_in_flight as usize).min(PREOPENED);
        let opened = sides
            .teams
            .webhooks()
            .preopen(
                &format!("{carrier_url}{}", paths::NUMBER_ASSIGNMENTS),
                connections,
                PREOPEN_LIMIT,
            )
            .await;
        tracing::debug!(opened, connections, "webhook connections opened ahead");
    }
    let abort = Arc::new(AtomicBool::new(false));
    let verdict = sides
        .checker
        .send(crate::actors::messages::WatchVerdict)
        .await
        .map_err(|_| RunError::Checker)?;
    // A call starts after its numbers' assignment (at least a millisecond after it) and ends
    // at its intended time, the load's start at the earliest: so the load starts at least two
    // milliseconds after the assignment, or its first calls (those due within a millisecond,
    // at rates above 1,000 a second) would end before they start and Teams would refuse them.
    let too_soon = assigned_at + 2 - wall_ms();
    if too_soon > 0 {
        tokio::time::sleep(Duration::from_millis(too_soon.unsigned_abs())).await;
    }
    let start = tokio::time::Instant::now();
    let start_ms = wall_ms();
    let collector = metrics::start(
        MetricsSetup {
            plan: plan.clone(),
            start_ms,
            start: start.into_std(),
            teams: sides.teams.clone(),
            out: options.out.clone(),
            progress: options.progress,
            abort: abort.clone(),
            verdict,
        },
        samples,
    )
    .map_err(|e| RunError::Start {
        what: "the metrics",
        message: e.to_string(),
    })?;
    let driver = Driver {
        sides: sides.clone(),
        plan: Arc::new(plan.clone()),
        seed,
        numbers,
        start,
        start_ms,
        assigned_at,
        metrics: sink.clone(),
        abort: abort.clone(),
        legs: Arc::new(LegPoster::new(
            &carrier_url,
            &credentials.webhook_secret,
            sides.teams.harness_calls(),
        )),
        outbox: outbox.clone(),
    };
    driver.run().await;
    if !abort.load(std::sync::atomic::Ordering::SeqCst) {
        say("the load is over; waiting for the carrier to catch up");
        catch_up(&sides, &outbox, &scenario, plan).await;
    }
    settle_within(&sides.teams, SETTLE_LIMIT).await;
    sink.send(Sample::Finish);
    let totals = collector.join().map_err(|_| RunError::Checker)?;
    let now = sides.teams.now();
    let window = (scenario.start - DAY_MS, now + DAY_MS);
    let summary = sides
        .teams
        .reconciliation(CARRIER_ID, window.0, window.1)
        .map_err(crate::run::store_error("the reconciliation"))?;
    // Whatever was gathered reaches the checker before it hands its state over.
    outbox.flush();
    let observed = take_observed(&sides).await?;
    let judgement = judge::judge(
        observed,
        judge::EndFacts::default(),
        &sides.teams,
        None,
        window,
    )?;
    let quality_over_time = quality_over_time(&sides.teams)?;
    sides.teams.stop().await;
    let mut report = report::build(report::Inputs {
        scenario: &scenario,
        seed,
        length_ms: scenario.length_ms,
        figures: judgement.figures,
        numbers: inventory.len() as u64,
        cycles: judgement.cycles,
        quality_over_time,
        result: judgement.result,
        summary,
        wall: started.elapsed(),
        replay: replay_command(options, seed),
    });
    report.scenario.carrier = carrier_url;
    judge_thresholds(&mut report, plan, &totals);
    report.load = Some(load_section(plan, &totals));
    let write_error = totals.write_error.clone().or_else(|| {
        write_report(&report, judgement.exchanges.as_ref(), &options.out)
            .err()
            .map(|e| format!("{}: {}", e.path, e.source))
    });
    Ok(LoadOutcome {
        report,
        report_path: options.out.join("report.json"),
        write_error,
    })
}

/// The plan's thresholds become the report's, and decide the verdict with the abort: the rules'
/// failures count only through a `rules` threshold; a harness error stays one.
fn judge_thresholds(report: &mut Report, plan: &LoadPlan, totals: &MetricsTotals) {
    let rules_failed = report
        .rules
        .iter()
        .filter(|r| r.outcome == Outcome::Failed && r.severity == Severity::Must)
        .count() as u64;
    report.thresholds = plan
        .thresholds
        .iter()
        .map(|t| {
            let measured = totals.measured(t, rules_failed);
            ThresholdResult {
                name: t.text.clone(),
                limit: t.limit,
                measured,
                passed: t.holds(measured),
            }
        })
        .collect();
    if let Some(why) = &totals.aborted {
        report.thresholds.push(ThresholdResult {
            name: format!("abort_on_fail: {why}"),
            limit: plan.abort_after_ms.unwrap_or(0) as f64,
            measured: None,
            passed: false,
        });
    }
    if report.verdict != Verdict::HarnessError {
        report.verdict = if report.thresholds.iter().all(|t| t.passed) {
            Verdict::Passed
        } else {
            Verdict::Failed
        };
    }
}

/// The report's load section: every interval as `metrics.ndjson` has it, the phases, totals.
fn load_section(plan: &LoadPlan, totals: &MetricsTotals) -> oc_reports::LoadSection {
    let (dropped_late, dropped_in_flight) = totals.dropped_by_reason();
    oc_reports::LoadSection {
        interval_ms: plan.interval_ms,
        phases: plan
            .phases
            .iter()
            .map(|p| oc_reports::LoadPhase {
                kind: p.kind.as_str().to_owned(),
                start_ms: p.at_ms,
                end_ms: p.at_ms + p.duration_ms,
                excused_until_ms: p.excused_until_ms(),
            })
            .collect(),
        intervals: totals
            .intervals
            .iter()
            .map(|row| oc_reports::LoadInterval {
                start_ms: row.start_ms,
                end_ms: row.end_ms,
                excused: row.excused,
                executors: row
                    .executors
                    .iter()
                    .map(|(executor, e)| oc_reports::LoadExecutorInterval {
                        executor: executor.as_str().to_owned(),
                        target_rate: e.target_rate,
                        achieved_rate: e.achieved_rate,
                        dropped: e.dropped,
                    })
                    .collect(),
                metrics: row
                    .metrics
                    .iter()
                    .map(|(metric, m)| oc_reports::LoadMetricInterval {
                        metric: (*metric).to_owned(),
                        count: m.count,
                        p50_ms: m.p50_ms,
                        p99_ms: m.p99_ms,
                        max_ms: m.max_ms,
                    })
                    .collect(),
                requests: row.requests,
                errors: row.errors.values().sum(),
            })
            .collect(),
        dropped: totals.dropped(),
        dropped_late,
        dropped_in_flight,
        unsent: totals.unsent(),
        refused: totals.refused(),
        unreported: totals.unreported,
        aborted: totals.aborted.clone(),
    }
}

/// After the load: keeps Teams' clock on the wall clock until nothing answered lacks a
/// duration for [`QUIET`], or `catch_up_ms` has passed.
async fn catch_up(
    sides: &crate::run::Sides,
    outbox: &Outbox,
    scenario: &Scenario,
    plan: &LoadPlan,
) {
    let limit = Instant::now() + Duration::from_millis(plan.catch_up_ms.unsigned_abs());
    let mut caught_up_since: Option<Instant> = None;
    while Instant::now() < limit {
        let now = wall_ms();
        sides.teams.with_store(|s| {
            if now > s.now() {
                let _ = s.advance_to(now);
            }
        });
        let missing = sides
            .teams
            .reconciliation(CARRIER_ID, scenario.start - DAY_MS, now + DAY_MS)
            .map_or(u64::MAX, |r| r.counts.missing);
        caught_up_since = if missing == 0 {
            caught_up_since.or(Some(Instant::now()))
        } else {
            None
        };
        if caught_up_since.is_some_and(|since| since.elapsed() >= QUIET) {
            return;
        }
        driver::close_settled(sides, outbox, plan.close_hold_ms);
        outbox.flush();
        tokio::time::sleep(CATCH_UP_STEP).await;
    }
}

/// `oc-harness load --carrier-url URL --plan FILE --seed N --listen … --out DIR
/// [--no-exchange-log]`.
fn replay_command(options: &LoadOptions, seed: u64) -> String {
    let mut args = vec![
        "oc-harness".to_owned(),
        "load".to_owned(),
        "--carrier-url".to_owned(),
        options.carrier_url.clone(),
        "--plan".to_owned(),
        options.plan_file.display().to_string(),
        "--seed".to_owned(),
        seed.to_string(),
        "--listen".to_owned(),
        options.listen.to_string(),
    ];
    crate::replay::push_served_at(&mut args, options.public_url.as_ref(), options.tls.as_ref());
    args.extend(["--out".to_owned(), options.out.display().to_string()]);
    if !options.exchange_log {
        args.push("--no-exchange-log".to_owned());
    }
    crate::replay::command_line(&args)
}
