//! The checker actor: receives every exchange, number event, poll cycle and certification leg
//! as it happens and folds it into the checker and the report's figures at once, keeping the
//! exchanges only in the spill file. At the end it hands its state over for the end of the
//! run (Teams' final state and the calls, joined in call-id order).
//!
//! Exchanges are numbered when recorded, on whatever thread recorded them, so they may reach
//! the mailbox slightly out of `seq` order: they wait in a small buffer until the ones before
//! them came, and a poll cycle waits until its last exchange came.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use actix::dev::SendError;
use actix::{Actor, Addr, Arbiter, Context, Handler, MessageResult};
use oc_observe::Exchange;
use oc_protocol::NumberEvent;

use super::messages::{
    CallsClosed, CycleEnded, EventsGenerated, ExchangeObserved, ExchangesObserved, Gathered,
    Handover, LegsPosted, VerdictSoFar, WatchVerdict,
};
use crate::checker::history::{CallFact, CheckSettings, History, PollCycle};
use crate::checker::{CallRow, Checker, End, Observation};
use crate::run::figures::Figures;
use crate::run::spill::Spill;

/// A number event as the checker receives it: its own (a run's generator) or shared with
/// Teams' webhook sender (a load's), the copy made only when kept (tests).
trait EventItem: Borrow<NumberEvent> {
    fn into_owned(self) -> NumberEvent;
}

impl EventItem for NumberEvent {
    fn into_owned(self) -> NumberEvent {
        self
    }
}

impl EventItem for Arc<NumberEvent> {
    fn into_owned(self) -> NumberEvent {
        Arc::unwrap_or_clone(self)
    }
}

/// What the checker actor observed, handed over at the end of the run.
pub struct Observed {
    /// Every rule's state.
    pub(crate) checker: Checker,
    /// The report's figures so far.
    pub(crate) figures: Figures,
    /// The exchanges, kept on disk.
    pub(crate) spill: Spill,
    /// Everything observed, when asked to keep it (tests).
    pub(crate) kept: Option<History>,
    /// Calls closed before the end and judged ([`CallsClosed`]).
    pub(crate) closed_calls: u64,
}

/// Folds the observations of one run.
pub struct CheckerActor {
    /// Exchanges of other parties (the isolation probe's second carrier, unauthenticated
    /// requests) are not the carrier under test's: only its own are judged.
    carrier_id: String,
    observed: Option<Observed>,
    /// The `seq` the next exchange must have to be observed now.
    next_seq: u64,
    /// Exchanges that came before one with a lower `seq`.
    waiting: BTreeMap<u64, Exchange>,
    /// Poll cycles whose last exchange has not come yet.
    cycles: Vec<PollCycle>,
    /// Where the rules failing so far are kept, once asked ([`WatchVerdict`]).
    verdict: Option<VerdictSoFar>,
}

impl CheckerActor {
    /// A checker of the carrier registered in Teams as `carrier_id`, judging with `settings`,
    /// keeping the exchanges in the folder `log` (none: only counted); with `keep`, also
    /// everything observed, in memory.
    pub(crate) fn new(
        carrier_id: &str,
        settings: CheckSettings,
        log: Option<&Path>,
        keep: bool,
    ) -> Self {
        Self {
            carrier_id: carrier_id.to_owned(),
            observed: Some(Observed {
                checker: Checker::new(settings),
                figures: Figures::default(),
                spill: Spill::create(log),
                kept: keep.then(|| History {
                    settings,
                    ..History::default()
                }),
                closed_calls: 0,
            }),
            // mock-teams numbers exchanges from 1.
            next_seq: 1,
            waiting: BTreeMap::new(),
            cycles: Vec::new(),
            verdict: None,
        }
    }

    /// Updates the verdict so far, when watched.
    fn share_verdict(&self) {
        if let (Some(slot), Some(observed)) = (&self.verdict, &self.observed) {
            let failing = observed.checker.failing_so_far();
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = failing;
        }
    }

