//! The HTTP face of the sidecar: `/metrics`, the landing page, health and
//! readiness, and the JSON status API.
//!
//! Handlers only read the monitor's last published snapshot: a scrape never
//! queries Prometheus. `/metrics` is gzipped when the scraper asks
//! (`Accept-Encoding: gzip`, as Prometheus does on every scrape), piece by
//! piece as it is rendered; `/api/v1/status` (`status.rs`) is written and
//! streamed the same way, through `pieces.rs`, and gzipped when asked. The
//! server under the routes is `server.rs`.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::engine::ModelMonitor;

pub mod lifecycle;
pub mod pieces;
pub mod render;
pub mod security;
pub mod server;
pub mod status;
pub mod tls;

pub use lifecycle::ConfigSummary;

/// What the handlers read.
#[derive(Clone)]
pub struct AppState {
    pub monitor: ModelMonitor,
    /// A summary of the configuration with every secret left out, shown in
    /// the status API (replaced by a reload).
    pub config_summary: ConfigSummary,
}

/// The sidecar's routes.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(landing))
        .route("/metrics", get(metrics).layer(metrics_compression()))
        .route("/-/healthy", get(healthy))
        .route("/-/ready", get(ready))
        .route(
            "/api/v1/status",
            get(status::serve).layer(metrics_compression()),
        )
        .fallback(not_found)
        .with_state(state)
}

/// gzip for `/metrics` when the client asks: the body is compressed as
/// its pieces arrive, never gathered first.
fn metrics_compression() -> tower_http::compression::CompressionLayer {
    tower_http::compression::CompressionLayer::new()
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

async fn metrics(State(state): State<AppState>) -> Response {
    let snapshot = state.monitor.snapshot();
    let own = state.monitor.self_metrics().render();
    // The drift gauges can be tens of megabytes with many models: they are
    // rendered a piece at a time, each sent as soon as it is written.
    let body = pieces::body_written_in_pieces(move |send| {
        let taken =
            render::render_snapshot_in_pieces(&snapshot, pieces::PIECE_BYTES, &mut |piece| {
                send(bytes::Bytes::from(piece))
            });
        if taken {
            send(bytes::Bytes::from(own));
        }
    });
    (
        [(header::CONTENT_TYPE, crate::exposition::CONTENT_TYPE)],
        body,
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
            "reference": reference_summary(&monitor.reference),
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

/// A monitor's reference in the status API: its kind and what fixes it.
fn reference_summary(reference: &crate::config::ReferenceConfig) -> serde_json::Value {
    use crate::config::ReferenceConfig;
    let format = crate::duration::format_duration;
    match reference {
        ReferenceConfig::Offset(offset) => json!({"kind": "offset", "offset": format(*offset)}),
        ReferenceConfig::Offsets(offsets) => json!({
            "kind": "offsets",
            "offsets": offsets.iter().map(|offset| format(*offset)).collect::<Vec<_>>(),
        }),
        ReferenceConfig::Window(window) => json!({"kind": "window", "window": format(*window)}),
        ReferenceConfig::Range { start, end } => {
            json!({"kind": "range", "start": start, "end": end})
        }
        ReferenceConfig::BaselineFile(path) => {
            json!({"kind": "baseline_file", "file": path.display().to_string()})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    /// 300 KB of exposition-like text that does not compress to nothing,
    /// then no end.
    fn endless_body() -> axum::body::Body {
        let mut seed = 0x2545_f491_u64;
        let mut first = Vec::new();
        while first.len() < 300_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            first.extend_from_slice(format!("m{{model=\"{seed}\"}} {}\n", seed % 997).as_bytes());
        }
        let pieces =
            futures::stream::iter([Ok::<_, std::convert::Infallible>(bytes::Bytes::from(first))])
                .chain(futures::stream::pending());
        axum::body::Body::from_stream(pieces)
    }

    /// A body whose first 300 KB arrive and whose end never does: what the
    /// client receives of it was compressed without waiting for the end.
    #[tokio::test]
    async fn gzip_sends_compressed_bytes_before_the_body_ends() {
        let router: Router = Router::new().route(
            "/metrics",
            get(|| async { endless_body() }).layer(metrics_compression()),
        );
        let request = axum::http::Request::get("/metrics")
            .header(header::ACCEPT_ENCODING, "gzip")
            .body(axum::body::Body::empty())
            .unwrap();
        let response = router.oneshot(request).await.unwrap();
        assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip");
        let mut body = response.into_body();
        let frame = tokio::time::timeout(std::time::Duration::from_secs(30), body.frame())
            .await
            .expect("compressed bytes before the body ends")
            .expect("a frame")
            .expect("no error");
        let data = frame.into_data().expect("data");
        assert_eq!(&data[..2], &[0x1f, 0x8b]);
    }
}
