//! The engine's side of alerting: the detectors' verdicts of one
//! evaluation into the [`Lifecycle`], and its notices out to the sink.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::evaluator::{Evaluation, Evaluator};
use super::events::MonitorEvent;
use super::explanations::AlertedDetectors;
use super::snapshot::{DetectorOutcome, DetectorResult, SignalResult, SignalResults};
use super::source::Source;
use crate::alerting::{AlertKey, AlertNotice, AlertSink, Lifecycle, Observation, Seen};
use crate::detectors::Verdict;
use crate::model::{DetectionRecord, InferenceMetrics, ModelId, ModelKey, SignalSummary};

/// What one detector outcome says about its alert: an observation, and the
/// detection when the detector decided. Results kept from an earlier
/// evaluation (`fresh` false: a failed query) decide nothing now.
fn observe(
    outcome: &DetectorOutcome,
    result: &SignalResult,
    fresh: bool,
) -> (Observation, Option<DetectionRecord>) {
    let DetectorResult::Detection(detection) = &outcome.result else {
        return (Observation::Unknown, None);
    };
    if !fresh {
        return (Observation::Unknown, None);
    }
    let record = DetectionRecord {
        score: detection.score,
        threshold: detection.threshold,
        p_value: detection.p_value,
        current_samples: result.current.as_ref().map_or(0.0, |c| c.samples),
        reference_samples: result.reference_samples.unwrap_or(0.0),
        explanation: outcome.explanation.clone(),
    };
    match detection.verdict {
        Verdict::Drift => (Observation::Drifting, Some(record)),
        Verdict::NoDrift => (Observation::Clean, Some(record)),
        _ => (Observation::Unknown, None),
    }
}

impl Evaluation {
    /// What the source's detector verdicts of this evaluation say about
    /// each alert key, for [`Lifecycle::evaluate_source`]; sends each fresh
    /// model's metrics to event subscribers, if there are any.
    ///
    /// At 10,000 models nearly every (model, signal, detector) is clean and
    /// has no alert, so only keys that drift or already have an alert are
    /// built; a model's [`InferenceMetrics`] is built at most once and
    /// shared by all its alerts, notices and events, and its labels are
    /// those its stored alert keys already share.
    pub(super) fn seen_alerts(
        &mut self,
        source: &Source,
        alerted: &AlertedDetectors<'_>,
        lifecycle: &Lifecycle,
        want_events: bool,
    ) -> BTreeMap<AlertKey, Seen> {
        let name = source.collector.name();
        let at = self.at;
        let source_name: Arc<str> = Arc::from(name);
        let mut seen: BTreeMap<AlertKey, Seen> = BTreeMap::new();
        // Models with an alert whose every alert had an outcome now need
        // no second look; the others, for the alerts that did not.
        let mut incomplete: HashSet<&[(String, String)]> = HashSet::new();
        let models = self.snapshot.models.iter();
        for (id, signals) in models.filter(|(id, _)| id.source == name) {
            let mut inference: Option<Arc<InferenceMetrics>> = None;
            let mut metrics = || {
                Arc::clone(
                    inference.get_or_insert_with(|| Arc::new(inference_metrics(id, signals, at))),
                )
            };
            // Results kept from an earlier evaluation (a failed query) are
            // no news to subscribers.
            if want_events && signals.values().any(|result| result.evaluated_at == at) {
                self.events.push(MonitorEvent::MetricsSnapshot(metrics()));
            }
            let model = id.model.0.as_slice();
            let alerted_model = alerted.model(model);
            // The model's labels: its alerts' own, or copied once for all
            // its new keys.
            let mut labels: Option<Arc<[(String, String)]>> = alerted_model.cloned();
            let mut alerts_seen = 0;
            for (signal, result) in signals {
                let mut signal_name: Option<Arc<str>> = None;
                let fresh = result.evaluated_at == at;
                for outcome in &result.detectors {
                    let progress = alerted_model
                        .and_then(|_| alerted.progress(model, signal, &outcome.detector));
                    let has_alert = progress.is_some();
                    let (observation, detection) = observe(outcome, result, fresh);
                    if !has_alert && observation != Observation::Drifting {
                        // No alert and no reason to start one.
                        continue;
                    }
                    alerts_seen += usize::from(has_alert);
                    let key = AlertKey {
                        source: Arc::clone(&source_name),
                        labels: Arc::clone(labels.get_or_insert_with(|| Arc::from(model))),
                        signal: Arc::clone(
                            signal_name.get_or_insert_with(|| Arc::from(signal.as_str())),
                        ),
                        detector: Arc::clone(&outcome.detector),
                    };
                    // Metrics only where the alert will carry them (a new
                    // alert, a notice): building them for every alerted
                    // model each evaluation cost more than the detectors.
                    let needs_metrics =
                        Lifecycle::needs_metrics(progress, observation, at, &source.policy);
                    let seen_now = Seen {
                        kind: outcome.kind,
                        observation,
                        detection,
                        metrics: needs_metrics.then(&mut metrics),
                    };
                    seen.insert(key, seen_now);
                }
            }
            if alerted_model.is_some() && alerts_seen < alerted.alerts_of(model) {
                incomplete.insert(model);
            }
        }
        // An alert whose model is still there but whose detector produced
        // nothing (a rejected window) has no decision; only a model missing
        // from the answer, or a detector the monitor no longer runs (a
        // reload removed it), is absent.
        if !incomplete.is_empty() {
            for alert in lifecycle.alerts.values() {
                if &*alert.key.source != name || !incomplete.contains(&*alert.key.labels) {
                    continue;
                }
                if !seen.contains_key(&alert.key)
                    && source.runs(&alert.key.signal, &alert.key.detector)
                {
                    // No decision: no notice, so no metrics.
                    let unknown = Seen {
                        kind: alert.kind,
                        observation: Observation::Unknown,
                        detection: None,
                        metrics: None,
                    };
                    seen.insert(alert.key.clone(), unknown);
                }
            }
        }
        seen
    }
}

