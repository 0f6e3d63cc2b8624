//! `model-monitor simulate`: a synthetic model server for demos, tests and
//! benchmarks.
//!
//! It serves the default input metrics (`model_prediction_confidence`,
//! `model_request_duration_seconds`, `model_requests_total`) for N models and, after a set
//! time, shifts one model's confidence down and latency up. It also serves
//! each model's predicted classes (`model_predictions_total{class}`, from a
//! class mix whose last class doubles its weight under drift) and the
//! confidence histogram of the correct predictions
//! (`model_prediction_confidence_correct`, right with probability
//! `min(1, calibration * confidence)`); see `outcomes`.
//!
//! # Model
//!
//! Models are named `model-0` .. `model-{N-1}`, all with `version="v1"`.
//! Each model receives requests as a Poisson process of `rate` requests per
//! second, so the number served by elapsed time `t` is Poisson distributed
//! with mean `rate * t`. Each request draws a top-class confidence from a
//! Beta distribution and a duration from a log-normal one, with per-model
//! parameters drawn once from the seed (see [`model::ModelParameters`]). Requests of
//! the drift model that arrive after `drift_after` use
//! [`model::ModelParameters::drifted`] instead.
//!
//! Everything is a function of the seed, the model and the elapsed time: the
//! same seed and elapsed time give byte-identical `/metrics`, however often
//! the simulation was advanced on the way.
//!
//! # Layout
//!
//! - [`Simulation`]: the clock-free core; tests inject time through
//!   [`Simulation::advance_to`].
//! - `model`: one model's random stream, distributions and totals.
//! - `exposition`: the text exposition format.
//! - `server`: the HTTP face, [`server::router`] and [`server::serve`], which own the clock.

mod buckets;
mod exposition;
mod model;
mod outcomes;
mod random;
mod server;

pub use server::run;

use model::{ModelState, Sampler};
pub use outcomes::DEFAULT_CLASS_MIX;
use outcomes::OutcomeModel;
use std::time::Duration;

/// Options of `model-monitor simulate`.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulateOptions {
    /// How many models to simulate, `model-0` .. `model-{N-1}`.
    pub models: usize,
    /// The seed every model's parameters and requests derive from.
    pub seed: u64,
    /// The model whose distributions shift; `None` keeps every model stable.
    pub drift_model: Option<String>,
    /// Elapsed time after which the drift model's requests shift.
    pub drift_after: Duration,
    /// Requests per second per model; fractional rates such as 0.1 are fine.
    pub rate: f64,
    /// Weights of the classes `class-0`, `class-1`, ...: at least two,
    /// finite, not negative, with a positive sum.
    pub class_mix: Vec<f64>,
    /// A prediction is correct with probability `min(1, calibration *
    /// confidence)`: 1 is a calibrated model. Finite and positive.
    pub calibration: f64,
}

impl Default for SimulateOptions {
    /// Ten stable models at ten requests per second each, seed 0; drift
    /// would start after ten minutes if a drift model were named.
    fn default() -> SimulateOptions {
        SimulateOptions {
            models: 10,
            seed: 0,
            drift_model: None,
            drift_after: Duration::from_secs(600),
            rate: 10.0,
            class_mix: DEFAULT_CLASS_MIX.to_vec(),
            calibration: 1.0,
        }
    }
}

/// Why [`SimulateOptions`] cannot be simulated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimulateError {
    #[error(
        "drift model {name:?} is not one of the {models} simulated models (model-0 .. model-N-1)"
    )]
    UnknownDriftModel { name: String, models: usize },
    #[error("rate must be a finite number of requests per second, zero or more, got {rate}")]
    InvalidRate { rate: f64 },
    #[error(
        "class mix must give at least two finite weights, none negative and not all zero, got {weights:?}"
    )]
    InvalidClassMix { weights: Vec<f64> },
    #[error("calibration must be a finite number greater than 0, got {calibration}")]
    InvalidCalibration { calibration: f64 },
}

/// The name of the model at `index`.
pub fn model_name(index: usize) -> String {
    format!("model-{index}")
}

/// The simulated models and the elapsed time they have been advanced to.
#[derive(Debug, Clone)]
pub struct Simulation {
    options: SimulateOptions,
    models: Vec<ModelState>,
    /// The index of the drift model and its shifted sampler.
    drift: Option<(usize, Sampler)>,
    /// The class mixes and calibration every model shares.
    outcome_model: OutcomeModel,
    /// Every request at or before this time has been served.
    elapsed: Duration,
}

impl Simulation {
    /// Builds the models at elapsed time zero, with nothing served yet.
    pub fn new(options: SimulateOptions) -> Result<Simulation, SimulateError> {
        if !options.rate.is_finite() || options.rate < 0.0 {
            return Err(SimulateError::InvalidRate { rate: options.rate });
        }
        let weights = &options.class_mix;
        if weights.len() < 2
            || weights.iter().any(|w| !w.is_finite() || *w < 0.0)
            || weights.iter().sum::<f64>() <= 0.0
        {
            return Err(SimulateError::InvalidClassMix {
                weights: weights.clone(),
            });
        }
        if !(options.calibration.is_finite() && options.calibration > 0.0) {
            return Err(SimulateError::InvalidCalibration {
                calibration: options.calibration,
            });
        }
        let outcome_model = OutcomeModel::new(weights, options.calibration);
        let models: Vec<ModelState> = (0..options.models)
            .map(|index| ModelState::new(options.seed, index, options.rate, &outcome_model))
            .collect();
        let drift = match &options.drift_model {
            None => None,
            Some(name) => {
                let index = parse_model_index(name, options.models).ok_or_else(|| {
                    SimulateError::UnknownDriftModel {
                        name: name.clone(),
                        models: options.models,
                    }
                })?;
                let drifted = models[index].parameters.drifted();
                Some((index, Sampler::new(&drifted)))
            }
        };
        Ok(Simulation {
            options,
            models,
            drift,
            outcome_model,
            elapsed: Duration::ZERO,
        })
    }

