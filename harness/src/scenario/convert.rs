//! From the file as written to a [`Scenario`]: defaults filled in, durations read, tenant ids
//! derived, and every rule checked, collecting every problem rather than stopping at the first.

use oc_protocol::timestamp::MAX_UNIX_MILLIS;

use super::carrier::{carrier, teams_faults};
use super::certification::certification;
use super::defaults;
use super::duration::{RawDuration, format_duration, parse_duration};
use super::expect::{expectations, thresholds};
use super::model::{Clock, ReconciliationSpec, Scenario};
use super::raw::{RawClock, RawReconciliation, RawScenario};
use super::tenants::tenants;
use super::traffic::{assignments, calls, quality};

/// One problem found while converting: the key it is about, where to point in the file when
/// that key is absent, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    /// The key path the message is about, e.g. `calls.duration.max`.
    pub(crate) key: String,
    /// The key path to locate in the file, when it differs from `key` (a required key that is
    /// missing is shown where the key that requires it is).
    pub(crate) at: Option<String>,
    /// What is wrong, with what was expected.
    pub(crate) message: String,
}

/// The problems found so far, and the checks that find most of them.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    pub(crate) items: Vec<Finding>,
}

impl Findings {
    pub(crate) fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.items.push(Finding {
            key: key.into(),
            at: None,
            message: message.into(),
        });
    }

    /// A problem about `key`, shown at `at` in the file.
    pub(crate) fn push_at(&mut self, key: &str, at: &str, message: impl Into<String>) {
        self.items.push(Finding {
            key: key.to_owned(),
            at: Some(at.to_owned()),
            message: message.into(),
        });
    }

    /// A share: from 0 to 1.
    pub(crate) fn share(&mut self, key: &str, value: Option<f64>, default: f64) -> f64 {
        let value = value.unwrap_or(default);
        if !(0.0..=1.0).contains(&value) {
            self.push(key, format!("must be from 0 to 1, got {value}"));
        }
        value
    }

    /// A rate or amount: a finite number >= 0.
    pub(crate) fn non_negative(&mut self, key: &str, value: Option<f64>, default: f64) -> f64 {
        let value = value.unwrap_or(default);
        if !(value.is_finite() && value >= 0.0) {
            self.push(key, format!("must be a number >= 0, got {value}"));
        }
        value
    }

    /// A duration in ms, or `default` when absent; `None` when it does not parse.
    pub(crate) fn duration(
        &mut self,
        key: &str,
        raw: Option<&RawDuration>,
        default: i64,
    ) -> Option<i64> {
        match raw {
            None => Some(default),
            Some(raw) => match parse_duration(&raw.0) {
                Ok(ms) => Some(ms),
                Err(message) => {
                    self.push(key, message);
                    None
                }
            },
        }
    }

    /// A duration that must be more than 0.
    pub(crate) fn positive_duration(
        &mut self,
        key: &str,
        raw: Option<&RawDuration>,
        default: i64,
    ) -> Option<i64> {
        let ms = self.duration(key, raw, default)?;
        if ms <= 0 {
            self.push(
                key,
                format!("must be more than 0, got {}", raw_text(raw, ms)),
            );
            return None;
        }
        Some(ms)
    }
}

/// The duration as the file wrote it, or formatted when it is a default.
pub(crate) fn raw_text(raw: Option<&RawDuration>, ms: i64) -> String {
    raw.map_or_else(|| format_duration(ms), |r| format!("{:?}", r.0))
}

