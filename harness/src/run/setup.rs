//! The set-up `run` and `certify` share: the Teams side started with its checker (on a thread
//! of its own), the carrier under test and the isolation probe's carrier registered, the
//! inventory, and the actors wired to each other ([`wire`]).

use std::sync::{Arc, Mutex};

use actix::{Actor, Addr, Recipient};
use mock_teams::{CarrierSpec as TeamsCarrier, MockTeams, TeamsOptions, WebhookTarget};
use oc_protocol::paths;

#[cfg(test)]
use super::CARRIER_TOKEN;
use super::report;
use super::{CARRIER_ID, OTHER_CARRIER_ID, OTHER_TOKEN, RunError, store_error};
use crate::actors::admin::AdminActor;
use crate::actors::checker::{CheckerActor, Outbox};
use crate::actors::clock::{ClockActor, Pace};
use crate::actors::messages::{TickPlayed, TickStarted};
use crate::actors::progress::ProgressActor;
use crate::actors::teams::TeamsActor;
use crate::actors::traffic::TrafficActor;
use crate::checker::history::CheckSettings;
use crate::scenario::Scenario;

/// The Teams side of a run or a certification, and the checker that records what it saw.
/// Cheap to clone: every actor that plays a part holds one.
#[derive(Clone)]
pub(crate) struct Sides {
    pub(crate) teams: Arc<MockTeams>,
    pub(crate) carrier_url: String,
    pub(crate) checker: Addr<CheckerActor>,
    /// The checker's thread, stopped once it handed its state over.
    pub(crate) checker_thread: actix::ArbiterHandle,
    /// The carrier's last feed link, for the isolation probe.
    pub(crate) last_link: Arc<Mutex<Option<String>>>,
}

/// The credentials the carrier under test holds.
pub(crate) struct Credentials {
    /// Its bearer token for the Teams API.
    pub(crate) token: String,
    /// The webhook signing secret.
    pub(crate) webhook_secret: String,
}

impl Credentials {
    /// The token and secret given on the command line, each generated (random, not from the
    /// seed: a credential is not part of what a seed replays) when not given.
    pub(crate) fn given_or_generated(
        token: Option<&String>,
        webhook_secret: Option<&String>,
    ) -> Self {
        Self {
            token: token
                .cloned()
                .unwrap_or_else(|| crate::certify::generated_secret("oct")),
            webhook_secret: webhook_secret
                .cloned()
                .unwrap_or_else(|| crate::certify::generated_secret("whsec")),
        }
    }
}

/// The Teams side started, the carrier not yet known.
pub(crate) struct TeamsStarted {
    pub(crate) teams: MockTeams,
    checker: Addr<CheckerActor>,
    checker_thread: actix::ArbiterHandle,
    last_link: Arc<Mutex<Option<String>>>,
}

/// The settings a scenario's run is judged with; `cycles_on_the_wire` when the carrier polls
/// on its own clock (a certification).
pub(crate) fn check_settings(scenario: &Scenario, cycles_on_the_wire: bool) -> CheckSettings {
    CheckSettings {
        tolerance_ms: scenario.reconciliation.tolerance_ms,
        deadline_ms: scenario.reconciliation.deadline_ms,
        ack_deadline_ms: 5_000,
        cycles_on_the_wire,
    }
}

/// Starts the Teams side with `options` (listen address, faults, TLS…), its store set up from
/// the scenario, every exchange going to a new checker judging with `settings`, which keeps
/// the exchanges in the folder `out.0` when there is one (and everything in memory with
/// `out.1`).
pub(crate) async fn start_teams(
    scenario: &Scenario,
    seed: u64,
    options: TeamsOptions,
    settings: CheckSettings,
    out: (Option<&std::path::Path>, bool),
) -> Result<TeamsStarted, RunError> {
    Ok(
        start_teams_with(scenario, seed, options, settings, out, None, false)
            .await?
            .0,
    )
}

/// Sees every exchange before the checker does (a load test's metrics).
type Tap = Arc<dyn Fn(&oc_observe::Exchange) + Send + Sync>;

