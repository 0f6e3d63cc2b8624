//! The [`Notifier`]: the evaluation loop's [`AlertSink`] for webhooks.
//!
//! For every notice it builds one candidate notification per receiver that
//! wants it (body rendered, gate chosen), then saves the lifecycle's changes
//! and queues the candidates that pass their gates in one store
//! transaction, and wakes the receivers that got something.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use arc_swap::ArcSwap;

use super::delivery;
use super::holding::{Holding, Wakes};
use super::ids;
use super::payload::{self, Links};
use super::receiver::{Receiver, ReceiverError};
use crate::alerting::{
    AlertChanges, AlertNotice, AlertSink, AlertStore, Gate, Lifecycle, SinkError,
};
use crate::config::{Config, WebhookFormat};
use crate::store::{Candidate, Notification, OpenOptions, Store, StoreError};
use crate::telemetry::SelfMetrics;

/// Why the notifier could not start. Messages name the receiver and the
/// problem, never a URL or a secret.
#[derive(Debug, thiserror::Error)]
pub enum NotifierError {
    #[error(transparent)]
    Receiver(#[from] ReceiverError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot build the http client: {0}")]
    Client(String),
}

/// Most pending notifications (oldest) and dead letters (newest) listed
/// per receiver in the status API; the counts are complete.
const STATUS_LIST_LIMIT: usize = 100;

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

/// The receivers of one config and the links their bodies carry: what a
/// reload replaces.
pub struct Routing {
    pub(super) receivers: Vec<Arc<Receiver>>,
    pub(super) links: Links,
}

impl Routing {
    /// Resolves every receiver of `config` (reading its `url_file` and
    /// `secret_file` now) and the links of its bodies.
    pub fn resolve(config: &Config) -> Result<Routing, ReceiverError> {
        let receivers = config
            .webhooks
            .iter()
            .cloned()
            .map(|c| Receiver::new(c).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Routing {
            receivers,
            links: Links {
                prometheus: config.prometheus.external_url.clone(),
                grafana: config.grafana_url.clone(),
            },
        })
    }

    /// The receivers' names, in config order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.receivers.iter().map(|r| r.config.name.as_str())
    }
}

/// A running delivery task, and the settings it reads.
pub(super) struct WorkerHandle {
    pub(super) receiver: Arc<ArcSwap<Receiver>>,
    pub(super) stop: CancellationToken,
    pub(super) task: JoinHandle<()>,
}

/// The receivers, the store and the delivery tasks.
pub struct Notifier {
    pub(super) routing: ArcSwap<Routing>,
    pub(super) store: Arc<Store>,
    pub(super) metrics: Arc<SelfMetrics>,
    pub(super) wakes: Arc<Wakes>,
    holding: Arc<Holding>,
    pub(super) client: reqwest::Client,
    /// The delivery task of each configured receiver, once started.
    pub(super) workers: std::sync::Mutex<BTreeMap<String, WorkerHandle>>,
    /// The keeper of what is held while the store cannot write.
    keeper: std::sync::Mutex<Option<JoinHandle<()>>>,
    pub(super) shutdown: CancellationToken,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("receivers", &self.routing.load().receivers)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Notifier {
    /// Resolves the receivers of `config` and opens the store in `storage`
    /// (created when missing; a corrupt one is an error). Nothing is sent
    /// until [`Notifier::start`].
    pub fn open(
        config: &Config,
        storage: &Path,
        metrics: Arc<SelfMetrics>,
    ) -> Result<Notifier, NotifierError> {
        Notifier::open_with(config, storage, false, metrics)
    }

    /// [`Notifier::open`], moving a corrupt store aside and starting empty
    /// when `quarantine_corrupt` is set (`--storage.quarantine-corrupt`).
    pub fn open_with(
        config: &Config,
        storage: &Path,
        quarantine_corrupt: bool,
        metrics: Arc<SelfMetrics>,
    ) -> Result<Notifier, NotifierError> {
        let routing = Routing::resolve(config)?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| NotifierError::Client(e.without_url().to_string()))?;
        let options = OpenOptions {
            quarantine_corrupt,
            errors: Some(metrics.storage_errors.clone()),
        };
        let store = Arc::new(Store::open_with(storage, options)?);
        for name in routing.names() {
            metrics.init_receiver(name);
            let pending = publish_counts(&store, &metrics, name)?;
            if pending > 0 {
                tracing::info!(receiver = %name, pending, "resuming pending notifications");
            }
        }
        for (orphan, pending) in count_orphans(&store, &metrics, &routing)? {
            tracing::warn!(receiver = %orphan, pending, "the outbox holds notifications for a receiver that is no longer configured; they stay there until it is configured again");
        }
        let wakes = Arc::new(Wakes::default());
        let holding = Arc::new(Holding::new(store.clone(), metrics.clone(), wakes.clone()));
        Ok(Notifier {
            routing: ArcSwap::from_pointee(routing),
            store,
            metrics,
            wakes,
            holding,
            client,
            workers: std::sync::Mutex::default(),
            keeper: std::sync::Mutex::new(None),
            shutdown: CancellationToken::new(),
        })
    }

