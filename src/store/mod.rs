//! The redb file under `--storage.path`: the alert lifecycle, the
//! notifications waiting for delivery, their dead letters and what the
//! notification gates remember, in one file, so that one transaction
//! writes an evaluation's alerts and notifications together.
//!
//! Tables (their names and encodings are the file format: a file written by
//! an earlier version opens unchanged):
//!
//! - `alerts`: the alert lifecycle, one row per alert (its key as JSON to
//!   the alert as JSON), written when the alert changes (see
//!   [`Lifecycle::changes`](crate::alerting::Lifecycle::changes)), so that
//!   50,000 alerts that go on firing cost no writes.
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
//!   `lifecycle`: read at start, moved to `alerts` by the next write).
//!
//! The store implements what the layers above need and decides nothing:
//!
//! - `alerts.rs`: the alert rows, as the
//!   [`AlertStore`](crate::alerting::AlertStore) the lifecycle needs.
//! - `gates.rs`: cooldowns and owed resolutions, as the
//!   [`GateLedger`](crate::alerting::GateLedger) the notification gates
//!   read; the rules are in `crate::alerting`.
//! - `outbox.rs`: notifications and dead letters, for the webhook sink.
//!
//! A [`Transaction`] holds all tables open: the webhook sink saves an
//! evaluation's alert changes, passes its notifications through their gates
//! and queues them in one, so that after a crash either all of it is there
//! or none of it.

mod alerts;
mod gates;
mod outbox;
#[cfg(test)]
mod tests;

use std::fmt::Display;
use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, Table, TableDefinition, WriteTransaction};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use outbox::{Candidate, DeadLetter, Notification};

/// redb's page cache for the store file.
const CACHE_BYTES: usize = 8 * 1024 * 1024;

const ALERTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("alerts");
const OUTBOX: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("outbox");
const DEAD_LETTERS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("dead_letters");
const COOLDOWNS: TableDefinition<(&str, &str), i64> = TableDefinition::new("cooldowns");
const NOTIFIED: TableDefinition<(&str, &str), i64> = TableDefinition::new("notified");
const STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("state");

/// The key under `state` of the last sequence number given out.
const SEQUENCE: &str = "sequence";

/// The store file inside `--storage.path`.
pub const FILE_NAME: &str = "outbox.redb";

/// A store failure. Never carries notification bodies or URLs.
#[derive(Debug, thiserror::Error)]
#[error("outbox {path}: {message}")]
pub struct StoreError {
    path: PathBuf,
    message: String,
}

impl StoreError {
    fn new(path: &Path, message: impl Display) -> StoreError {
        StoreError {
            path: path.to_owned(),
            message: message.to_string(),
        }
    }
}

/// Gives a redb or JSON error the store's path.
trait AtPath<T> {
    fn at(self, path: &Path) -> Result<T, StoreError>;
}

impl<T, E: Display> AtPath<T> for Result<T, E> {
    fn at(self, path: &Path) -> Result<T, StoreError> {
        self.map_err(|error| StoreError::new(path, error))
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
    db: Database,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating the directory and file when needed) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let path = dir.join(FILE_NAME);
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::new(&path, format!("cannot create the storage directory: {e}"))
        })?;
        // The store is written once per evaluation and read by the delivery
        // workers, never scanned hot: a small page cache is enough (redb's
        // default of 1 GiB would let a large alert state fill the RSS).
        let db = redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create(&path)
            .map_err(|e| StoreError::new(&path, format!("cannot open: {e}")))?;
        let store = Store { db, path };
        // Create every table so that readers never meet a missing one.
        store.write(|txn| {
            txn.open_table(ALERTS)?;
            txn.open_table(OUTBOX)?;
            txn.open_table(DEAD_LETTERS)?;
            txn.open_table(COOLDOWNS)?;
            txn.open_table(NOTIFIED)?;
            txn.open_table(STATE)?;
            Ok(())
        })?;
        Ok(store)
    }

    /// Runs `f` in a write transaction of its own and commits it.
    fn write<T>(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<T, redb::Error>,
    ) -> Result<T, StoreError> {
        let txn = self.db.begin_write().at(&self.path)?;
        let value = f(&txn).at(&self.path)?;
        txn.commit().at(&self.path)?;
        Ok(value)
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&redb::ReadTransaction) -> Result<T, redb::Error>,
    ) -> Result<T, StoreError> {
        let txn = self.db.begin_read().at(&self.path)?;
        f(&txn).at(&self.path)
    }
}

/// One write transaction with every table open, for an evaluation's alert
/// changes and notifications.
pub struct Transaction<'t> {
    path: &'t Path,
    alerts: Table<'t, &'static [u8], &'static [u8]>,
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
            alerts: txn.open_table(ALERTS).at(path)?,
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
