//! PromQL engines other than Prometheus, offline, against the one fake
//! PromQL API: `prometheus.query_params` and the tenant header reach the
//! engine under a base path, on GET and on POST; Thanos' partial-response
//! warnings count as PromQL warnings; the limit errors of Mimir, Cortex,
//! VictoriaMetrics and Prometheus fail with the reason `limit` and the
//! engine's own message, in the status API and in the sidecar's log; and
//! the example configs of `examples/engines/` say what README's "Engines
//! other than Prometheus" says. The real VictoriaMetrics is in
//! `victoriametrics.rs`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use axum::response::IntoResponse;
use model_monitor::config::{Config, Flavor, load_file_with_env};
use model_monitor::engine::{ModelMonitor, MonitorBuilder};
use serde_json::json;

use crate::config_examples::example_env;
use crate::fake_promql::{check_source_failure, error_answer, next_evaluation, status_json};
use crate::support::exposition::{fetch, sample};
use crate::support::process::{run_binary, wait_for};
use crate::support::promql::{FakePromql, Request, STEADY, Script, drifting_models};
use crate::support::sidecar::{Sidecar, SidecarConfig};

/// Thanos Query's parameters, as `examples/engines/thanos.yml` sets them.
const THANOS_PARAMS: &str =
    "{partial_response: 'false', dedup: 'true', max_source_resolution: auto}";

/// A monitor of `config` (its next evaluation a minute away) after its
/// first evaluation.
async fn after_one_evaluation(config: Config) -> ModelMonitor {
    let monitor = MonitorBuilder::default()
        .with_sampling_interval(Duration::from_secs(60))
        .with_config(config)
        .spawn()
        .expect("monitor starts");
    next_evaluation(&monitor).await;
    monitor
}

/// Every request of one evaluation of monitor `fake` under the base path
/// `/prometheus` (Mimir's), with a tenant header and Thanos' parameters;
/// queries longer than `post_threshold_bytes` go as a POST form.
async fn requests_of_one_evaluation(post_threshold_bytes: &str) -> Vec<Request> {
    let fake = FakePromql::start(drifting_models(&["m"], &[])).await;
    let config = SidecarConfig::fake_source(&format!("{}/prometheus", fake.url), "5s")
        .with_prometheus("headers", "{X-Scope-OrgID: team-a}")
        .with_prometheus("query_params", THANOS_PARAMS)
        .with_prometheus("post_threshold_bytes", post_threshold_bytes)
        .parse();
    let monitor = after_one_evaluation(config).await;
    monitor.stop().await;
    fake.requests()
}

#[tokio::test]
async fn query_params_and_the_tenant_header_reach_the_engine_on_get_and_post() {
    for (threshold, method) in [("100000", Method::GET), ("0", Method::POST)] {
        let requests = requests_of_one_evaluation(threshold).await;
        // One query per window of the one confidence histogram.
        assert_eq!(requests.len(), 2, "{requests:#?}");
        for request in &requests {
            assert_eq!(request.method, method);
            assert_eq!(request.path, "/prometheus/api/v1/query");
            assert!(
                request
                    .query()
                    .contains("model_prediction_confidence_bucket")
            );
            assert!(request.params.contains_key("time"), "{request:?}");
            for (name, value) in [
                ("partial_response", "false"),
                ("dedup", "true"),
                ("max_source_resolution", "auto"),
            ] {
                assert_eq!(
                    request.params.get(name).map(String::as_str),
                    Some(value),
                    "{method} {name}: {:?}",
                    request.params
                );
            }
            assert_eq!(
                request.headers.get("x-scope-orgid").map(|v| v.as_bytes()),
                Some(&b"team-a"[..]),
                "{method}"
            );
            if method == Method::POST {
                assert_eq!(
                    request.content_type.as_deref(),
                    Some("application/x-www-form-urlencoded")
                );
            }
        }
    }
}

/// A successful answer for one steady model with Thanos' warnings about
/// the stores it could not reach.
fn partial_answer(_: &Request) -> axum::response::Response {
    let mut result = Vec::new();
    let bounds = ["0.25", "0.5", "0.75", "1", "+Inf"];
    for (le, count) in bounds.iter().zip(STEADY.iter().chain([&1000.0])) {
        result.push(json!({"metric": {"model": "m", "version": "v1", "le": le}, "value": [1700000000.0, count.to_string()]}));
    }
    result.push(json!({"metric": {"model": "m", "version": "v1", "le": "start"}, "value": [1700000000.0, "5"]}));
    axum::Json(json!({
        "status": "success",
        "data": {"resultType": "vector", "result": result},
        "warnings": [
            "receive-1.thanos-receive:10901: rpc error: code = Unavailable desc = connection refused",
            "No StoreAPIs matched for this query",
        ],
    }))
    .into_response()
}

