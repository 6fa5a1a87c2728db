//! Reading the ledger back, one call at a time: what the ground truth is made of.

use oc_protocol::{Direction, UnixMillis};

use super::row::{CallRow, NONE, Report, flag};
use super::table::index_u32;
use super::{Ledger, Origin, TeamsSide};
use crate::drift::CallTimes;

impl Ledger {
    /// Every call not closed, in call-id order (sorted now: the rows are in the order calls
    /// arrived).
    pub(crate) fn calls_by_id(&self) -> impl Iterator<Item = CallRef<'_>> {
        let mut order: Vec<u32> = (0..index_u32(self.calls.len()))
            .filter(|&call| !self.is_closed(call))
            .collect();
        // Call ids are distinct, so an unstable sort gives the one order.
        oc_protocol::ids::sort_by_text(&mut order, |i| self.call_ids.get(i));
        order.into_iter().map(|call| CallRef { ledger: self, call })
    }
}

impl Ledger {
    /// Call `call` (an index below [`Ledger::len`]).
    pub(super) fn call_ref(&self, call: u32) -> CallRef<'_> {
        CallRef { ledger: self, call }
    }

    /// Every call the carrier's switch recorded (a switch view with times: not dropped) and
    /// that was not closed, in the order the calls reached the ledger: what its CDR export
    /// holds.
    pub(crate) fn switch_records(&self) -> impl Iterator<Item = SwitchRecord<'_>> {
        (0..index_u32(self.calls.len())).filter_map(|call| {
            let row = &self.calls[call];
            if self.is_closed(call) {
                return None;
            }
            let times = row.view_times()?;
            Some(SwitchRecord {
                call_id: self.call_ids.get(call),
                telephone_number: self.numbers.get(row.number),
                other_number: (row.other != 0).then(|| format!("+{}", row.other)),
                direction: (row.other != 0).then(|| {
                    if row.has(flag::OUTBOUND) {
                        Direction::Outbound
                    } else {
                        Direction::Inbound
                    }
                }),
                connect: times.connect,
                end: times.end,
            })
        })
    }
}

/// One call as the carrier's switch recorded it: a line of its CDR export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchRecord<'a> {
    /// The call.
    pub call_id: &'a str,
    /// The carrier's number on the call.
    pub telephone_number: &'a str,
    /// The other party, E.164: `None` when the carrier was never told (a certification leg
    /// names only the carrier's number).
    pub other_number: Option<String>,
    /// From the Teams user's point of view; `None` with `other_number`.
    pub direction: Option<Direction>,
    /// When the switch saw the call answered.
    pub connect: UnixMillis,
    /// When the switch saw it end.
    pub end: UnixMillis,
}

/// One call of the ledger, for reading the ground truth.
#[derive(Clone, Copy)]
pub(crate) struct CallRef<'a> {
    ledger: &'a Ledger,
    call: u32,
}

/// One accepted report of a call.
pub(crate) struct AcceptedRef<'a> {
    report: Report,
    /// Simulated time of the cycle that sent it.
    pub(crate) at: UnixMillis,
    pub(crate) key: &'a str,
}

impl AcceptedRef<'_> {
    pub(crate) fn duration_ms(&self) -> i64 {
        self.report.times.duration()
    }

    /// Whether the two are the same record (sent again), as their
    /// [`oc_protocol::DurationReport`]s compare.
    pub(crate) fn same_record(&self, other: &Self) -> bool {
        self.report.same_record(&other.report)
    }
}

impl<'a> CallRef<'a> {
    fn row(&self) -> &'a CallRow {
        &self.ledger.calls[self.call]
    }

    pub(crate) fn call_id(&self) -> &'a str {
        self.ledger.call_ids.get(self.call)
    }

    pub(crate) fn telephone_number(&self) -> &'a str {
        self.ledger.numbers.get(self.row().number)
    }

    pub(crate) fn origin(&self) -> Origin {
        self.row().origin()
    }

    pub(crate) fn teams(&self) -> Option<TeamsSide> {
        self.row().teams()
    }

    pub(crate) fn leg(&self) -> Option<CallTimes> {
        self.ledger.legs.get(&self.call).copied()
    }

    /// The switch view's times: `None` without a view or when the record was dropped.
    pub(crate) fn view_times(&self) -> Option<CallTimes> {
        self.row().view_times()
    }

    /// The models that changed something in the switch view, in the order applied.
    pub(crate) fn view_tags(&self) -> &'a [&'static str] {
        let row = self.row();
        if !row.has(flag::VIEW) {
            return &[];
        }
        let set = match row.tags {
            u16::MAX => self
                .ledger
                .tags_beyond
                .get(&self.call)
                .copied()
                .unwrap_or(0),
            tags => u32::from(tags),
        };
        self.ledger.tag_sets.get(set)
    }

    /// The record was on a page the `DUR-COMPLETE` profile dropped.
    pub(crate) fn skipped(&self) -> bool {
        self.row().has(flag::SKIPPED)
    }

    /// The leg's number was not assigned at its connect time in the carrier's view.
    pub(crate) fn not_assigned(&self) -> bool {
        self.row().has(flag::NOT_ASSIGNED)
    }

    /// Teams rejected a report of it.
    pub(crate) fn rejected(&self) -> bool {
        self.row().has(flag::REJECTED)
    }

    pub(crate) fn has_reports(&self) -> bool {
        self.row().last_report != NONE
    }

    /// Every report Teams accepted, in the order accepted.
    pub(crate) fn reports(&self) -> Vec<AcceptedRef<'a>> {
        let ledger = self.ledger;
        let mut reports = Vec::new();
        let mut next = self.row().last_report;
        while let Some(row) = ledger.reports.get(next) {
            let batch = ledger.batches[row.batch as usize];
            reports.push(AcceptedRef {
                report: row.report,
                at: batch.at,
                key: ledger.keys.get(batch.key),
            });
            next = row.prev;
        }
        reports.reverse();
        reports
    }
}
