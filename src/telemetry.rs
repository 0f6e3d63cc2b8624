//! The sidecar's metrics about itself (`model_monitor_up`, query durations,
//! evaluation counts), kept in a `prometheus` registry.
//!
//! The drift gauges are not here: they are rendered from each evaluation's
//! results (see [`crate::sinks::exporter`]), so vanished series leave `/metrics` with
//! no bookkeeping.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
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
    /// Warnings in PromQL answers, by `source`.
    pub promql_warnings: IntCounterVec,
    pub detector_errors: IntCounterVec,
    pub bucket_corrections: IntCounterVec,
    pub config_last_reload_successful: IntGauge,
    /// Unix time of the last successful configuration load: the start, or
    /// a reload.
    pub config_last_reload_success_timestamp: Gauge,
    pub build_info: GaugeVec,
    /// 1 per source, labelled by the kind of its reference.
    pub reference_info: IntGaugeVec,
    /// The end of a fixed reference (a range, or a captured baseline file).
    pub reference_end: GaugeVec,
    /// The evaluation time of the reference each signal was last compared
    /// with, by `monitor` and `signal`.
    pub reference_evaluation: GaugeVec,
    /// Reference refreshes that failed, the previous reference used
    /// instead, by `monitor` and `signal`.
    pub reference_refresh_failures: IntCounterVec,
    /// Active alerts by `state` (pending, firing).
    pub alerts: IntGaugeVec,
    /// Delivery attempts by `receiver` and `outcome` (success, failure,
    /// dead_letter, expired).
    pub webhook_deliveries: IntCounterVec,
    pub webhook_delivery_duration: HistogramVec,
    /// Notifications in the outbox per receiver.
    pub webhook_queue_depth: IntGaugeVec,
    pub webhook_oldest_pending: PendingAge,
    /// Notifications in the dead-letter table per receiver.
    pub webhook_dead_letters: IntGaugeVec,
    /// Pending notifications in the outbox of receivers that are not
    /// configured (removed by a reload, or before a restart), by `receiver`.
    pub webhook_orphaned_notifications: IntGaugeVec,
    /// Notifications held in memory because the store cannot write.
    pub webhook_notifications_held: IntGauge,
    /// Notifications dropped because the store could not write and the
    /// memory held for them was full.
    pub webhook_notifications_dropped: IntCounter,
    /// Failed store operations by `operation` (open, read, write).
    pub storage_errors: IntCounterVec,
    /// Store files moved aside as corrupt, found in the storage directory
    /// at start.
    pub storage_quarantined_files: IntGauge,
}

/// `model_monitor_webhook_oldest_pending_age_seconds`, computed at scrape
/// time from the creation time of each receiver's oldest notification.
#[derive(Clone)]
pub struct PendingAge {
    gauge: GaugeVec,
    oldest: Arc<Mutex<BTreeMap<String, Option<f64>>>>,
}

impl PendingAge {
    /// Records the Unix time of `receiver`'s oldest pending notification,
    /// `None` when its queue is empty.
    pub fn set_oldest(&self, receiver: &str, created: Option<f64>) {
        self.oldest
            .lock()
            .expect("no panics while held")
            .insert(receiver.to_owned(), created);
    }
}

impl PendingAge {
    /// Removes `receiver`'s series.
    fn forget(&self, receiver: &str) {
        self.oldest
            .lock()
            .expect("no panics while held")
            .remove(receiver);
        let _ = self.gauge.remove_label_values(&[receiver]);
    }
}

/// Removes every series of `vec` whose label `name` is `value`.
fn remove_matching<T: prometheus::core::MetricVecBuilder>(
    vec: &prometheus::core::MetricVec<T>,
    name: &str,
    value: &str,
) {
    for family in vec.collect() {
        for metric in family.get_metric() {
            let labels: std::collections::HashMap<&str, &str> = metric
                .get_label()
                .iter()
                .map(|pair| (pair.name(), pair.value()))
                .collect();
            if labels.get(name) == Some(&value) {
                let _ = vec.remove(&labels);
            }
        }
    }
}