/// [`start_teams`] for a load test: every exchange shown to `tap` first, and handed to the
/// checker in batches through the returned [`Outbox`], which its owner flushes (a load test:
/// its generator before each sleep, Teams' clock every step, and before the other messages it
/// sends the checker).
pub(crate) async fn start_teams_tapped(
    scenario: &Scenario,
    seed: u64,
    options: TeamsOptions,
    settings: CheckSettings,
    out: (Option<&std::path::Path>, bool),
    tap: Tap,
) -> Result<(TeamsStarted, Arc<Outbox>), RunError> {
    let (teams, outbox) =
        start_teams_with(scenario, seed, options, settings, out, Some(tap), true).await?;
    Ok((teams, outbox.ok_or(RunError::Checker)?))
}

async fn start_teams_with(
    scenario: &Scenario,
    seed: u64,
    mut options: TeamsOptions,
    settings: CheckSettings,
    out: (Option<&std::path::Path>, bool),
    tap: Option<Tap>,
    batched: bool,
) -> Result<(TeamsStarted, Option<Arc<Outbox>>), RunError> {
    let (checker, checker_thread) =
        CheckerActor::new(CARRIER_ID, settings, out.0, out.1).start_on_own_thread();
    let last_link = Arc::new(Mutex::new(None));
    let sink_checker = checker.clone();
    let sink_link = last_link.clone();
    let outbox = batched.then(|| Arc::new(Outbox::new(checker.clone())));
    let sink_outbox = outbox.clone();
    options.start_time = scenario.start;
    options.store.seed = seed;
    options.store.tolerance_ms = scenario.reconciliation.tolerance_ms;
    options.store.reporting_deadline_ms = scenario.reconciliation.deadline_ms;
    options.sink = Arc::new(move |e: oc_observe::Exchange| {
        if let Some(oc_observe::ExchangeDetail::FeedPage { link, .. }) = &e.detail
            && e.carrier.as_deref() == Some(CARRIER_ID)
            && let Ok(mut last) = sink_link.lock()
        {
            *last = Some(link.clone());
        }
        if let Some(tap) = &tap {
            tap(&e);
        }
        match &sink_outbox {
            Some(outbox) => outbox.push(e),
            None => crate::actors::checker::deliver(&sink_checker, e),
        }
    });
    let teams = MockTeams::start(options)
        .await
        .map_err(|e| RunError::Start {
            what: "the Teams side",
            message: format!("{e:#}"),
        })?;
    Ok((
        TeamsStarted {
            teams,
            checker,
            checker_thread: checker_thread.handle(),
            last_link,
        },
        outbox,
    ))
}

impl TeamsStarted {
    /// Registers the carrier under test (webhooks to `carrier_url`) and the isolation probe's
    /// second carrier.
    pub(crate) fn with_carrier(
        self,
        carrier_url: String,
        credentials: &Credentials,
    ) -> Result<Sides, RunError> {
        let teams = self.teams;
        teams
            .add_carrier(TeamsCarrier {
                id: CARRIER_ID.into(),
                token: credentials.token.clone(),
                webhook: Some(WebhookTarget {
                    url: format!("{carrier_url}{}", paths::NUMBER_ASSIGNMENTS),
                    secret: credentials.webhook_secret.clone(),
                }),
            })
            .map_err(store_error("the carrier"))?;
        teams
            .add_carrier(TeamsCarrier {
                id: OTHER_CARRIER_ID.into(),
                token: OTHER_TOKEN.into(),
                webhook: None,
            })
            .map_err(store_error("the isolation probe's carrier"))?;
        Ok(Sides {
            teams: Arc::new(teams),
            carrier_url,
            checker: self.checker,
            checker_thread: self.checker_thread,
            last_link: self.last_link,
        })
    }
}