/// Converts and checks a file; every problem found, when there is one.
pub(crate) fn convert(raw: RawScenario) -> Result<Scenario, Vec<Finding>> {
    let mut f = Findings::default();
    check_name(&raw.name, &mut f);
    if raw.description.trim().is_empty() {
        f.push(
            "description",
            "must say what the scenario shows, not be empty",
        );
    }
    let clock = clock(raw.clock, raw.speed, &mut f);
    let start = match oc_protocol::parse_timestamp(&raw.start) {
        Ok(ms) => ms,
        Err(e) => {
            f.push("start", format!("{e}, got {:?}", raw.start));
            0
        }
    };
    let length_ms = f.positive_duration("length", Some(&raw.length), 0);
    if let Some(ms) = length_ms
        && ms > defaults::MAX_LENGTH_MS
    {
        f.push(
            "length",
            format!("must be at most 366d, got {:?}", raw.length.0),
        );
    }
    if let Some(ms) = length_ms
        && start
            .checked_add(ms)
            .is_none_or(|end| end > MAX_UNIX_MILLIS)
    {
        f.push("length", "runs past the year 9999 from start");
    }
    // The default tick never exceeds a short run's length; a tick the file gives must fit.
    let default_tick = length_ms.map_or(defaults::TICK_MS, |l| l.min(defaults::TICK_MS));
    let tick_ms = f.positive_duration("tick", raw.tick.as_ref(), default_tick);
    if let (Some(tick), Some(length)) = (tick_ms, length_ms)
        && tick > length
    {
        f.push(
            "tick",
            format!(
                "must be at most length ({}), got {}",
                format_duration(length),
                raw_text(raw.tick.as_ref(), tick)
            ),
        );
    }
    let tenants = tenants(&raw.tenants, raw.seed, &mut f);
    let scenario = Scenario {
        name: raw.name,
        description: raw.description,
        seed: raw.seed,
        clock,
        start,
        length_ms: length_ms.unwrap_or(0),
        tick_ms: tick_ms.unwrap_or(defaults::TICK_MS),
        tenants,
        assignments: assignments(raw.assignments.unwrap_or_default(), &mut f),
        calls: calls(raw.calls.unwrap_or_default(), &mut f),
        quality: quality(raw.quality.unwrap_or_default(), &mut f),
        carrier: carrier(raw.carrier.unwrap_or_default(), &mut f),
        teams_faults: teams_faults(raw.teams_faults.unwrap_or_default(), &mut f),
        reconciliation: reconciliation(raw.reconciliation.unwrap_or_default(), &mut f),
        expect: expectations(raw.expect.unwrap_or_default(), &mut f),
        thresholds: thresholds(raw.thresholds.unwrap_or_default(), &mut f),
        certification: certification(raw.certification.unwrap_or_default(), &mut f),
    };
    if f.items.is_empty() {
        Ok(scenario)
    } else {
        Err(f.items)
    }
}

fn check_name(name: &str, f: &mut Findings) {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok {
        f.push(
            "name",
            format!("must be lower-case letters, digits and hyphens ([a-z0-9-]+), got {name:?}"),
        );
    }
}

fn clock(clock: Option<RawClock>, speed: Option<f64>, f: &mut Findings) -> Clock {
    match (clock.unwrap_or(RawClock::Virtual), speed) {
        (RawClock::Virtual, None) => Clock::Virtual,
        (RawClock::Virtual, Some(_)) => {
            f.push(
                "speed",
                "is only for clock = \"realtime\" (a virtual clock runs as fast as it can)",
            );
            Clock::Virtual
        }
        (RawClock::Realtime, None) => {
            f.push_at(
                "speed",
                "clock",
                "is required with clock = \"realtime\" (simulated seconds per real second, \
                 e.g. speed = 1.0)",
            );
            Clock::Realtime { speed: 1.0 }
        }
        (RawClock::Realtime, Some(speed)) => {
            if !(speed.is_finite() && speed > 0.0) {
                f.push("speed", format!("must be more than 0, got {speed}"));
            }
            Clock::Realtime { speed }
        }
    }
}

fn reconciliation(raw: RawReconciliation, f: &mut Findings) -> ReconciliationSpec {
    let tolerance_ms = f.duration(
        "reconciliation.tolerance",
        raw.tolerance.as_ref(),
        defaults::TOLERANCE_MS,
    );
    let deadline_ms = f.positive_duration(
        "reconciliation.deadline",
        raw.deadline.as_ref(),
        defaults::DEADLINE_MS,
    );
    ReconciliationSpec {
        tolerance_ms: tolerance_ms.unwrap_or(defaults::TOLERANCE_MS),
        deadline_ms: deadline_ms.unwrap_or(defaults::DEADLINE_MS),
    }
}

#[cfg(test)]
mod tests {
    use mock_carrier::config::{ClientConfig, MisbehaviourConfig};
    use mock_teams::FaultSettings;

    use super::super::load::parse;
    use super::super::load::tests::{MINIMAL, at, located, problem, problems, top, with};
    use super::super::model::{
        AssignmentSpec, CallSpec, CarrierSpec, Expectations, ExponentialSpec, LogNormalSpec,
        QualitySpec, TenantSpec, Thresholds,
    };
    use super::super::tenants::derived_tenant_id;
    use super::*;

