//! [`MonitorEvent`]: what one evaluation tells its observers.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::alerting::{AlertNotice, Transition};
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

impl MonitorEvent {
    /// The event of an alert notice.
    pub(super) fn of_notice(notice: &AlertNotice) -> MonitorEvent {
        let (metrics, signal, detector) = (
            notice.metrics.clone(),
            notice.key.signal.to_string(),
            notice.key.detector.to_string(),
        );
        let detection = notice.detection.clone();
        let started_at = notice.started_at;
        let kind = notice.kind.as_str();
        if notice.transition == Transition::Resolved {
            return MonitorEvent::Resolved {
                detail: format!(
                    "{signal} {detector} {kind} resolved: score {:.4} against threshold {:.4}",
                    detection.score, detection.threshold
                ),
                metrics,
                signal,
                detector,
                kind: notice.kind,
                started_at,
            };
        }
        let detail = format!(
            "{signal} {detector} {kind} score {:.4} >= threshold {:.4}",
            detection.score, detection.threshold
        );
        let repeat = notice.transition == Transition::Repeated;
        // The two alert events carry the same fields.
        macro_rules! alert {
            ($variant:ident) => {
                MonitorEvent::$variant {
                    metrics,
                    signal,
                    detector,
                    detection,
                    detail,
                    started_at,
                    repeat,
                }
            };
        }
        match notice.kind {
            AlertKind::Drift => alert!(DriftAlert),
            AlertKind::Performance => alert!(PerformanceAlert),
        }
    }
}
