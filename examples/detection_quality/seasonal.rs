//! A daily cycle without drift: which reference keeps false alarms at the
//! detectors' rate? Confidence's mean swings by +-0.04 around 0.85 and the
//! median latency by +-30% around 40 ms over a day, traffic by +-50%
//! around its level; every week is the same. Three references are
//! compared: `{window: 1d}` (the day before, every phase pooled),
//! `{offset: 7d}` (the same 5 minutes a week earlier) and
//! `{offsets: [7d, 14d, 21d]}` (the same 5 minutes in each of three past
//! weeks, pooled). Weeks are independent draws of the same traffic.

use std::f64::consts::TAU;

use model_monitor::stats::Distribution;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::{
    Bucketed, CONFIDENCE, Frame, INTERVAL_SECONDS, LATENCY, RATES, Shape, Signal, Window,
    cell_seed, methods,
};

/// The day in phases of 5 minutes: traffic keeps its shape within one.
const PHASES: usize = 288;
const PHASE_SECONDS: f64 = 86_400.0 / PHASES as f64;
/// Evaluations per trial; each trial starts at a random time of day.
const PER_TRIAL: usize = 200;

/// The signal's shape and the traffic multiplier at a phase, drifted when
/// `drifted`: confidence's mean 0.02 lower, latency's p99 50% higher at the
/// same median.
fn at_phase(signal: &Signal, phase: usize, drifted: bool) -> (Shape, f64) {
    let (drop, widen) = if drifted {
        (0.02, 1.5_f64.ln() / 2.326_347_874_040_841)
    } else {
        (0.0, 0.0)
    };
    let wave = (TAU * phase as f64 / PHASES as f64).sin();
    let shape = match signal.stable {
        Shape::Beta {
            mean,
            concentration,
        } => Shape::Beta {
            mean: mean + 0.04 * wave - drop,
            concentration,
        },
        Shape::LogNormal { median, sigma } => Shape::LogNormal {
            median: median * (1.0 + 0.3 * wave),
            sigma: sigma + widen,
        },
    };
    (shape, 1.0 + 0.5 * wave)
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Day,
    Week,
    Weeks,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Day => "{window: 1d}",
            Kind::Week => "{offset: 7d}",
            Kind::Weeks => "{offsets: [7d, 14d, 21d]}",
        }
    }
}

/// A day's worth of the signal: per phase, its buckets and traffic multiplier.
struct Day {
    phases: Vec<(Bucketed, f64)>,
}

impl Day {
    fn new(signal: &Signal, drifted: bool) -> Day {
        Day {
            phases: (0..PHASES)
                .map(|phase| {
                    let (shape, traffic) = at_phase(signal, phase, drifted);
                    (Bucketed::new(shape, signal.bounds), traffic)
                })
                .collect(),
        }
    }

    /// One 30 s slice at evaluation time `seconds` (time of day).
    fn slice(&self, seconds: f64, rate: f64, rng: &mut StdRng) -> (Vec<f64>, f64) {
        let phase = ((seconds / PHASE_SECONDS) as usize) % PHASES;
        let (buckets, traffic) = &self.phases[phase];
        buckets.draw(rate * traffic * INTERVAL_SECONDS, rng)
    }

    /// The whole day before, every phase drawn once.
    fn whole(&self, rate: f64, bounds: &[f64], rng: &mut StdRng) -> Distribution {
        let mut counts = vec![0.0; bounds.len() + 1];
        let mut sum = 0.0;
        for (buckets, traffic) in &self.phases {
            let (slice, slice_sum) = buckets.draw(rate * traffic * PHASE_SECONDS, rng);
            for (total, count) in counts.iter_mut().zip(slice) {
                *total += count;
            }
            sum += slice_sum;
        }
        Distribution::from_bucket_counts(bounds.to_vec(), counts, Some(sum)).unwrap()
    }
}

