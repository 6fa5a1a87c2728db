//! A load plan's thresholds, as k6 writes them: `webhook_ack.p99 < 500ms`, `report_lag.p99 <
//! 60s`, `error_rate < 0.001`, `achieved_rate >= 0.99`, `dropped == 0`, and `rules` (no `must`
//! rule failed); parsed from the plan, judged at the end and, with `abort_on_fail`, interval by
//! interval.

use crate::scenario::parse_duration;

/// A latency metric, each an HdrHistogram per interval, measured from the intended send time
/// (or a record's availability, or a call's end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Metric {
    /// A notification's intended send time to its acknowledgement (retries included).
    WebhookAck,
    /// A call-legs post's intended send time to the carrier's answer.
    LegsPost,
    /// A record's availability on a feed to the carrier's read of it (the oldest of a page).
    FeedLag,
    /// A call's end to Teams receiving its duration.
    ReportLag,
}

impl Metric {
    /// Every metric, in the order files list them.
    pub const ALL: [Metric; 4] = [
        Metric::WebhookAck,
        Metric::LegsPost,
        Metric::FeedLag,
        Metric::ReportLag,
    ];

    /// As plans, logs and reports name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WebhookAck => "webhook_ack",
            Self::LegsPost => "legs_post",
            Self::FeedLag => "feed_lag",
            Self::ReportLag => "report_lag",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == text)
    }
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Less,
    /// `<=`
    LessOrEqual,
    /// `>`
    Greater,
    /// `>=`
    GreaterOrEqual,
    /// `==`
    Equal,
}

impl Op {
    fn holds(self, measured: f64, limit: f64) -> bool {
        match self {
            Self::Less => measured < limit,
            Self::LessOrEqual => measured <= limit,
            Self::Greater => measured > limit,
            Self::GreaterOrEqual => measured >= limit,
            Self::Equal => measured == limit,
        }
    }
}

/// What a threshold judges.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ThresholdKind {
    /// A quantile of a latency metric (1.0 is the maximum), in ms.
    Latency {
        /// The metric.
        metric: Metric,
        /// The quantile, 0 to 1.
        quantile: f64,
    },
    /// Failed requests (no answer, or an error status the harness did not inject) over all
    /// requests of the carrier's integration.
    ErrorRate,
    /// Iterations started over iterations scheduled, every executor together.
    AchievedRate,
    /// Iterations that could not start on time.
    Dropped,
    /// `must` rules failed.
    Rules,
}

/// One threshold of a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// As the plan wrote it, e.g. `webhook_ack.p99 < 500ms`.
    pub text: String,
    /// What it judges.
    pub kind: ThresholdKind,
    /// How the measured value compares with the limit.
    pub op: Op,
    /// The limit (ms for a latency).
    pub limit: f64,
}

impl Threshold {
    /// Whether `measured` holds; nothing measured never holds (a threshold that was not
    /// exercised has not passed).
    pub fn holds(&self, measured: Option<f64>) -> bool {
        measured.is_some_and(|m| self.op.holds(m, self.limit))
    }
}

const EXPECTED: &str = "expected `<metric>.<pNN|max|mean> <op> <duration>` (metrics webhook_ack, \
                        legs_post, feed_lag, report_lag), `error_rate <op> <number>`, \
                        `achieved_rate <op> <number>`, `dropped <op> <count>` or `rules`; <op> is \
                        one of <, <=, >, >=, ==";

/// Parses one threshold, e.g. `webhook_ack.p99 < 500ms`.
pub fn parse_threshold(text: &str) -> Result<Threshold, String> {
    let trimmed = text.trim();
    if trimmed == "rules" {
        return Ok(Threshold {
            text: trimmed.to_owned(),
            kind: ThresholdKind::Rules,
            op: Op::Equal,
            limit: 0.0,
        });
    }
    let ops = [
        ("<=", Op::LessOrEqual),
        (">=", Op::GreaterOrEqual),
        ("==", Op::Equal),
        ("<", Op::Less),
        (">", Op::Greater),
    ];
    let Some((at, token, op)) = ops
        .iter()
        .filter_map(|(token, op)| trimmed.find(token).map(|at| (at, *token, *op)))
        .min_by_key(|(at, token, _)| (*at, usize::MAX - token.len()))
    else {
        return Err(format!("{trimmed:?} has no comparison; {EXPECTED}"));
    };
    let subject = trimmed[..at].trim();
    let value = trimmed[at + token.len()..].trim();
    let number = |what: &str| -> Result<f64, String> {
        value
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("{value:?} is not a number ({what})"))
    };
    let (kind, limit) = match subject {
        "error_rate" => (ThresholdKind::ErrorRate, number("a share of requests")?),
        "achieved_rate" => (
            ThresholdKind::AchievedRate,
            number("a share of scheduled iterations")?,
        ),
        "dropped" => (ThresholdKind::Dropped, number("a count of iterations")?),
        _ => {
            let (name, stat) = subject
                .split_once('.')
                .ok_or_else(|| format!("unknown metric {subject:?}; {EXPECTED}"))?;
            let metric = Metric::parse(name)
                .ok_or_else(|| format!("unknown metric {name:?}; {EXPECTED}"))?;
            let quantile = quantile(stat)?;
            let ms = parse_duration(value).map_err(|e| format!("{e} (a latency limit)"))?;
            (ThresholdKind::Latency { metric, quantile }, ms as f64)
        }
    };
    Ok(Threshold {
        text: trimmed.to_owned(),
        kind,
        op,
        limit,
    })
}

