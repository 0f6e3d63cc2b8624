//! Tests of the lifecycle, and the alerts other layers' tests store.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::*;
use crate::detectors::AlertKind;
use crate::model::{DetectionRecord, InferenceMetrics};

use Observation::{Absent, Clean, Drifting, Unknown};

pub(crate) fn t(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
}

/// Runs `observations` (one per 30s evaluation) and returns the
/// transitions with their evaluation index, and the final state.
fn run(
    policy: AlertPolicy,
    observations: &[Observation],
) -> (Vec<(usize, Transition)>, Option<AlertState>) {
    let mut progress = None;
    let mut transitions = Vec::new();
    for (index, observation) in observations.iter().enumerate() {
        let (next, transition) = step(progress, *observation, t(30 * index as i64), &policy);
        progress = next;
        if let Some(transition) = transition {
            transitions.push((index, transition));
        }
    }
    (transitions, progress.map(|p| p.state))
}

fn policy(for_evaluations: u32, resolve_after: u32, repeat_seconds: u64) -> AlertPolicy {
    AlertPolicy {
        for_evaluations,
        resolve_after,
        repeat_interval: Duration::from_secs(repeat_seconds),
    }
}

/// (name, policy, observations, transitions with their index, final state).
type Case = (
    &'static str,
    AlertPolicy,
    Vec<Observation>,
    Vec<(usize, Transition)>,
    Option<AlertState>,
);

#[test]
fn lifecycle_table() {
    use AlertState::{Firing, Pending};
    use Transition::{Fired, Repeated, Resolved};
    let hour = 3600;
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        ("clean stays quiet", policy(1, 3, hour), vec![Clean, Clean], vec![], None),
        ("for 1 fires at once", policy(1, 3, hour), vec![Drifting], vec![(0, Fired)], Some(Firing)),
        ("for 3 is pending twice", policy(3, 3, hour), vec![Drifting, Drifting], vec![], Some(Pending)),
        ("for 3 fires on the third", policy(3, 3, hour), vec![Drifting, Drifting, Drifting], vec![(2, Fired)], Some(Firing)),
        ("a clean evaluation resets pending", policy(3, 3, hour), vec![Drifting, Drifting, Clean, Drifting, Drifting], vec![], Some(Pending)),
        ("no decision does not reset pending", policy(3, 3, hour), vec![Drifting, Unknown, Drifting, Unknown, Drifting], vec![(4, Fired)], Some(Firing)),
        ("absence drops pending", policy(2, 3, hour), vec![Drifting, Absent], vec![], None),
        ("resolves after 3 clean", policy(1, 3, hour), vec![Drifting, Clean, Clean, Clean], vec![(0, Fired), (3, Resolved)], None),
        ("a drifting evaluation restarts the clean count", policy(1, 3, hour), vec![Drifting, Clean, Clean, Drifting, Clean, Clean], vec![(0, Fired)], Some(Firing)),
        ("no decision does not count as clean", policy(1, 2, hour), vec![Drifting, Clean, Unknown, Unknown, Clean], vec![(0, Fired), (4, Resolved)], None),
        ("absence resolves like clean", policy(1, 2, hour), vec![Drifting, Absent, Absent], vec![(0, Fired), (2, Resolved)], None),
        ("absence and clean add up", policy(1, 2, hour), vec![Drifting, Absent, Clean], vec![(0, Fired), (2, Resolved)], None),
        ("repeats every interval while drifting", policy(1, 3, 60), vec![Drifting, Drifting, Drifting, Drifting, Drifting], vec![(0, Fired), (2, Repeated), (4, Repeated)], Some(Firing)),
        ("no repeat while the clean count runs", policy(1, 9, 60), vec![Drifting, Clean, Clean, Clean], vec![(0, Fired)], Some(Firing)),
        ("fires again after a resolution", policy(1, 1, hour), vec![Drifting, Clean, Drifting], vec![(0, Fired), (1, Resolved), (2, Fired)], Some(Firing)),
        ("unknown alone never starts an alert", policy(1, 3, hour), vec![Unknown, Unknown], vec![], None),
    ];
    for (name, policy, observations, transitions, state) in cases {
        assert_eq!(run(policy, &observations), (transitions, state), "{name}");
    }
}

pub(crate) fn record(score: f64) -> DetectionRecord {
    DetectionRecord {
        score,
        threshold: 0.1,
        p_value: None,
        current_samples: 500.0,
        reference_samples: 500.0,
        explanation: None,
    }
}

pub(crate) fn metrics(model: &str) -> InferenceMetrics {
    InferenceMetrics {
        model_version: "v1".to_owned(),
        ..InferenceMetrics::identity("m", &[("model".to_owned(), model.to_owned())], t(0))
    }
}