impl Source {
    /// Whether this source runs `detector` on `signal`.
    fn runs(&self, signal: &str, detector: &str) -> bool {
        self.detectors.iter().any(|scoped| {
            &*scoped.name == detector && scoped.signal.as_deref().is_none_or(|s| s == signal)
        })
    }
}

/// The lifecycle the sink stored last; empty without a sink, or when it
/// cannot be read.
pub(super) fn restore(sink: Option<&Arc<dyn AlertSink>>) -> Lifecycle {
    match sink.map(|sink| sink.restore()) {
        Some(Ok(Some(lifecycle))) => lifecycle,
        Some(Err(error)) => {
            tracing::error!(%error, "cannot restore the alert state; starting without alerts");
            Lifecycle::default()
        }
        Some(Ok(None)) | None => Lifecycle::default(),
    }
}

impl Evaluator {
    /// Hands this evaluation's notices and the lifecycle to the sink, in one
    /// blocking call off the async threads.
    pub(super) async fn store_alerts(&mut self, notices: &[AlertNotice]) {
        for notice in notices {
            tracing::info!(
                source = %notice.key.source,
                model = %ModelKey(notice.key.labels.to_vec()),
                signal = %notice.key.signal,
                detector = %notice.key.detector,
                score = notice.detection.score,
                threshold = notice.detection.threshold,
                transition = ?notice.transition,
                "alert"
            );
        }
        let Some(sink) = self.shared.sink.clone() else {
            // Nowhere to store: nothing is owed to a store either.
            self.lifecycle.mark_stored();
            return;
        };
        if notices.is_empty() && !self.lifecycle.has_unstored_changes() {
            return;
        }
        // Only what changed goes to the sink (and across to its thread).
        let (notices, changes) = (notices.to_vec(), self.lifecycle.changes());
        match tokio::task::spawn_blocking(move || sink.record(&notices, &changes)).await {
            Ok(Ok(())) => self.lifecycle.mark_stored(),
            Ok(Err(error)) => tracing::error!(%error, "cannot store alert notifications"),
            Err(error) => tracing::error!(%error, "storing alert notifications failed"),
        }
    }
}

/// The model's metrics in this evaluation, for notices and events.
fn inference_metrics(id: &ModelId, signals: &SignalResults, at: DateTime<Utc>) -> InferenceMetrics {
    let summaries: BTreeMap<String, SignalSummary> = signals
        .iter()
        .filter_map(|(name, result)| result.current.clone().map(|s| (name.clone(), s)))
        .collect();
    let confidence = summaries.get("confidence");
    let latency = summaries.get("latency");
    let ms = |seconds: f64| seconds * 1000.0;
    InferenceMetrics {
        confidence_mean: confidence.map(|c| c.mean),
        confidence_std: confidence.map(|c| c.stddev),
        p50_latency_ms: latency.map(|l| ms(l.p50)),
        p95_latency_ms: latency.map(|l| ms(l.p95)),
        p99_latency_ms: latency.map(|l| ms(l.p99)),
        signals: summaries,
        ..InferenceMetrics::identity(&id.source, &id.model.0, at)
    }
}
