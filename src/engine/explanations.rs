//! Which decisions of one evaluation get an explanation, and attaching it:
//! a drift verdict, or any decision of a detector that has an alert (so a
//! firing or resolving notification says what moved). Every other decision
//! gets none, so an evaluation of many clean models explains nothing.

use std::sync::Arc;

use super::snapshot::{DetectorResult, SignalResult};
use super::source::Source;
use crate::alerting::{Lifecycle, Progress};
use crate::detectors::{Explanation, Method, Verdict, Windows};
use crate::sources::SignalObservation;

/// An alert's model labels, signal and detector.
type DetectorKey<'a> = (&'a [(String, String)], &'a str, &'a str);

/// A model's labels as its alert keys share them, and how many alerts it has.
type AlertedModel<'a> = (&'a Arc<[(String, String)]>, usize);

/// The detectors of one source that have an alert, and the models they
/// belong to. Hashed with foldhash, not SipHash: the keys are our own, and
/// at 10,000 models with every detector false-alarming there are tens of
/// thousands of them, looked up once per (model, signal, detector) per
/// evaluation.
pub(super) struct AlertedDetectors<'a> {
    /// Each alert's progress, by its detector.
    keys: hashbrown::HashMap<DetectorKey<'a>, Progress>,
    /// Each alerted model's labels as its stored keys share them (so that
    /// this evaluation's keys share them too rather than copy them), and
    /// how many alerts it has.
    models: hashbrown::HashMap<&'a [(String, String)], AlertedModel<'a>>,
}

impl<'a> AlertedDetectors<'a> {
    /// The pending and firing alerts of `source`.
    pub(super) fn of(lifecycle: &'a Lifecycle, source: &str) -> AlertedDetectors<'a> {
        let mut keys = hashbrown::HashMap::new();
        let mut models = hashbrown::HashMap::new();
        for (key, alert) in lifecycle
            .alerts
            .iter()
            .filter(|(key, _)| &*key.source == source)
        {
            keys.insert((&*key.labels, &*key.signal, &*key.detector), alert.progress);
            models.entry(&*key.labels).or_insert((&key.labels, 0)).1 += 1;
        }
        AlertedDetectors { keys, models }
    }

    /// Whether this detector of this model's signal has an alert.
    pub(super) fn contains(
        &self,
        labels: &[(String, String)],
        signal: &str,
        detector: &str,
    ) -> bool {
        self.progress(labels, signal, detector).is_some()
    }

    /// The progress of this detector's alert; `None`: it has none.
    pub(super) fn progress(
        &self,
        labels: &[(String, String)],
        signal: &str,
        detector: &str,
    ) -> Option<Progress> {
        if self.keys.is_empty() {
            return None;
        }
        self.keys.get(&(labels, signal, detector)).copied()
    }

    /// The shared labels of a model with an alert; `None`: it has none.
    pub(super) fn model(&self, labels: &[(String, String)]) -> Option<&'a Arc<[(String, String)]>> {
        if self.models.is_empty() {
            return None;
        }
        self.models.get(labels).map(|(shared, _)| *shared)
    }

    /// How many alerts the model has.
    pub(super) fn alerts_of(&self, labels: &[(String, String)]) -> usize {
        self.models.get(labels).map_or(0, |(_, alerts)| *alerts)
    }
}

/// Attaches an explanation, computed from the windows the detectors just
/// compared, to each decision of `result` that drifts or has an alert.
pub(super) fn explain_decisions(
    result: &mut SignalResult,
    source: &Source,
    observation: &SignalObservation,
    alerted: &AlertedDetectors<'_>,
) {
    let (Ok(current), Ok(reference)) = (&observation.current, &observation.reference) else {
        return;
    };
    let windows = Windows { reference, current };
    let labels = observation.model.0.as_slice();
    // Detectors of one method explain the same windows alike (the
    // distance detectors all explain by shares): one explanation per
    // method, shared.
    let mut explained: Vec<(Method, Option<Arc<Explanation>>)> = Vec::new();
    for outcome in &mut result.detectors {
        let DetectorResult::Detection(detection) = &outcome.result else {
            continue;
        };
        let decided = matches!(detection.verdict, Verdict::Drift | Verdict::NoDrift);
        let wanted = detection.verdict == Verdict::Drift
            || (decided && alerted.contains(labels, &observation.signal, &outcome.detector));
        if !wanted {
            continue;
        }
        let Some(scoped) = source
            .detectors
            .iter()
            .find(|scoped| Arc::ptr_eq(&scoped.name, &outcome.detector))
        else {
            continue;
        };
        let method = scoped.detector.explanation_method();
        outcome.explanation = match explained.iter().find(|(m, _)| *m == method) {
            Some((_, explanation)) => explanation.clone(),
            None => {
                let explanation =
                    Explanation::of(windows, method, &observation.signal).map(Arc::new);
                explained.push((method, explanation.clone()));
                explanation
            }
        };
    }
}
