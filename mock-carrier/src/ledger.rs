//! The carrier's book of calls: Teams' record and the switch view of each, what is due to be
//! reported, and every report Teams accepted. The ground truth is read from it.

use std::collections::{BTreeMap, BTreeSet};

use oc_protocol::{
    CallLeg, CallRecord, DurationReport, UnixMillis, format_timestamp, parse_timestamp,
};

use crate::config::CallSource;
use crate::drift::{CallTimes, DriftInput, DriftModel, SwitchView, switch_view};

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

/// One report Teams accepted.
#[derive(Debug, Clone)]
pub(crate) struct Accepted {
    pub(crate) record: DurationReport,
    /// Simulated time of the cycle that sent it.
    pub(crate) at: UnixMillis,
    pub(crate) key: String,
}

/// Everything the carrier knows of one call.
#[derive(Debug, Clone)]
pub(crate) struct CallEntry {
    pub(crate) telephone_number: String,
    pub(crate) origin: Origin,
    pub(crate) teams: Option<TeamsSide>,
    pub(crate) leg: Option<CallTimes>,
    pub(crate) view: Option<SwitchView>,
    /// The record was on a page the `DUR-COMPLETE` profile dropped.
    pub(crate) skipped: bool,
    /// The leg's number was not assigned at its connect time in the carrier's view.
    pub(crate) not_assigned: bool,
    pub(crate) accepted: Vec<Accepted>,
    /// Teams' errors for each rejected report of it.
    pub(crate) rejections: Vec<String>,
    /// A record of it is in a batch Teams has not acknowledged yet.
    pub(crate) queued: bool,
    /// The duplicate the `duplicate` model asked for has been accepted.
    pub(crate) duplicate_sent: bool,
}

/// The drift models and the settings a switch view is computed with.
pub(crate) struct DriftSettings<'a> {
    pub(crate) models: &'a [DriftModel],
    pub(crate) seed: u64,
    pub(crate) deadline_ms: i64,
    pub(crate) calls_from: CallSource,
}

/// Every call, by callId, and the callIds that may have something to report.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    pub(crate) calls: BTreeMap<String, CallEntry>,
    pending: BTreeSet<String>,
    /// CDRs that could not be read (Teams' fault), counted and skipped.
    pub(crate) malformed_cdrs: u64,
}

impl Ledger {
    /// Takes one CDR from the feed. `skipped`: the `DUR-COMPLETE` profile drops its page.
    pub(crate) fn ingest_cdr(
        &mut self,
        record: &CallRecord,
        skipped: bool,
        drift: &DriftSettings<'_>,
        assigned_at: &dyn Fn(&str, UnixMillis) -> bool,
    ) {
        let Some(teams) = teams_side(record) else {
            self.malformed_cdrs += 1;
            return;
        };
        let entry = self
            .calls
            .entry(record.call_id.clone())
            .or_insert_with(|| new_entry(&record.telephone_number, Origin::Cdr));
        if entry.teams.is_some_and(|t| t.version >= teams.version) {
            // Served again within a chain, or an older version: nothing new.
            return;
        }
        entry.teams = Some(teams);
        if skipped {
            entry.skipped |= entry.view.is_none();
            return;
        }
        if drift.calls_from != CallSource::Cdrs || entry.origin != Origin::Cdr {
            return;
        }
        entry.skipped = false;
        let view = teams.times.map(|times| {
            switch_view(
                drift.models,
                &DriftInput {
                    seed: drift.seed,
                    call_id: &record.call_id,
                    telephone_number: &record.telephone_number,
                    times,
                    deadline_ms: drift.deadline_ms,
                },
                assigned_at,
            )
        });
        self.set_view(&record.call_id, view);
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
        let entry = self
            .calls
            .entry(leg.call_id.clone())
            .or_insert_with(|| new_entry(&leg.telephone_number, Origin::Leg));
        entry.origin = Origin::Leg;
        entry.leg = Some(times);
        entry.telephone_number.clone_from(&leg.telephone_number);
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
        self.set_view(&leg.call_id, Some(view));
    }

