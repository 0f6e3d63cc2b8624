//! Detection-quality benchmark: false alarms without drift, detection rate
//! and delay with drift, for model-monitor's detectors under their default
//! rules and for the fixed-threshold alternatives, on the same draws.
//!
//! Traffic is a Poisson process, so the counts of one bucket over one
//! 30-second evaluation interval are Poisson with mean
//! `rate * 30 s * P(bucket)`, independent across buckets; the probabilities
//! come from the Beta (confidence) or LogNormal (latency) CDF at the bucket
//! bounds the simulator serves (`model-monitor simulate`). `_sum` is drawn as a normal
//! with the bucket-conditional mean and variance of the observations. A 5 m
//! window is the sum of its last ten 30 s slices, so after a sudden shift the
//! window holds `k` drifted slices after `k` evaluations, as Prometheus'
//! `increase(...[5m])` would see it (without its extrapolation).
//!
//! Besides the detectors on the pair of windows, candidates for faster
//! detection see the newest slices too (`sequential.rs`: multi-window rules
//! and a CUSUM), and a last section puts traffic with a daily cycle against
//! three kinds of reference (`seasonal.rs`).
//!
//! Run: `cargo run --release --example detection_quality -- [--evaluations N]
//! [--trials T] [--seed S]`. Output is Markdown for BENCHMARKS.md.

#[path = "detection_quality/seasonal.rs"]
mod seasonal;
#[path = "detection_quality/sequential.rs"]
mod sequential;

use std::collections::VecDeque;
use std::time::Instant;

use model_monitor::config::TestRule;
use model_monitor::detectors::{
    ChiSquareDetector, Detection, DriftDetector, ExceedanceDetector, HellingerDetector,
    JensenShannonDetector, KsDetector, PsiDetector, QuantileRatioDetector, Verdict,
    WassersteinDetector, Windows, ZScoreDetector,
};
use model_monitor::stats::{Distribution, chi_squared_sf};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution as _, Normal, Poisson};
use statrs::distribution::{Beta, ContinuousCDF, Normal as StatrsNormal};

/// The bucket bounds `model-monitor simulate` serves (`src/simulate/model.rs`):
/// confidence in steps of 0.05, latency at Prometheus' default buckets.
const CONFIDENCE_BUCKETS: [f64; 20] = [
    0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85,
    0.9, 0.95, 1.0,
];
const LATENCY_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Seconds between evaluations.
const INTERVAL_SECONDS: f64 = 30.0;
/// Slices in the 5 m window.
const WINDOW_SLICES: usize = 10;
/// Seconds in the large reference (7 days).
const LARGE_REFERENCE_SECONDS: f64 = 7.0 * 86_400.0;
/// Evaluations watched after a shift.
const MAX_DELAY: usize = 20;
const RATES: [f64; 5] = [0.1, 1.0, 10.0, 100.0, 1000.0];

/// A continuous distribution of one signal.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// Beta with this mean and concentration alpha + beta (the simulator's
    /// parameterisation).
    Beta { mean: f64, concentration: f64 },
    /// LogNormal with this median (seconds) and sigma of the log.
    LogNormal { median: f64, sigma: f64 },
}

/// A shape discretised on bucket bounds: per bucket (the `+Inf` bucket
/// last) the probability and the conditional mean and variance of an
/// observation in it.
struct Bucketed {
    probability: Vec<f64>,
    mean: Vec<f64>,
    variance: Vec<f64>,
}

