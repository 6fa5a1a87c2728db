//! Reconciliation (PROTOCOL.md 3.5): every answered Teams call in a window gets exactly one of
//! matched, drift or missing; every reported call id that matches no answered call of the
//! carrier is unexpected. The result depends only on each call's latest report and its flags,
//! never on the order reports arrived in.

use hdrhistogram::Histogram;
use oc_protocol::timestamp::format_timestamp;
use oc_protocol::{
    DriftStats, MinutesTotals, ReconClass, ReconCounts, ReconFlagCounts, ReconciliationItem,
    ReconciliationSummary, UnixMillis,
};

use super::Store;
use super::reports::ReconSlot;

/// Where a listing of reconciliation items goes on from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ItemsPosition {
    /// The next call index to look at.
    Calls(u32),
    /// After this unmatched call id (or from the first when `None`).
    Unmatched(Option<String>),
}

/// One classified call, borrowed from the store.
pub(crate) struct Classified<'a> {
    pub(crate) call_id: &'a str,
    pub(crate) class: ReconClass,
    pub(crate) telephone_number: &'a str,
    pub(crate) teams_ms: Option<i64>,
    pub(crate) slot: ReconSlot,
}

/// The item of a reported call id that matches no answered call of the carrier.
pub(crate) fn unexpected_item(
    call_id: &str,
    telephone_number: &str,
    slot: ReconSlot,
) -> ReconciliationItem {
    Classified {
        call_id,
        class: ReconClass::Unexpected,
        telephone_number,
        teams_ms: None,
        slot,
    }
    .to_item()
}

impl Classified<'_> {
    pub(crate) fn to_item(&self) -> ReconciliationItem {
        let carrier_ms = self.slot.carrier_ms();
        let difference_ms = match self.class {
            ReconClass::Matched | ReconClass::Drift => {
                carrier_ms.zip(self.teams_ms).map(|(c, t)| c - t)
            }
            ReconClass::Missing | ReconClass::Unexpected => None,
        };
        ReconciliationItem {
            call_id: self.call_id.to_owned(),
            class: self.class,
            telephone_number: self.telephone_number.to_owned(),
            teams_duration_ms: self
                .teams_ms
                .filter(|_| self.class != ReconClass::Unexpected),
            carrier_duration_ms: carrier_ms,
            difference_ms,
            late: self.slot.late(),
            duplicate: self.slot.duplicate(),
            corrected: self.slot.corrected(),
        }
    }
}

/// Signed values in two HdrHistograms (negatives by magnitude, and the rest), exact below
/// 131 072 ms and within 0.001 % above.
pub(crate) struct SignedHistogram {
    negative: Histogram<u64>,
    positive: Histogram<u64>,
    min: i64,
    max: i64,
}

impl Default for SignedHistogram {
    fn default() -> Self {
        let new = || match Histogram::new(5) {
            Ok(h) => h,
            Err(_) => unreachable!("5 significant figures is within HdrHistogram's range"),
        };
        Self {
            negative: new(),
            positive: new(),
            min: i64::MAX,
            max: i64::MIN,
        }
    }
}

