//! The `oc-harness` binary: its commands, output and exit codes.

use std::path::Path;
use std::process::Command;

fn harness(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_oc-harness"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("oc-harness runs")
}

#[test]
fn output_into_a_closed_pipe_is_not_a_panic() {
    use std::io::Read as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_oc-harness"))
        .args(["rules"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Read nothing and close the pipe, as `oc-harness rules | head -0` would.
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(status.success(), "{status:?} {stderr}");
}

#[test]
fn rules_lists_every_rule_of_the_catalogue() {
    let output = harness(&["rules"]);
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    for rule in oc_protocol::rules::catalogue() {
        assert!(
            text.contains(rule.id.as_str()),
            "{} missing:\n{text}",
            rule.id
        );
    }
    let json = harness(&["rules", "--json"]);
    let parsed: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        parsed.as_array().unwrap().len(),
        oc_protocol::rules::catalogue().len()
    );
}

#[test]
fn scenario_check_summarises_a_good_file_and_locates_every_error_of_a_bad_one() {
    let good = harness(&["scenario", "check", "scenarios/smoke.toml"]);
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert!(String::from_utf8_lossy(&good.stdout).contains("smoke"));

    let dir = std::env::temp_dir().join(format!("oc-harness-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "name = \"bad\"\ndescription = \"x\"\nseed = 1\nstart = \"2026-11-02T00:00:00.000Z\"\nlength = \"1d\"\n\
         [[tenants]]\nnumbers = 5\nfirst_number = \"+14255550100\"\n[calls]\nanswer_rate = 1.5\ncolour = \"red\"\n",
    )
    .unwrap();
    let output = harness(&["scenario", "check", bad.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bad.toml:"), "{stderr}");
    // Both problems, the unknown key and the bad value, in file order.
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].contains(":10:15: calls.answer_rate: must be from 0 to 1"),
        "{stderr}"
    );
    assert!(
        lines[1].contains(":11:1: calls.colour: unknown field `colour`"),
        "{stderr}"
    );

    let run = harness(&["run", bad.to_str().unwrap()]);
    assert_eq!(
        run.status.code(),
        Some(2),
        "a bad scenario is bad input for run too"
    );
}

#[test]
fn run_prints_a_summary_writes_the_report_and_exits_0_on_a_pass() {
    let out = std::env::temp_dir().join(format!("oc-harness-cli-run-{}", std::process::id()));
    let output = harness(&[
        "run",
        "scenarios/smoke.toml",
        "--length",
        "2h",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("smoke — PASSED"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    // Every rule is listed with its outcome, so that one not exercised never reads as passed,
    // and with what it exercised when anything was counted.
    for rule in report["rules"].as_array().unwrap() {
        let mark = match rule["outcome"].as_str().unwrap() {
            "passed" => "pass",
            "notExercised" => "NOT EXERCISED",
            other => panic!("{other} in a passed run"),
        };
        let line = format!("  {mark:<13} {}\n", rule["rule"].as_str().unwrap());
        assert!(stdout.contains(&line), "{line:?} missing:\n{stdout}");
        for exercised in rule["exercised"].as_array().unwrap() {
            let what = format!(" {}", exercised["what"].as_str().unwrap());
            assert!(stdout.contains(&what), "{what:?} missing:\n{stdout}");
        }
    }
    assert_eq!(report["schemaVersion"], 1);
    assert_eq!(report["scenario"]["seed"], 42);
}

#[test]
fn certify_refuses_bad_flags_with_exit_2_and_a_taken_address_with_exit_3() {
    let bad_url = harness(&["certify", "--carrier-url", "ftp://carrier.example"]);
    assert_eq!(bad_url.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad_url.stderr);
    assert!(
        stderr.contains("--carrier-url: must start with http://"),
        "{stderr}"
    );

    let bad_public = harness(&[
        "certify",
        "--carrier-url",
        "http://127.0.0.1:9",
        "--public-url",
        "teams.example:8080",
    ]);
    assert_eq!(bad_public.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_public.stderr).contains("--public-url: must start"));

    let bad_wait = harness(&[
        "certify",
        "--carrier-url",
        "http://127.0.0.1:9",
        "--ready-timeout",
        "soon",
    ]);
    assert_eq!(bad_wait.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_wait.stderr).contains("--ready-timeout"));

    let half_tls = harness(&[
        "certify",
        "--carrier-url",
        "http://127.0.0.1:9",
        "--tls-cert",
        "teams.pem",
    ]);
    assert_eq!(
        half_tls.status.code(),
        Some(2),
        "--tls-cert needs --tls-key"
    );

    let missing_tls = harness(&[
        "certify",
        "--carrier-url",
        "http://127.0.0.1:9",
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        "no-such.pem",
        "--tls-key",
        "no-such-key.pem",
    ]);
    assert_eq!(missing_tls.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&missing_tls.stderr);
    assert!(stderr.contains("no-such.pem"), "{stderr}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let busy = harness(&[
        "certify",
        "--carrier-url",
        "http://127.0.0.1:9",
        "--listen",
        &addr,
    ]);
    assert_eq!(busy.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&busy.stderr);
    assert!(stderr.contains(&addr), "{stderr}");
}

#[test]
fn certify_help_says_what_the_carrier_must_serve_and_how_long_it_takes() {
    let help = harness(&["certify", "--help"]);
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for needle in [
        "--carrier-url",
        "--quick",
        "--token",
        "--webhook-secret",
        "--tls-cert",
        "/oc/v1/test/call-legs",
        "5 minutes",
    ] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
}

#[test]
fn run_refuses_a_length_past_the_scenario_and_an_unwritable_out_or_export_before_running() {
    let none = harness(&["run", "scenarios/smoke.toml", "--length", "0s", "--quiet"]);
    assert_eq!(none.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("--length 0s runs no time"),
        "{}",
        String::from_utf8_lossy(&none.stderr)
    );
    let longer = harness(&["run", "scenarios/smoke.toml", "--length", "2d", "--quiet"]);
    assert_eq!(longer.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&longer.stderr);
    assert!(
        stderr.contains("--length 2d is longer than the scenario (1d)"),
        "{stderr}"
    );

    let dir = std::env::temp_dir().join(format!("oc-harness-cli-out-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("a-file");
    std::fs::write(&file, b"").unwrap();
    let out = file.join("report");
    let started = std::time::Instant::now();
    let unwritable = harness(&[
        "run",
        "scenarios/smoke.toml",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(unwritable.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&unwritable.stderr);
    assert!(
        stderr.starts_with("error: --out: cannot write the report into"),
        "{stderr}"
    );
    assert!(unwritable.stdout.is_empty(), "nothing ran");
    // The whole smoke day takes longer than this on any machine; the refusal comes first.
    assert!(started.elapsed() < std::time::Duration::from_secs(60));

    let export = harness(&[
        "run",
        "scenarios/smoke.toml",
        "--quiet",
        "--out",
        dir.join("report").to_str().unwrap(),
        "--export",
        out.to_str().unwrap(),
    ]);
    assert_eq!(export.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&export.stderr);
    assert!(
        stderr.starts_with("error: --export: cannot write the export into"),
        "{stderr}"
    );
    assert!(export.stdout.is_empty(), "nothing ran");

    let certify = harness(&[
        "certify",
        "--carrier-url",
        "http://127.0.0.1:9",
        "--listen",
        "127.0.0.1:0",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(certify.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&certify.stderr).contains("error: --out:"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn run_prints_its_verdict_even_when_the_report_cannot_be_written() {
    let out = std::env::temp_dir().join(format!("oc-harness-cli-lost-{}", std::process::id()));
    // A folder where report.json should go: the folder is writable, the file is not.
    std::fs::create_dir_all(out.join("report.json")).unwrap();
    let output = harness(&[
        "run",
        "scenarios/smoke.toml",
        "--length",
        "1h",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(stdout.contains("smoke — PASSED"), "{stdout}");
    assert!(
        stdout.contains("  report: not written (the error follows)"),
        "{stdout}"
    );
    assert!(
        stderr.contains("the verdict above stands, but the report could not be written"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&out).unwrap();
}

/// The `oc-harness …` commands quoted in `text`: after `oc-harness ` (or `cargo run … -p
/// oc-harness -- `), up to the end of the code span, table cell, comment or parenthesis. In
/// Markdown only code counts (fenced blocks and `spans`), so that prose about the tool is not
/// taken for a command; in a scenario file every comment does.
fn quoted_commands(text: &str, markdown: bool) -> Vec<String> {
    let mut found = Vec::new();
    let mut fenced = false;
    // A shell line continued with `\` is one command.
    let text = text.replace("\\\n", " ");
    for line in text.lines() {
        if markdown && line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        let line = line.replace("cargo run --release -p oc-harness --", "oc-harness");
        let code: Vec<&str> = if !markdown || fenced {
            vec![line.as_str()]
        } else {
            line.split('`').skip(1).step_by(2).collect()
        };
        for mut rest in code {
            while let Some(at) = rest.find("oc-harness ") {
                let after = &rest[at + "oc-harness ".len()..];
                let end = after.find(['`', '|', '(', ')', '#']).unwrap_or(after.len());
                let command = after[..end].trim();
                let first = command.split_whitespace().next().unwrap_or("");
                if !first.is_empty() && first.chars().all(|c| c.is_ascii_lowercase()) {
                    found.push(command.to_owned());
                }
                rest = &after[end..];
            }
        }
    }
    found
}

#[test]
fn every_command_quoted_in_the_readme_docs_and_scenarios_exists_with_its_flags() {
    let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let mut files = vec![root.join("README.md")];
    // Every file under docs/ and scenarios/, subfolders (docs/carrier-formats) included.
    let mut dirs = vec![root.join("docs"), root.join("scenarios")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    let mut checked = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let markdown = file.extension().is_some_and(|e| e == "md");
        for command in quoted_commands(&text, markdown) {
            let words: Vec<&str> = command.split_whitespace().collect();
            let depth = if words[0] == "scenario" { 2 } else { 1 };
            let sub = &words[..depth.min(words.len())];
            let help = harness(&[sub, &["--help"]].concat());
            assert!(
                help.status.success(),
                "{}: `oc-harness {command}`: `oc-harness {}` does not exist",
                file.display(),
                sub.join(" ")
            );
            let usage = String::from_utf8_lossy(&help.stdout);
            for flag in words.iter().filter_map(|w| {
                let w = w.trim_matches(['[', ']', '.', ',', ';']);
                w.starts_with("--")
                    .then(|| w.split('=').next().unwrap_or(w))
            }) {
                assert!(
                    usage.contains(flag),
                    "{}: `oc-harness {command}`: `oc-harness {}` has no {flag}",
                    file.display(),
                    sub.join(" ")
                );
            }
            // A command without placeholders must parse as written.
            if !command.contains(|c: char| c.is_ascii_uppercase() || c == '[' || c == '…') {
                let parsed = harness(&[words.as_slice(), &["--help"]].concat());
                assert!(
                    parsed.status.success(),
                    "{}: `oc-harness {command}` does not parse: {}",
                    file.display(),
                    String::from_utf8_lossy(&parsed.stderr)
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} commands found");
}

#[test]
fn quoted_commands_are_code_cut_at_the_end_of_their_span() {
    let markdown = "run it with `oc-harness run scenarios/scale.toml --length 1d` (or not)\n\
                    oc-harness itself is prose, `oc-harness rules` is code\n\
                    ```sh\n\
                    cargo run --release -p oc-harness -- run scenarios/smoke.toml   # the main job\n\
                    ```\n";
    assert_eq!(
        quoted_commands(markdown, true),
        [
            "run scenarios/scale.toml --length 1d",
            "rules",
            "run scenarios/smoke.toml",
        ]
    );
    let toml = "# Certify:  oc-harness certify --quick --carrier-url https://c.example:8443\n\
                name = \"x\"\n";
    assert_eq!(
        quoted_commands(toml, false),
        ["certify --quick --carrier-url https://c.example:8443"]
    );
}

/// The replay line names the scenario file as it was given (not a path built from the
/// scenario's name) and every flag that changed the run, quoted for a shell; run as it is, it
/// gives the same report.
#[test]
fn the_replay_line_is_the_command_that_reruns_the_run() {
    let dir = std::env::temp_dir()
        .join(format!("oc-harness-cli-replay-{}", std::process::id()))
        .join("my dir");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("other-name.toml");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/smoke.toml"),
        &file,
    )
    .unwrap();
    let out = dir.join("out");
    let (file, out) = (file.to_str().unwrap(), out.to_str().unwrap());
    let first = harness(&[
        "run", file, "--seed", "7", "--length", "1h", "--quiet", "--out", out,
    ]);
    let code = first.status.code();
    assert!(
        matches!(code, Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let read = |name: &str| std::fs::read_to_string(Path::new(out).join(name)).unwrap();
    let report: serde_json::Value = serde_json::from_str(&read("report.json")).unwrap();
    let replay = report["scenario"]["replay"].as_str().unwrap().to_owned();
    assert_eq!(
        replay,
        format!("oc-harness run '{file}' --seed 7 --length 1h --out '{out}'")
    );
    assert!(read("summary.md").contains(&format!("```sh\n{replay}\n```")));
    assert!(read("junit.xml").contains("--seed 7 --length 1h --out &apos;"));
    assert!(read("report.html").contains("--seed 7 --length 1h --out &#39;"));

    let rest = replay.strip_prefix("oc-harness ").unwrap();
    let again = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' {rest} --quiet",
            env!("CARGO_BIN_EXE_oc-harness")
        ))
        .current_dir("/")
        .output()
        .unwrap();
    assert_eq!(
        again.status.code(),
        code,
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let without_timing = |mut report: serde_json::Value| {
        let object = report.as_object_mut().unwrap();
        object.remove("latency");
        object.remove("timing");
        report
    };
    let replayed: serde_json::Value = serde_json::from_str(&read("report.json")).unwrap();
    assert_eq!(without_timing(replayed), without_timing(report));
    std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
}

#[test]
fn run_refuses_a_bad_shard_and_merge_refuses_what_is_not_a_shard_with_exit_2() {
    let out = std::env::temp_dir().join(format!("oc-harness-cli-shard-{}", std::process::id()));
    let out = out.to_str().unwrap();
    for (args, says) in [
        (
            vec![
                "run",
                "scenarios/smoke.toml",
                "--shard",
                "3/3",
                "--out",
                out,
            ],
            "shard index 3 is out of range for 3 shards: it must be 0 to 2",
        ),
        (
            vec![
                "run",
                "scenarios/smoke.toml",
                "--shard",
                "1-3",
                "--out",
                out,
            ],
            "`1-3` is not a shard: write I/N",
        ),
        (
            vec!["run", "scenarios/smoke.toml", "--shards", "2", "--out", out],
            "JOB_COMPLETION_INDEX",
        ),
        (
            vec!["merge", "scenarios", "--out", out],
            "not a shard's report folder",
        ),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_oc-harness"))
            .args(&args)
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .env_remove("JOB_COMPLETION_INDEX")
            .env_remove("OC_SHARDS")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    let help = harness(&["run", "--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--shard <I/N>") && help.contains("JOB_COMPLETION_INDEX"));
}