impl Bucketed {
    fn new(shape: Shape, bounds: &[f64]) -> Bucketed {
        // Partial moments F_k(x) = E[X^k 1{X <= x}] for k = 0, 1, 2.
        let partial: Box<dyn Fn(f64) -> [f64; 3]> = match shape {
            Shape::Beta {
                mean,
                concentration,
            } => {
                let a = mean * concentration;
                let b = (1.0 - mean) * concentration;
                let d0 = Beta::new(a, b).unwrap();
                let d1 = Beta::new(a + 1.0, b).unwrap();
                let d2 = Beta::new(a + 2.0, b).unwrap();
                let m1 = a / (a + b);
                let m2 = a * (a + 1.0) / ((a + b) * (a + b + 1.0));
                Box::new(move |x: f64| {
                    let x = x.min(1.0);
                    [d0.cdf(x), m1 * d1.cdf(x), m2 * d2.cdf(x)]
                })
            }
            Shape::LogNormal { median, sigma } => {
                let mu = median.ln();
                let normal = StatrsNormal::standard();
                Box::new(move |x: f64| {
                    if x.is_infinite() {
                        return [
                            1.0,
                            (mu + sigma * sigma / 2.0).exp(),
                            (2.0 * mu + 2.0 * sigma * sigma).exp(),
                        ];
                    }
                    let z = (x.ln() - mu) / sigma;
                    [
                        normal.cdf(z),
                        (mu + sigma * sigma / 2.0).exp() * normal.cdf(z - sigma),
                        (2.0 * mu + 2.0 * sigma * sigma).exp() * normal.cdf(z - 2.0 * sigma),
                    ]
                })
            }
        };
        let mut uppers: Vec<f64> = bounds.to_vec();
        uppers.push(f64::INFINITY);
        let mut previous = [0.0; 3];
        let mut bucketed = Bucketed {
            probability: Vec::new(),
            mean: Vec::new(),
            variance: Vec::new(),
        };
        for upper in uppers {
            let current = partial(upper);
            let p = (current[0] - previous[0]).max(0.0);
            let (mean, variance) = if p > 1e-300 {
                let mean = (current[1] - previous[1]) / p;
                let second = (current[2] - previous[2]) / p;
                (mean, (second - mean * mean).max(0.0))
            } else {
                (0.0, 0.0)
            };
            bucketed.probability.push(p);
            bucketed.mean.push(mean);
            bucketed.variance.push(variance);
            previous = current;
        }
        bucketed
    }

    /// Bucket counts and `_sum` of Poisson traffic with `expected`
    /// observations.
    fn draw(&self, expected: f64, rng: &mut StdRng) -> (Vec<f64>, f64) {
        let mut counts = Vec::with_capacity(self.probability.len());
        let mut sum_mean = 0.0;
        let mut sum_variance = 0.0;
        for bucket in 0..self.probability.len() {
            let lambda = expected * self.probability[bucket];
            let count = if lambda > 0.0 {
                Poisson::new(lambda).unwrap().sample(rng)
            } else {
                0.0
            };
            sum_mean += count * self.mean[bucket];
            sum_variance += count * self.variance[bucket];
            counts.push(count);
        }
        let sum = if sum_variance > 0.0 {
            Normal::new(sum_mean, sum_variance.sqrt())
                .unwrap()
                .sample(rng)
        } else {
            sum_mean
        };
        (counts, sum)
    }
}

/// A 5 m window sliding by one 30 s slice per evaluation.
struct Window {
    slices: VecDeque<(Vec<f64>, f64)>,
}

impl Window {
    fn new() -> Window {
        Window {
            slices: VecDeque::with_capacity(WINDOW_SLICES + 1),
        }
    }

    fn push(&mut self, slice: (Vec<f64>, f64)) {
        self.slices.push_back(slice);
        if self.slices.len() > WINDOW_SLICES {
            self.slices.pop_front();
        }
    }

    fn distribution(&self, bounds: &[f64]) -> Distribution {
        self.newest(self.slices.len(), bounds)
    }

