//! The monitor: the evaluation loop, its results and events, and the
//! [`ModelMonitor`] handle embedders hold.
//!
//! Every `interval` the loop asks each collector for its observations at one
//! evaluation time, runs the detectors on them, publishes the results as an
//! immutable [`Snapshot`] (what `/metrics` and `/api/v1/status` show) and
//! broadcasts [`MonitorEvent`]s. The loop is the only place that owns time.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use chrono::{DateTime, SubsecRound, Utc};
use futures::future::join_all;
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, Semaphore, broadcast};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::alerting::{
    AlertKey, AlertNotice, AlertPolicy, AlertSink, AlertSummary, Lifecycle, Observation, Seen,
    Transition,
};
use crate::collector::{Collection, MetricCollector, PrometheusCollector};
use crate::config::{Config, DetectorConfig, DetectorKind, MonitorConfig, ReferenceConfig};
use crate::detectors::{self, AlertKind, Detection, DriftDetector, Verdict, Windows};
use crate::promql::PromClient;
use crate::signals::ModelKey;
use crate::stats::Distribution;
use crate::telemetry::SelfMetrics;

/// Events buffered per subscriber before the slowest one starts losing them.
const EVENT_CHANNEL_SIZE: usize = 1024;

/// The most alerts a [`Snapshot`] lists (the counts cover all of them).
pub const STATUS_ALERT_LIMIT: usize = 1000;

/// Evaluation interval when none is given.
pub const DEFAULT_SAMPLING_INTERVAL: Duration = Duration::from_secs(30);

/// Receives [`MonitorEvent`]s.
pub type EventReceiver = broadcast::Receiver<MonitorEvent>;

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
    fn of(distribution: &Distribution) -> SignalSummary {
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

/// A detection as carried in events and the status API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectionRecord {
    pub score: f64,
    pub threshold: f64,
    pub p_value: Option<f64>,
    pub current_samples: f64,
    pub reference_samples: f64,
}

/// One detector's outcome for one model signal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DetectorOutcome {
    /// Shared by every outcome of the detector.
    pub detector: Arc<str>,
    pub kind: AlertKind,
    /// The detection, or why none could be made.
    #[serde(flatten)]
    pub result: DetectorResult,
}

/// A detection or the reason there is none.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum DetectorResult {
    Detection(Detection),
    Error { error: String },
}

/// One signal of one model in one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignalResult {
    /// Statistics of the current window, when it could be read.
    pub current: Option<SignalSummary>,
    pub reference_samples: Option<f64>,
    /// Why a window could not be used, if one could not.
    pub error: Option<String>,
    pub detectors: Vec<DetectorOutcome>,
    /// When these results were computed (older than the snapshot when the
    /// signal's query failed and the previous results were kept).
    pub evaluated_at: DateTime<Utc>,
}

/// Identifies one model of one source.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ModelId {
    pub source: String,
    pub model: ModelKey,
}

/// How a source fared in the last evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceStatus {
    pub up: bool,
    /// The failures of the last evaluation (empty when up).
    pub errors: Vec<String>,
    pub last_success: Option<DateTime<Utc>>,
}

/// Everything the last evaluation found: what `/metrics` and the status API
/// serve. Immutable once published.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshot {
    /// The evaluation time used by every query of the evaluation.
    pub timestamp: Option<DateTime<Utc>>,
    pub duration_seconds: f64,
    pub evaluations: u64,
    #[serde(serialize_with = "serialize_models")]
    pub models: BTreeMap<ModelId, BTreeMap<String, SignalResult>>,
    pub sources: BTreeMap<String, SourceStatus>,
    /// Pending and firing alerts after this evaluation, firing first; at
    /// most [`STATUS_ALERT_LIMIT`] of them.
    pub alerts: Vec<AlertSummary>,
    /// How many alerts are pending and firing (all of them, listed or not).
    pub alerts_pending: usize,
    pub alerts_firing: usize,
    /// Label names of each source's model keys, in order.
    #[serde(skip)]
    pub group_by: BTreeMap<String, Vec<String>>,
}

fn serialize_models<S: serde::Serializer>(
    models: &BTreeMap<ModelId, BTreeMap<String, SignalResult>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Entry<'a> {
        source: &'a str,
        labels: BTreeMap<&'a str, &'a str>,
        signals: &'a BTreeMap<String, SignalResult>,
    }
    serializer.collect_seq(models.iter().map(|(id, signals)| {
        Entry {
            source: &id.source,
            labels: id
                .model
                .0
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
            signals,
        }
    }))
}

