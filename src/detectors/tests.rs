//! Hand-worked cases for every detector and the decision rules.

use super::*;
use crate::config::ZScoreBaseline;

fn window(bounds: &[f64], counts: &[f64]) -> Distribution {
    Distribution::from_bucket_counts(bounds.to_vec(), counts.to_vec(), None).unwrap()
}

fn run(
    detector: &dyn DriftDetector,
    reference: &Distribution,
    current: &Distribution,
) -> Detection {
    detector
        .detect(Windows { reference, current })
        .expect("the detector computes a score")
}

fn assert_close(actual: f64, expected: f64, tolerance: f64) {
    assert!(
        (actual - expected).abs() <= tolerance * expected.abs().max(1e-300),
        "{actual} != {expected}"
    );
}

fn rule(threshold: Option<f64>, false_alarm_rate: f64, min_effect: f64) -> TestRule {
    TestRule {
        threshold,
        false_alarm_rate,
        min_effect,
    }
}

#[test]
fn psi_smooths_and_drops_buckets_empty_in_both_windows() {
    // Occupied buckets 2 of 3: p' = (1.5, 3.5) / 5, q' = (3.5, 1.5) / 5, so
    // PSI = 0.8 ln(7/3). The null scale is 1/4 + 1/4; scipy gives
    // chi2(1).sf(PSI / 0.5) = 0.2442881762315175 and
    // chi2(1).isf(0.001) * 0.5 = 5.413783085331366.
    let bounds = [1.0, 2.0];
    let reference = window(&bounds, &[1.0, 0.0, 3.0]);
    let current = window(&bounds, &[3.0, 0.0, 1.0]);
    let detection = run(&PsiDetector::default(), &reference, &current);
    assert_close(detection.score, 0.8 * (7.0_f64 / 3.0).ln(), 1e-12);
    assert_close(detection.p_value.unwrap(), 0.244_288_176_231_517_5, 1e-9);
    assert_close(detection.threshold, 5.413_783_085_331_366, 1e-9);
    assert_eq!(
        detection.verdict,
        Verdict::InsufficientSamples {
            current: 4.0,
            reference: 4.0,
            min_samples: 100.0
        }
    );
}

#[test]
fn psi_of_one_occupied_bucket_is_zero_and_never_significant() {
    let bounds = [1.0, 2.0];
    let reference = window(&bounds, &[0.0, 500.0, 0.0]);
    let current = window(&bounds, &[0.0, 300.0, 0.0]);
    let detection = run(&PsiDetector::default(), &reference, &current);
    assert_eq!(detection.score, 0.0);
    assert_eq!(detection.p_value, Some(1.0));
    assert_eq!(detection.threshold, f64::INFINITY);
    assert_eq!(detection.verdict, Verdict::NoDrift);
}

#[test]
fn ks_compares_cumulative_proportions_at_finite_bounds() {
    // F_p = (0.5, 0.8), F_q = (0.2, 0.5): D = 0.3, e = 5; scipy gives
    // kstwobign.sf(sqrt(5) * 0.3) = 0.7590978384203948 and
    // kstwobign.isf(0.001) / sqrt(5) = 0.8718315467690465.
    let bounds = [1.0, 2.0];
    let reference = window(&bounds, &[5.0, 3.0, 2.0]);
    let current = window(&bounds, &[2.0, 3.0, 5.0]);
    let detection = run(&KsDetector::default(), &reference, &current);
    assert_close(detection.score, 0.3, 1e-12);
    assert_close(detection.p_value.unwrap(), 0.759_097_838_420_394_8, 1e-9);
    assert_close(detection.threshold, 0.871_831_546_769_046_5, 1e-9);
}

