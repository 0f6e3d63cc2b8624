//! Reading, expanding and decoding the YAML file, collecting every problem.
//!
//! Three passes: [`tree::parse`] turns the text into a tree of nodes with
//! lines (a syntax error stops here, with its line); [`tree::expand_tree`]
//! expands `${VAR}` in every scalar; the [`Decoder`] walks the tree into the
//! validated types of [`super`], reporting each problem with file, line, key
//! path and a lower-case message, and carrying on so that one run lists them
//! all.
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

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use saphyr::ScalarOwned;

use super::tree::{self, Kind, Node, Scalar, join};
use super::{
    AlertingConfig, BasicAuth, Config, DEFAULT_CONCURRENCY, DEFAULT_COOLDOWN,
    DEFAULT_DISTANCE_THRESHOLD, DEFAULT_FALSE_ALARM_RATE, DEFAULT_FOR_EVALUATIONS,
    DEFAULT_INTERVAL, DEFAULT_MAX_AGE, DEFAULT_MAX_BACKOFF, DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_MIN_BACKOFF, DEFAULT_MIN_SAMPLES, DEFAULT_POST_THRESHOLD_BYTES,
    DEFAULT_REFERENCE_OFFSET, DEFAULT_REPEAT_INTERVAL, DEFAULT_RESOLVE_AFTER, DEFAULT_TIMEOUT,
    DEFAULT_WINDOW, DETECTOR_TYPES, DetectorConfig, DetectorKind, EvaluationConfig, MonitorConfig,
    PrometheusConfig, ReferenceConfig, SecretSource, SignalConfig, TestRule, WebhookConfig,
    WebhookFormat, WebhookMatch, ZScoreBaseline, default_min_effect,
};
use crate::duration::{DurationError, parse_duration};

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The file, or `<string>` for text parsed from memory.
    pub file: String,
    /// 1-based line, when the problem has a place.
    pub line: Option<usize>,
    /// Key path such as `monitors[0].signals.confidence.detectors[1].type`;
    /// empty for problems of the whole file (YAML syntax, unreadable file).
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem of a config file, ordered by line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} problem(s) in config: {}", problems.len(), problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; "))]
pub struct ConfigError {
    pub problems: Vec<ConfigProblem>,
}

/// The process environment, as `${VAR}` expansion sees it.
fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Reads and validates a config file; `${VAR}` comes from the process environment.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    load_file_with_env(path, &process_env)
}

/// Reads and validates a config file, taking `${VAR}` values from `env`
/// (tests and embedders that must not touch the process environment).
pub fn load_file_with_env(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError {
        problems: vec![ConfigProblem {
            file: file.clone(),
            line: None,
            path: String::new(),
            message: format!("cannot read the file: {error}"),
        }],
    })?;
    let base_dir = path.parent().unwrap_or(Path::new(""));
    parse_in(&text, &file, base_dir, env)
}

/// Validates config text; `file` names it in problems, and relative paths in
/// it resolve against `file`'s directory. `${VAR}` comes from the process
/// environment.
pub fn parse_str(text: &str, file: &str) -> Result<Config, ConfigError> {
    parse_str_with_env(text, file, &process_env)
}

/// [`parse_str`] with `${VAR}` values taken from `env`.
pub fn parse_str_with_env(
    text: &str,
    file: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let base_dir = Path::new(file).parent().unwrap_or(Path::new(""));
    parse_in(text, file, base_dir, env)
}

fn parse_in(
    text: &str,
    file: &str,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let mut decoder = Decoder {
        file,
        base_dir,
        problems: Vec::new(),
    };
    let root = match tree::parse(text) {
        Ok(root) => root,
        Err(error) => {
            decoder.report(error.line, "", format!("invalid yaml: {}", error.message));
            return Err(decoder.into_error());
        }
    };
    let mut root = root;
    if let Some(root) = &mut root {
        let mut expand_problems = Vec::new();
        tree::expand_tree(root, "", env, &mut expand_problems);
        for (line, path, message) in expand_problems {
            decoder.report(line, &path, message);
        }
    }
    let config = decoder.config(root.as_ref());
    match config {
        Some(config) if decoder.problems.is_empty() => Ok(config),
        _ => Err(decoder.into_error()),
    }
}

const TOP_KEYS: &[&str] = &[
    "prometheus",
    "evaluation",
    "monitors",
    "webhooks",
    "grafana_url",
];
const PROMETHEUS_KEYS: &[&str] = &[
    "url",
    "timeout",
    "headers",
    "bearer_token_file",
    "basic_auth",
    "max_response_bytes",
    "post_threshold_bytes",
    "external_url",
];
const BASIC_AUTH_KEYS: &[&str] = &["username", "password", "password_file"];
const EVALUATION_KEYS: &[&str] = &["interval", "concurrency"];
const MONITOR_KEYS: &[&str] = &[
    "name",
    "selector",
    "group_by",
    "window",
    "reference",
    "min_samples",
    "signals",
    "alerting",
];
const ALERTING_KEYS: &[&str] = &["for", "resolve_after", "repeat_interval"];
const REFERENCE_KEYS: &[&str] = &["offset", "window", "range", "baseline_file"];
const RANGE_KEYS: &[&str] = &["start", "end"];
const SIGNAL_KEYS: &[&str] = &["histogram", "detectors"];
const TEST_RULE_KEYS: &[&str] = &[
    "type",
    "name",
    "threshold",
    "false_alarm_rate",
    "min_effect",
];
const ZSCORE_KEYS: &[&str] = &[
    "type",
    "name",
    "threshold",
    "false_alarm_rate",
    "min_effect",
    "baseline",
];
const DISTANCE_KEYS: &[&str] = &["type", "name", "threshold"];
const QUANTILE_RATIO_KEYS: &[&str] = &["type", "name", "quantile", "max_ratio"];
const QUANTILE_SLO_KEYS: &[&str] = &["type", "name", "quantile", "max"];
const ZSCORE_BASELINE_KEYS: &[&str] = &["mean", "std"];
const WEBHOOK_KEYS: &[&str] = &[
    "name",
    "format",
    "url",
    "url_file",
    "method",
    "headers",
    "secret",
    "secret_file",
    "send_resolved",
    "on",
    "match",
    "cooldown",
    "body",
    "timeout",
    "max_age",
    "min_backoff",
    "max_backoff",
];
const MATCH_KEYS: &[&str] = &["model", "version", "signal", "detector", "kind"];
const WEBHOOK_FORMATS: &[&str] = &["slack", "alertmanager", "template"];
const ALERT_KINDS: &[&str] = &["drift", "performance"];
const WEBHOOK_METHODS: &[&str] = &["POST", "PUT", "PATCH"];

/// The keys a detector of this type accepts, `None` for an unknown type.
fn detector_keys(type_name: &str) -> Option<&'static [&'static str]> {
    Some(match type_name {
        "psi" | "ks" | "chi_square" => TEST_RULE_KEYS,
        "zscore" => ZSCORE_KEYS,
        "jensen_shannon" | "hellinger" | "wasserstein" => DISTANCE_KEYS,
        "quantile_ratio" => QUANTILE_RATIO_KEYS,
        "quantile_slo" => QUANTILE_SLO_KEYS,
        _ => return None,
    })
}

/// The known keys of a mapping, first occurrence of each, null values included.
struct Fields<'n> {
    /// Line of the mapping, for keys that are missing from it.
    line: usize,
    path: String,
    entries: Vec<(String, &'n Node, &'n Node)>,
}

impl<'n> Fields<'n> {
    /// The value of a key, `None` when absent or null (the default applies).
    fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(name, _, value)| name == key && !value.is_null())
            .map(|(_, _, value)| *value)
    }

    /// The key's node itself (for its line), when written with a non-null value.
    fn key_node(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(name, _, value)| name == key && !value.is_null())
            .map(|(_, key, _)| *key)
    }

    fn path(&self, key: &str) -> String {
        join(&self.path, key)
    }
}

/// Walks the tree into the validated types, collecting problems.
struct Decoder<'a> {
    file: &'a str,
    base_dir: &'a Path,
    problems: Vec<ConfigProblem>,
}

