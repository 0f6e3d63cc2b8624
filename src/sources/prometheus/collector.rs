//! [`PrometheusCollector`]: a monitor's signals from a PromQL API, one
//! grouped query per histogram and window.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::future::join_all;
use tokio::sync::Semaphore;

use super::group::{GroupedWindow, HistogramGrouper, grouper_labels};
use super::query::histogram_query;
use super::{PromClient, PromError};
use crate::config::{MonitorConfig, ReferenceConfig};
use crate::model::ModelKey;
use crate::sources::baseline::Baseline;
use crate::sources::{
    Collection, MetricCollector, Rejection, SignalFailure, SignalObservation, WindowRole,
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
}

impl PrometheusCollector {
    /// A collector for `monitor` using `client`; at most `permits` queries
    /// run at once.
    pub fn new(monitor: MonitorConfig, client: PromClient, permits: Arc<Semaphore>) -> Self {
        PrometheusCollector {
            monitor,
            client,
            permits,
            baseline: None,
            metrics: None,
        }
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

    /// Runs one grouped histogram query and groups its answer by model
    /// while the body is alive, so no sample owns its labels. Returns the
    /// answer's warnings too: the engine summarises them, one log line per
    /// evaluation rather than one per warning.
    async fn run_query(&self, query: String, at: DateTime<Utc>) -> Result<Grouped, PromError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("semaphore never closes");
        let started = Instant::now();
        let group_by = &self.monitor.group_by;
        let wanted = grouper_labels(group_by);
        // Past the limits the grouper stops the reading: a hostile or
        // mistaken answer never grows memory beyond them.
        let mut grouper = HistogramGrouper::with_limits(self.client.answer_limits());
        let result = self
            .client
            .query_vector_into(&query, at, &wanted, &mut grouper)
            .await
            .map(|warnings| (grouper.finish(group_by), warnings));
        let elapsed = started.elapsed().as_secs_f64();
        if let Some(metrics) = &self.metrics {
            metrics
                .query_duration
                .with_label_values(&[&self.monitor.name])
                .observe(elapsed);
        }
        result
    }

    /// The window's histograms per model, from PromQL or the baseline file.
    async fn window(
        &self,
        signal: &str,
        histogram: &str,
        role: WindowRole,
        at: DateTime<Utc>,
    ) -> Result<(Window, Vec<String>), SignalFailure> {
        let Some(query) = histogram_query(&self.monitor, histogram, role) else {
            return Ok((self.baseline_window(signal), Vec::new()));
        };
        match self.run_query(query.clone(), at).await {
            Ok((models, warnings)) => {
                let window = models
                    .into_iter()
                    .map(|(model, window)| {
                        let distribution = window
                            .histogram
                            .map_err(|error| Rejection::new(error.reason(), error.to_string()))
                            .and_then(|histogram| distribution(&histogram));
                        // No series of the model existed when the window began.
                        let young = window.series_at_start < 1.0;
                        (
                            model,
                            ModelWindow {
                                distribution,
                                young,
                            },
                        )
                    })
                    .collect();
                Ok((window, warnings))
            }
            Err(error) => {
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
                    query = %query,
                    error = %error,
                    "query failed"
                );
                Err(SignalFailure {
                    signal: signal.to_owned(),
                    role,
                    reason: error.reason(),
                    message: error.to_string(),
                })
            }
        }
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

/// A query's answer grouped by model, and its warnings.
type Grouped = (BTreeMap<ModelKey, GroupedWindow>, Vec<String>);

/// A window per model.
type Window = BTreeMap<ModelKey, ModelWindow>;

/// One model's window, ready for the detectors.
struct ModelWindow {
    /// The distribution, or why the window makes none.
    distribution: Result<Distribution, Rejection>,
    /// Whether the window began before any of the model's series existed.
    young: bool,
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
            .map(|(signal, config)| async move {
                let short = async {
                    match self.monitor.short_window {
                        Some(_) => Some(
                            self.window(signal, &config.histogram, WindowRole::Short, at)
                                .await,
                        ),
                        None => None,
                    }
                };
                let (current, reference, short) = tokio::join!(
                    self.window(signal, &config.histogram, WindowRole::Current, at),
                    self.window(signal, &config.histogram, WindowRole::Reference, at),
                    short,
                );
                (signal.clone(), current, reference, short)
            });
        let mut collection = Collection::default();
        let is_baseline = matches!(self.monitor.reference, ReferenceConfig::BaselineFile(_));
        for (signal, current, reference, short) in join_all(signal_futures).await {
            let (mut current, mut reference, mut short) =
                match (current, reference, short.transpose()) {
                    (
                        Ok((current, current_warnings)),
                        Ok((reference, reference_warnings)),
                        Ok(short),
                    ) => {
                        collection
                            .add_warnings(&format!("{signal} current window"), current_warnings);
                        collection.add_warnings(
                            &format!("{signal} reference window"),
                            reference_warnings,
                        );
                        let short = short.map(|(short, short_warnings)| {
                            collection
                                .add_warnings(&format!("{signal} short window"), short_warnings);
                            short
                        });
                        (current, reference, short)
                    }
                    (current, reference, short) => {
                        collection.failures.extend(current.err());
                        collection.failures.extend(reference.err());
                        collection.failures.extend(short.err());
                        continue;
                    }
                };
            for (model, current) in std::mem::take(&mut current) {
                let reference = reference.remove(&model).unwrap_or_else(|| ModelWindow {
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
                let young = [
                    (WindowRole::Current, current.young),
                    (WindowRole::Reference, reference.young),
                ]
                .into_iter()
                .filter_map(|(role, young)| young.then_some(role))
                .collect();
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
                collection.observations.push(SignalObservation {
                    model,
                    signal: signal.clone(),
                    current: current.distribution,
                    reference: reference.distribution,
                    short,
                    young,
                });
            }
            // Models only in the reference have stopped serving: they leave.
            reference.clear();
        }
        Ok(collection)
    }
}
