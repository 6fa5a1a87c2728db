//! The SVG charts of `report.html`: bars (reconciliation classes, drift bins and percentiles),
//! the poor-stream share over time, and latency percentile curves, each drawn in a fixed view
//! box that the page scales to its width.

use std::fmt::Write as _;

use super::escape;
use crate::{DriftBin, LatencySummary, QualityBucket};

/// Width of every chart's view box, px (the page scales it to its width).
pub(super) const CHART_WIDTH: f64 = 440.0;
/// Width of a bar chart's label column, px.
const LABEL_WIDTH: f64 = 150.0;
/// Width of a bar chart's plotting area, px (the rest is for the value labels).
const PLOT_WIDTH: f64 = 210.0;
/// Height of one bar's row, px.
const ROW: f64 = 24.0;
/// How many colours the latency curves cycle through (`.s0` … in [`STYLE`]).
pub(super) const SERIES_COLOURS: usize = 8;

/// One bar of [`bar_chart`].
pub(crate) struct Bar {
    pub(crate) label: String,
    /// Its CSS class besides `bar` (its colour).
    pub(crate) class: &'static str,
    pub(crate) value: u64,
}

/// Opens a chart: a `<figure>` with a responsive SVG of `height` and a title.
pub(crate) fn open_chart(out: &mut String, title: &str, height: f64) {
    let _ = writeln!(
        out,
        "<figure>\n<svg viewBox=\"0 0 {CHART_WIDTH} {height:.0}\" role=\"img\" \
         aria-label=\"{title}\">\n<text x=\"0\" y=\"16\" class=\"title\">{title}</text>"
    );
}

/// A horizontal bar per item, scaled to the largest value; a "no data" line when every value
/// is zero.
pub(crate) fn bar_chart(out: &mut String, title: &str, bars: &[Bar]) {
    let largest = bars.iter().map(|b| b.value).max().unwrap_or(0);
    if largest == 0 {
        let _ = writeln!(out, "<p class=\"nodata\">{title}: no data.</p>");
        return;
    }
    open_chart(out, title, ROW * bars.len() as f64 + 30.0);
    for (i, bar) in bars.iter().enumerate() {
        let y = 26.0 + ROW * i as f64;
        let length = bar.value as f64 / largest as f64 * PLOT_WIDTH;
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"label\">{}</text><rect class=\"bar {}\" \
             x=\"{LABEL_WIDTH}\" y=\"{y:.1}\" width=\"{length:.1}\" height=\"{:.1}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            LABEL_WIDTH - 6.0,
            y + 14.0,
            escape(&bar.label),
            bar.class,
            ROW - 6.0,
            LABEL_WIDTH + length + 6.0,
            y + 14.0,
            bar.value
        );
    }
    out.push_str("</svg>\n</figure>\n");
}

/// The signed drift distribution: a bar per bin, negative bins (the carrier reported less
/// than Teams) first.
pub(crate) fn drift_distribution(out: &mut String, bins: &[DriftBin]) {
    let title = "Drift distribution, carrier − Teams (calls per bin)";
    if bins.iter().all(|b| b.count == 0) {
        let _ = writeln!(
            out,
            "<p class=\"nodata\">{title}: no data (no call has both sides).</p>"
        );
        return;
    }
    let bars: Vec<Bar> = bins
        .iter()
        .map(|b| Bar {
            label: bin_label(b),
            class: match b.from_ms.signum() + b.to_ms.signum() {
                0 => "zero",
                n if n < 0 => "short",
                _ => "long",
            },
            value: b.count,
        })
        .collect();
    bar_chart(out, title, &bars);
}

/// `0 ms`, `-99 … -10 ms`, `1 … 9.999 s`: a bin's inclusive edges, in seconds from 1 s on.
fn bin_label(bin: &DriftBin) -> String {
    if bin.from_ms == bin.to_ms {
        return milliseconds(bin.from_ms);
    }
    if bin.from_ms.unsigned_abs() < 1000 && bin.to_ms.unsigned_abs() < 1000 {
        return format!("{} … {} ms", bin.from_ms, bin.to_ms);
    }
    format!("{} … {} s", seconds(bin.from_ms), seconds(bin.to_ms))
}

/// `ms` as `12 ms` under a second, `1.5 s` from there.
fn milliseconds(ms: i64) -> String {
    if ms.unsigned_abs() < 1000 {
        format!("{ms} ms")
    } else {
        format!("{} s", seconds(ms))
    }
}

