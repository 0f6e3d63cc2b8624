//! What an operator does to a stopped sidecar's store (`model-monitor
//! outbox`): list every receiver's pending notifications and dead letters,
//! put dead letters back into the outbox, and purge old ones (and a
//! removed receiver's pending notifications).
//!
//! These open the file as the sidecar does, so a running sidecar (which
//! holds redb's lock on it) makes them fail with [`ErrorKind::Locked`].

use std::path::Path;

use chrono::{DateTime, Utc};
use redb::{ReadableTable, TableDefinition};

use super::{
    AtPath, DEAD_LETTERS, DeadLetter, ErrorKind, FILE_NAME, Notification, OUTBOX, SEQUENCE, STATE,
    Store, StoreError, decode, encode,
};

/// Which dead letters to act on: all of them, a receiver's, or one by its
/// `webhook-id` (both filters together narrow).
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub receiver: Option<String>,
    pub id: Option<String>,
}

impl Selection {
    fn matches(&self, receiver: &str, notification: &Notification) -> bool {
        self.receiver.as_deref().is_none_or(|r| r == receiver)
            && self.id.as_deref().is_none_or(|id| id == notification.id)
    }
}

/// Every row of a (receiver, sequence) table, decoded.
fn rows<T: serde::de::DeserializeOwned>(
    store: &Store,
    table: TableDefinition<(&str, u64), &[u8]>,
) -> Result<Vec<(String, u64, T)>, StoreError> {
    let raw = store.read(|txn| {
        let mut rows = Vec::new();
        for row in txn.open_table(table)?.iter()? {
            let (key, value) = row?;
            let (receiver, sequence) = key.value();
            rows.push((receiver.to_owned(), sequence, value.value().to_vec()));
        }
        Ok(rows)
    })?;
    raw.into_iter()
        .map(|(receiver, sequence, bytes)| {
            Ok((receiver, sequence, decode(&bytes).at(&store.path)?))
        })
        .collect()
}

/// (receiver, webhook-id) of each dead letter.
fn ids(letters: Vec<(String, u64, DeadLetter)>) -> Vec<(String, String)> {
    letters
        .into_iter()
        .map(|(receiver, _, letter)| (receiver, letter.notification.id))
        .collect()
}

impl Store {
    /// The dead letters of `selection` that `keep` keeps.
    fn selected(
        &self,
        selection: &Selection,
        keep: impl Fn(&DeadLetter) -> bool,
    ) -> Result<Vec<(String, u64, DeadLetter)>, StoreError> {
        Ok(self
            .all_dead_letters()?
            .into_iter()
            .filter(|(receiver, _, letter)| {
                selection.matches(receiver, &letter.notification) && keep(letter)
            })
            .collect())
    }

    /// Opens an existing store in `dir` for an operator's command: never
    /// creates one, and fails when a running process holds it.
    pub fn open_existing(dir: &Path) -> Result<Store, StoreError> {
        let path = dir.join(FILE_NAME);
        if !path.is_file() {
            return Err(StoreError::new(
                &path,
                ErrorKind::Other,
                "no store file there (is --storage.path the sidecar's?)",
            ));
        }
        Store::open(dir)
    }

    /// Every receiver's pending notifications: (receiver, sequence,
    /// notification), in receiver and sequence order.
    pub fn all_pending(&self) -> Result<Vec<(String, u64, Notification)>, StoreError> {
        rows(self, OUTBOX)
    }

    /// Every receiver's dead letters, in receiver and sequence order.
    pub fn all_dead_letters(&self) -> Result<Vec<(String, u64, DeadLetter)>, StoreError> {
        rows(self, DEAD_LETTERS)
    }

    /// Moves the selected dead letters back into the outbox, each after its
    /// receiver's pending ones, as new notifications with the same
    /// `webhook-id` and body: no attempts yet, and created `now` (so that
    /// `max_age` counts from the replay). Returns (receiver, id) of each.
    pub fn replay(
        &self,
        selection: &Selection,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let chosen = self.selected(selection, |_| true)?;
        let mut encoded = Vec::with_capacity(chosen.len());
        for (receiver, sequence, letter) in &chosen {
            let notification = Notification {
                attempts: 0,
                next_attempt_at: None,
                last_error: None,
                created_at: now,
                ..letter.notification.clone()
            };
            encoded.push((
                receiver.as_str(),
                *sequence,
                encode(&notification).at(&self.path)?,
            ));
        }
        self.write(|txn| {
            let mut state = txn.open_table(STATE)?;
            let mut next = state
                .get(SEQUENCE)?
                .and_then(|v| v.value().try_into().ok().map(u64::from_be_bytes))
                .unwrap_or(0);
            let mut outbox = txn.open_table(OUTBOX)?;
            let mut dead = txn.open_table(DEAD_LETTERS)?;
            for (receiver, sequence, bytes) in &encoded {
                next += 1;
                dead.remove((*receiver, *sequence))?;
                outbox.insert((*receiver, next), bytes.as_slice())?;
            }
            state.insert(SEQUENCE, next.to_be_bytes().as_slice())?;
            Ok(())
        })?;
        Ok(ids(chosen))
    }

    /// Deletes `receiver`'s pending notifications created before `before`
    /// (those of a receiver no longer configured, which no one will send).
    /// Returns (receiver, id) of each.
    pub fn purge_pending(
        &self,
        receiver: &str,
        before: DateTime<Utc>,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let chosen: Vec<(String, u64, Notification)> = self
            .all_pending()?
            .into_iter()
            .filter(|(r, _, n)| r == receiver && n.created_at < before)
            .collect();
        self.remove_rows(OUTBOX, &chosen)?;
        Ok(chosen
            .into_iter()
            .map(|(receiver, _, notification)| (receiver, notification.id))
            .collect())
    }

    /// Deletes the `(receiver, sequence)` rows of `rows` from `table`.
    fn remove_rows<T>(
        &self,
        table: TableDefinition<(&str, u64), &[u8]>,
        rows: &[(String, u64, T)],
    ) -> Result<(), StoreError> {
        self.write(|txn| {
            let mut table = txn.open_table(table)?;
            for (receiver, sequence, _) in rows {
                table.remove((receiver.as_str(), *sequence))?;
            }
            Ok(())
        })
    }

    /// Deletes the selected dead letters that died before `before`.
    /// Returns (receiver, id) of each.
    pub fn purge(
        &self,
        selection: &Selection,
        before: DateTime<Utc>,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let chosen = self.selected(selection, |letter| letter.dead_at < before)?;
        self.remove_rows(DEAD_LETTERS, &chosen)?;
        Ok(ids(chosen))
    }
}
