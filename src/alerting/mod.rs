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
//! - while firing, a drifting evaluation `repeat_interval` or more after the
//!   last notification repeats it;
//! - `resolve_after` consecutive clean evaluations, or evaluations where the
//!   model is absent from its source's answer, resolve a firing alert;
//! - evaluations without a decision (too few samples, a detector error, a
//!   failed query) count neither way: they leave the progress as it was.
//!
//! Everything here is pure: no clock, no I/O. The evaluation loop passes the
//! evaluation time in, and the whole state serializes so that a notifier can
//! store it next to the notifications it caused.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::AlertingConfig;
use crate::detectors::AlertKind;
use crate::model::{DetectionRecord, InferenceMetrics};

/// Identifies one alert.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
///
/// Its parts are shared (`Arc`): the evaluation loop builds a key for every
/// detector of every model that has or may start an alert, so a clone is a
/// few reference counts, and all keys of one model share its labels.
pub struct AlertKey {
    /// The monitor (source) whose detector raised it.
    pub source: Arc<str>,
    /// The model's `group_by` labels, in the monitor's order.
    pub labels: Arc<[(String, String)]>,
    pub signal: Arc<str>,
    pub detector: Arc<str>,
}

impl AlertKey {
    /// The value of one model label.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What one evaluation says about one alert's detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    /// The detector decided: drift (or a breach).
    Drifting,
    /// The detector decided: no drift.
    Clean,
    /// No decision: too few samples, a detector error, a failed query.
    Unknown,
    /// The model is not in its source's answer any more.
    Absent,
}

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// Drifting, but not yet for `for` evaluations.
    Pending,
    Firing,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// The counters and times of one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub state: AlertState,
    /// Consecutive drifting evaluations (while pending).
    pub drifting: u32,
    /// Consecutive clean or absent evaluations (while firing).
    pub clean: u32,
    /// The first drifting evaluation of this episode.
    pub active_since: DateTime<Utc>,
    /// When it started firing.
    pub fired_at: Option<DateTime<Utc>>,
    /// The evaluation of the last firing or repeat notification.
    pub last_notified: Option<DateTime<Utc>>,
}

/// A change observers act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transition {
    /// The alert started firing.
    Fired,
    /// Still firing, `repeat_interval` after the last notification.
    Repeated,
    /// It stopped firing.
    Resolved,
}

/// The lifecycle settings, as counts and a duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertPolicy {
    pub for_evaluations: u32,
    pub resolve_after: u32,
    pub repeat_interval: Duration,
}

impl From<AlertingConfig> for AlertPolicy {
    fn from(config: AlertingConfig) -> Self {
        AlertPolicy {
            for_evaluations: config.for_evaluations.max(1),
            resolve_after: config.resolve_after.max(1),
            repeat_interval: config.repeat_interval,
        }
    }
}

impl Default for AlertPolicy {
    fn default() -> Self {
        AlertingConfig::default().into()
    }
}

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
            let progress = Progress {
                state: AlertState::Pending,
                drifting: 1,
                clean: 0,
                active_since: at,
                fired_at: None,
                last_notified: None,
            };
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
                let due = progress.last_notified.is_none_or(|last| {
                    (at - last).to_std().unwrap_or_default() >= policy.repeat_interval
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

/// One alert: its progress and the last detection and model metrics seen
/// (what notifications show).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub key: AlertKey,
    pub kind: AlertKind,
    pub progress: Progress,
    pub detection: DetectionRecord,
    /// Shared with the evaluation's other alerts, notices and events of the
    /// same model: one copy per model and evaluation, however many alerts.
    pub metrics: Arc<InferenceMetrics>,
}

/// Everything a notification needs about one alert at one transition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertNotice {
    pub transition: Transition,
    pub key: AlertKey,
    pub kind: AlertKind,
    /// When the episode started (first drifting evaluation).
    pub started_at: DateTime<Utc>,
    /// The evaluation that resolved it.
    pub ended_at: Option<DateTime<Utc>>,
    /// The evaluation that caused this notice.
    pub at: DateTime<Utc>,
    /// The last decided detection (for a resolved alert: the clean one, or
    /// the last drifting one when the model vanished).
    pub detection: DetectionRecord,
    /// The model's metrics in the last evaluation that saw it.
    pub metrics: Arc<InferenceMetrics>,
}

