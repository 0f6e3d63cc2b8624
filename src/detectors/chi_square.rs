//! Pearson's chi-squared test of homogeneity on the 2 x B table of bucket
//! counts, with sparse buckets pooled so that the chi-squared approximation
//! holds, and a size-free Cramér's V as the effect size.

use crate::config::{DEFAULT_CHI_SQUARE_MIN_EFFECT, TestRule};
use crate::stats::{chi_squared_isf, chi_squared_sf};

use super::{
    DEFAULT_MIN_SAMPLES, DetectError, Detection, DriftDetector, TestResult, Windows,
    builder_methods, comparable, decide,
};

/// The Pearson statistic of the 2 x B' table of pooled buckets; `chi2(B' - 1)`
/// under the null.
///
/// Adjacent buckets are pooled in bound order until each pooled bucket's
/// expected count in the smaller window, `min(n, m) (c_i + d_i) / (n + m)`,
/// is at least [`ChiSquareDetector::MIN_EXPECTED`] (Cochran's rule); a short
/// remainder after the last such bucket joins it. Buckets empty in both
/// windows therefore disappear into their neighbours. Without pooling,
/// buckets where the current window expects under one observation make the
/// chi-squared approximation fail and the test false-alarm.
///
/// The effect is Cramér's V as if both windows had the same size,
/// `sqrt(chi2 (n + m) / (4 n m))` (Cohen's w / 2; plain V for `n = m`), so a
/// reference of seven days does not shrink it the way plain V,
/// `sqrt(chi2 / (n + m))`, shrinks with the reference size. These two
/// changes to the first rule come from the detection-quality benchmark
/// (`docs/statistics.md`, section 8.2).
///
/// With fewer than two pooled buckets there is no test: the statistic is 0,
/// the p-value 1 and the effective threshold `+Inf`.
#[derive(Debug, Clone, PartialEq)]
pub struct ChiSquareDetector {
    name: String,
    rule: TestRule,
    min_samples: f64,
}

impl ChiSquareDetector {
    /// Smallest expected count, in the smaller window, of a pooled bucket.
    pub const MIN_EXPECTED: f64 = 5.0;

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
        ChiSquareDetector::new(TestRule::with_min_effect(DEFAULT_CHI_SQUARE_MIN_EFFECT))
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
        let smaller = n.min(m);
        // The pooled buckets' contributions to the statistic: a pooled
        // bucket is held back until the next one is complete, since a short
        // remainder at the end joins the last complete one.
        let contribution = |(p, q): (f64, f64)| {
            let column = p + q;
            let expected_p = m * column / total;
            let expected_q = n * column / total;
            (p - expected_p).powi(2) / expected_p + (q - expected_q).powi(2) / expected_q
        };
        let mut score = 0.0;
        let mut pooled_buckets = 0_usize;
        let mut complete: Option<(f64, f64)> = None;
        let mut open = (0.0, 0.0);
        for (&p, &q) in reference.counts().iter().zip(current.counts()) {
            open = (open.0 + p, open.1 + q);
            if smaller * (open.0 + open.1) / total >= Self::MIN_EXPECTED {
                score += complete.replace(open).map_or(0.0, contribution);
                open = (0.0, 0.0);
                pooled_buckets += 1;
            }
        }
        let (p_value, critical) = match complete {
            Some(last) if pooled_buckets >= 2 => {
                score += contribution((last.0 + open.0, last.1 + open.1));
                let degrees_of_freedom = (pooled_buckets - 1) as f64;
                (
                    chi_squared_sf(score, degrees_of_freedom),
                    chi_squared_isf(self.rule.false_alarm_rate, degrees_of_freedom),
                )
            }
            _ => (1.0, f64::INFINITY),
        };
        // Size-free V >= min_effect <=> chi2 >= 4 n m min_effect^2 / (n + m).
        let size = 4.0 * n * m / total;
        let min_effect = self.rule.min_effect;
        let result = TestResult {
            score,
            magnitude: score,
            p_value,
            practical: (score / size).sqrt() >= min_effect,
            effective_threshold: critical.max(min_effect * min_effect * size),
        };
        decide(&self.rule, result, windows, self.min_samples)
    }
}
