//! The exchanges behind every failure, converted for `evidence.ndjson`: what a carrier hands
//! over with its report. Credentials were masked when the exchanges were recorded.

use oc_observe::Exchange;
use oc_protocol::format_timestamp;
use oc_reports::{EvidenceExchange, Report};

use crate::checker::History;

/// Every exchange that a failed rule's evidence cites, in `seq` order.
pub(crate) fn cited(report: &Report, history: &History) -> Vec<EvidenceExchange> {
    oc_reports::cited_exchanges(report)
        .into_iter()
        .filter_map(|(seq, rules)| {
            let index = history
                .exchanges
                .binary_search_by_key(&seq, |e| e.seq)
                .ok()?;
            Some(convert(&history.exchanges[index], rules))
        })
        .collect()
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
