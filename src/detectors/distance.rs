//! Distances between the two windows' distributions, each compared with a
//! fixed threshold: Jensen-Shannon, Hellinger and the scaled Wasserstein-1.

use super::{
    DEFAULT_MIN_SAMPLES, DetectError, Detection, DriftDetector, Windows, builder_methods,
    comparable, decide_fixed, proportions, verdict,
};

/// Default threshold of every distance detector.
pub use crate::config::DEFAULT_DISTANCE_THRESHOLD;

/// Jensen-Shannon distance, base 2, in [0, 1] (scipy's
/// `jensenshannon(p, q, base=2)`).
#[derive(Debug, Clone, PartialEq)]
pub struct JensenShannonDetector {
    name: String,
    threshold: f64,
    min_samples: f64,
}

/// Hellinger distance `sqrt(1 - sum sqrt(p_i q_i))`, in [0, 1], computed as
/// `sqrt(sum (sqrt p_i - sqrt q_i)^2 / 2)`, equal for proportions summing to
/// one and free of cancellation for close distributions.
#[derive(Debug, Clone, PartialEq)]
pub struct HellingerDetector {
    name: String,
    threshold: f64,
    min_samples: f64,
}

/// Wasserstein-1 distance between the windows placed at the bucket
/// representatives, divided by `max(sd_p, 0.001)` so the threshold is in
/// reference standard deviations.
#[derive(Debug, Clone, PartialEq)]
pub struct WassersteinDetector {
    name: String,
    threshold: f64,
    min_samples: f64,
}

impl JensenShannonDetector {
    /// A detector named `jensen_shannon`: drift when the distance
    /// `>= threshold`.
    pub fn new(threshold: f64) -> JensenShannonDetector {
        JensenShannonDetector {
            name: "jensen_shannon".to_owned(),
            threshold,
            min_samples: DEFAULT_MIN_SAMPLES,
        }
    }
}

impl HellingerDetector {
    /// A detector named `hellinger`: drift when the distance `>= threshold`.
    pub fn new(threshold: f64) -> HellingerDetector {
        HellingerDetector {
            name: "hellinger".to_owned(),
            threshold,
            min_samples: DEFAULT_MIN_SAMPLES,
        }
    }
}

impl WassersteinDetector {
    /// Smallest reference spread the distance is divided by.
    pub const MIN_SCALE: f64 = 0.001;

    /// A detector named `wasserstein`: drift when the scaled distance
    /// `>= threshold`.
    pub fn new(threshold: f64) -> WassersteinDetector {
        WassersteinDetector {
            name: "wasserstein".to_owned(),
            threshold,
            min_samples: DEFAULT_MIN_SAMPLES,
        }
    }
}

impl Default for JensenShannonDetector {
    fn default() -> JensenShannonDetector {
        JensenShannonDetector::new(DEFAULT_DISTANCE_THRESHOLD)
    }
}

impl Default for HellingerDetector {
    fn default() -> HellingerDetector {
        HellingerDetector::new(DEFAULT_DISTANCE_THRESHOLD)
    }
}

impl Default for WassersteinDetector {
    fn default() -> WassersteinDetector {
        WassersteinDetector::new(DEFAULT_DISTANCE_THRESHOLD)
    }
}

builder_methods!(JensenShannonDetector);
builder_methods!(HellingerDetector);
builder_methods!(WassersteinDetector);

impl DriftDetector for JensenShannonDetector {
    fn name(&self) -> &str {
        &self.name
    }

    fn detect(&self, windows: Windows<'_>) -> Result<Detection, DetectError> {
        let (reference, current) = comparable(windows)?;
        let mut divergence = 0.0;
        for (p, q) in proportions(reference).zip(proportions(current)) {
            let middle = 0.5 * (p + q);
            if p > 0.0 {
                divergence += p * (p / middle).ln();
            }
            if q > 0.0 {
                divergence += q * (q / middle).ln();
            }
        }
        let score = (divergence / std::f64::consts::LN_2 / 2.0)
            .max(0.0)
            .sqrt()
            .min(1.0);
        decide_fixed(score, self.threshold, |drift| {
            verdict(windows, self.min_samples, drift)
        })
    }
}

impl DriftDetector for HellingerDetector {
    fn name(&self) -> &str {
        &self.name
    }

    fn detect(&self, windows: Windows<'_>) -> Result<Detection, DetectError> {
        let (reference, current) = comparable(windows)?;
        let squared: f64 = proportions(reference)
            .zip(proportions(current))
            .map(|(p, q)| (p.sqrt() - q.sqrt()).powi(2))
            .sum();
        let score = (0.5 * squared).sqrt().min(1.0);
        decide_fixed(score, self.threshold, |drift| {
            verdict(windows, self.min_samples, drift)
        })
    }
}

impl DriftDetector for WassersteinDetector {
    fn name(&self) -> &str {
        &self.name
    }

    fn detect(&self, windows: Windows<'_>) -> Result<Detection, DetectError> {
        let (reference, current) = comparable(windows)?;
        let representatives = reference.representatives();
        let mut below_p = 0.0;
        let mut below_q = 0.0;
        let mut distance = 0.0;
        for ((p, q), step) in proportions(reference)
            .zip(proportions(current))
            .zip(representatives.windows(2))
        {
            below_p += p;
            below_q += q;
            distance += (below_p - below_q).abs() * (step[1] - step[0]);
        }
        let score = distance / reference.stddev().max(WassersteinDetector::MIN_SCALE);
        decide_fixed(score, self.threshold, |drift| {
            verdict(windows, self.min_samples, drift)
        })
    }
}
