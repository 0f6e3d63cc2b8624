//! Alert delivery with real HTTP: a fake PromQL API makes models drift, an
//! in-test receiver records every request (and verifies signatures and
//! Alertmanager payloads), and the sidecar runs in-process or as the built
//! binary, which one test SIGKILLs while its receiver is down.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use model_monitor::alerting::{AlertNotice, Transition};
use model_monitor::engine::{ModelMonitor, MonitorBuilder, MonitorEvent};
use model_monitor::sinks::exporter::{self, AppState};
use model_monitor::sinks::webhooks::Notifier;
use model_monitor::sinks::webhooks::payload::{self, Links};
use model_monitor::telemetry::SelfMetrics;
use serde_json::{Value, json};
use tower::ServiceExt;

use common::{Process, free_port, get as http_get, model_monitor_binary, sample, wait_for};

/// A Standard Webhooks secret (`whsec_` + base64).
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// A token in a receiver URL, which must never show up anywhere.
const URL_TOKEN: &str = "T0KEN-IN-THE-URL";

// ----- a fake PromQL API whose models drift on demand -----

const BOUNDS: [&str; 4] = ["0.25", "0.5", "0.75", "1"];
const STEADY: [f64; 4] = [100.0, 300.0, 700.0, 1000.0];
const SHIFTED: [f64; 4] = [400.0, 700.0, 900.0, 1000.0];

#[derive(Clone)]
struct FakeProm {
    models: Vec<String>,
    drifting: Arc<Mutex<BTreeSet<String>>>,
}

#[derive(serde::Deserialize)]
struct QueryParams {
    query: String,
}

impl FakeProm {
    fn answer(&self, query: &str) -> Response {
        let drifting = self.drifting.lock().unwrap().clone();
        let mut result = Vec::new();
        for model in &self.models {
            let counts = if !query.contains("offset") && drifting.contains(model) {
                SHIFTED
            } else {
                STEADY
            };
            for (le, count) in BOUNDS.iter().zip(counts).chain([(&"+Inf", counts[3])]) {
                result.push(json!({"metric": {"model": model, "version": "v1", "le": le}, "value": [1700000000.0, count.to_string()]}));
            }
        }
        axum::Json(json!({"status": "success", "data": {"resultType": "vector", "result": result}}))
            .into_response()
    }

    fn set_drifting(&self, models: &[&str]) {
        *self.drifting.lock().unwrap() = models.iter().map(|m| m.to_string()).collect();
    }
}

async fn start_prom(models: &[&str], drifting: &[&str]) -> (String, FakeProm) {
    let fake = FakeProm {
        models: models.iter().map(|m| m.to_string()).collect(),
        drifting: Arc::default(),
    };
    fake.set_drifting(drifting);
    let router = Router::new()
        .route(
            "/api/v1/query",
            get(
                |State(f): State<FakeProm>, Query(p): Query<QueryParams>| async move {
                    f.answer(&p.query)
                },
            )
            .post(
                |State(f): State<FakeProm>, Form(p): Form<QueryParams>| async move {
                    f.answer(&p.query)
                },
            ),
        )
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, fake)
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

// ----- a receiver that records everything -----

/// How a receiver path answers the n-th attempt (1-based) of one id.
#[derive(Clone, Copy, Debug)]
enum Behaviour {
    Accept,
    /// 503 (Retry-After: 0), 429 (Retry-After: 0), 500, then 200.
    FailThreeTimes,
    Reject,
    Hang,
    /// 503 to everything: the receiver is "down".
    Down,
}

#[derive(Debug, Clone)]
struct Received {
    path: String,
    id: String,
    body: String,
    headers: HeaderMap,
    status: u16,
    signature_ok: Option<bool>,
    alertmanager_ok: Option<bool>,
}

#[derive(Default)]
struct HubState {
    behaviour: BTreeMap<String, Behaviour>,
    attempts: BTreeMap<String, u32>,
    received: Vec<Received>,
}

#[derive(Clone)]
struct Hub {
    state: Arc<Mutex<HubState>>,
    changed: Arc<tokio::sync::watch::Sender<u64>>,
    url: String,
}

