//! Notification bodies: Slack incoming-webhook JSON, the Alertmanager
//! webhook payload (version 4) and minijinja templates.
//!
//! Rendering is pure: an [`AlertNotice`], the receiver's name, the
//! notification id and the [`Links`] go in, the body text comes out. Bodies
//! are rendered once, when the notification enters the outbox, so a retry
//! or a restart sends the same bytes. The template language and its
//! variables belong to the config (`config::Template`,
//! `config::TemplateContext`), which checks every body at load.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::alerting::{AlertKey, AlertNotice, Transition};
pub use crate::config::Template;
use crate::config::{TemplateAlert, TemplateContext};
use crate::detectors::{AlertKind, BucketShift, Explanation, Method, Shift};

/// External URLs used to build links in notifications.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Links {
    /// `prometheus.external_url`: where users reach Prometheus.
    pub prometheus: Option<url::Url>,
    /// `grafana_url`: a dashboard with `model`, `version`... variables.
    pub grafana: Option<url::Url>,
}

impl Links {
    /// A Prometheus graph of the alert's drift score (and threshold).
    pub fn prometheus_graph(&self, key: &AlertKey) -> Option<String> {
        let base = self.prometheus.as_ref()?;
        let mut url = base.clone();
        let path = format!("{}/graph", base.path().trim_end_matches('/'));
        url.set_path(&path);
        url.set_query(None);
        url.query_pairs_mut()
            .append_pair("g0.expr", &drift_query(key))
            .append_pair("g0.tab", "0")
            .append_pair("g0.range_input", "6h");
        Some(url.to_string())
    }

    /// The Grafana dashboard with one `var-<label>` per model label.
    pub fn grafana_dashboard(&self, key: &AlertKey) -> Option<String> {
        let mut url = self.grafana.clone()?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("var-monitor", &key.source);
            for (name, value) in key.labels.iter() {
                query.append_pair(&format!("var-{name}"), value);
            }
        }
        Some(url.to_string())
    }
}

/// The PromQL of an alert's score and threshold, as the sidecar exports them.
pub fn drift_query(key: &AlertKey) -> String {
    let mut matchers: Vec<String> = key
        .labels
        .iter()
        .map(|(name, value)| format!("{name}=\"{}\"", escape_promql(value)))
        .collect();
    matchers.push(format!("monitor=\"{}\"", escape_promql(&key.source)));
    matchers.push(format!("signal=\"{}\"", escape_promql(&key.signal)));
    matchers.push(format!("detector=\"{}\"", escape_promql(&key.detector)));
    let selector = matchers.join(", ");
    format!(
        "model_monitor_drift_score{{{selector}}} or model_monitor_drift_threshold{{{selector}}}"
    )
}

