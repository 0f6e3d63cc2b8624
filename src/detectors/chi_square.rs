//! Pearson's chi-squared test of homogeneity on the 2 x B table of bucket
//! counts, with sparse buckets pooled so that the chi-squared approximation
//! holds, and a size-free Cramér's V as the effect size.

use crate::config::{DEFAULT_CHI_SQUARE_MIN_EFFECT, TestRule};
use crate::stats::{Distribution, chi_squared_isf, chi_squared_sf};

use super::Method;
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
        let pools = pools(reference, current);
        let score: f64 = if pools.len() >= 2 {
            pools.iter().map(|pool| pool_term(pool, m, n)).sum()
        } else {
            0.0
        };
        let (p_value, critical) = if pools.len() >= 2 {
            let degrees_of_freedom = (pools.len() - 1) as f64;
            (
                chi_squared_sf(score, degrees_of_freedom),
                chi_squared_isf(self.rule.false_alarm_rate, degrees_of_freedom),
            )
        } else {
            (1.0, f64::INFINITY)
        };
        // Size-free V >= min_effect <=> chi2 >= 4 n m min_effect^2 / (n + m).
        let size = 4.0 * n * m / (n + m);
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

    fn explanation_method(&self) -> Method {
        Method::ChiSquare
    }
}

/// Adjacent buckets pooled for the test: the range of bucket indices and
/// the counts of both windows.
pub(super) struct Pool {
    pub(super) first: usize,
    pub(super) last: usize,
    pub(super) reference: f64,
    pub(super) current: f64,
}

/// The pooled buckets of two non-empty windows, in bound order: each closes
/// once its expected count in the smaller window reaches
/// [`ChiSquareDetector::MIN_EXPECTED`], and a short remainder at the end
/// joins the last. Empty when no pool closes.
pub(super) fn pools(reference: &Distribution, current: &Distribution) -> Vec<Pool> {
    let m = reference.total();
    let n = current.total();
    let total = n + m;
    let smaller = n.min(m);
    let mut pools: Vec<Pool> = Vec::new();
    let mut open = Pool {
        first: 0,
        last: 0,
        reference: 0.0,
        current: 0.0,
    };
    let buckets = reference.counts().iter().zip(current.counts());
    for (index, (&p, &q)) in buckets.enumerate() {
        open.last = index;
        open.reference += p;
        open.current += q;
        if smaller * (open.reference + open.current) / total >= ChiSquareDetector::MIN_EXPECTED {
            let next = Pool {
                first: index + 1,
                last: index + 1,
                reference: 0.0,
                current: 0.0,
            };
            pools.push(std::mem::replace(&mut open, next));
        }
    }
    if let Some(last) = pools.last_mut()
        && open.first < reference.counts().len()
    {
        last.last = open.last;
        last.reference += open.reference;
        last.current += open.current;
    }
    pools
}

/// A pool's term of Pearson's statistic, with `m` and `n` the windows'
/// totals.
pub(super) fn pool_term(pool: &Pool, m: f64, n: f64) -> f64 {
    let total = n + m;
    let (p, q) = (pool.reference, pool.current);
    let column = p + q;
    let expected_p = m * column / total;
    let expected_q = n * column / total;
    (p - expected_p).powi(2) / expected_p + (q - expected_q).powi(2) / expected_q
}
