//! `evidence.ndjson`: the exchanges that a failed rule's evidence cites, one JSON line each.

use std::io::{self, Write};

use oc_protocol::RuleId;
use serde::{Deserialize, Serialize, Serializer};

use crate::{Outcome, Report};

/// The most bytes of a body kept in `evidence.ndjson`; a longer body is cut on a char boundary
/// at or below it and ends with [`cut_body`]'s marker.
pub const BODY_LIMIT: usize = 4096;

/// Who sent the request of an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ExchangeDirection {
    /// The carrier called the Teams API.
    CarrierToTeams,
    /// Teams delivered a webhook to the carrier.
    TeamsToCarrier,
}

/// One exchange cited by the evidence of a failed rule, as written to `evidence.ndjson`.
///
/// The report crate does not know the mock's exchange type: the caller converts each exchange,
/// with its headers already masked. Bodies are kept as given and cut to [`BODY_LIMIT`] when
/// written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvidenceExchange {
    /// Order in which the Teams side observed exchanges (the `seq` that evidence cites).
    pub seq: u64,
    /// The failed rules whose evidence cites it.
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

/// The `seq`s cited by the evidence of the report's failed rules, each with those rules
/// (sorted by `seq`; rules in catalogue order): what the caller converts into
/// [`EvidenceExchange`]s.
pub fn cited_exchanges(report: &Report) -> Vec<(u64, Vec<RuleId>)> {
    let mut cited: std::collections::BTreeMap<u64, Vec<RuleId>> = Default::default();
    for verdict in report.rules.iter().filter(|r| r.outcome == Outcome::Failed) {
        for seq in verdict.evidence.iter().flat_map(|e| &e.exchanges) {
            let rules = cited.entry(*seq).or_default();
            if !rules.contains(&verdict.rule) {
                rules.push(verdict.rule);
            }
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
    use crate::testing::{exchanges, small_report};

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

    /// The wall-clock and latency fields, which differ between runs, are redacted.
    #[test]
    fn snapshot() {
        let mut out = Vec::new();
        write_evidence(&exchanges(), &mut out).unwrap();
        let redacted: Vec<String> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|line| {
                let mut value: serde_json::Value = serde_json::from_str(line).unwrap();
                value["wallTimeMs"] = "[wall time]".into();
                value["latencyUs"] = "[latency]".into();
                value.to_string()
            })
            .collect();
        insta::assert_snapshot!("evidence.ndjson", redacted.join("\n"));
    }
}