fn escape_promql(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A time as Alertmanager's JSON writes it (RFC 3339, milliseconds, `Z`).
pub fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn model_name(key: &AlertKey) -> String {
    key.label("model").map(str::to_owned).unwrap_or_else(|| {
        key.labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    })
}

/// A one-line summary, used as Slack's `text` and Alertmanager's `summary`.
pub fn summary(notice: &AlertNotice) -> String {
    let key = &notice.key;
    let version = key
        .label("version")
        .map(|v| format!(" {v}"))
        .unwrap_or_default();
    let what = match notice.kind {
        AlertKind::Drift => "drift",
        AlertKind::Performance => "performance regression",
    };
    let status = match notice.transition {
        Transition::Fired => "FIRING",
        Transition::Repeated => "FIRING (repeat)",
        Transition::Resolved => "RESOLVED",
    };
    let comparison = if notice.is_resolved() { "<" } else { ">=" };
    format!(
        "[{status}] {what} on {}{version}: {} {} score {} {comparison} threshold {}",
        model_name(key),
        key.signal,
        key.detector,
        number(notice.detection.score),
        number(notice.detection.threshold),
    )
}

fn number(value: f64) -> String {
    if value != 0.0 && (value.abs() < 1e-3 || value.abs() >= 1e6) {
        format!("{value:.3e}")
    } else {
        format!("{value:.4}")
    }
}

/// Escapes the three characters Slack's mrkdwn treats as control characters.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Slack incoming-webhook JSON: a `text` fallback and Block Kit `blocks`.
pub fn slack(notice: &AlertNotice, links: &Links) -> Value {
    let key = &notice.key;
    let detection = &notice.detection;
    let title = match (notice.transition, notice.kind) {
        (Transition::Resolved, _) => "Resolved",
        (_, AlertKind::Drift) => "Model drift",
        (_, AlertKind::Performance) => "Performance regression",
    };
    let field = |name: &str, value: String| json!({"type": "mrkdwn", "text": format!("*{name}*\n{}", slack_escape(&value))});
    let mut fields = vec![
        field("Model", model_name(key)),
        field("Version", key.label("version").unwrap_or("-").to_owned()),
        field("Signal", key.signal.to_string()),
        field("Detector", key.detector.to_string()),
        field(
            "Score",
            format!(
                "{} (threshold {})",
                number(detection.score),
                number(detection.threshold)
            ),
        ),
        field(
            "p-value",
            detection.p_value.map_or_else(|| "-".to_owned(), number),
        ),
        field(
            "Windows",
            format!(
                "current {} / reference {} observations",
                detection.current_samples, detection.reference_samples
            ),
        ),
        field("Monitor", key.source.to_string()),
    ];
    fields.truncate(10);
    let mut context = format!("Since {}", time(notice.started_at));
    if let Some(ended) = notice.ended_at {
        context.push_str(&format!(", resolved {}", time(ended)));
    }
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": format!("{title}: {}", model_name(key))}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": slack_escape(&summary(notice))}}),
    ];
    let mut text = summary(notice);
    if let Some(explanation) = &detection.explanation {
        let line = &explanation.summary;
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("*What moved*\n{}", slack_escape(line))}}));
        text.push('\n');
        text.push_str(line);
    }
    blocks.push(json!({"type": "section", "fields": fields}));
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]}));
    let buttons: Vec<Value> = [
        ("Prometheus", links.prometheus_graph(key)),
        ("Grafana", links.grafana_dashboard(key)),
    ]
    .into_iter()
    .filter_map(|(text, url)| {
        url.map(|url| json!({"type": "button", "text": {"type": "plain_text", "text": text}, "url": url}))
    })
    .collect();
    if !buttons.is_empty() {
        blocks.push(json!({"type": "actions", "elements": buttons}));
    }
    json!({"text": text, "blocks": blocks})
}

/// The `alertname` of an alert of `kind`.
pub fn alert_name(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::Drift => "ModelDrift",
        AlertKind::Performance => "ModelPerformanceRegression",
    }
}

/// The labels of an alert as Alertmanager would carry them.
pub fn alert_labels(notice: &AlertNotice) -> BTreeMap<String, String> {
    let key = &notice.key;
    let mut labels: BTreeMap<String, String> = key.labels.iter().cloned().collect();
    labels.insert("alertname".to_owned(), alert_name(notice.kind).to_owned());
    labels.insert("monitor".to_owned(), key.source.to_string());
    labels.insert("signal".to_owned(), key.signal.to_string());
    labels.insert("detector".to_owned(), key.detector.to_string());
    labels.insert("kind".to_owned(), notice.kind.as_str().to_owned());
    labels
}

/// Alertmanager's fingerprint of a label set: FNV-1a 64 over the sorted
/// names and values, each followed by the 0xff separator, as 16 hex digits.
pub fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    const OFFSET: u64 = 14_695_981_039_346_656_037;
    const PRIME: u64 = 1_099_511_628_211;
    let mut hash = OFFSET;
    let mut add = |bytes: &[u8]| {
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(PRIME);
        }
    };
    for (name, value) in labels {
        add(name.as_bytes());
        add(&[0xff]);
        add(value.as_bytes());
        add(&[0xff]);
    }
    format!("{hash:016x}")
}

/// Go's `model.LabelSet.String()`: `{a="b", c="d"}`, sorted.
fn label_set_string(labels: &BTreeMap<String, String>) -> String {
    let pairs: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}={}", serde_json::Value::String(v.clone())))
        .collect();
    format!("{{{}}}", pairs.join(", "))
}

