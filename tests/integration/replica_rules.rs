//! The shipped rules with two real replicas of the sidecar: `model-monitor
//! simulate`, two `model-monitor run` processes scoring the same models,
//! and a real Prometheus scraping both in job `model-monitor` (each target
//! with its own `instance` and `pod`, as the Prometheus Operator labels
//! them) and evaluating `alerts/model-monitor.rules.yml`. The drifting
//! model's alerts are one per signal and detector, without the replica
//! labels, although both replicas report the drift; when one replica is
//! killed, its ModelMonitorDown names it and the drift alerts stay, firing
//! since before the kill, through the rule evaluations that follow. The promtool cases of `alerts/tests/replicas.test.yml`
//! cover the rest (a replica disagreeing, a frozen source, every replica gone).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value as Json;

use crate::alerting_stack::start_prometheus_with_rules;
use crate::support::process::wait_for;
use crate::support::process::{free_port, get, http_client};
use crate::support::sidecar::{Sidecar, SidecarConfig, start_drifting_simulation};

/// The labels that tell the replicas apart.
const REPLICA_LABELS: [&str; 2] = ["instance", "pod"];

/// One alert of Prometheus' `/api/v1/alerts`.
#[derive(Debug, Clone, serde::Deserialize)]
struct RuleAlert {
    labels: BTreeMap<String, String>,
    state: String,
    #[serde(rename = "activeAt")]
    active_at: String,
}

async fn alerts(client: &reqwest::Client, prometheus: &str) -> Vec<RuleAlert> {
    let Some((200, body)) = get(client, &format!("{prometheus}/api/v1/alerts")).await else {
        return Vec::new();
    };
    let body: Json = serde_json::from_str(&body).expect("/api/v1/alerts is JSON");
    serde_json::from_value(body["data"]["alerts"].clone()).expect("alerts")
}

fn named<'a>(alerts: &'a [RuleAlert], name: &str) -> Vec<&'a RuleAlert> {
    alerts
        .iter()
        .filter(|a| a.labels.get("alertname").map(String::as_str) == Some(name))
        .collect()
}

