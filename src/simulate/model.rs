//! One simulated model: its seeded random stream, its distributions and the
//! running totals of its histograms.
//!
//! Every model owns a private xoshiro256++ stream seeded from the simulation
//! seed and the model's index. The stream first yields the model's stable
//! parameters, then, request after request, the gap to the next request, its
//! confidence and its latency. Because the stream is consumed in the same
//! order however the simulated time is sliced, the totals at an elapsed time
//! depend only on the seed, the model and that time.

use rand_distr::{Beta, Distribution, LogNormal};

use super::buckets::{CONFIDENCE_BUCKETS, LATENCY_BUCKETS};
use super::outcomes::{OutcomeModel, Outcomes};
use super::random::{Xoshiro256PlusPlus, uniform, unit};

/// How much the drift lowers the mean confidence.
pub const DRIFT_CONFIDENCE_DROP: f64 = 0.18;
/// By how much the drift divides the Beta concentration (alpha + beta), which
/// widens the confidence distribution.
pub const DRIFT_CONCENTRATION_DIVISOR: f64 = 2.5;
/// By how much the drift multiplies the median latency.
pub const DRIFT_LATENCY_FACTOR: f64 = 2.0;
/// By how much the drift multiplies the log-normal sigma, which fattens the
/// latency tail.
pub const DRIFT_SIGMA_FACTOR: f64 = 1.5;

/// The distribution parameters of one model.
///
/// Confidence follows Beta(`confidence_mean * confidence_concentration`,
/// `(1 - confidence_mean) * confidence_concentration`); latency in seconds
/// follows LogNormal(ln `latency_median`, `latency_sigma`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelParameters {
    /// Mean of the top-class confidence.
    pub confidence_mean: f64,
    /// alpha + beta of the Beta distribution; larger is narrower.
    pub confidence_concentration: f64,
    /// Median request duration in seconds.
    pub latency_median: f64,
    /// Standard deviation of the log of the request duration.
    pub latency_sigma: f64,
}

impl ModelParameters {
    /// Draws stable parameters: mean confidence in [0.80, 0.90),
    /// concentration in [16, 24), median latency in [20, 60) ms and sigma in
    /// [0.30, 0.45).
    fn draw(rng: &mut Xoshiro256PlusPlus) -> ModelParameters {
        ModelParameters {
            confidence_mean: uniform(rng, 0.80, 0.90),
            confidence_concentration: uniform(rng, 16.0, 24.0),
            latency_median: uniform(rng, 0.020, 0.060),
            latency_sigma: uniform(rng, 0.30, 0.45),
        }
    }

    /// The parameters after drift: confidence mean lower by
    /// [`DRIFT_CONFIDENCE_DROP`] and wider, median latency times
    /// [`DRIFT_LATENCY_FACTOR`] with a heavier tail.
    pub fn drifted(&self) -> ModelParameters {
        ModelParameters {
            confidence_mean: self.confidence_mean - DRIFT_CONFIDENCE_DROP,
            confidence_concentration: self.confidence_concentration / DRIFT_CONCENTRATION_DIVISOR,
            latency_median: self.latency_median * DRIFT_LATENCY_FACTOR,
            latency_sigma: self.latency_sigma * DRIFT_SIGMA_FACTOR,
        }
    }
}

/// The samplers built from [`ModelParameters`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sampler {
    confidence: Beta<f64>,
    latency: LogNormal<f64>,
}

impl Sampler {
    pub(crate) fn new(parameters: &ModelParameters) -> Sampler {
        let alpha = parameters.confidence_mean * parameters.confidence_concentration;
        let beta = (1.0 - parameters.confidence_mean) * parameters.confidence_concentration;
        // Both shapes are positive and finite for every parameter set that
        // `draw` and `drifted` produce, so construction cannot fail.
        let confidence = Beta::new(alpha, beta).expect("beta shapes are positive");
        let latency = LogNormal::new(parameters.latency_median.ln(), parameters.latency_sigma)
            .expect("log-normal sigma is positive");
        Sampler {
            confidence,
            latency,
        }
    }
}

/// Running totals of one model's series; everything `render` prints.
#[derive(Debug, Clone)]
pub(crate) struct Totals {
    /// Requests served so far; also the `+Inf` bucket of both histograms.
    pub(crate) requests: u64,
    /// Non-cumulative counts per confidence bucket. Confidence never exceeds
    /// 1, so the last bound catches everything.
    pub(crate) confidence_buckets: [u64; CONFIDENCE_BUCKETS.len()],
    pub(crate) confidence_sum: f64,
    /// Non-cumulative counts per latency bucket; the extra last slot counts
    /// durations above the largest bound.
    pub(crate) latency_buckets: [u64; LATENCY_BUCKETS.len() + 1],
    pub(crate) latency_sum: f64,
}

/// One model's stream and totals.
#[derive(Debug, Clone)]
pub(crate) struct ModelState {
    rng: Xoshiro256PlusPlus,
    /// Simulated time in seconds of the next request, already drawn.
    next_arrival: f64,
    pub(crate) parameters: ModelParameters,
    sampler: Sampler,
    pub(crate) totals: Totals,
    /// Classes and correctness, from a stream of their own (boxed: the
    /// class counts vary in number).
    pub(crate) outcomes: Box<Outcomes>,
}

