//! The sidecar against an in-process fake PromQL server: every way an
//! answer can be bad must be reported with its reason while everything else
//! goes on.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use model_monitor::engine::{ModelMonitor, MonitorBuilder, MonitorEvent};
use model_monitor::sinks::exporter::{self, AppState};
use serde_json::Value;

use crate::support::exposition::{fetch, fetch_from, has_line};
use crate::support::prometheus::promtool_check_metrics;
use crate::support::promql::{
    FakePromql, ModelAnswer, SHIFTED, STEADY, Script, body_never_sent, is_reference_query, model,
    per_window, vector,
};
use crate::support::sidecar::SidecarConfig;

fn config(url: &str, timeout: &str) -> model_monitor::config::Config {
    SidecarConfig::fake_source(url, timeout).parse()
}

/// Starts a monitor on the fake and waits for its first evaluation.
async fn monitor_on(answer: Script, timeout: &str) -> (ModelMonitor, FakePromql) {
    let fake = FakePromql::start(answer).await;
    let monitor = MonitorBuilder::default()
        .with_sampling_interval(Duration::from_millis(100))
        .with_config(config(&fake.url, timeout))
        .spawn()
        .expect("monitor starts");
    next_evaluation(&monitor).await;
    (monitor, fake)
}

pub(crate) async fn next_evaluation(monitor: &ModelMonitor) {
    let mut events = monitor.subscribe();
    loop {
        match events.recv().await.expect("monitor running") {
            MonitorEvent::EvaluationCompleted { .. } => return,
            _ => continue,
        }
    }
}

pub(crate) async fn status_json(monitor: &ModelMonitor) -> Value {
    serde_json::from_str(&fetch(monitor, "/api/v1/status").await.1).unwrap()
}

pub(crate) fn error_answer(status: StatusCode, body: &'static str) -> Script {
    Arc::new(move |_| (status, body).into_response().into())
}

/// Runs a monitor on a fake answering `answer` and checks that its source
/// is down, the failure counted with `reason` and the status API says
/// `message_part`.
pub(crate) async fn check_source_failure(
    answer: Script,
    timeout: &str,
    reason: &str,
    message_part: &str,
) {
    let (monitor, _fake) = monitor_on(answer, timeout).await;
    let (status, metrics) = fetch(&monitor, "/metrics").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "/metrics is served while the source fails"
    );
    assert!(
        has_line(&metrics, "model_monitor_up{source=\"fake\"}", " 0"),
        "{metrics}"
    );
    assert!(
        has_line(
            &metrics,
            &format!("model_monitor_query_failures_total{{reason=\"{reason}\",source=\"fake\"}}"),
            ""
        ),
        "failure counted with reason {reason}:\n{metrics}"
    );
    let status = status_json(&monitor).await;
    let errors = status["data"]["evaluation"]["sources"]["fake"]["errors"].to_string();
    assert!(
        errors.contains(message_part),
        "status says {message_part:?}: {errors}"
    );
    monitor.stop().await;
}

#[tokio::test]
async fn http_500_marks_the_source_down_and_names_the_status() {
    check_source_failure(
        error_answer(StatusCode::INTERNAL_SERVER_ERROR, "upstream exploded"),
        "5s",
        "http",
        "HTTP 500",
    )
    .await;
}

#[tokio::test]
async fn error_envelope_422_is_reported_with_its_error_type() {
    let body = r#"{"status":"error","errorType":"execution","error":"query processing would load too many samples"}"#;
    check_source_failure(
        error_answer(StatusCode::UNPROCESSABLE_ENTITY, body),
        "5s",
        "limit",
        "too many samples",
    )
    .await;
}

#[tokio::test]
async fn a_query_that_never_answers_times_out() {
    // The response's body is a stream that never ends.
    let never: Script = Arc::new(|_| body_never_sent().into());
    check_source_failure(never, "300ms", "timeout", "timed out").await;
}

#[tokio::test]
async fn garbage_json_is_a_decode_failure() {
    check_source_failure(
        error_answer(StatusCode::OK, "{\"status\": \"success\", \"data\": [1, 2"),
        "5s",
        "decode",
        "cannot decode",
    )
    .await;
}

