//! The figures of a run for its report, folded as the run goes: counts, the latency of each
//! kind of exchange, the drift distribution. Like the checker, they keep nothing per call.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use oc_observe::{Exchange, ExchangeDetail};
use oc_reports::{
    DriftBin, LATENCY_QUANTILES, LatencyMeasure, LatencyPoint, LatencySummary, ShardDrift,
    ShardLatency,
};

use crate::checker::CallRow;

/// Everything the report counts, folded.
#[derive(Default)]
pub(crate) struct Figures {
    /// Number events Teams generated.
    pub(crate) events: u64,
    /// Exchanges of the carrier under test.
    pub(crate) exchanges: u64,
    /// Calls Teams had.
    pub(crate) calls: u64,
    /// Of them answered.
    pub(crate) answered_calls: u64,
    latency: Latency,
    drift: DriftFold,
}

/// The figures once the run is over.
#[derive(Debug, Clone, Default)]
pub(crate) struct RunFigures {
    pub(crate) events: u64,
    pub(crate) exchanges: u64,
    pub(crate) calls: u64,
    pub(crate) answered_calls: u64,
    pub(crate) latency: Vec<LatencySummary>,
    pub(crate) drift_distribution: Vec<DriftBin>,
    /// The latency histograms, serialised for a shard's report.
    pub(crate) shard_latency: Vec<ShardLatency>,
    /// The drift, exactly, for a shard's report.
    pub(crate) shard_drift: ShardDrift,
}

impl Figures {
    pub(crate) fn exchange(&mut self, e: &Exchange) {
        self.exchanges += 1;
        self.latency.exchange(e);
    }

    pub(crate) fn row(&mut self, row: &CallRow<'_>) {
        if let Some(call) = row.call {
            self.calls += 1;
            self.answered_calls += u64::from(call.answered);
        }
        for item in row.items {
            if let Some(d) = item.difference_ms {
                self.drift.record(d);
            }
        }
    }

    pub(crate) fn finish(self) -> RunFigures {
        let shard_latency = self.latency.serialised();
        let shard_drift = self.drift.serialised();
        RunFigures {
            events: self.events,
            exchanges: self.exchanges,
            calls: self.calls,
            answered_calls: self.answered_calls,
            latency: self.latency.finish(),
            drift_distribution: self.drift.finish(),
            shard_latency,
            shard_drift,
        }
    }
}

/// The latency of each kind of exchange, with what its figures time: the carrier's calls to the
/// Teams API by method and path (Teams' handler time), and the requests to the carrier by what
/// they were: `webhook` (one delivery attempt), the harness's call-legs posts, state probes and
/// forged notifications (round trips). Only webhooks count as `webhook`, the figure
/// `max_ack_p99_ms` holds to.
#[derive(Default)]
struct Latency {
    by_kind: BTreeMap<(LatencyMeasure, String), Histogram<u64>>,
}

impl Latency {
    fn exchange(&mut self, e: &Exchange) {
        let path = || e.url.split('?').next().unwrap_or(&e.url).to_owned();
        let kind = match (e.direction, &e.detail) {
            (oc_observe::ExchangeDirection::CarrierToTeams, _) => (
                LatencyMeasure::TeamsHandler,
                format!("{} {}", e.method, path()),
            ),
            (_, Some(ExchangeDetail::Webhook { .. })) => {
                (LatencyMeasure::RoundTrip, "webhook".to_owned())
            }
            (_, Some(ExchangeDetail::CallLegs { .. })) => (
                LatencyMeasure::RoundTrip,
                format!("{} {}", e.method, oc_protocol::paths::CALL_LEGS),
            ),
            (_, Some(ExchangeDetail::StateProbe { .. })) => (
                LatencyMeasure::RoundTrip,
                format!(
                    "{} {}{{telephoneNumber}} (state probe)",
                    e.method,
                    oc_protocol::paths::CARRIER_NUMBER_PREFIX
                ),
            ),
            (_, Some(ExchangeDetail::ForgedNotification { .. })) => (
                LatencyMeasure::RoundTrip,
                "forged notification (signature probe)".to_owned(),
            ),
            _ => (
                LatencyMeasure::RoundTrip,
                format!("{} {} (harness)", e.method, path()),
            ),
        };
        let histogram = self
            .by_kind
            .entry(kind)
            .or_insert_with(|| Histogram::new(3).unwrap_or_else(|_| unreachable!("3 figures")));
        let _ = histogram.record(e.latency_us.max(1));
    }