    /// The newest `slices` slices (all of them when there are fewer).
    fn newest(&self, slices: usize, bounds: &[f64]) -> Distribution {
        let mut counts = vec![0.0; bounds.len() + 1];
        let mut sum = 0.0;
        let skip = self.slices.len().saturating_sub(slices);
        for (slice, slice_sum) in self.slices.iter().skip(skip) {
            for (total, count) in counts.iter_mut().zip(slice) {
                *total += count;
            }
            sum += slice_sum;
        }
        Distribution::from_bucket_counts(bounds.to_vec(), counts, Some(sum)).unwrap()
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    Alarm,
    Quiet,
    NoDecision,
}

/// Decides on a (reference, current) pair of windows.
type Decide = Box<dyn Fn(&Distribution, &Distribution) -> Outcome>;

/// What one evaluation shows a method: the two windows, and the newest
/// slices of the current window for rules that look at them.
pub struct Frame {
    pub reference: Distribution,
    pub current: Distribution,
    /// The newest two 30 s slices: a 1 m window.
    pub short: Distribution,
    /// The newest 30 s slice.
    pub newest: Distribution,
}

/// A rule that may keep state between evaluations of one trial.
type Sequential = Box<dyn FnMut(&Frame) -> Outcome>;

/// One way of deciding drift.
struct Method {
    name: &'static str,
    /// model-monitor's detector under its default rule.
    ours: bool,
    decide: Decide,
    /// When set, the method is this rule on the whole frame instead.
    sequential: Option<Sequential>,
    /// Makes the rule afresh for each trial, when it keeps state.
    fresh: Option<fn() -> Sequential>,
}

impl Method {
    fn decide(&mut self, frame: &Frame) -> Outcome {
        match &mut self.sequential {
            Some(rule) => rule(frame),
            None => (self.decide)(&frame.reference, &frame.current),
        }
    }

    /// Forgets what a stateful rule kept from the last trial.
    fn restart(&mut self) {
        if let Some(make) = self.fresh {
            self.sequential = Some(make());
        }
    }
}

fn ours(name: &'static str, detector: impl DriftDetector + 'static) -> Method {
    Method {
        name,
        ours: true,
        sequential: None,
        fresh: None,
        decide: Box::new(move |reference, current| {
            match detector.detect(Windows { reference, current }) {
                Ok(detection) => match detection.verdict {
                    Verdict::Drift => Outcome::Alarm,
                    Verdict::NoDrift => Outcome::Quiet,
                    Verdict::InsufficientSamples { .. } | Verdict::YoungSeries { .. } => {
                        Outcome::NoDecision
                    }
                },
                Err(_) => Outcome::NoDecision,
            }
        }),
    }
}

fn rule(min_effect: f64) -> TestRule {
    TestRule {
        threshold: None,
        false_alarm_rate: 0.001,
        min_effect,
    }
}

/// A variant of one of our detectors with another rule, decided on its
/// detection by `drift`; `min_samples` still applies.
fn candidate<D: DriftDetector + 'static>(
    name: &'static str,
    detector: D,
    drift: impl Fn(&Distribution, &Distribution, &Detection) -> bool + 'static,
) -> Method {
    Method {
        name,
        ours: false,
        sequential: None,
        fresh: None,
        decide: Box::new(move |reference, current| {
            match detector.detect(Windows { reference, current }) {
                Ok(detection) => match detection.verdict {
                    Verdict::InsufficientSamples { .. } | Verdict::YoungSeries { .. } => {
                        Outcome::NoDecision
                    }
                    _ if drift(reference, current, &detection) => Outcome::Alarm,
                    _ => Outcome::Quiet,
                },
                Err(_) => Outcome::NoDecision,
            }
        }),
    }
}

fn alternative(
    name: &'static str,
    score: impl Fn(&Distribution, &Distribution) -> f64 + 'static,
    threshold: f64,
) -> Method {
    Method {
        name,
        ours: false,
        sequential: None,
        fresh: None,
        decide: Box::new(move |reference, current| {
            if reference.is_empty() || current.is_empty() {
                return Outcome::NoDecision;
            }
            let value = score(reference, current);
            if !value.is_finite() {
                Outcome::NoDecision
            } else if value >= threshold {
                Outcome::Alarm
            } else {
                Outcome::Quiet
            }
        }),
    }
}

