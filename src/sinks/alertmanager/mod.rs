//! The sidecar's own alerts pushed to Alertmanager's API v2, as Prometheus
//! pushes its rules' alerts, so that Alertmanager (an HA cluster of them)
//! deduplicates the alerts of two sidecar replicas and routes them, with no
//! Prometheus rule in between.
//!
//! [`AlertmanagerSink`] is an [`AlertSink`] that keeps no store: the engine
//! hands it the same notices as the webhook notifier (through
//! [`FanOut`](crate::alerting::FanOut)), and it keeps the alerts that fire,
//! and those resolved in the last [`RESOLVED_RETENTION`], in memory. A
//! change (an alert that fires or resolves) is sent at once; every
//! `resend_interval` all of them are sent again, firing ones with an
//! `endsAt` pushed forward (`payload.rs`), so an Alertmanager that restarted
//! or missed a request learns them again, and one that stops hearing about
//! an alert resolves it. After a restart of the sidecar, the firing alerts
//! of the restored lifecycle are sent again.
//!
//! - `payload.rs`: the postable alert (labels, annotations, times), pure.
//! - `client.rs`: one Alertmanager's bounded queue and sender.
//! - `metrics.rs`: the sink's self-metrics.
//!
//! Every configured Alertmanager gets every alert. A reload swaps the list
//! ([`AlertmanagerSink::reconfigure`]): the new list gets every alert at
//! once, and what waited for a removed Alertmanager is dropped.

mod client;
mod metrics;
pub mod payload;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::alerting::{
    AlertChanges, AlertKey, AlertNotice, AlertSink, AlertState, Lifecycle, SinkError, Transition,
};
use crate::config::{AlertmanagersConfig, Config};
use crate::sinks::webhooks::payload::Links;
use crate::telemetry::SelfMetrics;

use client::Http;
pub use client::{ClientError, MAX_BATCH, Target};
pub use metrics::AlertmanagerMetrics;
use payload::PayloadSettings;

/// How long a resolved alert is sent again, as Prometheus keeps sending
/// resolved alerts for 15 minutes.
pub const RESOLVED_RETENTION: Duration = Duration::from_secs(15 * 60);

/// The time alerts are sent at: `Utc::now` but in tests.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// One configuration's Alertmanagers and what their alerts share.
struct Settings {
    payload: PayloadSettings,
    resend_interval: Duration,
    http: Arc<Http>,
    targets: Vec<Arc<Target>>,
}

impl Settings {
    fn new(config: &Config, metrics: &AlertmanagerMetrics) -> Result<Settings, ClientError> {
        let section = config
            .alertmanagers
            .clone()
            .unwrap_or_else(|| AlertmanagersConfig::new(Vec::new()));
        let http = Arc::new(Http::new(&section)?);
        let targets = section
            .urls
            .iter()
            .map(|url| {
                Arc::new(Target::new(
                    url,
                    &section.path_prefix,
                    section.queue_capacity,
                    metrics.clone(),
                ))
            })
            .collect();
        Ok(Settings {
            payload: PayloadSettings {
                external_labels: section.external_labels.clone(),
                links: Links {
                    prometheus: config.prometheus.external_url.clone(),
                    grafana: config.grafana_url.clone(),
                },
                valid_for: PayloadSettings::valid_for(
                    section.resend_interval,
                    config.evaluation.interval,
                ),
            },
            resend_interval: section.resend_interval,
            http,
            targets,
        })
    }

    fn names(&self) -> Vec<String> {
        self.targets.iter().map(|t| t.name.clone()).collect()
    }
}

/// An alert the sink sends: its last notice, and when it resolved.
struct Active {
    notice: AlertNotice,
    resolved_at: Option<DateTime<Utc>>,
}

/// A sender task of one Alertmanager.
struct Running {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

struct Inner {
    settings: ArcSwap<Settings>,
    active: Mutex<BTreeMap<AlertKey, Active>>,
    running: tokio::sync::Mutex<Vec<Running>>,
    metrics: AlertmanagerMetrics,
    clock: Clock,
    shutdown: CancellationToken,
    resender: Mutex<Option<JoinHandle<()>>>,
}

/// The Alertmanagers before and after a reload, by URL (no credentials).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertmanagerChanges {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub kept: Vec<String>,
}

/// Alertmanagers built from a config, ready to be swapped in.
pub struct Prepared(Arc<Settings>);

