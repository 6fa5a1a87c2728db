//! `oc-harness`: run scenarios, list the conformance rules, check scenario files.
//!
//! Exit codes: 0 passed, 1 a rule or threshold failed, 2 bad input, 3 could not run (or the
//! checker disagreed with the mock carrier's ground truth: a harness bug).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use oc_harness::run::{RunOptions, exit_code, run};
use oc_harness::scenario;
use oc_harness::{EXIT_BAD_INPUT, EXIT_COULD_NOT_RUN};
use oc_reports::{Outcome, Report, Verdict};

/// The Operator Connect conformance harness: simulates Teams and a carrier, checks the
/// protocol and how well call durations reconcile.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario in-process: mock Teams and mock carrier over loopback HTTP, then judge.
    ///
    /// Writes DIR/report.json and prints a summary. Exit code 0 when the run shows exactly what
    /// the scenario expects (no failed rule, unless the scenario expects some), 1 otherwise,
    /// 2 for a bad scenario, 3 when it could not run or the checker disagreed with the mock
    /// carrier's ground truth.
    Run {
        /// The scenario file, e.g. scenarios/smoke.toml.
        scenario: PathBuf,
        /// Use this seed instead of the scenario's.
        #[arg(long)]
        seed: Option<u64>,
        /// Where to write the report [default: oc-harness-out/<scenario name>].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Run only this much simulated time (e.g. 6h), to try a long scenario quickly.
        #[arg(long)]
        length: Option<String>,
        /// No progress output.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Print the conformance rule catalogue.
    Rules {
        /// As JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Scenario files.
    Scenario {
        #[command(subcommand)]
        command: ScenarioCommand,
    },
}

#[derive(Subcommand)]
enum ScenarioCommand {
    /// Check a scenario file: every error with file:line:column, or a summary of the scenario.
    Check {
        /// The scenario file.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                "warn,actix_server=error,mock_carrier=error,mock_teams=error".into()
            }),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match cli.command {
        Command::Rules { json } => rules(json),
        Command::Scenario {
            command: ScenarioCommand::Check { file },
        } => check(&file),
        Command::Run {
            scenario,
            seed,
            out,
            length,
            quiet,
        } => run_command(&scenario, seed, out, length.as_deref(), quiet),
    }
}

fn rules(json: bool) -> ExitCode {
    let catalogue = oc_protocol::rules::catalogue();
    if json {
        match serde_json::to_string_pretty(catalogue) {
            Ok(text) => println!("{text}"),
            Err(err) => {
                eprintln!("error: {err}");
                return ExitCode::from(EXIT_COULD_NOT_RUN);
            }
        }
        return ExitCode::SUCCESS;
    }
    println!(
        "{:<15} {:<7} {:<8} {:<9} statement",
        "rule", "level", "party", "section"
    );
    for rule in catalogue {
        println!(
            "{:<15} {:<7} {:<8} {:<9} {}",
            rule.id.as_str(),
            rule.severity.as_str(),
            rule.party.as_str(),
            rule.sections.join(", "),
            rule.statement
        );
    }
    ExitCode::SUCCESS
}

fn check(file: &std::path::Path) -> ExitCode {
    match scenario::load(file) {
        Ok(scenario) => {
            println!("{}", scenario::summary(&scenario));
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("{err}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

fn run_command(
    file: &std::path::Path,
    seed: Option<u64>,
    out: Option<PathBuf>,
    length: Option<&str>,
    quiet: bool,
) -> ExitCode {
    let scenario = match scenario::load(file) {
        Ok(scenario) => scenario,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let length_ms = match length.map(scenario::parse_duration).transpose() {
        Ok(length) => length,
        Err(err) => {
            eprintln!("error: --length: {err}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let options = RunOptions {
        seed,
        out: out.unwrap_or_else(|| PathBuf::from("oc-harness-out").join(&scenario.name)),
        progress: !quiet,
        length_ms,
    };
    let system = actix_rt::System::new();
    match system.block_on(run(&scenario, &options)) {
        Ok(outcome) => {
            print_summary(&outcome.report, &outcome.report_path);
            ExitCode::from(exit_code(&outcome.report))
        }
        Err(err) => {
            eprintln!("error: could not run {}: {err}", file.display());
            ExitCode::from(EXIT_COULD_NOT_RUN)
        }
    }
}

fn print_summary(report: &Report, path: &std::path::Path) {
    let verdict = match report.verdict {
        Verdict::Passed => "PASSED",
        Verdict::Failed => "FAILED",
        Verdict::HarnessError => "HARNESS ERROR (the checker disagreed with ground truth)",
    };
    println!("{} — {verdict}", report.scenario.name);
    let c = &report.counts;
    println!(
        "  {} numbers, {} events, {} calls ({} answered), {} exchanges, {} poll cycles",
        c.numbers, c.events, c.calls, c.answered_calls, c.exchanges, c.cycles
    );
    for rule in &report.rules {
        if rule.outcome == Outcome::Failed {
            println!(
                "  {} {} ({}): {}",
                if rule.severity == oc_protocol::Severity::Must {
                    "FAIL"
                } else {
                    "WARN"
                },
                rule.rule,
                rule.failures,
                rule.summary
            );
        }
    }
    let e = &report.expectation;
    if !e.met {
        let list = |rules: &[oc_protocol::RuleId]| {
            if rules.is_empty() {
                "none".to_owned()
            } else {
                rules
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        println!(
            "  expected failures: {}; actual: {}",
            list(&e.expected_failures),
            list(&e.actual_failures)
        );
    }
    if let Some(r) = &report.reconciliation {
        println!(
            "  reconciliation: {} matched, {} drift, {} missing, {} unexpected; match rate {}; drift p50 {} ms, p99 {} ms; minutes Teams {:.1}, carrier {:.1}",
            r.counts.matched,
            r.counts.drift,
            r.counts.missing,
            r.counts.unexpected,
            r.match_rate.map_or("n/a".into(), |m| format!("{:.4}", m)),
            r.drift_ms.p50.map_or("n/a".into(), |v| v.to_string()),
            r.drift_ms.p99.map_or("n/a".into(), |v| v.to_string()),
            r.minutes.teams,
            r.minutes.carrier
        );
    }
    for t in &report.thresholds {
        if !t.passed {
            println!(
                "  threshold {} failed: limit {}, measured {:?}",
                t.name, t.limit, t.measured
            );
        }
    }
    if let Some(a) = &report.accuracy
        && a.disagreement_count > 0
    {
        println!(
            "  the checker disagreed with ground truth on {} calls:",
            a.disagreement_count
        );
        let class = |c: Option<oc_protocol::ReconClass>| c.map_or("none", |c| c.as_str());
        for d in &a.disagreements {
            println!(
                "    {}: Teams says {}, ground truth says {}",
                d.call_id,
                class(d.teams),
                class(d.truth)
            );
        }
    }
    if !report.conservation.holds {
        println!(
            "  conservation broken: {:?}",
            report.conservation.violations
        );
    }
    println!("  report: {}", path.display());
    if report.verdict != Verdict::Passed {
        println!("  replay: {}", report.scenario.replay);
    }
}