fn proportions(distribution: &Distribution) -> Vec<f64> {
    let total = distribution.total();
    distribution.counts().iter().map(|c| c / total).collect()
}

/// Evidently's PSI (`evidently.legacy.calculations.stattests.psi`, 0.7):
/// with at most 20 distinct values, as bucket data has, Evidently takes the
/// per-value proportions, i.e. the bucket proportions; an empty bucket's
/// proportion is replaced by 0.0001, or by (smallest non-zero proportion) /
/// 10^6 when that is <= 0.0001; no renormalisation; then
/// `sum (p - q) ln(p / q)` over every bucket.
fn evidently_psi(reference: &Distribution, current: &Distribution) -> f64 {
    fn fill_zeroes(mut proportions: Vec<f64>) -> Vec<f64> {
        let smallest = proportions
            .iter()
            .copied()
            .filter(|p| *p > 0.0)
            .fold(f64::INFINITY, f64::min);
        let fill = if smallest <= 0.0001 {
            smallest / 1e6
        } else {
            0.0001
        };
        for p in &mut proportions {
            if *p == 0.0 {
                *p = fill;
            }
        }
        proportions
    }
    fill_zeroes(proportions(reference))
        .into_iter()
        .zip(fill_zeroes(proportions(current)))
        .map(|(p, q)| (p - q) * (p / q).ln())
        .sum()
}

/// Evidently's Jensen-Shannon: `scipy.spatial.distance.jensenshannon(p, q)`
/// with its default natural-log base, on unsmoothed proportions.
fn evidently_js(reference: &Distribution, current: &Distribution) -> f64 {
    let mut divergence = 0.0;
    for (p, q) in proportions(reference).into_iter().zip(proportions(current)) {
        let m = 0.5 * (p + q);
        if p > 0.0 {
            divergence += p * (p / m).ln();
        }
        if q > 0.0 {
            divergence += q * (q / m).ln();
        }
    }
    (divergence / 2.0).max(0.0).sqrt()
}

/// Evidently's normed Wasserstein: W1 / max(sd_reference, 0.001), here on
/// the bucket representatives (the same as model-monitor's detector).
fn evidently_wasserstein(reference: &Distribution, current: &Distribution) -> f64 {
    let detector = WassersteinDetector::new(0.1).with_min_samples(0.0);
    detector
        .detect(Windows { reference, current })
        .map(|d| d.score)
        .unwrap_or(f64::NAN)
}

/// The original sketch's rule: `(mean_q - mean_p) / sd_p`, in reference
/// standard deviations of one observation.
fn sketch_z(reference: &Distribution, current: &Distribution) -> f64 {
    ((current.mean() - reference.mean()) / reference.stddev()).abs()
}

/// A PromQL z-score rule on the window mean: the shift in standard errors,
/// `(mean_q - mean_p) / (sd_p sqrt(1/n + 1/m))`, with no effect-size floor.
fn standard_error_z(reference: &Distribution, current: &Distribution) -> f64 {
    let scale = (1.0 / current.total() + 1.0 / reference.total()).sqrt();
    ((current.mean() - reference.mean()) / (reference.stddev() * scale)).abs()
}

/// The first chi-square rule (`docs/statistics.md`, section 8.2): Pearson's statistic over
/// the buckets occupied in either window, unpooled, on `B' - 1` degrees of
/// freedom, and plain Cramér's V, `sqrt(chi2 / (n + m)) >= 0.1`; decided from
/// 100 observations in each window, as `min_samples` does.
fn first_chi_square() -> Method {
    Method {
        name: "chi_square, plain V, unpooled (the first default)",
        ours: false,
        sequential: None,
        fresh: None,
        decide: Box::new(|reference, current| {
            let (m, n) = (reference.total(), current.total());
            if m < 100.0 || n < 100.0 {
                return Outcome::NoDecision;
            }
            let total = n + m;
            let mut score = 0.0;
            let mut columns = 0;
            for (p, q) in reference.counts().iter().zip(current.counts()) {
                let column = p + q;
                if column > 0.0 {
                    columns += 1;
                    let (expected_p, expected_q) = (m * column / total, n * column / total);
                    score += (p - expected_p).powi(2) / expected_p
                        + (q - expected_q).powi(2) / expected_q;
                }
            }
            let significant = columns >= 2 && chi_squared_sf(score, (columns - 1) as f64) <= 0.001;
            if significant && (score / total).sqrt() >= 0.1 {
                Outcome::Alarm
            } else {
                Outcome::Quiet
            }
        }),
    }
}

