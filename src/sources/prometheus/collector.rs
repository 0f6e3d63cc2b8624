//! [`PrometheusCollector`]: a monitor's signals from a PromQL API, one
//! grouped query per histogram and window. The reference windows are
//! queried at their own evaluation time and kept until it moves
//! (`reference_cache.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::future::join_all;
use tokio::sync::Semaphore;

use super::classes::{ClassGrouper, ClassWindow, class_grouper_labels, class_query};
use super::group::{GroupedWindow, HistogramGrouper, grouper_labels};
use super::pairing::{add_classes, both, young};
use super::query::{histogram_query, labelled_query};
use super::reference_cache::{
    Answer, Reference, ReferenceAnswer, ReferenceCache, record_references,
};
use super::{PromClient, PromError, VectorSink};
use crate::config::{
    CorrectHistogram, DEFAULT_INTERVAL, MonitorConfig, ReferenceConfig, ReferenceRefresh,
    SignalConfig, SignalKind,
};
use crate::model::ModelKey;
use crate::sources::baseline::Baseline;
use crate::sources::{
    Collection, LabelledWindow, MetricCollector, Rejection, SignalDetails, SignalFailure,
    SignalObservation, WindowRole,
};
use crate::stats::{Distribution, Histogram};
use crate::telemetry::SelfMetrics;

/// Collects one monitor's signals from a PromQL API with one grouped query
/// per histogram and window.
pub struct PrometheusCollector {
    monitor: MonitorConfig,
    client: PromClient,
    /// Shared by every collector of a monitor process: bounds the queries in
    /// flight during one cycle.
    permits: Arc<Semaphore>,
    baseline: Option<Arc<Baseline>>,
    metrics: Option<Arc<SelfMetrics>>,
    /// When the reference is queried, and at which time.
    refresh: ReferenceRefresh,
    /// The reference answers kept between evaluations, by signal.
    references: ReferenceCache<ModelWindow>,
    class_references: ReferenceCache<ClassWindow>,
}

impl PrometheusCollector {
    /// A collector for `monitor` using `client`; at most `permits` queries
    /// run at once.
    /// The reference's refresh is its default for the default evaluation
    /// interval until [`PrometheusCollector::with_interval`] says otherwise.
    pub fn new(monitor: MonitorConfig, client: PromClient, permits: Arc<Semaphore>) -> Self {
        let refresh = monitor
            .reference
            .refresh(monitor.reference_refresh, DEFAULT_INTERVAL);
        PrometheusCollector {
            monitor,
            client,
            permits,
            baseline: None,
            metrics: None,
            refresh,
            references: ReferenceCache::default(),
            class_references: ReferenceCache::default(),
        }
    }

    /// The evaluation interval the collector runs at, which bounds the
    /// default refresh of a `window` reference from below.
    pub fn with_interval(mut self, interval: std::time::Duration) -> Self {
        self.refresh = self
            .monitor
            .reference
            .refresh(self.monitor.reference_refresh, interval);
        self
    }

    /// Uses reference histograms from a baseline file.
    pub fn with_baseline(mut self, baseline: Arc<Baseline>) -> Self {
        self.baseline = Some(baseline);
        self
    }

    /// Records query durations and failures in the sidecar's own metrics.
    pub fn with_metrics(mut self, metrics: Arc<SelfMetrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The monitor this collector serves.
    pub fn monitor(&self) -> &MonitorConfig {
        &self.monitor
    }

    /// Runs one grouped query and feeds its answer to `sink` while the body
    /// is alive, so no sample owns its labels. Returns the answer's
    /// warnings: the engine summarises them, one log line per evaluation
    /// rather than one per warning.
    async fn run_query<S: VectorSink>(
        &self,
        query: &str,
        at: DateTime<Utc>,
        wanted: &[&str],
        sink: &mut S,
    ) -> Result<Vec<String>, PromError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("semaphore never closes");
        let started = Instant::now();
        let result = self.client.query_vector_into(query, at, wanted, sink).await;
        let elapsed = started.elapsed().as_secs_f64();
        if let Some(metrics) = &self.metrics {
            metrics
                .query_duration
                .with_label_values(&[&self.monitor.name])
                .observe(elapsed);
        }
        result
    }

