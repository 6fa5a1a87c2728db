//! The checker actor: receives every exchange and every ground-truth fact as it happens, keeps
//! them as the run's history, and at the end hands the whole history to the rules.

use actix::{Actor, Context, Handler, MessageResult};

use super::messages::{CallsRecorded, CycleEnded, EventsGenerated, ExchangeObserved, Judge};
use crate::checker::{self, History};

/// Keeps the history of one run.
#[derive(Default)]
pub struct CheckerActor {
    history: History,
    /// Exchanges of other parties (the isolation probe's second carrier, unauthenticated
    /// requests): kept apart from the carrier under test's.
    carrier_id: String,
}

impl CheckerActor {
    /// A checker of the carrier registered in Teams as `carrier_id`.
    pub fn new(carrier_id: &str) -> Self {
        Self {
            history: History::default(),
            carrier_id: carrier_id.to_owned(),
        }
    }
}

impl Actor for CheckerActor {
    type Context = Context<Self>;
}

impl Handler<ExchangeObserved> for CheckerActor {
    type Result = ();

    fn handle(&mut self, msg: ExchangeObserved, _: &mut Context<Self>) {
        if msg.0.carrier.as_deref() == Some(self.carrier_id.as_str()) {
            self.history.exchanges.push(msg.0);
        }
    }
}

impl Handler<EventsGenerated> for CheckerActor {
    type Result = ();

    fn handle(&mut self, msg: EventsGenerated, _: &mut Context<Self>) {
        self.history.events.extend(msg.0);
    }
}

impl Handler<CallsRecorded> for CheckerActor {
    type Result = ();

    fn handle(&mut self, msg: CallsRecorded, _: &mut Context<Self>) {
        self.history.calls.extend(msg.0);
    }
}

impl Handler<CycleEnded> for CheckerActor {
    type Result = ();

    fn handle(&mut self, msg: CycleEnded, _: &mut Context<Self>) {
        self.history.cycles.push(msg.0);
    }
}

impl Handler<Judge> for CheckerActor {
    type Result = MessageResult<Judge>;

    /// Completes the history with what only the end of the run knows, then judges it.
    fn handle(&mut self, msg: Judge, _: &mut Context<Self>) -> Self::Result {
        let rest = *msg.0;
        let mut history = std::mem::take(&mut self.history);
        history.exchanges.sort_by_key(|e| e.seq);
        history.calls.sort_by(|a, b| a.call_id.cmp(&b.call_id));
        history.settings = rest.settings;
        history.teams_numbers = rest.teams_numbers;
        history.probes = rest.probes;
        history.reconciliation = rest.reconciliation;
        history.reported = rest.reported;
        history.reported.sort_by(|a, b| a.call_id.cmp(&b.call_id));
        history.judged_at = rest.judged_at;
        history.quality_served = rest.quality_served;
        history.signature_probes = rest.signature_probes;
        history.isolation_probes = rest.isolation_probes;
        history.truth = rest.truth;
        history.legs = rest.legs;
        if history.settings.cycles_on_the_wire {
            history.cycles = crate::checker::history::cycles_from_cdr_feed(&history.exchanges);
        }
        let result = checker::evaluate(&history);
        MessageResult((history, result))
    }
}
