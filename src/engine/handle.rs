//! [`ModelMonitor`]: the cheap-clone handle embedders hold on a running
//! evaluation loop.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::events::EventReceiver;
use super::shared::Shared;
use super::snapshot::Snapshot;
use crate::telemetry::SelfMetrics;

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
