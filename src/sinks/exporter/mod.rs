//! The HTTP face of the sidecar: `/metrics`, the landing page, health and
//! readiness, and the JSON status API.
//!
//! Handlers only read the monitor's last published snapshot: a scrape never
//! queries Prometheus. `/metrics` is gzipped when the scraper asks
//! (`Accept-Encoding: gzip`, as Prometheus does on every scrape), piece by
//! piece as it is rendered. The server under the routes is `server.rs`.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::engine::ModelMonitor;

pub mod render;
pub mod server;

/// What the handlers read.
#[derive(Clone)]
pub struct AppState {
    pub monitor: ModelMonitor,
    /// A summary of the configuration with every secret left out, shown in
    /// the status API.
    pub config_summary: serde_json::Value,
}

/// The sidecar's routes.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(landing))
        .route(
            "/metrics",
            get(metrics).layer(tower_http::compression::CompressionLayer::new()),
        )
        .route("/-/healthy", get(healthy))
        .route("/-/ready", get(ready))
        .route("/api/v1/status", get(status))
        .fallback(not_found)
        .with_state(state)
}

const LANDING: &str = r#"<!doctype html>
<html><head><title>model-monitor</title></head>
<body>
<h1>model-monitor</h1>
<p>Drift and latency monitoring for machine-learning models, from Prometheus histograms.</p>
<ul>
<li><a href="metrics">/metrics</a>: drift scores and the sidecar's own metrics</li>
<li><a href="api/v1/status">/api/v1/status</a>: models, signals, detector results and errors (JSON)</li>
<li><a href="-/healthy">/-/healthy</a>, <a href="-/ready">/-/ready</a></li>
</ul>
</body></html>
"#;

async fn landing() -> Html<&'static str> {
    Html(LANDING)
}

/// Bytes per piece of a `/metrics` answer.
const METRICS_PIECE_BYTES: usize = 256 * 1024;

/// Pieces rendered ahead of what the client has taken.
const METRICS_PIECES_AHEAD: usize = 2;

async fn metrics(State(state): State<AppState>) -> Response {
    let snapshot = state.monitor.snapshot();
    let own = state.monitor.self_metrics().render();
    // The drift gauges can be tens of megabytes with many models: they are
    // rendered on a blocking thread, a piece at a time, each sent as soon as
    // it is written; a client that reads slowly holds the renderer back
    // (a bounded channel), one that goes away stops it.
    let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(METRICS_PIECES_AHEAD);
    tokio::task::spawn_blocking(move || {
        let taken =
            render::render_snapshot_in_pieces(&snapshot, METRICS_PIECE_BYTES, &mut |piece| {
                tx.blocking_send(bytes::Bytes::from(piece)).is_ok()
            });
        if taken {
            let _ = tx.blocking_send(bytes::Bytes::from(own));
        }
    });
    // Fused: the gzip encoder polls its source once more after the end.
    let body = futures::StreamExt::fuse(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|piece| (Ok::<_, std::convert::Infallible>(piece), rx))
    }));
    (
        [(header::CONTENT_TYPE, crate::exposition::CONTENT_TYPE)],
        axum::body::Body::from_stream(body),
    )
        .into_response()
}

async fn healthy() -> &'static str {
    "model-monitor is healthy\n"
}

/// Ready once an evaluation has completed, and while the alert store
/// writes (notifications made while it cannot are only held in memory).
async fn ready(State(state): State<AppState>) -> Response {
    let unavailable = |why: String| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("model-monitor is not ready: {why}\n"),
        )
            .into_response()
    };
    if !state.monitor.is_ready() {
        return unavailable("no evaluation has completed yet".to_owned());
    }
    match state.monitor.sink_problem() {
        Some(problem) => unavailable(problem),
        None => (StatusCode::OK, "model-monitor is ready\n").into_response(),
    }
}

async fn status(State(state): State<AppState>) -> Response {
    let snapshot = state.monitor.snapshot();
    Json(json!({
        "status": "success",
        "data": {
            "version": env!("CARGO_PKG_VERSION"),
            "ready": state.monitor.is_ready(),
            "config": state.config_summary,
            "evaluation": &*snapshot,
            "alerts": &snapshot.alerts,
            "alerts_pending": snapshot.alerts_pending,
            "alerts_firing": snapshot.alerts_firing,
            "webhooks": state.monitor.delivery_status(),
        }
    }))
    .into_response()
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

/// The configuration as the status API shows it: structure and names,
/// never credentials, header values, webhook URLs or secrets.
pub fn config_summary(config: &crate::config::Config) -> serde_json::Value {
    let mut url = config.prometheus.url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    json!({
        "prometheus": {
            "url": url.as_str(),
            "timeout": crate::duration::format_duration(config.prometheus.timeout),
            "header_names": config.prometheus.headers.keys().collect::<Vec<_>>(),
            "bearer_token_file": config.prometheus.bearer_token_file.is_some(),
            "basic_auth": config.prometheus.basic_auth.is_some(),
        },
        "evaluation": {
            "interval": crate::duration::format_duration(config.evaluation.interval),
            "concurrency": config.evaluation.concurrency,
        },
        "monitors": config.monitors.iter().map(|monitor| json!({
            "name": monitor.name,
            "group_by": monitor.group_by,
            "window": crate::duration::format_duration(monitor.window),
            "min_samples": monitor.min_samples,
            "alerting": {
                "for": monitor.alerting.for_evaluations,
                "resolve_after": monitor.alerting.resolve_after,
                "repeat_interval": crate::duration::format_duration(monitor.alerting.repeat_interval),
            },
            "signals": monitor.signals.iter().map(|(name, signal)| json!({
                "name": name,
                "histogram": signal.histogram,
                "detectors": signal.detectors.iter().map(|d| json!({"name": d.name, "type": d.kind.type_name()})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "webhooks": config.webhooks.iter().map(|webhook| json!({
            "name": webhook.name,
            "format": format!("{:?}", webhook.format).to_lowercase(),
            "signed": webhook.secret.is_some(),
            "on": webhook.on,
            "send_resolved": webhook.send_resolved,
            "max_age": crate::duration::format_duration(webhook.max_age),
        })).collect::<Vec<_>>(),
    })
}
