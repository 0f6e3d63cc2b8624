//! Two replicas of the sidecar, and receivers that act once: `model-monitor
//! simulate` serves three models (`model-1` drifts), one real Prometheus
//! scrapes them, and two `model-monitor run` processes with the same config
//! (each its own port and storage directory) notify a Slack-format, an
//! Alertmanager-format and a template (retrain) receiver. Each replica posts
//! under its own path, so the test knows who sent what; the receivers'
//! deduplicated view is what a receiver that deduplicates on `webhook-id`
//! acts on.
//!
//! Both replicas send every notification (the raw count is twice the
//! deduplicated one), and after deduplication there is one Slack message
//! per alert, one Alertmanager alert per model and one retrain call per
//! episode. One replica is killed (SIGKILL) mid-episode and started again
//! on its storage: the repeats it sends late and the ones after carry the
//! other replica's ids, and no id appears that the other did not send.
//!
//! Both replicas query one Prometheus with `time=` on the same grid, one
//! scrape interval (1 s) after each grid time (`query_offset`), so every
//! sample up to it is written before either asks and they see the same
//! data (see "Running more than one" in README.md).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::support::process::{free_port, http_client};
use crate::support::sidecar::{Sidecar, SidecarConfig, start_drifting_stack};
use crate::support::webhook_receiver::{Received, WebhookReceiver};

const DRIFT_AFTER_SECS: u64 = 45;
const REPLICAS: [&str; 2] = ["a", "b"];

/// The replicas' one config: PSI and KS on confidence, every second; an
/// alert fires at its first drifting evaluation, repeats every 10 s and does
/// not resolve within the test. Each replica's `${REPLICA}` puts its
/// requests under its own path.
fn sidecar_config(prometheus_url: &str, webhook_url: &str) -> SidecarConfig {
    let body = r#"{"model": {{ alert.model | tojson }}, "detector": {{ alert.detector | tojson }}, "starts_at": {{ alert.starts_at | tojson }}, "evaluated_at": {{ alert.evaluated_at | tojson }}, "id": {{ id | tojson }}}"#;
    SidecarConfig::simulated(prometheus_url, "replicas")
        .set("EVALUATION_INTERVAL", "1s")
        .with_evaluation("query_offset", "1s")
        // As in end_to_end.rs: no false alarms on the stationary models.
        .set("MIN_SAMPLES", "300")
        .without_detectors(&["chi_square", "zscore", "jensen_shannon", "hellinger", "wasserstein"])
        .with_alerting("{for: 1, resolve_after: 1000, repeat_interval: 10s}")
        .with_webhooks(&format!(
            r#"  - {{name: slack, format: slack, url: '{webhook_url}/${{REPLICA}}/slack', match: {{signal: confidence}}}}
  - {{name: am, format: alertmanager, url: '{webhook_url}/${{REPLICA}}/am', match: {{signal: confidence, detector: psi}}}}
  - name: retrain
    format: template
    url: '{webhook_url}/${{REPLICA}}/retrain'
    match: {{signal: confidence}}
    body: '{body}'
"#
        ))
}

/// Starts replica `name` on `port`, its storage in `<dir>/<name>-data`.
fn start_replica(dir: &Path, config: &SidecarConfig, name: &str, port: u16) -> Sidecar {
    let config = config.clone().set("REPLICA", name);
    Sidecar::start_as(name, dir, &config, port, &dir.join(format!("{name}-data")))
}

/// The paths of receiver `kind` (`slack`, `am`, `retrain`) of `replicas`.
fn paths(kind: &str, replicas: &[&str]) -> Vec<String> {
    replicas.iter().map(|r| format!("{r}/{kind}")).collect()
}

/// The ids delivered to receiver `kind` by `replica`.
fn ids(receiver: &WebhookReceiver, replica: &str, kind: &str) -> BTreeSet<String> {
    receiver
        .delivered(&format!("{replica}/{kind}"))
        .into_keys()
        .collect()
}

