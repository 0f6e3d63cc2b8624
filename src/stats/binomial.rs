//! The upper tail of the binomial distribution, extended to real counts
//! through the regularized incomplete beta function, as the `exceedance`
//! detector's conditional binomial test needs it (`docs/statistics.md`,
//! section 4.10).
//!
//! Prometheus' `increase` extrapolates, so bucket counts need not be whole
//! numbers; the tail is therefore defined for real `x` and `k`.

use statrs::function::beta::checked_beta_reg;

/// `P(X >= x)` for `X ~ Binomial(k, p)`, written `I_p(x, k - x + 1)` (the
/// regularized incomplete beta function) so that it is defined for real
/// `x` and `k`: 1 for `x <= 0`, 0 for `x > k` or `p <= 0` (with `x > 0`),
/// 1 for `p >= 1`, NaN for a NaN argument. For whole numbers it equals
/// scipy's `binom.sf(x - 1, k, p)`.
pub fn binomial_upper_tail(x: f64, k: f64, p: f64) -> f64 {
    if x.is_nan() || k.is_nan() || p.is_nan() {
        return f64::NAN;
    }
    if x <= 0.0 {
        return 1.0;
    }
    if x > k || p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    checked_beta_reg(x, k - x + 1.0, p)
        .map(|value| value.clamp(0.0, 1.0))
        .unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_number_tails_match_the_binomial_sums() {
        // P(X >= 2) for Binomial(3, 0.5) = (3 + 1) / 8.
        assert!((binomial_upper_tail(2.0, 3.0, 0.5) - 0.5).abs() < 1e-12);
        // P(X >= 1) = 1 - (1 - p)^k.
        let expected = 1.0 - 0.9_f64.powi(10);
        assert!((binomial_upper_tail(1.0, 10.0, 0.1) - expected).abs() < 1e-12);
        // P(X >= k) = p^k.
        assert!((binomial_upper_tail(4.0, 4.0, 0.3) - 0.3_f64.powi(4)).abs() < 1e-12);
    }

    #[test]
    fn edges_give_the_limiting_values() {
        assert_eq!(binomial_upper_tail(0.0, 5.0, 0.2), 1.0);
        assert_eq!(binomial_upper_tail(6.0, 5.0, 0.2), 0.0);
        assert_eq!(binomial_upper_tail(1.0, 5.0, 0.0), 0.0);
        assert_eq!(binomial_upper_tail(1.0, 5.0, 1.0), 1.0);
        assert!(binomial_upper_tail(f64::NAN, 5.0, 0.2).is_nan());
    }
}
