//! A small fixed report and its evidence, shared by the renderings' tests (no wall-clock
//! values: every figure is a constant, so snapshots are stable).

use oc_protocol::{
    DriftStats, MinutesTotals, Party, ReconCounts, ReconFlagCounts, ReconciliationSummary, RuleId,
    Severity,
};

use crate::{
    Accuracy, CaseResult, Certification, CertificationVerdict, Conservation, DriftBin, Evidence,
    EvidenceExchange, ExchangeDirection, Exercised, ExpectationResult, LATENCY_QUANTILES,
    LatencyMeasure, LatencyPoint, LatencySummary, LoadExecutorInterval, LoadInterval,
    LoadMetricInterval, LoadPhase, LoadSection, Outcome, QualityBucket, Report, RuleVerdict,
    RunCounts, SCHEMA_VERSION, ScenarioInfo, ThresholdResult, Timing, Verdict,
};

fn curve(us: [u64; 7]) -> Vec<LatencyPoint> {
    LATENCY_QUANTILES
        .iter()
        .zip(us)
        .map(|(&quantile, us)| LatencyPoint { quantile, us })
        .collect()
}

fn bin(from_ms: i64, to_ms: i64, count: u64) -> DriftBin {
    DriftBin {
        from_ms,
        to_ms,
        count,
    }
}

fn bucket(start: &str, streams: u64, poor: u64) -> QualityBucket {
    QualityBucket {
        start: start.to_owned(),
        streams,
        poor,
    }
}

fn rule(rule: RuleId, severity: Severity, outcome: Outcome, summary: &str) -> RuleVerdict {
    RuleVerdict {
        rule,
        severity,
        party: Party::Carrier,
        outcome,
        summary: summary.to_owned(),
        failures: 0,
        exercised: Vec::new(),
        evidence: Vec::new(),
    }
}

