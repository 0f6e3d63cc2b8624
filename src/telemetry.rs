//! The sidecar's metrics about itself (`model_monitor_up`, query durations,
//! evaluation counts), kept in a `prometheus` registry.
//!
//! The drift gauges are not here: they are rendered from each evaluation's
//! results (see [`crate::render`]), so vanished series leave `/metrics` with
//! no bookkeeping.

use prometheus::{
    Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry,
};

/// Handles to every self-metric, registered in one registry.
pub struct SelfMetrics {
    pub registry: Registry,
    pub up: IntGaugeVec,
    pub query_duration: HistogramVec,
    pub query_failures: IntCounterVec,
    pub evaluations: IntCounter,
    pub evaluation_duration: Histogram,
    pub last_evaluation_timestamp: Gauge,
    pub skipped_ticks: IntCounter,
    pub model_errors: IntCounterVec,
    pub detector_errors: IntCounterVec,
    pub bucket_corrections: IntCounterVec,
    pub config_last_reload_successful: IntGauge,
    pub build_info: GaugeVec,
}

impl std::fmt::Debug for SelfMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SelfMetrics")
    }
}

fn must<T>(result: prometheus::Result<T>) -> T {
    result.expect("self-metric definitions are static and valid")
}

impl SelfMetrics {
    /// Creates and registers every self-metric.
    pub fn new() -> SelfMetrics {
        let registry = Registry::new();
        let up = must(IntGaugeVec::new(
            Opts::new(
                "model_monitor_up",
                "Whether every query to the source succeeded in the last evaluation (1) or not (0).",
            ),
            &["source"],
        ));
        let query_duration = must(HistogramVec::new(
            HistogramOpts::new(
                "model_monitor_query_duration_seconds",
                "Time taken by PromQL queries, including failed ones.",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            &["source"],
        ));
        let query_failures = must(IntCounterVec::new(
            Opts::new(
                "model_monitor_query_failures_total",
                "PromQL queries that failed, by reason.",
            ),
            &["source", "reason"],
        ));
        let evaluations = must(IntCounter::new(
            "model_monitor_evaluations_total",
            "Evaluation cycles completed.",
        ));
        let evaluation_duration = must(Histogram::with_opts(
            HistogramOpts::new(
                "model_monitor_evaluation_duration_seconds",
                "Wall time of evaluation cycles.",
            )
            .buckets(vec![
                0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ]),
        ));
        let last_evaluation_timestamp = must(Gauge::new(
            "model_monitor_last_evaluation_timestamp_seconds",
            "Evaluation time (the PromQL time parameter) of the last completed evaluation.",
        ));
        let skipped_ticks = must(IntCounter::new(
            "model_monitor_skipped_ticks_total",
            "Evaluations skipped because the previous one was still running.",
        ));
        let model_errors = must(IntCounterVec::new(
            Opts::new(
                "model_monitor_model_errors_total",
                "Model signals whose histograms were rejected (missing +Inf bucket, non-finite counts, ...).",
            ),
            &["monitor", "signal"],
        ));
        let detector_errors = must(IntCounterVec::new(
            Opts::new(
                "model_monitor_detector_errors_total",
                "Detector runs that could not compute a score.",
            ),
            &["monitor", "signal", "detector"],
        ));
        let bucket_corrections = must(IntCounterVec::new(
            Opts::new(
                "model_monitor_bucket_corrections_total",
                "Negative bucket differences clamped to zero.",
            ),
            &["monitor", "signal"],
        ));
        let config_last_reload_successful = must(IntGauge::new(
            "model_monitor_config_last_reload_successful",
            "Whether the last configuration load succeeded.",
        ));
        let build_info = must(GaugeVec::new(
            Opts::new(
                "model_monitor_build_info",
                "A metric with a constant 1 value labelled by version.",
            ),
            &["version"],
        ));
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1.0);
        for collector in [
            Box::new(up.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(query_duration.clone()),
            Box::new(query_failures.clone()),
            Box::new(evaluations.clone()),
            Box::new(evaluation_duration.clone()),
            Box::new(last_evaluation_timestamp.clone()),
            Box::new(skipped_ticks.clone()),
            Box::new(model_errors.clone()),
            Box::new(detector_errors.clone()),
            Box::new(bucket_corrections.clone()),
            Box::new(config_last_reload_successful.clone()),
            Box::new(build_info.clone()),
        ] {
            must(registry.register(collector));
        }
        SelfMetrics {
            registry,
            up,
            query_duration,
            query_failures,
            evaluations,
            evaluation_duration,
            last_evaluation_timestamp,
            skipped_ticks,
            model_errors,
            detector_errors,
            bucket_corrections,
            config_last_reload_successful,
            build_info,
        }
    }

    /// The registry in the text exposition format.
    pub fn render(&self) -> String {
        let families = self.registry.gather();
        let mut text = String::new();
        prometheus::TextEncoder::new()
            .encode_utf8(&families, &mut text)
            .expect("encoding into a String cannot fail");
        text
    }
}

impl Default for SelfMetrics {
    fn default() -> Self {
        SelfMetrics::new()
    }
}