impl Decoder<'_> {
    fn report(&mut self, line: usize, path: &str, message: impl Into<String>) {
        self.problems.push(ConfigProblem {
            file: self.file.to_owned(),
            line: Some(line),
            path: path.to_owned(),
            message: message.into(),
        });
    }

    fn into_error(mut self) -> ConfigError {
        self.problems.sort_by_key(|problem| problem.line);
        ConfigError {
            problems: self.problems,
        }
    }

    // ----- structure -----

    /// The entries of a mapping with string keys, duplicates reported.
    fn entries<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
    ) -> Option<Vec<(&'n Scalar, &'n Node, &'n Node)>> {
        let Kind::Mapping(pairs) = &node.kind else {
            self.report(
                node.line,
                path,
                format!("expected a mapping, got {}", node.kind_name()),
            );
            return None;
        };
        let mut seen: HashMap<&str, usize> = HashMap::new();
        let mut entries = Vec::new();
        for (key, value) in pairs {
            let Kind::Scalar(scalar) = &key.kind else {
                self.report(
                    key.line,
                    path,
                    format!("keys must be strings, got {}", key.kind_name()),
                );
                continue;
            };
            if scalar.broken {
                continue;
            }
            if let Some(first) = seen.get(scalar.text.as_str()) {
                self.report(
                    key.line,
                    &join(path, &scalar.raw),
                    format!(
                        "duplicate key {} (first on line {first})",
                        scalar.describe()
                    ),
                );
                continue;
            }
            seen.insert(&scalar.text, key.line);
            entries.push((scalar, key, value));
        }
        Some(entries)
    }

    /// A mapping whose keys must come from `allowed`.
    fn fields<'n>(&mut self, node: &'n Node, path: &str, allowed: &[&str]) -> Option<Fields<'n>> {
        self.fields_with(node, path, allowed, |key| {
            format!("unknown key {key}; allowed keys: {}", allowed.join(", "))
        })
    }

    /// [`Decoder::fields`] with a custom message for unknown keys.
    fn fields_with<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        allowed: &[&str],
        unknown: impl Fn(&str) -> String,
    ) -> Option<Fields<'n>> {
        let entries = self.entries(node, path)?;
        let mut fields = Fields {
            line: node.line,
            path: path.to_owned(),
            entries: Vec::new(),
        };
        for (scalar, key, value) in entries {
            if allowed.contains(&scalar.text.as_str()) {
                fields.entries.push((scalar.text.clone(), key, value));
            } else {
                self.report(
                    key.line,
                    &join(path, &scalar.raw),
                    unknown(&scalar.describe()),
                );
            }
        }
        Some(fields)
    }

    /// A key that must be given.
    fn require<'n>(&mut self, fields: &Fields<'n>, key: &str) -> Option<&'n Node> {
        if let Some(value) = fields.get(key) {
            return Some(value);
        }
        match fields.entries.iter().find(|(name, _, _)| name == key) {
            Some((_, key_node, _)) => {
                self.report(key_node.line, &fields.path(key), "missing value")
            }
            None => self.report(fields.line, &fields.path(key), "missing required key"),
        }
        None
    }

    /// Reads an optional key, or gives the default.
    fn optional<'n, T>(
        &mut self,
        fields: &Fields<'n>,
        key: &str,
        default: T,
        read: impl FnOnce(&mut Self, &'n Node, &str) -> Option<T>,
    ) -> Option<T> {
        match fields.get(key) {
            Some(node) => read(self, node, &fields.path(key)),
            None => Some(default),
        }
    }

    /// Reads a required key.
    fn required<'n, T>(
        &mut self,
        fields: &Fields<'n>,
        key: &str,
        read: impl FnOnce(&mut Self, &'n Node, &str) -> Option<T>,
    ) -> Option<T> {
        let node = self.require(fields, key)?;
        read(self, node, &fields.path(key))
    }

    /// The items of a list.
    fn sequence<'n>(&mut self, node: &'n Node, path: &str) -> Option<&'n [Node]> {
        match &node.kind {
            Kind::Sequence(items) => Some(items),
            _ => {
                self.report(
                    node.line,
                    path,
                    format!("expected a list, got {}", node.kind_name()),
                );
                None
            }
        }
    }

    // ----- scalars -----

    /// The scalar of a node; expansion failures were reported already.
    fn scalar<'n>(&mut self, node: &'n Node, path: &str, expected: &str) -> Option<&'n Scalar> {
        match &node.kind {
            Kind::Scalar(scalar) if scalar.broken => None,
            Kind::Scalar(scalar) if !scalar.is_null() => Some(scalar),
            _ => {
                self.report(
                    node.line,
                    path,
                    format!("expected {expected}, got {}", node.kind_name()),
                );
                None
            }
        }
    }

    /// Any non-null scalar, as text.
    fn string(&mut self, node: &Node, path: &str) -> Option<String> {
        self.scalar(node, path, "a string")
            .map(|scalar| scalar.text.clone())
    }

    /// A string that is not empty or blank.
    fn non_empty(&mut self, node: &Node, path: &str) -> Option<String> {
        let text = self.string(node, path)?;
        if text.trim().is_empty() {
            self.report(node.line, path, "must not be empty");
            return None;
        }
        Some(text)
    }

    fn boolean(&mut self, node: &Node, path: &str) -> Option<bool> {
        let scalar = self.scalar(node, path, "true or false")?;
        match scalar.value() {
            Some(ScalarOwned::Boolean(value)) => Some(value),
            _ => {
                self.report(
                    node.line,
                    path,
                    format!("expected true or false, got {}", node.kind_name()),
                );
                None
            }
        }
    }

    fn integer(&mut self, node: &Node, path: &str) -> Option<i64> {
        let scalar = self.scalar(node, path, "an integer")?;
        match scalar.value() {
            Some(ScalarOwned::Integer(value)) => Some(value),
            _ => {
                self.report(
                    node.line,
                    path,
                    format!("expected an integer, got {}", node.kind_name()),
                );
                None
            }
        }
    }

    /// An integer of at least `min`.
    fn integer_at_least(&mut self, node: &Node, path: &str, min: i64) -> Option<i64> {
        let value = self.integer(node, path)?;
        if value < min {
            self.report(
                node.line,
                path,
                format!("must be at least {min}, got {value}"),
            );
            return None;
        }
        Some(value)
    }

    /// A finite number (integer or float).
    fn number(&mut self, node: &Node, path: &str) -> Option<f64> {
        let scalar = self.scalar(node, path, "a number")?;
        let value = match scalar.value() {
            Some(ScalarOwned::Integer(value)) => value as f64,
            Some(ScalarOwned::FloatingPoint(value)) => value.into_inner(),
            _ => {
                self.report(
                    node.line,
                    path,
                    format!("expected a number, got {}", node.kind_name()),
                );
                return None;
            }
        };
        if !value.is_finite() {
            self.report(node.line, path, "must be a finite number");
            return None;
        }
        Some(value)
    }

    /// A number that satisfies `rule`, else the rule's message.
    fn number_where(
        &mut self,
        node: &Node,
        path: &str,
        rule: (fn(f64) -> bool, &str),
    ) -> Option<f64> {
        let value = self.number(node, path)?;
        if !(rule.0)(value) {
            self.report(node.line, path, format!("{}, got {value}", rule.1));
            return None;
        }
        Some(value)
    }

    fn duration(&mut self, node: &Node, path: &str) -> Option<Duration> {
        let scalar = self.scalar(node, path, "a duration such as 30s")?;
        if !matches!(scalar.value(), Some(ScalarOwned::String(_))) {
            self.report(
                node.line,
                path,
                format!(
                    "expected a duration such as 30s, got {} (add a unit: ms, s, m, h, d, w, y)",
                    node.kind_name()
                ),
            );
            return None;
        }
        match parse_duration(&scalar.text) {
            Ok(duration) => Some(duration),
            Err(error) => {
                self.report(node.line, path, duration_message(&error, scalar));
                None
            }
        }
    }

    /// A duration greater than zero.
    fn positive_duration(&mut self, node: &Node, path: &str) -> Option<Duration> {
        let duration = self.duration(node, path)?;
        if duration.is_zero() {
            self.report(node.line, path, "must be greater than 0");
            return None;
        }
        Some(duration)
    }

    /// An http or https URL. The value is never shown: URLs may embed tokens
    /// or passwords.
    fn url(&mut self, node: &Node, path: &str) -> Option<url::Url> {
        let text = self.string(node, path)?;
        match url::Url::parse(text.trim()) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => Some(url),
            Ok(_) => {
                self.report(
                    node.line,
                    path,
                    "invalid url: expected an http or https url with a host",
                );
                None
            }
            Err(error) => {
                self.report(node.line, path, format!("invalid url: {error}"));
                None
            }
        }
    }

    /// A file path; relative paths resolve against the config file's directory.
    fn file_path(&mut self, node: &Node, path: &str) -> Option<PathBuf> {
        let text = self.non_empty(node, path)?;
        Some(self.base_dir.join(text))
    }

    /// A list of strings, each with its node.
    fn string_list<'n>(&mut self, node: &'n Node, path: &str) -> Option<Vec<(String, &'n Node)>> {
        let items = self.sequence(node, path)?;
        let mut values = Vec::new();
        let mut ok = true;
        for (index, item) in items.iter().enumerate() {
            match self.string(item, &format!("{path}[{index}]")) {
                Some(value) => values.push((value, item)),
                None => ok = false,
            }
        }
        ok.then_some(values)
    }

    /// HTTP headers: valid names; values are never shown (they often hold tokens).
    fn headers(&mut self, node: &Node, path: &str) -> Option<BTreeMap<String, String>> {
        let entries = self.entries(node, path)?;
        let mut headers = BTreeMap::new();
        let mut ok = true;
        for (key, key_node, value_node) in entries {
            let value_path = join(path, &key.raw);
            if reqwest::header::HeaderName::from_bytes(key.text.as_bytes()).is_err() {
                self.report(
                    key_node.line,
                    &value_path,
                    format!("invalid header name {}", key.describe()),
                );
                ok = false;
            }
            let Some(value) = self.string(value_node, &value_path) else {
                ok = false;
                continue;
            };
            if reqwest::header::HeaderValue::from_str(&value).is_err() {
                self.report(value_node.line, &value_path, "invalid header value");
                ok = false;
            }
            headers.insert(key.text.clone(), value);
        }
        ok.then_some(headers)
    }

    /// One of a fixed set of words.
    fn choice(&mut self, node: &Node, path: &str, what: &str, valid: &[&str]) -> Option<String> {
        let scalar = self.scalar(node, path, "a string")?;
        if valid.contains(&scalar.text.as_str()) {
            return Some(scalar.text.clone());
        }
        self.report(
            node.line,
            path,
            format!(
                "unknown {what} {}; valid {what}s: {}",
                scalar.describe(),
                valid.join(", ")
            ),
        );
        None
    }

    fn timestamp(&mut self, node: &Node, path: &str) -> Option<DateTime<Utc>> {
        let scalar = self.scalar(node, path, "an RFC 3339 timestamp")?;
        match DateTime::parse_from_rfc3339(scalar.text.trim()) {
            Ok(time) => Some(time.with_timezone(&Utc)),
            Err(error) => {
                self.report(
                    node.line,
                    path,
                    format!(
                        "invalid RFC 3339 timestamp {}: {error} (e.g. 2024-05-01T00:00:00Z)",
                        scalar.describe()
                    ),
                );
                None
            }
        }
    }

    /// Reports list items whose `name` repeats an earlier one; false if any.
    fn unique_names(&mut self, items: &[Node], path: &str, what: &str) -> bool {
        let mut first_line: HashMap<String, usize> = HashMap::new();
        let mut ok = true;
        for (index, item) in items.iter().enumerate() {
            let Some((name, name_node)) = peek(item, "name") else {
                continue;
            };
            match first_line.get(&name) {
                Some(first) => {
                    self.report(
                        name_node.line,
                        &format!("{path}[{index}].name"),
                        format!(
                            "duplicate {what} name {} (first on line {first})",
                            shown(name_node)
                        ),
                    );
                    ok = false;
                }
                None => {
                    first_line.insert(name, name_node.line);
                }
            }
        }
        ok
    }

    // ----- sections -----

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
        let fields = self.fields(root, "", TOP_KEYS)?;
        let prometheus = self.required(&fields, "prometheus", Self::prometheus);
        let evaluation = self.optional(
            &fields,
            "evaluation",
            EvaluationConfig {
                interval: DEFAULT_INTERVAL,
                concurrency: DEFAULT_CONCURRENCY,
            },
            Self::evaluation,
        );
        let monitors = self.required(&fields, "monitors", Self::monitors);
        let webhooks = self.optional(&fields, "webhooks", Vec::new(), Self::webhooks);
        let grafana_url = self.optional(&fields, "grafana_url", None, |d, n, p| {
            d.url(n, p).map(Some)
        });
        Some(Config {
            prometheus: prometheus?,
            evaluation: evaluation?,
            monitors: monitors?,
            webhooks: webhooks?,
            grafana_url: grafana_url?,
        })
    }

    fn prometheus(&mut self, node: &Node, path: &str) -> Option<PrometheusConfig> {
        let fields = self.fields(node, path, PROMETHEUS_KEYS)?;
        let url = self.required(&fields, "url", Self::url);
        let timeout = self.optional(&fields, "timeout", DEFAULT_TIMEOUT, Self::positive_duration);
        let headers = self.optional(&fields, "headers", BTreeMap::new(), Self::headers);
        let bearer_token_file = self.optional(&fields, "bearer_token_file", None, |d, n, p| {
            d.file_path(n, p).map(Some)
        });
        let basic_auth = self.optional(&fields, "basic_auth", None, |d, n, p| {
            d.basic_auth(n, p).map(Some)
        });
        if let (Some(_), Some(key)) = (
            fields.get("bearer_token_file"),
            fields.key_node("basic_auth"),
        ) {
            self.report(
                key.line,
                &fields.path("basic_auth"),
                "set at most one of bearer_token_file and basic_auth",
            );
        }
        let max_response_bytes = self.optional(
            &fields,
            "max_response_bytes",
            DEFAULT_MAX_RESPONSE_BYTES,
            |d, n, p| d.integer_at_least(n, p, 1).map(|v| v as u64),
        );
        let post_threshold_bytes = self.optional(
            &fields,
            "post_threshold_bytes",
            DEFAULT_POST_THRESHOLD_BYTES,
            |d, n, p| d.integer_at_least(n, p, 0).map(|v| v as usize),
        );
        let external_url = self.optional(&fields, "external_url", None, |d, n, p| {
            d.url(n, p).map(Some)
        });
        Some(PrometheusConfig {
            url: url?,
            timeout: timeout?,
            headers: headers?,
            bearer_token_file: bearer_token_file?,
            basic_auth: basic_auth?,
            max_response_bytes: max_response_bytes?,
            post_threshold_bytes: post_threshold_bytes?,
            external_url: external_url?,
        })
    }

    fn basic_auth(&mut self, node: &Node, path: &str) -> Option<BasicAuth> {
        let fields = self.fields(node, path, BASIC_AUTH_KEYS)?;
        let username = self.required(&fields, "username", Self::non_empty);
        let password = self.secret(&fields, "password", "password_file", true);
        Some(BasicAuth {
            username: username?,
            password: password??,
        })
    }

    /// A secret given inline or as a file: at most one of the two keys, and
    /// exactly one when `required`. The inline value is never shown.
    fn secret(
        &mut self,
        fields: &Fields<'_>,
        inline_key: &str,
        file_key: &str,
        required: bool,
    ) -> Option<Option<SecretSource>> {
        match (fields.get(inline_key), fields.get(file_key)) {
            (Some(_), Some(_)) => {
                let line = fields
                    .key_node(file_key)
                    .map_or(fields.line, |key| key.line);
                self.report(
                    line,
                    &fields.path(file_key),
                    format!("set only one of {inline_key} and {file_key}"),
                );
                None
            }
            (Some(node), None) => {
                let value = self.string(node, &fields.path(inline_key))?;
                Some(Some(SecretSource::Inline(value)))
            }
            (None, Some(node)) => {
                let path = self.file_path(node, &fields.path(file_key))?;
                Some(Some(SecretSource::File(path)))
            }
            (None, None) if required => {
                self.report(
                    fields.line,
                    &fields.path(inline_key),
                    format!("missing required key: give one of {inline_key} and {file_key}"),
                );
                None
            }
            (None, None) => Some(None),
        }
    }

    fn evaluation(&mut self, node: &Node, path: &str) -> Option<EvaluationConfig> {
        let fields = self.fields(node, path, EVALUATION_KEYS)?;
        let interval = self.optional(&fields, "interval", DEFAULT_INTERVAL, |d, n, p| {
            let interval = d.duration(n, p)?;
            if interval < Duration::from_secs(1) {
                d.report(n.line, p, "must be at least 1s");
                return None;
            }
            Some(interval)
        });
        let concurrency = self.optional(&fields, "concurrency", DEFAULT_CONCURRENCY, |d, n, p| {
            d.integer_at_least(n, p, 1).map(|v| v as usize)
        });
        Some(EvaluationConfig {
            interval: interval?,
            concurrency: concurrency?,
        })
    }

    fn monitors(&mut self, node: &Node, path: &str) -> Option<Vec<MonitorConfig>> {
        let items = self.sequence(node, path)?;
        if items.is_empty() {
            self.report(node.line, path, "at least one monitor is required");
            return None;
        }
        let mut ok = self.unique_names(items, path, "monitor");
        let mut monitors = Vec::new();
        for (index, item) in items.iter().enumerate() {
            match self.monitor(item, &format!("{path}[{index}]")) {
                Some(monitor) => monitors.push(monitor),
                None => ok = false,
            }
        }
        ok.then_some(monitors)
    }

    fn monitor(&mut self, node: &Node, path: &str) -> Option<MonitorConfig> {
        let fields = self.fields(node, path, MONITOR_KEYS)?;
        let name = self.required(&fields, "name", Self::non_empty);
        let selector = self.optional(&fields, "selector", String::new(), Self::selector);
        let group_by = self.optional(
            &fields,
            "group_by",
            vec!["model".to_owned(), "version".to_owned()],
            Self::group_by,
        );
        let window = self.optional(&fields, "window", DEFAULT_WINDOW, Self::positive_duration);
        let reference = self.optional(
            &fields,
            "reference",
            ReferenceConfig::Offset(DEFAULT_REFERENCE_OFFSET),
            Self::reference,
        );
        let min_samples = self.optional(&fields, "min_samples", DEFAULT_MIN_SAMPLES, |d, n, p| {
            d.number_where(n, p, (|v| v >= 0.0, "must not be negative"))
        });
        let signals = self.required(&fields, "signals", Self::signals);
        let alerting = self.optional(
            &fields,
            "alerting",
            AlertingConfig::default(),
            Self::alerting,
        );
        Some(MonitorConfig {
            name: name?,
            selector: selector?,
            group_by: group_by?,
            window: window?,
            reference: reference?,
            min_samples: min_samples?,
            signals: signals?,
            alerting: alerting?,
        })
    }

    fn alerting(&mut self, node: &Node, path: &str) -> Option<AlertingConfig> {
        let fields = self.fields(node, path, ALERTING_KEYS)?;
        let count = |d: &mut Self, n: &Node, p: &str| {
            d.integer_at_least(n, p, 1).and_then(|v| {
                u32::try_from(v).ok().or_else(|| {
                    d.report(n.line, p, format!("must be at most {}, got {v}", u32::MAX));
                    None
                })
            })
        };
        let for_evaluations = self.optional(&fields, "for", DEFAULT_FOR_EVALUATIONS, count);
        let resolve_after = self.optional(&fields, "resolve_after", DEFAULT_RESOLVE_AFTER, count);
        let repeat_interval = self.optional(
            &fields,
            "repeat_interval",
            DEFAULT_REPEAT_INTERVAL,
            Self::positive_duration,
        );
        Some(AlertingConfig {
            for_evaluations: for_evaluations?,
            resolve_after: resolve_after?,
            repeat_interval: repeat_interval?,
        })
    }

    /// PromQL matchers, with or without braces; stored without.
    fn selector(&mut self, node: &Node, path: &str) -> Option<String> {
        let scalar = self.scalar(
            node,
            path,
            "a string of matchers such as '{namespace=\"ml\"}'",
        )?;
        let text = scalar.text.trim();
        let inner = match (text.strip_prefix('{'), text.ends_with('}')) {
            (Some(rest), true) => rest[..rest.len() - 1].trim(),
            (None, false) => text,
            _ => {
                self.report(node.line, path, "invalid selector: unbalanced braces");
                return None;
            }
        };
        if let Err(message) = check_matchers(inner) {
            self.report(node.line, path, format!("invalid selector: {message}"));
            return None;
        }
        Some(inner.to_owned())
    }

    fn group_by(&mut self, node: &Node, path: &str) -> Option<Vec<String>> {
        let labels = self.string_list(node, path)?;
        if labels.is_empty() {
            self.report(
                node.line,
                path,
                "must not be empty: give the labels that identify a model",
            );
            return None;
        }
        let mut ok = true;
        let mut seen = Vec::new();
        for (index, (label, item)) in labels.iter().enumerate() {
            let item_path = format!("{path}[{index}]");
            if !is_label_name(label) {
                self.report(
                    item.line,
                    &item_path,
                    format!("invalid label name {}", shown(item)),
                );
                ok = false;
            } else if label == "le" {
                self.report(
                    item.line,
                    &item_path,
                    "le cannot be in group_by: it is the bucket label",
                );
                ok = false;
            } else if ["monitor", "signal", "detector", "q"].contains(&label.as_str()) {
                self.report(
                    item.line,
                    &item_path,
                    format!(
                        "{label} cannot be in group_by: model-monitor exports its own {label} label"
                    ),
                );
                ok = false;
            } else if seen.contains(label) {
                self.report(
                    item.line,
                    &item_path,
                    format!("duplicate label {}", shown(item)),
                );
                ok = false;
            }
            seen.push(label.clone());
        }
        ok.then_some(seen)
    }

    fn reference(&mut self, node: &Node, path: &str) -> Option<ReferenceConfig> {
        let fields = self.fields(node, path, REFERENCE_KEYS)?;
        let given: Vec<&str> = REFERENCE_KEYS
            .iter()
            .copied()
            .filter(|key| fields.get(key).is_some())
            .collect();
        match given.as_slice() {
            [] => {
                self.report(
                    fields.line,
                    path,
                    format!("give exactly one of {}", REFERENCE_KEYS.join(", ")),
                );
                None
            }
            ["offset"] => self
                .required(&fields, "offset", Self::positive_duration)
                .map(ReferenceConfig::Offset),
            ["window"] => self
                .required(&fields, "window", Self::positive_duration)
                .map(ReferenceConfig::Window),
            ["range"] => self.required(&fields, "range", Self::range),
            ["baseline_file"] => self
                .required(&fields, "baseline_file", Self::file_path)
                .map(ReferenceConfig::BaselineFile),
            several => {
                self.report(
                    fields.line,
                    path,
                    format!(
                        "give exactly one of {}, found {}",
                        REFERENCE_KEYS.join(", "),
                        several.join(" and ")
                    ),
                );
                None
            }
        }
    }

    fn range(&mut self, node: &Node, path: &str) -> Option<ReferenceConfig> {
        let fields = self.fields(node, path, RANGE_KEYS)?;
        let start = self.required(&fields, "start", Self::timestamp);
        let end = self.required(&fields, "end", Self::timestamp);
        let (start, end) = (start?, end?);
        if start >= end {
            self.report(node.line, path, "start must be before end");
            return None;
        }
        Some(ReferenceConfig::Range { start, end })
    }

    fn signals(&mut self, node: &Node, path: &str) -> Option<BTreeMap<String, SignalConfig>> {
        let entries = self.entries(node, path)?;
        if entries.is_empty() {
            self.report(node.line, path, "at least one signal is required");
            return None;
        }
        let mut signals = BTreeMap::new();
        let mut ok = true;
        for (key, key_node, value) in entries {
            let signal_path = join(path, &key.raw);
            if key.text.trim().is_empty() {
                self.report(key_node.line, &signal_path, "signal name must not be empty");
                ok = false;
                continue;
            }
            match self.signal(value, &signal_path) {
                Some(signal) => {
                    signals.insert(key.text.clone(), signal);
                }
                None => ok = false,
            }
        }
        ok.then_some(signals)
    }

    fn signal(&mut self, node: &Node, path: &str) -> Option<SignalConfig> {
        let fields = self.fields(node, path, SIGNAL_KEYS)?;
        let histogram = self.required(&fields, "histogram", |d, n, p| {
            let name = d.string(n, p)?;
            if !is_metric_name(&name) {
                d.report(n.line, p, format!("invalid metric name {}", shown(n)));
                return None;
            }
            if let Some(suffix) = ["_bucket", "_sum", "_count"]
                .iter()
                .find(|s| name.ends_with(*s))
            {
                d.report(
                    n.line,
                    p,
                    format!("give the histogram's base name, without the {suffix} suffix"),
                );
                return None;
            }
            Some(name)
        });
        let detectors = self.required(&fields, "detectors", Self::detectors);
        Some(SignalConfig {
            histogram: histogram?,
            detectors: detectors?,
        })
    }

    fn detectors(&mut self, node: &Node, path: &str) -> Option<Vec<DetectorConfig>> {
        let items = self.sequence(node, path)?;
        if items.is_empty() {
            self.report(node.line, path, "at least one detector is required");
            return None;
        }
        let mut ok = true;
        // Names are checked apart from decoding, so that a detector with
        // other problems still takes part.
        let mut first_index: HashMap<String, usize> = HashMap::new();
        for (index, item) in items.iter().enumerate() {
            let named = peek(item, "name");
            let Some((name, name_node)) = named.clone().or_else(|| peek(item, "type")) else {
                continue;
            };
            match first_index.get(&name) {
                Some(first) => {
                    let (item_path, hint) = match named {
                        Some(_) => (format!("{path}[{index}].name"), ""),
                        None => (
                            format!("{path}[{index}]"),
                            "; set a distinct name on each detector of the same type",
                        ),
                    };
                    self.report(
                        item.line,
                        &item_path,
                        format!(
                            "duplicate detector name {} (also {path}[{first}]){hint}",
                            shown(name_node)
                        ),
                    );
                    ok = false;
                }
                None => {
                    first_index.insert(name, index);
                }
            }
        }
        let mut detectors = Vec::new();
        for (index, item) in items.iter().enumerate() {
            match self.detector(item, &format!("{path}[{index}]")) {
                Some(detector) => detectors.push(detector),
                None => ok = false,
            }
        }
        ok.then_some(detectors)
    }

    fn detector(&mut self, node: &Node, path: &str) -> Option<DetectorConfig> {
        if !matches!(node.kind, Kind::Mapping(_)) {
            self.report(
                node.line,
                path,
                format!(
                    "expected a mapping such as {{type: psi}}, got {}",
                    node.kind_name()
                ),
            );
            return None;
        }
        // The type decides which keys are allowed, so read it first.
        let all_keys: Vec<&str> = DETECTOR_TYPES
            .iter()
            .filter_map(|t| detector_keys(t))
            .flatten()
            .copied()
            .collect();
        let type_fields = self.quiet_fields(node, &all_keys);
        let type_name = match type_fields.as_ref().and_then(|f| f.get("type")) {
            Some(type_node) => self.choice(
                type_node,
                &join(path, "type"),
                "detector type",
                &DETECTOR_TYPES,
            ),
            None => {
                let line = type_fields.as_ref().map_or(node.line, |f| f.line);
                self.report(
                    line,
                    &join(path, "type"),
                    format!(
                        "missing required key; valid types: {}",
                        DETECTOR_TYPES.join(", ")
                    ),
                );
                None
            }
        };
        let Some(type_name) = type_name else {
            // Still report keys that no detector type knows.
            self.fields(node, path, &all_keys);
            return None;
        };
        let allowed = detector_keys(&type_name).expect("type was checked");
        let fields = self.fields_with(node, path, allowed, |key| {
            let bare = key.trim_matches('"');
            if all_keys.contains(&bare) {
                format!(
                    "key {key} does not apply to detector type {type_name}; allowed keys: {}",
                    allowed.join(", ")
                )
            } else {
                format!(
                    "unknown key {key}; allowed keys for detector type {type_name}: {}",
                    allowed.join(", ")
                )
            }
        })?;
        let name = self.optional(&fields, "name", type_name.clone(), Self::non_empty);
        let kind = match type_name.as_str() {
            "psi" => self.test_rule(&fields, "psi").map(DetectorKind::Psi),
            "ks" => self.test_rule(&fields, "ks").map(DetectorKind::Ks),
            "chi_square" => self
                .test_rule(&fields, "chi_square")
                .map(DetectorKind::ChiSquare),
            "zscore" => {
                let rule = self.test_rule(&fields, "zscore");
                let baseline = self.optional(&fields, "baseline", None, |d, n, p| {
                    d.zscore_baseline(n, p).map(Some)
                });
                Some(DetectorKind::ZScore {
                    rule: rule?,
                    baseline: baseline?,
                })
            }
            "jensen_shannon" => self
                .unit_threshold(&fields)
                .map(|threshold| DetectorKind::JensenShannon { threshold }),
            "hellinger" => self
                .unit_threshold(&fields)
                .map(|threshold| DetectorKind::Hellinger { threshold }),
            "wasserstein" => self
                .optional(
                    &fields,
                    "threshold",
                    DEFAULT_DISTANCE_THRESHOLD,
                    |d, n, p| d.number_where(n, p, NOT_NEGATIVE),
                )
                .map(|threshold| DetectorKind::Wasserstein { threshold }),
            "quantile_ratio" => {
                let quantile = self.required(&fields, "quantile", |d, n, p| {
                    d.number_where(n, p, OPEN_UNIT)
                });
                let max_ratio = self.required(&fields, "max_ratio", |d, n, p| {
                    d.number_where(n, p, (|v| v > 0.0, "must be greater than 0"))
                });
                Some(DetectorKind::QuantileRatio {
                    quantile: quantile?,
                    max_ratio: max_ratio?,
                })
            }
            "quantile_slo" => {
                let quantile = self.required(&fields, "quantile", |d, n, p| {
                    d.number_where(n, p, OPEN_UNIT)
                });
                let max = self.required(&fields, "max", Self::slo_max);
                Some(DetectorKind::QuantileSlo {
                    quantile: quantile?,
                    max: max?,
                })
            }
            _ => unreachable!("type was checked"),
        };
        Some(DetectorConfig {
            name: name?,
            kind: kind?,
        })
    }

    /// The known keys of a mapping without reporting anything (to find
    /// `type` before the allowed keys are known).
    fn quiet_fields<'n>(&mut self, node: &'n Node, allowed: &[&str]) -> Option<Fields<'n>> {
        let saved = self.problems.len();
        let fields = self.fields(node, "", allowed);
        self.problems.truncate(saved);
        fields
    }

    fn test_rule(&mut self, fields: &Fields<'_>, type_name: &str) -> Option<TestRule> {
        let threshold = self.optional(fields, "threshold", None, |d, n, p| {
            if let Kind::Scalar(scalar) = &n.kind
                && scalar.text == "auto"
            {
                return Some(None);
            }
            d.number_where(n, p, NOT_NEGATIVE).map(Some)
        });
        let false_alarm_rate = self.optional(
            fields,
            "false_alarm_rate",
            DEFAULT_FALSE_ALARM_RATE,
            |d, n, p| d.number_where(n, p, OPEN_UNIT),
        );
        let min_effect = self.optional(
            fields,
            "min_effect",
            default_min_effect(type_name).expect("a test detector"),
            |d, n, p| d.number_where(n, p, NOT_NEGATIVE),
        );
        Some(TestRule {
            threshold: threshold?,
            false_alarm_rate: false_alarm_rate?,
            min_effect: min_effect?,
        })
    }

    /// `threshold` in [0, 1], default 0.1.
    fn unit_threshold(&mut self, fields: &Fields<'_>) -> Option<f64> {
        self.optional(
            fields,
            "threshold",
            DEFAULT_DISTANCE_THRESHOLD,
            |d, n, p| {
                d.number_where(
                    n,
                    p,
                    (|v| (0.0..=1.0).contains(&v), "must be between 0 and 1"),
                )
            },
        )
    }

    fn zscore_baseline(&mut self, node: &Node, path: &str) -> Option<ZScoreBaseline> {
        let fields = self.fields(node, path, ZSCORE_BASELINE_KEYS)?;
        let mean = self.required(&fields, "mean", Self::number);
        let std = self.required(&fields, "std", |d, n, p| {
            d.number_where(n, p, (|v| v > 0.0, "must be greater than 0"))
        });
        Some(ZScoreBaseline {
            mean: mean?,
            std: std?,
        })
    }

    /// `max` of quantile_slo: a number, or a duration read as seconds.
    fn slo_max(&mut self, node: &Node, path: &str) -> Option<f64> {
        let is_text = matches!(&node.kind, Kind::Scalar(s) if matches!(s.value(), Some(ScalarOwned::String(_))));
        let value = if is_text {
            self.duration(node, path)?.as_secs_f64()
        } else {
            self.number(node, path)?
        };
        if value <= 0.0 {
            self.report(
                node.line,
                path,
                format!("must be greater than 0, got {value}"),
            );
            return None;
        }
        Some(value)
    }

    fn webhooks(&mut self, node: &Node, path: &str) -> Option<Vec<WebhookConfig>> {
        let items = self.sequence(node, path)?;
        let mut ok = self.unique_names(items, path, "webhook");
        let mut webhooks = Vec::new();
        for (index, item) in items.iter().enumerate() {
            match self.webhook(item, &format!("{path}[{index}]")) {
                Some(webhook) => webhooks.push(webhook),
                None => ok = false,
            }
        }
        ok.then_some(webhooks)
    }

    fn webhook(&mut self, node: &Node, path: &str) -> Option<WebhookConfig> {
        let fields = self.fields(node, path, WEBHOOK_KEYS)?;
        let name = self.required(&fields, "name", Self::non_empty);
        let format = self.required(&fields, "format", |d, n, p| {
            d.choice(n, p, "format", WEBHOOK_FORMATS)
                .map(|f| match f.as_str() {
                    "slack" => WebhookFormat::Slack,
                    "alertmanager" => WebhookFormat::Alertmanager,
                    _ => WebhookFormat::Template,
                })
        });
        let url = match (fields.get("url"), fields.get("url_file")) {
            (Some(_), Some(_)) => {
                let line = fields.key_node("url_file").map_or(fields.line, |k| k.line);
                self.report(
                    line,
                    &fields.path("url_file"),
                    "set only one of url and url_file",
                );
                None
            }
            (Some(n), None) => self
                .url(n, &fields.path("url"))
                .and(self.string(n, &fields.path("url")))
                .map(|text| SecretSource::Inline(text.trim().to_owned())),
            (None, Some(n)) => self
                .file_path(n, &fields.path("url_file"))
                .map(SecretSource::File),
            (None, None) => {
                self.report(
                    fields.line,
                    &fields.path("url"),
                    "missing required key: give one of url and url_file",
                );
                None
            }
        };
        let method = self.optional(&fields, "method", "POST".to_owned(), |d, n, p| {
            let scalar = d.scalar(n, p, "an http method")?;
            let method = scalar.text.to_ascii_uppercase();
            if WEBHOOK_METHODS.contains(&method.as_str()) {
                return Some(method);
            }
            d.report(
                n.line,
                p,
                format!(
                    "unsupported method {}; valid methods: {}",
                    scalar.describe(),
                    WEBHOOK_METHODS.join(", ")
                ),
            );
            None
        });
        let headers = self.optional(&fields, "headers", BTreeMap::new(), Self::headers);
        let secret = self.secret(&fields, "secret", "secret_file", false);
        let send_resolved = self.optional(&fields, "send_resolved", false, Self::boolean);
        let on = self.optional(
            &fields,
            "on",
            ALERT_KINDS.iter().map(|k| k.to_string()).collect(),
            Self::alert_kinds,
        );
        let matcher = self.optional(
            &fields,
            "match",
            WebhookMatch::default(),
            Self::webhook_match,
        );
        let cooldown = self.optional(&fields, "cooldown", DEFAULT_COOLDOWN, Self::duration);
        let body = self.optional(&fields, "body", None, |d, n, p| {
            let body = d.non_empty(n, p)?;
            if let Err(message) = check_template(&body) {
                d.report(n.line, p, format!("invalid template: {message}"));
                return None;
            }
            Some(Some(body))
        });
        let timeout = self.optional(&fields, "timeout", DEFAULT_TIMEOUT, Self::positive_duration);
        let max_age = self.optional(&fields, "max_age", DEFAULT_MAX_AGE, Self::positive_duration);
        let min_backoff = self.optional(
            &fields,
            "min_backoff",
            DEFAULT_MIN_BACKOFF,
            Self::positive_duration,
        );
        let max_backoff = self.optional(
            &fields,
            "max_backoff",
            DEFAULT_MAX_BACKOFF,
            Self::positive_duration,
        );
        let (min_backoff, max_backoff) = (min_backoff?, max_backoff?);
        if max_backoff < min_backoff {
            let line = fields
                .key_node("max_backoff")
                .map_or(fields.line, |k| k.line);
            self.report(
                line,
                &fields.path("max_backoff"),
                "must not be shorter than min_backoff",
            );
            return None;
        }
        let (format, body) = (format?, body?);
        match (format, &body) {
            (WebhookFormat::Template, None) => {
                self.report(
                    fields.line,
                    &fields.path("body"),
                    "missing required key: format template needs a body",
                );
                return None;
            }
            (WebhookFormat::Slack | WebhookFormat::Alertmanager, Some(_)) => {
                let line = fields.key_node("body").map_or(fields.line, |k| k.line);
                self.report(
                    line,
                    &fields.path("body"),
                    "body only applies to format template",
                );
                return None;
            }
            _ => {}
        }
        Some(WebhookConfig {
            name: name?,
            format,
            url: url?,
            method: method?,
            headers: headers?,
            secret: secret?,
            send_resolved: send_resolved?,
            on: on?,
            matcher: matcher?,
            cooldown: cooldown?,
            body,
            timeout: timeout?,
            max_age: max_age?,
            min_backoff,
            max_backoff,
        })
    }

    fn alert_kinds(&mut self, node: &Node, path: &str) -> Option<Vec<String>> {
        let items = self.sequence(node, path)?;
        if items.is_empty() {
            self.report(
                node.line,
                path,
                format!("must not be empty; valid kinds: {}", ALERT_KINDS.join(", ")),
            );
            return None;
        }
        let mut kinds: Vec<String> = Vec::new();
        let mut ok = true;
        for (index, item) in items.iter().enumerate() {
            let item_path = format!("{path}[{index}]");
            match self.choice(item, &item_path, "alert kind", ALERT_KINDS) {
                Some(kind) if kinds.contains(&kind) => {
                    self.report(
                        item.line,
                        &item_path,
                        format!("duplicate alert kind {}", shown(item)),
                    );
                    ok = false;
                }
                Some(kind) => kinds.push(kind),
                None => ok = false,
            }
        }
        ok.then_some(kinds)
    }

    fn webhook_match(&mut self, node: &Node, path: &str) -> Option<WebhookMatch> {
        let fields = self.fields(node, path, MATCH_KEYS)?;
        let text = |d: &mut Self, n: &Node, p: &str| d.string(n, p).map(Some);
        let model = self.optional(&fields, "model", None, text);
        let version = self.optional(&fields, "version", None, text);
        let signal = self.optional(&fields, "signal", None, text);
        let detector = self.optional(&fields, "detector", None, text);
        let kind = self.optional(&fields, "kind", None, |d, n, p| {
            d.choice(n, p, "alert kind", ALERT_KINDS).map(Some)
        });
        Some(WebhookMatch {
            model: model?,
            version: version?,
            signal: signal?,
            detector: detector?,
            kind: kind?,
        })
    }
}