    /// The store, for its state (a file moved aside at start, whether it
    /// writes).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Starts one delivery task per receiver, and the keeper of what is
    /// held while the store cannot write, on the current runtime.
    pub fn start(&self) -> Result<(), NotifierError> {
        for receiver in &self.routing.load().receivers {
            self.spawn_worker(receiver.clone());
        }
        *self.keeper.lock().expect("no panics while held") = Some(tokio::spawn(
            self.holding.clone().run_keeper(self.shutdown.clone()),
        ));
        Ok(())
    }

    /// Starts the delivery task of `receiver`.
    pub(super) fn spawn_worker(&self, receiver: Arc<Receiver>) {
        let name = receiver.config.name.clone();
        let cell = Arc::new(ArcSwap::new(receiver));
        let stop = self.shutdown.child_token();
        let worker = delivery::Worker {
            name: name.clone(),
            receiver: cell.clone(),
            store: self.store.clone(),
            client: self.client.clone(),
            metrics: self.metrics.clone(),
            wake: self.wakes.get(&name),
            shutdown: stop.clone(),
        };
        let handle = WorkerHandle {
            receiver: cell,
            stop,
            task: tokio::spawn(worker.run()),
        };
        self.workers
            .lock()
            .expect("no panics while held")
            .insert(name, handle);
    }

    /// Stops delivery: attempts in flight get [`delivery::SHUTDOWN_DEADLINE`],
    /// everything undelivered stays in the store.
    pub async fn stop(&self) {
        self.shutdown.cancel();
        let workers = std::mem::take(&mut *self.workers.lock().expect("no panics while held"));
        let keeper = self.keeper.lock().expect("no panics while held").take();
        let tasks = workers
            .into_values()
            .map(|worker| worker.task)
            .chain(keeper);
        for task in tasks {
            if let Err(error) = task.await {
                tracing::error!(%error, "delivery task ended abnormally");
            }
        }
    }

    /// The candidates of one notice, one per receiver that wants it.
    fn candidates(&self, notice: &AlertNotice, candidates: &mut Vec<Candidate>) {
        let fingerprint = payload::fingerprint(&payload::alert_labels(notice));
        let routing = self.routing.load();
        for receiver in routing.receivers.iter().filter(|r| r.wants(notice)) {
            let id = ids::notification_id(&receiver.config.name, notice);
            let body = match receiver.render(&id, notice, &routing.links) {
                Ok(body) => body,
                Err(error) => {
                    tracing::error!(receiver = %receiver.config.name, %error, "cannot render the notification");
                    continue;
                }
            };
            let gate = match (notice.is_resolved(), receiver.config.format) {
                (true, _) => Gate::Resolution,
                (false, WebhookFormat::Template) => Gate::Cooldown {
                    scope: model_key(notice),
                    cooldown: receiver.config.cooldown,
                    at: notice.at,
                },
                (false, _) => Gate::Always,
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
            });
        }
    }

    /// One receiver's entry in the status API.
    fn receiver_status(&self, receiver: &Receiver) -> serde_json::Value {
        let name = &receiver.config.name;
        let pending = self
            .store
            .first_pending(name, STATUS_LIST_LIMIT)
            .unwrap_or_default();
        let dead = self
            .store
            .last_dead_letters(name, STATUS_LIST_LIMIT)
            .unwrap_or_default();
        let (pending_count, dead_count) = self.store.counts(name).unwrap_or_default();
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
    }
}