/// A detector and the signals it applies to.
#[derive(Clone)]
struct ScopedDetector {
    /// `None`: every signal.
    signal: Option<String>,
    detector: Arc<dyn DriftDetector>,
    /// The detector's name, shared by every outcome it produces.
    name: Arc<str>,
}

impl ScopedDetector {
    fn new(signal: Option<String>, detector: Arc<dyn DriftDetector>) -> ScopedDetector {
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
struct Source {
    collector: Arc<dyn MetricCollector>,
    detectors: Vec<ScopedDetector>,
    group_by: Vec<String>,
    /// When its alerts fire, repeat and resolve.
    policy: AlertPolicy,
}

/// Shared between the handle and the loop.
struct Shared {
    event_tx: broadcast::Sender<MonitorEvent>,
    snapshot: ArcSwap<Snapshot>,
    ready: AtomicBool,
    shutdown: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
    metrics: Arc<SelfMetrics>,
    /// Where alert notices are stored for delivery, if anywhere.
    sink: Option<Arc<dyn AlertSink>>,
}

/// A cheap-clone handle on a running monitor.
#[derive(Clone)]
pub struct ModelMonitor {
    shared: Arc<Shared>,
}

impl ModelMonitor {
    /// A receiver of every event from now on.
    pub fn subscribe(&self) -> EventReceiver {
        self.shared.event_tx.subscribe()
    }

    /// The results of the last evaluation.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.shared.snapshot.load_full()
    }

    /// Whether an evaluation has completed since the start.
    pub fn is_ready(&self) -> bool {
        self.shared.ready.load(Ordering::Acquire)
    }

    /// The sidecar's own metrics.
    pub fn self_metrics(&self) -> &Arc<SelfMetrics> {
        &self.shared.metrics
    }

    /// The alert sink's delivery state (receivers, queues, dead letters),
    /// when one is attached.
    pub fn delivery_status(&self) -> Option<serde_json::Value> {
        self.shared.sink.as_ref().map(|sink| sink.status())
    }

    /// Stops the loop: an evaluation in progress is abandoned, the task is
    /// awaited. Calling it twice is harmless.
    pub async fn stop(&self) {
        self.shared.shutdown.cancel();
        let task = self.shared.task.lock().await.take();
        if let Some(task) = task
            && let Err(error) = task.await
        {
            tracing::error!(%error, "monitor task ended abnormally");
        }
    }
}

/// Builds a [`ModelMonitor`] (the original sketch's builder).
///
/// ```
/// use std::time::Duration;
/// use model_monitor::MonitorBuilder;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let monitor = MonitorBuilder::default()
///     .with_prometheus_endpoint("http://127.0.0.1:9")
///     .with_z_score_detector(0.85, 0.03, 3.0)
///     .with_sampling_interval(Duration::from_secs(30))
///     .spawn()
///     .expect("a valid endpoint");
/// let mut events = monitor.subscribe();
/// // Nothing listens on port 9: the first evaluation reports the source down.
/// loop {
///     match events.recv().await.unwrap() {
///         model_monitor::MonitorEvent::SourceError { source, .. } => {
///             assert_eq!(source, "default");
///             break;
///         }
///         _ => continue,
///     }
/// }
/// monitor.stop().await;
/// # }
/// ```
#[derive(Default)]
pub struct MonitorBuilder {
    sources: Vec<Source>,
    endpoints: Vec<String>,
    configs: Vec<Config>,
    global_detectors: Vec<ScopedDetector>,
    sampling_interval: Option<Duration>,
    concurrency: Option<usize>,
    metrics: Option<Arc<SelfMetrics>>,
    sink: Option<Arc<dyn AlertSink>>,
    policy: Option<AlertPolicy>,
}

/// Why a monitor could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("invalid prometheus endpoint {0:?}: {1}")]
    Endpoint(String, String),
    #[error("cannot create the promql client: {0}")]
    Client(#[from] crate::promql::PromError),
    #[error(transparent)]
    Baseline(#[from] crate::baseline::BaselineError),
}

impl MonitorBuilder {
    /// Time between evaluations (default 30s).
    pub fn with_sampling_interval(mut self, interval: Duration) -> Self {
        self.sampling_interval = Some(interval);
        self
    }

    /// Queries in flight at once (default 8).
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = Some(concurrency.max(1));
        self
    }

    /// Adds a custom source; the builder's detectors apply to its signals.
    pub fn with_collector<C: MetricCollector + 'static>(mut self, collector: C) -> Self {
        self.sources.push(Source {
            collector: Arc::new(collector),
            detectors: Vec::new(),
            group_by: vec!["model".to_owned(), "version".to_owned()],
            policy: AlertPolicy::default(),
        });
        self
    }

