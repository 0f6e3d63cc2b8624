//! The `exceedance` detector and the pooled `offsets` reference with real
//! processes: `model-monitor simulate` serves three models (one's latency
//! tail grows late), a real Prometheus scrapes them every second, and
//! `model-monitor run` compares a 10 s window (and its newest 4 s, the
//! multi-window rule of `short_window`) with the same window 20 s and 40 s
//! earlier, pooled.
//!
//! Prometheus logs every query it answers (`query_log_file`): the sidecar
//! must have sent the pooled reference as one query joining the offsets
//! with `+`, and the short window as a query of its own.
//!
//! The pooled reference is checked against Prometheus itself: at the
//! evaluation time the status API reports, the reference's total must be
//! the sum of the two offsets' `increase()`, each asked of Prometheus
//! separately. Until the series reach back to the oldest span's start
//! (50 s), the two-window detectors give `young_series`. The exceedance
//! test and KS under the multi-window rule stay quiet on the stationary
//! models and catch the drifted one, in latency and in confidence.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::exposition::sample;
use crate::support::process::{get, http_client};
use crate::support::prometheus::PrometheusServer;
use crate::support::sidecar::{Sidecar, SidecarConfig, start_drifting_simulation};

const WINDOW_SECS: u64 = 10;
const OFFSETS_SECS: [u64; 2] = [20, 40];
/// The series cover every window once they are older than the oldest
/// offset plus the window.
const YOUNG_SECS: u64 = 40 + WINDOW_SECS;
/// Late enough for several decided evaluations of every model first.
const DRIFT_AFTER_SECS: u64 = 75;

fn sidecar_config(prometheus_url: &str) -> SidecarConfig {
    SidecarConfig::from_text(&format!(
        r#"prometheus:
  url: {prometheus_url}
  timeout: 5s
evaluation:
  interval: 2s
monitors:
  - name: seasonal
    selector: '{{job="simulate"}}'
    window: {WINDOW_SECS}s
    short_window: 4s
    reference: {{offsets: [{first}s, {second}s]}}
    min_samples: 100
    signals:
      confidence:
        histogram: model_prediction_confidence
        detectors:
          - {{type: ks}}
      latency:
        histogram: model_request_duration_seconds
        detectors:
          - {{type: exceedance}}
"#,
        first = OFFSETS_SECS[0],
        second = OFFSETS_SECS[1],
    ))
}

/// One model's signal in the status API.
fn signal<'a>(status: &'a Value, model: &str, name: &str) -> Option<&'a Value> {
    status["data"]["evaluation"]["models"]
        .as_array()?
        .iter()
        .find(|m| m["labels"]["model"] == model)
        .map(|m| &m["signals"][name])
}

/// The first detector's verdict object of one model's signal.
fn verdict(status: &Value, model: &str, name: &str) -> Value {
    signal(status, model, name)
        .map(|s| s["detectors"][0]["verdict"].clone())
        .unwrap_or(Value::Null)
}

/// A PromQL instant query's single scalar-like answer.
pub(crate) async fn instant_value(
    client: &reqwest::Client,
    prometheus: &str,
    query: &str,
    time: &str,
) -> Option<f64> {
    let response = client
        .get(format!("{prometheus}/api/v1/query"))
        .query(&[("query", query), ("time", time)])
        .send()
        .await
        .ok()?;
    let body: Value = response.json().await.ok()?;
    let result = body["data"]["result"].as_array()?;
    let [only] = result.as_slice() else {
        return None;
    };
    only["value"][1].as_str()?.parse().ok()
}

