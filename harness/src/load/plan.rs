//! Load plans (`scenarios/load/*.toml`): the executors with their stages, the phases of trouble,
//! the thresholds and the metrics interval, read strictly with every problem located as
//! `FILE:LINE:COLUMN: key.path: message`, by the scenario loader's own machinery.

use std::path::Path;

use serde::Deserialize;

use super::thresholds::{Threshold, parse_threshold};
use crate::scenario::ScenarioError;
use crate::scenario::convert::{Finding, Findings};
use crate::scenario::duration::RawDuration;

/// The most events one notification carries (PROTOCOL.md 2.1).
const MAX_EVENTS_PER_NOTIFICATION: u32 = oc_protocol::numbers::MAX_EVENTS_PER_NOTIFICATION as u32;
/// The longest plan: a day of real time is longer than any CI job.
const MAX_LENGTH_MS: i64 = oc_protocol::timestamp::DAY_MS;

/// A load plan, read and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadPlan {
    /// Lower-case letters, digits and dashes.
    pub name: String,
    /// What it shows.
    pub description: String,
    /// The seed of every random choice (numbers, call lengths).
    pub seed: u64,
    /// How often metrics are written, ms.
    pub interval_ms: i64,
    /// Numbers the number-events executor assigns, updates and unassigns.
    pub numbers: u32,
    /// Numbers calls are placed on, assigned before the load starts and never changed.
    pub call_numbers: u32,
    /// The first number of the inventory (E.164 digits); the others follow it.
    pub first_number: u64,
    /// Iterations in flight at once, per executor; one more is a dropped iteration.
    pub max_in_flight: u32,
    /// How late an iteration may start before it counts as dropped, ms.
    pub start_slack_ms: i64,
    /// The carrier's reporting deadline after a call's end, ms.
    pub reporting_deadline_ms: i64,
    /// How long after the last iteration the carrier may take to report, ms.
    pub catch_up_ms: i64,
    /// How long Teams keeps a call's books open after its report (or its deadline), ms: then
    /// it closes the call and keeps only totals.
    pub close_hold_ms: i64,
    /// Number-assignment events per second.
    pub number_events: Option<NumberEvents>,
    /// Calls per second.
    pub calls: Option<Calls>,
    /// Phases of trouble, in time order.
    pub phases: Vec<Phase>,
    /// Every threshold, in file order.
    pub thresholds: Vec<Threshold>,
    /// Stop the load once a threshold was breached for this long, ms.
    pub abort_after_ms: Option<i64>,
}

/// Rates over time, k6's `ramping-arrival-rate`: from `start_rate`, each stage ramps linearly
/// to its target over its duration.
#[derive(Debug, Clone, PartialEq)]
pub struct Stages {
    /// The rate at the start, per second.
    pub start_rate: f64,
    /// Each stage: its length in ms and the rate at its end, per second.
    pub stages: Vec<Stage>,
}

/// One stage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    /// How long it lasts, ms.
    pub duration_ms: i64,
    /// The rate at its end, per second.
    pub target: f64,
}

impl Stages {
    /// How long all stages last, ms.
    pub fn length_ms(&self) -> i64 {
        self.stages.iter().map(|s| s.duration_ms).sum()
    }

    /// The target rate at `at_ms` from the start, per second.
    pub fn rate_at(&self, at_ms: i64) -> f64 {
        let mut from = self.start_rate;
        let mut begin = 0;
        for stage in &self.stages {
            if at_ms < begin + stage.duration_ms {
                let done = (at_ms - begin) as f64 / stage.duration_ms as f64;
                return from + (stage.target - from) * done;
            }
            from = stage.target;
            begin += stage.duration_ms;
        }
        0.0
    }
}

/// The number-events executor: events per second, sent as signed notifications.
#[derive(Debug, Clone, PartialEq)]
pub struct NumberEvents {
    /// Events per second over time.
    pub stages: Stages,
    /// Events in one notification, 1 to 100: an iteration is one notification.
    pub events_per_notification: u32,
}

