//! The carrier's book of calls: Teams' record and the switch view of each, what is due to be
//! reported, and every report Teams accepted. The ground truth is read from it.
//!
//! It keeps the calls still in play (the ground truth of the others was read when they left),
//! so a call costs a fixed row and its call id's bytes: numbers, idempotency keys and tag lists
//! are interned, reports are integers, and what few calls have (a leg, a hold, a rejection) is
//! kept beside the rows or in their flags. [`Ledger::heap_bytes`] counts it. Calls leave two
//! ways: in a run, Teams closes a call once it is final here too, and its truth goes to the
//! checker then ([`Ledger::close`]); a long-running `serve` retires settled calls
//! ([`Ledger::retire`]), their truth folded into totals. Either way the rows of the others are
//! copied into a fresh ledger, once enough have left.

mod read;
mod row;
mod table;

use std::collections::BTreeMap;

use oc_protocol::{
    CallLeg, CallRecord, Direction, DurationReport, UnixMillis, format_timestamp, parse_timestamp,
};

use crate::config::CallSource;
use crate::drift::{CallTimes, DriftInput, DriftModel, SwitchView, switch_view};
use crate::truth::Tally;
pub use read::SwitchRecord;
pub(crate) use read::{AcceptedRef, CallRef};
use row::{BatchRow, CallRow, NONE, Report, ReportRow, TagSets, flag};
pub(crate) use table::{Chunked, Strings, index_u32};

/// Where a call came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Teams' CDR feed.
    Cdr,
    /// The certification hook.
    Leg,
    /// Made up by the `unassigned_number` model.
    Fabricated,
}

/// Teams' latest record of a call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TeamsSide {
    pub(crate) version: u32,
    /// `None` when the call was not answered.
    pub(crate) times: Option<CallTimes>,
}

/// The drift models and the settings a switch view is computed with.
pub(crate) struct DriftSettings<'a> {
    pub(crate) models: &'a [DriftModel],
    pub(crate) seed: u64,
    pub(crate) deadline_ms: i64,
    pub(crate) calls_from: CallSource,
}

/// A record due to be reported, and which call of the ledger it is.
#[derive(Debug, Clone)]
pub(crate) struct Due {
    pub(crate) record: DurationReport,
    call: u32,
    report: Report,
}

/// Every call, found by callId, and the calls that may have something to report.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    /// The call ids; a call's index here is its row's in `calls`.
    call_ids: Strings,
    calls: Chunked<CallRow>,
    numbers: Strings,
    reports: Chunked<ReportRow>,
    batches: Vec<BatchRow>,
    keys: Strings,
    tag_sets: TagSets,
    /// Tag-list indices that do not fit a row's `u16`, by call.
    tags_beyond: BTreeMap<u32, u32>,
    /// The certification leg of each call that has one.
    legs: BTreeMap<u32, CallTimes>,
    /// The time before which a call's report is held, for the switch views that hold one.
    holds: BTreeMap<u32, UnixMillis>,
    /// Calls flagged [`flag::PENDING`] (and some that no longer are, or twice): tidied and put
    /// in call-id order when the due records are taken.
    pending: Vec<u32>,
    /// How many calls are flagged [`flag::PENDING`].
    pending_len: usize,
    /// CDRs that could not be read (Teams' fault), counted and skipped.
    pub(crate) malformed_cdrs: u64,
    /// The truth of the calls retired ([`Ledger::retire`]), counted.
    pub(crate) retired: Tally,
    /// Calls flagged [`flag::CLOSED`], still in the rows until the next compaction.
    closed_len: usize,
}

