//! [`AlertSink`]: where the evaluation loop hands its alert notices.

use std::sync::Arc;

use super::alert::AlertNotice;
use super::lifecycle::{AlertChanges, Lifecycle};

/// Why a sink could not keep or restore what it was given.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The sink's store failed: nothing of the evaluation was kept.
    #[error(transparent)]
    Store(Box<dyn std::error::Error + Send + Sync>),
}

impl SinkError {
    pub fn store(error: impl std::error::Error + Send + Sync + 'static) -> SinkError {
        SinkError::Store(Box::new(error))
    }
}

/// Where the evaluation loop hands its alert notices: a durable store such
/// as the webhook notifier's outbox.
pub trait AlertSink: Send + Sync + 'static {
    /// Stores the notices of one evaluation together with the lifecycle's
    /// changes since it was last stored ([`Lifecycle::changes`]),
    /// atomically, so that a crash loses neither or both. Called from a
    /// blocking thread.
    fn record(&self, notices: &[AlertNotice], changes: &AlertChanges) -> Result<(), SinkError>;
    /// The lifecycle stored last (`None`: nothing was stored), read once at
    /// start. Alerts it must write again (an older store format) are marked
    /// unstored.
    fn restore(&self) -> Result<Option<Lifecycle>, SinkError>;
    /// Why the sink cannot keep what it is given right now (its store
    /// cannot write), for readiness; `None` when it can.
    fn problem(&self) -> Option<String> {
        None
    }
    /// Delivery state for the status API, without secrets.
    fn status(&self) -> serde_json::Value;
    /// Told the lifecycle another sink restored ([`FanOut`]), by a sink that
    /// keeps no store of its own.
    fn restored(&self, _lifecycle: &Lifecycle) {}
}

/// Hands every notice to several sinks: the first one stores (its
/// `restore` is the lifecycle's, and the others are told it), the others
/// follow. A follower's error is returned after every sink had its turn.
pub struct FanOut {
    sinks: Vec<Arc<dyn AlertSink>>,
}

impl FanOut {
    /// `primary` stores; `followers` get the same notices.
    pub fn new(primary: Arc<dyn AlertSink>, followers: Vec<Arc<dyn AlertSink>>) -> FanOut {
        FanOut {
            sinks: std::iter::once(primary).chain(followers).collect(),
        }
    }
}

impl AlertSink for FanOut {
    fn record(&self, notices: &[AlertNotice], changes: &AlertChanges) -> Result<(), SinkError> {
        let mut result = Ok(());
        for sink in &self.sinks {
            let recorded = sink.record(notices, changes);
            if result.is_ok() {
                result = recorded;
            }
        }
        result
    }

    fn restore(&self) -> Result<Option<Lifecycle>, SinkError> {
        let restored = self.sinks[0].restore()?;
        if let Some(lifecycle) = &restored {
            for follower in &self.sinks[1..] {
                follower.restored(lifecycle);
            }
        }
        Ok(restored)
    }

    fn problem(&self) -> Option<String> {
        self.sinks.iter().find_map(|sink| sink.problem())
    }

    /// The sinks' status objects merged (the first one's keys win).
    fn status(&self) -> serde_json::Value {
        let mut merged = serde_json::Map::new();
        for sink in self.sinks.iter().rev() {
            if let serde_json::Value::Object(status) = sink.status() {
                merged.extend(status);
            }
        }
        serde_json::Value::Object(merged)
    }
}
