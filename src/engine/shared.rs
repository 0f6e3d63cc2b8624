//! The state the handle and the loop share: the published snapshot, the
//! event channel, readiness, shutdown, the alert sink, and a reloaded
//! config's sources waiting for the loop.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::{Notify, broadcast};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::events::MonitorEvent;
use super::snapshot::Snapshot;
use super::source::{ScopedDetector, Source, config_names};
use crate::alerting::AlertSink;
use crate::telemetry::SelfMetrics;

/// Shared between the handle and the loop.
pub(super) struct Shared {
    pub(super) event_tx: broadcast::Sender<MonitorEvent>,
    pub(super) snapshot: ArcSwap<Snapshot>,
    pub(super) ready: AtomicBool,
    pub(super) shutdown: CancellationToken,
    pub(super) task: tokio::sync::Mutex<Option<JoinHandle<()>>>,
    pub(super) metrics: Arc<SelfMetrics>,
    /// Where alert notices are stored for delivery, if anywhere.
    pub(super) sink: Option<Arc<dyn AlertSink>>,
    /// A reloaded config's sources, waiting for the loop to take them.
    pub(super) reload: Pending,
}

/// A config's sources and interval, built, waiting for the loop.
pub(super) struct Reloaded {
    pub(super) sources: Vec<Source>,
    pub(super) interval: Duration,
    pub(super) query_offset: Duration,
}

/// The hand-over between [`ModelMonitor::reload`] and the loop.
pub(super) struct Pending {
    /// Signalled when a reload is waiting.
    pub(super) ready: Notify,
    pub(super) next: Mutex<Option<Reloaded>>,
    /// The config monitors the loop will run once it takes what waits.
    pub(super) names: Mutex<BTreeSet<String>>,
    /// The builder's detectors, which every source runs.
    pub(super) global_detectors: Vec<ScopedDetector>,
}

impl Pending {
    pub(super) fn new(global_detectors: Vec<ScopedDetector>, sources: &[Source]) -> Pending {
        Pending {
            ready: Notify::new(),
            next: Mutex::new(None),
            names: Mutex::new(config_names(sources)),
            global_detectors,
        }
    }
}