fn methods(latency: bool) -> Vec<Method> {
    let mut methods = vec![
        ours("psi", PsiDetector::default()),
        ours("ks", KsDetector::default()),
        ours("chi_square", ChiSquareDetector::default()),
        ours("zscore", ZScoreDetector::default()),
        ours("jensen_shannon", JensenShannonDetector::default()),
        ours("hellinger", HellingerDetector::default()),
        ours("wasserstein", WassersteinDetector::default()),
    ];
    if latency {
        methods.push(ours(
            "quantile_ratio p99 1.5",
            QuantileRatioDetector::new(0.99, 1.5),
        ));
        methods.push(ours("exceedance p99", ExceedanceDetector::default()));
    }
    methods.extend(sequential::candidates(latency));
    methods.extend([
        candidate(
            "zscore, min_effect 0.2 sd (the first default)",
            ZScoreDetector::new(rule(0.2)),
            |_, _, detection| detection.verdict == Verdict::Drift,
        ),
        candidate(
            "ks, min_effect 0.05 (candidate)",
            KsDetector::new(rule(0.05)),
            |_, _, detection| detection.verdict == Verdict::Drift,
        ),
        first_chi_square(),
        alternative("Evidently PSI >= 0.1", evidently_psi, 0.1),
        alternative("Evidently JS >= 0.1", evidently_js, 0.1),
        alternative("Evidently Wasserstein >= 0.1", evidently_wasserstein, 0.1),
        alternative("sketch abs(z) >= 3 (sd units)", sketch_z, 3.0),
        alternative("PromQL abs(z) >= 3 (std. errors)", standard_error_z, 3.0),
    ]);
    methods
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum ReferenceKind {
    /// 7 days of the same traffic.
    Large,
    /// A 5 m window of the same traffic, sliding along (`offset 7d`).
    SameSize,
}

impl ReferenceKind {
    fn label(self) -> &'static str {
        match self {
            ReferenceKind::Large => "7d reference",
            ReferenceKind::SameSize => "5m reference",
        }
    }
}

/// The source of reference windows for one trial.
enum Reference {
    Fixed(Distribution),
    Sliding(Window),
}

struct Signal {
    name: &'static str,
    bounds: &'static [f64],
    stable: Shape,
}

const CONFIDENCE: Signal = Signal {
    name: "confidence",
    bounds: &CONFIDENCE_BUCKETS,
    stable: Shape::Beta {
        mean: 0.85,
        concentration: 20.0,
    },
};

const LATENCY: Signal = Signal {
    name: "latency",
    bounds: &LATENCY_BUCKETS,
    stable: Shape::LogNormal {
        median: 0.040,
        sigma: 0.375,
    },
};

struct Scenario {
    name: String,
    signal: &'static Signal,
    drifted: Shape,
}

fn scenarios() -> Vec<Scenario> {
    let mut scenarios: Vec<Scenario> = [0.02, 0.05, 0.1]
        .into_iter()
        .map(|drop| Scenario {
            name: format!("confidence mean -{drop}"),
            signal: &CONFIDENCE,
            drifted: Shape::Beta {
                mean: 0.85 - drop,
                concentration: 20.0,
            },
        })
        .collect();
    scenarios.push(Scenario {
        name: "confidence sd x1.5 (same mean)".to_owned(),
        signal: &CONFIDENCE,
        // sd = sqrt(mean (1 - mean) / (concentration + 1)): 21 / 1.5^2 - 1.
        drifted: Shape::Beta {
            mean: 0.85,
            concentration: 21.0 / 2.25 - 1.0,
        },
    });
    // p99 = median exp(2.3263 sigma): +50% at the same median.
    let z99 = 2.326_347_874_040_841;
    scenarios.push(Scenario {
        name: "latency p99 +50% (same median)".to_owned(),
        signal: &LATENCY,
        drifted: Shape::LogNormal {
            median: 0.040,
            sigma: 0.375 + 1.5_f64.ln() / z99,
        },
    });
    scenarios
}

