//! `oc-harness run`: one scenario, both sides in-process over loopback HTTP. The actors are
//! wired to each other (`wire`, shared with `certify`): the clock pushes each tick to Teams'
//! player (the admins change assignments, the traffic places calls, Teams publishes what became
//! available and delivers webhooks), then to the mock carrier's poller (one poll cycle, on a
//! thread of its own) while Teams' player decides the next tick, then to the progress, and
//! starts the next tick when all answered. Every exchange reaches the checker
//! as it happens. After each poll cycle, the calls final on both sides close: the checker
//! judges each with its ground truth, and both sides forget it, so memory holds the open calls,
//! not the run's. After the last tick the run drains (records still to come, reports still
//! held), probes the carrier's state and signature checking, and the checker judges the end:
//! Teams' final state and the calls still open, streamed in call-id order.

pub(crate) mod evidence;
pub mod export;
pub(crate) mod figures;
pub(crate) mod generate;
pub(crate) mod judge;
pub(crate) mod probes;
pub(crate) mod recorded;
pub(crate) mod report;
pub(crate) mod setup;
pub(crate) mod shard_section;
pub(crate) mod spill;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Actor;
use mock_carrier::{CarrierConfig, MockCarrier};
use mock_teams::{MockTeams, TeamsOptions};
use oc_protocol::UnixMillis;

use crate::actors::carrier::CarrierActor;
use crate::actors::clock::Pace;
use crate::actors::messages::{CycleEnded, Handover, PlayStart, RecordsUntil, RunTicks};
use crate::checker::history::{History, PollCycle};
use crate::scenario::{CarrierSpec, Clock, Scenario};

pub use report::exit_code;
pub(crate) use setup::{
    Credentials, Plan, Sides, check_settings, inventory, start_teams, start_teams_tapped, wire,
};

/// The carrier's id in Teams.
pub const CARRIER_ID: &str = "carrier";
/// The second carrier that isolation is probed with.
pub const OTHER_CARRIER_ID: &str = "isolation-probe";
const CARRIER_TOKEN: &str = "carrier-token";
const OTHER_TOKEN: &str = "isolation-probe-token";
const WEBHOOK_SECRET: &str = "harness-webhook-secret";

const DAY_MS: i64 = 86_400_000;

/// How long the run waits for webhook deliveries to settle after each step.
const SETTLE_LIMIT: Duration = Duration::from_secs(90);

/// How to run a scenario.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The scenario file as it was given, for the command that replays the run.
    pub scenario_file: PathBuf,
    /// The seed, instead of the scenario's.
    pub seed: Option<u64>,
    /// Where the report goes.
    pub out: PathBuf,
    /// Shows a progress bar (on a terminal) or progress lines (elsewhere).
    pub progress: bool,
    /// Runs only this much simulated time instead of the scenario's length (tests).
    pub length_ms: Option<i64>,
    /// Also keeps everything the checker observed in memory, as a [`History`] (tests that
    /// check the verdicts against the run's facts): memory then grows with the run, and no
    /// call closes before the end (the history's replay judges the calls in call-id order).
    pub keep_history: bool,
    /// Also writes the run as Teams' Graph call log and the carrier's CDR CSV here
    /// ([`export`]). The export is written from both sides' calls at the end, so no call
    /// closes before it: memory then grows with the run's calls.
    pub export: Option<PathBuf>,
    /// Plays only this shard of the scenario ([`crate::shard`]); its report (in `out`) carries
    /// what `oc-harness merge` needs.
    pub shard: Option<crate::shard::Shard>,
}

/// A finished run.
pub struct RunOutcome {
    /// The report, as written to `report.json`.
    pub report: oc_reports::Report,
    /// Everything the checker judged, when [`RunOptions::keep_history`] asked for it.
    pub history: Option<History>,
    /// How many calls closed during the run, judged as soon as they were final on both
    /// sides and dropped (the others were judged at the end).
    pub closed_calls: u64,
    /// Where `report.json` was written (beside it: `junit.xml`, `summary.md`,
    /// `evidence.ndjson`), or would have been if `write_error` says it was not.
    pub report_path: PathBuf,
    /// Why the report could not be written, when it could not: the verdict stands all the same.
    pub write_error: Option<oc_reports::WriteError>,
    /// What `--export` wrote, when it was asked for and succeeded.
    pub exported: Option<export::Exported>,
    /// Why `--export` could not be written, when it could not: the verdict stands all the same.
    pub export_error: Option<oc_reports::WriteError>,
}

