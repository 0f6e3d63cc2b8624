//! Drift detectors: strategies that compare a current window with its
//! reference and decide, as `docs/statistics.md` defines each score, p-value
//! and decision rule.
//!
//! `detect` is a pure function: no clock, no I/O.
//!
//! One detector per file: [`PsiDetector`], [`KsDetector`],
//! [`ChiSquareDetector`] and [`ZScoreDetector`] test a null hypothesis and
//! by default decide on statistical and practical significance together;
//! [`JensenShannonDetector`], [`HellingerDetector`] and
//! [`WassersteinDetector`] compare a distance with a fixed threshold;
//! [`QuantileRatioDetector`] and [`QuantileSloDetector`] watch serving
//! quality. [`from_config`] builds any of them from a config entry, and each
//! has a constructor and `named`/`with_min_samples` builder methods for code
//! that assembles detectors itself. Their settings and defaults are the
//! config's (`config::DetectorKind`, `config::TestRule`, `config::DEFAULT_*`),
//! so that a config file is checked before any detector exists.

mod accuracy;
mod chi_square;
mod distance;
mod exceedance;
mod explain;
mod ks;
mod psi;
mod quantile;
mod zscore;

pub use accuracy::AccuracyDropDetector;
pub use chi_square::ChiSquareDetector;
pub use distance::{
    DEFAULT_DISTANCE_THRESHOLD, HellingerDetector, JensenShannonDetector, WassersteinDetector,
};
pub use exceedance::ExceedanceDetector;
pub use explain::{BucketShift, CdfGap, Direction, Explanation, Shift, TOP_BUCKETS};
pub use ks::KsDetector;
pub use psi::PsiDetector;
pub use quantile::{QuantileRatioDetector, QuantileSloDetector};
pub use zscore::{DEFAULT_BASELINE_THRESHOLD, ZScoreDetector};

use crate::config::{DetectorConfig, DetectorKind, TestRule};
use crate::stats::Distribution;

/// The defaults every detector shares, as the config defines them:
/// observations needed in each compared window before a decision, and the
/// largest p-value the default rule calls significant.
pub use crate::config::{DEFAULT_FALSE_ALARM_RATE, DEFAULT_MIN_SAMPLES};

/// Whether an alert is about the input distribution or about serving quality.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    Drift,
    Performance,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Drift => "drift",
            AlertKind::Performance => "performance",
        }
    }
}

/// The two windows a detector compares.
#[derive(Debug, Clone, Copy)]
pub struct Windows<'a> {
    pub reference: &'a Distribution,
    pub current: &'a Distribution,
}

/// The decision of one detector on one pair of windows.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    Drift,
    NoDrift,
    /// Too few observations for a decision; the score may still be shown.
    InsufficientSamples {
        current: f64,
        reference: f64,
        min_samples: f64,
    },
    /// A window the detector reads began before any of the model's series
    /// existed (`"current"`, `"reference"`): no decision until the series
    /// are older than the window; the score may still be shown. Set by the
    /// engine, never by a detector.
    YoungSeries {
        windows: Vec<&'static str>,
    },
}

/// What a detector computed.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Detection {
    /// The statistic (PSI, KS D, JS distance, z, ratio, quantile...).
    pub score: f64,
    /// The effective threshold on `score` for this evaluation.
    pub threshold: f64,
    /// Where the detector has a null distribution.
    pub p_value: Option<f64>,
    pub verdict: Verdict,
}

/// Why a detector could not compute a score.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DetectError {
    #[error("bucket bounds differ between the current and the reference window")]
    BucketMismatch,
    #[error("the {0} window has no observations")]
    EmptyWindow(&'static str),
    #[error("{0}")]
    Undefined(String),
}

/// What ranks the buckets of an explanation: the deciding detector's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// The PSI terms, smoothed as the detector smooths them.
    Psi,
    /// The chi-square terms of the detector's pooled buckets.
    ChiSquare,
    /// The share difference, and where the cumulative proportions differ
    /// most.
    Ks,
    /// The share difference: every other detector.
    Share,
}

