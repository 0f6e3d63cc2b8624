//! From Prometheus histogram buckets to distributions and their descriptive
//! statistics, exactly as `docs/statistics.md` defines them.
//!
//! Everything here is a pure function of bucket counts: no clock, no I/O.
//! The tail probabilities and critical values of the detectors' null
//! distributions (chi-squared, normal, Kolmogorov) live in a private
//! submodule and are re-exported here.

mod binomial;
pub mod calibration;
pub mod classes;
mod special;

pub use binomial::binomial_upper_tail;
pub use special::{
    chi_squared_isf, chi_squared_sf, kolmogorov_isf, kolmogorov_sf, normal_isf, normal_sf,
};

/// One window of one model's histogram as Prometheus returned it:
/// cumulative bucket counts from `increase(<name>_bucket[w])`.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// Finite upper bounds (`le`), strictly ascending.
    pub bounds: Vec<f64>,
    /// Cumulative counts for each finite bound, then the `+Inf` bucket:
    /// `bounds.len() + 1` values.
    pub cumulative: Vec<f64>,
    /// `increase(<name>_sum[w])` when the series exists.
    pub sum: Option<f64>,
}

/// Why a histogram cannot be turned into a distribution.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HistogramError {
    #[error("histogram has no +Inf bucket")]
    MissingInfBucket,
    #[error("histogram has no finite bucket")]
    NoFiniteBucket,
    #[error("bucket bounds are not strictly ascending at le={0}")]
    UnsortedBounds(f64),
    #[error("bucket le={bound} has a non-finite count {count}")]
    NonFiniteCount { bound: f64, count: f64 },
    #[error("bucket bound {0} is not a finite number")]
    NonFiniteBound(f64),
    #[error("histogram has {bounds} bounds but {counts} counts")]
    LengthMismatch { bounds: usize, counts: usize },
}

impl HistogramError {
    /// The kind of problem, without this histogram's details: what logs
    /// and the status API count rejected models by.
    pub fn reason(&self) -> &'static str {
        match self {
            HistogramError::MissingInfBucket => "histogram has no +Inf bucket",
            HistogramError::NoFiniteBucket => "histogram has no finite bucket",
            HistogramError::UnsortedBounds(_) => "bucket bounds are not strictly ascending",
            HistogramError::NonFiniteCount { .. } => "a bucket has a non-finite count",
            HistogramError::NonFiniteBound(_) => "a bucket bound is not a finite number",
            HistogramError::LengthMismatch { .. } => "bounds and counts differ in number",
        }
    }
}

/// Per-bucket counts of one window, made monotone, with the statistics
/// `docs/statistics.md` defines on them.
#[derive(Debug, Clone, PartialEq)]
pub struct Distribution {
    bounds: Vec<f64>,
    /// Per-bucket counts `c_i`, `bounds.len() + 1` values, all >= 0.
    counts: Vec<f64>,
    total: f64,
    sum: Option<f64>,
    /// Negative bucket differences clamped to zero.
    corrections: usize,
}

impl Distribution {
    /// Builds a distribution from cumulative counts: per-bucket differences,
    /// each clamped at zero (counted in [`Distribution::corrections`]).
    ///
    /// The cumulative counts are first made monotone the way Prometheus'
    /// `histogram_quantile` does, by taking their running maximum; each
    /// bucket's count is then its difference to that envelope, so a dip
    /// followed by a rise is not counted twice and `total()` stays the
    /// largest cumulative count. Every bucket whose cumulative count fell
    /// below the envelope is one correction.
    pub fn from_histogram(histogram: &Histogram) -> Result<Distribution, HistogramError> {
        validate(&histogram.bounds, &histogram.cumulative)?;
        let mut counts = Vec::with_capacity(histogram.cumulative.len());
        let mut envelope = 0.0_f64;
        let mut corrections = 0;
        for &cumulative in &histogram.cumulative {
            if cumulative < envelope {
                corrections += 1;
                counts.push(0.0);
            } else {
                counts.push(cumulative - envelope);
                envelope = cumulative;
            }
        }
        Ok(Distribution::assemble(
            histogram.bounds.clone(),
            counts,
            histogram.sum,
            corrections,
        ))
    }

