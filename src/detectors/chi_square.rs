//! Pearson's chi-squared test of homogeneity on the 2 x B' table of bucket
//! counts, with Cramér's V as the effect size.

use crate::config::TestRule;
use crate::stats::{chi_squared_isf, chi_squared_sf};

use super::{
    DEFAULT_MIN_SAMPLES, DetectError, Detection, DriftDetector, TestResult, Windows,
    builder_methods, comparable, decide, default_rule,
};

/// The Pearson statistic over the buckets that hold a count in either
/// window; `chi2(B' - 1)` under the null. The effect is Cramér's V,
/// `sqrt(chi2 / (N (k - 1)))` with `N = n + m` and `k = 2`.
///
/// With a single occupied bucket the statistic is 0, the p-value 1 and the
/// effective threshold `+Inf`.
#[derive(Debug, Clone, PartialEq)]
pub struct ChiSquareDetector {
    name: String,
    rule: TestRule,
    min_samples: f64,
}

impl ChiSquareDetector {
    /// Smallest Cramér's V worth an alert under the default rule.
    pub const DEFAULT_MIN_EFFECT: f64 = 0.1;

    /// A detector named `chi_square` deciding by `rule`.
    pub fn new(rule: TestRule) -> ChiSquareDetector {
        ChiSquareDetector {
            name: "chi_square".to_owned(),
            rule,
            min_samples: DEFAULT_MIN_SAMPLES,
        }
    }
}

impl Default for ChiSquareDetector {
    fn default() -> ChiSquareDetector {
        ChiSquareDetector::new(default_rule(ChiSquareDetector::DEFAULT_MIN_EFFECT))
    }
}

builder_methods!(ChiSquareDetector);

impl DriftDetector for ChiSquareDetector {
    fn name(&self) -> &str {
        &self.name
    }

    fn detect(&self, windows: Windows<'_>) -> Result<Detection, DetectError> {
        let (reference, current) = comparable(windows)?;
        let m = reference.total();
        let n = current.total();
        let total = n + m;
        let mut score = 0.0;
        let mut columns = 0.0;
        for (&p, &q) in reference.counts().iter().zip(current.counts()) {
            let column = p + q;
            if column <= 0.0 {
                continue;
            }
            columns += 1.0;
            let expected_p = m * column / total;
            let expected_q = n * column / total;
            score += (p - expected_p).powi(2) / expected_p + (q - expected_q).powi(2) / expected_q;
        }
        let degrees_of_freedom = columns - 1.0;
        let (p_value, critical) = if degrees_of_freedom >= 1.0 {
            (
                chi_squared_sf(score, degrees_of_freedom),
                chi_squared_isf(self.rule.false_alarm_rate, degrees_of_freedom),
            )
        } else {
            (1.0, f64::INFINITY)
        };
        let min_effect = self.rule.min_effect;
        let result = TestResult {
            score,
            magnitude: score,
            p_value,
            practical: (score / total).sqrt() >= min_effect,
            effective_threshold: critical.max(min_effect * min_effect * total),
        };
        decide(&self.rule, result, windows, self.min_samples)
    }
}
