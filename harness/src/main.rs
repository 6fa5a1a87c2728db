//! `oc-harness`: run scenarios, certify a carrier, reconcile real exports, list the conformance
//! rules, check scenario files.
//!
//! Exit codes: 0 passed (certified, reconciled), 1 a rule or threshold failed (not certified,
//! calls that do not reconcile), 2 bad input, 3 could not run (or the harness broke the protocol
//! itself, or the checker disagreed with the mock carrier's ground truth: a harness bug).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use oc_harness::certify;
use oc_harness::load;
use oc_harness::reconcile;
use oc_harness::run::{RunError, RunOptions, exit_code, run};
use oc_harness::scenario;
use oc_harness::{EXIT_BAD_INPUT, EXIT_COULD_NOT_RUN};
use oc_reports::Report;

/// mimalloc rather than the system allocator: a run allocates and frees small objects on
/// several threads at a high rate (parsed records, exchanges), where glibc's malloc spent about
/// 40 % of the CPU time of `scripts/bench-scale.sh 1d` and its per-thread arenas held memory.
#[cfg(not(feature = "heap-by-part"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The measuring build (`--features heap-by-part`, `scripts/bench-checker-memory.sh`): the
/// same allocator, with the heap each part of the harness holds counted (16 bytes more per
/// block, so its peak RSS is not the product's).
#[cfg(feature = "heap-by-part")]
#[global_allocator]
static ALLOCATOR: oc_heap_meter::CountingAllocator<mimalloc::MiMalloc> =
    oc_heap_meter::CountingAllocator(mimalloc::MiMalloc);

/// Turns transparent huge pages off for this process, before a run maps most of its memory.
///
/// A run's heap churns: each tick's records, pages and batches are freed and made again, and
/// mimalloc hands freed spans back to the kernel between ticks. With huge pages (this machine's
/// kernel gives them to mimalloc's `madvise`d arenas) every span touched again is a fresh 2 MiB
/// page the kernel clears whole: `clear_page_erms` was 12.6 % of a 3-day run's samples, all
/// on the thread that applies ticks. Without them (4 KiB pages, cleared as touched), the
/// 3-day run spends about half the system time and holds a quarter less memory
/// (README.md, Performance). `reconcile` turns them off too, though it frees little: on this
/// project's machine (a VM whose balloon device takes back free memory in 2 MiB blocks, so a
/// fresh huge page costs the host's faults as well as its clearing) they cost more than they
/// save. The 10 M × 10 M benchmark files, three alternating pairs: 1.45 to 1.51 s of system time
/// without them against 2.70 to 4.51 s with them, 3.08 to 3.10 s wall against 3.60 to 4.60 s,
/// peak RSS 1.06 to 1.09 GB against 1.22 to 1.28 GB (an earlier day with little free memory
/// gave the opposite, README.md says when). The other commands keep the kernel's setting.
fn without_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(err) = rustix::thread::disable_transparent_huge_pages(true) {
        // Only speed is at stake (a kernel without THP, or a sandbox refusing prctl).
        tracing::debug!(%err, "transparent huge pages stay as the kernel has them");
    }
}