    /// Runs one grouped histogram query and groups its answer by model.
    /// Past the answer limits the grouper stops the reading: a hostile or
    /// mistaken answer never grows memory beyond them.
    async fn histograms(
        &self,
        signal: &str,
        query: String,
        role: WindowRole,
        at: DateTime<Utc>,
    ) -> Answer<GroupedWindow> {
        let group_by = &self.monitor.group_by;
        let mut grouper = HistogramGrouper::with_limits(self.client.answer_limits());
        match self
            .run_query(&query, at, &grouper_labels(group_by), &mut grouper)
            .await
        {
            Ok(warnings) => Ok((grouper.finish(group_by), warnings)),
            Err(error) => Err(self.failure(signal, role, &query, error)),
        }
    }

    /// Counts a failed query, logs it and names it as the signal's failure.
    fn failure(
        &self,
        signal: &str,
        role: WindowRole,
        query: &str,
        error: PromError,
    ) -> SignalFailure {
        if let Some(metrics) = &self.metrics {
            metrics
                .query_failures
                .with_label_values(&[&self.monitor.name, error.reason()])
                .inc();
        }
        tracing::warn!(
            source = %self.monitor.name,
            signal,
            role = role.as_str(),
            reason = error.reason(),
            query = %query,
            error = %error,
            "query failed"
        );
        SignalFailure {
            signal: signal.to_owned(),
            role,
            reason: error.reason(),
            message: error.to_string(),
        }
    }

    /// The window's histograms per model, from PromQL or the baseline file.
    async fn window(
        &self,
        signal: &str,
        histogram: &str,
        role: WindowRole,
        at: DateTime<Utc>,
    ) -> Answer<ModelWindow> {
        let Some(query) = histogram_query(&self.monitor, histogram, role) else {
            return Ok((self.baseline_window(signal), Vec::new()));
        };
        let (models, warnings) = self.histograms(signal, query, role, at).await?;
        let window = models
            .into_iter()
            .map(|(model, window)| {
                let young = window.series_at_start < 1.0;
                let window = ModelWindow {
                    distribution: grouped_distribution(window),
                    young,
                };
                (model, window)
            })
            .collect();
        Ok((window, warnings))
    }

    /// A histogram signal's reference: the cached answer while its
    /// reference time has not moved, else its query at that time; a
    /// baseline file's histograms for a reference from a file.
    async fn reference_window(
        &self,
        signal: &str,
        histogram: &str,
        at: DateTime<Utc>,
    ) -> ReferenceAnswer<ModelWindow> {
        let Some(reference_at) = self.refresh.reference_time(at) else {
            return Ok(Reference {
                windows: Arc::new(self.baseline_window(signal)),
                warnings: Vec::new(),
                status: None,
            });
        };
        let query = self.window(signal, histogram, WindowRole::Reference, reference_at);
        let keep = self.refresh.caches();
        (self.references)
            .reference(signal, at, reference_at, keep, query)
            .await
    }

    /// A class signal's reference, as [`Self::reference_window`]; `None`
    /// for a baseline file, which holds no class counts.
    async fn class_reference(
        &self,
        signal: &str,
        counter: &str,
        label: &str,
        at: DateTime<Utc>,
    ) -> Option<ReferenceAnswer<ClassWindow>> {
        let reference_at = self.refresh.reference_time(at)?;
        let query = async {
            let role = WindowRole::Reference;
            let answer = self.class_window(signal, counter, label, role, reference_at);
            answer
                .await
                .unwrap_or_else(|| Ok((BTreeMap::new(), Vec::new())))
        };
        let keep = self.refresh.caches();
        let cache = &self.class_references;
        Some(cache.reference(signal, at, reference_at, keep, query).await)
    }

    /// A class counter's window per model; `None` for a reference from a
    /// baseline file.
    async fn class_window(
        &self,
        signal: &str,
        counter: &str,
        label: &str,
        role: WindowRole,
        at: DateTime<Utc>,
    ) -> Option<Answer<ClassWindow>> {
        let query = class_query(&self.monitor, counter, label, role)?;
        let group_by = &self.monitor.group_by;
        let mut grouper = ClassGrouper::with_limits(self.client.answer_limits());
        let wanted = class_grouper_labels(group_by, label);
        Some(
            match self.run_query(&query, at, &wanted, &mut grouper).await {
                Ok(warnings) => Ok((grouper.finish(group_by), warnings)),
                Err(error) => Err(self.failure(signal, role, &query, error)),
            },
        )
    }