/// `ms` in seconds with no trailing zeros: `1`, `9.999`, `-0.1`.
pub(crate) fn seconds(ms: i64) -> String {
    let text = format!("{:.3}", ms as f64 / 1000.0);
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// The drift percentiles as bars from a zero axis, on a signed log scale
/// (`sign(v)·log10(1 + |v|)`), each with a dot at its value and labelled in ms.
pub(crate) fn drift_chart(out: &mut String, percentiles: &[(&str, f64)]) {
    let scale = |v: f64| v.signum() * (1.0 + v.abs()).log10();
    let low = percentiles.iter().map(|p| scale(p.1)).fold(0.0, f64::min);
    let high = percentiles.iter().map(|p| scale(p.1)).fold(0.0, f64::max);
    let span = if high > low { high - low } else { 1.0 };
    let plot = PLOT_WIDTH - 40.0;
    let x = |v: f64| LABEL_WIDTH + (scale(v) - low) / span * plot;
    let zero = x(0.0);
    let height = ROW * percentiles.len() as f64 + 30.0;
    open_chart(
        out,
        "Drift percentiles, carrier − Teams (ms, signed log scale)",
        height,
    );
    let _ = writeln!(
        out,
        "<line class=\"axis\" x1=\"{zero:.1}\" y1=\"22\" x2=\"{zero:.1}\" y2=\"{height}\"/>"
    );
    for (i, (name, value)) in percentiles.iter().enumerate() {
        let y = 26.0 + ROW * i as f64;
        let end = x(*value);
        let (left, right) = if end < zero { (end, zero) } else { (zero, end) };
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"label\">{name}</text><rect class=\"bar drift\" \
             x=\"{left:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\"/><circle class=\"dot\" \
             cx=\"{end:.1}\" cy=\"{:.1}\" r=\"4\"/><text x=\"{:.1}\" y=\"{:.1}\">{value} ms</text>",
            LABEL_WIDTH - 6.0,
            y + 14.0,
            right - left,
            ROW - 6.0,
            y + (ROW - 6.0) / 2.0,
            right + 8.0,
            y + 14.0
        );
    }
    out.push_str("</svg>\n</figure>\n");
}

/// The share of poor streams per bucket of simulated time: a bar and a dot per bucket that
/// has streams (none for an empty bucket), with the bucket's streams in its tooltip.
pub(crate) fn quality_chart(out: &mut String, buckets: &[QualityBucket]) {
    let streams: u64 = buckets.iter().map(|b| b.streams).sum();
    if streams == 0 {
        out.push_str(
            "<p class=\"nodata\">Poor-stream share: no data (no quality record was served).</p>\n",
        );
        return;
    }
    let poor: u64 = buckets.iter().map(|b| b.poor).sum();
    let _ = writeln!(
        out,
        "<p>{streams} streams served, {poor} poor ({:.1}%); by the records' \
         <code>availableDateTime</code>.</p>",
        poor as f64 * 100.0 / streams as f64
    );
    let share = |b: &QualityBucket| {
        if b.streams == 0 {
            0.0
        } else {
            b.poor as f64 / b.streams as f64
        }
    };
    let largest = buckets.iter().map(share).fold(0.0, f64::max);
    let top = [0.05, 0.1, 0.2, 0.25, 0.5, 1.0]
        .into_iter()
        .find(|&t| largest <= t)
        .unwrap_or(1.0);
    let bucket = match buckets {
        [a, b, ..] => match (
            oc_protocol::parse_timestamp(&a.start),
            oc_protocol::parse_timestamp(&b.start),
        ) {
            (Ok(a), Ok(b)) => format!(", {} buckets", span(b - a)),
            _ => String::new(),
        },
        _ => String::new(),
    };
    let (left, right, plot_top, plot_height) = (44.0, 6.0, 30.0, 160.0);
    let height = plot_top + plot_height + 40.0;
    let step = (CHART_WIDTH - left - right) / buckets.len() as f64;
    let bottom = plot_top + plot_height;
    open_chart(out, &format!("Poor-stream share{bucket}"), height);
    for (value, text) in [
        (0.0, "0%".to_owned()),
        (top, format!("{:.0}%", top * 100.0)),
    ] {
        let y = bottom - value / top * plot_height;
        let _ = writeln!(
            out,
            "<line class=\"grid\" x1=\"{left}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"label\">{text}</text>",
            CHART_WIDTH - right,
            left - 6.0,
            y + 5.0
        );
    }
    for (i, b) in buckets.iter().enumerate() {
        if b.streams == 0 {
            continue;
        }
        let x = left + step * i as f64;
        let h = share(b) / top * plot_height;
        let _ = writeln!(
            out,
            "<rect class=\"bar poor\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\">\
             <title>{}: {} of {} streams poor</title></rect><circle class=\"dot\" cx=\"{:.1}\" \
             cy=\"{:.1}\" r=\"3\"/>",
            x + step * 0.1,
            bottom - h,
            step * 0.8,
            escape(&b.start),
            b.poor,
            b.streams,
            x + step / 2.0,
            bottom - h
        );
    }
    let first = &buckets[0].start;
    let last = &buckets[buckets.len() - 1].start;
    let _ = writeln!(
        out,
        "<text x=\"{left}\" y=\"{:.1}\">{}</text><text x=\"{:.1}\" y=\"{:.1}\" \
         class=\"end\">{}</text>",
        bottom + 20.0,
        escape(short_time(first)),
        CHART_WIDTH - right,
        bottom + 20.0,
        escape(short_time(last))
    );
    out.push_str("</svg>\n</figure>\n");
}