impl Ledger {
    /// Takes one CDR from the feed. `skipped`: the `DUR-COMPLETE` profile drops its page.
    pub(crate) fn ingest_cdr(
        &mut self,
        record: &CallRecord<&str>,
        skipped: bool,
        drift: &DriftSettings<'_>,
        assigned_at: &dyn Fn(&str, UnixMillis) -> bool,
    ) {
        let Some(teams) = teams_side(record) else {
            self.malformed_cdrs += 1;
            return;
        };
        let call = match self.call_ids.find(record.call_id) {
            Some(call) => call,
            None => self.insert_call(record.call_id, record.telephone_number, Origin::Cdr),
        };
        let row = &mut self.calls[call];
        if row.has(flag::TEAMS) && row.teams_version >= teams.version {
            // Served again within a chain, or an older version: nothing new.
            return;
        }
        row.set_teams(teams);
        // The switch saw both parties: the carrier's number and the other one.
        let (other, outbound) = match record.direction {
            Direction::Outbound => (record.callee_number, true),
            Direction::Inbound => (record.caller_number, false),
        };
        row.other = e164_digits(other).unwrap_or(0);
        row.set(flag::OUTBOUND, outbound);
        if skipped {
            if !row.has(flag::VIEW) {
                row.set(flag::SKIPPED, true);
            }
            return;
        }
        if drift.calls_from != CallSource::Cdrs || row.origin() != Origin::Cdr {
            return;
        }
        row.set(flag::SKIPPED, false);
        let view = teams.times.map(|times| {
            switch_view(
                drift.models,
                &DriftInput {
                    seed: drift.seed,
                    call_id: record.call_id,
                    telephone_number: record.telephone_number,
                    times,
                    deadline_ms: drift.deadline_ms,
                },
                assigned_at,
            )
        });
        self.set_view(call, view);
    }

    /// Takes one validated leg from the certification hook.
    pub(crate) fn ingest_leg(
        &mut self,
        leg: &CallLeg,
        drift: &DriftSettings<'_>,
        assigned_at: &dyn Fn(&str, UnixMillis) -> bool,
    ) {
        let (Ok(connect), Ok(end)) = (
            parse_timestamp(&leg.connect_date_time),
            parse_timestamp(&leg.end_date_time),
        ) else {
            return;
        };
        let times = CallTimes { connect, end };
        let call = match self.call_ids.find(&leg.call_id) {
            Some(call) => call,
            None => self.insert_call(&leg.call_id, &leg.telephone_number, Origin::Leg),
        };
        let number = self.numbers.intern(&leg.telephone_number);
        let row = &mut self.calls[call];
        row.set_origin(Origin::Leg);
        row.number = number;
        self.legs.insert(call, times);
        let view = switch_view(
            drift.models,
            &DriftInput {
                seed: drift.seed,
                call_id: &leg.call_id,
                telephone_number: &leg.telephone_number,
                times,
                deadline_ms: drift.deadline_ms,
            },
            assigned_at,
        );
        self.set_view(call, Some(view));
    }

    /// Adds a call [`Strings::find`] does not know; returns its index.
    fn insert_call(&mut self, call_id: &str, telephone_number: &str, origin: Origin) -> u32 {
        let number = self.numbers.intern(telephone_number);
        let call = self.call_ids.intern(call_id);
        let row = self.calls.push(CallRow::new(number, origin));
        debug_assert_eq!(call, row, "call ids and rows are pushed together");
        call
    }

    fn set_view(&mut self, call: u32, view: Option<SwitchView>) {
        self.store_view(call, view.as_ref());
        self.mark_pending(call);
        let Some(SwitchView {
            fabricated: Some(fab),
            hold_until,
            ..
        }) = view
        else {
            return;
        };
        if self.call_ids.find(&fab.call_id).is_none() {
            let fabricated =
                self.insert_call(&fab.call_id, &fab.telephone_number, Origin::Fabricated);
            // The source call recorded again on another number: the same other party.
            let source = self.calls[call];
            let row = &mut self.calls[fabricated];
            row.other = source.other;
            row.set(flag::OUTBOUND, source.has(flag::OUTBOUND));
            self.store_view(
                fabricated,
                Some(&SwitchView {
                    times: Some(fab.times),
                    tags: vec!["unassigned_number"],
                    duplicate: false,
                    hold_until,
                    fabricated: None,
                }),
            );
            self.mark_pending(fabricated);
        }
    }