/// A scalar for a problem message (see [`Scalar::describe`]).
fn shown(node: &Node) -> String {
    match &node.kind {
        Kind::Scalar(scalar) => scalar.describe(),
        _ => node.kind_name().to_owned(),
    }
}

/// The text and node of a key's non-null scalar value in a mapping node,
/// without reporting anything (duplicate-name checks).
fn peek<'n>(node: &'n Node, key: &str) -> Option<(String, &'n Node)> {
    let Kind::Mapping(entries) = &node.kind else {
        return None;
    };
    entries.iter().find_map(
        |(key_node, value_node)| match (&key_node.kind, &value_node.kind) {
            (Kind::Scalar(k), Kind::Scalar(v)) if k.text == key && !v.broken && !v.is_null() => {
                Some((v.text.clone(), value_node))
            }
            _ => None,
        },
    )
}

/// Numeric rules with their messages.
const NOT_NEGATIVE: (fn(f64) -> bool, &str) = (|v| v >= 0.0, "must not be negative");
const OPEN_UNIT: (fn(f64) -> bool, &str) = (
    |v| v > 0.0 && v < 1.0,
    "must be between 0 and 1 (exclusive)",
);

fn duration_message(error: &DurationError, scalar: &Scalar) -> String {
    let shown = scalar.describe();
    match error {
        DurationError::Empty => "empty duration; expected e.g. 30s or 1h30m".to_owned(),
        DurationError::Invalid(_) => format!(
            "invalid duration {shown}: expected a number followed by a unit (ms, s, m, h, d, w, y), e.g. 30s or 1h30m"
        ),
        DurationError::UnitOrder(_) => {
            format!("invalid duration {shown}: units must go from largest to smallest, each once")
        }
        DurationError::Overflow(_) => format!("duration {shown} is too large"),
    }
}