/// Sets `receiver`'s queue and dead-letter gauges from the store; returns
/// its pending count.
pub(super) fn publish_counts(
    store: &Store,
    metrics: &SelfMetrics,
    receiver: &str,
) -> Result<u64, StoreError> {
    let (pending, dead) = store.counts(receiver)?;
    metrics
        .webhook_queue_depth
        .with_label_values(&[receiver])
        .set(pending as i64);
    metrics
        .webhook_dead_letters
        .with_label_values(&[receiver])
        .set(dead as i64);
    Ok(pending)
}

/// Sets `model_monitor_webhook_orphaned_notifications` from the store: a
/// series for each receiver with pending notifications that `routing` does
/// not configure, none for the others. Returns those receivers and counts.
pub(super) fn count_orphans(
    store: &Store,
    metrics: &SelfMetrics,
    routing: &Routing,
) -> Result<Vec<(String, u64)>, StoreError> {
    let configured: std::collections::BTreeSet<&str> = routing.names().collect();
    let mut orphans = Vec::new();
    for receiver in configured.iter().copied() {
        let _ = metrics
            .webhook_orphaned_notifications
            .remove_label_values(&[receiver]);
    }
    for receiver in store.receivers()? {
        if configured.contains(receiver.as_str()) {
            continue;
        }
        let (pending, _) = store.counts(&receiver)?;
        metrics
            .webhook_orphaned_notifications
            .with_label_values(&[&receiver])
            .set(pending as i64);
        orphans.push((receiver, pending));
    }
    Ok(orphans)
}

impl AlertSink for Notifier {
    fn record(&self, notices: &[AlertNotice], changes: &AlertChanges) -> Result<(), SinkError> {
        let mut candidates = Vec::new();
        // Earliest episode first: of a model's alerts in one evaluation, the
        // one that started first passes a template receiver's cooldown. That
        // is the alert the other replicas let through when it fired, so a
        // replica that missed that evaluation (restarting) sends the same
        // notification, with the same id, rather than another alert's.
        let mut ordered: Vec<&AlertNotice> = notices.iter().collect();
        ordered.sort_by_key(|notice| notice.started_at);
        for notice in ordered {
            self.candidates(notice, &mut candidates);
        }
        // A store that cannot write leaves them held in memory, written
        // when it can: the lifecycle may count them as stored.
        self.holding.record(changes, candidates);
        Ok(())
    }

    fn problem(&self) -> Option<String> {
        self.store
            .problem()
            .map(|error| format!("the store cannot write: {error}"))
    }

    fn restore(&self) -> Result<Option<Lifecycle>, SinkError> {
        self.store.load_alerts().map_err(SinkError::store)
    }

    fn status(&self) -> serde_json::Value {
        let receivers: Vec<serde_json::Value> = self
            .routing
            .load()
            .receivers
            .iter()
            .map(|receiver| self.receiver_status(receiver))
            .collect();
        json!({ "receivers": receivers })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::Transition;

    /// A replica back from a restart sees, in one evaluation, the late
    /// firing of the alert that started first (which the other replica's
    /// retrain call was about) and a younger alert of the same model: the
    /// call it stores is about the older one, under the other replica's id.
    #[test]
    fn a_cooldown_passes_the_alert_whose_episode_started_first() {
        let dir = tempfile::tempdir().unwrap();
        let text = "prometheus: {url: 'http://p:9090'}\nmonitors: [{name: m, signals: {confidence: {histogram: h, detectors: [{type: psi}, {type: ks}]}}}]\nwebhooks:\n  - {name: retrain, format: template, url: 'https://r.example/x', body: '{}'}\n";
        let config = crate::config::parse_str(text, "t.yml").unwrap();
        let notifier = Notifier::open(&config, dir.path(), Arc::new(SelfMetrics::new())).unwrap();
        let older = payload::sample_notice();
        let mut younger = payload::sample_notice();
        younger.key.detector = "ks".into();
        younger.started_at = older.started_at + chrono::Duration::seconds(60);
        younger.at = younger.started_at;
        let mut late = older.clone();
        late.at = younger.at;
        assert_eq!(late.transition, Transition::Fired);
        // In key order, `ks` comes before `psi`.
        notifier
            .record(&[younger, late.clone()], &AlertChanges::default())
            .unwrap();
        let stored = notifier.store.first_pending("retrain", 10).unwrap();
        let ids: Vec<&str> = stored.iter().map(|(_, n)| n.id.as_str()).collect();
        assert_eq!(ids, [ids::notification_id("retrain", &late)]);
    }
}
