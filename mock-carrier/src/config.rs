//! The carrier's configuration: a TOML file read strictly, with the key path and the line and
//! column of the first error, then checked as a whole.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use oc_protocol::limits::ServerLimits;
use serde::{Deserialize, Serialize};

use crate::drift::DriftModel;
use crate::profile::Profile;

/// Everything the carrier needs to run; see `carrier.example.toml` for each key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CarrierConfig {
    /// Where the carrier API listens, e.g. `127.0.0.1:8081` (port 0: any free port).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// HTTP worker threads of the carrier API.
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// The seed of every random choice.
    #[serde(default)]
    pub seed: u64,
    /// Where the switch's view of each call comes from.
    #[serde(default)]
    pub calls_from: CallSource,
    /// The largest difference that Teams still counts as `matched` (PROTOCOL.md 3.5).
    #[serde(default = "default_tolerance_ms")]
    pub tolerance_ms: i64,
    /// The reporting deadline after a call's end, simulated ms (PROTOCOL.md 3.4).
    #[serde(default = "default_deadline_ms")]
    pub deadline_ms: i64,
    /// How long `serve` keeps a settled call (its last report accepted, nothing of it pending)
    /// before retiring it from its ledger, ms: its truth stays in the ground truth's counts,
    /// no longer in its list of calls, and its memory is given back. A record of a retired
    /// call that comes again counts as a new call, so this must outlast any correction Teams
    /// may still send. Only `serve` retires calls; an in-process carrier keeps every one.
    /// `serve` also forgets, in each number's history, the changes superseded before this long
    /// ago and before every leg it holds: a call whose connect time is older than that when it
    /// comes is judged on the changes kept.
    #[serde(default = "default_retire_after_ms")]
    pub retire_after_ms: i64,
    /// Where `serve` writes the ground truth on exit; by default
    /// [`DEFAULT_GROUND_TRUTH_FILE`], under the harness's output folder.
    #[serde(default = "default_ground_truth_file")]
    pub ground_truth_file: Option<PathBuf>,
    /// Bounds on request bodies in flight and connections per client address.
    #[serde(default = "default_limits")]
    pub limits: ServerLimits,
    /// The Teams side: base URL and credentials.
    pub teams: TeamsConfig,
    /// The client loop's timing, retries and batching.
    #[serde(default)]
    pub client: ClientConfig,
    /// The misbehaviour profile and its parameters.
    #[serde(default)]
    pub misbehaviour: MisbehaviourConfig,
    /// The drift models, applied in order to every call.
    #[serde(default)]
    pub drift: Vec<DriftModel>,
}

/// Where the switch's view of each call comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallSource {
    /// In a simulation: Teams' CDR, transformed by the drift models.
    #[default]
    Cdrs,
    /// In certification: the legs posted to `POST /oc/v1/test/call-legs`, through the drift
    /// models (an empty list reports them exactly).
    Legs,
}

/// The Teams side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamsConfig {
    /// The Teams API base URL, e.g. `http://127.0.0.1:8080` (paths start with `/oc/v1`).
    pub base_url: String,
    /// The carrier's bearer token.
    pub token: String,
    /// The shared secret of webhook signatures.
    pub webhook_secret: String,
}

/// The client loop's timing, retries and batching. Times are real (wall-clock) ms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientConfig {
    /// How often `serve` runs a poll cycle.
    pub poll_interval_ms: u64,
    /// The longest one request may take, connection included.
    pub request_timeout_ms: u64,
    /// How many times a 5xx or a transport error is retried.
    pub max_retries: u32,
    /// The first retry's backoff; it doubles with each retry.
    pub backoff_ms: u64,
    /// The longest backoff.
    pub max_backoff_ms: u64,
    /// How many 429s in a row one request accepts before giving up until the next cycle.
    pub max_throttled: u32,
    /// The longest `Retry-After` it waits for; a longer one ends the cycle with an error.
    pub max_retry_after_s: u64,
    /// Records per duration report, 1 to 1000.
    pub batch_size: usize,
    /// Idempotency keys are `<key_prefix>-<n>`; by default `mc-<seed in hex>`.
    pub key_prefix: Option<String>,
    /// The most pages one chain of links may have (against a feed that never ends).
    pub max_pages_per_chain: u32,
    /// The `pageSize` asked for when a feed's chain starts without a link, 1 to 1000; Teams'
    /// links carry it on (the carrier never adds paging parameters to a link). `None` asks
    /// for none, and Teams serves its default (500).
    pub page_size: Option<u32>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            poll_interval_ms: 5_000,
            request_timeout_ms: 10_000,
            max_retries: 3,
            backoff_ms: 200,
            max_backoff_ms: 5_000,
            max_throttled: 10,
            max_retry_after_s: 600,
            batch_size: oc_protocol::durations::MAX_RECORDS_PER_REPORT,
            key_prefix: None,
            max_pages_per_chain: 100_000,
            page_size: None,
        }
    }
}

