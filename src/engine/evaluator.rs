//! The evaluation loop: at each tick, collect every source at one
//! evaluation time, run the detectors, step the alert lifecycle, publish a
//! [`Snapshot`] and broadcast [`MonitorEvent`]s. The loop is the only place
//! in the engine that owns time.
//!
//! One evaluation applies each source's collection in steps: the source's
//! status, the results kept for signals whose query failed, the detectors'
//! results for what was observed, then the alerts (`alerts.rs`). Then it
//! stores the alert notices and publishes.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::future::join_all;

use super::events::MonitorEvent;
use super::explanations::{AlertedDetectors, explain_decisions};
use super::shared::Shared;
use super::signals;
use super::snapshot::{
    DetectorOutcome, DetectorResult, STATUS_ALERT_LIMIT, SignalResult, SignalResults, Snapshot,
    SourceStatus,
};
use super::source::{ScopedDetector, Source};
use super::summary::{RejectionTally, log_warnings};
use crate::alerting::{AlertNotice, Lifecycle};
use crate::detectors::Verdict;
use crate::model::ModelId;
use crate::sources::{Collection, Rejection, SignalFailure, SignalObservation, WindowRole};
use crate::stats::Distribution;
use crate::telemetry::SelfMetrics;

pub(super) struct Evaluator {
    pub(super) sources: Vec<Source>,
    pub(super) shared: Arc<Shared>,
    pub(super) interval: Duration,
    /// How long after each grid point the loop wakes to query at it
    /// (`delay.rs`).
    pub(super) query_offset: Duration,
    /// Every pending and firing alert.
    pub(super) lifecycle: Lifecycle,
    /// Sources removed by a reload whose alerts the next evaluation ends.
    pub(super) removed: Vec<String>,
}

/// One evaluation in progress: its time, what the previous evaluation
/// published, and what this one has found so far.
pub(super) struct Evaluation {
    pub(super) at: DateTime<Utc>,
    previous: Arc<Snapshot>,
    pub(super) snapshot: Snapshot,
    pub(super) events: Vec<MonitorEvent>,
    pub(super) notices: Vec<AlertNotice>,
}