/// The annotations of an alert as Alertmanager carries them: summary,
/// description, the numbers, the explanation (when there is one) and the
/// dashboard link.
pub fn alert_annotations(notice: &AlertNotice, links: &Links) -> BTreeMap<String, String> {
    let detection = &notice.detection;
    let mut annotations = BTreeMap::from([
        ("summary".to_owned(), summary(notice)),
        (
            "description".to_owned(),
            format!(
                "{} detector {} on signal {} of {} (monitor {}): score {} against threshold {}, {} current and {} reference observations.",
                notice.kind.as_str(),
                notice.key.detector,
                notice.key.signal,
                model_name(&notice.key),
                notice.key.source,
                number(detection.score),
                number(detection.threshold),
                detection.current_samples,
                detection.reference_samples
            ),
        ),
        ("score".to_owned(), detection.score.to_string()),
        ("threshold".to_owned(), detection.threshold.to_string()),
        (
            "current_samples".to_owned(),
            detection.current_samples.to_string(),
        ),
        (
            "reference_samples".to_owned(),
            detection.reference_samples.to_string(),
        ),
    ]);
    if let Some(p_value) = detection.p_value {
        annotations.insert("p_value".to_owned(), p_value.to_string());
    }
    if let Some(explanation) = &detection.explanation {
        annotations.insert("explanation".to_owned(), explanation.summary.clone());
        annotations.insert(
            "explanation_json".to_owned(),
            serde_json::to_string(explanation.as_ref()).expect("an explanation serializes"),
        );
    }
    if let Some(dashboard) = links.grafana_dashboard(&notice.key) {
        annotations.insert("dashboard".to_owned(), dashboard);
    }
    annotations
}

/// The Alertmanager webhook payload (version 4) with one alert.
pub fn alertmanager(receiver: &str, notice: &AlertNotice, links: &Links) -> Value {
    let labels = alert_labels(notice);
    let annotations = alert_annotations(notice, links);
    let status = notice.status();
    let group_key = format!("{{}}:{}", label_set_string(&labels));
    json!({
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": labels,
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": links.prometheus.as_ref().map(|u| u.to_string()).unwrap_or_default(),
        "alerts": [{
            "status": status,
            "labels": labels,
            "annotations": annotations,
            "startsAt": time(notice.started_at),
            "endsAt": notice.ended_at.map_or_else(|| "0001-01-01T00:00:00Z".to_owned(), time),
            "generatorURL": links.prometheus_graph(&notice.key).unwrap_or_default(),
            "fingerprint": fingerprint(&labels),
        }],
    })
}

/// What a template sees ([`TemplateContext`]) for one notification.
pub fn template_context(receiver: &str, id: &str, notice: &AlertNotice, links: &Links) -> Value {
    let key = &notice.key;
    let detection = &notice.detection;
    let labels = alert_labels(notice);
    let metrics = &notice.metrics;
    TemplateContext {
        id: id.to_owned(),
        receiver: receiver.to_owned(),
        alert: TemplateAlert {
            status: notice.status().to_owned(),
            repeat: notice.transition == Transition::Repeated,
            kind: notice.kind.as_str().to_owned(),
            model: key.label("model").unwrap_or_default().to_owned(),
            version: key.label("version").unwrap_or_default().to_owned(),
            labels: key.labels.iter().cloned().collect(),
            monitor: key.source.to_string(),
            signal: key.signal.to_string(),
            detector: key.detector.to_string(),
            score: detection.score,
            threshold: detection.threshold,
            p_value: detection.p_value,
            current_samples: detection.current_samples,
            reference_samples: detection.reference_samples,
            starts_at: time(notice.started_at),
            ends_at: notice.ended_at.map(time),
            evaluated_at: time(notice.at),
            summary: summary(notice),
            fingerprint: fingerprint(&labels),
            prometheus_url: links.prometheus_graph(key),
            grafana_url: links.grafana_dashboard(key),
            confidence_mean: metrics.confidence_mean,
            p99_latency_ms: metrics.p99_latency_ms,
            explanation: detection.explanation.as_ref().map(|e| e.summary.clone()),
            explanation_detail: detection
                .explanation
                .as_ref()
                .map(|e| serde_json::to_value(e.as_ref()).expect("an explanation serializes")),
        },
    }
    .to_value()
}

