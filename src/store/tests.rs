//! Tests of the store file: gates and queues across reopening, alert rows,
//! and the moves from the older formats (whole-alert rows, and the
//! one-value lifecycle before them).

use std::time::Duration;

use chrono::{DateTime, Utc};
use redb::ReadableTableMetadata;

use super::alerts::LEGACY_LIFECYCLE;
use super::*;
use crate::alerting::tests::alert;
use crate::alerting::{AlertChanges, AlertStore, AlertTransaction, Gate, Lifecycle};

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

fn candidate(receiver: &str, id: &str, gate: Gate) -> Candidate {
    Candidate {
        receiver: receiver.to_owned(),
        notification: notification(id),
        gate,
        fingerprint: "f".to_owned(),
    }
}

/// One evaluation as the webhook sink stores it: the alert changes and the
/// candidates that pass their gates, in one transaction.
fn record(
    store: &Store,
    candidates: &[Candidate],
    changes: &AlertChanges,
) -> Result<Vec<String>, StoreError> {
    store.transaction(|txn| {
        txn.save_alerts(changes)?;
        txn.offer(candidates)
    })
}

#[test]
fn gates_cooldowns_and_resolutions_persist_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let at = |s: i64| DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap();
    let cooldown = |s| Gate::Cooldown {
        scope: "fraud".to_owned(),
        cooldown: Duration::from_secs(3600),
        at: at(s),
    };
    {
        let store = Store::open(dir.path()).unwrap();
        let stored = record(
            &store,
            &[
                candidate("retrain", "a", cooldown(0)),
                candidate("retrain", "b", cooldown(60)),
                candidate("slack", "c", Gate::Resolution),
            ],
            &AlertChanges::default(),
        )
        .unwrap();
        assert_eq!(stored, ["retrain"]);
    }
    let store = Store::open(dir.path()).unwrap();
    let ids = |r: &str| -> Vec<String> {
        store
            .pending(r)
            .unwrap()
            .into_iter()
            .map(|(_, n)| n.id)
            .collect()
    };
    assert_eq!(ids("retrain"), ["a"]);
    record(
        &store,
        &[
            candidate("retrain", "d", cooldown(1800)),
            candidate("retrain", "e", cooldown(3600)),
            candidate("retrain", "r1", Gate::Resolution),
            candidate("retrain", "r2", Gate::Resolution),
        ],
        &AlertChanges::default(),
    )
    .unwrap();
    assert_eq!(ids("retrain"), ["a", "e", "r1"]);
    let (seq, first) = store.pending("retrain").unwrap().remove(0);
    store.complete("retrain", seq).unwrap();
    let (seq, second) = store.pending("retrain").unwrap().remove(0);
    store
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
    assert_eq!(store.counts("retrain").unwrap(), (1, 1));
    assert_eq!(
        store.dead_letters("retrain").unwrap()[0].notification.id,
        "e"
    );
    assert_eq!(store.load_alerts().unwrap(), None);
}

/// Alerts are rows written and deleted as they change; what a reopened
/// store restores is the sum of the changes.
#[test]
fn the_lifecycle_is_stored_as_its_changes() {
    use crate::alerting::AlertState::{Firing, Pending};
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.load_alerts().unwrap(), None);
        let changes = AlertChanges {
            upserted: vec![alert("a", Pending), alert("b", Pending)],
            progressed: vec![],
            removed: vec![],
        };
        record(&store, &[], &changes).unwrap();
        let changes = AlertChanges {
            upserted: vec![alert("a", Firing)],
            progressed: vec![],
            removed: vec![alert("b", Pending).key],
        };
        record(&store, &[], &changes).unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let restored = store.load_alerts().unwrap().unwrap();
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
        let store = Store::open(dir.path()).unwrap();
        let bytes = serde_json::to_vec(&old).unwrap();
        store
            .write(|txn| {
                txn.open_table(STATE)?
                    .insert(LEGACY_LIFECYCLE, bytes.as_slice())?;
                Ok(())
            })
            .unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let mut restored = store.load_alerts().unwrap().unwrap();
    assert_eq!(restored, old);
    assert_eq!(restored.changes().upserted.len(), 2);
    record(&store, &[], &restored.changes()).unwrap();
    restored.mark_stored();
    let legacy = store
        .read(|txn| Ok(txn.open_table(STATE)?.get(LEGACY_LIFECYCLE)?.is_some()))
        .unwrap();
    assert!(!legacy);
    let again = store.load_alerts().unwrap().unwrap();
    assert_eq!(again, old);
    assert!(!again.has_unstored_changes());
}

