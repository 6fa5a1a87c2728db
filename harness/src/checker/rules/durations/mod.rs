//! The duration rules (PROTOCOL.md 2.3, 3.4, 3.5), each a state machine over the run.
//!
//! DUR-SCHEMA and DUR-IDEMPOTENT judge each call-durations request of the carrier, with Teams'
//! answer, as it is observed. DUR-DUPLICATE, DUR-DEADLINE, DUR-COMPLETE and DUR-UNEXPECTED judge
//! each call row at the end, from what Teams received for the call (when, what, whether again:
//! [`ReportedCall`](oc_observe::ReportedCall)) and the call Teams had
//! ([`CallFact`](crate::checker::history::CallFact)), not from Teams' reconciliation (a separate
//! reading of the same facts, for the report). DUR-FIDELITY keeps the certification legs the
//! harness posted and the durations reported for them; a simulation posts none, and then it
//! keeps nothing. Their state grows with report requests at most (DUR-IDEMPOTENT's keys), never
//! with calls.
//!
//! Each kind has its file: the requests ([`requests`]), the call rows ([`calls`]), the legs
//! ([`fidelity`]); what they share to read a report exchange is here.

mod calls;
mod fidelity;
mod requests;

pub(crate) use calls::{DurComplete, DurDeadline, DurDuplicate, DurUnexpected};
pub(crate) use fidelity::DurFidelity;
pub(crate) use requests::{DurIdempotent, DurSchema};

use oc_observe::{Exchange, ExchangeDetail, ExchangeDirection, InjectedFault};
use oc_protocol::paths;

use super::{harness_caused, path_of};
use crate::checker::stream::Observation;

/// The call-durations request of the carrier an observation is, when Teams really answered it.
fn report<'a>(observation: &Observation<'a>) -> Option<&'a Exchange> {
    match *observation {
        Observation::Exchange(e)
            if e.direction == ExchangeDirection::CarrierToTeams
                && path_of(&e.url) == paths::CALL_DURATIONS
                && !harness_caused(e) =>
        {
            Some(e)
        }
        _ => None,
    }
}

fn is_report(e: &Exchange) -> bool {
    matches!(e.detail, Some(ExchangeDetail::DurationReport { .. }))
}

fn is_replayed(e: &Exchange) -> bool {
    matches!(
        e.detail,
        Some(ExchangeDetail::DurationReport { replayed: true, .. })
    )
}

fn answer_lost(e: &Exchange) -> bool {
    matches!(e.fault, Some(InjectedFault::AnswerLost { .. }))
}

/// A carrier → Teams request at `seq` to `url`, answered `status`.
#[cfg(test)]
fn request(seq: u64, url: &str, status: u16, body: &str) -> Exchange {
    Exchange {
        seq,
        direction: ExchangeDirection::CarrierToTeams,
        carrier: Some("carrier".into()),
        method: "POST".into(),
        url: url.into(),
        status: Some(status),
        error: None,
        sim_time: 0,
        wall_time_ms: 0,
        latency_us: 1_000,
        request_headers: Vec::new(),
        request_body: Some(body.into()),
        response_body: None,
        fault: None,
        detail: None,
    }
}
