//! [`AlertSink`]: where the evaluation loop hands its alert notices.

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
}
