//! `model-monitor baseline capture` through a real Prometheus scraping
//! `simulate`: the baseline file it writes, used as the reference, gives
//! the same scores as `reference: {range: {start, end}}` over the same
//! range, evaluation by evaluation (both replayed by `backtest` on the same
//! data). A sidecar on the file names its reference's kind and end in
//! `/metrics` and the status API.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde_json::Value;

use crate::backtest::{model_monitor, time};
use crate::support::exposition::sample;
use crate::support::process::{get, http_client, wait_for};
use crate::support::prometheus::PrometheusServer;
use crate::support::sidecar::{Sidecar, SidecarConfig, start_drifting_simulation};

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Every scores line of a `--scores-output` file: (time, model, signal,
/// detector) to score.
fn scores(text: &str) -> BTreeMap<(DateTime<Utc>, String, String, String), f64> {
    let mut scores = BTreeMap::new();
    for line in text.lines() {
        let line: Value = serde_json::from_str(line).expect("a JSON line");
        let at = time(&line["at"]);
        for score in line["scores"].as_array().expect("scores") {
            let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
            scores.insert(
                (
                    at,
                    text(&score["labels"]["model"]),
                    text(&score["signal"]),
                    text(&score["detector"]),
                ),
                score["score"].as_f64().expect("a score"),
            );
        }
    }
    scores
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captured_baseline_scores_like_the_range_it_was_captured_from() {
    let dir = tempfile::tempdir().expect("temp dir");
    let client = http_client();
    let (_simulate, simulate_port) =
        start_drifting_simulation(dir.path(), Duration::from_secs(3600));
    let prometheus = PrometheusServer::start(dir.path(), &[format!("127.0.0.1:{simulate_port}")]);
    prometheus.wait_ready(&client).await;
    // The range starts once Prometheus has the series and lasts 20 s; the
    // replay covers the 20 s after it with 10 s current windows.
    let series = format!(
        "{}/api/v1/query?query=count(model_prediction_confidence_bucket)%20and%20count(model_request_duration_seconds_bucket)",
        prometheus.url()
    );
    wait_for("the first scrape", Duration::from_secs(30), || async {
        let (_, body) = get(&client, &series).await?;
        body.contains("\"value\"").then_some(())
    })
    .await;
    let start = Utc::now().trunc_subsecs(3);
    let end = start + chrono::Duration::seconds(20);
    let replay_to = end + chrono::Duration::seconds(20);
    tokio::time::sleep((replay_to - Utc::now()).to_std().unwrap_or_default()).await;

    let config = SidecarConfig::simulated(&prometheus.url(), "captured")
        .set("WINDOW", "10s")
        .set("MIN_SAMPLES", "100")
        .set("WASSERSTEIN_THRESHOLD", "0.5")
        .with_reference(&format!(
            "{{range: {{start: \"{}\", end: \"{}\"}}}}",
            rfc3339(start),
            rfc3339(end)
        ));
    let range_file = dir.path().join("range.yml");
    let env = config.write(&range_file);
    let baseline_file = dir.path().join("baseline.yml");
    model_monitor(
        &[
            "baseline".to_owned(),
            "capture".to_owned(),
            format!("--config.file={}", range_file.display()),
            "--monitor=captured".to_owned(),
            format!("--from={}", rfc3339(start)),
            format!("--to={}", rfc3339(end)),
            format!("--output={}", baseline_file.display()),
        ],
        &env,
    );
    let baseline = std::fs::read_to_string(&baseline_file).expect("the baseline file");
    let header = baseline.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("# model-monitor baseline capture: monitor captured, taken "),
        "{header}"
    );
    let range_line = format!(
        "# range: {} to {}",
        start.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        end.to_rfc3339_opts(SecondsFormat::AutoSi, true)
    );
    assert!(baseline.contains(&range_line), "{range_line}:\n{baseline}");
    assert!(
        baseline.contains("# query (confidence): sum by (model, version, le) (increase(model_prediction_confidence_bucket"),
        "the header names the query:\n{baseline}"
    );
    for model in ["model-0", "model-1", "model-2"] {
        assert!(
            baseline.contains(&format!("\"model\": \"{model}\"")),
            "{model}:\n{baseline}"
        );
    }

    let file_config = config.clone().with_reference(&format!(
        "{{baseline_file: \"{}\"}}",
        baseline_file.display()
    ));
    let mut replayed = Vec::new();
    for (name, config) in [("range", &config), ("file", &file_config)] {
        let config_file = dir.path().join(format!("replay-{name}.yml"));
        let env = config.write(&config_file);
        let scores_file = dir.path().join(format!("scores-{name}.jsonl"));
        model_monitor(
            &[
                "backtest".to_owned(),
                format!("--config.file={}", config_file.display()),
                format!("--from={}", rfc3339(end)),
                format!("--to={}", rfc3339(replay_to)),
                "--format=json".to_owned(),
                format!(
                    "--output={}",
                    dir.path().join(format!("{name}.json")).display()
                ),
                format!("--scores-output={}", scores_file.display()),
            ],
            &env,
        );
        replayed.push(scores(
            &std::fs::read_to_string(&scores_file).expect("the scores file"),
        ));
    }
    // A sidecar on the file says which reference it uses and where it ends.
    let sidecar = Sidecar::start(dir.path(), &file_config);
    sidecar.wait_ready(&client).await;
    let (_, metrics) = get(&client, &sidecar.url("/metrics"))
        .await
        .expect("/metrics");
    assert_eq!(
        sample(
            &metrics,
            "model_monitor_reference_info",
            &[("source", "captured"), ("kind", "baseline_file")]
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "model_monitor_reference_end_timestamp_seconds",
            &[("source", "captured")]
        ),
        Some(end.timestamp_millis() as f64 / 1000.0),
        "{metrics}"
    );
    let (_, status) = get(&client, &sidecar.url("/api/v1/status"))
        .await
        .expect("status");
    let status: Value = serde_json::from_str(&status).expect("status JSON");
    let reference = &status["data"]["config"]["monitors"][0]["reference"];
    assert_eq!(reference["kind"], "baseline_file", "{reference}");
    drop(sidecar);

    let (range, file) = (&replayed[0], &replayed[1]);
    assert_eq!(
        range.keys().collect::<Vec<_>>(),
        file.keys().collect::<Vec<_>>(),
        "the same detections at the same times"
    );
    assert!(range.len() > 30, "scores to compare: {}", range.len());
    for (key, score) in range {
        let from_file = file[key];
        assert!(
            (score - from_file).abs() <= 1e-9 * score.abs().max(1.0),
            "{key:?}: range {score}, baseline file {from_file}"
        );
    }
}
