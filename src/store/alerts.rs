//! The alert rows: the [`AlertStore`] the lifecycle needs.
//!
//! Two rows per alert, under the same key (the [`AlertKey`] as JSON):
//!
//! - `alert_progress`: its kind and [`Progress`], a hundred-odd bytes,
//!   written whenever the alert is stored (new, its progress moved, or a
//!   transition);
//! - `alert_details`: its detection (with the explanation) and metrics,
//!   about 1.5 KB, written only when the alert is stored whole (new, or a
//!   transition: whenever it makes a notice), in the same transaction as its
//!   progress row. A firing alert whose clean count moves rewrites a small
//!   row, not the big one.
//!
//! Both are deleted together when the alert ends. Restoring joins them; a
//! row without its other half (which no version writes) is not restored,
//! and the next write deletes it.
//!
//! Older formats are read at start, their alerts marked unstored, and the
//! next write moves them into the two tables and deletes them: the whole
//! [`Alert`] as one JSON row in `alerts` (the version before), and, older
//! still, the whole lifecycle as one JSON value under `state`/`lifecycle`.

use std::collections::HashMap;
use std::sync::Arc;

use redb::{ReadableTable, ReadableTableMetadata};
use serde::{Deserialize, Serialize};

use super::{
    ALERT_DETAILS, ALERT_PROGRESS, AtPath, LEGACY_ALERTS, Operation, STATE, Store, StoreError,
    Transaction, decode, encode,
};
use crate::alerting::{
    Alert, AlertChanges, AlertKey, AlertStore, AlertTransaction, Lifecycle, Progress,
};
use crate::detectors::AlertKind;
use crate::model::{DetectionRecord, InferenceMetrics};

/// The key under `state` where older versions kept the whole lifecycle.
pub(super) const LEGACY_LIFECYCLE: &str = "lifecycle";

/// An `alert_progress` row.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct ProgressRow {
    pub kind: AlertKind,
    pub progress: Progress,
}

/// An `alert_details` row, as written.
#[derive(Serialize)]
struct DetailsRef<'a> {
    detection: &'a DetectionRecord,
    metrics: &'a InferenceMetrics,
}

/// An `alert_details` row, as read.
#[derive(Deserialize)]
struct Details {
    detection: DetectionRecord,
    metrics: Arc<InferenceMetrics>,
}

/// Every alert row, as stored.
#[derive(Default)]
struct Rows {
    /// (key, `alert_progress` value), in key order.
    progress: Vec<(Vec<u8>, Vec<u8>)>,
    /// Key to `alert_details` value.
    details: HashMap<Vec<u8>, Vec<u8>>,
    /// `alerts` values (older format).
    legacy_rows: Vec<Vec<u8>>,
    /// The `state`/`lifecycle` value (oldest format).
    legacy_lifecycle: Option<Vec<u8>>,
}

impl Store {
    fn read_alert_rows(&self) -> Result<Rows, StoreError> {
        self.read(|txn| {
            let mut rows = Rows::default();
            for row in txn.open_table(ALERT_PROGRESS)?.iter()? {
                let (key, value) = row?;
                rows.progress
                    .push((key.value().to_vec(), value.value().to_vec()));
            }
            for row in txn.open_table(ALERT_DETAILS)?.iter()? {
                let (key, value) = row?;
                rows.details
                    .insert(key.value().to_vec(), value.value().to_vec());
            }
            for row in txn.open_table(LEGACY_ALERTS)?.iter()? {
                let (_, alert) = row?;
                rows.legacy_rows.push(alert.value().to_vec());
            }
            let state = txn.open_table(STATE)?;
            rows.legacy_lifecycle = state.get(LEGACY_LIFECYCLE)?.map(|v| v.value().to_vec());
            Ok(rows)
        })
    }
}

impl AlertStore for Store {
    type Error = StoreError;
    type Transaction<'t> = Transaction<'t>;

