//! The configuration file: typed, validated settings for the whole sidecar.
//!
//! A file is read in two stages, as ripgrep does with flags: the YAML text is
//! parsed into a tree that remembers line numbers, then decoded into the
//! types below while every problem is collected (unknown keys, wrong types,
//! bad durations, impossible values), so `check-config` can list them all at
//! once with file, line and key path. `${VAR}` references are expanded from
//! the environment before decoding; a missing variable is a problem too.
//!
//! The types here are the validated form: whatever holds one of them may rely
//! on the invariants stated on each field.

mod parse;
mod tree;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};

pub use parse::{
    ConfigError, ConfigProblem, load_file, load_file_with_env, parse_str, parse_str_with_env,
};

/// The detector types, as written in the `type` key, in the order problems list them.
pub const DETECTOR_TYPES: [&str; 9] = [
    "psi",
    "ks",
    "chi_square",
    "zscore",
    "jensen_shannon",
    "hellinger",
    "wasserstein",
    "quantile_ratio",
    "quantile_slo",
];

/// Default `prometheus.timeout` and `webhooks[].timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default `prometheus.max_response_bytes`: 64 MiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;
/// Default `prometheus.post_threshold_bytes`.
pub const DEFAULT_POST_THRESHOLD_BYTES: usize = 2048;
/// Default `evaluation.interval`.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// Default `evaluation.concurrency`.
pub const DEFAULT_CONCURRENCY: usize = 8;
/// Default `monitors[].window`.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(5 * 60);
/// Default `monitors[].reference`: `{offset: 7d}`.
pub const DEFAULT_REFERENCE_OFFSET: Duration = Duration::from_secs(7 * 24 * 3600);
/// Default `monitors[].min_samples`.
pub const DEFAULT_MIN_SAMPLES: f64 = 100.0;
/// Default `false_alarm_rate` of the hypothesis-test detectors.
pub const DEFAULT_FALSE_ALARM_RATE: f64 = 0.001;
/// Default fixed threshold of `jensen_shannon`, `hellinger` and `wasserstein`.
pub const DEFAULT_DISTANCE_THRESHOLD: f64 = 0.1;
/// Default `webhooks[].cooldown`.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(6 * 3600);
/// Default `webhooks[].max_age`.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// Default `webhooks[].min_backoff`: the wait after the first failed attempt.
pub const DEFAULT_MIN_BACKOFF: Duration = Duration::from_secs(1);
/// Default `webhooks[].max_backoff`: the longest wait between attempts.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(5 * 60);
/// Default `monitors[].alerting.for`: an alert fires on the first drifting evaluation.
pub const DEFAULT_FOR_EVALUATIONS: u32 = 1;
/// Default `monitors[].alerting.resolve_after`: clean evaluations that resolve an alert.
pub const DEFAULT_RESOLVE_AFTER: u32 = 3;
/// Default `monitors[].alerting.repeat_interval`.
pub const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);

/// Default `min_effect` of a hypothesis-test detector type (STATISTICS.md):
/// PSI 0.1, KS D 0.1, a size-free Cramér's V of 0.1 for chi-square, 0.1 sd
/// for zscore (0.2 in STATISTICS.md; lowered on the evidence of
/// `BENCHMARKS.md`).
pub fn default_min_effect(type_name: &str) -> Option<f64> {
    match type_name {
        "psi" | "ks" | "chi_square" => Some(0.1),
        "zscore" => Some(0.1),
        _ => None,
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub prometheus: PrometheusConfig,
    pub evaluation: EvaluationConfig,
    /// At least one monitor; names are unique.
    pub monitors: Vec<MonitorConfig>,
    /// Alert receivers; names are unique.
    pub webhooks: Vec<WebhookConfig>,
    /// A Grafana dashboard users open for a model, for links in alerts;
    /// `var-<label>=<value>` parameters are added per model label. Optional.
    pub grafana_url: Option<url::Url>,
}

/// Where and how to query PromQL.
#[derive(Debug, Clone, PartialEq)]
pub struct PrometheusConfig {
    /// Base URL of any PromQL HTTP API (`/api/v1/query` is appended).
    pub url: url::Url,
    /// Per-request timeout. Default 10s.
    pub timeout: Duration,
    /// Extra request headers, e.g. `X-Scope-OrgID` for Mimir or Cortex.
    pub headers: BTreeMap<String, String>,
    /// File holding a bearer token, read at every request so rotation works.
    pub bearer_token_file: Option<PathBuf>,
    pub basic_auth: Option<BasicAuth>,
    /// Largest response body accepted, in bytes. Default 64 MiB.
    pub max_response_bytes: u64,
    /// Queries longer than this many bytes are sent as a POST form. Default 2048.
    pub post_threshold_bytes: usize,
    /// URL users reach Prometheus at, for links in alerts. Optional.
    pub external_url: Option<url::Url>,
}

impl PrometheusConfig {
    /// `url` with every other setting at its default.
    pub fn new(url: url::Url) -> PrometheusConfig {
        PrometheusConfig {
            url,
            timeout: DEFAULT_TIMEOUT,
            headers: BTreeMap::new(),
            bearer_token_file: None,
            basic_auth: None,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            post_threshold_bytes: DEFAULT_POST_THRESHOLD_BYTES,
            external_url: None,
        }
    }
}

/// HTTP basic authentication. The password comes from a file or inline
/// (inline values normally come from `${VAR}`); it is never logged.
#[derive(Clone, PartialEq)]
pub struct BasicAuth {
    pub username: String,
    pub password: SecretSource,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuth")
            .field("username", &self.username)
            .field("password", &self.password)
            .finish()
    }
}

