//! The exceedance test on a latency-like signal: the share of current
//! observations above the bucket bound that holds the reference's
//! `quantile`, against the reference's share above that same bound, with a
//! one-sided conditional binomial test (`docs/statistics.md`, section 4.10).

use crate::config::{DEFAULT_EXCEEDANCE_MIN_EFFECT, DEFAULT_EXCEEDANCE_QUANTILE, TestRule};
use crate::stats::{Distribution, binomial_upper_tail};

use super::{
    AlertKind, DEFAULT_MIN_SAMPLES, DetectError, Detection, DriftDetector, TestResult, Windows,
    builder_methods, comparable, decide,
};

/// Doublings of the search bracket before the statistical threshold is
/// called unreachable; `2^64` times the window size is beyond any count.
const BRACKET_DOUBLINGS: usize = 64;
/// Bisection steps for the statistical threshold: the bracket shrinks
/// `2^60` times, below any tolerance a share is read with.
const BISECTION_STEPS: usize = 60;

/// Flags a rise in the share of observations above the reference's
/// `quantile` bucket.
///
/// With `b` the upper bound of the reference bucket in which the reference
/// `quantile` falls, `x` and `y` the current and reference counts above `b`
/// and `n`, `m` the window totals, the score is the current share `x / n`.
/// Under no change, given `x + y` observations above `b`, `x` is
/// `Binomial(x + y, n / (n + m))` (exact for Poisson traffic); the p-value
/// is `P(X >= x)`. The default rule also asks the shares' ratio to reach
/// `1 + min_effect`. A reference quantile in the `+Inf` bucket leaves no
/// bound: [`DetectError::Undefined`].
#[derive(Debug, Clone, PartialEq)]
pub struct ExceedanceDetector {
    name: String,
    quantile: f64,
    rule: TestRule,
    min_samples: f64,
}

impl ExceedanceDetector {
    /// A detector named `exceedance` watching the bucket of the reference
    /// `quantile` and deciding by `rule`.
    pub fn new(quantile: f64, rule: TestRule) -> ExceedanceDetector {
        ExceedanceDetector {
            name: "exceedance".to_owned(),
            quantile,
            rule,
            min_samples: DEFAULT_MIN_SAMPLES,
        }
    }
}

impl Default for ExceedanceDetector {
    /// The reference p99's bucket under the default rule.
    fn default() -> ExceedanceDetector {
        ExceedanceDetector::new(
            DEFAULT_EXCEEDANCE_QUANTILE,
            TestRule::with_min_effect(DEFAULT_EXCEEDANCE_MIN_EFFECT),
        )
    }
}

builder_methods!(ExceedanceDetector);

/// What the test counts in one window: the observations above the bound
/// and the window's total.
#[derive(Debug, Clone, Copy)]
struct Tail {
    above: f64,
    total: f64,
}

/// The index of the bucket in which `quantile` of `distribution` falls, as
/// `histogram_quantile` picks it: the first whose cumulative count reaches
/// `quantile * total` (`bounds().len()` for the `+Inf` bucket).
fn quantile_bucket(distribution: &Distribution, quantile: f64) -> usize {
    let rank = quantile * distribution.total();
    let mut cumulative = 0.0;
    for (bucket, count) in distribution.counts().iter().enumerate() {
        cumulative += count;
        if cumulative >= rank {
            return bucket;
        }
    }
    distribution.bounds().len()
}

/// The window's observations above the bucket `bucket` (the buckets after it).
fn tail(distribution: &Distribution, bucket: usize) -> Tail {
    Tail {
        above: distribution.counts()[bucket + 1..].iter().sum(),
        total: distribution.total(),
    }
}

/// The one-sided p-value of `current.above` exceedances given
/// `current.above + reference.above` in both windows together.
fn p_value(current: Tail, reference: Tail) -> f64 {
    let share = current.total / (current.total + reference.total);
    binomial_upper_tail(current.above, current.above + reference.above, share)
}

/// The smallest current share above the bound whose p-value is at most
/// `alpha`, the reference tail fixed: found by bisection on the count, as
/// the p-value falls when the count rises. Above 1 when no count within the
/// window would do; `+Inf` when none at all would.
fn statistical_share(current_total: f64, reference: Tail, alpha: f64) -> f64 {
    let p_at = |above: f64| {
        p_value(
            Tail {
                above,
                total: current_total,
            },
            reference,
        )
    };
    let mut high = current_total.max(1.0);
    let mut doublings = 0;
    while p_at(high) > alpha {
        if doublings == BRACKET_DOUBLINGS {
            return f64::INFINITY;
        }
        high *= 2.0;
        doublings += 1;
    }
    let mut low = 0.0;
    for _ in 0..BISECTION_STEPS {
        let middle = 0.5 * (low + high);
        if p_at(middle) > alpha {
            low = middle;
        } else {
            high = middle;
        }
    }
    high / current_total
}

impl DriftDetector for ExceedanceDetector {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> AlertKind {
        AlertKind::Performance
    }

