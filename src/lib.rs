//! model-monitor watches machine-learning models in production through the
//! metrics they already send to Prometheus.
//!
//! # Layout
//!
//! - [`config`]: the YAML file, decoded strictly with every problem listed.
//! - [`duration`]: Prometheus-style durations.
//! - [`promql`]: a client for the PromQL HTTP API.
//! - [`signals`]: the grouped PromQL of a monitor and per-model histograms.
//! - [`baseline`]: reference bucket counts kept in a file.
//! - [`stats`]: bucket counts to distributions, means, quantiles.
//! - [`detectors`]: the drift detectors and their decision rules.
//! - [`simulate`]: a synthetic model server for demos and tests.

pub mod baseline;
pub mod config;
pub mod detectors;
pub mod duration;
pub mod promql;
pub mod signals;
pub mod simulate;
pub mod stats;
