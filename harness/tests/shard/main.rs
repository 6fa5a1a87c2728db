//! Sharded runs (`run --shard I/N`) and `merge`: for bundled scenarios (shortened), 1, 2 and 3
//! shards merged give the whole run's report, but for the fields README.md ("Sharded runs")
//! lists as differing, and why; and a merge refuses shards that are not every shard of one
//! finished run, precisely.

use std::path::{Path, PathBuf};

use oc_harness::merge::{self, MergeError};
use oc_harness::run::{RunOptions, run};
use oc_harness::scenario::{self, CarrierSpec};
use oc_harness::shard::Shard;
use oc_reports::{Report, Verdict};
use serde_json::Value;

const HOUR: i64 = 3_600_000;

fn scenario_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(format!("{name}.toml"))
}

fn out_root() -> PathBuf {
    std::env::temp_dir().join(format!("oc-harness-shard-tests-{}", std::process::id()))
}

/// Runs `name` (shortened to `length_ms`) whole or as `shard`, into `out`.
fn run_to(name: &str, length_ms: Option<i64>, shard: Option<Shard>, out: &Path) -> Report {
    let file = scenario_path(name);
    let mut scenario = scenario::load(&file).unwrap_or_else(|e| panic!("{name}: {e}"));
    if let CarrierSpec::Mock { client, .. } = &mut scenario.carrier {
        // Teams' default pages (500), not the pages of 1000 `scale` asks for: a shard's
        // chains are shorter than the whole run's, and in the first night hours no shard's
        // would be longer than a page of 1000, leaving CDR-PAGING exercised in the whole run
        // only. Paging is not what these tests compare.
        client.page_size = None;
    }
    let options = RunOptions {
        scenario_file: file,
        seed: None,
        out: out.to_path_buf(),
        progress: false,
        length_ms,
        keep_history: false,
        export: None,
        shard,
    };
    let system = actix_rt::System::new();
    let outcome = system
        .block_on(run(&scenario, &options))
        .unwrap_or_else(|e| panic!("{name} {shard:?}: could not run: {e}"));
    assert!(outcome.write_error.is_none(), "{name}: report not written");
    outcome.report
}

/// Runs every shard of `count` and merges them.
fn sharded(name: &str, length_ms: Option<i64>, count: u32) -> (Report, Vec<PathBuf>) {
    let base = out_root().join(name).join(format!("of-{count}"));
    let dirs: Vec<PathBuf> = (0..count)
        .map(|index| {
            let shard = Shard::new(index, count).unwrap();
            let dir = base.join(shard.folder());
            run_to(name, length_ms, Some(shard), &dir);
            dir
        })
        .collect();
    let merged = merge::merge_dirs(&dirs, &base.join("merged"))
        .unwrap_or_else(|e| panic!("{name}: {count} shards do not merge: {e}"));
    for dir in dirs.iter().chain([&base.join("merged")]) {
        assert_valid_report(&dir.join("report.json"));
        for file in ["junit.xml", "summary.md", "report.html", "evidence.ndjson"] {
            assert!(dir.join(file).exists(), "{}: no {file}", dir.display());
        }
    }
    (merged, dirs)
}

/// A shard's report and a merged one are valid against the report's JSON Schema (their
/// `shard` section included).
fn assert_valid_report(path: &Path) {
    let schema: Value = serde_json::from_str(oc_reports::REPORT_SCHEMA).unwrap();
    let validator = jsonschema::draft202012::new(&schema).expect("the schema compiles");
    let report: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert!(
        report.get("shard").is_some(),
        "{}: no shard section",
        path.display()
    );
    let errors: Vec<String> = validator
        .iter_errors(&report)
        .map(|e| format!("{e} at {}", e.instance_path().as_str()))
        .collect();
    assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
}

/// The rules judged per exchange (a notification's deliveries, a feed page, a poll cycle, a
/// duration report): each shard has its own exchanges (its changes at one instant go out as
/// its own notifications, redelivered and overtaken as Teams' faults draw per notification,
/// its carrier polls every tick and pages and batches its own calls), so their failures,
/// counts and evidence are the shards' sums, not the whole run's; their outcome is the same.
const EXCHANGE_RULES: [&str; 9] = [
    "NUM-ACK",
    "NUM-IDEMPOTENT",
    "NUM-ORDER",
    "CDR-PAGING",
    "CDR-FEED",
    "CDR-THROTTLE",
    "QUA-FEED",
    "DUR-SCHEMA",
    "DUR-IDEMPOTENT",
];

/// `seq 231` → `seq #`: a note that quotes an exchange quotes the shard's numbering.
fn without_seqs(note: &str) -> String {
    let mut out = String::with_capacity(note.len());
    let mut rest = note;
    while let Some(i) = rest.find("seq ") {
        out.push_str(&rest[..i + 4]);
        rest = rest[i + 4..].trim_start_matches(|c: char| c.is_ascii_digit());
        out.push('#');
    }
    out.push_str(rest);
    out
}