#[test]
fn chi_square_pools_sparse_buckets_and_uses_the_size_free_v() {
    // n = 20, m = 40: a pooled bucket needs an expected count of 5 in the
    // smaller window, 20 c / 60 >= 5, so a column of at least 15. Columns
    // 15, 15, 19, 11: three pooled buckets close, and the short remainder
    // (10, 1) joins the third, (14, 5) + (10, 1) = (24, 6). Expected counts
    // are (10, 5), (10, 5), (20, 10), so the statistic is
    // (4/10 + 4/5) + (36/10 + 36/5) + (16/20 + 16/10) = 1.2 + 10.8 + 2.4
    // = 14.4 with 2 degrees of freedom; chi2(2).sf(14.4) = exp(-7.2) =
    // 0.0007465858083766791 (scipy's chi2_contingency agrees), and
    // chi2(2).isf(0.001) = 2 ln 1000 = 13.815510557964274. Unpooled, the
    // table would give 15.33 on 3 degrees of freedom.
    let bounds = [1.0, 2.0, 3.0];
    let reference = window(&bounds, &[12.0, 4.0, 14.0, 10.0]);
    let current = window(&bounds, &[3.0, 11.0, 5.0, 1.0]);
    // The size-free V is sqrt(14.4 * 60 / (4 * 20 * 40)) = sqrt(0.27) =
    // 0.52 >= 0.5, where plain Cramér's V, sqrt(14.4 / 60) = 0.49, is not.
    // A V of 0.5 needs 0.25 * 4 * 20 * 40 / 60 = 13.33, below the critical
    // value, which is then the threshold.
    let detector = ChiSquareDetector::new(rule(None, 0.001, 0.5)).with_min_samples(20.0);
    let detection = run(&detector, &reference, &current);
    assert_close(detection.score, 14.4, 1e-12);
    assert_close(detection.p_value.unwrap(), 7.465_858_083_766_791e-4, 1e-9);
    assert_close(detection.threshold, 13.815_510_557_964_274, 1e-9);
    assert_eq!(detection.verdict, Verdict::Drift);
    // Requiring V >= 0.55 raises the threshold to 0.3025 * 160 / 3 = 16.13.
    let strict = ChiSquareDetector::new(rule(None, 0.001, 0.55)).with_min_samples(20.0);
    let detection = run(&strict, &reference, &current);
    assert_close(detection.threshold, 0.3025 * 160.0 / 3.0, 1e-12);
    assert_eq!(detection.verdict, Verdict::NoDrift);
}

#[test]
fn chi_square_without_two_pooled_buckets_has_no_test() {
    // n = m = 100: a pooled bucket needs a column of 10. The first closes at
    // the second bucket (0 + 193); the third bucket's 7 cannot close one and
    // joins it, so one pooled bucket is left where the unpooled table had
    // two occupied columns.
    let bounds = [1.0, 2.0];
    let reference = window(&bounds, &[0.0, 95.0, 5.0]);
    let current = window(&bounds, &[0.0, 98.0, 2.0]);
    let detection = run(&ChiSquareDetector::default(), &reference, &current);
    assert_eq!(detection.score, 0.0);
    assert_eq!(detection.p_value, Some(1.0));
    assert_eq!(detection.threshold, f64::INFINITY);
    assert_eq!(detection.verdict, Verdict::NoDrift);
}

#[test]
fn zscore_tests_the_shift_of_means() {
    // Representatives 0.5, 1.5, 3, 4: reference mean 2.1 and variance 1.54,
    // current mean 2.8, so z = 0.7 / sqrt(1.54 * (1/10 + 1/10)); scipy gives
    // 2 * norm.sf(z) = 0.2071962981722978.
    let bounds = [1.0, 2.0, 4.0];
    let reference = window(&bounds, &[2.0, 4.0, 2.0, 2.0]);
    let current = window(&bounds, &[0.0, 4.0, 2.0, 4.0]);
    let detection = run(&ZScoreDetector::default(), &reference, &current);
    assert_close(detection.score, 0.7 / (1.54_f64 * 0.2).sqrt(), 1e-12);
    assert_close(detection.p_value.unwrap(), 0.207_196_298_172_297_8, 1e-9);
    // The practical bound 0.1 / sqrt(0.2) = 0.224 is below z_{0.9995}, so
    // the normal critical value is the effective threshold.
    assert_close(detection.threshold, 3.290_526_731_491_894_5, 1e-9);
}

#[test]
fn zscore_without_reference_spread_is_undefined() {
    let bounds = [1.0, 2.0];
    let reference = window(&bounds, &[0.0, 200.0, 0.0]);
    let current = window(&bounds, &[0.0, 150.0, 50.0]);
    let error = ZScoreDetector::default()
        .detect(Windows {
            reference: &reference,
            current: &current,
        })
        .unwrap_err();
    assert!(matches!(error, DetectError::Undefined(_)));
    let message = error.to_string();
    assert!(message.starts_with(char::is_lowercase) && !message.ends_with('.'));
}

