//! [`AlertStore`]: what keeps the lifecycle across restarts.
//!
//! A store writes only the alerts that changed ([`Lifecycle::changes`]),
//! and of an alert whose progress alone moved only its progress: its
//! detection and metrics are rewritten only with a notice (its creation or
//! a transition). It writes them inside a transaction that also
//! holds what a sink stores about the same evaluation (its notifications and
//! the gates they passed): after a crash either all of it is there or none
//! of it, and the lifecycle never says "notified" for a notification that
//! is not stored. The redb file under `--storage.path` is the one
//! implementation.

use super::lifecycle::{AlertChanges, Lifecycle};

/// Keeps the lifecycle across restarts.
pub trait AlertStore {
    type Error: std::error::Error + Send + Sync + 'static;
    /// One write transaction: the lifecycle's changes and whatever a sink
    /// writes with them.
    type Transaction<'t>: AlertTransaction<Error = Self::Error>;

    /// The alerts stored last, `None` when nothing was ever stored. Alerts
    /// the store must write again (an older format) are marked unstored.
    fn load_alerts(&self) -> Result<Option<Lifecycle>, Self::Error>;

    /// Runs `write` in one transaction, committed when it returns `Ok` and
    /// dropped, with everything written in it, when it returns `Err`. A
    /// store may run `write` again in a new transaction when the first one
    /// failed to commit.
    fn transaction<T>(
        &self,
        write: impl FnMut(&mut Self::Transaction<'_>) -> Result<T, Self::Error>,
    ) -> Result<T, Self::Error>;
}

/// A store's write transaction, as the lifecycle sees it.
pub trait AlertTransaction {
    type Error;
    /// Writes the alerts that changed (whole, or only the progress of the
    /// `progressed` ones) and deletes the ones that ended.
    fn save_alerts(&mut self, changes: &AlertChanges) -> Result<(), Self::Error>;
}
