//! Helpers shared by the integration tests, each written once.

pub mod alertmanager;
pub mod answers;
pub mod browser;
pub mod exposition;
pub mod process;
pub mod prometheus;
pub mod promql;
pub mod sidecar;
pub mod victoriametrics;
pub mod webhook_receiver;