    /// Builds a distribution from per-bucket (non-cumulative) counts, the last
    /// being the `+Inf` bucket. Used by baseline files and tests.
    ///
    /// A negative count is clamped to zero and counted as a correction.
    pub fn from_bucket_counts(
        bounds: Vec<f64>,
        counts: Vec<f64>,
        sum: Option<f64>,
    ) -> Result<Distribution, HistogramError> {
        validate(&bounds, &counts)?;
        let mut corrections = 0;
        let counts = counts
            .into_iter()
            .map(|count| {
                if count < 0.0 {
                    corrections += 1;
                    0.0
                } else {
                    count
                }
            })
            .collect();
        Ok(Distribution::assemble(bounds, counts, sum, corrections))
    }

    /// Builds the value from validated, non-negative counts. A non-finite
    /// `_sum` is treated as unknown, so the mean falls back to the
    /// representatives rather than turning into NaN.
    fn assemble(
        bounds: Vec<f64>,
        counts: Vec<f64>,
        sum: Option<f64>,
        corrections: usize,
    ) -> Distribution {
        let total = counts.iter().sum();
        Distribution {
            bounds,
            counts,
            total,
            sum: sum.filter(|sum| sum.is_finite()),
            corrections,
        }
    }

    /// Finite upper bounds.
    pub fn bounds(&self) -> &[f64] {
        &self.bounds
    }
    /// Per-bucket counts, the `+Inf` bucket last.
    pub fn counts(&self) -> &[f64] {
        &self.counts
    }
    /// `n`: all observations in the window.
    pub fn total(&self) -> f64 {
        self.total
    }
    /// `_sum` of the window, if known.
    pub fn sum(&self) -> Option<f64> {
        self.sum
    }
    /// How many negative bucket differences were clamped to zero.
    pub fn corrections(&self) -> usize {
        self.corrections
    }
    /// Whether the window holds no observation.
    pub fn is_empty(&self) -> bool {
        self.total <= 0.0
    }
    /// Representative value of each bucket (`docs/statistics.md`, section 1.5).
    pub fn representatives(&self) -> Vec<f64> {
        (0..self.counts.len())
            .map(|bucket| representative(&self.bounds, bucket))
            .collect()
    }
    /// `_sum / n` when the sum is known, else the mean of the representatives.
    /// NaN for an empty window.
    pub fn mean(&self) -> f64 {
        if self.is_empty() {
            return f64::NAN;
        }
        match self.sum {
            Some(sum) => sum / self.total,
            None => self.representative_mean(),
        }
    }
    /// Population standard deviation of the representatives. NaN when empty.
    pub fn stddev(&self) -> f64 {
        if self.is_empty() {
            return f64::NAN;
        }
        let center = self.representative_mean();
        let variance = self
            .counts
            .iter()
            .enumerate()
            .map(|(bucket, count)| {
                let deviation = representative(&self.bounds, bucket) - center;
                count * deviation * deviation
            })
            .sum::<f64>()
            / self.total;
        variance.max(0.0).sqrt()
    }
    /// Prometheus `histogram_quantile(q, ...)` on these buckets.
    ///
    /// NaN for an empty window or a NaN `q`, `-Inf` for `q < 0`, `+Inf` for
    /// `q > 1`. The rank `q * n` selects the first bucket whose cumulative
    /// count reaches it; the value is interpolated linearly inside that
    /// bucket (from 0 in the lowest bucket when its bound is positive, else
    /// the lowest bound itself), and the `+Inf` bucket answers the highest
    /// finite bound.
    pub fn quantile(&self, q: f64) -> f64 {
        if q.is_nan() {
            return f64::NAN;
        }
        if q < 0.0 {
            return f64::NEG_INFINITY;
        }
        if q > 1.0 {
            return f64::INFINITY;
        }
        if self.is_empty() {
            return f64::NAN;
        }
        let rank = q * self.total;
        let mut below = 0.0;
        for (bucket, &upper) in self.bounds.iter().enumerate() {
            let count = self.counts[bucket];
            let cumulative = below + count;
            if cumulative >= rank {
                if bucket == 0 && upper <= 0.0 {
                    return upper;
                }
                let start = if bucket == 0 {
                    0.0
                } else {
                    self.bounds[bucket - 1]
                };
                return start + (upper - start) * ((rank - below) / count);
            }
            below = cumulative;
        }
        self.bounds[self.bounds.len() - 1]
    }