    /// Observes every waiting exchange that is next in `seq` order, then the cycles they
    /// complete; with `all`, every waiting one whatever the gaps (the end of the run).
    fn release(&mut self, all: bool) {
        while let Some(entry) = self.waiting.first_entry() {
            if !all && *entry.key() != self.next_seq {
                break;
            }
            let exchange = entry.remove();
            self.observe_exchange(exchange);
        }
        if self.cycles.is_empty() {
            return;
        }
        let next_seq = self.next_seq;
        let (done, open): (Vec<PollCycle>, Vec<PollCycle>) = std::mem::take(&mut self.cycles)
            .into_iter()
            .partition(|c| all || c.last_seq < next_seq);
        self.cycles = open;
        for cycle in done {
            self.observe(Observation::Cycle(&cycle));
            if let Some(kept) = self.observed.as_mut().and_then(|o| o.kept.as_mut()) {
                kept.cycles.push(cycle);
            }
        }
    }

    /// Observes an exchange whose turn it is (the carrier under test's; others are dropped).
    fn observe_exchange(&mut self, exchange: Exchange) {
        self.next_seq = exchange.seq + 1;
        if exchange.carrier.as_deref() == Some(self.carrier_id.as_str())
            && let Some(observed) = &mut self.observed
        {
            observed.figures.exchange(&exchange);
            observed.checker.observe(Observation::Exchange(&exchange));
            observed.spill.write(&exchange);
            if let Some(kept) = &mut observed.kept {
                kept.exchanges.push(exchange);
            }
        }
    }

    /// Observes number events Teams generated.
    fn events<E: EventItem>(&mut self, events: Vec<E>) {
        let Some(observed) = &mut self.observed else {
            return;
        };
        observed.figures.events += events.len() as u64;
        for event in &events {
            observed.checker.observe(Observation::Event(event.borrow()));
        }
        if let Some(kept) = &mut observed.kept {
            kept.events
                .extend(events.into_iter().map(EventItem::into_owned));
        }
    }

    /// Puts an exchange among those waiting for their turn in `seq` order.
    fn wait_for_turn(&mut self, exchange: Exchange) {
        if exchange.seq < self.next_seq {
            // Numbered before one already observed: only a sink that skipped numbers does this.
            tracing::warn!(
                seq = exchange.seq,
                "an exchange came after later ones; ignored"
            );
            return;
        }
        // Most come in turn: observed at once rather than moved into the map and out again,
        // which shifted whole exchanges along its nodes (most of the memory moves that were a
        // twentieth of a load test's checker thread).
        if exchange.seq == self.next_seq {
            self.observe_exchange(exchange);
            return;
        }
        self.waiting.insert(exchange.seq, exchange);
    }

    fn observe(&mut self, observation: Observation<'_>) {
        if let Some(observed) = &mut self.observed {
            observed.checker.observe(observation);
        }
    }
}

/// How many observations may wait in the checker's mailbox before whoever records the next
/// exchange waits for it: a slow checker slows the run instead of growing memory.
pub(crate) const MAILBOX: usize = 256;

impl Actor for CheckerActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX);
    }
}

impl CheckerActor {
    /// Starts the actor on a thread of its own, so that judging and keeping the exchanges run
    /// beside Teams, the carrier and the traffic rather than between them.
    pub(crate) fn start_on_own_thread(self) -> (Addr<Self>, Arbiter) {
        let arbiter = Arbiter::new();
        let addr = CheckerActor::start_in_arbiter(&arbiter.handle(), move |_| {
            // On the thread that is the checker's alone: what it allocates is the checker's.
            oc_heap_meter::mark_thread(oc_heap_meter::Part::Checker);
            self
        });
        (addr, arbiter)
    }
}

/// Hands an exchange to the checker from whatever thread recorded it, waiting while its
/// mailbox is full (the back-pressure of [`MAILBOX`]); an exchange for a checker that stopped
/// is dropped.
pub(crate) fn deliver(checker: &Addr<CheckerActor>, exchange: Exchange) {
    send_waiting(checker, ExchangeObserved(exchange));
}

