//! model-monitor watches machine-learning models in production through the
//! metrics they already send to Prometheus.
//!
//! # Layout
//!
//! - [`alerting`]: the alert lifecycle (pending, firing, resolved), pure.
//! - [`config`]: the YAML file, decoded strictly with every problem listed.
//! - [`duration`]: Prometheus-style durations.
//! - [`promql`]: a client for the PromQL HTTP API.
//! - [`signals`]: the grouped PromQL of a monitor and per-model histograms.
//! - [`baseline`]: reference bucket counts kept in a file.
//! - [`stats`]: bucket counts to distributions, means, quantiles.
//! - [`detectors`]: the drift detectors and their decision rules.
//! - [`collector`]: sources of observations ([`MetricCollector`]), PromQL among them.
//! - [`monitor`]: the evaluation loop, its events and the [`ModelMonitor`] handle.
//! - [`render`]: drift gauges in the exposition format.
//! - [`telemetry`]: the sidecar's metrics about itself.
//! - [`webhooks`]: alert receivers (Slack, Alertmanager, templates), the
//!   durable outbox and delivery.
//! - [`exporter`]: `/metrics`, health, readiness, the status API.
//! - [`simulate`]: a synthetic model server for demos and tests.
//! - [`app`]: the binary's commands as functions.

pub mod alerting;
pub mod app;
pub mod baseline;
pub mod collector;
pub mod config;
pub mod detectors;
pub mod duration;
pub mod exporter;
pub mod monitor;
pub mod promql;
pub mod render;
pub mod signals;
pub mod simulate;
pub mod stats;
pub mod telemetry;
pub mod webhooks;

pub use collector::{Collection, MetricCollector, PrometheusCollector, SignalObservation};
pub use detectors::DriftDetector;
pub use monitor::{EventReceiver, InferenceMetrics, ModelMonitor, MonitorBuilder, MonitorEvent};
