//! Closing settled calls, so that a long load test holds the calls still open and not every
//! call it placed. A call is settled when its books can no longer change in the normal flow:
//! its report came some time ago (or it needs none), or its reporting deadline has passed; and
//! the carrier has read every record of it from both feeds. Closing folds what Teams' end of
//! run needs of it (its class, drift, minutes, quality) into bounded totals, hands it out once
//! as a [`ClosedCall`] for the harness's checker, and drops it.
//!
//! Only a caller that asks closes anything: `oc-harness load` after a hold, `oc-harness run`
//! when the mock carrier also has nothing more to do with the call ([`Store::close_settled_where`]).
//! Calls close in the order they were added: the oldest open call holds back the ones after it.
//! Their feed entries leave from the front of each feed; an entry of a closed call behind one of
//! an open call stays until the front reaches it, and serves nothing if read again. A report
//! that comes for a closed call finds no call and is `unexpected`.

use std::cell::Cell;
use std::collections::BTreeMap;

use oc_protocol::{ReconClass, ReconCounts, ReconFlagCounts, ReconciliationItem, UnixMillis};

use super::Store;
use super::by_id::TeamsCall;
use super::recon::{Classified, SignedHistogram};
use super::reports::{ReconSlot, ReportedCall};

/// How far a carrier has read each feed: the position after the last record served.
#[derive(Debug, Default)]
pub(crate) struct Served {
    cdr: Cell<u64>,
    quality: Cell<u64>,
}

impl Served {
    pub(crate) fn note_cdr(&self, next: u64) {
        self.cdr.set(self.cdr.get().max(next));
    }

    pub(crate) fn note_quality(&self, next: u64) {
        self.quality.set(self.quality.get().max(next));
    }
}

/// One closed call, as the end of a run reads a call ([`super::CallView`]), owned.
#[derive(Debug, Clone, PartialEq)]
pub struct ClosedCall {
    /// The call.
    pub call_id: String,
    /// The carrier's number it was on.
    pub telephone_number: String,
    /// Teams' record.
    pub teams: TeamsCall,
    /// What the carrier reported, when it did.
    pub reported: Option<ReportedCall>,
    /// Its class when it closed, when it has one.
    pub item: Option<ReconciliationItem>,
}

/// Calls closed and not yet taken, kept in a form that is cheap to make while the store is
/// locked: their ids and numbers in one text, the rest as values.
/// [`ClosedCalls::into_calls`] makes the [`ClosedCall`]s, a `String` per field, wherever the
/// caller likes (a run: on the carrier's thread, after the store is unlocked).
#[derive(Debug, Default)]
pub struct ClosedCalls {
    /// Each call's id then its number, one after the other.
    text: String,
    calls: Vec<ClosedRaw>,
}

#[derive(Debug)]
struct ClosedRaw {
    /// Where its id ends in `text` (it starts where the call before ends) and its number.
    id_end: usize,
    number_end: usize,
    teams: TeamsCall,
    slot: ReconSlot,
    class: Option<ReconClass>,
    teams_ms: Option<i64>,
}

impl ClosedCalls {
    /// How many calls.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// The calls' ids, in order.
    pub fn call_ids(&self) -> impl Iterator<Item = &str> {
        self.each().map(|(call_id, _, _)| call_id)
    }

    /// Each call's id, number and values, in order.
    fn each(&self) -> impl Iterator<Item = (&str, &str, &ClosedRaw)> {
        let mut start = 0;
        self.calls.iter().map(move |c| {
            let call_id = &self.text[start..c.id_end];
            start = c.number_end;
            (call_id, &self.text[c.id_end..c.number_end], c)
        })
    }

    fn push(
        &mut self,
        call_id: &str,
        telephone_number: &str,
        teams: TeamsCall,
        slot: ReconSlot,
        classified: Option<(ReconClass, Option<i64>)>,
    ) {
        self.text.push_str(call_id);
        let id_end = self.text.len();
        self.text.push_str(telephone_number);
        self.calls.push(ClosedRaw {
            id_end,
            number_end: self.text.len(),
            teams,
            slot,
            class: classified.map(|c| c.0),
            teams_ms: classified.and_then(|c| c.1),
        });
    }

