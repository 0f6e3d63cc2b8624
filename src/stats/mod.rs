//! From Prometheus histogram buckets to distributions and their descriptive
//! statistics, exactly as `STATISTICS.md` defines them.
//!
//! Everything here is a pure function of bucket counts: no clock, no I/O.

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
    pub fn from_histogram(histogram: &Histogram) -> Result<Distribution, HistogramError> {
        todo!("{histogram:?}")
    }

    /// Builds a distribution from per-bucket (non-cumulative) counts, the last
    /// being the `+Inf` bucket. Used by baseline files and tests.
    pub fn from_bucket_counts(
        bounds: Vec<f64>,
        counts: Vec<f64>,
        sum: Option<f64>,
    ) -> Result<Distribution, HistogramError> {
        todo!("{bounds:?} {counts:?} {sum:?}")
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
    /// Representative value of each bucket (STATISTICS.md).
    pub fn representatives(&self) -> Vec<f64> {
        todo!()
    }
    /// `_sum / n` when the sum is known, else the mean of the representatives.
    /// NaN for an empty window.
    pub fn mean(&self) -> f64 {
        todo!()
    }
    /// Population standard deviation of the representatives. NaN when empty.
    pub fn stddev(&self) -> f64 {
        todo!()
    }
    /// Prometheus `histogram_quantile(q, ...)` on these buckets.
    pub fn quantile(&self, q: f64) -> f64 {
        todo!("{q}")
    }
}