/// Sends `message`, waiting while the mailbox is full; dropped when the checker stopped.
fn send_waiting<M>(checker: &Addr<CheckerActor>, mut message: M)
where
    M: actix::Message<Result = ()> + Send + 'static,
    CheckerActor: Handler<M>,
{
    let mut waited = None;
    loop {
        match checker.try_send(message) {
            Ok(()) => {
                if let Some(since) = waited.map(|t: std::time::Instant| t.elapsed())
                    && since >= std::time::Duration::from_millis(1)
                {
                    // The recording thread (a load's generator) was held back this long.
                    tracing::debug!(waited_us = since.as_micros() as u64, "checker mailbox full");
                }
                return;
            }
            Err(SendError::Full(back)) => {
                message = back;
                waited.get_or_insert_with(std::time::Instant::now);
                std::thread::sleep(std::time::Duration::from_micros(100));
            }
            Err(SendError::Closed(_)) => return,
        }
    }
}

/// The most exchanges an [`Outbox`] gathers before it sends them on its own.
pub(crate) const BATCH: usize = 64;

/// Gathers exchanges and hands them to the checker in batches ([`ExchangesObserved`]): one
/// mailbox message, and one wake of the checker's thread, for up to [`BATCH`] exchanges,
/// where [`deliver`] costs one each (a load's generator at tens of thousands of webhooks a
/// second spent a tenth of its thread waking the checker). A batch goes when it is full or
/// when its owner flushes ([`Outbox::flush`]: a load's generator before it sleeps, Teams'
/// clock every step, and before any other message to the checker that must come after the
/// exchanges). The mailbox stays bounded: a full batch waits for room as [`deliver`] does.
pub(crate) struct Outbox {
    checker: Addr<CheckerActor>,
    pending: std::sync::Mutex<Vec<Gathered>>,
}

impl Outbox {
    /// An outbox to `checker`.
    pub(crate) fn new(checker: Addr<CheckerActor>) -> Self {
        Self {
            checker,
            pending: std::sync::Mutex::new(Vec::with_capacity(BATCH)),
        }
    }

    /// Adds an exchange; sends the batch when it is full.
    pub(crate) fn push(&self, exchange: Exchange) {
        self.gather(Gathered::Exchange(exchange));
    }

    /// Adds number events Teams generated, to be observed after what was gathered before them
    /// (as an [`EventsGenerated`] sent now would be).
    pub(crate) fn push_events(&self, events: Vec<Arc<NumberEvent>>) {
        if !events.is_empty() {
            self.gather(Gathered::Events(events));
        }
    }

    fn gather(&self, item: Gathered) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.push(item);
        if pending.len() >= BATCH {
            // Sent under the lock, so that batches reach the mailbox in the order they were
            // gathered (the checker puts exchanges in `seq` order either way).
            let batch = std::mem::replace(&mut *pending, Vec::with_capacity(BATCH));
            send_waiting(&self.checker, ExchangesObserved(batch));
        }
    }

    /// Sends what was gathered, if anything.
    pub(crate) fn flush(&self) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if !pending.is_empty() {
            let batch = std::mem::replace(&mut *pending, Vec::with_capacity(BATCH));
            send_waiting(&self.checker, ExchangesObserved(batch));
        }
    }
}

impl Handler<ExchangesObserved> for CheckerActor {
    type Result = ();

    /// Each item as its own message would be handled: an exchange waits for its turn in `seq`
    /// order, events are observed at once.
    fn handle(&mut self, msg: ExchangesObserved, _: &mut Context<Self>) {
        for item in msg.0 {
            match item {
                Gathered::Exchange(exchange) => self.wait_for_turn(exchange),
                Gathered::Events(events) => {
                    self.release(false);
                    self.events(events);
                }
            }
        }
        self.release(false);
        self.share_verdict();
    }
}

impl Handler<ExchangeObserved> for CheckerActor {
    type Result = ();

