//! The sidecar's own alerts pushed to Alertmanager's API v2 (`alertmanagers:`
//! in the config), proven with real processes: two sidecars watching one
//! drifting model through a real Prometheus, both pushing to a real
//! two-member Alertmanager cluster that routes with the shipped
//! `alerts/alertmanager.yml` (each group notified once, resolved after);
//! and one sidecar against real HTTP receivers that fail, then accept, or
//! reject (retries, the log line with the body, the metrics, credentials
//! sent and never logged, a reload that swaps the list), and
//! `check-config` naming bad settings.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use crate::support::alertmanager::{
    SendResolved, alertmanager_test_config, amtool_check, start_cluster,
};
use crate::support::exposition::sample;
use crate::support::process::{free_port, http_client, run_binary, wait_for};
use crate::support::prometheus::PrometheusServer;
use crate::support::promql::{FakePromql, drifting_models};
use crate::support::sidecar::{Sidecar, SidecarConfig, start_drifting_simulation};
use crate::support::webhook_receiver::{Behaviour, WebhookReceiver};

/// One notification Alertmanager sent to a receiver path: what tells two
/// notifications of a group apart.
#[derive(Debug, Clone, PartialEq)]
struct Notification {
    path: String,
    group_key: String,
    status: String,
    /// (fingerprint, status) of each alert, sorted.
    alerts: Vec<(String, String)>,
    labels: Vec<BTreeMap<String, String>>,
    at: Instant,
}

