//! The exchanges behind every failure, converted for `evidence.ndjson`: what a carrier hands
//! over with its report. Credentials were masked when the exchanges were recorded.

use oc_observe::Exchange;
use oc_protocol::format_timestamp;
use oc_reports::{EvidenceExchange, Report};

use super::spill::Kept;

/// Every exchange that a failed rule's evidence cites, in `seq` order, read from the run's
/// kept exchanges (none when they could not be kept).
pub(crate) fn cited(report: &Report, exchanges: Option<&Kept>) -> Vec<EvidenceExchange> {
    let mut wanted: std::collections::BTreeMap<u64, Vec<oc_protocol::RuleId>> =
        oc_reports::cited_exchanges(report).into_iter().collect();
    let mut out = Vec::new();
    if let Some(exchanges) = exchanges
        && !wanted.is_empty()
    {
        exchanges.for_each(|e| {
            if let Some(rules) = wanted.remove(&e.seq) {
                out.push(convert(e, rules));
            }
        });
    }
    out
}

fn convert(e: &Exchange, rules: Vec<oc_protocol::RuleId>) -> EvidenceExchange {
    EvidenceExchange {
        seq: e.seq,
        rules,
        direction: e.direction,
        method: e.method.clone(),
        url: e.url.clone(),
        status: e.status,
        error: e.error.clone(),
        sim_time: format_timestamp(e.sim_time),
        wall_time_ms: e.wall_time_ms,
        latency_us: e.latency_us,
        request_headers: e.request_headers.clone(),
        request_body: e.request_body.clone(),
        response_body: e.response_body.clone(),
    }
}
