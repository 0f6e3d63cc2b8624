//! Alerts that say what moved, with real processes: `model-monitor simulate`
//! serves three models (`model-1`'s confidence drifts down and widens, its
//! latency grows), a real Prometheus scrapes them, and `model-monitor run`
//! notifies a Slack, an Alertmanager-format and a template receiver. The
//! three bodies of one alert carry the same explanation, naming buckets
//! that moved down, and `/api/v1/status` shows it for the drifting model
//! only.

use std::time::Duration;

use serde_json::Value;

use crate::support::process::{get, http_client, wait_for};
use crate::support::sidecar::{Sidecar, SidecarConfig, start_drifting_stack, status_detectors};
use crate::support::webhook_receiver::WebhookReceiver;

const DRIFT_AFTER_SECS: u64 = 45;

fn sidecar_config(prometheus_url: &str, webhook_url: &str) -> SidecarConfig {
    let body = r#"{"model": {{ alert.model | tojson }}, "detector": {{ alert.detector | tojson }}, "explanation": {{ alert.explanation | tojson }}, "detail": {{ alert.explanation_detail | tojson }}}"#;
    SidecarConfig::simulated(prometheus_url, "explain")
        // As in end_to_end.rs: chi-square's p-value on sparse buckets needs
        // a few hundred observations per window.
        .set("MIN_SAMPLES", "300")
        // The fixed distance thresholds false-alarm on small windows; the
        // stationary models must have no alert, so no explanation.
        .without_detectors(&["jensen_shannon", "hellinger", "wasserstein", "quantile_slo"])
        .with_webhooks(&format!(
            r#"  - {{name: slack, format: slack, url: '{webhook_url}/slack', match: {{signal: confidence}}}}
  - {{name: am, format: alertmanager, url: '{webhook_url}/am', match: {{signal: confidence}}}}
  - name: retrain
    format: template
    url: '{webhook_url}/retrain'
    match: {{signal: confidence}}
    body: '{body}'
"#
        ))
}

/// The firing Alertmanager alerts of `model-1`, by detector: the
/// `explanation` annotation and the parsed `explanation_json`.
fn alertmanager_explanations(receiver: &WebhookReceiver) -> Vec<(String, String, Value)> {
    let mut found = Vec::new();
    for request in receiver.received("am") {
        let body: Value = serde_json::from_str(&request.body).expect("alertmanager JSON");
        for alert in body["alerts"].as_array().expect("alerts") {
            if alert["labels"]["model"] != "model-1" || alert["status"] != "firing" {
                continue;
            }
            let annotations = &alert["annotations"];
            let line = annotations["explanation"]
                .as_str()
                .unwrap_or_else(|| panic!("no explanation annotation: {alert}"));
            let detail = annotations["explanation_json"]
                .as_str()
                .expect("explanation_json annotation");
            found.push((
                alert["labels"]["detector"].as_str().unwrap().to_owned(),
                line.to_owned(),
                serde_json::from_str(detail).expect("explanation_json is JSON"),
            ));
        }
    }
    found
}

/// The (detector, second line of `text`) of each Slack message.
fn slack_explanations(receiver: &WebhookReceiver) -> Vec<(String, String)> {
    receiver
        .received("slack")
        .iter()
        .map(|request| {
            let body: Value = serde_json::from_str(&request.body).expect("slack JSON");
            let text = body["text"].as_str().expect("text");
            let (_, line) = text
                .split_once('\n')
                .unwrap_or_else(|| panic!("no explanation line in {text:?}"));
            let detector = body["blocks"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|block| block["fields"].as_array().cloned().unwrap_or_default())
                .find_map(|field| {
                    field["text"]
                        .as_str()
                        .and_then(|t| t.strip_prefix("*Detector*\n"))
                        .map(str::to_owned)
                })
                .expect("a detector field");
            let shown = body["blocks"].to_string();
            assert!(shown.contains("*What moved*"), "{shown}");
            (detector, line.to_owned())
        })
        .collect()
}

/// Checks that an explanation object says the confidence mass moved down:
/// every bucket that gained share lies below every bucket that lost share,
/// and the mean and median went down.
fn assert_moved_down(detail: &Value, what: &str) {
    let buckets = detail["buckets"].as_array().expect("buckets");
    assert!(!buckets.is_empty(), "{what}: no bucket named: {detail}");
    let share = |bucket: &Value, key: &str| bucket[key].as_f64().expect("a share");
    let (gained, lost): (Vec<&Value>, Vec<&Value>) = buckets
        .iter()
        .partition(|b| share(b, "current_share") > share(b, "reference_share"));
    assert!(!lost.is_empty(), "{what}: no bucket lost share: {detail}");
    let lowest_lost = lost
        .iter()
        .map(|b| b["lower"].as_f64().unwrap_or(f64::NEG_INFINITY))
        .fold(f64::INFINITY, f64::min);
    for bucket in gained {
        let upper = bucket["upper"].as_f64().unwrap_or(f64::INFINITY);
        assert!(
            upper <= lowest_lost,
            "{what}: {bucket} gained share above a bucket that lost some: {detail}"
        );
    }
    assert_eq!(detail["mean"]["direction"], "down", "{what}: {detail}");
    assert_eq!(detail["p50"]["direction"], "down", "{what}: {detail}");
}