/// Why a run could not happen.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A mock could not start (port, runtime).
    #[error("failed to start {what}: {message}")]
    Start {
        /// Which side.
        what: &'static str,
        /// Why.
        message: String,
    },
    /// The scenario cannot run this way.
    #[error("{0}")]
    Unsupported(String),
    /// The Teams store refused the scenario's inventory or traffic.
    #[error("the Teams side refused {what}: {message}")]
    Store {
        /// What.
        what: &'static str,
        /// Why.
        message: String,
    },
    /// The report's folder cannot be written (found before the run starts).
    #[error("cannot write the report into {}: {}", .0.path, .0.source)]
    Write(#[from] oc_reports::WriteError),
    /// The export's folder cannot be written (found before the run starts).
    #[error("cannot write the export into {}: {}", .0.path, .0.source)]
    Export(oc_reports::WriteError),
    /// `--length` asks for no time, or for more than the scenario holds.
    #[error("--length {0}")]
    Length(String),
    /// An actor stopped.
    #[error("an actor of the run stopped: {0}")]
    Actor(#[from] actix::MailboxError),
    /// The checker had already handed its state over.
    #[error("the checker of the run was asked twice for its verdicts")]
    Checker,
}

pub(crate) fn store_error(what: &'static str) -> impl Fn(mock_teams::StoreError) -> RunError {
    move |e| RunError::Store {
        what,
        message: e.to_string(),
    }
}

/// Runs a scenario to its report. Must be called inside an actix `System`.
pub async fn run(scenario: &Scenario, options: &RunOptions) -> Result<RunOutcome, RunError> {
    let started = Instant::now();
    let reseeded;
    let scenario = match options.seed {
        Some(seed) if seed != scenario.seed => {
            reseeded = scenario.with_seed(seed);
            &reseeded
        }
        _ => scenario,
    };
    let seed = scenario.seed;
    let length_ms = run_length(scenario, options.length_ms)?;
    oc_reports::check_writable(&options.out)?;
    let sharded;
    let (scenario, shard) = match options.shard {
        Some(shard) => {
            sharded = crate::shard::scenario_of(scenario, shard);
            let started = shard_section::started(&options.scenario_file, shard, &options.out)?;
            (&sharded, Some(started))
        }
        None => (scenario, None),
    };
    // A shard probes only its numbers; the probes of the carrier as a whole (signatures,
    // isolation) are the first shard's, so that the shards' counts add up to the whole run's.
    let whole_run_probes = options.shard.is_none_or(|s| s.index == 0);
    if let Some(dir) = &options.export {
        export::check(dir).map_err(RunError::Export)?;
    }
    let CarrierSpec::Mock {
        drift,
        misbehaviour,
        client,
    } = &scenario.carrier
    else {
        return Err(RunError::Unsupported(
            "`oc-harness run` plays the carrier with mock-carrier; a carrier of your own is \
             certified with `oc-harness certify --carrier-url URL`"
                .into(),
        ));
    };
    let credentials = Credentials {
        token: CARRIER_TOKEN.into(),
        webhook_secret: WEBHOOK_SECRET.into(),
    };
    let mut teams_options = TeamsOptions::loopback(scenario.start);
    teams_options.faults = scenario.teams_faults.clone();
    let settings = check_settings(scenario, false);
    let teams = start_teams(
        scenario,
        seed,
        teams_options,
        settings,
        (Some(&options.out), options.keep_history),
    )
    .await?;
    let mut config = CarrierConfig::new(
        &teams.teams.base_url(),
        &credentials.token,
        &credentials.webhook_secret,
    );
    config.seed = seed;
    config.tolerance_ms = scenario.reconciliation.tolerance_ms;
    config.deadline_ms = scenario.reconciliation.deadline_ms;
    config.drift = drift.clone();
    config.misbehaviour = misbehaviour.clone();
    config.client = client.clone();
    let carrier = Arc::new(MockCarrier::start(config).map_err(|e| RunError::Start {
        what: "mock-carrier",
        message: e.to_string(),
    })?);
    let sides = teams.with_carrier(carrier.base_url(), &credentials)?;
    let numbers = inventory(scenario, &sides.teams)?;
    // Calls close as they become final, so that memory holds the open calls, not the run's;
    // unless everything is wanted at the end (a kept history, an export).
    let close = !options.keep_history && options.export.is_none();
    // When every call stays, the calls a run of this length expects, and a margin: Teams'
    // tables get their room at once instead of doubling (and holding the old and the new
    // table) as the run goes. Room for every call would defeat closing (the tables' front
    // moves through all of it).
    let expected = if close {
        0.0
    } else {
        scenario.expected_calls_within(length_ms) * 1.2
    };
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "an estimate of at most billions, and 0 when negative"
    )]
    let expected = expected as usize;
    sides
        .teams
        .with_store(|s| s.reserve_calls(CARRIER_ID, expected))
        .map_err(store_error("the carrier"))?;

    // The carrier polls on a thread of its own, while Teams' player decides the next tick on
    // this one; the thread stops when the ticks are done, or on any way out before.
    let carrier_thread = StopOnDrop(actix::Arbiter::new());
    let closing = crate::actors::carrier::Closing::default();
    let poller = {
        let (sides, carrier, closing) = (sides.clone(), carrier.clone(), closing.clone());
        CarrierActor::start_in_arbiter(&carrier_thread.0.handle(), move |_| {
            CarrierActor::new(sides, carrier, close, closing)
        })
    };
    let wiring = wire(
        &sides,
        Plan {
            scenario,
            seed,
            length_ms,
            pace: match scenario.clock {
                Clock::Virtual => Pace::Virtual,
                Clock::Realtime { speed } => Pace::Realtime { speed },
            },
            certification: None,
            watchers: Vec::new(),
            after_teams: vec![poller.recipient()],
            progress: options.progress,
        },
    );
    wiring.teams.send(PlayStart(scenario.start)).await??;
    settle(&sides.teams).await;
    if let Err(err) = carrier.resync().await {
        tracing::warn!(%err, "the carrier's resync failed");
    }
    wiring.clock.send(RunTicks).await??;
    // The last tick's calls closed on the carrier's side too, before its thread stops.
    drop(closing.lock().await);
    let last_record = wiring.teams.send(RecordsUntil).await?;
    drop(wiring);
    drop(carrier_thread);
    let end = scenario.start + length_ms;
    drain(&sides, &carrier, scenario, end.max(last_record)).await;
    // Every call of the run connected between its start and now.
    let (exported, export_error) = match &options.export {
        Some(dir) => match export::write(
            dir,
            &sides.teams,
            &carrier,
            (scenario.start, sides.teams.now()),
        ) {
            Ok(exported) => (Some(exported), None),
            Err(err) => (None, Some(err)),
        },
        None => (None, None),
    };
    let (facts, summary, window) = final_state(
        &sides,
        scenario,
        &numbers,
        &credentials,
        end,
        whole_run_probes,
    )
    .await?;
    let observed = take_observed(&sides).await?;
    let mut judgement = carrier.with_ground_truth_calls(|truth| {
        judge::judge(observed, facts, &sides.teams, Some(truth), window)
    })?;
    if let Some(history) = &mut judgement.history {
        history.truth = Some(carrier.ground_truth());
    }
    carrier.stop().await;
    let quality_over_time = quality_over_time(&sides.teams)?;
    let quality_minutes = match shard {
        Some(_) => shard_section::quality_minutes(&sides.teams)?,
        None => Vec::new(),
    };
    sides.teams.stop().await;
    let shard_parts = shard.map(|started| {
        shard_section::finished(
            started,
            &judgement.figures,
            quality_minutes,
            [window.0, window.1],
        )
    });
    let mut report = report::build(report::Inputs {
        scenario,
        seed,
        length_ms,
        figures: judgement.figures,
        numbers: numbers.len() as u64,
        cycles: judgement.cycles,
        quality_over_time,
        result: judgement.result,
        summary,
        wall: started.elapsed(),
        replay: crate::replay::run_command(
            &options.scenario_file,
            seed,
            (length_ms != scenario.length_ms).then_some(length_ms),
            &options.out,
            options.export.as_deref(),
            options.shard,
        ),
    });
    report.shard = shard_parts;
    let mut write_error = write_report(&report, judgement.exchanges.as_ref(), &options.out).err();
    if write_error.is_none()
        && let Some(section) = &report.shard
    {
        write_error = shard_section::mark_finished(section, &options.out).err();
    }
    Ok(RunOutcome {
        report,
        history: judgement.history,
        closed_calls: judgement.closed_calls,
        report_path: options.out.join("report.json"),
        write_error,
        exported,
        export_error,
    })
}