/// The calls executor: calls per second, each ending at its intended time, its CDR and quality
/// records published on Teams' feeds and its leg posted to the carrier's hook.
#[derive(Debug, Clone, PartialEq)]
pub struct Calls {
    /// Calls per second over time.
    pub stages: Stages,
    /// The shortest call, ms.
    pub min_duration_ms: i64,
    /// The longest call, ms.
    pub max_duration_ms: i64,
    /// How long after its end a call's records enter the feeds, ms.
    pub availability_delay_ms: i64,
}

/// A phase of trouble.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    /// What goes wrong.
    pub kind: PhaseKind,
    /// When it starts, ms from the start.
    pub at_ms: i64,
    /// How long it lasts, ms.
    pub duration_ms: i64,
    /// How long after it the carrier may take to catch up, ms: latency thresholds do not
    /// judge the phase and this allowance.
    pub catch_up_ms: i64,
}

impl Phase {
    /// When latency thresholds judge again, ms from the start.
    pub fn excused_until_ms(&self) -> i64 {
        self.at_ms + self.duration_ms + self.catch_up_ms
    }
}

/// What goes wrong in a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseKind {
    /// The Teams API answers `503` with `Retry-After` to everything the carrier asks.
    TeamsOutage,
}

impl PhaseKind {
    /// As the plan writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TeamsOutage => "teams_outage",
        }
    }
}

impl LoadPlan {
    /// How long the load lasts: the longest executor, ms.
    pub fn length_ms(&self) -> i64 {
        let events = self
            .number_events
            .as_ref()
            .map_or(0, |e| e.stages.length_ms());
        let calls = self.calls.as_ref().map_or(0, |c| c.stages.length_ms());
        events.max(calls)
    }

    /// Whether `at_ms` falls in a phase or its catch-up allowance.
    pub fn excused(&self, at_ms: i64) -> bool {
        self.phases
            .iter()
            .any(|p| at_ms >= p.at_ms && at_ms < p.excused_until_ms())
    }
}

/// One line on what a plan does, for `oc-harness scenario check`.
pub fn summary(plan: &LoadPlan) -> String {
    let peak = |s: &Stages| {
        s.stages
            .iter()
            .map(|st| st.target)
            .fold(s.start_rate, f64::max)
    };
    let mut parts = vec![format!(
        "{} — load plan, {} of load",
        plan.name,
        crate::scenario::format_duration(plan.length_ms())
    )];
    if let Some(e) = &plan.number_events {
        parts.push(format!(
            "number events up to {}/s in notifications of {} over {} numbers",
            peak(&e.stages),
            e.events_per_notification,
            plan.numbers
        ));
    }
    if let Some(c) = &plan.calls {
        parts.push(format!(
            "calls up to {}/s on {} numbers",
            peak(&c.stages),
            plan.call_numbers
        ));
    }
    parts.push(format!(
        "{} phase(s), {} threshold(s), metrics every {}",
        plan.phases.len(),
        plan.thresholds.len(),
        crate::scenario::format_duration(plan.interval_ms)
    ));
    parts.join("; ")
}

/// Reads and checks the plan at `path`.
pub fn load(path: &Path) -> Result<LoadPlan, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text, &path.display().to_string())
}

