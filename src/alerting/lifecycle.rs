//! The alert lifecycle: when a detector's verdicts become a firing alert,
//! when it repeats and when it resolves.
//!
//! One alert exists per (monitor, model labels, signal, detector). Each
//! evaluation gives every alert one [`Observation`]; [`step`] turns the
//! previous [`Progress`] and the observation into the next progress and,
//! sometimes, a [`Transition`] that observers (events, webhooks) act on:
//!
//! - `for` consecutive drifting evaluations make an alert fire (pending
//!   before that; one clean evaluation while pending forgets it);
//! - while firing, repeats fall due `repeat_interval` apart from the time it
//!   fired: the `k`-th at the first drifting evaluation at or after
//!   `fired_at + k * repeat_interval` ([`repeat_number`]), so that replicas
//!   that evaluate the same grid number the repeats of an episode alike,
//!   even when one of them missed evaluations;
//! - `resolve_after` consecutive clean evaluations, or evaluations where the
//!   model is absent from its source's answer, resolve a firing alert;
//! - evaluations without a decision (too few samples, a detector error, a
//!   failed query) count neither way: they leave the progress as it was.
//!
//! [`Lifecycle`] holds every pending and firing alert and applies one
//! source's evaluation to them. Everything here is pure: no clock, no I/O.
//! The evaluation loop passes the evaluation time in, and the lifecycle
//! names the alerts that changed ([`Lifecycle::changes`]) so that an
//! [`AlertStore`](super::AlertStore) writes only those.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::alert::{
    Alert, AlertKey, AlertNotice, AlertPolicy, AlertProgress, AlertState, AlertSummary,
    Observation, Progress, Transition,
};
use crate::detectors::AlertKind;
use crate::model::{DetectionRecord, InferenceMetrics};

/// One evaluation of one alert: the next progress (`None`: no alert) and
/// the transition, if any. Pure.
pub fn step(
    progress: Option<Progress>,
    observation: Observation,
    at: DateTime<Utc>,
    policy: &AlertPolicy,
) -> (Option<Progress>, Option<Transition>) {
    let fire = |mut progress: Progress| {
        progress.state = AlertState::Firing;
        progress.fired_at = Some(at);
        progress.last_notified = Some(at);
        progress.clean = 0;
        (Some(progress), Some(Transition::Fired))
    };
    match (progress, observation) {
        (progress, Observation::Unknown) => (progress, None),
        (None, Observation::Clean | Observation::Absent) => (None, None),
        (None, Observation::Drifting) => {
            let progress = Progress::pending(at, 1);
            if policy.for_evaluations <= 1 {
                fire(progress)
            } else {
                (Some(progress), None)
            }
        }
        (Some(progress), observation) => match (progress.state, observation) {
            (AlertState::Pending, Observation::Drifting) => {
                let progress = Progress {
                    drifting: progress.drifting.saturating_add(1),
                    ..progress
                };
                if progress.drifting >= policy.for_evaluations {
                    fire(progress)
                } else {
                    (Some(progress), None)
                }
            }
            (AlertState::Pending, _) => (None, None),
            (AlertState::Firing, Observation::Drifting) => {
                let mut progress = Progress {
                    clean: 0,
                    ..progress
                };
                let fired = progress.fired_at.unwrap_or(progress.active_since);
                let due = progress.last_notified.is_none_or(|last| {
                    repeat_number(fired, at, policy.repeat_interval)
                        > repeat_number(fired, last, policy.repeat_interval)
                });
                if due {
                    progress.last_notified = Some(at);
                    (Some(progress), Some(Transition::Repeated))
                } else {
                    (Some(progress), None)
                }
            }
            (AlertState::Firing, _) => {
                let clean = progress.clean.saturating_add(1);
                if clean >= policy.resolve_after {
                    (None, Some(Transition::Resolved))
                } else {
                    (Some(Progress { clean, ..progress }), None)
                }
            }
        },
    }
}

