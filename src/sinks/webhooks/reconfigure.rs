//! A reload's receivers into a running [`Notifier`].
//!
//! A receiver that stays (same name) keeps its delivery task and its queue:
//! the task reads the new settings (URL, headers, secret, template,
//! timeouts, backoff) from its next attempt on. A new receiver gets a task.
//! A removed receiver's task stops, and the reload waits for it (an
//! attempt in flight ends within the shutdown deadline), so that no two
//! tasks ever read one queue; its pending notifications stay in the outbox,
//! delivered to no one, counted in
//! `model_monitor_webhook_orphaned_notifications{receiver}` and listed by
//! `model-monitor outbox list`; when a later reload configures the same
//! name again, its new task resumes them. Cooldowns and last
//! notifications live in the store under the receiver's name, so they
//! carry over too.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::notifier::{Notifier, Routing, count_orphans, publish_counts};
use crate::store::StoreError;

/// What a reload changed, by receiver name.
pub type ReceiverChanges = crate::engine::ReloadSummary;

impl Notifier {
    /// Delivers to the receivers of `routing` from now on (see the module
    /// documentation for what happens to each).
    pub async fn reconfigure(&self, routing: Routing) -> ReceiverChanges {
        let new: BTreeSet<String> = routing.names().map(str::to_owned).collect();
        let mut changes = ReceiverChanges::default();
        let mut start = Vec::new();
        let mut stopping = Vec::new();
        {
            let mut workers = self.workers.lock().expect("no panics while held");
            for receiver in &routing.receivers {
                let name = &receiver.config.name;
                match workers.get(name) {
                    Some(worker) => {
                        worker.receiver.store(receiver.clone());
                        changes.kept.push(name.clone());
                    }
                    None => {
                        start.push(receiver.clone());
                        changes.added.push(name.clone());
                    }
                }
            }
            let gone: Vec<String> = workers
                .keys()
                .filter(|name| !new.contains(*name))
                .cloned()
                .collect();
            for name in gone {
                let worker = workers.remove(&name).expect("listed above");
                worker.stop.cancel();
                stopping.push(worker.task);
                changes.removed.push(name);
            }
        }
        self.routing.store(Arc::new(routing));
        // A removed receiver's task finishes its attempt in flight (within
        // the shutdown deadline) and ends before its series are removed, so
        // that it cannot set them again.
        for task in stopping {
            if let Err(error) = task.await {
                tracing::error!(%error, "delivery task ended abnormally");
            }
        }
        for name in &changes.removed {
            self.metrics.forget_receiver(name);
        }
        for receiver in start {
            self.metrics.init_receiver(&receiver.config.name);
            self.spawn_worker(receiver);
        }
        if let Err(error) = self.refresh_counts(&changes).await {
            tracing::error!(%error, "cannot count the outbox's notifications after a reload");
        }
        changes
    }

    /// The gauges of the receivers added and removed, from the store.
    async fn refresh_counts(&self, changes: &ReceiverChanges) -> Result<(), StoreError> {
        let store = self.store.clone();
        let metrics = self.metrics.clone();
        let routing = self.routing.load_full();
        let added = changes.added.clone();
        let removed = changes.removed.clone();
        tokio::task::spawn_blocking(move || {
            for name in &added {
                let pending = publish_counts(&store, &metrics, name)?;
                if pending > 0 {
                    tracing::info!(receiver = %name, pending, "resuming pending notifications");
                }
            }
            for (name, pending) in count_orphans(&store, &metrics, &routing)? {
                if removed.contains(&name) {
                    tracing::warn!(receiver = %name, pending, "the receiver was removed by a reload: its pending notifications stay in the outbox, delivered to no one, until it is configured again (model-monitor outbox list shows them)");
                }
            }
            Ok(())
        })
        .await
        .expect("store reads do not panic")
    }
}
