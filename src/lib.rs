//! model-monitor watches machine-learning models in production through the
//! metrics they already send to Prometheus.
//!
//! # Layout
//!
//! The modules follow the data flow, from PromQL answers to gauges and
//! notifications; each imports only from the ones listed before it.
//!
//! - [`duration`], [`exposition`], [`telemetry`]: Prometheus-style
//!   durations; the text exposition format's one writer; the sidecar's
//!   metrics about itself.
//! - [`config`]: the YAML file, decoded strictly with every problem listed.
//! - [`stats`]: bucket counts to distributions, means, quantiles.
//! - [`detectors`]: the drift detectors and their decision rules.
//! - [`model`]: the records every layer shares (model keys, inference
//!   metrics, detections).
//! - [`sources`]: where observations come from ([`MetricCollector`]): the
//!   PromQL source (`sources::prometheus`) and baseline files.
//! - [`alerting`]: the alert lifecycle (pending, firing, resolved), the
//!   notification gates (cooldowns), the [`alerting::AlertSink`] it hands
//!   notices to and the persistence traits a store implements.
//! - [`engine`]: the evaluation loop, its events and the [`ModelMonitor`]
//!   handle.
//! - [`backtest`]: the evaluations `run` would have made over a past
//!   range, replayed, with their alert episodes (table, CSV, JSON, HTML).
//! - [`store`]: the redb file: the stored lifecycle, the outbox, dead
//!   letters and gate state (cooldowns, last notifications).
//! - [`sinks`]: `/metrics` and the status API (`sinks::exporter`); webhook
//!   payloads and delivery (`sinks::webhooks`).
//! - [`app`]: the binary's commands as functions.
//!
//! The binary (`src/main.rs`) adds flags, exit codes and `simulate`, the
//! synthetic model server for demos and tests (`src/simulate/`), which is
//! not part of this library.

pub mod alerting;
pub mod app;
pub mod backtest;
pub mod config;
pub mod detectors;
pub mod duration;
pub mod engine;
pub mod exposition;
pub mod model;
pub mod sinks;
pub mod sources;
pub mod stats;
pub mod store;
pub mod telemetry;

pub use detectors::DriftDetector;
pub use engine::{EventReceiver, ModelMonitor, MonitorBuilder, MonitorEvent};
pub use model::InferenceMetrics;
pub use sources::{Collection, MetricCollector, PrometheusCollector, SignalObservation};
