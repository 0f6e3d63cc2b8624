//! No decisions on young series, with real processes: `model-monitor
//! simulate` serves three models (one drifts late), a real Prometheus starts
//! scraping them with the sidecar, so every series is younger than the
//! reference window at first. The windows keep the demo's proportions, only
//! shorter: a 15 s current window against the 150 s before it, evaluated
//! every 2 s, Prometheus scraping every second, and a webhook with the
//! default `for: 1`.
//!
//! While the series are younger than the reference, `increase()` sees only
//! their first seconds, extrapolated bucket by bucket; the two-window
//! detectors must not decide then. The SLO detector reads the current window
//! only, so it decides as soon as that window is covered. A drift after the
//! series have grown older than the reference is still caught.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::exposition::sample;
use crate::support::process::{get, http_client};
use crate::support::prometheus::PrometheusServer;
use crate::support::sidecar::{
    Sidecar, SidecarConfig, start_drifting_simulation, status_detectors,
};
use crate::support::webhook_receiver::WebhookReceiver;

const WINDOW_SECS: u64 = 15;
const REFERENCE_SECS: u64 = 150;
/// Just past the time the series cover both windows (165 s after the first
/// scrape). Once they do, the stationary models are decided at the
/// detectors' false-alarm rate, which at 15 s windows is not nil (the
/// end-to-end test with larger windows checks it); this test is about the
/// young period, so the drift follows it closely.
const DRIFT_AFTER_SECS: u64 = 175;
/// The confidence detectors, all of which compare the two windows.
const TWO_WINDOW: [&str; 4] = ["psi", "ks", "chi_square", "zscore"];

fn sidecar_config(prometheus_url: &str, webhook_url: &str) -> SidecarConfig {
    SidecarConfig::simulated(prometheus_url, "young")
        .set("WINDOW", &format!("{WINDOW_SECS}s"))
        .set("REFERENCE_WINDOW", &format!("{REFERENCE_SECS}s"))
        .set("EVALUATION_INTERVAL", "2s")
        // As in end_to_end.rs: chi-square's p-value on sparse buckets needs
        // a few hundred observations per window.
        .set("MIN_SAMPLES", "300")
        // The fixed distance thresholds false-alarm on small windows, and the
        // latency ratio is not what this test is about; the SLO stays as the
        // detector that reads the current window only.
        .without_detectors(&[
            "jensen_shannon",
            "hellinger",
            "wasserstein",
            "quantile_ratio",
        ])
        .with_webhooks(&format!(
            "  - name: loopback\n    format: alertmanager\n    url: {webhook_url}/hook\n"
        ))
}

/// `model_monitor_drift_detected` of one model's detector on one signal.
fn detected(text: &str, model: &str, signal: &str, detector: &str) -> Option<f64> {
    sample(
        text,
        "model_monitor_drift_detected",
        &[("model", model), ("signal", signal), ("detector", detector)],
    )
}

/// The (model, signal, status) of every alert the webhook has received.
fn notified(receiver: &WebhookReceiver) -> Vec<(String, String, String)> {
    let mut alerts = Vec::new();
    for request in receiver.received("hook") {
        let body: Value = serde_json::from_str(&request.body).expect("alertmanager JSON");
        for alert in body["alerts"].as_array().expect("alerts") {
            let label = |name: &str| alert["labels"][name].as_str().unwrap_or("").to_owned();
            let status = alert["status"].as_str().unwrap_or("").to_owned();
            alerts.push((label("model"), label("signal"), status));
        }
    }
    alerts
}

