//! Alert delivery with real HTTP: a fake PromQL API makes models drift, an
//! in-test receiver records every request (and verifies signatures and
//! Alertmanager payloads), and the sidecar runs in-process or as the built
//! binary, which one test SIGKILLs while its receiver is down.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use model_monitor::alerting::{AlertNotice, Transition};
use model_monitor::engine::{ModelMonitor, MonitorBuilder, MonitorEvent};
use model_monitor::sinks::webhooks::Notifier;
use model_monitor::sinks::webhooks::payload::{self, Links};
use model_monitor::telemetry::SelfMetrics;
use serde_json::{Value, json};

use crate::support::exposition::{fetch, sample};
use crate::support::process::{free_port, get as http_get, http_client, wait_for};
use crate::support::prometheus::promtool_check_metrics;
use crate::support::promql::{FakePromql, drifting_models};
use crate::support::sidecar::{Sidecar, SidecarConfig};
use crate::support::webhook_receiver::{Behaviour, Checks, WebhookReceiver};

/// A Standard Webhooks secret (`whsec_` + base64).
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// A token in a receiver URL, which must never show up anywhere.
const URL_TOKEN: &str = "T0KEN-IN-THE-URL";

// ----- a fake PromQL API whose models drift on demand -----

async fn start_prom(models: &[&str], drifting: &[&str]) -> (String, FakePromql) {
    let fake = FakePromql::start(drifting_models(models, drifting)).await;
    (fake.url.clone(), fake)
}

// ----- Alertmanager's webhook message, as Go defines it -----

/// `notify/webhook.Message`: `*template.Data` plus version, groupKey and
/// truncatedAlerts. Unknown fields are refused, as a strict receiver would.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct AmMessage {
    receiver: String,
    status: String,
    alerts: Vec<AmAlert>,
    group_labels: BTreeMap<String, String>,
    common_labels: BTreeMap<String, String>,
    common_annotations: BTreeMap<String, String>,
    #[serde(rename = "externalURL")]
    external_url: String,
    version: String,
    group_key: String,
    truncated_alerts: u64,
}

/// `template.Alert`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct AmAlert {
    status: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    starts_at: chrono::DateTime<chrono::FixedOffset>,
    ends_at: chrono::DateTime<chrono::FixedOffset>,
    #[serde(rename = "generatorURL")]
    generator_url: String,
    fingerprint: String,
}

// ----- a receiver that verifies what it records -----

/// Signatures verify with [`SECRET`]; what is sent to `am` and `flaky` is an
/// Alertmanager message.
const CHECKS: Checks = Checks {
    secret: SECRET,
    payload: |path, body| {
        (path == "am" || path == "flaky").then(|| serde_json::from_str::<AmMessage>(body).is_ok())
    },
};

async fn start_receiver(behaviour: &[(&str, Behaviour)]) -> WebhookReceiver {
    WebhookReceiver::start(behaviour, Some(CHECKS)).await
}

// ----- the sidecar -----

fn config(prom: &str, alerting: &str, webhooks: &str) -> SidecarConfig {
    SidecarConfig::fake_source_alerting(prom, alerting).with_webhooks(webhooks)
}

struct InProcess {
    monitor: ModelMonitor,
    notifier: Arc<Notifier>,
    _storage: tempfile::TempDir,
}

impl InProcess {
    async fn start(config: &SidecarConfig, interval: Duration) -> InProcess {
        let config = config.parse();
        let storage = tempfile::tempdir().unwrap();
        let metrics = Arc::new(SelfMetrics::new());
        let notifier = Arc::new(Notifier::open(&config, storage.path(), metrics.clone()).unwrap());
        notifier.start().unwrap();
        let monitor = MonitorBuilder::default()
            .with_sampling_interval(interval)
            .with_config(config)
            .with_self_metrics(metrics)
            .with_alert_sink(notifier.clone())
            .spawn()
            .unwrap();
        InProcess {
            monitor,
            notifier,
            _storage: storage,
        }
    }

    async fn fetch(&self, path: &str) -> String {
        fetch(&self.monitor, path).await.1
    }