/// The misbehaviour profile and the parameters of the profiles that have some.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MisbehaviourConfig {
    /// `correct`, or the id of the one rule to break.
    pub profile: Profile,
    /// `NUM-ACK`: how long to wait before answering a notification, real ms.
    pub ack_delay_ms: u64,
    /// `DUR-COMPLETE`: which page of each CDR chain to drop (0 is the first).
    pub skip_page_index: u32,
    /// `QUA-FEED`: how many poll cycles read the quality feed before it stops.
    pub quality_full_cycles: u32,
    /// Load tests: the webhook handler stalls for a while at a fixed period (any profile).
    pub webhook_stall: Option<WebhookStall>,
    /// Load tests: at most this many durations reported per second, the rest left for later
    /// cycles (a carrier that cannot keep up); 0 reports everything due.
    pub max_reports_per_second: u32,
}

/// A webhook handler that stalls `pause_ms` out of every `every_ms` of real time, as behind a
/// garbage-collection pause: a notification arriving during a stall is answered when it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookStall {
    /// The period, real ms.
    pub every_ms: u64,
    /// How long each stall lasts, real ms; less than `every_ms`.
    pub pause_ms: u64,
}

impl WebhookStall {
    /// How long a notification arriving at `now_ms` (real time, ms since the epoch) waits.
    pub fn wait_ms(&self, now_ms: u64) -> u64 {
        let phase = now_ms % self.every_ms.max(1);
        self.pause_ms.saturating_sub(phase)
    }
}

impl Default for MisbehaviourConfig {
    fn default() -> Self {
        Self {
            profile: Profile::Correct,
            ack_delay_ms: 6_000,
            skip_page_index: 1,
            quality_full_cycles: 1,
            webhook_stall: None,
            max_reports_per_second: 0,
        }
    }
}

/// Where `serve` writes the ground truth by default: beside the harness's reports
/// (`oc-harness-out/`, ignored by git), not in whatever directory it was started from.
pub const DEFAULT_GROUND_TRUTH_FILE: &str = "oc-harness-out/sandbox/ground-truth.json";

fn default_ground_truth_file() -> Option<PathBuf> {
    Some(PathBuf::from(DEFAULT_GROUND_TRUTH_FILE))
}

/// The carrier's bounds: 2048 connections per address, because in certification the harness
/// (one loopback address) sends up to 1024 webhooks at once besides its probes and leg posts;
/// a body deadline of 10 s, because Teams waits 5 s for an acknowledgement [NUM-ACK], so a
/// body still arriving after 10 s is no webhook Teams could still be waiting on.
pub fn default_limits() -> ServerLimits {
    ServerLimits {
        body_deadline_ms: 10_000,
        ..ServerLimits::with_connections_per_peer(2048)
    }
}

fn default_listen() -> String {
    "127.0.0.1:0".to_owned()
}
fn default_workers() -> usize {
    2
}
fn default_tolerance_ms() -> i64 {
    oc_protocol::reconciliation::DEFAULT_TOLERANCE_MS
}
fn default_deadline_ms() -> i64 {
    oc_protocol::timestamp::DAY_MS
}
fn default_retire_after_ms() -> i64 {
    10 * 60 * 1000
}

/// A configuration that could not be read or is not valid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("failed to read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not TOML, or not of the expected shape.
    #[error("{origin}:{line}:{column}: {key}: {message}")]
    Parse {
        /// The file name (or `<string>`).
        origin: String,
        /// The key path, e.g. `drift[1].probability` (`.` for the document).
        key: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// Read, but some values are out of range.
    #[error("{origin}: {}", problems.iter().map(|(k, m)| format!("{k}: {m}")).collect::<Vec<_>>().join("; "))]
    Invalid {
        /// The file name (or `<string>`).
        origin: String,
        /// Each problem as (key path, message).
        problems: Vec<(String, String)>,
    },
}

