//! The sidecar against an in-process fake PromQL server: every way an
//! answer can be bad must be reported with its reason while everything else
//! goes on.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use model_monitor::engine::{ModelMonitor, MonitorBuilder, MonitorEvent};
use model_monitor::sinks::exporter::{self, AppState};
use serde_json::{Value, json};
use tower::ServiceExt;

type Answer = Arc<dyn Fn(&str) -> Response + Send + Sync>;

#[derive(Clone)]
struct Fake {
    answer: Arc<Mutex<Answer>>,
}

#[derive(serde::Deserialize)]
struct Params {
    query: String,
}

async fn handle_get(State(fake): State<Fake>, Query(params): Query<Params>) -> Response {
    let answer = fake.answer.lock().unwrap().clone();
    answer(&params.query)
}

async fn handle_post(State(fake): State<Fake>, Form(params): Form<Params>) -> Response {
    let answer = fake.answer.lock().unwrap().clone();
    answer(&params.query)
}

/// Starts a fake PromQL API answering with `answer(query)`.
async fn fake_promql(answer: Answer) -> (String, Fake) {
    let fake = Fake {
        answer: Arc::new(Mutex::new(answer)),
    };
    let router = Router::new()
        .route("/api/v1/query", get(handle_get).post(handle_post))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, fake)
}

const CONFIDENCE_BOUNDS: [&str; 4] = ["0.25", "0.5", "0.75", "1"];

/// One model's cumulative buckets (including "+Inf") and sum.
struct ModelAnswer<'a> {
    model: &'a str,
    buckets: Vec<(&'a str, String)>,
    sum: Option<f64>,
}

fn model(model: &str, cumulative: &[f64]) -> ModelAnswer<'static> {
    let model: &'static str = Box::leak(model.to_owned().into_boxed_str());
    let mut buckets: Vec<(&str, String)> = CONFIDENCE_BOUNDS
        .iter()
        .zip(cumulative)
        .map(|(le, c)| (*le, c.to_string()))
        .collect();
    buckets.push(("+Inf", cumulative.last().unwrap().to_string()));
    ModelAnswer {
        model,
        buckets,
        sum: None,
    }
}