/// A failed run: two `must` rules and one `should` rule broken, one rule not exercised (one of
/// its counts below its minimum), one threshold missed, and notes with characters that XML and
/// Markdown must escape.
pub(crate) fn small_report() -> Report {
    let reported = || vec![Exercised::new("reported calls", 12, 1)];
    let mut signature = rule(
        RuleId::SecSignature,
        Severity::Must,
        Outcome::Passed,
        "3 forged notifications sent; 0 applied",
    );
    signature.exercised = vec![Exercised::new("forged signatures sent", 3, 3)];
    let mut order = rule(
        RuleId::NumOrder,
        Severity::Must,
        Outcome::NotExercised,
        "no event arrived after a newer one",
    );
    order.exercised = vec![
        Exercised::new("stale deliveries made", 0, 1),
        Exercised::new("redeliveries made", 5, 0),
    ];
    let mut duplicate = rule(
        RuleId::DurDuplicate,
        Severity::Should,
        Outcome::Failed,
        "12 reported calls reconciled; 1 reported again identically",
    );
    duplicate.failures = 1;
    duplicate.exercised = reported();
    duplicate.evidence = vec![Evidence {
        note: "call call-000000007 was reported more than once with the same record".into(),
        exchanges: vec![42],
    }];
    let mut deadline = rule(
        RuleId::DurDeadline,
        Severity::Must,
        Outcome::Failed,
        "12 reported calls reconciled; 2 first reported after the deadline",
    );
    deadline.failures = 2;
    deadline.exercised = reported();
    deadline.evidence = vec![
        Evidence {
            note: "call call-000000003 was reported <late> & \"after\" the 'deadline' | 3 h".into(),
            exchanges: vec![17],
        },
        Evidence {
            note: "call call-000000009 was first reported after the deadline".into(),
            exchanges: vec![42, 17],
        },
    ];
    let mut complete = rule(
        RuleId::DurComplete,
        Severity::Must,
        Outcome::Failed,
        "11 answered calls reconciled; 1 never reported",
    );
    complete.failures = 1;
    complete.exercised = vec![Exercised::new("answered calls on assigned numbers", 11, 1)];
    complete.evidence = vec![Evidence {
        note: "call call-000000011 was never reported".into(),
        exchanges: Vec::new(),
    }];
    Report {
        schema_version: SCHEMA_VERSION,
        harness_version: "0.1.0".into(),
        scenario: ScenarioInfo {
            name: "tiny".into(),
            description: "A small fixed report for the renderings' tests.".into(),
            seed: 7,
            clock: "virtual".into(),
            start: "2026-11-02T00:00:00.000Z".into(),
            length_ms: 3_600_000,
            carrier: "mock-carrier (late)".into(),
            replay: "oc-harness run scenarios/tiny.toml --seed 7".into(),
        },
        verdict: Verdict::Failed,
        rules: vec![signature, order, duplicate, deadline, complete],
        thresholds: vec![
            ThresholdResult {
                name: "min_match_rate".into(),
                limit: 0.9,
                measured: Some(0.75),
                passed: false,
            },
            ThresholdResult {
                name: "max_drift_p99_ms".into(),
                limit: 2000.0,
                measured: Some(1500.0),
                passed: true,
            },
        ],
        expectation: ExpectationResult {
            expected_failures: vec![RuleId::DurDeadline],
            actual_failures: vec![RuleId::DurDeadline, RuleId::DurComplete],
            met: false,
        },
        reconciliation: Some(ReconciliationSummary {
            from: "2026-11-01T00:00:00.000Z".into(),
            to: "2026-11-03T00:00:00.000Z".into(),
            tolerance_ms: 1000,
            counts: ReconCounts {
                matched: 9,
                drift: 2,
                missing: 1,
                unexpected: 0,
            },
            flags: ReconFlagCounts {
                late: 2,
                duplicate: 1,
                corrected: 0,
            },
            match_rate: Some(0.75),
            drift_ms: DriftStats {
                count: 11,
                min: Some(-20),
                p50: Some(0),
                p90: Some(1500),
                p99: Some(1500),
                max: Some(1800),
            },
            minutes: MinutesTotals {
                teams: 30.5,
                carrier: 31.25,
                difference: 0.75,
            },
        }),
        accuracy: Some(Accuracy {
            confusion: Vec::new(),
            disagreements: Vec::new(),
            disagreement_count: 0,
        }),
        conservation: Conservation {
            answered_calls: 12,
            classified: 12,
            violations: Vec::new(),
            holds: true,
        },
        counts: RunCounts {
            numbers: 4,
            events: 4,
            calls: 15,
            answered_calls: 12,
            exchanges: 60,
            cycles: 12,
        },
        latency: vec![
            LatencySummary {
                exchange: "POST /oc/v1/call-durations".into(),
                measure: LatencyMeasure::TeamsHandler,
                count: 12,
                p50_us: 30,
                p90_us: 48,
                p99_us: 99,
                max_us: 136,
                curve: curve([30, 41, 48, 60, 99, 136, 136]),
            },
            LatencySummary {
                exchange: "webhook".into(),
                measure: LatencyMeasure::RoundTrip,
                count: 4,
                p50_us: 900,
                p90_us: 2_000,
                p99_us: 5_000_000,
                max_us: 5_000_000,
                curve: curve([900, 1_500, 2_000, 2_000, 5_000_000, 5_000_000, 5_000_000]),
            },
        ],
        drift_distribution: vec![
            bin(-99, -10, 1),
            bin(-9, -1, 0),
            bin(0, 0, 8),
            bin(1, 9, 0),
            bin(10, 99, 0),
            bin(100, 999, 0),
            bin(1000, 9999, 2),
        ],
        quality_over_time: vec![
            bucket("2026-11-02T00:00:00.000Z", 8, 0),
            bucket("2026-11-02T00:15:00.000Z", 6, 3),
            bucket("2026-11-02T00:30:00.000Z", 0, 0),
            bucket("2026-11-02T00:45:00.000Z", 10, 1),
        ],
        timing: Timing {
            started_at: "2026-12-01T09:30:00.000Z".into(),
            wall_ms: 1250,
            calls_per_second: 12.0,
        },
        certification: None,
        load: None,
        shard: None,
    }
}

/// [`small_report`] as a misbehaving carrier's run that showed what its scenario expects:
/// DUR-DEADLINE and DUR-COMPLETE failed, as the scenario expects, every threshold held, and the
/// run passed, with DUR-DUPLICATE's warning and NUM-ORDER not exercised.
pub(crate) fn passed_with_expected_failures() -> Report {
    let mut report = small_report();
    report.expectation = ExpectationResult {
        expected_failures: vec![RuleId::DurDeadline, RuleId::DurComplete],
        actual_failures: vec![RuleId::DurDeadline, RuleId::DurComplete],
        met: true,
    };
    report.thresholds[0].measured = Some(0.95);
    report.thresholds[0].passed = true;
    report.verdict = Verdict::Passed;
    report
}

