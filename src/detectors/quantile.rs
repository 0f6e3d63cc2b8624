//! Serving-quality detectors on `histogram_quantile` values: the ratio of
//! the current quantile to the reference one, and the current quantile
//! against a fixed objective.

use super::{
    AlertKind, DEFAULT_MIN_SAMPLES, DetectError, Detection, DriftDetector, Windows,
    builder_methods, comparable, current_only_verdict, decide_fixed, non_empty, verdict,
};

/// `Q_q(quantile) / Q_p(quantile)`; drift when it reaches `max_ratio`.
///
/// A reference quantile that is zero or negative (possible only with bounds
/// at or below zero) makes the ratio meaningless: [`DetectError::Undefined`].
#[derive(Debug, Clone, PartialEq)]
pub struct QuantileRatioDetector {
    name: String,
    quantile: f64,
    max_ratio: f64,
    min_samples: f64,
}

/// `Q_q(quantile)` in the signal's unit; a breach when it reaches `max`.
/// Only the current window is used and needs `min_samples` observations.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantileSloDetector {
    name: String,
    quantile: f64,
    max: f64,
    min_samples: f64,
}

impl QuantileRatioDetector {
    /// A detector named `quantile_ratio`.
    pub fn new(quantile: f64, max_ratio: f64) -> QuantileRatioDetector {
        QuantileRatioDetector {
            name: "quantile_ratio".to_owned(),
            quantile,
            max_ratio,
            min_samples: DEFAULT_MIN_SAMPLES,
        }
    }
}

impl QuantileSloDetector {
    /// A detector named `quantile_slo`.
    pub fn new(quantile: f64, max: f64) -> QuantileSloDetector {
        QuantileSloDetector {
            name: "quantile_slo".to_owned(),
            quantile,
            max,
            min_samples: DEFAULT_MIN_SAMPLES,
        }
    }
}

builder_methods!(QuantileRatioDetector);
builder_methods!(QuantileSloDetector);

impl DriftDetector for QuantileRatioDetector {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> AlertKind {
        AlertKind::Performance
    }

    fn detect(&self, windows: Windows<'_>) -> Result<Detection, DetectError> {
        let (reference, current) = comparable(windows)?;
        let reference_quantile = reference.quantile(self.quantile);
        if reference_quantile.is_nan() || reference_quantile <= 0.0 {
            return Err(DetectError::Undefined(format!(
                "the reference quantile {} is {reference_quantile}, so the ratio is undefined",
                self.quantile
            )));
        }
        let score = current.quantile(self.quantile) / reference_quantile;
        decide_fixed(score, self.max_ratio, |drift| {
            verdict(windows, self.min_samples, drift)
        })
    }
}

impl DriftDetector for QuantileSloDetector {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> AlertKind {
        AlertKind::Performance
    }

    fn reads_reference(&self) -> bool {
        false
    }

    fn detect(&self, windows: Windows<'_>) -> Result<Detection, DetectError> {
        non_empty(windows.current, "current")?;
        let score = windows.current.quantile(self.quantile);
        decide_fixed(score, self.max, |drift| {
            current_only_verdict(windows, self.min_samples, drift)
        })
    }
}