#[test]
fn zscore_with_a_fixed_baseline_uses_the_current_window_only() {
    // Current mean from _sum: 260 / 100 = 2.6, so z = (2.6 - 2) / 0.2 = 3.
    let bounds = [1.0, 2.0, 4.0];
    let reference = window(&[5.0], &[0.0, 0.0]);
    let current = Distribution::from_bucket_counts(
        bounds.to_vec(),
        vec![10.0, 40.0, 30.0, 20.0],
        Some(260.0),
    )
    .unwrap();
    let windows = Windows {
        reference: &reference,
        current: &current,
    };
    let detection = ZScoreDetector::with_baseline(2.0, 0.2, None)
        .detect(windows)
        .unwrap();
    assert_close(detection.score, 3.0, 1e-12);
    assert_eq!(detection.threshold, DEFAULT_BASELINE_THRESHOLD);
    assert_eq!(detection.p_value, None);
    assert_eq!(detection.verdict, Verdict::Drift);
    let detection = ZScoreDetector::with_baseline(2.0, 0.2, Some(3.5))
        .detect(windows)
        .unwrap();
    assert_eq!(detection.verdict, Verdict::NoDrift);
    let error = ZScoreDetector::with_baseline(2.0, 0.0, None)
        .detect(windows)
        .unwrap_err();
    assert!(matches!(error, DetectError::Undefined(_)));
}

#[test]
fn a_fixed_threshold_replaces_the_default_rule() {
    let bounds = [1.0, 2.0];
    let reference = window(&bounds, &[300.0, 400.0, 300.0]);
    let current = window(&bounds, &[330.0, 400.0, 270.0]);
    let detector = PsiDetector::new(rule(Some(0.001), 0.001, 0.1));
    let detection = run(&detector, &reference, &current);
    assert_eq!(detection.threshold, 0.001);
    assert!(detection.score >= 0.001, "{}", detection.score);
    assert_eq!(detection.verdict, Verdict::Drift);
    let default = run(&PsiDetector::default(), &reference, &current);
    assert_eq!(default.threshold, 0.1);
    assert_eq!(default.verdict, Verdict::NoDrift);
}

#[test]
fn distances_of_disjoint_windows_are_one() {
    let bounds = [1.0];
    let reference = window(&bounds, &[200.0, 0.0]);
    let current = window(&bounds, &[0.0, 200.0]);
    for detector in [
        &JensenShannonDetector::default() as &dyn DriftDetector,
        &HellingerDetector::default(),
    ] {
        let detection = run(detector, &reference, &current);
        assert_close(detection.score, 1.0, 1e-12);
        assert_eq!(detection.verdict, Verdict::Drift);
        assert_eq!(detection.p_value, None);
    }
}

#[test]
fn wasserstein_is_scaled_by_the_reference_spread() {
    // Reference at 0.5 and 4 (sd 1.75), current all at 4: the cumulative
    // gap of 0.5 spans 0.5 .. 4, so W1 = 1.75 and the score is 1.
    let bounds = [1.0, 2.0, 4.0];
    let reference = window(&bounds, &[100.0, 0.0, 0.0, 100.0]);
    let current = window(&bounds, &[0.0, 0.0, 0.0, 200.0]);
    let detection = run(&WassersteinDetector::default(), &reference, &current);
    assert_close(detection.score, 1.0, 1e-12);
    // A reference without spread divides by 0.001 instead of zero.
    let point = window(&bounds, &[0.0, 0.0, 0.0, 200.0]);
    let moved = window(&bounds, &[0.0, 0.0, 200.0, 0.0]);
    let detection = run(&WassersteinDetector::default(), &point, &moved);
    assert_close(detection.score, 1.0 / 0.001, 1e-12);
}

#[test]
fn quantile_detectors_report_performance() {
    // Reference p50 = 1.5, current p50 = 3 (hand-worked as in stats).
    let bounds = [1.0, 2.0, 4.0];
    let reference = window(&bounds, &[100.0, 200.0, 100.0, 0.0]);
    let current = window(&bounds, &[0.0, 100.0, 200.0, 100.0]);
    let ratio = QuantileRatioDetector::new(0.5, 2.0);
    assert_eq!(ratio.kind(), AlertKind::Performance);
    let detection = run(&ratio, &reference, &current);
    assert_close(detection.score, 2.0, 1e-12);
    assert_eq!(detection.verdict, Verdict::Drift);
    let slo = QuantileSloDetector::new(0.5, 3.5);
    assert_eq!(slo.kind(), AlertKind::Performance);
    let detection = run(&slo, &reference, &current);
    assert_close(detection.score, 3.0, 1e-12);
    assert_eq!(detection.verdict, Verdict::NoDrift);
}