/// Reads and checks plan TOML `text`; `origin` names it in error messages.
pub fn parse(text: &str, origin: &str) -> Result<LoadPlan, ScenarioError> {
    crate::scenario::load::parse_with(text, origin, convert)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan {
    name: String,
    description: String,
    seed: u64,
    interval: Option<RawDuration>,
    numbers: Option<u32>,
    call_numbers: Option<u32>,
    first_number: Option<String>,
    max_in_flight: Option<u32>,
    start_slack: Option<RawDuration>,
    reporting_deadline: Option<RawDuration>,
    catch_up: Option<RawDuration>,
    close_hold: Option<RawDuration>,
    executors: RawExecutors,
    #[serde(default)]
    phases: Vec<RawPhase>,
    #[serde(default)]
    thresholds: Vec<String>,
    abort_on_fail: Option<RawAbort>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExecutors {
    number_events: Option<RawNumberEvents>,
    calls: Option<RawCalls>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStage {
    duration: RawDuration,
    target: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNumberEvents {
    start_rate: Option<f64>,
    stages: Vec<RawStage>,
    events_per_notification: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCalls {
    start_rate: Option<f64>,
    stages: Vec<RawStage>,
    min_duration: Option<RawDuration>,
    max_duration: Option<RawDuration>,
    availability_delay: Option<RawDuration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPhase {
    kind: PhaseKind,
    at: RawDuration,
    duration: RawDuration,
    catch_up: Option<RawDuration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAbort {
    after: RawDuration,
}

fn convert(raw: RawPlan) -> Result<LoadPlan, Vec<Finding>> {
    let mut f = Findings::default();
    if raw.name.is_empty()
        || !raw
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        f.push(
            "name",
            format!(
                "must be lower-case letters, digits and dashes, got {:?}",
                raw.name
            ),
        );
    }
    let interval_ms = f
        .positive_duration("interval", raw.interval.as_ref(), 10_000)
        .unwrap_or(10_000);
    let numbers = raw.numbers.unwrap_or(100);
    let call_numbers = raw.call_numbers.unwrap_or(100);
    let first = raw.first_number.as_deref().unwrap_or("+14255500000");
    let first_number = match first.strip_prefix('+').map(str::parse::<u64>) {
        Some(Ok(n)) if (8..=15).contains(&first.len()) => n,
        _ => {
            f.push(
                "first_number",
                format!("must be an E.164 number like \"+14255500000\", got {first:?}"),
            );
            0
        }
    };
    let total = u64::from(numbers) + u64::from(call_numbers);
    if first_number.to_string().len() != (first_number + total).to_string().len() {
        f.push(
            "first_number",
            format!("leaves no room for {total} numbers after it"),
        );
    }
    let max_in_flight = raw.max_in_flight.unwrap_or(1024);
    if max_in_flight == 0 {
        f.push("max_in_flight", "must be at least 1, got 0");
    }
    let start_slack_ms = f
        .duration("start_slack", raw.start_slack.as_ref(), 100)
        .unwrap_or(100);
    let reporting_deadline_ms = f
        .positive_duration(
            "reporting_deadline",
            raw.reporting_deadline.as_ref(),
            60_000,
        )
        .unwrap_or(60_000);
    let catch_up_ms = f
        .duration("catch_up", raw.catch_up.as_ref(), 60_000)
        .unwrap_or(60_000);
    let close_hold_ms = f
        .duration("close_hold", raw.close_hold.as_ref(), 30_000)
        .unwrap_or(30_000);
    let number_events = raw.executors.number_events.map(|e| {
        let per = e.events_per_notification.unwrap_or(1);
        if !(1..=MAX_EVENTS_PER_NOTIFICATION).contains(&per) {
            f.push(
                "executors.number_events.events_per_notification",
                format!("must be from 1 to {MAX_EVENTS_PER_NOTIFICATION}, got {per}"),
            );
        }
        if numbers == 0 {
            f.push_at(
                "numbers",
                "executors.number_events",
                "must be at least 1 when executors.number_events is given",
            );
        }
        NumberEvents {
            stages: stages("executors.number_events", e.start_rate, &e.stages, &mut f),
            events_per_notification: per.clamp(1, MAX_EVENTS_PER_NOTIFICATION),
        }
    });
    let calls = raw.executors.calls.map(|c| {
        let key = "executors.calls";
        let min = f
            .positive_duration(
                &format!("{key}.min_duration"),
                c.min_duration.as_ref(),
                30_000,
            )
            .unwrap_or(30_000);
        let max = f
            .positive_duration(
                &format!("{key}.max_duration"),
                c.max_duration.as_ref(),
                180_000,
            )
            .unwrap_or(180_000);
        if max < min {
            f.push(
                format!("{key}.max_duration"),
                "must be at least min_duration",
            );
        }
        let delay = f
            .duration(
                &format!("{key}.availability_delay"),
                c.availability_delay.as_ref(),
                2_000,
            )
            .unwrap_or(2_000);
        if call_numbers == 0 {
            f.push_at(
                "call_numbers",
                key,
                "must be at least 1 when executors.calls is given",
            );
        }
        Calls {
            stages: stages(key, c.start_rate, &c.stages, &mut f),
            min_duration_ms: min,
            max_duration_ms: max.max(min),
            availability_delay_ms: delay,
        }
    });
    if number_events.is_none() && calls.is_none() {
        f.push(
            "executors",
            "needs at least one of [executors.number_events] and [executors.calls]",
        );
    }
    let mut phases = Vec::new();
    for (i, p) in raw.phases.iter().enumerate() {
        let key = format!("phases[{i}]");
        let at_ms = f.duration(&format!("{key}.at"), Some(&p.at), 0);
        let duration_ms = f.positive_duration(&format!("{key}.duration"), Some(&p.duration), 1);
        let catch_up_ms = f.duration(&format!("{key}.catch_up"), p.catch_up.as_ref(), 60_000);
        if let (Some(at_ms), Some(duration_ms), Some(catch_up_ms)) =
            (at_ms, duration_ms, catch_up_ms)
        {
            if let Some(last) = phases.last().map(Phase::excused_until_ms)
                && at_ms < last
            {
                f.push(
                    format!("{key}.at"),
                    "must come after the previous phase and its catch-up",
                );
            }
            phases.push(Phase {
                kind: p.kind,
                at_ms,
                duration_ms,
                catch_up_ms,
            });
        }
    }
    let mut thresholds = Vec::new();
    for (i, text) in raw.thresholds.iter().enumerate() {
        match parse_threshold(text) {
            Ok(t) => thresholds.push(t),
            Err(message) => f.push(format!("thresholds[{i}]"), message),
        }
    }
    let abort_after_ms = raw
        .abort_on_fail
        .as_ref()
        .and_then(|a| f.positive_duration("abort_on_fail.after", Some(&a.after), 1));
    let plan = LoadPlan {
        name: raw.name,
        description: raw.description,
        seed: raw.seed,
        interval_ms,
        numbers,
        call_numbers,
        first_number,
        max_in_flight: max_in_flight.max(1),
        start_slack_ms,
        reporting_deadline_ms,
        catch_up_ms,
        close_hold_ms,
        number_events,
        calls,
        phases,
        thresholds,
        abort_after_ms,
    };
    let length = plan.length_ms();
    if length > MAX_LENGTH_MS {
        f.push(
            "executors",
            format!(
                "the stages last {}, longer than the longest plan (1d)",
                crate::scenario::format_duration(length)
            ),
        );
    }
    for (i, p) in plan.phases.iter().enumerate() {
        if p.at_ms >= length {
            f.push(
                format!("phases[{i}].at"),
                format!(
                    "must fall within the load, which lasts {}",
                    crate::scenario::format_duration(length)
                ),
            );
        }
    }
    if f.items.is_empty() {
        Ok(plan)
    } else {
        Err(f.items)
    }
}

/// An executor's stages, each checked.
fn stages(key: &str, start_rate: Option<f64>, raw: &[RawStage], f: &mut Findings) -> Stages {
    let start_rate = f.non_negative(&format!("{key}.start_rate"), start_rate, 0.0);
    if raw.is_empty() {
        f.push(
            format!("{key}.stages"),
            "needs at least one stage, e.g. [{ duration = \"1m\", target = 10 }]",
        );
    }
    let stages = raw
        .iter()
        .enumerate()
        .map(|(i, s)| Stage {
            duration_ms: f
                .positive_duration(&format!("{key}.stages[{i}].duration"), Some(&s.duration), 1)
                .unwrap_or(1),
            target: f.non_negative(&format!("{key}.stages[{i}].target"), Some(s.target), 0.0),
        })
        .collect();
    Stages { start_rate, stages }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAN: &str = r#"name = "t"
description = "a test"
seed = 7
interval = "1s"

[executors.calls]
stages = [{ duration = "10s", target = 5 }]
"#;

    fn problems(text: &str) -> Vec<(String, usize, usize, String)> {
        match parse(text, "p.toml") {
            Ok(p) => panic!("loaded: {p:?}"),
            Err(e) => e
                .problems()
                .iter()
                .map(|p| (p.key_path.clone(), p.line, p.column, p.message.clone()))
                .collect(),
        }
    }

    #[test]
    fn a_minimal_plan_gets_its_defaults() {
        let plan = parse(PLAN, "p.toml").unwrap();
        assert_eq!(plan.interval_ms, 1_000);
        assert_eq!(plan.length_ms(), 10_000);
        assert_eq!(plan.max_in_flight, 1024);
        let calls = plan.calls.unwrap();
        assert_eq!(
            (calls.min_duration_ms, calls.max_duration_ms),
            (30_000, 180_000)
        );
        assert!(plan.number_events.is_none());
        assert!(plan.thresholds.is_empty());
    }

    #[test]
    fn a_bad_stage_is_located_at_its_value() {
        let text = PLAN.replace("target = 5", "target = -5");
        let found = problems(&text);
        assert_eq!(found.len(), 1, "{found:?}");
        let (key, line, column, message) = &found[0];
        assert_eq!(
            (key.as_str(), *line, *column),
            ("executors.calls.stages[0].target", 7, 40)
        );
        assert!(message.contains(">= 0"), "{message}");
    }

    #[test]
    fn an_unknown_key_and_a_bad_threshold_are_listed_together() {
        let text = format!(
            "{PLAN}\n[[phases]]\nkind = \"teams_outage\"\nat = \"2s\"\nduration = \"3s\"\n"
        )
        .replace(
            "interval = \"1s\"",
            "interval = \"1s\"\nthresholds = [\"dropped == 0\", \"webhook_ack.p99 < fast\"]\nrate = 3",
        );
        let err = parse(&text, "p.toml").unwrap_err().to_string();
        assert!(
            err.contains("p.toml:6:1: rate: unknown field `rate`"),
            "{err}"
        );
        assert!(err.contains("p.toml:5:31: thresholds[1]: "), "{err}");
    }

    #[test]
    fn an_unknown_phase_kind_is_named_with_the_known_ones() {
        let text =
            format!("{PLAN}\n[[phases]]\nkind = \"flood\"\nat = \"2s\"\nduration = \"3s\"\n");
        let found = problems(&text);
        assert_eq!(found[0].0, "phases[0].kind");
        assert!(found[0].3.contains("teams_outage"), "{found:?}");
    }

    #[test]
    fn a_plan_without_executors_or_with_a_phase_past_its_end_is_refused() {
        let text = PLAN.replace(
            "[executors.calls]\nstages = [{ duration = \"10s\", target = 5 }]",
            "[executors]",
        );
        assert_eq!(problems(&text)[0].0, "executors");
        let text = format!(
            "{PLAN}\n[[phases]]\nkind = \"teams_outage\"\nat = \"20s\"\nduration = \"3s\"\n"
        );
        assert_eq!(problems(&text)[0].0, "phases[0].at");
    }

    #[test]
    fn every_bundled_plan_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/load");
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let plan = load(&path).unwrap_or_else(|e| panic!("{e}"));
                assert!(!plan.thresholds.is_empty(), "{}", path.display());
                names.push(plan.name);
            }
        }
        names.sort();
        assert_eq!(
            names,
            [
                "busy-hour",
                "number-churn",
                "onboarding",
                "one-hour",
                "outage-and-recovery",
                "smoke",
                "three-minutes"
            ]
        );
    }

    #[test]
    fn the_one_hour_plan_places_720_000_calls() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/load");
        let plan = load(&dir.join("one-hour.toml")).unwrap();
        let calls = plan.calls.unwrap();
        let count = super::super::schedule::Arrivals::new(&calls.stages, 1).count();
        assert!((720_000..=720_001).contains(&count), "{count}");
        assert_eq!(plan.close_hold_ms, 30_000, "the default");
    }

    #[test]
    fn the_onboarding_plan_assigns_each_number_once() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/load");
        let plan = load(&dir.join("onboarding.toml")).unwrap();
        let events = plan.number_events.unwrap();
        let per = events.events_per_notification;
        let notifications = super::super::schedule::Arrivals::new(&events.stages, per).count();
        assert_eq!(
            notifications as u64 * u64::from(per),
            u64::from(plan.numbers)
        );
    }

    #[test]
    fn the_rate_ramps_linearly_between_targets() {
        let stages = Stages {
            start_rate: 0.0,
            stages: vec![
                Stage {
                    duration_ms: 10_000,
                    target: 10.0,
                },
                Stage {
                    duration_ms: 10_000,
                    target: 10.0,
                },
            ],
        };
        assert_eq!(stages.rate_at(0), 0.0);
        assert_eq!(stages.rate_at(5_000), 5.0);
        assert_eq!(stages.rate_at(15_000), 10.0);
        assert_eq!(stages.rate_at(20_000), 0.0);
    }
}