/// A failed write leaves nothing of its transaction behind: neither the
/// alerts nor the notifications nor the cooldowns they passed.
#[test]
fn a_failed_transaction_keeps_nothing() {
    use crate::alerting::AlertState::Firing;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let changes = AlertChanges {
        upserted: vec![alert("a", Firing)],
        progressed: vec![],
        removed: vec![],
    };
    let gate = Gate::Cooldown {
        scope: "fraud".to_owned(),
        cooldown: Duration::from_secs(3600),
        at: Utc::now(),
    };
    let failed = store.transaction(|txn| {
        txn.save_alerts(&changes)?;
        txn.offer(&[candidate("retrain", "a", gate.clone())])?;
        Err::<(), _>(StoreError::new(
            Path::new("x"),
            ErrorKind::Other,
            "the sink gave up",
        ))
    });
    assert!(failed.is_err());
    assert_eq!(store.load_alerts().unwrap(), None);
    assert!(store.pending("retrain").unwrap().is_empty());
    let stored = record(&store, &[candidate("retrain", "b", gate)], &changes).unwrap();
    assert_eq!(stored, ["retrain"], "the cooldown did not start");
}

/// An alert's explanation is stored in its row and restored after a
/// restart; rows without one (written before explanations existed, or of
/// a detection without one) load with none.
#[test]
fn an_alerts_explanation_survives_a_restart() {
    use crate::alerting::AlertState::Firing;
    use crate::detectors::{Explanation, Method, Windows};
    use crate::stats::Distribution;
    let dir = tempfile::tempdir().unwrap();
    let reference =
        Distribution::from_bucket_counts(vec![0.5, 1.0], vec![10.0, 90.0, 0.0], None).unwrap();
    let current =
        Distribution::from_bucket_counts(vec![0.5, 1.0], vec![40.0, 60.0, 0.0], None).unwrap();
    let windows = Windows {
        reference: &reference,
        current: &current,
    };
    let mut explained = alert("a", Firing);
    explained.detection.explanation =
        Explanation::of(windows, Method::Psi, "confidence").map(std::sync::Arc::new);
    assert!(explained.detection.explanation.is_some());
    let plain = alert("b", Firing);
    {
        let store = Store::open(dir.path()).unwrap();
        let changes = AlertChanges {
            upserted: vec![explained.clone(), plain.clone()],
            progressed: vec![],
            removed: vec![],
        };
        record(&store, &[], &changes).unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let restored = store.load_alerts().unwrap().unwrap();
    // serde_json reads some floats back one unit in the last place off, so
    // the numbers are compared to 1e-12 and the rest exactly.
    let explanation = |alert: &crate::alerting::Alert| alert.detection.explanation.clone();
    let before = explanation(&explained).unwrap();
    let after = explanation(&restored.alerts[&explained.key]).unwrap();
    assert_eq!(after.summary, before.summary);
    assert_eq!(after.buckets.len(), before.buckets.len());
    for (after, before) in after.buckets.iter().zip(&before.buckets) {
        assert_eq!(
            (&after.range, after.lower, after.upper),
            (&before.range, before.lower, before.upper)
        );
        assert!((after.contribution - before.contribution).abs() < 1e-12);
    }
    assert!((after.p50.current - before.p50.current).abs() < 1e-12);
    assert_eq!(explanation(&restored.alerts[&plain.key]), None);
}

/// The raw value of `key`'s row in `table`.
fn raw_row(
    store: &Store,
    table: TableDefinition<&[u8], &[u8]>,
    key: &crate::alerting::AlertKey,
) -> Option<Vec<u8>> {
    let key = encode(key).unwrap();
    store
        .read(|txn| {
            Ok(txn
                .open_table(table)?
                .get(key.as_slice())?
                .map(|v| v.value().to_vec()))
        })
        .unwrap()
}

fn upserted(alerts: Vec<crate::alerting::Alert>) -> AlertChanges {
    AlertChanges {
        upserted: alerts,
        ..AlertChanges::default()
    }
}

/// An alert whose progress alone moved rewrites its progress row and
/// leaves its details row as it was: a restart restores the new progress
/// with the detection and metrics of its last notice.
#[test]
fn a_progress_change_writes_only_the_progress_row() {
    use crate::alerting::AlertProgress;
    use crate::alerting::AlertState::Firing;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let fired = alert("a", Firing);
    record(&store, &[], &upserted(vec![fired.clone()])).unwrap();
    let details = raw_row(&store, ALERT_DETAILS, &fired.key).unwrap();
    let progress = raw_row(&store, ALERT_PROGRESS, &fired.key).unwrap();
    assert!(progress.len() < 200, "{} bytes", progress.len());
    // In memory, the alert's detection and metrics moved on too.
    let mut later = fired.clone();
    later.progress.clean = 1;
    later.detection.score = 0.01;
    let changes = AlertChanges {
        progressed: vec![AlertProgress::of(&later)],
        ..AlertChanges::default()
    };
    record(&store, &[], &changes).unwrap();
    assert_eq!(raw_row(&store, ALERT_DETAILS, &fired.key).unwrap(), details);
    assert_ne!(
        raw_row(&store, ALERT_PROGRESS, &fired.key).unwrap(),
        progress
    );
    drop(store);
    let restored = Store::open(dir.path())
        .unwrap()
        .load_alerts()
        .unwrap()
        .unwrap();
    let expected = crate::alerting::Alert {
        progress: later.progress,
        ..fired
    };
    assert_eq!(restored, Lifecycle::from_alerts([expected]));
    assert!(!restored.has_unstored_changes());
}

/// An alert stored whole again (a transition) rewrites its details, and an
/// ended alert's two rows are deleted together.
#[test]
fn a_transition_rewrites_the_details_row() {
    use crate::alerting::AlertState::{Firing, Pending};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let pending = alert("a", Pending);
    record(&store, &[], &upserted(vec![pending.clone()])).unwrap();
    let details = raw_row(&store, ALERT_DETAILS, &pending.key).unwrap();
    let mut fired = alert("a", Firing);
    fired.detection.score = 0.9;
    record(&store, &[], &upserted(vec![fired.clone()])).unwrap();
    assert_ne!(raw_row(&store, ALERT_DETAILS, &fired.key).unwrap(), details);
    let restored = store.load_alerts().unwrap().unwrap();
    assert_eq!(restored.alerts[&fired.key].detection.score, 0.9);
    assert_eq!(restored, Lifecycle::from_alerts([fired.clone()]));
    let changes = AlertChanges {
        removed: vec![fired.key.clone()],
        ..AlertChanges::default()
    };
    record(&store, &[], &changes).unwrap();
    assert_eq!(raw_row(&store, ALERT_PROGRESS, &fired.key), None);
    assert_eq!(raw_row(&store, ALERT_DETAILS, &fired.key), None);
    assert_eq!(store.load_alerts().unwrap(), None);
}

/// Restoring joins each alert's two rows. A row without its other half
/// (no version writes one) is not restored, since a notice would show an
/// empty detection, and the next write deletes it.
#[test]
fn restoring_joins_an_alerts_two_rows() {
    use crate::alerting::AlertState::Firing;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (a, b, c) = (alert("a", Firing), alert("b", Firing), alert("c", Firing));
    record(
        &store,
        &[],
        &upserted(vec![a.clone(), b.clone(), c.clone()]),
    )
    .unwrap();
    let (b_key, c_key) = (encode(&b.key).unwrap(), encode(&c.key).unwrap());
    store
        .write(|txn| {
            txn.open_table(ALERT_DETAILS)?.remove(b_key.as_slice())?;
            txn.open_table(ALERT_PROGRESS)?.remove(c_key.as_slice())?;
            Ok(())
        })
        .unwrap();
    let mut restored = store.load_alerts().unwrap().unwrap();
    assert_eq!(restored, Lifecycle::from_alerts([a.clone()]));
    let changes = restored.changes();
    assert!(changes.upserted.is_empty() && changes.progressed.is_empty());
    assert_eq!(changes.removed, [b.key.clone(), c.key.clone()]);
    record(&store, &[], &changes).unwrap();
    restored.mark_stored();
    for key in [&b.key, &c.key] {
        assert_eq!(raw_row(&store, ALERT_PROGRESS, key), None);
        assert_eq!(raw_row(&store, ALERT_DETAILS, key), None);
    }
    let again = store.load_alerts().unwrap().unwrap();
    assert_eq!(again, Lifecycle::from_alerts([a]));
    assert!(!again.has_unstored_changes());
}

/// Alerts stored by the version before, each whole as one row in
/// `alerts`, are restored and marked unstored; the next write moves them
/// into the progress and details tables and deletes the old rows.
#[test]
fn whole_alert_rows_of_the_version_before_move_to_the_new_tables() {
    use crate::alerting::AlertState::{Firing, Pending};
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (alert("a", Firing), alert("b", Pending));
    {
        let store = Store::open(dir.path()).unwrap();
        store
            .write(|txn| {
                let mut table = txn.open_table(LEGACY_ALERTS)?;
                for alert in [&a, &b] {
                    let key = serde_json::to_vec(&alert.key).unwrap();
                    let value = serde_json::to_vec(alert).unwrap();
                    table.insert(key.as_slice(), value.as_slice())?;
                }
                Ok(())
            })
            .unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let mut restored = store.load_alerts().unwrap().unwrap();
    let old = Lifecycle::from_alerts([a.clone(), b.clone()]);
    assert_eq!(restored, old);
    let changes = restored.changes();
    assert_eq!(changes.upserted.len(), 2);
    assert!(changes.progressed.is_empty() && changes.removed.is_empty());
    record(&store, &[], &changes).unwrap();
    restored.mark_stored();
    let legacy = store
        .read(|txn| Ok(txn.open_table(LEGACY_ALERTS)?.len()?))
        .unwrap();
    assert_eq!(legacy, 0);
    for alert in [&a, &b] {
        assert!(raw_row(&store, ALERT_PROGRESS, &alert.key).is_some());
        assert!(raw_row(&store, ALERT_DETAILS, &alert.key).is_some());
    }
    drop(store);
    let again = Store::open(dir.path())
        .unwrap()
        .load_alerts()
        .unwrap()
        .unwrap();
    assert_eq!(again, old);
    assert!(!again.has_unstored_changes());
}
