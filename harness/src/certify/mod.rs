//! `oc-harness certify`: the harness is Teams, the carrier is real. The harness serves the
//! Teams API, says what the carrier must configure, waits (bounded) for the carrier's API to
//! answer, then runs the scenario in real time, with the actors wired as `oc-harness run` wires
//! them and the clock paced on the wall clock: admins change assignments (webhooks go to the
//! carrier), calls happen (Teams publishes their records; the carrier's switch legs are posted
//! to its call-legs hook once each call ends), and the carrier polls and reports on its own
//! clock. The checker judges every exchange as it happens, with the same rules as
//! `oc-harness run`. After the traffic it waits, bounded, for the carrier to catch up; probes
//! its view of every number and its signature checking; judges the end; and writes the
//! certification report.
//!
//! Simulated time is wall-clock time here: every timestamp the carrier sees is real, and the
//! reporting deadline is the scenario's, in real time (short, so that a certification fits in
//! minutes). Every wait is bounded, and nothing the carrier sends or fails to send can stop
//! the report from being written.

pub mod cases;
pub(crate) mod legs;
mod traffic;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mock_teams::TeamsOptions;
use oc_protocol::signing::{SIGNATURE_HEADER, sign};
use oc_protocol::{UnixMillis, paths};
use oc_reports::{Certification, CertificationVerdict, Evidence, Outcome, Report, Verdict};

use crate::actors::traffic::MAX_RING_MS;
use crate::run::{
    CARRIER_ID, Credentials, RunError, Sides, check_settings, final_state, inventory, judge,
    quality_over_time, report, settle_within, start_teams, take_observed, write_report,
};
use crate::scenario::{Clock, Scenario};

use crate::run::recorded::{wall_ms, wall_secs};
use actix::Addr;
use legs::{Legs, LegsActor};

use crate::actors::clock::Pace;
use crate::actors::messages::{FinishLegs, PendingLegs, PostDueLegs};

/// How long the certification keeps request bodies whole in its evidence: a full duration
/// report of 1000 records is about 170 KB, and DUR-FIDELITY reads every one of them.
const BODY_CAPTURE_LIMIT: usize = 256 * 1024;
/// How often the harness looks at the carrier's progress while it catches up.
const CATCH_UP_STEP: Duration = Duration::from_secs(1);
/// The longest the final webhook deliveries may take to settle: a notification's whole retry
/// schedule (six attempts of up to 5 s, and 31 s of backoff between them), so that even a
/// carrier that acknowledges too late has every notification by the probes.
const SETTLE_LIMIT: Duration = Duration::from_secs(65);
/// The longest one readiness probe may take.
const READY_PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// A number no inventory holds, probed to see whether the carrier's API answers at all.
const READY_PROBE_NUMBER: &str = "+12025550180";

/// The default suite, `scenarios/certification.toml`, built in so that `certify` runs from
/// anywhere.
pub const DEFAULT_SUITE: &str = include_str!("../../../scenarios/certification.toml");
/// The quick suite, `scenarios/certification-quick.toml`.
pub const QUICK_SUITE: &str = include_str!("../../../scenarios/certification-quick.toml");

/// Checks a base URL (the carrier API's, or Teams' as the carrier reaches it): `http` or
/// `https`, a host, no query or fragment.
pub fn check_carrier_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("must start with http:// or https://, got {url:?}"))?;
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() {
        return Err(format!("has no host, got {url:?}"));
    }
    if url.contains(['?', '#', ' ']) {
        return Err(format!(
            "must be a base URL without query, fragment or spaces, got {url:?}"
        ));
    }
    Ok(())
}

/// How to certify.
#[derive(Debug, Clone)]
pub struct CertifyOptions {
    /// The carrier API's base URL (the webhook, the state probe and the call-legs hook are
    /// under it).
    pub carrier_url: String,
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
    /// The seed; a fresh one when absent (printed in the report, to replay with).
    pub seed: Option<u64>,
    /// How long to wait for the carrier's API, instead of the scenario's `ready_timeout`.
    pub ready_timeout_ms: Option<i64>,
    /// Where the report goes.
    pub out: PathBuf,
    /// Shows progress on stderr.
    pub progress: bool,
    /// How the scenario was chosen, as command-line arguments for the replay command, one
    /// argument each: `--quick`, `--scenario` and the file, or none for the default suite.
    pub scenario_args: Vec<String>,
}

