//! A hostile or mistaken PromQL source against the real sidecar process:
//! answers of a million series are rejected as `too_large` while they
//! stream, with the previous results kept and the peak RSS under a bound;
//! thousands of broken models and PromQL warnings give one log line per
//! evaluation and reason, with the details in the status API.
//!
//! The answers are made as they are sent (`streamed_vector`), so the test
//! process never holds them whole either.

use std::time::Duration;

use serde_json::Value;

use crate::support::exposition::sample;
use crate::support::process::{get, http_client, wait_for};
use crate::support::promql::{FakePromql, Reply, Request, Script, streamed_vector};
use crate::support::sidecar::{Sidecar, SidecarConfig};

/// The default `prometheus.max_models` and `prometheus.max_series`.
const MAX_MODELS: usize = model_monitor::config::DEFAULT_MAX_MODELS;
const MAX_SERIES: usize = model_monitor::config::DEFAULT_MAX_SERIES;

/// The documented bound on the sidecar's peak RSS (debug build, status API
/// polled) for answers at and past the default limits (BENCHMARKS.md,
/// "Hostile answers"): inside the shipped manifest's 256 MiB.
const PEAK_RSS_BOUND: u64 = 224 * 1024 * 1024;

/// One sample as Prometheus writes it.
fn series(model: usize, le: &str, value: f64) -> String {
    format!(
        r#"{{"metric":{{"le":"{le}","model":"m-{model}","version":"v1"}},"value":[1700000000,"{value}"]}}"#
    )
}

/// Every query answered with `series` samples made by `sample` and the
/// given warnings.
fn answer(
    count: usize,
    sample: impl Fn(usize) -> String + Clone + Send + Sync + 'static,
    warnings: Vec<String>,
) -> Script {
    std::sync::Arc::new(move |_: &Request| {
        Reply::Respond(streamed_vector(count, sample.clone(), warnings.clone()))
    })
}

/// `models` models of `per_model` series each: bounds 1, 2, ... then
/// `+Inf` (and `le="sum"` last when `with_sum`), 10 observations per bucket.
fn models_of(models: usize, per_model: usize, with_sum: bool) -> Script {
    let buckets = if with_sum { per_model - 1 } else { per_model };
    answer(
        models * per_model,
        move |index| {
            let (model, position) = (index / per_model, index % per_model);
            if position == buckets {
                series(model, "sum", 1000.0)
            } else if position + 1 == buckets {
                series(model, "+Inf", 10.0 * buckets as f64)
            } else {
                series(
                    model,
                    &(position + 1).to_string(),
                    10.0 * (position + 1) as f64,
                )
            }
        },
        Vec::new(),
    )
}

async fn status(client: &reqwest::Client, sidecar: &Sidecar) -> Option<Value> {
    let (code, body) = get(client, &sidecar.url("/api/v1/status")).await?;
    let mut status: Value = (code == 200).then(|| serde_json::from_str(&body).ok())??;
    Some(status["data"]["evaluation"].take())
}

/// Waits up to two minutes (a debug build evaluating 10,000 models) until
/// the status API satisfies `check`.
async fn wait_status(
    client: &reqwest::Client,
    sidecar: &Sidecar,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    wait_for(what, Duration::from_secs(120), || async {
        status(client, sidecar).await.filter(|status| check(status))
    })
    .await
}

fn source_errors(status: &Value) -> String {
    status["sources"]["fake"]["errors"].to_string()
}

