//! Cached references with real processes: `simulate` serves three models,
//! a real Prometheus scrapes them every second and logs every query it
//! answers (`query_log_file`), and `model-monitor run` evaluates a 10 s
//! window every 2 s against `reference: {window: 30s, refresh: 10s}`.
//!
//! The reference must be queried once per refresh, not at every
//! evaluation: Prometheus' query log holds one reference query per signal
//! and 10 s grid point, each sent with `time=` that grid point, while the
//! current window is queried at every evaluation. The status API and
//! `model_monitor_reference_evaluation_timestamp_seconds` show that time;
//! the reference the sidecar used holds what Prometheus answers for the
//! same PromQL at that time; and `backtest` over the same span gives the
//! live scores, so replicas and replays agree on every number.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use model_monitor::duration::grid_floor;
use serde_json::Value;

use crate::backtest::{Key, assert_same_scores, live_scores, model_monitor, read_scores, time};
use crate::detectors_extra::instant_value;
use crate::support::exposition::sample;
use crate::support::process::{get, http_client};
use crate::support::prometheus::PrometheusServer;
use crate::support::sidecar::{Sidecar, SidecarConfig, start_drifting_simulation};

const REFRESH_SECS: i64 = 10;
/// Evaluations recorded: about four refreshes' worth at one every 2 s.
const EVALUATIONS: usize = 20;

/// `backtest.rs`'s config (monitor `replayed`, a 10 s window every 2 s),
/// its `window: 30s` reference refreshed every [`REFRESH_SECS`].
fn sidecar_config(prometheus_url: &str) -> SidecarConfig {
    crate::backtest::sidecar_config(prometheus_url)
        .with_reference(&format!("{{window: 30s, refresh: {REFRESH_SECS}s}}"))
}

/// One live evaluation as the status API showed it.
struct Evaluation {
    scores: BTreeMap<Key, f64>,
    /// Each signal's reference: its time and whether this evaluation
    /// queried it.
    references: BTreeMap<String, (DateTime<Utc>, bool)>,
    /// model-0's latency reference total.
    reference_samples: Option<f64>,
}

fn evaluation(status: &Value) -> Option<(DateTime<Utc>, Evaluation)> {
    let evaluation = &status["data"]["evaluation"];
    if evaluation["timestamp"].is_null() {
        return None;
    }
    let references = evaluation["sources"]["replayed"]["references"]
        .as_array()?
        .iter()
        .map(|reference| {
            let signal = reference["signal"].as_str().unwrap_or_default().to_owned();
            let queried = reference["queried"].as_bool().expect("queried");
            (signal, (time(&reference["evaluated_at"]), queried))
        })
        .collect();
    let reference_samples = evaluation["models"]
        .as_array()?
        .iter()
        .find(|m| m["labels"]["model"] == "model-0")
        .and_then(|m| m["signals"]["latency"]["reference_samples"].as_f64());
    let at = time(&evaluation["timestamp"]);
    let scores = live_scores(&evaluation["models"]);
    Some((
        at,
        Evaluation {
            scores,
            references,
            reference_samples,
        },
    ))
}

