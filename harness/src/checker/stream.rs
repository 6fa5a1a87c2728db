//! The checker as a fold over the run: what it observes and in what order, the interface every
//! rule implements, and the driver that feeds them, live from a run or replayed from a kept
//! [`History`].
//!
//! A run reaches the checker in two phases. While it runs, [`Observation`]s: every exchange of
//! the carrier under test in `seq` order, the number events Teams generated, the poll cycles,
//! the certification legs. At its end, what only the end knows ([`End`]: Teams' final state,
//! the carrier's state probes, the security probes), then one [`CallRow`] per call id in call-id
//! order, joining Teams' call, what the carrier reported, Teams' reconciliation items and the
//! ground truth. Each rule keeps what it needs of that and no more: its state grows with
//! numbers, pages and open cycles, never with calls, so a month is judged in the memory of a
//! day.
//!
//! Evidence may cite exchanges that name a call whose failure is only known at the end (a call
//! never reported): a rule asks for them with a `Lookup`, and the driver finds them in one
//! pass over the exchanges' bodies afterwards (kept in memory when replaying a [`History`],
//! spilled to a compressed file by a live run).

use oc_observe::{CallTruth, Exchange, ExchangeDetail, ReportedCall};
use oc_protocol::{NumberEvent, ReconciliationItem, TeamsNumber, UnixMillis};
use oc_reports::{Accuracy, Conservation, RuleVerdict};

use super::accuracy::{AccuracyFold, ConservationFold};
use super::history::{
    CallFact, CheckSettings, History, IsolationProbe, LegFact, PollCycle, Probe, SignatureProbe,
};
use super::rules;

