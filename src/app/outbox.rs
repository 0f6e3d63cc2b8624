//! `model-monitor outbox`: an operator's tools for a stopped sidecar's
//! store, offline, on its `--storage.path`: `list` the pending
//! notifications and dead letters, `replay` dead letters back into the
//! outbox, `purge` old dead letters (or, with `--pending`, a removed
//! receiver's pending notifications). A running sidecar holds the file's
//! lock: the commands then refuse, and change nothing.

use std::io::Write;
use std::path::Path;

use chrono::{DateTime, Utc};

use crate::store::{ErrorKind, Selection, Store, StoreError};

/// One `outbox` command.
#[derive(Debug, Clone)]
pub enum OutboxCommand {
    /// Every pending notification and dead letter, one a line.
    List,
    /// The selected dead letters back into the outbox.
    Replay(Selection),
    /// The selected dead letters that died before this time, deleted.
    Purge {
        selection: Selection,
        before: DateTime<Utc>,
    },
    /// A receiver's pending notifications created before this time,
    /// deleted (a receiver a reload removed, whose notifications no one
    /// will send).
    PurgePending {
        receiver: String,
        before: DateTime<Utc>,
    },
}

/// What an operator is told when the store cannot be opened.
fn open_error(dir: &Path, error: StoreError) -> String {
    match error.kind() {
        ErrorKind::Locked => format!(
            "{}: the store is in use by a running model-monitor (it holds the file's lock); stop it first, or work on a copy of the directory",
            dir.display()
        ),
        ErrorKind::Corrupt => format!(
            "{error}: the store file is corrupt; see {}",
            super::CORRUPT_STORE_RUNBOOK
        ),
        _ => error.to_string(),
    }
}

/// Runs `command` on the store in `dir`, writing to `out`. Returns the
/// exit code: 0 done, 1 with a message on stderr.
pub fn run(dir: &Path, command: &OutboxCommand, out: &mut impl Write) -> i32 {
    match execute(dir, command, out) {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("model-monitor outbox: {message}");
            1
        }
    }
}

fn execute(dir: &Path, command: &OutboxCommand, out: &mut impl Write) -> Result<(), String> {
    let store = Store::open_existing(dir).map_err(|error| open_error(dir, error))?;
    let text = |e: std::io::Error| format!("cannot write the output: {e}");
    match command {
        OutboxCommand::List => {
            let pending = store.all_pending().map_err(|e| e.to_string())?;
            let dead = store.all_dead_letters().map_err(|e| e.to_string())?;
            writeln!(
                out,
                "state\treceiver\tid\tcreated_at\tattempts\tsummary\tlast_error_or_reason"
            )
            .map_err(text)?;
            for (receiver, _, n) in &pending {
                writeln!(
                    out,
                    "pending\t{receiver}\t{}\t{}\t{}\t{}\t{}",
                    n.id,
                    n.created_at.to_rfc3339(),
                    n.attempts,
                    n.summary,
                    n.last_error.as_deref().unwrap_or("")
                )
                .map_err(text)?;
            }
            for (receiver, _, d) in &dead {
                let n = &d.notification;
                writeln!(
                    out,
                    "dead\t{receiver}\t{}\t{}\t{}\t{}\t{}",
                    n.id,
                    n.created_at.to_rfc3339(),
                    n.attempts,
                    n.summary,
                    d.reason
                )
                .map_err(text)?;
            }
            eprintln!("{} pending, {} dead letter(s)", pending.len(), dead.len());
        }
        OutboxCommand::Replay(selection) => {
            let replayed = store
                .replay(selection, Utc::now())
                .map_err(|e| e.to_string())?;
            if replayed.is_empty() {
                return Err("no dead letter matched: nothing replayed".to_owned());
            }
            for (receiver, id) in &replayed {
                writeln!(out, "replayed\t{receiver}\t{id}").map_err(text)?;
            }
            eprintln!(
                "{} dead letter(s) back in the outbox; the sidecar sends them when it next starts",
                replayed.len()
            );
        }
        OutboxCommand::Purge { selection, before } => {
            let purged = store.purge(selection, *before).map_err(|e| e.to_string())?;
            for (receiver, id) in &purged {
                writeln!(out, "purged\t{receiver}\t{id}").map_err(text)?;
            }
            eprintln!("{} dead letter(s) purged", purged.len());
        }
        OutboxCommand::PurgePending { receiver, before } => {
            let purged = store
                .purge_pending(receiver, *before)
                .map_err(|e| e.to_string())?;
            for (receiver, id) in &purged {
                writeln!(out, "purged\t{receiver}\t{id}").map_err(text)?;
            }
            eprintln!("{} pending notification(s) purged", purged.len());
        }
    }
    Ok(())
}