/// Prometheus label names: `[a-zA-Z_][a-zA-Z0-9_]*`.
fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Prometheus metric names: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c == ':' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c == ':' || c.is_ascii_alphanumeric())
}

/// Checks comma-separated PromQL label matchers (`a="x", b=~"y.*"`), the
/// inside of a selector's braces.
fn check_matchers(text: &str) -> Result<(), String> {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let skip_space = |i: &mut usize| {
        while *i < chars.len() && chars[*i].is_whitespace() {
            *i += 1;
        }
    };
    let mut index = 0;
    loop {
        skip_space(&mut i);
        if i == chars.len() {
            return Ok(());
        }
        index += 1;
        let start = i;
        while i < chars.len() && (chars[i] == '_' || chars[i].is_ascii_alphanumeric()) {
            i += 1;
        }
        let name: String = chars[start..i].iter().collect();
        if !is_label_name(&name) {
            return Err(format!("matcher {index}: expected a label name"));
        }
        skip_space(&mut i);
        let rest: String = chars[i..].iter().take(2).collect();
        let op_len = if rest.starts_with("=~") || rest.starts_with("!=") || rest.starts_with("!~") {
            2
        } else if rest.starts_with('=') {
            1
        } else {
            return Err(format!(
                "matcher {index}: expected =, !=, =~ or !~ after {name}"
            ));
        };
        i += op_len;
        skip_space(&mut i);
        let Some(&quote) = chars.get(i).filter(|c| matches!(c, '"' | '\'' | '`')) else {
            return Err(format!(
                "matcher {index}: expected a quoted value after {name}"
            ));
        };
        i += 1;
        loop {
            match chars.get(i) {
                None => return Err(format!("matcher {index}: unterminated quoted value")),
                Some('\\') if quote != '`' => i += 2,
                Some(&c) if c == quote => {
                    i += 1;
                    break;
                }
                Some(_) => i += 1,
            }
        }
        skip_space(&mut i);
        match chars.get(i) {
            None => return Ok(()),
            Some(',') => i += 1,
            Some(_) => return Err(format!("matcher {index}: expected , between matchers")),
        }
    }
}

