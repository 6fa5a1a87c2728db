//! `oc-harness certify` end to end: the harness and the carrier are separate processes talking
//! over loopback HTTP, as they would on a carrier's test rig. The suite is
//! `fixtures/test-suite.toml`: every case of the certification in 20 s of traffic.
//!
//! mock-carrier's binary is taken from the same target directory as oc-harness's: `cargo test
//! --workspace` builds it (`cargo test -p oc-harness` alone may not; then build it first with
//! `cargo build -p mock-carrier`).

mod hostile;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mock_carrier::Profile;
use oc_harness::certify::cases;
use oc_protocol::RuleId;
use oc_reports::{CertificationVerdict, Outcome, Report};

/// The longest one certification of the test suite may take (its own limit is about 4 min;
/// a healthy one takes under a minute).
const CERTIFY_LIMIT: Duration = Duration::from_secs(300);

fn suite() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/certify/fixtures/test-suite.toml")
}

fn out_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("oc-certify-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temp dir");
    dir
}

fn mock_carrier_bin() -> PathBuf {
    let harness = PathBuf::from(env!("CARGO_BIN_EXE_oc-harness"));
    let bin = harness.with_file_name(format!("mock-carrier{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p mock-carrier` (cargo test --workspace does)",
        bin.display()
    );
    bin
}

/// A free loopback port, picked by the system: the carrier must be told its own URL before the
/// harness starts, and the harness its URL before the carrier does.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("an address").port()
}

/// A process killed when dropped, so that a failing test leaves nothing running.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What `certify` printed for the carrier to configure.
struct Setup {
    teams_url: String,
    token: String,
    secret: String,
}

/// A certification under way: the harness process and what it printed.
struct Certification {
    harness: Process,
    setup: Setup,
    out: PathBuf,
    stdout: mpsc::Receiver<String>,
}

/// Starts `oc-harness certify` on the test suite against `carrier_url`, and reads what the
/// carrier must configure from its stdout.
fn start_certify(carrier_url: &str, tag: &str, extra: &[&str]) -> Certification {
    let out = out_dir(tag);
    let mut child = Command::new(env!("CARGO_BIN_EXE_oc-harness"))
        .args([
            "certify",
            "--carrier-url",
            carrier_url,
            "--listen",
            "127.0.0.1:0",
        ])
        .arg("--scenario")
        .arg(suite())
        .arg("--out")
        .arg(out.join("report"))
        .args(if extra.contains(&"--seed") {
            &["--quiet"][..]
        } else {
            &["--seed", "11", "--quiet"][..]
        })
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("oc-harness starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (send, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    let harness = Process(child);
    let mut printed = Vec::new();
    let field = |printed: &[String], label: &str| -> Option<String> {
        printed
            .iter()
            .find_map(|l: &String| l.trim().strip_prefix(label).map(|v| v.trim().to_owned()))
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while field(&printed, "webhook secret").is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => printed.push(line),
            Err(_) => panic!("certify did not print its setup in 30 s: {printed:#?}"),
        }
    }
    let setup = Setup {
        teams_url: field(&printed, "Teams API base URL").expect("the Teams URL"),
        token: field(&printed, "bearer token").expect("the token"),
        secret: field(&printed, "webhook secret").expect("the secret"),
    };
    Certification {
        harness,
        setup,
        out,
        stdout: lines,
    }
}

/// How a finished certification went.
struct Finished {
    code: i32,
    report: Report,
    stdout: Vec<String>,
    took: Duration,
    out: PathBuf,
}

impl Finished {
    fn certification(&self) -> &oc_reports::Certification {
        self.report
            .certification
            .as_ref()
            .expect("a certification section")
    }
}