    fn load_alerts(&self) -> Result<Option<Lifecycle>, StoreError> {
        let Rows {
            progress,
            mut details,
            legacy_rows,
            legacy_lifecycle,
        } = self.read_alert_rows()?;
        let mut alerts = Vec::with_capacity(progress.len());
        let mut halves = Vec::new();
        for (key_bytes, row) in progress {
            let key: AlertKey = decode(&key_bytes).at(&self.path)?;
            let Some(other) = details.remove(&key_bytes) else {
                halves.push(key);
                continue;
            };
            let ProgressRow { kind, progress } = decode(&row).at(&self.path)?;
            let Details { detection, metrics } = decode(&other).at(&self.path)?;
            alerts.push(Alert {
                key,
                kind,
                progress,
                detection,
                metrics,
            });
        }
        for key_bytes in details.into_keys() {
            halves.push(decode(&key_bytes).at(&self.path)?);
        }
        let mut old = Vec::new();
        if let Some(value) = &legacy_lifecycle {
            let lifecycle: Lifecycle = decode(value).at(&self.path)?;
            old.extend(lifecycle.alerts.into_values());
        }
        let converted = legacy_lifecycle.is_some() || !legacy_rows.is_empty();
        // An `alerts` row next to the new ones was written after them, by
        // an older version (the first write of this one deletes them all).
        let mut newer = Vec::with_capacity(legacy_rows.len());
        for row in legacy_rows {
            newer.push(decode::<Alert>(&row).at(&self.path)?);
        }
        let mut lifecycle = Lifecycle::from_alerts(old.into_iter().chain(alerts).chain(newer));
        if converted {
            lifecycle.mark_all_unstored();
        }
        if !halves.is_empty() {
            tracing::warn!(
                path = %self.path.display(),
                rows = halves.len(),
                "alert rows without their progress or details: not restored, deleted by the next write"
            );
        }
        for key in halves {
            if !lifecycle.alerts.contains_key(&key) {
                lifecycle.mark_unstored(key);
            }
        }
        if lifecycle.alerts.is_empty() && !lifecycle.has_unstored_changes() {
            return Ok(None);
        }
        Ok(Some(lifecycle))
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
        // Rows of the older format are all read at start and marked
        // unstored then, so they are all upserted (or removed) now.
        let legacy = !self.legacy_alerts.is_empty().at(self.path)?;
        for alert in &changes.upserted {
            let key = encode(&alert.key).at(self.path)?;
            self.insert_progress(&key, alert.kind, alert.progress)?;
            let details = DetailsRef {
                detection: &alert.detection,
                metrics: &alert.metrics,
            };
            let details = encode(&details).at(self.path)?;
            self.alert_details
                .insert(key.as_slice(), details.as_slice())
                .at(self.path)?;
            if legacy {
                self.legacy_alerts.remove(key.as_slice()).at(self.path)?;
            }
        }
        for progressed in &changes.progressed {
            let key = encode(&progressed.key).at(self.path)?;
            self.insert_progress(&key, progressed.kind, progressed.progress)?;
        }
        for key in &changes.removed {
            let key = encode(key).at(self.path)?;
            self.alert_progress.remove(key.as_slice()).at(self.path)?;
            self.alert_details.remove(key.as_slice()).at(self.path)?;
            if legacy {
                self.legacy_alerts.remove(key.as_slice()).at(self.path)?;
            }
        }
        // Read at start and marked unstored then, so it is in rows now.
        self.state.remove(LEGACY_LIFECYCLE).at(self.path)?;
        Ok(())
    }
}

impl Transaction<'_> {
    fn insert_progress(
        &mut self,
        key: &[u8],
        kind: AlertKind,
        progress: Progress,
    ) -> Result<(), StoreError> {
        let row = encode(&ProgressRow { kind, progress }).at(self.path)?;
        self.alert_progress
            .insert(key, row.as_slice())
            .at(self.path)?;
        Ok(())
    }
}