/// The report as JSON without what legitimately differs between a whole run and its shards
/// merged (README.md, "Sharded runs"): wall-clock figures and latency; the replay command (its
/// --out); the merged report's shard section; and, with more than one shard: the counts of
/// exchanges and poll cycles; the failures, counts and evidence of [`EXCHANGE_RULES`]; the
/// `seq`s evidence cites or quotes (numbered per shard); which items a rule with more than
/// [`oc_reports::MAX_EVIDENCE`] failures keeps (the merge keeps the first in note order, a run
/// the first it saw), the others compared as sets; and the summaries that quote figures (the
/// merge gives each shard's).
fn comparable(report: &Report, shards: u32) -> Value {
    let mut v = serde_json::to_value(report).unwrap();
    let o = v.as_object_mut().unwrap();
    for key in ["timing", "latency", "shard"] {
        o.remove(key);
    }
    o["scenario"].as_object_mut().unwrap().remove("replay");
    // The seqs evidence cites follow the order the Teams side saw exchanges in, which webhook
    // deliveries (real time) can change by a few between any two runs.
    for rule in o["rules"].as_array_mut().unwrap() {
        for e in rule["evidence"].as_array_mut().unwrap() {
            e.as_object_mut().unwrap().remove("exchanges");
        }
    }
    for t in o["thresholds"].as_array_mut().unwrap() {
        // A latency figure.
        if t["name"] == "max_ack_p99_ms" {
            t.as_object_mut().unwrap().remove("measured");
        }
    }
    if shards == 1 {
        return v;
    }
    let counts = o["counts"].as_object_mut().unwrap();
    counts.remove("exchanges");
    counts.remove("cycles");
    for rule in o["rules"].as_array_mut().unwrap() {
        let rule = rule.as_object_mut().unwrap();
        if rule["summary"]
            .as_str()
            .unwrap()
            .bytes()
            .any(|b| b.is_ascii_digit())
        {
            rule.remove("summary");
        }
        if EXCHANGE_RULES.contains(&rule["rule"].as_str().unwrap()) {
            for key in ["failures", "exercised", "evidence"] {
                rule.remove(key);
            }
            continue;
        }
        // QUA-CLASS judges the records in the captured bodies of quality pages: a shard's pages
        // are smaller, so fewer bodies are cut at the capture limit and more records judged. Its
        // failures are records, judged alike wherever they are read.
        if rule["rule"] == "QUA-CLASS" {
            rule.remove("exercised");
            if rule["outcome"] != "failed" {
                rule.remove("outcome");
            }
        }
        let kept_all = rule["failures"].as_u64().unwrap() <= oc_reports::MAX_EVIDENCE as u64;
        let mut notes: Vec<String> = rule["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| without_seqs(e["note"].as_str().unwrap()))
            .collect();
        notes.sort();
        if kept_all {
            rule.insert("evidence".into(), notes.into());
        } else {
            rule.remove("evidence");
        }
    }
    v
}

/// Every difference between two JSON values, by pointer.
fn differences(a: &Value, b: &Value, at: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for key in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                let at = format!("{at}/{key}");
                match (x.get(key), y.get(key)) {
                    (Some(p), Some(q)) => differences(p, q, &at, out),
                    _ => out.push(format!("{at}: only on one side")),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                differences(p, q, &format!("{at}/{i}"), out);
            }
        }
        _ if a != b => out.push(format!("{at}: {a} whole, {b} merged")),
        _ => {}
    }
}

fn assert_merges_to_the_whole_run(name: &str, length_ms: Option<i64>) {
    let whole = run_to(name, length_ms, None, &out_root().join(name).join("whole"));
    assert_eq!(
        whole.verdict,
        Verdict::Passed,
        "{name}: {}",
        whole.scenario.replay
    );
    assert!(whole.counts.calls > 0, "{name}: no call to compare");
    for count in 1..=3 {
        let (merged, _) = sharded(name, length_ms, count);
        let mut found = Vec::new();
        differences(
            &comparable(&whole, count),
            &comparable(&merged, count),
            "",
            &mut found,
        );
        assert!(
            found.is_empty(),
            "{name}: {count} shards merged differ from the whole run:\n{}",
            found.join("\n")
        );
        assert_eq!(merged.shard.as_ref().map(|s| s.count), Some(count));
    }
}

#[test]
fn smoke_in_shards_merges_to_the_whole_run() {
    assert_merges_to_the_whole_run("smoke", Some(12 * HOUR));
}

/// Drift of every kind, fabricated calls, evidence of a failing rule: the drift percentiles and
/// bins, the confusion matrix and the evidence notes merge exactly.
#[test]
fn drift_mixed_in_shards_merges_to_the_whole_run() {
    assert_merges_to_the_whole_run("drift-mixed", Some(12 * HOUR));
}