impl Certification {
    /// Waits for the harness to exit (at most [`CERTIFY_LIMIT`]) and reads its report.
    fn finish(mut self, started: Instant) -> Finished {
        let deadline = started + CERTIFY_LIMIT;
        let code = loop {
            if let Some(status) = self.harness.0.try_wait().expect("wait") {
                break status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "certify did not finish within {CERTIFY_LIMIT:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        let stdout: Vec<String> = self.stdout.try_iter().collect();
        let path = self.out.join("report/report.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{} was not written: {e}; stdout {stdout:#?}",
                path.display()
            )
        });
        let report: Report = serde_json::from_str(&text).expect("report.json is a Report");
        for file in ["junit.xml", "summary.md", "evidence.ndjson", "report.html"] {
            assert!(
                self.out.join("report").join(file).exists(),
                "{file} was not written"
            );
        }
        Finished {
            code,
            report,
            stdout,
            took: started.elapsed(),
            out: self.out,
        }
    }
}

/// Certifies mock-carrier (started as its own process, configured from what certify printed)
/// playing `profile`, with the harness's `seed` (the carrier's own seed too).
fn certify_mock(profile: Profile, seed: u64) -> Finished {
    let started = Instant::now();
    let port = free_port();
    let carrier_url = format!("http://127.0.0.1:{port}");
    let seed_arg = seed.to_string();
    let tag = format!("{}-{seed}", profile.slug());
    let certification = start_certify(&carrier_url, &tag, &["--seed", &seed_arg]);
    let config = certification.out.join("carrier.toml");
    let Setup {
        teams_url,
        token,
        secret,
    } = &certification.setup;
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\nseed = {seed}\ncalls_from = \"legs\"\n\
             [teams]\nbase_url = \"{teams_url}\"\ntoken = \"{token}\"\n\
             webhook_secret = \"{secret}\"\n\
             [client]\npoll_interval_ms = 2500\n\
             [misbehaviour]\nprofile = \"{}\"\n",
            profile.name()
        ),
    )
    .expect("write the carrier's config");
    let _carrier = Process(
        Command::new(mock_carrier_bin())
            .args(["serve", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mock-carrier starts"),
    );
    certification.finish(started)
}

fn case_outcomes(report: &Report) -> Vec<(String, Outcome)> {
    report
        .certification
        .as_ref()
        .expect("a certification section")
        .cases
        .iter()
        .map(|c| (c.id.clone(), c.outcome))
        .collect()
}

/// The cases a profile must fail (those of its rule), and those it may fail as a consequence:
/// a carrier that applies an overtaken event ends in an older state when no later change of
/// that number follows, and so fails the convergence case too (NUM-STATE), on some seeds.
fn expected_failures(rule: RuleId) -> (Vec<&'static str>, Vec<&'static str>) {
    let consequences = if rule == RuleId::NumOrder {
        cases::cases_of(RuleId::NumState)
    } else {
        Vec::new()
    };
    (cases::cases_of(rule), consequences)
}

/// The cases a profile leaves unjudged: a carrier that acknowledges late keeps every delivery
/// in flight for seconds, so no notification is certainly overtaken and NUM-ORDER has nothing
/// sure to judge (see the NUM-ORDER notes in the checker).
fn expected_unexercised(rule: RuleId) -> Vec<&'static str> {
    if rule == RuleId::NumAck {
        cases::cases_of(RuleId::NumOrder)
    } else {
        Vec::new()
    }
}

#[test]
fn the_correct_carrier_is_certified() {
    let finished = certify_mock(Profile::Correct, 11);
    let report = &finished.report;
    let failed: Vec<_> = case_outcomes(report)
        .into_iter()
        .filter(|(_, o)| *o != Outcome::Passed)
        .collect();
    assert!(
        failed.is_empty(),
        "cases not passed: {failed:?}\n{:#?}",
        report.rules
    );
    let certification = report.certification.as_ref().expect("certification");
    assert_eq!(certification.verdict, CertificationVerdict::Certified);
    assert_eq!(finished.code, 0, "exit code of a certified carrier");
    assert_eq!(certification.reporting_deadline_ms, 15_000);
    assert!(certification.aborted.is_none());
    assert_eq!(report.scenario.seed, 11);
    assert!(
        report.scenario.replay.contains("--seed 11"),
        "{}",
        report.scenario.replay
    );
    assert!(
        finished.stdout.iter().any(|l| l.contains("CERTIFIED")),
        "{:#?}",
        finished.stdout
    );
    let summary = std::fs::read_to_string(finished.out.join("report/summary.md")).expect("summary");
    assert!(
        summary.starts_with("# Certification: CERTIFIED"),
        "{summary}"
    );
    // Every case was really exercised: calls, legs, reports.
    let counts = &report.counts;
    assert!(counts.answered_calls > 10, "{counts:?}");
    assert!(finished.took < CERTIFY_LIMIT);
}