/// `p99` → 0.99, `p99.9` → 0.999, `p50` → 0.5, `max` → 1.
fn quantile(stat: &str) -> Result<f64, String> {
    if stat == "max" {
        return Ok(1.0);
    }
    stat.strip_prefix('p')
        .and_then(|p| p.parse::<f64>().ok())
        .filter(|p| *p > 0.0 && *p <= 100.0)
        // Rounded, so that p99.9 is 0.999 and not 0.999 plus a binary tail.
        .map(|p| (p / 100.0 * 1e9).round() / 1e9)
        .ok_or_else(|| format!("unknown statistic {stat:?}: expected p50, p90, p99, p99.9… or max"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_parses() {
        let t = parse_threshold("webhook_ack.p99 < 500ms").unwrap();
        assert_eq!(
            t.kind,
            ThresholdKind::Latency {
                metric: Metric::WebhookAck,
                quantile: 0.99
            }
        );
        assert_eq!((t.op, t.limit), (Op::Less, 500.0));
        let t = parse_threshold("report_lag.p99.9 <= 1m").unwrap();
        assert_eq!(
            t.kind,
            ThresholdKind::Latency {
                metric: Metric::ReportLag,
                quantile: 0.999
            }
        );
        assert_eq!((t.op, t.limit), (Op::LessOrEqual, 60_000.0));
        let t = parse_threshold("achieved_rate >= 0.99").unwrap();
        assert_eq!(
            (t.kind, t.op, t.limit),
            (ThresholdKind::AchievedRate, Op::GreaterOrEqual, 0.99)
        );
        let t = parse_threshold("dropped == 0").unwrap();
        assert_eq!((t.kind, t.op), (ThresholdKind::Dropped, Op::Equal));
        let t = parse_threshold("error_rate<0.001").unwrap();
        assert_eq!(
            (t.kind, t.op, t.limit),
            (ThresholdKind::ErrorRate, Op::Less, 0.001)
        );
        assert_eq!(
            parse_threshold(" rules ").unwrap().kind,
            ThresholdKind::Rules
        );
        let t = parse_threshold("feed_lag.max > 1s").unwrap();
        assert_eq!(
            (t.kind, t.op),
            (
                ThresholdKind::Latency {
                    metric: Metric::FeedLag,
                    quantile: 1.0
                },
                Op::Greater
            )
        );
    }

    #[test]
    fn a_bad_threshold_says_what_is_wrong() {
        for (text, want) in [
            ("webhook_ack.p99 500ms", "no comparison"),
            (
                "webhook_acks.p99 < 500ms",
                "unknown metric \"webhook_acks\"",
            ),
            ("webhook_ack.p101 < 500ms", "unknown statistic"),
            ("webhook_ack.p99 < 500", "no unit"),
            ("error_rate < often", "not a number"),
            ("latency < 1s", "unknown metric"),
        ] {
            let err = parse_threshold(text).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn a_threshold_holds_only_on_a_measured_value_that_compares() {
        let t = parse_threshold("webhook_ack.p99 < 500ms").unwrap();
        assert!(t.holds(Some(499.9)));
        assert!(!t.holds(Some(500.0)));
        assert!(!t.holds(None), "nothing measured never holds");
        let t = parse_threshold("achieved_rate >= 0.99").unwrap();
        assert!(t.holds(Some(0.99)) && !t.holds(Some(0.98)));
        let t = parse_threshold("dropped == 0").unwrap();
        assert!(t.holds(Some(0.0)) && !t.holds(Some(1.0)));
    }
}
