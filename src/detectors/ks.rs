//! The two-sample Kolmogorov-Smirnov statistic on the bucket bounds, with
//! Kolmogorov's limiting distribution for `sqrt(n m / (n + m)) * D`.

use crate::config::{DEFAULT_KS_MIN_EFFECT, TestRule};
use crate::stats::{Distribution, kolmogorov_isf, kolmogorov_sf};

use super::Method;
use super::{
    DEFAULT_MIN_SAMPLES, DetectError, Detection, DriftDetector, TestResult, Windows,
    builder_methods, comparable, decide,
};

/// `D = max_i abs(F_p(le_i) - F_q(le_i))` over the finite bounds; the
/// p-value is `Q_KS(sqrt(e) D)` with `e = n m / (n + m)`.
#[derive(Debug, Clone, PartialEq)]
pub struct KsDetector {
    name: String,
    rule: TestRule,
    /// `x` with `Q_KS(x) = false_alarm_rate`, fixed for the detector's life.
    critical: f64,
    min_samples: f64,
}

impl KsDetector {
    /// A detector named `ks` deciding by `rule`.
    pub fn new(rule: TestRule) -> KsDetector {
        KsDetector {
            name: "ks".to_owned(),
            rule,
            critical: kolmogorov_isf(rule.false_alarm_rate),
            min_samples: DEFAULT_MIN_SAMPLES,
        }
    }
}

impl Default for KsDetector {
    fn default() -> KsDetector {
        KsDetector::new(TestRule::with_min_effect(DEFAULT_KS_MIN_EFFECT))
    }
}

builder_methods!(KsDetector);

impl DriftDetector for KsDetector {
    fn name(&self) -> &str {
        &self.name
    }

    fn detect(&self, windows: Windows<'_>) -> Result<Detection, DetectError> {
        let (reference, current) = comparable(windows)?;
        let m = reference.total();
        let n = current.total();
        let (_, below_p, below_q) = largest_gap(reference, current);
        let score = (below_p - below_q).abs();
        let effective_size = (n * m / (n + m)).sqrt();
        let result = TestResult {
            score,
            magnitude: score,
            p_value: kolmogorov_sf(effective_size * score),
            practical: score >= self.rule.min_effect,
            effective_threshold: (self.critical / effective_size).max(self.rule.min_effect),
        };
        decide(&self.rule, result, windows, self.min_samples)
    }

    fn explanation_method(&self) -> Method {
        Method::Ks
    }
}

/// The finite bound where the cumulative proportions of two non-empty
/// windows differ most (the first, on ties): its index, `F_p` and `F_q`
/// there. `D` is the absolute difference of the two.
pub(super) fn largest_gap(reference: &Distribution, current: &Distribution) -> (usize, f64, f64) {
    let m = reference.total();
    let n = current.total();
    let finite = reference.bounds().len();
    let mut below_p = 0.0;
    let mut below_q = 0.0;
    let mut largest = (0, 0.0, 0.0);
    let mut gap = -1.0_f64;
    for (index, (p, q)) in reference.counts()[..finite]
        .iter()
        .zip(&current.counts()[..finite])
        .enumerate()
    {
        below_p += p;
        below_q += q;
        let (f_p, f_q) = (below_p / m, below_q / n);
        if (f_p - f_q).abs() > gap {
            gap = (f_p - f_q).abs();
            largest = (index, f_p, f_q);
        }
    }
    largest
}