#[tokio::test]
async fn one_bad_model_never_stops_the_others() {
    let mut nan = model("nan-model", &STEADY);
    nan.buckets[1].1 = "NaN".to_owned();
    let mut no_inf = model("no-inf", &STEADY);
    no_inf.buckets.pop();
    let mut non_monotonic = model("non-monotonic", &STEADY);
    non_monotonic.buckets[2].1 = "250".to_owned(); // below the bucket before it
    let mut other_bounds = model("other-bounds", &STEADY);
    other_bounds.buckets[0].0 = "0.2";
    let current = vec![
        model("good", &SHIFTED),
        nan,
        no_inf,
        non_monotonic,
        other_bounds,
    ];
    let reference = vec![
        model("good", &STEADY),
        model("nan-model", &STEADY),
        model("no-inf", &STEADY),
        model("non-monotonic", &STEADY),
        model("other-bounds", &STEADY),
    ];
    let (monitor, _fake) = monitor_on(per_window(current, reference), "5s").await;
    let (_, metrics) = fetch(&monitor, "/metrics").await;

    assert!(
        has_line(&metrics, "model_monitor_up{source=\"fake\"}", " 1"),
        "{metrics}"
    );
    // The good model drifted and says so.
    assert!(
        has_line(
            &metrics,
            "model_monitor_drift_detected{model=\"good\",version=\"v1\",monitor=\"fake\",signal=\"confidence\",detector=\"psi\"}",
            " 1"
        ),
        "{metrics}"
    );
    // NaN and a missing +Inf bucket reject that model's window, with a reason.
    let status = status_json(&monitor).await;
    let models = status["data"]["evaluation"]["models"]
        .as_array()
        .unwrap()
        .clone();
    let error_of = |name: &str| {
        models
            .iter()
            .find(|m| m["labels"]["model"] == name)
            .map(|m| m["signals"]["confidence"]["error"].to_string())
            .unwrap_or_else(|| panic!("{name} in status: {models:?}"))
    };
    assert!(
        error_of("nan-model").contains("non-finite"),
        "{}",
        error_of("nan-model")
    );
    assert!(
        error_of("no-inf").contains("+Inf"),
        "{}",
        error_of("no-inf")
    );
    assert!(!metrics.contains("model_monitor_drift_score{model=\"nan-model\""));
    assert!(!metrics.contains("model_monitor_drift_score{model=\"no-inf\""));
    // Non-monotonic buckets are clamped and counted, and still scored.
    assert!(
        has_line(
            &metrics,
            "model_monitor_bucket_corrections_total{monitor=\"fake\",signal=\"confidence\"}",
            ""
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("model_monitor_drift_score{model=\"non-monotonic\""),
        "{metrics}"
    );
    // Different bucket sets in the two windows: no score, a named reason.
    assert!(
        !metrics.contains("model_monitor_drift_score{model=\"other-bounds\""),
        "{metrics}"
    );
    let other = models
        .iter()
        .find(|m| m["labels"]["model"] == "other-bounds")
        .unwrap();
    assert!(
        other["signals"]["confidence"]["detectors"]
            .to_string()
            .contains("bucket bounds differ"),
        "{other}"
    );
    assert!(
        has_line(
            &metrics,
            "model_monitor_detector_errors_total{detector=\"psi\",monitor=\"fake\",signal=\"confidence\"}",
            ""
        ),
        "{metrics}"
    );
    monitor.stop().await;
}

#[tokio::test]
async fn models_whose_series_are_younger_than_a_window_get_no_decision_until_they_are_not() {
    // "young-ref": series younger than the reference window (none at its
    // start); "young-both": younger than the current window too; "old": a
    // drifted model whose series cover both windows.
    let current = || {
        vec![
            model("young-ref", &SHIFTED),
            model("young-both", &SHIFTED).young(),
            model("old", &SHIFTED),
        ]
    };
    let reference = vec![
        model("young-ref", &STEADY).young(),
        model("young-both", &STEADY).young(),
        model("old", &STEADY),
    ];
    let (monitor, fake) = monitor_on(per_window(current(), reference), "5s").await;
    let (_, metrics) = fetch(&monitor, "/metrics").await;
    let detected = |model: &str| {
        format!(
            r#"model_monitor_drift_detected{{model="{model}",version="v1",monitor="fake",signal="confidence",detector="psi"}}"#
        )
    };
    assert!(has_line(&metrics, &detected("old"), " 1"), "{metrics}");
    for young in ["young-ref", "young-both"] {
        assert!(!metrics.contains(&detected(young)), "{metrics}");
        // The score and both windows' sizes are still shown.
        assert!(
            metrics.contains(&format!(r#"model_monitor_drift_score{{model="{young}""#)),
            "{metrics}"
        );
        assert!(
            has_line(
                &metrics,
                &format!(r#"model_monitor_reference_samples{{model="{young}""#),
                " 1000"
            ),
            "{metrics}"
        );
    }
    // The status API says why, window by window.
    let status = status_json(&monitor).await;
    let models = status["data"]["evaluation"]["models"].as_array().unwrap();
    let verdict = |name: &str| {
        let model = models
            .iter()
            .find(|m| m["labels"]["model"] == name)
            .unwrap_or_else(|| panic!("{name} in status: {models:?}"));
        let psi = model["signals"]["confidence"]["detectors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["detector"] == "psi")
            .unwrap()
            .clone();
        let verdict = &psi["verdict"];
        (verdict["verdict"].clone(), verdict["windows"].clone())
    };
    assert_eq!(
        verdict("young-ref"),
        (
            Value::from("young_series"),
            serde_json::json!(["reference"])
        )
    );
    assert_eq!(
        verdict("young-both"),
        (
            Value::from("young_series"),
            serde_json::json!(["current", "reference"])
        )
    );
    assert_eq!(verdict("old").0, Value::from("drift"));
    // The drifted model's alert fires (`for: 1`); the young ones have none.
    let alerts = status["data"]["alerts"].to_string();
    assert!(
        alerts.contains(r#""old""#) && !alerts.contains("young"),
        "{alerts}"
    );

    // Once the series are older than the reference window, the same
    // windows decide.
    fake.answer_with(per_window(
        current()
            .into_iter()
            .map(|answer| ModelAnswer {
                series_at_start: Some(5.0),
                ..answer
            })
            .collect(),
        vec![
            model("young-ref", &STEADY),
            model("young-both", &STEADY),
            model("old", &STEADY),
        ],
    ));
    next_evaluation(&monitor).await;
    next_evaluation(&monitor).await;
    let (_, metrics) = fetch(&monitor, "/metrics").await;
    for name in ["young-ref", "young-both", "old"] {
        assert!(has_line(&metrics, &detected(name), " 1"), "{metrics}");
    }
    monitor.stop().await;
}

#[tokio::test]
async fn vanished_models_leave_metrics_and_new_ones_appear() {
    let (monitor, fake) = monitor_on(
        per_window(
            vec![model("a", &STEADY), model("b", &STEADY)],
            vec![model("a", &STEADY), model("b", &STEADY)],
        ),
        "5s",
    )
    .await;
    let (_, metrics) = fetch(&monitor, "/metrics").await;
    assert!(metrics.contains("model=\"b\""));
    fake.answer_with(per_window(
        vec![model("a", &STEADY), model("c", &STEADY)],
        vec![model("a", &STEADY), model("c", &STEADY)],
    ));
    // The evaluation that started before the swap may still hold b.
    next_evaluation(&monitor).await;
    next_evaluation(&monitor).await;
    let (_, metrics) = fetch(&monitor, "/metrics").await;
    assert!(!metrics.contains("model=\"b\""), "{metrics}");
    assert!(
        metrics.contains("model_monitor_signal_samples{model=\"c\""),
        "{metrics}"
    );
    monitor.stop().await;
}

#[tokio::test]
async fn a_failing_source_keeps_the_last_results_and_recovers() {
    let (monitor, fake) = monitor_on(
        per_window(vec![model("a", &SHIFTED)], vec![model("a", &STEADY)]),
        "5s",
    )
    .await;
    let drift_line = "model_monitor_drift_detected{model=\"a\",version=\"v1\",monitor=\"fake\",signal=\"confidence\",detector=\"ks\"}";
    assert!(has_line(
        &fetch(&monitor, "/metrics").await.1,
        drift_line,
        " 1"
    ));
    fake.answer_with(error_answer(StatusCode::SERVICE_UNAVAILABLE, "down"));
    next_evaluation(&monitor).await;
    next_evaluation(&monitor).await;
    let (_, metrics) = fetch(&monitor, "/metrics").await;
    assert!(
        has_line(&metrics, "model_monitor_up{source=\"fake\"}", " 0"),
        "{metrics}"
    );
    assert!(
        has_line(&metrics, drift_line, " 1"),
        "last results kept while the source fails:\n{metrics}"
    );
    fake.answer_with(per_window(
        vec![model("a", &STEADY)],
        vec![model("a", &STEADY)],
    ));
    next_evaluation(&monitor).await;
    next_evaluation(&monitor).await;
    let (_, metrics) = fetch(&monitor, "/metrics").await;
    assert!(
        has_line(&metrics, "model_monitor_up{source=\"fake\"}", " 1"),
        "{metrics}"
    );
    assert!(has_line(&metrics, drift_line, " 0"), "{metrics}");
    monitor.stop().await;
}

#[tokio::test]
async fn readiness_waits_for_the_first_evaluation_and_status_hides_secrets() {
    let never: Script = Arc::new(|_| body_never_sent().into());
    let fake = FakePromql::start(never).await;
    let mut url = url::Url::parse(&fake.url).unwrap();
    url.set_username("alice").unwrap();
    url.set_password(Some("hunter2-password")).unwrap();
    let config = config(url.as_str(), "30s");
    let summary = exporter::config_summary(&config);
    let monitor = MonitorBuilder::default()
        .with_config(config)
        .spawn()
        .unwrap();
    let app = exporter::app(AppState {
        monitor: monitor.clone(),
        config_summary: summary.into(),
    });
    let (status, _) = fetch_from(app.clone(), "/-/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (_, body) = fetch_from(app, "/api/v1/status").await;
    assert!(!body.contains("hunter2"), "{body}");
    assert!(!body.contains("alice"), "{body}");
    monitor.stop().await;
}

#[tokio::test]
async fn metrics_pass_promtool_check_metrics() {
    let (monitor, _fake) = monitor_on(
        per_window(
            vec![model("a", &SHIFTED), model("b\"quoted\\", &STEADY)],
            vec![model("a", &STEADY), model("b\"quoted\\", &STEADY)],
        ),
        "5s",
    )
    .await;
    let (_, metrics) = fetch(&monitor, "/metrics").await;
    for family in [
        "model_monitor_drift_score",
        "model_monitor_drift_p_value",
        "model_monitor_signal_quantile",
        "model_monitor_up",
        "model_monitor_build_info",
    ] {
        assert!(
            metrics.contains(&format!("# TYPE {family} ")),
            "{family} exported"
        );
    }
    let checked = promtool_check_metrics(&metrics);
    if let Err(report) = checked {
        panic!("{report}\n{metrics}");
    }
    monitor.stop().await;
}

/// Starts a monitor with `reference_yaml` as its reference and a fake that
/// answers current windows with `current` and other windows with
/// `reference` (and records every query).
async fn monitor_with_reference(
    reference_yaml: &str,
    current: &'static [f64],
    reference: &'static [f64],
) -> (ModelMonitor, FakePromql) {
    let answer: Script = Arc::new(move |request| {
        let query = request.query();
        let is_current = !is_reference_query(query);
        vector(&[model("a", if is_current { current } else { reference })]).into()
    });
    let fake = FakePromql::start(answer).await;
    let url = &fake.url;
    let text = format!(
        "prometheus: {{url: '{url}'}}\nmonitors:\n  - name: fake\n    reference: {reference_yaml}\n    signals:\n      confidence:\n        histogram: model_prediction_confidence\n        detectors: [{{type: psi}}]\n"
    );
    let config = model_monitor::config::parse_str(&text, "test.yml").expect("valid test config");
    let monitor = MonitorBuilder::default()
        .with_sampling_interval(Duration::from_millis(100))
        .with_config(config)
        .spawn()
        .expect("monitor starts");
    next_evaluation(&monitor).await;
    (monitor, fake)
}

#[tokio::test]
async fn a_baseline_file_reference_sends_only_current_window_queries() {
    let dir = tempfile::tempdir().unwrap();
    let baseline = dir.path().join("baseline.yml");
    std::fs::write(
        &baseline,
        "signals:\n  confidence:\n    - labels: {model: a, version: v1}\n      buckets: {'0.25': 100, '0.5': 300, '0.75': 700, '1': 1000, '+Inf': 1000}\n",
    )
    .unwrap();
    let (monitor, fake) = monitor_with_reference(
        &format!("{{baseline_file: '{}'}}", baseline.display()),
        &SHIFTED,
        &STEADY,
    )
    .await;
    let (_, metrics) = fetch(&monitor, "/metrics").await;
    monitor.stop().await;
    assert!(
        has_line(
            &metrics,
            "model_monitor_drift_detected{model=\"a\",version=\"v1\",monitor=\"fake\",signal=\"confidence\",detector=\"psi\"}",
            " 1"
        ),
        "{metrics}"
    );
    assert!(
        has_line(
            &metrics,
            "model_monitor_reference_samples{model=\"a\"",
            " 1000"
        ),
        "{metrics}"
    );
    let queries = fake.queries();
    assert!(!queries.is_empty());
    assert!(
        queries.iter().all(|q| !is_reference_query(q)),
        "only current-window queries: {queries:?}"
    );
}

#[tokio::test]
async fn a_fixed_range_reference_queries_with_the_at_modifier() {
    let (monitor, fake) = monitor_with_reference(
        "{range: {start: '2026-11-01T00:00:00Z', end: '2026-11-08T00:00:00Z'}}",
        &STEADY,
        &STEADY,
    )
    .await;
    let (_, metrics) = fetch(&monitor, "/metrics").await;
    monitor.stop().await;
    let end = chrono::DateTime::parse_from_rfc3339("2026-11-08T00:00:00Z")
        .unwrap()
        .timestamp();
    let queries = fake.queries();
    assert!(
        queries.iter().any(|q| q.contains(&format!("[7d] @ {end}"))),
        "a reference query over the fixed range: {queries:?}"
    );
    assert!(
        has_line(
            &metrics,
            "model_monitor_drift_detected{model=\"a\",version=\"v1\",monitor=\"fake\",signal=\"confidence\",detector=\"psi\"}",
            " 0"
        ),
        "{metrics}"
    );
}
