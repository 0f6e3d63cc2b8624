//! What the loop evaluates: a [`Source`] is one collector (a monitor's
//! PromQL queries, or an embedder's collector) with the detectors that run
//! on its observations and the policy of its alerts.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::alerting::AlertPolicy;
use crate::detectors::DriftDetector;
use crate::sources::MetricCollector;

/// A detector and the signals it applies to.
#[derive(Clone)]
pub(super) struct ScopedDetector {
    /// `None`: every signal.
    pub(super) signal: Option<String>,
    pub(super) detector: Arc<dyn DriftDetector>,
    /// The detector's name, shared by every outcome it produces.
    pub(super) name: Arc<str>,
    /// Whether it also decides on the short window (`super::multi_window`).
    pub(super) multi_window: bool,
}

impl ScopedDetector {
    pub(super) fn new(signal: Option<String>, detector: Arc<dyn DriftDetector>) -> ScopedDetector {
        let name = Arc::from(detector.name());
        ScopedDetector {
            signal,
            detector,
            name,
            multi_window: false,
        }
    }
}

/// A collector with the detectors configured for it.
#[derive(Clone)]
pub(super) struct Source {
    pub(super) collector: Arc<dyn MetricCollector>,
    pub(super) detectors: Vec<ScopedDetector>,
    pub(super) group_by: Vec<String>,
    /// When its alerts fire, repeat and resolve.
    pub(super) policy: AlertPolicy,
    /// Built from a config's monitor: a reload replaces it.
    pub(super) from_config: bool,
}

/// The names of the sources built from a config.
pub(super) fn config_names(sources: &[Source]) -> BTreeSet<String> {
    sources
        .iter()
        .filter(|source| source.from_config)
        .map(|source| source.collector.name().to_owned())
        .collect()
}
