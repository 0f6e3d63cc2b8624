//! The records every layer shares: which model ([`ModelKey`], [`ModelId`]),
//! what its signals looked like in one evaluation ([`SignalSummary`],
//! [`InferenceMetrics`]) and what a detector found ([`DetectionRecord`],
//! with what moved).
//!
//! These are plain data: sources produce keys, the engine fills in the
//! metrics, the alert lifecycle and the sinks read them.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::detectors::Explanation;
use crate::stats::Distribution;

/// Identifies a model: the values of the monitor's `group_by` labels, in
/// `group_by` order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct ModelKey(pub Vec<(String, String)>);

/// `{model="fraud", version="v3"}`: the model as a PromQL selector, for
/// logs and messages.
impl std::fmt::Display for ModelKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("{")?;
        for (index, (name, value)) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{name}={value:?}")?;
        }
        f.write_str("}")
    }
}

impl ModelKey {
    /// The value of one label, if it is part of the key.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Identifies one model of one source.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ModelId {
    pub source: String,
    pub model: ModelKey,
}

/// Descriptive statistics of one signal's current window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalSummary {
    pub samples: f64,
    pub mean: f64,
    pub stddev: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
}

impl SignalSummary {
    pub fn of(distribution: &Distribution) -> SignalSummary {
        SignalSummary {
            samples: distribution.total(),
            mean: distribution.mean(),
            stddev: distribution.stddev(),
            p50: distribution.quantile(0.5),
            p95: distribution.quantile(0.95),
            p99: distribution.quantile(0.99),
        }
    }
}

/// Per-model inference metrics of one evaluation, as in the original
/// sketch. The confidence and latency fields come from the signals named
/// `confidence` and `latency` (latency in seconds becomes milliseconds);
/// every signal is in `signals`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InferenceMetrics {
    pub model_name: String,
    pub model_version: String,
    /// The monitor (source) that observed it.
    pub monitor: String,
    /// Every `group_by` label of the model.
    pub labels: BTreeMap<String, String>,
    pub timestamp: DateTime<Utc>,
    pub confidence_mean: Option<f64>,
    pub confidence_std: Option<f64>,
    pub p50_latency_ms: Option<f64>,
    pub p95_latency_ms: Option<f64>,
    pub p99_latency_ms: Option<f64>,
    pub signals: BTreeMap<String, SignalSummary>,
}

impl InferenceMetrics {
    /// A model's identity at `at` without any observation: `model` and
    /// `version` from its labels, every number absent.
    pub fn identity(
        monitor: &str,
        labels: &[(String, String)],
        at: DateTime<Utc>,
    ) -> InferenceMetrics {
        let label = |name: &str| {
            labels
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
                .unwrap_or_default()
        };
        InferenceMetrics {
            model_name: label("model"),
            model_version: label("version"),
            monitor: monitor.to_owned(),
            labels: labels.iter().cloned().collect(),
            timestamp: at,
            confidence_mean: None,
            confidence_std: None,
            p50_latency_ms: None,
            p95_latency_ms: None,
            p99_latency_ms: None,
            signals: BTreeMap::new(),
        }
    }
}

/// A detection as carried in events and the status API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectionRecord {
    pub score: f64,
    pub threshold: f64,
    pub p_value: Option<f64>,
    pub current_samples: f64,
    pub reference_samples: f64,
    /// What moved, for a drifting or alerted detector
    /// (`docs/statistics.md`, section 10); absent in rows stored before
    /// explanations existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Arc<Explanation>>,
}