/// What the carrier must configure, known once the Teams API listens.
#[derive(Debug, Clone)]
pub struct Setup {
    /// What runs: `certification` or `load test`.
    pub activity: &'static str,
    /// The Teams API base URL.
    pub teams_url: String,
    /// The carrier's bearer token.
    pub token: String,
    /// The webhook signing secret.
    pub webhook_secret: String,
    /// Where Teams sends notifications.
    pub webhook_url: String,
    /// Where the harness posts call legs.
    pub call_legs_url: String,
    /// The seed of this certification.
    pub seed: u64,
    /// The reporting deadline after each call's end, ms.
    pub reporting_deadline_ms: i64,
    /// The longest the certification can take, ms.
    pub time_limit_ms: u64,
    /// How long the harness waits for the carrier's API, ms.
    pub ready_timeout_ms: i64,
}

/// A finished certification.
pub struct CertifyOutcome {
    /// The report, as written.
    pub report: Report,
    /// Where `report.json` was written, or would have been if `write_error` says it was not.
    pub report_path: PathBuf,
    /// Why the report could not be written, when it could not: the verdict stands all the same.
    pub write_error: Option<oc_reports::WriteError>,
}

/// Certifies the carrier at `options.carrier_url` with `scenario`. `announce` is called once,
/// when the Teams API listens, with what the carrier must configure. Must be called inside an
/// actix `System`.
pub async fn certify(
    scenario: &Scenario,
    options: &CertifyOptions,
    announce: impl FnOnce(&Setup),
) -> Result<CertifyOutcome, RunError> {
    let started = Instant::now();
    oc_reports::check_writable(&options.out)?;
    let seed = options.seed.unwrap_or_else(rand::random);
    let mut scenario = scenario.with_seed(seed);
    scenario.start = wall_ms();
    scenario.clock = Clock::Realtime { speed: 1.0 };
    let spec = scenario.certification;
    let ready_timeout_ms = options.ready_timeout_ms.unwrap_or(spec.ready_timeout_ms);
    let credentials =
        Credentials::given_or_generated(options.token.as_ref(), options.webhook_secret.as_ref());
    let mut teams_options = TeamsOptions::loopback(scenario.start);
    teams_options.listen = options.listen;
    teams_options.public_url = options.public_url.clone();
    teams_options.tls = options.tls.clone();
    teams_options.faults = scenario.teams_faults.clone();
    teams_options.body_capture_limit = BODY_CAPTURE_LIMIT;
    // A carrier that acknowledges late keeps each notification in flight for its whole retry
    // schedule; deliveries must not queue behind each other, or its state could not converge
    // before the probes for a reason that is not NUM-STATE's.
    teams_options.webhooks.max_in_flight = 1024;
    teams_options.rate_limit = Some(mock_teams::RateLimit {
        requests_per_second: 50,
        burst: 200,
    });
    // Above every sequence an earlier certification gave these numbers: a carrier that keeps
    // its state between runs must apply this run's events [NUM-ORDER].
    teams_options.store.sequence_base = u64::try_from(scenario.start).unwrap_or(0);
    let teams = start_teams(
        &scenario,
        seed,
        teams_options,
        check_settings(&scenario, true),
        (Some(&options.out), false),
    )
    .await?;
    let carrier_url = options.carrier_url.trim_end_matches('/').to_owned();
    let sides = teams.with_carrier(carrier_url.clone(), &credentials)?;
    let numbers = inventory(&scenario, &sides.teams)?;
    let time_limit_ms = time_limit_ms(&scenario, ready_timeout_ms, numbers.len());
    let teams_url = options
        .public_url
        .clone()
        .unwrap_or_else(|| sides.teams.base_url());
    announce(&Setup {
        activity: "certification",
        teams_url: teams_url.clone(),
        token: credentials.token.clone(),
        webhook_secret: credentials.webhook_secret.clone(),
        webhook_url: format!("{carrier_url}{}", paths::NUMBER_ASSIGNMENTS),
        call_legs_url: format!("{carrier_url}{}", paths::CALL_LEGS),
        seed,
        reporting_deadline_ms: scenario.reconciliation.deadline_ms,
        time_limit_ms,
        ready_timeout_ms,
    });
    let progress = options.progress;
    let say = |line: &str| {
        if progress {
            eprintln!("{line}");
        }
    };
    say(&format!(
        "waiting up to {} s for the carrier API at {carrier_url} to answer",
        ready_timeout_ms / 1000
    ));
    let ready = wait_ready(&carrier_url, &credentials.webhook_secret, ready_timeout_ms).await;
    let (facts, summary, window, aborted, hook_failures) = match ready {
        Err(why) => {
            say(&format!("giving up: {why}"));
            let window = (scenario.start, scenario.start + 1);
            let summary = sides
                .teams
                .reconciliation(CARRIER_ID, window.0, window.1)
                .map_err(|e| RunError::Store {
                    what: "reconciliation",
                    message: e.to_string(),
                })?;
            let facts = crate::run::judge::EndFacts::default();
            (facts, summary, window, Some(why), Vec::new())
        }
        Ok(()) => {
            say(&format!(
                "the carrier answered; running the cases for {} s of traffic",
                scenario.length_ms / 1000
            ));
            let legs = Legs::new(
                seed,
                spec,
                &carrier_url,
                &credentials.webhook_secret,
                sides.teams.harness_calls(),
                sides.checker.clone().recipient(),
            );
            let driven = traffic::drive(
                &sides,
                &scenario,
                seed,
                &numbers,
                legs,
                traffic::Driving {
                    pace: Pace::WallClock,
                    watchers: Vec::new(),
                    progress,
                },
            )
            .await?;
            let legs = driven.legs;
            say("the traffic is over; waiting for the carrier to catch up");
            catch_up(&sides, &scenario, &legs, driven.records_until).await?;
            say("probing the carrier's numbers and signature checking");
            settle_within(&sides.teams, SETTLE_LIMIT).await;
            let now = sides.teams.now();
            let (facts, summary, window) =
                final_state(&sides, &scenario, &numbers, &credentials, now, true).await?;
            let hook_failures = legs.send(FinishLegs).await?;
            (facts, summary, window, None, hook_failures)
        }
    };
    let observed = take_observed(&sides).await?;
    let judgement = judge::judge(observed, facts, &sides.teams, None, window)?;
    let quality_over_time = quality_over_time(&sides.teams)?;
    sides.teams.stop().await;
    let mut report = report::build(report::Inputs {
        scenario: &scenario,
        seed,
        length_ms: scenario.length_ms,
        figures: judgement.figures,
        numbers: numbers.len() as u64,
        cycles: judgement.cycles,
        quality_over_time,
        result: judgement.result,
        summary,
        wall: started.elapsed(),
        replay: crate::replay::certify_command(options, seed),
    });
    certification_section(
        &mut report,
        Section {
            carrier_url: &carrier_url,
            teams_url: &teams_url,
            deadline_ms: scenario.reconciliation.deadline_ms,
            tolerance_ms: scenario.reconciliation.tolerance_ms,
            time_limit_ms,
            aborted,
            hook_failures,
        },
    );
    report.scenario.carrier = carrier_url.clone();
    let write_error = write_report(&report, judgement.exchanges.as_ref(), &options.out).err();
    Ok(CertifyOutcome {
        report,
        report_path: options.out.join("report.json"),
        write_error,
    })
}