/// A secret value, inline or read from a file when used. `Debug` redacts it.
#[derive(Clone, PartialEq)]
pub enum SecretSource {
    Inline(String),
    File(PathBuf),
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::Inline(_) => f.write_str("Inline(<redacted>)"),
            SecretSource::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

impl SecretSource {
    /// The secret's value; files are read now and trailing newlines trimmed.
    pub fn resolve(&self) -> std::io::Result<String> {
        match self {
            SecretSource::Inline(value) => Ok(value.clone()),
            SecretSource::File(path) => {
                let text = std::fs::read_to_string(path)?;
                Ok(text.trim_end_matches(['\r', '\n']).to_owned())
            }
        }
    }
}

/// How often and how widely the evaluation loop runs.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluationConfig {
    /// Time between evaluations. Default 30s; at least 1s.
    pub interval: Duration,
    /// Queries in flight at once within a cycle. Default 8; at least 1.
    pub concurrency: usize,
}

/// One monitor: a set of models selected by matchers, their signals and how
/// each signal's current window is compared with its reference.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorConfig {
    /// Unique, non-empty; exported as the `monitor` label.
    pub name: String,
    /// Matchers added to every query, without braces, e.g. `namespace="ml"`.
    /// The file may write them with or without the surrounding braces.
    pub selector: String,
    /// Labels that identify a model; non-empty, no duplicates, no `le`.
    /// Default `[model, version]`.
    pub group_by: Vec<String>,
    /// Length of the current window. Default 5m.
    pub window: Duration,
    pub reference: ReferenceConfig,
    /// Observations needed in each window before a decision. Default 100.
    pub min_samples: f64,
    /// Signals by name (`confidence`, `latency`, ...); at least one.
    pub signals: BTreeMap<String, SignalConfig>,
    /// When alerts of this monitor's models fire, repeat and resolve.
    pub alerting: AlertingConfig,
}

/// The alert lifecycle settings of a monitor (`monitors[].alerting`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertingConfig {
    /// Consecutive drifting evaluations before an alert fires (`for`); >= 1, default 1.
    pub for_evaluations: u32,
    /// Consecutive clean evaluations (or evaluations where the model is
    /// absent) before a firing alert resolves; >= 1, default 3.
    pub resolve_after: u32,
    /// Time between repeat notifications while an alert fires; > 0, default 4h.
    pub repeat_interval: Duration,
}

impl Default for AlertingConfig {
    fn default() -> Self {
        AlertingConfig {
            for_evaluations: DEFAULT_FOR_EVALUATIONS,
            resolve_after: DEFAULT_RESOLVE_AFTER,
            repeat_interval: DEFAULT_REPEAT_INTERVAL,
        }
    }
}

/// What the current window is compared with.
#[derive(Debug, Clone, PartialEq)]
pub enum ReferenceConfig {
    /// The same window length, this long ago (PromQL `offset`).
    Offset(Duration),
    /// The span of this length just before the current window.
    Window(Duration),
    /// A fixed span (PromQL `@ end` over `end - start`); `start < end`.
    Range {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
    /// Bucket counts recorded in a file (see [`crate::baseline`]).
    BaselineFile(PathBuf),
}

/// One histogram signal of a model and the detectors run on it.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalConfig {
    /// Metric name of the histogram, without `_bucket`.
    pub histogram: String,
    /// Detectors; their names are unique within the signal.
    pub detectors: Vec<DetectorConfig>,
}

