//! `evidence.ndjson`: the exchanges that a failed rule's or a certification case's evidence
//! cites, one JSON line each.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};

use oc_protocol::RuleId;
use serde::{Deserialize, Serialize, Serializer};

use crate::{Outcome, Report};

/// The most bytes of a body kept in `evidence.ndjson`; a longer body is cut on a char boundary
/// at or below it and ends with [`cut_body`]'s marker.
pub const BODY_LIMIT: usize = 4096;

pub use oc_observe::ExchangeDirection;

/// One exchange cited by the evidence of a failed rule or of a certification case, as written
/// to `evidence.ndjson`.
///
/// The caller converts each [`oc_observe::Exchange`], with its headers already masked: the
/// evidence keeps the simulated time as a PROTOCOL.md timestamp, and the rules that cite it. Bodies are kept as given and cut to [`BODY_LIMIT`] when
/// written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvidenceExchange {
    /// Order in which the Teams side observed exchanges (the `seq` that evidence cites).
    pub seq: u64,
    /// The failed rules whose evidence cites it (see [`cited_exchanges`]).
    pub rules: Vec<RuleId>,
    /// Who sent the request.
    pub direction: ExchangeDirection,
    /// HTTP method.
    pub method: String,
    /// Path and query (carrier → Teams) or the full URL (webhooks).
    pub url: String,
    /// The status, or none when there was no answer.
    pub status: Option<u16>,
    /// Why there was no answer.
    pub error: Option<String>,
    /// Simulated time when the request arrived or was sent (a PROTOCOL.md timestamp).
    pub sim_time: String,
    /// Wall-clock time when it started, ms since the Unix epoch (differs between runs).
    pub wall_time_ms: i64,
    /// How long the answer took, µs (differs between runs).
    pub latency_us: u64,
    /// Request headers of interest, in order, with tokens and signatures masked by the caller.
    pub request_headers: Vec<(String, String)>,
    /// The request body.
    #[serde(serialize_with = "serialize_cut")]
    pub request_body: Option<String>,
    /// The response body.
    #[serde(serialize_with = "serialize_cut")]
    pub response_body: Option<String>,
}

/// `body` cut to at most [`BODY_LIMIT`] bytes on a char boundary, followed by a marker that
/// gives its full length when it was longer; unchanged otherwise.
pub fn cut_body(body: &str) -> std::borrow::Cow<'_, str> {
    if body.len() <= BODY_LIMIT {
        return body.into();
    }
    let mut end = BODY_LIMIT;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…[cut: {} bytes in all]", &body[..end], body.len()).into()
}

fn serialize_cut<S: Serializer>(body: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match body {
        Some(b) => s.serialize_some(&cut_body(b)),
        None => s.serialize_none(),
    }
}

/// The `seq`s cited by the evidence of the report's failed rules and of its certification's
/// cases, each with the failed rules whose evidence cites it (sorted by `seq`; rules in
/// catalogue order): what the caller converts into [`EvidenceExchange`]s.
///
/// A case's evidence does not say which of the case's rules each note belongs to, so an
/// exchange that only a case cites gets the case's rules that failed, or all the case's rules
/// when none of them is among the report's failed rules. Every case counts, whatever its
/// outcome: a passed case may still show a failed `should` rule, and every `seq` a rendering
/// shows must be in `evidence.ndjson`.
pub fn cited_exchanges(report: &Report) -> Vec<(u64, Vec<RuleId>)> {
    let mut cited: BTreeMap<u64, Vec<RuleId>> = BTreeMap::new();
    let failed: Vec<RuleId> = report
        .rules
        .iter()
        .filter(|r| r.outcome == Outcome::Failed)
        .map(|r| r.rule)
        .collect();
    for verdict in report.rules.iter().filter(|r| r.outcome == Outcome::Failed) {
        for seq in verdict.evidence.iter().flat_map(|e| &e.exchanges) {
            let rules = cited.entry(*seq).or_default();
            if !rules.contains(&verdict.rule) {
                rules.push(verdict.rule);
            }
        }
    }
    let by_rules: BTreeSet<u64> = cited.keys().copied().collect();
    let cases = report.certification.iter().flat_map(|c| &c.cases);
    for case in cases {
        let mut rules: Vec<RuleId> = case
            .rules
            .iter()
            .copied()
            .filter(|r| failed.contains(r))
            .collect();
        if rules.is_empty() {
            rules.clone_from(&case.rules);
        }
        for seq in case.evidence.iter().flat_map(|e| &e.exchanges) {
            if by_rules.contains(seq) {
                continue;
            }
            let cited_rules = cited.entry(*seq).or_default();
            for rule in &rules {
                if !cited_rules.contains(rule) {
                    cited_rules.push(*rule);
                }
            }
            cited_rules.sort();
        }
    }
    cited.into_iter().collect()
}

