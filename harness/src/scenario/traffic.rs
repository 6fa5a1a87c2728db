//! The traffic a scenario generates: assignments and their churn, calls with their daily shape,
//! durations and delays, and media quality.

use oc_protocol::validate::parse_sip_uri;

use super::convert::{Findings, raw_text};
use super::defaults;
use super::duration::format_duration;
use super::model::{AssignmentSpec, CallSpec, ExponentialSpec, LogNormalSpec, QualitySpec};
use super::raw::{RawAssignments, RawCalls, RawQuality};

pub(crate) fn assignments(raw: RawAssignments, f: &mut Findings) -> AssignmentSpec {
    let sip_host = raw
        .sip_host
        .unwrap_or_else(|| defaults::SIP_HOST.to_owned());
    if parse_sip_uri(&format!("sip:+14255550100@{sip_host};user=phone")).is_err() {
        f.push(
            "assignments.sip_host",
            format!(
                "must be a DNS name or IP address, with an optional port, as in \
                 sip:<number>@<sip_host>;user=phone, got {sip_host:?}"
            ),
        );
    }
    AssignmentSpec {
        assigned_at_start: f.share(
            "assignments.assigned_at_start",
            raw.assigned_at_start,
            defaults::ASSIGNED_AT_START,
        ),
        sip_host,
        assign_per_day: f.non_negative("assignments.assign_per_day", raw.assign_per_day, 0.0),
        update_per_day: f.non_negative("assignments.update_per_day", raw.update_per_day, 0.0),
        unassign_per_day: f.non_negative("assignments.unassign_per_day", raw.unassign_per_day, 0.0),
    }
}

pub(crate) fn calls(raw: RawCalls, f: &mut Findings) -> CallSpec {
    let daily_shape = match raw.daily_shape {
        None => defaults::OFFICE_DAY_SHAPE,
        Some(weights) => daily_shape(&weights, f),
    };
    let d = raw.duration.unwrap_or_default();
    let median_ms = f.positive_duration(
        "calls.duration.median",
        d.median.as_ref(),
        defaults::DURATION_MEDIAN_MS,
    );
    let sigma = f.non_negative("calls.duration.sigma", d.sigma, defaults::DURATION_SIGMA);
    let max_ms = f.duration(
        "calls.duration.max",
        d.max.as_ref(),
        defaults::DURATION_MAX_MS,
    );
    if let (Some(median), Some(max)) = (median_ms, max_ms)
        && max < median
    {
        f.push(
            "calls.duration.max",
            format!(
                "must be at least the median ({}), got {}",
                format_duration(median),
                raw_text(d.max.as_ref(), max)
            ),
        );
    }
    let a = raw.availability_delay.unwrap_or_default();
    let mean_ms = f.duration(
        "calls.availability_delay.mean",
        a.mean.as_ref(),
        defaults::AVAILABILITY_MEAN_MS,
    );
    let delay_max_ms = f.duration(
        "calls.availability_delay.max",
        a.max.as_ref(),
        defaults::AVAILABILITY_MAX_MS,
    );
    if let (Some(mean), Some(max)) = (mean_ms, delay_max_ms)
        && max < mean
    {
        f.push(
            "calls.availability_delay.max",
            format!(
                "must be at least the mean ({}), got {}",
                format_duration(mean),
                raw_text(a.max.as_ref(), max)
            ),
        );
    }
    CallSpec {
        busy_hour_per_number: f.non_negative(
            "calls.busy_hour_per_number",
            raw.busy_hour_per_number,
            defaults::BUSY_HOUR_PER_NUMBER,
        ),
        daily_shape,
        answer_rate: f.share("calls.answer_rate", raw.answer_rate, defaults::ANSWER_RATE),
        outbound_share: f.share(
            "calls.outbound_share",
            raw.outbound_share,
            defaults::OUTBOUND_SHARE,
        ),
        duration: LogNormalSpec {
            median_ms: median_ms.unwrap_or(defaults::DURATION_MEDIAN_MS),
            sigma,
            max_ms: max_ms.unwrap_or(defaults::DURATION_MAX_MS),
        },
        availability_delay: ExponentialSpec {
            mean_ms: mean_ms.unwrap_or(defaults::AVAILABILITY_MEAN_MS),
            max_ms: delay_max_ms.unwrap_or(defaults::AVAILABILITY_MAX_MS),
        },
        correction_rate: f.share("calls.correction_rate", raw.correction_rate, 0.0),
    }
}