#[test]
fn a_non_positive_reference_quantile_makes_the_ratio_undefined() {
    let bounds = [0.0, 1.0];
    let reference = window(&bounds, &[200.0, 10.0, 0.0]);
    let current = window(&bounds, &[100.0, 110.0, 0.0]);
    let error = QuantileRatioDetector::new(0.5, 1.5)
        .detect(Windows {
            reference: &reference,
            current: &current,
        })
        .unwrap_err();
    assert!(matches!(error, DetectError::Undefined(_)), "{error:?}");
}

#[test]
fn windows_with_different_buckets_are_rejected() {
    let reference = window(&[1.0, 2.0], &[100.0, 100.0, 100.0]);
    let current = window(&[1.0, 3.0], &[100.0, 100.0, 100.0]);
    let detectors: Vec<Box<dyn DriftDetector>> = vec![
        Box::new(PsiDetector::default()),
        Box::new(KsDetector::default()),
        Box::new(ChiSquareDetector::default()),
        Box::new(ZScoreDetector::default()),
        Box::new(JensenShannonDetector::default()),
        Box::new(HellingerDetector::default()),
        Box::new(WassersteinDetector::default()),
        Box::new(QuantileRatioDetector::new(0.99, 1.5)),
    ];
    for detector in detectors {
        let result = detector.detect(Windows {
            reference: &reference,
            current: &current,
        });
        assert_eq!(
            result,
            Err(DetectError::BucketMismatch),
            "{}",
            detector.name()
        );
    }
}

#[test]
fn empty_windows_are_reported_by_name() {
    let full = window(&[1.0], &[100.0, 100.0]);
    let empty = window(&[1.0], &[0.0, 0.0]);
    let detector = KsDetector::default();
    let result = detector.detect(Windows {
        reference: &empty,
        current: &full,
    });
    assert_eq!(result, Err(DetectError::EmptyWindow("reference")));
    let result = QuantileSloDetector::new(0.9, 1.0).detect(Windows {
        reference: &full,
        current: &empty,
    });
    assert_eq!(result, Err(DetectError::EmptyWindow("current")));
}

#[test]
fn too_few_samples_withhold_the_decision_but_keep_the_score() {
    let bounds = [1.0];
    let reference = window(&bounds, &[40.0, 0.0]);
    let current = window(&bounds, &[0.0, 40.0]);
    let detection = run(&JensenShannonDetector::default(), &reference, &current);
    assert_close(detection.score, 1.0, 1e-12);
    assert_eq!(
        detection.verdict,
        Verdict::InsufficientSamples {
            current: 40.0,
            reference: 40.0,
            min_samples: DEFAULT_MIN_SAMPLES
        }
    );
    let lenient = JensenShannonDetector::default().with_min_samples(40.0);
    assert_eq!(run(&lenient, &reference, &current).verdict, Verdict::Drift);
}

#[test]
fn from_config_builds_each_type_under_its_configured_name() {
    let test_rule = rule(None, 0.001, 0.1);
    let kinds = [
        DetectorKind::Psi(test_rule),
        DetectorKind::Ks(test_rule),
        DetectorKind::ChiSquare(test_rule),
        DetectorKind::ZScore {
            rule: test_rule,
            baseline: None,
        },
        DetectorKind::ZScore {
            rule: test_rule,
            baseline: Some(ZScoreBaseline {
                mean: 1.0,
                std: 0.5,
            }),
        },
        DetectorKind::JensenShannon { threshold: 0.1 },
        DetectorKind::Hellinger { threshold: 0.1 },
        DetectorKind::Wasserstein { threshold: 0.1 },
        DetectorKind::QuantileRatio {
            quantile: 0.99,
            max_ratio: 1.5,
        },
        DetectorKind::QuantileSlo {
            quantile: 0.99,
            max: 0.25,
        },
    ];
    let bounds = [0.5, 1.0, 2.0];
    let reference = window(&bounds, &[100.0, 200.0, 150.0, 50.0]);
    let current = window(&bounds, &[120.0, 180.0, 150.0, 60.0]);
    for kind in kinds {
        let name = format!("my_{}", kind.type_name());
        let performance = matches!(
            kind,
            DetectorKind::QuantileRatio { .. } | DetectorKind::QuantileSlo { .. }
        );
        let detector = from_config(
            &DetectorConfig {
                name: name.clone(),
                kind,
            },
            100.0,
        );
        assert_eq!(detector.name(), name);
        let expected_kind = if performance {
            AlertKind::Performance
        } else {
            AlertKind::Drift
        };
        assert_eq!(detector.kind(), expected_kind, "{name}");
        let detection = run(detector.as_ref(), &reference, &current);
        assert!(detection.score.is_finite(), "{name}");
        assert!(!detection.threshold.is_nan(), "{name}");
    }
}