/// [`small_report`] with every figure that can be absent absent: no match rate, no drift
/// percentiles, thresholds without a measurement; conservation broken and the checker at odds
/// with the ground truth on a call one side has no class for.
pub(crate) fn report_without_measurements() -> Report {
    let mut report = small_report();
    let recon = report
        .reconciliation
        .as_mut()
        .expect("small_report reconciles");
    recon.match_rate = None;
    recon.drift_ms = DriftStats::default();
    for t in &mut report.thresholds {
        t.measured = None;
        t.passed = false;
    }
    report.conservation.violations = vec!["call-000000004 classified twice".into()];
    report.conservation.holds = false;
    report.accuracy = Some(Accuracy {
        confusion: Vec::new(),
        disagreements: vec![crate::Disagreement {
            call_id: "call-000000005".into(),
            teams: None,
            truth: Some(oc_protocol::ReconClass::Matched),
        }],
        disagreement_count: 1,
    });
    report.verdict = Verdict::HarnessError;
    report
}

fn case(id: &str, title: &str, rules: &[RuleId], outcome: Outcome, summary: &str) -> CaseResult {
    CaseResult {
        id: id.to_owned(),
        title: title.to_owned(),
        rules: rules.to_vec(),
        outcome,
        summary: summary.to_owned(),
        exercised: Vec::new(),
        evidence: Vec::new(),
    }
}

/// [`small_report`] as `oc-harness certify` would write it: not certified, with two cases
/// passed, one failed (its evidence cites exchange 17 of [`exchanges`], and has a note with
/// characters that XML and Markdown must escape), one not exercised (a count below its
/// minimum) and one passed with a warning (its `should` rule DUR-DUPLICATE failed). Every case
/// states what it exercised.
pub(crate) fn certification_report() -> Report {
    let mut report = small_report();
    report.scenario = ScenarioInfo {
        name: "certify".into(),
        description: "Certification of a carrier's integration over the wire.".into(),
        seed: 7,
        clock: "realtime".into(),
        start: "2026-11-02T00:00:00.000Z".into(),
        length_ms: 120_000,
        carrier: "https://carrier.example.net/oc".into(),
        replay: "oc-harness certify --carrier https://carrier.example.net/oc --seed 7".into(),
    };
    let mut convergence = case(
        "provisioning-convergence",
        "assign, update and unassign converge: the state probe agrees with Teams",
        &[RuleId::NumAck, RuleId::NumState],
        Outcome::Passed,
        "4 events acknowledged; the state probe agreed with Teams after each",
    );
    convergence.exercised = vec![
        Exercised::new("events acknowledged", 4, 1),
        Exercised::new("numbers probed", 4, 1),
    ];
    let mut signatures = case(
        "webhook-signatures",
        "forged notifications are refused",
        &[RuleId::SecSignature],
        Outcome::Passed,
        "3 forged notifications sent; 0 applied",
    );
    signatures.exercised = vec![Exercised::new("forged signatures sent", 3, 3)];
    let mut deadline = case(
        "duration-deadline",
        "every answered call's duration is reported, before the reporting deadline",
        &[RuleId::DurDeadline, RuleId::DurComplete],
        Outcome::Failed,
        "12 answered calls; 1 reported after the deadline, 1 never reported",
    );
    deadline.exercised = vec![
        Exercised::new("reported calls", 12, 1),
        Exercised::new("answered calls on assigned numbers", 12, 1),
    ];
    deadline.evidence = vec![
        Evidence {
            note: "call call-000000003 was reported <late> & \"after\" the 'deadline' | 3 h".into(),
            exchanges: vec![17],
        },
        Evidence {
            note: "call call-000000011 was never reported".into(),
            exchanges: Vec::new(),
        },
    ];
    let mut throttle = case(
        "cdr-throttle",
        "Retry-After is honoured when the CDR feed throttles",
        &[RuleId::CdrThrottle],
        Outcome::NotExercised,
        "the carrier never read the CDR feed, so it was never throttled",
    );
    throttle.exercised = vec![
        Exercised::new("429s answered", 0, 1),
        Exercised::new("retries seen", 0, 0),
    ];
    let mut idempotency = case(
        "duration-idempotency",
        "a duration report's Idempotency-Key is reused only for a retry of the same body; each \
         call is reported once",
        &[RuleId::DurIdempotent, RuleId::DurDuplicate],
        Outcome::Passed,
        "DUR-IDEMPOTENT: 12 reports, 2 retried with their key; DUR-DUPLICATE: 12 reported calls \
         reconciled; 1 reported again identically (a warning: should, not must)",
    );
    idempotency.exercised = vec![
        Exercised::new("answers lost", 2, 1),
        Exercised::new("retries seen", 2, 1),
        Exercised::new("reported calls", 12, 1),
    ];
    idempotency.evidence = vec![Evidence {
        note: "DUR-DUPLICATE: call call-000000007 was reported more than once with the same \
               record"
            .into(),
        exchanges: vec![42],
    }];
    report.certification = Some(Certification {
        verdict: CertificationVerdict::NotCertified,
        carrier_url: "https://carrier.example.net/oc".into(),
        teams_url: "http://127.0.0.1:8081".into(),
        reporting_deadline_ms: 5_000,
        tolerance_ms: 1_000,
        time_limit_ms: 120_000,
        aborted: None,
        cases: vec![convergence, signatures, deadline, throttle, idempotency],
    });
    report
}