/// Stops an actor thread when dropped.
struct StopOnDrop(actix::Arbiter);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// How much simulated time to run: the scenario's length, or less when `--length` asks.
fn run_length(scenario: &Scenario, asked: Option<i64>) -> Result<i64, RunError> {
    match asked {
        Some(ms) if ms <= 0 => Err(RunError::Length(format!(
            "{} runs no time: it must be more than 0",
            crate::scenario::format_duration(ms)
        ))),
        Some(ms) if ms > scenario.length_ms => Err(RunError::Length(format!(
            "{} is longer than the scenario ({}); a run can be cut short, not stretched",
            crate::scenario::format_duration(ms),
            crate::scenario::format_duration(scenario.length_ms)
        ))),
        Some(ms) => Ok(ms),
        None => Ok(scenario.length_ms),
    }
}

/// Writes every rendering of `report` to `out`, with the exchanges its evidence cites. A
/// failure here does not lose the verdict: the caller still has the report to print.
pub(crate) fn write_report(
    report: &oc_reports::Report,
    exchanges: Option<&spill::Kept>,
    out: &std::path::Path,
) -> Result<(), oc_reports::WriteError> {
    let evidence = evidence::cited(report, exchanges);
    report.write_all(out, &evidence).map(drop)
}

/// What only the end knows: the carrier's signature checking and its view of every number
/// (probed), Teams' isolation and final state, its reconciliation summary, and the window of
/// call starts it reconciles. The calls are the checker's to read from Teams' store.
pub(crate) async fn final_state(
    sides: &Sides,
    scenario: &Scenario,
    numbers: &[String],
    credentials: &Credentials,
    end: UnixMillis,
    whole_run_probes: bool,
) -> Result<
    (
        judge::EndFacts,
        oc_protocol::ReconciliationSummary,
        (UnixMillis, UnixMillis),
    ),
    RunError,