    fn finish(self) -> Vec<LatencySummary> {
        self.by_kind
            .into_iter()
            .map(|((measure, exchange), h)| latency_summary(measure, exchange, &h))
            .collect()
    }

    fn serialised(&self) -> Vec<ShardLatency> {
        self.by_kind
            .iter()
            .map(|((measure, exchange), h)| ShardLatency {
                exchange: exchange.clone(),
                measure: *measure,
                histogram: serialise(h),
            })
            .collect()
    }
}

/// The report's figures of one kind of exchange from its histogram (also a merged one).
pub(crate) fn latency_summary(
    measure: LatencyMeasure,
    exchange: String,
    h: &Histogram<u64>,
) -> LatencySummary {
    LatencySummary {
        exchange,
        measure,
        count: h.len(),
        p50_us: h.value_at_quantile(0.5),
        p90_us: h.value_at_quantile(0.9),
        p99_us: h.value_at_quantile(0.99),
        max_us: h.max(),
        curve: LATENCY_QUANTILES
            .iter()
            .map(|&quantile| LatencyPoint {
                quantile,
                us: h.value_at_quantile(quantile),
            })
            .collect(),
    }
}

/// An HdrHistogram in its V2 serialised form (uncompressed), base64: what a shard's report
/// carries so that `merge` adds histograms without loss.
pub(crate) fn serialise(h: &Histogram<u64>) -> String {
    use base64::Engine as _;
    use hdrhistogram::serialization::Serializer as _;
    let mut bytes = Vec::new();
    // Writing into a Vec cannot fail but for a histogram too large to encode, which one of a
    // run's cannot be.
    let _ = hdrhistogram::serialization::V2Serializer::new().serialize(h, &mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Reads [`serialise`]'s form back.
pub(crate) fn deserialise(text: &str) -> Result<Histogram<u64>, String> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| format!("not base64: {e}"))?;
    hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("not an HdrHistogram in V2 form: {e:?}"))
}

/// The largest decade edge of the drift distribution: beyond it, one outer bin per side.
const DRIFT_DECADES: u32 = 7;

/// The signed drift of every `matched` and `drift` item, folded, in bins `0`, `±(1…9)`, `±(10…99)`, …
/// `±(10⁶…10⁷−1)` and one outer bin per side up to the extreme (at most 17 bins): the bins from
/// the lowest non-empty to the highest non-empty one, `0` always included; empty without data.
///
/// It also folds the differences as Teams' store does for its percentiles (two HdrHistograms of
/// 5 significant figures: the negatives' magnitudes, and the rest), so that a shard's report
/// carries them for `merge` to add and take the merged run's percentiles from.
#[derive(Clone)]
pub(crate) struct DriftFold {
    /// Counts by bin index (see `index`), for negative and for non-negative differences.
    pub(crate) negative: [u64; BINS_PER_SIDE],
    pub(crate) positive: [u64; BINS_PER_SIDE],
    /// The lowest and highest difference.
    pub(crate) range: Option<(i64, i64)>,
    pub(crate) negative_hdr: Histogram<u64>,
    pub(crate) positive_hdr: Histogram<u64>,
}

/// A histogram of the store's precision: 5 significant figures, auto-resizing.
pub(crate) fn drift_histogram() -> Histogram<u64> {
    match Histogram::new(5) {
        Ok(h) => h,
        Err(_) => unreachable!("5 significant figures is within HdrHistogram's range"),
    }
}

impl Default for DriftFold {
    fn default() -> Self {
        Self {
            negative: [0; BINS_PER_SIDE],
            positive: [0; BINS_PER_SIDE],
            range: None,
            negative_hdr: drift_histogram(),
            positive_hdr: drift_histogram(),
        }
    }
}

pub(crate) const BINS_PER_SIDE: usize = DRIFT_DECADES as usize + 2;

