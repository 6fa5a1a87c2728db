//! `oc-harness run --export DIR` against the run it exports: Teams' pages hold one row per
//! answered call of the carrier, chained by nextLink, each carrying the carrier's duration
//! exactly when the ground truth says it was reported in time; the carrier's CSV holds one
//! line per call its switch recorded, with the switch's duration.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oc_harness::reconcile::{ReconcileOptions, reconcile};
use oc_harness::run::export::{CDR_HEADER, page_name};
use oc_harness::run::{RunOptions, run};
use oc_observe::{CallTruth, GroundTruth};
use oc_protocol::graph::{GraphPage, PstnCallLogRow, duration_seconds, parse_graph_timestamp};
use oc_protocol::validate::is_e164;
use oc_protocol::{CallDurationSource, ReconClass, parse_timestamp};

use super::{load, out_dir, scenario_path};

/// Rows per page: small, so that half a day of drift-mixed takes several pages.
const PAGE_CAP: u32 = 40;

#[test]
fn export_writes_both_sides_of_the_run_as_its_ground_truth_says() {
    let mut scenario = load("drift-mixed");
    scenario.teams_faults.page_cap = PAGE_CAP;
    let export = out_dir("drift-mixed", "export-files");
    // A file left by an earlier export of more pages is not taken for this run's.
    std::fs::create_dir_all(export.join("teams")).unwrap();
    std::fs::write(export.join("teams").join(page_name(999)), b"{}").unwrap();
    let options = RunOptions {
        scenario_file: scenario_path("drift-mixed"),
        seed: None,
        out: out_dir("drift-mixed", "export"),
        progress: false,
        length_ms: Some(12 * 3_600_000),
        keep_history: true,
        export: Some(export.clone()),
        shard: None,
    };
    let system = actix_rt::System::new();
    let outcome = system
        .block_on(run(&scenario, &options))
        .unwrap_or_else(|e| panic!("could not run: {e}"));
    assert!(outcome.export_error.is_none(), "{:?}", outcome.export_error);
    assert!(
        outcome.report.scenario.replay.contains("--export"),
        "{}",
        outcome.report.scenario.replay
    );
    let truth = outcome
        .history
        .as_ref()
        .and_then(|h| h.truth.as_ref())
        .expect("the run kept its ground truth");
    let by_id: BTreeMap<&str, &CallTruth> = truth
        .calls
        .iter()
        .map(|c| (c.call_id.as_str(), c))
        .collect();

    let rows = read_pages(&export.join("teams"), outcome.exported.unwrap().pages);
    let answered = truth
        .calls
        .iter()
        .filter(|c| c.teams_duration_ms.is_some())
        .count();
    assert_eq!(
        rows.len(),
        answered,
        "one row per answered call of the carrier"
    );
    let (mut operator, mut microsoft) = (0, 0);
    for row in &rows {
        let call = by_id
            .get(row.call_id.as_str())
            .unwrap_or_else(|| panic!("{} is in no ground truth", row.call_id));
        let teams_ms = call.teams_duration_ms.expect("an answered call");
        let start = parse_graph_timestamp(&row.start_date_time).unwrap();
        let end = parse_graph_timestamp(&row.end_date_time).unwrap();
        assert_eq!(end - start, teams_ms, "{}: Teams' own times", row.call_id);
        let in_time = call.reported.last().filter(|_| !call.late);
        match in_time {
            Some(last) => {
                operator += 1;
                assert_eq!(
                    row.call_duration_source,
                    Some(CallDurationSource::Operator),
                    "{}",
                    row.call_id
                );
                assert_eq!(row.duration, duration_seconds(last.duration_ms));
            }
            None => {
                microsoft += 1;
                assert_eq!(
                    row.call_duration_source,
                    Some(CallDurationSource::Microsoft),
                    "{}: late {} or missing",
                    row.call_id,
                    call.late
                );
                assert_eq!(row.duration, duration_seconds(teams_ms));
            }
        }
        assert_eq!(row.operator.as_deref(), Some("carrier"));
        let ours = Some(call.telephone_number.as_str());
        assert!(
            row.caller_number.as_deref() == ours || row.callee_number.as_deref() == ours,
            "{}: the carrier's number is a party",
            row.call_id
        );
    }
    // drift-mixed drops and delays reports past the deadline: both sources are there.
    assert!(operator > 0 && microsoft > 0, "{operator} {microsoft}");

    let cdrs = std::fs::read_to_string(export.join("carrier").join("cdrs.csv")).unwrap();
    let mut lines = cdrs.lines();
    assert_eq!(lines.next(), Some(CDR_HEADER));
    let switch: BTreeMap<&str, i64> = truth
        .calls
        .iter()
        .filter_map(|c| Some((c.call_id.as_str(), c.switch_duration_ms?)))
        .collect();
    let mut seen = BTreeMap::new();
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), 6, "{line}");
        let connect = parse_timestamp(fields[3]).unwrap();
        let end = parse_timestamp(fields[4]).unwrap();
        let duration: i64 = fields[5].parse().unwrap();
        assert_eq!(end - connect, duration, "{line}");
        assert!(is_e164(fields[1]) && is_e164(fields[2]), "{line}");
        let call = by_id[fields[0]];
        assert!(
            fields[1] == call.telephone_number || fields[2] == call.telephone_number,
            "{line}"
        );
        assert!(seen.insert(fields[0], duration).is_none(), "{line} twice");
    }
    assert_eq!(seen, switch, "one line per call the switch recorded");
    let fabricated = truth
        .calls
        .iter()
        .filter(|c| c.origin == "fabricated")
        .count();
    assert!(fabricated > 0, "the switch recorded fabricated calls too");
    reconciling_the_export_gives_the_ground_truth(&export, truth);
}

