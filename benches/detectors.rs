//! Math speed: one `detect` call of every detector on 20- and 100-bucket
//! histograms, plus building a `Distribution` from cumulative counts.
//!
//! The inputs are integer formulas that `scripts/bench-math.py` reproduces
//! exactly, so numpy/scipy/Evidently time the same computations on the same
//! numbers: bounds `(i + 1) / B`, reference count
//! `1000 + 37 * ((i * 7919) % 101)`, current count
//! `1000 + 37 * ((i * 104729 + 13) % 101)` for bucket `i` (the `+Inf` bucket
//! is `i = B`), `_sum` from the representatives.
//!
//! `cargo bench --bench detectors` measures; `cargo test --all-targets` runs
//! each benchmark once as a smoke test.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use model_monitor::detectors::{
    ChiSquareDetector, DriftDetector, HellingerDetector, JensenShannonDetector, KsDetector,
    PsiDetector, QuantileRatioDetector, WassersteinDetector, Windows, ZScoreDetector,
};
use model_monitor::stats::{Distribution, Histogram};

/// Per-bucket counts (the `+Inf` bucket last) of one window with `buckets`
/// finite bounds.
fn counts(buckets: usize, multiplier: u64, offset: u64) -> Vec<f64> {
    (0..=buckets as u64)
        .map(|i| (1000 + 37 * ((i * multiplier + offset) % 101)) as f64)
        .collect()
}

fn bounds(buckets: usize) -> Vec<f64> {
    (1..=buckets).map(|i| i as f64 / buckets as f64).collect()
}

/// A window with `_sum` equal to the representatives' weighted sum, so the
/// mean is the same whether it is taken from `_sum` or the representatives.
fn window(buckets: usize, multiplier: u64, offset: u64) -> Distribution {
    let without_sum = Distribution::from_bucket_counts(
        bounds(buckets),
        counts(buckets, multiplier, offset),
        None,
    )
    .expect("valid bench histogram");
    let sum = without_sum.mean() * without_sum.total();
    Distribution::from_bucket_counts(
        bounds(buckets),
        counts(buckets, multiplier, offset),
        Some(sum),
    )
    .expect("valid bench histogram")
}

fn detectors() -> Vec<(&'static str, Box<dyn DriftDetector>)> {
    vec![
        ("psi", Box::new(PsiDetector::default())),
        ("ks", Box::new(KsDetector::default())),
        ("chi_square", Box::new(ChiSquareDetector::default())),
        ("zscore", Box::new(ZScoreDetector::default())),
        ("jensen_shannon", Box::new(JensenShannonDetector::default())),
        ("hellinger", Box::new(HellingerDetector::default())),
        ("wasserstein", Box::new(WassersteinDetector::default())),
        (
            "quantile_ratio",
            Box::new(QuantileRatioDetector::new(0.99, 1.5)),
        ),
    ]
}

fn bench_detectors(criterion: &mut Criterion) {
    for buckets in [20, 100] {
        let reference = window(buckets, 7919, 0);
        let current = window(buckets, 104_729, 13);
        let mut group = criterion.benchmark_group(format!("detect_{buckets}_buckets"));
        for (name, detector) in detectors() {
            group.bench_function(BenchmarkId::from_parameter(name), |bencher| {
                bencher.iter(|| {
                    detector.detect(black_box(Windows {
                        reference: &reference,
                        current: &current,
                    }))
                })
            });
        }
        group.finish();
    }
}

fn bench_distribution(criterion: &mut Criterion) {
    for buckets in [20, 100] {
        let mut cumulative = counts(buckets, 7919, 0);
        let mut running = 0.0;
        for count in &mut cumulative {
            running += *count;
            *count = running;
        }
        let histogram = Histogram {
            bounds: bounds(buckets),
            cumulative,
            sum: Some(running * 0.5),
        };
        criterion.bench_function(
            &format!("distribution_{buckets}_buckets/from_histogram"),
            |bencher| bencher.iter(|| Distribution::from_histogram(black_box(&histogram))),
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_secs(1));
    targets = bench_detectors, bench_distribution
}
criterion_main!(benches);
