//! Alert delivery: receivers configured under `webhooks:`, a durable outbox
//! and one delivery task per receiver.
//!
//! The [`Notifier`] is the evaluation loop's [`AlertSink`]: for every alert
//! notice it picks the receivers that want it (`on`, `match`,
//! `send_resolved`), renders each body once (Slack, Alertmanager or a
//! template), and stores the notifications together with the lifecycle in
//! the outbox, in one transaction, before any attempt is made. Then each
//! receiver's [`delivery::Worker`] sends its queue.
//!
//! URLs, header values and secrets are resolved once at start and never
//! logged, shown in the status API or put into an error message.

pub mod delivery;

pub mod payload;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::json;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::alerting::{AlertChanges, AlertNotice, AlertSink, Lifecycle, Transition};
use crate::config::{Config, SecretSource, WebhookConfig, WebhookFormat, WebhookMatch};
use crate::store::{Candidate, Gate, Notification, Outbox};
use crate::telemetry::SelfMetrics;
use payload::{Links, Template};

/// Why the notifier could not start. Messages name the receiver and the
/// problem, never a URL or a secret.
#[derive(Debug, thiserror::Error)]
pub enum NotifierError {
    #[error("webhooks {receiver:?}: {message}")]
    Receiver { receiver: String, message: String },
    #[error(transparent)]
    Outbox(#[from] crate::store::OutboxError),
    #[error("cannot build the http client: {0}")]
    Client(String),
}

/// A receiver with its URL, headers, signer and template resolved.
pub struct Receiver {
    pub config: WebhookConfig,
    /// Never logged: it may embed a token.
    url: reqwest::Url,
    method: reqwest::Method,
    headers: HeaderMap,
    signer: Option<standardwebhooks::Webhook>,
    template: Option<Template>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("name", &self.config.name)
            .finish_non_exhaustive()
    }
}

/// The signer of a secret: `whsec_<base64>` as Standard Webhooks writes
/// secrets, any other text as raw key bytes.
pub fn signer(secret: &str) -> Result<standardwebhooks::Webhook, String> {
    if secret.starts_with("whsec_") {
        standardwebhooks::Webhook::new(secret)
            .map_err(|_| "invalid secret: whsec_ must be followed by base64".to_owned())
    } else if secret.is_empty() {
        Err("the signing secret is empty".to_owned())
    } else {
        standardwebhooks::Webhook::from_bytes(secret.as_bytes().to_vec())
            .map_err(|_| "invalid secret".to_owned())
    }
}

impl Receiver {
    /// Resolves a receiver's URL, headers, secret and template.
    pub fn new(config: WebhookConfig) -> Result<Receiver, NotifierError> {
        let fail = |message: String| NotifierError::Receiver {
            receiver: config.name.clone(),
            message,
        };
        let resolve = |source: &SecretSource, what: &str| {
            source.resolve().map_err(|error| match source {
                SecretSource::File(path) => fail(format!(
                    "cannot read the {what} file {}: {error}",
                    path.display()
                )),
                SecretSource::Inline(_) => fail(format!("cannot read the {what}")),
            })
        };
        let url_text = resolve(&config.url, "url")?;
        let url = reqwest::Url::parse(url_text.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or_else(|| {
                fail("invalid url: expected an http or https url with a host".to_owned())
            })?;
        let method = reqwest::Method::from_bytes(config.method.as_bytes())
            .map_err(|_| fail("invalid method".to_owned()))?;
        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| fail(format!("invalid header name {name:?}")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| fail(format!("invalid value of header {name}")))?;
            headers.insert(name, value);
        }
        let signer = match &config.secret {
            Some(secret) => Some(signer(&resolve(secret, "secret")?).map_err(fail)?),
            None => None,
        };
        let template = match &config.body {
            Some(body) => {
                Some(Template::compile(body).map_err(|e| fail(format!("invalid template: {e}")))?)
            }
            None => None,
        };
        Ok(Receiver {
            config,
            url,
            method,
            headers,
            signer,
            template,
        })
    }