/// A Slack message's summary line: `[FIRING] drift on model-1 ...`.
fn slack_text(request: &Received) -> String {
    let body: Value = serde_json::from_str(&request.body).expect("slack JSON");
    let text = body["text"].as_str().expect("text");
    text.lines().next().unwrap_or_default().to_owned()
}

/// The (model, detector) a Slack summary line names: `... on model-1
/// [version]: confidence psi score ...`.
fn slack_alert(text: &str) -> (String, String) {
    let (_, rest) = text.split_once(" on ").expect("a model");
    let model = rest.split([' ', ':']).next().expect("a model");
    let (_, rest) = rest.split_once(": confidence ").expect("the signal");
    let detector = rest.split(' ').next().expect("a detector");
    (model.to_owned(), detector.to_owned())
}

/// Whether `replica` delivered a firing Slack message about each of PSI and
/// KS of `model-1`.
fn fired_both(receiver: &WebhookReceiver, replica: &str) -> bool {
    let fired: BTreeSet<(String, String)> = receiver
        .received(&format!("{replica}/slack"))
        .iter()
        .filter(|r| r.status == 200)
        .map(slack_text)
        .filter(|text| text.starts_with("[FIRING]"))
        .map(|text| slack_alert(&text))
        .collect();
    ["psi", "ks"]
        .iter()
        .all(|d| fired.contains(&("model-1".to_owned(), (*d).to_owned())))
}

