//! The redb file itself: opening it (and moving a corrupt one aside when
//! the operator allows it), classifying its errors, and reopening it after
//! an I/O error.
//!
//! redb latches the first I/O error of a [`Database`]: after one failed
//! write (a full disk, say) every later operation answers "previous I/O
//! error", even once the disk has room again. So every operation of the
//! [`Store`] goes through [`Store::with_db`]: when it fails with an I/O
//! error the database is closed, opened again (redb repairs an unclean file
//! on open) and the operation retried once. Each failure is counted in
//! `model_monitor_storage_errors_total{operation}`, and while writes fail
//! the store says so ([`Store::problem`]), for `/-/ready`.

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use prometheus::IntCounterVec;
use redb::Database;

use super::{CACHE_BYTES, Store};

/// What kind of failure a [`StoreError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The disk or the file system failed (full, read-only, gone): worth
    /// reopening the file and trying again.
    Io,
    /// The file is not a redb file, or its structure is damaged.
    Corrupt,
    /// Another process holds the file's lock.
    Locked,
    /// Anything else (a row that does not decode, an old file format).
    Other,
}

/// A store failure. Never carries notification bodies or URLs.
#[derive(Debug, thiserror::Error)]
#[error("outbox {path}: {message}")]
pub struct StoreError {
    path: PathBuf,
    message: String,
    kind: ErrorKind,
}

impl StoreError {
    pub(super) fn new(path: &Path, kind: ErrorKind, message: impl Display) -> StoreError {
        StoreError {
            path: path.to_owned(),
            message: message.to_string(),
            kind,
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

/// An error the store can name the kind of.
pub(super) trait Classify: Display + Sized {
    fn into_kind(self) -> ErrorKind;
}

impl Classify for serde_json::Error {
    fn into_kind(self) -> ErrorKind {
        ErrorKind::Other
    }
}

/// The kind of a redb error.
fn redb_kind(error: redb::Error) -> ErrorKind {
    match error {
        // redb reports a file that is not a redb file ("magic number
        // mismatch", a headerless file left by a full disk) as invalid data.
        redb::Error::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => ErrorKind::Corrupt,
        redb::Error::Io(_)
        | redb::Error::PreviousIo
        | redb::Error::DatabaseClosed
        | redb::Error::TransactionPoisoned
        | redb::Error::LockPoisoned(_) => ErrorKind::Io,
        redb::Error::Corrupted(_) => ErrorKind::Corrupt,
        redb::Error::DatabaseAlreadyOpen | redb::Error::LockProtocolMismatch => ErrorKind::Locked,
        _ => ErrorKind::Other,
    }
}

macro_rules! classify_redb {
    ($($error:ty),*) => {$(
        impl Classify for $error {
            fn into_kind(self) -> ErrorKind {
                redb_kind(self.into())
            }
        }
    )*};
}

classify_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError
);

/// What a store operation was doing, the `operation` label of
/// `model_monitor_storage_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Operation {
    /// Opening (or reopening) the file.
    Open,
    /// A read transaction.
    Read,
    /// A write transaction and its commit.
    Write,
}

impl Operation {
    fn label(self) -> &'static str {
        match self {
            Operation::Open => "open",
            Operation::Read => "read",
            Operation::Write => "write",
        }
    }
}

/// How to open a store.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Move a corrupt file aside (under a timestamped name) and start
    /// empty, rather than refuse to open (`--storage.quarantine-corrupt`).
    pub quarantine_corrupt: bool,
    /// Where to count failures (`model_monitor_storage_errors_total`).
    pub errors: Option<IntCounterVec>,
}

/// The open database and how many times it was opened, so that threads
/// that fail together reopen it once.
pub(super) struct Handle {
    generation: u64,
    db: Option<Database>,
}

/// The file's state, shared by the store's operations.
pub(super) struct FileState {
    pub(super) handle: RwLock<Handle>,
    /// Why writes fail, while they do.
    unwritable: Mutex<Option<String>>,
    errors: Option<IntCounterVec>,
}

/// Opens (creating when missing) the redb file at `path`.
fn open_database(path: &Path) -> Result<Database, StoreError> {
    // The store is written once per evaluation and read by the delivery
    // workers, never scanned hot: a small page cache is enough (redb's
    // default of 1 GiB would let a large alert state fill the RSS).
    redb::Builder::new()
        .set_cache_size(CACHE_BYTES)
        .create(path)
        .map_err(|e| {
            let message = format!("cannot open: {e}");
            StoreError::new(path, e.into_kind(), message)
        })
}

