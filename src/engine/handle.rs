//! [`ModelMonitor`]: the cheap-clone handle embedders hold on a running
//! evaluation loop.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use tokio::sync::{Mutex, broadcast};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::events::{EventReceiver, MonitorEvent};
use super::snapshot::Snapshot;
use crate::alerting::AlertSink;
use crate::telemetry::SelfMetrics;

/// Shared between the handle and the loop.
pub(super) struct Shared {
    pub(super) event_tx: broadcast::Sender<MonitorEvent>,
    pub(super) snapshot: ArcSwap<Snapshot>,
    pub(super) ready: AtomicBool,
    pub(super) shutdown: CancellationToken,
    pub(super) task: Mutex<Option<JoinHandle<()>>>,
    pub(super) metrics: Arc<SelfMetrics>,
    /// Where alert notices are stored for delivery, if anywhere.
    pub(super) sink: Option<Arc<dyn AlertSink>>,
    /// A reloaded config's sources, waiting for the loop to take them.
    pub(super) reload: super::reload::Pending,
}

/// A cheap-clone handle on a running monitor.
#[derive(Clone)]
pub struct ModelMonitor {
    pub(super) shared: Arc<Shared>,
}

impl ModelMonitor {
    /// A receiver of every event from now on.
    pub fn subscribe(&self) -> EventReceiver {
        self.shared.event_tx.subscribe()
    }

    /// The results of the last evaluation.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.shared.snapshot.load_full()
    }

    /// Whether an evaluation has completed since the start.
    pub fn is_ready(&self) -> bool {
        self.shared.ready.load(Ordering::Acquire)
    }

    /// The sidecar's own metrics.
    pub fn self_metrics(&self) -> &Arc<SelfMetrics> {
        &self.shared.metrics
    }

    /// Why the alert sink cannot keep notifications right now (its store
    /// cannot write), when it cannot.
    pub fn sink_problem(&self) -> Option<String> {
        self.shared.sink.as_ref().and_then(|sink| sink.problem())
    }

    /// The alert sink's delivery state (receivers, queues, dead letters),
    /// when one is attached.
    pub fn delivery_status(&self) -> Option<serde_json::Value> {
        self.shared.sink.as_ref().map(|sink| sink.status())
    }

    /// Stops the loop: an evaluation in progress is abandoned, the task is
    /// awaited. Calling it twice is harmless.
    pub async fn stop(&self) {
        self.shared.shutdown.cancel();
        let task = self.shared.task.lock().await.take();
        if let Some(task) = task
            && let Err(error) = task.await
        {
            tracing::error!(%error, "monitor task ended abnormally");
        }
    }
}
