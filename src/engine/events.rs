//! [`MonitorEvent`]: what one evaluation tells its observers.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::detectors::AlertKind;
use crate::model::{DetectionRecord, InferenceMetrics};

/// Receives [`MonitorEvent`]s.
pub type EventReceiver = broadcast::Receiver<MonitorEvent>;

/// What happened in one evaluation, for observers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum MonitorEvent {
    /// One model's signals at one evaluation.
    MetricsSnapshot(Arc<InferenceMetrics>),
    /// A drift alert started firing (after `for` drifting evaluations), or
    /// repeats (`repeat`) `repeat_interval` after its last notification.
    DriftAlert {
        metrics: Arc<InferenceMetrics>,
        signal: String,
        detector: String,
        detection: DetectionRecord,
        detail: String,
        /// When the episode's first drifting evaluation was.
        started_at: DateTime<Utc>,
        repeat: bool,
    },
    /// A performance alert (quantile ratio, SLO) started firing or repeats.
    PerformanceAlert {
        metrics: Arc<InferenceMetrics>,
        signal: String,
        detector: String,
        detection: DetectionRecord,
        detail: String,
        started_at: DateTime<Utc>,
        repeat: bool,
    },
    /// A firing alert resolved: `resolve_after` clean evaluations, or its
    /// model was absent that many evaluations.
    Resolved {
        metrics: Arc<InferenceMetrics>,
        signal: String,
        detector: String,
        kind: AlertKind,
        detail: String,
        started_at: DateTime<Utc>,
    },
    /// A source's query failed; its previous results stay in place.
    SourceError {
        source: String,
        signal: String,
        message: String,
    },
    /// An evaluation finished.
    EvaluationCompleted {
        timestamp: DateTime<Utc>,
        duration_seconds: f64,
    },
}