impl ModelState {
    pub(crate) fn new(
        seed: u64,
        index: usize,
        rate: f64,
        outcome_model: &OutcomeModel,
    ) -> ModelState {
        let mut rng = Xoshiro256PlusPlus::for_model(seed, index);
        let parameters = ModelParameters::draw(&mut rng);
        let sampler = Sampler::new(&parameters);
        let mut state = ModelState {
            rng,
            next_arrival: 0.0,
            parameters,
            sampler,
            totals: Totals {
                requests: 0,
                confidence_buckets: [0; CONFIDENCE_BUCKETS.len()],
                confidence_sum: 0.0,
                latency_buckets: [0; LATENCY_BUCKETS.len() + 1],
                latency_sum: 0.0,
            },
            outcomes: Box::new(Outcomes::new(seed, index, outcome_model)),
        };
        state.next_arrival = state.gap(rate);
        state
    }

    /// Serves every request that arrives at or before `until` seconds.
    /// Requests after `drift.0` seconds are drawn from `drift.1` instead of
    /// the stable sampler.
    pub(crate) fn advance(
        &mut self,
        until: f64,
        rate: f64,
        drift: Option<(f64, &Sampler)>,
        outcome_model: &OutcomeModel,
    ) {
        while self.next_arrival <= until {
            let (sampler, drifted) = match drift {
                Some((after, drifted)) if self.next_arrival > after => (drifted, true),
                _ => (&self.sampler, false),
            };
            let confidence = sampler.confidence.sample(&mut self.rng);
            let latency = sampler.latency.sample(&mut self.rng);
            let bucket = self.totals.record(confidence, latency);
            self.outcomes
                .record(outcome_model, drifted, confidence, bucket);
            self.next_arrival += self.gap(rate);
        }
    }

    /// Draws the exponential gap to the next request of a Poisson process
    /// with `rate` requests per second; infinite when the rate is zero.
    fn gap(&mut self, rate: f64) -> f64 {
        if rate == 0.0 {
            return f64::INFINITY;
        }
        let uniform = unit(&mut self.rng);
        // `1 - uniform` lies in (0, 1], so the logarithm is finite.
        -(1.0 - uniform).ln() / rate
    }
}

impl Totals {
    /// Counts one request; returns its confidence bucket.
    fn record(&mut self, confidence: f64, latency: f64) -> usize {
        self.requests += 1;
        let confidence_bucket = CONFIDENCE_BUCKETS
            .partition_point(|bound| *bound < confidence)
            .min(CONFIDENCE_BUCKETS.len() - 1);
        self.confidence_buckets[confidence_bucket] += 1;
        self.confidence_sum += confidence;
        let latency_bucket = LATENCY_BUCKETS.partition_point(|bound| *bound < latency);
        self.latency_buckets[latency_bucket] += 1;
        self.latency_sum += latency;
        confidence_bucket
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::outcomes::DEFAULT_CLASS_MIX;

    fn outcome_model() -> OutcomeModel {
        OutcomeModel::new(&DEFAULT_CLASS_MIX, 1.0)
    }

    #[test]
    fn stable_parameters_stay_in_their_ranges() {
        for index in 0..1000 {
            let p = ModelState::new(42, index, 1.0, &outcome_model()).parameters;
            assert!((0.80..0.90).contains(&p.confidence_mean), "{p:?}");
            assert!((16.0..24.0).contains(&p.confidence_concentration), "{p:?}");
            assert!((0.020..0.060).contains(&p.latency_median), "{p:?}");
            assert!((0.30..0.45).contains(&p.latency_sigma), "{p:?}");
            // The drifted shapes must stay valid Beta shapes above 1.
            let d = p.drifted();
            assert!(d.confidence_mean * d.confidence_concentration > 1.0);
            assert!((1.0 - d.confidence_mean) * d.confidence_concentration > 1.0);
        }
    }

    #[test]
    fn values_fall_into_the_first_bucket_whose_bound_is_not_below_them() {
        let mut totals = ModelState::new(0, 0, 1.0, &outcome_model()).totals;
        totals.record(0.05, 0.005);
        totals.record(0.150_000_1, 10.5);
        totals.record(1.0, 0.0051);
        assert_eq!(totals.confidence_buckets[0], 1);
        assert_eq!(totals.confidence_buckets[3], 1);
        assert_eq!(totals.confidence_buckets[19], 1);
        assert_eq!(totals.latency_buckets[0], 1);
        assert_eq!(totals.latency_buckets[1], 1);
        assert_eq!(totals.latency_buckets[11], 1);
        assert_eq!(totals.requests, 3);
    }

    #[test]
    fn per_model_state_stays_small() {
        // Ten thousand models must fit in a few megabytes.
        let size = std::mem::size_of::<ModelState>();
        assert!(size <= 512, "{size} bytes per model");
    }

    #[test]
    fn a_zero_rate_serves_nothing() {
        let mut state = ModelState::new(1, 0, 0.0, &outcome_model());
        state.advance(1e9, 0.0, None, &outcome_model());
        assert_eq!(state.totals.requests, 0);
    }

    #[test]
    fn slicing_time_does_not_change_the_totals() {
        let mut whole = ModelState::new(3, 5, 10.0, &outcome_model());
        let mut sliced = whole.clone();
        whole.advance(100.0, 10.0, None, &outcome_model());
        for step in 1..=100 {
            sliced.advance(step as f64, 10.0, None, &outcome_model());
        }
        assert_eq!(whole.totals.requests, sliced.totals.requests);
        assert_eq!(
            whole.totals.confidence_buckets,
            sliced.totals.confidence_buckets
        );
        assert_eq!(
            whole.totals.confidence_sum.to_bits(),
            sliced.totals.confidence_sum.to_bits()
        );
        assert_eq!(
            whole.totals.latency_sum.to_bits(),
            sliced.totals.latency_sum.to_bits()
        );
        assert_eq!(whole.outcomes.classes, sliced.outcomes.classes);
        assert_eq!(
            whole.outcomes.correct_buckets,
            sliced.outcomes.correct_buckets
        );
    }
}
