//! The shapes the ledger stores: a fixed row per call and per accepted report, with flags
//! for what is yes or no and indexes into the interned tables for what repeats.

use std::collections::BTreeMap;

use oc_protocol::UnixMillis;
use oc_protocol::timestamp::{MAX_UNIX_MILLIS, MIN_UNIX_MILLIS};

use super::table::index_u32;
use super::{Origin, TeamsSide};
use crate::drift::CallTimes;

/// A duration record as the ledger keeps it: the integers its text is formatted from (the
/// call is the row's).
#[derive(Debug, Clone, Copy)]
pub(super) struct Report {
    /// Index in the ledger's numbers.
    pub(super) number: u32,
    pub(super) times: CallTimes,
}

impl Report {
    /// Whether the two records are equal as `DurationReport`s of one call: the same number,
    /// the same timestamp texts (the text clamps to the years 0000–9999, and is one text per
    /// millisecond within them) and the same `durationMs`.
    pub(super) fn same_record(&self, other: &Self) -> bool {
        let wire = |ms: UnixMillis| ms.clamp(MIN_UNIX_MILLIS, MAX_UNIX_MILLIS);
        self.number == other.number
            && wire(self.times.connect) == wire(other.times.connect)
            && wire(self.times.end) == wire(other.times.end)
            && self.times.duration() == other.times.duration()
    }
}

/// No row: the end of a chain of reports.
pub(super) const NONE: u32 = u32::MAX;

/// One accepted report.
#[derive(Debug, Clone, Copy)]
pub(super) struct ReportRow {
    pub(super) report: Report,
    /// Index in the ledger's batches.
    pub(super) batch: u32,
    /// The call's report accepted before it, or [`NONE`].
    pub(super) prev: u32,
}

/// A batch's key and the simulated time of the cycle that sent it: the same for all its
/// records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BatchRow {
    /// Index in the ledger's idempotency keys.
    pub(super) key: u32,
    pub(super) at: UnixMillis,
}

/// The bits of [`CallRow::flags`].
pub(super) mod flag {
    /// Teams' record was read ([`super::CallRow::teams_version`] is set).
    pub(in crate::ledger) const TEAMS: u16 = 1 << 0;
    /// Teams' record says the call was answered ([`super::CallRow::teams`] is set).
    pub(in crate::ledger) const TEAMS_ANSWERED: u16 = 1 << 1;
    /// There is a switch view.
    pub(in crate::ledger) const VIEW: u16 = 1 << 2;
    /// The switch view has times ([`super::CallRow::view`] is set): it was not dropped.
    pub(in crate::ledger) const VIEW_TIMES: u16 = 1 << 3;
    /// The switch view asks for the report to be sent a second time.
    pub(in crate::ledger) const DUPLICATE: u16 = 1 << 4;
    /// The record was on a page the `DUR-COMPLETE` profile dropped.
    pub(in crate::ledger) const SKIPPED: u16 = 1 << 5;
    /// The leg's number was not assigned at its connect time in the carrier's view.
    pub(in crate::ledger) const NOT_ASSIGNED: u16 = 1 << 6;
    /// A record of it is in a batch Teams has not acknowledged yet.
    pub(in crate::ledger) const QUEUED: u16 = 1 << 7;
    /// The duplicate the `duplicate` model asked for has been accepted.
    pub(in crate::ledger) const DUPLICATE_SENT: u16 = 1 << 8;
    /// Teams rejected a report of it (its reasons are logged where they arrive).
    pub(in crate::ledger) const REJECTED: u16 = 1 << 9;
    /// It may have something to report.
    pub(in crate::ledger) const PENDING: u16 = 1 << 10;
    /// It came from the certification hook.
    pub(in crate::ledger) const ORIGIN_LEG: u16 = 1 << 11;
    /// It was made up by the `unassigned_number` model.
    pub(in crate::ledger) const ORIGIN_FABRICATED: u16 = 1 << 12;
    /// The Teams user placed the call ([`super::CallRow::other`] is the callee); else the user
    /// took it.
    pub(in crate::ledger) const OUTBOUND: u16 = 1 << 13;
    /// Teams closed the call and its truth was taken ([`super::super::Ledger::close`]): it
    /// is no longer read, and leaves with the next compaction.
    pub(in crate::ledger) const CLOSED: u16 = 1 << 14;
}