/// The name a corrupt file is moved to: `outbox.redb.corrupt-<UTC time>`.
pub fn quarantine_name(path: &Path, now: chrono::DateTime<chrono::Utc>) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".corrupt-{}", now.format("%Y%m%dT%H%M%S%.3fZ")));
    path.with_file_name(name)
}

impl FileState {
    /// Opens the file at `path`; a corrupt one is moved aside first when
    /// `options` allow it. Returns where it was moved.
    pub(super) fn open(
        path: &Path,
        options: OpenOptions,
    ) -> Result<(FileState, Option<PathBuf>), StoreError> {
        let count = |_: &StoreError| {
            if let Some(errors) = &options.errors {
                errors.with_label_values(&[Operation::Open.label()]).inc();
            }
        };
        let (db, quarantined) = match open_database(path) {
            Ok(db) => (db, None),
            Err(error) if error.kind() == ErrorKind::Corrupt && options.quarantine_corrupt => {
                count(&error);
                let aside = quarantine_name(path, chrono::Utc::now());
                std::fs::rename(path, &aside).map_err(|e| {
                    StoreError::new(
                        path,
                        ErrorKind::Io,
                        format!("cannot move the corrupt file aside: {e}"),
                    )
                })?;
                tracing::error!(%error, quarantined = %aside.display(), "the store file is corrupt: moved aside, starting with an empty store (alerts and undelivered notifications in it are not delivered; see docs/runbooks.md#modelmonitorstorecorrupt)");
                (open_database(path).inspect_err(count)?, Some(aside))
            }
            Err(error) => {
                count(&error);
                return Err(error);
            }
        };
        let state = FileState {
            handle: RwLock::new(Handle {
                generation: 0,
                db: Some(db),
            }),
            unwritable: Mutex::new(None),
            errors: options.errors,
        };
        Ok((state, quarantined))
    }
}

impl Store {
    /// Runs `f` on the open database. On an I/O error (or when an earlier
    /// reopening failed) the database is opened again and `f` retried
    /// once; every failure is counted under `operation`.
    pub(super) fn with_db<T>(
        &self,
        operation: Operation,
        mut f: impl FnMut(&Database) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let generation = {
            let handle = self.file.handle.read().expect("no panics while held");
            match &handle.db {
                Some(db) => match f(db) {
                    Ok(value) => return Ok(self.succeeded(operation, value)),
                    Err(error) if error.kind() != ErrorKind::Io => {
                        self.count(operation);
                        return Err(error);
                    }
                    Err(error) => {
                        self.count(operation);
                        tracing::warn!(%error, operation = operation.label(), "storage error; reopening the store and retrying");
                        handle.generation
                    }
                },
                None => handle.generation,
            }
        };
        if let Err(error) = self.reopen(generation) {
            self.count(Operation::Open);
            return Err(self.failed(operation, error));
        }
        let handle = self.file.handle.read().expect("no panics while held");
        let db = handle.db.as_ref().expect("just reopened");
        match f(db) {
            Ok(value) => Ok(self.succeeded(operation, value)),
            Err(error) => {
                self.count(operation);
                Err(self.failed(operation, error))
            }
        }
    }

    /// Closes and opens the database again, unless another thread did
    /// since `generation`.
    fn reopen(&self, generation: u64) -> Result<(), StoreError> {
        let mut handle = self.file.handle.write().expect("no panics while held");
        if handle.generation != generation && handle.db.is_some() {
            return Ok(());
        }
        // The old handle goes first: redb locks the file.
        drop(handle.db.take());
        handle.generation += 1;
        handle.db = Some(open_database(&self.path)?);
        tracing::info!(path = %self.path.display(), "reopened the store");
        Ok(())
    }

    fn count(&self, operation: Operation) {
        if let Some(errors) = &self.file.errors {
            errors.with_label_values(&[operation.label()]).inc();
        }
    }

    fn succeeded<T>(&self, operation: Operation, value: T) -> T {
        if operation == Operation::Write {
            let mut unwritable = self.file.unwritable.lock().expect("no panics while held");
            if unwritable.take().is_some() {
                tracing::info!(path = %self.path.display(), "the store is writable again");
            }
        }
        value
    }

    fn failed(&self, operation: Operation, error: StoreError) -> StoreError {
        if operation != Operation::Read && error.kind() == ErrorKind::Io {
            *self.file.unwritable.lock().expect("no panics while held") = Some(error.to_string());
        }
        error
    }

    /// Why the store cannot write, while it cannot.
    pub fn problem(&self) -> Option<String> {
        self.file
            .unwritable
            .lock()
            .expect("no panics while held")
            .clone()
    }

    /// Where a corrupt file found at start was moved.
    pub fn quarantined(&self) -> Option<&Path> {
        self.quarantined.as_deref()
    }
}
