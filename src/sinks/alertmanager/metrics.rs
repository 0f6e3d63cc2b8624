//! The Alertmanager sink's metrics about itself, named as Prometheus names
//! its notifier's (`prometheus_notifications_*`), registered in the
//! sidecar's one registry ([`SelfMetrics::registry`]).

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts};

use crate::telemetry::SelfMetrics;

/// Handles to the sink's metrics; each series labelled by `alertmanager`
/// (its URL without credentials).
#[derive(Clone)]
pub struct AlertmanagerMetrics {
    /// Alerts sent, per Alertmanager, failed attempts included.
    pub sent: IntCounterVec,
    /// Alerts whose sending failed, per Alertmanager and attempt.
    pub errors: IntCounterVec,
    /// Alerts dropped from a full queue (the oldest first).
    pub dropped: IntCounterVec,
    /// Alerts waiting to be sent.
    pub queue_length: IntGaugeVec,
    /// Time taken by each request.
    pub latency: HistogramVec,
    /// How many Alertmanagers are configured.
    pub alertmanagers: IntGauge,
}

fn must<T>(result: prometheus::Result<T>) -> T {
    result.expect("self-metric definitions are static and valid")
}

impl AlertmanagerMetrics {
    /// Creates the metrics and registers them in `metrics`' registry.
    pub fn register(metrics: &SelfMetrics) -> AlertmanagerMetrics {
        let label = &["alertmanager"];
        let counter =
            |name: &str, help: &str| must(IntCounterVec::new(Opts::new(name, help), label));
        let sent = counter(
            "model_monitor_alertmanager_notifications_total",
            "Alerts sent to the Alertmanager, failed attempts included.",
        );
        let errors = counter(
            "model_monitor_alertmanager_notifications_errors_total",
            "Alerts whose sending to the Alertmanager failed (per attempt).",
        );
        let dropped = counter(
            "model_monitor_alertmanager_notifications_dropped_total",
            "Alerts dropped because the Alertmanager's queue was full (oldest first).",
        );
        let queue_length = must(IntGaugeVec::new(
            Opts::new(
                "model_monitor_alertmanager_queue_length",
                "Alerts waiting to be sent to the Alertmanager.",
            ),
            label,
        ));
        let latency = must(HistogramVec::new(
            HistogramOpts::new(
                "model_monitor_alertmanager_latency_seconds",
                "Time taken by requests to the Alertmanager, failed ones included.",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            label,
        ));
        let alertmanagers = must(IntGauge::new(
            "model_monitor_alertmanagers",
            "Alertmanagers the sidecar sends its alerts to.",
        ));
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(sent.clone()),
            Box::new(errors.clone()),
            Box::new(dropped.clone()),
            Box::new(queue_length.clone()),
            Box::new(latency.clone()),
            Box::new(alertmanagers.clone()),
        ];
        for collector in collectors {
            must(metrics.registry.register(collector));
        }
        AlertmanagerMetrics {
            sent,
            errors,
            dropped,
            queue_length,
            latency,
            alertmanagers,
        }
    }

    /// Creates the series of `alertmanager` at 0, so they exist before the
    /// first alert.
    pub fn init(&self, alertmanager: &str) {
        let labels = &[alertmanager];
        self.sent.with_label_values(labels);
        self.errors.with_label_values(labels);
        self.dropped.with_label_values(labels);
        self.queue_length.with_label_values(labels).set(0);
        self.latency.with_label_values(labels);
    }

    /// Removes the series of an Alertmanager a reload removed.
    pub fn forget(&self, alertmanager: &str) {
        let labels = &[alertmanager];
        let _ = self.sent.remove_label_values(labels);
        let _ = self.errors.remove_label_values(labels);
        let _ = self.dropped.remove_label_values(labels);
        let _ = self.queue_length.remove_label_values(labels);
        let _ = self.latency.remove_label_values(labels);
    }
}
