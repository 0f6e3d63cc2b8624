//! Which decisions of one evaluation get an explanation, and attaching it:
//! a drift verdict, or any decision of a detector that has an alert (so a
//! firing or resolving notification says what moved). Every other decision
//! gets none, so an evaluation of many clean models explains nothing.

use std::collections::HashSet;
use std::sync::Arc;

use super::snapshot::{DetectorResult, SignalResult};
use super::source::Source;
use crate::alerting::Lifecycle;
use crate::detectors::{Explanation, Verdict, Windows};
use crate::sources::SignalObservation;

/// An alert's model labels, signal and detector.
type DetectorKey<'a> = (&'a [(String, String)], &'a str, &'a str);

/// The detectors of one source that have an alert.
pub(super) struct AlertedDetectors<'a> {
    keys: HashSet<DetectorKey<'a>>,
}

impl<'a> AlertedDetectors<'a> {
    /// The pending and firing alerts of `source`.
    pub(super) fn of(lifecycle: &'a Lifecycle, source: &str) -> AlertedDetectors<'a> {
        let keys = lifecycle
            .alerts
            .keys()
            .filter(|key| &*key.source == source)
            .map(|key| (&*key.labels, &*key.signal, &*key.detector))
            .collect();
        AlertedDetectors { keys }
    }

    fn contains(&self, labels: &[(String, String)], signal: &str, detector: &str) -> bool {
        !self.keys.is_empty() && self.keys.contains(&(labels, signal, detector))
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
        outcome.explanation = Explanation::of(windows, method, &observation.signal).map(Arc::new);
    }
}