fn vector(models: &[ModelAnswer<'_>]) -> Response {
    let mut result = Vec::new();
    for m in models {
        for (le, value) in &m.buckets {
            result.push(json!({"metric": {"model": m.model, "version": "v1", "le": le}, "value": [1700000000.0, value]}));
        }
        if let Some(sum) = m.sum {
            result.push(json!({"metric": {"model": m.model, "version": "v1", "le": "sum"}, "value": [1700000000.0, sum.to_string()]}));
        }
    }
    axum::Json(json!({"status": "success", "data": {"resultType": "vector", "result": result}}))
        .into_response()
}

const STEADY: [f64; 4] = [100.0, 300.0, 700.0, 1000.0];
const SHIFTED: [f64; 4] = [400.0, 700.0, 900.0, 1000.0];

fn config(url: &str, timeout: &str) -> model_monitor::config::Config {
    let text = format!(
        r#"prometheus:
  url: {url}
  timeout: {timeout}
evaluation:
  interval: 1s
monitors:
  - name: fake
    window: 5m
    reference: {{offset: 1d}}
    min_samples: 100
    signals:
      confidence:
        histogram: model_prediction_confidence
        detectors:
          - {{type: psi}}
          - {{type: ks}}
"#
    );
    model_monitor::config::parse_str(&text, "test.yml").expect("valid test config")
}

/// Starts a monitor on the fake and waits for its first evaluation.
async fn monitor_on(answer: Answer, timeout: &str) -> (ModelMonitor, Fake) {
    let (url, fake) = fake_promql(answer).await;
    let monitor = MonitorBuilder::default()
        .with_sampling_interval(Duration::from_millis(100))
        .with_config(config(&url, timeout))
        .spawn()
        .expect("monitor starts");
    next_evaluation(&monitor).await;
    (monitor, fake)
}

async fn next_evaluation(monitor: &ModelMonitor) {
    let mut events = monitor.subscribe();
    loop {
        match events.recv().await.expect("monitor running") {
            MonitorEvent::EvaluationCompleted { .. } => return,
            _ => continue,
        }
    }
}

async fn fetch(monitor: &ModelMonitor, path: &str) -> (StatusCode, String) {
    let app = exporter::app(AppState {
        monitor: monitor.clone(),
        config_summary: json!({}),
    });
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

async fn status_json(monitor: &ModelMonitor) -> Value {
    serde_json::from_str(&fetch(monitor, "/api/v1/status").await.1).unwrap()
}

fn has_line(text: &str, prefix: &str, suffix: &str) -> bool {
    text.lines()
        .any(|line| line.starts_with(prefix) && line.ends_with(suffix))
}

fn error_answer(status: StatusCode, body: &'static str) -> Answer {
    Arc::new(move |_query: &str| (status, body).into_response())
}

async fn check_source_failure(answer: Answer, timeout: &str, reason: &str, message_part: &str) {
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
        "http",
        "too many samples",
    )
    .await;
}

#[tokio::test]
async fn a_query_that_never_answers_times_out() {
    let never: Answer = Arc::new(|_query: &str| {
        // The handler's response is produced by a future that never ends.
        Response::new(axum::body::Body::from_stream(futures::stream::pending::<
            Result<bytes::Bytes, std::io::Error>,
        >()))
    });
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

fn per_window(current: Vec<ModelAnswer<'static>>, reference: Vec<ModelAnswer<'static>>) -> Answer {
    let current = Arc::new(Mutex::new(Some(current)));
    let reference = Arc::new(Mutex::new(Some(reference)));
    let render = |answers: &Arc<Mutex<Option<Vec<ModelAnswer<'static>>>>>| {
        let guard = answers.lock().unwrap();
        vector(guard.as_ref().unwrap())
    };
    Arc::new(move |query: &str| {
        if query.contains("offset") {
            render(&reference)
        } else {
            render(&current)
        }
    })
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
    *fake.answer.lock().unwrap() = per_window(
        vec![model("a", &STEADY), model("c", &STEADY)],
        vec![model("a", &STEADY), model("c", &STEADY)],
    );
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
    *fake.answer.lock().unwrap() = error_answer(StatusCode::SERVICE_UNAVAILABLE, "down");
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
    *fake.answer.lock().unwrap() = per_window(vec![model("a", &STEADY)], vec![model("a", &STEADY)]);
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
    let never: Answer = Arc::new(|_query: &str| {
        Response::new(axum::body::Body::from_stream(futures::stream::pending::<
            Result<bytes::Bytes, std::io::Error>,
        >()))
    });
    let (url, _fake) = fake_promql(never).await;
    let mut url = url::Url::parse(&url).unwrap();
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
        config_summary: summary,
    });
    let response = app
        .clone()
        .oneshot(
            axum::http::Request::get("/-/ready")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let response = app
        .oneshot(
            axum::http::Request::get("/api/v1/status")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = String::from_utf8(body.to_vec()).unwrap();
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
    let checked = common::promtool_check_metrics(&metrics);
    if let Err(report) = checked {
        panic!("{report}\n{metrics}");
    }
    monitor.stop().await;
}

/// Starts a monitor with `reference_yaml` as its reference and a fake that
/// records every query and answers current windows with `current` and
/// other windows with `reference`.
async fn monitor_with_reference(
    reference_yaml: &str,
    current: &'static [f64],
    reference: &'static [f64],
) -> (ModelMonitor, Arc<Mutex<Vec<String>>>) {
    let queries = Arc::new(Mutex::new(Vec::new()));
    let recorded = queries.clone();
    let answer: Answer = Arc::new(move |query: &str| {
        recorded.lock().unwrap().push(query.to_owned());
        let is_current = !query.contains(" offset ") && !query.contains(" @ ");
        vector(&[model("a", if is_current { current } else { reference })])
    });
    let (url, _fake) = fake_promql(answer).await;
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
    (monitor, queries)
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
    let (monitor, queries) = monitor_with_reference(
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
    let queries = queries.lock().unwrap();
    assert!(!queries.is_empty());
    assert!(
        queries
            .iter()
            .all(|q| !q.contains(" offset ") && !q.contains(" @ ")),
        "only current-window queries: {queries:?}"
    );
}

#[tokio::test]
async fn a_fixed_range_reference_queries_with_the_at_modifier() {
    let (monitor, queries) = monitor_with_reference(
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
    let queries = queries.lock().unwrap();
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