> {
    // Reconcile everything: calls start within the run, but a carrier may report calls of its
    // own invention at any time, and those must be seen too.
    let window = (scenario.start - DAY_MS, sides.teams.now() + DAY_MS);
    let secret = &credentials.webhook_secret;
    let calls = sides.teams.harness_calls();
    let rec = recorded::Recording {
        calls: &calls,
        carrier: CARRIER_ID,
        sim_time: end,
    };
    let (signature_probes, isolation_probes) = if whole_run_probes {
        let link = sides.last_link.lock().map(|l| l.clone()).unwrap_or(None);
        (
            probes::signatures(rec, &sides.carrier_url, secret, end).await,
            probes::isolation(&sides.teams.base_url(), link.as_deref(), OTHER_TOKEN).await,
        )
    } else {
        (Vec::new(), Vec::new())
    };
    let probes = probes::numbers(rec, &sides.carrier_url, secret, numbers).await;
    let teams_numbers = sides
        .teams
        .with_store(|s| numbers.iter().filter_map(|n| s.number(n)).collect());
    let summary = sides
        .teams
        .reconciliation(CARRIER_ID, window.0, window.1)
        .map_err(store_error("reconciliation"))?;
    let facts = judge::EndFacts {
        teams_numbers,
        probes,
        signature_probes,
        isolation_probes,
        judged_at: Some(sides.teams.now()),
    };
    Ok((facts, summary, window))
}