/// A drift-detection strategy.
pub trait DriftDetector: Send + Sync {
    /// The `detector` label of its results.
    fn name(&self) -> &str;
    /// Drift or performance.
    fn kind(&self) -> AlertKind {
        AlertKind::Drift
    }
    /// Compares the windows.
    fn detect(&self, windows: Windows<'_>) -> Result<Detection, DetectError>;
    /// Whether its decision depends on the reference window (false for
    /// detectors that judge the current window alone).
    fn reads_reference(&self) -> bool {
        true
    }
    /// How an [`Explanation`] of its decisions ranks the buckets.
    fn explanation_method(&self) -> Method {
        Method::Share
    }
}

/// Builds the detector a config entry describes; decisions need at least
/// `min_samples` observations in each compared window.
pub fn from_config(config: &DetectorConfig, min_samples: f64) -> Box<dyn DriftDetector> {
    let name = config.name.clone();
    match config.kind {
        DetectorKind::Psi(rule) => Box::new(
            PsiDetector::new(rule)
                .named(name)
                .with_min_samples(min_samples),
        ),
        DetectorKind::Ks(rule) => Box::new(
            KsDetector::new(rule)
                .named(name)
                .with_min_samples(min_samples),
        ),
        DetectorKind::ChiSquare(rule) => Box::new(
            ChiSquareDetector::new(rule)
                .named(name)
                .with_min_samples(min_samples),
        ),
        DetectorKind::ZScore {
            rule,
            baseline: None,
        } => Box::new(
            ZScoreDetector::new(rule)
                .named(name)
                .with_min_samples(min_samples),
        ),
        DetectorKind::ZScore {
            rule,
            baseline: Some(baseline),
        } => Box::new(
            ZScoreDetector::with_baseline(baseline.mean, baseline.std, rule.threshold)
                .named(name)
                .with_min_samples(min_samples),
        ),
        DetectorKind::JensenShannon { threshold } => Box::new(
            JensenShannonDetector::new(threshold)
                .named(name)
                .with_min_samples(min_samples),
        ),
        DetectorKind::Hellinger { threshold } => Box::new(
            HellingerDetector::new(threshold)
                .named(name)
                .with_min_samples(min_samples),
        ),
        DetectorKind::Wasserstein { threshold } => Box::new(
            WassersteinDetector::new(threshold)
                .named(name)
                .with_min_samples(min_samples),
        ),
        DetectorKind::QuantileRatio {
            quantile,
            max_ratio,
        } => Box::new(
            QuantileRatioDetector::new(quantile, max_ratio)
                .named(name)
                .with_min_samples(min_samples),
        ),
        DetectorKind::QuantileSlo { quantile, max } => Box::new(
            QuantileSloDetector::new(quantile, max)
                .named(name)
                .with_min_samples(min_samples),
        ),
        DetectorKind::Exceedance { quantile, rule } => Box::new(
            ExceedanceDetector::new(quantile, rule)
                .named(name)
                .with_min_samples(min_samples),
        ),
        DetectorKind::AccuracyDrop(rule) => Box::new(
            AccuracyDropDetector::new(rule)
                .named(name)
                .with_min_samples(min_samples),
        ),
    }
}

/// Adds the builder methods every detector shares: a `name` and a
/// `min_samples` field are expected.
macro_rules! builder_methods {
    ($detector:ty) => {
        impl $detector {
            /// Sets the `detector` label of its results.
            pub fn named(mut self, name: impl Into<String>) -> Self {
                self.name = name.into();
                self
            }

            /// Sets the observations needed in each compared window before a
            /// decision.
            pub fn with_min_samples(mut self, min_samples: f64) -> Self {
                self.min_samples = min_samples;
                self
            }
        }
    };
}
pub(crate) use builder_methods;

/// Both windows, checked to share their bucket bounds and to hold
/// observations.
fn comparable<'a>(
    windows: Windows<'a>,
) -> Result<(&'a Distribution, &'a Distribution), DetectError> {
    if windows.reference.bounds() != windows.current.bounds() {
        return Err(DetectError::BucketMismatch);
    }
    non_empty(windows.reference, "reference")?;
    non_empty(windows.current, "current")?;
    Ok((windows.reference, windows.current))
}

/// Fails with [`DetectError::EmptyWindow`] when `distribution` holds no
/// observation.
fn non_empty(distribution: &Distribution, which: &'static str) -> Result<(), DetectError> {
    if distribution.is_empty() {
        Err(DetectError::EmptyWindow(which))
    } else {
        Ok(())
    }
}

/// The verdict when both windows count: too few observations in either
/// means no decision.
fn verdict(windows: Windows<'_>, min_samples: f64, drift: bool) -> Verdict {
    let current = windows.current.total();
    let reference = windows.reference.total();
    if current < min_samples || reference < min_samples {
        Verdict::InsufficientSamples {
            current,
            reference,
            min_samples,
        }
    } else if drift {
        Verdict::Drift
    } else {
        Verdict::NoDrift
    }
}

/// The verdict when only the current window counts (fixed baselines and
/// SLOs); the reference total is reported as it is but never decides.
fn current_only_verdict(windows: Windows<'_>, min_samples: f64, drift: bool) -> Verdict {
    let current = windows.current.total();
    if current < min_samples {
        Verdict::InsufficientSamples {
            current,
            reference: windows.reference.total(),
            min_samples,
        }
    } else if drift {
        Verdict::Drift
    } else {
        Verdict::NoDrift
    }
}

/// What a hypothesis test computed before the rule decides.
struct TestResult {
    /// The exported statistic.
    score: f64,
    /// The value compared with a fixed threshold (`abs(z)` for z-scores).
    magnitude: f64,
    p_value: f64,
    /// Whether the effect reaches `min_effect`.
    practical: bool,
    /// The smallest score at which the default rule says drift.
    effective_threshold: f64,
}

/// Applies a [`TestRule`] to a test result: a fixed threshold when one is
/// given, else statistical and practical significance together.
fn decide(
    rule: &TestRule,
    result: TestResult,
    windows: Windows<'_>,
    min_samples: f64,
) -> Result<Detection, DetectError> {
    if !result.score.is_finite() {
        return Err(DetectError::Undefined(format!(
            "the score is not a finite number ({})",
            result.score
        )));
    }
    let (threshold, drift) = match rule.threshold {
        Some(threshold) => (threshold, result.magnitude >= threshold),
        None => (
            result.effective_threshold,
            result.p_value <= rule.false_alarm_rate && result.practical,
        ),
    };
    Ok(Detection {
        score: result.score,
        threshold,
        p_value: Some(result.p_value),
        verdict: verdict(windows, min_samples, drift),
    })
}

/// A fixed-threshold decision for detectors without a null distribution.
fn decide_fixed(
    score: f64,
    threshold: f64,
    verdict: impl FnOnce(bool) -> Verdict,
) -> Result<Detection, DetectError> {
    if !score.is_finite() {
        return Err(DetectError::Undefined(format!(
            "the score is not a finite number ({score})"
        )));
    }
    Ok(Detection {
        score,
        threshold,
        p_value: None,
        verdict: verdict(score >= threshold),
    })
}

/// Per-bucket proportions of a non-empty window.
fn proportions(distribution: &Distribution) -> impl Iterator<Item = f64> + '_ {
    let total = distribution.total();
    distribution.counts().iter().map(move |count| count / total)
}

#[cfg(test)]
mod tests;