/// `println!` that does not panic when stdout is closed (`oc-harness rules | head`): what
/// cannot be printed is dropped, and the exit code still says how the command went.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

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
        /// Run only the first part of the scenario (e.g. 6h), to try a long scenario quickly; at
        /// most the scenario's own length.
        #[arg(long)]
        length: Option<String>,
        /// Also write the run as both sides' month-end files, for `oc-harness reconcile`:
        /// DIR/teams/getPstnCalls-0001.json, -0002.json… (Teams' call log as Microsoft Graph's
        /// getPstnCalls pages, exactly what mock Teams serves the carrier over the run, chained
        /// by @odata.nextLink; a run over 90 days is split into 90-day windows, as Graph
        /// requires) and DIR/carrier/cdrs.csv (every call the carrier's switch recorded:
        /// call_id,calling_number,called_number,connect_time,end_time,duration_ms). Written at
        /// the end, so the run keeps every call until then (about 380 bytes a call) instead of
        /// letting each go once it is final.
        #[arg(long, value_name = "DIR")]
        export: Option<PathBuf>,
        /// Play only shard I of N (I from 0 to N − 1, as Kubernetes' JOB_COMPLETION_INDEX): a
        /// fixed part of the scenario's numbers (whole tenants when it has at least N, else
        /// blocks of 4 numbers dealt in turn), every random choice seeded per block, so that
        /// the N shards together are exactly the whole run. The report goes to
        /// OUT/shard-I-of-N, with what `oc-harness merge` needs; the exit code is 0 once it is
        /// written (the verdict is the merged report's), 3 if it could not run or the checker
        /// disagreed with the ground truth.
        #[arg(long, value_name = "I/N", conflicts_with = "shards")]
        shard: Option<String>,
        /// Play shard JOB_COMPLETION_INDEX (the environment variable a Kubernetes Indexed Job
        /// sets) of N, as --shard does; the environment variable OC_SHARDS=N does the same
        /// when neither flag is given.
        #[arg(long, value_name = "N")]
        shards: Option<u32>,
        /// No progress output.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Merge the reports of a sharded run (`run --shard I/N`) into the whole run's report.
    ///
    /// Reads each DIR/report.json (and DIR/evidence.ndjson), refuses shards of different
    /// scenario files, seeds, lengths or harness versions, a missing or repeated shard and a
    /// shard that did not finish, then adds the counts, classes, confusion matrix and
    /// conservation, reconciliation, drift and latency histograms (HdrHistogram, exactly),
    /// and each rule's failures, counts and evidence (at most 20 items per rule, as a run
    /// keeps), and judges the rules, thresholds and expectation again on the merged figures.
    /// Writes report.json, junit.xml, summary.md, report.html and evidence.ndjson to --out and
    /// prints the summary. Exit codes as `run`: 0 passed, 1 failed, 2 bad input (shards that
    /// do not merge), 3 the report could not be written or a shard's checker disagreed with
    /// the ground truth.
    Merge {
        /// The shards' report folders (each holding report.json), e.g. out/scale/shard-*.
        #[arg(required = true, num_args = 1.., value_name = "DIR")]
        dirs: Vec<PathBuf>,
        /// Where to write the merged report.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Certify a carrier's Operator Connect integration over the wire.
    ///
    /// The harness serves the Teams API on --listen and prints what the carrier must configure:
    /// the Teams base URL, its bearer token and the webhook secret. It waits (bounded) for the
    /// carrier API at --carrier-url to answer, then runs the certification cases in real time:
    /// number assignments sent as signed webhooks (redelivered, reordered, forged, replayed),
    /// CDR and quality feeds to read (late records, corrections, 429s), and call legs posted to
    /// the carrier's POST /oc/v1/test/call-legs whose durations it must report within the
    /// suite's deadline. Writes the certification report (report.json, summary.md, junit.xml,
    /// report.html, evidence.ndjson) to --out.
    ///
    /// The default suite takes about 5 minutes against a correct carrier (--quick: about 2);
    /// every wait is bounded, and the report says the limit. Exit code 0 certified, 1 not
    /// certified, 2 bad flags or scenario, 3 could not run (the address is taken, or the
    /// harness broke the protocol itself).
    Certify(CertifyArgs),
    /// Reconcile a carrier's CDR export with Teams' call log, call by call.
    ///
    /// Teams' side is Microsoft Graph's call log (`getPstnCalls` rows, `pstnCallLogRow`), as
    /// Graph JSON pages (one file per page, concatenated pages, or a JSON array of pages),
    /// NDJSON of rows, or the CSV of `m365 teams report pstncalls --output csv`, told apart by
    /// their content. The carrier's side is its CDR CSV, read through --carrier-format (the
    /// columns, units, timestamp format and zone; see docs/carrier-formats/README.md). Any input
    /// may be gzip-compressed.
    ///
    /// Calls are matched by call id (a repeated id by the nearest start time), and, for carrier
    /// rows without one, by calling and called number with the connect time within --tolerance.
    /// Each call gets one class: matched (durations within --tolerance), drift (beyond it;
    /// signed carrier − Teams' endDateTime − startDateTime), missing (Teams only) or unexpected
    /// (carrier only). Teams rows whose callDurationSource is `microsoft` (the carrier's report
    /// was missing or late) are counted, and `operator` rows whose billed duration is neither
    /// the carrier CDR's duration rounded down nor up to a whole second.
    ///
    /// Writes report.json, summary.md, report.html and mismatches.csv (one line per call not
    /// matched) into --out, and prints a summary. A malformed row is reported with its
    /// file:line:column and counted, never skipped silently.
    ///
    /// Exit code 0 when every call matched, no billed duration differs and every row was read;
    /// 1 when something does not reconcile (the files say what); 2 for a bad flag, format file
    /// or input file, or more rejected rows than --max-errors; 3 when the output cannot be
    /// written.
    Reconcile(ReconcileArgs),
    /// Load-test a carrier's Operator Connect integration over the wire, for CI.
    ///
    /// The harness serves the Teams API on --listen, prints what the carrier must configure (as
    /// certify does), waits (bounded) for the carrier API at --carrier-url, then plays the load
    /// plan in real time: open-model executors of number events (signed notifications) and
    /// calls (CDR and quality records on the feeds, legs posted to the carrier's hook), each
    /// with k6-style stages; iterations that cannot start on time are dropped and counted;
    /// latency is measured from each request's intended start. Writes DIR/metrics.hlog (an
    /// HdrHistogram interval log), DIR/metrics.ndjson (one line per interval) and the report
    /// (report.json, junit.xml with one test case per threshold and rule, summary.md,
    /// report.html, evidence.ndjson). Exit code 0 when every threshold held, 1 otherwise,
    /// 2 bad plan or flags, 3 could not run.
    Load(LoadArgs),
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
    /// Check a scenario file or a load plan (a file with [executors]): every error with
    /// file:line:column, or a summary.
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
            export,
            shard,
            shards,
            quiet,
        } => run_command(
            &scenario,
            RunFlags {
                seed,
                out,
                length,
                export,
                shard,
                shards,
                quiet,
            },
        ),
        Command::Merge { dirs, out } => merge_command(&dirs, &out),
        Command::Certify(args) => certify_command(args),
        Command::Reconcile(args) => reconcile_command(args),
        Command::Load(args) => load_command(args),
    }
}

