//! Postable alerts, as Alertmanager's API v2 (`POST /api/v2/alerts`) takes
//! them: labels, annotations, `startsAt`, `endsAt`, `generatorURL`.
//!
//! Pure: a notice, the time of sending and the [`PayloadSettings`] go in,
//! the alert's JSON comes out. The labels carry nothing that differs
//! between two replicas of the sidecar (no instance, no replica), and
//! `startsAt` is the episode's first drifting evaluation, a time on the
//! evaluation grid: two replicas that evaluate the same data send the same
//! alert, which Alertmanager deduplicates.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::alerting::AlertNotice;
use crate::detectors::AlertKind;
use crate::sinks::webhooks::payload::{Links, alert_annotations, alert_labels, time};

/// Where the runbooks of the shipped alerts live; an alert's `runbook_url`
/// is this plus `#` and its lower-cased alert name, as in
/// `alerts/model-monitor.rules.yml`.
pub const RUNBOOKS_URL: &str =
    "https://github.com/model-monitor/model-monitor/blob/main/docs/runbooks.md";

/// What every alert of one configuration shares.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PayloadSettings {
    /// Added to every alert; an alert's own labels win.
    pub external_labels: BTreeMap<String, String>,
    pub links: Links,
    /// How long a firing alert stays valid after it is sent: Prometheus'
    /// `4 * max(resend delay, evaluation interval)`. Alertmanager resolves
    /// an alert that is not sent again within it.
    pub valid_for: Duration,
}

impl PayloadSettings {
    /// `valid_for` from the resend and evaluation intervals, as Prometheus
    /// derives it.
    pub fn valid_for(resend_interval: Duration, evaluation_interval: Duration) -> Duration {
        4 * resend_interval.max(evaluation_interval)
    }
}

/// The alert name the shipped rules give the same condition: the detector
/// label's value decides, as the rules' matchers do.
pub fn alertname(detector: &str, kind: AlertKind) -> &'static str {
    match (detector, kind) {
        ("quantile_ratio", _) => "ModelLatencyRegression",
        ("exceedance", _) => "ModelLatencyTailRegression",
        ("quantile_slo", _) => "ModelLatencySLOBreach",
        ("accuracy_drop", _) => "ModelAccuracyDrop",
        (_, AlertKind::Drift) => "ModelDriftDetected",
        (_, AlertKind::Performance) => "ModelPerformanceRegression",
    }
}

/// The severity the shipped rules give it: an objective breached pages.
pub fn severity(alertname: &str) -> &'static str {
    match alertname {
        "ModelLatencySLOBreach" => "critical",
        _ => "warning",
    }
}

/// The labels of the alert: the model's `group_by` labels, `alertname`,
/// `monitor`, `signal`, `detector`, `kind`, `severity`, then the external
/// labels that do not clash with them.
pub fn labels(notice: &AlertNotice, settings: &PayloadSettings) -> BTreeMap<String, String> {
    let mut labels = alert_labels(notice);
    let name = alertname(&notice.key.detector, notice.kind);
    labels.insert("alertname".to_owned(), name.to_owned());
    labels.insert("severity".to_owned(), severity(name).to_owned());
    for (label, value) in &settings.external_labels {
        labels.entry(label.clone()).or_insert_with(|| value.clone());
    }
    labels
}

/// One postable alert. `resolved_at` is the evaluation that resolved it
/// (`None` while it fires); `now` is the time of sending.
pub fn postable(
    notice: &AlertNotice,
    resolved_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    settings: &PayloadSettings,
) -> Value {
    let labels = labels(notice, settings);
    let mut annotations = alert_annotations(notice, &settings.links);
    annotations.insert(
        "runbook_url".to_owned(),
        format!("{RUNBOOKS_URL}#{}", labels["alertname"].to_lowercase()),
    );
    let ends_at = match resolved_at {
        Some(resolved) => resolved,
        None => now + settings.valid_for,
    };
    let mut alert = json!({
        "labels": labels,
        "annotations": annotations,
        "startsAt": time(notice.started_at),
        "endsAt": time(ends_at),
    });
    if let Some(url) = settings.links.prometheus_graph(&notice.key) {
        alert["generatorURL"] = Value::String(url);
    }
    alert
}