    /// The calls, each as the end of a run reads a call.
    pub fn into_calls(self) -> Vec<ClosedCall> {
        self.each()
            .map(|(call_id, telephone_number, c)| ClosedCall {
                call_id: call_id.to_owned(),
                telephone_number: telephone_number.to_owned(),
                teams: c.teams,
                reported: super::by_id::reported(call_id, telephone_number, c.slot),
                item: c.class.map(|class| {
                    Classified {
                        call_id,
                        class,
                        telephone_number,
                        teams_ms: c.teams_ms,
                        slot: c.slot,
                    }
                    .to_item()
                }),
            })
            .collect()
    }
}

/// The reconciliation of a carrier's closed calls, folded; and their quality records per
/// minute of availability.
#[derive(Default)]
pub(crate) struct ClosedBooks {
    counts: ReconCounts,
    flags: ReconFlagCounts,
    drift: SignedHistogram,
    teams_ms: i64,
    carrier_ms: i64,
    /// The earliest and latest start of a closed call.
    starts: Option<(UnixMillis, UnixMillis)>,
    /// Per minute (its start), the quality records that became available in it: all, poor.
    quality: BTreeMap<UnixMillis, (u64, u64)>,
}

const MINUTE_MS: i64 = 60_000;

impl ClosedBooks {
    /// Whether `[from, to)` holds every closed call's start (or there are none).
    pub(crate) fn within(&self, from: UnixMillis, to: UnixMillis) -> bool {
        self.starts.is_some_and(|(lo, hi)| from <= lo && hi < to)
    }

    /// Adds the closed calls to a reconciliation being summed.
    pub(crate) fn add_to(
        &self,
        counts: &mut ReconCounts,
        flags: &mut ReconFlagCounts,
        drift: &mut SignedHistogram,
        teams_ms: &mut i64,
        carrier_ms: &mut i64,
    ) {
        counts.matched += self.counts.matched;
        counts.drift += self.counts.drift;
        counts.missing += self.counts.missing;
        counts.unexpected += self.counts.unexpected;
        flags.late += self.flags.late;
        flags.duplicate += self.flags.duplicate;
        flags.corrected += self.flags.corrected;
        drift.add(&self.drift);
        *teams_ms += self.teams_ms;
        *carrier_ms += self.carrier_ms;
    }

    /// Each closed quality record as (the minute it became available in, poor).
    pub(crate) fn quality_by_minute(
        &self,
    ) -> impl Iterator<Item = (UnixMillis, bool)> + Clone + '_ {
        self.quality.iter().flat_map(|(&minute, &(all, poor))| {
            std::iter::repeat_n((minute, true), poor as usize)
                .chain(std::iter::repeat_n((minute, false), (all - poor) as usize))
        })
    }

    fn add_quality(&mut self, available: UnixMillis, poor: bool) {
        let minute = available.div_euclid(MINUTE_MS) * MINUTE_MS;
        let cell = self.quality.entry(minute).or_default();
        cell.0 += 1;
        cell.1 += u64::from(poor);
    }
}

impl Store {
    /// Closes the oldest calls that are settled at the store's time: answered and reported at
    /// least `hold_ms` ago, or not answered and ended `hold_ms` ago, or past their reporting
    /// deadline by `hold_ms`; each with every record of it read by its carrier from both feeds
    /// and nothing of it still to be published. Returns how many closed; take them with
    /// [`Store::take_closed`].
    pub fn close_settled(&mut self, hold_ms: i64) -> usize {
        self.close_settled_where(hold_ms, |_| true)
    }