/// Takes the checker's state over from its actor, for the end of the run.
pub(crate) async fn take_observed(
    sides: &Sides,
) -> Result<crate::actors::checker::Observed, RunError> {
    let observed = sides.checker.send(Handover).await;
    sides.checker_thread.stop();
    Ok(*observed?.ok_or(RunError::Checker)?)
}

/// The quality records Teams served, in buckets of time, for the report.
pub(crate) fn quality_over_time(
    teams: &MockTeams,
) -> Result<Vec<oc_reports::QualityBucket>, RunError> {
    teams
        .with_store(|s| {
            let records = s.quality_availability(CARRIER_ID)?;
            Ok(report::quality_over_time(|| records.clone()))
        })
        .map_err(store_error("quality"))
}

/// Waits for webhook deliveries to settle: before the carrier's first resync and before the
/// final probes. Bounded: a carrier that never answers costs the protocol's retry schedule,
/// about a minute, per notification in flight.
pub(crate) async fn settle(teams: &MockTeams) {
    settle_within(teams, SETTLE_LIMIT).await;
}

/// [`settle`] with another limit.
pub(crate) async fn settle_within(teams: &MockTeams, limit: Duration) {
    if !teams.webhooks().wait_idle(limit).await {
        tracing::warn!(
            "webhook deliveries did not settle within {} s; going on",
            limit.as_secs()
        );
    }
}

/// One carrier poll cycle at simulated `now`, marked for the checker.
pub(crate) async fn poll(
    sides: &Sides,
    carrier: &MockCarrier,
    now: UnixMillis,
) -> Option<mock_carrier::CycleOutcome> {
    let first_seq = sides.teams.next_exchange_seq();
    let outcome = match carrier.poll_cycle(now).await {
        Ok(outcome) => Some(outcome),
        Err(err) => {
            tracing::warn!(%err, "a carrier poll cycle failed");
            None
        }
    };
    let last_seq = sides.teams.next_exchange_seq().saturating_sub(1);
    sides.checker.do_send(CycleEnded(PollCycle {
        sim_time: now,
        first_seq,
        last_seq,
    }));
    outcome
}

/// After the last tick: keeps the clock and the carrier going until every record is available
/// and every held report went out (reports held past the deadline need the clock past it),
/// then flushes the carrier.
async fn drain(
    sides: &Sides,
    carrier: &MockCarrier,
    scenario: &Scenario,
    records_until: UnixMillis,
) {
    // Hour steps reach a day's deadline quickly; a short deadline needs steps well inside it,
    // or the records that arrive after the last tick are reported late for nothing.
    let step = scenario
        .tick_ms
        .max((scenario.reconciliation.deadline_ms / 10).min(3_600_000));
    let hard_end = records_until + scenario.reconciliation.deadline_ms + 2 * step;
    let mut now = sides.teams.now();
    let mut pending = 0;
    loop {
        // With nothing held by the carrier, the clock jumps to Teams' next publication (a
        // correction due in an hour), rather than polling an idle hour step by step.
        let next_record = (pending == 0)
            .then(|| sides.teams.with_store(|s| s.next_publication()))
            .flatten()
            .filter(|&at| at > now + step);
        now = next_record.unwrap_or(now + step).min(hard_end);
        if sides.teams.advance_to(now).is_err() {
            break;
        }
        pending = poll(sides, carrier, now)
            .await
            .map_or(0, |o| o.pending + o.outbox);
        if now >= hard_end || (now >= records_until && pending == 0) {
            break;
        }
    }
    // The flush only reports what is held; it is not a poll cycle (it reads no quality feed).
    if let Err(err) = carrier.flush(now).await {
        tracing::warn!(%err, "the carrier's final flush failed");
    }
    settle(&sides.teams).await;
}
