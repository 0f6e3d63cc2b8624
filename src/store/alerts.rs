//! The alert rows: the [`AlertStore`] the lifecycle needs.
//!
//! One row per alert in `alerts`, written and deleted as alerts change.
//! Older versions kept the whole lifecycle as one JSON value under
//! `state`/`lifecycle`: it is read at start with the rows, its alerts are
//! marked unstored, and the next write moves them into rows and deletes it.

use redb::ReadableTable;

use super::{ALERTS, AtPath, Operation, STATE, Store, StoreError, Transaction, decode, encode};
use crate::alerting::{Alert, AlertChanges, AlertStore, AlertTransaction, Lifecycle};

/// The key under `state` where older versions kept the whole lifecycle.
pub(super) const LEGACY_LIFECYCLE: &str = "lifecycle";

impl AlertStore for Store {
    type Error = StoreError;
    type Transaction<'t> = Transaction<'t>;

    fn load_alerts(&self) -> Result<Option<Lifecycle>, StoreError> {
        let (rows, legacy) = self.read(|txn| {
            let alerts = txn.open_table(ALERTS)?;
            let mut rows = Vec::new();
            for row in alerts.iter()? {
                let (_, alert) = row?;
                rows.push(alert.value().to_vec());
            }
            let state = txn.open_table(STATE)?;
            let legacy = state.get(LEGACY_LIFECYCLE)?.map(|v| v.value().to_vec());
            Ok((rows, legacy))
        })?;
        let mut alerts = Vec::with_capacity(rows.len());
        for row in rows {
            alerts.push(decode::<Alert>(&row).at(&self.path)?);
        }
        if let Some(legacy) = legacy {
            let old: Lifecycle = decode(&legacy).at(&self.path)?;
            let mut lifecycle = Lifecycle::from_alerts(old.alerts.into_values().chain(alerts));
            lifecycle.mark_all_unstored();
            return Ok(Some(lifecycle));
        }
        if alerts.is_empty() {
            return Ok(None);
        }
        Ok(Some(Lifecycle::from_alerts(alerts)))
    }

    fn transaction<T>(
        &self,
        mut write: impl FnMut(&mut Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with_db(Operation::Write, |db| {
            let txn = db.begin_write().at(&self.path)?;
            let value = {
                let mut transaction = Transaction::open(&txn, &self.path)?;
                let value = write(&mut transaction)?;
                transaction.finish()?;
                value
            };
            txn.commit().at(&self.path)?;
            Ok(value)
        })
    }
}

impl AlertTransaction for Transaction<'_> {
    type Error = StoreError;

    fn save_alerts(&mut self, changes: &AlertChanges) -> Result<(), StoreError> {
        for alert in &changes.upserted {
            let key = encode(&alert.key).at(self.path)?;
            let value = encode(alert).at(self.path)?;
            self.alerts
                .insert(key.as_slice(), value.as_slice())
                .at(self.path)?;
        }
        for key in &changes.removed {
            let key = encode(key).at(self.path)?;
            self.alerts.remove(key.as_slice()).at(self.path)?;
        }
        // Read at start and marked unstored then, so it is in `alerts` now.
        self.state.remove(LEGACY_LIFECYCLE).at(self.path)?;
        Ok(())
    }
}