/// One configured detector.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorConfig {
    /// Exported as the `detector` label. Defaults to the type name
    /// (`psi`, `ks`, ...); must be given when one type is used twice.
    pub name: String,
    pub kind: DetectorKind,
}

/// Settings of the hypothesis-test detectors' default rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestRule {
    /// A fixed threshold on the score replaces the default rule when set; >= 0.
    pub threshold: Option<f64>,
    /// Largest p-value called significant; in (0, 1). Default 0.001.
    pub false_alarm_rate: f64,
    /// Smallest effect worth an alert; >= 0. Defaults per type (STATISTICS.md).
    pub min_effect: f64,
}

/// A fixed baseline for the sketch's z-score form `(mean - baseline.mean) / baseline.std`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ZScoreBaseline {
    pub mean: f64,
    /// > 0.
    pub std: f64,
}

/// The detector types and their parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum DetectorKind {
    Psi(TestRule),
    Ks(TestRule),
    ChiSquare(TestRule),
    ZScore {
        rule: TestRule,
        baseline: Option<ZScoreBaseline>,
    },
    /// Fixed threshold in [0, 1]; default 0.1.
    JensenShannon {
        threshold: f64,
    },
    /// Fixed threshold in [0, 1]; default 0.1.
    Hellinger {
        threshold: f64,
    },
    /// Fixed threshold on W1 / sd of the reference; >= 0, default 0.1.
    Wasserstein {
        threshold: f64,
    },
    /// Drift when current quantile / reference quantile >= max_ratio.
    /// quantile in (0, 1); max_ratio > 0.
    QuantileRatio {
        quantile: f64,
        max_ratio: f64,
    },
    /// Breach when the current quantile >= max (in the signal's unit; a
    /// duration such as `250ms` is read as seconds). quantile in (0, 1).
    QuantileSlo {
        quantile: f64,
        max: f64,
    },
}

impl DetectorKind {
    /// The type name as written in the config file.
    pub fn type_name(&self) -> &'static str {
        match self {
            DetectorKind::Psi(_) => "psi",
            DetectorKind::Ks(_) => "ks",
            DetectorKind::ChiSquare(_) => "chi_square",
            DetectorKind::ZScore { .. } => "zscore",
            DetectorKind::JensenShannon { .. } => "jensen_shannon",
            DetectorKind::Hellinger { .. } => "hellinger",
            DetectorKind::Wasserstein { .. } => "wasserstein",
            DetectorKind::QuantileRatio { .. } => "quantile_ratio",
            DetectorKind::QuantileSlo { .. } => "quantile_slo",
        }
    }
}

/// Payload formats of webhook receivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    Slack,
    Alertmanager,
    Template,
}

/// Which alerts a receiver wants: every listed field must match (exact values).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookMatch {
    pub model: Option<String>,
    pub version: Option<String>,
    pub signal: Option<String>,
    pub detector: Option<String>,
    /// `drift` or `performance`.
    pub kind: Option<String>,
}

/// One alert receiver.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookConfig {
    pub name: String,
    pub format: WebhookFormat,
    /// Never logged or shown: it may embed a token (Slack URLs do).
    pub url: SecretSource,
    /// HTTP method; default POST.
    pub method: String,
    pub headers: BTreeMap<String, String>,
    /// Signing secret for Standard Webhooks headers.
    pub secret: Option<SecretSource>,
    pub send_resolved: bool,
    /// Alert kinds it wants: `drift`, `performance`. Default both.
    pub on: Vec<String>,
    pub matcher: WebhookMatch,
    /// One notification per model per cooldown (template receivers). Default 6h.
    pub cooldown: Duration,
    /// minijinja template of the body (template receivers).
    pub body: Option<String>,
    /// Per-attempt timeout. Default 10s.
    pub timeout: Duration,
    /// Give up on a notification this old. Default 24h.
    pub max_age: Duration,
    /// Wait after the first failed attempt; doubles per attempt. Default 1s.
    pub min_backoff: Duration,
    /// Longest wait between attempts; >= `min_backoff`. Default 5m.
    pub max_backoff: Duration,
}