fn daily_shape(weights: &[f64], f: &mut Findings) -> [f64; 24] {
    let Ok(shape) = <[f64; 24]>::try_from(weights) else {
        f.push(
            "calls.daily_shape",
            format!(
                "must have exactly 24 weights, one per UTC hour from 00:00, got {}",
                weights.len()
            ),
        );
        return defaults::OFFICE_DAY_SHAPE;
    };
    let mut all_fine = true;
    for (hour, w) in shape.iter().enumerate() {
        if !(w.is_finite() && *w >= 0.0) {
            f.push(
                format!("calls.daily_shape[{hour}]"),
                format!("must be a number >= 0, got {w}"),
            );
            all_fine = false;
        }
    }
    if all_fine && shape.iter().all(|w| *w == 0.0) {
        f.push(
            "calls.daily_shape",
            "must have at least one weight above 0, got 24 zeros",
        );
    }
    shape
}

pub(crate) fn quality(raw: RawQuality, f: &mut Findings) -> QualitySpec {
    QualitySpec {
        impaired_share: f.share(
            "quality.impaired_share",
            raw.impaired_share,
            defaults::IMPAIRED_SHARE,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::load::parse;
    use super::super::load::tests::{at, located, problem, problems, with};
    use super::*;

    #[test]
    fn assignment_settings_are_checked() {
        let text = with(
            "[assignments]\nsip_host = \"sbc 1\"\nassigned_at_start = 1.5\nupdate_per_day = -0.5\nassign_per_day = inf\n",
        );
        assert_eq!(
            problems(&text),
            [
                at("assignments.sip_host", 11, 12),
                at("assignments.assigned_at_start", 12, 21),
                at("assignments.update_per_day", 13, 18),
                at("assignments.assign_per_day", 14, 18),
            ]
        );
        let s = parse(&with("[assignments]\nsip_host = \"10.0.0.1:5061\"\n"), "t").unwrap();
        assert_eq!(s.assignments.sip_host, "10.0.0.1:5061");
    }

    #[test]
    fn call_settings_are_checked() {
        let text = with(
            "[calls]\nbusy_hour_per_number = -1.0\nanswer_rate = 1.5\noutbound_share = -0.1\n\
             correction_rate = 2.0\nduration = { median = \"0s\", sigma = -1.0 }\n\
             availability_delay = { mean = \"2h\", max = \"1h\" }\n",
        );
        assert_eq!(
            problems(&text),
            [
                at("calls.busy_hour_per_number", 11, 24),
                at("calls.answer_rate", 12, 15),
                at("calls.outbound_share", 13, 18),
                at("calls.correction_rate", 14, 19),
                at("calls.duration.median", 15, 23),
                at("calls.duration.sigma", 15, 37),
                at("calls.availability_delay.max", 16, 43),
            ]
        );
        let text = with("[calls]\nduration = { median = \"5m\", max = \"1m\" }\n");
        assert_eq!(
            located(&text, "at least the median (5m)"),
            at("calls.duration.max", 11, 35)
        );
    }

    #[test]
    fn the_daily_shape_has_24_weights_not_all_zero() {
        let text = with("[calls]\ndaily_shape = [1, 2, 3]\n");
        assert_eq!(
            located(&text, "exactly 24 weights, one per UTC hour"),
            at("calls.daily_shape", 11, 15)
        );
        let mut weights = vec!["1.0"; 24];
        weights[5] = "-2.0";
        let text = with(&format!(
            "[calls]\ndaily_shape = [{}]\n",
            weights.join(", ")
        ));
        assert_eq!(located(&text, "got -2"), at("calls.daily_shape[5]", 11, 41));
        let text = with(&format!(
            "[calls]\ndaily_shape = [{}]\n",
            ["0"; 24].join(", ")
        ));
        let ((key, _, _), message) = problem(&text);
        assert_eq!(key, "calls.daily_shape");
        assert!(message.contains("at least one weight above 0"), "{message}");
    }

    #[test]
    fn a_nested_table_takes_its_missing_keys_from_the_defaults() {
        let s = parse(&with("[calls]\nduration = { sigma = 0.5 }\n"), "t.toml").unwrap();
        assert_eq!(
            s.calls.duration,
            LogNormalSpec {
                median_ms: 120_000,
                sigma: 0.5,
                max_ms: 14_400_000,
            }
        );
    }
}