/// Compiles a body template with minijinja and renders it for a sample
/// alert, so that syntax errors, unknown filters and undefined variables
/// (`alert.modle`) are config errors.
fn check_template(body: &str) -> Result<(), String> {
    crate::sinks::webhooks::payload::check_template(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "xoxb-SECRET-VALUE";

    fn env(name: &str) -> Option<String> {
        match name {
            "PROM_URL" => Some("http://prom:9090".to_owned()),
            "CONCURRENCY" => Some("4".to_owned()),
            "SLACK_WEBHOOK_URL" => Some(format!("https://hooks.slack.com/services/{SECRET}")),
            "BAD_SECRET_URL" => Some(format!("hooks.slack.com/{SECRET}")),
            "PASSWORD" => Some(SECRET.to_owned()),
            "SECRET_DURATION" => Some(SECRET.to_owned()),
            "INJECT" => Some("x\n  injected: true".to_owned()),
            _ => None,
        }
    }

    fn parse(text: &str) -> Result<Config, ConfigError> {
        parse_str_with_env(text, "/etc/model-monitor/config.yml", &env)
    }

    /// Problems as `line: path: message`.
    fn problems(text: &str) -> Vec<String> {
        match parse(text) {
            Ok(_) => Vec::new(),
            Err(error) => error
                .problems
                .iter()
                .map(|p| {
                    assert_eq!(p.file, "/etc/model-monitor/config.yml");
                    assert!(!p.message.ends_with('.'), "trailing period: {p}");
                    assert!(
                        !p.message.starts_with(|c: char| c.is_ascii_uppercase()),
                        "capitalised: {p}"
                    );
                    let line = p.line.map_or("-".to_owned(), |l| l.to_string());
                    if p.path.is_empty() {
                        format!("{line}: {}", p.message)
                    } else {
                        format!("{line}: {}: {}", p.path, p.message)
                    }
                })
                .collect(),
        }
    }

    fn v(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|line| line.to_string()).collect()
    }

    fn check(cases: &[(&str, String, Vec<String>)]) {
        for (name, text, expected) in cases {
            let actual = problems(text);
            assert_eq!(actual, *expected, "case {name}:\n{text}");
        }
    }

    /// The smallest valid config, with `extra` lines placed under
    /// `prometheus` (line 3 onwards).
    fn prom(extra: &str) -> String {
        format!(
            "prometheus:\n  url: http://prom:9090\n{}monitors:\n  - name: m\n    signals:\n      c:\n        histogram: h\n        detectors: [{{type: psi}}]\n",
            indent(extra, 2)
        )
    }

    /// A config whose monitor has `extra` lines from line 5 on.
    fn mon(extra: &str) -> String {
        format!(
            "prometheus:\n  url: http://prom:9090\nmonitors:\n  - name: m\n{}    signals:\n      c:\n        histogram: h\n        detectors: [{{type: psi}}]\n",
            indent(extra, 4)
        )
    }

    /// A config whose only detector (line 8) is `detector`.
    fn det(detector: &str) -> String {
        format!(
            "prometheus:\n  url: http://prom:9090\nmonitors:\n  - name: m\n    signals:\n      c:\n        histogram: h\n        detectors: [{detector}]\n"
        )
    }

    /// A config with a slack webhook `w` (lines 10-12) and `extra` lines from line 13.
    fn hook(extra: &str) -> String {
        format!(
            "{}webhooks:\n  - name: w\n    format: slack\n    url: https://hooks.example/x\n{}",
            det("{type: psi}"),
            indent(extra, 4)
        )
    }

    fn indent(lines: &str, by: usize) -> String {
        lines
            .lines()
            .map(|line| format!("{}{line}\n", " ".repeat(by)))
            .collect()
    }

    #[test]
    fn the_helpers_build_valid_configs() {
        for text in [prom(""), mon(""), det("{type: psi}"), hook("")] {
            assert_eq!(problems(&text), Vec::<String>::new(), "{text}");
        }
    }

    #[test]
    fn structure_problems() {
        let types = DETECTOR_TYPES.join(", ");
        let d = "monitors[0].signals.c.detectors";
        check(&[
            (
                "yaml syntax error",
                "prometheus:\n  url: [http://x\nmonitors: 3\n".to_owned(),
                v(&["3: invalid yaml: illegal placement of ':' indicator"]),
            ),
            (
                "two documents",
                format!("{}---\na: 1\n", det("{type: psi}")),
                v(&["10: invalid yaml: expected one YAML document, found several"]),
            ),
            (
                "empty file",
                "\n".to_owned(),
                v(&["1: the file is empty: prometheus and monitors are required"]),
            ),
            (
                "not a mapping",
                "- a\n".to_owned(),
                v(&[
                    "1: expected a mapping of prometheus, evaluation, monitors, webhooks, got a list",
                ]),
            ),
            (
                "unknown top-level key",
                format!("{}alerting: {{}}\n", det("{type: psi}")),
                v(&[
                    "9: alerting: unknown key \"alerting\"; allowed keys: prometheus, evaluation, monitors, webhooks, grafana_url",
                ]),
            ),
            (
                "unknown nested key",
                prom("timeot: 5s"),
                v(&[
                    "3: prometheus.timeot: unknown key \"timeot\"; allowed keys: url, timeout, headers, bearer_token_file, basic_auth, max_response_bytes, post_threshold_bytes, external_url",
                ]),
            ),
            (
                "duplicate key",
                prom("url: http://other"),
                v(&["3: prometheus.url: duplicate key \"url\" (first on line 2)"]),
            ),
            (
                "missing required keys",
                "prometheus: {timeout: 5s}\n".to_owned(),
                v(&[
                    "1: prometheus.url: missing required key",
                    "1: monitors: missing required key",
                ]),
            ),
            (
                "required key without value",
                "prometheus:\n  url:\nmonitors:\n".to_owned(),
                v(&[
                    "2: prometheus.url: missing value",
                    "3: monitors: missing value",
                ]),
            ),
            (
                "no monitors",
                "prometheus: {url: http://p}\nmonitors: []\n".to_owned(),
                v(&["2: monitors: at least one monitor is required"]),
            ),
            (
                "no signals",
                "prometheus: {url: http://p}\nmonitors:\n  - name: m\n    signals: {}\n".to_owned(),
                v(&["4: monitors[0].signals: at least one signal is required"]),
            ),
            (
                "no detectors",
                det(""),
                v(&["8: monitors[0].signals.c.detectors: at least one detector is required"]),
            ),
            (
                "wrong types",
                prom("timeout: [1]\nmax_response_bytes: lots\nheaders: [a]"),
                v(&[
                    "3: prometheus.timeout: expected a duration such as 30s, got a list",
                    "4: prometheus.max_response_bytes: expected an integer, got a string",
                    "5: prometheus.headers: expected a mapping, got a list",
                ]),
            ),
            (
                "integer where a duration is expected",
                prom("timeout: 10"),
                v(&[
                    "3: prometheus.timeout: expected a duration such as 30s, got an integer (add a unit: ms, s, m, h, d, w, y)",
                ]),
            ),
            (
                "bad duration",
                prom("timeout: 10x"),
                v(&[
                    "3: prometheus.timeout: invalid duration \"10x\": expected a number followed by a unit (ms, s, m, h, d, w, y), e.g. 30s or 1h30m",
                ]),
            ),
            (
                "duration units out of order",
                mon("window: 5m1h"),
                v(&[
                    "5: monitors[0].window: invalid duration \"5m1h\": units must go from largest to smallest, each once",
                ]),
            ),
            (
                "unknown detector type",
                det("{type: kss}"),
                vec![format!(
                    "8: {d}[0].type: unknown detector type \"kss\"; valid detector types: {types}"
                )],
            ),
            (
                "missing detector type",
                det("{name: x}"),
                vec![format!(
                    "8: {d}[0].type: missing required key; valid types: {types}"
                )],
            ),
            (
                "detector that is not a mapping",
                det("psi"),
                vec![format!(
                    "8: {d}[0]: expected a mapping such as {{type: psi}}, got a string"
                )],
            ),
            (
                "key that does not apply to the type",
                det("{type: psi, quantile: 0.5}"),
                vec![format!(
                    "8: {d}[0].quantile: key \"quantile\" does not apply to detector type psi; allowed keys: type, name, threshold, false_alarm_rate, min_effect"
                )],
            ),
            (
                "key no detector type knows",
                det("{type: ks, foo: 1}"),
                vec![format!(
                    "8: {d}[0].foo: unknown key \"foo\"; allowed keys for detector type ks: type, name, threshold, false_alarm_rate, min_effect"
                )],
            ),
            (
                "baseline only for zscore",
                det("{type: ks, baseline: {mean: 1, std: 1}}"),
                vec![format!(
                    "8: {d}[0].baseline: key \"baseline\" does not apply to detector type ks; allowed keys: type, name, threshold, false_alarm_rate, min_effect"
                )],
            ),
            (
                "threshold does not apply to quantile detectors",
                det("{type: quantile_ratio, quantile: 0.9, max_ratio: 2, threshold: 1}"),
                vec![format!(
                    "8: {d}[0].threshold: key \"threshold\" does not apply to detector type quantile_ratio; allowed keys: type, name, quantile, max_ratio"
                )],
            ),
        ]);
    }

    #[test]
    fn impossible_values() {
        let d = "monitors[0].signals.c.detectors";
        let cases = [
            ("negative threshold", det("{type: psi, threshold: -0.1}"), vec![format!("8: {d}[0].threshold: must not be negative, got -0.1")]),
            ("negative wasserstein threshold", det("{type: wasserstein, threshold: -1}"), vec![format!("8: {d}[0].threshold: must not be negative, got -1")]),
            ("js threshold above 1", det("{type: jensen_shannon, threshold: 1.5}"), vec![format!("8: {d}[0].threshold: must be between 0 and 1, got 1.5")]),
            ("quantile 0", det("{type: quantile_ratio, quantile: 0, max_ratio: 2}"), vec![format!("8: {d}[0].quantile: must be between 0 and 1 (exclusive), got 0")]),
            ("quantile 1", det("{type: quantile_slo, quantile: 1, max: 1}"), vec![format!("8: {d}[0].quantile: must be between 0 and 1 (exclusive), got 1")]),
            ("quantile missing", det("{type: quantile_slo, max: 1}"), vec![format!("8: {d}[0].quantile: missing required key")]),
            ("max_ratio 0", det("{type: quantile_ratio, quantile: 0.5, max_ratio: 0}"), vec![format!("8: {d}[0].max_ratio: must be greater than 0, got 0")]),
            ("slo max negative", det("{type: quantile_slo, quantile: 0.5, max: -2}"), vec![format!("8: {d}[0].max: must be greater than 0, got -2")]),
            ("slo max bad duration", det("{type: quantile_slo, quantile: 0.5, max: fast}"), vec![format!("8: {d}[0].max: invalid duration \"fast\": expected a number followed by a unit (ms, s, m, h, d, w, y), e.g. 30s or 1h30m")]),
            ("false_alarm_rate 0", det("{type: ks, false_alarm_rate: 0}"), vec![format!("8: {d}[0].false_alarm_rate: must be between 0 and 1 (exclusive), got 0")]),
            ("false_alarm_rate 1", det("{type: chi_square, false_alarm_rate: 1}"), vec![format!("8: {d}[0].false_alarm_rate: must be between 0 and 1 (exclusive), got 1")]),
            ("negative min_effect", det("{type: zscore, min_effect: -1}"), vec![format!("8: {d}[0].min_effect: must not be negative, got -1")]),
            ("non-finite number", det("{type: psi, threshold: .inf}"), vec![format!("8: {d}[0].threshold: must be a finite number")]),
            ("zscore std 0", det("{type: zscore, baseline: {mean: 0.8, std: 0}}"), vec![format!("8: {d}[0].baseline.std: must be greater than 0, got 0")]),
            ("zscore baseline mean missing", det("{type: zscore, baseline: {std: 1}}"), vec![format!("8: {d}[0].baseline.mean: missing required key")]),
            (
                "duplicate detector type without names",
                det("{type: psi}, {type: psi}"),
                vec![format!("8: {d}[1]: duplicate detector name \"psi\" (also {d}[0]); set a distinct name on each detector of the same type")],
            ),
            (
                "duplicate detector names",
                det("{type: psi, name: a}, {type: ks, name: a}"),
                vec![format!("8: {d}[1].name: duplicate detector name \"a\" (also {d}[0])")],
            ),
            ("alerting for 0", mon("alerting: {for: 0, resolve_after: x, repeat_interval: 0s, every: 1}"), vec![
                "5: monitors[0].alerting.every: unknown key \"every\"; allowed keys: for, resolve_after, repeat_interval".to_owned(),
                "5: monitors[0].alerting.for: must be at least 1, got 0".to_owned(),
                "5: monitors[0].alerting.resolve_after: expected an integer, got a string".to_owned(),
                "5: monitors[0].alerting.repeat_interval: must be greater than 0".to_owned(),
            ]),
            ("empty group_by", mon("group_by: []"), vec!["5: monitors[0].group_by: must not be empty: give the labels that identify a model".to_owned()]),
            (
                "duplicate group_by entries",
                mon("group_by: [model, model]"),
                vec!["5: monitors[0].group_by[1]: duplicate label \"model\"".to_owned()],
            ),
            ("le in group_by", mon("group_by: [model, le]"), vec!["5: monitors[0].group_by[1]: le cannot be in group_by: it is the bucket label".to_owned()]),
            ("exported label in group_by", mon("group_by: [model, signal]"), vec!["5: monitors[0].group_by[1]: signal cannot be in group_by: model-monitor exports its own signal label".to_owned()]),
            ("invalid label", mon("group_by: [model-name]"), vec!["5: monitors[0].group_by[0]: invalid label name \"model-name\"".to_owned()]),
            ("window 0", mon("window: 0s"), vec!["5: monitors[0].window: must be greater than 0".to_owned()]),
            ("negative min_samples", mon("min_samples: -1"), vec!["5: monitors[0].min_samples: must not be negative, got -1".to_owned()]),
            ("interval below 1s", format!("{}evaluation: {{interval: 500ms}}\n", det("{type: psi}")), vec!["9: evaluation.interval: must be at least 1s".to_owned()]),
            ("concurrency 0", format!("{}evaluation:\n  concurrency: 0\n", det("{type: psi}")), vec!["10: evaluation.concurrency: must be at least 1, got 0".to_owned()]),
            ("max_response_bytes 0", prom("max_response_bytes: 0"), vec!["3: prometheus.max_response_bytes: must be at least 1, got 0".to_owned()]),
            (
                "duplicate monitor names",
                format!("{}  - name: m\n    signals: {{c: {{histogram: h, detectors: [{{type: ks}}]}}}}\n", det("{type: psi}")),
                vec!["9: monitors[1].name: duplicate monitor name \"m\" (first on line 4)".to_owned()],
            ),
            (
                "duplicate webhook names even when one has other problems",
                format!("{}  - name: w\n    format: teams\n    url: https://x\n", hook("")),
                vec![
                    "13: webhooks[1].name: duplicate webhook name \"w\" (first on line 10)".to_owned(),
                    "14: webhooks[1].format: unknown format \"teams\"; valid formats: slack, alertmanager, template".to_owned(),
                ],
            ),
            ("reference without a kind", mon("reference: {}"), vec!["5: monitors[0].reference: give exactly one of offset, window, range, baseline_file".to_owned()]),
            (
                "reference with several kinds",
                mon("reference: {offset: 1d, baseline_file: b.yml}"),
                vec!["5: monitors[0].reference: give exactly one of offset, window, range, baseline_file, found offset and baseline_file".to_owned()],
            ),
            ("reference offset 0", mon("reference: {offset: 0s}"), vec!["5: monitors[0].reference.offset: must be greater than 0".to_owned()]),
            (
                "range start after end",
                mon("reference:\n  range: {start: 2024-05-02T00:00:00Z, end: 2024-05-01T00:00:00Z}"),
                vec!["6: monitors[0].reference.range: start must be before end".to_owned()],
            ),
            (
                "bad timestamp",
                mon("reference:\n  range:\n    start: 2024-05-01\n    end: 2024-05-02T00:00:00Z"),
                vec!["7: monitors[0].reference.range.start: invalid RFC 3339 timestamp \"2024-05-01\": premature end of input (e.g. 2024-05-01T00:00:00Z)".to_owned()],
            ),
            ("invalid prometheus url", det("{type: psi}").replace("http://prom:9090", "'localhost:9090'"), vec!["2: prometheus.url: invalid url: expected an http or https url with a host".to_owned()]),
            ("invalid external url", prom("external_url: ://x"), vec!["3: prometheus.external_url: invalid url: relative URL without a base".to_owned()]),
            ("invalid selector", mon("selector: '{namespace=ml}'"), vec!["5: monitors[0].selector: invalid selector: matcher 1: expected a quoted value after namespace".to_owned()]),
            ("unbalanced selector", mon("selector: '{a=\"b\"'"), vec!["5: monitors[0].selector: invalid selector: unbalanced braces".to_owned()]),
            ("histogram with suffix", det("{type: psi}").replace("histogram: h", "histogram: h_bucket"), vec!["7: monitors[0].signals.c.histogram: give the histogram's base name, without the _bucket suffix".to_owned()]),
            ("invalid metric name", det("{type: psi}").replace("histogram: h", "histogram: my-metric"), vec!["7: monitors[0].signals.c.histogram: invalid metric name \"my-metric\"".to_owned()]),
            ("bearer and basic auth", prom("bearer_token_file: t\nbasic_auth: {username: u, password_file: p}"), vec!["4: prometheus.basic_auth: set at most one of bearer_token_file and basic_auth".to_owned()]),
            ("password twice", prom("basic_auth: {username: u, password: x, password_file: p}"), vec!["3: prometheus.basic_auth.password_file: set only one of password and password_file".to_owned()]),
            ("password missing", prom("basic_auth: {username: u}"), vec!["3: prometheus.basic_auth.password: missing required key: give one of password and password_file".to_owned()]),
            ("invalid header name", prom("headers: {\"X Bad\": a}"), vec!["3: prometheus.headers.X Bad: invalid header name \"X Bad\"".to_owned()]),
            ("url and url_file", hook("url_file: /run/url"), vec!["13: webhooks[0].url_file: set only one of url and url_file".to_owned()]),
            ("neither url nor url_file", hook("").replace("    url: https://hooks.example/x\n", ""), vec!["10: webhooks[0].url: missing required key: give one of url and url_file".to_owned()]),
            ("secret twice", hook("secret: a\nsecret_file: b"), vec!["14: webhooks[0].secret_file: set only one of secret and secret_file".to_owned()]),
            ("body on slack", hook("body: hi"), vec!["13: webhooks[0].body: body only applies to format template".to_owned()]),
            ("template without body", hook("").replace("format: slack", "format: template"), vec!["10: webhooks[0].body: missing required key: format template needs a body".to_owned()]),
            ("unclosed template", hook("body: '{{ alert.model '").replace("format: slack", "format: template"), vec!["13: webhooks[0].body: invalid template: syntax error: unexpected end of input, expected end of variable block (template line 1)".to_owned()]),
            ("template with a misspelt variable", hook("body: '{\"m\": {{ alert.modle | tojson }}}'").replace("format: slack", "format: template"), vec!["13: webhooks[0].body: invalid template: unknown variable alert.modle; known: id, receiver, alert.{confidence_mean, current_samples, detector, ends_at, evaluated_at, fingerprint, grafana_url, kind, labels, model, monitor, p99_latency_ms, p_value, prometheus_url, reference_samples, repeat, score, signal, starts_at, status, summary, threshold, version}".to_owned()]),
            ("backoffs out of order", hook("min_backoff: 1m\nmax_backoff: 10s"), vec!["14: webhooks[0].max_backoff: must not be shorter than min_backoff".to_owned()]),
            ("zero backoff", hook("min_backoff: 0s"), vec!["13: webhooks[0].min_backoff: must be greater than 0".to_owned()]),
            ("bad on", hook("on: [drift, drift, retrain]"), vec!["13: webhooks[0].on[1]: duplicate alert kind \"drift\"".to_owned(), "13: webhooks[0].on[2]: unknown alert kind \"retrain\"; valid alert kinds: drift, performance".to_owned()]),
            ("empty on", hook("on: []"), vec!["13: webhooks[0].on: must not be empty; valid kinds: drift, performance".to_owned()]),
            ("bad match", hook("match: {kind: x, team: y}"), vec!["13: webhooks[0].match.team: unknown key \"team\"; allowed keys: model, version, signal, detector, kind".to_owned(), "13: webhooks[0].match.kind: unknown alert kind \"x\"; valid alert kinds: drift, performance".to_owned()]),
            ("bad method", hook("method: DELETE"), vec!["13: webhooks[0].method: unsupported method \"DELETE\"; valid methods: POST, PUT, PATCH".to_owned()]),
            ("send_resolved not a bool", hook("send_resolved: yes"), vec!["13: webhooks[0].send_resolved: expected true or false, got a string".to_owned()]),
            ("webhook timeout 0", hook("timeout: 0s"), vec!["13: webhooks[0].timeout: must be greater than 0".to_owned()]),
        ];
        check(&cases);
    }

    #[test]
    fn fills_in_defaults() {
        let config = parse(&det("{type: psi}, {type: ks}, {type: chi_square}, {type: zscore}, {type: jensen_shannon}, {type: hellinger}, {type: wasserstein}")).unwrap();
        assert_eq!(
            config.prometheus,
            PrometheusConfig::new(url::Url::parse("http://prom:9090").unwrap())
        );
        assert_eq!(
            config.evaluation,
            EvaluationConfig {
                interval: Duration::from_secs(30),
                concurrency: 8
            }
        );
        assert!(config.webhooks.is_empty());
        let monitor = &config.monitors[0];
        assert_eq!(monitor.selector, "");
        assert_eq!(monitor.group_by, ["model", "version"]);
        assert_eq!(monitor.window, Duration::from_secs(300));
        assert_eq!(
            monitor.reference,
            ReferenceConfig::Offset(Duration::from_secs(7 * 86_400))
        );
        assert_eq!(monitor.min_samples, 100.0);
        let rule = |min_effect| TestRule {
            threshold: None,
            false_alarm_rate: 0.001,
            min_effect,
        };
        let detectors: Vec<(String, DetectorKind)> = monitor.signals["c"]
            .detectors
            .iter()
            .map(|d| (d.name.clone(), d.kind.clone()))
            .collect();
        assert_eq!(
            detectors,
            vec![
                ("psi".to_owned(), DetectorKind::Psi(rule(0.1))),
                ("ks".to_owned(), DetectorKind::Ks(rule(0.1))),
                ("chi_square".to_owned(), DetectorKind::ChiSquare(rule(0.1))),
                (
                    "zscore".to_owned(),
                    DetectorKind::ZScore {
                        rule: rule(0.1),
                        baseline: None
                    }
                ),
                (
                    "jensen_shannon".to_owned(),
                    DetectorKind::JensenShannon { threshold: 0.1 }
                ),
                (
                    "hellinger".to_owned(),
                    DetectorKind::Hellinger { threshold: 0.1 }
                ),
                (
                    "wasserstein".to_owned(),
                    DetectorKind::Wasserstein { threshold: 0.1 }
                ),
            ]
        );
        let webhook = &parse(&hook("")).unwrap().webhooks[0];
        assert_eq!(webhook.format, WebhookFormat::Slack);
        assert_eq!(
            webhook.url,
            SecretSource::Inline("https://hooks.example/x".to_owned())
        );
        assert_eq!(webhook.method, "POST");
        assert_eq!(webhook.on, ["drift", "performance"]);
        assert_eq!(webhook.matcher, WebhookMatch::default());
        assert!(!webhook.send_resolved);
        assert_eq!(webhook.secret, None);
        assert_eq!(webhook.body, None);
        assert_eq!(webhook.cooldown, Duration::from_secs(6 * 3600));
        assert_eq!(webhook.timeout, Duration::from_secs(10));
        assert_eq!(webhook.max_age, Duration::from_secs(24 * 3600));
    }

    #[test]
    fn reads_every_setting() {
        let text = r#"
prometheus:
  url: ${PROM_URL}
  timeout: 3s
  headers: {X-Scope-OrgID: team-a}
  basic_auth: {username: u, password: "${PASSWORD}"}
  max_response_bytes: 1000
  post_threshold_bytes: 0
  external_url: https://prom.example
evaluation: {interval: 1s, concurrency: "${CONCURRENCY}"}
monitors:
  - name: m
    selector: ' {namespace="ml", job=~"api.*$"} '
    group_by: [model]
    window: 1m
    reference: {baseline_file: baselines/m.yml}
    min_samples: 0
    signals:
      latency:
        histogram: model_request_duration_seconds
        detectors:
          - {type: quantile_ratio, quantile: 0.99, max_ratio: 1.5}
          - {type: quantile_slo, quantile: 0.99, max: 250ms}
          - {type: quantile_slo, name: p50, quantile: 0.5, max: 2}
          - {type: zscore, threshold: 3, baseline: {mean: 0.1, std: 0.02}}
          - {type: psi, threshold: auto, false_alarm_rate: 0.01, min_effect: 0.2}
  - name: n
    selector: job="x"
    reference: {range: {start: "2024-05-01T00:00:00Z", end: "2024-05-02T00:00:00+02:00"}}
    signals: {c: {histogram: h, detectors: [{type: ks}]}}
webhooks:
  - name: retrain
    format: template
    url_file: secrets/url
    method: put
    headers: {Authorization: "Bearer ${PASSWORD}"}
    secret_file: /run/secret
    send_resolved: true
    on: [drift]
    match: {model: fraud, kind: drift}
    cooldown: 0s
    body: '{"model": "{{ alert.model }}"}'
    timeout: 1s
    max_age: 1h
"#;
        let config = parse(text).unwrap();
        assert_eq!(config.prometheus.url.as_str(), "http://prom:9090/");
        assert_eq!(config.prometheus.timeout, Duration::from_secs(3));
        assert_eq!(config.prometheus.headers["X-Scope-OrgID"], "team-a");
        assert_eq!(
            config.prometheus.basic_auth,
            Some(BasicAuth {
                username: "u".to_owned(),
                password: SecretSource::Inline(SECRET.to_owned())
            })
        );
        assert_eq!(config.prometheus.max_response_bytes, 1000);
        assert_eq!(config.prometheus.post_threshold_bytes, 0);
        assert_eq!(
            config
                .prometheus
                .external_url
                .as_ref()
                .map(url::Url::as_str),
            Some("https://prom.example/")
        );
        assert_eq!(
            config.evaluation,
            EvaluationConfig {
                interval: Duration::from_secs(1),
                concurrency: 4
            }
        );
        let m = &config.monitors[0];
        assert_eq!(m.selector, r#"namespace="ml", job=~"api.*$""#);
        assert_eq!(m.group_by, ["model"]);
        assert_eq!(m.window, Duration::from_secs(60));
        assert_eq!(
            m.reference,
            ReferenceConfig::BaselineFile(PathBuf::from("/etc/model-monitor/baselines/m.yml"))
        );
        assert_eq!(m.min_samples, 0.0);
        let kinds: Vec<&DetectorKind> = m.signals["latency"]
            .detectors
            .iter()
            .map(|d| &d.kind)
            .collect();
        assert_eq!(
            kinds,
            [
                &DetectorKind::QuantileRatio {
                    quantile: 0.99,
                    max_ratio: 1.5
                },
                &DetectorKind::QuantileSlo {
                    quantile: 0.99,
                    max: 0.25
                },
                &DetectorKind::QuantileSlo {
                    quantile: 0.5,
                    max: 2.0
                },
                &DetectorKind::ZScore {
                    rule: TestRule {
                        threshold: Some(3.0),
                        false_alarm_rate: 0.001,
                        min_effect: 0.1
                    },
                    baseline: Some(ZScoreBaseline {
                        mean: 0.1,
                        std: 0.02
                    })
                },
                &DetectorKind::Psi(TestRule {
                    threshold: None,
                    false_alarm_rate: 0.01,
                    min_effect: 0.2
                }),
            ]
        );
        assert_eq!(m.signals["latency"].detectors[2].name, "p50");
        let n = &config.monitors[1];
        assert_eq!(n.selector, r#"job="x""#);
        assert_eq!(
            n.reference,
            ReferenceConfig::Range {
                start: "2024-05-01T00:00:00Z".parse().unwrap(),
                end: "2024-05-01T22:00:00Z".parse().unwrap(),
            }
        );
        let w = &config.webhooks[0];
        assert_eq!(w.format, WebhookFormat::Template);
        assert_eq!(
            w.url,
            SecretSource::File(PathBuf::from("/etc/model-monitor/secrets/url"))
        );
        assert_eq!(w.method, "PUT");
        assert_eq!(w.headers["Authorization"], format!("Bearer {SECRET}"));
        assert_eq!(
            w.secret,
            Some(SecretSource::File(PathBuf::from("/run/secret")))
        );
        assert!(w.send_resolved);
        assert_eq!(w.on, ["drift"]);
        assert_eq!(
            w.matcher,
            WebhookMatch {
                model: Some("fraud".to_owned()),
                kind: Some("drift".to_owned()),
                ..WebhookMatch::default()
            }
        );
        assert_eq!(w.cooldown, Duration::ZERO);
        assert_eq!(w.body.as_deref(), Some(r#"{"model": "{{ alert.model }}"}"#));
        assert_eq!(w.timeout, Duration::from_secs(1));
        assert_eq!(w.max_age, Duration::from_secs(3600));
    }

    #[test]
    fn expands_environment_variables() {
        // Numbers and booleans from the environment are typed after expansion.
        let config = parse(&format!(
            "{}evaluation: {{concurrency: \"${{CONCURRENCY}}\"}}\n",
            det("{type: psi}").replace("http://prom:9090", "${PROM_URL}")
        ))
        .unwrap();
        assert_eq!(config.evaluation.concurrency, 4);
        assert_eq!(config.prometheus.url.as_str(), "http://prom:9090/");
        // `$$` is a literal `$`; a lone `$` stays as it is.
        let config = parse(&mon(r#"selector: 'a=~"x$$", b=~"y$"'"#)).unwrap();
        assert_eq!(config.monitors[0].selector, r#"a=~"x$", b=~"y$""#);
        // An environment value is one scalar, whatever it contains.
        let config = parse(&mon("name: ${INJECT}").replace("  - name: m\n", "  -\n")).unwrap();
        assert_eq!(config.monitors[0].name, "x\n  injected: true");
        check(&[
            (
                "missing variable",
                prom("timeout: ${TIMEOUT}\nheaders: {A: '${A_VAR}-${B_VAR}'}"),
                v(&[
                    "3: prometheus.timeout: environment variable TIMEOUT is not set",
                    "4: prometheus.headers.A: environment variable A_VAR is not set",
                    "4: prometheus.headers.A: environment variable B_VAR is not set",
                ]),
            ),
            (
                "unterminated reference",
                mon("selector: ${OOPS"),
                v(&["5: monitors[0].selector: unterminated ${ (write $$ for a literal $)"]),
            ),
            (
                "missing variable in a key",
                prom("${KEY}: 1"),
                v(&["3: prometheus.${KEY}: environment variable KEY is not set"]),
            ),
        ]);
    }

    #[test]
    fn problems_never_show_secret_values() {
        let text = format!(
            "{}webhooks:\n  - {{name: a, format: slack, url: '${{BAD_SECRET_URL}}'}}\n  - {{name: b, format: slack, url: '${{SLACK_WEBHOOK_URL}}', headers: {{X: \"${{PASSWORD}}\\n\"}}}}\n  - {{name: c, format: slack, url: 'https://x', timeout: '${{SECRET_DURATION}}'}}\n",
            prom("basic_auth: {username: u, password: '${PASSWORD}', password_file: f}")
        );
        let error = parse(&text).unwrap_err();
        let shown = error.to_string();
        assert!(!shown.contains(SECRET), "{shown}");
        assert_eq!(
            problems(&text),
            v(&[
                "3: prometheus.basic_auth.password_file: set only one of password and password_file",
                "11: webhooks[0].url: invalid url: relative URL without a base",
                "12: webhooks[1].headers.X: invalid header value",
                "13: webhooks[2].timeout: invalid duration \"${SECRET_DURATION}\" (after expansion): expected a number followed by a unit (ms, s, m, h, d, w, y), e.g. 30s or 1h30m",
            ])
        );
        // Names and labels from the environment are shown as written too.
        assert_eq!(
            problems(&mon("group_by: ['${PASSWORD}']")),
            v(&[
                "5: monitors[0].group_by[0]: invalid label name \"${PASSWORD}\" (after expansion)"
            ])
        );
        // Debug output of a valid config redacts inline secrets too.
        let config = parse(&format!(
            "{}webhooks:\n  - {{name: a, format: slack, url: '${{SLACK_WEBHOOK_URL}}', secret: '${{PASSWORD}}'}}\n",
            prom("basic_auth: {username: u, password: '${PASSWORD}'}")
        ))
        .unwrap();
        assert!(!format!("{config:?}").contains(SECRET));
    }

    #[test]
    fn lists_every_problem_in_line_order() {
        let text = "prometheus:\n  url: http://p\n  timeout: 5\nevaluation: {concurrency: 0}\nmonitors:\n  - name: m\n    window: 0s\n    signals:\n      c: {histogram: h, detectors: [{type: psi, threshold: -1}]}\n";
        assert_eq!(
            problems(text),
            v(&[
                "3: prometheus.timeout: expected a duration such as 30s, got an integer (add a unit: ms, s, m, h, d, w, y)",
                "4: evaluation.concurrency: must be at least 1, got 0",
                "7: monitors[0].window: must be greater than 0",
                "9: monitors[0].signals.c.detectors[0].threshold: must not be negative, got -1",
            ])
        );
    }

    #[test]
    fn selectors_are_stored_without_braces() {
        for (written, stored) in [
            (r#"'{namespace="ml"}'"#, r#"namespace="ml""#),
            (r#"'namespace="ml"'"#, r#"namespace="ml""#),
            (
                r#"'{a!="1", b!~`x\d`, c=~''y'',}'"#,
                r#"a!="1", b!~`x\d`, c=~'y',"#,
            ),
            ("'{}'", ""),
        ] {
            let config = parse(&mon(&format!("selector: {written}"))).unwrap();
            assert_eq!(config.monitors[0].selector, stored, "{written}");
        }
    }

    #[test]
    fn file_problems_have_no_line() {
        let error = load_file(Path::new("/nonexistent/model-monitor.yml")).unwrap_err();
        assert_eq!(error.problems.len(), 1);
        assert_eq!(error.problems[0].line, None);
        assert!(
            error.problems[0]
                .to_string()
                .starts_with("/nonexistent/model-monitor.yml: cannot read the file: "),
            "{}",
            error.problems[0]
        );
    }
}