    async fn stop(self) {
        self.monitor.stop().await;
        self.notifier.stop().await;
    }
}

fn deliveries(metrics: &str, receiver: &str, outcome: &str) -> f64 {
    sample(
        metrics,
        "model_monitor_webhook_deliveries_total",
        &[("receiver", receiver), ("outcome", outcome)],
    )
    .unwrap_or_else(|| panic!("deliveries of {receiver} {outcome} exported:\n{metrics}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flaky_receiver_gets_each_notification_once_and_bad_receivers_delay_no_one() {
    let (prom, _fake) = start_prom(&["a", "b"], &["a", "b"]).await;
    let hub = start_receiver(&[
        ("flaky", Behaviour::FailThreeTimes),
        ("reject", Behaviour::Reject),
        ("hang", Behaviour::Hang),
    ])
    .await;
    let url = &hub.url;
    let webhooks = format!(
        r#"  - {{name: flaky, format: alertmanager, url: '{url}/flaky', secret: '{SECRET}', min_backoff: 10ms, max_backoff: 50ms}}
  - {{name: rejecting, format: slack, url: '{url}/reject?token={URL_TOKEN}'}}
  - name: hanging
    format: template
    url: '{url}/hang'
    timeout: 200ms
    max_age: 3s
    min_backoff: 10ms
    max_backoff: 20ms
    body: '{{"model": {{{{ alert.model | tojson }}}}}}'
"#
    );
    let sidecar = InProcess::start(
        &config(&prom, "{for: 1}", &webhooks),
        Duration::from_millis(100),
    )
    .await;

    // Two drifting models, two detectors: four alerts, so four notifications
    // for each receiver (two for the template receiver: one per model per cooldown).
    hub.wait_until("four notifications delivered to flaky", |hub| {
        hub.delivered("flaky").len() >= 4
    })
    .await;
    let metrics = sidecar.fetch("/metrics").await;
    assert!(
        sample(
            &metrics,
            "model_monitor_webhook_queue_depth",
            &[("receiver", "hanging")]
        )
        .is_some_and(|depth| depth >= 1.0),
        "the hanging receiver still has work while flaky is done:\n{metrics}"
    );
    wait_for(
        "expired and dead-lettered notifications",
        Duration::from_secs(20),
        || async {
            let metrics = sidecar.fetch("/metrics").await;
            // The expiry is counted before its dead letter is written and
            // the gauge refreshed, so the gauge is waited for too.
            let dead_letters = |receiver: &str| {
                sample(
                    &metrics,
                    "model_monitor_webhook_dead_letters",
                    &[("receiver", receiver)],
                )
            };
            (deliveries(&metrics, "hanging", "expired") == 2.0
                && deliveries(&metrics, "rejecting", "dead_letter") == 4.0
                && dead_letters("hanging") == Some(2.0)
                && dead_letters("rejecting") == Some(4.0))
            .then_some(())
        },
    )
    .await;

    // Exactly once per webhook-id, after three failures each.
    let delivered = hub.delivered("flaky");
    assert_eq!(delivered.len(), 4, "{delivered:?}");
    assert!(delivered.values().all(|n| *n == 1), "{delivered:?}");
    let flaky = hub.received("flaky");
    assert_eq!(flaky.len(), 16, "four attempts per notification");
    assert!(
        flaky.iter().all(|r| r.signature_ok == Some(true)),
        "every attempt verifies"
    );
    assert!(
        flaky.iter().all(|r| r.payload_ok == Some(true)),
        "every body is an Alertmanager message"
    );
    let ids: BTreeSet<&str> = flaky.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids.len(),
        4,
        "one webhook-id per notification across retries"
    );
    // Unsigned receivers carry a webhook-id too, and no signature.
    assert!(
        hub.received("reject")
            .iter()
            .all(|r| r.signature_ok.is_none() && r.id.starts_with("msg_"))
    );

    let metrics = sidecar.fetch("/metrics").await;
    assert_eq!(deliveries(&metrics, "flaky", "success"), 4.0);
    assert_eq!(deliveries(&metrics, "flaky", "failure"), 12.0);
    assert_eq!(deliveries(&metrics, "flaky", "dead_letter"), 0.0);
    assert_eq!(deliveries(&metrics, "rejecting", "success"), 0.0);
    assert!(deliveries(&metrics, "hanging", "failure") >= 1.0);
    for (receiver, dead) in [("flaky", 0.0), ("rejecting", 4.0), ("hanging", 2.0)] {
        assert_eq!(
            sample(
                &metrics,
                "model_monitor_webhook_dead_letters",
                &[("receiver", receiver)]
            ),
            Some(dead),
            "{receiver}"
        );
        assert_eq!(
            sample(
                &metrics,
                "model_monitor_webhook_queue_depth",
                &[("receiver", receiver)]
            ),
            Some(0.0),
            "{receiver}"
        );
        assert_eq!(
            sample(
                &metrics,
                "model_monitor_webhook_oldest_pending_age_seconds",
                &[("receiver", receiver)]
            ),
            Some(0.0),
            "{receiver}"
        );
    }
    assert_eq!(
        sample(&metrics, "model_monitor_alerts", &[("state", "firing")]),
        Some(4.0)
    );
    assert_eq!(
        sample(&metrics, "model_monitor_alerts", &[("state", "pending")]),
        Some(0.0)
    );
    assert!(
        metrics.contains(
            "model_monitor_webhook_delivery_duration_seconds_count{receiver=\"flaky\"} 16"
        ),
        "{metrics}"
    );
    if let Err(report) = promtool_check_metrics(&metrics) {
        panic!("{report}\n{metrics}");
    }

    // The status API lists alerts and dead letters, and no URL or secret.
    let status = sidecar.fetch("/api/v1/status").await;
    let status_json: Value = serde_json::from_str(&status).unwrap();
    let alerts = status_json["data"]["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 4);
    assert!(alerts.iter().all(|a| a["state"] == "firing"), "{alerts:?}");
    let receivers = status_json["data"]["webhooks"]["receivers"]
        .as_array()
        .unwrap();
    let rejecting = receivers.iter().find(|r| r["name"] == "rejecting").unwrap();
    let letters = rejecting["dead_letters"].as_array().unwrap();
    assert_eq!(letters.len(), 4);
    assert!(
        letters
            .iter()
            .all(|l| l["reason"] == "http 400: no such channel"),
        "{letters:?}"
    );
    let hanging = receivers.iter().find(|r| r["name"] == "hanging").unwrap();
    assert!(
        hanging["dead_letters"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("expired after"),
        "{hanging}"
    );
    for secret in [URL_TOKEN, SECRET, "/reject", "/flaky"] {
        assert!(!status.contains(secret), "status shows {secret}: {status}");
    }
    sidecar.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_verify_and_a_tampered_body_or_an_old_timestamp_fails() {
    let (prom, _fake) = start_prom(&["a"], &["a"]).await;
    let hub = start_receiver(&[]).await;
    let webhooks = format!(
        "  - {{name: am, format: alertmanager, url: '{}/am', secret: '{SECRET}', on: [drift], match: {{detector: psi}}}}\n",
        hub.url
    );
    let sidecar =
        InProcess::start(&config(&prom, "{}", &webhooks), Duration::from_millis(100)).await;
    hub.wait_until("one notification", |hub| !hub.delivered("am").is_empty())
        .await;
    sidecar.stop().await;
    let request = hub.received("am").remove(0);
    let verifier = standardwebhooks::Webhook::new(SECRET).unwrap();
    verifier
        .verify(request.body.as_bytes(), &request.headers)
        .expect("the signature verifies");
    let tampered = request.body.replacen("\"a\"", "\"b\"", 1);
    assert_ne!(tampered, request.body);
    assert!(matches!(
        verifier.verify(tampered.as_bytes(), &request.headers),
        Err(standardwebhooks::WebhookError::InvalidSignature)
    ));
    let mut old = request.headers.clone();
    let ten_minutes_ago = chrono::Utc::now().timestamp() - 600;
    old.insert(
        "webhook-timestamp",
        ten_minutes_ago.to_string().parse().unwrap(),
    );
    let signature = verifier
        .sign(&request.id, ten_minutes_ago, request.body.as_bytes())
        .unwrap();
    old.insert("webhook-signature", signature.parse().unwrap());
    assert!(matches!(
        verifier.verify(request.body.as_bytes(), &old),
        Err(standardwebhooks::WebhookError::TimestampTooOldError)
    ));
    let other = standardwebhooks::Webhook::new("whsec_c2VjcmV0LW9mLXNvbWVvbmUtZWxzZQ==").unwrap();
    assert!(
        other
            .verify(request.body.as_bytes(), &request.headers)
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_drift_episode_triggers_one_retrain_per_cooldown_and_one_resolution() {
    let (prom, fake) = start_prom(&["fraud", "steady"], &["fraud"]).await;
    let hub = start_receiver(&[]).await;
    let url = &hub.url;
    let webhooks = format!(
        r#"  - {{name: slack, format: slack, url: '{url}/slack', send_resolved: true}}
  - name: retrain
    format: template
    url: '{url}/retrain'
    secret: '{SECRET}'
    on: [drift]
    cooldown: 1h
    send_resolved: true
    headers: {{Authorization: Bearer not-logged}}
    body: '{{"status": {{{{ alert.status | tojson }}}}, "model": {{{{ alert.model | tojson }}}}, "version": {{{{ alert.version | tojson }}}}, "id": {{{{ id | tojson }}}}}}'
"#
    );
    let sidecar = InProcess::start(
        &config(
            &prom,
            "{for: 2, resolve_after: 2, repeat_interval: 300ms}",
            &webhooks,
        ),
        Duration::from_millis(50),
    )
    .await;
    // Many drifting evaluations: the Slack receiver sees repeats.
    let mut events = sidecar.monitor.subscribe();
    let mut evaluations = 0;
    let mut repeats = 0;
    while evaluations < 30 {
        match events.recv().await.unwrap() {
            MonitorEvent::EvaluationCompleted { .. } => evaluations += 1,
            MonitorEvent::DriftAlert { repeat: true, .. } => repeats += 1,
            _ => {}
        }
    }
    assert!(repeats >= 2, "repeats while firing: {repeats}");
    fake.answer_with(drifting_models(&["fraud", "steady"], &[]));
    hub.wait_until("the retrain resolution", |hub| {
        hub.delivered("retrain").len() >= 2
    })
    .await;
    hub.wait_until("both slack resolutions", |hub| {
        hub.received("slack")
            .iter()
            .filter(|r| r.body.contains("RESOLVED"))
            .count()
            >= 2
    })
    .await;
    // A notice is delivered as soon as it is stored, which can be before
    // its evaluation publishes the snapshot: the status API is read after
    // the next evaluation that completes from here.
    let mut from_here = events.resubscribe();
    while !matches!(
        from_here.recv().await.unwrap(),
        MonitorEvent::EvaluationCompleted { .. }
    ) {}
    let status: Value = serde_json::from_str(&sidecar.fetch("/api/v1/status").await).unwrap();
    assert_eq!(status["data"]["alerts"], json!([]));
    sidecar.stop().await;

    let retrain: Vec<Value> = hub
        .received("retrain")
        .iter()
        .map(|r| {
            assert_eq!(r.signature_ok, Some(true));
            assert_eq!(r.headers["authorization"], "Bearer not-logged");
            serde_json::from_str(&r.body).unwrap()
        })
        .collect();
    assert_eq!(retrain.len(), 2, "{retrain:?}");
    assert_eq!(retrain[0]["status"], "firing");
    assert_eq!(retrain[0]["model"], "fraud");
    assert_eq!(retrain[0]["version"], "v1");
    assert_eq!(retrain[1]["status"], "resolved");
    assert_eq!(retrain[1]["model"], "fraud");
    assert_ne!(retrain[0]["id"], retrain[1]["id"]);
    let slack = hub.received("slack");
    let firing = slack.iter().filter(|r| r.body.contains("[FIRING")).count();
    assert!(firing >= 4, "two alerts, each fired and repeated: {firing}");
    assert!(slack.iter().all(|r| !r.body.contains("steady")));
    // Firing and repeated messages say what moved; so do resolutions, from
    // the clean decision of the detector that had the alert.
    for request in &slack {
        let text = serde_json::from_str::<Value>(&request.body).unwrap()["text"].to_string();
        let moved = if text.contains("RESOLVED") {
            "confidence bucket shares unchanged"
        } else {
            "confidence mass moved from "
        };
        assert!(text.contains(moved), "{text}");
        assert!(request.body.contains("*What moved*"), "{}", request.body);
    }
}

#[test]
fn slack_and_alertmanager_payloads_match_their_golden_files() {
    let links = Links {
        prometheus: Some(url::Url::parse("https://prometheus.example").unwrap()),
        grafana: Some(url::Url::parse("https://grafana.example/d/models").unwrap()),
    };
    let firing = payload::sample_notice();
    let resolved = AlertNotice {
        transition: Transition::Resolved,
        ended_at: Some(firing.at + chrono::Duration::minutes(30)),
        at: firing.at + chrono::Duration::minutes(30),
        ..payload::sample_notice()
    };
    let cases = [
        ("slack.json", payload::slack(&firing, &links)),
        ("slack-resolved.json", payload::slack(&resolved, &links)),
        (
            "alertmanager.json",
            payload::alertmanager("platform", &firing, &links),
        ),
        (
            "alertmanager-resolved.json",
            payload::alertmanager("platform", &resolved, &links),
        ),
    ];
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    for (file, value) in cases {
        let text = serde_json::to_string_pretty(&value).unwrap() + "\n";
        let path = dir.join(file);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &text).unwrap();
        }
        let golden = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
        assert_eq!(
            text, golden,
            "{file} differs from its golden file (UPDATE_GOLDEN=1 rewrites it)"
        );
        if file.starts_with("alertmanager") {
            let message: AmMessage =
                serde_json::from_str(&golden).expect("an Alertmanager message");
            assert_eq!(message.version, "4");
            assert_eq!(message.alerts.len(), 1);
            assert_eq!(message.alerts[0].fingerprint.len(), 16);
        }
    }
}

// ----- the built binary, killed while its receiver is down -----

fn status_ids(status: &Value) -> BTreeMap<String, Vec<String>> {
    status["data"]["webhooks"]["receivers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_owned(),
                r["pending"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| n["id"].as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_the_receiver_is_down_loses_no_notification() {
    let dir = tempfile::tempdir().unwrap();
    let (prom, _fake) = start_prom(&["a", "b"], &["a", "b"]).await;
    let hub = start_receiver(&[("am", Behaviour::Down), ("retrain", Behaviour::Down)]).await;
    let url = &hub.url;
    let webhooks = format!(
        r#"  - {{name: am, format: alertmanager, url: '{url}/am?token={URL_TOKEN}', secret: '{SECRET}', send_resolved: true, min_backoff: 50ms, max_backoff: 200ms}}
  - name: retrain
    format: template
    url: '{url}/retrain'
    secret: '{SECRET}'
    cooldown: 6h
    min_backoff: 50ms
    max_backoff: 200ms
    body: '{{"model": {{{{ alert.model | tojson }}}}, "id": {{{{ id | tojson }}}}}}'
"#
    );
    let config = config(&prom, "{for: 1}", &webhooks);
    let storage = dir.path().join("data/outbox");
    let client = http_client();
    let start = |name: &str| {
        let sidecar = Sidecar::start_as(name, dir.path(), &config, free_port(), &storage);
        let url = sidecar.url("");
        (sidecar, url)
    };

    let (mut first, first_url) = start("first");
    // Four alerts for am, one retrain per model: six notifications stored
    // while every attempt gets a 503.
    let pending = wait_for(
        "six pending notifications",
        Duration::from_secs(30),
        || async {
            let (_, text) = http_get(&client, &format!("{first_url}/api/v1/status")).await?;
            let ids = status_ids(&serde_json::from_str(&text).ok()?);
            (ids.get("am")?.len() == 4 && ids.get("retrain")?.len() == 2).then_some(ids)
        },
    )
    .await;
    hub.wait_until("a failed attempt", |hub| !hub.received("am").is_empty())
        .await;
    first.process.kill();
    assert!(hub.delivered("am").is_empty() && hub.delivered("retrain").is_empty());

    hub.set("am", Behaviour::Accept);
    hub.set("retrain", Behaviour::Accept);
    let (mut second, second_url) = start("second");
    hub.wait_until("every stored notification delivered", |hub| {
        hub.delivered("am").len() >= 4 && hub.delivered("retrain").len() >= 2
    })
    .await;
    // Let the restarted sidecar evaluate a few times: the restored alert
    // state and cooldowns must not notify again.
    wait_for(
        "three evaluations after the restart",
        Duration::from_secs(30),
        || async {
            let (_, text) = http_get(&client, &format!("{second_url}/metrics")).await?;
            sample(&text, "model_monitor_evaluations_total", &[])
                .filter(|n| *n >= 3.0)
                .map(|_| text)
        },
    )
    .await;
    let metrics = http_get(&client, &format!("{second_url}/metrics"))
        .await
        .unwrap()
        .1;
    for receiver in ["am", "retrain"] {
        let delivered = hub.delivered(receiver);
        let stored: BTreeSet<&String> = pending[receiver].iter().collect();
        let got: BTreeSet<&String> = delivered.keys().collect();
        assert_eq!(
            got, stored,
            "{receiver}: delivered exactly the stored notifications"
        );
        assert!(
            delivered.values().all(|n| *n == 1),
            "{receiver}: {delivered:?}"
        );
        assert!(
            hub.received(receiver)
                .iter()
                .all(|r| r.signature_ok == Some(true))
        );
        assert_eq!(
            sample(
                &metrics,
                "model_monitor_webhook_queue_depth",
                &[("receiver", receiver)]
            ),
            Some(0.0)
        );
    }
    let attempts_down = hub
        .received("am")
        .iter()
        .filter(|r| r.status == 503)
        .count();
    eprintln!(
        "crash test: stored {} notifications before SIGKILL ({} failed attempts while down), delivered {} after restart, {} duplicates",
        pending.values().map(Vec::len).sum::<usize>(),
        attempts_down,
        hub.delivered("am").len() + hub.delivered("retrain").len(),
        hub.delivered("am")
            .values()
            .chain(hub.delivered("retrain").values())
            .map(|n| n - 1)
            .sum::<usize>(),
    );
    let exit = second
        .process
        .signal_and_wait("TERM", Duration::from_secs(15));
    assert!(exit.is_some_and(|s| s.success()), "graceful exit: {exit:?}");
    for log in [first.process.log_text(), second.process.log_text()] {
        assert!(!log.contains(URL_TOKEN) && !log.contains(SECRET), "{log}");
        assert!(!log.contains("/retrain"), "urls are never logged: {log}");
    }
}

#[test]
fn every_example_template_body_renders_valid_json() {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let env = |name: &str| match name {
        "SLACK_WEBHOOK_URL" => Some("https://hooks.slack.com/services/T/B/X".to_owned()),
        "MODEL_MONITOR_PROMETHEUS_URL" => Some("http://localhost:9090".to_owned()),
        _ => None,
    };
    let mut rendered = 0;
    for file in ["model-monitor.yml", "retrain.yml"] {
        let config = model_monitor::config::load_file_with_env(&examples.join(file), &env).unwrap();
        for webhook in config.webhooks.iter().filter(|w| w.body.is_some()) {
            let template = payload::Template::compile(webhook.body.as_deref().unwrap()).unwrap();
            for notice in [
                payload::sample_notice(),
                AlertNotice {
                    transition: Transition::Resolved,
                    ..payload::sample_notice()
                },
            ] {
                let context =
                    payload::template_context(&webhook.name, "msg_1", &notice, &Links::default());
                let body = template.render(&context).unwrap();
                let value: Value = serde_json::from_str(&body)
                    .unwrap_or_else(|e| panic!("{file} {}: {e}\n{body}", webhook.name));
                assert!(value.is_object());
                rendered += 1;
            }
        }
    }
    assert!(rendered >= 10, "{rendered}");
}
