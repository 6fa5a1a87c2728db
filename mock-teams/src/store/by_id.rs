//! Every call of a carrier in call-id order, joined with what the carrier reported and the
//! call's class: the end of a run as the harness's checker reads it, one call at a time, so
//! that nothing per call is collected on either side.

use oc_protocol::{ReconciliationItem, UnixMillis};

use super::reports::{ReconSlot, ReportedCall};
use super::{Store, StoreError};

/// Teams' own record of a call, as it stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TeamsCall {
    /// Whether it was answered.
    pub answered: bool,
    /// `end − connect`, 0 when not answered.
    pub duration_ms: i64,
    /// When it ended.
    pub end: UnixMillis,
    /// Whether Teams corrected its record.
    pub corrected: bool,
}

/// One call id of a carrier: Teams' call when Teams has one, what the carrier reported for it,
/// and its reconciliation item in the window asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct CallView<'a> {
    /// The call.
    pub call_id: &'a str,
    /// The carrier's number it was on (for a report matching no call: the reported one).
    pub telephone_number: &'a str,
    /// Teams' record, when Teams has a call of this id for the carrier.
    pub teams: Option<TeamsCall>,
    /// What the carrier reported, when it did.
    pub reported: Option<ReportedCall>,
    /// Its class, when it has one in the window.
    pub item: Option<ReconciliationItem>,
}

impl Store {
    /// Every call of `carrier_id` still kept (not closed: see [`Store::close_settled`]) and
    /// every call id it reported that matches none, in call-id order, each with its
    /// reconciliation item over calls started in `window` (the index that orders them takes 4
    /// bytes per call while it is read, 16 while it is sorted).
    pub fn calls_by_id(
        &self,
        carrier_id: &str,
        window: (UnixMillis, UnixMillis),
    ) -> Result<impl Iterator<Item = CallView<'_>>, StoreError> {
        let carrier = self.carrier_id_index(carrier_id)?;
        let mut order: Vec<u32> = self
            .rows
            .range()
            .filter(|&i| self.rows[i as usize].carrier == carrier)
            .collect();
        oc_protocol::ids::sort_by_text(&mut order, |i| self.call_ids.get(i));
        let (from, to) = window;
        let known = order.into_iter().map(move |index| {
            let row = &self.rows[index as usize];
            let call_id = self.call_ids.get(index);
            let telephone_number = self.numbers[row.number as usize].telephone_number.as_str();
            let slot = self.slots[index as usize];
            CallView {
                call_id,
                telephone_number,
                teams: Some(TeamsCall {
                    answered: row.is_answered(),
                    duration_ms: row.duration_ms(),
                    end: row.end(),
                    corrected: row.version > 1,
                }),
                reported: reported(call_id, telephone_number, slot),
                item: self
                    .classify_call(carrier, index, from, to)
                    .map(|c| c.to_item()),
            }
        });
        let unmatched =
            self.carriers[usize::from(carrier)]
                .unmatched
                .iter()
                .map(move |(call_id, u)| CallView {
                    call_id,
                    telephone_number: &u.telephone_number,
                    teams: None,
                    reported: reported(call_id, &u.telephone_number, u.slot),
                    item: (u.connect >= from && u.connect < to).then(|| {
                        super::recon::unexpected_item(call_id, &u.telephone_number, u.slot)
                    }),
                });
        Ok(merge(known, unmatched))
    }
}

impl Store {
    /// Every quality record of `carrier_id`'s feed as (when it became available, whether it is
    /// poor), in feed order, which is availability order; a closed record's time is the start
    /// of the minute it became available in.
    pub fn quality_availability(
        &self,
        carrier_id: &str,
    ) -> Result<impl Iterator<Item = (UnixMillis, bool)> + Clone + '_, StoreError> {
        let carrier = self.carrier_id_index(carrier_id)?;
        let c = &self.carriers[usize::from(carrier)];
        // An entry of a closed call is in the closed books already.
        let kept = c.quality_feed.entries().filter_map(|(_, e)| {
            let (_, quality) = self.quality.get(e.item as usize)?;
            Some((e.available, quality.is_poor()))
        });
        Ok(c.closed.quality_by_minute().chain(kept))
    }
}

pub(crate) fn reported(
    call_id: &str,
    telephone_number: &str,
    slot: ReconSlot,
) -> Option<ReportedCall> {
    Some(ReportedCall {
        call_id: call_id.to_owned(),
        telephone_number: telephone_number.to_owned(),
        first_reported: slot.first_at()?,
        duration_ms: slot.carrier_ms()?,
        repeated: slot.duplicate(),
    })
}

/// Two iterators sorted by call id, merged.
fn merge<'a>(
    a: impl Iterator<Item = CallView<'a>>,
    b: impl Iterator<Item = CallView<'a>>,
) -> impl Iterator<Item = CallView<'a>> {
    let (mut a, mut b) = (a.peekable(), b.peekable());
    std::iter::from_fn(move || match (a.peek(), b.peek()) {
        (Some(x), Some(y)) if y.call_id < x.call_id => b.next(),
        (Some(_), _) => a.next(),
        (None, _) => b.next(),
    })
}