/// Something the run did, as the checker sees it while the run goes on.
#[derive(Debug, Clone, Copy)]
pub enum Observation<'a> {
    /// An exchange of the carrier under test. Exchanges come in `seq` order.
    Exchange(&'a Exchange),
    /// A number event Teams generated, in the order generated (not ordered against the
    /// exchanges that carry it).
    Event(&'a NumberEvent),
    /// A poll cycle of the carrier ended: every exchange up to its `last_seq` came before it.
    /// When the carrier polls on its own clock, the driver reads the cycles from the wire
    /// ([`WireCycles`]) and the run sends none.
    Cycle(&'a PollCycle),
    /// A certification leg was posted to the carrier: before any exchange that reports it.
    Leg(&'a LegFact),
}

/// Everything the end of a run knows about one call id: one per call id either side has, in
/// call-id order.
#[derive(Debug, Clone, Copy)]
pub struct CallRow<'a> {
    /// The call.
    pub call_id: &'a str,
    /// Teams' call, when Teams had one of this id.
    pub call: Option<&'a CallFact>,
    /// What Teams received from the carrier for it, when the carrier reported it.
    pub reported: Option<&'a ReportedCall>,
    /// Teams' reconciliation items for it (more than one breaks conservation).
    pub items: &'a [ReconciliationItem],
    /// The mock carrier's ground truth for it, when there is ground truth and it has the call.
    pub truth: Option<&'a CallTruth>,
}

/// What only the end of a run knows, besides the calls.
#[derive(Debug, Clone, Copy, Default)]
pub struct End<'a> {
    /// Teams' final state of every number of the carrier.
    pub teams_numbers: &'a [TeamsNumber],
    /// The carrier's state probe of every number.
    pub probes: &'a [Probe],
    /// The forged and replayed notifications.
    pub signature_probes: &'a [SignatureProbe],
    /// The requests with one carrier's token on another's data.
    pub isolation_probes: &'a [IsolationProbe],
    /// Simulated time when the run was judged: calls ending later are not yet due a report.
    pub judged_at: Option<UnixMillis>,
    /// Whether the rows carry the mock carrier's ground truth (accuracy is judged only then).
    pub truth: bool,
}

/// A conformance rule as a state machine over a run.
pub(crate) trait Rule: Send {
    /// Takes in one thing the run did; by default, only the exchanges, to [`Rule::exchange`].
    fn observe(&mut self, observation: &Observation<'_>) {
        if let Observation::Exchange(e) = observation {
            self.exchange(e);
        }
    }
    /// Takes in one exchange, for a rule that reads nothing else while the run goes on.
    fn exchange(&mut self, _exchange: &Exchange) {}
    /// Takes in one call at the end, in call-id order.
    fn call(&mut self, _row: &CallRow<'_>, _end: &End<'_>) {}
    /// Failures found so far, for a rule that finds them as the run goes on (0 for one that
    /// decides only at the end).
    fn failures_so_far(&self) -> u64 {
        0
    }
    /// The verdict, once everything was observed.
    fn finish(self: Box<Self>, end: &End<'_>) -> Judged;
}

/// A rule's verdict, with the evidence it still has to find in the exchanges' bodies.
pub struct Judged {
    /// The verdict; its evidence cites what the rule knew of.
    pub verdict: RuleVerdict,
    /// The exchanges still to be found for its evidence.
    pub(crate) lookups: Vec<Lookup>,
}

impl From<RuleVerdict> for Judged {
    fn from(verdict: RuleVerdict) -> Self {
        Self {
            verdict,
            lookups: Vec::new(),
        }
    }
}

/// Evidence item `evidence` also cites the exchanges of a kind whose request or response body
/// names a call id.
pub(crate) struct Lookup {
    /// The index of the evidence item in the verdict.
    pub(crate) evidence: usize,
    /// The call id as a JSON string, as it appears in a body.
    pub(crate) quoted: String,
    /// The kind of exchange that may show it.
    pub(crate) want: fn(&Exchange) -> bool,
    /// The `seq`s found so far.
    pub(crate) found: Vec<u64>,
}

/// The most exchanges one lookup cites.
const MAX_FOUND: usize = 20;

impl Lookup {
    pub(crate) fn new(evidence: usize, call_id: &str, want: fn(&Exchange) -> bool) -> Self {
        Self {
            evidence,
            quoted: serde_json::to_string(call_id).unwrap_or_default(),
            want,
            found: Vec::new(),
        }
    }

    fn scan(&mut self, e: &Exchange) {
        if self.found.len() < MAX_FOUND
            && (self.want)(e)
            && [&e.request_body, &e.response_body]
                .into_iter()
                .flatten()
                .any(|body| body.contains(&self.quoted))
        {
            self.found.push(e.seq);
        }
    }
}

/// What the checker found in one run.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    /// One verdict per catalogue rule, in catalogue order.
    pub rules: Vec<RuleVerdict>,
    /// Teams' classes against the mock carrier's ground truth, when there is one.
    pub accuracy: Option<Accuracy>,
    /// Every answered call ends in exactly one class.
    pub conservation: Conservation,
}

/// The checker of one run: every rule's state, accuracy and conservation.
pub struct Checker {
    settings: CheckSettings,
    rules: Vec<Box<dyn Rule>>,
    accuracy: AccuracyFold,
    conservation: ConservationFold,
    /// The cycles read from the wire, when they are.
    wire: WireCycles,
    /// Poll cycles observed.
    cycles: u64,
}

impl Checker {
    /// A checker judging with `settings`.
    pub fn new(settings: CheckSettings) -> Self {
        Self {
            settings,
            rules: rules::all(&settings),
            accuracy: AccuracyFold::default(),
            conservation: ConservationFold::default(),
            wire: WireCycles::default(),
            cycles: 0,
        }
    }

    /// Takes in one thing the run did. A cycle is ignored when cycles are read from the wire.
    pub fn observe(&mut self, observation: Observation<'_>) {
        if self.settings.cycles_on_the_wire && matches!(observation, Observation::Cycle(_)) {
            return;
        }
        self.forward(&observation);
        if self.settings.cycles_on_the_wire
            && let Observation::Exchange(e) = observation
            && let Some(cycle) = self.wire.after(e)
        {
            self.forward(&Observation::Cycle(&cycle));
        }
    }

    /// The rules that found failures so far, in catalogue order: a verdict while the run goes
    /// on (rules that decide only at the end are not among them until then).
    pub fn failing_so_far(&self) -> Vec<oc_protocol::RuleId> {
        self.rules
            .iter()
            .zip(oc_protocol::rules::catalogue())
            .filter(|(rule, _)| rule.failures_so_far() > 0)
            .map(|(_, catalogued)| catalogued.id)
            .collect()
    }

    /// Poll cycles observed so far (read from the wire, or marked by the run).
    pub fn cycles(&self) -> u64 {
        self.cycles
    }

    fn forward(&mut self, observation: &Observation<'_>) {
        self.cycles += u64::from(matches!(observation, Observation::Cycle(_)));
        for rule in &mut self.rules {
            rule.observe(observation);
        }
    }

    /// Takes in one call at the end; rows come in call-id order, after the last observation.
    pub fn call(&mut self, row: CallRow<'_>, end: &End<'_>) {
        for rule in &mut self.rules {
            rule.call(&row, end);
        }
        if end.truth {
            self.accuracy.call(&row);
        }
        self.conservation.call(&row);
    }

    /// Every verdict, with the evidence still to be found in the exchanges' bodies.
    pub fn finish(self, end: &End<'_>) -> Finished {
        Finished {
            rules: self
                .rules
                .into_iter()
                .map(|rule| rule.finish(end))
                .collect(),
            accuracy: end.truth.then(|| self.accuracy.finish()),
            conservation: self.conservation.finish(),
        }
    }
}

/// The poll cycles of a carrier that polls on its own clock, as the wire shows them: a cycle
/// ends each time the carrier reaches the end of the CDR feed (a page without `nextLink`), and
/// the cycles are the spans between two such ends. Whether a carrier reads quality before or
/// after its CDRs, each span holds exactly one cycle's quality reading; the span before the
/// first end and the one after the last are left out (the run's start and end cut them).
/// Timing plays no part, so a slow moment cannot split a cycle.
#[derive(Debug, Default)]
pub struct WireCycles {
    last_end: Option<u64>,
}

impl WireCycles {
    /// The cycle that `e` (the next exchange in `seq` order) ends, if it ends one.
    pub fn after(&mut self, e: &Exchange) -> Option<PollCycle> {
        if !matches!(&e.detail, Some(ExchangeDetail::FeedPage { feed, next: false, .. })
            if feed == "cdr")
        {
            return None;
        }
        let previous = self.last_end.replace(e.seq)?;
        Some(PollCycle {
            sim_time: e.sim_time,
            first_seq: previous + 1,
            last_seq: e.seq,
        })
    }
}

/// The verdicts of a run, before the exchanges their evidence still has to cite were found.
pub struct Finished {
    rules: Vec<Judged>,
    accuracy: Option<Accuracy>,
    conservation: Conservation,
}

impl Finished {
    /// Whether any evidence still has exchanges to find: then every exchange goes through
    /// [`Finished::scan`], in `seq` order, before [`Finished::result`].
    pub fn needs_bodies(&self) -> bool {
        self.rules.iter().any(|r| !r.lookups.is_empty())
    }

    /// Looks for the evidence still to be found in one exchange.
    pub fn scan(&mut self, e: &Exchange) {
        for judged in &mut self.rules {
            for lookup in &mut judged.lookups {
                lookup.scan(e);
            }
        }
    }

    /// The result, with what the scan found cited.
    pub fn result(self) -> CheckResult {
        let rules = self
            .rules
            .into_iter()
            .map(|judged| {
                let mut verdict = judged.verdict;
                for lookup in judged.lookups {
                    if let Some(evidence) = verdict.evidence.get_mut(lookup.evidence) {
                        evidence.exchanges.extend(lookup.found);
                        evidence.exchanges.sort_unstable();
                        evidence.exchanges.dedup();
                        evidence.exchanges.truncate(rules::MAX_SEQS_PER_EVIDENCE);
                    }
                }
                verdict
            })
            .collect();
        CheckResult {
            rules,
            accuracy: self.accuracy,
            conservation: self.conservation,
        }
    }
}

/// Judges a kept history: replays it through the checker. Pure: the same history always gives
/// the same result.
pub fn evaluate(history: &History) -> CheckResult {
    let mut checker = Checker::new(history.settings);
    replay(history, &mut checker);
    let end = End::of(history);
    for_each_row(history, |row| checker.call(row, &end));
    let mut finished = checker.finish(&end);
    if finished.needs_bodies() {
        for e in &history.exchanges {
            finished.scan(e);
        }
    }
    finished.result()
}

impl<'a> End<'a> {
    /// The end of a kept history.
    pub fn of(history: &'a History) -> Self {
        Self {
            teams_numbers: &history.teams_numbers,
            probes: &history.probes,
            signature_probes: &history.signature_probes,
            isolation_probes: &history.isolation_probes,
            judged_at: history.judged_at,
            truth: history.truth.is_some(),
        }
    }
}

/// A kept history's observations, in the order a live run makes them: the legs (each is
/// posted before it can be reported), the events, then the exchanges in `seq` order, each poll
/// cycle right after the last exchange it holds.
fn replay(history: &History, checker: &mut Checker) {
    for leg in &history.legs {
        checker.observe(Observation::Leg(leg));
    }
    for event in &history.events {
        checker.observe(Observation::Event(event));
    }
    let mut exchanges: Vec<&Exchange> = history.exchanges.iter().collect();
    exchanges.sort_by_key(|e| e.seq);
    let mut cycles: Vec<&PollCycle> = history.cycles.iter().collect();
    cycles.sort_by_key(|c| (c.last_seq, c.first_seq));
    let mut cycles = cycles.into_iter().peekable();
    for e in exchanges {
        while let Some(cycle) = cycles.next_if(|c| c.last_seq < e.seq) {
            checker.observe(Observation::Cycle(cycle));
        }
        checker.observe(Observation::Exchange(e));
    }
    for cycle in cycles {
        checker.observe(Observation::Cycle(cycle));
    }
}

/// A kept history's calls as rows in call-id order.
pub(crate) fn for_each_row(history: &History, f: impl FnMut(CallRow<'_>)) {
    let mut calls: Vec<&CallFact> = history.calls.iter().collect();
    calls.sort_by(|a, b| a.call_id.cmp(&b.call_id));
    let mut reported: Vec<&ReportedCall> = history.reported.iter().collect();
    reported.sort_by(|a, b| a.call_id.cmp(&b.call_id));
    let mut items: Vec<&ReconciliationItem> = history.reconciliation.iter().collect();
    items.sort_by(|a, b| a.call_id.cmp(&b.call_id));
    let mut truth: Vec<&CallTruth> = history.truth.iter().flat_map(|t| &t.calls).collect();
    truth.sort_by(|a, b| a.call_id.cmp(&b.call_id));
    join_rows(
        calls.into_iter(),
        reported.into_iter(),
        items.into_iter(),
        truth.into_iter(),
        f,
    );
}

/// Joins Teams' calls, the reported calls, the reconciliation items and the ground truth, each
/// sorted by call id, into one row per call id, in call-id order. An id repeated within one
/// input (a malformed history) takes a row per repetition; items of one id go in one row.
fn join_rows<'a>(
    calls: impl Iterator<Item = &'a CallFact>,
    reported: impl Iterator<Item = &'a ReportedCall>,
    items: impl Iterator<Item = &'a ReconciliationItem>,
    truth: impl Iterator<Item = &'a CallTruth>,
    mut f: impl FnMut(CallRow<'_>),
) {
    let (mut calls, mut reported) = (calls.peekable(), reported.peekable());
    let (mut items, mut truth) = (items.peekable(), truth.peekable());
    let mut group: Vec<ReconciliationItem> = Vec::new();
    loop {
        let next = [
            calls.peek().map(|x| x.call_id.as_str()),
            reported.peek().map(|x| x.call_id.as_str()),
            items.peek().map(|x| x.call_id.as_str()),
            truth.peek().map(|x| x.call_id.as_str()),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(call_id) = next else { break };
        let call = calls.next_if(|x| x.call_id == call_id);
        let reported_one = reported.next_if(|x| x.call_id == call_id);
        let truth_one = truth.next_if(|x| x.call_id == call_id);
        group.clear();
        while let Some(item) = items.next_if(|x| x.call_id == call_id) {
            group.push(item.clone());
        }
        f(CallRow {
            call_id,
            call,
            reported: reported_one,
            items: &group,
            truth: truth_one,
        });
    }
}

#[cfg(test)]
mod tests {
    use oc_observe::ExchangeDirection;

    use super::*;

    fn exchange(seq: u64, direction: ExchangeDirection, wall_time_ms: i64) -> Exchange {
        Exchange {
            seq,
            direction,
            carrier: None,
            method: "GET".into(),
            url: "/oc/v1/cdrs/delta".into(),
            status: Some(200),
            error: None,
            sim_time: 0,
            wall_time_ms,
            latency_us: 1,
            request_headers: Vec::new(),
            request_body: None,
            response_body: None,
            fault: None,
            detail: None,
        }
    }

    fn request(seq: u64, wall_time_ms: i64) -> Exchange {
        exchange(seq, ExchangeDirection::CarrierToTeams, wall_time_ms)
    }

    fn cdr_end(seq: u64) -> Exchange {
        let mut e = request(seq, 0);
        e.detail = Some(ExchangeDetail::FeedPage {
            feed: "cdr".into(),
            chain_start: false,
            from_position: 0,
            to_position: 1,
            next: false,
            link: String::new(),
            misclassified: Vec::new(),
        });
        e
    }

    #[test]
    fn cycles_are_the_spans_between_two_ends_of_the_cdr_feed() {
        let exchanges = [
            request(1, 0),
            cdr_end(2),
            request(3, 0),
            exchange(4, ExchangeDirection::TeamsToCarrier, 0),
            cdr_end(5),
            request(6, 0),
            cdr_end(7),
            request(8, 0),
        ];
        let mut wire = WireCycles::default();
        let cycles: Vec<(u64, u64)> = exchanges
            .iter()
            .filter_map(|e| wire.after(e))
            .map(|c| (c.first_seq, c.last_seq))
            .collect();
        assert_eq!(cycles, [(3, 5), (6, 7)]);
        assert!(WireCycles::default().after(&cdr_end(1)).is_none());
    }
}