impl Evaluator {
    pub(super) async fn run(mut self) {
        let shutdown = self.shared.shutdown.clone();
        // Evaluation times lie on the grid of `interval` since the epoch,
        // the grid `backtest` replays: the first is the last grid point
        // before `now - query_offset` (evaluated at once), the following
        // ones are waited for until `query_offset` after each.
        let (mut at, overdue) =
            super::delay::first_tick(Utc::now(), self.interval, self.query_offset);
        let mut next = tokio::time::Instant::now() - overdue;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep_until(next) => {}
                _ = self.shared.reload.ready.notified() => {
                    next = self.apply_reload(next);
                    continue;
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.evaluate(at) => {}
            }
            let (following, skipped) = next_tick(next, self.interval, tokio::time::Instant::now());
            at += self.interval * (skipped as u32 + 1);
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
    async fn evaluate(&mut self, at: DateTime<Utc>) {
        let started = Instant::now();
        let mut evaluation =
            evaluate_at(&self.sources, &self.shared, &mut self.lifecycle, at).await;
        self.end_removed_alerts(&mut evaluation);
        self.publish(evaluation, started).await;
    }
}

/// One evaluation of every source at `at`: collect, detect, step the alert
/// lifecycle. The loop publishes what it returns; `backtest` replays past
/// evaluation times through it (`replay.rs`).
pub(super) async fn evaluate_at(
    sources: &[Source],
    shared: &Shared,
    lifecycle: &mut Lifecycle,
    at: DateTime<Utc>,
) -> Evaluation {
    let collections = join_all(sources.iter().map(|source| {
        let collector = source.collector.clone();
        async move { collector.collect(at).await }
    }))
    .await;
    let previous = shared.snapshot.load_full();
    let mut evaluation = Evaluation {
        at,
        snapshot: Snapshot {
            timestamp: Some(at),
            evaluations: previous.evaluations + 1,
            group_by: sources
                .iter()
                .map(|s| (s.collector.name().to_owned(), s.group_by.clone()))
                .collect(),
            ..Snapshot::default()
        },
        previous,
        events: Vec::new(),
        notices: Vec::new(),
    };
    for (source, collection) in sources.iter().zip(collections) {
        let collection = collection
            .unwrap_or_else(|error| failed_collection(source, &evaluation.previous, &error));
        evaluation.apply(source, collection, shared, lifecycle);
    }
    evaluation
}

impl Evaluator {
    /// Records the evaluation in the self-metrics, stores its alert
    /// notices, then publishes its snapshot and broadcasts its events.
    async fn publish(&mut self, evaluation: Evaluation, started: Instant) {
        let Evaluation {
            at,
            mut snapshot,
            mut events,
            notices,
            ..
        } = evaluation;
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
            events.extend(notices.iter().map(MonitorEvent::of_notice));
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
}

/// The collection of a source whose collector failed as a whole: every
/// signal fails and keeps its results. One failure per signal, not one per
/// model and signal.
fn failed_collection(source: &Source, previous: &Snapshot, error: &anyhow::Error) -> Collection {
    let name = source.collector.name();
    tracing::warn!(source = %name, error = format!("{error:#}"), "collector failed");
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
            .map(|signal| SignalFailure {
                signal,
                role: WindowRole::Current,
                reason: "collector",
                message: format!("{error:#}"),
            })
            .collect(),
        ..Collection::default()
    }
}

impl Evaluation {
    /// Applies one source's collection, step by step.
    fn apply(
        &mut self,
        source: &Source,
        collection: Collection,
        shared: &Shared,
        lifecycle: &mut Lifecycle,
    ) {
        let name = source.collector.name();
        self.record_source_status(name, &collection, &shared.metrics);
        self.keep_failed_signals(name, &collection);
        let mut rejected = RejectionTally::default();
        let alerted = AlertedDetectors::of(lifecycle, name);
        // Room for each of a model's signals, once.
        let signals = source.collector.signals().len();
        for observation in collection.observations {
            let mut result = evaluate_signal(
                source,
                &observation,
                self.at,
                &shared.metrics,
                &mut rejected,
            );
            explain_decisions(&mut result, source, &observation, &alerted);
            let id = ModelId {
                source: name.to_owned(),
                model: observation.model,
            };
            self.snapshot
                .models
                .entry(id)
                .or_insert_with(|| SignalResults::with_capacity(signals))
                .insert(observation.signal, result);
        }
        // One log line per reason and one for the warnings, however many
        // models and warnings there were; the details go to the status API.
        let rejected = rejected.finish(name);
        log_warnings(name, collection.warnings_total, &collection.warnings);
        shared
            .metrics
            .promql_warnings
            .with_label_values(&[name])
            .inc_by(collection.warnings_total as u64);
        if let Some(status) = self.snapshot.sources.get_mut(name) {
            status.rejected = rejected;
            status.warnings_total = collection.warnings_total;
            status.warnings = collection.warnings;
            status.references = collection.references;
        }
        let want_events = shared.event_tx.receiver_count() > 0;
        let seen = self.seen_alerts(source, &alerted, lifecycle, want_events);
        drop(alerted);
        let notices = lifecycle.evaluate_source(name, seen, self.at, &source.policy);
        self.notices.extend(notices);
    }

    /// The source's `up` gauge and status, and an event per failure.
    fn record_source_status(&mut self, name: &str, collection: &Collection, metrics: &SelfMetrics) {
        let up = collection.failures.is_empty();
        metrics.up.with_label_values(&[name]).set(i64::from(up));
        let last_success = if up {
            Some(self.at)
        } else {
            self.previous.sources.get(name).and_then(|s| s.last_success)
        };
        self.snapshot.sources.insert(
            name.to_owned(),
            SourceStatus {
                up,
                errors: collection
                    .failures
                    .iter()
                    .map(|f| format!("{} {} window: {}", f.signal, f.role.as_str(), f.message))
                    .collect(),
                last_success,
                rejected: Vec::new(),
                warnings_total: 0,
                warnings: Vec::new(),
                references: Vec::new(),
            },
        );
        for failure in &collection.failures {
            self.events.push(MonitorEvent::SourceError {
                source: name.to_owned(),
                signal: failure.signal.clone(),
                message: failure.message.clone(),
            });
        }
    }