/// A firing drift notice, the one config loading checks templates with
/// ([`TemplateContext::sample`]).
pub fn sample_notice() -> AlertNotice {
    let at = DateTime::from_timestamp(1_767_225_600, 0).expect("a valid time");
    AlertNotice {
        transition: Transition::Fired,
        key: AlertKey {
            source: "classifiers".into(),
            labels: [
                ("model".to_owned(), "fraud".to_owned()),
                ("version".to_owned(), "v3".to_owned()),
            ]
            .into(),
            signal: "confidence".into(),
            detector: "psi".into(),
        },
        kind: AlertKind::Drift,
        started_at: at,
        ended_at: None,
        at,
        repeat: 0,
        detection: crate::model::DetectionRecord {
            score: 0.42,
            threshold: 0.1,
            p_value: Some(1.5e-9),
            current_samples: 1200.0,
            reference_samples: 9800.0,
            explanation: Some(std::sync::Arc::new(sample_explanation())),
        },
        metrics: std::sync::Arc::new(crate::model::InferenceMetrics {
            model_name: "fraud".to_owned(),
            model_version: "v3".to_owned(),
            monitor: "classifiers".to_owned(),
            labels: BTreeMap::from([
                ("model".to_owned(), "fraud".to_owned()),
                ("version".to_owned(), "v3".to_owned()),
            ]),
            timestamp: at,
            confidence_mean: Some(0.71),
            confidence_std: Some(0.12),
            p50_latency_ms: Some(12.0),
            p95_latency_ms: Some(40.0),
            p99_latency_ms: Some(85.0),
            signals: BTreeMap::new(),
        }),
    }
}

/// What moved in the sample notice: PSI on confidence buckets 0.1 wide,
/// mass from the top bucket to 0.70-0.80.
fn sample_explanation() -> Explanation {
    let bucket =
        |lower: f64, upper: f64, reference_share, current_share, contribution| BucketShift {
            range: format!("{lower:.2}-{upper:.2}"),
            lower: Some(lower),
            upper: Some(upper),
            reference_share,
            current_share,
            contribution,
        };
    Explanation {
        method: Method::Psi,
        buckets: vec![
            bucket(0.7, 0.8, 0.05, 0.19, 0.1869),
            bucket(0.9, 1.0, 0.62, 0.41, 0.0868),
        ],
        cdf_gap: None,
        mean: Shift::new(0.88, 0.71),
        p50: Shift::new(0.93, 0.81),
        p95: Shift::new(0.99, 0.98),
        p99: Shift::new(1.0, 1.0),
        summary: String::new(),
    }
    .summarized("confidence", 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_checks_templates_with_the_context_of_the_sample_notice() {
        assert_eq!(
            template_context("check", "msg_check", &sample_notice(), &Links::default()),
            TemplateContext::sample().to_value()
        );
    }

    #[test]
    fn fingerprints_follow_prometheus_label_hashing() {
        // model.LabelSet{}.Fingerprint() is the FNV-1a offset basis.
        assert_eq!(fingerprint(&BTreeMap::new()), "cbf29ce484222325");
        let labels = BTreeMap::from([("a".to_owned(), "b".to_owned())]);
        assert_eq!(fingerprint(&labels).len(), 16);
        assert_ne!(
            fingerprint(&labels),
            fingerprint(&BTreeMap::from([("a".to_owned(), "c".to_owned())]))
        );
    }

    #[test]
    fn links_carry_the_drift_query_and_model_variables() {
        let links = Links {
            prometheus: Some(url::Url::parse("https://prom.example/sub/").unwrap()),
            grafana: Some(url::Url::parse("https://grafana.example/d/abc/models?orgId=1").unwrap()),
        };
        let key = sample_notice().key;
        let graph = links.prometheus_graph(&key).unwrap();
        assert!(
            graph.starts_with("https://prom.example/sub/graph?g0.expr=model_monitor_drift_score"),
            "{graph}"
        );
        let dashboard = links.grafana_dashboard(&key).unwrap();
        assert_eq!(
            dashboard,
            "https://grafana.example/d/abc/models?orgId=1&var-monitor=classifiers&var-model=fraud&var-version=v3"
        );
    }
}