    /// [`Store::close_settled`], closing only calls for which `may_close(call_id)` also holds
    /// (as it closes calls in the order they were added, the first that may not holds back
    /// the ones after it): a run asks the mock carrier, so that a call closes on both sides at
    /// once, when nothing more can happen to it on either.
    pub fn close_settled_where(
        &mut self,
        hold_ms: i64,
        mut may_close: impl FnMut(&str) -> bool,
    ) -> usize {
        let now = self.now;
        let deadline_ms = self.settings.reporting_deadline_ms;
        let base = self.rows.base();
        let mut cut = base;
        while cut < self.rows.end() {
            let row = &self.rows[cut as usize];
            let slot = &self.slots[cut as usize];
            let settled = row.end() <= now
                && match (row.is_answered(), slot.first_at()) {
                    (true, Some(at)) => at.saturating_add(hold_ms) <= now,
                    (false, _) => row.end().saturating_add(hold_ms) <= now,
                    (true, None) => {
                        row.end()
                            .saturating_add(deadline_ms)
                            .saturating_add(hold_ms)
                            <= now
                    }
                };
            if !settled || !may_close(self.call_ids.get(cut)) {
                break;
            }
            cut += 1;
        }
        for std::cmp::Reverse((_, _, what)) in self.pending.iter() {
            let (super::Publication::Call(call) | super::Publication::Correction { call, .. }) =
                *what;
            cut = cut.min(call.max(base));
        }
        cut = self.unread_cut(cut).max(base);
        if cut == base {
            return 0;
        }
        // The quality records of calls before `cut`: those numbered before `quality_cut`.
        let quality_cut =
            u32::try_from(self.quality.partition_point(|(c, _)| *c < cut)).unwrap_or(u32::MAX);
        self.fold_closed(base, cut, quality_cut);
        for c in &mut self.carriers {
            // The feeds lose their leading entries of closed calls; an entry of a closed call
            // behind one of a call still open stays, unread again (see `Feed`).
            let cdr = c.cdr_feed.leading(|e| e.item < cut);
            c.cdr_feed.drop_before(cdr);
            let quality = c.quality_feed.leading(|e| e.item < quality_cut);
            c.quality_feed.drop_before(quality);
        }
        self.quality
            .drop_front((quality_cut - self.quality.base()) as usize);
        self.old_versions = self.old_versions.split_off(&cut);
        self.call_ids.drop_before(cut);
        self.rows.drop_front((cut - base) as usize);
        self.slots.drop_front((cut - base) as usize);
        (cut - base) as usize
    }

    /// `cut`, lowered to the first call with a record its carrier has not read yet (the
    /// entries from the carrier's `served` position on: the newest few).
    fn unread_cut(&self, mut cut: u32) -> u32 {
        for c in &self.carriers {
            for (_, e) in c.cdr_feed.entries_from(c.served.cdr.get()) {
                cut = cut.min(e.item);
            }
            for (_, e) in c.quality_feed.entries_from(c.served.quality.get()) {
                if let Some((call, _)) = self.quality.get(e.item as usize) {
                    cut = cut.min(*call);
                }
            }
        }
        cut
    }

