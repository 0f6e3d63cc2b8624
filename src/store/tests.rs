//! Tests of the store file: gates and queues across reopening, alert rows,
//! and the move from the older one-value lifecycle.

use std::time::Duration;

use chrono::{DateTime, Utc};

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
            removed: vec![],
        };
        record(&store, &[], &changes).unwrap();
        let changes = AlertChanges {
            upserted: vec![alert("a", Firing)],
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
