//! Drift detectors: strategies that compare a current window with its
//! reference and decide, as `STATISTICS.md` defines each score, p-value and
//! decision rule.
//!
//! `detect` is a pure function: no clock, no I/O.

use crate::config::{DetectorConfig, DetectorKind};
use crate::stats::Distribution;

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
}

/// Builds the detector a config entry describes; decisions need at least
/// `min_samples` observations in each compared window.
pub fn from_config(config: &DetectorConfig, min_samples: f64) -> Box<dyn DriftDetector> {
    todo!("{:?} {min_samples}", config.kind.type_name())
}

#[allow(dead_code)]
fn _uses(kind: &DetectorKind) -> &'static str {
    kind.type_name()
}