/// How many whole `repeat_interval`s lie between `fired_at` and `at`: the
/// number of the repeat due at `at` (0 before the first). Pure, in whole
/// milliseconds as the store keeps times; a zero interval counts every
/// millisecond.
pub fn repeat_number(
    fired_at: DateTime<Utc>,
    at: DateTime<Utc>,
    repeat_interval: std::time::Duration,
) -> u32 {
    let elapsed = at
        .timestamp_millis()
        .saturating_sub(fired_at.timestamp_millis());
    let interval = (repeat_interval.as_millis() as i64).max(1);
    u32::try_from(elapsed.max(0) / interval).unwrap_or(u32::MAX)
}

/// Every active alert, keyed. Serializes as a list.
///
/// It also remembers which alerts changed since it was last stored
/// ([`Lifecycle::changes`], [`Lifecycle::mark_stored`]), so that a store
/// writes only those: a new or removed alert, or one whose progress moved.
/// Only an alert's notices (its creation and its transitions) rewrite it
/// whole; an alert whose progress alone moved (a firing alert's clean
/// count) has only its progress rewritten, and one that goes on firing
/// through drifting evaluations keeps its progress and is not rewritten at
/// all. Its stored detection and metrics are then those of its last notice
/// (its creation or last transition), and the first evaluation after a
/// restart refreshes them.
#[derive(Debug, Clone, Default)]
pub struct Lifecycle {
    pub alerts: BTreeMap<AlertKey, Alert>,
    /// Keys added, changed or removed since the last
    /// [`Lifecycle::mark_stored`], with what of them changed.
    unstored: BTreeMap<AlertKey, Change>,
}

/// What of an alert changed since it was last stored (of a removed alert:
/// either).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Change {
    /// Only its progress.
    Progress,
    /// It is new or had a transition: its detection and metrics too.
    Whole,
}

impl PartialEq for Lifecycle {
    fn eq(&self, other: &Lifecycle) -> bool {
        self.alerts == other.alerts
    }
}

/// The alerts a store must write and the keys it must delete. A key is in
/// at most one of the lists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertChanges {
    /// Alerts to write whole: new ones, ones with a transition since they
    /// were last stored, and every alert read from an older store format.
    pub upserted: Vec<Alert>,
    /// Alerts, stored whole before, whose progress alone moved: a store
    /// writes their progress and keeps their stored detection and metrics.
    pub progressed: Vec<AlertProgress>,
    pub removed: Vec<AlertKey>,
}

impl AlertChanges {
    pub fn is_empty(&self) -> bool {
        self.upserted.is_empty() && self.progressed.is_empty() && self.removed.is_empty()
    }
}

impl Serialize for Lifecycle {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.alerts.values())
    }
}

impl<'de> Deserialize<'de> for Lifecycle {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let alerts: Vec<Alert> = Vec::deserialize(deserializer)?;
        Ok(Lifecycle::from_alerts(alerts))
    }
}

impl Lifecycle {
    /// A lifecycle holding `alerts`, all of them stored.
    pub fn from_alerts(alerts: impl IntoIterator<Item = Alert>) -> Lifecycle {
        Lifecycle {
            alerts: alerts.into_iter().map(|a| (a.key.clone(), a)).collect(),
            unstored: BTreeMap::new(),
        }
    }

    /// What changed since the last [`Lifecycle::mark_stored`].
    pub fn changes(&self) -> AlertChanges {
        let mut changes = AlertChanges::default();
        for (key, change) in &self.unstored {
            match (self.alerts.get(key), change) {
                (Some(alert), Change::Whole) => changes.upserted.push(alert.clone()),
                (Some(alert), Change::Progress) => {
                    changes.progressed.push(AlertProgress::of(alert));
                }
                (None, _) => changes.removed.push(key.clone()),
            }
        }
        changes
    }