/// The flags of `load`.
#[derive(clap::Args)]
struct LoadArgs {
    /// The carrier API's base URL: notifications go to
    /// URL/oc/v1/notifications/number-assignments, legs to URL/oc/v1/test/call-legs.
    #[arg(long, value_name = "URL")]
    carrier_url: String,
    /// The load plan, e.g. scenarios/load/smoke.toml.
    #[arg(long, value_name = "FILE")]
    plan: PathBuf,
    #[command(flatten)]
    serve: ServeArgs,
    /// The seed of every random choice [default: the plan's].
    #[arg(long)]
    seed: Option<u64>,
    /// How long to wait for the carrier API to answer, e.g. 2m.
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    ready_timeout: String,
    /// Where to write the metrics and the report [default: oc-harness-out/load/<plan name>].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Keep no exchange log (exchanges.ndjson.gz, every exchange with its bodies, about 9 MB
    /// a minute at 1,000 webhooks a second). The checker still judges every exchange, but
    /// evidence.ndjson stays empty, and report.json cites only the exchanges a rule named as
    /// it judged: not the exchanges that carried a call never reported, say. For loads near
    /// the generator's ceiling (the log takes about a sixth of its CPU there) or a CI disk
    /// too small for the log.
    #[arg(long)]
    no_exchange_log: bool,
    /// No progress output.
    #[arg(long, short)]
    quiet: bool,
}

/// The measuring build's figures (`scripts/bench-checker-memory.sh`), on standard error.
#[cfg(feature = "heap-by-part")]
fn report_checker_heap() {
    let (now, peak) = oc_heap_meter::held(oc_heap_meter::Part::Checker);
    eprintln!("heap held by the checker: {now} bytes at the end, {peak} bytes at the peak");
}