    /// The options this simulation was built from.
    pub fn options(&self) -> &SimulateOptions {
        &self.options
    }

    /// Serves every request that arrives at or before `elapsed`. Time only
    /// moves forward: an earlier `elapsed` changes nothing. The work is
    /// proportional to the requests generated since the last call.
    pub fn advance_to(&mut self, elapsed: Duration) {
        if elapsed <= self.elapsed {
            return;
        }
        self.elapsed = elapsed;
        let until = elapsed.as_secs_f64();
        let rate = self.options.rate;
        let drift_after = self.options.drift_after.as_secs_f64();
        for (index, model) in self.models.iter_mut().enumerate() {
            let drift = match &self.drift {
                Some((drift_index, sampler)) if *drift_index == index => {
                    Some((drift_after, sampler))
                }
                _ => None,
            };
            model.advance(until, rate, drift, &self.outcome_model);
        }
    }

    /// Appends `/metrics` in the text exposition format to `out`.
    pub fn render(&self, out: &mut String) {
        exposition::render(&self.models, out);
    }
}

/// The index `K` of `model-K` if it names one of `models` models, spelled
/// exactly as [`model_name`] spells it.
fn parse_model_index(name: &str, models: usize) -> Option<usize> {
    let index: usize = name.strip_prefix("model-")?.parse().ok()?;
    (index < models && model_name(index) == name).then_some(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(models: usize, seed: u64) -> SimulateOptions {
        SimulateOptions {
            models,
            seed,
            drift_model: Some("model-1".to_owned()),
            drift_after: Duration::from_secs(30),
            rate: 5.0,
            ..SimulateOptions::default()
        }
    }

    fn rendered(simulation: &Simulation) -> String {
        let mut out = String::new();
        simulation.render(&mut out);
        out
    }

    #[test]
    fn drift_model_names_must_match_a_simulated_model() {
        let check = |name: &str, expected: Option<usize>| {
            assert_eq!(parse_model_index(name, 10), expected, "{name}");
        };
        check("model-0", Some(0));
        check("model-9", Some(9));
        check("model-10", None);
        check("model-01", None);
        check("model-+1", None);
        check("model", None);
        check("fraud-1", None);
    }

    #[test]
    fn unknown_drift_model_and_bad_rates_are_rejected() {
        let mut bad_model = options(2, 0);
        bad_model.drift_model = Some("model-2".to_owned());
        assert_eq!(
            Simulation::new(bad_model).unwrap_err(),
            SimulateError::UnknownDriftModel {
                name: "model-2".to_owned(),
                models: 2
            }
        );
        for rate in [-1.0, f64::NAN, f64::INFINITY] {
            let mut bad_rate = options(2, 0);
            bad_rate.rate = rate;
            assert!(matches!(
                Simulation::new(bad_rate),
                Err(SimulateError::InvalidRate { .. })
            ));
        }
    }

    #[test]
    fn bad_class_mixes_and_calibrations_are_rejected() {
        for weights in [
            vec![1.0],
            vec![0.0, 0.0],
            vec![1.0, -1.0],
            vec![1.0, f64::NAN],
        ] {
            let mut bad = options(2, 0);
            bad.class_mix = weights.clone();
            let error = Simulation::new(bad).unwrap_err();
            assert!(
                matches!(error, SimulateError::InvalidClassMix { .. }),
                "{weights:?}: {error}"
            );
        }
        for calibration in [0.0, -1.0, f64::INFINITY] {
            let mut bad = options(2, 0);
            bad.calibration = calibration;
            assert!(matches!(
                Simulation::new(bad),
                Err(SimulateError::InvalidCalibration { .. })
            ));
        }
    }

    #[test]
    fn advancing_in_steps_renders_the_same_bytes_as_one_jump() {
        let mut stepped = Simulation::new(options(4, 11)).unwrap();
        let mut jumped = stepped.clone();
        for second in 1..=90 {
            stepped.advance_to(Duration::from_millis(second * 1000 - 333));
        }
        stepped.advance_to(Duration::from_secs(90));
        jumped.advance_to(Duration::from_secs(90));
        assert_eq!(rendered(&stepped), rendered(&jumped));
    }

    #[test]
    fn going_back_in_time_changes_nothing() {
        let mut simulation = Simulation::new(options(2, 5)).unwrap();
        simulation.advance_to(Duration::from_secs(20));
        let before = rendered(&simulation);
        simulation.advance_to(Duration::from_secs(10));
        assert_eq!(simulation.elapsed, Duration::from_secs(20));
        assert_eq!(rendered(&simulation), before);
    }

    #[test]
    fn the_drift_model_is_the_only_one_with_a_shifted_sampler() {
        let simulation = Simulation::new(options(3, 0)).unwrap();
        assert_eq!(simulation.drift.as_ref().map(|(index, _)| *index), Some(1));
        let mut stable = options(3, 0);
        stable.drift_model = None;
        assert!(Simulation::new(stable).unwrap().drift.is_none());
    }

    #[test]
    fn zero_models_render_only_headers() {
        let mut simulation = Simulation::new(SimulateOptions {
            models: 0,
            ..SimulateOptions::default()
        })
        .unwrap();
        simulation.advance_to(Duration::from_secs(10));
        let out = rendered(&simulation);
        assert!(out.lines().all(|line| line.starts_with('#')), "{out}");
    }
}

#[cfg(test)]
mod serving_tests;
