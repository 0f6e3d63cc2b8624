//! The configuration file: typed, validated settings for the whole sidecar.
//!
//! A file is read in two stages, as ripgrep does with flags: the YAML text is
//! parsed into a tree that remembers line numbers, then decoded into the
//! types below while every problem is collected (unknown keys, wrong types,
//! bad durations, impossible values), so `check-config` can list them all at
//! once with file, line and key path. `${VAR}` references are expanded from
//! the environment before decoding; a missing variable is a problem too.
//!
//! The types are the validated form: whatever holds one of them may rely on
//! the invariants stated on each field. Each section has one file holding
//! its types, its defaults (one constant or `Default` each, used everywhere
//! else too) and its decoding: `prometheus`, `evaluation`, `monitor`,
//! `reference`, `alerting`, `detectors`, `webhooks` (with `template`, the
//! language of webhook bodies), and `web`, the separate web config file
//! (`--web.config.file`: TLS and basic auth of the endpoints). Under them,
//! `tree` is the line-numbered YAML,
//! `decode` the generic decoder (problems, sections and their keys),
//! `scalars` the readers of single values, `secret` inline-or-file secrets,
//! `files` the files a config names (checked on disk in a separate pass),
//! `promql` label and metric names and matchers, and `load` the entry points.
//!
//! Conventions of the file format, for every key:
//!
//! - Unknown keys are errors; the message lists the keys allowed there.
//! - A key written with a null value (`timeout:` or `timeout: ~`) is the same
//!   as a key left out: the default applies, or a required key is missing.
//! - String keys accept any non-null scalar (`version: 2` is the string `2`).
//! - `${VAR}` expands in every scalar, keys included; `$$` is a literal `$`,
//!   any other `$` stays as written. A value from the environment is typed
//!   after expansion even when quoted (`concurrency: "${N}"` is a number),
//!   and is always one scalar: it cannot add keys or list items.
//! - Durations are Prometheus style strings (`30s`, `1h30m`, `250ms`).
//! - Relative file paths (`baseline_file`, `bearer_token_file`,
//!   `password_file`, `url_file`, `secret_file`) resolve against the
//!   directory of the config file.
//! - Messages never contain a value that came from the environment or a
//!   secret-bearing key (urls, passwords, secrets, header values).

mod alerting;
mod alertmanagers;
mod decode;
mod detectors;
mod engine;
mod evaluation;
mod exceedance;
mod files;
mod load;
mod monitor;
mod prometheus;
mod promql;
mod reference;
mod scalars;
mod secret;
mod signals;
mod template;
mod tree;
mod web;
mod webhooks;

use self::decode::Decoder;
use self::tree::{Kind, Node};

pub use alerting::{
    AlertingConfig, DEFAULT_FOR_EVALUATIONS, DEFAULT_REPEAT_INTERVAL, DEFAULT_RESOLVE_AFTER,
};
pub use alertmanagers::{
    ALERTMANAGER_ALERT_LABELS, AlertmanagersConfig, DEFAULT_QUEUE_CAPACITY, DEFAULT_RESEND_INTERVAL,
};
pub use decode::{ConfigError, ConfigProblem};
pub use decode::{FileRead, FileReference};
pub use detectors::{
    DEFAULT_ACCURACY_DROP_MIN_EFFECT, DEFAULT_CHI_SQUARE_MIN_EFFECT, DEFAULT_DISTANCE_THRESHOLD,
    DEFAULT_FALSE_ALARM_RATE, DEFAULT_KS_MIN_EFFECT, DEFAULT_PSI_MIN_EFFECT,
    DEFAULT_ZSCORE_MIN_EFFECT, DETECTOR_TYPES, DetectorConfig, DetectorKind, TestRule,
    ZScoreBaseline,
};
pub use engine::{FLAVORS, Flavor, REMOTE_WRITE_QUERY_OFFSET, VICTORIAMETRICS_QUERY_OFFSET};
pub use evaluation::{DEFAULT_CONCURRENCY, DEFAULT_INTERVAL, EvaluationConfig};
pub use exceedance::{DEFAULT_EXCEEDANCE_MIN_EFFECT, DEFAULT_EXCEEDANCE_QUANTILE};
pub use files::{FileCheck, check_file_references, check_files};
pub use load::{load_file, load_file_with_env, parse_str, parse_str_with_env};
pub use monitor::{
    DEFAULT_GROUP_BY, DEFAULT_MIN_SAMPLES, DEFAULT_WINDOW, MonitorConfig, default_group_by,
};
pub use prometheus::{
    BasicAuth, DEFAULT_MAX_MODELS, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_MAX_SERIES,
    DEFAULT_POST_THRESHOLD_BYTES, DEFAULT_TIMEOUT, PrometheusConfig,
};
pub use reference::{
    DEFAULT_REFERENCE_OFFSET, DEFAULT_WINDOW_REFRESH_DIVISOR, MAX_DEFAULT_REFRESH, ReferenceConfig,
    ReferenceRefresh,
};
pub use secret::SecretSource;
pub use signals::{
    CLASS_DETECTOR_TYPES, CONFIDENCE_SIGNAL, CorrectHistogram, DEFAULT_LABELS_DELAY, SignalConfig,
    SignalKind,
};
pub use template::{Template, TemplateAlert, TemplateContext, check_template};
pub use web::{
    ALLOWED_HEADERS, BasicAuthUsers, CLIENT_AUTH_TYPES, CURVES, ClientAuth, Pem, RateLimit,
    TLS12_CIPHER_SUITES, TlsServerConfig, WebConfig, load_web_config, parse_web_config,
};
pub use webhooks::{
    DEFAULT_COOLDOWN, DEFAULT_MAX_AGE, DEFAULT_MAX_BACKOFF, DEFAULT_METHOD, DEFAULT_MIN_BACKOFF,
    WebhookConfig, WebhookFormat, WebhookMatch,
};

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
    /// Every file the config names, with its line, for [`check_files`].
    pub files: Vec<FileReference>,
    /// Where the sidecar pushes its own alerts (Alertmanager API v2).
    /// Optional.
    pub alertmanagers: Option<AlertmanagersConfig>,
}

impl Decoder<'_> {
    /// The top level of the file.
    fn config(&mut self, root: Option<&Node>) -> Option<Config> {
        let Some(root) = root else {
            self.report(
                1,
                "",
                "the file is empty: prometheus and monitors are required",
            );
            return None;
        };
        if !matches!(root.kind, Kind::Mapping(_)) {
            self.report(
                root.line,
                "",
                format!(
                    "expected a mapping of prometheus, evaluation, monitors, webhooks, got {}",
                    root.kind_name()
                ),
            );
            return None;
        }
        self.section(root, "", |d, fields| {
            let prometheus = d.required(fields, "prometheus", Self::prometheus);
            let evaluation = d.optional(
                fields,
                "evaluation",
                EvaluationConfig::default(),
                Self::evaluation,
            );
            let monitors = d.required(fields, "monitors", Self::monitors);
            let webhooks = d.optional(fields, "webhooks", Vec::new(), Self::webhooks);
            let grafana_url =
                d.optional(fields, "grafana_url", None, |d, n, p| d.url(n, p).map(Some));
            let alertmanagers = d.optional(fields, "alertmanagers", None, Self::alertmanagers);
            Some(Config {
                prometheus: prometheus?,
                evaluation: evaluation?,
                monitors: monitors?,
                webhooks: webhooks?,
                grafana_url: grafana_url?,
                files: Vec::new(),
                alertmanagers: alertmanagers?,
            })
        })
    }
}

#[cfg(test)]
mod tests;