fn load_command(args: LoadArgs) -> ExitCode {
    let plan = match load::load_plan(&args.plan) {
        Ok(plan) => plan,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    if let Err(why) = certify::check_carrier_url(&args.carrier_url) {
        eprintln!("error: --carrier-url: {why}");
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    let served = match args.serve.checked() {
        Ok(served) => served,
        Err(code) => return code,
    };
    let ready_timeout_ms = match scenario::parse_duration(&args.ready_timeout) {
        Ok(ms) => ms,
        Err(err) => {
            eprintln!("error: --ready-timeout: {err}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let options = load::LoadOptions {
        carrier_url: args.carrier_url,
        out: args
            .out
            .unwrap_or_else(|| PathBuf::from("oc-harness-out/load").join(&plan.name)),
        plan_file: args.plan,
        listen: served.listen,
        public_url: served.public_url,
        tls: served.tls,
        token: served.token,
        webhook_secret: served.webhook_secret,
        seed: args.seed,
        ready_timeout_ms,
        progress: !args.quiet,
        exchange_log: !args.no_exchange_log,
    };
    let system = actix_rt::System::new();
    let outcome = system.block_on(load::load(&plan, &options, print_setup));
    #[cfg(feature = "heap-by-part")]
    report_checker_heap();
    match outcome {
        Ok(outcome) => {
            print_report(
                &outcome.report,
                outcome
                    .write_error
                    .is_none()
                    .then_some(&outcome.report_path),
            );
            match outcome.write_error {
                None => ExitCode::from(exit_code(&outcome.report)),
                Some(err) => {
                    eprintln!(
                        "error: the verdict above stands, but the results could not be written: {err}"
                    );
                    ExitCode::from(EXIT_COULD_NOT_RUN)
                }
            }
        }
        Err(err) => refused_flag(&err).unwrap_or_else(|| {
            eprintln!("error: could not run the load test: {err}");
            ExitCode::from(EXIT_COULD_NOT_RUN)
        }),
    }
}

/// The flags of `reconcile`.
#[derive(clap::Args)]
struct ReconcileArgs {
    /// Teams' call log: Graph JSON pages, NDJSON rows or the m365 CLI's CSV (gzip or not).
    #[arg(long, value_name = "FILE", num_args = 1.., required_unless_present = "graph_url")]
    teams: Vec<PathBuf>,
    /// Pull Teams' call log live from Microsoft Graph at this origin (e.g.
    /// https://graph.microsoft.com; mock-teams serves it too) over --from..--to, both
    /// required: 90-day windows, nextLinks followed, 429/503 waited out. The pages are saved to
    /// DIR/graph-pages/ and reconciled with any --teams files. The bearer token comes from
    /// --graph-token-file or the OC_GRAPH_TOKEN environment variable.
    #[arg(long, value_name = "URL", requires_all = ["from", "to"])]
    graph_url: Option<String>,
    /// A file holding the bearer token for --graph-url (its first line; keep it out of shell
    /// history).
    #[arg(long, value_name = "FILE", requires = "graph_url")]
    graph_token_file: Option<PathBuf>,
    /// The carrier's CDR export: CSV (gzip or not), as --carrier-format describes it.
    #[arg(long, value_name = "FILE", num_args = 1.., required = true)]
    carrier: Vec<PathBuf>,
    /// The carrier CSV's format file (TOML) [default: the CSV of `oc-harness run --export`,
    /// docs/carrier-formats/oc-harness.toml].
    #[arg(long, value_name = "FORMAT.toml")]
    carrier_format: Option<PathBuf>,
    /// The largest duration difference still matched, and the widest connect-time gap of a
    /// match by numbers (e.g. 500ms, 1s, 2m).
    #[arg(long, value_name = "DURATION", default_value = "1s")]
    tolerance: String,
    /// Only calls that start at or after this time (RFC 3339, or a date: its midnight UTC),
    /// on both sides (Teams' startDateTime, the carrier's connect time).
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// Only calls that start before this time.
    #[arg(long, value_name = "TIME")]
    to: Option<String>,
    /// Only Teams rows of this operator (Graph's `operator`, ASCII case ignored).
    #[arg(long, value_name = "NAME")]
    operator: Option<String>,
    /// Where to write report.json, summary.md, report.html and mismatches.csv.
    #[arg(long, value_name = "DIR", default_value = "oc-harness-out/reconcile")]
    out: PathBuf,
    /// Stop with exit code 2 once more rows than this are rejected [default: no limit; every
    /// rejected row is counted and the first 1000 listed].
    #[arg(long, value_name = "N")]
    max_errors: Option<u64>,
    /// How many numbers the report lists by absolute gap.
    #[arg(long, value_name = "N", default_value_t = 20)]
    top: usize,
    /// Parsing threads [default: the machine's cores].
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
}

fn reconcile_command(mut args: ReconcileArgs) -> ExitCode {
    without_huge_pages();
    // The memory freed between phases (Teams' row vectors before the carrier's, the carrier's
    // before the output's lines) kept for reuse, not handed back and faulted in again, cleared:
    // on the 10 M × 10 M benchmark files 26,000 fewer page faults (294,000 → 268,000), and
    // 1.4 to 1.7 s of system time against 1.65 to 3.05 s, before any thread starts.
    oc_heap_meter::settings::keep_freed_memory();
    let tolerance_ms = match scenario::parse_duration(&args.tolerance) {
        Ok(ms) => ms,
        Err(err) => {
            eprintln!("error: --tolerance: {err}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let mut teams = std::mem::take(&mut args.teams);
    if let Some(graph_url) = &args.graph_url {
        match pull_graph(graph_url, args.graph_token_file.as_deref(), &args) {
            Ok(files) => teams.extend(files),
            Err(code) => return code,
        }
    }
    let options = reconcile::ReconcileOptions {
        teams,
        carrier: args.carrier,
        carrier_format: args.carrier_format,
        tolerance_ms,
        from: args.from,
        to: args.to,
        operator: args.operator,
        out: args.out,
        max_errors: args.max_errors,
        top_numbers: args.top,
        threads: args
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from)),
    };
    match reconcile::reconcile(&options) {
        Ok(outcome) => {
            if let Err(err) = oc_reports::reconcile::write_console(
                &outcome.report,
                Some(&outcome.out),
                std::io::stdout().lock(),
            ) {
                eprintln!("error: could not print the summary: {err}");
            }
            ExitCode::from(outcome.exit_code())
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}

/// `reconcile --graph-url`: pulls the call log into OUT/graph-pages and returns the page
/// files, or the exit code to stop with (2 for bad flags or a refused request, 3 when Graph
/// could not be reached or the pages not written).
fn pull_graph(
    graph_url: &str,
    token_file: Option<&std::path::Path>,
    args: &ReconcileArgs,
) -> Result<Vec<PathBuf>, ExitCode> {
    use oc_harness::graph_pull::{PullError, PullOptions, pull};
    let bad = |message: String| {
        eprintln!("error: {message}");
        ExitCode::from(EXIT_BAD_INPUT)
    };
    let url = reqwest::Url::parse(graph_url)
        .map_err(|e| bad(format!("--graph-url: {e}: `{graph_url}`")))?;
    let token = match token_file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| bad(format!("--graph-token-file {}: {e}", path.display())))?
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned(),
        None => std::env::var("OC_GRAPH_TOKEN").unwrap_or_default(),
    };
    if token.is_empty() {
        return Err(bad(
            "--graph-url needs a bearer token: --graph-token-file FILE or OC_GRAPH_TOKEN".into(),
        ));
    }
    let bound = |flag: &str, value: &Option<String>| {
        reconcile::bound_millis(flag, value.as_deref().unwrap_or_default())
            .map_err(|e| bad(e.to_string()))
    };
    // --to is exclusive, Graph's toDateTime inclusive.
    let window = (bound("--from", &args.from)?, bound("--to", &args.to)? - 1);
    let dir = args.out.join("graph-pages");
    let quiet = !std::io::IsTerminal::is_terminal(&std::io::stderr());
    let options = PullOptions::new(url, token, window);
    let pulled = pull(&options, &dir, &mut |page, bytes| {
        if !quiet {
            eprint!("\rpulling Teams' call log: page {page} ({bytes} bytes)   ");
        }
    })
    .map_err(|err| {
        eprintln!("\nerror: pulling the call log: {err}");
        match err {
            PullError::EmptyWindow | PullError::Status { .. } | PullError::ForeignLink { .. } => {
                ExitCode::from(EXIT_BAD_INPUT)
            }
            _ => ExitCode::from(EXIT_COULD_NOT_RUN),
        }
    })?;
    if !quiet {
        eprintln!();
    }
    eprintln!(
        "pulled {} pages of Teams' call log into {} ({} windows, {} throttled answers waited out, {} retries)",
        pulled.files.len(),
        dir.display(),
        pulled.windows,
        pulled.throttled,
        pulled.retried
    );
    Ok(pulled.files)
}

/// The flags of a command that serves the Teams API to a carrier (`certify`, `load`).
#[derive(clap::Args)]
struct ServeArgs {
    /// Where the Teams API listens (port 0: any free port, printed).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// The Teams base URL as the carrier reaches it (behind a proxy or a port forward), when
    /// not the listen address.
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// Serve the Teams API over HTTPS with this PEM certificate chain (needs --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert (PKCS#8, RSA or SEC1).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// The carrier's bearer token, instead of a generated one (for a scripted test rig).
    #[arg(long, env = "OC_CERTIFY_TOKEN", value_name = "TOKEN")]
    token: Option<String>,
    /// The webhook signing secret, instead of a generated one (for a scripted test rig).
    #[arg(long, env = "OC_CERTIFY_WEBHOOK_SECRET", value_name = "SECRET")]
    webhook_secret: Option<String>,
}

/// What [`ServeArgs`] say, checked.
struct Served {
    listen: std::net::SocketAddr,
    public_url: Option<String>,
    tls: Option<mock_teams::TlsFiles>,
    token: Option<String>,
    webhook_secret: Option<String>,
}

impl ServeArgs {
    /// The flags checked: a usable --public-url, readable TLS files, no empty token or secret;
    /// else the error printed and exit code 2.
    fn checked(self) -> Result<Served, ExitCode> {
        let bad = |message: String| {
            eprintln!("error: {message}");
            ExitCode::from(EXIT_BAD_INPUT)
        };
        if let Some(Err(why)) = self.public_url.as_deref().map(certify::check_carrier_url) {
            return Err(bad(format!("--public-url: {why}")));
        }
        for (flag, path) in [("--tls-cert", &self.tls_cert), ("--tls-key", &self.tls_key)] {
            if let Some(path) = path
                && let Err(err) = std::fs::metadata(path)
            {
                return Err(bad(format!(
                    "{flag}: cannot read {}: {err}",
                    path.display()
                )));
            }
        }
        for (flag, value) in [
            ("--token", &self.token),
            ("--webhook-secret", &self.webhook_secret),
        ] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(bad(format!("{flag} must not be empty")));
            }
        }
        Ok(Served {
            listen: self.listen,
            public_url: self.public_url,
            tls: self
                .tls_cert
                .zip(self.tls_key)
                .map(|(cert_chain, private_key)| mock_teams::TlsFiles {
                    cert_chain,
                    private_key,
                }),
            token: self.token,
            webhook_secret: self.webhook_secret,
        })
    }
}

/// The flags of `certify`.
#[derive(clap::Args)]
struct CertifyArgs {
    /// The carrier API's base URL: notifications go to
    /// URL/oc/v1/notifications/number-assignments, probes to URL/oc/v1/numbers/{number},
    /// legs to URL/oc/v1/test/call-legs.
    #[arg(long, value_name = "URL")]
    carrier_url: String,
    /// The certification suite [default: the bundled scenarios/certification.toml].
    #[arg(long, value_name = "FILE", conflicts_with = "quick")]
    scenario: Option<PathBuf>,
    /// The quick suite (scenarios/certification-quick.toml, bundled): every case in about
    /// 2 minutes.
    #[arg(long)]
    quick: bool,
    #[command(flatten)]
    serve: ServeArgs,
    /// The seed of every random choice [default: a fresh one, printed in the report].
    #[arg(long)]
    seed: Option<u64>,
    /// How long to wait for the carrier API to answer, e.g. 2m [default: the suite's, 60s].
    #[arg(long, value_name = "DURATION")]
    ready_timeout: Option<String>,
    /// Where to write the certification report.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "oc-harness-out/certification"
    )]
    out: PathBuf,
    /// No progress output.
    #[arg(long, short)]
    quiet: bool,
}

fn certify_command(args: CertifyArgs) -> ExitCode {
    let loaded = match &args.scenario {
        Some(file) => scenario::load(file),
        None if args.quick => {
            scenario::parse(certify::QUICK_SUITE, "scenarios/certification-quick.toml")
        }
        None => scenario::parse(certify::DEFAULT_SUITE, "scenarios/certification.toml"),
    };
    let suite = match loaded {
        Ok(suite) => suite,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    if let Err(why) = certify::check_carrier_url(&args.carrier_url) {
        eprintln!("error: --carrier-url: {why}");
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    let served = match args.serve.checked() {
        Ok(served) => served,
        Err(code) => return code,
    };
    let ready_timeout_ms = match args
        .ready_timeout
        .as_deref()
        .map(scenario::parse_duration)
        .transpose()
    {
        Ok(ms) => ms,
        Err(err) => {
            eprintln!("error: --ready-timeout: {err}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let options = certify::CertifyOptions {
        carrier_url: args.carrier_url,
        listen: served.listen,
        public_url: served.public_url,
        tls: served.tls,
        token: served.token,
        webhook_secret: served.webhook_secret,
        seed: args.seed,
        ready_timeout_ms,
        out: args.out,
        progress: !args.quiet,
        scenario_args: match (&args.scenario, args.quick) {
            (Some(file), _) => vec!["--scenario".to_owned(), file.display().to_string()],
            (None, true) => vec!["--quick".to_owned()],
            (None, false) => Vec::new(),
        },
    };
    let system = actix_rt::System::new();
    match system.block_on(certify::certify(&suite, &options, print_setup)) {
        Ok(outcome) => finish(
            &outcome.report,
            &outcome.report_path,
            outcome.write_error.as_ref(),
        ),
        Err(err) => refused_flag(&err).unwrap_or_else(|| {
            eprintln!("error: could not certify: {err}");
            ExitCode::from(EXIT_COULD_NOT_RUN)
        }),
    }
}

/// What the carrier must configure, on stdout so that a test rig can read it.
fn print_setup(setup: &certify::Setup) {
    say!("Configure the carrier system under test with:");
    say!("  Teams API base URL    {}", setup.teams_url);
    say!("  bearer token          {}", setup.token);
    say!("  webhook secret        {}", setup.webhook_secret);
    say!("The harness will call:");
    say!("  notifications         POST {}", setup.webhook_url);
    say!("  call legs             POST {}", setup.call_legs_url);
    say!(
        "Durations are due within {} s of each call's end. Seed {}; the {} takes at most {} s, \
         and waits up to {} s for the carrier API to answer.",
        setup.reporting_deadline_ms / 1000,
        setup.seed,
        setup.activity,
        setup.time_limit_ms / 1000,
        setup.ready_timeout_ms / 1000
    );
    // A rig reading stdout through a pipe must see this before the harness starts waiting.
    let _ = std::io::Write::flush(&mut std::io::stdout());
}

/// A flag that `run` or `certify` refused before starting (`--out` cannot be written, `--length`
/// out of range): said on stderr, exit 2. `None` for an error of the run itself.
fn refused_flag(err: &RunError) -> Option<ExitCode> {
    let flag = match err {
        RunError::Write(_) => "--out: ",
        RunError::Export(_) => "--export: ",
        // Its message starts with `--length`.
        RunError::Length(_) => "",
        _ => return None,
    };
    eprintln!("error: {flag}{err}");
    Some(ExitCode::from(EXIT_BAD_INPUT))
}

/// Prints the verdict, then whether the report could be written: a report that could not be
/// written is exit code 3 (the files a CI collects are missing), but the verdict is still shown.
fn finish(
    report: &Report,
    path: &std::path::Path,
    write_error: Option<&oc_reports::WriteError>,
) -> ExitCode {
    print_report(report, write_error.is_none().then_some(path));
    match write_error {
        None => ExitCode::from(exit_code(report)),
        Some(err) => {
            eprintln!(
                "error: the verdict above stands, but the report could not be written: {}: {}",
                err.path, err.source
            );
            ExitCode::from(EXIT_COULD_NOT_RUN)
        }
    }
}

/// What `run` and `certify` print at the end ([`oc_reports::write_console`]), on stdout: the
/// verdict, every rule (a run) or case (a certification) with what it exercised, in counts, a
/// `WARN` line for each failed `should` rule, and where the report is.
fn print_report(report: &Report, path: Option<&std::path::Path>) {
    if let Err(err) = oc_reports::write_console(report, path, std::io::stdout().lock()) {
        eprintln!("error: could not print the summary: {err}");
    }
}

/// `merge`: the shards' reports into one, written to `out` and printed as `run` prints a report.
fn merge_command(dirs: &[PathBuf], out: &std::path::Path) -> ExitCode {
    match oc_harness::merge::merge_dirs(dirs, out) {
        Ok(report) => {
            print_report(&report, Some(&out.join("report.json")));
            ExitCode::from(exit_code(&report))
        }
        Err(err) => {
            eprintln!("error: cannot merge: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}

fn rules(json: bool) -> ExitCode {
    let catalogue = oc_protocol::rules::catalogue();
    if json {
        match serde_json::to_string_pretty(catalogue) {
            Ok(text) => say!("{text}"),
            Err(err) => {
                eprintln!("error: {err}");
                return ExitCode::from(EXIT_COULD_NOT_RUN);
            }
        }
        return ExitCode::SUCCESS;
    }
    say!(
        "{:<15} {:<7} {:<8} {:<9} statement",
        "rule",
        "level",
        "party",
        "section"
    );
    for rule in catalogue {
        say!(
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
    if is_load_plan(file) {
        return match load::load_plan(file) {
            Ok(plan) => {
                say!("{}", load::plan::summary(&plan));
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("{err}");
                ExitCode::from(EXIT_BAD_INPUT)
            }
        };
    }
    match scenario::load(file) {
        Ok(scenario) => {
            say!("{}", scenario::summary(&scenario));
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("{err}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

/// Whether `file` is a load plan (its top level has `[executors]`) rather than a scenario.
fn is_load_plan(file: &std::path::Path) -> bool {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .is_some_and(|table| table.contains_key("executors"))
}

/// The flags of `run`.
struct RunFlags {
    seed: Option<u64>,
    out: Option<PathBuf>,
    length: Option<String>,
    export: Option<PathBuf>,
    shard: Option<String>,
    shards: Option<u32>,
    quiet: bool,
}

fn run_command(file: &std::path::Path, flags: RunFlags) -> ExitCode {
    without_huge_pages();
    let RunFlags {
        seed,
        out,
        length,
        export,
        shard,
        shards,
        quiet,
    } = flags;
    let shard = match shard {
        Some(text) => text.parse().map(Some).map_err(|e| format!("--shard: {e}")),
        None => oc_harness::shard::Shard::from_env(shards, |k| std::env::var(k).ok())
            .map_err(|e| format!("--shards: {e}")),
    };
    let shard = match shard {
        Ok(shard) => shard,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let scenario = match scenario::load(file) {
        Ok(scenario) => scenario,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let length_ms = match length.as_deref().map(scenario::parse_duration).transpose() {
        Ok(length) => length,
        Err(err) => {
            eprintln!("error: --length: {err}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let out = out.unwrap_or_else(|| PathBuf::from("oc-harness-out").join(&scenario.name));
    let options = RunOptions {
        scenario_file: file.to_path_buf(),
        seed,
        out: match shard {
            Some(shard) => out.join(shard.folder()),
            None => out,
        },
        progress: !quiet,
        length_ms,
        keep_history: false,
        export,
        shard,
    };
    let system = actix_rt::System::new();
    let outcome = system.block_on(run(&scenario, &options));
    #[cfg(feature = "heap-by-part")]
    report_checker_heap();
    match outcome {
        Ok(outcome) => {
            let mut code = finish(
                &outcome.report,
                &outcome.report_path,
                outcome.write_error.as_ref(),
            );
            if let Some(shard) = shard
                && outcome.write_error.is_none()
                && outcome.report.verdict != oc_reports::Verdict::HarnessError
            {
                say!(
                    "  shard {shard}: finished; the run's verdict is the merged report's \
                     (oc-harness merge DIR/shard-*-of-{} --out DIR/merged)",
                    shard.count
                );
                code = ExitCode::SUCCESS;
            }
            match (&outcome.export_error, &outcome.exported, &options.export) {
                (Some(err), _, _) => {
                    eprintln!(
                        "error: the verdict above stands, but the export could not be written: \
                         {}: {}",
                        err.path, err.source
                    );
                    ExitCode::from(EXIT_COULD_NOT_RUN)
                }
                (None, Some(exported), Some(dir)) => {
                    say!(
                        "  export: {} (Teams: {} page{} of getPstnCalls; carrier: {} CDRs)",
                        dir.display(),
                        exported.pages,
                        if exported.pages == 1 { "" } else { "s" },
                        exported.cdrs
                    );
                    code
                }
                _ => code,
            }
        }
        Err(err) => refused_flag(&err).unwrap_or_else(|| {
            eprintln!("error: could not run {}: {err}", file.display());
            ExitCode::from(EXIT_COULD_NOT_RUN)
        }),
    }
}