/// The [`AlertSink`] that pushes alerts to Alertmanagers. Clones share it.
#[derive(Clone)]
pub struct AlertmanagerSink {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AlertmanagerSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertmanagerSink")
            .field("alertmanagers", &self.inner.settings.load().names())
            .finish_non_exhaustive()
    }
}

impl AlertmanagerSink {
    /// The sink for `config`'s `alertmanagers` (none configured: it keeps
    /// the alerts and sends nothing, until a reload adds some), its metrics
    /// registered in `metrics`. Nothing is sent until [`Self::start`].
    pub fn new(config: &Config, metrics: &SelfMetrics) -> Result<AlertmanagerSink, ClientError> {
        AlertmanagerSink::with_clock(config, metrics, Arc::new(Utc::now))
    }

    /// [`Self::new`] with the time of sending read from `clock`.
    pub fn with_clock(
        config: &Config,
        metrics: &SelfMetrics,
        clock: Clock,
    ) -> Result<AlertmanagerSink, ClientError> {
        let metrics = AlertmanagerMetrics::register(metrics);
        let settings = Settings::new(config, &metrics)?;
        metrics.alertmanagers.set(settings.targets.len() as i64);
        Ok(AlertmanagerSink {
            inner: Arc::new(Inner {
                settings: ArcSwap::from_pointee(settings),
                active: Mutex::default(),
                running: tokio::sync::Mutex::default(),
                metrics,
                clock,
                shutdown: CancellationToken::new(),
                resender: Mutex::new(None),
            }),
        })
    }

    /// Starts one sender per Alertmanager and the resend timer, on the
    /// current runtime.
    pub async fn start(&self) {
        self.spawn_senders(&self.inner.settings.load()).await;
        let inner = self.inner.clone();
        *self.inner.resender.lock().expect("no panics while held") =
            Some(tokio::spawn(inner.resend_loop()));
    }

    async fn spawn_senders(&self, settings: &Settings) {
        let mut running = self.inner.running.lock().await;
        for target in &settings.targets {
            self.inner.metrics.init(&target.name);
            let stop = self.inner.shutdown.child_token();
            let task = tokio::spawn(target.clone().run(
                settings.http.clone(),
                settings.resend_interval,
                stop.clone(),
            ));
            running.push(Running { stop, task });
        }
    }

    /// Stops the senders and the resend timer; queued alerts are dropped
    /// (Alertmanager hears of the firing ones again after a restart).
    pub async fn stop(&self) {
        self.inner.shutdown.cancel();
        let resender = self
            .inner
            .resender
            .lock()
            .expect("no panics while held")
            .take();
        if let Some(task) = resender {
            let _ = task.await;
        }
        for running in self.inner.running.lock().await.drain(..) {
            let _ = running.task.await;
        }
    }

    /// Builds `config`'s Alertmanagers for [`Self::reconfigure`], changing
    /// nothing yet.
    pub fn prepare(&self, config: &Config) -> Result<Prepared, ClientError> {
        Ok(Prepared(Arc::new(Settings::new(
            config,
            &self.inner.metrics,
        )?)))
    }

    /// Swaps in prepared Alertmanagers (a reload): the old senders stop,
    /// the new ones start and get every alert at once.
    pub async fn reconfigure(&self, prepared: Prepared) -> AlertmanagerChanges {
        let settings = prepared.0;
        let old = self.inner.settings.load_full();
        let stopped: Vec<Running> = self.inner.running.lock().await.drain(..).collect();
        for running in stopped {
            running.stop.cancel();
            let _ = running.task.await;
        }
        let (old_names, new_names) = (old.names(), settings.names());
        for name in old_names.iter().filter(|n| !new_names.contains(n)) {
            self.inner.metrics.forget(name);
        }
        self.inner
            .metrics
            .alertmanagers
            .set(settings.targets.len() as i64);
        self.inner.settings.store(settings.clone());
        self.inner.send_all();
        if !self.inner.shutdown.is_cancelled() {
            self.spawn_senders(&settings).await;
        }
        AlertmanagerChanges {
            added: new_names
                .iter()
                .filter(|n| !old_names.contains(n))
                .cloned()
                .collect(),
            removed: old_names
                .iter()
                .filter(|n| !new_names.contains(n))
                .cloned()
                .collect(),
            kept: new_names
                .iter()
                .filter(|n| old_names.contains(n))
                .cloned()
                .collect(),
        }
    }