    fn set_view(&mut self, call_id: &str, view: Option<SwitchView>) {
        let fabricated = view
            .as_ref()
            .and_then(|v| v.fabricated.clone().map(|f| (f, v.hold_until)));
        if let Some(entry) = self.calls.get_mut(call_id) {
            entry.view = view;
        }
        self.pending.insert(call_id.to_owned());
        if let Some((fab, hold_until)) = fabricated
            && !self.calls.contains_key(&fab.call_id)
        {
            let mut entry = new_entry(&fab.telephone_number, Origin::Fabricated);
            entry.view = Some(SwitchView {
                times: Some(fab.times),
                tags: vec!["unassigned_number"],
                duplicate: false,
                hold_until,
                fabricated: None,
            });
            self.pending.insert(fab.call_id.clone());
            self.calls.insert(fab.call_id, entry);
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
    ) -> Vec<(String, DurationReport)> {
        let mut due = Vec::new();
        let mut settled = Vec::new();
        for call_id in &self.pending {
            let Some(entry) = self.calls.get_mut(call_id) else {
                settled.push(call_id.clone());
                continue;
            };
            if entry.queued {
                continue;
            }
            let Some(view) = &entry.view else {
                settled.push(call_id.clone());
                continue;
            };
            let Some(times) = view.times else {
                settled.push(call_id.clone());
                continue;
            };
            if view.hold_until.is_some_and(|h| h > now) {
                continue;
            }
            if let (Origin::Leg, Some(leg)) = (entry.origin, entry.leg) {
                let assigned = assigned_at(&entry.telephone_number, leg.connect);
                entry.not_assigned = !assigned;
                if !assigned {
                    // Kept pending: a late webhook may still show it was assigned.
                    continue;
                }
            }
            let record = DurationReport {
                call_id: call_id.clone(),
                telephone_number: entry.telephone_number.clone(),
                connect_date_time: format_timestamp(times.connect),
                end_date_time: format_timestamp(times.end),
                duration_ms: times.duration(),
            };
            let last = entry.accepted.last().map(|a| &a.record);
            let send = match last {
                None => true,
                Some(last) if *last != record => true,
                Some(_) => view.duplicate && !entry.duplicate_sent,
            };
            if send {
                entry.queued = true;
                due.push((call_id.clone(), record));
            } else {
                settled.push(call_id.clone());
            }
        }
        for call_id in settled {
            self.pending.remove(&call_id);
        }
        due
    }

    /// Teams accepted `record` (sent at simulated `at` under `key`).
    pub(crate) fn accepted(
        &mut self,
        call_id: &str,
        record: DurationReport,
        at: UnixMillis,
        key: &str,
    ) {
        if let Some(entry) = self.calls.get_mut(call_id) {
            if entry.accepted.last().is_some_and(|a| a.record == record) {
                entry.duplicate_sent = true;
            }
            entry.accepted.push(Accepted {
                record,
                at,
                key: key.to_owned(),
            });
            entry.queued = false;
            // Looked at again next cycle: a duplicate may be wanted, or the view may have
            // changed while the batch was in flight.
            self.pending.insert(call_id.to_owned());
        }
    }

    /// Teams rejected the record, or refused its whole batch; it is not sent again unless its
    /// switch view changes (sending the same malformed record again would fail again).
    pub(crate) fn refused(&mut self, call_id: &str, why: String) {
        if let Some(entry) = self.calls.get_mut(call_id) {
            entry.rejections.push(why);
            entry.queued = false;
        }
        self.pending.remove(call_id);
    }

    /// How many calls may still have something to report.
    pub(crate) fn pending_len(&self) -> usize {
        self.pending.len()
    }
}

fn new_entry(telephone_number: &str, origin: Origin) -> CallEntry {
    CallEntry {
        telephone_number: telephone_number.to_owned(),
        origin,
        teams: None,
        leg: None,
        view: None,
        skipped: false,
        not_assigned: false,
        accepted: Vec::new(),
        rejections: Vec::new(),
        queued: false,
        duplicate_sent: false,
    }
}

/// Teams' side of a CDR, or `None` when its times cannot be read.
fn teams_side(record: &CallRecord) -> Option<TeamsSide> {
    let end = parse_timestamp(&record.end_date_time).ok()?;
    let times = match &record.connect_date_time {
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
