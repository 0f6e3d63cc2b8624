//! The `monitors` section: each monitor's models (selector and `group_by`),
//! windows, sample gate and signals. Its `reference`, `alerting` and
//! detectors have their own files.

use std::collections::BTreeMap;
use std::time::Duration;

use super::alerting::AlertingConfig;
use super::decode::{Decoder, peek, shown};
use super::promql::{check_matchers, is_label_name, is_metric_name};
use super::reference::ReferenceConfig;
use super::scalars::NOT_NEGATIVE;
use super::signals::{SignalConfig, SignalKind};
use super::tree::{Node, join};

/// Default `monitors[].window`.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(5 * 60);
/// Default `monitors[].min_samples`, and of every detector built without one.
pub const DEFAULT_MIN_SAMPLES: f64 = 100.0;
/// Default `monitors[].group_by`: the labels that identify a model.
pub const DEFAULT_GROUP_BY: [&str; 2] = ["model", "version"];

/// Labels the sidecar exports itself, so they cannot identify a model.
const EXPORTED_LABELS: [&str; 4] = ["monitor", "signal", "detector", "q"];

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
    /// A shorter window ending at the same time, tested beside the current
    /// one by the hypothesis-test detectors (each window at half the
    /// false-alarm rate, `docs/statistics.md` section 3.6); shorter than
    /// `window`. Default none.
    pub short_window: Option<Duration>,
    pub reference: ReferenceConfig,
    /// `reference.refresh`: how often the reference is queried anew;
    /// `None` for the kind's default ([`ReferenceConfig::refresh`]).
    pub reference_refresh: Option<Duration>,
    /// Observations needed in each window before a decision. Default 100.
    pub min_samples: f64,
    /// Signals by name (`confidence`, `latency`, ...); at least one.
    pub signals: BTreeMap<String, SignalConfig>,
    /// When alerts of this monitor's models fire, repeat and resolve.
    pub alerting: AlertingConfig,
}

impl MonitorConfig {
    /// A monitor of every model (no selector) with every optional setting
    /// at its default.
    pub fn new(name: impl Into<String>, signals: BTreeMap<String, SignalConfig>) -> MonitorConfig {
        MonitorConfig {
            name: name.into(),
            selector: String::new(),
            group_by: default_group_by(),
            window: DEFAULT_WINDOW,
            short_window: None,
            reference: ReferenceConfig::default(),
            reference_refresh: None,
            min_samples: DEFAULT_MIN_SAMPLES,
            signals,
            alerting: AlertingConfig::default(),
        }
    }
}

/// [`DEFAULT_GROUP_BY`] as owned labels.
pub fn default_group_by() -> Vec<String> {
    DEFAULT_GROUP_BY.map(str::to_owned).to_vec()
}

impl Decoder<'_> {
    pub(super) fn monitors(&mut self, node: &Node, path: &str) -> Option<Vec<MonitorConfig>> {
        let items = self.sequence(node, path)?;
        if items.is_empty() {
            self.report(node.line, path, "at least one monitor is required");
            return None;
        }
        let unique = self.unique_names(items, path, "monitor");
        let monitors = self.each(items, path, Self::monitor);
        monitors.filter(|_| unique)
    }

    fn monitor(&mut self, node: &Node, path: &str) -> Option<MonitorConfig> {
        self.section(node, path, |d, fields| {
            let name = d.required(fields, "name", Self::non_empty);
            let selector = d.optional(fields, "selector", String::new(), Self::selector);
            let group_by = d.optional(fields, "group_by", default_group_by(), Self::group_by);
            let window = d.optional(fields, "window", DEFAULT_WINDOW, Self::positive_duration);
            let short_window = d.optional(fields, "short_window", None, |d, n, p| {
                d.short_window(n, p, window)
            });
            let reference = d.optional(
                fields,
                "reference",
                (ReferenceConfig::default(), None),
                Self::reference,
            );
            let min_samples = d.optional(fields, "min_samples", DEFAULT_MIN_SAMPLES, |d, n, p| {
                d.number_where(n, p, NOT_NEGATIVE)
            });
            let signals = d.required(fields, "signals", Self::signals);
            let alerting = d.optional(
                fields,
                "alerting",
                AlertingConfig::default(),
                Self::alerting,
            );
            if let (Some(group_by), Some(signals)) = (&group_by, &signals)
                && !d.class_labels_apart(fields, group_by, signals)
            {
                return None;
            }
            let (reference, reference_refresh) = reference?;
            Some(MonitorConfig {
                name: name?,
                selector: selector?,
                group_by: group_by?,
                window: window?,
                short_window: short_window?,
                reference,
                reference_refresh,
                min_samples: min_samples?,
                signals: signals?,
                alerting: alerting?,
            })
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
            let problem = if !is_label_name(label) {
                Some(format!("invalid label name {}", shown(item)))
            } else if label == "le" {
                Some("le cannot be in group_by: it is the bucket label".to_owned())
            } else if label == "__name__" {
                // Found by fuzzing: the text format reserves it, so one such
                // label would make Prometheus reject the whole scrape.
                Some("__name__ cannot be in group_by: it is the metric name, not a label /metrics can carry".to_owned())
            } else if EXPORTED_LABELS.contains(&label.as_str()) {
                Some(format!(
                    "{label} cannot be in group_by: model-monitor exports its own {label} label"
                ))
            } else if seen.contains(label) {
                Some(format!("duplicate label {}", shown(item)))
            } else {
                None
            };
            if let Some(message) = problem {
                self.report(item.line, &item_path, message);
                ok = false;
            }
            seen.push(label.clone());
        }
        ok.then_some(seen)
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
            match self.signal(value, &signal_path, &key.text) {
                Some(signal) => {
                    signals.insert(key.text.clone(), signal);
                }
                None => ok = false,
            }
        }
        ok.then_some(signals)
    }

    fn signal(&mut self, node: &Node, path: &str, name: &str) -> Option<SignalConfig> {
        if peek(node, "counter").is_some() {
            return self.class_signal(node, path);
        }
        self.section(node, path, |d, fields| {
            let histogram = d.required(fields, "histogram", Self::histogram);
            let kind = d.signal_kind(fields);
            let refuse = Self::accuracy_only_on_confidence(
                name,
                kind.as_ref().unwrap_or(&SignalKind::Histogram),
            );
            let detectors = d.signal_detectors(fields, &refuse);
            Some(SignalConfig {
                histogram: histogram?,
                detectors: detectors?,
                kind: kind?,
            })
        })
    }

    /// A metric name.
    pub(super) fn metric_name(&mut self, node: &Node, path: &str) -> Option<String> {
        let name = self.string(node, path)?;
        if !is_metric_name(&name) {
            self.report(
                node.line,
                path,
                format!("invalid metric name {}", shown(node)),
            );
            return None;
        }
        Some(name)
    }

    /// A histogram's base metric name.
    pub(super) fn histogram(&mut self, node: &Node, path: &str) -> Option<String> {
        let name = self.metric_name(node, path)?;
        if let Some(suffix) = ["_bucket", "_sum", "_count"]
            .iter()
            .find(|s| name.ends_with(*s))
        {
            self.report(
                node.line,
                path,
                format!("give the histogram's base name, without the {suffix} suffix"),
            );
            return None;
        }
        Some(name)
    }
}
