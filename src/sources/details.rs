//! [`SignalDetails`]: what a signal observes besides its two distributions,
//! for the signals that have more to say (class signals and confidence
//! signals with a correct-predictions histogram).

use std::sync::Arc;

use super::Rejection;
use crate::stats::Distribution;

/// What an observation carries besides its windows; empty for a plain
/// histogram signal.
#[derive(Debug, Clone, Default)]
pub struct SignalDetails {
    /// A class signal's classes, in the order of the windows' buckets
    /// (`stats::classes`).
    pub classes: Option<Arc<[String]>>,
    /// A confidence signal's labelled window (the current window moved back
    /// by `labels_delay`), or why there is none.
    pub labelled: Option<Result<LabelledWindow, Rejection>>,
    /// Whether the signal is top-class confidence, whose mean is an
    /// estimated accuracy (`config::SignalConfig::is_confidence`).
    pub confidence: bool,
}

/// The predictions of the labelled window and the correct ones among
/// them, as two confidence histograms on the same buckets.
#[derive(Debug, Clone)]
pub struct LabelledWindow {
    pub predictions: Distribution,
    pub correct: Distribution,
}
