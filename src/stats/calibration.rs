//! Accuracy from a top-class confidence histogram: the estimated accuracy
//! of a calibrated classifier (the mean confidence), and, when the
//! predictions that turned out correct have a histogram of their own on the
//! same buckets, the realized accuracy, the expected calibration error and
//! the gap between the two accuracies (`docs/statistics.md`, section 12).

use super::Distribution;

/// What a labelled window says about accuracy and calibration.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LabelledAccuracy {
    /// `n`: predictions in the labelled window.
    pub samples: f64,
    /// The mean confidence of those predictions (`_sum / n`, else the
    /// representatives' mean).
    pub estimated: f64,
    /// `sum_b min(k_b, n_b) / n`.
    pub realized: f64,
    /// `estimated - realized`: positive when the model is overconfident.
    pub gap: f64,
    /// `sum_b (n_b / n) |a_b - x_b|`, with `a_b = min(k_b, n_b) / n_b` over
    /// the buckets with predictions and `x_b` the bucket's representative.
    pub calibration_error: f64,
}

/// Why a labelled window gives no accuracy.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CalibrationError {
    #[error("the correct-predictions histogram has other buckets than the confidence histogram")]
    BucketMismatch,
    #[error("the labelled window has no predictions")]
    Empty,
}

impl CalibrationError {
    /// The kind of problem, without this model's details.
    pub fn reason(&self) -> &'static str {
        match self {
            CalibrationError::BucketMismatch => "correct histogram buckets differ",
            CalibrationError::Empty => "labelled window empty",
        }
    }
}

/// Realized accuracy and calibration of one labelled window: `predictions`
/// is the confidence histogram of every prediction, `correct` that of the
/// correct ones, over the same span.
///
/// A bucket with more correct predictions than predictions (the two
/// series scraped a moment apart) counts as all correct.
pub fn labelled_accuracy(
    predictions: &Distribution,
    correct: &Distribution,
) -> Result<LabelledAccuracy, CalibrationError> {
    if predictions.bounds() != correct.bounds() {
        return Err(CalibrationError::BucketMismatch);
    }
    let n = predictions.total();
    if n <= 0.0 {
        return Err(CalibrationError::Empty);
    }
    let mut right = 0.0;
    let mut weighted_error = 0.0;
    let buckets = predictions.counts().iter().zip(correct.counts());
    for ((n_b, k_b), x_b) in buckets.zip(predictions.representatives()) {
        if *n_b <= 0.0 {
            continue;
        }
        let k_b = k_b.min(*n_b);
        right += k_b;
        weighted_error += (k_b - n_b * x_b).abs();
    }
    let estimated = predictions.mean();
    let realized = right / n;
    Ok(LabelledAccuracy {
        samples: n,
        estimated,
        realized,
        gap: estimated - realized,
        calibration_error: weighted_error / n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(counts: &[f64], sum: Option<f64>) -> Distribution {
        Distribution::from_bucket_counts(vec![0.5, 1.0], counts.to_vec(), sum).unwrap()
    }

    #[test]
    fn a_hand_worked_reliability_histogram() {
        // Buckets (0, 0.5] and (0.5, 1]: representatives 0.25 and 0.75.
        // 40 predictions at 0.25 with 20 correct, 60 at 0.75 with 30 correct.
        let predictions = window(&[40.0, 60.0, 0.0], Some(55.0));
        let correct = window(&[20.0, 30.0, 0.0], Some(30.0));
        let result = labelled_accuracy(&predictions, &correct).unwrap();
        assert_eq!(result.samples, 100.0);
        assert!((result.estimated - 0.55).abs() < 1e-12);
        assert!((result.realized - 0.5).abs() < 1e-12);
        assert!((result.gap - 0.05).abs() < 1e-12);
        // 0.4 * |0.5 - 0.25| + 0.6 * |0.5 - 0.75| = 0.1 + 0.15.
        assert!((result.calibration_error - 0.25).abs() < 1e-12);
    }

    #[test]
    fn more_correct_than_predicted_counts_as_all_correct() {
        let predictions = window(&[0.0, 10.0, 0.0], None);
        let correct = window(&[0.0, 12.0, 0.0], None);
        let result = labelled_accuracy(&predictions, &correct).unwrap();
        assert_eq!(result.realized, 1.0);
        assert!((result.calibration_error - 0.25).abs() < 1e-12);
    }

    #[test]
    fn other_buckets_or_no_predictions_are_errors() {
        let other = Distribution::from_bucket_counts(vec![1.0], vec![1.0, 0.0], None).unwrap();
        let predictions = window(&[1.0, 1.0, 0.0], None);
        assert_eq!(
            labelled_accuracy(&predictions, &other),
            Err(CalibrationError::BucketMismatch)
        );
        let empty = window(&[0.0, 0.0, 0.0], None);
        assert_eq!(
            labelled_accuracy(&empty, &empty),
            Err(CalibrationError::Empty)
        );
    }
}