#[tokio::test]
async fn thanos_partial_responses_count_as_promql_warnings_and_keep_the_scores() {
    let script: Script = Arc::new(|request| partial_answer(request).into());
    let fake = FakePromql::start(script).await;
    let config = SidecarConfig::fake_source(&fake.url, "5s")
        .with_prometheus("flavor", "thanos")
        .with_prometheus("query_params", "{partial_response: 'true'}")
        .parse();
    let monitor = after_one_evaluation(config).await;
    let (_, metrics) = fetch(&monitor, "/metrics").await;
    let status = status_json(&monitor).await;
    monitor.stop().await;
    // Two windows, two warnings each.
    assert_eq!(
        sample(
            &metrics,
            "model_monitor_promql_warnings_total",
            &[("source", "fake")]
        ),
        Some(4.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "model_monitor_up", &[("source", "fake")]),
        Some(1.0)
    );
    let warnings = status["data"]["evaluation"]["sources"]["fake"]["warnings"].to_string();
    assert!(
        warnings.contains("receive-1.thanos-receive:10901"),
        "{warnings}"
    );
    assert!(
        sample(
            &metrics,
            "model_monitor_drift_score",
            &[("model", "m"), ("detector", "ks")]
        )
        .is_some(),
        "a partial answer is still scored:\n{metrics}"
    );
}

#[tokio::test]
async fn each_engines_limit_errors_fail_with_the_reason_limit_and_its_message() {
    let cases: [(StatusCode, &'static str, &str); 6] = [
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            r#"{"status":"error","errorType":"execution","error":"the query exceeded the maximum number of series (limit: 1000 series) (err-mimir-max-series-per-query). Consider reducing the time range and/or number of series selected by the query."}"#,
            "err-mimir-max-series-per-query",
        ),
        (
            StatusCode::BAD_REQUEST,
            r#"{"status":"error","errorType":"bad_data","error":"the query time range exceeds the limit (query length: 169h0m0s, limit: 168h0m0s) (err-mimir-max-query-length)"}"#,
            "query length: 169h0m0s, limit: 168h0m0s",
        ),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            r#"{"status":"error","errorType":"execution","error":"expanding series: the query hit the max number of chunks limit (limit: 2000000 chunks)"}"#,
            "max number of chunks limit",
        ),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            r#"{"status":"error","errorType":"422","error":"error when executing query=\"sum(increase(h_bucket[7d]))\" on the time range (start=1700000000000, end=1700000000000, step=300000): cannot select more than -search.maxSamplesPerQuery=1000 samples; possible solutions: increase the -search.maxSamplesPerQuery; reduce time range for the query; use more specific label filters in order to select fewer series"}"#,
            "-search.maxSamplesPerQuery=1000",
        ),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            r#"{"status":"error","errorType":"422","error":"the number of matching timeseries exceeds 1000; either narrow down the search or increase -search.max* command-line flag values at vmselect (the most likely limit is -search.maxUniqueTimeseries)"}"#,
            "-search.maxUniqueTimeseries",
        ),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            r#"{"status":"error","errorType":"execution","error":"query processing would load too many samples into memory in query execution"}"#,
            "too many samples into memory",
        ),
    ];
    for (status, body, message) in cases {
        check_source_failure(error_answer(status, body), "5s", "limit", message).await;
    }
}

#[tokio::test]
async fn a_limit_error_is_one_log_line_with_the_reason_and_the_engines_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let body = r#"{"status":"error","errorType":"execution","error":"the query exceeded the maximum number of chunks (limit: 2000000 chunks) (err-mimir-max-chunks-per-query)"}"#;
    let fake = FakePromql::start(error_answer(StatusCode::UNPROCESSABLE_ENTITY, body)).await;
    let config = SidecarConfig::fake_source(&fake.url, "5s")
        .with_prometheus("flavor", "mimir")
        .with_prometheus("headers", "{X-Scope-OrgID: team-a}");
    let sidecar = Sidecar::start(dir.path(), &config);
    let line = wait_for(
        "the sidecar to log the failed query",
        Duration::from_secs(30),
        || async {
            let log = sidecar.process.log_text();
            log.lines()
                .find(|line| line.contains("query failed"))
                .map(str::to_owned)
        },
    )
    .await;
    assert!(line.contains("reason=limit"), "{line}");
    assert!(line.contains("err-mimir-max-chunks-per-query"), "{line}");
    assert!(line.contains("HTTP 422"), "{line}");
    // The tenant header's value is never logged.
    assert!(!sidecar.process.log_text().contains("team-a"));
}