fn config(fake: &FakePromql) -> SidecarConfig {
    // The byte cap is raised out of the way: the series and model limits
    // alone must bound memory.
    SidecarConfig::fake_source(&fake.url, "60s").with_prometheus("max_response_bytes", "1073741824")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_million_series_are_rejected_as_too_large_while_memory_stays_bounded() {
    // An answer at both limits at once: 10,000 models of 25 series.
    let per_model = MAX_SERIES / MAX_MODELS;
    let fake = FakePromql::start(models_of(MAX_MODELS, per_model, true)).await;
    let dir = tempfile::tempdir().unwrap();
    let sidecar = Sidecar::start(dir.path(), &config(&fake));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let first = wait_status(&client, &sidecar, "10,000 models evaluated", |status| {
        status["models"].as_array().map(Vec::len) == Some(MAX_MODELS)
    })
    .await;
    assert_eq!(
        first["sources"]["fake"]["up"],
        true,
        "{}",
        source_errors(&first)
    );
    let within_limits = sidecar.process.peak_rss_bytes();

    // 1,000,000 one-series models: past max_models after 10,000 of them.
    fake.answer_with(answer(
        1_000_000,
        |model| series(model, "+Inf", 1.0),
        Vec::new(),
    ));
    let models_limit = format!("exceeds the limit of {MAX_MODELS} models (prometheus.max_models)");
    let rejected = wait_status(&client, &sidecar, "the model limit", |status| {
        source_errors(status).contains(&models_limit)
    })
    .await;
    assert_eq!(rejected["sources"]["fake"]["up"], false);
    // The previous results are kept.
    assert_eq!(
        rejected["models"].as_array().map(Vec::len),
        Some(MAX_MODELS)
    );

    // 1,000,000 series in models of 100: past max_series at 250,000.
    fake.answer_with(models_of(10_000, 100, false));
    let series_limit = format!("exceeds the limit of {MAX_SERIES} series (prometheus.max_series)");
    let rejected = wait_status(&client, &sidecar, "the series limit", |status| {
        source_errors(status).contains(&series_limit)
    })
    .await;
    assert_eq!(
        rejected["models"].as_array().map(Vec::len),
        Some(MAX_MODELS)
    );

    let (_, metrics) = get(&client, &sidecar.url("/metrics")).await.unwrap();
    let too_large = sample(
        &metrics,
        "model_monitor_query_failures_total",
        &[("source", "fake"), ("reason", "too_large")],
    );
    assert!(too_large >= Some(4.0), "too_large failures: {too_large:?}");
    let peak = sidecar.process.peak_rss_bytes();
    eprintln!(
        "peak RSS: {:.1} MiB within the limits, {:.1} MiB after the million-series answers",
        within_limits as f64 / 1048576.0,
        peak as f64 / 1048576.0
    );
    assert!(
        peak < PEAK_RSS_BOUND,
        "peak RSS {peak} bytes, bound {PEAK_RSS_BOUND}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_models_and_promql_warnings_are_logged_once_per_evaluation_and_reason() {
    // 4,000 models with an unreadable le, 4,000 with le="0.5" twice, one
    // good model, and 5,000 warnings in every answer.
    let broken = 4_000;
    let warnings: Vec<String> = (0..5_000).map(|i| format!("warning {i}")).collect();
    let fake = FakePromql::start(answer(
        broken * 2 * 2 + 2,
        move |index| match (index / 2, index % 2) {
            (model, 0) if model < broken => series(model, "fast", 1.0),
            (model, _) if model < broken => series(model, "+Inf", 1.0),
            (model, _) if model < 2 * broken => series(model, "0.5", 1.0),
            (model, 0) => series(model, "0.5", 100.0),
            (model, _) => series(model, "+Inf", 200.0),
        },
        warnings,
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let sidecar = Sidecar::start(dir.path(), &config(&fake));
    let client = http_client();
    let status = wait_status(&client, &sidecar, "three evaluations", |status| {
        status["evaluations"].as_u64() >= Some(3)
    })
    .await;
    let log = sidecar.process.log_text();
    let evaluations = status["evaluations"].as_u64().unwrap();

    let rejected = &status["sources"]["fake"]["rejected"];
    assert_eq!(rejected.as_array().map(Vec::len), Some(2), "{rejected}");
    for (entry, reason, first) in [
        (
            &rejected[0],
            "duplicate le label",
            r#"duplicate le label \"0.5\""#,
        ),
        (
            &rejected[1],
            "series without a valid le label",
            r#"series without a valid le label: \"fast\""#,
        ),
    ] {
        assert_eq!(entry["reason"], reason);
        // Both windows of 4,000 models.
        assert_eq!(entry["count"], 8_000);
        assert!(entry["first"].to_string().contains(first), "{entry}");
    }
    assert_eq!(status["sources"]["fake"]["warnings_total"], 10_000);
    assert_eq!(
        status["sources"]["fake"]["warnings"]
            .as_array()
            .map(Vec::len),
        Some(10)
    );

    let lines = |needle: &str| log.lines().filter(|line| line.contains(needle)).count() as u64;
    // The log was read after the status: one more evaluation may be in it.
    let per_evaluation = |count: u64| (evaluations..=evaluations + 1).contains(&count);
    assert!(
        per_evaluation(lines("8,000 histograms rejected: duplicate le label")),
        "{log}"
    );
    assert!(
        per_evaluation(lines(
            "8,000 histograms rejected: series without a valid le label"
        )),
        "{log}"
    );
    assert!(
        per_evaluation(lines("10,000 promql warnings in the answers")),
        "{log}"
    );
    let total = log.lines().count() as u64;
    eprintln!("{total} log lines in {evaluations} evaluations");
    assert!(total <= 10 + 4 * (evaluations + 1), "{total} lines:\n{log}");

    let (_, metrics) = get(&client, &sidecar.url("/metrics")).await.unwrap();
    let warnings = sample(
        &metrics,
        "model_monitor_promql_warnings_total",
        &[("source", "fake")],
    );
    assert!(
        warnings >= Some(10_000.0 * evaluations as f64),
        "{warnings:?}"
    );
}
