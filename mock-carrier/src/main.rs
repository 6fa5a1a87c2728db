//! `mock-carrier`: the mock carrier as a sandbox server, and the list of its profiles.
//!
//! Exit codes: 0 ok; 2 bad input (the configuration or the flags); 3 could not run (the listen
//! address could not be bound, or the runtime could not start).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use mock_carrier::{CarrierConfig, GROUND_TRUTH_PATH, MockCarrier, Profile, StartError};

/// Everything went as asked.
const EXIT_OK: u8 = 0;
/// The configuration or the flags are wrong.
const EXIT_BAD_INPUT: u8 = 2;
/// The carrier could not run (port taken, runtime).
const EXIT_COULD_NOT_RUN: u8 = 3;

/// A carrier for the Operator Connect harness: right by default, drifting or misbehaving on
/// request, and reporting exactly what it did (its ground truth).
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the carrier API and run the client loop against a Teams API until Ctrl-C.
    ///
    /// Serves the webhook, the state probe, the call-legs hook and GET /admin/ground-truth;
    /// resynchronises numbers from Teams, then polls the CDR and quality feeds and reports
    /// durations every client.poll_interval_ms, with wall-clock time as simulated time. On
    /// Ctrl-C it stops gracefully and writes the ground truth to ground_truth_file (default
    /// oc-harness-out/sandbox/ground-truth.json).
    ///
    /// [limits] bounds what clients can make it hold: body_budget_bytes of request bodies in
    /// flight over all requests (default 64 MiB), connections_per_peer open connections per
    /// client address (default 2048) and body_deadline_ms for a body to arrive (default
    /// 10000); past a bound, 503 with Retry-After.
    Serve {
        /// The TOML configuration (see mock-carrier/carrier.example.toml).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// List the misbehaviour profiles, each with the one rule it breaks.
    Profiles,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Profiles => {
            print_profiles();
            ExitCode::from(EXIT_OK)
        }
        Command::Serve { config } => serve_command(&config),
    }
}

fn print_profiles() {
    println!("{:<16} {:<16} what it does", "profile", "breaks");
    for profile in Profile::ALL {
        let rule = profile.rule().map_or("-", |r| r.as_str());
        println!(
            "{:<16} {:<16} {}",
            profile.name(),
            rule,
            profile.behaviour()
        );
    }
}

fn serve_command(path: &std::path::Path) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let mut config = match CarrierConfig::load(path) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    if config.client.key_prefix.is_none() {
        // A restarted sandbox must not reuse the keys of its previous run with other bodies.
        config.client.key_prefix = Some(format!("mc-{:x}", wall_clock_ms()));
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: failed to start the runtime: {err}");
            return ExitCode::from(EXIT_COULD_NOT_RUN);
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(err) => {
            eprintln!("error: {err:#}");
            let code = match err.downcast_ref::<StartError>() {
                Some(StartError::Config { .. }) => EXIT_BAD_INPUT,
                _ => EXIT_COULD_NOT_RUN,
            };
            ExitCode::from(code)
        }
    }
}

async fn serve(config: CarrierConfig) -> anyhow::Result<()> {
    let interval = Duration::from_millis(config.client.poll_interval_ms);
    let truth_file = config.ground_truth_file.clone();
    let carrier = MockCarrier::start(config)?;
    tracing::info!(
        "carrier API at {url}; ground truth at {url}{GROUND_TRUTH_PATH}",
        url = carrier.base_url()
    );
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut resynced = false;
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => break,
            _ = ticks.tick() => {}
        }
        if !resynced {
            tokio::select! {
                _ = &mut ctrl_c => break,
                result = carrier.resync() => match result {
                    Ok(_) => resynced = true,
                    Err(err) => tracing::warn!(error = %err, "resync failed; trying again next cycle"),
                },
            }
        }
        tokio::select! {
            _ = &mut ctrl_c => break,
            result = carrier.poll_cycle(wall_clock_ms()) => match result {
                Ok(outcome) => tracing::info!(
                    cdrs = outcome.cdr_records,
                    quality = outcome.quality_records,
                    accepted = outcome.accepted,
                    rejected = outcome.rejected,
                    pending = outcome.pending,
                    "poll cycle"
                ),
                Err(err) => tracing::warn!(error = %err, "poll cycle failed; continuing next cycle"),
            },
        }
        // A long-running carrier keeps the calls still in play, not every call it saw.
        let retired = carrier.retire_settled(wall_clock_ms());
        if retired > 0 {
            tracing::info!(
                retired,
                held = carrier.ledger_calls(),
                "settled calls retired"
            );
        }
    }
    tracing::info!("stopping");
    let truth = carrier.ground_truth();
    carrier.stop().await;
    if let Some(path) = truth_file {
        let json =
            serde_json::to_vec_pretty(&truth).context("failed to encode the ground truth")?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("failed to create {}", dir.display()))?;
        }
        std::fs::write(&path, json)
            .with_context(|| format!("failed to write the ground truth to {}", path.display()))?;
        tracing::info!(path = %path.display(), calls = truth.calls.len(), "ground truth written");
    }
    Ok(())
}

/// Wall-clock Unix ms: `serve` runs simulated time as real time.
fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
