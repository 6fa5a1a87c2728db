//! `mock-teams`: the Teams side of Operator Connect as a sandbox a carrier can develop against.
//!
//! Exit codes: 0 stopped cleanly, 2 bad input (configuration, flags, TLS files), 3 could not run
//! (port).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};
use mock_teams::config::ServeConfig;
use mock_teams::traffic::TrafficGenerator;
use mock_teams::{CarrierSpec, MockTeams, StoreSettings, TeamsOptions, WebhookTarget};

/// Exit code: bad input.
const EXIT_BAD_INPUT: u8 = 2;
/// Exit code: could not run.
const EXIT_COULD_NOT_RUN: u8 = 3;

/// The Teams side of the Operator Connect data exchange, as a sandbox: it serves the Teams API
/// (numbers, CDR and quality feeds, call durations, reconciliation) and sends signed
/// number-assignment webhooks to the configured carriers.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the Teams API until Ctrl-C.
    ///
    /// The configuration file (TOML) names the listen address (and optional TLS certificate and
    /// key), the carriers (bearer token, webhook URL and secret), reconciliation settings,
    /// injected faults, an optional rate limit and optional seeded background traffic. See
    /// mock-teams/teams.example.toml for every key.
    ///
    /// Links (nextLink, deltaLink) start with `public_url`, else the bound address; the
    /// request's Host and X-Forwarded-Host are used only with `trust_forwarded_headers = true`
    /// (behind a proxy that sets them). `[limits]` bounds what clients can make it hold:
    /// `body_budget_bytes` of request bodies in flight over all requests (default 64 MiB),
    /// `connections_per_peer` open connections per client address (default 1024), and
    /// `body_deadline_ms` for a body to arrive (default 30000); past a bound, 503 with
    /// Retry-After.
    Serve {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// Listen here instead of the file's `listen`.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,actix_server=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match cli.command {
        Command::Serve { config, listen } => serve(config, listen),
    }
}

fn serve(path: PathBuf, listen: Option<std::net::SocketAddr>) -> ExitCode {
    let config = match ServeConfig::load(&path) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: failed to start the runtime: {err}");
            return ExitCode::from(EXIT_COULD_NOT_RUN);
        }
    };
    runtime.block_on(run(config, listen))
}

async fn run(config: ServeConfig, listen: Option<std::net::SocketAddr>) -> ExitCode {
    let wall_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0));
    let mut options = TeamsOptions::loopback(config.start_time_or(wall_ms));
    options.listen = listen.unwrap_or(config.listen);
    options.public_url = config.public_url.clone();
    options.trust_forwarded_headers = config.trust_forwarded_headers;
    options.limits = config.limits;
    options.workers = config.workers;
    options.faults = config.faults.clone();
    options.tls = config.tls.as_ref().map(|tls| tls.files());
    options.rate_limit = config.rate_limit;
    options.store = StoreSettings {
        seed: config.seed,
        tolerance_ms: config.reconciliation.tolerance_ms,
        reporting_deadline_ms: config.reconciliation.reporting_deadline_ms,
        ..StoreSettings::default()
    };
    let teams = match MockTeams::start(options).await {
        Ok(teams) => Arc::new(teams),
        Err(err) => {
            match std::error::Error::source(&err) {
                Some(source) => eprintln!("error: {err}: {source}"),
                None => eprintln!("error: {err}"),
            }
            // A TLS file that cannot be used is the configuration's fault, not the machine's.
            return ExitCode::from(if matches!(err, mock_teams::StartError::Tls { .. }) {
                EXIT_BAD_INPUT
            } else {
                EXIT_COULD_NOT_RUN
            });
        }
    };
    for carrier in &config.carriers {
        let webhook = carrier
            .webhook_url
            .clone()
            .zip(carrier.webhook_secret.clone())
            .map(|(url, secret)| WebhookTarget { url, secret });
        if let Err(err) = teams.add_carrier(CarrierSpec {
            id: carrier.id.clone(),
            token: carrier.token.clone(),
            webhook,
        }) {
            eprintln!("error: carrier {}: {err}", carrier.id);
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut traffic_task = None;
    if let Some(traffic) = config.traffic.clone() {
        let carrier = traffic
            .carrier
            .clone()
            .unwrap_or_else(|| config.carriers[0].id.clone());
        match TrafficGenerator::setup(&teams, &carrier, traffic, config.seed) {
            Ok(generator) => {
                traffic_task = Some(tokio::spawn(generator.run(teams.clone(), stop_rx)));
            }
            Err(err) => {
                eprintln!("error: background traffic: {err}");
                return ExitCode::from(EXIT_BAD_INPUT);
            }
        }
    }
    // Ctrl-C is caught before anyone is told where the server is: one sent as soon as the URL
    // was read stops it gracefully instead of killing it.
    let ctrl_c = ctrl_c();
    // The one line on stdout: where to point a carrier (scripts read it).
    println!("mock-teams: serving the Teams API at {}", teams.base_url());
    tracing::info!(
        carriers = config.carriers.len(),
        traffic = config.traffic.is_some(),
        "Ctrl-C stops it"
    );
    if let Err(err) = ctrl_c.await {
        tracing::error!(%err, "cannot wait for Ctrl-C; stopping");
    }
    tracing::info!("stopping: finishing requests in flight");
    let _ = stop_tx.send(true);
    if let Some(task) = traffic_task {
        let _ = task.await;
    }
    match Arc::try_unwrap(teams) {
        Ok(teams) => teams.stop().await,
        Err(_) => tracing::warn!("the server is still shared; exiting without draining"),
    }
    ExitCode::SUCCESS
}

/// Catches Ctrl-C from now on (on Unix, the handler is installed here, not when first awaited);
/// the future completes when it comes.
fn ctrl_c() -> impl std::future::Future<Output = std::io::Result<()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt());
        async move {
            interrupt?.recv().await;
            Ok(())
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c()
    }
}