struct Trial<'a> {
    signal: &'a Signal,
    stable: &'a Bucketed,
    per_slice: f64,
    reference: Reference,
    current: Window,
}

impl<'a> Trial<'a> {
    fn start(
        signal: &'a Signal,
        stable: &'a Bucketed,
        rate: f64,
        kind: ReferenceKind,
        rng: &mut StdRng,
    ) -> Trial<'a> {
        let per_slice = rate * INTERVAL_SECONDS;
        let reference = match kind {
            ReferenceKind::Large => {
                let (counts, sum) = stable.draw(rate * LARGE_REFERENCE_SECONDS, rng);
                Reference::Fixed(
                    Distribution::from_bucket_counts(signal.bounds.to_vec(), counts, Some(sum))
                        .unwrap(),
                )
            }
            ReferenceKind::SameSize => {
                let mut window = Window::new();
                for _ in 0..WINDOW_SLICES {
                    window.push(stable.draw(per_slice, rng));
                }
                Reference::Sliding(window)
            }
        };
        let mut current = Window::new();
        for _ in 0..WINDOW_SLICES {
            current.push(stable.draw(per_slice, rng));
        }
        Trial {
            signal,
            stable,
            per_slice,
            reference,
            current,
        }
    }

    /// Advances by one evaluation with the current traffic from `now`, and
    /// returns what the methods see.
    fn step(&mut self, now: &Bucketed, rng: &mut StdRng) -> Frame {
        self.current.push(now.draw(self.per_slice, rng));
        let reference = match &mut self.reference {
            Reference::Fixed(distribution) => distribution.clone(),
            Reference::Sliding(window) => {
                window.push(self.stable.draw(self.per_slice, rng));
                window.distribution(self.signal.bounds)
            }
        };
        let bounds = self.signal.bounds;
        Frame {
            reference,
            current: self.current.distribution(bounds),
            short: self.current.newest(2, bounds),
            newest: self.current.newest(1, bounds),
        }
    }
}

/// A seed for one cell, independent of the order cells run in.
fn cell_seed(seed: u64, parts: &[u64]) -> u64 {
    parts.iter().fold(seed ^ 0x9E37_79B9_7F4A_7C15, |h, &p| {
        (h ^ p).wrapping_mul(0x0100_0000_01B3).rotate_left(29)
    })
}

struct Options {
    evaluations: usize,
    trials: usize,
    seed: u64,
}

