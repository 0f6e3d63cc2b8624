//! Notifications waiting for delivery (`outbox`) and the ones that will not
//! be delivered (`dead_letters`), each receiver's in sequence order.
//!
//! The webhook sink queues notifications inside a [`Transaction`], after
//! their gates; its delivery workers read, update and remove them one at a
//! time.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use redb::{ReadOnlyTable, ReadableTable};
use serde::{Deserialize, Serialize};

use super::{AtPath, DEAD_LETTERS, OUTBOX, Store, StoreError, Transaction, decode, encode};
use crate::alerting::Gate;

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

/// A notification the webhook sink would like to queue, and the gate it
/// must pass first.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub receiver: String,
    pub notification: Notification,
    pub gate: Gate,
    /// The alert's fingerprint.
    pub fingerprint: String,
}

impl Transaction<'_> {
    /// Queues the candidates that pass their gates, in order. Returns the
    /// receivers that got a notification.
    pub fn offer(&mut self, candidates: &[Candidate]) -> Result<Vec<String>, StoreError> {
        let mut receivers: Vec<String> = Vec::new();
        for candidate in candidates {
            let Candidate {
                receiver,
                notification,
                gate,
                fingerprint,
            } = candidate;
            if !gate.admit(self, receiver, fingerprint, notification.created_at)? {
                continue;
            }
            self.enqueue(receiver, notification)?;
            if !receivers.contains(receiver) {
                receivers.push(receiver.clone());
            }
        }
        Ok(receivers)
    }

    /// Queues a notification after the receiver's others; returns its
    /// sequence number.
    pub fn enqueue(
        &mut self,
        receiver: &str,
        notification: &Notification,
    ) -> Result<u64, StoreError> {
        self.sequence += 1;
        let bytes = encode(notification).at(self.path)?;
        self.outbox
            .insert((receiver, self.sequence), bytes.as_slice())
            .at(self.path)?;
        Ok(self.sequence)
    }
}

/// Decodes stored rows.
fn decode_rows<T: serde::de::DeserializeOwned>(
    store: &Store,
    rows: Vec<(u64, Vec<u8>)>,
) -> Result<Vec<(u64, T)>, StoreError> {
    rows.into_iter()
        .map(|(sequence, bytes)| Ok((sequence, decode(&bytes).at(&store.path)?)))
        .collect()
}

/// How many rows `receiver` has in `table`.
fn count(
    table: &ReadOnlyTable<(&'static str, u64), &'static [u8]>,
    receiver: &str,
) -> Result<u64, redb::Error> {
    let mut n = 0;
    for row in table.range((receiver, 0)..=(receiver, u64::MAX))? {
        row?;
        n += 1;
    }
    Ok(n)
}

impl Store {
    /// The receiver's pending notifications, oldest first, with their keys.
    pub fn pending(&self, receiver: &str) -> Result<Vec<(u64, Notification)>, StoreError> {
        self.first_pending(receiver, usize::MAX)
    }

    /// The receiver's oldest `limit` pending notifications, with their keys.
    pub fn first_pending(
        &self,
        receiver: &str,
        limit: usize,
    ) -> Result<Vec<(u64, Notification)>, StoreError> {
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
        decode_rows(self, rows)
    }

    /// The receiver's oldest pending notification and how many are pending,
    /// without decoding the rest (the delivery loop's read).
    pub fn head(&self, receiver: &str) -> Result<(Option<(u64, Notification)>, u64), StoreError> {
        let (head, depth) = self.read(|txn| {
            let table = txn.open_table(OUTBOX)?;
            let head = match table.range((receiver, 0)..=(receiver, u64::MAX))?.next() {
                Some(row) => {
                    let (key, value) = row?;
                    Some((key.value().1, value.value().to_vec()))
                }
                None => None,
            };
            Ok((head, count(&table, receiver)?))
        })?;
        let head = decode_rows(self, head.into_iter().collect())?.pop();
        Ok((head, depth))
    }

    /// Saves a notification's attempt count, next attempt and last error.
    pub fn update(
        &self,
        receiver: &str,
        sequence: u64,
        notification: &Notification,
    ) -> Result<(), StoreError> {
        let bytes = encode(notification).at(&self.path)?;
        self.write(|txn| {
            let mut table = txn.open_table(OUTBOX)?;
            table.insert((receiver, sequence), bytes.as_slice())?;
            Ok(())
        })
    }

    /// Removes a delivered notification.
    pub fn complete(&self, receiver: &str, sequence: u64) -> Result<(), StoreError> {
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
    ) -> Result<(), StoreError> {
        let bytes = encode(letter).at(&self.path)?;
        self.write(|txn| {
            txn.open_table(OUTBOX)?.remove((receiver, sequence))?;
            txn.open_table(DEAD_LETTERS)?
                .insert((receiver, sequence), bytes.as_slice())?;
            Ok(())
        })
    }

    /// The receiver's dead letters, oldest first.
    pub fn dead_letters(&self, receiver: &str) -> Result<Vec<DeadLetter>, StoreError> {
        self.last_dead_letters(receiver, usize::MAX)
    }

    /// The receiver's newest `limit` dead letters, oldest first.
    pub fn last_dead_letters(
        &self,
        receiver: &str,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let rows = self.read(|txn| {
            let table = txn.open_table(DEAD_LETTERS)?;
            let mut rows = Vec::new();
            for row in table.range((receiver, 0)..=(receiver, u64::MAX))?.rev() {
                if rows.len() == limit {
                    break;
                }
                let (key, value) = row?;
                rows.push((key.value().1, value.value().to_vec()));
            }
            rows.reverse();
            Ok(rows)
        })?;
        let letters = decode_rows(self, rows)?;
        Ok(letters.into_iter().map(|(_, letter)| letter).collect())
    }

    /// Every receiver with pending notifications (read once at start, to
    /// warn about receivers removed from the config).
    pub fn receivers(&self) -> Result<BTreeSet<String>, StoreError> {
        self.read(|txn| {
            let table = txn.open_table(OUTBOX)?;
            let mut receivers = BTreeSet::new();
            for row in table.iter()? {
                receivers.insert(row?.0.value().0.to_owned());
            }
            Ok(receivers)
        })
    }

    /// Pending and dead-letter counts of a receiver.
    pub fn counts(&self, receiver: &str) -> Result<(u64, u64), StoreError> {
        self.read(|txn| {
            Ok((
                count(&txn.open_table(OUTBOX)?, receiver)?,
                count(&txn.open_table(DEAD_LETTERS)?, receiver)?,
            ))
        })
    }
}