    /// A confidence signal's labelled window per model: its predictions
    /// and the correct ones, both over the current window moved back by
    /// `labels_delay`.
    async fn labelled_window(
        &self,
        signal: &str,
        histogram: &str,
        correct: &CorrectHistogram,
        at: DateTime<Utc>,
    ) -> Answer<Result<LabelledWindow, Rejection>> {
        let delay = correct.labels_delay;
        let predictions = labelled_query(&self.monitor, histogram, delay);
        let correct = labelled_query(&self.monitor, &correct.histogram, delay);
        let (predictions, correct) = tokio::join!(
            self.histograms(signal, predictions, WindowRole::Current, at),
            self.histograms(signal, correct, WindowRole::Current, at),
        );
        let ((predictions, mut warnings), (mut correct, correct_warnings)) =
            (predictions?, correct?);
        warnings.extend(correct_warnings);
        let window = predictions
            .into_iter()
            .map(|(model, predictions)| {
                let correct = correct.remove(&model);
                let labelled = grouped_distribution(predictions).and_then(|predictions| {
                    let correct = correct.ok_or_else(|| {
                        Rejection::new(
                            "no correct histogram",
                            "the correct-predictions histogram has no series for this model",
                        )
                    })?;
                    Ok(LabelledWindow {
                        predictions,
                        correct: grouped_distribution(correct)?,
                    })
                });
                (model, labelled)
            })
            .collect();
        Ok((window, warnings))
    }

