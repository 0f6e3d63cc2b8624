//! `accuracy_drop`: a one-sided test that the estimated accuracy of a
//! classifier, its mean top-class confidence, fell below the reference's
//! (`docs/statistics.md`, section 12.2).
//!
//! For a calibrated classifier the mean top-class confidence is the
//! expected accuracy, so a drop of the mean is a drop of accuracy that needs
//! no labels. The detector tests the difference of the two window means
//! with a Welch z statistic and decides by the default rule: the one-sided
//! p-value at most `false_alarm_rate` and the drop at least `min_effect`.

use crate::config::{DEFAULT_ACCURACY_DROP_MIN_EFFECT, TestRule};
use crate::stats::{normal_isf, normal_sf};

use super::{
    AlertKind, DEFAULT_MIN_SAMPLES, DetectError, Detection, DriftDetector, TestResult, Windows,
    builder_methods, comparable, decide,
};

/// Flags a drop of the mean top-class confidence.
///
/// The score is the drop `mean_p - mean_q` (reference minus current, the
/// means from `_sum / n` when known); `z = drop / sqrt(sd_p^2 / m + sd_q^2 /
/// n)` with the representatives' standard deviations, and the p-value is
/// `P(Z >= z)`. Fails with [`DetectError::Undefined`] when both standard
/// deviations are zero.
#[derive(Debug, Clone, PartialEq)]
pub struct AccuracyDropDetector {
    name: String,
    rule: TestRule,
    min_samples: f64,
}

impl AccuracyDropDetector {
    /// A detector named `accuracy_drop` deciding by `rule`.
    pub fn new(rule: TestRule) -> AccuracyDropDetector {
        AccuracyDropDetector {
            name: "accuracy_drop".to_owned(),
            rule,
            min_samples: DEFAULT_MIN_SAMPLES,
        }
    }
}

impl Default for AccuracyDropDetector {
    fn default() -> AccuracyDropDetector {
        AccuracyDropDetector::new(TestRule::with_min_effect(DEFAULT_ACCURACY_DROP_MIN_EFFECT))
    }
}

builder_methods!(AccuracyDropDetector);

impl DriftDetector for AccuracyDropDetector {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> AlertKind {
        AlertKind::Performance
    }

    fn detect(&self, windows: Windows<'_>) -> Result<Detection, DetectError> {
        let (reference, current) = comparable(windows)?;
        let (m, n) = (reference.total(), current.total());
        let spread = (reference.stddev().powi(2) / m + current.stddev().powi(2) / n).sqrt();
        if spread <= 0.0 {
            return Err(DetectError::Undefined(
                "both windows have zero standard deviation, so the drop has no scale".to_owned(),
            ));
        }
        let drop = reference.mean() - current.mean();
        let z = drop / spread;
        let result = TestResult {
            score: drop,
            magnitude: drop,
            p_value: normal_sf(z),
            practical: drop >= self.rule.min_effect,
            effective_threshold: (normal_isf(self.rule.false_alarm_rate) * spread)
                .max(self.rule.min_effect),
        };
        decide(&self.rule, result, windows, self.min_samples)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::Verdict;
    use crate::stats::Distribution;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use rand_distr::{Beta, Distribution as _};

    const BOUNDS: [f64; 20] = [
        0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8,
        0.85, 0.9, 0.95, 1.0,
    ];

    /// A window of `n` confidences drawn from `beta`, bucketed as a client
    /// library would, with its exact `_sum`.
    fn window(rng: &mut StdRng, beta: &Beta<f64>, n: usize) -> Distribution {
        let mut counts = vec![0.0; BOUNDS.len() + 1];
        let mut sum = 0.0;
        for _ in 0..n {
            let value: f64 = beta.sample(rng);
            let bucket = BOUNDS.partition_point(|bound| *bound < value);
            counts[bucket] += 1.0;
            sum += value;
        }
        Distribution::from_bucket_counts(BOUNDS.to_vec(), counts, Some(sum)).unwrap()
    }

    fn rule(false_alarm_rate: f64, min_effect: f64) -> TestRule {
        TestRule {
            threshold: None,
            false_alarm_rate,
            min_effect,
        }
    }

    #[test]
    fn stationary_windows_alarm_at_most_at_the_false_alarm_rate() {
        // Without the practical floor only the test decides, so the alarm
        // rate is the test's size. 4000 stationary pairs at a rate of 0.01:
        // at most 40 alarms expected, and the bound allows three binomial
        // standard deviations above that.
        let mut rng = StdRng::seed_from_u64(14);
        let beta = Beta::new(17.0, 3.0).unwrap();
        let detector = AccuracyDropDetector::new(rule(0.01, 0.0));
        let trials = 4000;
        let rate: f64 = 0.01;
        let mut alarms = 0;
        for _ in 0..trials {
            let reference = window(&mut rng, &beta, 400);
            let current = window(&mut rng, &beta, 200);
            let detection = detector
                .detect(Windows {
                    reference: &reference,
                    current: &current,
                })
                .unwrap();
            if detection.verdict == Verdict::Drift {
                alarms += 1;
            }
        }
        let expected = trials as f64 * rate;
        let bound = expected + 3.0 * (expected * (1.0 - rate)).sqrt();
        assert!(
            (alarms as f64) <= bound,
            "{alarms} alarms in {trials} stationary trials, bound {bound:.1}"
        );
        // The test is not vacuous: it does alarm now and then.
        assert!(alarms > 0, "no alarm at all in {trials} trials");
    }

    #[test]
    fn a_drop_of_five_points_is_found_and_a_rise_never_is() {
        let mut rng = StdRng::seed_from_u64(7);
        let reference = window(&mut rng, &Beta::new(17.0, 3.0).unwrap(), 2000);
        let lower = window(&mut rng, &Beta::new(16.0, 4.0).unwrap(), 1000);
        let higher = window(&mut rng, &Beta::new(18.0, 2.0).unwrap(), 1000);
        let detector = AccuracyDropDetector::default();
        let dropped = detector
            .detect(Windows {
                reference: &reference,
                current: &lower,
            })
            .unwrap();
        assert_eq!(dropped.verdict, Verdict::Drift, "{dropped:?}");
        assert!((dropped.score - 0.05).abs() < 0.01, "{dropped:?}");
        let risen = detector
            .detect(Windows {
                reference: &reference,
                current: &higher,
            })
            .unwrap();
        assert_eq!(risen.verdict, Verdict::NoDrift, "{risen:?}");
        assert!(risen.p_value.unwrap() > 0.99);
    }

    #[test]
    fn a_tiny_drop_is_significant_but_below_the_practical_floor() {
        // 0.01 lower on a million observations: the p-value is tiny, the
        // drop under the default 0.02 floor.
        let bounds = vec![0.5, 1.0];
        let reference =
            Distribution::from_bucket_counts(bounds.clone(), vec![2e5, 8e5, 0.0], Some(8e5))
                .unwrap();
        let current =
            Distribution::from_bucket_counts(bounds, vec![2e5, 8e5, 0.0], Some(7.9e5)).unwrap();
        let detection = AccuracyDropDetector::default()
            .detect(Windows {
                reference: &reference,
                current: &current,
            })
            .unwrap();
        assert!(detection.p_value.unwrap() < 1e-6, "{detection:?}");
        assert_eq!(detection.verdict, Verdict::NoDrift);
        assert_eq!(detection.threshold, DEFAULT_ACCURACY_DROP_MIN_EFFECT);
    }
}
