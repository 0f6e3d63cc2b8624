//! The durable outbox: notifications waiting for delivery, dead letters,
//! and the alert state that must survive a restart, in one redb file.
//!
//! Tables:
//!
//! - `outbox`: (receiver, sequence) to a [`Notification`], its body fully
//!   rendered. Written before the first attempt, removed after a 2xx.
//! - `dead_letters`: (receiver, sequence) to a [`DeadLetter`]: rejected by
//!   the receiver (4xx other than 408 and 429) or older than `max_age`.
//! - `cooldowns`: (receiver, model) to the Unix millisecond of the last
//!   notification that passed the receiver's cooldown.
//! - `notified`: (receiver, alert fingerprint) for firing alerts a receiver
//!   was told about, so that it gets their resolution and no other.
//! - `alerts`: the alert lifecycle, one row per alert (its key as JSON to
//!   the alert as JSON), written when the alert changes (see
//!   [`Lifecycle::changes`]), so that 50,000 alerts that go on firing cost
//!   no writes.
//! - `state`: the sequence counter (and, from older versions, the whole
//!   lifecycle as one value under `lifecycle`: read at start, moved to
//!   `alerts` by the next write).
//!
//! [`Outbox::record`] writes one evaluation's notifications, cooldowns and
//! lifecycle changes in one transaction: after a crash either all of it is
//! there or none of it, and the lifecycle never says "notified" for a
//! notification that is not stored.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::alerting::{Alert, AlertChanges, Lifecycle};

/// redb's page cache for the outbox file.
const OUTBOX_CACHE_BYTES: usize = 8 * 1024 * 1024;

const OUTBOX: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("outbox");
const DEAD_LETTERS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("dead_letters");
const COOLDOWNS: TableDefinition<(&str, &str), i64> = TableDefinition::new("cooldowns");
const NOTIFIED: TableDefinition<(&str, &str), i64> = TableDefinition::new("notified");
const STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("state");
const ALERTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("alerts");

/// The key under `state` where older versions kept the whole lifecycle.
const LEGACY_LIFECYCLE: &str = "lifecycle";

/// The outbox file inside `--storage.path`.
pub const FILE_NAME: &str = "outbox.redb";

/// One rendered notification for one receiver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// The `webhook-id`: the same on every attempt, before and after restarts.
    pub id: String,
    pub created_at: DateTime<Utc>,
    /// The request body, rendered when the notification was stored.
    pub body: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// Not before this time (backoff, `Retry-After`); `None`: now.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// What it is about, for the status API (`firing drift fraud v3 ...`).
    pub summary: String,
}

/// A notification that will not be delivered, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    #[serde(flatten)]
    pub notification: Notification,
    pub reason: String,
    pub dead_at: DateTime<Utc>,
}

/// What decides whether a candidate notification is stored.
#[derive(Debug, Clone, PartialEq)]
pub enum Gate {
    /// Stored.
    Always,
    /// Stored when the receiver sent nothing for `model` within `cooldown`
    /// before `at`; then the cooldown restarts at `at`.
    Cooldown {
        model: String,
        cooldown: Duration,
        at: DateTime<Utc>,
    },
    /// A resolution: stored only when the receiver was told the alert fired.
    Resolution,
}

/// A notification the notifier would like to store.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub receiver: String,
    pub notification: Notification,
    pub gate: Gate,
    /// The alert's fingerprint.
    pub fingerprint: String,
    /// A firing notice: when stored, the receiver is owed its resolution.
    pub firing: bool,
}

/// An outbox failure. Never carries notification bodies or URLs.
#[derive(Debug, thiserror::Error)]
#[error("outbox {path}: {message}")]
pub struct OutboxError {
    path: PathBuf,
    message: String,
}

/// The redb database under `--storage.path`.
pub struct Outbox {
    db: Database,
    path: PathBuf,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").field("path", &self.path).finish()
    }
}