    #[test]
    fn a_minimal_file_gets_every_default() {
        let s = parse(MINIMAL, "t.toml").unwrap();
        assert_eq!(s.clock, Clock::Virtual);
        assert_eq!(s.start, 1_793_577_600_000);
        assert_eq!((s.length_ms, s.tick_ms), (86_400_000, 300_000));
        assert_eq!(
            s.tenants,
            [TenantSpec {
                id: derived_tenant_id(7, 0),
                id_from_seed: true,
                numbers: 10,
                first_number: "+14255550100".to_owned(),
            }]
        );
        assert_eq!(
            s.assignments,
            AssignmentSpec {
                assigned_at_start: 0.9,
                sip_host: "sbc1.carrier.example".to_owned(),
                assign_per_day: 0.0,
                update_per_day: 0.0,
                unassign_per_day: 0.0,
            }
        );
        assert_eq!(
            s.calls,
            CallSpec {
                busy_hour_per_number: 2.0,
                daily_shape: defaults::OFFICE_DAY_SHAPE,
                answer_rate: 0.8,
                outbound_share: 0.6,
                duration: LogNormalSpec {
                    median_ms: 120_000,
                    sigma: 0.9,
                    max_ms: 14_400_000,
                },
                availability_delay: ExponentialSpec {
                    mean_ms: 120_000,
                    max_ms: 3_600_000,
                },
                correction_rate: 0.0,
            }
        );
        assert_eq!(
            s.quality,
            QualitySpec {
                impaired_share: 0.1
            }
        );
        assert_eq!(
            s.carrier,
            CarrierSpec::Mock {
                drift: Vec::new(),
                misbehaviour: MisbehaviourConfig::default(),
                client: ClientConfig::default(),
            }
        );
        assert_eq!(s.teams_faults, FaultSettings::default());
        assert_eq!(
            s.reconciliation,
            ReconciliationSpec {
                tolerance_ms: 1_000,
                deadline_ms: 86_400_000,
            }
        );
        assert_eq!(
            s.expect,
            Expectations {
                failed_rules: Vec::new()
            }
        );
        assert_eq!(
            s.thresholds,
            Thresholds {
                min_match_rate: None,
                max_ack_p99_ms: None,
                max_minutes_difference: None,
            }
        );
    }

    #[test]
    fn the_name_and_description_are_checked() {
        let text = MINIMAL.replace("name = \"t\"", "name = \"Smoke_1\"");
        assert_eq!(located(&text, "[a-z0-9-]+"), at("name", 1, 8));
        let text = MINIMAL.replace("\"a test\"", "\"  \"");
        assert_eq!(located(&text, "must say"), at("description", 2, 15));
    }

    #[test]
    fn the_clock_and_speed_must_agree() {
        assert_eq!(
            located(&top("speed = 2.0"), "only for clock = \"realtime\""),
            at("speed", 4, 9)
        );
        assert_eq!(
            located(&top("clock = \"realtime\""), "is required"),
            at("speed", 4, 9)
        );
        let text = top("clock = \"realtime\"\nspeed = 0.0");
        assert_eq!(located(&text, "more than 0, got 0"), at("speed", 5, 9));
        let s = parse(&top("clock = \"realtime\"\nspeed = 60.0"), "t").unwrap();
        assert_eq!(s.clock, Clock::Realtime { speed: 60.0 });
        let ((key, _, _), message) = problem(&top("clock = \"fast\""));
        assert_eq!(key, "clock");
        assert_eq!(
            message,
            "unknown value \"fast\" (one of \"virtual\", \"realtime\")"
        );
    }

    #[test]
    fn the_start_is_an_rfc3339_utc_time_with_milliseconds() {
        for bad in [
            "2026-11-02T00:00:00Z",
            "2026-11-02 00:00:00.000Z",
            "2026-02-30T00:00:00.000Z",
        ] {
            let text = MINIMAL.replace("2026-11-02T00:00:00.000Z", bad);
            assert_eq!(located(&text, bad), at("start", 4, 9), "{bad}");
        }
    }

    #[test]
    fn the_length_and_tick_are_checked() {
        let text = MINIMAL.replace("\"1d\"", "\"0s\"");
        assert_eq!(located(&text, "more than 0"), at("length", 5, 10));
        let text = MINIMAL.replace("\"1d\"", "\"367d\"");
        assert_eq!(located(&text, "at most 366d"), at("length", 5, 10));
        assert!(parse(&MINIMAL.replace("\"1d\"", "\"366d\""), "t").is_ok());
        let text = MINIMAL.replace("\"1d\"", "\"1 d\"");
        assert_eq!(located(&text, "unknown unit \" d\""), at("length", 5, 10));
        let text = top("tick = \"2d\"");
        assert_eq!(located(&text, "at most length (1d)"), at("tick", 4, 8));
        let text = top("tick = \"0ms\"");
        assert_eq!(located(&text, "more than 0"), at("tick", 4, 8));
        // The default tick shrinks to a run shorter than it.
        let short = parse(&MINIMAL.replace("\"1d\"", "\"90s\""), "t").unwrap();
        assert_eq!(short.tick_ms, 90_000);
    }

    #[test]
    fn quality_and_reconciliation_are_checked() {
        let text = with(
            "[quality]\nimpaired_share = 1.01\n[reconciliation]\ndeadline = \"0h\"\ntolerance = \"1.5s\"\n",
        );
        assert_eq!(
            problems(&text),
            [
                at("quality.impaired_share", 11, 18),
                at("reconciliation.deadline", 13, 12),
                at("reconciliation.tolerance", 14, 13),
            ]
        );
    }
}