/// Positive bins by index: 0 is `0…0`, k in 1..=DRIFT_DECADES is `10^(k-1)…10^k − 1`, and
/// DRIFT_DECADES + 1 is `10^DRIFT_DECADES…` the extreme.
fn index(magnitude: u64) -> usize {
    if magnitude == 0 {
        0
    } else {
        (magnitude.ilog10() + 1).min(DRIFT_DECADES + 1) as usize
    }
}

impl DriftFold {
    fn record(&mut self, d: i64) {
        if d < 0 {
            self.negative[index(d.unsigned_abs())] += 1;
            let _ = self.negative_hdr.record(d.unsigned_abs());
        } else {
            self.positive[index(d.unsigned_abs())] += 1;
            let _ = self.positive_hdr.record(d.unsigned_abs());
        }
        self.range = Some(self.range.map_or((d, d), |(lo, hi)| (lo.min(d), hi.max(d))));
    }

    fn serialised(&self) -> ShardDrift {
        ShardDrift {
            negative: serialise(&self.negative_hdr),
            positive: serialise(&self.positive_hdr),
            min: self.range.map(|r| r.0),
            max: self.range.map(|r| r.1),
            negative_bins: self.negative.to_vec(),
            positive_bins: self.positive.to_vec(),
        }
    }

    /// The value at quantile `q` (0 to 1) by rank, clamped to the exact extremes: Teams'
    /// store's computation (mock-teams `SignedHistogram::quantile`), on the same histograms.
    pub(crate) fn quantile(&self, q: f64) -> Option<i64> {
        let (min, max) = self.range?;
        let negatives = self.negative_hdr.len();
        let total = negatives + self.positive_hdr.len();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let value = if rank <= negatives {
            let by_magnitude = negatives - rank + 1;
            let magnitude = self
                .negative_hdr
                .value_at_quantile(by_magnitude as f64 / negatives as f64);
            -i64::try_from(magnitude).unwrap_or(i64::MAX)
        } else {
            let positives = self.positive_hdr.len();
            let magnitude = self
                .positive_hdr
                .value_at_quantile((rank - negatives) as f64 / positives as f64);
            i64::try_from(magnitude).unwrap_or(i64::MAX)
        };
        Some(value.clamp(min, max))
    }

    pub(crate) fn finish(self) -> Vec<DriftBin> {
        let Some((low, high)) = self.range else {
            return Vec::new();
        };
        let range = |k: usize, extreme: u64| -> (u64, u64) {
            match k {
                0 => (0, 0),
                k if k as u32 > DRIFT_DECADES => (10u64.pow(DRIFT_DECADES), extreme),
                k => (10u64.pow(k as u32 - 1), 10u64.pow(k as u32) - 1),
            }
        };
        let signed = |v: u64, negate: bool| -> i64 {
            let v = i64::try_from(v).unwrap_or(i64::MAX);
            if negate { -v } else { v }
        };
        let mut bins = Vec::new();
        if low < 0 {
            for k in (1..=index(low.unsigned_abs())).rev() {
                let (from, to) = range(k, low.unsigned_abs());
                bins.push(DriftBin {
                    from_ms: signed(to, true),
                    to_ms: signed(from, true),
                    count: self.negative[k],
                });
            }
        }
        let top = if high > 0 {
            index(high.unsigned_abs())
        } else {
            0
        };
        for (k, &count) in self.positive.iter().enumerate().take(top + 1) {
            let (from, to) = range(k, high.unsigned_abs());
            bins.push(DriftBin {
                from_ms: signed(from, false),
                to_ms: signed(to, false),
                count,
            });
        }
        bins
    }
}

#[cfg(test)]
mod tests {
    use oc_protocol::{ReconClass, ReconciliationItem};

    use super::*;

    fn drift_distribution(items: &[ReconciliationItem]) -> Vec<DriftBin> {
        let mut fold = DriftFold::default();
        for d in items.iter().filter_map(|i| i.difference_ms) {
            fold.record(d);
        }
        fold.finish()
    }

    fn latency(exchanges: &[Exchange]) -> Vec<LatencySummary> {
        let mut fold = Latency::default();
        for e in exchanges {
            fold.exchange(e);
        }
        fold.finish()
    }