    /// Keeps what is read of a switch view later: its times, tags, duplicate wish and hold.
    fn store_view(&mut self, call: u32, view: Option<&SwitchView>) {
        let tags = view.map_or(0, |v| self.tag_sets.intern(&v.tags));
        let row = &mut self.calls[call];
        row.set(flag::VIEW, view.is_some());
        let times = view.and_then(|v| v.times);
        row.set(flag::VIEW_TIMES, times.is_some());
        if let Some(times) = times {
            row.view = times;
        }
        row.set(flag::DUPLICATE, view.is_some_and(|v| v.duplicate));
        match u16::try_from(tags) {
            Ok(t) if t != u16::MAX => {
                row.tags = t;
                self.tags_beyond.remove(&call);
            }
            _ => {
                row.tags = u16::MAX;
                self.tags_beyond.insert(call, tags);
            }
        }
        match view.and_then(|v| v.hold_until) {
            Some(hold) => self.holds.insert(call, hold),
            None => self.holds.remove(&call),
        };
    }

    fn mark_pending(&mut self, call: u32) {
        let row = &mut self.calls[call];
        if !row.has(flag::PENDING) {
            row.set(flag::PENDING, true);
            self.pending_len += 1;
            self.pending.push(call);
        }
    }

    fn settle(&mut self, call: u32) {
        let row = &mut self.calls[call];
        if row.has(flag::PENDING) {
            row.set(flag::PENDING, false);
            self.pending_len -= 1;
        }
    }

    /// The records due at simulated time `now`, in callId order, marking them queued.
    ///
    /// A call is due when its switch view has times, its hold (if any) has passed, and either
    /// nothing of it was accepted yet, the view changed since (a correction), or the
    /// `duplicate` model wants it sent a second time. Legs are only reported while their
    /// number was assigned at their connect time in the carrier's view [DUR-UNEXPECTED].
    pub(crate) fn take_due(
        &mut self,
        now: UnixMillis,
        assigned_at: &dyn Fn(&str, UnixMillis) -> bool,
    ) -> Vec<Due> {
        let mut pending = std::mem::take(&mut self.pending);
        pending.retain(|&call| self.calls[call].has(flag::PENDING));
        // The calls kept from the last cycle are in order already and the new ones follow them:
        // the stable sort finds the two runs and merges them (about one comparison per call,
        // where the unstable sort partitioned the whole list again each cycle). Each id is
        // looked up once, not twice per comparison.
        let mut keyed: Vec<(&str, u32)> = pending
            .iter()
            .map(|&call| (self.call_ids.get(call), call))
            .collect();
        keyed.sort_by(|a, b| a.0.cmp(b.0));
        pending.clear();
        pending.extend(keyed.into_iter().map(|(_, call)| call));
        pending.dedup();
        let mut due = Vec::new();
        let mut kept = Vec::with_capacity(pending.len());
        for call in pending {
            match self.due_now(call, now, assigned_at) {
                Step::Wait => kept.push(call),
                Step::Send(record) => {
                    self.calls[call].set(flag::QUEUED, true);
                    kept.push(call);
                    due.push(record);
                }
                Step::Settle => self.settle(call),
            }
        }
        self.pending = kept;
        due
    }

    /// What to do with pending `call` at `now`.
    fn due_now(
        &mut self,
        call: u32,
        now: UnixMillis,
        assigned_at: &dyn Fn(&str, UnixMillis) -> bool,
    ) -> Step {
        let row = self.calls[call];
        if row.has(flag::QUEUED) {
            return Step::Wait;
        }
        let Some(times) = row.view_times() else {
            // No view, or the record was dropped.
            return Step::Settle;
        };
        if self.holds.get(&call).is_some_and(|&h| h > now) {
            return Step::Wait;
        }
        if let (Origin::Leg, Some(leg)) = (row.origin(), self.legs.get(&call)) {
            let assigned = assigned_at(self.numbers.get(row.number), leg.connect);
            self.calls[call].set(flag::NOT_ASSIGNED, !assigned);
            if !assigned {
                // Kept pending: a late webhook may still show it was assigned.
                return Step::Wait;
            }
        }
        let report = Report {
            number: row.number,
            times,
        };
        let send = match self.reports.get(row.last_report) {
            None => true,
            Some(last) if !last.report.same_record(&report) => true,
            Some(_) => row.has(flag::DUPLICATE) && !row.has(flag::DUPLICATE_SENT),
        };
        if !send {
            return Step::Settle;
        }
        Step::Send(Due {
            record: DurationReport {
                call_id: self.call_ids.get(call).to_owned(),
                telephone_number: self.numbers.get(row.number).to_owned(),
                connect_date_time: format_timestamp(times.connect),
                end_date_time: format_timestamp(times.end),
                duration_ms: times.duration(),
            },
            call,
            report,
        })
    }

