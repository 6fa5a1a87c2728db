//! The load section of `report.html` (`oc-harness load`): time-series charts of each executor's
//! rate against its target, the latency percentiles, the lags and the errors, interval by
//! interval, with the phases of trouble shaded.

use std::fmt::Write as _;

use super::charts::{CHART_WIDTH, SERIES_COLOURS, open_chart};
use super::escape;
use crate::{LoadInterval, LoadSection};

/// Extra style of the load charts.
pub(super) const STYLE: &str = ".phase { fill: #bf8700; fill-opacity: 0.15; }
.target { stroke-dasharray: 4 3; }
";

/// One line of a time chart: a label and a value per interval (none where it has no data).
struct Series {
    label: String,
    values: Vec<Option<f64>>,
    /// Drawn dashed (a target).
    dashed: bool,
}

/// The load section: the charts, then the phases and totals in words.
pub(super) fn section(out: &mut String, load: &LoadSection) {
    out.push_str("<h2>Load</h2>\n");
    let _ = writeln!(
        out,
        "<p>{} intervals of {} s; iterations dropped: {}; {} calls never reported{}.</p>",
        load.intervals.len(),
        super::charts::seconds(load.interval_ms),
        load.dropped_text(),
        load.unreported,
        load.aborted
            .as_ref()
            .map_or_else(String::new, |why| format!(
                "; <b>aborted</b>: {}",
                escape(why)
            ))
    );
    for phase in &load.phases {
        let _ = writeln!(
            out,
            "<p>Phase <code>{}</code> from {} s to {} s, excused until {} s.</p>",
            escape(&phase.kind),
            phase.start_ms / 1000,
            phase.end_ms / 1000,
            phase.excused_until_ms / 1000
        );
    }
    if load.intervals.is_empty() {
        out.push_str("<p class=\"nodata\">No interval was written.</p>\n");
        return;
    }
    let mut executors: Vec<&str> = Vec::new();
    for i in &load.intervals {
        for e in &i.executors {
            if !executors.contains(&e.executor.as_str()) {
                executors.push(&e.executor);
            }
        }
    }
    let mut rates = Vec::new();
    for name in executors {
        let of = |i: &LoadInterval, target: bool| {
            i.executors.iter().find(|e| e.executor == name).map(|e| {
                if target {
                    e.target_rate
                } else {
                    e.achieved_rate
                }
            })
        };
        rates.push(Series {
            label: format!("{name} achieved"),
            values: load.intervals.iter().map(|i| of(i, false)).collect(),
            dashed: false,
        });
        rates.push(Series {
            label: format!("{name} target"),
            values: load.intervals.iter().map(|i| of(i, true)).collect(),
            dashed: true,
        });
    }
    time_chart(out, "Rate against target (per second)", load, &rates);
    let metric = |name: &str, p99: bool| Series {
        label: format!("{name} {}", if p99 { "p99" } else { "p50" }),
        values: load
            .intervals
            .iter()
            .map(|i| {
                let m = i.metrics.iter().find(|m| m.metric == name)?;
                if p99 { m.p99_ms } else { m.p50_ms }
            })
            .collect(),
        dashed: !p99,
    };
    let latency = [
        metric("webhook_ack", true),
        metric("webhook_ack", false),
        metric("legs_post", true),
        metric("legs_post", false),
    ];
    time_chart(
        out,
        "Latency from the intended send time (ms)",
        load,
        &latency,
    );
    let lags = [
        metric("feed_lag", true),
        metric("feed_lag", false),
        metric("report_lag", true),
        metric("report_lag", false),
    ];
    time_chart(out, "Feed and report lag (ms)", load, &lags);
    let errors = [
        Series {
            label: "errors".into(),
            values: load
                .intervals
                .iter()
                .map(|i| Some(i.errors as f64))
                .collect(),
            dashed: false,
        },
        Series {
            label: "dropped".into(),
            values: load
                .intervals
                .iter()
                .map(|i| Some(i.executors.iter().map(|e| e.dropped).sum::<u64>() as f64))
                .collect(),
            dashed: true,
        },
    ];
    time_chart(out, "Errors and dropped iterations", load, &errors);
}

