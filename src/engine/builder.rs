//! [`MonitorBuilder`]: sources, detectors and settings in, a running
//! [`ModelMonitor`] out.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::{Mutex, Semaphore, broadcast};
use tokio_util::sync::CancellationToken;

use super::evaluator::Evaluator;
use super::handle::ModelMonitor;
use super::shared::{Pending, Shared};
use super::snapshot::Snapshot;
use super::source::{ScopedDetector, Source};
use crate::alerting::{AlertPolicy, AlertSink};
use crate::config::{
    Config, DEFAULT_KS_MIN_EFFECT, DEFAULT_PSI_MIN_EFFECT, DetectorConfig, DetectorKind,
    MonitorConfig, ReferenceConfig, SignalConfig, SignalKind, TestRule,
};
use crate::detectors::{self, DriftDetector};
use crate::sources::MetricCollector;
use crate::sources::prometheus::{PromClient, PrometheusCollector};
use crate::telemetry::SelfMetrics;

/// Events buffered per subscriber before the slowest one starts losing them.
const EVENT_CHANNEL_SIZE: usize = 1024;

/// Evaluation interval when none is given: the config's default.
pub const DEFAULT_SAMPLING_INTERVAL: Duration = crate::config::DEFAULT_INTERVAL;

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
    query_offset: Option<Duration>,
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
    Client(#[from] crate::sources::prometheus::PromError),
    #[error(transparent)]
    Baseline(#[from] crate::sources::baseline::BaselineError),
}

impl MonitorBuilder {
    /// Time between evaluations (default 30s).
    pub fn with_sampling_interval(mut self, interval: Duration) -> Self {
        self.sampling_interval = Some(interval);
        self
    }

    /// How long after each grid point the loop queries at it (default 0;
    /// `evaluation.query_offset` of a config).
    pub fn with_query_offset(mut self, offset: Duration) -> Self {
        self.query_offset = Some(offset);
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
            group_by: crate::config::default_group_by(),
            policy: AlertPolicy::default(),
            from_config: false,
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

    /// Watches the default metrics (the `model_prediction_confidence` and
    /// `model_request_duration_seconds` histograms, grouped by model and
    /// version) on a PromQL endpoint, comparing the last 5 minutes
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
        self.query_offset.get_or_insert(config.query_offset());
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
        let sink = self.sink.clone();
        let interval = self.sampling_interval.unwrap_or(DEFAULT_SAMPLING_INTERVAL);
        let query_offset = self.query_offset.unwrap_or_default();
        let global_detectors = self.global_detectors.clone();
        let (sources, metrics) = self.build_sources()?;
        let reload = Pending::new(global_detectors, &sources);
        let shared = shared(&sources, metrics, sink, reload);
        let lifecycle = super::alerts::restore(shared.sink.as_ref());
        for source in &sources {
            init_source_metrics(&shared.metrics, source.collector.name());
        }
        let evaluator = Evaluator {
            sources,
            shared: shared.clone(),
            interval,
            query_offset,
            lifecycle,
            removed: Vec::new(),
        };
        let task = tokio::spawn(evaluator.run());
        *shared
            .task
            .try_lock()
            .expect("no one else holds the new lock") = Some(task);
        Ok(ModelMonitor { shared })
    }

    /// The sources with their detectors and policies, as the loop runs
    /// them, and the self-metrics they record into.
    pub(super) fn build_sources(self) -> Result<(Vec<Source>, Arc<SelfMetrics>), BuildError> {
        let metrics = self.metrics.unwrap_or_else(|| Arc::new(SelfMetrics::new()));
        let permits = Arc::new(Semaphore::new(
            self.concurrency
                .unwrap_or(crate::config::DEFAULT_CONCURRENCY),
        ));
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
            let interval = self.sampling_interval.unwrap_or(DEFAULT_SAMPLING_INTERVAL);
            let mut source = prometheus_source(monitor, client, &permits, &metrics, None, interval);
            source.policy = policy;
            sources.push(source);
        }
        for config in self.configs {
            sources.extend(config_sources(config, &permits, &metrics)?);
        }
        for source in &mut sources {
            source
                .detectors
                .extend(self.global_detectors.iter().cloned());
        }
        Ok((sources, metrics))
    }
}

/// What the loop shares with the handle, before the first evaluation.
pub(super) fn shared(
    sources: &[Source],
    metrics: Arc<SelfMetrics>,
    sink: Option<Arc<dyn AlertSink>>,
    reload: Pending,
) -> Arc<Shared> {
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
        sink,
        reload,
    });
    for state in ["pending", "firing"] {
        shared.metrics.alerts.with_label_values(&[state]).set(0);
    }
    shared
}

