//! The sink's queueing and timing, with tokio's paused clock: what is sent
//! at once, what is sent again every resend interval, how long a resolved
//! alert is sent, and what a full queue drops. Sending over HTTP to real
//! receivers and a real Alertmanager cluster is tested in
//! `tests/integration/alertmanager_sink.rs`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::*;
use crate::alerting::{AlertChanges, AlertSink, AlertState, Lifecycle, Transition};
use crate::config::parse_str;
use crate::sinks::webhooks::payload::sample_notice;

/// A config with one Alertmanager (nothing listens there: the tests never
/// start the senders), evaluated every 30s, resent every minute.
fn config(extra: &str) -> Config {
    parse_str(
        &format!(
            "prometheus: {{url: http://prom:9090, external_url: https://prometheus.example}}\nevaluation: {{interval: 30s}}\nmonitors:\n  - name: m\n    signals:\n      confidence: {{histogram: h, detectors: [{{type: psi}}]}}\nalertmanagers:\n  urls: [http://127.0.0.1:9]\n  resend_interval: 1m\n  external_labels: {{cluster: eu-1, model: not-this}}\n{extra}"
        ),
        "/etc/mm.yml",
    )
    .unwrap()
}

/// A sink whose clock is `start` plus the paused tokio clock's progress,
/// with its resend timer running and no senders.
async fn sink(config: &Config, start: DateTime<Utc>) -> (AlertmanagerSink, Arc<SelfMetrics>) {
    let metrics = Arc::new(SelfMetrics::new());
    let origin = tokio::time::Instant::now();
    let clock: Clock = Arc::new(move || {
        start + chrono::Duration::from_std(origin.elapsed()).expect("a short test")
    });
    let sink = AlertmanagerSink::with_clock(config, &metrics, clock).unwrap();
    tokio::spawn(sink.inner.clone().resend_loop());
    // The timer starts now.
    advance(Duration::ZERO).await;
    (sink, metrics)
}

/// Takes what waits for the one Alertmanager.
fn take(sink: &AlertmanagerSink) -> Vec<Value> {
    let settings = sink.inner.settings.load();
    let mut all = Vec::new();
    loop {
        let batch = settings.targets[0].next_batch();
        if batch.is_empty() {
            return all;
        }
        all.extend(batch);
    }
}

