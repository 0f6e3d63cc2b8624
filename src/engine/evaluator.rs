//! The evaluation loop: at each tick, collect every source at one
//! evaluation time, run the detectors, step the alert lifecycle, publish a
//! [`Snapshot`] and broadcast [`MonitorEvent`]s. The loop is the only place
//! in the engine that owns time.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, Utc};
use futures::future::join_all;

use super::events::MonitorEvent;
use super::handle::Shared;
use super::snapshot::{
    DetectorOutcome, DetectorResult, STATUS_ALERT_LIMIT, SignalResult, Snapshot, SourceStatus,
};
use crate::alerting::{
    AlertKey, AlertNotice, AlertPolicy, Lifecycle, Observation, Seen, Transition,
};
use crate::detectors::{AlertKind, DriftDetector, Verdict, Windows};
use crate::model::{DetectionRecord, InferenceMetrics, ModelId, ModelKey, SignalSummary};
use crate::sources::{Collection, MetricCollector};
use crate::stats::Distribution;

/// A detector and the signals it applies to.
#[derive(Clone)]
pub(super) struct ScopedDetector {
    /// `None`: every signal.
    pub(super) signal: Option<String>,
    pub(super) detector: Arc<dyn DriftDetector>,
    /// The detector's name, shared by every outcome it produces.
    pub(super) name: Arc<str>,
}

impl ScopedDetector {
    pub(super) fn new(signal: Option<String>, detector: Arc<dyn DriftDetector>) -> ScopedDetector {
        let name = Arc::from(detector.name());
        ScopedDetector {
            signal,
            detector,
            name,
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
}

pub(super) struct Evaluator {
    pub(super) sources: Vec<Source>,
    pub(super) shared: Arc<Shared>,
    pub(super) interval: Duration,
    /// Every pending and firing alert.
    pub(super) lifecycle: Lifecycle,
}

impl Evaluator {
    pub(super) async fn run(mut self) {
        let shutdown = self.shared.shutdown.clone();
        let mut next = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep_until(next) => {}
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.evaluate() => {}
            }
            let (following, skipped) = next_tick(next, self.interval, tokio::time::Instant::now());
            if skipped > 0 {
                self.shared.metrics.skipped_ticks.inc_by(skipped);
                tracing::warn!(
                    interval = ?self.interval,
                    skipped,
                    "evaluation took longer than the interval; skipping ticks"
                );
            }
            next = following;
        }
        tracing::info!("evaluation loop stopped");
    }