/// When each rule group of Prometheus last evaluated (as it writes it).
async fn last_evaluations(client: &reqwest::Client, prometheus: &str) -> BTreeMap<String, String> {
    let Some((200, body)) = get(client, &format!("{prometheus}/api/v1/rules")).await else {
        return BTreeMap::new();
    };
    let body: Json = serde_json::from_str(&body).expect("/api/v1/rules is JSON");
    body["data"]["groups"]
        .as_array()
        .expect("rule groups")
        .iter()
        .map(|group| {
            (
                group["name"].as_str().unwrap().to_owned(),
                group["lastEvaluation"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The number of series of an instant query's answer.
async fn series_count(client: &reqwest::Client, prometheus: &str, expr: &str) -> usize {
    let response = client
        .get(format!("{prometheus}/api/v1/query"))
        .query(&[("query", expr)])
        .send()
        .await
        .expect("querying prometheus");
    let body: Json = response.json().await.expect("a JSON answer");
    body["data"]["result"].as_array().map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_reporting_the_same_drift_raise_one_alert_that_outlives_a_replica() {
    let dir = tempfile::tempdir().expect("temp dir");
    let client = http_client();
    let (_simulate, simulate_port) = start_drifting_simulation(dir.path(), Duration::from_secs(30));
    let ports = [free_port(), free_port()];
    let prometheus = start_prometheus_with_rules(
        dir.path(),
        "10s",
        &format!(
            r#"scrape_configs:
  - job_name: simulate
    static_configs:
      - targets: ['127.0.0.1:{simulate_port}']
  - job_name: model-monitor
    static_configs:
      - targets: ['127.0.0.1:{}']
        labels: {{pod: model-monitor-0}}
      - targets: ['127.0.0.1:{}']
        labels: {{pod: model-monitor-1}}
"#,
            ports[0], ports[1]
        ),
    );
    prometheus.wait_ready(&client).await;
    let url = prometheus.url();
    let config = SidecarConfig::simulated(&url, "replicas").without_detectors(&[
        "jensen_shannon",
        "hellinger",
        "wasserstein",
    ]);
    let _replica_0 = Sidecar::start_as(
        "replica-0",
        dir.path(),
        &config,
        ports[0],
        &dir.path().join("data-0"),
    );
    let mut replica_1 = Sidecar::start_as(
        "replica-1",
        dir.path(),
        &config,
        ports[1],
        &dir.path().join("data-1"),
    );

    // Both replicas report model-1's drift, and Prometheus fires it once
    // per signal and detector, without the replica labels.
    let firing = wait_for(
        "ModelDriftDetected firing for model-1 while both replicas report it",
        Duration::from_secs(150),
        || async {
            let both = series_count(
                &client,
                &url,
                r#"count without (instance, pod) (model_monitor_drift_detected{job="model-monitor",model="model-1",signal="confidence"} == 1) == 2"#,
            )
            .await;
            let alerts = alerts(&client, &url).await;
            let firing: Vec<RuleAlert> = named(&alerts, "ModelDriftDetected")
                .into_iter()
                .filter(|a| a.state == "firing" && a.labels["model"] == "model-1")
                .cloned()
                .collect();
            (both > 0 && !firing.is_empty()).then_some(firing)
        },
    )
    .await;
    let all = alerts(&client, &url).await;
    let drift = named(&all, "ModelDriftDetected");
    let mut keys = BTreeMap::new();
    for alert in &drift {
        for label in REPLICA_LABELS {
            assert!(
                !alert.labels.contains_key(label),
                "the drift alert has no {label}: {alert:?}"
            );
        }
        assert_eq!(alert.labels["job"], "model-monitor", "{alert:?}");
        let key = (
            alert.labels["model"].clone(),
            alert.labels["signal"].clone(),
            alert.labels["detector"].clone(),
        );
        *keys.entry(key).or_insert(0) += 1;
    }
    assert!(
        keys.values().all(|count| *count == 1),
        "one alert per model, signal and detector: {keys:?}"
    );

    // Replica 1 goes away. Its ModelMonitorDown names it (pending as soon
    // as Prometheus finds its scrape failing); once the rule groups have
    // evaluated twice more, the drift alerts active before the kill are
    // still firing, from the same start. (The simulated drift lasts until
    // the reference window fills with drifted traffic, so the test looks
    // right after the kill rather than waiting out ModelMonitorDown's `for`.)
    replica_1.process.kill();
    let down = wait_for(
        "ModelMonitorDown for replica 1",
        Duration::from_secs(30),
        || async {
            let alerts = alerts(&client, &url).await;
            named(&alerts, "ModelMonitorDown")
                .into_iter()
                .next()
                .cloned()
        },
    )
    .await;
    assert_eq!(down.labels["pod"], "model-monitor-1", "{down:?}");
    assert_eq!(down.labels["instance"], format!("127.0.0.1:{}", ports[1]));
    for _ in 0..2 {
        let seen = last_evaluations(&client, &url).await;
        wait_for(
            "the rule groups to evaluate again",
            Duration::from_secs(30),
            || async {
                let now = last_evaluations(&client, &url).await;
                (!now.is_empty() && now.iter().all(|(group, at)| seen.get(group) != Some(at)))
                    .then_some(())
            },
        )
        .await;
    }
    let after = alerts(&client, &url).await;
    let still: Vec<&RuleAlert> = named(&after, "ModelDriftDetected")
        .into_iter()
        .filter(|a| {
            a.state == "firing"
                && firing
                    .iter()
                    .any(|f| f.labels == a.labels && f.active_at == a.active_at)
        })
        .collect();
    assert!(
        !still.is_empty(),
        "a drift alert firing before the kill still fires from the same start: before {firing:#?}, after {after:#?}"
    );
    assert!(
        named(&after, "ModelMonitorAbsent").is_empty(),
        "replica 0 is up: {after:#?}"
    );
}