/// A profile that breaks a `should` rule is certified, with its rule's failure as a warning in
/// its case, on the console too; `None` when so.
fn warned_not_failed(rule: RuleId, finished: &Finished) -> Option<String> {
    let certification = finished.report.certification.as_ref()?;
    let not_passed: Vec<(String, Outcome)> = case_outcomes(&finished.report)
        .into_iter()
        .filter(|(_, o)| *o != Outcome::Passed)
        .collect();
    let verdict = finished
        .report
        .rules
        .iter()
        .find(|v| v.rule == rule)
        .map(|v| v.outcome);
    let case = cases::cases_of(rule)[0];
    let warned = certification
        .cases
        .iter()
        .any(|c| c.id == case && c.summary.contains("a warning"));
    let on_console = finished
        .stdout
        .iter()
        .any(|l| l.contains("WARN") && l.contains(rule.as_str()));
    if certification.verdict != CertificationVerdict::Certified
        || finished.code != 0
        || !not_passed.is_empty()
        || verdict != Some(Outcome::Failed)
        || !warned
        || !on_console
    {
        return Some(format!(
            "want certified with a {rule} warning in {case}; got {:?}, exit {}, cases not \
             passed {not_passed:?}, {rule} {verdict:?}, warned {warned}, on the console \
             {on_console}",
            certification.verdict, finished.code
        ));
    }
    None
}

/// Whether a certification of `profile` came out as it must: the correct carrier certified;
/// a `should` profile certified with its warning; any other not certified, failing exactly the
/// cases of its rule. `Err` says how it went instead.
fn caught(profile: Profile, finished: &Finished) -> Result<(), String> {
    let outcomes = case_outcomes(&finished.report);
    let verdict = finished.report.certification.as_ref().map(|c| c.verdict);
    let Some(rule) = profile.rule() else {
        let not_passed: Vec<_> = outcomes
            .iter()
            .filter(|(_, o)| *o != Outcome::Passed)
            .collect();
        if not_passed.is_empty() && finished.code == 0 {
            return Ok(());
        }
        return Err(format!(
            "not certified: cases not passed {not_passed:?}, exit {}",
            finished.code
        ));
    };
    if oc_protocol::rules::rule(rule).severity == oc_protocol::Severity::Should {
        return warned_not_failed(rule, finished).map_or(Ok(()), Err);
    }
    let (mut want, may) = expected_failures(rule);
    want.sort_unstable();
    let mut failed: Vec<&str> = outcomes
        .iter()
        .filter(|(_, o)| *o == Outcome::Failed)
        .map(|(id, _)| id.as_str())
        .filter(|id| !may.contains(id))
        .collect();
    failed.sort_unstable();
    let unexercised: Vec<&str> = outcomes
        .iter()
        .filter(|(_, o)| *o == Outcome::NotExercised)
        .map(|(id, _)| id.as_str())
        .collect();
    let unjudged = expected_unexercised(rule);
    if failed != want
        || unexercised.iter().any(|id| !unjudged.contains(id))
        || finished.code != 1
        || verdict != Some(CertificationVerdict::NotCertified)
    {
        return Err(format!(
            "failed {failed:?} (want {want:?}), not exercised {unexercised:?}, exit {}, verdict \
             {verdict:?}",
            finished.code
        ));
    }
    Ok(())
}