/// The number of latency requests of `model` in `[window] offset <offset>`
/// at `time`, as Prometheus answers it.
async fn offset_total(
    client: &reqwest::Client,
    prometheus: &str,
    model: &str,
    offset: u64,
    time: &str,
) -> f64 {
    let query = format!(
        r#"sum(increase(model_request_duration_seconds_bucket{{job="simulate",model="{model}",le="+Inf"}}[{WINDOW_SECS}s] offset {offset}s))"#
    );
    instant_value(client, prometheus, &query, time)
        .await
        .unwrap_or_else(|| panic!("prometheus answers {query} at {time}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_offsets_add_up_each_span_and_exceedance_and_a_short_window_catch_the_drift() {
    let dir = tempfile::tempdir().expect("temp dir");
    let client = http_client();
    let (_simulate, simulate_port) =
        start_drifting_simulation(dir.path(), Duration::from_secs(DRIFT_AFTER_SECS));
    let drift_at = Instant::now() + Duration::from_secs(DRIFT_AFTER_SECS);
    let prometheus_started = Instant::now();
    let young_until = prometheus_started + Duration::from_secs(YOUNG_SECS);
    let (prometheus, query_log) = PrometheusServer::start_with_query_log(dir.path(), simulate_port);
    prometheus.wait_ready(&client).await;
    let sidecar = Sidecar::start(dir.path(), &sidecar_config(&prometheus.url()));
    let metrics_url = sidecar.url("/metrics");
    let status_url = sidecar.url("/api/v1/status");

    let stationary = ["model-0", "model-2"];
    let mut young_seen = false;
    let mut pooled_checked = false;
    let mut decided_clean = false;
    let mut ks_caught = false;
    // The pooled reference holds the drifted tail 20 s after the drift, so
    // the slower model must be caught before.
    let bound = Duration::from_secs(20);
    let mut ticker = tokio::time::interval(Duration::from_millis(500));
    let caught_after = loop {
        ticker.tick().await;
        let now = Instant::now();
        let Some((200, text)) = get(&client, &metrics_url).await else {
            continue;
        };
        let Some((200, status)) = get(&client, &status_url).await else {
            continue;
        };
        let status: Value = serde_json::from_str(&status).expect("status JSON");
        let ks = |model: &str| {
            sample(
                &text,
                "model_monitor_drift_detected",
                &[
                    ("model", model),
                    ("signal", "confidence"),
                    ("detector", "ks"),
                ],
            )
        };
        let exceedance = |model: &str| {
            sample(
                &text,
                "model_monitor_drift_detected",
                &[
                    ("model", model),
                    ("signal", "latency"),
                    ("detector", "exceedance"),
                ],
            )
        };
        for model in ["model-0", "model-1", "model-2"] {
            if now < young_until {
                assert_eq!(
                    exceedance(model),
                    None,
                    "exceedance decided on {model} before its series reached back {YOUNG_SECS} s:\n{text}"
                );
            }
            if verdict(&status, model, "latency")["verdict"] == "young_series" {
                young_seen = true;
            }
        }
        for model in stationary {
            assert_ne!(
                exceedance(model),
                Some(1.0),
                "false exceedance alarm on {model}:\n{text}"
            );
            assert_ne!(ks(model), Some(1.0), "false ks alarm on {model}:\n{text}");
        }
        if now < drift_at {
            assert_ne!(
                exceedance("model-1"),
                Some(1.0),
                "exceedance alarm on model-1 before its drift:\n{text}"
            );
            assert_ne!(
                ks("model-1"),
                Some(1.0),
                "ks alarm on model-1 before its drift:\n{text}"
            );
        }
        if ks("model-1") == Some(1.0) {
            ks_caught = true;
        }
        if stationary
            .iter()
            .all(|model| exceedance(model) == Some(0.0))
        {
            decided_clean = true;
        }
        // Once the series cover both spans: the pooled reference is the
        // sum of what Prometheus says each span holds.
        if !pooled_checked && now > young_until + Duration::from_secs(4) {
            let time = status["data"]["evaluation"]["timestamp"]
                .as_str()
                .expect("evaluation timestamp")
                .to_owned();
            let reference = signal(&status, "model-0", "latency")
                .and_then(|s| s["reference_samples"].as_f64())
                .expect("model-0 has a reference");
            let mut expected = 0.0;
            let mut spans = Vec::new();
            for offset in OFFSETS_SECS {
                let total =
                    offset_total(&client, &prometheus.url(), "model-0", offset, &time).await;
                spans.push(total);
                expected += total;
            }
            assert!(
                spans.iter().all(|total| *total > 100.0),
                "each span holds traffic: {spans:?}"
            );
            assert!(
                (reference - expected).abs() <= 1e-9 * expected,
                "the pooled reference at {time} holds {reference} requests, the spans {spans:?} add up to {expected}"
            );
            pooled_checked = true;
        }
        if exceedance("model-1") == Some(1.0) && ks_caught {
            break now.saturating_duration_since(drift_at);
        }
        assert!(
            now < drift_at + bound,
            "exceedance and ks did not both catch model-1 within {bound:?} of its drift (ks: {ks_caught}):\n{text}\nsidecar log:\n{}",
            sidecar.process.log_text()
        );
    };
    assert!(
        young_seen,
        "the latency detector said young_series before the series reached back {YOUNG_SECS} s"
    );
    assert!(
        pooled_checked,
        "the pooled reference was compared with Prometheus"
    );
    assert!(
        decided_clean,
        "the stationary models were decided clean before the drift"
    );
    // The queries Prometheus answered, as the sidecar wrote them (one JSON
    // object per line, the query under params.query).
    let log = std::fs::read_to_string(&query_log).expect("prometheus wrote its query log");
    let queries: Vec<String> = log
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|entry| entry["params"]["query"].as_str().map(str::to_owned))
        .collect();
    let (first, second) = (OFFSETS_SECS[0], OFFSETS_SECS[1]);
    let pooled = format!(
        r#"(sum by (model, version, le) (increase(model_request_duration_seconds_bucket{{job="simulate"}}[{WINDOW_SECS}s] offset {first}s)) + sum by (model, version, le) (increase(model_request_duration_seconds_bucket{{job="simulate"}}[{WINDOW_SECS}s] offset {second}s))) or "#
    );
    let short = r#"sum by (model, version, le) (increase(model_prediction_confidence_bucket{job="simulate"}[4s])) or "#;
    for (what, start) in [
        ("the pooled reference", pooled.as_str()),
        ("the short window", short),
    ] {
        assert!(
            queries.iter().any(|query| query.starts_with(start)),
            "prometheus answered no query for {what} ({start}); of {} queries, the first: {:?}",
            queries.len(),
            queries.iter().take(6).collect::<Vec<_>>()
        );
    }
    eprintln!("model-1's drift caught by exceedance and ks {caught_after:?} after it began");
}