    /// Counts `change` of `key` as unstored, on top of what was already.
    fn changed(&mut self, key: AlertKey, change: Change) {
        let entry = self.unstored.entry(key).or_insert(change);
        *entry = (*entry).max(change);
    }

    /// Whether anything changed since the last [`Lifecycle::mark_stored`].
    pub fn has_unstored_changes(&self) -> bool {
        !self.unstored.is_empty()
    }

    /// The store wrote [`Lifecycle::changes`].
    pub fn mark_stored(&mut self) {
        self.unstored.clear();
    }

    /// Counts every alert as changed whole (after reading an older store
    /// format, so that the next write stores all of them the new way).
    pub fn mark_all_unstored(&mut self) {
        for key in self.alerts.keys() {
            self.unstored.insert(key.clone(), Change::Whole);
        }
    }

    /// Counts `key` as changed whole: the next write stores the alert it
    /// holds under `key` whole, or deletes what is stored under `key` when
    /// it holds none (a store's leftovers it did not restore).
    pub fn mark_unstored(&mut self, key: AlertKey) {
        self.changed(key, Change::Whole);
    }

    /// Counts of pending and firing alerts.
    pub fn counts(&self) -> (usize, usize) {
        let firing = self
            .alerts
            .values()
            .filter(|a| a.progress.state == AlertState::Firing)
            .count();
        (self.alerts.len() - firing, firing)
    }

    /// The active alerts for the status API.
    /// Firing alerts first, then pending ones, each in key order; at most
    /// `limit` (a false-alarming fixed threshold over 10,000 models can keep
    /// tens of thousands pending, which no one reads in a status page).
    pub fn summaries(&self, limit: usize) -> Vec<AlertSummary> {
        let firing = |alert: &&Alert| alert.progress.state == AlertState::Firing;
        self.alerts
            .values()
            .filter(firing)
            .chain(self.alerts.values().filter(|alert| !firing(alert)))
            .take(limit)
            .map(AlertSummary::of)
            .collect()
    }
}

/// What the evaluation loop knows about one alert key in one evaluation.
pub struct Seen {
    pub kind: AlertKind,
    pub observation: Observation,
    /// The detection, when the detector decided.
    pub detection: Option<DetectionRecord>,
    /// The model's metrics in this evaluation, when the alert needs them
    /// ([`Lifecycle::needs_metrics`]): a new alert, or a transition. An
    /// alert keeps the metrics of its last notice otherwise, so that an
    /// evaluation of 10,000 alerted models builds metrics only for those
    /// that change.
    pub metrics: Option<Arc<InferenceMetrics>>,
}

impl Lifecycle {
    /// Whether [`Lifecycle::evaluate_source`] will want the model's metrics
    /// for an alert key with `progress` (`None`: no alert) observed so at
    /// `at`: when it starts an alert or the alert's progress makes a notice.
    pub fn needs_metrics(
        progress: Option<Progress>,
        observation: Observation,
        at: DateTime<Utc>,
        policy: &AlertPolicy,
    ) -> bool {
        match progress {
            None => observation == Observation::Drifting,
            Some(progress) => step(Some(progress), observation, at, policy).1.is_some(),
        }
    }