    /// Mean of the representatives under the bucket proportions.
    fn representative_mean(&self) -> f64 {
        self.counts
            .iter()
            .enumerate()
            .map(|(bucket, count)| count * representative(&self.bounds, bucket))
            .sum::<f64>()
            / self.total
    }
}

/// Representative value of `bucket` given the finite bounds; the index
/// `bounds.len()` is the `+Inf` bucket.
fn representative(bounds: &[f64], bucket: usize) -> f64 {
    if bucket == bounds.len() {
        bounds[bounds.len() - 1]
    } else if bucket == 0 {
        if bounds[0] > 0.0 {
            bounds[0] / 2.0
        } else {
            bounds[0]
        }
    } else {
        (bounds[bucket - 1] + bounds[bucket]) / 2.0
    }
}

/// Checks the shape of one window: a count per finite bound plus the `+Inf`
/// bucket, at least one finite bound, finite strictly ascending bounds and
/// finite counts.
fn validate(bounds: &[f64], counts: &[f64]) -> Result<(), HistogramError> {
    if counts.len() != bounds.len() + 1 {
        if counts.len() == bounds.len() {
            return Err(HistogramError::MissingInfBucket);
        }
        return Err(HistogramError::LengthMismatch {
            bounds: bounds.len(),
            counts: counts.len(),
        });
    }
    if bounds.is_empty() {
        return Err(HistogramError::NoFiniteBucket);
    }
    if let Some(&bound) = bounds.iter().find(|bound| !bound.is_finite()) {
        return Err(HistogramError::NonFiniteBound(bound));
    }
    if let Some(pair) = bounds.windows(2).find(|pair| pair[1] <= pair[0]) {
        return Err(HistogramError::UnsortedBounds(pair[1]));
    }
    for (bucket, &count) in counts.iter().enumerate() {
        if !count.is_finite() {
            let bound = bounds.get(bucket).copied().unwrap_or(f64::INFINITY);
            return Err(HistogramError::NonFiniteCount { bound, count });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bounds 1, 2, 4 with 2, 4, 2 and 2 (in `+Inf`) observations: the
    /// hand-worked example most tests below use.
    fn example(sum: Option<f64>) -> Distribution {
        Distribution::from_bucket_counts(vec![1.0, 2.0, 4.0], vec![2.0, 4.0, 2.0, 2.0], sum)
            .unwrap()
    }

    fn assert_close(actual: f64, expected: f64) {
        assert!(
            (actual - expected).abs() <= 1e-12 * expected.abs().max(1.0),
            "{actual} != {expected}"
        );
    }

    #[test]
    fn cumulative_dips_are_clamped_against_the_running_maximum_and_counted() {
        let histogram = Histogram {
            bounds: vec![1.0, 2.0, 3.0],
            cumulative: vec![2.0, 5.0, 4.0, 9.0],
            sum: None,
        };
        let distribution = Distribution::from_histogram(&histogram).unwrap();
        assert_eq!(distribution.counts(), &[2.0, 3.0, 0.0, 4.0]);
        assert_eq!(distribution.corrections(), 1);
        assert_eq!(distribution.total(), 9.0);
    }

    #[test]
    fn monotone_cumulative_counts_need_no_correction() {
        let histogram = Histogram {
            bounds: vec![0.5, 1.0],
            cumulative: vec![1.5, 1.5, 4.25],
            sum: Some(3.0),
        };
        let distribution = Distribution::from_histogram(&histogram).unwrap();
        assert_eq!(distribution.counts(), &[1.5, 0.0, 2.75]);
        assert_eq!(distribution.corrections(), 0);
        assert_eq!(distribution.sum(), Some(3.0));
    }

    #[test]
    fn negative_bucket_counts_are_clamped_and_counted() {
        let distribution =
            Distribution::from_bucket_counts(vec![1.0, 2.0], vec![-0.5, 3.0, 1.0], None).unwrap();
        assert_eq!(distribution.counts(), &[0.0, 3.0, 1.0]);
        assert_eq!(distribution.corrections(), 1);
        assert_eq!(distribution.total(), 4.0);
    }

    #[test]
    fn malformed_histograms_are_rejected_with_a_reason() {
        let check = |bounds: Vec<f64>, cumulative: Vec<f64>, expected: HistogramError| {
            let histogram = Histogram {
                bounds: bounds.clone(),
                cumulative: cumulative.clone(),
                sum: None,
            };
            assert_eq!(
                Distribution::from_histogram(&histogram),
                Err(expected.clone()),
                "{bounds:?} {cumulative:?}"
            );
            assert_eq!(
                Distribution::from_bucket_counts(bounds, cumulative, None),
                Err(expected)
            );
        };
        check(
            vec![1.0, 2.0],
            vec![1.0, 2.0],
            HistogramError::MissingInfBucket,
        );
        check(
            vec![1.0, 2.0],
            vec![1.0, 2.0, 3.0, 4.0],
            HistogramError::LengthMismatch {
                bounds: 2,
                counts: 4,
            },
        );
        check(vec![], vec![], HistogramError::MissingInfBucket);
        check(vec![], vec![5.0], HistogramError::NoFiniteBucket);
        check(
            vec![1.0, 1.0],
            vec![0.0, 1.0, 2.0],
            HistogramError::UnsortedBounds(1.0),
        );
        check(
            vec![2.0, 1.0],
            vec![0.0, 1.0, 2.0],
            HistogramError::UnsortedBounds(1.0),
        );
        check(
            vec![1.0, f64::INFINITY],
            vec![0.0, 1.0, 2.0],
            HistogramError::NonFiniteBound(f64::INFINITY),
        );
        check(
            vec![1.0, 2.0],
            vec![0.0, f64::INFINITY, 2.0],
            HistogramError::NonFiniteCount {
                bound: 2.0,
                count: f64::INFINITY,
            },
        );
        check(
            vec![1.0, 2.0],
            vec![0.0, 1.0, f64::NEG_INFINITY],
            HistogramError::NonFiniteCount {
                bound: f64::INFINITY,
                count: f64::NEG_INFINITY,
            },
        );
    }

    #[test]
    fn nan_counts_and_bounds_are_rejected() {
        let nan_count = Distribution::from_bucket_counts(vec![1.0], vec![f64::NAN, 1.0], None);
        assert!(matches!(
            nan_count,
            Err(HistogramError::NonFiniteCount { bound, count }) if bound == 1.0 && count.is_nan()
        ));
        let nan_bound = Distribution::from_bucket_counts(vec![f64::NAN], vec![1.0, 1.0], None);
        assert!(matches!(nan_bound, Err(HistogramError::NonFiniteBound(bound)) if bound.is_nan()));
    }

    #[test]
    fn representatives_follow_the_bucket_rules() {
        let check = |bounds: Vec<f64>, expected: Vec<f64>| {
            let counts = vec![1.0; bounds.len() + 1];
            let distribution = Distribution::from_bucket_counts(bounds, counts, None).unwrap();
            assert_eq!(distribution.representatives(), expected);
        };
        // Positive first bound: the first bucket spans (0, le_0].
        check(vec![1.0, 2.0, 4.0], vec![0.5, 1.5, 3.0, 4.0]);
        // First bound at or below zero: its value is the bound itself.
        check(vec![0.0, 1.0], vec![0.0, 0.5, 1.0]);
        check(vec![-1.0, 0.0, 1.0], vec![-1.0, -0.5, 0.5, 1.0]);
        // One finite bound: the +Inf bucket sits on it.
        check(vec![3.0], vec![1.5, 3.0]);
    }

    #[test]
    fn mean_prefers_the_sum_and_stddev_uses_representatives() {
        // Representatives 0.5, 1.5, 3, 4 with weights 0.2, 0.4, 0.2, 0.2:
        // mean 2.1, second moment 5.95, variance 5.95 - 2.1^2 = 1.54.
        let without_sum = example(None);
        assert_close(without_sum.mean(), 2.1);
        assert_close(without_sum.stddev(), 1.54_f64.sqrt());
        let with_sum = example(Some(30.0));
        assert_close(with_sum.mean(), 3.0);
        assert_close(with_sum.stddev(), 1.54_f64.sqrt());
    }

    #[test]
    fn a_non_finite_sum_is_treated_as_unknown() {
        let distribution = example(Some(f64::NAN));
        assert_eq!(distribution.sum(), None);
        assert_close(distribution.mean(), 2.1);
    }

    #[test]
    fn empty_windows_have_no_mean_stddev_or_quantile() {
        let empty =
            Distribution::from_bucket_counts(vec![1.0, 2.0], vec![0.0, 0.0, 0.0], Some(0.0))
                .unwrap();
        assert!(empty.is_empty());
        assert!(empty.mean().is_nan());
        assert!(empty.stddev().is_nan());
        assert!(empty.quantile(0.5).is_nan());
    }

    #[test]
    fn quantile_matches_histogram_quantile_worked_by_hand() {
        // Cumulative counts 2, 6, 8, 10 at le = 1, 2, 4, +Inf.
        let distribution = example(None);
        let cases = [
            // rank 1 in the lowest bucket, interpolated from 0.
            (0.1, 0.5),
            // rank 2 exactly fills the lowest bucket.
            (0.2, 1.0),
            // rank 5: 3 of the 4 observations in (1, 2].
            (0.5, 1.75),
            // rank 7: 1 of the 2 observations in (2, 4].
            (0.7, 3.0),
            // rank 8 exactly fills (2, 4].
            (0.8, 4.0),
            // ranks 9 and 10 fall in +Inf, which answers the highest bound.
            (0.9, 4.0),
            (1.0, 4.0),
        ];
        for (q, expected) in cases {
            assert_close(distribution.quantile(q), expected);
        }
    }

    #[test]
    fn quantile_special_cases_follow_prometheus() {
        let distribution = example(None);
        assert_eq!(distribution.quantile(-0.1), f64::NEG_INFINITY);
        assert_eq!(distribution.quantile(1.1), f64::INFINITY);
        assert!(distribution.quantile(f64::NAN).is_nan());
        // A lowest bound at or below zero is returned as it is.
        let negative =
            Distribution::from_bucket_counts(vec![-1.0, 0.0, 1.0], vec![5.0, 1.0, 1.0, 1.0], None)
                .unwrap();
        assert_eq!(negative.quantile(0.5), -1.0);
        // Above the lowest bucket, interpolation starts at the previous bound.
        // Rank 5.5 of 8 is halfway through (-1, 0].
        assert_close(negative.quantile(0.6875), -0.5);
    }

    #[test]
    fn quantile_skips_empty_buckets() {
        let distribution =
            Distribution::from_bucket_counts(vec![1.0, 2.0, 3.0], vec![0.0, 0.0, 4.0, 0.0], None)
                .unwrap();
        // Rank 2 of 4 lies halfway through (2, 3].
        assert_close(distribution.quantile(0.5), 2.5);
    }
}