    /// Whether this receiver wants a notice: its kind is in `on`, every
    /// `match` field equals the alert's, and resolutions only with
    /// `send_resolved`.
    pub fn wants(&self, notice: &AlertNotice) -> bool {
        (notice.transition != Transition::Resolved || self.config.send_resolved)
            && self.config.on.iter().any(|k| k == notice.kind.as_str())
            && matches(&self.config.matcher, notice)
    }

    /// The body of one notification.
    pub fn render(&self, id: &str, notice: &AlertNotice, links: &Links) -> Result<String, String> {
        match self.config.format {
            WebhookFormat::Slack => Ok(payload::slack(notice, links).to_string()),
            WebhookFormat::Alertmanager => {
                Ok(payload::alertmanager(&self.config.name, notice, links).to_string())
            }
            WebhookFormat::Template => {
                let context = payload::template_context(&self.config.name, id, notice, links);
                self.template
                    .as_ref()
                    .expect("template receivers have a template")
                    .render(&context)
            }
        }
    }
}

/// Whether every given field of `matcher` equals the notice's.
pub fn matches(matcher: &WebhookMatch, notice: &AlertNotice) -> bool {
    let key = &notice.key;
    let same = |want: &Option<String>, have: Option<&str>| {
        want.as_deref().is_none_or(|want| have == Some(want))
    };
    same(&matcher.model, key.label("model"))
        && same(&matcher.version, key.label("version"))
        && same(&matcher.signal, Some(&key.signal))
        && same(&matcher.detector, Some(&key.detector))
        && same(&matcher.kind, Some(notice.kind.as_str()))
}

/// Most pending notifications (oldest) and dead letters (newest) listed
/// per receiver in the status API; the counts are complete.
const STATUS_LIST_LIMIT: usize = 100;

/// A fresh `webhook-id`.
fn new_id() -> String {
    format!("msg_{:032x}", rand::random::<u128>())
}

/// The model part of a cooldown key: monitor and model labels.
fn model_key(notice: &AlertNotice) -> String {
    let labels: Vec<String> = notice
        .key
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    format!("{}/{}", notice.key.source, labels.join(","))
}

/// The receivers, the outbox and the delivery tasks.
pub struct Notifier {
    receivers: Vec<Arc<Receiver>>,
    outbox: Arc<Outbox>,
    links: Links,
    metrics: Arc<SelfMetrics>,
    wakes: BTreeMap<String, Arc<Notify>>,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("receivers", &self.receivers)
            .field("outbox", &self.outbox)
            .finish_non_exhaustive()
    }
}