    /// Teams accepted `due` (sent at simulated `at` under `key`).
    pub(crate) fn accepted(&mut self, due: &Due, at: UnixMillis, key: &str) {
        let batch = self.batch(key, at);
        let last = self.calls[due.call].last_report;
        let duplicate = self
            .reports
            .get(last)
            .is_some_and(|r| r.report.same_record(&due.report));
        let report = self.reports.push(ReportRow {
            report: due.report,
            batch,
            prev: last,
        });
        let row = &mut self.calls[due.call];
        if duplicate {
            row.set(flag::DUPLICATE_SENT, true);
        }
        row.last_report = report;
        row.set(flag::QUEUED, false);
        // Looked at again next cycle: a duplicate may be wanted, or the view may have changed
        // while the batch was in flight.
        self.mark_pending(due.call);
    }

    /// The index of the batch row for `key` at `at`: the last one, for the other records of
    /// the batch being settled.
    fn batch(&mut self, key: &str, at: UnixMillis) -> u32 {
        if let Some(last) = self.batches.last()
            && last.at == at
            && self.keys.get(last.key) == key
        {
            return index_u32(self.batches.len() - 1);
        }
        let key = self.keys.intern(key);
        self.batches.push(BatchRow { key, at });
        index_u32(self.batches.len() - 1)
    }

    /// Teams rejected `due`, or refused its whole batch; it is not sent again unless its switch
    /// view changes (sending the same malformed record again would fail again).
    pub(crate) fn refused(&mut self, due: &Due) {
        let row = &mut self.calls[due.call];
        row.set(flag::REJECTED, true);
        row.set(flag::QUEUED, false);
        self.settle(due.call);
    }

    /// How many calls may still have something to report.
    pub(crate) fn pending_len(&self) -> usize {
        self.pending_len
    }

    /// Heap bytes held: what grows with calls, their accepted reports, numbers and batches,
    /// and the pending calls. The side maps are estimated (B-tree nodes are about two-thirds
    /// full).
    pub(crate) fn heap_bytes(&self) -> usize {
        fn map_bytes<K, V>(map: &BTreeMap<K, V>) -> usize {
            map.len() * (size_of::<K>() + size_of::<V>()) * 3 / 2
        }
        self.call_ids.heap_bytes()
            + self.calls.heap_bytes()
            + self.numbers.heap_bytes()
            + self.reports.heap_bytes()
            + self.batches.capacity() * size_of::<BatchRow>()
            + self.keys.heap_bytes()
            + self
                .tag_sets
                .lists
                .iter()
                .map(|l| l.capacity() * size_of::<&str>() * 2)
                .sum::<usize>()
            + map_bytes(&self.tags_beyond)
            + map_bytes(&self.legs)
            + map_bytes(&self.holds)
            + self.pending.capacity() * size_of::<u32>()
    }
}

impl Ledger {
    /// How many calls the ledger holds (retired and closed ones are not held).
    pub(crate) fn len(&self) -> usize {
        self.calls.len() - self.closed_len
    }

