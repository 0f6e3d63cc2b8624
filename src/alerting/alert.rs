//! The alert records: what identifies an alert, what one evaluation says
//! about it, where it is in its life, and what notifications and the status
//! API are told about it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::AlertingConfig;
use crate::detectors::AlertKind;
use crate::model::{DetectionRecord, InferenceMetrics};

/// Identifies one alert.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
///
/// Its parts are shared (`Arc`): the evaluation loop builds a key for every
/// detector of every model that has or may start an alert, so a clone is a
/// few reference counts, and all keys of one model share its labels. Keys
/// order by source, labels, signal, detector; a part shared by both keys
/// compares equal without reading it.
pub struct AlertKey {
    /// The monitor (source) whose detector raised it.
    pub source: Arc<str>,
    /// The model's `group_by` labels, in the monitor's order.
    pub labels: Arc<[(String, String)]>,
    pub signal: Arc<str>,
    pub detector: Arc<str>,
}

impl Ord for AlertKey {
    fn cmp(&self, other: &AlertKey) -> std::cmp::Ordering {
        /// The parts' order; the same allocation is the same value.
        fn part<T: Ord + ?Sized>(a: &Arc<T>, b: &Arc<T>) -> std::cmp::Ordering {
            if Arc::ptr_eq(a, b) {
                std::cmp::Ordering::Equal
            } else {
                (**a).cmp(&**b)
            }
        }
        part(&self.source, &other.source)
            .then_with(|| part(&self.labels, &other.labels))
            .then_with(|| part(&self.signal, &other.signal))
            .then_with(|| part(&self.detector, &other.detector))
    }
}

impl PartialOrd for AlertKey {
    fn partial_cmp(&self, other: &AlertKey) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl AlertKey {
    /// The value of one model label.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What one evaluation says about one alert's detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    /// The detector decided: drift (or a breach).
    Drifting,
    /// The detector decided: no drift.
    Clean,
    /// No decision: too few samples, a detector error, a failed query.
    Unknown,
    /// The model is not in its source's answer any more.
    Absent,
}

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// Drifting, but not yet for `for` evaluations.
    Pending,
    Firing,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// The counters and times of one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub state: AlertState,
    /// Consecutive drifting evaluations (while pending).
    pub drifting: u32,
    /// Consecutive clean or absent evaluations (while firing).
    pub clean: u32,
    /// The first drifting evaluation of this episode.
    pub active_since: DateTime<Utc>,
    /// When it started firing.
    pub fired_at: Option<DateTime<Utc>>,
    /// The evaluation of the last firing or repeat notification.
    pub last_notified: Option<DateTime<Utc>>,
}

impl Progress {
    /// A pending alert whose episode starts at `at`, with `drifting`
    /// drifting evaluations so far.
    pub fn pending(at: DateTime<Utc>, drifting: u32) -> Progress {
        Progress {
            state: AlertState::Pending,
            drifting,
            clean: 0,
            active_since: at,
            fired_at: None,
            last_notified: None,
        }
    }
}

/// A change observers act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transition {
    /// The alert started firing.
    Fired,
    /// Still firing, `repeat_interval` after the last notification.
    Repeated,
    /// It stopped firing.
    Resolved,
}

/// The lifecycle settings, as counts and a duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertPolicy {
    pub for_evaluations: u32,
    pub resolve_after: u32,
    pub repeat_interval: Duration,
}

impl From<AlertingConfig> for AlertPolicy {
    fn from(config: AlertingConfig) -> Self {
        AlertPolicy {
            for_evaluations: config.for_evaluations.max(1),
            resolve_after: config.resolve_after.max(1),
            repeat_interval: config.repeat_interval,
        }
    }
}

impl Default for AlertPolicy {
    fn default() -> Self {
        AlertingConfig::default().into()
    }
}

/// One alert: its progress and the last detection and model metrics seen
/// (what notifications show).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub key: AlertKey,
    pub kind: AlertKind,
    pub progress: Progress,
    pub detection: DetectionRecord,
    /// Shared with the evaluation's other alerts, notices and events of the
    /// same model: one copy per model and evaluation, however many alerts.
    pub metrics: Arc<InferenceMetrics>,
}

/// An alert without its detection and metrics: what a store rewrites when
/// only the progress moved (see [`AlertChanges`](super::AlertChanges)).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertProgress {
    pub key: AlertKey,
    pub kind: AlertKind,
    pub progress: Progress,
}

impl AlertProgress {
    pub fn of(alert: &Alert) -> AlertProgress {
        AlertProgress {
            key: alert.key.clone(),
            kind: alert.kind,
            progress: alert.progress,
        }
    }
}

/// Everything a notification needs about one alert at one transition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertNotice {
    pub transition: Transition,
    pub key: AlertKey,
    pub kind: AlertKind,
    /// When the episode started (first drifting evaluation).
    pub started_at: DateTime<Utc>,
    /// The evaluation that resolved it.
    pub ended_at: Option<DateTime<Utc>>,
    /// The evaluation that caused this notice.
    pub at: DateTime<Utc>,
    /// Which repeat this is: 0 for the firing and the resolved notice, `k`
    /// for the repeat due `k` repeat intervals after the alert fired
    /// ([`repeat_number`](super::repeat_number)). Every replica numbers an
    /// episode's repeats the same way, so a notification's id can name it.
    #[serde(default)]
    pub repeat: u32,
    /// The last decided detection (for a resolved alert: the clean one, or
    /// the last drifting one when the model vanished).
    pub detection: DetectionRecord,
    /// The model's metrics in the last evaluation that saw it.
    pub metrics: Arc<InferenceMetrics>,
}

impl AlertNotice {
    /// The notice of `alert` (before its progress moves on) at `transition`.
    pub(super) fn of(alert: &Alert, transition: Transition, at: DateTime<Utc>) -> AlertNotice {
        AlertNotice {
            transition,
            key: alert.key.clone(),
            kind: alert.kind,
            started_at: alert.progress.active_since,
            ended_at: (transition == Transition::Resolved).then_some(at),
            at,
            repeat: 0,
            detection: alert.detection.clone(),
            metrics: Arc::clone(&alert.metrics),
        }
    }

    pub fn is_resolved(&self) -> bool {
        self.transition == Transition::Resolved
    }

    /// `firing` or `resolved`.
    pub fn status(&self) -> &'static str {
        if self.is_resolved() {
            "resolved"
        } else {
            "firing"
        }
    }
}

/// An alert as the status API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertSummary {
    pub monitor: String,
    pub labels: BTreeMap<String, String>,
    pub signal: String,
    pub detector: String,
    pub kind: AlertKind,
    pub state: AlertState,
    pub active_since: DateTime<Utc>,
    pub fired_at: Option<DateTime<Utc>>,
    pub score: f64,
    pub threshold: f64,
}

impl AlertSummary {
    pub fn of(alert: &Alert) -> AlertSummary {
        AlertSummary {
            monitor: alert.key.source.to_string(),
            labels: alert.key.labels.iter().cloned().collect(),
            signal: alert.key.signal.to_string(),
            detector: alert.key.detector.to_string(),
            kind: alert.kind,
            state: alert.progress.state,
            active_since: alert.progress.active_since,
            fired_at: alert.progress.fired_at,
            score: alert.detection.score,
            threshold: alert.detection.threshold,
        }
    }
}