/// The seeds of the matrix: `OC_CERTIFY_SEEDS` (`1-10` or `3,5,8`), else 11 alone.
fn matrix_seeds() -> Vec<u64> {
    let Ok(spec) = std::env::var("OC_CERTIFY_SEEDS") else {
        return vec![11];
    };
    let spec = spec.trim();
    if let Some((a, b)) = spec.split_once('-') {
        let (a, b): (u64, u64) = (
            a.trim().parse().expect("OC_CERTIFY_SEEDS: FIRST-LAST"),
            b.trim().parse().expect("OC_CERTIFY_SEEDS: FIRST-LAST"),
        );
        (a..=b).collect()
    } else {
        spec.split(',')
            .map(|s| s.trim().parse().expect("OC_CERTIFY_SEEDS: a list of seeds"))
            .collect()
    }
}

/// The mutation matrix: every misbehaviour profile certified on every seed, each caught by
/// exactly its case (a `should` profile: certified with its warning). By default one seed and
/// the misbehaving profiles only (the correct one has its own test); with `OC_CERTIFY_SEEDS`
/// set, the correct profile too, and a table of profile × seed is printed:
///
/// ```sh
/// OC_CERTIFY_SEEDS=1-10 OC_CERTIFY_PARALLEL=4 cargo test --release -p oc-harness \
///     --test certify certification_matrix -- --nocapture
/// ```
#[test]
fn certification_matrix_catches_every_profile_on_every_seed() {
    let full = std::env::var_os("OC_CERTIFY_SEEDS").is_some();
    let seeds = matrix_seeds();
    let profiles: Vec<Profile> = Profile::ALL
        .into_iter()
        .filter(|p| full || *p != Profile::Correct)
        .collect();
    let parallel: usize = std::env::var("OC_CERTIFY_PARALLEL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let cells: Vec<(Profile, u64)> = profiles
        .iter()
        .flat_map(|&p| seeds.iter().map(move |&s| (p, s)))
        .collect();
    // A few certifications at a time: they mostly wait on the wall clock.
    let mut results: Vec<(Profile, u64, Result<(), String>)> = Vec::new();
    for chunk in cells.chunks(parallel) {
        let handles: Vec<_> = chunk
            .iter()
            .map(|&(profile, seed)| {
                std::thread::spawn(move || {
                    let finished = certify_mock(profile, seed);
                    (profile, seed, caught(profile, &finished))
                })
            })
            .collect();
        results.extend(
            handles
                .into_iter()
                .map(|h| h.join().expect("a certification")),
        );
    }
    if full {
        println!("{}", matrix_table(&profiles, &seeds, &results));
    }
    let wrong: Vec<String> = results
        .iter()
        .filter_map(|(profile, seed, r)| {
            r.as_ref()
                .err()
                .map(|why| format!("{profile} (seed {seed}): {why}"))
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// profile × seed → caught / MISSED, as a Markdown table.
fn matrix_table(
    profiles: &[Profile],
    seeds: &[u64],
    results: &[(Profile, u64, Result<(), String>)],
) -> String {
    let mut out = format!(
        "| profile | {} |\n|---|{}\n",
        seeds
            .iter()
            .map(|s| format!("seed {s}"))
            .collect::<Vec<_>>()
            .join(" | "),
        "---|".repeat(seeds.len())
    );
    for profile in profiles {
        let row: Vec<&str> = seeds
            .iter()
            .map(|seed| {
                let ok = results
                    .iter()
                    .any(|(p, s, r)| p == profile && s == seed && r.is_ok());
                match (ok, profile.rule()) {
                    (true, None) => "certified",
                    (true, Some(_)) => "caught",
                    (false, _) => "MISSED",
                }
            })
            .collect();
        out.push_str(&format!("| {profile} | {} |\n", row.join(" | ")));
    }
    out
}