/// Which reference a monitor uses and, when fixed, where it ends.
fn record_reference(
    metrics: &SelfMetrics,
    monitor: &MonitorConfig,
    baseline: Option<&crate::sources::baseline::Baseline>,
) {
    let name = monitor.name.as_str();
    metrics.forget_reference(name);
    metrics
        .reference_info
        .with_label_values(&[name, monitor.reference.kind()])
        .set(1);
    let end = match &monitor.reference {
        ReferenceConfig::Range { end, .. } => Some(*end),
        _ => baseline.and_then(|b| b.range).map(|(_, end)| end),
    };
    if let Some(end) = end {
        metrics
            .reference_end
            .with_label_values(&[name])
            .set(end.timestamp_millis() as f64 / 1000.0);
    }
}

/// The sources of a config's monitors: one PromQL client for all of them,
/// their queries bounded by `permits`.
pub(super) fn config_sources(
    config: Config,
    permits: &Arc<Semaphore>,
    metrics: &Arc<SelfMetrics>,
) -> Result<Vec<Source>, BuildError> {
    let client = PromClient::new(&config.prometheus)?;
    let interval = config.evaluation.interval;
    let mut sources = Vec::with_capacity(config.monitors.len());
    for monitor in config.monitors {
        let baseline = match &monitor.reference {
            ReferenceConfig::BaselineFile(path) => Some(Arc::new(crate::sources::baseline::load(
                path,
                &monitor.group_by,
            )?)),
            _ => None,
        };
        record_reference(metrics, &monitor, baseline.as_deref());
        let mut source = prometheus_source(
            monitor,
            client.clone(),
            permits,
            metrics,
            baseline,
            interval,
        );
        source.from_config = true;
        sources.push(source);
    }
    Ok(sources)
}

/// Creates a source's per-source self-metrics at 0, so that they exist
/// before its first evaluation.
pub(super) fn init_source_metrics(metrics: &SelfMetrics, name: &str) {
    metrics.up.with_label_values(&[name]).set(0);
    metrics.promql_warnings.with_label_values(&[name]).inc_by(0);
    // Failure counters start at 0 for every reason: a counter that first
    // appears at 1 hides its first increase from rate().
    for reason in crate::sources::prometheus::PromError::REASONS {
        metrics.query_failures.with_label_values(&[name, reason]);
    }
}

fn prometheus_source(
    monitor: MonitorConfig,
    client: PromClient,
    permits: &Arc<Semaphore>,
    metrics: &Arc<SelfMetrics>,
    baseline: Option<Arc<crate::sources::baseline::Baseline>>,
    interval: Duration,
) -> Source {
    let detectors = monitor
        .signals
        .iter()
        .flat_map(|(signal, config)| {
            config.detectors.iter().map(|detector| {
                let (detector, multi_window) = match monitor.short_window {
                    Some(_) => super::multi_window::split_rate(detector),
                    None => (detector.clone(), false),
                };
                ScopedDetector {
                    multi_window,
                    ..ScopedDetector::new(
                        Some(signal.clone()),
                        Arc::from(detectors::from_config(&detector, monitor.min_samples)),
                    )
                }
            })
        })
        .collect();
    let group_by = monitor.group_by.clone();
    let policy = AlertPolicy::from(monitor.alerting);
    let mut collector = PrometheusCollector::new(monitor, client, permits.clone())
        .with_metrics(metrics.clone())
        .with_interval(interval);
    if let Some(baseline) = baseline {
        collector = collector.with_baseline(baseline);
    }
    Source {
        collector: Arc::new(collector),
        detectors,
        group_by,
        policy,
        from_config: false,
    }
}

/// The monitor `with_prometheus_endpoint` sets up: every setting at the
/// config's defaults, psi and ks on the confidence histogram, the p99
/// latency ratio on the request-duration histogram.
fn default_monitor() -> MonitorConfig {
    let signal = |histogram: &str, detectors: Vec<DetectorKind>| SignalConfig {
        histogram: histogram.to_owned(),
        detectors: detectors.into_iter().map(DetectorConfig::new).collect(),
        kind: SignalKind::Histogram,
    };
    MonitorConfig::new(
        "default",
        BTreeMap::from([
            (
                "confidence".to_owned(),
                signal(
                    "model_prediction_confidence",
                    vec![
                        DetectorKind::Psi(TestRule::with_min_effect(DEFAULT_PSI_MIN_EFFECT)),
                        DetectorKind::Ks(TestRule::with_min_effect(DEFAULT_KS_MIN_EFFECT)),
                    ],
                ),
            ),
            (
                "latency".to_owned(),
                signal(
                    "model_request_duration_seconds",
                    vec![DetectorKind::QuantileRatio {
                        quantile: 0.99,
                        max_ratio: 1.5,
                    }],
                ),
            ),
        ]),
    )
}
