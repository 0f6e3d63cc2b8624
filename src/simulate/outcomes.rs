//! What the simulated models predict and whether they are right: each
//! request's class, drawn from a class mix, and its correctness, drawn with
//! probability `min(1, calibration * confidence)`, so that a calibration of
//! 1 gives a calibrated classifier (accuracy equal to the mean confidence)
//! and 0.9 one that is right 10% less often than it claims.
//!
//! The draws come from a second stream per model, apart from the one of
//! the confidences and latencies, so that adding them left those exactly
//! as they were for every seed.

use super::buckets::CONFIDENCE_BUCKETS;
use super::random::{Xoshiro256PlusPlus, unit};

/// The default class mix of `--class-mix`: four classes.
pub const DEFAULT_CLASS_MIX: [f64; 4] = [0.4, 0.3, 0.2, 0.1];

/// By how much the drift multiplies the weight of the last class (the
/// rarest of the default mix, 0.1 of it, which becomes 0.18), before the
/// mix is normalised again.
pub const DRIFT_CLASS_FACTOR: f64 = 2.0;

/// Mixes the model's seed into the second stream's.
const OUTCOME_STREAM: u64 = 0x6f75_7463_6f6d_6573;

/// The name of class `index`.
pub fn class_name(index: usize) -> String {
    format!("class-{index}")
}

/// The class mixes (stable and drifted) and the calibration every model
/// shares.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OutcomeModel {
    /// Cumulative class probabilities, the last 1.
    stable: Vec<f64>,
    drifted: Vec<f64>,
    calibration: f64,
}

impl OutcomeModel {
    /// From class weights (finite, >= 0, positive sum, at least two) and a
    /// calibration (finite, > 0); checked by `Simulation::new`.
    pub(crate) fn new(weights: &[f64], calibration: f64) -> OutcomeModel {
        let mut drifted = weights.to_vec();
        if let Some(last) = drifted.last_mut() {
            *last *= DRIFT_CLASS_FACTOR;
        }
        OutcomeModel {
            stable: cumulative(weights),
            drifted: cumulative(&drifted),
            calibration,
        }
    }

    /// How many classes there are.
    pub(crate) fn classes(&self) -> usize {
        self.stable.len()
    }

    /// The class shares of the stable and the drifted mix.
    #[cfg(test)]
    pub(crate) fn shares(&self, drifted: bool) -> Vec<f64> {
        let cumulative = if drifted { &self.drifted } else { &self.stable };
        let mut previous = 0.0;
        cumulative
            .iter()
            .map(|c| {
                let share = c - previous;
                previous = *c;
                share
            })
            .collect()
    }
}

/// Normalised running sums of `weights`.
fn cumulative(weights: &[f64]) -> Vec<f64> {
    let total: f64 = weights.iter().sum();
    let mut running = 0.0;
    weights
        .iter()
        .map(|weight| {
            running += weight / total;
            running
        })
        .collect()
}

/// One model's outcome stream and totals.
#[derive(Debug, Clone)]
pub(crate) struct Outcomes {
    rng: Xoshiro256PlusPlus,
    /// Predictions per class.
    pub(crate) classes: Vec<u64>,
    /// Non-cumulative counts per confidence bucket of the correct
    /// predictions.
    pub(crate) correct_buckets: [u64; CONFIDENCE_BUCKETS.len()],
    pub(crate) correct_sum: f64,
    pub(crate) correct: u64,
}

impl Outcomes {
    pub(crate) fn new(seed: u64, index: usize, model: &OutcomeModel) -> Outcomes {
        Outcomes {
            rng: Xoshiro256PlusPlus::for_model(seed ^ OUTCOME_STREAM, index),
            classes: vec![0; model.classes()],
            correct_buckets: [0; CONFIDENCE_BUCKETS.len()],
            correct_sum: 0.0,
            correct: 0,
        }
    }

    /// Draws one prediction's class and correctness.
    pub(crate) fn record(
        &mut self,
        model: &OutcomeModel,
        drifted: bool,
        confidence: f64,
        bucket: usize,
    ) {
        let cumulative = if drifted {
            &model.drifted
        } else {
            &model.stable
        };
        let draw = unit(&mut self.rng);
        let class = cumulative
            .partition_point(|c| *c <= draw)
            .min(cumulative.len() - 1);
        self.classes[class] += 1;
        if unit(&mut self.rng) < (model.calibration * confidence).min(1.0) {
            self.correct += 1;
            self.correct_buckets[bucket] += 1;
            self.correct_sum += confidence;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_drift_doubles_the_last_class_weight() {
        let model = OutcomeModel::new(&DEFAULT_CLASS_MIX, 1.0);
        let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12);
        assert!(close(&model.shares(false), &DEFAULT_CLASS_MIX));
        assert!(close(
            &model.shares(true),
            &[0.4 / 1.1, 0.3 / 1.1, 0.2 / 1.1, 0.2 / 1.1]
        ));
    }

    #[test]
    fn classes_and_correctness_follow_the_mix_and_the_calibration() {
        let model = OutcomeModel::new(&[0.7, 0.3], 0.9);
        let mut outcomes = Outcomes::new(3, 0, &model);
        let draws = 100_000;
        for _ in 0..draws {
            outcomes.record(&model, false, 0.8, 15);
        }
        let share = outcomes.classes[0] as f64 / draws as f64;
        assert!((share - 0.7).abs() < 0.01, "{share}");
        let accuracy = outcomes.correct as f64 / draws as f64;
        assert!((accuracy - 0.72).abs() < 0.01, "{accuracy}");
        assert_eq!(outcomes.correct_buckets[15], outcomes.correct);
    }
}