    /// A baseline file's histograms: always complete, never young.
    fn baseline_window(&self, signal: &str) -> Window {
        let Some(baseline) = &self.baseline else {
            return BTreeMap::new();
        };
        baseline
            .signals
            .get(signal)
            .map(|models| {
                models
                    .iter()
                    .map(|(model, histogram)| {
                        let window = ModelWindow {
                            distribution: distribution(histogram),
                            young: false,
                        };
                        (model.clone(), window)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A window per model.
type Window = BTreeMap<ModelKey, ModelWindow>;

/// One model's window, ready for the detectors.
#[derive(Clone)]
struct ModelWindow {
    /// The distribution, or why the window makes none.
    distribution: Result<Distribution, Rejection>,
    /// Whether the window began before any of the model's series existed.
    young: bool,
}

/// A grouped window's distribution, or why it makes none.
fn grouped_distribution(window: GroupedWindow) -> Result<Distribution, Rejection> {
    window
        .histogram
        .map_err(|error| Rejection::new(error.reason(), error.to_string()))
        .and_then(|histogram| distribution(&histogram))
}

/// A window's distribution, or why its histogram makes none.
fn distribution(histogram: &Histogram) -> Result<Distribution, Rejection> {
    Distribution::from_histogram(histogram)
        .map_err(|error| Rejection::new(error.reason(), error.to_string()))
}

#[async_trait]
impl MetricCollector for PrometheusCollector {
    fn name(&self) -> &str {
        &self.monitor.name
    }

    fn signals(&self) -> Vec<String> {
        self.monitor.signals.keys().cloned().collect()
    }

    async fn collect(&self, at: DateTime<Utc>) -> anyhow::Result<Collection> {
        let signal_futures = self
            .monitor
            .signals
            .iter()
            .map(|(signal, config)| self.signal(signal, config, at));
        let mut collection = Collection::default();
        for answer in join_all(signal_futures).await {
            match answer {
                SignalAnswer::Histogram {
                    signal,
                    windows,
                    labelled,
                } => {
                    let confidence = self.monitor.signals[signal].is_confidence(signal);
                    let observations = collection.observations.len();
                    self.add_histograms(&mut collection, signal, windows, labelled);
                    for observation in &mut collection.observations[observations..] {
                        observation.details.confidence = confidence;
                    }
                }
                SignalAnswer::Classes {
                    signal,
                    current,
                    reference,
                } => add_classes(&mut collection, signal, current, reference),
            }
        }
        record_references(
            self.metrics.as_deref(),
            &self.monitor.name,
            &collection.references,
        );
        Ok(collection)
    }
}

/// A histogram signal's window answers: current, reference and, when the
/// monitor has a `short_window`, the short one.
struct HistogramWindows {
    current: Answer<ModelWindow>,
    reference: ReferenceAnswer<ModelWindow>,
    short: Option<Answer<ModelWindow>>,
}

/// Every query answer of one signal.
enum SignalAnswer<'a> {
    Histogram {
        signal: &'a str,
        windows: HistogramWindows,
        /// For a confidence signal with a correct-predictions histogram.
        labelled: Option<Answer<Result<LabelledWindow, Rejection>>>,
    },
    Classes {
        signal: &'a str,
        current: Answer<ClassWindow>,
        /// `None` for a reference from a baseline file.
        reference: Option<ReferenceAnswer<ClassWindow>>,
    },
}

impl PrometheusCollector {
    /// Runs every query of one signal at once.
    async fn signal<'a>(
        &self,
        signal: &'a str,
        config: &SignalConfig,
        at: DateTime<Utc>,
    ) -> SignalAnswer<'a> {
        let metric = &config.histogram;
        match &config.kind {
            SignalKind::Classes { label } => {
                let (current, reference) = tokio::join!(
                    self.class_window(signal, metric, label, WindowRole::Current, at),
                    self.class_reference(signal, metric, label, at),
                );
                SignalAnswer::Classes {
                    signal,
                    current: current.expect("the current window always has a query"),
                    reference,
                }
            }
            kind => {
                let labelled = async {
                    match kind {
                        SignalKind::Labelled(correct) => {
                            Some(self.labelled_window(signal, metric, correct, at).await)
                        }
                        _ => None,
                    }
                };
                let short = async {
                    match self.monitor.short_window {
                        Some(_) => Some(self.window(signal, metric, WindowRole::Short, at).await),
                        None => None,
                    }
                };
                let (current, reference, short, labelled) = tokio::join!(
                    self.window(signal, metric, WindowRole::Current, at),
                    self.reference_window(signal, metric, at),
                    short,
                    labelled,
                );
                SignalAnswer::Histogram {
                    signal,
                    windows: HistogramWindows {
                        current,
                        reference,
                        short,
                    },
                    labelled,
                }
            }
        }
    }

    /// A histogram signal's observations: one per model of the current
    /// window, with its reference and, when configured, its short and its
    /// labelled window. A failed short-window query fails the signal like
    /// the other two.
    fn add_histograms(
        &self,
        collection: &mut Collection,
        signal: &str,
        windows: HistogramWindows,
        labelled: Option<Answer<Result<LabelledWindow, Rejection>>>,
    ) {
        let HistogramWindows {
            current,
            reference,
            short,
        } = windows;
        let is_baseline = matches!(self.monitor.reference, ReferenceConfig::BaselineFile(_));
        // A failed labelled query fails the source's `up` but keeps the
        // signal's drift results: only the accuracy numbers are missing.
        let mut labelled = match labelled {
            Some(Ok((window, warnings))) => {
                collection.add_warnings(&format!("{signal} labelled window"), warnings);
                Some(window)
            }
            Some(Err(failure)) => {
                collection.failures.push(failure);
                None
            }
            None => None,
        };
        let mut short = match short {
            None => None,
            Some(Ok((window, warnings))) => {
                collection.add_warnings(&format!("{signal} short window"), warnings);
                Some(window)
            }
            Some(Err(failure)) => {
                collection.failures.push(failure);
                collection.failures.extend(current.err());
                collection.failures.extend(reference.err());
                return;
            }
        };
        let Some((current, reference)) = both(collection, signal, current, reference) else {
            return;
        };
        for (model, current) in current {
            // A model missing from the short window served nothing in it.
            let short = short.as_mut().map(|short| {
                short.remove(&model).map_or_else(
                    || {
                        Err(Rejection::new(
                            "no observations in the short window",
                            "no observations in the short window",
                        ))
                    },
                    |window| window.distribution,
                )
            });
            let reference = reference
                .get(&model)
                .cloned()
                .unwrap_or_else(|| ModelWindow {
                    distribution: Err(Rejection::new(
                        Rejection::NO_REFERENCE,
                        if is_baseline {
                            "the baseline file has no histogram for this model"
                        } else {
                            "no reference data for this model"
                        },
                    )),
                    young: false,
                });
            let labelled = labelled.as_mut().map(|window| {
                window.remove(&model).unwrap_or_else(|| {
                    Err(Rejection::new(
                        "no labelled data",
                        "no predictions in the labelled window for this model",
                    ))
                })
            });
            collection.observations.push(SignalObservation {
                young: young(current.young, reference.young),
                model,
                signal: signal.to_owned(),
                current: current.distribution,
                reference: reference.distribution,
                short,
                details: SignalDetails {
                    labelled,
                    ..SignalDetails::default()
                },
            });
        }
        // Models only in the reference have stopped serving: they leave.
    }
}