impl SignedHistogram {
    pub(crate) fn record(&mut self, value: i64) {
        let (histogram, magnitude) = if value < 0 {
            (&mut self.negative, value.unsigned_abs())
        } else {
            (&mut self.positive, value.unsigned_abs())
        };
        // An auto-resizing histogram takes every u64.
        let _ = histogram.record(magnitude);
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    pub(crate) fn len(&self) -> u64 {
        self.negative.len() + self.positive.len()
    }

    /// Adds every value of `other`.
    pub(crate) fn add(&mut self, other: &SignedHistogram) {
        // Auto-resizing histograms of the same precision always add.
        let _ = self.negative.add(&other.negative);
        let _ = self.positive.add(&other.positive);
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// The value at quantile `q` (0 to 1) by rank, clamped to the exact extremes.
    pub(crate) fn quantile(&self, q: f64) -> Option<i64> {
        let total = self.len();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let negatives = self.negative.len();
        let value = if rank <= negatives {
            // Ascending signed order runs through the negatives by descending magnitude.
            let by_magnitude = negatives - rank + 1;
            let magnitude = self
                .negative
                .value_at_quantile(by_magnitude as f64 / negatives as f64);
            -i64::try_from(magnitude).unwrap_or(i64::MAX)
        } else {
            let positives = self.positive.len();
            let magnitude = self
                .positive
                .value_at_quantile((rank - negatives) as f64 / positives as f64);
            i64::try_from(magnitude).unwrap_or(i64::MAX)
        };
        Some(value.clamp(self.min, self.max))
    }

    pub(crate) fn stats(&self) -> DriftStats {
        let some = self.len() > 0;
        DriftStats {
            count: self.len(),
            min: some.then_some(self.min),
            p50: self.quantile(0.50),
            p90: self.quantile(0.90),
            p99: self.quantile(0.99),
            max: some.then_some(self.max),
        }
    }
}

impl Store {
    pub(crate) fn classify_call(
        &self,
        carrier: u16,
        index: u32,
        from: i64,
        to: i64,
    ) -> Option<Classified<'_>> {
        let row = &self.rows[index as usize];
        if row.carrier != carrier || row.start < from || row.start >= to || row.end() > self.now {
            return None;
        }
        let slot = self.slots[index as usize];
        let class = match (row.is_answered(), slot.carrier_ms()) {
            (true, Some(carrier_ms)) => {
                if (carrier_ms - row.duration_ms()).abs() <= self.settings.tolerance_ms {
                    ReconClass::Matched
                } else {
                    ReconClass::Drift
                }
            }
            (true, None) => ReconClass::Missing,
            // Teams has no such *answered* call.
            (false, Some(_)) => ReconClass::Unexpected,
            (false, None) => return None,
        };
        Some(Classified {
            call_id: self.call_ids.get(index),
            class,
            telephone_number: &self.numbers[row.number as usize].telephone_number,
            teams_ms: Some(row.duration_ms()),
            slot,
        })
    }

    fn unmatched_in_window(
        &self,
        carrier: u16,
        from: i64,
        to: i64,
    ) -> impl Iterator<Item = Classified<'_>> {
        self.carriers[usize::from(carrier)]
            .unmatched
            .iter()
            .filter(move |(_, u)| u.connect >= from && u.connect < to)
            .map(|(call_id, u)| Classified {
                call_id,
                class: ReconClass::Unexpected,
                telephone_number: &u.telephone_number,
                teams_ms: None,
                slot: u.slot,
            })
    }

    /// Every call `carrier` reported, matched to Teams' calls or not, in call order then call id
    /// order: what the checker judges the duration rules from. Closed calls are not among them.
    pub(crate) fn reported_calls(&self, carrier: u16) -> Vec<super::reports::ReportedCall> {
        let fact = |call_id: &str, telephone_number: &str, slot: ReconSlot| {
            Some(super::reports::ReportedCall {
                call_id: call_id.to_owned(),
                telephone_number: telephone_number.to_owned(),
                first_reported: slot.first_at()?,
                duration_ms: slot.carrier_ms()?,
                repeated: slot.duplicate(),
            })
        };
        let known = self.call_ids.range().filter_map(|i| {
            let row = &self.rows[i as usize];
            if row.carrier != carrier {
                return None;
            }
            fact(
                self.call_ids.get(i),
                &self.numbers[row.number as usize].telephone_number,
                self.slots[i as usize],
            )
        });
        let unmatched = self.carriers[usize::from(carrier)]
            .unmatched
            .iter()
            .filter_map(|(call_id, u)| fact(call_id, &u.telephone_number, u.slot));
        known.chain(unmatched).collect()
    }