/// The query log's entries: each query with its evaluation time.
fn logged_queries(log: &str) -> Vec<(String, DateTime<Utc>)> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|entry| {
            let params = &entry["params"];
            let query = params["query"].as_str()?.to_owned();
            let end = params["end"].as_str()?.parse().ok()?;
            Some((query, end))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_is_queried_once_per_refresh_at_its_grid_time_and_backtest_agrees() {
    let dir = tempfile::tempdir().expect("temp dir");
    let client = http_client();
    let (_simulate, simulate_port) =
        start_drifting_simulation(dir.path(), Duration::from_secs(3600));
    let (prometheus, query_log) = PrometheusServer::start_with_query_log(dir.path(), simulate_port);
    prometheus.wait_ready(&client).await;
    let config = sidecar_config(&prometheus.url());
    let sidecar = Sidecar::start(dir.path(), &config);
    sidecar.wait_ready(&client).await;

    // Every evaluation from the first with all three models on, and every
    // reference time /metrics showed meanwhile.
    let mut live: BTreeMap<DateTime<Utc>, Evaluation> = BTreeMap::new();
    let mut exported = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    while live.len() < EVALUATIONS {
        ticker.tick().await;
        assert!(
            Instant::now() < deadline,
            "{} of {EVALUATIONS} evaluations in time; sidecar log:\n{}",
            live.len(),
            sidecar.process.log_text()
        );
        if let Some((200, text)) = get(&client, &sidecar.url("/metrics")).await {
            let name = "model_monitor_reference_evaluation_timestamp_seconds";
            let want = [("monitor", "replayed"), ("signal", "latency")];
            if let Some(seconds) = sample(&text, name, &want) {
                exported.insert((seconds * 1000.0) as i64);
            }
        }
        let Some((200, text)) = get(&client, &sidecar.url("/api/v1/status")).await else {
            continue;
        };
        let status: Value = serde_json::from_str(&text).expect("status JSON");
        if let Some((at, evaluation)) = evaluation(&status)
            && (live.contains_key(&at) || evaluation.reference_samples.is_some())
        {
            live.entry(at).or_insert(evaluation);
        }
    }
    drop(sidecar);

    // The status API: each evaluation's reference is the one of its 10 s
    // grid point, queried by the first evaluation after it and served from
    // the cache to the rest.
    let refresh = Duration::from_secs(REFRESH_SECS as u64);
    let mut queried_at: BTreeMap<(String, DateTime<Utc>), usize> = BTreeMap::new();
    for (at, evaluation) in &live {
        assert_eq!(evaluation.references.len(), 2, "both signals at {at}");
        for (signal, (reference_at, queried)) in &evaluation.references {
            assert_eq!(
                *reference_at,
                grid_floor(*at, refresh),
                "{signal}'s reference time at {at}"
            );
            if *queried {
                *queried_at
                    .entry((signal.clone(), *reference_at))
                    .or_default() += 1;
            }
            if at == reference_at {
                assert!(queried, "the evaluation on the grid point {at} queries");
            }
        }
    }
    assert!(
        queried_at.values().all(|count| *count == 1),
        "one evaluation queries each reference: {queried_at:?}"
    );
    let reference_times: BTreeSet<DateTime<Utc>> = live
        .values()
        .map(|evaluation| evaluation.references["latency"].0)
        .collect();
    assert!(
        reference_times.len() >= 3,
        "several refreshes: {reference_times:?}"
    );
    let in_status: BTreeSet<i64> = reference_times
        .iter()
        .map(DateTime::timestamp_millis)
        .collect();
    // /metrics shows the same times (and, before the models were served,
    // earlier ones of the same grid).
    assert!(
        exported.iter().all(|ms| ms % (REFRESH_SECS * 1000) == 0)
            && exported.intersection(&in_status).count() >= 2,
        "/metrics exported the reference times {exported:?}, the status API showed {in_status:?}"
    );

    // Prometheus' own log: one reference query per signal and refresh,
    // each at its grid time; the current window at every evaluation.
    let log = std::fs::read_to_string(&query_log).expect("prometheus wrote its query log");
    let queries = logged_queries(&log);
    let mut current = 0;
    let mut references: BTreeMap<(&str, DateTime<Utc>), usize> = BTreeMap::new();
    for (query, at) in &queries {
        for (signal, histogram) in [
            ("confidence", "model_prediction_confidence"),
            ("latency", "model_request_duration_seconds"),
        ] {
            let prefix = format!(
                "sum by (model, version, le) (increase({histogram}_bucket{{job=\"simulate\"}}"
            );
            if query.starts_with(&format!("{prefix}[30s] offset 10s))")) {
                *references.entry((signal, *at)).or_default() += 1;
            } else if signal == "latency" && query.starts_with(&format!("{prefix}[10s]))")) {
                current += 1;
            }
        }
    }
    assert!(
        references.values().all(|count| *count == 1),
        "each reference query once per refresh: {references:?}"
    );
    for (signal, at) in references.keys() {
        assert_eq!(
            at.timestamp_millis() % (REFRESH_SECS * 1000),
            0,
            "{signal}'s reference query sent with time={at}, off the refresh grid"
        );
    }
    for reference_at in &reference_times {
        for signal in ["confidence", "latency"] {
            assert!(
                references.contains_key(&(signal, *reference_at)),
                "prometheus answered {signal}'s reference at {reference_at}: {references:?}"
            );
        }
    }
    let latency_references = references.keys().filter(|(s, _)| *s == "latency").count();
    assert!(
        latency_references * 4 <= current + 4,
        "{latency_references} reference queries for {current} evaluations"
    );

    // The reference the sidecar used is what Prometheus answers for the
    // same PromQL at the reference time.
    let mut checked = BTreeSet::new();
    for evaluation in live.values() {
        let reference_at = evaluation.references["latency"].0;
        let Some(used) = evaluation.reference_samples else {
            continue;
        };
        if !checked.insert(reference_at) {
            continue;
        }
        let query = r#"sum(increase(model_request_duration_seconds_bucket{job="simulate",model="model-0",le="+Inf"}[30s] offset 10s))"#;
        let at = reference_at.to_rfc3339();
        let answered = instant_value(&client, &prometheus.url(), query, &at)
            .await
            .unwrap_or_else(|| panic!("prometheus answers {query} at {at}"));
        assert!(
            (used - answered).abs() <= 1e-9 * answered.max(1.0),
            "the reference of {reference_at} holds {used} requests, prometheus says {answered}"
        );
    }
    assert!(checked.len() >= 3, "references checked: {checked:?}");

    // backtest over the same span: the live scores, number for number.
    let config_file = dir.path().join("backtest.yml");
    let env = config.write(&config_file);
    let scores_file = dir.path().join("scores.jsonl");
    let from = live.keys().next().expect("evaluations");
    let to = live.keys().next_back().expect("evaluations");
    let args = vec![
        "backtest".to_owned(),
        format!("--config.file={}", config_file.display()),
        format!("--from={}", from.to_rfc3339()),
        format!("--to={}", to.to_rfc3339()),
        "--format=json".to_owned(),
        format!("--output={}", dir.path().join("report.json").display()),
        format!("--scores-output={}", scores_file.display()),
    ];
    model_monitor(&args, &env);
    let live_scores: BTreeMap<DateTime<Utc>, BTreeMap<Key, f64>> = live
        .into_iter()
        .map(|(at, evaluation)| (at, evaluation.scores))
        .collect();
    let compared = assert_same_scores(&live_scores, &read_scores(&scores_file));
    eprintln!(
        "{latency_references} latency reference queries for {current} evaluations; {compared} scores replayed"
    );
}