    /// Adds a detector run on every signal of every source.
    pub fn with_detector<D: DriftDetector + 'static>(mut self, detector: D) -> Self {
        self.global_detectors
            .push(ScopedDetector::new(None, Arc::new(detector)));
        self
    }

    /// Adds the sketch's fixed-baseline z-score detector on the `confidence`
    /// signal: drift when `abs(mean - baseline_mean) / baseline_std >= z_threshold`.
    pub fn with_z_score_detector(
        mut self,
        baseline_mean: f64,
        baseline_std: f64,
        z_threshold: f64,
    ) -> Self {
        let detector = detectors::ZScoreDetector::with_baseline(
            baseline_mean,
            baseline_std,
            Some(z_threshold),
        )
        .named("zscore_baseline")
        .with_min_samples(0.0);
        self.global_detectors.push(ScopedDetector::new(
            Some("confidence".to_owned()),
            Arc::new(detector),
        ));
        self
    }

    /// Watches the default metrics (DESIGN.md's input metrics, grouped by
    /// model and version) on a PromQL endpoint, comparing the last 5 minutes
    /// with the same 5 minutes a week earlier; the source is named `default`.
    pub fn with_prometheus_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoints.push(endpoint.into());
        self
    }

    /// Everything a config file describes: its PromQL source, monitors,
    /// detectors, interval and concurrency.
    pub fn with_config(mut self, config: Config) -> Self {
        self.sampling_interval
            .get_or_insert(config.evaluation.interval);
        self.concurrency
            .get_or_insert(config.evaluation.concurrency);
        self.configs.push(config);
        self
    }

    /// Hands every alert notice, with the lifecycle state, to `sink` before
    /// the matching event is broadcast; the lifecycle starts from what the
    /// sink restores.
    pub fn with_alert_sink(mut self, sink: Arc<dyn AlertSink>) -> Self {
        self.sink = Some(sink);
        self
    }

    /// The alert lifecycle of sources added with `with_collector` and
    /// `with_prometheus_endpoint` (config monitors have their own).
    pub fn with_alert_policy(mut self, policy: AlertPolicy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Records self-metrics in this registry holder instead of a new one.
    pub fn with_self_metrics(mut self, metrics: Arc<SelfMetrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Starts the loop on the current tokio runtime.
    pub fn spawn(self) -> Result<ModelMonitor, BuildError> {
        let metrics = self.metrics.unwrap_or_else(|| Arc::new(SelfMetrics::new()));
        let permits = Arc::new(Semaphore::new(self.concurrency.unwrap_or(8)));
        let policy = self.policy.unwrap_or_default();
        let mut sources = self.sources;
        for source in &mut sources {
            source.policy = policy;
        }
        for endpoint in self.endpoints {
            let url = url::Url::parse(&endpoint)
                .map_err(|error| BuildError::Endpoint(endpoint.clone(), error.to_string()))?;
            let config = crate::config::PrometheusConfig::new(url);
            let client = PromClient::new(&config)?;
            let monitor = default_monitor();
            let mut source = prometheus_source(monitor, client, &permits, &metrics, None);
            source.policy = policy;
            sources.push(source);
        }
        for config in self.configs {
            let client = PromClient::new(&config.prometheus)?;
            for monitor in config.monitors {
                let baseline = match &monitor.reference {
                    ReferenceConfig::BaselineFile(path) => {
                        Some(Arc::new(crate::baseline::load(path, &monitor.group_by)?))
                    }
                    _ => None,
                };
                sources.push(prometheus_source(
                    monitor,
                    client.clone(),
                    &permits,
                    &metrics,
                    baseline,
                ));
            }
        }
        for source in &mut sources {
            source
                .detectors
                .extend(self.global_detectors.iter().cloned());
        }
        let (event_tx, _) = broadcast::channel(EVENT_CHANNEL_SIZE);
        let shared = Arc::new(Shared {
            event_tx,
            snapshot: ArcSwap::from_pointee(Snapshot {
                group_by: sources
                    .iter()
                    .map(|s| (s.collector.name().to_owned(), s.group_by.clone()))
                    .collect(),
                ..Snapshot::default()
            }),
            ready: AtomicBool::new(false),
            shutdown: CancellationToken::new(),
            task: Mutex::new(None),
            metrics,
            sink: self.sink,
        });
        for state in ["pending", "firing"] {
            shared.metrics.alerts.with_label_values(&[state]).set(0);
        }
        let lifecycle = shared
            .sink
            .as_ref()
            .and_then(|sink| sink.restore())
            .unwrap_or_default();
        for source in &sources {
            let name = source.collector.name();
            shared.metrics.up.with_label_values(&[name]).set(0);
            // Failure counters start at 0 for every reason: a counter that
            // first appears at 1 hides its first increase from rate().
            for reason in crate::promql::PromError::REASONS {
                shared
                    .metrics
                    .query_failures
                    .with_label_values(&[name, reason]);
            }
        }
        let evaluator = Evaluator {
            sources,
            shared: shared.clone(),
            interval: self.sampling_interval.unwrap_or(DEFAULT_SAMPLING_INTERVAL),
            lifecycle,
        };
        let task = tokio::spawn(evaluator.run());
        *shared
            .task
            .try_lock()
            .expect("no one else holds the new lock") = Some(task);
        Ok(ModelMonitor { shared })
    }
}

fn prometheus_source(
    monitor: MonitorConfig,
    client: PromClient,
    permits: &Arc<Semaphore>,
    metrics: &Arc<SelfMetrics>,
    baseline: Option<Arc<crate::baseline::Baseline>>,
) -> Source {
    let detectors = monitor
        .signals
        .iter()
        .flat_map(|(signal, config)| {
            config.detectors.iter().map(|detector| {
                ScopedDetector::new(
                    Some(signal.clone()),
                    Arc::from(detectors::from_config(detector, monitor.min_samples)),
                )
            })
        })
        .collect();
    let group_by = monitor.group_by.clone();
    let policy = AlertPolicy::from(monitor.alerting);
    let mut collector =
        PrometheusCollector::new(monitor, client, permits.clone()).with_metrics(metrics.clone());
    if let Some(baseline) = baseline {
        collector = collector.with_baseline(baseline);
    }
    Source {
        collector: Arc::new(collector),
        detectors,
        group_by,
        policy,
    }
}

/// The monitor `with_prometheus_endpoint` sets up.
fn default_monitor() -> MonitorConfig {
    let signal = |histogram: &str, detectors: Vec<DetectorConfig>| crate::config::SignalConfig {
        histogram: histogram.to_owned(),
        detectors,
    };
    let rule = |min_effect| crate::config::TestRule {
        threshold: None,
        false_alarm_rate: 0.001,
        min_effect,
    };
    let detector = |kind: DetectorKind| DetectorConfig {
        name: kind.type_name().to_owned(),
        kind,
    };
    MonitorConfig {
        name: "default".to_owned(),
        selector: String::new(),
        group_by: vec!["model".to_owned(), "version".to_owned()],
        window: Duration::from_secs(300),
        reference: ReferenceConfig::Offset(Duration::from_secs(7 * 86_400)),
        min_samples: 100.0,
        signals: BTreeMap::from([
            (
                "confidence".to_owned(),
                signal(
                    "model_prediction_confidence",
                    vec![
                        detector(DetectorKind::Psi(rule(0.1))),
                        detector(DetectorKind::Ks(rule(0.1))),
                    ],
                ),
            ),
            (
                "latency".to_owned(),
                signal(
                    "model_request_duration_seconds",
                    vec![detector(DetectorKind::QuantileRatio {
                        quantile: 0.99,
                        max_ratio: 1.5,
                    })],
                ),
            ),
        ]),
        alerting: crate::config::AlertingConfig::default(),
    }
}

/// The loop's own state.
struct Evaluator {
    sources: Vec<Source>,
    shared: Arc<Shared>,
    interval: Duration,
    /// Every pending and firing alert.
    lifecycle: Lifecycle,
}

impl Evaluator {
    async fn run(mut self) {
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
                            .map(|signal| crate::collector::SignalFailure {
                                signal,
                                role: crate::signals::WindowRole::Current,
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
                model = %crate::signals::ModelKey(notice.key.labels.to_vec()),
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
        observation: &crate::collector::SignalObservation,
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