    /// The reconciliation of one carrier's calls that started in `[from, to)`, as it stands.
    /// Closed calls count as one total, in a window that holds them all.
    pub(crate) fn reconciliation(
        &self,
        carrier: u16,
        from: UnixMillis,
        to: UnixMillis,
    ) -> ReconciliationSummary {
        let mut counts = ReconCounts::default();
        let mut flags = ReconFlagCounts::default();
        let mut drift = SignedHistogram::default();
        let (mut teams_ms, mut carrier_ms) = (0i64, 0i64);
        let calls = self
            .call_ids
            .range()
            .filter_map(|i| self.classify_call(carrier, i, from, to));
        let closed = &self.carriers[usize::from(carrier)].closed;
        if closed.within(from, to) {
            closed.add_to(
                &mut counts,
                &mut flags,
                &mut drift,
                &mut teams_ms,
                &mut carrier_ms,
            );
        }
        for c in calls.chain(self.unmatched_in_window(carrier, from, to)) {
            match c.class {
                ReconClass::Matched => counts.matched += 1,
                ReconClass::Drift => counts.drift += 1,
                ReconClass::Missing => counts.missing += 1,
                ReconClass::Unexpected => counts.unexpected += 1,
            }
            if c.class != ReconClass::Unexpected {
                teams_ms += c.teams_ms.unwrap_or(0);
            }
            if let Some(reported) = c.slot.carrier_ms() {
                carrier_ms += reported;
                if let (Some(t), ReconClass::Matched | ReconClass::Drift) = (c.teams_ms, c.class) {
                    drift.record(reported - t);
                }
            }
            flags.late += u64::from(c.slot.late());
            flags.duplicate += u64::from(c.slot.duplicate());
            flags.corrected += u64::from(c.slot.corrected());
        }
        let answered = counts.matched + counts.drift + counts.missing;
        let minutes = |ms: i64| ms as f64 / 60_000.0;
        ReconciliationSummary {
            from: format_timestamp(from),
            to: format_timestamp(to),
            tolerance_ms: self.settings.tolerance_ms,
            counts,
            flags,
            match_rate: (answered > 0).then(|| counts.matched as f64 / answered as f64),
            drift_ms: drift.stats(),
            minutes: MinutesTotals {
                teams: minutes(teams_ms),
                carrier: minutes(carrier_ms),
                difference: minutes(carrier_ms - teams_ms),
            },
        }
    }