pub(crate) fn key(model: &str) -> AlertKey {
    AlertKey {
        source: "m".into(),
        labels: [("model".to_owned(), model.to_owned())].into(),
        signal: "confidence".into(),
        detector: "psi".into(),
    }
}

/// A drift alert of model `model` in `state`.
pub(crate) fn alert(model: &str, state: AlertState) -> Alert {
    Alert {
        key: key(model),
        kind: AlertKind::Drift,
        progress: Progress {
            state,
            ..Progress::pending(t(0), 1)
        },
        detection: record(0.5),
        metrics: Arc::new(metrics(model)),
    }
}

/// One evaluation that sees model `a`'s PSI alert so, with a drifting score.
fn seen_a(observation: Observation) -> BTreeMap<AlertKey, Seen> {
    BTreeMap::from([(
        key("a"),
        Seen {
            kind: AlertKind::Drift,
            observation,
            detection: Some(record(0.5)),
            metrics: Some(Arc::new(metrics("a"))),
        },
    )])
}

#[test]
fn vanished_models_resolve_and_the_state_round_trips() {
    let policy = policy(1, 2, 3600);
    let mut lifecycle = Lifecycle::default();
    let seen = seen_a;
    let notices = lifecycle.evaluate_source("m", seen(Drifting), t(0), &policy);
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].transition, Transition::Fired);
    assert_eq!(lifecycle.counts(), (0, 1));
    let json = serde_json::to_string(&lifecycle).unwrap();
    let mut restored: Lifecycle = serde_json::from_str(&json).unwrap();
    assert_eq!(restored, lifecycle);
    // Another source's evaluation leaves the alert alone.
    assert!(
        restored
            .evaluate_source("other", BTreeMap::new(), t(30), &policy)
            .is_empty()
    );
    assert!(
        restored
            .evaluate_source("m", BTreeMap::new(), t(30), &policy)
            .is_empty()
    );
    let notices = restored.evaluate_source("m", BTreeMap::new(), t(60), &policy);
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].transition, Transition::Resolved);
    assert_eq!(notices[0].started_at, t(0));
    assert_eq!(notices[0].ended_at, Some(t(60)));
    assert!(restored.alerts.is_empty());
}

/// Only alerts whose progress moves (or that start or end) are changes
/// to store; one that goes on firing through drifting evaluations is not.
#[test]
fn changes_name_what_a_sink_must_write() {
    let policy = policy(2, 1, 3600);
    let mut lifecycle = Lifecycle::default();
    let (drift, m) = (record(0.5), metrics("a"));
    let seen = |model: &str, observation| {
        (
            key(model),
            Seen {
                kind: AlertKind::Drift,
                observation,
                detection: Some(drift.clone()),
                metrics: Some(Arc::new(m.clone())),
            },
        )
    };
    let upserted = |changes: &AlertChanges| -> Vec<String> {
        changes
            .upserted
            .iter()
            .map(|alert| alert.key.label("model").unwrap().to_owned())
            .collect()
    };
    // a and b start pending, c is clean: two new alerts.
    let evaluation = |a, b, c| BTreeMap::from([seen("a", a), seen("b", b), seen("c", c)]);
    lifecycle.evaluate_source("m", evaluation(Drifting, Drifting, Clean), t(0), &policy);
    let changes = lifecycle.changes();
    assert_eq!(upserted(&changes), ["a", "b"]);
    assert!(changes.removed.is_empty());
    lifecycle.mark_stored();
    assert!(!lifecycle.has_unstored_changes());
    // a fires, b is forgotten while pending.
    lifecycle.evaluate_source("m", evaluation(Drifting, Clean, Clean), t(30), &policy);
    let changes = lifecycle.changes();
    assert_eq!(upserted(&changes), ["a"]);
    assert_eq!(changes.removed, [key("b")]);
    lifecycle.mark_stored();
    // a goes on firing, b and c stay clean: nothing to write.
    for minute in 1..5 {
        let notices = lifecycle.evaluate_source(
            "m",
            evaluation(Drifting, Clean, Clean),
            t(60 * minute),
            &policy,
        );
        assert!(notices.is_empty());
        assert!(!lifecycle.has_unstored_changes(), "minute {minute}");
    }
    // A change not marked stored stays a change until it is.
    lifecycle.evaluate_source("m", evaluation(Clean, Clean, Clean), t(300), &policy);
    lifecycle.evaluate_source("m", evaluation(Clean, Clean, Drifting), t(330), &policy);
    let changes = lifecycle.changes();
    assert_eq!(upserted(&changes), ["c"]);
    assert_eq!(changes.removed, [key("a")]);
}

