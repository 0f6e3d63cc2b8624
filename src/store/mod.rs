//! The redb file under `--storage.path`: the alert lifecycle, the
//! notifications waiting for delivery, their dead letters and what the
//! notification gates remember, in one file, so that one transaction
//! writes an evaluation's alerts and notifications together.
//!
//! Tables (their names and encodings are the file format: a file written by
//! an earlier version opens unchanged):
//!
//! - `alert_progress` and `alert_details`: the alert lifecycle, two rows
//!   per alert under its key as JSON: its kind and progress, and its
//!   detection and metrics, each as JSON. Written when the alert changes
//!   (see [`Lifecycle::changes`](crate::alerting::Lifecycle::changes)), so
//!   that 50,000 alerts that go on firing cost no writes, and the details
//!   only when it makes a notice (is new or has a transition), so that an
//!   alert whose progress alone moved rewrites a small row (`alerts.rs`).
//! - `alerts`: from the version before, the whole alert as one JSON row
//!   per alert: read at start, moved to the two tables above by the next
//!   write.
//! - `outbox`: (receiver, sequence) to a [`Notification`] as JSON, its body
//!   fully rendered. Written before the first attempt, removed after a 2xx.
//! - `dead_letters`: (receiver, sequence) to a [`DeadLetter`] as JSON:
//!   rejected by the receiver (4xx other than 408 and 429) or older than
//!   `max_age`.
//! - `cooldowns`: (receiver, model) to the Unix millisecond of the last
//!   notification that passed the receiver's cooldown.
//! - `notified`: (receiver, alert fingerprint) to the Unix millisecond of a
//!   firing notification a receiver was told about, so that it gets that
//!   alert's resolution and no other.
//! - `state`: the sequence counter, a big-endian `u64` under `sequence`
//!   (and, from older versions, the whole lifecycle as one value under
//!   `lifecycle`: read at start, moved to the alert rows by the next write).
//!
//! The store implements what the layers above need and decides nothing:
//!
//! - `alerts.rs`: the alert rows and their older formats, as the
//!   [`AlertStore`](crate::alerting::AlertStore) the lifecycle needs.
//! - `gates.rs`: cooldowns and owed resolutions, as the
//!   [`GateLedger`](crate::alerting::GateLedger) the notification gates
//!   read; the rules are in `crate::alerting`.
//! - `outbox.rs`: notifications and dead letters, for the webhook sink.
//! - `admin.rs`: an operator's listing, replay and purge of a stopped
//!   sidecar's outbox.
//! - `file.rs`: the file: opening it (a corrupt one moved aside when
//!   allowed), and reopening it after an I/O error, with each failure
//!   counted.
//!
//! A [`Transaction`] holds all tables open: the webhook sink saves an
//! evaluation's alert changes, passes its notifications through their gates
//! and queues them in one, so that after a crash either all of it is there
//! or none of it.

mod admin;
mod alerts;
mod file;
mod gates;
mod outbox;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use redb::{ReadableDatabase, ReadableTable, Table, TableDefinition, WriteTransaction};
use serde::Serialize;
use serde::de::DeserializeOwned;

use file::{Classify, FileState, Operation};

pub use admin::Selection;
pub use file::{ErrorKind, OpenOptions, StoreError, quarantine_name};
pub use outbox::{Candidate, DeadLetter, Notification};

/// redb's page cache for the store file.
const CACHE_BYTES: usize = 8 * 1024 * 1024;

const ALERT_PROGRESS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("alert_progress");
const ALERT_DETAILS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("alert_details");
/// Alert rows of the version before: the whole alert as JSON.
const LEGACY_ALERTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("alerts");
const OUTBOX: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("outbox");
const DEAD_LETTERS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("dead_letters");
const COOLDOWNS: TableDefinition<(&str, &str), i64> = TableDefinition::new("cooldowns");
const NOTIFIED: TableDefinition<(&str, &str), i64> = TableDefinition::new("notified");
const STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("state");

/// The key under `state` of the last sequence number given out.
const SEQUENCE: &str = "sequence";

/// The store file inside `--storage.path`.
pub const FILE_NAME: &str = "outbox.redb";

/// Gives a redb or JSON error the store's path and its kind.
trait AtPath<T> {
    fn at(self, path: &Path) -> Result<T, StoreError>;
}