/// Late records and corrections: DUR-DEADLINE's evidence and the late flags.
#[test]
fn late_and_corrected_in_shards_merges_to_the_whole_run() {
    assert_merges_to_the_whole_run("late-and-corrected", Some(12 * HOUR));
}

/// A misbehaving carrier: the rule it breaks fails in the merge as in the whole run.
#[test]
fn a_misbehaving_carrier_in_shards_merges_to_the_whole_run() {
    assert_merges_to_the_whole_run("profile-num-state", Some(12 * HOUR));
}

/// Four tenants: whole tenants dealt to 2 and 3 shards (the others deal blocks).
#[test]
fn scale_in_shards_merges_to_the_whole_run() {
    assert_merges_to_the_whole_run("scale", Some(HOUR));
}

/// A shard's folder, copied to `to`, with its report.json changed by `edit`.
fn altered(from: &Path, to: &Path, edit: impl FnOnce(&mut Value)) -> PathBuf {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
    let path = to.join("report.json");
    let mut report: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut report);
    std::fs::write(&path, serde_json::to_string(&report).unwrap()).unwrap();
    to.to_path_buf()
}

fn refusal(dirs: &[PathBuf]) -> String {
    let out = out_root().join("refused");
    match merge::merge_dirs(dirs, &out) {
        Ok(_) => panic!("merged {dirs:?}"),
        Err(err) => {
            assert_eq!(err.exit_code(), 2, "{err}");
            assert!(!matches!(err, MergeError::Write(_)));
            err.to_string()
        }
    }
}

#[test]
fn notes_lose_their_seqs() {
    assert_eq!(
        without_seqs("page (seq 231) links to seq 7; seq x"),
        "page (seq #) links to seq #; seq #x"
    );
}

#[test]
fn a_merge_refuses_shards_that_are_not_every_finished_shard_of_one_run() {
    let (_, dirs) = sharded("smoke", Some(2 * HOUR), 3);
    let root = out_root().join("smoke-refusals");

    let why = refusal(&dirs[..2]);
    assert!(why.contains("shard 2/3 missing"), "{why}");

    let why = refusal(&[dirs[0].clone(), dirs[1].clone(), dirs[1].clone()]);
    assert!(why.contains("shard 1/3 is given twice"), "{why}");

    let reseeded = altered(&dirs[2], &root.join("seed"), |r| {
        r["scenario"]["seed"] = 7.into();
    });
    let why = refusal(&[dirs[0].clone(), dirs[1].clone(), reseeded]);
    assert!(why.contains("their seeds differ: 42 and 7"), "{why}");

    let other_file = altered(&dirs[2], &root.join("digest"), |r| {
        r["shard"]["scenarioDigest"] = format!("sha256:{}", "0".repeat(64)).into();
    });
    let why = refusal(&[dirs[0].clone(), dirs[1].clone(), other_file]);
    assert!(why.contains("their scenario files differ"), "{why}");

    let other_version = altered(&dirs[2], &root.join("version"), |r| {
        r["harnessVersion"] = "0.0.0".into();
    });
    let why = refusal(&[dirs[0].clone(), dirs[1].clone(), other_version]);
    assert!(why.contains("their harness versions differ"), "{why}");

    let other_count = altered(&dirs[2], &root.join("count"), |r| {
        r["shard"]["count"] = 4.into();
    });
    let why = refusal(&[dirs[0].clone(), dirs[1].clone(), other_count]);
    assert!(
        why.contains("they were cut into 3 shards and 4 shards"),
        "{why}"
    );

    // Started again and stopped: the mark says unfinished, the report is an earlier run's.
    let restarted = altered(&dirs[2], &root.join("restarted"), |_| {});
    let mark = restarted.join("shard.json");
    let text = std::fs::read_to_string(&mark).unwrap();
    std::fs::write(
        &mark,
        text.replace("\"finished\": true", "\"finished\": false"),
    )
    .unwrap();
    let why = refusal(&[dirs[0].clone(), dirs[1].clone(), restarted.clone()]);
    assert!(why.contains("shard 2/3 did not finish"), "{why}");
    std::fs::remove_file(restarted.join("report.json")).unwrap();
    let why = refusal(&[dirs[0].clone(), dirs[1].clone(), restarted]);
    assert!(
        why.contains("shard 2/3 started but did not finish"),
        "{why}"
    );

    let whole = out_root().join("smoke-refusals-whole");
    run_to("smoke", Some(HOUR), None, &whole);
    let why = refusal(&[dirs[0].clone(), whole]);
    assert!(why.contains("a whole run's report, not a shard's"), "{why}");

    let why = refusal(&[root.join("nothing-here")]);
    assert!(why.contains("not a shard's report folder"), "{why}");
}