impl Outbox {
    /// Opens (creating the directory and file when needed) the outbox in `dir`.
    pub fn open(dir: &Path) -> Result<Outbox, OutboxError> {
        let path = dir.join(FILE_NAME);
        let error = |message: String| OutboxError {
            path: path.clone(),
            message,
        };
        std::fs::create_dir_all(dir)
            .map_err(|e| error(format!("cannot create the storage directory: {e}")))?;
        // The outbox is written once per evaluation and read by the delivery
        // workers, never scanned hot: a small page cache is enough (redb's
        // default of 1 GiB would let a large alert state fill the RSS).
        let db = redb::Builder::new()
            .set_cache_size(OUTBOX_CACHE_BYTES)
            .create(&path)
            .map_err(|e| error(format!("cannot open: {e}")))?;
        let outbox = Outbox { db, path };
        // Create every table so that readers never meet a missing one.
        outbox.write(|txn| {
            txn.open_table(OUTBOX)?;
            txn.open_table(DEAD_LETTERS)?;
            txn.open_table(COOLDOWNS)?;
            txn.open_table(NOTIFIED)?;
            txn.open_table(STATE)?;
            txn.open_table(ALERTS)?;
            Ok(())
        })?;
        Ok(outbox)
    }

    fn error(&self, message: impl std::fmt::Display) -> OutboxError {
        OutboxError {
            path: self.path.clone(),
            message: message.to_string(),
        }
    }

