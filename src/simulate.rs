//! `model-monitor simulate`: a synthetic model server for demos, tests and
//! benchmarks.
//!
//! It serves the input metrics of DESIGN.md for N models and, after a set
//! time, shifts one model's confidence down and latency up.

use std::time::Duration;

/// Options of `model-monitor simulate`.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulateOptions {
    pub models: usize,
    pub seed: u64,
    pub drift_model: Option<String>,
    pub drift_after: Duration,
    pub rate: f64,
}

/// Serves `/metrics` on the listener until `shutdown` completes.
pub async fn serve(
    options: SimulateOptions,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let _ = (options, listener, Duration::ZERO);
    shutdown.await;
    todo!()
}
