//! The population stability index with its chi-squared null distribution
//! (Yurdakul 2018): `PSI ~ (1/n + 1/m) chi2(B - 1)`.

use crate::config::{DEFAULT_PSI_MIN_EFFECT, TestRule};
use crate::stats::{Distribution, chi_squared_isf, chi_squared_sf};

use super::Method;
use super::{
    DEFAULT_MIN_SAMPLES, DetectError, Detection, DriftDetector, TestResult, Windows,
    builder_methods, comparable, decide,
};

/// PSI over the buckets that hold a count in either window, each proportion
/// smoothed as `(c_i + 0.5) / (n + 0.5 B)`.
///
/// With a single occupied bucket both windows are identical, PSI is 0, the
/// p-value 1 and the effective threshold `+Inf`: no score can be significant.
#[derive(Debug, Clone, PartialEq)]
pub struct PsiDetector {
    name: String,
    rule: TestRule,
    min_samples: f64,
}

impl PsiDetector {
    /// A detector named `psi` deciding by `rule`.
    pub fn new(rule: TestRule) -> PsiDetector {
        PsiDetector {
            name: "psi".to_owned(),
            rule,
            min_samples: DEFAULT_MIN_SAMPLES,
        }
    }
}

impl Default for PsiDetector {
    fn default() -> PsiDetector {
        PsiDetector::new(TestRule::with_min_effect(DEFAULT_PSI_MIN_EFFECT))
    }
}

builder_methods!(PsiDetector);

impl DriftDetector for PsiDetector {
    fn name(&self) -> &str {
        &self.name
    }

    fn detect(&self, windows: Windows<'_>) -> Result<Detection, DetectError> {
        let (reference, current) = comparable(windows)?;
        let m = reference.total();
        let n = current.total();
        let (buckets, terms) = terms(reference, current);
        let score: f64 = terms.map(|(_, term)| term).sum();
        let scale = 1.0 / n + 1.0 / m;
        let degrees_of_freedom = buckets - 1.0;
        let (p_value, critical) = if degrees_of_freedom >= 1.0 {
            (
                chi_squared_sf(score / scale, degrees_of_freedom),
                chi_squared_isf(self.rule.false_alarm_rate, degrees_of_freedom) * scale,
            )
        } else {
            (1.0, f64::INFINITY)
        };
        let result = TestResult {
            score,
            magnitude: score,
            p_value,
            practical: score >= self.rule.min_effect,
            effective_threshold: critical.max(self.rule.min_effect),
        };
        decide(&self.rule, result, windows, self.min_samples)
    }

    fn explanation_method(&self) -> Method {
        Method::Psi
    }
}

/// The number `K` of buckets holding a count in either window, and the PSI
/// term of each of them with its index, in bucket order: PSI is their sum.
pub(super) fn terms<'a>(
    reference: &'a Distribution,
    current: &'a Distribution,
) -> (f64, impl Iterator<Item = (usize, f64)> + 'a) {
    let m = reference.total();
    let n = current.total();
    let occupied = reference
        .counts()
        .iter()
        .zip(current.counts())
        .enumerate()
        .filter(|(_, (p, q))| **p > 0.0 || **q > 0.0);
    let buckets = occupied.clone().count() as f64;
    let p_denominator = m + 0.5 * buckets;
    let q_denominator = n + 0.5 * buckets;
    let terms = occupied.map(move |(index, (p, q))| {
        let p = (p + 0.5) / p_denominator;
        let q = (q + 0.5) / q_denominator;
        (index, (q - p) * (q / p).ln())
    });
    (buckets, terms)
}