    fn write<T>(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<T, redb::Error>,
    ) -> Result<T, OutboxError> {
        let txn = self.db.begin_write().map_err(|e| self.error(e))?;
        let value = f(&txn).map_err(|e| self.error(e))?;
        txn.commit().map_err(|e| self.error(e))?;
        Ok(value)
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&redb::ReadTransaction) -> Result<T, redb::Error>,
    ) -> Result<T, OutboxError> {
        let txn = self.db.begin_read().map_err(|e| self.error(e))?;
        f(&txn).map_err(|e| self.error(e))
    }

    fn json<T: Serialize>(&self, value: &T) -> Result<Vec<u8>, OutboxError> {
        serde_json::to_vec(value).map_err(|e| self.error(e))
    }

    /// Stores the candidates that pass their gates and the lifecycle's
    /// changes, in one transaction. Returns the receivers that got a
    /// notification.
    pub fn record(
        &self,
        candidates: &[Candidate],
        changes: &AlertChanges,
    ) -> Result<Vec<String>, OutboxError> {
        let mut upserted = Vec::with_capacity(changes.upserted.len());
        for alert in &changes.upserted {
            upserted.push((self.json(&alert.key)?, self.json(alert)?));
        }
        let mut removed = Vec::with_capacity(changes.removed.len());
        for key in &changes.removed {
            removed.push(self.json(key)?);
        }
        self.write(|txn| {
            let mut alerts = txn.open_table(ALERTS)?;
            for (key, alert) in &upserted {
                alerts.insert(key.as_slice(), alert.as_slice())?;
            }
            for key in &removed {
                alerts.remove(key.as_slice())?;
            }
            let mut outbox = txn.open_table(OUTBOX)?;
            let mut cooldowns = txn.open_table(COOLDOWNS)?;
            let mut notified = txn.open_table(NOTIFIED)?;
            let mut state = txn.open_table(STATE)?;
            let mut sequence = state
                .get("sequence")?
                .and_then(|v| v.value().try_into().ok().map(u64::from_be_bytes))
                .unwrap_or(0);
            let mut receivers = Vec::new();
            for candidate in candidates {
                let receiver = candidate.receiver.as_str();
                let pass = match &candidate.gate {
                    Gate::Always => true,
                    Gate::Cooldown {
                        model,
                        cooldown,
                        at,
                    } => {
                        let last = cooldowns
                            .get((receiver, model.as_str()))?
                            .map(|v| v.value());
                        let until = last.map(|ms| ms.saturating_add(cooldown.as_millis() as i64));
                        let pass = until.is_none_or(|until| at.timestamp_millis() >= until);
                        if pass {
                            cooldowns.insert((receiver, model.as_str()), at.timestamp_millis())?;
                        }
                        pass
                    }
                    Gate::Resolution => notified
                        .remove((receiver, candidate.fingerprint.as_str()))?
                        .is_some(),
                };
                if !pass {
                    continue;
                }
                if candidate.firing {
                    notified.insert(
                        (receiver, candidate.fingerprint.as_str()),
                        candidate.notification.created_at.timestamp_millis(),
                    )?;
                }
                sequence += 1;
                let bytes = serde_json::to_vec(&candidate.notification)
                    .map_err(|e| redb::Error::Corrupted(e.to_string()))?;
                outbox.insert((receiver, sequence), bytes.as_slice())?;
                if !receivers.iter().any(|r| r == receiver) {
                    receivers.push(receiver.to_owned());
                }
            }
            state.insert("sequence", sequence.to_be_bytes().as_slice())?;
            // Read at start and marked unstored then, so it is in `alerts` now.
            state.remove(LEGACY_LIFECYCLE)?;
            Ok(receivers)
        })
    }

    /// The lifecycle stored last, `None` when nothing was ever stored. Alerts
    /// found in the older one-value format are marked unstored, so that the
    /// next [`Outbox::record`] moves them to the `alerts` table.
    pub fn lifecycle(&self) -> Result<Option<Lifecycle>, OutboxError> {
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
            alerts.push(serde_json::from_slice::<Alert>(&row).map_err(|e| self.error(e))?);
        }
        if let Some(legacy) = legacy {
            let old: Lifecycle = serde_json::from_slice(&legacy).map_err(|e| self.error(e))?;
            let mut lifecycle = Lifecycle::from_alerts(old.alerts.into_values().chain(alerts));
            lifecycle.mark_all_unstored();
            return Ok(Some(lifecycle));
        }
        if alerts.is_empty() {
            return Ok(None);
        }
        Ok(Some(Lifecycle::from_alerts(alerts)))
    }

    /// The receiver's pending notifications, oldest first, with their keys.
    pub fn pending(&self, receiver: &str) -> Result<Vec<(u64, Notification)>, OutboxError> {
        self.first_pending(receiver, usize::MAX)
    }

    /// The receiver's oldest `limit` pending notifications, with their keys.
    pub fn first_pending(
        &self,
        receiver: &str,
        limit: usize,
    ) -> Result<Vec<(u64, Notification)>, OutboxError> {
        let rows = self.read(|txn| {
            let table = txn.open_table(OUTBOX)?;
            let mut rows = Vec::new();
            for row in table
                .range((receiver, 0)..=(receiver, u64::MAX))?
                .take(limit)
            {
                let (key, value) = row?;
                rows.push((key.value().1, value.value().to_vec()));
            }
            Ok(rows)
        })?;
        rows.into_iter()
            .map(|(seq, bytes)| {
                serde_json::from_slice(&bytes)
                    .map(|n| (seq, n))
                    .map_err(|e| self.error(e))
            })
            .collect()
    }

    /// The receiver's oldest pending notification and how many are pending,
    /// without decoding the rest (the delivery loop's read).
    pub fn head(&self, receiver: &str) -> Result<(Option<(u64, Notification)>, u64), OutboxError> {
        let (head, depth) = self.read(|txn| {
            let table = txn.open_table(OUTBOX)?;
            let mut head = None;
            let mut depth = 0;
            for row in table.range((receiver, 0)..=(receiver, u64::MAX))? {
                let (key, value) = row?;
                if head.is_none() {
                    head = Some((key.value().1, value.value().to_vec()));
                }
                depth += 1;
            }
            Ok((head, depth))
        })?;
        let head = head
            .map(|(seq, bytes)| {
                serde_json::from_slice(&bytes)
                    .map(|n| (seq, n))
                    .map_err(|e| self.error(e))
            })
            .transpose()?;
        Ok((head, depth))
    }

    /// Saves a notification's attempt count, next attempt and last error.
    pub fn update(
        &self,
        receiver: &str,
        sequence: u64,
        notification: &Notification,
    ) -> Result<(), OutboxError> {
        let bytes = serde_json::to_vec(notification).map_err(|e| self.error(e))?;
        self.write(|txn| {
            let mut table = txn.open_table(OUTBOX)?;
            table.insert((receiver, sequence), bytes.as_slice())?;
            Ok(())
        })
    }

    /// Removes a delivered notification.
    pub fn complete(&self, receiver: &str, sequence: u64) -> Result<(), OutboxError> {
        self.write(|txn| {
            txn.open_table(OUTBOX)?.remove((receiver, sequence))?;
            Ok(())
        })
    }

    /// Moves a notification to the dead-letter table.
    pub fn dead_letter(
        &self,
        receiver: &str,
        sequence: u64,
        letter: &DeadLetter,
    ) -> Result<(), OutboxError> {
        let bytes = serde_json::to_vec(letter).map_err(|e| self.error(e))?;
        self.write(|txn| {
            txn.open_table(OUTBOX)?.remove((receiver, sequence))?;
            txn.open_table(DEAD_LETTERS)?
                .insert((receiver, sequence), bytes.as_slice())?;
            Ok(())
        })
    }

    /// The receiver's dead letters, oldest first.
    pub fn dead_letters(&self, receiver: &str) -> Result<Vec<DeadLetter>, OutboxError> {
        self.last_dead_letters(receiver, usize::MAX)
    }

    /// The receiver's newest `limit` dead letters, oldest first.
    pub fn last_dead_letters(
        &self,
        receiver: &str,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, OutboxError> {
        let rows = self.read(|txn| {
            let table = txn.open_table(DEAD_LETTERS)?;
            let mut rows = Vec::new();
            for row in table.range((receiver, 0)..=(receiver, u64::MAX))?.rev() {
                if rows.len() == limit {
                    break;
                }
                rows.push(row?.1.value().to_vec());
            }
            rows.reverse();
            Ok(rows)
        })?;
        rows.into_iter()
            .map(|bytes| serde_json::from_slice(&bytes).map_err(|e| self.error(e)))
            .collect()
    }

    /// Every receiver with pending notifications (read once at start, to
    /// warn about receivers removed from the config).
    pub fn receivers(&self) -> Result<std::collections::BTreeSet<String>, OutboxError> {
        self.read(|txn| {
            let table = txn.open_table(OUTBOX)?;
            let mut receivers = std::collections::BTreeSet::new();
            for row in table.iter()? {
                receivers.insert(row?.0.value().0.to_owned());
            }
            Ok(receivers)
        })
    }

    /// Pending and dead-letter counts of a receiver.
    pub fn counts(&self, receiver: &str) -> Result<(u64, u64), OutboxError> {
        self.read(|txn| {
            let count =
                |table: redb::ReadOnlyTable<(&str, u64), &[u8]>| -> Result<u64, redb::Error> {
                    let mut n = 0;
                    for row in table.range((receiver, 0)..=(receiver, u64::MAX))? {
                        row?;
                        n += 1;
                    }
                    Ok(n)
                };
            Ok((
                count(txn.open_table(OUTBOX)?)?,
                count(txn.open_table(DEAD_LETTERS)?)?,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notification(id: &str) -> Notification {
        Notification {
            id: id.to_owned(),
            created_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            body: "{}".to_owned(),
            attempts: 0,
            next_attempt_at: None,
            last_error: None,
            summary: "s".to_owned(),
        }
    }

    fn candidate(receiver: &str, id: &str, gate: Gate, firing: bool) -> Candidate {
        Candidate {
            receiver: receiver.to_owned(),
            notification: notification(id),
            gate,
            fingerprint: "f".to_owned(),
            firing,
        }
    }

    #[test]
    fn gates_cooldowns_and_resolutions_persist_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let at = |s: i64| DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap();
        let cooldown = |s| Gate::Cooldown {
            model: "fraud".to_owned(),
            cooldown: Duration::from_secs(3600),
            at: at(s),
        };
        {
            let outbox = Outbox::open(dir.path()).unwrap();
            let stored = outbox
                .record(
                    &[
                        candidate("retrain", "a", cooldown(0), true),
                        candidate("retrain", "b", cooldown(60), true),
                        candidate("slack", "c", Gate::Resolution, false),
                    ],
                    &AlertChanges::default(),
                )
                .unwrap();
            assert_eq!(stored, ["retrain"]);
        }
        let outbox = Outbox::open(dir.path()).unwrap();
        let ids = |r: &str| -> Vec<String> {
            outbox
                .pending(r)
                .unwrap()
                .into_iter()
                .map(|(_, n)| n.id)
                .collect()
        };
        assert_eq!(ids("retrain"), ["a"]);
        outbox
            .record(
                &[
                    candidate("retrain", "d", cooldown(1800), true),
                    candidate("retrain", "e", cooldown(3600), true),
                    candidate("retrain", "r1", Gate::Resolution, false),
                    candidate("retrain", "r2", Gate::Resolution, false),
                ],
                &AlertChanges::default(),
            )
            .unwrap();
        assert_eq!(ids("retrain"), ["a", "e", "r1"]);
        let (seq, first) = outbox.pending("retrain").unwrap().remove(0);
        outbox.complete("retrain", seq).unwrap();
        let (seq, second) = outbox.pending("retrain").unwrap().remove(0);
        outbox
            .dead_letter(
                "retrain",
                seq,
                &DeadLetter {
                    notification: second,
                    reason: "http 400".to_owned(),
                    dead_at: at(10),
                },
            )
            .unwrap();
        assert_eq!(first.id, "a");
        assert_eq!(outbox.counts("retrain").unwrap(), (1, 1));
        assert_eq!(
            outbox.dead_letters("retrain").unwrap()[0].notification.id,
            "e"
        );
        assert_eq!(outbox.lifecycle().unwrap(), None);
    }

    fn alert(model: &str, state: crate::alerting::AlertState) -> Alert {
        Alert {
            key: crate::alerting::AlertKey {
                source: "m".into(),
                labels: [("model".to_owned(), model.to_owned())].into(),
                signal: "confidence".into(),
                detector: "psi".into(),
            },
            kind: crate::detectors::AlertKind::Drift,
            progress: crate::alerting::Progress {
                state,
                drifting: 1,
                clean: 0,
                active_since: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
                fired_at: None,
                last_notified: None,
            },
            detection: crate::model::DetectionRecord {
                score: 0.5,
                threshold: 0.1,
                p_value: None,
                current_samples: 100.0,
                reference_samples: 100.0,
            },
            metrics: std::sync::Arc::new(crate::model::InferenceMetrics {
                model_name: model.to_owned(),
                model_version: String::new(),
                monitor: "m".to_owned(),
                labels: Default::default(),
                timestamp: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
                confidence_mean: None,
                confidence_std: None,
                p50_latency_ms: None,
                p95_latency_ms: None,
                p99_latency_ms: None,
                signals: Default::default(),
            }),
        }
    }

    /// Alerts are rows written and deleted as they change; what a reopened
    /// outbox restores is the sum of the changes.
    #[test]
    fn the_lifecycle_is_stored_as_its_changes() {
        use crate::alerting::AlertState::{Firing, Pending};
        let dir = tempfile::tempdir().unwrap();
        {
            let outbox = Outbox::open(dir.path()).unwrap();
            assert_eq!(outbox.lifecycle().unwrap(), None);
            let changes = AlertChanges {
                upserted: vec![alert("a", Pending), alert("b", Pending)],
                removed: vec![],
            };
            outbox.record(&[], &changes).unwrap();
            let changes = AlertChanges {
                upserted: vec![alert("a", Firing)],
                removed: vec![alert("b", Pending).key],
            };
            outbox.record(&[], &changes).unwrap();
        }
        let outbox = Outbox::open(dir.path()).unwrap();
        let restored = outbox.lifecycle().unwrap().unwrap();
        assert_eq!(restored, Lifecycle::from_alerts([alert("a", Firing)]));
        assert!(!restored.has_unstored_changes());
    }

    /// A lifecycle stored whole by an older version is restored, and the
    /// next write moves it into rows.
    #[test]
    fn a_lifecycle_stored_whole_moves_to_rows() {
        use crate::alerting::AlertState::Firing;
        let dir = tempfile::tempdir().unwrap();
        let old = Lifecycle::from_alerts([alert("a", Firing), alert("b", Firing)]);
        {
            let outbox = Outbox::open(dir.path()).unwrap();
            let bytes = serde_json::to_vec(&old).unwrap();
            outbox
                .write(|txn| {
                    txn.open_table(STATE)?
                        .insert(LEGACY_LIFECYCLE, bytes.as_slice())?;
                    Ok(())
                })
                .unwrap();
        }
        let outbox = Outbox::open(dir.path()).unwrap();
        let mut restored = outbox.lifecycle().unwrap().unwrap();
        assert_eq!(restored, old);
        assert_eq!(restored.changes().upserted.len(), 2);
        outbox.record(&[], &restored.changes()).unwrap();
        restored.mark_stored();
        let legacy = outbox
            .read(|txn| Ok(txn.open_table(STATE)?.get(LEGACY_LIFECYCLE)?.is_some()))
            .unwrap();
        assert!(!legacy);
        let again = outbox.lifecycle().unwrap().unwrap();
        assert_eq!(again, old);
        assert!(!again.has_unstored_changes());
    }
}