/// Runs `command` (`backtest` or `baseline capture`, `args` after its
/// config file) with `--to=now` on a VictoriaMetrics-flavoured config,
/// whose default delay is a minute behind the clock, and checks that the
/// command says so on stderr and asks no time later than a minute ago
/// (nor much earlier than its last step).
async fn to_now_ends_where_the_delayed_loop_would_query(
    command: &[&str],
    args: &[&str],
    step: f64,
) {
    let dir = tempfile::tempdir().expect("temp dir");
    let fake = FakePromql::start(drifting_models(&["m"], &[])).await;
    let config =
        SidecarConfig::fake_source(&fake.url, "5s").with_prometheus("flavor", "victoriametrics");
    let file = dir.path().join("config.yml");
    config.write(&file);
    let mut all: Vec<String> = command.iter().map(|part| (*part).to_owned()).collect();
    all.push(format!("--config.file={}", file.display()));
    all.extend(
        args.iter()
            .map(|arg| arg.replace("DIR", &dir.path().display().to_string())),
    );
    all.push("--to=now".to_owned());
    let (code, _, stderr) = tokio::task::spawn_blocking(move || run_binary(&all))
        .await
        .unwrap();
    let after = chrono::Utc::now();
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "model-monitor {}: --to moved back to",
            command.join(" ")
        )) && stderr.contains("evaluation.query_offset 1m"),
        "{stderr}"
    );
    let times: Vec<f64> = fake
        .requests()
        .iter()
        .map(|request| request.params["time"].parse::<f64>().unwrap())
        .collect();
    let latest = times.iter().copied().fold(f64::MIN, f64::max);
    let limit = (after.timestamp_millis() - 60_000) as f64 / 1000.0;
    assert!(
        latest <= limit && latest > limit - 2.0 * step,
        "the last query time {latest} is not just before now - 1m ({limit}): {times:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backtest_to_now_ends_where_the_delayed_loop_would_query() {
    to_now_ends_where_the_delayed_loop_would_query(
        &["backtest"],
        &["--from=now-90s", "--step=5s"],
        5.0,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_baseline_capture_to_now_ends_where_the_delayed_loop_would_query() {
    // One query per signal, at the range's end.
    to_now_ends_where_the_delayed_loop_would_query(
        &["baseline", "capture"],
        &[
            "--monitor=fake",
            "--from=now-2h",
            "--output=DIR/baseline.yml",
        ],
        5.0,
    )
    .await;
}

#[test]
fn the_engine_examples_set_what_the_readme_says() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/engines");
    let load = |name: &str| {
        load_file_with_env(&examples.join(name), &example_env)
            .unwrap_or_else(|error| panic!("{name}: {error:?}"))
    };
    let minute = Duration::from_secs(60);

    let vm = load("victoriametrics.yml");
    assert_eq!(vm.prometheus.flavor, Flavor::VictoriaMetrics);
    assert!(
        vm.query_offset() >= Duration::from_secs(31),
        "past -search.latencyOffset"
    );

    let thanos = load("thanos.yml");
    assert_eq!(thanos.prometheus.flavor, Flavor::Thanos);
    assert_eq!(thanos.query_offset(), minute);
    for (name, value) in [
        ("partial_response", "false"),
        ("dedup", "true"),
        ("max_source_resolution", "auto"),
    ] {
        assert_eq!(
            thanos.prometheus.query_params.get(name).map(String::as_str),
            Some(value),
            "thanos {name}"
        );
    }

    for (name, flavor, path) in [
        ("mimir.yml", Flavor::Mimir, "/prometheus"),
        ("cortex.yml", Flavor::Cortex, "/prometheus"),
    ] {
        let config = load(name);
        assert_eq!(config.prometheus.flavor, flavor, "{name}");
        assert_eq!(config.query_offset(), minute, "{name}");
        assert_eq!(config.prometheus.url.path(), path, "{name}");
        assert!(
            config.prometheus.headers.contains_key("X-Scope-OrgID"),
            "{name} names its tenant"
        );
    }
}
