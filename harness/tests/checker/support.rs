//! Loading fixture histories and asserting verdicts.
//!
//! A fixture (`fixtures/<name>.json`) is a `History` as JSON, written by hand. To keep them
//! small and readable, the loader fills in what a fixture leaves out before deserialising:
//! every top-level list defaults to empty and `settings` to the defaults; an exchange defaults to
//! a carrier → Teams `GET` of carrier `carrier` taking 1 ms (a webhook attempt, recognised by its
//! `detail.kind`, to a Teams → carrier `POST`); a body may be written as JSON instead of a string
//! of it; and the identifiers and timestamps no rule reads (tenant ids, `effectiveDateTime`,
//! quality records' codecs and maxima, ...) get fixed values. Everything a rule reads is written
//! out in the fixture.

use std::path::PathBuf;

use oc_harness::checker::History;
use oc_harness::checker::rules;
use oc_protocol::RuleId;
use oc_reports::{Outcome, RuleVerdict};
use serde_json::{Map, Value, json};

const TENANT: &str = "c0ffee00-0000-4000-8000-000000000001";
const TIME: &str = "2026-11-26T09:00:00.000Z";

/// Every fixture file's name, without `.json`, in name order.
pub(crate) fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir())
        .expect("the fixtures folder")
        .map(|entry| entry.expect("a fixture").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/checker/fixtures")
}

/// The history of `fixtures/<name>.json`, with the defaults filled in.
pub(crate) fn load(name: &str) -> History {
    let path = dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("failed to read {}: {e}", path.display()));
    let value: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    let value = complete(value);
    serde_json::from_value(value)
        .unwrap_or_else(|e| panic!("{} is not a History: {e}", path.display()))
}

/// Judges one rule on a fixture.
pub(crate) fn judge(rule: RuleId, name: &str) -> RuleVerdict {
    rules::check(rule, &load(name))
}

/// Asserts a verdict's outcome, failure count and the `seq`s each evidence item cites.
#[track_caller]
pub(crate) fn assert_verdict(
    verdict: &RuleVerdict,
    outcome: Outcome,
    failures: u64,
    evidence: &[&[u64]],
) {
    assert_eq!(verdict.outcome, outcome, "{verdict:#?}");
    assert_eq!(verdict.failures, failures, "{verdict:#?}");
    let cited: Vec<&[u64]> = verdict
        .evidence
        .iter()
        .map(|e| e.exchanges.as_slice())
        .collect();
    assert_eq!(cited, evidence, "{verdict:#?}");
    assert!(!verdict.summary.is_empty());
    for e in &verdict.evidence {
        assert!(!e.note.is_empty());
    }
}

/// Asserts that evidence item `i` says `words`.
#[track_caller]
pub(crate) fn assert_note(verdict: &RuleVerdict, i: usize, words: &str) {
    let note = &verdict.evidence[i].note;
    assert!(
        note.contains(words),
        "note {i} {note:?} does not say {words:?}"
    );
}

fn complete(mut value: Value) -> Value {
    let history = value.as_object_mut().expect("a fixture is a JSON object");
    let defaults = serde_json::to_value(History::default()).unwrap();
    for (key, default) in defaults.as_object().unwrap() {
        history
            .entry(key.clone())
            .or_insert_with(|| default.clone());
    }
    for (key, fill) in [
        ("exchanges", exchange as fn(&mut Map<String, Value>)),
        ("events", event),
        ("teamsNumbers", teams_number),
        ("probes", probe),
        ("qualityServed", quality),
        ("reconciliation", item),
        ("reported", reported),
        ("calls", call),
    ] {
        for entry in history[key].as_array_mut().unwrap() {
            fill(entry.as_object_mut().expect("an object"));
        }
    }
    if let Some(truth) = history.get_mut("truth").and_then(Value::as_object_mut) {
        ground_truth(truth);
    }
    value
}