/// The exchanges [`small_report`] cites, as the caller would convert them.
pub(crate) fn exchanges() -> Vec<EvidenceExchange> {
    vec![
        EvidenceExchange {
            seq: 17,
            rules: vec![RuleId::DurDeadline],
            direction: ExchangeDirection::CarrierToTeams,
            method: "POST".into(),
            url: "/oc/v1/call-durations".into(),
            status: Some(202),
            error: None,
            sim_time: "2026-11-02T04:00:00.000Z".into(),
            wall_time_ms: 1_700_000_000_000,
            latency_us: 35,
            request_headers: vec![
                ("authorization".into(), "Bearer ****".into()),
                ("idempotency-key".into(), "k-17".into()),
            ],
            request_body: Some(r#"{"records":[{"callId":"call-000000003"}]}"#.into()),
            response_body: None,
        },
        EvidenceExchange {
            seq: 42,
            rules: vec![RuleId::DurDuplicate, RuleId::DurDeadline],
            direction: ExchangeDirection::TeamsToCarrier,
            method: "POST".into(),
            url: "http://127.0.0.1:9/webhook".into(),
            status: None,
            error: Some("timed out".into()),
            sim_time: "2026-11-02T05:00:00.000Z".into(),
            wall_time_ms: 1_700_000_000_500,
            latency_us: 5_000_000,
            request_headers: Vec::new(),
            request_body: None,
            response_body: None,
        },
    ]
}

/// [`small_report`] as `oc-harness load` would write it: the plan's thresholds (one missed),
/// and a load section of six intervals with a Teams outage in the middle.
pub(crate) fn load_report() -> Report {
    let mut report = small_report();
    report.scenario.name = "busy-hour".into();
    report.scenario.replay =
        "oc-harness load --carrier-url http://127.0.0.1:9 --plan scenarios/load/busy-hour.toml"
            .into();
    report.thresholds = vec![
        ThresholdResult {
            name: "webhook_ack.p99 < 500ms".into(),
            limit: 500.0,
            measured: Some(2013.5),
            passed: false,
        },
        ThresholdResult {
            name: "dropped == 0".into(),
            limit: 0.0,
            measured: Some(0.0),
            passed: true,
        },
    ];
    let interval = |n: i64| {
        let metric = |name: &str, p50: f64| LoadMetricInterval {
            metric: name.into(),
            count: 100,
            p50_ms: Some(p50 * (n + 1) as f64),
            p99_ms: Some(p50 * 4.0 * (n + 1) as f64),
            max_ms: Some(p50 * 9.0 * (n + 1) as f64),
        };
        LoadInterval {
            start_ms: n * 10_000,
            end_ms: (n + 1) * 10_000,
            excused: (2..4).contains(&n),
            executors: vec![
                LoadExecutorInterval {
                    executor: "calls".into(),
                    target_rate: 20.0 * (n + 1).min(3) as f64,
                    achieved_rate: 20.0 * (n + 1).min(3) as f64 - 1.0,
                    dropped: u64::from(n == 4),
                },
                LoadExecutorInterval {
                    executor: "number_events".into(),
                    target_rate: 5.0,
                    achieved_rate: 5.0,
                    dropped: 0,
                },
            ],
            metrics: vec![
                metric("webhook_ack", 3.0),
                metric("legs_post", 2.0),
                metric("feed_lag", 900.0),
                LoadMetricInterval {
                    metric: "report_lag".into(),
                    count: 0,
                    p50_ms: None,
                    p99_ms: None,
                    max_ms: None,
                },
            ],
            requests: 400,
            errors: u64::try_from(n).unwrap_or(0),
        }
    };
    report.load = Some(LoadSection {
        interval_ms: 10_000,
        phases: vec![LoadPhase {
            kind: "teams_outage".into(),
            start_ms: 20_000,
            end_ms: 30_000,
            excused_until_ms: 40_000,
        }],
        intervals: (0..6).map(interval).collect(),
        dropped: 1,
        dropped_late: 0,
        dropped_in_flight: 1,
        unsent: 0,
        refused: 0,
        unreported: 3,
        aborted: None,
    });
    report
}