    /// Up to `limit` items of `class` from `position`, and where to go on from, if anywhere.
    pub(crate) fn reconciliation_items(
        &self,
        carrier: u16,
        class: ReconClass,
        window: (UnixMillis, UnixMillis),
        position: ItemsPosition,
        limit: usize,
    ) -> (Vec<ReconciliationItem>, Option<ItemsPosition>) {
        let (from, to) = window;
        let mut items = Vec::new();
        let mut position = position;
        if let ItemsPosition::Calls(start) = position {
            let total = self.call_ids.range().end;
            // Closed calls are listed no more.
            let mut index = start.max(self.call_ids.range().start);
            while index < total {
                if items.len() == limit {
                    return (items, Some(ItemsPosition::Calls(index)));
                }
                if let Some(c) = self.classify_call(carrier, index, from, to)
                    && c.class == class
                {
                    items.push(c.to_item());
                }
                index += 1;
            }
            position = ItemsPosition::Unmatched(None);
        }
        if class != ReconClass::Unexpected {
            return (items, None);
        }
        let ItemsPosition::Unmatched(after) = position else {
            return (items, None);
        };
        let rest = self
            .unmatched_in_window(carrier, from, to)
            .skip_while(|c| after.as_deref().is_some_and(|a| c.call_id <= a));
        // Where the unmatched part goes on from: after the last unmatched id served, which is
        // not the last item of the page when the page began among the calls.
        let mut last_served = after.clone();
        for c in rest {
            if items.len() == limit {
                return (items, Some(ItemsPosition::Unmatched(last_served)));
            }
            last_served = Some(c.call_id.to_owned());
            items.push(c.to_item());
        }
        (items, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{one_number, to_user};
    use crate::store::{NewCall, StoreSettings};
    use oc_protocol::Direction;
    use proptest::prelude::*;

    const T0: i64 = 1_795_651_200_000;

    fn store_with_calls(talks: &[Option<i64>]) -> Store {
        let n = "+14255550100";
        let mut store = one_number(StoreSettings::default(), T0, n);
        store
            .assign(n, to_user(&format!("sip:{n}@sbc.example;user=phone")))
            .unwrap();
        for (i, talk) in talks.iter().enumerate() {
            let start = T0 + 1_000 + i as i64 * 10_000;
            store
                .add_call(NewCall {
                    call_id: format!("call-{i}"),
                    telephone_number: n.into(),
                    direction: Direction::Inbound,
                    other_number: "+442079460000".into(),
                    start,
                    connect: talk.map(|_| start + 2_000),
                    end: start + 2_000 + talk.unwrap_or(0),
                    final_sip_code: if talk.is_some() { 200 } else { 486 },
                    availability_delay_ms: 0,
                    quality: None,
                })
                .unwrap();
        }
        store.advance_to(T0 + 100_000_000).unwrap();
        store
    }

    fn report_json(call: &str, connect: i64, duration: i64) -> serde_json::Value {
        serde_json::json!({
            "callId": call, "telephoneNumber": "+14255550100",
            "connectDateTime": format_timestamp(connect),
            "endDateTime": format_timestamp(connect + duration), "durationMs": duration,
        })
    }

    fn summary_and_items(store: &Store) -> (ReconciliationSummary, Vec<ReconciliationItem>) {
        let window = (T0, T0 + 200_000_000);
        let items = ReconClass::ALL
            .iter()
            .flat_map(|class| {
                store
                    .reconciliation_items(0, *class, window, ItemsPosition::Calls(0), usize::MAX)
                    .0
            })
            .collect();
        (store.reconciliation(0, window.0, window.1), items)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Reports of distinct calls (and identical repeats) give the same reconciliation
        /// whatever order and batching they arrive in.
        #[test]
        fn the_order_reports_arrive_in_does_not_matter(
            talks in proptest::collection::vec(proptest::option::weighted(0.8, 0i64..600_000), 1..40),
            offsets in proptest::collection::vec(-5_000i64..5_000, 40),
            reported in proptest::collection::vec(any::<bool>(), 40),
            repeats in proptest::collection::vec(any::<bool>(), 40),
            ghosts in 0usize..3,
            seed in any::<u64>(),
            batch in 1usize..7,
        ) {
            let mut records = Vec::new();
            for (i, talk) in talks.iter().enumerate() {
                if !reported[i] {
                    continue;
                }
                let connect = T0 + 1_000 + i as i64 * 10_000 + 2_000;
                let record = report_json(&format!("call-{i}"), connect, (talk.unwrap_or(0) + offsets[i]).max(0));
                if repeats[i] {
                    records.push(record.clone());
                }
                records.push(record);
            }
            for g in 0..ghosts {
                records.push(report_json(&format!("ghost-{g}"), T0 + 5_000, 1_000));
            }
            let reconcile = |records: &[serde_json::Value]| {
                let mut store = store_with_calls(&talks);
                for (k, chunk) in records.chunks(batch).enumerate() {
                    let body = serde_json::json!({ "records": chunk }).to_string();
                    store.report("c", &format!("k{k}"), body.as_bytes()).unwrap();
                }
                summary_and_items(&store)
            };
            let in_order = reconcile(&records);
            let mut shuffled = records.clone();
            // A seeded Fisher-Yates shuffle.
            let mut state = seed | 1;
            for i in (1..shuffled.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                shuffled.swap(i, (state % (i as u64 + 1)) as usize);
            }
            prop_assert_eq!(reconcile(&shuffled), in_order.clone());
            // Conservation: every answered call is in exactly one of the first three classes.
            let s = in_order.0;
            let answered = talks.iter().filter(|t| t.is_some()).count() as u64;
            prop_assert_eq!(s.counts.matched + s.counts.drift + s.counts.missing, answered);
        }
    }

    #[test]
    fn calls_by_id_joins_every_call_report_and_item_in_call_id_order() {
        let mut store = store_with_calls(&[Some(60_000), None, Some(30_000), Some(1_000)]);
        let c = |i: i64| T0 + 1_000 + i * 10_000 + 2_000;
        let body = serde_json::json!({ "records": [
            report_json("call-2", c(2), 30_000),
            report_json("call-1", c(1), 5_000),
            report_json("a-ghost", T0 + 5_000, 1_000),
            report_json("z-ghost", T0 + 5_000, 1_000),
        ]});
        store.report("c", "k", body.to_string().as_bytes()).unwrap();
        let window = (T0, T0 + 200_000_000);
        let views: Vec<_> = store.calls_by_id("c", window).unwrap().collect();
        let ids: Vec<&str> = views.iter().map(|v| v.call_id).collect();
        assert_eq!(
            ids,
            ["a-ghost", "call-0", "call-1", "call-2", "call-3", "z-ghost"]
        );
        // The same facts as the listings, joined.
        let (_, mut items) = summary_and_items(&store);
        items.sort_by(|a, b| a.call_id.cmp(&b.call_id));
        let joined: Vec<_> = views.iter().filter_map(|v| v.item.clone()).collect();
        assert_eq!(joined, items);
        let mut reported = store.reported_calls(0);
        reported.sort_by(|a, b| a.call_id.cmp(&b.call_id));
        let joined: Vec<_> = views.iter().filter_map(|v| v.reported.clone()).collect();
        assert_eq!(joined, reported);
        let teams: Vec<(bool, i64)> = views
            .iter()
            .filter_map(|v| v.teams.map(|t| (t.answered, t.duration_ms)))
            .collect();
        assert_eq!(
            teams,
            [(true, 60_000), (false, 0), (true, 30_000), (true, 1_000)]
        );
        assert!(views[0].teams.is_none() && views[5].teams.is_none());
        assert_eq!(views[5].telephone_number, "+14255550100");
    }

    #[test]
    fn hand_computed_classes_at_the_tolerance_boundary() {
        let mut store = store_with_calls(&[Some(60_000), Some(60_000), Some(60_000), None]);
        let c = |i: i64| T0 + 1_000 + i * 10_000 + 2_000;
        let body = serde_json::json!({ "records": [
            report_json("call-0", c(0), 61_000),   // +1000: still matched
            report_json("call-1", c(1), 58_999),   // -1001: drift
        ]});
        store.report("c", "k", body.to_string().as_bytes()).unwrap();
        let (s, items) = summary_and_items(&store);
        assert_eq!(
            (
                s.counts.matched,
                s.counts.drift,
                s.counts.missing,
                s.counts.unexpected
            ),
            (1, 1, 1, 0)
        );
        assert_eq!(s.drift_ms.min, Some(-1_001));
        assert_eq!(s.drift_ms.max, Some(1_000));
        assert_eq!(s.minutes.teams, 3.0);
        // Carrier: 61 + 58.999 s; Teams: 3 × 60 s (call-2 is missing).
        assert_eq!(s.minutes.difference, -60_001.0 / 60_000.0);
        let classes: Vec<(String, ReconClass)> =
            items.into_iter().map(|i| (i.call_id, i.class)).collect();
        assert_eq!(
            classes,
            [
                ("call-0".to_owned(), ReconClass::Matched),
                ("call-1".to_owned(), ReconClass::Drift),
                ("call-2".to_owned(), ReconClass::Missing),
            ]
        );
    }

    #[test]
    fn signed_quantiles_by_rank() {
        let mut h = SignedHistogram::default();
        for v in [
            -300, -200, -100, 0, 100, 200, 60_000, 60_000, 60_000, 60_000,
        ] {
            h.record(v);
        }
        assert_eq!(h.quantile(0.0), Some(-300));
        assert_eq!(h.quantile(0.1), Some(-300));
        assert_eq!(h.quantile(0.2), Some(-200));
        assert_eq!(h.quantile(0.3), Some(-100));
        assert_eq!(h.quantile(0.4), Some(0));
        assert_eq!(h.quantile(0.5), Some(100));
        assert_eq!(h.quantile(0.99), Some(60_000));
        let s = h.stats();
        assert_eq!((s.count, s.min, s.max), (10, Some(-300), Some(60_000)));
        assert_eq!(SignedHistogram::default().stats(), DriftStats::default());
    }

    #[test]
    fn large_values_stay_within_the_extremes() {
        let mut h = SignedHistogram::default();
        for _ in 0..100 {
            h.record(3_600_123);
        }
        assert_eq!(h.quantile(0.5), Some(3_600_123));
        h.record(-3_600_123);
        assert_eq!(h.quantile(0.001), Some(-3_600_123));
    }
}