/// The verdict object of one model's detector in the status API.
fn verdict(status: &Value, model: &str, signal: &str, detector: &str) -> Value {
    status_detectors(status, model, signal)
        .into_iter()
        .find(|d| d["detector"] == detector)
        .map(|d| d["verdict"].clone())
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn young_series_get_no_decision_and_a_later_drift_is_still_notified() {
    let dir = tempfile::tempdir().expect("temp dir");
    let client = http_client();
    let receiver = WebhookReceiver::start(&[], None).await;

    let (_simulate, simulate_port) =
        start_drifting_simulation(dir.path(), Duration::from_secs(DRIFT_AFTER_SECS));
    let drift_at = Instant::now() + Duration::from_secs(DRIFT_AFTER_SECS);
    // Every sample Prometheus stores is scraped after it starts, so until
    // this instant the series are younger than current + reference.
    let prometheus_started = Instant::now();
    let young_until = prometheus_started + Duration::from_secs(WINDOW_SECS + REFERENCE_SECS);
    let prometheus = PrometheusServer::start(dir.path(), &[format!("127.0.0.1:{simulate_port}")]);
    prometheus.wait_ready(&client).await;
    let sidecar = Sidecar::start(
        dir.path(),
        &sidecar_config(&prometheus.url(), &receiver.url),
    );
    let metrics_url = sidecar.url("/metrics");
    let status_url = sidecar.url("/api/v1/status");
    let logs = || {
        format!(
            "sidecar log:\n{}\nprometheus log:\n{}",
            sidecar.process.log_text(),
            prometheus.process.log_text()
        )
    };

    let stationary = ["model-0", "model-2"];
    let bound = Duration::from_secs(60);
    let mut young_verdict_seen = false;
    let mut slo_decided_while_young = false;
    let mut decided_clean = false;
    let mut ticker = tokio::time::interval(Duration::from_millis(500));
    let drift_notified = loop {
        ticker.tick().await;
        let now = Instant::now();
        let Some((200, text)) = get(&client, &metrics_url).await else {
            continue;
        };
        for model in ["model-0", "model-1", "model-2"] {
            for detector in TWO_WINDOW {
                let decision = detected(&text, model, "confidence", detector);
                // The evaluation behind this page ran before `now`: its
                // series were younger than the reference.
                if now < young_until {
                    assert_eq!(
                        decision,
                        None,
                        "{detector} decided on {model} while its series were younger than the reference ({:?} after Prometheus started):\n{text}",
                        now - prometheus_started
                    );
                }
                if now < drift_at {
                    assert_ne!(
                        decision,
                        Some(1.0),
                        "false drift of {model} by {detector} at {:?} after Prometheus started:\n{text}",
                        now - prometheus_started
                    );
                }
            }
        }
        if now < drift_at {
            assert_eq!(
                notified(&receiver),
                Vec::new(),
                "notifications {:?} after Prometheus started, before any drift",
                now - prometheus_started
            );
        }
        if now < young_until && detected(&text, "model-0", "latency", "quantile_slo").is_some() {
            // The current window is covered: the SLO decides, the two-window
            // detectors say why they do not.
            slo_decided_while_young = true;
            if !young_verdict_seen {
                let (_, status) = get(&client, &status_url).await.expect("status served");
                let status: Value = serde_json::from_str(&status).expect("status JSON");
                let psi = verdict(&status, "model-0", "confidence", "psi");
                if psi["verdict"] == "young_series" {
                    assert_eq!(psi["windows"], serde_json::json!(["reference"]), "{psi}");
                    young_verdict_seen = true;
                }
            }
        }
        if stationary
            .iter()
            .all(|model| detected(&text, model, "confidence", "psi") == Some(0.0))
        {
            decided_clean = true;
        }
        let model_1_drift = notified(&receiver)
            .into_iter()
            .any(|(model, signal, status)| {
                model == "model-1" && signal == "confidence" && status == "firing"
            });
        if model_1_drift {
            break now.saturating_duration_since(drift_at);
        }
        assert!(
            now < drift_at + bound,
            "no drift notification for model-1 within {bound:?} of its drift:\n{text}\n{}",
            logs()
        );
    };
    assert!(
        slo_decided_while_young,
        "the SLO decided while the reference was young"
    );
    assert!(
        young_verdict_seen,
        "the status API named the young reference"
    );
    assert!(
        decided_clean,
        "the stationary models were decided clean once their series covered both windows"
    );
    eprintln!("model-1's drift notified {drift_notified:?} after it began");
}
