//! What the sidecar exports: the samples of an exposition text, and the
//! exporter's routes (`/metrics`, `/-/ready`, `/api/v1/status`) served
//! in-process for a monitor running in the test.

use axum::Router;
use axum::http::StatusCode;
use model_monitor::engine::ModelMonitor;
use model_monitor::sinks::exporter::{self, AppState};
use tower::ServiceExt;

/// One sample of an exposition-format text: (name, labels, value).
type ExposedSample = (String, Vec<(String, String)>, f64);

/// Samples of an exposition-format text.
fn parse_exposition(text: &str) -> Vec<ExposedSample> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let value = match value {
                "NaN" => f64::NAN,
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().ok()?,
            };
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|pair| !pair.is_empty())
                .filter_map(|pair| {
                    let (k, v) = pair.split_once("=\"")?;
                    Some((k.to_owned(), v.trim_end_matches('"').to_owned()))
                })
                .collect();
            Some((name.to_owned(), labels, value))
        })
        .collect()
}

/// The value of the one sample of `name` whose labels include all of `want`.
pub fn sample(text: &str, name: &str, want: &[(&str, &str)]) -> Option<f64> {
    parse_exposition(text)
        .into_iter()
        .find(|(n, labels, _)| {
            n == name
                && want
                    .iter()
                    .all(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, _, value)| value)
}

/// Whether a line of `text` starts with `prefix` and ends with `suffix`.
pub fn has_line(text: &str, prefix: &str, suffix: &str) -> bool {
    text.lines()
        .any(|line| line.starts_with(prefix) && line.ends_with(suffix))
}

/// GETs `path` of the exporter of `monitor` (with an empty config summary),
/// in-process: (status, body).
pub async fn fetch(monitor: &ModelMonitor, path: &str) -> (StatusCode, String) {
    let app = exporter::app(AppState {
        monitor: monitor.clone(),
        config_summary: serde_json::json!({}).into(),
    });
    fetch_from(app, path).await
}

/// GETs `path` of an exporter router, in-process: (status, body).
pub async fn fetch_from(app: Router, path: &str) -> (StatusCode, String) {
    let response = app
        .oneshot(
            axum::http::Request::get(path)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}