/// An alert is written whole when it is new or has a transition (makes a
/// notice); when only its progress moved, only its progress is.
#[test]
fn only_a_notice_rewrites_an_alert_whole() {
    let policy = policy(1, 3, 60);
    let mut lifecycle = Lifecycle::default();
    let names = |changes: &AlertChanges| {
        let name = |key: &AlertKey| key.label("model").unwrap().to_owned();
        let upserted: Vec<String> = changes.upserted.iter().map(|a| name(&a.key)).collect();
        let progressed: Vec<String> = changes.progressed.iter().map(|a| name(&a.key)).collect();
        let removed: Vec<String> = changes.removed.iter().map(name).collect();
        (upserted, progressed, removed)
    };
    let none = || Vec::<String>::new();
    let a = || vec!["a".to_owned()];
    // New and fired at once: whole.
    lifecycle.evaluate_source("m", seen_a(Drifting), t(0), &policy);
    assert_eq!(names(&lifecycle.changes()), (a(), none(), none()));
    lifecycle.mark_stored();
    // A clean evaluation moves the clean count: its progress alone, with
    // the progress in memory.
    lifecycle.evaluate_source("m", seen_a(Clean), t(30), &policy);
    let changes = lifecycle.changes();
    assert_eq!(names(&changes), (none(), a(), none()));
    assert_eq!(changes.progressed[0].progress.clean, 1);
    assert_eq!(changes.progressed[0].kind, AlertKind::Drift);
    // The repeat due at 60 s, before that was stored: whole again.
    let notices = lifecycle.evaluate_source("m", seen_a(Drifting), t(60), &policy);
    assert_eq!(notices[0].transition, Transition::Repeated);
    let changes = lifecycle.changes();
    assert_eq!(names(&changes), (a(), none(), none()));
    assert_eq!(changes.upserted[0].progress.clean, 0);
    lifecycle.mark_stored();
    // Absence counts like clean: progress only.
    lifecycle.evaluate_source("m", BTreeMap::new(), t(90), &policy);
    assert_eq!(names(&lifecycle.changes()), (none(), a(), none()));
    // A later progress keeps it progress-only; after an older format is
    // read, everything is whole.
    lifecycle.evaluate_source("m", BTreeMap::new(), t(120), &policy);
    assert_eq!(names(&lifecycle.changes()), (none(), a(), none()));
    lifecycle.mark_all_unstored();
    assert_eq!(names(&lifecycle.changes()), (a(), none(), none()));
    lifecycle.mark_stored();
    // The third absence resolves it: removed.
    lifecycle.evaluate_source("m", BTreeMap::new(), t(150), &policy);
    assert_eq!(names(&lifecycle.changes()), (none(), none(), a()));
    // A key marked unstored without an alert is removed.
    lifecycle.mark_stored();
    lifecycle.mark_unstored(key("b"));
    assert_eq!(lifecycle.changes().removed, [key("b")]);
}

#[test]
fn ending_a_removed_source_resolves_its_firing_alerts_and_forgets_its_pending_ones() {
    let other = Alert {
        key: AlertKey {
            source: "kept".into(),
            ..key("c")
        },
        ..alert("c", AlertState::Firing)
    };
    let mut lifecycle = Lifecycle::from_alerts([
        alert("a", AlertState::Firing),
        alert("b", AlertState::Pending),
        other.clone(),
    ]);
    let notices = lifecycle.end_source("m", t(60));
    let ended: Vec<(&str, Transition)> = notices
        .iter()
        .map(|n| (n.key.label("model").unwrap(), n.transition))
        .collect();
    assert_eq!(ended, [("a", Transition::Resolved)]);
    assert_eq!(lifecycle.alerts.keys().collect::<Vec<_>>(), [&other.key]);
    let changes = lifecycle.changes();
    assert!(changes.upserted.is_empty());
    assert_eq!(changes.removed, [key("a"), key("b")]);
}

/// Repeats fall due on the grid `fired_at + k * repeat_interval`: a late
/// evaluation sends the repeat that was due, and the next one stays where
/// it was due (not a whole interval after the late one).
#[test]
fn repeats_are_numbered_from_the_firing_time() {
    let policy = policy(1, 3, 60);
    let (progress, fired) = step(None, Drifting, t(0), &policy);
    assert_eq!(fired, Some(Transition::Fired));
    let mut progress = progress;
    let mut repeats = Vec::new();
    for seconds in [50, 70, 100, 125, 240] {
        let (next, transition) = step(progress, Drifting, t(seconds), &policy);
        if transition == Some(Transition::Repeated) {
            repeats.push((
                seconds,
                repeat_number(t(0), t(seconds), policy.repeat_interval),
            ));
        }
        progress = next;
    }
    assert_eq!(repeats, [(70, 1), (125, 2), (240, 4)]);
    assert_eq!(repeat_number(t(0), t(-5), policy.repeat_interval), 0);
}