/// Moves the paused clock on and lets the resend timer run.
async fn advance(duration: Duration) {
    tokio::time::advance(duration).await;
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

fn time(text: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text.as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

#[test]
fn an_alert_carries_the_rule_name_severity_and_external_labels_but_no_replica() {
    let config = config("");
    let metrics = SelfMetrics::new();
    let sink = AlertmanagerSink::new(&config, &metrics).unwrap();
    let settings = sink.inner.settings.load();
    let notice = sample_notice();
    let now = notice.at + chrono::Duration::seconds(7);
    let alert = payload::postable(&notice, None, now, &settings.payload);
    let labels: BTreeMap<String, String> = serde_json::from_value(alert["labels"].clone()).unwrap();
    let expected: BTreeMap<String, String> = [
        ("alertname", "ModelDriftDetected"),
        ("cluster", "eu-1"),
        ("detector", "psi"),
        ("kind", "drift"),
        ("model", "fraud"),
        ("monitor", "classifiers"),
        ("severity", "warning"),
        ("signal", "confidence"),
        ("version", "v3"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(
        labels, expected,
        "the model's own label wins over an external one"
    );
    assert_eq!(time(&alert["startsAt"]), notice.started_at);
    // 4 * max(resend 1m, evaluation 30s) after sending.
    assert_eq!(time(&alert["endsAt"]), now + chrono::Duration::minutes(4));
    let annotations = &alert["annotations"];
    assert_eq!(
        annotations["runbook_url"],
        "https://github.com/model-monitor/model-monitor/blob/main/docs/runbooks.md#modeldriftdetected"
    );
    for key in ["summary", "description", "explanation", "explanation_json"] {
        assert!(annotations[key].is_string(), "{key}: {annotations}");
    }
    assert!(
        alert["generatorURL"]
            .as_str()
            .unwrap()
            .starts_with("https://prometheus.example/graph?g0.expr=model_monitor_drift_score")
    );

    let resolved_at = notice.at + chrono::Duration::minutes(3);
    let resolved = payload::postable(&notice, Some(resolved_at), now, &settings.payload);
    assert_eq!(time(&resolved["endsAt"]), resolved_at);

    for (detector, name, severity) in [
        ("quantile_ratio", "ModelLatencyRegression", "warning"),
        ("exceedance", "ModelLatencyTailRegression", "warning"),
        ("quantile_slo", "ModelLatencySLOBreach", "critical"),
        ("accuracy_drop", "ModelAccuracyDrop", "warning"),
    ] {
        let mut notice = sample_notice();
        notice.key.detector = detector.into();
        let labels = payload::labels(&notice, &settings.payload);
        assert_eq!(
            (labels["alertname"].as_str(), labels["severity"].as_str()),
            (name, severity)
        );
    }
}

#[tokio::test(start_paused = true)]
async fn changes_go_at_once_and_every_alert_again_each_resend_interval() {
    let start = sample_notice().at;
    let (sink, _metrics) = sink(&config(""), start).await;
    let fired = sample_notice();
    sink.record(std::slice::from_ref(&fired), &AlertChanges::default())
        .unwrap();
    let sent = take(&sink);
    assert_eq!(sent.len(), 1, "a new alert is sent at once");
    assert_eq!(
        time(&sent[0]["endsAt"]),
        start + chrono::Duration::minutes(4)
    );

    advance(Duration::from_secs(59)).await;
    assert!(
        take(&sink).is_empty(),
        "nothing is due before the resend interval"
    );
    advance(Duration::from_secs(1)).await;
    let resent = take(&sink);
    assert_eq!(resent.len(), 1, "the firing alert is sent again");
    assert_eq!(resent[0]["labels"], sent[0]["labels"]);
    assert_eq!(resent[0]["startsAt"], sent[0]["startsAt"]);
    assert_eq!(
        time(&resent[0]["endsAt"]),
        start + chrono::Duration::minutes(5),
        "its end moves on with each resend"
    );

    // A repeat is the same alert, sent at once with the same summary.
    let mut repeated = fired.clone();
    repeated.transition = Transition::Repeated;
    sink.record(&[repeated], &AlertChanges::default()).unwrap();
    let again = take(&sink);
    assert_eq!(
        again[0]["annotations"]["summary"],
        sent[0]["annotations"]["summary"]
    );

    // Resolved at the evaluation 90s in: sent at once with that end.
    let resolved_at = start + chrono::Duration::seconds(90);
    let mut resolved = fired.clone();
    resolved.transition = Transition::Resolved;
    resolved.ended_at = Some(resolved_at);
    resolved.at = resolved_at;
    advance(Duration::from_secs(30)).await;
    sink.record(&[resolved], &AlertChanges::default()).unwrap();
    let sent = take(&sink);
    assert_eq!(sent.len(), 1);
    assert_eq!(time(&sent[0]["endsAt"]), resolved_at);

    // Sent again every minute for 15 minutes, then forgotten.
    let mut resends = 0;
    for _ in 0..20 {
        advance(Duration::from_secs(60)).await;
        let sent = take(&sink);
        if sent.is_empty() {
            continue;
        }
        assert_eq!(time(&sent[0]["endsAt"]), resolved_at);
        resends += 1;
    }
    // Resolved 90s in: resent at 2m, 3m, ..., 16m (14m30s after it
    // resolved); at 17m it is more than 15m old.
    assert_eq!(resends, 15);
    assert_eq!(sink.status()["alertmanager_alerts"]["resolved"], 0);
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_drops_the_oldest_alerts_and_counts_them() {
    let (sink, metrics) = sink(&config("  queue_capacity: 2\n"), sample_notice().at).await;
    let notices: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|model| {
            let mut notice = sample_notice();
            notice.key.labels = [("model".to_owned(), (*model).to_owned())].into();
            notice
        })
        .collect();
    sink.record(&notices, &AlertChanges::default()).unwrap();
    let models: Vec<String> = take(&sink)
        .iter()
        .map(|alert| alert["labels"]["model"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(models, ["b", "c"]);
    let text = metrics.render();
    assert!(
        text.contains(
            "model_monitor_alertmanager_notifications_dropped_total{alertmanager=\"http://127.0.0.1:9/api/v2/alerts\"} 1"
        ),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_restored_lifecycle_sends_its_firing_alerts_again() {
    /// The store a fan-out restores from: a lifecycle with one firing and
    /// one pending alert.
    struct Stored;
    impl AlertSink for Stored {
        fn record(&self, _: &[AlertNotice], _: &AlertChanges) -> Result<(), SinkError> {
            Ok(())
        }
        fn restore(&self) -> Result<Option<Lifecycle>, SinkError> {
            Ok(Some(Lifecycle::from_alerts([
                crate::alerting::tests::alert("firing", AlertState::Firing),
                crate::alerting::tests::alert("pending", AlertState::Pending),
            ])))
        }
        fn status(&self) -> Value {
            serde_json::json!({"receivers": []})
        }
    }
    let (sink, _metrics) = sink(&config(""), sample_notice().at).await;
    let fan_out = crate::alerting::FanOut::new(Arc::new(Stored), vec![Arc::new(sink.clone())]);
    let restored = fan_out.restore().unwrap().unwrap();
    assert_eq!(restored.alerts.len(), 2);
    let sent = take(&sink);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["labels"]["model"], "firing");
    let status = fan_out.status();
    assert!(
        status["receivers"].is_array() && status["alertmanagers"].is_array(),
        "{status}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_reload_swaps_the_alertmanagers_and_sends_them_every_alert_at_once() {
    let (sink, metrics) = sink(&config(""), sample_notice().at).await;
    sink.record(&[sample_notice()], &AlertChanges::default())
        .unwrap();
    take(&sink);
    let two = config("").alertmanagers.map(|mut section| {
        section.urls = vec![
            "http://127.0.0.1:9".parse().unwrap(),
            "http://127.0.0.1:10/prefix".parse().unwrap(),
        ];
        section.path_prefix = "/am/".to_owned();
        section
    });
    let reloaded = Config {
        alertmanagers: two,
        ..config("")
    };
    let changes = sink.reconfigure(sink.prepare(&reloaded).unwrap()).await;
    assert_eq!(
        changes,
        AlertmanagerChanges {
            added: vec![
                "http://127.0.0.1:9/am/api/v2/alerts".to_owned(),
                "http://127.0.0.1:10/prefix/am/api/v2/alerts".to_owned(),
            ],
            removed: vec!["http://127.0.0.1:9/api/v2/alerts".to_owned()],
            kept: vec![],
        },
        "the path prefix is part of each endpoint"
    );
    // Queued before the new senders run.
    let queued = sink.queued();
    assert_eq!(queued.len(), 2);
    assert!(
        queued.values().all(|alerts| alerts.len() == 1),
        "{queued:?}"
    );
    assert!(
        metrics.render().contains("model_monitor_alertmanagers 2"),
        "{}",
        metrics.render()
    );
    sink.stop().await;
}