/// The past weeks' windows added up: the pooled reference.
fn pooled(weeks: &[Window], bounds: &[f64]) -> Distribution {
    let mut counts = vec![0.0; bounds.len() + 1];
    let mut sum = 0.0;
    for week in weeks {
        let window = week.distribution(bounds);
        for (total, count) in counts.iter_mut().zip(window.counts()) {
            *total += count;
        }
        sum += window.sum().unwrap_or(0.0);
    }
    Distribution::from_bucket_counts(bounds.to_vec(), counts, Some(sum)).unwrap()
}

/// What the methods see: `reference` against the current window.
fn frame(reference: Distribution, current: &Window, bounds: &[f64]) -> Frame {
    Frame {
        reference,
        current: current.distribution(bounds),
        short: current.newest(2, bounds),
        newest: current.newest(1, bounds),
    }
}

/// Prints, per signal, the false alarms per 1,000 evaluations of our
/// detectors under each reference and traffic level.
pub(super) fn false_alarms(evaluations: usize, seed: u64) {
    println!(
        "## Daily cycle, no drift: false alarms per 1,000 evaluations by reference\n\n\
         Confidence mean 0.85 +- 0.04, median latency 40 ms +- 30%, traffic +- 50% over a day \
         (the same every week); {evaluations} evaluations per cell in trials of {PER_TRIAL} \
         starting at random times of day. `n/d`: share of evaluations with no decision.\n"
    );
    let kinds = [Kind::Day, Kind::Week, Kind::Weeks];
    let rates = &RATES[1..];
    for (signal_index, signal) in [&CONFIDENCE, &LATENCY].into_iter().enumerate() {
        let day = Day::new(signal, false);
        let mut methods: Vec<_> = methods(signal.name == "latency")
            .into_iter()
            .filter(|method| method.ours)
            .collect();
        let mut columns = Vec::new();
        let mut results = vec![Vec::new(); methods.len()];
        for (kind_index, kind) in kinds.into_iter().enumerate() {
            for (rate_index, &rate) in rates.iter().enumerate() {
                columns.push(format!("{rate} req/s {}", kind.label()));
                let mut rng = StdRng::seed_from_u64(cell_seed(
                    seed,
                    &[3, signal_index as u64, kind_index as u64, rate_index as u64],
                ));
                let mut tally = vec![(0usize, 0usize, 0usize); methods.len()];
                for _ in 0..(evaluations / PER_TRIAL).max(1) {
                    let start = rng.random_range(0.0..86_400.0);
                    let weeks = match kind {
                        Kind::Day => 0,
                        Kind::Week => 1,
                        Kind::Weeks => 3,
                    };
                    let mut current = Window::new();
                    let mut past: Vec<Window> = (0..weeks).map(|_| Window::new()).collect();
                    let whole =
                        (kind == Kind::Day).then(|| day.whole(rate, signal.bounds, &mut rng));
                    let step = |seconds: f64,
                                rng: &mut StdRng,
                                current: &mut Window,
                                past: &mut [Window]| {
                        current.push(day.slice(seconds, rate, rng));
                        for week in past.iter_mut() {
                            week.push(day.slice(seconds, rate, rng));
                        }
                    };
                    // Fill the windows before the first evaluation.
                    for slice in 0..super::WINDOW_SLICES {
                        let seconds =
                            start - INTERVAL_SECONDS * (super::WINDOW_SLICES - slice) as f64;
                        step(
                            seconds.rem_euclid(86_400.0),
                            &mut rng,
                            &mut current,
                            &mut past,
                        );
                    }
                    for evaluation in 0..PER_TRIAL {
                        let seconds =
                            (start + INTERVAL_SECONDS * evaluation as f64).rem_euclid(86_400.0);
                        step(seconds, &mut rng, &mut current, &mut past);
                        let reference = match &whole {
                            Some(whole) => whole.clone(),
                            None => pooled(&past, signal.bounds),
                        };
                        let frame = frame(reference, &current, signal.bounds);
                        super::count_outcomes(&mut methods, &mut tally, &frame);
                    }
                }
                for (row, counts) in results.iter_mut().zip(tally) {
                    row.push(counts);
                }
            }
        }
        println!("### {} with a daily cycle\n", signal.name);
        super::print_table(&columns, &methods, &results);
    }
}