    fn handle(&mut self, msg: ExchangeObserved, _: &mut Context<Self>) {
        self.wait_for_turn(msg.0);
        self.release(false);
        self.share_verdict();
    }
}

impl Handler<WatchVerdict> for CheckerActor {
    type Result = MessageResult<WatchVerdict>;

    fn handle(&mut self, _: WatchVerdict, _: &mut Context<Self>) -> Self::Result {
        let slot = self
            .verdict
            .get_or_insert_with(VerdictSoFar::default)
            .clone();
        self.share_verdict();
        MessageResult(slot)
    }
}

impl Handler<EventsGenerated> for CheckerActor {
    type Result = ();

    fn handle(&mut self, msg: EventsGenerated, _: &mut Context<Self>) {
        self.events(msg.0);
    }
}

impl Handler<LegsPosted> for CheckerActor {
    type Result = ();

    fn handle(&mut self, msg: LegsPosted, _: &mut Context<Self>) {
        let Some(observed) = &mut self.observed else {
            return;
        };
        for leg in &msg.0 {
            observed.checker.observe(Observation::Leg(leg));
        }
        if let Some(kept) = &mut observed.kept {
            kept.legs.extend(msg.0);
        }
    }
}

impl Handler<CallsClosed> for CheckerActor {
    type Result = ();

    /// Judges each closed call as the end of a run judges the calls still open, with the
    /// exchanges so far observed: with the mock carrier's ground truth when it came (a run),
    /// without (a load test has none); no end facts (a closed call ended long before).
    fn handle(&mut self, msg: CallsClosed, _: &mut Context<Self>) {
        self.release(false);
        let Some(observed) = &mut self.observed else {
            return;
        };
        let CallsClosed(calls, truths) = msg;
        let end = End {
            truth: truths.is_some(),
            ..End::default()
        };
        let mut truths = truths.into_iter().flatten();
        observed.closed_calls += calls.len() as u64;
        for closed in calls {
            let truth = truths.next().flatten();
            let call = CallFact {
                call_id: closed.call_id.clone(),
                telephone_number: closed.telephone_number.clone(),
                answered: closed.teams.answered,
                duration_ms: closed.teams.duration_ms,
                end: closed.teams.end,
                corrected: closed.teams.corrected,
            };
            let row = CallRow {
                call_id: &closed.call_id,
                call: Some(&call),
                reported: closed.reported.as_ref(),
                items: closed.item.as_slice(),
                truth: truth.as_ref(),
            };
            observed.checker.call(row, &end);
            observed.figures.row(&row);
            if let Some(kept) = &mut observed.kept {
                kept.calls.push(call.clone());
                kept.reported.extend(closed.reported.clone());
                kept.reconciliation.extend(closed.item.clone());
            }
        }
        self.share_verdict();
    }
}

impl Handler<CycleEnded> for CheckerActor {
    type Result = ();

    fn handle(&mut self, msg: CycleEnded, _: &mut Context<Self>) {
        self.cycles.push(msg.0);
        self.release(false);
    }
}

impl Handler<Handover> for CheckerActor {
    type Result = MessageResult<Handover>;

    /// Observes whatever still waits, then hands everything over (once).
    fn handle(&mut self, _: Handover, _: &mut Context<Self>) -> Self::Result {
        if !self.waiting.is_empty() {
            tracing::warn!(
                waiting = self.waiting.len(),
                next = self.next_seq,
                "exchanges were missing at the end of the run; observing the rest as they are"
            );
        }
        self.release(true);
        MessageResult(self.observed.take().map(Box::new))
    }
}

#[cfg(test)]
mod tests {
    use oc_observe::{ExchangeDetail, ExchangeDirection};

    use super::*;
    use crate::checker::End;

