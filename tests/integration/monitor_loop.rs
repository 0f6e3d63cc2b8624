//! The evaluation loop with custom collectors, on tokio's paused clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use model_monitor::engine::{MonitorBuilder, MonitorEvent};
use model_monitor::model::ModelKey;
use model_monitor::sources::{Collection, MetricCollector, SignalObservation};
use model_monitor::stats::Distribution;

/// A collector whose every collection takes `delay` of (paused) time and
/// returns one model whose confidence has moved far from its reference.
struct SlowCollector {
    delay: Duration,
    calls: Arc<AtomicUsize>,
}

fn distribution(counts: &[f64]) -> Distribution {
    Distribution::from_bucket_counts(vec![0.25, 0.5, 0.75, 1.0], counts.to_vec(), None).unwrap()
}

#[async_trait]
impl MetricCollector for SlowCollector {
    fn name(&self) -> &str {
        "slow"
    }

    async fn collect(&self, _at: DateTime<Utc>) -> anyhow::Result<Collection> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        Ok(Collection {
            observations: vec![SignalObservation {
                model: ModelKey(vec![
                    ("model".into(), "fraud".into()),
                    ("version".into(), "v3".into()),
                ]),
                signal: "confidence".into(),
                current: Ok(distribution(&[400.0, 300.0, 200.0, 100.0, 0.0])),
                reference: Ok(distribution(&[100.0, 200.0, 300.0, 400.0, 0.0])),
                short: None,
                young: Vec::new(),
                details: Default::default(),
            }],
            ..Collection::default()
        })
    }
}

#[tokio::test(start_paused = true)]
async fn a_cycle_slower_than_the_interval_skips_ticks_instead_of_bunching() {
    let calls = Arc::new(AtomicUsize::new(0));
    let monitor = MonitorBuilder::default()
        .with_collector(SlowCollector {
            delay: Duration::from_millis(2500),
            calls: calls.clone(),
        })
        .with_sampling_interval(Duration::from_secs(1))
        .spawn()
        .unwrap();
    let mut events = monitor.subscribe();
    let mut completed_at = Vec::new();
    while completed_at.len() < 5 {
        if let MonitorEvent::EvaluationCompleted { .. } = events.recv().await.unwrap() {
            completed_at.push(tokio::time::Instant::now());
        }
    }
    monitor.stop().await;
    // The first evaluation runs at once for the last grid point before the
    // start (a fraction of a second ago on the wall clock), so only the
    // gaps after it are whole ticks.
    for pair in completed_at.windows(2).skip(1) {
        let gap = pair[1] - pair[0];
        // A cycle takes 2.5 s and starts on the next whole tick: 3 s apart,
        // never a burst of catch-up evaluations.
        assert_eq!(gap, Duration::from_secs(3), "evaluations {completed_at:?}");
    }
    let skipped = monitor.self_metrics().skipped_ticks.get();
    assert!(
        skipped >= 8,
        "two ticks skipped per slow cycle, counted: {skipped}"
    );
    // The collector was called once per evaluation, never concurrently
    // with itself (the sixth call may have started before the stop).
    assert!((5..=6).contains(&calls.load(Ordering::SeqCst)));
}

#[tokio::test(start_paused = true)]
async fn builder_detectors_run_on_custom_collectors_and_publish_events() {
    let monitor = MonitorBuilder::default()
        .with_collector(SlowCollector {
            delay: Duration::from_millis(10),
            calls: Arc::new(AtomicUsize::new(0)),
        })
        .with_detector(model_monitor::detectors::KsDetector::default())
        .with_z_score_detector(0.8, 0.05, 3.0)
        .with_sampling_interval(Duration::from_secs(30))
        .spawn()
        .unwrap();
    let mut events = monitor.subscribe();
    let mut snapshot = None;
    let mut drift_detectors = Vec::new();
    loop {
        match events.recv().await.unwrap() {
            MonitorEvent::MetricsSnapshot(metrics) => snapshot = Some(metrics),
            MonitorEvent::DriftAlert { detector, .. } => drift_detectors.push(detector),
            MonitorEvent::EvaluationCompleted { .. } => break,
            _ => {}
        }
    }
    monitor.stop().await;
    let metrics = snapshot.expect("a metrics snapshot for the model");
    assert_eq!(metrics.model_name, "fraud");
    assert_eq!(metrics.model_version, "v3");
    // Representatives 0.125, 0.375, 0.625, 0.875 weighted 4:3:2:1.
    let mean = metrics.confidence_mean.unwrap();
    assert!((mean - 0.375).abs() < 1e-12, "{mean}");
    drift_detectors.sort();
    assert_eq!(drift_detectors, ["ks", "zscore_baseline"]);
}

/// Answers once with two models, then fails on every call.
struct FailingAfterFirst {
    calls: AtomicUsize,
}

#[async_trait]
impl MetricCollector for FailingAfterFirst {
    fn name(&self) -> &str {
        "flaky"
    }

    async fn collect(&self, _at: DateTime<Utc>) -> anyhow::Result<Collection> {
        if self.calls.fetch_add(1, Ordering::SeqCst) > 0 {
            anyhow::bail!("source unreachable");
        }
        let observation = |model: &str| SignalObservation {
            model: ModelKey(vec![("model".into(), model.into())]),
            signal: "confidence".into(),
            current: Ok(distribution(&[100.0, 200.0, 300.0, 400.0, 0.0])),
            reference: Ok(distribution(&[100.0, 200.0, 300.0, 400.0, 0.0])),
            short: None,
            young: Vec::new(),
            details: Default::default(),
        };
        Ok(Collection {
            observations: vec![observation("a"), observation("b")],
            ..Collection::default()
        })
    }
}

#[tokio::test(start_paused = true)]
async fn a_failing_collector_reports_each_signal_once_and_keeps_its_models() {
    let monitor = MonitorBuilder::default()
        .with_collector(FailingAfterFirst {
            calls: AtomicUsize::new(0),
        })
        .with_sampling_interval(Duration::from_secs(30))
        .spawn()
        .unwrap();
    let mut events = monitor.subscribe();
    let mut completed = 0;
    let mut source_errors = Vec::new();
    while completed < 2 {
        match events.recv().await.unwrap() {
            MonitorEvent::EvaluationCompleted { .. } => completed += 1,
            MonitorEvent::SourceError {
                signal, message, ..
            } if completed == 1 => {
                source_errors.push((signal, message));
            }
            _ => {}
        }
    }
    let snapshot = monitor.snapshot();
    monitor.stop().await;
    assert_eq!(source_errors.len(), 1, "{source_errors:?}");
    assert_eq!(source_errors[0].0, "confidence");
    assert!(source_errors[0].1.contains("source unreachable"));
    assert_eq!(snapshot.models.len(), 2, "both models keep their results");
    assert!(!snapshot.sources["flaky"].up);
}
