//! Tail probabilities and critical values of the null distributions the
//! detectors use: chi-squared, standard normal and Kolmogorov's limiting
//! distribution of `sqrt(e) * D`.
//!
//! Each function is total: out-of-domain arguments give the limiting value
//! (or NaN for a NaN argument) instead of panicking.

use statrs::distribution::{ChiSquared, Continuous, ContinuousCDF, Normal};

/// Survival function `P(X > x)` of the chi-squared distribution with
/// `degrees_of_freedom` degrees of freedom. NaN when the degrees of freedom
/// are not positive and finite.
pub fn chi_squared_sf(x: f64, degrees_of_freedom: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    match ChiSquared::new(degrees_of_freedom) {
        Ok(distribution) if degrees_of_freedom.is_finite() => distribution.sf(x).clamp(0.0, 1.0),
        _ => f64::NAN,
    }
}

/// Critical value `x` with `P(X > x) = alpha` for the chi-squared
/// distribution (scipy's `chi2.isf`): `+Inf` for `alpha <= 0`, 0 for
/// `alpha >= 1`, NaN for invalid degrees of freedom.
pub fn chi_squared_isf(alpha: f64, degrees_of_freedom: f64) -> f64 {
    // Detectors ask for the same few critical values (one false-alarm rate,
    // a few bucket counts) once per model and evaluation; the inversion
    // costs microseconds, a lookup nanoseconds. Same answer either way.
    thread_local! {
        static KNOWN: std::cell::RefCell<Vec<((u64, u64), f64)>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    const REMEMBERED: usize = 64;
    let key = (alpha.to_bits(), degrees_of_freedom.to_bits());
    if let Some(value) =
        KNOWN.with_borrow(|known| known.iter().find(|(k, _)| *k == key).map(|(_, v)| *v))
    {
        return value;
    }
    let value = chi_squared_isf_uncached(alpha, degrees_of_freedom);
    KNOWN.with_borrow_mut(|known| {
        if known.len() == REMEMBERED {
            known.remove(0);
        }
        known.push((key, value));
    });
    value
}

fn chi_squared_isf_uncached(alpha: f64, degrees_of_freedom: f64) -> f64 {
    let distribution = match ChiSquared::new(degrees_of_freedom) {
        Ok(distribution) if degrees_of_freedom.is_finite() => distribution,
        _ => return f64::NAN,
    };
    invert_decreasing(alpha, |x| distribution.sf(x), |x| -distribution.pdf(x))
}

/// Survival function of the standard normal distribution.
pub fn normal_sf(x: f64) -> f64 {
    standard_normal().sf(x)
}

/// Critical value `z` with `P(Z > z) = alpha` for the standard normal
/// distribution (scipy's `norm.isf`): `+Inf` for `alpha <= 0`, `-Inf` for
/// `alpha >= 1`.
pub fn normal_isf(alpha: f64) -> f64 {
    if alpha.is_nan() {
        return f64::NAN;
    }
    if alpha <= 0.0 {
        return f64::INFINITY;
    }
    if alpha >= 1.0 {
        return f64::NEG_INFINITY;
    }
    // The quantile of 1 - alpha is the negated quantile of alpha, which keeps
    // full precision for small alpha.
    -standard_normal().inverse_cdf(alpha)
}

/// Kolmogorov's survival function
/// `Q_KS(x) = 2 sum_{k>=1} (-1)^{k-1} exp(-2 k^2 x^2)` (scipy's
/// `kstwobign.sf`), in [0, 1].
///
/// Below `x = 1` the alternating series converges slowly, so the
/// distribution function is taken from its theta-function form
/// `sqrt(2 pi) / x * sum_{k>=1} exp(-(2k - 1)^2 pi^2 / (8 x^2))` instead and
/// `Q_KS = 1 - K`; both forms need only a handful of terms there.
pub fn kolmogorov_sf(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x <= 0.0 {
        return 1.0;
    }
    let value = if x < 1.0 {
        1.0 - kolmogorov_cdf_theta(x)
    } else {
        let mut total = 0.0;
        let mut sign = 1.0;
        for k in 1..=100 {
            let k = f64::from(k);
            let term = (-2.0 * k * k * x * x).exp();
            total += sign * term;
            if term <= total.abs() * f64::EPSILON * 0.5 || term == 0.0 {
                break;
            }
            sign = -sign;
        }
        2.0 * total
    };
    value.clamp(0.0, 1.0)
}

/// Critical value `x` with `Q_KS(x) = alpha` (scipy's `kstwobign.isf`):
/// `+Inf` for `alpha <= 0`, 0 for `alpha >= 1`.
pub fn kolmogorov_isf(alpha: f64) -> f64 {
    invert_decreasing(alpha, kolmogorov_sf, |x| -kolmogorov_pdf(x))
}

/// `K(x) = 1 - Q_KS(x)` from the theta-function series, accurate for
/// `x < 1`.
fn kolmogorov_cdf_theta(x: f64) -> f64 {
    use std::f64::consts::PI;
    let factor = -PI * PI / (8.0 * x * x);
    let mut total = 0.0;
    for k in 1..=100 {
        let odd = f64::from(2 * k - 1);
        let term = (odd * odd * factor).exp();
        total += term;
        if term <= total * f64::EPSILON * 0.5 || term == 0.0 {
            break;
        }
    }
    (2.0 * PI).sqrt() / x * total
}

/// Density of Kolmogorov's distribution, used only to speed up inversion:
/// `8 x sum_{k>=1} (-1)^{k-1} k^2 exp(-2 k^2 x^2)`.
fn kolmogorov_pdf(x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    let mut total = 0.0;
    let mut sign = 1.0;
    for k in 1..=100 {
        let k = f64::from(k);
        let term = k * k * (-2.0 * k * k * x * x).exp();
        total += sign * term;
        if term == 0.0 {
            break;
        }
        sign = -sign;
    }
    (8.0 * x * total).max(0.0)
}

fn standard_normal() -> Normal {
    Normal::standard()
}

/// Solves `sf(x) = alpha` for a survival function decreasing on `[0, inf)`
/// with `sf(0) = 1`, by Newton steps kept inside a shrinking bracket
/// (bisection whenever a step would leave it).
fn invert_decreasing(alpha: f64, sf: impl Fn(f64) -> f64, derivative: impl Fn(f64) -> f64) -> f64 {
    if alpha.is_nan() {
        return f64::NAN;
    }
    if alpha <= 0.0 {
        return f64::INFINITY;
    }
    if alpha >= 1.0 {
        return 0.0;
    }
    let mut low = 0.0_f64;
    let mut high = 1.0_f64;
    let mut doublings = 0;
    while sf(high) > alpha {
        low = high;
        high *= 2.0;
        doublings += 1;
        if doublings > 1100 {
            return f64::INFINITY;
        }
    }
    let mut x = 0.5 * (low + high);
    for _ in 0..400 {
        let value = sf(x) - alpha;
        if value == 0.0 {
            return x;
        }
        if value > 0.0 {
            low = x;
        } else {
            high = x;
        }
        let slope = derivative(x);
        let mut next = x - value / slope;
        if !next.is_finite() || next <= low || next >= high {
            next = 0.5 * (low + high);
        }
        if (next - x).abs() <= 4.0 * f64::EPSILON * x.abs() || high - low <= f64::EPSILON * high {
            return next;
        }
        x = next;
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: f64, expected: f64, tolerance: f64) -> bool {
        (actual - expected).abs() <= tolerance * expected.abs().max(1e-300)
    }

    #[test]
    fn kolmogorov_sf_matches_reference_values() {
        // Reference values from scipy.stats.kstwobign.sf.
        let cases = [
            (0.1, 1.0),
            (0.5, 0.963_945_243_664_875_1),
            (1.0, 0.269_999_671_677_354_56),
            (1.358_098_8, 0.049_999_956_358_897_264),
            (2.0, 0.000_670_925_255_779_695_3),
        ];
        for (x, expected) in cases {
            let actual = kolmogorov_sf(x);
            assert!(
                close(actual, expected, 1e-6),
                "x={x}: {actual} != {expected}"
            );
        }
    }

    #[test]
    fn kolmogorov_sf_is_continuous_where_the_two_series_meet() {
        let below = kolmogorov_sf(1.0 - 1e-12);
        let above = kolmogorov_sf(1.0);
        assert!((below - above).abs() < 1e-11, "{below} vs {above}");
    }

    #[test]
    fn kolmogorov_sf_stays_a_probability_for_extreme_arguments() {
        for x in [1e-300, 1e-5, 0.2, 5.0, 30.0, 1e10, f64::INFINITY] {
            let value = kolmogorov_sf(x);
            assert!((0.0..=1.0).contains(&value), "x={x}: {value}");
        }
        assert_eq!(kolmogorov_sf(-1.0), 1.0);
        assert!(kolmogorov_sf(f64::NAN).is_nan());
    }

    #[test]
    fn critical_values_invert_their_survival_functions() {
        for alpha in [0.999, 0.9, 0.5, 0.05, 0.001, 1e-9, 1e-100] {
            let x = kolmogorov_isf(alpha);
            assert!(close(kolmogorov_sf(x), alpha, 1e-9), "ks alpha={alpha}");
            for df in [1.0, 4.0, 19.0] {
                let x = chi_squared_isf(alpha, df);
                assert!(
                    close(chi_squared_sf(x, df), alpha, 1e-9),
                    "chi2 alpha={alpha} df={df}"
                );
            }
            let z = normal_isf(alpha);
            assert!(close(normal_sf(z), alpha, 1e-9), "normal alpha={alpha}");
        }
    }

    #[test]
    fn critical_values_handle_out_of_range_levels() {
        assert_eq!(kolmogorov_isf(0.0), f64::INFINITY);
        assert_eq!(kolmogorov_isf(1.0), 0.0);
        assert_eq!(chi_squared_isf(0.0, 3.0), f64::INFINITY);
        assert!(chi_squared_isf(0.1, 0.0).is_nan());
        assert_eq!(normal_isf(0.0), f64::INFINITY);
        assert_eq!(normal_isf(1.0), f64::NEG_INFINITY);
    }

    #[test]
    fn chi_squared_critical_value_matches_tables() {
        // chi2_{0.999}(1) = 10.827566170662733 and chi2_{0.95}(4) = 9.487729036781158.
        assert!(close(
            chi_squared_isf(0.001, 1.0),
            10.827_566_170_662_733,
            1e-9
        ));
        assert!(close(
            chi_squared_isf(0.05, 4.0),
            9.487_729_036_781_158,
            1e-9
        ));
        // z_{0.9995} = 3.2905267314918945.
        assert!(close(normal_isf(0.0005), 3.290_526_731_491_894_5, 1e-9));
    }
}