impl CarrierConfig {
    /// A configuration with every default, talking to Teams at `base_url`.
    pub fn new(base_url: &str, token: &str, webhook_secret: &str) -> Self {
        Self {
            listen: default_listen(),
            workers: default_workers(),
            seed: 0,
            calls_from: CallSource::default(),
            tolerance_ms: default_tolerance_ms(),
            deadline_ms: default_deadline_ms(),
            retire_after_ms: default_retire_after_ms(),
            ground_truth_file: default_ground_truth_file(),
            limits: default_limits(),
            teams: TeamsConfig {
                base_url: base_url.to_owned(),
                token: token.to_owned(),
                webhook_secret: webhook_secret.to_owned(),
            },
            client: ClientConfig::default(),
            misbehaviour: MisbehaviourConfig::default(),
            drift: Vec::new(),
        }
    }

    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// Reads and checks TOML `text`; `origin` names it in errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let parse_error = |key: String, err: &toml::de::Error| {
            let (line, column) = err
                .span()
                .map_or((1, 1), |span| line_column(text, span.start));
            ConfigError::Parse {
                origin: origin.to_owned(),
                key,
                line,
                column,
                message: err.message().trim().to_owned(),
            }
        };
        let de = toml::Deserializer::parse(text).map_err(|e| parse_error(".".to_owned(), &e))?;
        let config: Self = serde_path_to_error::deserialize(de)
            .map_err(|e| parse_error(e.path().to_string(), e.inner()))?;
        let problems = config.problems();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid {
                origin: origin.to_owned(),
                problems,
            })
        }
    }

    /// Every out-of-range value, as (key path, message).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut push = |key: &str, message: String| out.push((key.to_owned(), message));
        if self.listen.parse::<SocketAddr>().is_err() {
            push(
                "listen",
                format!(
                    "must be an address and port like 127.0.0.1:8081, is {:?}",
                    self.listen
                ),
            );
        }
        if !(1..=64).contains(&self.workers) {
            push(
                "workers",
                format!("must be from 1 to 64, is {}", self.workers),
            );
        }
        for (key, message) in self.limits.problems() {
            push(&format!("limits.{key}"), message);
        }
        if let Some(stall) = self.misbehaviour.webhook_stall
            && (stall.every_ms == 0 || stall.pause_ms >= stall.every_ms)
        {
            push(
                "misbehaviour.webhook_stall",
                format!(
                    "pause_ms must be less than every_ms, and every_ms more than 0; are {} and {}",
                    stall.pause_ms, stall.every_ms
                ),
            );
        }
        if self.tolerance_ms < 0 {
            push(
                "tolerance_ms",
                format!("must be >= 0, is {}", self.tolerance_ms),
            );
        }
        if self.deadline_ms < 1 {
            push(
                "deadline_ms",
                format!("must be >= 1, is {}", self.deadline_ms),
            );
        }
        if self.retire_after_ms < 0 {
            push(
                "retire_after_ms",
                format!("must be >= 0, is {}", self.retire_after_ms),
            );
        }
        match reqwest::Url::parse(&self.teams.base_url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {}
            _ => push(
                "teams.base_url",
                format!(
                    "must be an http or https URL like http://127.0.0.1:8080, is {:?}",
                    self.teams.base_url
                ),
            ),
        }
        if self.teams.token.is_empty() {
            push("teams.token", "must not be empty".to_owned());
        }
        if self.teams.webhook_secret.is_empty() {
            push("teams.webhook_secret", "must not be empty".to_owned());
        }
        let c = &self.client;
        for (key, value) in [
            ("client.poll_interval_ms", c.poll_interval_ms),
            ("client.request_timeout_ms", c.request_timeout_ms),
            ("client.max_backoff_ms", c.max_backoff_ms),
        ] {
            if value < 1 {
                push(key, "must be >= 1".to_owned());
            }
        }
        if !(1..=oc_protocol::durations::MAX_RECORDS_PER_REPORT).contains(&c.batch_size) {
            push(
                "client.batch_size",
                format!("must be from 1 to 1000, is {}", c.batch_size),
            );
        }
        if let Some(size) = c.page_size
            && !(1..=oc_protocol::validate::page_size::MAX).contains(&size)
        {
            push(
                "client.page_size",
                format!("must be from 1 to 1000, is {size}"),
            );
        }
        if let Some(prefix) = &c.key_prefix
            && !(1..=100).contains(&prefix.chars().count())
        {
            push(
                "client.key_prefix",
                "must be 1 to 100 characters".to_owned(),
            );
        }
        if c.max_pages_per_chain < 1 {
            push("client.max_pages_per_chain", "must be >= 1".to_owned());
        }
        for (i, model) in self.drift.iter().enumerate() {
            for (key, message) in model.problems() {
                push(&format!("drift[{i}].{key}"), message);
            }
        }
        out
    }

    /// The prefix of every Idempotency-Key this carrier sends.
    pub fn key_prefix(&self) -> String {
        self.client
            .key_prefix
            .clone()
            .unwrap_or_else(|| format!("mc-{:016x}", self.seed))
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[teams]
base_url = "http://127.0.0.1:8080"
token = "t"
webhook_secret = "s"
"#;

    #[test]
    fn a_minimal_file_gets_every_default() {
        let config = CarrierConfig::from_toml_str(MINIMAL, "min.toml").unwrap();
        assert_eq!(
            config,
            CarrierConfig::new("http://127.0.0.1:8080", "t", "s")
        );
    }

    #[test]
    fn the_example_config_parses_and_lists_every_model() {
        let text = include_str!("../carrier.example.toml");
        let config = CarrierConfig::from_toml_str(text, "carrier.example.toml").unwrap();
        let names: Vec<&str> = config.drift.iter().map(DriftModel::name).collect();
        for name in [
            "offset",
            "round",
            "jitter",
            "late_answer",
            "hung",
            "clock_skew",
            "drop",
            "duplicate",
            "after_deadline",
            "unassigned_number",
        ] {
            assert!(names.contains(&name), "{name} missing from the example");
        }
    }

    #[test]
    fn an_unknown_key_is_located() {
        let text = format!(
            "{MINIMAL}\n[[drift]]\nmodel = \"round\"\nincrement_ms = 6000\nmode = \"up\"\nsteps = 3\n"
        );
        let err = CarrierConfig::from_toml_str(&text, "c.toml").unwrap_err();
        let shown = err.to_string();
        assert!(shown.starts_with("c.toml:"), "{shown}");
        assert!(shown.contains("drift[0]"), "{shown}");
        assert!(shown.contains("steps"), "{shown}");
    }

    #[test]
    fn a_wrong_type_names_its_key_and_line() {
        let text = format!("{MINIMAL}\n[client]\nbatch_size = \"many\"\n");
        match CarrierConfig::from_toml_str(&text, "c.toml").unwrap_err() {
            ConfigError::Parse { key, line, .. } => {
                assert_eq!(key, "client.batch_size");
                assert_eq!(line, 8);
            }
            other => panic!("{other}"),
        }
    }

    #[test]
    fn out_of_range_values_are_all_reported() {
        let text = format!(
            "{MINIMAL}\n[client]\nbatch_size = 5000\npage_size = 0\n\n[misbehaviour]\nprofile = \"NUM-ACK\"\n\n\
             [[drift]]\nmodel = \"drop\"\nprobability = 1.5\n"
        );
        match CarrierConfig::from_toml_str(&text, "c.toml").unwrap_err() {
            ConfigError::Invalid { problems, .. } => {
                let keys: Vec<&str> = problems.iter().map(|(k, _)| k.as_str()).collect();
                assert_eq!(
                    keys,
                    [
                        "client.batch_size",
                        "client.page_size",
                        "drift[0].probability"
                    ]
                );
            }
            other => panic!("{other}"),
        }
    }

    #[test]
    fn a_webhook_stall_waits_out_the_rest_of_its_pause() {
        let text = format!(
            "{MINIMAL}\n[misbehaviour]\nwebhook_stall = {{ every_ms = 10000, pause_ms = 2000 }}\n"
        );
        let config = CarrierConfig::from_toml_str(&text, "c.toml").unwrap();
        let stall = config.misbehaviour.webhook_stall.unwrap();
        assert_eq!(stall.wait_ms(20_000), 2_000);
        assert_eq!(stall.wait_ms(21_500), 500);
        assert_eq!(stall.wait_ms(22_000), 0);
        assert_eq!(stall.wait_ms(29_999), 0);
        let text = text.replace("pause_ms = 2000", "pause_ms = 10000");
        match CarrierConfig::from_toml_str(&text, "c.toml").unwrap_err() {
            ConfigError::Invalid { problems, .. } => {
                assert_eq!(problems[0].0, "misbehaviour.webhook_stall");
            }
            other => panic!("{other}"),
        }
    }

    #[test]
    fn an_unknown_profile_or_model_is_refused() {
        let text = format!("{MINIMAL}\n[misbehaviour]\nprofile = \"CDR-FEED\"\n");
        let shown = CarrierConfig::from_toml_str(&text, "c.toml")
            .unwrap_err()
            .to_string();
        assert!(shown.contains("misbehaviour.profile"), "{shown}");
        let text = format!("{MINIMAL}\n[[drift]]\nmodel = \"teleport\"\n");
        let shown = CarrierConfig::from_toml_str(&text, "c.toml")
            .unwrap_err()
            .to_string();
        assert!(shown.contains("teleport"), "{shown}");
    }
}
