//! The `oc-harness reconcile` binary on the fixtures: eight Teams calls in three shapes against
//! the carrier CSV, with one call of each class that is not `matched`, a repeated call id, a
//! carrier row without an id, and a billed duration that differs from the CDR.

use std::io::Write as _;
use std::path::Path;

use super::{fixture, harness, report, scratch};

/// The fixture's Teams rows, one JSON object each.
fn teams_rows() -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(fixture("teams-pages.json")).unwrap();
    serde_json::Deserializer::from_str(&text)
        .into_iter::<serde_json::Value>()
        .flat_map(|page| page.unwrap()["value"].as_array().unwrap().clone())
        .collect()
}

/// The rows as NDJSON.
fn ndjson(rows: &[serde_json::Value]) -> String {
    rows.iter().map(|r| format!("{r}\n")).collect()
}

/// The rows as the m365 CLI's CSV: a header of property names, values quoted when needed.
fn m365_csv(rows: &[serde_json::Value]) -> String {
    let names: Vec<String> = rows[0].as_object().unwrap().keys().cloned().collect();
    let mut out = names.join(",") + "\n";
    for row in rows {
        let fields: Vec<String> = names
            .iter()
            .map(|n| match &row[n] {
                serde_json::Value::Null => String::new(),
                serde_json::Value::String(s) if s.contains([',', '"']) => {
                    format!("\"{}\"", s.replace('"', "\"\""))
                }
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect();
        out += &(fields.join(",") + "\n");
    }
    out
}

fn gzip(path: &Path, content: &[u8]) {
    let mut encoder = flate2::write::GzEncoder::new(
        std::fs::File::create(path).unwrap(),
        flate2::Compression::fast(),
    );
    encoder.write_all(content).unwrap();
    encoder.finish().unwrap();
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn every_teams_shape_reconciles_the_same_and_writes_the_files() {
    let dir = scratch("shapes");
    let rows = teams_rows();
    assert_eq!(rows.len(), 8);
    // Names that say nothing of the content: detection reads the bytes.
    std::fs::write(dir.join("rows.txt"), ndjson(&rows)).unwrap();
    std::fs::write(dir.join("calls.data"), m365_csv(&rows)).unwrap();
    gzip(
        &dir.join("pages.json"),
        &std::fs::read(fixture("teams-pages.json")).unwrap(),
    );
    let array = serde_json::to_string(&rows).unwrap();
    std::fs::write(dir.join("array.json"), &array).unwrap();
    let carrier_gz = dir.join("carrier.csv.gz");
    gzip(&carrier_gz, &std::fs::read(fixture("carrier.csv")).unwrap());
    let inputs = [
        ("pages", fixture("teams-pages.json"), "graph-json"),
        ("gzip-pages", dir.join("pages.json"), "graph-json"),
        ("ndjson", dir.join("rows.txt"), "ndjson"),
        ("csv", dir.join("calls.data"), "m365-csv"),
        ("array", dir.join("array.json"), "graph-json"),
    ];
    let mut first: Option<(serde_json::Value, String)> = None;
    for (name, teams, shape) in inputs {
        let out = dir.join(name);
        let mut args = vec!["reconcile", "--teams", teams.to_str().unwrap()];
        args.extend([
            "--carrier",
            carrier_gz.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        let output = harness(&args);
        let stdout = text(&output.stdout);
        // Mismatches found: exit 1, for a CI billing check.
        assert_eq!(
            output.status.code(),
            Some(1),
            "{name}: {stdout}{}",
            text(&output.stderr)
        );
        assert!(
            stdout.contains("classes: 6 matched, 1 drift, 1 missing, 1 unexpected"),
            "{name}: {stdout}"
        );
        assert!(
            stdout.contains("Teams rows:   read 8 = rejected 0 + filtered 0 + reconciled 8"),
            "{name}: {stdout}"
        );
        for file in ["report.json", "summary.md", "report.html", "mismatches.csv"] {
            assert!(out.join(file).is_file(), "{name}: {file}");
        }
        let json = report(&out);
        assert_eq!(json["inputs"]["teams"][0]["shape"], shape, "{name}");
        assert_eq!(json["inputs"]["carrier"][0]["gzip"], true);
        let mismatches = std::fs::read_to_string(out.join("mismatches.csv")).unwrap();
        let mut comparable = json.clone();
        comparable["inputs"] = serde_json::Value::Null;
        comparable["timing"] = serde_json::Value::Null;
        match &first {
            None => first = Some((comparable, mismatches)),
            Some((report, lines)) => {
                assert_eq!(&comparable, report, "{name}");
                assert_eq!(&mismatches, lines, "{name}");
            }
        }
    }
    let (json, mismatches) = first.unwrap();
    assert_eq!(
        json["classes"],
        serde_json::json!({"matched": 6, "drift": 1, "missing": 1, "unexpected": 1})
    );
    assert_eq!(
        json["carrierRows"],
        serde_json::json!({"read": 8, "rejected": 0, "filtered": 0, "reconciled": 8})
    );
    assert_eq!(json["verdict"], "mismatches");
    assert_eq!(json["durationSource"]["operatorBilledDiffers"], 1);
    assert_eq!(json["durationSource"]["microsoft"], 1);
    assert_eq!(json["durationSource"]["microsoftWithCarrierCdr"], 0);
    assert_eq!(json["drift"]["maxMs"], 3000.0);
    assert_eq!(json["drift"]["minMs"], -100.0);
    assert_eq!(
        json["charges"]["teams"],
        serde_json::json!([{"currency": "USD", "amount": 0.08}])
    );
    assert_eq!(json["byDay"].as_array().unwrap().len(), 2);
    let lines: Vec<&str> = mismatches.lines().collect();
    assert_eq!(
        lines[0],
        "class,billed_differs,call_id,calling_number,called_number,teams_start,teams_end,teams_duration_ms,teams_billed_s,duration_source,carrier_connect,carrier_end,carrier_duration_ms,difference_ms"
    );
    assert_eq!(
        &lines[1..],
        [
            "drift,,c2,+14255550101,+12065550100,2026-01-05T10:05:00.000Z,2026-01-05T10:06:00.000Z,60000,63,operator,2026-01-05T10:05:00.000Z,2026-01-05T10:06:03.000Z,63000,3000",
            "missing,,c3,+12065550100,+14255550101,2026-01-05T10:10:00.000Z,2026-01-05T10:11:30.000Z,90000,90,microsoft,,,,",
            "matched,yes,c6,+14255550101,+12065550100,2026-01-06T13:00:00.000Z,2026-01-06T13:01:00.000Z,60000,45,operator,2026-01-06T13:00:00.000Z,2026-01-06T13:01:00.000Z,60000,0",
            "unexpected,,c99,+14255550103,+12065550100,,,,,,2026-01-06T14:00:00.000Z,2026-01-06T14:00:30.000Z,30000,",
        ]
    );
}

#[test]
fn everything_matched_is_exit_0_and_filters_add_up() {
    let dir = scratch("filters");
    let out = dir.join("out");
    // Only the first day, and only the calls that reconcile on it: c1, c4, c5 ×2 (c2 drifts,
    // c3 is missing): a window that leaves them out is counted as filtered.
    let output = harness(&[
        "reconcile",
        "--teams",
        fixture("teams-pages.json").to_str().unwrap(),
        "--carrier",
        fixture("carrier.csv").to_str().unwrap(),
        "--from",
        "2026-01-05T10:15:00Z",
        "--to",
        "2026-01-06",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        text(&output.stderr)
    );
    assert!(
        stdout.starts_with("reconcile — RECONCILED — all 3 calls matched within 1000 ms"),
        "{stdout}"
    );
    let json = report(&out);
    assert_eq!(
        json["teamsRows"],
        serde_json::json!({"read": 8, "rejected": 0, "filtered": 5, "reconciled": 3})
    );
    assert_eq!(
        json["carrierRows"],
        serde_json::json!({"read": 8, "rejected": 0, "filtered": 5, "reconciled": 3})
    );
    assert_eq!(
        std::fs::read_to_string(out.join("mismatches.csv"))
            .unwrap()
            .lines()
            .count(),
        1
    );

    // --operator keeps only that operator's Teams rows: none here, so every carrier row is
    // unexpected.
    let out = dir.join("operator");
    let output = harness(&[
        "reconcile",
        "--teams",
        fixture("teams-pages.json").to_str().unwrap(),
        "--carrier",
        fixture("carrier.csv").to_str().unwrap(),
        "--operator",
        "Fabrikam",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let json = report(&out);
    assert_eq!(json["teamsRows"]["filtered"], 8);
    assert_eq!(json["classes"]["unexpected"], 8);
}

#[test]
fn a_broken_row_is_located_counted_and_max_errors_stops() {
    let dir = scratch("broken");
    let out = dir.join("out");
    let broken = fixture("carrier-broken.csv");
    let output = harness(&[
        "reconcile",
        "--teams",
        fixture("teams-pages.json").to_str().unwrap(),
        "--carrier",
        broken.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    let location = format!(
        "{}:3:30: field `connect_time`: not an RFC 3339 timestamp",
        broken.display()
    );
    assert!(stdout.contains(&location), "{stdout}");
    let json = report(&out);
    assert_eq!(
        json["carrierRows"],
        serde_json::json!({"read": 8, "rejected": 1, "filtered": 0, "reconciled": 7})
    );
    // c2 has no carrier row now: missing, not drift.
    assert_eq!(
        json["classes"],
        serde_json::json!({"matched": 6, "drift": 0, "missing": 2, "unexpected": 1})
    );
    assert_eq!(json["errors"][0]["line"], 3);
    assert_eq!(json["errors"][0]["column"], 30);

    let output = harness(&[
        "reconcile",
        "--teams",
        fixture("teams-pages.json").to_str().unwrap(),
        "--carrier",
        broken.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--max-errors",
        "0",
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("more than 0 rows rejected") && stderr.contains(&location),
        "{stderr}"
    );
}

#[test]
fn bad_flags_and_inputs_are_exit_2_and_an_unwritable_out_exit_3() {
    let dir = scratch("bad");
    let teams = fixture("teams-pages.json");
    let carrier = fixture("carrier.csv");
    let (teams, carrier) = (teams.to_str().unwrap(), carrier.to_str().unwrap());
    let out = dir.join("out");
    let out = out.to_str().unwrap();
    let format = dir.join("format.toml");
    std::fs::write(&format, "[columns]\ncalling_number = \"calling_number\"\ncalled_number = \"called_number\"\nconnect_time = \"connect_time\"\nduraton = \"duration_ms\"\n").unwrap();
    let not_teams = dir.join("not-teams.csv");
    std::fs::write(&not_teams, "a,b,c\n1,2,3\n").unwrap();
    for (args, says) in [
        (vec!["--tolerance", "1 s"], "--tolerance"),
        (vec!["--from", "yesterday"], "--from"),
        (
            vec!["--carrier-format", format.to_str().unwrap()],
            "format.toml:5:1",
        ),
        (
            vec!["--teams", not_teams.to_str().unwrap()],
            "no `startDateTime` column",
        ),
        (
            vec!["--carrier", dir.join("absent.csv").to_str().unwrap()],
            "absent.csv: cannot read",
        ),
    ] {
        let mut all = vec![
            "reconcile",
            "--teams",
            teams,
            "--carrier",
            carrier,
            "--out",
            out,
        ];
        all.extend(args);
        let output = harness(&all);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{all:?}: {stderr}");
        assert!(stderr.contains(says), "{all:?}: {stderr}");
    }
    let file = dir.join("a-file");
    std::fs::write(&file, "").unwrap();
    let output = harness(&[
        "reconcile",
        "--teams",
        teams,
        "--carrier",
        carrier,
        "--out",
        file.join("sub").to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(3), "{}", text(&output.stderr));
    let help = harness(&["reconcile", "--help"]);
    let help = text(&help.stdout);
    for flag in [
        "--teams",
        "--carrier-format",
        "--tolerance",
        "--max-errors",
        "Exit code 0",
    ] {
        assert!(help.contains(flag), "{help}");
    }
}

#[test]
fn the_example_sbc_format_reads_its_sample() {
    let dir = scratch("sbc");
    let teams = dir.join("teams.ndjson");
    // The sample's first call, as Teams saw it (in UTC: the sample is at +01:00).
    std::fs::write(
        &teams,
        r#"{"callId":"a81f3c2e-0001","startDateTime":"2026-01-05T10:00:00.2500000Z","endDateTime":"2026-01-05T10:01:01.7500000Z","duration":62,"callType":"user_out","callerNumber":"+4930901820","calleeNumber":"+4989123456","callDurationSource":"operator","charge":0.04,"currency":"EUR"}"#,
    )
    .unwrap();
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/carrier-formats");
    let out = dir.join("out");
    let output = harness(&[
        "reconcile",
        "--teams",
        teams.to_str().unwrap(),
        "--carrier",
        docs.join("example-sbc.csv").to_str().unwrap(),
        "--carrier-format",
        docs.join("example-sbc.toml").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let json = report(&out);
    assert_eq!(
        json["classes"],
        serde_json::json!({"matched": 1, "drift": 0, "missing": 0, "unexpected": 2})
    );
    assert_eq!(json["charges"]["carrier"], 0.101);
}

#[test]
fn a_json_array_cut_short_is_a_rejected_row_after_the_rows_it_holds() {
    let dir = scratch("cut-short");
    let out = dir.join("out");
    let rows = teams_rows();
    // The rows as one JSON array whose closing bracket is missing: the rows in it still read,
    // and the file's end is reported as a rejected row at its last line.
    let items: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
    let teams = dir.join("teams.json");
    std::fs::write(&teams, format!("[\n{}\n", items.join(",\n"))).unwrap();
    let output = harness(&[
        "reconcile",
        "--teams",
        teams.to_str().unwrap(),
        "--carrier",
        fixture("carrier.csv").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stdout));
    let json = report(&out);
    let n = rows.len() as u64;
    assert_eq!(
        json["teamsRows"],
        serde_json::json!({"read": n + 1, "rejected": 1, "filtered": 0, "reconciled": n})
    );
    assert_eq!(
        json["errors"][0]["message"],
        "the top-level JSON array does not close: the file ends early"
    );
    // The line where the file ends: after the `[` line, the rows' lines and their last `\n`.
    assert_eq!(json["errors"][0]["line"], n + 2);
}