    /// Whether nothing more can happen to call `call_id` on the carrier's side: nothing of it
    /// is pending (due, held back, or waiting for a correction's turn) or in a batch Teams
    /// has not answered. A call the ledger does not have is final: there is nothing of it to
    /// report. Teams asks before it closes a call ([`Ledger::close`]).
    pub(crate) fn is_final(&self, call_id: &str) -> bool {
        self.call_ids.find(call_id).is_none_or(|call| {
            let row = &self.calls[call];
            !row.has(flag::PENDING) && !row.has(flag::QUEUED)
        })
    }

    /// Closes call `call_id`, which Teams closed once [`Ledger::is_final`] said it was:
    /// returns its ground truth (read by `truth`; `None` when the ledger does not have it or
    /// reconciliation does not cover it) and stops reading it. Its row leaves with the next
    /// compaction, once closed calls are three rows in four, so that closing costs a constant
    /// time a call however many are open.
    pub(crate) fn close(
        &mut self,
        call_id: &str,
        truth: impl Fn(CallRef<'_>) -> Option<crate::truth::CallTruth>,
    ) -> Option<crate::truth::CallTruth> {
        let call = self.call_ids.find(call_id)?;
        if self.calls[call].has(flag::CLOSED) {
            return None;
        }
        let t = truth(self.call_ref(call));
        self.settle(call);
        self.calls[call].set(flag::CLOSED, true);
        self.closed_len += 1;
        // Three closed rows in four before the open ones are copied: each closed call costs
        // at most a third of a copy, where half closed cost a whole one, and the rows held
        // are at most four times the open calls.
        if self.closed_len >= 4096 && 4 * self.closed_len >= 3 * self.calls.len() {
            let gone: Vec<bool> = (0..index_u32(self.calls.len()))
                .map(|c| self.is_closed(c))
                .collect();
            self.compact(&gone);
        }
        t
    }

    /// Whether call `call` was closed (and is no longer read).
    pub(super) fn is_closed(&self, call: u32) -> bool {
        self.calls[call].has(flag::CLOSED)
    }

    /// Whether `call` is settled since `before` or earlier: its last report accepted by then,
    /// nothing of it pending or in flight. A call never reported is never settled: it is what
    /// a ground truth must name (`missing`), and a late report may still come.
    fn settled_before(&self, call: u32, before: UnixMillis) -> bool {
        let row = &self.calls[call];
        if row.has(flag::PENDING) || row.has(flag::QUEUED) {
            return false;
        }
        self.reports
            .get(row.last_report)
            .is_some_and(|last| self.batches[last.batch as usize].at <= before)
    }

    /// Retires every call settled at `before` or earlier (see [`Ledger::settled_before`]):
    /// `truth` reads each one's ground truth (`None` when reconciliation does not cover it),
    /// which is added to [`Ledger::retired`], and the calls left are copied into a fresh
    /// ledger, so that the memory of the retired ones is given back. Returns how many were
    /// retired. A retired call's id is forgotten: a record of it that comes again is a new
    /// call, which is why `serve` retires only calls settled long ago.
    pub(crate) fn retire(
        &mut self,
        before: UnixMillis,
        truth: impl Fn(CallRef<'_>) -> Option<crate::truth::CallTruth>,
    ) -> usize {
        let calls = index_u32(self.calls.len());
        let retiring: Vec<bool> = (0..calls)
            .map(|call| !self.is_closed(call) && self.settled_before(call, before))
            .collect();
        let count = retiring.iter().filter(|&&r| r).count();
        if count == 0 {
            return 0;
        }
        for call in (0..calls).filter(|&c| retiring[c as usize]) {
            match truth(self.call_ref(call)) {
                Some(t) => self.retired.add(&t),
                // Outside reconciliation: counted as retired, in no class.
                None => self.retired.calls += 1,
            }
        }
        let gone: Vec<bool> = (0..calls)
            .map(|c| retiring[c as usize] || self.is_closed(c))
            .collect();
        self.compact(&gone);
        count
    }

    /// The earliest connect time of a certification leg the ledger holds: the earliest time
    /// its calls may still ask whether their number was assigned ([`Ledger::take_due`]).
    pub(crate) fn earliest_leg_connect(&self) -> Option<UnixMillis> {
        self.legs.values().map(|leg| leg.connect).min()
    }

    /// Drops each call whose entry in `gone` is true, copying the others into a fresh ledger
    /// so that their memory is given back.
    fn compact(&mut self, gone: &[bool]) {
        let calls = index_u32(self.calls.len());
        let mut old = std::mem::take(self);
        let mut new = Ledger {
            // Tag lists are few (one per combination of drift models): kept whole.
            tag_sets: std::mem::take(&mut old.tag_sets),
            malformed_cdrs: old.malformed_cdrs,
            retired: old.retired,
            ..Ledger::default()
        };
        let kept = gone.iter().filter(|&&g| !g).count();
        new.call_ids.reserve(kept);
        // Old call index → new, and old batch index → new (a batch's rows are shared).
        let mut moved = vec![NONE; calls as usize];
        let mut batches: BTreeMap<u32, u32> = BTreeMap::new();
        for call in (0..calls).filter(|&c| !gone[c as usize]) {
            let row = old.calls[call];
            let number = old.numbers.get(row.number);
            let to = new.insert_call(old.call_ids.get(call), number, row.origin());
            moved[call as usize] = to;
            // The call's accepted reports, oldest first, each pointing back to the one before.
            let mut chain = Vec::new();
            let mut next = row.last_report;
            while let Some(report) = old.reports.get(next) {
                chain.push(*report);
                next = report.prev;
            }
            let mut last = NONE;
            for report in chain.into_iter().rev() {
                let batch = match batches.get(&report.batch) {
                    Some(&b) => b,
                    None => {
                        let b = old.batches[report.batch as usize];
                        let key = new.keys.intern(old.keys.get(b.key));
                        new.batches.push(BatchRow { key, at: b.at });
                        let b = index_u32(new.batches.len() - 1);
                        batches.insert(report.batch, b);
                        b
                    }
                };
                let number = new.numbers.intern(old.numbers.get(report.report.number));
                last = new.reports.push(ReportRow {
                    report: Report {
                        number,
                        times: report.report.times,
                    },
                    batch,
                    prev: last,
                });
            }
            let copied = &mut new.calls[to];
            let number = copied.number;
            *copied = CallRow {
                number,
                last_report: last,
                ..row
            };
            if copied.has(flag::PENDING) {
                new.pending_len += 1;
            }
            if let Some(&tags) = old.tags_beyond.get(&call) {
                new.tags_beyond.insert(to, tags);
            }
            if let Some(&leg) = old.legs.get(&call) {
                new.legs.insert(to, leg);
            }
            if let Some(&hold) = old.holds.get(&call) {
                new.holds.insert(to, hold);
            }
        }
        // The pending calls in their order (a retired call is never pending).
        new.pending = old
            .pending
            .iter()
            .map(|&call| moved[call as usize])
            .filter(|&call| call != NONE)
            .collect();
        *self = new;
    }
}

/// What [`Ledger::take_due`] does with a pending call.
enum Step {
    /// Keep it pending.
    Wait,
    /// Report this record, and keep it pending until Teams answers.
    Send(Due),
    /// Nothing more to report for now: no longer pending.
    Settle,
}

/// An E.164 number's digits as an integer.
fn e164_digits(number: &str) -> Option<u64> {
    number.strip_prefix('+')?.parse().ok().filter(|&n| n != 0)
}

/// Teams' side of a CDR, or `None` when its times cannot be read.
fn teams_side(record: &CallRecord<&str>) -> Option<TeamsSide> {
    let end = parse_timestamp(record.end_date_time).ok()?;
    let times = match record.connect_date_time {
        Some(connect) => {
            let connect = parse_timestamp(connect).ok()?;
            (end >= connect).then_some(CallTimes { connect, end })
        }
        None => None,
    };
    if record.connect_date_time.is_some() && times.is_none() {
        return None;
    }
    Some(TeamsSide {
        version: record.version,
        times,
    })
}

#[cfg(test)]
mod tests;