fn options() -> Options {
    let mut options = Options {
        evaluations: 20_000,
        trials: 400,
        seed: 5,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut index = 0;
    while index < args.len() {
        let value = args.get(index + 1).and_then(|v| v.parse::<u64>().ok());
        match (args[index].as_str(), value) {
            ("--evaluations", Some(v)) => options.evaluations = v as usize,
            ("--trials", Some(v)) => options.trials = v as usize,
            ("--seed", Some(v)) => options.seed = v,
            _ => {
                eprintln!("usage: detection_quality [--evaluations N] [--trials T] [--seed S]");
                std::process::exit(2);
            }
        }
        index += 2;
    }
    options
}

const KINDS: [ReferenceKind; 2] = [ReferenceKind::Large, ReferenceKind::SameSize];

fn rate_label(rate: f64) -> String {
    format!("{rate} req/s")
}

fn false_alarms(options: &Options) {
    println!(
        "## No drift: false alarms per 1,000 evaluations\n\n\
         {} evaluations per cell ({} trials of {} consecutive evaluations, each trial with \
         its own reference draw). `n/d`: no decision (fewer than `min_samples` = 100 \
         observations in a window) for that share of evaluations.\n",
        options.evaluations,
        (options.evaluations / 200).max(1),
        options.evaluations / (options.evaluations / 200).max(1)
    );
    for (signal_index, signal) in [&CONFIDENCE, &LATENCY].into_iter().enumerate() {
        let stable = Bucketed::new(signal.stable, signal.bounds);
        let mut methods = methods(signal.name == "latency");
        // results[method][column] = (alarms, decided, evaluations)
        let mut columns = Vec::new();
        let mut results = vec![Vec::new(); methods.len()];
        for (kind_index, kind) in KINDS.into_iter().enumerate() {
            for (rate_index, rate) in RATES.into_iter().enumerate() {
                columns.push(format!("{} {}", rate_label(rate), kind.label()));
                let mut rng = StdRng::seed_from_u64(cell_seed(
                    options.seed,
                    &[1, signal_index as u64, kind_index as u64, rate_index as u64],
                ));
                let trials = (options.evaluations / 200).max(1);
                let per_trial = options.evaluations / trials;
                let mut tally = vec![(0usize, 0usize, 0usize); methods.len()];
                for _ in 0..trials {
                    let mut trial = Trial::start(signal, &stable, rate, kind, &mut rng);
                    methods.iter_mut().for_each(Method::restart);
                    for _ in 0..per_trial {
                        let frame = trial.step(&stable, &mut rng);
                        count_outcomes(&mut methods, &mut tally, &frame);
                    }
                }
                for (row, counts) in results.iter_mut().zip(tally) {
                    row.push(counts);
                }
            }
        }
        println!("### {} (stable: {:?})\n", signal.name, signal.stable);
        print_table(&columns, &methods, &results);
    }
}

/// Lets every method decide on `frame` and counts, per method, (alarms,
/// decided, evaluations).
fn count_outcomes(methods: &mut [Method], tally: &mut [(usize, usize, usize)], frame: &Frame) {
    for (method, counts) in methods.iter_mut().zip(tally.iter_mut()) {
        let outcome = method.decide(frame);
        counts.2 += 1;
        if outcome != Outcome::NoDecision {
            counts.1 += 1;
        }
        if outcome == Outcome::Alarm {
            counts.0 += 1;
        }
    }
}

/// A false-alarm table: one row per method, one column per cell of
/// (alarms, decided, evaluations).
fn print_table(columns: &[String], methods: &[Method], results: &[Vec<(usize, usize, usize)>]) {
    print!("| method |");
    for column in columns {
        print!(" {column} |");
    }
    println!();
    print!("| --- |");
    for _ in columns {
        print!(" ---: |");
    }
    println!();
    for (method, row) in methods.iter().zip(results) {
        let marker = if method.ours { " (ours, default)" } else { "" };
        print!("| {}{} |", method.name, marker);
        for &(alarms, decided, total) in row {
            if decided == 0 {
                print!(" n/d |");
            } else if decided < total {
                print!(
                    " {:.1} (n/d {:.0}%) |",
                    1000.0 * alarms as f64 / total as f64,
                    100.0 * (total - decided) as f64 / total as f64
                );
            } else {
                print!(" {:.1} |", 1000.0 * alarms as f64 / total as f64);
            }
        }
        println!();
    }
    println!();
}

fn detection(options: &Options) {
    println!(
        "## Drift: detection rate and delay\n\n\
         {} trials per cell. A sudden shift happens just after evaluation 0; evaluation `k` \
         sees `k` of its ten 30 s slices drifted (fully drifted from `k` = 10). Each cell: \
         share of trials detected within 2 evaluations / within {MAX_DELAY} evaluations, and \
         the median delay in evaluations of the first alarm (`-` when under half the trials \
         alarm within {MAX_DELAY}). An alarm already at evaluation 0 (a false alarm) is \
         counted as detection at 1, so a method that false-alarms a lot looks fast: read \
         this table next to the false-alarm one.\n",
        options.trials
    );
    for (scenario_index, scenario) in scenarios().iter().enumerate() {
        let signal = scenario.signal;
        let stable = Bucketed::new(signal.stable, signal.bounds);
        let drifted = Bucketed::new(scenario.drifted, signal.bounds);
        let mut methods = methods(signal.name == "latency");
        println!(
            "### {} ({:?} -> {:?})\n",
            scenario.name, signal.stable, scenario.drifted
        );
        for (kind_index, kind) in KINDS.into_iter().enumerate() {
            println!("{}:\n", kind.label());
            let mut delays = vec![Vec::new(); methods.len()];
            for (rate_index, rate) in RATES.into_iter().enumerate() {
                let mut rng = StdRng::seed_from_u64(cell_seed(
                    options.seed,
                    &[
                        2,
                        scenario_index as u64,
                        kind_index as u64,
                        rate_index as u64,
                    ],
                ));
                let mut first = vec![Vec::with_capacity(options.trials); methods.len()];
                for _ in 0..options.trials {
                    let mut trial = Trial::start(signal, &stable, rate, kind, &mut rng);
                    methods.iter_mut().for_each(Method::restart);
                    let mut found: Vec<Option<usize>> = vec![None; methods.len()];
                    // Evaluation 0: before the shift.
                    let frame = trial.step(&stable, &mut rng);
                    for (method, slot) in methods.iter_mut().zip(found.iter_mut()) {
                        if method.decide(&frame) == Outcome::Alarm {
                            *slot = Some(1);
                        }
                    }
                    for k in 1..=MAX_DELAY {
                        if found.iter().all(Option::is_some) {
                            break;
                        }
                        let frame = trial.step(&drifted, &mut rng);
                        for (method, slot) in methods.iter_mut().zip(found.iter_mut()) {
                            if slot.is_none() && method.decide(&frame) == Outcome::Alarm {
                                *slot = Some(k);
                            }
                        }
                    }
                    for (list, value) in first.iter_mut().zip(found) {
                        list.push(value);
                    }
                }
                for (row, list) in delays.iter_mut().zip(first) {
                    row.push(list);
                }
            }
            print!("| method |");
            for rate in RATES {
                print!(" {} |", rate_label(rate));
            }
            println!();
            print!("| --- |");
            for _ in RATES {
                print!(" ---: |");
            }
            println!();
            for (method, row) in methods.iter().zip(&delays) {
                let marker = if method.ours { " (ours)" } else { "" };
                print!("| {}{} |", method.name, marker);
                for list in row {
                    print!(" {} |", delay_cell(list));
                }
                println!();
            }
            println!();
        }
    }
}

/// One detection cell: the share of trials detected within 2 and within
/// [`MAX_DELAY`] evaluations, and the median delay (`-` when under half
/// the trials alarm).
fn delay_cell(list: &[Option<usize>]) -> String {
    let within = |limit: usize| {
        100.0
            * list
                .iter()
                .filter(|d| d.is_some_and(|d| d <= limit))
                .count() as f64
            / list.len() as f64
    };
    let mut sorted: Vec<usize> = list.iter().flatten().copied().collect();
    sorted.sort_unstable();
    let median = if sorted.len() * 2 > list.len() {
        sorted[(list.len() - 1) / 2].to_string()
    } else {
        "-".to_owned()
    };
    format!("{:.0}% / {:.0}% / {}", within(2), within(MAX_DELAY), median)
}

fn main() {
    let options = options();
    let started = Instant::now();
    println!(
        "<!-- cargo run --release --example detection_quality -- --evaluations {} --trials {} --seed {} -->\n",
        options.evaluations, options.trials, options.seed
    );
    false_alarms(&options);
    detection(&options);
    seasonal::false_alarms(options.evaluations, options.seed);
    seasonal::detection(options.trials, options.seed);
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
}
