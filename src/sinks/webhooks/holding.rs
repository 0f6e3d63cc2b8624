//! What the notifier holds in memory while the store cannot write (a full
//! disk), so that no notification is lost to a passing storage failure.
//!
//! An evaluation's alert changes and candidate notifications are written in
//! one transaction. When that fails (after the store has reopened its file
//! and retried), they are kept here: the alert changes merged per alert
//! (the newest state of each alert wins, so they never outgrow the
//! lifecycle that is in memory anyway) and the candidates in order, at most
//! [`HELD_LIMIT`] of them. Every later evaluation, and a keeper task once a
//! second, writes everything held, oldest first and in one transaction, as
//! soon as the store takes it; the gates are passed then, in the order the
//! notices were made. Candidates beyond the limit are dropped, loudly
//! (`model_monitor_webhook_notifications_dropped_total`). What is held is
//! lost if the process ends before the disk frees: the log says how much.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::alerting::{Alert, AlertChanges, AlertKey, AlertProgress, AlertStore, AlertTransaction};
use crate::store::{Candidate, Store, StoreError};
use crate::telemetry::SelfMetrics;

/// Most notifications held in memory while the store cannot write.
pub const HELD_LIMIT: usize = 10_000;

/// How often the keeper tries to write what is held (or, with nothing
/// held, checks that a store that failed writes again).
const KEEPER_INTERVAL: Duration = Duration::from_secs(1);

/// Alert changes and notifications not yet written.
#[derive(Default)]
struct Held {
    /// The newest state of each changed alert.
    alerts: BTreeMap<AlertKey, HeldAlert>,
    candidates: Vec<Candidate>,
}

/// What is owed to the store of one changed alert.
enum HeldAlert {
    /// To write whole: new, or with a transition, since the last write.
    Whole(Alert),
    /// To write its progress only: nothing else changed since it was
    /// last written whole.
    Progressed(AlertProgress),
    /// It ended.
    Removed,
}

impl Held {
    fn absorb(&mut self, changes: &AlertChanges, candidates: Vec<Candidate>) {
        for alert in &changes.upserted {
            self.alerts
                .insert(alert.key.clone(), HeldAlert::Whole(alert.clone()));
        }
        for progressed in &changes.progressed {
            // An alert held whole stays whole, with the newer progress (a
            // progressed alert exists, so it cannot be held as removed).
            match self.alerts.get_mut(&progressed.key) {
                Some(HeldAlert::Whole(alert)) => {
                    alert.kind = progressed.kind;
                    alert.progress = progressed.progress;
                }
                _ => {
                    let held = HeldAlert::Progressed(progressed.clone());
                    self.alerts.insert(progressed.key.clone(), held);
                }
            }
        }
        for key in &changes.removed {
            self.alerts.insert(key.clone(), HeldAlert::Removed);
        }
        self.candidates.extend(candidates);
    }

    fn changes(&self) -> AlertChanges {
        let mut changes = AlertChanges::default();
        for (key, alert) in &self.alerts {
            match alert {
                HeldAlert::Whole(alert) => changes.upserted.push(alert.clone()),
                HeldAlert::Progressed(progressed) => changes.progressed.push(progressed.clone()),
                HeldAlert::Removed => changes.removed.push(key.clone()),
            }
        }
        changes
    }

    fn is_empty(&self) -> bool {
        self.alerts.is_empty() && self.candidates.is_empty()
    }
}

/// The store, what is held for it, and whom to wake once it is written.
pub(super) struct Holding {
    held: Mutex<Held>,
    store: Arc<Store>,
    metrics: Arc<SelfMetrics>,
    wakes: Arc<Wakes>,
}

/// Each receiver's wake-up, by name, made when first asked for: a receiver
/// added by a reload gets one, and one removed keeps its own in case it
/// comes back.
#[derive(Default)]
pub(super) struct Wakes(Mutex<BTreeMap<String, Arc<Notify>>>);

impl Wakes {
    pub(super) fn get(&self, receiver: &str) -> Arc<Notify> {
        let mut wakes = self.0.lock().expect("no panics while held");
        wakes.entry(receiver.to_owned()).or_default().clone()
    }
}

impl Holding {
    pub(super) fn new(store: Arc<Store>, metrics: Arc<SelfMetrics>, wakes: Arc<Wakes>) -> Holding {
        Holding {
            held: Mutex::default(),
            store,
            metrics,
            wakes,
        }
    }