    fn page(seq: u64, carrier: &str, feed: &str, token: u64, next: bool) -> Exchange {
        Exchange {
            seq,
            direction: ExchangeDirection::CarrierToTeams,
            carrier: Some(carrier.into()),
            method: "GET".into(),
            url: format!("/oc/v1/{feed}/delta?token={}", token - 1),
            status: Some(200),
            error: None,
            sim_time: 0,
            wall_time_ms: 0,
            latency_us: 1,
            request_headers: Vec::new(),
            request_body: None,
            response_body: None,
            fault: None,
            detail: Some(ExchangeDetail::FeedPage {
                feed: if feed == "cdrs" { "cdr" } else { "quality" }.into(),
                chain_start: token == 1,
                from_position: 0,
                to_position: 0,
                next,
                link: format!("http://127.0.0.1:9/oc/v1/{feed}/delta?token={token}"),
                misclassified: Vec::new(),
            }),
        }
    }

    fn cycle(first_seq: u64, last_seq: u64) -> PollCycle {
        PollCycle {
            sim_time: 0,
            first_seq,
            last_seq,
        }
    }

    /// Exchanges reach the actor out of `seq` order, from two carriers, and poll cycles are
    /// marked before their last exchange came: the rules see the carrier's exchanges in order,
    /// each cycle after its exchanges, and judge exactly as the replay of the same facts.
    #[test]
    fn observations_out_of_order_are_judged_as_the_replay_judges_them() {
        let out = std::env::temp_dir().join(format!("oc-checker-actor-{}", std::process::id()));
        let exchanges = [
            page(1, "carrier", "cdrs", 1, false),
            page(2, "carrier", "quality", 1, false),
            page(3, "carrier", "cdrs", 2, false),
            page(4, "carrier", "quality", 2, true),
            page(5, "other", "cdrs", 1, false),
            page(6, "carrier", "cdrs", 3, false),
        ];
        // An exchange by its index above, or a cycle mark.
        enum Arrival {
            Exchange(usize),
            Cycle(u64, u64),
        }
        let arrivals = [
            Arrival::Exchange(2),
            Arrival::Exchange(0),
            Arrival::Cycle(1, 2),
            Arrival::Exchange(1),
            Arrival::Exchange(5),
            Arrival::Cycle(3, 4),
            Arrival::Cycle(5, 6),
            Arrival::Exchange(4),
            Arrival::Exchange(3),
        ];
        let settings = CheckSettings::default();
        let observed = actix_rt::System::new().block_on(async {
            let addr = CheckerActor::new("carrier", settings, Some(&out), true).start();
            for arrival in arrivals {
                match arrival {
                    Arrival::Exchange(i) => addr.do_send(ExchangeObserved(exchanges[i].clone())),
                    Arrival::Cycle(first, last) => addr.do_send(CycleEnded(cycle(first, last))),
                }
            }
            addr.send(Handover).await.unwrap().unwrap()
        });
        let Observed {
            checker,
            spill,
            kept,
            ..
        } = *observed;
        let kept = kept.unwrap();
        let seqs: Vec<u64> = kept.exchanges.iter().map(|e| e.seq).collect();
        assert_eq!(
            seqs,
            [1, 2, 3, 4, 6],
            "in seq order, the other carrier's left out"
        );
        assert_eq!(kept.cycles, [cycle(1, 2), cycle(3, 4), cycle(5, 6)]);
        let mut finished = checker.finish(&End::default());
        if let Some(exchanges) = spill.finish() {
            exchanges.for_each(|e| finished.scan(e));
        }
        let live = finished.result();
        assert_eq!(live, crate::checker::evaluate(&kept));
        let qua_feed = &live.rules[oc_protocol::RuleId::QuaFeed as usize];
        // The second cycle stopped on a page with a nextLink; the third read no quality page
        // (the other carrier's exchange in it is not this carrier's).
        assert_eq!(qua_feed.failures, 2, "{qua_feed:#?}");
        assert_eq!(qua_feed.evidence[0].exchanges, [4]);
        assert_eq!(qua_feed.evidence[1].exchanges, [6]);
        std::fs::remove_dir_all(&out).unwrap();
    }
}