    /// The alerts waiting for each Alertmanager, by URL.
    pub fn queued(&self) -> BTreeMap<String, Vec<Value>> {
        self.inner
            .settings
            .load()
            .targets
            .iter()
            .map(|target| (target.name.clone(), target.queued()))
            .collect()
    }
}

impl Inner {
    /// Every `resend_interval` sends all alerts again (a new interval
    /// from a reload applies from the next one).
    async fn resend_loop(self: Arc<Inner>) {
        loop {
            let interval = self.settings.load().resend_interval;
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
            self.send_all();
        }
    }

    /// Forgets resolved alerts past [`RESOLVED_RETENTION`] and sends the rest.
    fn send_all(&self) {
        let now = (self.clock)();
        let retention = chrono::Duration::from_std(RESOLVED_RETENTION).expect("15 minutes fit");
        let settings = self.settings.load();
        let alerts: Vec<Value> = {
            let mut active = self.active.lock().expect("no panics while held");
            active.retain(|_, alert| alert.resolved_at.is_none_or(|at| now - at <= retention));
            if settings.targets.is_empty() {
                // Nowhere to send: no payload to build.
                return;
            }
            active
                .values()
                .map(|alert| {
                    payload::postable(&alert.notice, alert.resolved_at, now, &settings.payload)
                })
                .collect()
        };
        push(&settings, &alerts);
    }

    /// Keeps the notices' alerts and sends them at once.
    fn update(&self, notices: impl IntoIterator<Item = AlertNotice>) {
        let now = (self.clock)();
        let settings = self.settings.load();
        let mut alerts = Vec::new();
        {
            let mut active = self.active.lock().expect("no panics while held");
            for mut notice in notices {
                let resolved_at = notice
                    .is_resolved()
                    .then(|| notice.ended_at.unwrap_or(notice.at));
                // A repeat is the same firing alert; its summary says so.
                if notice.transition == Transition::Repeated {
                    notice.transition = Transition::Fired;
                }
                if !settings.targets.is_empty() {
                    alerts.push(payload::postable(
                        &notice,
                        resolved_at,
                        now,
                        &settings.payload,
                    ));
                }
                active.insert(
                    notice.key.clone(),
                    Active {
                        notice,
                        resolved_at,
                    },
                );
            }
        }
        push(&settings, &alerts);
    }
}

/// Queues `alerts` for every Alertmanager.
fn push(settings: &Settings, alerts: &[Value]) {
    for target in &settings.targets {
        target.push(alerts);
    }
}

impl AlertSink for AlertmanagerSink {
    fn record(&self, notices: &[AlertNotice], _changes: &AlertChanges) -> Result<(), SinkError> {
        if !notices.is_empty() {
            self.inner.update(notices.iter().cloned());
        }
        Ok(())
    }

    /// Keeps no store: the lifecycle comes from the store of the sink it
    /// shares the notices with ([`AlertSink::restored`]).
    fn restore(&self) -> Result<Option<Lifecycle>, SinkError> {
        Ok(None)
    }

    /// Sends the firing alerts of the restored lifecycle again.
    fn restored(&self, lifecycle: &Lifecycle) {
        let firing = lifecycle
            .alerts
            .values()
            .filter(|alert| alert.progress.state == AlertState::Firing)
            .map(|alert| AlertNotice {
                transition: Transition::Fired,
                key: alert.key.clone(),
                kind: alert.kind,
                started_at: alert.progress.active_since,
                ended_at: None,
                at: alert
                    .progress
                    .last_notified
                    .unwrap_or(alert.progress.active_since),
                detection: alert.detection.clone(),
                metrics: alert.metrics.clone(),
                // Alertmanager identifies an alert by its labels; repeats
                // are its own business.
                repeat: 0,
            });
        self.inner.update(firing);
    }

    fn status(&self) -> Value {
        let settings = self.inner.settings.load();
        let (firing, resolved) = {
            let active = self.inner.active.lock().expect("no panics while held");
            let resolved = active.values().filter(|a| a.resolved_at.is_some()).count();
            (active.len() - resolved, resolved)
        };
        json!({
            "alertmanagers": settings.targets.iter().map(|target| json!({
                "url": target.name,
                "queue_length": target.queued().len(),
            })).collect::<Vec<_>>(),
            "alertmanager_alerts": {"firing": firing, "resolved": resolved},
        })
    }
}