/// Every notification Alertmanager delivered to `receiver`, in order.
fn notifications(receiver: &WebhookReceiver) -> Vec<Notification> {
    receiver
        .all()
        .into_iter()
        .map(|delivery| {
            let body: Json = serde_json::from_str(&delivery.body).unwrap_or_else(|e| {
                panic!("Alertmanager's payload parses: {e}: {}", delivery.body)
            });
            let alerts = body["alerts"].as_array().unwrap();
            let mut states: Vec<(String, String)> = alerts
                .iter()
                .map(|a| {
                    (
                        a["fingerprint"].as_str().unwrap().to_owned(),
                        a["status"].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
            states.sort();
            Notification {
                path: delivery.path.clone(),
                group_key: body["groupKey"].as_str().unwrap().to_owned(),
                status: body["status"].as_str().unwrap().to_owned(),
                alerts: states,
                labels: alerts
                    .iter()
                    .map(|a| serde_json::from_value(a["labels"].clone()).unwrap())
                    .collect(),
                at: delivery.at,
            }
        })
        .collect()
}

/// The notifications of the drift group of `model` at `path`.
fn drift_group(all: &[Notification], path: &str, model: &str) -> Vec<Notification> {
    all.iter()
        .filter(|n| {
            n.path == path
                && n.labels
                    .iter()
                    .any(|l| l["alertname"] == "ModelDriftDetected" && l["model"] == model)
        })
        .cloned()
        .collect()
}

/// Two notifications in a row of one group with the same status and alert
/// states: the same news twice (two Alertmanagers, or two replicas' alerts,
/// not deduplicated). A group that really changed differs from the one
/// before.
fn repeated(all: &[Notification]) -> Vec<(Notification, Notification)> {
    let mut last: BTreeMap<(String, String), &Notification> = BTreeMap::new();
    let mut repeated = Vec::new();
    for notification in all {
        let group = (notification.path.clone(), notification.group_key.clone());
        if let Some(previous) = last.get(&group)
            && previous.status == notification.status
            && previous.alerts == notification.alerts
        {
            repeated.push(((*previous).clone(), notification.clone()));
        }
        last.insert(group, notification);
    }
    repeated
}

const DRIFT_AFTER_SECS: u64 = 45;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sidecars_through_an_alertmanager_cluster_notify_each_group_once_then_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let client = http_client();
    let receiver = WebhookReceiver::start(&[], None).await;

    // The shipped routing tree, its receivers pointed at the test's receiver,
    // notifying 5s after a group's first alert and every 10s on change.
    let config_path = dir.path().join("alertmanager.yml");
    std::fs::write(
        &config_path,
        alertmanager_test_config(&receiver.url, "5s", "10s", SendResolved::AsShipped),
    )
    .unwrap();
    amtool_check(&config_path);
    let cluster = start_cluster(&client, dir.path(), "alertmanager", &config_path, 2).await;

    let (_simulate, simulate_port) =
        start_drifting_simulation(dir.path(), Duration::from_secs(DRIFT_AFTER_SECS));
    let prometheus = PrometheusServer::start(dir.path(), &[format!("127.0.0.1:{simulate_port}")]);
    prometheus.wait_ready(&client).await;

    // Two replicas with the same config: PSI on confidence and the latency
    // ratio, pushing to both Alertmanagers every 2s.
    let urls: Vec<String> = cluster.iter().map(|am| am.url()).collect();
    let config = SidecarConfig::simulated(&prometheus.url(), "stack")
        .without_detectors(&[
            "ks",
            "chi_square",
            "zscore",
            "jensen_shannon",
            "hellinger",
            "wasserstein",
            "quantile_slo",
        ])
        .with_section(&format!(
            "alertmanagers:\n  urls: [{}]\n  resend_interval: 2s\n  external_labels: {{cluster: test}}\n",
            urls.join(", ")
        ));
    let replicas = [
        Sidecar::start_as(
            "replica-a",
            dir.path(),
            &config,
            free_port(),
            &dir.path().join("data-a"),
        ),
        Sidecar::start_as(
            "replica-b",
            dir.path(),
            &config,
            free_port(),
            &dir.path().join("data-b"),
        ),
    ];
    let logs = || {
        let mut text = String::new();
        for replica in &replicas {
            text.push_str(&replica.process.log_text());
        }
        for member in &cluster {
            text.push_str(&member.process.log_text());
        }
        text
    };

    // The drift of model-1 reaches both receivers the shipped tree routes
    // drift to, once each.
    let firing = |path: &'static str| {
        let receiver = receiver.clone();
        move || {
            let receiver = receiver.clone();
            async move {
                drift_group(&notifications(&receiver), path, "model-1")
                    .into_iter()
                    .find(|n| n.status == "firing")
            }
        }
    };
    let fired = wait_for(
        "the drift of model-1 at slack-ml",
        Duration::from_secs(DRIFT_AFTER_SECS + 120),
        firing("slack-ml"),
    )
    .await;
    wait_for(
        "the drift of model-1 at ml-platform-webhook",
        Duration::from_secs(30),
        firing("ml-platform-webhook"),
    )
    .await;
    assert_eq!(
        fired.labels.len(),
        1,
        "one alert, not one per replica: {fired:#?}"
    );
    let labels = &fired.labels[0];
    for (name, value) in [
        ("alertname", "ModelDriftDetected"),
        ("model", "model-1"),
        ("version", "v1"),
        ("monitor", "stack"),
        ("signal", "confidence"),
        ("detector", "psi"),
        ("severity", "warning"),
        ("kind", "drift"),
        ("cluster", "test"),
    ] {
        assert_eq!(
            labels.get(name).map(String::as_str),
            Some(value),
            "{labels:?}"
        );
    }
    assert!(
        !labels.contains_key("instance") && !labels.contains_key("replica"),
        "no label tells the replicas apart: {labels:?}"
    );

    // Each Alertmanager holds the alert once, with the episode's start.
    for member in &cluster {
        let alerts: Vec<Json> = member
            .alerts(&client)
            .await
            .into_iter()
            .filter(|a| {
                a["labels"]["model"] == "model-1"
                    && a["labels"]["alertname"] == "ModelDriftDetected"
            })
            .collect();
        assert_eq!(alerts.len(), 1, "{alerts:#?}");
        assert!(alerts[0]["startsAt"].is_string());
    }

    // The reference window fills with drifted data and the replicas resolve
    // the alert: the resolved notification follows (send_resolved is set on
    // both receivers in the shipped file).
    for path in ["slack-ml", "ml-platform-webhook"] {
        let receiver = receiver.clone();
        wait_for(
            &format!("the resolution of model-1's drift at {path}"),
            Duration::from_secs(180),
            || {
                let receiver = receiver.clone();
                async move {
                    drift_group(&notifications(&receiver), path, "model-1")
                        .into_iter()
                        .find(|n| n.status == "resolved")
                }
            },
        )
        .await;
    }
    // The second Alertmanager sends what the first did not, one peer
    // timeout (5s) after a flush; a duplicate would arrive within that and
    // a group interval (10s). No event marks a notification not sent, so
    // the check looks for one that long.
    let watched_until = Instant::now() + Duration::from_secs(16);
    while Instant::now() < watched_until {
        let repeats = repeated(&notifications(&receiver));
        assert!(
            repeats.is_empty(),
            "the same notification twice:\n{repeats:#?}\n{}",
            logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let all = notifications(&receiver);
    for path in ["slack-ml", "ml-platform-webhook"] {
        let group = drift_group(&all, path, "model-1");
        let statuses: Vec<&str> = group.iter().map(|n| n.status.as_str()).collect();
        eprintln!(
            "{path}: model-1's drift group notified {statuses:?}, {:.1}s apart",
            group
                .last()
                .unwrap()
                .at
                .duration_since(group[0].at)
                .as_secs_f64()
        );
        assert_eq!(
            statuses.first(),
            Some(&"firing"),
            "{path}: {group:#?}\n{}",
            logs()
        );
        assert_eq!(statuses.last(), Some(&"resolved"), "{path}: {group:#?}");
        assert!(
            group.iter().all(|n| n.alerts.len() == 1),
            "{path}: one alert per notification, not one per replica: {group:#?}"
        );
    }
    let stationary: Vec<&Notification> = all
        .iter()
        .filter(|n| {
            n.labels.iter().any(|l| {
                matches!(
                    l.get("model").map(String::as_str),
                    Some("model-0" | "model-2")
                )
            })
        })
        .collect();
    assert!(stationary.is_empty(), "{stationary:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sends_are_retried_rejections_are_logged_with_the_body_and_alerts_resent() {
    const TOKEN: &str = "AM-BEARER-TOKEN-never-logged";
    let dir = tempfile::tempdir().unwrap();
    let client = http_client();
    let fake = FakePromql::start(drifting_models(&["fraud", "steady"], &["fraud"])).await;
    // 503, 429, 500, then 200 to every request.
    let flaky =
        WebhookReceiver::start(&[("flaky/api/v2/alerts", Behaviour::FailThreeTimes)], None).await;
    let rejecting =
        WebhookReceiver::start(&[("reject/api/v2/alerts", Behaviour::Reject)], None).await;
    let token_file = dir.path().join("am-token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let config = SidecarConfig::fake_source_alerting(&fake.url, "{for: 1}").with_section(&format!(
        "alertmanagers:\n  urls: ['{}/flaky', '{}/reject']\n  resend_interval: 1s\n  bearer_token_file: {}\n",
        flaky.url,
        rejecting.url,
        token_file.display()
    ));
    let sidecar = Sidecar::start(dir.path(), &config);
    sidecar.wait_ready(&client).await;

    // Retried until accepted, then sent again at each resend.
    flaky
        .wait_until("two accepted posts to the flaky alertmanager", |r| {
            r.received("flaky/api/v2/alerts")
                .iter()
                .filter(|p| p.status == 200)
                .count()
                >= 2
        })
        .await;
    let posts = flaky.received("flaky/api/v2/alerts");
    let statuses: Vec<u16> = posts.iter().map(|p| p.status).collect();
    assert_eq!(&statuses[..4], &[503, 429, 500, 200], "{statuses:?}");
    assert_eq!(
        posts[0].body, posts[3].body,
        "the retries carry the same batch"
    );
    for post in &posts {
        assert_eq!(
            post.headers["authorization"].to_str().unwrap(),
            format!("Bearer {TOKEN}")
        );
    }
    let accepted: Vec<Json> = posts
        .iter()
        .filter(|p| p.status == 200)
        .map(|p| serde_json::from_str(&p.body).unwrap())
        .collect();
    let first = &accepted[0].as_array().unwrap()[0];
    let later = accepted[1]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"] == first["labels"])
        .expect("the resend carries the same alert");
    assert_eq!(first["labels"]["alertname"], "ModelDriftDetected");
    assert_eq!(first["labels"]["model"], "fraud");
    assert_eq!(first["labels"]["monitor"], "fake");
    assert_eq!(
        first["startsAt"], later["startsAt"],
        "one episode, one start"
    );
    let ends = |alert: &Json| {
        chrono::DateTime::parse_from_rfc3339(alert["endsAt"].as_str().unwrap()).unwrap()
    };
    assert!(ends(later) > ends(first), "a resend moves endsAt on");
    assert!(
        first["generatorURL"]
            .as_str()
            .unwrap()
            .starts_with("https://prometheus.example/graph")
    );

    // A 400 is not retried: one log line names the Alertmanager and the
    // body, never the token.
    rejecting
        .wait_until("a post to the rejecting alertmanager", |r| {
            !r.received("reject/api/v2/alerts").is_empty()
        })
        .await;
    let log = wait_for(
        "the rejection in the log",
        Duration::from_secs(20),
        || async {
            let log = sidecar.process.log_text();
            log.contains("the alertmanager rejected the alerts")
                .then_some(log)
        },
    )
    .await;
    let line = log
        .lines()
        .find(|l| l.contains("the alertmanager rejected the alerts"))
        .unwrap();
    assert!(
        line.contains(&format!("{}/reject/api/v2/alerts", rejecting.url))
            && line.contains("http 400")
            && line.contains("no such channel"),
        "{line}"
    );
    assert!(!log.contains(TOKEN), "the token is never logged");

    let (_, status) = crate::support::process::get(&client, &sidecar.url("/api/v1/status"))
        .await
        .unwrap();
    let status: Json = serde_json::from_str(&status).unwrap();
    let listed: Vec<&str> = status["data"]["webhooks"]["alertmanagers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|am| am["url"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 2, "{status}");
    assert!(
        status["data"]["webhooks"]["alertmanager_alerts"]["firing"]
            .as_u64()
            .unwrap()
            >= 1
    );

    let metrics = sidecar.metrics(&client).await;
    let flaky_url = format!("{}/flaky/api/v2/alerts", flaky.url);
    let reject_url = format!("{}/reject/api/v2/alerts", rejecting.url);
    let of =
        |name: &str, url: &str| sample(&metrics, name, &[("alertmanager", url)]).unwrap_or(0.0);
    assert_eq!(
        sample(&metrics, "model_monitor_alertmanagers", &[]),
        Some(2.0)
    );
    let errors = "model_monitor_alertmanager_notifications_errors_total";
    assert!(of(errors, &flaky_url) >= 3.0, "{metrics}");
    assert!(of(errors, &reject_url) >= 1.0, "{metrics}");
    assert!(
        of("model_monitor_alertmanager_notifications_total", &flaky_url) >= 5.0,
        "{metrics}"
    );

    // A reload (SIGHUP) swaps the list: the rejecting Alertmanager and its
    // series go, the flaky one stays.
    SidecarConfig::fake_source_alerting(&fake.url, "{for: 1}")
        .with_section(&format!(
            "alertmanagers:\n  urls: ['{}/flaky']\n  resend_interval: 1s\n",
            flaky.url
        ))
        .write(&dir.path().join("sidecar.yml"));
    sidecar.process.signal("HUP");
    wait_for(
        "the reload to drop the rejecting alertmanager",
        Duration::from_secs(30),
        || async {
            let metrics = sidecar.metrics(&client).await;
            let gone = sample(&metrics, errors, &[("alertmanager", &reject_url)]).is_none();
            (sample(&metrics, "model_monitor_alertmanagers", &[]) == Some(1.0) && gone)
                .then_some(())
        },
    )
    .await;
    let log = sidecar.process.log_text();
    // The log is logfmt: the message's quotes are escaped.
    assert!(
        log.contains(&format!(
            "alertmanagers added [], removed [\\\"{reject_url}\\\"], kept [\\\"{flaky_url}\\\"]"
        )),
        "{log}"
    );
}

#[test]
fn check_config_names_every_bad_alertmanagers_setting() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yml");
    SidecarConfig::fake_source("http://127.0.0.1:9", "5s")
        .with_section(
            "alertmanagers:\n  urls: ['am-0:9093']\n  resend_interval: soon\n  external_labels: {alertname: x}\n",
        )
        .write(&file);
    let (code, _, stderr) = run_binary(&["check-config".into(), file.display().to_string()]);
    assert_eq!(code, 1, "{stderr}");
    for expected in [
        "alertmanagers.urls[0]: invalid url",
        "alertmanagers.resend_interval: invalid duration",
        "alertmanagers.external_labels.alertname: label \"alertname\" is set by the sidecar",
        "3 problem(s) found",
    ] {
        assert!(stderr.contains(expected), "{expected}:\n{stderr}");
    }
}