/// `2026-11-02 01:00` from `2026-11-02T01:00:00.000Z`.
fn short_time(timestamp: &str) -> &str {
    timestamp.get(..16).unwrap_or(timestamp)
}

/// `5 min`, `1 h`, `7 d`: a bucket size.
fn span(ms: i64) -> String {
    const MINUTE: i64 = 60_000;
    match ms {
        ms if ms % (24 * 60 * MINUTE) == 0 => format!("{} d", ms / (24 * 60 * MINUTE)),
        ms if ms % (60 * MINUTE) == 0 => format!("{} h", ms / (60 * MINUTE)),
        ms if ms % MINUTE == 0 => format!("{} min", ms / MINUTE),
        ms => format!("{} s", seconds(ms)),
    }
}

/// One polyline per kind of exchange through its percentile curve (quantiles evenly spaced,
/// latency on a log scale), a dot per point, and a legend.
pub(crate) fn latency_chart(out: &mut String, title: &str, latency: &[&LatencySummary]) {
    let points: Vec<u64> = latency
        .iter()
        .flat_map(|l| l.curve.iter().map(|p| p.us.max(1)))
        .collect();
    let (Some(&low), Some(&high)) = (points.iter().min(), points.iter().max()) else {
        out.push_str("<p class=\"nodata\">Latency percentile curves: no data.</p>\n");
        return;
    };
    let low_decade = (low as f64).log10().floor();
    let high_decade = ((high as f64).log10().ceil()).max(low_decade + 1.0);
    let quantiles = latency.iter().map(|l| l.curve.len()).max().unwrap_or(0);
    let (left, right, plot_top, plot_height) = (58.0, 16.0, 30.0, 200.0);
    let bottom = plot_top + plot_height;
    let height = bottom + 30.0;
    let step = (CHART_WIDTH - left - right) / (quantiles.max(2) - 1) as f64;
    let y = |us: u64| {
        bottom
            - ((us.max(1) as f64).log10() - low_decade) / (high_decade - low_decade) * plot_height
    };
    open_chart(out, &escape(title), height);
    let mut decade = low_decade;
    while decade <= high_decade {
        let us = 10f64.powf(decade) as u64;
        let at = y(us);
        let _ = writeln!(
            out,
            "<line class=\"grid\" x1=\"{left}\" y1=\"{at:.1}\" x2=\"{:.1}\" y2=\"{at:.1}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"label\">{}</text>",
            CHART_WIDTH - right,
            left - 6.0,
            at + 5.0,
            microseconds(us)
        );
        decade += 1.0;
    }
    if let Some(longest) = latency.iter().max_by_key(|l| l.curve.len()) {
        for (i, p) in longest.curve.iter().enumerate() {
            let label = if p.quantile >= 1.0 {
                "max".to_owned()
            } else {
                format!("p{}", p.quantile * 100.0)
            };
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" class=\"middle\">{label}</text>",
                left + step * i as f64,
                bottom + 20.0
            );
        }
        out.push('\n');
    }
    for (n, l) in latency.iter().enumerate() {
        let colour = n % SERIES_COLOURS;
        let coordinates: Vec<(f64, f64)> = l
            .curve
            .iter()
            .enumerate()
            .map(|(i, p)| (left + step * i as f64, y(p.us)))
            .collect();
        let line: Vec<String> = coordinates
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        let _ = write!(
            out,
            "<g class=\"s{colour}\"><title>{}</title><polyline class=\"curve\" points=\"{}\"/>",
            escape(&l.exchange),
            line.join(" ")
        );
        for (x, y) in coordinates {
            let _ = write!(out, "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3\"/>");
        }
        out.push_str("</g>\n");
    }
    out.push_str("</svg>\n<figcaption><ul class=\"legend\">\n");
    for (n, l) in latency.iter().enumerate() {
        let _ = writeln!(
            out,
            "<li><span class=\"swatch s{}\"></span>{} ({} exchanges)</li>",
            n % SERIES_COLOURS,
            escape(&l.exchange),
            l.count
        );
    }
    out.push_str("</ul></figcaption>\n</figure>\n");
}

/// `10 µs`, `1 ms`, `10 s`: a power of ten of microseconds.
fn microseconds(us: u64) -> String {
    match us {
        us if us >= 1_000_000 => format!("{} s", us / 1_000_000),
        us if us >= 1000 => format!("{} ms", us / 1000),
        us => format!("{us} µs"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_bins_are_labelled_in_ms_then_seconds() {
        let bin = |from_ms, to_ms| DriftBin {
            from_ms,
            to_ms,
            count: 1,
        };
        assert_eq!(bin_label(&bin(0, 0)), "0 ms");
        assert_eq!(bin_label(&bin(-99, -10)), "-99 … -10 ms");
        assert_eq!(bin_label(&bin(1000, 9999)), "1 … 9.999 s");
        assert_eq!(bin_label(&bin(-9999, -1000)), "-9.999 … -1 s");
        assert_eq!(span(3_600_000), "1 h");
        assert_eq!(span(300_000), "5 min");
    }
}
