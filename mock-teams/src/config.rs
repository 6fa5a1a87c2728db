//! The `mock-teams serve` configuration file (TOML): where to listen (and with which TLS
//! certificate), the carriers with their tokens and webhooks, the store's settings, faults, the
//! rate limit, and the sandbox's background traffic.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use oc_protocol::{UnixMillis, parse_timestamp};
use serde::Deserialize;

use crate::faults::FaultSettings;
use crate::ratelimit::RateLimit;
use crate::traffic::TrafficSettings;

/// The whole file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// Where the Teams API listens, e.g. `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// The base URL of issued links, when the server is reached by another name.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Without `public_url`, build links from the request's `Forwarded`, `X-Forwarded-Host`
    /// and `Host` headers rather than from the bound address (only behind a proxy that sets
    /// them). Default false.
    #[serde(default)]
    pub trust_forwarded_headers: bool,
    /// Bounds on request bodies in flight and connections per client address.
    #[serde(default)]
    pub limits: oc_protocol::limits::ServerLimits,
    /// Seeds every random choice (ids, faults, traffic).
    #[serde(default)]
    pub seed: u64,
    /// Where simulated time starts (RFC 3339, `Z`, milliseconds); default: now.
    #[serde(default)]
    pub start_time: Option<String>,
    /// HTTP worker threads.
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// Serve HTTPS with this certificate; plain HTTP when absent.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Answer 429 to a caller that sends faster than this; no limit when absent.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// Reconciliation settings.
    #[serde(default)]
    pub reconciliation: ReconciliationConfig,
    /// The carriers allowed to call.
    pub carriers: Vec<CarrierConfig>,
    /// Faults to inject.
    #[serde(default)]
    pub faults: FaultSettings,
    /// Background traffic for a sandbox; none when absent.
    #[serde(default)]
    pub traffic: Option<TrafficSettings>,
}

fn default_workers() -> usize {
    2
}

/// `[reconciliation]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReconciliationConfig {
    /// The largest difference that still counts as `matched`, ms.
    pub tolerance_ms: i64,
    /// Reports later than this after a call's end are `late`, ms of simulated time.
    pub reporting_deadline_ms: i64,
}

impl Default for ReconciliationConfig {
    fn default() -> Self {
        let s = crate::store::StoreSettings::default();
        Self {
            tolerance_ms: s.tolerance_ms,
            reporting_deadline_ms: s.reporting_deadline_ms,
        }
    }
}

/// `[tls]`: PEM files, relative to the working directory unless absolute.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, the server's own certificate first.
    pub cert: PathBuf,
    /// Its private key (PKCS#8, RSA or SEC1).
    pub key: PathBuf,
}

impl TlsConfig {
    /// The files as [`crate::TeamsOptions::tls`] takes them.
    pub fn files(&self) -> crate::TlsFiles {
        crate::TlsFiles {
            cert_chain: self.cert.clone(),
            private_key: self.key.clone(),
        }
    }
}

/// `[[carriers]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CarrierConfig {
    /// A short name.
    pub id: String,
    /// Its bearer token.
    pub token: String,
    /// The URL of its `POST /oc/v1/notifications/number-assignments`.
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// The shared secret of `OC-Signature`.
    #[serde(default)]
    pub webhook_secret: Option<String>,
}

/// Why the file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// It could not be read.
    #[error("failed to read {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It is not valid TOML of this shape; the message has the line, column and key.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong, where.
        message: String,
    },
    /// A value is out of range.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl ServeConfig {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and checks configuration text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let de = toml::Deserializer::parse(text).map_err(|e| ConfigError::Parse {
            path: origin.to_owned(),
            message: e.to_string(),
        })?;
        let config: Self = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            ConfigError::Parse {
                path: origin.to_owned(),
                message: format!("at key `{key}`: {}", e.into_inner()),
            }
        })?;
        config.check().map_err(|message| ConfigError::Invalid {
            path: origin.to_owned(),
            message,
        })?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        if self.carriers.is_empty() {
            return Err("at least one [[carriers]] entry is needed".into());
        }
        for (i, c) in self.carriers.iter().enumerate() {
            if c.webhook_url.is_some() != c.webhook_secret.is_some() {
                return Err(format!(
                    "carriers[{i}] ({}): webhook_url and webhook_secret go together",
                    c.id
                ));
            }
        }
        if let Some(start) = &self.start_time {
            parse_timestamp(start).map_err(|e| format!("start_time {e}"))?;
        }
        self.faults.check()?;
        if let Some((key, message)) = self.limits.problems().into_iter().next() {
            return Err(format!("limits.{key} {message}"));
        }
        if let Some(limit) = &self.rate_limit {
            limit.check()?;
        }
        if let Some(traffic) = &self.traffic {
            traffic.check()?;
        }
        Ok(())
    }

    /// The simulated start time, or `now` when the file gives none.
    pub fn start_time_or(&self, now: UnixMillis) -> UnixMillis {
        self.start_time
            .as_deref()
            .and_then(|s| parse_timestamp(s).ok())
            .unwrap_or(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("teams.example.toml");
        let config = ServeConfig::load(&path).unwrap();
        assert_eq!(config.carriers.len(), 1);
        assert!(config.traffic.is_some());
    }

    #[test]
    fn tls_and_the_rate_limit_are_read() {
        let config = ServeConfig::parse(
            "listen = \"127.0.0.1:0\"\n[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n\
             [rate_limit]\nrequests_per_second = 50\nburst = 100\n\
             [[carriers]]\nid = \"a\"\ntoken = \"t\"\n",
            "x.toml",
        )
        .unwrap();
        let tls = config.tls.unwrap().files();
        assert_eq!(tls.cert_chain, Path::new("c.pem"));
        assert_eq!(tls.private_key, Path::new("k.pem"));
        assert_eq!(
            config.rate_limit,
            Some(RateLimit {
                requests_per_second: 50,
                burst: 100
            })
        );
        let err = ServeConfig::parse(
            "listen = \"127.0.0.1:0\"\n[tls]\ncert = \"c.pem\"\n[[carriers]]\nid = \"a\"\ntoken = \"t\"\n",
            "x.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("key"), "{err}");
        let err = ServeConfig::parse(
            "listen = \"127.0.0.1:0\"\n[rate_limit]\nrequests_per_second = 0\nburst = 1\n\
             [[carriers]]\nid = \"a\"\ntoken = \"t\"\n",
            "x.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("requests_per_second"), "{err}");
    }

    #[test]
    fn unknown_keys_name_their_path_and_line() {
        let err = ServeConfig::parse(
            "listen = \"127.0.0.1:0\"\n[[carriers]]\nid = \"a\"\ntoken = \"t\"\ncolour = \"red\"\n",
            "x.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("x.toml"), "{err}");
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn half_a_webhook_is_refused() {
        let err = ServeConfig::parse(
            "listen = \"127.0.0.1:0\"\n[[carriers]]\nid = \"a\"\ntoken = \"t\"\nwebhook_url = \"http://x\"\n",
            "x.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("webhook_url and webhook_secret go together"),
            "{err}"
        );
    }
}