/// Writes `evidence.ndjson`: one JSON object a line per exchange, in the order given, bodies
/// cut to [`BODY_LIMIT`].
pub fn write_evidence<W: Write>(exchanges: &[EvidenceExchange], mut w: W) -> io::Result<()> {
    for exchange in exchanges {
        serde_json::to_writer(&mut w, exchange)?;
        w.write_all(b"\n")?;
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Evidence;
    use crate::testing::{certification_report, exchanges, small_report};

    #[test]
    fn short_bodies_are_kept_and_long_ones_cut_on_a_char_boundary() {
        assert_eq!(cut_body("{}"), "{}");
        let exact = "a".repeat(BODY_LIMIT);
        assert_eq!(cut_body(&exact), exact.as_str());
        // 'é' is two bytes: byte 4096 falls inside one, so the cut moves back to 4095.
        let long = format!("a{}", "é".repeat(BODY_LIMIT));
        let cut = cut_body(&long);
        let kept = cut.split('…').next().unwrap();
        assert_eq!(kept.len(), BODY_LIMIT - 1);
        assert!(cut.ends_with(&format!("…[cut: {} bytes in all]", long.len())));
    }

    #[test]
    fn every_line_is_one_exchange_with_bodies_cut() {
        let mut long = exchanges()[0].clone();
        long.response_body = Some("x".repeat(10_000));
        let mut out = Vec::new();
        write_evidence(&[long], &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 1);
        let value: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        let body = value["responseBody"].as_str().unwrap();
        assert!(body.starts_with(&"x".repeat(BODY_LIMIT)));
        assert!(body.ends_with("…[cut: 10000 bytes in all]"));
    }

    #[test]
    fn cited_exchanges_are_those_of_failed_rules_only() {
        let cited = cited_exchanges(&small_report());
        assert_eq!(
            cited,
            vec![
                (17, vec![RuleId::DurDeadline]),
                (42, vec![RuleId::DurDuplicate, RuleId::DurDeadline]),
            ]
        );
    }

    #[test]
    fn exchanges_cited_by_cases_are_kept_with_rules_of_the_rules_evidence_first() {
        // The failed case cites 17, which DUR-DEADLINE's evidence cites too: nothing changes.
        let report = certification_report();
        assert_eq!(cited_exchanges(&report), cited_exchanges(&small_report()));

        let mut report = certification_report();
        let cases = &mut report.certification.as_mut().unwrap().cases;
        // Only cases cite 23 and 99; DUR-COMPLETE failed, DUR-DEADLINE failed, CDR-THROTTLE
        // is not among the report's failed rules.
        cases[2].evidence[1].exchanges = vec![23];
        cases[3].evidence = vec![Evidence {
            note: "the feed was never read".into(),
            exchanges: vec![99, 23],
        }];
        assert_eq!(
            cited_exchanges(&report),
            vec![
                (17, vec![RuleId::DurDeadline]),
                (
                    23,
                    vec![
                        RuleId::CdrThrottle,
                        RuleId::DurDeadline,
                        RuleId::DurComplete
                    ]
                ),
                (42, vec![RuleId::DurDuplicate, RuleId::DurDeadline]),
                (99, vec![RuleId::CdrThrottle]),
            ]
        );
    }

    /// Each line with the wall-clock and latency fields, which differ between runs, redacted.
    fn redacted_lines(exchanges: &[EvidenceExchange]) -> Vec<String> {
        let mut out = Vec::new();
        write_evidence(exchanges, &mut out).unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|line| {
                let mut value: serde_json::Value = serde_json::from_str(line).unwrap();
                value["wallTimeMs"] = "[wall time]".into();
                value["latencyUs"] = "[latency]".into();
                value.to_string()
            })
            .collect()
    }

    #[test]
    fn snapshot() {
        let redacted = redacted_lines(&exchanges());
        insta::assert_snapshot!("evidence.ndjson", redacted.join("\n"));
    }

    /// The exchanges a certification report cites, converted as the caller would.
    #[test]
    fn certification_snapshot() {
        let all = exchanges();
        let cited: Vec<EvidenceExchange> = cited_exchanges(&certification_report())
            .into_iter()
            .filter_map(|(seq, rules)| {
                let exchange = all.iter().find(|e| e.seq == seq)?;
                Some(EvidenceExchange {
                    rules,
                    ..exchange.clone()
                })
            })
            .collect();
        assert_eq!(cited.len(), 2);
        let redacted = redacted_lines(&cited);
        insta::assert_snapshot!("evidence-certification.ndjson", redacted.join("\n"));
    }
}