impl Collector for PendingAge {
    fn desc(&self) -> Vec<&Desc> {
        self.gauge.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        for (receiver, oldest) in self.oldest.lock().expect("no panics while held").iter() {
            let age = oldest.map_or(0.0, |created| (now - created).max(0.0));
            self.gauge.with_label_values(&[receiver]).set(age);
        }
        self.gauge.collect()
    }
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
        let promql_warnings = must(IntCounterVec::new(
            Opts::new(
                "model_monitor_promql_warnings_total",
                "Warnings carried by PromQL answers (logged as one summary line per evaluation).",
            ),
            &["source"],
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
        let config_last_reload_success_timestamp = must(Gauge::new(
            "model_monitor_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful configuration load (the start, or a reload).",
        ));
        let build_info = must(GaugeVec::new(
            Opts::new(
                "model_monitor_build_info",
                "A metric with a constant 1 value labelled by version.",
            ),
            &["version"],
        ));
        let reference_info = must(IntGaugeVec::new(
            Opts::new(
                "model_monitor_reference_info",
                "A metric with a constant 1 value per source, labelled by the kind of its reference: offset, window, range, baseline_file.",
            ),
            &["source", "kind"],
        ));
        let reference_end = must(GaugeVec::new(
            Opts::new(
                "model_monitor_reference_end_timestamp_seconds",
                "The end of a source's fixed reference: a range's end, or the end of the range a baseline file was captured over.",
            ),
            &["source"],
        ));
        let reference_evaluation = must(GaugeVec::new(
            Opts::new(
                "model_monitor_reference_evaluation_timestamp_seconds",
                "The evaluation time (the query's time) of the reference a signal was last compared with: grid_floor(evaluation time, reference.refresh), or a range's end.",
            ),
            &["monitor", "signal"],
        ));
        let reference_refresh_failures = must(IntCounterVec::new(
            Opts::new(
                "model_monitor_reference_refresh_failures_total",
                "Evaluations whose reference was due to be queried again and could not be: the previous cached reference was used.",
            ),
            &["monitor", "signal"],
        ));
        let alerts = must(IntGaugeVec::new(
            Opts::new(
                "model_monitor_alerts",
                "Active alerts by state (pending: drifting, not yet for long enough; firing).",
            ),
            &["state"],
        ));
        let webhook_deliveries = must(IntCounterVec::new(
            Opts::new(
                "model_monitor_webhook_deliveries_total",
                "Webhook delivery attempts by outcome: success (2xx), failure (will be retried), dead_letter (rejected, not retried), expired (older than max_age).",
            ),
            &["receiver", "outcome"],
        ));
        let webhook_delivery_duration = must(HistogramVec::new(
            HistogramOpts::new(
                "model_monitor_webhook_delivery_duration_seconds",
                "Time taken by webhook delivery attempts, failed ones included.",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            &["receiver"],
        ));
        let webhook_queue_depth = must(IntGaugeVec::new(
            Opts::new(
                "model_monitor_webhook_queue_depth",
                "Notifications in the outbox waiting for delivery.",
            ),
            &["receiver"],
        ));
        let webhook_oldest_pending = PendingAge {
            gauge: must(GaugeVec::new(
                Opts::new(
                    "model_monitor_webhook_oldest_pending_age_seconds",
                    "Age of the oldest notification waiting for delivery; 0 when none waits.",
                ),
                &["receiver"],
            )),
            oldest: Arc::default(),
        };
        let webhook_dead_letters = must(IntGaugeVec::new(
            Opts::new(
                "model_monitor_webhook_dead_letters",
                "Notifications in the dead-letter table (rejected or expired).",
            ),
            &["receiver"],
        ));
        let webhook_orphaned_notifications = must(IntGaugeVec::new(
            Opts::new(
                "model_monitor_webhook_orphaned_notifications",
                "Pending notifications in the outbox of a receiver that is not configured: kept, not delivered, resumed if it is configured again.",
            ),
            &["receiver"],
        ));
        let webhook_notifications_held = must(IntGauge::new(
            "model_monitor_webhook_notifications_held",
            "Notifications held in memory because the store cannot write; written when it can.",
        ));
        let webhook_notifications_dropped = must(IntCounter::new(
            "model_monitor_webhook_notifications_dropped_total",
            "Notifications dropped because the store could not write and the memory held for them was full.",
        ));
        let storage_errors = must(IntCounterVec::new(
            Opts::new(
                "model_monitor_storage_errors_total",
                "Failed operations on the store file (the outbox and alert state) by operation: open, read, write.",
            ),
            &["operation"],
        ));
        let storage_quarantined_files = must(IntGauge::new(
            "model_monitor_storage_quarantined_files",
            "Store files moved aside as corrupt (outbox.redb.corrupt-*) in the storage directory, counted at start.",
        ));
        for operation in ["open", "read", "write"] {
            storage_errors.with_label_values(&[operation]).inc_by(0);
        }
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
            Box::new(promql_warnings.clone()),
            Box::new(detector_errors.clone()),
            Box::new(bucket_corrections.clone()),
            Box::new(config_last_reload_successful.clone()),
            Box::new(config_last_reload_success_timestamp.clone()),
            Box::new(build_info.clone()),
            Box::new(reference_info.clone()),
            Box::new(reference_end.clone()),
            Box::new(reference_evaluation.clone()),
            Box::new(reference_refresh_failures.clone()),
            Box::new(alerts.clone()),
            Box::new(webhook_deliveries.clone()),
            Box::new(webhook_delivery_duration.clone()),
            Box::new(webhook_queue_depth.clone()),
            Box::new(webhook_oldest_pending.clone()),
            Box::new(webhook_dead_letters.clone()),
            Box::new(webhook_orphaned_notifications.clone()),
            Box::new(webhook_notifications_held.clone()),
            Box::new(webhook_notifications_dropped.clone()),
            Box::new(storage_errors.clone()),
            Box::new(storage_quarantined_files.clone()),
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
            promql_warnings,
            detector_errors,
            bucket_corrections,
            config_last_reload_successful,
            config_last_reload_success_timestamp,
            build_info,
            reference_info,
            reference_end,
            reference_evaluation,
            reference_refresh_failures,
            alerts,
            webhook_deliveries,
            webhook_delivery_duration,
            webhook_queue_depth,
            webhook_oldest_pending,
            webhook_dead_letters,
            webhook_orphaned_notifications,
            webhook_notifications_held,
            webhook_notifications_dropped,
            storage_errors,
            storage_quarantined_files,
        }
    }

    /// Creates every per-receiver series with 0, so that alert rules and
    /// dashboards see them before the first notification.
    pub fn init_receiver(&self, receiver: &str) {
        for outcome in ["success", "failure", "dead_letter", "expired"] {
            self.webhook_deliveries
                .with_label_values(&[receiver, outcome])
                .inc_by(0);
        }
        self.webhook_delivery_duration
            .with_label_values(&[receiver]);
        self.webhook_queue_depth
            .with_label_values(&[receiver])
            .set(0);
        self.webhook_dead_letters
            .with_label_values(&[receiver])
            .set(0);
        self.webhook_oldest_pending.set_oldest(receiver, None);
    }

    /// Records a successful configuration load (at start or by a reload)
    /// at Unix time `now`.
    pub fn config_loaded(&self, now: f64) {
        self.config_last_reload_successful.set(1);
        self.config_last_reload_success_timestamp.set(now);
    }

    /// Removes every series of a monitor (source) that a reload removed:
    /// what is not watched any more leaves `/metrics`.
    pub fn forget_source(&self, source: &str) {
        remove_matching(&self.up, "source", source);
        remove_matching(&self.query_duration, "source", source);
        remove_matching(&self.query_failures, "source", source);
        remove_matching(&self.promql_warnings, "source", source);
        remove_matching(&self.model_errors, "monitor", source);
        remove_matching(&self.detector_errors, "monitor", source);
        remove_matching(&self.bucket_corrections, "monitor", source);
        self.forget_reference(source);
    }

    /// Removes a source's reference series (`model_monitor_reference_info`,
    /// `model_monitor_reference_end_timestamp_seconds` and those of its
    /// reference times), before they are set again for a new reference or
    /// when the source is removed.
    pub fn forget_reference(&self, source: &str) {
        remove_matching(&self.reference_info, "source", source);
        remove_matching(&self.reference_end, "source", source);
        remove_matching(&self.reference_evaluation, "monitor", source);
        remove_matching(&self.reference_refresh_failures, "monitor", source);
    }

    /// Removes the delivery series of a receiver that a reload removed (its
    /// pending notifications are counted in
    /// `model_monitor_webhook_orphaned_notifications` instead).
    pub fn forget_receiver(&self, receiver: &str) {
        remove_matching(&self.webhook_deliveries, "receiver", receiver);
        remove_matching(&self.webhook_delivery_duration, "receiver", receiver);
        remove_matching(&self.webhook_queue_depth, "receiver", receiver);
        remove_matching(&self.webhook_dead_letters, "receiver", receiver);
        self.webhook_oldest_pending.forget(receiver);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgetting_a_source_or_receiver_removes_only_its_series() {
        let metrics = SelfMetrics::new();
        for source in ["gone", "kept"] {
            metrics.up.with_label_values(&[source]).set(1);
            metrics
                .query_failures
                .with_label_values(&[source, "timeout"])
                .inc();
            metrics
                .detector_errors
                .with_label_values(&[source, "confidence", "ks"])
                .inc();
            metrics.init_receiver(source);
        }
        metrics.forget_source("gone");
        metrics.forget_receiver("gone");
        let text = metrics.render();
        assert!(!text.contains("\"gone\""), "{text}");
        for series in [
            "model_monitor_up{source=\"kept\"} 1",
            "model_monitor_query_failures_total{reason=\"timeout\",source=\"kept\"} 1",
            "model_monitor_detector_errors_total{detector=\"ks\",monitor=\"kept\",signal=\"confidence\"} 1",
            "model_monitor_webhook_queue_depth{receiver=\"kept\"} 0",
            "model_monitor_webhook_oldest_pending_age_seconds{receiver=\"kept\"} 0",
        ] {
            assert!(text.contains(series), "{series} in\n{text}");
        }
    }
}