    fn detect(&self, windows: Windows<'_>) -> Result<Detection, DetectError> {
        let (reference, current) = comparable(windows)?;
        let bucket = quantile_bucket(reference, self.quantile);
        if bucket >= reference.bounds().len() {
            return Err(DetectError::Undefined(format!(
                "the reference quantile {} lies in the +Inf bucket, so no bound is exceeded",
                self.quantile
            )));
        }
        let reference_tail = tail(reference, bucket);
        let current_tail = tail(current, bucket);
        let score = current_tail.above / current_tail.total;
        let reference_share = reference_tail.above / reference_tail.total;
        let floor = (1.0 + self.rule.min_effect) * reference_share;
        let result = TestResult {
            score,
            magnitude: score,
            p_value: p_value(current_tail, reference_tail),
            practical: score >= floor,
            effective_threshold: statistical_share(
                current_tail.total,
                reference_tail,
                self.rule.false_alarm_rate,
            )
            .max(floor),
        };
        decide(&self.rule, result, windows, self.min_samples)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::Verdict;

    const BOUNDS: [f64; 4] = [0.05, 0.1, 0.25, 0.5];

    fn window(counts: [f64; 5]) -> Distribution {
        Distribution::from_bucket_counts(BOUNDS.to_vec(), counts.to_vec(), None).unwrap()
    }

    #[test]
    fn watches_the_bucket_where_the_reference_quantile_falls() {
        // 1000 reference observations: 980 up to 0.1, so the p99 rank 990
        // is reached in (0.1, 0.25]; above 0.25 are 4 of them.
        let reference = window([900.0, 80.0, 16.0, 3.0, 1.0]);
        // 500 current observations, 10 above 0.25: a share of 0.02 against
        // the reference's 0.004.
        let current = window([440.0, 40.0, 10.0, 8.0, 2.0]);
        let detection = ExceedanceDetector::default()
            .detect(Windows {
                reference: &reference,
                current: &current,
            })
            .unwrap();
        assert_eq!(detection.score, 0.02);
        // Given 14 above the bound in both, the current window holds 10 of
        // them where a third is expected: P(Binomial(14, 1/3) >= 10).
        let expected: f64 = (10..=14)
            .map(|k| {
                let choose = (0..k).fold(1.0, |c, i| c * (14 - i) as f64 / (i + 1) as f64);
                choose * (1.0_f64 / 3.0).powi(k) * (2.0_f64 / 3.0).powi(14 - k)
            })
            .sum();
        let p = detection.p_value.unwrap();
        assert!((p - expected).abs() < 1e-12 * expected, "{p} vs {expected}");
        // p is about 0.0054: not significant at 0.001, so no drift.
        assert_eq!(detection.verdict, Verdict::NoDrift);
        assert!(detection.threshold > 0.02);
    }

    #[test]
    fn needs_the_ratio_floor_as_well_as_significance() {
        // 200,000 against 200,000: a share of 1.1% against 1.0% is
        // significant, but only 1.1 times the reference's.
        let reference = window([150_000.0, 46_000.0, 2_000.0, 1_000.0, 1_000.0]);
        let current = window([150_000.0, 45_600.0, 2_200.0, 1_100.0, 1_100.0]);
        let windows = Windows {
            reference: &reference,
            current: &current,
        };
        let detection = ExceedanceDetector::new(0.98, TestRule::with_min_effect(0.5))
            .detect(windows)
            .unwrap();
        assert!(detection.p_value.unwrap() < 0.001, "{detection:?}");
        assert_eq!(detection.verdict, Verdict::NoDrift);
        let detection = ExceedanceDetector::new(0.98, TestRule::with_min_effect(0.05))
            .detect(windows)
            .unwrap();
        assert_eq!(detection.verdict, Verdict::Drift);
    }

    #[test]
    fn the_threshold_is_the_smallest_share_that_decides_drift() {
        let reference = window([900.0, 80.0, 16.0, 3.0, 1.0]);
        let detector = ExceedanceDetector::default();
        let threshold = detector
            .detect(Windows {
                reference: &reference,
                current: &window([440.0, 40.0, 10.0, 8.0, 2.0]),
            })
            .unwrap()
            .threshold;
        // Move current observations above 0.25 one at a time: drift starts
        // at the first count whose share reaches the threshold.
        for above in 0..60 {
            let current = window([450.0 - above as f64, 40.0, 10.0, above as f64, 0.0]);
            let detection = detector
                .detect(Windows {
                    reference: &reference,
                    current: &current,
                })
                .unwrap();
            assert_eq!(
                detection.verdict == Verdict::Drift,
                detection.score >= threshold,
                "{above} above: {detection:?}, threshold {threshold}"
            );
        }
    }

    #[test]
    fn a_reference_quantile_in_the_inf_bucket_is_an_error() {
        let reference = window([100.0, 0.0, 0.0, 0.0, 5.0]);
        let error = ExceedanceDetector::default()
            .detect(Windows {
                reference: &reference,
                current: &reference,
            })
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "the reference quantile 0.99 lies in the +Inf bucket, so no bound is exceeded"
        );
    }
}