/// The repeats of `model-1`'s PSI alert that `replica` delivered to Slack.
fn psi_repeats(receiver: &WebhookReceiver, replica: &str) -> Vec<Received> {
    receiver
        .received(&format!("{replica}/slack"))
        .into_iter()
        .filter(|r| r.status == 200)
        .filter(|r| {
            let text = slack_text(r);
            text.starts_with("[FIRING (repeat)]") && slack_alert(&text).1 == "psi"
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_send_the_same_ids_so_receivers_act_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let client = http_client();
    let receiver = WebhookReceiver::start(&[], None).await;
    let (_simulate, prometheus) =
        start_drifting_stack(dir.path(), Duration::from_secs(DRIFT_AFTER_SECS), &client).await;
    let config = sidecar_config(&prometheus.url(), &receiver.url);
    let ports = [free_port(), free_port()];
    let a = start_replica(dir.path(), &config, "a", ports[0]);
    let mut b = start_replica(dir.path(), &config, "b", ports[1]);
    a.wait_ready(&client).await;
    b.wait_ready(&client).await;

    // The drift is decided within a minute or so of its start; both
    // replicas tell Slack about PSI and KS.
    receiver
        .wait_until_within(
            "both replicas' firing Slack messages about model-1's psi and ks",
            Duration::from_secs(180),
            |r| REPLICAS.iter().all(|replica| fired_both(r, replica)),
        )
        .await;

    // Replica b dies mid-episode, and stays down until a has sent the next
    // repeat of PSI, which b misses.
    b.process.kill();
    let repeats_before = psi_repeats(&receiver, "a").len();
    let b_repeats = psi_repeats(&receiver, "b").len();
    receiver
        .wait_until_within(
            "replica a's next repeat of psi",
            Duration::from_secs(30),
            |r| psi_repeats(r, "a").len() > repeats_before,
        )
        .await;
    assert_eq!(psi_repeats(&receiver, "b").len(), b_repeats, "b was down");
    b = start_replica(dir.path(), &config, "b", ports[1]);

    // Back on its storage, b sends the repeat it missed, late, and the next
    // one with a; in the end both have sent the same ids to each receiver.
    receiver
        .wait_until_within(
            "replica b's missed and next repeats of psi, and both replicas' ids alike",
            Duration::from_secs(60),
            |r| {
                psi_repeats(r, "b").len() >= b_repeats + 2
                    && ["slack", "am", "retrain"]
                        .iter()
                        .all(|kind| ids(r, "a", kind) == ids(r, "b", kind))
            },
        )
        .await;
    let log = || format!("replica b's log:\n{}", b.process.log_text());

    // Raw, every id came from both replicas: a (never restarted) once, b at
    // least once (a notification delivered just before the kill may be
    // delivered again). Deduplicated, one request per id.
    for kind in ["slack", "am", "retrain"] {
        let paths = paths(kind, &REPLICAS);
        let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
        let deduplicated = receiver.deduplicated(&paths);
        assert!(!deduplicated.is_empty(), "{kind}: nothing delivered");
        for (first, all) in &deduplicated {
            let from = |replica: &str| {
                let path = format!("{replica}/{kind}");
                all.iter().filter(|r| r.path == path).count()
            };
            assert!(
                from("a") == 1 && from("b") >= 1,
                "{kind} {}: {} from a, {} from b; {}",
                first.id,
                from("a"),
                from("b"),
                log()
            );
        }
        let raw: usize = deduplicated.iter().map(|(_, all)| all.len()).sum();
        assert!(raw >= 2 * deduplicated.len(), "{kind}: {raw} requests");
        eprintln!(
            "{kind}: {raw} requests, {} after deduplication",
            deduplicated.len()
        );
    }

    // Slack: one firing message per alert, and a's repeats (b's among them).
    let slack = receiver.deduplicated(&["a/slack", "b/slack"]);
    let mut firing: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut repeats: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (request, _) in &slack {
        let text = slack_text(request);
        let counts = if text.starts_with("[FIRING]") {
            &mut firing
        } else {
            assert!(text.starts_with("[FIRING (repeat)]"), "{text}");
            &mut repeats
        };
        *counts.entry(slack_alert(&text)).or_default() += 1;
    }
    for (alert, count) in &firing {
        assert_eq!(*count, 1, "firing Slack messages about {alert:?}");
    }
    let psi = ("model-1".to_owned(), "psi".to_owned());
    assert!(firing.contains_key(&psi), "{firing:?}");
    assert_eq!(
        repeats.get(&psi).copied(),
        Some(psi_repeats(&receiver, "a").len()),
        "psi's repeats after deduplication are a's"
    );

    // Alertmanager format: one firing alert per model (PSI only), repeats
    // aside.
    let mut alerts: BTreeMap<String, usize> = BTreeMap::new();
    for (request, _) in receiver.deduplicated(&["a/am", "b/am"]) {
        let body: Value = serde_json::from_str(&request.body).expect("alertmanager JSON");
        let alert = &body["alerts"][0];
        let summary = alert["annotations"]["summary"].as_str().unwrap_or_default();
        if summary.starts_with("[FIRING]") {
            let model = alert["labels"]["model"].as_str().unwrap().to_owned();
            *alerts.entry(model).or_default() += 1;
        }
    }
    assert_eq!(alerts.get("model-1"), Some(&1), "{alerts:?}");
    assert!(alerts.values().all(|n| *n == 1), "{alerts:?}");

    // The retrain trigger: one call per model and episode, after
    // deduplication; its body names the id it was sent with, and is the
    // same from both replicas (its times are evaluation times).
    let retrain = receiver.deduplicated(&["a/retrain", "b/retrain"]);
    let models: Vec<(String, String)> = retrain
        .iter()
        .map(|(request, all)| {
            let call: Value = serde_json::from_str(&request.body).expect("template JSON");
            assert_eq!(call["id"], request.id.as_str());
            assert!(all.iter().all(|r| r.body == request.body), "same body");
            (
                call["model"].as_str().unwrap().to_owned(),
                call["starts_at"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let distinct: BTreeSet<&(String, String)> = models.iter().collect();
    assert_eq!(distinct.len(), models.len(), "{models:?}");
    assert!(
        models.iter().any(|(model, _)| model == "model-1"),
        "{models:?}"
    );
}