impl Notifier {
    /// Resolves the receivers of `config` and opens the outbox in
    /// `storage` (created when missing). Nothing is sent until [`Notifier::start`].
    pub fn open(
        config: &Config,
        storage: &Path,
        metrics: Arc<SelfMetrics>,
    ) -> Result<Notifier, NotifierError> {
        let receivers = config
            .webhooks
            .iter()
            .cloned()
            .map(|c| Receiver::new(c).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        let outbox = Arc::new(Outbox::open(storage)?);
        for receiver in &receivers {
            let name = &receiver.config.name;
            metrics.init_receiver(name);
            let (pending, dead) = outbox.counts(name)?;
            metrics
                .webhook_queue_depth
                .with_label_values(&[name])
                .set(pending as i64);
            metrics
                .webhook_dead_letters
                .with_label_values(&[name])
                .set(dead as i64);
            if pending > 0 {
                tracing::info!(receiver = %name, pending, "resuming pending notifications");
            }
        }
        for orphan in outbox.receivers()? {
            if !receivers.iter().any(|r| r.config.name == orphan) {
                tracing::warn!(receiver = %orphan, "the outbox holds notifications for a receiver that is no longer configured; they stay there until it is configured again");
            }
        }
        let wakes = receivers
            .iter()
            .map(|r| (r.config.name.clone(), Arc::new(Notify::new())))
            .collect();
        Ok(Notifier {
            receivers,
            outbox,
            links: Links {
                prometheus: config.prometheus.external_url.clone(),
                grafana: config.grafana_url.clone(),
            },
            metrics,
            wakes,
            tasks: std::sync::Mutex::new(Vec::new()),
            shutdown: CancellationToken::new(),
        })
    }

    /// Starts one delivery task per receiver on the current runtime.
    pub fn start(&self) -> Result<(), NotifierError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| NotifierError::Client(e.without_url().to_string()))?;
        let mut tasks = self.tasks.lock().expect("no panics while held");
        for receiver in &self.receivers {
            let worker = delivery::Worker {
                receiver: receiver.clone(),
                outbox: self.outbox.clone(),
                client: client.clone(),
                metrics: self.metrics.clone(),
                wake: self.wakes[&receiver.config.name].clone(),
                shutdown: self.shutdown.clone(),
            };
            tasks.push(tokio::spawn(worker.run()));
        }
        Ok(())
    }

    /// Stops delivery: attempts in flight get [`delivery::SHUTDOWN_DEADLINE`],
    /// everything undelivered stays in the outbox.
    pub async fn stop(&self) {
        self.shutdown.cancel();
        let tasks: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.tasks.lock().expect("no panics while held"));
        for task in tasks {
            if let Err(error) = task.await {
                tracing::error!(%error, "delivery task ended abnormally");
            }
        }
    }

    /// The candidates of one notice, one per receiver that wants it.
    fn candidates(&self, notice: &AlertNotice, candidates: &mut Vec<Candidate>) {
        let fingerprint = payload::fingerprint(&payload::alert_labels(notice));
        for receiver in self.receivers.iter().filter(|r| r.wants(notice)) {
            let id = new_id();
            let body = match receiver.render(&id, notice, &self.links) {
                Ok(body) => body,
                Err(error) => {
                    tracing::error!(receiver = %receiver.config.name, %error, "cannot render the notification");
                    continue;
                }
            };
            let firing = notice.transition != Transition::Resolved;
            let gate = match (firing, receiver.config.format) {
                (false, _) => Gate::Resolution,
                (true, WebhookFormat::Template) => Gate::Cooldown {
                    model: model_key(notice),
                    cooldown: receiver.config.cooldown,
                    at: notice.at,
                },
                (true, _) => Gate::Always,
            };
            candidates.push(Candidate {
                receiver: receiver.config.name.clone(),
                notification: Notification {
                    id,
                    created_at: chrono::Utc::now(),
                    body,
                    attempts: 0,
                    next_attempt_at: None,
                    last_error: None,
                    summary: payload::summary(notice),
                },
                gate,
                fingerprint: fingerprint.clone(),
                firing,
            });
        }
    }
}

impl AlertSink for Notifier {
    fn record(&self, notices: &[AlertNotice], changes: &AlertChanges) -> Result<(), String> {
        let mut candidates = Vec::new();
        for notice in notices {
            self.candidates(notice, &mut candidates);
        }
        let receivers = self
            .outbox
            .record(&candidates, changes)
            .map_err(|e| e.to_string())?;
        for receiver in receivers {
            if let Some(wake) = self.wakes.get(&receiver) {
                wake.notify_one();
            }
        }
        Ok(())
    }

    fn restore(&self) -> Option<Lifecycle> {
        match self.outbox.lifecycle() {
            Ok(lifecycle) => lifecycle,
            Err(error) => {
                tracing::error!(%error, "cannot restore the alert state; starting without alerts");
                None
            }
        }
    }