    /// Folds calls `[from, cut)` into their carriers' closed books, with their quality records
    /// (numbered before `quality_cut`, wherever they are in the feeds), and hands the calls out.
    fn fold_closed(&mut self, from: u32, cut: u32, quality_cut: u32) {
        let mut closed = std::mem::take(&mut self.closed_calls);
        closed.calls.reserve((cut - from) as usize);
        // An id and a number are about 30 bytes: the text is not grown (and copied) call by call
        // while both sides are locked.
        closed.text.reserve((cut - from) as usize * 32);
        let mut folds = Vec::with_capacity((cut - from) as usize);
        for index in from..cut {
            let row = self.rows[index as usize];
            let slot = self.slots[index as usize];
            let call_id = self.call_ids.get(index);
            let telephone_number = &self.numbers[row.number as usize].telephone_number;
            let classified = self.classify_call(row.carrier, index, i64::MIN, i64::MAX);
            folds.push(Fold {
                carrier: row.carrier,
                start: row.start,
                class: classified.as_ref().map(|c| c.class),
                teams_ms: classified.as_ref().and_then(|c| c.teams_ms),
                slot,
            });
            let teams = TeamsCall {
                answered: row.is_answered(),
                duration_ms: row.duration_ms(),
                end: row.end(),
                corrected: row.version > 1,
            };
            let classified = classified.map(|c| (c.class, c.teams_ms));
            closed.push(call_id, telephone_number, teams, slot, classified);
        }
        self.closed_calls = closed;
        for fold in folds {
            self.carriers[usize::from(fold.carrier)].closed.add(&fold);
        }
        let quality_base = self.quality.base();
        for carrier in 0..self.carriers.len() {
            let records: Vec<(UnixMillis, bool)> = self.carriers[carrier]
                .quality_feed
                .entries()
                .filter(|(_, e)| (quality_base..quality_cut).contains(&e.item))
                .map(|(_, e)| (e.available, self.quality[e.item as usize].1.is_poor()))
                .collect();
            for (at, poor) in records {
                self.carriers[carrier].closed.add_quality(at, poor);
            }
        }
    }

    /// The calls closed since the last call, in the order they were added.
    pub fn take_closed(&mut self) -> Vec<ClosedCall> {
        self.take_closed_calls().into_calls()
    }

    /// [`Store::take_closed`], as [`ClosedCalls`]: what a caller holding the store's lock takes,
    /// to make the [`ClosedCall`]s after letting it go.
    pub fn take_closed_calls(&mut self) -> ClosedCalls {
        std::mem::take(&mut self.closed_calls)
    }
}

/// What a closed call adds to its carrier's books.
struct Fold {
    carrier: u16,
    start: UnixMillis,
    class: Option<ReconClass>,
    teams_ms: Option<i64>,
    slot: ReconSlot,
}