    fn item(difference_ms: Option<i64>) -> ReconciliationItem {
        ReconciliationItem {
            call_id: "call-1".into(),
            class: if difference_ms.is_some() {
                ReconClass::Drift
            } else {
                ReconClass::Missing
            },
            telephone_number: "+15550100".into(),
            teams_duration_ms: Some(60_000),
            carrier_duration_ms: difference_ms.map(|d| 60_000 + d),
            difference_ms,
            late: false,
            duplicate: false,
            corrected: false,
        }
    }

    fn bins(bins: &[DriftBin]) -> Vec<(i64, i64, u64)> {
        bins.iter().map(|b| (b.from_ms, b.to_ms, b.count)).collect()
    }

    fn exchange(
        direction: oc_observe::ExchangeDirection,
        method: &str,
        url: &str,
        detail: Option<oc_observe::ExchangeDetail>,
        latency_us: u64,
    ) -> oc_observe::Exchange {
        oc_observe::Exchange {
            seq: 0,
            direction,
            carrier: None,
            method: method.into(),
            url: url.into(),
            status: Some(200),
            error: None,
            sim_time: 0,
            wall_time_ms: 0,
            latency_us,
            request_headers: Vec::new(),
            request_body: None,
            response_body: None,
            fault: None,
            detail,
        }
    }

    #[test]
    fn latency_says_what_each_figure_times_and_webhooks_are_only_webhooks() {
        use oc_observe::ExchangeDetail;
        use oc_observe::ExchangeDirection::{CarrierToTeams, TeamsToCarrier};
        let exchanges = vec![
            exchange(
                CarrierToTeams,
                "GET",
                "/oc/v1/cdrs/delta?token=x",
                None,
                300,
            ),
            exchange(
                TeamsToCarrier,
                "POST",
                "http://127.0.0.1:9/oc/v1/notifications/number-assignments",
                Some(ExchangeDetail::Webhook {
                    notification_id: "n".into(),
                    attempt: 0,
                    event_ids: Vec::new(),
                    last: true,
                }),
                2_000,
            ),
            exchange(
                TeamsToCarrier,
                "GET",
                "http://127.0.0.1:9/oc/v1/numbers/+14255550100",
                Some(ExchangeDetail::StateProbe {
                    telephone_number: "+14255550100".into(),
                }),
                9_000_000,
            ),
            exchange(
                TeamsToCarrier,
                "POST",
                "http://127.0.0.1:9/oc/v1/test/call-legs",
                Some(ExchangeDetail::CallLegs {
                    call_ids: Vec::new(),
                }),
                50_000,
            ),
        ];
        let latency = latency(&exchanges);
        let kinds: Vec<(LatencyMeasure, &str, u64)> = latency
            .iter()
            .map(|l| (l.measure, l.exchange.as_str(), l.max_us))
            .collect();
        assert_eq!(kinds.len(), 4, "{kinds:?}");
        assert!(kinds.contains(&(LatencyMeasure::TeamsHandler, "GET /oc/v1/cdrs/delta", 300)));
        // The slow probe is no webhook: max_ack_p99_ms holds webhooks only.
        assert!(
            kinds.contains(&(LatencyMeasure::RoundTrip, "webhook", 2_000)),
            "{kinds:?}"
        );
        assert!(kinds.iter().any(|k| k.1 == "POST /oc/v1/test/call-legs"));
        assert!(
            kinds
                .iter()
                .any(|k| k.1 == "GET /oc/v1/numbers/{telephoneNumber} (state probe)")
        );
    }

    #[test]
    fn drift_bins_are_signed_decades_from_the_lowest_to_the_highest() {
        assert!(drift_distribution(&[item(None)]).is_empty());
        let items: Vec<_> = [
            Some(-150),
            Some(0),
            Some(0),
            Some(7),
            Some(12_345_678),
            None,
        ]
        .into_iter()
        .map(item)
        .collect();
        assert_eq!(
            bins(&drift_distribution(&items)),
            [
                (-999, -100, 1),
                (-99, -10, 0),
                (-9, -1, 0),
                (0, 0, 2),
                (1, 9, 1),
                (10, 99, 0),
                (100, 999, 0),
                (1000, 9999, 0),
                (10_000, 99_999, 0),
                (100_000, 999_999, 0),
                (1_000_000, 9_999_999, 0),
                (10_000_000, 12_345_678, 1),
            ]
        );
        assert_eq!(bins(&drift_distribution(&[item(Some(0))])), [(0, 0, 1)]);
    }
}