impl Hub {
    async fn start(behaviour: &[(&str, Behaviour)]) -> Hub {
        let state = HubState {
            behaviour: behaviour.iter().map(|(p, b)| (p.to_string(), *b)).collect(),
            ..HubState::default()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hub = Hub {
            state: Arc::new(Mutex::new(state)),
            changed: Arc::new(tokio::sync::watch::channel(0).0),
            url: format!("http://{}", listener.local_addr().unwrap()),
        };
        let router = Router::new()
            .route("/{path}", post(receive))
            .with_state(hub.clone());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        hub
    }

    fn set(&self, path: &str, behaviour: Behaviour) {
        self.state
            .lock()
            .unwrap()
            .behaviour
            .insert(path.to_owned(), behaviour);
    }

    fn received(&self, path: &str) -> Vec<Received> {
        self.state
            .lock()
            .unwrap()
            .received
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// Ids answered with a 2xx, with how many times each was.
    fn delivered(&self, path: &str) -> BTreeMap<String, usize> {
        let mut ids = BTreeMap::new();
        for r in self.received(path).into_iter().filter(|r| r.status < 300) {
            *ids.entry(r.id).or_insert(0) += 1;
        }
        ids
    }

    /// Waits (for a request, not a timer) until `done` holds.
    async fn wait_until(&self, what: &str, done: impl Fn(&Hub) -> bool) {
        let mut changes = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
        while !done(self) {
            tokio::time::timeout_at(deadline, changes.changed())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
                .unwrap();
        }
    }
}

async fn receive(
    State(hub): State<Hub>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let signature_ok = headers.contains_key("webhook-signature").then(|| {
        standardwebhooks::Webhook::new(SECRET)
            .unwrap()
            .verify(body.as_bytes(), &headers)
            .is_ok()
    });
    let alertmanager_ok =
        (path == "am" || path == "flaky").then(|| serde_json::from_str::<AmMessage>(&body).is_ok());
    let (behaviour, attempt) = {
        let mut state = hub.state.lock().unwrap();
        let behaviour = state
            .behaviour
            .get(&path)
            .copied()
            .unwrap_or(Behaviour::Accept);
        let attempt = state.attempts.entry(id.clone()).or_insert(0);
        *attempt += 1;
        (behaviour, *attempt)
    };
    let response = match (behaviour, attempt) {
        (Behaviour::Hang, _) => {
            hub.record(path, id, body, headers, 0, signature_ok, alertmanager_ok);
            futures::future::pending::<()>().await;
            unreachable!()
        }
        (_, _) if alertmanager_ok == Some(false) || signature_ok == Some(false) => {
            (StatusCode::BAD_REQUEST, "bad payload or signature").into_response()
        }
        (Behaviour::Accept, _) | (Behaviour::FailThreeTimes, 4..) => StatusCode::OK.into_response(),
        (Behaviour::FailThreeTimes, 1) | (Behaviour::Down, _) => {
            (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "0")]).into_response()
        }
        (Behaviour::FailThreeTimes, 2) => {
            (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "0")]).into_response()
        }
        (Behaviour::FailThreeTimes, _) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        (Behaviour::Reject, _) => (StatusCode::BAD_REQUEST, "no such channel").into_response(),
    };
    let status = response.status().as_u16();
    hub.record(
        path,
        id,
        body,
        headers,
        status,
        signature_ok,
        alertmanager_ok,
    );
    response
}

impl Hub {
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        path: String,
        id: String,
        body: String,
        headers: HeaderMap,
        status: u16,
        signature_ok: Option<bool>,
        alertmanager_ok: Option<bool>,
    ) {
        self.state.lock().unwrap().received.push(Received {
            path,
            id,
            body,
            headers,
            status,
            signature_ok,
            alertmanager_ok,
        });
        self.changed.send_modify(|n| *n += 1);
    }
}

// ----- the sidecar -----

fn config_text(prom: &str, alerting: &str, webhooks: &str) -> String {
    format!(
        r#"prometheus:
  url: {prom}
  timeout: 5s
  external_url: https://prometheus.example
grafana_url: https://grafana.example/d/models
evaluation:
  interval: 1s
monitors:
  - name: fake
    window: 5m
    reference: {{offset: 1d}}
    min_samples: 100
    alerting: {alerting}
    signals:
      confidence:
        histogram: model_prediction_confidence
        detectors:
          - {{type: psi}}
          - {{type: ks}}
webhooks:
{webhooks}"#
    )
}

struct InProcess {
    monitor: ModelMonitor,
    notifier: Arc<Notifier>,
    _storage: tempfile::TempDir,
}

impl InProcess {
    async fn start(config: &str, interval: Duration) -> InProcess {
        let config = model_monitor::config::parse_str(config, "test.yml").expect("valid config");
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
        let app = exporter::app(AppState {
            monitor: self.monitor.clone(),
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
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        String::from_utf8(body.to_vec()).unwrap()
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

/// Runs `promtool check metrics`; true when it has nothing to say.
fn promtool_clean(text: &str) -> (bool, String) {
    use std::io::Write;
    let mut child = std::process::Command::new(common::program("promtool"))
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success() && report.trim().is_empty(), report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flaky_receiver_gets_each_notification_once_and_bad_receivers_delay_no_one() {
    let (prom, _fake) = start_prom(&["a", "b"], &["a", "b"]).await;
    let hub = Hub::start(&[
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
        &config_text(&prom, "{for: 1}", &webhooks),
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
            (deliveries(&metrics, "hanging", "expired") == 2.0
                && deliveries(&metrics, "rejecting", "dead_letter") == 4.0)
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
        flaky.iter().all(|r| r.alertmanager_ok == Some(true)),
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
    let (clean, report) = promtool_clean(&metrics);
    assert!(clean, "promtool check metrics:\n{report}\n{metrics}");

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
    let hub = Hub::start(&[]).await;
    let webhooks = format!(
        "  - {{name: am, format: alertmanager, url: '{}/am', secret: '{SECRET}', on: [drift], match: {{detector: psi}}}}\n",
        hub.url
    );
    let sidecar = InProcess::start(
        &config_text(&prom, "{}", &webhooks),
        Duration::from_millis(100),
    )
    .await;
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
    let hub = Hub::start(&[]).await;
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
        &config_text(
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
    fake.set_drifting(&[]);
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
    let hub = Hub::start(&[("am", Behaviour::Down), ("retrain", Behaviour::Down)]).await;
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
    let config = dir.path().join("model-monitor.yml");
    std::fs::write(&config, config_text(&prom, "{for: 1}", &webhooks)).unwrap();
    let storage = dir.path().join("data/outbox");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let start = |name: &str| {
        let port = free_port();
        let process = Process::start(
            name,
            &model_monitor_binary(),
            &[
                "run".into(),
                format!("--config.file={}", config.display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
                format!("--storage.path={}", storage.display()),
            ],
            dir.path(),
        );
        (process, format!("http://127.0.0.1:{port}"))
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
    first.kill();
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
    let exit = second.signal_and_wait("TERM", Duration::from_secs(15));
    assert!(exit.is_some_and(|s| s.success()), "graceful exit: {exit:?}");
    for log in [first.log_text(), second.log_text()] {
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
