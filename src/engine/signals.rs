//! What an evaluation publishes about a signal besides the detectors'
//! results: a class signal's shares ([`ClassMix`]) and a confidence
//! signal's accuracy ([`AccuracyResult`]), as `docs/statistics.md`
//! sections 11 and 12 define them.

use std::sync::Arc;

use serde::Serialize;

use crate::model::SignalSummary;
use crate::sources::SignalObservation;
use crate::stats::calibration::{LabelledAccuracy, labelled_accuracy};
use crate::stats::classes::shares;

/// The class shares of a class signal's two windows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassMix {
    /// The union of both windows' classes, sorted by name.
    pub classes: Arc<[String]>,
    /// Each class's share of the current window, in `classes` order; empty
    /// when the window could not be read or holds nothing.
    pub current: Vec<f64>,
    /// The same for the reference window.
    pub reference: Vec<f64>,
}

/// The accuracy numbers of a top-class confidence signal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccuracyResult {
    /// The mean confidence of the current window.
    pub estimated_current: Option<f64>,
    /// The mean confidence of the reference window.
    pub estimated_reference: Option<f64>,
    /// Realized accuracy and calibration of the labelled window, when the
    /// signal has a correct-predictions histogram and the window was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labelled: Option<LabelledAccuracy>,
}

/// The statistics of the current window that mean something for the
/// signal: for a class signal only the count (its buckets are categories,
/// with no mean or quantile).
pub(super) fn current_summary(observation: &SignalObservation) -> Option<SignalSummary> {
    let current = observation.current.as_ref().ok()?;
    let mut summary = SignalSummary::of(current);
    if observation.details.classes.is_some() {
        summary.mean = f64::NAN;
        summary.stddev = f64::NAN;
        summary.p50 = f64::NAN;
        summary.p95 = f64::NAN;
        summary.p99 = f64::NAN;
    }
    Some(summary)
}

/// The class shares of a class signal.
pub(super) fn class_mix(observation: &SignalObservation) -> Option<ClassMix> {
    let classes = observation.details.classes.clone()?;
    let window_shares = |window: &Result<_, _>| window.as_ref().map(shares).unwrap_or_default();
    Some(ClassMix {
        classes,
        current: window_shares(&observation.current),
        reference: window_shares(&observation.reference),
    })
}

/// The accuracy numbers of a confidence signal, and why the labelled
/// window gave none (for the signal's `error`), if it did not.
pub(super) fn accuracy(
    observation: &SignalObservation,
) -> (Option<AccuracyResult>, Option<String>) {
    if !observation.details.confidence {
        return (None, None);
    }
    let mean = |window: &Result<crate::stats::Distribution, _>| {
        window
            .as_ref()
            .ok()
            .map(|distribution| distribution.mean())
            .filter(|mean| mean.is_finite())
    };
    let (labelled, problem) = match &observation.details.labelled {
        None => (None, None),
        Some(Err(rejection)) => (None, Some(format!("labelled window: {rejection}"))),
        Some(Ok(window)) => match labelled_accuracy(&window.predictions, &window.correct) {
            Ok(accuracy) => (Some(accuracy), None),
            Err(error) => (None, Some(format!("labelled window: {error}"))),
        },
    };
    let result = AccuracyResult {
        estimated_current: mean(&observation.current),
        estimated_reference: mean(&observation.reference),
        labelled,
    };
    (Some(result), problem)
}