impl AlertNotice {
    /// The notice of `alert` (before its progress moves on) at `transition`.
    fn of(alert: &Alert, transition: Transition, at: DateTime<Utc>) -> AlertNotice {
        AlertNotice {
            transition,
            key: alert.key.clone(),
            kind: alert.kind,
            started_at: alert.progress.active_since,
            ended_at: (transition == Transition::Resolved).then_some(at),
            at,
            detection: alert.detection.clone(),
            metrics: Arc::clone(&alert.metrics),
        }
    }

    pub fn is_resolved(&self) -> bool {
        self.transition == Transition::Resolved
    }

    /// `firing` or `resolved`.
    pub fn status(&self) -> &'static str {
        if self.is_resolved() {
            "resolved"
        } else {
            "firing"
        }
    }
}

/// Every active alert, keyed. Serializes as a list.
///
/// It also remembers which alerts changed since it was last stored
/// ([`Lifecycle::changes`], [`Lifecycle::mark_stored`]), so that a sink
/// writes only those: a new or removed alert, or one whose progress moved.
/// An alert that goes on firing through drifting evaluations keeps its
/// progress and is not rewritten; its stored detection and metrics are then
/// those of its last change, and the first evaluation after a restart
/// refreshes them.
#[derive(Debug, Clone, Default)]
pub struct Lifecycle {
    pub alerts: BTreeMap<AlertKey, Alert>,
    /// Keys added, changed or removed since the last [`Lifecycle::mark_stored`].
    unstored: BTreeSet<AlertKey>,
}

impl PartialEq for Lifecycle {
    fn eq(&self, other: &Lifecycle) -> bool {
        self.alerts == other.alerts
    }
}

/// The alerts a sink must write and the keys it must delete.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertChanges {
    pub upserted: Vec<Alert>,
    pub removed: Vec<AlertKey>,
}

impl AlertChanges {
    pub fn is_empty(&self) -> bool {
        self.upserted.is_empty() && self.removed.is_empty()
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
            unstored: BTreeSet::new(),
        }
    }

    /// What changed since the last [`Lifecycle::mark_stored`].
    pub fn changes(&self) -> AlertChanges {
        let mut changes = AlertChanges::default();
        for key in &self.unstored {
            match self.alerts.get(key) {
                Some(alert) => changes.upserted.push(alert.clone()),
                None => changes.removed.push(key.clone()),
            }
        }
        changes
    }

    /// Whether anything changed since the last [`Lifecycle::mark_stored`].
    pub fn has_unstored_changes(&self) -> bool {
        !self.unstored.is_empty()
    }

    /// The sink stored [`Lifecycle::changes`].
    pub fn mark_stored(&mut self) {
        self.unstored.clear();
    }

    /// Counts every alert as changed (after reading an older store format,
    /// so that the next write stores all of them the new way).
    pub fn mark_all_unstored(&mut self) {
        self.unstored = self.alerts.keys().cloned().collect();
    }
}

/// What the evaluation loop knows about one alert key in one evaluation.
pub struct Seen {
    pub kind: AlertKind,
    pub observation: Observation,
    /// The detection, when the detector decided.
    pub detection: Option<DetectionRecord>,
    pub metrics: Arc<InferenceMetrics>,
}

impl Lifecycle {
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
            self.unstored.insert(key);
        }
        for (key, seen) in seen {
            let previous = self.alerts.get(&key).map(|alert| alert.progress);
            let (next, transition) = step(previous, seen.observation, at, policy);
            match (previous, next) {
                // An alert that goes on: updated in place.
                (Some(progress), Some(next)) => {
                    let alert = self.alerts.get_mut(&key).expect("found above");
                    if let Some(detection) = seen.detection {
                        alert.detection = detection;
                    }
                    alert.metrics = seen.metrics;
                    if let Some(transition) = transition {
                        notices.push(AlertNotice::of(alert, transition, at));
                    }
                    alert.progress = next;
                    if next != progress || transition.is_some() {
                        self.unstored.insert(key);
                    }
                }
                // An alert that ends (resolved, or forgotten while pending).
                (Some(_), None) => {
                    let mut alert = self.alerts.remove(&key).expect("found above");
                    if let Some(detection) = seen.detection {
                        alert.detection = detection;
                    }
                    alert.metrics = seen.metrics;
                    self.finish(alert, None, transition, at, &mut notices);
                    self.unstored.insert(key);
                }
                // The common case, a key with no alert that stays without
                // one: nothing to build, keep or tell.
                (None, None) if transition.is_none() => {}
                (None, _) => {
                    let Some(detection) = seen.detection else {
                        continue;
                    };
                    self.unstored.insert(key.clone());
                    let alert = Alert {
                        key,
                        kind: seen.kind,
                        progress: next.unwrap_or(Progress {
                            state: AlertState::Pending,
                            drifting: 0,
                            clean: 0,
                            active_since: at,
                            fired_at: None,
                            last_notified: None,
                        }),
                        detection,
                        metrics: seen.metrics,
                    };
                    self.finish(alert, next, transition, at, &mut notices);
                }
            }
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

    /// Counts of pending and firing alerts.
    pub fn counts(&self) -> (usize, usize) {
        let firing = self
            .alerts
            .values()
            .filter(|a| a.progress.state == AlertState::Firing)
            .count();
        (self.alerts.len() - firing, firing)
    }
}