/// The `explanation` of each detector of one model signal in the status
/// API (`Value::Null` where there is none).
fn status_explanations(status: &Value, model: &str, signal: &str) -> Vec<(String, Value)> {
    status_detectors(status, model, signal)
        .into_iter()
        .map(|d| {
            (
                d["detector"].as_str().unwrap().to_owned(),
                d["explanation"].clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_notifications_and_the_status_api_say_what_moved() {
    let dir = tempfile::tempdir().expect("temp dir");
    let client = http_client();
    let receiver = WebhookReceiver::start(&[], None).await;
    let (_simulate, prometheus) =
        start_drifting_stack(dir.path(), Duration::from_secs(DRIFT_AFTER_SECS), &client).await;
    let sidecar = Sidecar::start(
        dir.path(),
        &sidecar_config(&prometheus.url(), &receiver.url),
    );
    let status_url = sidecar.url("/api/v1/status");

    // The drift is decided within a minute or so of its start.
    let status = wait_for(
        "psi's drift notification to every receiver and its explanation in the status API",
        Duration::from_secs(150),
        || async {
            let notified = |path: &str| !receiver.received(path).is_empty();
            if !(notified("slack") && notified("am") && notified("retrain")) {
                return None;
            }
            let psi_notified = alertmanager_explanations(&receiver)
                .iter()
                .any(|(detector, _, _)| detector == "psi");
            let (_, text) = get(&client, &status_url).await?;
            let status: Value = serde_json::from_str(&text).ok()?;
            let psi_explained = status_explanations(&status, "model-1", "confidence")
                .iter()
                .any(|(detector, explanation)| detector == "psi" && !explanation.is_null());
            (psi_notified && psi_explained).then_some(status)
        },
    )
    .await;

    // Alertmanager format: the line and the object, per detector, with the
    // detector's own ranking.
    let alertmanager = alertmanager_explanations(&receiver);
    for (detector, line, detail) in &alertmanager {
        eprintln!("{detector}: {line}");
        let method = match detector.as_str() {
            "psi" | "ks" | "chi_square" => detector.as_str(),
            _ => "share",
        };
        assert_eq!(detail["method"], method, "{detector}: {detail}");
        assert_eq!(detail["summary"], line.as_str(), "{detector}");
        assert!(
            line.starts_with("confidence mass moved from "),
            "{detector}: {line}"
        );
        // The quantile the line names moved down: "; p50 0.86 -> 0.70".
        let (_, quantile) = line.rsplit_once("; p").expect("a quantile in the line");
        let (before, after) = quantile
            .split_once(' ')
            .and_then(|(_, values)| values.split_once(" -> "))
            .expect("before -> after");
        let number = |text: &str| text.parse::<f64>().expect("a number");
        assert!(number(after) < number(before), "{detector}: {line}");
        assert_eq!(detail["cdf_gap"].is_object(), detector == "ks", "{detail}");
        assert_moved_down(detail, detector);
    }

    // Slack: the same line as the Alertmanager message of the same alert.
    for (detector, line) in slack_explanations(&receiver) {
        let same = alertmanager.iter().find(|(d, _, _)| *d == detector);
        if let Some((_, expected, _)) = same {
            assert_eq!(&line, expected, "slack and alertmanager of {detector}");
        }
        assert!(line.starts_with("confidence mass moved from "), "{line}");
    }

    // The retrain trigger: one call (its cooldown), with the explanation as
    // template variables.
    let retrain = receiver.received("retrain");
    let call: Value = serde_json::from_str(&retrain[0].body).expect("template body is JSON");
    assert_eq!(call["model"], "model-1");
    let detector = call["detector"].as_str().unwrap();
    assert_moved_down(&call["detail"], "template");
    assert_eq!(call["explanation"], call["detail"]["summary"]);
    if let Some((_, line, _)) = alertmanager.iter().find(|(d, _, _)| d == detector) {
        assert_eq!(call["explanation"], line.as_str());
    }

    // The status API: the drifting model's deciding detectors explain, the
    // stationary ones have no explanation at all.
    for (detector, explanation) in status_explanations(&status, "model-1", "confidence") {
        if !explanation.is_null() {
            assert_moved_down(&explanation, &format!("status {detector}"));
        }
    }
    for model in ["model-0", "model-2"] {
        for signal in ["confidence", "latency"] {
            let detectors = status_explanations(&status, model, signal);
            assert!(!detectors.is_empty(), "{model} {signal} in the status API");
            let explained: Vec<_> = detectors
                .into_iter()
                .filter(|(_, explanation)| !explanation.is_null())
                .collect();
            assert_eq!(explained, Vec::new(), "{model} {signal}");
        }
    }
}