fn defaults(object: &mut Map<String, Value>, defaults: Value) {
    for (key, value) in defaults.as_object().unwrap() {
        object.entry(key.clone()).or_insert_with(|| value.clone());
    }
}

fn exchange(e: &mut Map<String, Value>) {
    // A body may be written as JSON rather than as a string of it; a quality page's records
    // get the fields no rule reads.
    let quality_page = e
        .get("detail")
        .is_some_and(|d| d["kind"] == "feedPage" && d["feed"] == "quality");
    if let Some(body) = e.get_mut("responseBody").filter(|b| !b.is_string()) {
        if quality_page && let Some(records) = body["value"].as_array_mut() {
            for record in records {
                quality(
                    record
                        .as_object_mut()
                        .expect("a quality record is an object"),
                );
            }
        }
        let text = body.to_string();
        e.insert("responseBody".into(), Value::String(text));
    }
    let webhook = e
        .get("detail")
        .and_then(|d| d.get("kind"))
        .is_some_and(|k| k == "webhook");
    if webhook {
        defaults(
            e,
            json!({
                "direction": "teamsToCarrier",
                "method": "POST",
                "url": "http://carrier.test/oc/v1/notifications/number-assignments",
            }),
        );
    }
    defaults(
        e,
        json!({
            "direction": "carrierToTeams",
            "carrier": "carrier",
            "method": "GET",
            "simTime": 0,
            "wallTimeMs": 0,
            "latencyUs": 1000,
            "requestHeaders": [],
        }),
    );
}

fn event(e: &mut Map<String, Value>) {
    defaults(
        e,
        json!({"type": "assigned", "tenantId": TENANT, "effectiveDateTime": TIME}),
    );
}

fn teams_number(n: &mut Map<String, Value>) {
    defaults(n, json!({"tenantId": TENANT, "lastChangedDateTime": TIME}));
}

fn probe(p: &mut Map<String, Value>) {
    let number = p["telephoneNumber"].clone();
    if let Some(view) = p.get_mut("view").and_then(Value::as_object_mut) {
        defaults(view, json!({"telephoneNumber": number, "tenantId": TENANT}));
        defaults(p, json!({"status": 200}));
    }
}

fn quality(q: &mut Map<String, Value>) {
    defaults(
        q,
        json!({
            "streamDirection": "callerToCallee",
            "audioCodec": "silk",
            "maxJitterMs": 0,
            "maxPacketLossRate": 0.0,
            "maxRoundTripTimeMs": 0,
            "averageAudioDegradation": 0.0,
            "averageRatioOfConcealedSamples": 0.0,
            "availableDateTime": TIME,
        }),
    );
}

fn item(i: &mut Map<String, Value>) {
    defaults(
        i,
        json!({
            "telephoneNumber": "+14255550100",
            "late": false,
            "duplicate": false,
            "corrected": false,
        }),
    );
}

fn reported(r: &mut Map<String, Value>) {
    defaults(
        r,
        json!({
            "telephoneNumber": "+14255550100",
            "repeated": false,
        }),
    );
}

fn call(c: &mut Map<String, Value>) {
    defaults(
        c,
        json!({
            "telephoneNumber": "+14255550100",
            "durationMs": 0,
            "end": 0,
            "corrected": false,
        }),
    );
}

fn ground_truth(t: &mut Map<String, Value>) {
    defaults(
        t,
        json!({
            "seed": 1,
            "profile": "correct",
            "toleranceMs": 1000,
            "deadlineMs": 86_400_000,
            "drift": [],
            "counts": {"matched": 0, "drift": 0, "missing": 0, "unexpected": 0},
            "flags": {"late": 0, "duplicate": 0, "corrected": 0},
            "calls": [],
        }),
    );
    for call in t["calls"].as_array_mut().unwrap() {
        defaults(
            call.as_object_mut().unwrap(),
            json!({
                "telephoneNumber": "+14255550100",
                "origin": "cdr",
                "reported": [],
                "tags": [],
                "late": false,
                "duplicate": false,
                "corrected": false,
            }),
        );
    }
}