    /// Applies one evaluation of one source: `seen` holds every alert key
    /// the source's answer had; alerts of the source missing from it are
    /// observed as [`Observation::Absent`]. Returns the notices, in key order.
    pub fn evaluate_source(
        &mut self,
        source: &str,
        seen: BTreeMap<AlertKey, Seen>,
        at: DateTime<Utc>,
        policy: &AlertPolicy,
    ) -> Vec<AlertNotice> {
        let absent: Vec<AlertKey> = self
            .alerts
            .keys()
            .filter(|key| &*key.source == source && !seen.contains_key(*key))
            .cloned()
            .collect();
        let mut notices = Vec::new();
        for key in absent {
            let alert = self.alerts.remove(&key).expect("listed above");
            let (next, transition) = step(Some(alert.progress), Observation::Absent, at, policy);
            self.finish(alert, next, transition, at, &mut notices);
            self.changed(key, Change::of(transition));
        }
        for (key, seen) in seen {
            let previous = self.alerts.get(&key).map(|alert| alert.progress);
            let (next, transition) = step(previous, seen.observation, at, policy);
            match (previous, next) {
                // An alert that goes on: updated in place.
                (Some(progress), Some(next)) => {
                    let alert = self.alerts.get_mut(&key).expect("found above");
                    seen.refresh(alert);
                    if let Some(transition) = transition {
                        let mut notice = AlertNotice::of(alert, transition, at);
                        if transition == Transition::Repeated {
                            let fired = progress.fired_at.unwrap_or(progress.active_since);
                            notice.repeat = repeat_number(fired, at, policy.repeat_interval);
                        }
                        notices.push(notice);
                    }
                    alert.progress = next;
                    if next != progress || transition.is_some() {
                        self.changed(key, Change::of(transition));
                    }
                }
                // An alert that ends (resolved, or forgotten while pending).
                (Some(_), None) => {
                    let mut alert = self.alerts.remove(&key).expect("found above");
                    seen.refresh(&mut alert);
                    self.finish(alert, None, transition, at, &mut notices);
                    self.changed(key, Change::of(transition));
                }
                // The common case, a key with no alert that stays without
                // one: nothing to build, keep or tell.
                (None, None) if transition.is_none() => {}
                (None, _) => {
                    let Some(detection) = seen.detection else {
                        continue;
                    };
                    self.changed(key.clone(), Change::Whole);
                    // Given by the engine for every new alert; a caller
                    // that gave none still names the model.
                    let metrics = seen.metrics.unwrap_or_else(|| {
                        Arc::new(InferenceMetrics::identity(&key.source, &key.labels, at))
                    });
                    let alert = Alert {
                        key,
                        kind: seen.kind,
                        progress: next.unwrap_or(Progress::pending(at, 0)),
                        detection,
                        metrics,
                    };
                    self.finish(alert, next, transition, at, &mut notices);
                }
            }
        }
        notices
    }

    /// Ends every alert of a source that is no longer evaluated (a monitor
    /// removed by a reload): a firing alert resolves, a pending one is
    /// forgotten. Returns the resolutions, in key order.
    pub fn end_source(&mut self, source: &str, at: DateTime<Utc>) -> Vec<AlertNotice> {
        let keys: Vec<AlertKey> = self
            .alerts
            .keys()
            .filter(|key| &*key.source == source)
            .cloned()
            .collect();
        let mut notices = Vec::new();
        for key in keys {
            let alert = self.alerts.remove(&key).expect("listed above");
            let transition =
                (alert.progress.state == AlertState::Firing).then_some(Transition::Resolved);
            self.finish(alert, None, transition, at, &mut notices);
            self.changed(key, Change::Whole);
        }
        notices
    }

    fn finish(
        &mut self,
        mut alert: Alert,
        next: Option<Progress>,
        transition: Option<Transition>,
        at: DateTime<Utc>,
        notices: &mut Vec<AlertNotice>,
    ) {
        if let Some(transition) = transition {
            notices.push(AlertNotice::of(&alert, transition, at));
        }
        if let Some(next) = next {
            alert.progress = next;
            self.alerts.insert(alert.key.clone(), alert);
        }
    }
}

impl Change {
    /// An alert with a transition (a notice) is stored whole, so that its
    /// stored detection and metrics are those of its last notice.
    fn of(transition: Option<Transition>) -> Change {
        match transition {
            Some(_) => Change::Whole,
            None => Change::Progress,
        }
    }
}

impl Seen {
    /// Gives `alert` this evaluation's detection (when decided) and
    /// metrics (when built).
    fn refresh(self, alert: &mut Alert) {
        if let Some(detection) = self.detection {
            alert.detection = detection;
        }
        if let Some(metrics) = self.metrics {
            alert.metrics = metrics;
        }
    }
}