    /// One evaluation: collect, detect, publish.
    async fn evaluate(&mut self) {
        let started = Instant::now();
        let at = Utc::now().trunc_subsecs(3);
        let collections = join_all(self.sources.iter().map(|source| {
            let collector = source.collector.clone();
            async move { collector.collect(at).await }
        }))
        .await;

        let previous = self.shared.snapshot.load_full();
        let mut snapshot = Snapshot {
            timestamp: Some(at),
            evaluations: previous.evaluations + 1,
            group_by: previous.group_by.clone(),
            ..Snapshot::default()
        };
        let mut events = Vec::new();
        let mut notices = Vec::new();
        let sources = self.sources.clone();
        for (source, collection) in sources.iter().zip(collections) {
            let name = source.collector.name().to_owned();
            let collection = match collection {
                Ok(collection) => collection,
                Err(error) => {
                    tracing::warn!(source = %name, error = format!("{error:#}"), "collector failed");
                    // The whole source failed: every signal keeps its results.
                    // One failure per signal, not one per model and signal.
                    let failed: BTreeSet<String> = previous
                        .models
                        .iter()
                        .filter(|(id, _)| id.source == name)
                        .flat_map(|(_, signals)| signals.keys().cloned())
                        .chain(source.collector.signals())
                        .collect();
                    Collection {
                        observations: Vec::new(),
                        failures: failed
                            .into_iter()
                            .map(|signal| crate::sources::SignalFailure {
                                signal,
                                role: crate::sources::WindowRole::Current,
                                reason: "collector",
                                message: format!("{error:#}"),
                            })
                            .collect(),
                    }
                }
            };
            self.apply(
                source,
                &name,
                collection,
                at,
                &previous,
                &mut snapshot,
                &mut events,
                &mut notices,
            );
        }
        let duration = started.elapsed().as_secs_f64();
        snapshot.duration_seconds = duration;
        let metrics = &self.shared.metrics;
        metrics.evaluations.inc();
        metrics.evaluation_duration.observe(duration);
        metrics
            .last_evaluation_timestamp
            .set(at.timestamp_millis() as f64 / 1000.0);
        let (pending, firing) = self.lifecycle.counts();
        metrics
            .alerts
            .with_label_values(&["pending"])
            .set(pending as i64);
        metrics
            .alerts
            .with_label_values(&["firing"])
            .set(firing as i64);
        snapshot.alerts = self.lifecycle.summaries(STATUS_ALERT_LIMIT);
        (snapshot.alerts_pending, snapshot.alerts_firing) = (pending, firing);
        self.store_alerts(&notices).await;
        // Events follow the stored notices, so an observer never sees an
        // alert that a crash could still lose.
        if self.shared.event_tx.receiver_count() > 0 {
            events.extend(notices.iter().map(Self::notice_event));
        }
        self.shared.snapshot.store(Arc::new(snapshot));
        self.shared.ready.store(true, Ordering::Release);
        events.push(MonitorEvent::EvaluationCompleted {
            timestamp: at,
            duration_seconds: duration,
        });
        for event in events {
            // No subscriber is not an error.
            let _ = self.shared.event_tx.send(event);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn apply(
        &mut self,
        source: &Source,
        name: &str,
        collection: Collection,
        at: DateTime<Utc>,
        previous: &Snapshot,
        snapshot: &mut Snapshot,
        events: &mut Vec<MonitorEvent>,
        notices: &mut Vec<AlertNotice>,
    ) {
        let metrics = &self.shared.metrics;
        let failed_signals: BTreeSet<&str> = collection
            .failures
            .iter()
            .map(|f| f.signal.as_str())
            .collect();
        let up = collection.failures.is_empty();
        metrics.up.with_label_values(&[name]).set(i64::from(up));
        let last_success = if up {
            Some(at)
        } else {
            previous.sources.get(name).and_then(|s| s.last_success)
        };
        snapshot.sources.insert(
            name.to_owned(),
            SourceStatus {
                up,
                errors: collection
                    .failures
                    .iter()
                    .map(|f| format!("{} {} window: {}", f.signal, f.role.as_str(), f.message))
                    .collect(),
                last_success,
            },
        );
        for failure in &collection.failures {
            events.push(MonitorEvent::SourceError {
                source: name.to_owned(),
                signal: failure.signal.clone(),
                message: failure.message.clone(),
            });
        }
        // Signals whose query failed keep their previous results.
        for (id, signals) in previous.models.iter().filter(|(id, _)| id.source == name) {
            for (signal, result) in signals
                .iter()
                .filter(|(s, _)| failed_signals.contains(s.as_str()))
            {
                snapshot
                    .models
                    .entry(id.clone())
                    .or_default()
                    .insert(signal.clone(), result.clone());
            }
        }
        let mut seen_models: BTreeMap<ModelKey, Vec<(String, SignalResult)>> = BTreeMap::new();
        for observation in collection.observations {
            let result = self.evaluate_signal(source, name, &observation, at);
            seen_models
                .entry(observation.model)
                .or_default()
                .push((observation.signal, result));
        }
        for (model, signals) in seen_models {
            let id = ModelId {
                source: name.to_owned(),
                model,
            };
            let entry = snapshot.models.entry(id).or_default();
            for (signal, result) in signals {
                entry.insert(signal, result);
            }
        }
        self.update_alerts(source, name, at, snapshot, events, notices);
    }

    /// Feeds the source's detector verdicts of this evaluation into the
    /// alert lifecycle and collects the notices; sends each fresh model's
    /// metrics to event subscribers, if there are any.
    ///
    /// At 10,000 models nearly every (model, signal, detector) is clean and
    /// has no alert, so only keys that drift or already have an alert are
    /// built, and a model's [`InferenceMetrics`] is built at most once and
    /// shared by all its alerts, notices and events.
    fn update_alerts(
        &mut self,
        source: &Source,
        name: &str,
        at: DateTime<Utc>,
        snapshot: &Snapshot,
        events: &mut Vec<MonitorEvent>,
        notices: &mut Vec<AlertNotice>,
    ) {
        let want_events = self.shared.event_tx.receiver_count() > 0;
        let source_name: Arc<str> = Arc::from(name);
        let mut seen: BTreeMap<AlertKey, Seen> = BTreeMap::new();
        {
            // Label sets of this source's models that have an alert.
            let alerted: HashSet<&[(String, String)]> = self
                .lifecycle
                .alerts
                .keys()
                .filter(|key| &*key.source == name)
                .map(|key| &*key.labels)
                .collect();
            let mut present: HashMap<&[(String, String)], Arc<InferenceMetrics>> = HashMap::new();
            for (id, signals) in snapshot.models.iter().filter(|(id, _)| id.source == name) {
                let mut inference: Option<Arc<InferenceMetrics>> = None;
                let mut metrics = || {
                    Arc::clone(
                        inference
                            .get_or_insert_with(|| Arc::new(inference_metrics(id, signals, at))),
                    )
                };
                // Results kept from an earlier evaluation (a failed query)
                // decide nothing now, and are no news to subscribers.
                if want_events && signals.values().any(|result| result.evaluated_at == at) {
                    events.push(MonitorEvent::MetricsSnapshot(metrics()));
                }
                let has_alert = alerted.contains(id.model.0.as_slice());
                // The model's labels, copied once for all its keys.
                let mut labels: Option<Arc<[(String, String)]>> = None;
                for (signal, result) in signals {
                    let mut signal_name: Option<Arc<str>> = None;
                    let fresh = result.evaluated_at == at;
                    for outcome in &result.detectors {
                        let (observation, detection) = match &outcome.result {
                            DetectorResult::Detection(detection) if fresh => {
                                let record = DetectionRecord {
                                    score: detection.score,
                                    threshold: detection.threshold,
                                    p_value: detection.p_value,
                                    current_samples: result
                                        .current
                                        .as_ref()
                                        .map_or(0.0, |c| c.samples),
                                    reference_samples: result.reference_samples.unwrap_or(0.0),
                                };
                                match detection.verdict {
                                    Verdict::Drift => (Observation::Drifting, Some(record)),
                                    Verdict::NoDrift => (Observation::Clean, Some(record)),
                                    _ => (Observation::Unknown, None),
                                }
                            }
                            _ => (Observation::Unknown, None),
                        };
                        if !has_alert && observation != Observation::Drifting {
                            // No alert and no reason to start one.
                            continue;
                        }
                        seen.insert(
                            AlertKey {
                                source: Arc::clone(&source_name),
                                labels: Arc::clone(
                                    labels.get_or_insert_with(|| Arc::from(id.model.0.as_slice())),
                                ),
                                signal: Arc::clone(
                                    signal_name.get_or_insert_with(|| Arc::from(signal.as_str())),
                                ),
                                detector: Arc::clone(&outcome.detector),
                            },
                            Seen {
                                kind: outcome.kind,
                                observation,
                                detection,
                                metrics: metrics(),
                            },
                        );
                    }
                }
                if has_alert {
                    present.insert(id.model.0.as_slice(), metrics());
                }
            }
            // An alert whose model is still there but whose detector produced
            // nothing (a rejected window) has no decision; only a model
            // missing from the answer is absent.
            for alert in self.lifecycle.alerts.values() {
                if &*alert.key.source != name || seen.contains_key(&alert.key) {
                    continue;
                }
                if let Some(metrics) = present.get(&*alert.key.labels) {
                    seen.insert(
                        alert.key.clone(),
                        Seen {
                            kind: alert.kind,
                            observation: Observation::Unknown,
                            detection: None,
                            metrics: Arc::clone(metrics),
                        },
                    );
                }
            }
        }
        notices.extend(
            self.lifecycle
                .evaluate_source(name, seen, at, &source.policy),
        );
    }

    /// Hands this evaluation's notices and the lifecycle to the sink, in one
    /// blocking call off the async threads.
    async fn store_alerts(&mut self, notices: &[AlertNotice]) {
        for notice in notices {
            tracing::info!(
                source = %notice.key.source,
                model = %crate::model::ModelKey(notice.key.labels.to_vec()),
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

    /// The event of an alert notice.
    fn notice_event(notice: &AlertNotice) -> MonitorEvent {
        let (metrics, signal, detector) = (
            notice.metrics.clone(),
            notice.key.signal.to_string(),
            notice.key.detector.to_string(),
        );
        let detection = notice.detection.clone();
        let started_at = notice.started_at;
        match notice.transition {
            Transition::Resolved => MonitorEvent::Resolved {
                detail: format!(
                    "{signal} {detector} {} resolved: score {:.4} against threshold {:.4}",
                    notice.kind.as_str(),
                    detection.score,
                    detection.threshold
                ),
                metrics,
                signal,
                detector,
                kind: notice.kind,
                started_at,
            },
            transition => {
                let detail = format!(
                    "{signal} {detector} {} score {:.4} >= threshold {:.4}",
                    notice.kind.as_str(),
                    detection.score,
                    detection.threshold
                );
                let repeat = transition == Transition::Repeated;
                match notice.kind {
                    AlertKind::Drift => MonitorEvent::DriftAlert {
                        metrics,
                        signal,
                        detector,
                        detection,
                        detail,
                        started_at,
                        repeat,
                    },
                    AlertKind::Performance => MonitorEvent::PerformanceAlert {
                        metrics,
                        signal,
                        detector,
                        detection,
                        detail,
                        started_at,
                        repeat,
                    },
                }
            }
        }
    }

    fn evaluate_signal(
        &self,
        source: &Source,
        name: &str,
        observation: &crate::sources::SignalObservation,
        at: DateTime<Utc>,
    ) -> SignalResult {
        let metrics = &self.shared.metrics;
        let mut errors = Vec::new();
        for (window, distribution) in [
            ("current", &observation.current),
            ("reference", &observation.reference),
        ] {
            match distribution {
                Ok(d) if d.corrections() > 0 => {
                    metrics
                        .bucket_corrections
                        .with_label_values(&[name, observation.signal.as_str()])
                        .inc_by(d.corrections() as u64);
                }
                Ok(_) => {}
                Err(reason) => {
                    if window == "current" || !reason.starts_with("no reference data") {
                        metrics
                            .model_errors
                            .with_label_values(&[name, observation.signal.as_str()])
                            .inc();
                        tracing::warn!(source = %name, model = %observation.model, signal = %observation.signal, window, reason = %reason, "histogram rejected");
                    }
                    errors.push(format!("{window} window: {reason}"));
                }
            }
        }
        let mut result = SignalResult {
            current: observation.current.as_ref().ok().map(SignalSummary::of),
            reference_samples: observation.reference.as_ref().ok().map(Distribution::total),
            error: (!errors.is_empty()).then(|| errors.join("; ")),
            detectors: Vec::new(),
            evaluated_at: at,
        };
        let (Ok(current), Ok(reference)) = (&observation.current, &observation.reference) else {
            return result;
        };
        for scoped in &source.detectors {
            if scoped
                .signal
                .as_deref()
                .is_some_and(|s| s != observation.signal)
            {
                continue;
            }
            let detector = &scoped.detector;
            let outcome = match detector.detect(Windows { reference, current }) {
                Ok(detection) if detection.score.is_nan() => DetectorResult::Error {
                    error: "the score is undefined for these windows".to_owned(),
                },
                Ok(detection) => DetectorResult::Detection(detection),
                Err(error) => {
                    metrics
                        .detector_errors
                        .with_label_values(&[name, observation.signal.as_str(), detector.name()])
                        .inc();
                    tracing::debug!(source = %name, model = %observation.model, signal = %observation.signal, detector = detector.name(), %error, "detector failed");
                    DetectorResult::Error {
                        error: error.to_string(),
                    }
                }
            };
            result.detectors.push(DetectorOutcome {
                detector: Arc::clone(&scoped.name),
                kind: detector.kind(),
                result: outcome,
            });
        }
        result
    }
}

/// The tick after `tick` on the grid `tick + k * interval` that is not in
/// the past at `now`, and how many grid points were skipped to reach it.
/// Skipping rather than catching up keeps a slow Prometheus from receiving
/// a burst of back-to-back evaluations.
fn next_tick(
    tick: tokio::time::Instant,
    interval: Duration,
    now: tokio::time::Instant,
) -> (tokio::time::Instant, u64) {
    let following = tick + interval;
    if following >= now || interval.is_zero() {
        return (following, 0);
    }
    let behind = (now - tick).as_nanos();
    let periods = behind.div_ceil(interval.as_nanos()) as u32;
    (tick + interval * periods, u64::from(periods) - 1)
}

fn inference_metrics(
    id: &ModelId,
    signals: &BTreeMap<String, SignalResult>,
    at: DateTime<Utc>,
) -> InferenceMetrics {
    let summaries: BTreeMap<String, SignalSummary> = signals
        .iter()
        .filter_map(|(name, result)| result.current.clone().map(|s| (name.clone(), s)))
        .collect();
    let confidence = summaries.get("confidence");
    let latency = summaries.get("latency");
    let ms = |seconds: f64| seconds * 1000.0;
    InferenceMetrics {
        model_name: id.model.get("model").unwrap_or_default().to_owned(),
        model_version: id.model.get("version").unwrap_or_default().to_owned(),
        monitor: id.source.clone(),
        labels: id.model.0.iter().cloned().collect(),
        timestamp: at,
        confidence_mean: confidence.map(|c| c.mean),
        confidence_std: confidence.map(|c| c.stddev),
        p50_latency_ms: latency.map(|l| ms(l.p50)),
        p95_latency_ms: latency.map(|l| ms(l.p95)),
        p99_latency_ms: latency.map(|l| ms(l.p99)),
        signals: summaries,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_tick_skips_to_the_next_grid_point_after_an_overrun() {
        let start = tokio::time::Instant::now();
        let second = Duration::from_secs(1);
        let check = |elapsed_ms: u64, expected_ms: u64, expected_skipped: u64| {
            let (next, skipped) =
                next_tick(start, second, start + Duration::from_millis(elapsed_ms));
            assert_eq!(
                (next - start, skipped),
                (Duration::from_millis(expected_ms), expected_skipped),
                "finished after {elapsed_ms} ms"
            );
        };
        check(200, 1000, 0);
        check(1000, 1000, 0);
        check(1001, 2000, 1);
        check(2500, 3000, 2);
        check(3000, 3000, 2);
    }
}