/// Lines over the load's intervals on a linear scale from zero, the phases shaded behind them.
fn time_chart(out: &mut String, title: &str, load: &LoadSection, series: &[Series]) {
    let largest = series
        .iter()
        .flat_map(|s| s.values.iter().flatten())
        .fold(0.0f64, |a, &b| a.max(b));
    if series.iter().all(|s| s.values.iter().all(Option::is_none)) {
        let _ = writeln!(out, "<p class=\"nodata\">{}: no data.</p>", escape(title));
        return;
    }
    let top = nice_top(largest);
    let end_ms = load.intervals.last().map_or(1, |i| i.end_ms).max(1);
    let (left, right, plot_top, plot_height) = (58.0, 16.0, 30.0, 160.0);
    let bottom = plot_top + plot_height;
    let width = CHART_WIDTH - left - right;
    let x = |ms: i64| left + ms as f64 / end_ms as f64 * width;
    let y = |v: f64| bottom - v / top * plot_height;
    open_chart(out, &escape(title), bottom + 30.0);
    for phase in &load.phases {
        let _ = writeln!(
            out,
            "<rect class=\"phase\" x=\"{:.1}\" y=\"{plot_top}\" width=\"{:.1}\" \
             height=\"{plot_height}\"><title>{} and its catch-up</title></rect>",
            x(phase.start_ms),
            (x(phase.excused_until_ms.min(end_ms)) - x(phase.start_ms)).max(1.0),
            escape(&phase.kind)
        );
    }
    for value in [0.0, top / 2.0, top] {
        let _ = writeln!(
            out,
            "<line class=\"grid\" x1=\"{left}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"label\">{}</text>",
            y(value),
            CHART_WIDTH - right,
            y(value),
            left - 6.0,
            y(value) + 5.0,
            number(value)
        );
    }
    let _ = writeln!(
        out,
        "<text x=\"{left}\" y=\"{:.1}\">0 s</text><text x=\"{:.1}\" y=\"{:.1}\" \
         class=\"end\">{} s</text>",
        bottom + 20.0,
        CHART_WIDTH - right,
        bottom + 20.0,
        end_ms / 1000
    );
    for (n, s) in series.iter().enumerate() {
        let points: Vec<String> = load
            .intervals
            .iter()
            .zip(&s.values)
            .filter_map(|(i, v)| v.map(|v| format!("{:.1},{:.1}", x(i.end_ms), y(v))))
            .collect();
        if points.is_empty() {
            continue;
        }
        let class = if s.dashed { "curve target" } else { "curve" };
        let _ = writeln!(
            out,
            "<g class=\"s{}\"><title>{}</title><polyline class=\"{class}\" points=\"{}\"/></g>",
            n / 2 % SERIES_COLOURS,
            escape(&s.label),
            points.join(" ")
        );
    }
    out.push_str("</svg>\n<figcaption><ul class=\"legend\">\n");
    for (n, s) in series.iter().enumerate() {
        if s.values.iter().all(Option::is_none) {
            continue;
        }
        let _ = writeln!(
            out,
            "<li><span class=\"swatch s{}\"></span>{}{}</li>",
            n / 2 % SERIES_COLOURS,
            escape(&s.label),
            if s.dashed { " (dashed)" } else { "" }
        );
    }
    out.push_str("</ul></figcaption>\n</figure>\n");
}

/// The smallest of 1, 2 or 5 times a power of ten that is at least `value` (1 for nothing).
fn nice_top(value: f64) -> f64 {
    if value <= 0.0 {
        return 1.0;
    }
    let decade = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * decade)
        .find(|top| *top >= value)
        .unwrap_or(10.0 * decade)
}

/// A value on an axis: whole under a thousand, `1.5k` above.
fn number(value: f64) -> String {
    if value >= 1000.0 {
        format!("{}k", value / 1000.0)
    } else if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_tops_are_round() {
        assert_eq!(nice_top(0.0), 1.0);
        assert_eq!(nice_top(3.2), 5.0);
        assert_eq!(nice_top(200.0), 200.0);
        assert_eq!(nice_top(201.0), 500.0);
        assert_eq!(nice_top(0.07), 0.1);
        assert_eq!(number(1500.0), "1.5k");
        assert_eq!(number(50.0), "50");
    }
}