/// Where the evaluation loop hands its alert notices: a durable store such
/// as the webhook notifier's outbox.
pub trait AlertSink: Send + Sync + 'static {
    /// Stores the notices of one evaluation together with the lifecycle's
    /// changes since it was last stored ([`Lifecycle::changes`]),
    /// atomically, so that a crash loses neither or both. Called from a
    /// blocking thread.
    fn record(&self, notices: &[AlertNotice], changes: &AlertChanges) -> Result<(), String>;
    /// The lifecycle stored last, read once at start. Alerts it must write
    /// again (an older store format) are marked unstored.
    fn restore(&self) -> Option<Lifecycle>;
    /// Delivery state for the status API, without secrets.
    fn status(&self) -> serde_json::Value;
}

/// An alert as the status API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertSummary {
    pub monitor: String,
    pub labels: BTreeMap<String, String>,
    pub signal: String,
    pub detector: String,
    pub kind: AlertKind,
    pub state: AlertState,
    pub active_since: DateTime<Utc>,
    pub fired_at: Option<DateTime<Utc>>,
    pub score: f64,
    pub threshold: f64,
}

impl Lifecycle {
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
            .map(|alert| AlertSummary {
                monitor: alert.key.source.to_string(),
                labels: alert.key.labels.iter().cloned().collect(),
                signal: alert.key.signal.to_string(),
                detector: alert.key.detector.to_string(),
                kind: alert.kind,
                state: alert.progress.state,
                active_since: alert.progress.active_since,
                fired_at: alert.progress.fired_at,
                score: alert.detection.score,
                threshold: alert.detection.threshold,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use Observation::{Absent, Clean, Drifting, Unknown};

    fn t(seconds: i64) -> DateTime<Utc> {
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

    fn record(score: f64) -> DetectionRecord {
        DetectionRecord {
            score,
            threshold: 0.1,
            p_value: None,
            current_samples: 500.0,
            reference_samples: 500.0,
        }
    }

    fn metrics(model: &str) -> InferenceMetrics {
        InferenceMetrics {
            model_name: model.to_owned(),
            model_version: "v1".to_owned(),
            monitor: "m".to_owned(),
            labels: BTreeMap::from([("model".to_owned(), model.to_owned())]),
            timestamp: t(0),
            confidence_mean: None,
            confidence_std: None,
            p50_latency_ms: None,
            p95_latency_ms: None,
            p99_latency_ms: None,
            signals: BTreeMap::new(),
        }
    }

    fn key(model: &str) -> AlertKey {
        AlertKey {
            source: "m".into(),
            labels: [("model".to_owned(), model.to_owned())].into(),
            signal: "confidence".into(),
            detector: "psi".into(),
        }
    }

    #[test]
    fn vanished_models_resolve_and_the_state_round_trips() {
        let policy = policy(1, 2, 3600);
        let mut lifecycle = Lifecycle::default();
        let (drift, m) = (record(0.5), metrics("a"));
        let seen = |observation| {
            BTreeMap::from([(
                key("a"),
                Seen {
                    kind: AlertKind::Drift,
                    observation,
                    detection: Some(drift.clone()),
                    metrics: Arc::new(m.clone()),
                },
            )])
        };
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
                    metrics: Arc::new(m.clone()),
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
}