/// `oc-harness reconcile` of the export's two sides gives every call the class the mock
/// carrier's ground truth gives it: the calls not matched, one by one, and the matched count.
fn reconciling_the_export_gives_the_ground_truth(export: &Path, truth: &GroundTruth) {
    let mut teams: Vec<PathBuf> = std::fs::read_dir(export.join("teams"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    teams.sort();
    let out = export.join("reconcile");
    let options = ReconcileOptions {
        teams,
        carrier: vec![export.join("carrier").join("cdrs.csv")],
        carrier_format: None,
        tolerance_ms: truth.tolerance_ms,
        from: None,
        to: None,
        operator: None,
        out: out.clone(),
        max_errors: Some(0),
        top_numbers: 5,
        threads: 2,
    };
    let outcome = reconcile(&options).unwrap_or_else(|e| panic!("reconcile: {e}"));
    let expected: BTreeMap<&str, String> = truth
        .calls
        .iter()
        .filter_map(|c| Some((c.call_id.as_str(), c.expected_class?)))
        .filter(|(_, class)| *class != ReconClass::Matched)
        .map(|(id, class)| (id, class.as_str().to_owned()))
        .collect();
    let mismatches = std::fs::read_to_string(out.join("mismatches.csv")).unwrap();
    let found: BTreeMap<&str, String> = mismatches
        .lines()
        .skip(1)
        .map(|line| line.split(',').collect::<Vec<_>>())
        .filter(|fields| fields[0] != "matched")
        .map(|fields| (fields[2], fields[0].to_owned()))
        .collect();
    let differ: Vec<_> = expected
        .iter()
        .filter(|(id, class)| found.get(*id) != Some(class))
        .map(|(id, class)| format!("{id}: truth {class}, reconcile {:?}", found.get(*id)))
        .chain(
            found
                .iter()
                .filter(|(id, _)| !expected.contains_key(*id))
                .map(|(id, class)| format!("{id}: truth matched or none, reconcile {class}")),
        )
        .collect();
    assert!(
        differ.is_empty(),
        "{} calls differ:\n{}",
        differ.len(),
        differ.join("\n")
    );
    let matched = truth
        .calls
        .iter()
        .filter(|c| c.expected_class == Some(ReconClass::Matched))
        .count() as u64;
    assert_eq!(outcome.report.classes.matched, matched);
}

/// Every page, in order, checked as a chain: each page but the last has a nextLink, and the
/// rows of all pages are distinct.
fn read_pages(dir: &Path, pages: u64) -> Vec<PstnCallLogRow> {
    assert!(pages > 1, "the page cap makes a chain: {pages} page(s)");
    let mut rows = Vec::new();
    for n in 1..=pages {
        let body = std::fs::read(dir.join(page_name(n))).unwrap();
        let page: GraphPage<PstnCallLogRow> = serde_json::from_slice(&body).unwrap();
        assert_eq!(page.count, Some(page.value.len() as u64));
        assert!(page.value.len() <= PAGE_CAP as usize);
        match &page.next_link {
            Some(link) => {
                assert!(n < pages, "page {n} of {pages} links on: {link}");
                assert!(link.contains("getPstnCalls(fromDateTime="), "{link}");
                assert!(link.contains("?$skiptoken="), "{link}");
                assert_eq!(page.value.len(), PAGE_CAP as usize, "page {n} is full");
            }
            None => assert_eq!(n, pages, "page {n} of {pages} ends the chain"),
        }
        rows.extend(page.value);
    }
    assert!(
        !dir.join(page_name(pages + 1)).exists(),
        "nothing after the last page"
    );
    assert!(
        !dir.join(page_name(999)).exists(),
        "the old page was removed"
    );
    let mut ids: Vec<&str> = rows.iter().map(|r| r.call_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), rows.len(), "no row twice");
    rows
}

/// The other bundled scenarios whose carrier drifts or whose records are corrected late:
/// reconciling their exports gives the ground truth's classes too.
#[test]
fn reconciling_the_exports_of_the_drift_scenarios_gives_their_ground_truth() {
    for name in ["drift-rounding", "late-and-corrected"] {
        let scenario = load(name);
        let export = out_dir(name, "export-files");
        let options = RunOptions {
            scenario_file: scenario_path(name),
            seed: None,
            out: out_dir(name, "export"),
            progress: false,
            length_ms: None,
            keep_history: true,
            export: Some(export.clone()),
            shard: None,
        };
        let system = actix_rt::System::new();
        let outcome = system
            .block_on(run(&scenario, &options))
            .unwrap_or_else(|e| panic!("{name}: could not run: {e}"));
        assert!(outcome.export_error.is_none(), "{:?}", outcome.export_error);
        let truth = outcome
            .history
            .as_ref()
            .and_then(|h| h.truth.as_ref())
            .expect("the run kept its ground truth");
        reconciling_the_export_gives_the_ground_truth(&export, truth);
    }
}