    /// Writes one evaluation's changes and candidates after whatever is
    /// held; holds them all when the store cannot take them.
    pub(super) fn record(&self, changes: &AlertChanges, candidates: Vec<Candidate>) {
        let mut held = self.held.lock().expect("no panics while held");
        held.absorb(changes, candidates);
        if let Err(error) = self.write(&mut held) {
            let over = held.candidates.len().saturating_sub(HELD_LIMIT);
            if over > 0 {
                held.candidates.truncate(HELD_LIMIT);
                self.metrics
                    .webhook_notifications_dropped
                    .inc_by(over as u64);
                tracing::error!(
                    dropped = over,
                    limit = HELD_LIMIT,
                    "the store cannot write and the notifications held in memory reached their limit: dropped the newest"
                );
            }
            self.metrics
                .webhook_notifications_held
                .set(held.candidates.len() as i64);
            tracing::error!(%error, held = held.candidates.len(), "cannot store alert notifications; holding them in memory until the store writes again");
        }
    }

    /// Writes what is held in one transaction and wakes the receivers that
    /// got something.
    fn write(&self, held: &mut Held) -> Result<(), StoreError> {
        if held.is_empty() {
            return Ok(());
        }
        let changes = held.changes();
        let candidates = &held.candidates;
        let receivers = self.store.transaction(|txn| {
            txn.save_alerts(&changes)?;
            txn.offer(candidates)
        })?;
        if !held.candidates.is_empty() && self.metrics.webhook_notifications_held.get() > 0 {
            tracing::info!(
                notifications = held.candidates.len(),
                "stored the notifications held while the store could not write"
            );
        }
        *held = Held::default();
        self.metrics.webhook_notifications_held.set(0);
        for receiver in receivers {
            self.wakes.get(&receiver).notify_one();
        }
        Ok(())
    }

    /// One round of the keeper: writes what is held, or, with nothing held
    /// and the store failing, checks whether it writes again.
    fn keep(&self) {
        let mut held = self.held.lock().expect("no panics while held");
        let result = if !held.is_empty() {
            self.write(&mut held)
        } else if self.store.problem().is_some() {
            self.store.transaction(|_| Ok::<(), StoreError>(()))
        } else {
            Ok(())
        };
        if let Err(error) = result {
            tracing::debug!(%error, "the store still cannot write");
        }
    }

    /// The keeper: every [`KEEPER_INTERVAL`] until `shutdown`, then a last
    /// try to write what is held.
    pub(super) async fn run_keeper(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(KEEPER_INTERVAL) => {}
            }
            let holding = self.clone();
            if let Err(error) = tokio::task::spawn_blocking(move || holding.keep()).await {
                tracing::error!(%error, "the store keeper failed");
            }
        }
        let holding = self.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let mut held = holding.held.lock().expect("no panics while held");
            if let Err(error) = holding.write(&mut held) {
                tracing::error!(%error, lost = held.candidates.len(), "stopping with notifications the store could not take: they are lost");
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::AlertState::Firing;
    use crate::alerting::tests::alert;

    /// Held changes merge per alert: a progress on top of an alert held
    /// whole keeps it whole (its details are owed too), with the newer
    /// progress; a progress on its own stays progress-only.
    #[test]
    fn a_held_alert_owes_its_details_until_written() {
        let mut held = Held::default();
        let (a, b) = (alert("a", Firing), alert("b", Firing));
        let whole = AlertChanges {
            upserted: vec![a.clone()],
            ..AlertChanges::default()
        };
        held.absorb(&whole, Vec::new());
        let (mut a_later, mut b_later) = (a.clone(), b.clone());
        a_later.progress.clean = 2;
        b_later.progress.clean = 1;
        let progressed = AlertChanges {
            progressed: vec![AlertProgress::of(&a_later), AlertProgress::of(&b_later)],
            ..AlertChanges::default()
        };
        held.absorb(&progressed, Vec::new());
        let changes = held.changes();
        let expected = Alert {
            progress: a_later.progress,
            ..a
        };
        assert_eq!(changes.upserted, [expected]);
        assert_eq!(changes.progressed, [AlertProgress::of(&b_later)]);
        assert!(changes.removed.is_empty());
        let removed = AlertChanges {
            removed: vec![b.key.clone()],
            ..AlertChanges::default()
        };
        held.absorb(&removed, Vec::new());
        assert_eq!(held.changes().removed, [b.key]);
        assert!(held.changes().progressed.is_empty());
    }
}