/// Everything the carrier knows of one call but its leg and hold (in side maps).
#[derive(Debug, Clone, Copy)]
pub(super) struct CallRow {
    pub(super) teams: CallTimes,
    pub(super) view: CallTimes,
    pub(super) teams_version: u32,
    /// Index in the ledger's numbers.
    pub(super) number: u32,
    /// The other party's E.164 digits as an integer (never 0: the first digit is not), or 0
    /// when the carrier was not told (a certification leg).
    pub(super) other: u64,
    /// The last accepted report, or [`NONE`].
    pub(super) last_report: u32,
    /// Index in [`TagSets`]; `u16::MAX`: in the ledger's `tags_beyond`.
    pub(super) tags: u16,
    pub(super) flags: u16,
}

// What a call and a report cost, besides the call id's bytes and the indexes.
const _: () = assert!(size_of::<CallRow>() == 56 && size_of::<ReportRow>() == 32);

impl CallRow {
    pub(super) fn new(number: u32, origin: Origin) -> Self {
        let mut row = Self {
            teams: CallTimes { connect: 0, end: 0 },
            view: CallTimes { connect: 0, end: 0 },
            teams_version: 0,
            number,
            other: 0,
            last_report: NONE,
            tags: 0,
            flags: 0,
        };
        row.set_origin(origin);
        row
    }

    pub(super) fn has(&self, bit: u16) -> bool {
        self.flags & bit != 0
    }

    pub(super) fn set(&mut self, bit: u16, on: bool) {
        if on {
            self.flags |= bit;
        } else {
            self.flags &= !bit;
        }
    }

    pub(super) fn origin(&self) -> Origin {
        if self.has(flag::ORIGIN_LEG) {
            Origin::Leg
        } else if self.has(flag::ORIGIN_FABRICATED) {
            Origin::Fabricated
        } else {
            Origin::Cdr
        }
    }

    pub(super) fn set_origin(&mut self, origin: Origin) {
        self.set(flag::ORIGIN_LEG, origin == Origin::Leg);
        self.set(flag::ORIGIN_FABRICATED, origin == Origin::Fabricated);
    }

    pub(super) fn teams(&self) -> Option<TeamsSide> {
        self.has(flag::TEAMS).then(|| TeamsSide {
            version: self.teams_version,
            times: self.has(flag::TEAMS_ANSWERED).then_some(self.teams),
        })
    }

    pub(super) fn set_teams(&mut self, teams: TeamsSide) {
        self.set(flag::TEAMS, true);
        self.teams_version = teams.version;
        self.set(flag::TEAMS_ANSWERED, teams.times.is_some());
        if let Some(times) = teams.times {
            self.teams = times;
        }
    }

    pub(super) fn view_times(&self) -> Option<CallTimes> {
        self.has(flag::VIEW_TIMES).then_some(self.view)
    }
}

/// The distinct tag lists of switch views; 0 is the empty list.
#[derive(Debug, Default)]
pub(super) struct TagSets {
    pub(super) lists: Vec<Vec<&'static str>>,
    by_list: BTreeMap<Vec<&'static str>, u32>,
}

impl TagSets {
    pub(super) fn intern(&mut self, tags: &[&'static str]) -> u32 {
        if tags.is_empty() {
            return 0;
        }
        if let Some(&index) = self.by_list.get(tags) {
            return index;
        }
        self.lists.push(tags.to_vec());
        let index = index_u32(self.lists.len());
        self.by_list.insert(tags.to_vec(), index);
        index
    }

    pub(super) fn get(&self, index: u32) -> &[&'static str] {
        match index {
            0 => &[],
            i => &self.lists[i as usize - 1],
        }
    }
}

#[cfg(test)]
mod tests {
    use oc_protocol::{DurationReport, format_timestamp};

    use super::*;

    #[test]
    fn records_compare_as_their_text_does() {
        let edges = [
            MIN_UNIX_MILLIS - 5,
            MIN_UNIX_MILLIS - 1,
            MIN_UNIX_MILLIS,
            MIN_UNIX_MILLIS + 1,
            0,
            1,
            MAX_UNIX_MILLIS - 1,
            MAX_UNIX_MILLIS,
            MAX_UNIX_MILLIS + 1,
            MAX_UNIX_MILLIS + 7,
        ];
        let numbers = ["+14255550100", "+14255550101"];
        let mut reports = Vec::new();
        for number in 0..2u32 {
            for &connect in &edges {
                for &end in &edges {
                    let report = Report {
                        number,
                        times: CallTimes { connect, end },
                    };
                    let text = DurationReport {
                        call_id: "c".to_owned(),
                        telephone_number: numbers[number as usize].to_owned(),
                        connect_date_time: format_timestamp(connect),
                        end_date_time: format_timestamp(end),
                        duration_ms: end - connect,
                    };
                    reports.push((report, text));
                }
            }
        }
        for (a, a_text) in &reports {
            for (b, b_text) in &reports {
                assert_eq!(a.same_record(b), a_text == b_text, "{a_text:?} {b_text:?}");
            }
        }
    }
}