    fn status(&self) -> serde_json::Value {
        let receivers: Vec<serde_json::Value> = self
            .receivers
            .iter()
            .map(|receiver| {
                let name = &receiver.config.name;
                let pending = self
                    .outbox
                    .first_pending(name, STATUS_LIST_LIMIT)
                    .unwrap_or_default();
                let dead = self
                    .outbox
                    .last_dead_letters(name, STATUS_LIST_LIMIT)
                    .unwrap_or_default();
                let (pending_count, dead_count) = self.outbox.counts(name).unwrap_or_default();
                json!({
                    "name": name,
                    "format": format!("{:?}", receiver.config.format).to_lowercase(),
                    "signed": receiver.signer.is_some(),
                    "pending_count": pending_count,
                    "dead_letter_count": dead_count,
                    "pending": pending.iter().map(|(_, n)| json!({
                        "id": n.id,
                        "created_at": n.created_at,
                        "attempts": n.attempts,
                        "next_attempt_at": n.next_attempt_at,
                        "last_error": n.last_error,
                        "summary": n.summary,
                    })).collect::<Vec<_>>(),
                    "dead_letters": dead.iter().map(|d| json!({
                        "id": d.notification.id,
                        "created_at": d.notification.created_at,
                        "dead_at": d.dead_at,
                        "attempts": d.notification.attempts,
                        "reason": d.reason,
                        "summary": d.notification.summary,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({ "receivers": receivers })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_needs_every_given_field_and_the_kind() {
        let notice = payload::sample_notice();
        let matcher =
            |model: Option<&str>, signal: Option<&str>, kind: Option<&str>| WebhookMatch {
                model: model.map(str::to_owned),
                signal: signal.map(str::to_owned),
                kind: kind.map(str::to_owned),
                ..WebhookMatch::default()
            };
        #[rustfmt::skip]
        let cases = [
            (matcher(None, None, None), true),
            (matcher(Some("fraud"), None, None), true),
            (matcher(Some("churn"), None, None), false),
            (matcher(Some("fraud"), Some("confidence"), Some("drift")), true),
            (matcher(Some("fraud"), Some("latency"), None), false),
            (matcher(None, None, Some("performance")), false),
            (WebhookMatch { version: Some("v3".into()), detector: Some("psi".into()), ..WebhookMatch::default() }, true),
            (WebhookMatch { version: Some("v2".into()), ..WebhookMatch::default() }, false),
        ];
        for (matcher, expected) in cases {
            assert_eq!(matches(&matcher, &notice), expected, "{matcher:?}");
        }
    }

    fn receiver(extra: &str) -> Receiver {
        let text = format!(
            "prometheus: {{url: 'http://p:9090'}}\nmonitors: [{{name: m, signals: {{confidence: {{histogram: h, detectors: [{{type: psi}}]}}}}}}]\nwebhooks:\n  - {{name: r, format: slack, url: 'https://hooks.example/x'{extra}}}\n"
        );
        let config = crate::config::parse_str(&text, "t.yml").unwrap();
        Receiver::new(config.webhooks[0].clone()).unwrap()
    }

    #[test]
    fn receivers_filter_on_kinds_and_resolutions() {
        let firing = payload::sample_notice();
        let resolved = AlertNotice {
            transition: Transition::Resolved,
            ..payload::sample_notice()
        };
        assert!(receiver("").wants(&firing));
        assert!(!receiver("").wants(&resolved));
        assert!(receiver(", send_resolved: true").wants(&resolved));
        assert!(!receiver(", on: [performance]").wants(&firing));
        assert!(receiver(", match: {model: fraud}").wants(&firing));
    }

    #[test]
    fn secrets_are_base64_after_whsec_or_raw_bytes() {
        let raw = signer("plain-secret").unwrap();
        let encoded = signer("whsec_cGxhaW4tc2VjcmV0").unwrap(); // base64("plain-secret")
        assert_eq!(
            raw.sign("msg_1", 1, b"{}").unwrap(),
            encoded.sign("msg_1", 1, b"{}").unwrap()
        );
        assert!(signer("whsec_***").is_err());
        assert!(signer("").is_err());
    }
}