/// Prints, per signal, how soon our test detectors catch a sudden change
/// on top of the daily cycle (confidence mean -0.02, latency p99 +50%)
/// against one past week and against three pooled.
pub(super) fn detection(trials: usize, seed: u64) {
    println!(
        "## Daily cycle with a sudden change: detection by reference\n\n\
         The daily cycle above; just after evaluation 0 the confidence mean drops by 0.02 \
         (latency: p99 +50% at the same median) at every time of day. {trials} trials per cell, \
         each starting at a random time of day; cells as in the drift tables.\n"
    );
    let kinds = [Kind::Week, Kind::Weeks];
    let rates = &RATES[1..4];
    for (signal_index, signal) in [&CONFIDENCE, &LATENCY].into_iter().enumerate() {
        let stable = Day::new(signal, false);
        let drifted = Day::new(signal, true);
        let mut methods: Vec<_> = methods(signal.name == "latency")
            .into_iter()
            .filter(|method| method.ours)
            .collect();
        let mut rows = vec![Vec::new(); methods.len()];
        let mut columns = Vec::new();
        for (kind_index, kind) in kinds.into_iter().enumerate() {
            let weeks = if kind == Kind::Week { 1 } else { 3 };
            for (rate_index, &rate) in rates.iter().enumerate() {
                columns.push(format!("{rate} req/s {}", kind.label()));
                let mut rng = StdRng::seed_from_u64(cell_seed(
                    seed,
                    &[4, signal_index as u64, kind_index as u64, rate_index as u64],
                ));
                let mut first = vec![Vec::with_capacity(trials); methods.len()];
                for _ in 0..trials {
                    let start = rng.random_range(0.0..86_400.0);
                    let mut current = Window::new();
                    let mut past: Vec<Window> = (0..weeks).map(|_| Window::new()).collect();
                    let mut found: Vec<Option<usize>> = vec![None; methods.len()];
                    let slices = super::WINDOW_SLICES;
                    for index in 0..slices + 1 + super::MAX_DELAY {
                        let seconds = (start + INTERVAL_SECONDS * (index as f64 - slices as f64))
                            .rem_euclid(86_400.0);
                        // Evaluation k = index - slices; the change follows evaluation 0.
                        let k = index as isize - slices as isize;
                        let now = if k >= 1 { &drifted } else { &stable };
                        current.push(now.slice(seconds, rate, &mut rng));
                        for week in past.iter_mut() {
                            week.push(stable.slice(seconds, rate, &mut rng));
                        }
                        if k < 0 {
                            continue;
                        }
                        let frame = frame(pooled(&past, signal.bounds), &current, signal.bounds);
                        for (method, slot) in methods.iter_mut().zip(found.iter_mut()) {
                            if slot.is_none() && method.decide(&frame) == super::Outcome::Alarm {
                                *slot = Some((k as usize).max(1));
                            }
                        }
                    }
                    for (list, value) in first.iter_mut().zip(found) {
                        list.push(value);
                    }
                }
                for (row, list) in rows.iter_mut().zip(first) {
                    row.push(list);
                }
            }
        }
        println!(
            "### {} with a daily cycle and a sudden change\n",
            signal.name
        );
        print!("| method |");
        for column in &columns {
            print!(" {column} |");
        }
        println!();
        print!("| --- |");
        for _ in &columns {
            print!(" ---: |");
        }
        println!();
        for (method, row) in methods.iter().zip(&rows) {
            print!("| {} (ours) |", method.name);
            for list in row {
                print!(" {} |", super::delay_cell(list));
            }
            println!();
        }
        println!();
    }
}
