//! From Prometheus histogram buckets to distributions and their descriptive
//! statistics, exactly as `STATISTICS.md` defines them.
//!
//! Everything here is a pure function of bucket counts: no clock, no I/O.
//! The tail probabilities and critical values of the detectors' null
//! distributions (chi-squared, normal, Kolmogorov) live in a private
//! submodule and are re-exported here.

mod special;

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

/// Per-bucket counts of one window, made monotone, with the statistics
/// STATISTICS.md defines on them.
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
    /// Representative value of each bucket (STATISTICS.md).
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