impl ClosedBooks {
    fn add(&mut self, fold: &Fold) {
        let start = fold.start;
        self.starts = Some(
            self.starts
                .map_or((start, start), |(lo, hi)| (lo.min(start), hi.max(start))),
        );
        let Some(class) = fold.class else {
            return;
        };
        match class {
            ReconClass::Matched => self.counts.matched += 1,
            ReconClass::Drift => self.counts.drift += 1,
            ReconClass::Missing => self.counts.missing += 1,
            ReconClass::Unexpected => self.counts.unexpected += 1,
        }
        if class != ReconClass::Unexpected {
            self.teams_ms += fold.teams_ms.unwrap_or(0);
        }
        let slot = fold.slot;
        if let Some(reported) = slot.carrier_ms() {
            self.carrier_ms += reported;
            if let (Some(t), ReconClass::Matched | ReconClass::Drift) = (fold.teams_ms, class) {
                self.drift.record(reported - t);
            }
        }
        self.flags.late += u64::from(slot.late());
        self.flags.duplicate += u64::from(slot.duplicate());
        self.flags.corrected += u64::from(slot.corrected());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{one_number, to_user};
    use crate::store::{NewCall, StoreSettings, StreamQuality};
    use oc_protocol::timestamp::format_timestamp;
    use oc_protocol::{AudioCodec, Direction, StreamDirection};

    const T0: i64 = 1_795_651_200_000;
    const N: &str = "+14255550100";

    fn stream(direction: StreamDirection, rtt: u16) -> StreamQuality {
        StreamQuality {
            direction,
            codec: AudioCodec::Opus,
            packets: 3_000,
            avg_jitter_ms: 5,
            max_jitter_ms: 10,
            avg_rtt_ms: rtt,
            max_rtt_ms: rtt,
            avg_loss_ppm: 0,
            max_loss_ppm: 0,
            degradation_milli: 100,
            concealed_ppm: 0,
        }
    }

    fn store() -> Store {
        let settings = StoreSettings {
            reporting_deadline_ms: 60_000,
            ..StoreSettings::default()
        };
        let mut store = one_number(settings, T0, N);
        store
            .assign(N, to_user(&format!("sip:{N}@sbc.example;user=phone")))
            .unwrap();
        store
    }

    /// Call `i` ends at `T0 + 40 s + i s`, talks 30 s (not answered when `i % 7 == 3`).
    fn add(store: &mut Store, i: i64) {
        let end = T0 + 40_000 + i * 1_000;
        let answered = i % 7 != 3;
        store
            .add_call(NewCall {
                call_id: format!("call-{i:04}"),
                telephone_number: N.into(),
                direction: Direction::Outbound,
                other_number: "+442079460000".into(),
                start: end - 35_000,
                connect: answered.then_some(end - 30_000),
                end,
                final_sip_code: if answered { 200 } else { 486 },
                availability_delay_ms: 500,
                quality: Some([
                    stream(StreamDirection::CallerToCallee, 80),
                    stream(StreamDirection::CalleeToCaller, 600 * (i % 2) as u16),
                ]),
            })
            .unwrap();
    }

    /// Reports call `i` (answered ones whose `i % 5 != 0`), 10 ms long when `i % 4 == 0`.
    fn report(store: &mut Store, i: i64) {
        if i % 7 == 3 || i % 5 == 0 {
            return;
        }
        let connect = T0 + 40_000 + i * 1_000 - 30_000;
        let duration = if i % 4 == 0 { 10 } else { 30_000 };
        let body = serde_json::json!({ "records": [{
            "callId": format!("call-{i:04}"), "telephoneNumber": N,
            "connectDateTime": format_timestamp(connect),
            "endDateTime": format_timestamp(connect + duration), "durationMs": duration,
        }]});
        store
            .report("c", &format!("k{i}"), body.to_string().as_bytes())
            .unwrap();
    }

    /// The pages the Teams API writes by hand are serde's bytes of the records the store
    /// renders, CDRs (answered or not, reconciled or not) and quality records alike, and an
    /// edit of a quality record reaches the page.
    #[test]
    fn written_pages_are_the_records_serde_writes() {
        use oc_protocol::Page;
        use oc_protocol::json_write::PageWriter;
        let mut store = store();
        for i in 0..40 {
            store.advance_to(T0 + 40_000 + i * 1_000).unwrap();
            add(&mut store, i);
            if i > 0 {
                report(&mut store, i - 1);
            }
        }
        store.advance_to(T0 + 200_000).unwrap();
        for (from, limit) in [(0, 7), (7, 100), (0, usize::MAX)] {
            let mut page = PageWriter::new(0);
            let span = store.write_cdr_page(0, from, limit, &mut page);
            let records = store.cdr_page(0, from, limit);
            assert_eq!(span, records.span);
            assert!(records.records.len() > 5);
            let expected = Page {
                value: records.records,
                next_link: Some("n".to_owned()),
                delta_link: None,
            };
            assert_eq!(
                String::from_utf8(page.finish(Some("n"), None)).unwrap(),
                serde_json::to_string(&expected).unwrap()
            );

            let mut page = PageWriter::new(0);
            let span = store.write_quality_page(0, from, limit, &mut page, |i, r| {
                r.poor ^= i == 1;
            });
            let mut records = store.quality_page(0, from, limit);
            assert_eq!(span, records.span);
            records.records[1].poor ^= true;
            let expected = Page {
                value: records.records,
                next_link: None,
                delta_link: Some("d".to_owned()),
            };
            assert_eq!(
                String::from_utf8(page.finish(None, Some("d"))).unwrap(),
                serde_json::to_string(&expected).unwrap()
            );
        }
    }

    fn read_feeds(store: &Store) {
        store.cdr_page(0, 0, usize::MAX);
        store.quality_page(0, 0, usize::MAX);
    }

    /// Plays 300 calls over 300 s, one a second, each reported (or not) a second after its
    /// end, the feeds read every second; `close` closes settled calls every second.
    fn play(close: bool) -> (Store, Vec<ClosedCall>, usize) {
        let mut store = store();
        let mut closed = Vec::new();
        let mut most_live = 0;
        for i in 0..300 {
            store.advance_to(T0 + 40_000 + i * 1_000).unwrap();
            add(&mut store, i);
            if i > 0 {
                report(&mut store, i - 1);
            }
            read_feeds(&store);
            if close {
                store.close_settled(5_000);
                closed.extend(store.take_closed());
            }
            most_live = most_live.max(store.live_calls());
        }
        store.advance_to(T0 + 430_000).unwrap();
        report(&mut store, 299);
        read_feeds(&store);
        (store, closed, most_live)
    }

    #[test]
    fn closing_keeps_the_open_calls_only_and_the_same_books() {
        let (kept, none, most) = play(false);
        assert!(none.is_empty());
        assert_eq!(most, 300);
        let (closing, closed, most) = play(true);
        // Open: about the deadline and the hold's worth of calls, a second each.
        assert!(most <= 70, "{most} calls open at once");
        assert!(closed.len() > 200, "{} closed", closed.len());
        assert_eq!(closed.len() + closing.live_calls(), 300);
        // Closed in the order added, each once, with what the end of a run reads of it.
        let ids: Vec<&str> = closed.iter().map(|c| c.call_id.as_str()).collect();
        let want: Vec<String> = (0..closed.len()).map(|i| format!("call-{i:04}")).collect();
        assert_eq!(ids, want);
        let views: Vec<ClosedCall> = kept
            .calls_by_id("c", (i64::MIN, i64::MAX))
            .unwrap()
            .take(closed.len())
            .map(|v| ClosedCall {
                call_id: v.call_id.to_owned(),
                telephone_number: v.telephone_number.to_owned(),
                teams: v.teams.unwrap(),
                reported: v.reported,
                item: v.item,
            })
            .collect();
        assert_eq!(closed, views);
        // Teams' reconciliation and quality are the same, closed calls folded in.
        let window = (T0 - 86_400_000, T0 + 86_400_000);
        assert_eq!(
            closing.reconcile("c", window.0, window.1).unwrap(),
            kept.reconcile("c", window.0, window.1).unwrap()
        );
        let minutes = |s: &Store| {
            let mut by_minute = BTreeMap::new();
            for (at, poor) in s.quality_availability("c").unwrap() {
                let cell: &mut (u64, u64) = by_minute.entry(at.div_euclid(60_000)).or_default();
                cell.0 += 1;
                cell.1 += u64::from(poor);
            }
            by_minute
        };
        assert_eq!(minutes(&closing), minutes(&kept));
        // The feeds go on from where the carrier was.
        let next = closing.cdr_page(0, 0, 10);
        assert_eq!(next.span.first_position, 300 - closing.live_calls() as u64);
    }

    #[test]
    fn an_unread_feed_or_an_unreported_call_holds_calls_open() {
        let mut store = store();
        for i in 0..10 {
            add(&mut store, i);
        }
        store.advance_to(T0 + 30_000).unwrap();
        for i in 0..10 {
            report(&mut store, i);
        }
        store.advance_to(T0 + 200_000).unwrap();
        // Nothing read yet: nothing closes.
        assert_eq!(store.close_settled(0), 0);
        store.cdr_page(0, 0, usize::MAX);
        assert_eq!(store.close_settled(0), 0, "the quality feed is unread");
        // Read up to call 4's records only (call 3 was not answered and has none).
        store.quality_page(0, 0, 8);
        assert_eq!(store.close_settled(0), 5);
        assert_eq!(store.live_calls(), 5);
        store.quality_page(0, 8, usize::MAX);
        // Call 5 was never reported and its deadline (60 s after its end) has passed.
        assert_eq!(store.close_settled(0), 5);
        // Taken as one text, the ids come out in order, the same as the calls made of them.
        let closed = store.take_closed_calls();
        assert_eq!(closed.len(), 10);
        let ids: Vec<String> = closed.call_ids().map(str::to_owned).collect();
        let closed = closed.into_calls();
        let made: Vec<String> = closed.iter().map(|c| c.call_id.clone()).collect();
        assert_eq!(ids, made);
        assert!(closed.iter().all(|c| c.telephone_number.starts_with('+')));
        assert_eq!(closed.len(), 10);
        assert_eq!(
            closed[5].item.as_ref().map(|i| i.class),
            Some(ReconClass::Missing)
        );
        assert!(store.take_closed().is_empty());
        // A call after the deadline's end stays open until then.
        add(&mut store, 190);
        store.cdr_page(0, 0, usize::MAX);
        store.quality_page(0, 0, usize::MAX);
        assert_eq!(store.close_settled(0), 0);
    }

    #[test]
    fn a_call_closes_before_one_whose_record_came_first_and_leaves_its_entry_unread_again() {
        let mut store = store();
        // "long" starts first and ends last; "short" starts after it and its record comes first.
        let call = |id: &str, start: i64, end: i64| NewCall {
            call_id: id.into(),
            telephone_number: N.into(),
            direction: Direction::Outbound,
            other_number: "+442079460000".into(),
            start,
            connect: Some(start + 1_000),
            end,
            final_sip_code: 200,
            availability_delay_ms: 500,
            quality: Some([
                stream(StreamDirection::CallerToCallee, 80),
                stream(StreamDirection::CalleeToCaller, 600),
            ]),
        };
        store.add_call(call("long", T0, T0 + 120_000)).unwrap();
        store
            .add_call(call("short", T0 + 10_000, T0 + 20_000))
            .unwrap();
        store.advance_to(T0 + 130_000).unwrap();
        for (id, connect, end) in [
            ("long", T0 + 1_000, T0 + 120_000),
            ("short", T0 + 11_000, T0 + 20_000),
        ] {
            let body = serde_json::json!({ "records": [{
                "callId": id, "telephoneNumber": N,
                "connectDateTime": format_timestamp(connect),
                "endDateTime": format_timestamp(end), "durationMs": end - connect,
            }]});
            store.report("c", id, body.to_string().as_bytes()).unwrap();
        }
        read_feeds(&store);
        let quality_before: Vec<_> = store.quality_availability("c").unwrap().collect();
        // The carrier's side may not close "short" yet: only "long" closes.
        assert_eq!(store.close_settled_where(0, |id| id != "short"), 1);
        let closed = store.take_closed();
        assert_eq!(closed[0].call_id, "long");
        // Its entries stay behind "short"'s: read again, the feeds serve only "short"'s records,
        // at the same positions.
        let cdrs = store.cdr_page(0, 0, usize::MAX);
        assert_eq!(
            cdrs.records
                .iter()
                .map(|r| r.call_id.as_str())
                .collect::<Vec<_>>(),
            ["short"]
        );
        assert_eq!((cdrs.span.first_position, cdrs.span.next_position), (0, 2));
        let quality = store.quality_page(0, 0, usize::MAX);
        assert_eq!(quality.records.len(), 2);
        assert_eq!(quality.span.next_position, 4);
        // Each quality record counted once, the closed ones by their minute.
        let minute = |v: &[(UnixMillis, bool)]| {
            let mut v: Vec<_> = v
                .iter()
                .map(|(at, p)| (at.div_euclid(60_000), *p))
                .collect();
            v.sort_unstable();
            v
        };
        let quality_after: Vec<_> = store.quality_availability("c").unwrap().collect();
        assert_eq!(minute(&quality_after), minute(&quality_before));
        // Then "short" closes, and both feeds lose every entry.
        assert_eq!(store.close_settled_where(0, |_| true), 1);
        assert_eq!(store.live_calls(), 0);
        let cdrs = store.cdr_page(0, 0, usize::MAX);
        assert!(cdrs.records.is_empty());
        assert_eq!(
            cdrs.span.first_position, 2,
            "read from the first position kept"
        );
    }
}