#[cfg(test)]
impl TeamsStarted {
    /// Registers the carrier under test without a webhook: for tests of the traffic alone, which
    /// have no carrier to deliver to.
    pub(crate) fn without_webhook(self) -> Result<Sides, RunError> {
        self.teams
            .add_carrier(TeamsCarrier {
                id: CARRIER_ID.into(),
                token: CARRIER_TOKEN.into(),
                webhook: None,
            })
            .map_err(store_error("the carrier"))?;
        Ok(Sides {
            teams: Arc::new(self.teams),
            carrier_url: String::new(),
            checker: self.checker,
            checker_thread: self.checker_thread,
            last_link: self.last_link,
        })
    }
}

/// What a run or a certification plays, for [`wire`].
pub(crate) struct Plan<'a> {
    pub(crate) scenario: &'a Scenario,
    pub(crate) seed: u64,
    /// How much simulated time the clock runs.
    pub(crate) length_ms: i64,
    pub(crate) pace: Pace,
    /// A certification's call-id prefix (its carrier may remember earlier certifications' ids).
    pub(crate) certification: Option<String>,
    /// Told what each tick generated (a certification's legs, tests).
    pub(crate) watchers: Vec<Recipient<TickPlayed>>,
    /// The clock's subscribers after Teams' player, in order (the mock carrier's poller, a
    /// certification's legs).
    pub(crate) after_teams: Vec<Recipient<TickStarted>>,
    /// Shows progress.
    pub(crate) progress: bool,
}

/// The actors of a run or a certification, wired to each other.
pub(crate) struct Wiring {
    /// Teams' player: the admins' changes and the traffic's calls into Teams.
    pub(crate) teams: Addr<TeamsActor>,
    /// The clock, whose subscribers are Teams' player, `after_teams`, then the progress.
    pub(crate) clock: Addr<ClockActor>,
}

/// Starts the actors of `plan` over `sides` and wires them: the clock pushes each tick to
/// Teams' player (which applies what the admins and the traffic decided for it), then to
/// `after_teams`, then to the progress, and tells Teams' player the next tick ahead meanwhile
/// (so the admins and the traffic decide it while `after_teams` work); `run` and `certify`
/// share this set-up.
pub(crate) fn wire(sides: &Sides, plan: Plan<'_>) -> Wiring {
    let scenario = plan.scenario;
    let blocks = crate::shard::blocks(&scenario.tenants);
    let admin = AdminActor::new(scenario.assignments.clone(), &blocks, plan.seed).start();
    let mut traffic =
        TrafficActor::new(scenario.calls.clone(), scenario.quality, &blocks, plan.seed);
    if let Some(prefix) = &plan.certification {
        traffic = traffic
            .with_call_prefix(prefix)
            .with_correction_window(scenario.calls.availability_delay.max_ms);
    }
    let teams = TeamsActor::new(sides.clone(), admin, traffic.start(), plan.watchers).start();
    let progress = ProgressActor::new(
        report::Progress::new(plan.progress, plan.length_ms),
        scenario.start,
    )
    .start();
    let mut subscribers = vec![teams.clone().recipient()];
    subscribers.extend(plan.after_teams);
    subscribers.push(progress.recipient());
    let clock = ClockActor::new(
        scenario.start,
        plan.length_ms,
        scenario.tick_ms,
        plan.pace,
        subscribers,
    )
    .with_lookahead(teams.clone().recipient())
    .start();
    Wiring { teams, clock }
}

/// Puts every tenant's numbers into the carrier's inventory; returns them in order.
pub(crate) fn inventory(scenario: &Scenario, teams: &MockTeams) -> Result<Vec<String>, RunError> {
    let mut numbers = Vec::new();
    for tenant in &scenario.tenants {
        let first: u64 = tenant
            .first_number
            .trim_start_matches('+')
            .parse()
            .map_err(|_| RunError::Store {
                what: "a tenant's numbers",
                message: format!("{} is not E.164", tenant.first_number),
            })?;
        for i in 0..u64::from(tenant.numbers) {
            let number = format!("+{}", first + i);
            teams
                .with_store(|s| s.add_number(CARRIER_ID, &tenant.id, &number))
                .map_err(store_error("a tenant's numbers"))?;
            numbers.push(number);
        }
    }
    Ok(numbers)
}
