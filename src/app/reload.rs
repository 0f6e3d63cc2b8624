//! Live reload of `run`'s configuration, as Prometheus does it: on SIGHUP,
//! and on `POST /-/reload` with `--web.enable-lifecycle`
//! (`sinks::exporter::lifecycle`), the file `run` was started with is read
//! again, with the files it names (`url_file`, `secret_file`, baselines).
//!
//! A file `check-config` accepts takes effect at the next evaluation: the
//! engine swaps its monitors in (`engine::reload`), the notifier its
//! receivers (`sinks::webhooks::reconfigure`), the status API its summary;
//! the alert lifecycle, the store (outbox, cooldowns) and the series of
//! kept monitors carry over. A file it rejects changes nothing: every line
//! `check-config` would print is logged, and
//! `model_monitor_config_last_reload_successful` goes to 0 until a reload
//! succeeds. One reload runs at a time. Every key of the file can change
//! this way; what cannot change at runtime (the listen address, the
//! storage path, the HTTP limits) is a flag, read once.
//!
//! SIGUSR1 and SIGUSR2 are ignored, with a log line, rather than ending
//! the process as their default action would.

use std::path::PathBuf;
use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::engine::ModelMonitor;
use crate::sinks::alertmanager::AlertmanagerSink;
use crate::sinks::exporter::lifecycle::Reload;
use crate::sinks::exporter::{self, ConfigSummary};
use crate::sinks::webhooks::{Notifier, Routing};
use crate::telemetry::SelfMetrics;

/// What a reload swaps, and the file it reads.
pub struct Reloader {
    pub path: PathBuf,
    pub monitor: ModelMonitor,
    pub notifier: Arc<Notifier>,
    pub summary: ConfigSummary,
    pub metrics: Arc<SelfMetrics>,
    /// The Alertmanagers alerts are pushed to, swapped too when set.
    pub alertmanagers: Option<AlertmanagerSink>,
    /// Held for the whole of a reload: one at a time.
    lock: Mutex<()>,
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Reloader {
    pub fn new(
        path: PathBuf,
        monitor: ModelMonitor,
        notifier: Arc<Notifier>,
        summary: ConfigSummary,
        metrics: Arc<SelfMetrics>,
    ) -> Reloader {
        Reloader {
            path,
            monitor,
            notifier,
            summary,
            metrics,
            alertmanagers: None,
            lock: Mutex::new(()),
        }
    }

    /// Reads the file again and applies it; on failure, logs and returns
    /// every problem line and keeps the running configuration.
    pub async fn reload(&self) -> Result<String, Vec<String>> {
        let _one_at_a_time = self.lock.lock().await;
        let result = self.try_reload().await;
        match &result {
            Ok(message) => {
                self.metrics.config_loaded(unix_now());
                tracing::info!(file = %self.path.display(), "{message}");
            }
            Err(problems) => {
                self.metrics.config_last_reload_successful.set(0);
                for problem in problems {
                    tracing::error!(problem = %problem, "invalid configuration");
                }
                tracing::error!(file = %self.path.display(), "configuration reload failed; the running configuration is kept");
            }
        }
        result
    }

    async fn try_reload(&self) -> Result<String, Vec<String>> {
        let path = self.path.clone();
        let checked = tokio::task::spawn_blocking(move || super::check_file(&path))
            .await
            .map_err(|error| vec![format!("reading the configuration failed: {error}")])?;
        for warning in &checked.warnings {
            tracing::warn!(warning = %warning, "configuration warning");
        }
        let config = checked.config.ok_or(checked.problems)?;
        let fail = |error: &dyn std::fmt::Display| {
            vec![
                format!("{}: {error}", self.path.display()),
                format!("{}: 1 problem(s) found", self.path.display()),
            ]
        };
        let routing = Routing::resolve(&config).map_err(|error| fail(&error))?;
        let summary = exporter::config_summary(&config);
        let prepared = match &self.alertmanagers {
            Some(sink) => Some(sink.prepare(&config).map_err(|error| fail(&error))?),
            None => None,
        };
        let monitors = self.monitor.reload(config).map_err(|error| fail(&error))?;
        let receivers = self.notifier.reconfigure(routing).await;
        let alertmanagers = match (&self.alertmanagers, prepared) {
            (Some(sink), Some(prepared)) => sink.reconfigure(prepared).await,
            _ => Default::default(),
        };
        self.summary.replace(summary);
        Ok(format!(
            "configuration reloaded: monitors added {:?}, removed {:?}, kept {:?}; receivers added {:?}, removed {:?}, kept {:?}; alertmanagers added {:?}, removed {:?}, kept {:?}",
            monitors.added,
            monitors.removed,
            monitors.kept,
            receivers.added,
            receivers.removed,
            receivers.kept,
            alertmanagers.added,
            alertmanagers.removed,
            alertmanagers.kept
        ))
    }
}

impl Reload for Reloader {
    fn reload(&self) -> BoxFuture<'_, Result<String, Vec<String>>> {
        Box::pin(Reloader::reload(self))
    }
}

/// The signals `run` handles besides SIGINT and SIGTERM, installed as
/// early as possible: until then, their default action ends the process.
pub struct Signals {
    hangup: Signal,
    user1: Signal,
    user2: Signal,
}

impl Signals {
    pub fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            hangup: signal(SignalKind::hangup())?,
            user1: signal(SignalKind::user_defined1())?,
            user2: signal(SignalKind::user_defined2())?,
        })
    }

    /// Reloads on every SIGHUP and logs SIGUSR1 and SIGUSR2 away, until
    /// `shutdown`.
    pub fn spawn(mut self, reloader: Arc<Reloader>, shutdown: CancellationToken) {
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    Some(()) = self.hangup.recv() => {
                        tracing::info!("received SIGHUP, reloading the configuration");
                        // The outcome is logged by the reload.
                        let _ = reloader.reload().await;
                    }
                    Some(()) = self.user1.recv() => tracing::info!("ignoring SIGUSR1"),
                    Some(()) = self.user2.recv() => tracing::info!("ignoring SIGUSR2"),
                }
            }
        });
    }
}