/// Two replicas on the same grid, one of which misses evaluations (it was
/// restarted, its state kept): every notice the second makes, the first
/// made too, with the same episode start, transition and repeat number.
#[test]
fn a_replica_that_misses_evaluations_makes_no_notice_the_other_did_not() {
    let policy = policy(2, 3, 60);
    let seen = seen_a;
    let identity = |n: &AlertNotice| {
        (
            n.key.clone(),
            n.started_at,
            n.transition,
            n.repeat,
            n.status(),
        )
    };
    let (mut first, mut second) = (Lifecycle::default(), Lifecycle::default());
    let (mut first_notices, mut second_notices) = (Vec::new(), Vec::new());
    // Drifting from 10 s to 300 s, clean after; evaluations every 10 s.
    for seconds in (0..=400).step_by(10) {
        let observation = if (10..=300).contains(&seconds) {
            Drifting
        } else {
            Clean
        };
        let at = t(seconds);
        first_notices.extend(first.evaluate_source("m", seen(observation), at, &policy));
        // The second is down from 20 s to 110 s and from 190 s to 200 s
        // (its stored state kept), and misses those evaluations.
        if !(20..=110).contains(&seconds) && !(190..=200).contains(&seconds) {
            let notices = second.evaluate_source("m", seen(observation), at, &policy);
            second_notices.extend(notices);
            let json = serde_json::to_string(&second).unwrap();
            second = serde_json::from_str(&json).unwrap();
        }
    }
    let first_ids: Vec<_> = first_notices.iter().map(identity).collect();
    let second_ids: Vec<_> = second_notices.iter().map(identity).collect();
    // Fired at 20 s, repeats due at 80, 140, 200 and 260 s, resolved at 330.
    let repeats: Vec<u32> = first_notices.iter().map(|n| n.repeat).collect();
    assert_eq!(repeats, [0, 1, 2, 3, 4, 0], "{first_ids:?}");
    assert!(first_notices.iter().all(|n| n.started_at == t(10)));
    for notice in &second_ids {
        assert!(
            first_ids.contains(notice),
            "{notice:?} not in {first_ids:?}"
        );
    }
    // The second fired late (at 120 s, the episode still starting at
    // 10 s), numbered its repeats from there (the first at 180 s) and
    // resolved with the first.
    let repeats: Vec<u32> = second_notices.iter().map(|n| n.repeat).collect();
    assert_eq!(repeats, [0, 1, 2, 3, 0], "{second_ids:?}");
}

#[test]
fn alert_keys_order_by_source_labels_signal_detector_whether_parts_are_shared_or_not() {
    let parts = |source: &str, model: &str, signal: &str, detector: &str| {
        (
            source.to_owned(),
            vec![("model".to_owned(), model.to_owned())],
            signal.to_owned(),
            detector.to_owned(),
        )
    };
    let cases = [
        parts("a", "m1", "confidence", "psi"),
        parts("a", "m1", "confidence", "ks"),
        parts("a", "m1", "latency", "psi"),
        parts("a", "m10", "confidence", "psi"),
        parts("a", "m2", "confidence", "psi"),
        parts("b", "m1", "confidence", "psi"),
    ];
    // Every key built twice: once from its own allocations, once sharing
    // the first key's allocations wherever the values are equal.
    let owned =
        |(source, labels, signal, detector): &(String, Vec<(String, String)>, String, String)| {
            AlertKey {
                source: Arc::from(source.as_str()),
                labels: Arc::from(labels.as_slice()),
                signal: Arc::from(signal.as_str()),
                detector: Arc::from(detector.as_str()),
            }
        };
    let first = owned(&cases[0]);
    let shared = |case: &(String, Vec<(String, String)>, String, String)| {
        let own = owned(case);
        AlertKey {
            source: if own.source == first.source {
                Arc::clone(&first.source)
            } else {
                own.source
            },
            labels: if own.labels == first.labels {
                Arc::clone(&first.labels)
            } else {
                own.labels
            },
            signal: if own.signal == first.signal {
                Arc::clone(&first.signal)
            } else {
                own.signal
            },
            detector: if own.detector == first.detector {
                Arc::clone(&first.detector)
            } else {
                own.detector
            },
        }
    };
    for a in &cases {
        for b in &cases {
            let expected = a.cmp(b);
            assert_eq!(owned(a).cmp(&owned(b)), expected, "{a:?} {b:?}");
            assert_eq!(shared(a).cmp(&shared(b)), expected, "{a:?} {b:?}");
            assert_eq!(shared(a).cmp(&owned(b)), expected, "{a:?} {b:?}");
            assert_eq!(owned(a) == shared(b), expected.is_eq(), "{a:?} {b:?}");
        }
    }
}