impl<T, E: Classify> AtPath<T> for Result<T, E> {
    fn at(self, path: &Path) -> Result<T, StoreError> {
        self.map_err(|error| {
            let message = error.to_string();
            StoreError::new(path, error.into_kind(), message)
        })
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(value)
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    serde_json::from_slice(bytes)
}

/// The redb database under `--storage.path`.
pub struct Store {
    file: FileState,
    path: PathBuf,
    quarantined: Option<PathBuf>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating the directory and file when needed) the store in
    /// `dir`; a corrupt file is an error.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Store::open_with(dir, OpenOptions::default())
    }

    /// Opens the store in `dir` with `options`.
    pub fn open_with(dir: &Path, options: OpenOptions) -> Result<Store, StoreError> {
        let path = dir.join(FILE_NAME);
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::new(
                &path,
                ErrorKind::Io,
                format!("cannot create the storage directory: {e}"),
            )
        })?;
        let (file, quarantined) = FileState::open(&path, options)?;
        let store = Store {
            file,
            path,
            quarantined,
        };
        // Create every table so that readers never meet a missing one.
        store.write(|txn| {
            txn.open_table(ALERT_PROGRESS)?;
            txn.open_table(ALERT_DETAILS)?;
            txn.open_table(LEGACY_ALERTS)?;
            txn.open_table(OUTBOX)?;
            txn.open_table(DEAD_LETTERS)?;
            txn.open_table(COOLDOWNS)?;
            txn.open_table(NOTIFIED)?;
            txn.open_table(STATE)?;
            Ok(())
        })?;
        Ok(store)
    }

    /// Runs `f` in a write transaction of its own and commits it (again
    /// after reopening the file, when an I/O error failed it).
    fn write<T>(
        &self,
        mut f: impl FnMut(&WriteTransaction) -> Result<T, redb::Error>,
    ) -> Result<T, StoreError> {
        self.with_db(Operation::Write, |db| {
            let txn = db.begin_write().at(&self.path)?;
            let value = f(&txn).at(&self.path)?;
            txn.commit().at(&self.path)?;
            Ok(value)
        })
    }

    fn read<T>(
        &self,
        mut f: impl FnMut(&redb::ReadTransaction) -> Result<T, redb::Error>,
    ) -> Result<T, StoreError> {
        self.with_db(Operation::Read, |db| {
            let txn = db.begin_read().at(&self.path)?;
            f(&txn).at(&self.path)
        })
    }
}

/// One write transaction with every table open, for an evaluation's alert
/// changes and notifications.
pub struct Transaction<'t> {
    path: &'t Path,
    alert_progress: Table<'t, &'static [u8], &'static [u8]>,
    alert_details: Table<'t, &'static [u8], &'static [u8]>,
    legacy_alerts: Table<'t, &'static [u8], &'static [u8]>,
    outbox: Table<'t, (&'static str, u64), &'static [u8]>,
    cooldowns: Table<'t, (&'static str, &'static str), i64>,
    notified: Table<'t, (&'static str, &'static str), i64>,
    state: Table<'t, &'static str, &'static [u8]>,
    /// The last sequence number given to a notification.
    sequence: u64,
}

impl<'t> Transaction<'t> {
    fn open(txn: &'t WriteTransaction, path: &'t Path) -> Result<Transaction<'t>, StoreError> {
        let state = txn.open_table(STATE).at(path)?;
        let sequence = state
            .get(SEQUENCE)
            .at(path)?
            .and_then(|v| v.value().try_into().ok().map(u64::from_be_bytes))
            .unwrap_or(0);
        Ok(Transaction {
            path,
            alert_progress: txn.open_table(ALERT_PROGRESS).at(path)?,
            alert_details: txn.open_table(ALERT_DETAILS).at(path)?,
            legacy_alerts: txn.open_table(LEGACY_ALERTS).at(path)?,
            outbox: txn.open_table(OUTBOX).at(path)?,
            cooldowns: txn.open_table(COOLDOWNS).at(path)?,
            notified: txn.open_table(NOTIFIED).at(path)?,
            state,
            sequence,
        })
    }

    /// Saves the sequence counter.
    fn finish(mut self) -> Result<(), StoreError> {
        let sequence = self.sequence.to_be_bytes();
        self.state
            .insert(SEQUENCE, sequence.as_slice())
            .at(self.path)?;
        Ok(())
    }
}
