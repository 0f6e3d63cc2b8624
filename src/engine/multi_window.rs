//! The multi-window rule of a monitor with a `short_window`: each
//! hypothesis-test detector decides on the current window and on the short
//! window ending with it, each at half the configured false-alarm rate, and
//! says drift when either does (`docs/statistics.md`, section 3.6). A
//! sudden shift fills the short window first, so it is caught sooner than
//! by the long window alone, while the two tests together keep the
//! false-alarm rate (Bonferroni).
//!
//! Nothing is kept between evaluations: the short window is one more
//! grouped query per histogram, so a restart or a reload loses nothing.

use crate::config::{DetectorConfig, DetectorKind, TestRule};
use crate::detectors::{DetectError, Detection, DriftDetector, Verdict, Windows};
use crate::stats::Distribution;

/// The detector config to build for a monitor with a short window, and
/// whether it takes part in the multi-window rule: hypothesis tests under
/// their default rule do, at half the false-alarm rate; detectors without
/// a null distribution, or with a fixed threshold, do not (a second window
/// would add false alarms with nothing to bound them).
pub(super) fn split_rate(config: &DetectorConfig) -> (DetectorConfig, bool) {
    let halve = |rule: &TestRule| {
        (rule.threshold.is_none()).then(|| TestRule {
            false_alarm_rate: rule.false_alarm_rate / 2.0,
            ..*rule
        })
    };
    let kind = match &config.kind {
        DetectorKind::Psi(rule) => halve(rule).map(DetectorKind::Psi),
        DetectorKind::Ks(rule) => halve(rule).map(DetectorKind::Ks),
        DetectorKind::ChiSquare(rule) => halve(rule).map(DetectorKind::ChiSquare),
        DetectorKind::ZScore {
            rule,
            baseline: None,
        } => halve(rule).map(|rule| DetectorKind::ZScore {
            rule,
            baseline: None,
        }),
        DetectorKind::Exceedance { quantile, rule } => {
            halve(rule).map(|rule| DetectorKind::Exceedance {
                quantile: *quantile,
                rule,
            })
        }
        _ => None,
    };
    match kind {
        Some(kind) => (
            DetectorConfig {
                name: config.name.clone(),
                kind,
            },
            true,
        ),
        None => (config.clone(), false),
    }
}

/// The detection on the current window, or the short window's when only
/// the short window says drift. An error or no decision on the short window
/// leaves the current window's detection.
pub(super) fn detect(
    detector: &dyn DriftDetector,
    reference: &Distribution,
    current: &Distribution,
    short: Option<&Distribution>,
) -> Result<Detection, DetectError> {
    let long = detector.detect(Windows { reference, current })?;
    if long.verdict == Verdict::Drift {
        return Ok(long);
    }
    let Some(short) = short else {
        return Ok(long);
    };
    match detector.detect(Windows {
        reference,
        current: short,
    }) {
        Ok(detection) if detection.verdict == Verdict::Drift => Ok(detection),
        _ => Ok(long),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::from_config;

    fn window(counts: &[f64]) -> Distribution {
        Distribution::from_bucket_counts(vec![0.25, 0.5, 0.75, 1.0], counts.to_vec(), None).unwrap()
    }

    #[test]
    fn test_detectors_take_part_at_half_the_rate_and_others_do_not() {
        let ks = DetectorConfig::new(DetectorKind::Ks(TestRule::with_min_effect(0.1)));
        let (halved, multi) = split_rate(&ks);
        assert!(multi);
        assert_eq!(
            halved.kind,
            DetectorKind::Ks(TestRule {
                threshold: None,
                false_alarm_rate: 0.0005,
                min_effect: 0.1,
            })
        );
        let fixed = DetectorConfig::new(DetectorKind::Ks(TestRule {
            threshold: Some(0.2),
            ..TestRule::with_min_effect(0.1)
        }));
        assert_eq!(split_rate(&fixed), (fixed.clone(), false));
        let ratio = DetectorConfig::new(DetectorKind::QuantileRatio {
            quantile: 0.99,
            max_ratio: 1.5,
        });
        assert_eq!(split_rate(&ratio), (ratio.clone(), false));
    }

    #[test]
    fn a_shift_only_the_short_window_shows_is_drift_with_its_numbers() {
        let detector = from_config(
            &split_rate(&DetectorConfig::new(DetectorKind::Ks(
                TestRule::with_min_effect(0.1),
            )))
            .0,
            100.0,
        );
        let reference = window(&[2500.0, 2500.0, 2500.0, 2500.0, 0.0]);
        // The newest 200 observations moved up; the 1000 of the long
        // window hold them among 800 unchanged ones.
        let short = window(&[20.0, 20.0, 60.0, 100.0, 0.0]);
        let current = window(&[220.0, 220.0, 260.0, 300.0, 0.0]);
        let long = detector
            .detect(Windows {
                reference: &reference,
                current: &current,
            })
            .unwrap();
        assert_eq!(long.verdict, Verdict::NoDrift, "{long:?}");
        let both = detect(detector.as_ref(), &reference, &current, Some(&short)).unwrap();
        assert_eq!(both.verdict, Verdict::Drift);
        assert_eq!(both.score, 0.3);
        // Without a short window, the long window decides.
        assert_eq!(
            detect(detector.as_ref(), &reference, &current, None).unwrap(),
            long
        );
        // A short window too small to decide leaves the long one's verdict.
        let tiny = window(&[1.0, 1.0, 3.0, 5.0, 0.0]);
        assert_eq!(
            detect(detector.as_ref(), &reference, &current, Some(&tiny)).unwrap(),
            long
        );
    }
}