/// The longest a certification can take: the wait for the carrier, the traffic (and a hook that
/// hangs until the harness gives up on it), the longest call, the records' delays, the deadline
/// and the catch-up, then the webhooks settling and the probes.
fn time_limit_ms(scenario: &Scenario, ready_timeout_ms: i64, numbers: usize) -> u64 {
    let ms = ready_timeout_ms
        + scenario.length_ms
        + records_trail_ms(scenario)
        + scenario.reconciliation.deadline_ms
        + scenario.certification.catch_up_ms;
    let end = SETTLE_LIMIT + legs::GIVING_UP_LIMIT + crate::run::probes::probes_limit(numbers);
    u64::try_from(ms).unwrap_or(0) + u64::try_from(end.as_millis()).unwrap_or(u64::MAX)
}

/// How long after the traffic the last record can become available: the longest call placed
/// at its very end (ringing included), then its record's delay and a correction's.
fn records_trail_ms(scenario: &Scenario) -> i64 {
    scenario.calls.duration.max_ms + MAX_RING_MS + 2 * scenario.calls.availability_delay.max_ms
}

/// Waits until the carrier's API answers anything over HTTP (a 404 for a number it never
/// heard of is the expected answer), at most `timeout_ms`.
pub(crate) async fn wait_ready(
    carrier_url: &str,
    secret: &str,
    timeout_ms: i64,
) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(READY_PROBE_TIMEOUT)
        .connect_timeout(READY_PROBE_TIMEOUT)
        .build()
        .map_err(|e| format!("failed to build an HTTP client: {e}"))?;
    let url = format!(
        "{carrier_url}{}{READY_PROBE_NUMBER}",
        paths::CARRIER_NUMBER_PREFIX
    );
    let deadline = Instant::now() + Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(0));
    loop {
        let answer = client
            .get(&url)
            .header(SIGNATURE_HEADER, sign(secret.as_bytes(), wall_secs(), b""))
            .send()
            .await;
        let last_error = match answer {
            Ok(_) => return Ok(()),
            Err(err) => crate::run::recorded::transport_error(&err, READY_PROBE_TIMEOUT),
        };
        if Instant::now() + Duration::from_millis(500) >= deadline {
            return Err(format!(
                "the carrier API at {carrier_url} did not answer within {} s (GET {url}: \
                 {last_error})",
                timeout_ms / 1000
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// After the traffic: keeps Teams' clock on the wall clock and posts the legs of calls still
/// going, until every leg is posted, every record is available and nothing answered is missing
/// a report, and then `quiet` longer (the carrier's poll cycle under way ends, and anything it
/// would still report is seen); or until the deadline plus the catch-up time has passed since
/// the last record.
async fn catch_up(
    sides: &Sides,
    scenario: &Scenario,
    legs: &Addr<LegsActor>,
    records_until: UnixMillis,
) -> Result<(), RunError> {
    let spec = scenario.certification;
    let last_record = scenario.start + scenario.length_ms + records_trail_ms(scenario);
    let records_until = records_until.min(last_record);
    let limit = last_record + scenario.reconciliation.deadline_ms + spec.catch_up_ms;
    let mut caught_up_since: Option<UnixMillis> = None;
    loop {
        let now = wall_ms();
        if sides.teams.advance_to(now).is_err() {
            break;
        }
        legs.send(PostDueLegs(now)).await?;
        let missing = sides
            .teams
            .reconciliation(
                CARRIER_ID,
                scenario.start - oc_protocol::timestamp::DAY_MS,
                now + oc_protocol::timestamp::DAY_MS,
            )
            .map_or(u64::MAX, |r| r.counts.missing);
        let caught_up = legs.send(PendingLegs).await? == 0 && now >= records_until && missing == 0;
        caught_up_since = if caught_up {
            caught_up_since.or(Some(now))
        } else {
            None
        };
        let done = caught_up_since.is_some_and(|since| now - since >= spec.quiet_ms);
        if done || now >= limit {
            return Ok(());
        }
        tokio::time::sleep(CATCH_UP_STEP).await;
    }
    Ok(())
}

/// What the certification section is made of.
struct Section<'a> {
    carrier_url: &'a str,
    teams_url: &'a str,
    deadline_ms: i64,
    tolerance_ms: i64,
    time_limit_ms: u64,
    aborted: Option<String>,
    hook_failures: Vec<String>,
}

/// Judges the cases and sets the verdict: certified only when every case passed and the
/// harness kept the protocol itself.
fn certification_section(report: &mut Report, section: Section<'_>) {
    let mut cases = cases::judge(&report.rules, &report.thresholds);
    if let Some(why) = &section.aborted {
        for case in &mut cases {
            case.outcome = Outcome::NotExercised;
            case.summary = format!("not run: {why}");
            case.evidence.clear();
        }
    }
    if !section.hook_failures.is_empty()
        && let Some(case) = cases.iter_mut().find(|c| c.id == "duration-completeness")
    {
        let shown = section.hook_failures.iter().take(oc_reports::MAX_EVIDENCE);
        case.evidence.extend(shown.map(|failure| Evidence {
            note: format!("the harness could not hand the carrier its legs: {failure}"),
            exchanges: Vec::new(),
        }));
        case.summary.push_str(&format!(
            "; {} of the call-legs hook failed",
            section.hook_failures.len()
        ));
    }
    let harness_broke = report
        .rules
        .iter()
        .any(|r| cases::is_teams_rule(r.rule) && r.outcome == Outcome::Failed)
        || report.verdict == Verdict::HarnessError;
    let certified = section.aborted.is_none()
        && !harness_broke
        && cases.iter().all(|c| c.outcome == Outcome::Passed);
    report.verdict = if harness_broke {
        Verdict::HarnessError
    } else if certified {
        Verdict::Passed
    } else {
        Verdict::Failed
    };
    report.certification = Some(Certification {
        verdict: if certified {
            CertificationVerdict::Certified
        } else {
            CertificationVerdict::NotCertified
        },
        carrier_url: section.carrier_url.to_owned(),
        teams_url: section.teams_url.to_owned(),
        reporting_deadline_ms: section.deadline_ms,
        tolerance_ms: section.tolerance_ms,
        time_limit_ms: section.time_limit_ms,
        aborted: section.aborted,
        cases,
    });
}

/// A credential from the operating system's randomness (not the scenario's seed: a secret
/// must not be derivable from a seed printed in the report).
pub(crate) fn generated_secret(prefix: &str) -> String {
    let bytes: [u8; 24] = rand::random();
    format!("{prefix}_{}", oc_protocol::signing::hex(&bytes))
}