    /// Signals whose query failed keep their previous results.
    fn keep_failed_signals(&mut self, name: &str, collection: &Collection) {
        let failed: BTreeSet<&str> = collection
            .failures
            .iter()
            .map(|f| f.signal.as_str())
            .collect();
        if failed.is_empty() {
            return;
        }
        let previous = self.previous.models.iter();
        for (id, signals) in previous.filter(|(id, _)| id.source == name) {
            for (signal, result) in signals.iter().filter(|(s, _)| failed.contains(s.as_str())) {
                self.snapshot
                    .models
                    .entry(id.clone())
                    .or_default()
                    .insert(signal.clone(), result.clone());
            }
        }
    }
}

/// Runs the source's detectors for one signal of one model.
fn evaluate_signal(
    source: &Source,
    observation: &SignalObservation,
    at: DateTime<Utc>,
    metrics: &SelfMetrics,
    rejected: &mut RejectionTally,
) -> SignalResult {
    let name = source.collector.name();
    let signal = observation.signal.as_str();
    let mut errors = Vec::new();
    for (window, distribution) in [
        ("current", &observation.current),
        ("reference", &observation.reference),
    ] {
        match distribution {
            Ok(d) if d.corrections() > 0 => {
                metrics
                    .bucket_corrections
                    .with_label_values(&[name, signal])
                    .inc_by(d.corrections() as u64);
            }
            Ok(_) => {}
            Err(rejection) => {
                if window == "current" || rejection.reason != Rejection::NO_REFERENCE {
                    metrics
                        .model_errors
                        .with_label_values(&[name, signal])
                        .inc();
                    rejected.add(rejection, || {
                        format!(
                            "{} {signal} {window} window: {rejection}",
                            observation.model
                        )
                    });
                }
                errors.push(format!("{window} window: {rejection}"));
            }
        }
    }
    let (accuracy, labelled_problem) = signals::accuracy(observation);
    errors.extend(labelled_problem);
    let mut result = SignalResult {
        current: signals::current_summary(observation),
        reference_samples: observation.reference.as_ref().ok().map(Distribution::total),
        error: (!errors.is_empty()).then(|| errors.join("; ")),
        detectors: Vec::new(),
        evaluated_at: at,
        class_mix: signals::class_mix(observation).map(Box::new),
        accuracy: accuracy.map(Box::new),
    };
    let (Ok(current), Ok(reference)) = (&observation.current, &observation.reference) else {
        return result;
    };
    let runs = |scoped: &&ScopedDetector| scoped.signal.as_deref().is_none_or(|s| s == signal);
    // Sized once: a snapshot holds one list per model and signal.
    result.detectors = Vec::with_capacity(source.detectors.iter().filter(runs).count());
    for scoped in source.detectors.iter().filter(runs) {
        let detector = &scoped.detector;
        let short = observation
            .short
            .as_ref()
            .and_then(|short| short.as_ref().ok())
            .filter(|_| scoped.multi_window);
        let outcome = match super::multi_window::detect(
            detector.as_ref(),
            reference,
            current,
            short,
        ) {
            Ok(detection) if detection.score.is_nan() => DetectorResult::Error {
                error: "the score is undefined for these windows".to_owned(),
            },
            Ok(mut detection) => {
                let young = young_windows(&observation.young, detector.reads_reference());
                if !young.is_empty() {
                    detection.verdict = Verdict::YoungSeries { windows: young };
                }
                DetectorResult::Detection(detection)
            }
            Err(error) => {
                metrics
                    .detector_errors
                    .with_label_values(&[name, signal, detector.name()])
                    .inc();
                tracing::debug!(source = %name, model = %observation.model, signal, detector = detector.name(), %error, "detector failed");
                DetectorResult::Error {
                    error: error.to_string(),
                }
            }
        };
        result.detectors.push(DetectorOutcome {
            detector: Arc::clone(&scoped.name),
            kind: detector.kind(),
            result: outcome,
            explanation: None,
        });
    }
    result
}

/// The young windows (see [`SignalObservation::young`]) that a detector
/// reads: the current window always, the reference only when
/// `reads_reference`. Any of them means no decision.
fn young_windows(young: &[WindowRole], reads_reference: bool) -> Vec<&'static str> {
    young
        .iter()
        .filter(|role| reads_reference || **role == WindowRole::Current)
        .map(|role| role.as_str())
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn young_windows_withhold_decisions_only_from_detectors_that_read_them() {
        let both = [WindowRole::Current, WindowRole::Reference];
        assert_eq!(young_windows(&both, true), vec!["current", "reference"]);
        assert_eq!(young_windows(&both, false), vec!["current"]);
        let reference = [WindowRole::Reference];
        assert_eq!(young_windows(&reference, true), vec!["reference"]);
        assert!(young_windows(&reference, false).is_empty());
        assert!(young_windows(&[], true).is_empty());
    }

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
