//! The z-score of the current mean: against the reference window
//! (a two-sample test of means) or against a fixed baseline (the original
//! sketch's `(mean - baseline.mean) / baseline.std`).

use crate::config::{DEFAULT_ZSCORE_MIN_EFFECT, TestRule};
use crate::stats::{normal_isf, normal_sf};

use super::{
    DEFAULT_MIN_SAMPLES, DetectError, Detection, DriftDetector, TestResult, Windows,
    builder_methods, comparable, current_only_verdict, decide, decide_fixed, non_empty,
};

/// Threshold on `abs(z)` for the fixed-baseline form when none is given.
pub const DEFAULT_BASELINE_THRESHOLD: f64 = 3.0;

/// What the current mean is compared with.
#[derive(Debug, Clone, PartialEq)]
enum Form {
    /// `z = (mean_q - mean_p) / (sd_p sqrt(1/n + 1/m))`, standard normal
    /// under the null.
    TwoWindow(TestRule),
    /// `z = (mean_q - mean) / std`; only the current window is used.
    Baseline { mean: f64, std: f64, threshold: f64 },
}

/// Flags a shift of the mean.
///
/// The two-window form fails with [`DetectError::Undefined`] when the
/// reference window's standard deviation is zero (all its observations in
/// one bucket), since no scale is known then. The fixed-baseline form has no
/// p-value: its `z` compares a window mean with the spread of single
/// observations, which is not standard normal under the null; it ignores the
/// reference window entirely (its bucket bounds are not checked) and needs
/// `min_samples` observations in the current window only.
#[derive(Debug, Clone, PartialEq)]
pub struct ZScoreDetector {
    name: String,
    form: Form,
    min_samples: f64,
}

impl ZScoreDetector {
    /// A two-window detector named `zscore` deciding by `rule`.
    pub fn new(rule: TestRule) -> ZScoreDetector {
        ZScoreDetector {
            name: "zscore".to_owned(),
            form: Form::TwoWindow(rule),
            min_samples: DEFAULT_MIN_SAMPLES,
        }
    }

    /// A fixed-baseline detector named `zscore`: drift when
    /// `abs((mean_q - mean) / std) >= threshold`, the threshold defaulting
    /// to [`DEFAULT_BASELINE_THRESHOLD`].
    pub fn with_baseline(mean: f64, std: f64, threshold: Option<f64>) -> ZScoreDetector {
        ZScoreDetector {
            name: "zscore".to_owned(),
            form: Form::Baseline {
                mean,
                std,
                threshold: threshold.unwrap_or(DEFAULT_BASELINE_THRESHOLD),
            },
            min_samples: DEFAULT_MIN_SAMPLES,
        }
    }
}

impl Default for ZScoreDetector {
    fn default() -> ZScoreDetector {
        ZScoreDetector::new(TestRule::with_min_effect(DEFAULT_ZSCORE_MIN_EFFECT))
    }
}

builder_methods!(ZScoreDetector);

impl DriftDetector for ZScoreDetector {
    fn name(&self) -> &str {
        &self.name
    }

    fn reads_reference(&self) -> bool {
        matches!(self.form, Form::TwoWindow(_))
    }

    fn detect(&self, windows: Windows<'_>) -> Result<Detection, DetectError> {
        match &self.form {
            Form::TwoWindow(rule) => self.detect_two_window(rule, windows),
            Form::Baseline {
                mean,
                std,
                threshold,
            } => self.detect_baseline(*mean, *std, *threshold, windows),
        }
    }
}

impl ZScoreDetector {
    fn detect_two_window(
        &self,
        rule: &TestRule,
        windows: Windows<'_>,
    ) -> Result<Detection, DetectError> {
        let (reference, current) = comparable(windows)?;
        let spread = reference.stddev();
        if spread <= 0.0 {
            return Err(DetectError::Undefined(
                "the reference window has zero standard deviation, so its z-score is undefined"
                    .to_owned(),
            ));
        }
        let shift = current.mean() - reference.mean();
        let scale = (1.0 / current.total() + 1.0 / reference.total()).sqrt();
        let score = shift / (spread * scale);
        let result = TestResult {
            score,
            magnitude: score.abs(),
            p_value: (2.0 * normal_sf(score.abs())).min(1.0),
            practical: shift.abs() >= rule.min_effect * spread,
            effective_threshold: normal_isf(rule.false_alarm_rate / 2.0)
                .max(rule.min_effect / scale),
        };
        decide(rule, result, windows, self.min_samples)
    }

    fn detect_baseline(
        &self,
        mean: f64,
        std: f64,
        threshold: f64,
        windows: Windows<'_>,
    ) -> Result<Detection, DetectError> {
        if !(std > 0.0 && std.is_finite() && mean.is_finite()) {
            return Err(DetectError::Undefined(format!(
                "the baseline needs a finite mean and a positive finite std, got mean {mean} and std {std}"
            )));
        }
        non_empty(windows.current, "current")?;
        let score = (windows.current.mean() - mean) / std;
        let mut detection = decide_fixed(score.abs(), threshold, |drift| {
            current_only_verdict(windows, self.min_samples, drift)
        })?;
        detection.score = score;
        Ok(detection)
    }
}
